/*
 * cr_gs1: see cr_gs1.h and docs/gs1.md.
 */

#include <string.h>

#include "cr_gs1.h"
#include "cr_valid.h"


/* More segments than this in one path is refused (a stem is short). */
#define CR_GS1_SEGMENTS_MAX  64


typedef struct {
    const char  *p;
    size_t       len;
} cr_gs1_seg_t;


static cr_gs1_rc_t cr_gs1_split(const char *path, size_t len,
    cr_gs1_seg_t *seg, size_t *n);
static int cr_gs1_pchars(const char *s, size_t len);
static cr_gs1_rc_t cr_gs1_value(char *out, size_t *out_len, const char *s,
    size_t len);
static cr_gs1_rc_t cr_gs1_query(const char *s, size_t len,
    cr_gs1_link_t *dl);
static cr_gs1_rc_t cr_gs1_sscc(const cr_gs1_seg_t *seg, cr_gs1_link_t *dl);
static cr_gs1_rc_t cr_gs1_query_of(const char *uri, size_t len, size_t plen,
    cr_gs1_link_t *dl);
static int cr_gs1_hexval(int c);
static int cr_gs1_is(const cr_gs1_seg_t *seg, const char *lit);


/* Written as they are in a value; the rest of AI 82 is percent-encoded. */
static int
cr_gs1_plain(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
           || (c >= 'a' && c <= 'z') || c == '-' || c == '.' || c == '_';
}


/* The 17 characters of AI 82 that a value carries percent-encoded. */
static int
cr_gs1_escaped(int c)
{
    return c != '\0' && strchr("!\"%&'()*+,/:;<=>?", c) != NULL;
}


/* RFC 3986: unreserved / sub-delims / ":" / "@" (pchar less pct-encoded). */
static int
cr_gs1_pchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
           || (c >= 'a' && c <= 'z')
           || (c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL);
}


cr_gs1_rc_t
cr_gs1_parse(const char *uri, size_t len, cr_gs1_link_t *dl)
{
    size_t        n, k, i, plen, *vlen;
    unsigned      order, bit;
    char         *val;
    const char   *q;
    cr_gs1_rc_t   rc;
    cr_gs1_seg_t  seg[CR_GS1_SEGMENTS_MAX];

    memset(dl, 0, sizeof(cr_gs1_link_t));

    q = memchr(uri, '?', len);
    plen = q ? (size_t) (q - uri) : len;

    rc = cr_gs1_split(uri, plen, seg, &n);
    if (rc != CR_GS1_OK) {
        return rc;
    }

    /*
     * The key: the rightmost "01" or "00" with whole AI/value pairs after
     * it.  A value may itself be "01"; the pairs after the key decide.
     */
    for (k = n; k >= 2; k -= 2) {
        if (cr_gs1_is(&seg[k - 2], "01") || cr_gs1_is(&seg[k - 2], "00")) {
            break;
        }
    }

    if (k < 2) {
        return CR_GS1_NO_GTIN;
    }

    k -= 2;

    for (i = 0; i < k; i++) {
        if (!cr_gs1_pchars(seg[i].p, seg[i].len)) {
            return CR_GS1_BAD_PATH;
        }
    }

    dl->stem = uri;
    dl->stem_len = k ? (size_t) (seg[k].p - 1 - uri) : 0;

    if (seg[k].p[1] == '0') {
        rc = cr_gs1_sscc(&seg[k + 1], dl);

        if (rc == CR_GS1_OK && k + 2 < n) {
            rc = CR_GS1_SSCC_QUALIFIER;     /* an SSCC has none */
        }

        return rc == CR_GS1_OK ? cr_gs1_query_of(uri, len, plen, dl) : rc;
    }

    if (seg[k + 1].len != CR_GS1_GTIN_LEN) {
        return CR_GS1_GTIN_DIGITS;
    }

    for (i = 0; i < CR_GS1_GTIN_LEN; i++) {
        if (seg[k + 1].p[i] < '0' || seg[k + 1].p[i] > '9') {
            return CR_GS1_GTIN_DIGITS;
        }
    }

    if (cr_valid_gtin(seg[k + 1].p, CR_GS1_GTIN_LEN) != NULL) {
        return CR_GS1_GTIN_CHECK;
    }

    memcpy(dl->gtin, seg[k + 1].p, CR_GS1_GTIN_LEN);
    memcpy(dl->key, dl->gtin, CR_GS1_GTIN_LEN + 1);
    dl->ai = "01";

    /* 22 < 10 < 21 in the standard's order: each later than the last. */
    order = 0;

    for (i = k + 2; i < n; i += 2) {
        if (cr_gs1_is(&seg[i], "22")) {
            bit = CR_GS1_HAS_CPV;
            val = dl->cpv;
            vlen = &dl->cpv_len;

        } else if (cr_gs1_is(&seg[i], "10")) {
            bit = CR_GS1_HAS_LOT;
            val = dl->lot;
            vlen = &dl->lot_len;

        } else if (cr_gs1_is(&seg[i], "21")) {
            bit = CR_GS1_HAS_SERIAL;
            val = dl->serial;
            vlen = &dl->serial_len;

        } else {
            return CR_GS1_BAD_QUALIFIER;
        }

        if (bit <= order) {
            return CR_GS1_QUALIFIER_ORDER;
        }

        order = bit;
        dl->has |= bit;

        rc = cr_gs1_value(val, vlen, seg[i + 1].p, seg[i + 1].len);
        if (rc != CR_GS1_OK) {
            return rc;
        }
    }

    return cr_gs1_query_of(uri, len, plen, dl);
}


/* An SSCC: 18 digits, the last the check digit. */
static cr_gs1_rc_t
cr_gs1_sscc(const cr_gs1_seg_t *seg, cr_gs1_link_t *dl)
{
    size_t  i;

    if (seg->len != CR_GS1_SSCC_LEN) {
        return CR_GS1_SSCC_DIGITS;
    }

    for (i = 0; i < CR_GS1_SSCC_LEN; i++) {
        if (seg->p[i] < '0' || seg->p[i] > '9') {
            return CR_GS1_SSCC_DIGITS;
        }
    }

    if (cr_valid_check_digit(seg->p, CR_GS1_SSCC_LEN) != NULL) {
        return CR_GS1_SSCC_CHECK;
    }

    memcpy(dl->key, seg->p, CR_GS1_SSCC_LEN);
    dl->key[CR_GS1_SSCC_LEN] = '\0';
    dl->ai = "00";

    return CR_GS1_OK;
}


/* The query after the path's plen bytes, if there is one. */
static cr_gs1_rc_t
cr_gs1_query_of(const char *uri, size_t len, size_t plen, cr_gs1_link_t *dl)
{
    if (plen == len) {
        return CR_GS1_OK;
    }

    dl->query = uri + plen + 1;
    dl->query_len = len - plen - 1;

    return cr_gs1_query(dl->query, dl->query_len, dl);
}


/* Non-empty segments after the leading '/', at most CR_GS1_SEGMENTS_MAX. */
static cr_gs1_rc_t
cr_gs1_split(const char *path, size_t len, cr_gs1_seg_t *seg, size_t *n)
{
    const char  *p, *end, *slash;

    if (len == 0 || path[0] != '/') {
        return CR_GS1_BAD_PATH;
    }

    p = path + 1;
    end = path + len;
    *n = 0;

    for ( ;; ) {
        slash = memchr(p, '/', (size_t) (end - p));

        if (slash == NULL) {
            slash = end;
        }

        if (slash == p || *n == CR_GS1_SEGMENTS_MAX) {
            return CR_GS1_BAD_PATH;     /* "//", a trailing '/', too many */
        }

        seg[*n].p = p;
        seg[*n].len = (size_t) (slash - p);
        (*n)++;

        if (slash == end) {
            return CR_GS1_OK;
        }

        p = slash + 1;
    }
}


static int
cr_gs1_is(const cr_gs1_seg_t *seg, const char *lit)
{
    return seg->len == strlen(lit) && memcmp(seg->p, lit, seg->len) == 0;
}


static int
cr_gs1_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


/* Decodes "%XX" at s (3 bytes available?) into *c; 0, or -1 if not one. */
static int
cr_gs1_escape(const char *s, size_t avail, int *c)
{
    int  hi, lo;

    if (avail < 3 || s[0] != '%') {
        return -1;
    }

    hi = cr_gs1_hexval((unsigned char) s[1]);
    lo = cr_gs1_hexval((unsigned char) s[2]);

    if (hi < 0 || lo < 0) {
        return -1;
    }

    *c = hi * 16 + lo;

    return 0;
}


/* RFC 3986 pchars and valid escapes only (a stem segment). */
static int
cr_gs1_pchars(const char *s, size_t len)
{
    int     c;
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (cr_gs1_escape(s + i, len - i, &c) != 0) {
                return 0;
            }
            i += 2;

        } else if (!cr_gs1_pchar((unsigned char) s[i])) {
            return 0;
        }
    }

    return 1;
}


static cr_gs1_rc_t
cr_gs1_value(char *out, size_t *out_len, const char *s, size_t len)
{
    int     c;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '%') {
            /* An escape only for the characters that need one. */
            if (cr_gs1_escape(s + i, len - i, &c) != 0
                || !cr_gs1_escaped(c))
            {
                return CR_GS1_VALUE_CHAR;
            }
            i += 2;

        } else if (!cr_gs1_plain(c)) {
            return CR_GS1_VALUE_CHAR;
        }

        if (n == CR_GS1_VALUE_MAX) {
            return CR_GS1_VALUE_LENGTH;
        }

        out[n++] = (char) c;
    }

    out[n] = '\0';
    *out_len = n;

    return n ? CR_GS1_OK : CR_GS1_VALUE_LENGTH;
}


static cr_gs1_rc_t
cr_gs1_query(const char *s, size_t len, cr_gs1_link_t *dl)
{
    int          c;
    size_t       i, name;
    const char  *p, *end, *eq, *amp;

    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (cr_gs1_escape(s + i, len - i, &c) != 0) {
                return CR_GS1_BAD_QUERY;
            }
            i += 2;

        } else if (!cr_gs1_pchar((unsigned char) s[i]) && s[i] != '/'
                   && s[i] != '?')
        {
            return CR_GS1_BAD_QUERY;
        }
    }

    /* NAME=...: a name before the first '=' (the standard's grammar). */
    eq = memchr(s, '=', len);
    if (eq == NULL || eq == s) {
        return CR_GS1_BAD_QUERY;
    }

    end = s + len;

    for (p = s; p < end; p = amp + 1) {
        for (amp = p; amp < end && *amp != '&' && *amp != ';'; amp++) {
            /* void */
        }

        name = sizeof("linkType=") - 1;

        if ((size_t) (amp - p) >= name
            && memcmp(p, "linkType=", name) == 0)
        {
            dl->link_type = p + name;
            dl->link_type_len = (size_t) (amp - p) - name;
            break;
        }
    }

    return CR_GS1_OK;
}


/* True if s[0..len) begins with the lower-case "lit", in either case. */
static int
cr_gs1_prefix(const char *s, size_t len, const char *lit)
{
    size_t  i, n;

    n = strlen(lit);

    if (len < n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i]) != lit[i]) {
            return 0;
        }
    }

    return 1;
}


cr_gs1_rc_t
cr_gs1_parse_url(const char *url, size_t len, cr_gs1_link_t *dl)
{
    size_t       n;
    const char  *p, *end, *host;

    memset(dl, 0, sizeof(cr_gs1_link_t));

    if (cr_gs1_prefix(url, len, "https://")) {
        n = 8;
    } else if (cr_gs1_prefix(url, len, "http://")) {
        n = 7;
    } else {
        return CR_GS1_BAD_URL;
    }

    p = url + n;
    end = url + len;
    host = p;

    if (p < end && *p == '[') {
        /* An IP literal: hex digits, ':' and '.' (IPv4 in IPv6). */
        for (p++; p < end && (cr_gs1_hexval((unsigned char) *p) >= 0
                              || *p == ':' || *p == '.'); p++)
        {
            /* void */
        }

        if (p == end || *p != ']' || p == host + 1) {
            return CR_GS1_BAD_URL;
        }

        p++;

    } else {
        /* reg-name (an IPv4 address is one too): no ':' nor '@'. */
        for ( /* void */ ; p < end && *p != '/' && *p != ':'; p++) {
            if (*p == '%') {
                int  c;

                if (cr_gs1_escape(p, (size_t) (end - p), &c) != 0) {
                    return CR_GS1_BAD_URL;
                }
                p += 2;

            } else if (!cr_gs1_pchar((unsigned char) *p) || *p == '@') {
                return CR_GS1_BAD_URL;
            }
        }

        if (p == host) {
            return CR_GS1_BAD_URL;
        }
    }

    if (p < end && *p == ':') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }
    }

    if (p == end) {
        return CR_GS1_NO_GTIN;
    }

    if (*p != '/') {
        return CR_GS1_BAD_URL;
    }

    return cr_gs1_parse(p, (size_t) (end - p), dl);
}


int
cr_gs1_gtin14(char out[CR_GS1_GTIN_LEN + 1], const char *s, size_t n)
{
    if (cr_valid_gtin(s, n) != NULL) {
        return -1;
    }

    /* Leading zeros leave the mod-10 sum, and so the check digit, alone. */
    memset(out, '0', CR_GS1_GTIN_LEN - n);
    memcpy(out + CR_GS1_GTIN_LEN - n, s, n);
    out[CR_GS1_GTIN_LEN] = '\0';

    return 0;
}


int
cr_gs1_encode_value(char out[CR_GS1_VALUE_ENC_MAX + 1], const char *s,
    size_t n)
{
    int     c;
    size_t  i, len;

    static const char  hex[] = "0123456789ABCDEF";

    if (n == 0 || n > CR_GS1_VALUE_MAX) {
        return -1;
    }

    len = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (cr_gs1_plain(c)) {
            out[len++] = (char) c;

        } else if (cr_gs1_escaped(c)) {
            out[len++] = '%';
            out[len++] = hex[c >> 4];
            out[len++] = hex[c & 0xf];

        } else {
            return -1;
        }
    }

    out[len] = '\0';

    return (int) len;
}


int
cr_gs1_decode(char *out, size_t size, const char *s, size_t len)
{
    int     c;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '%') {
            if (cr_gs1_escape(s + i, len - i, &c) != 0) {
                return -1;
            }
            i += 2;
        }

        if (n == size) {
            return -1;
        }

        out[n++] = (char) c;
    }

    return (int) n;
}


cr_gs1_rc_t
cr_gs1_code_of(const char *s, size_t n, cr_gs1_link_t *dl,
    const char **code, size_t *code_len)
{
    size_t       i;
    cr_gs1_rc_t  rc;

    rc = cr_gs1_parse_url(s, n, dl);

    if (rc == CR_GS1_OK) {
        *code = (dl->has & CR_GS1_HAS_SERIAL) ? dl->serial : NULL;
        *code_len = dl->serial_len;
        return CR_GS1_OK;
    }

    /* A URL that is a broken Digital Link: no code is guessed. */
    if (rc != CR_GS1_BAD_URL && rc != CR_GS1_NO_GTIN) {
        *code = NULL;
        *code_len = 0;
        return rc;
    }

    for (i = n; i > 0 && s[i - 1] != '/'; i--) {
        /* void */
    }

    *code = s + i;
    *code_len = n - i;

    return CR_GS1_NO_GTIN;
}


const char *
cr_gs1_rc_name(cr_gs1_rc_t rc)
{
    static const char  *names[] = {
        "ok", "bad_url", "bad_path", "no_gtin", "gtin_digits", "gtin_check",
        "bad_qualifier", "qualifier_order", "value_char", "value_length",
        "bad_query", "sscc_digits", "sscc_check", "sscc_qualifier",
        "bad_compressed"
    };

    return (unsigned) rc < sizeof(names) / sizeof(names[0])
           ? names[rc] : "unknown";
}


const char *
cr_gs1_rc_text(cr_gs1_rc_t rc)
{
    static const char  *texts[] = {
        "a valid GS1 Digital Link",
        "not an http:// or https:// URL with a host",
        "the path has an empty segment (\"//\" or a trailing '/'), a "
        "character or an escape RFC 3986 does not allow, or over 64 "
        "segments",
        "no /01/GTIN or /00/SSCC key followed by whole /AI/value pairs",
        "the GTIN is not 14 digits (write GTIN-8, -12 and -13 with leading "
        "zeros)",
        "the GTIN's check digit is wrong",
        "a key qualifier other than 22, 10 and 21 after the GTIN",
        "key qualifiers repeated or out of order (22, then 10, then 21, "
        "each at most once)",
        "a value holds a character outside GS1's set (AI 82), or one not "
        "percent-encoded as the standard requires",
        "a value is empty or over 20 characters",
        "the query has a character or an escape RFC 3986 does not allow, "
        "or no NAME=VALUE first",
        "the SSCC is not 18 digits",
        "the SSCC's check digit is wrong",
        "an SSCC takes no key qualifiers: nothing may follow /00/SSCC in "
        "the path",
        "the last segment is not a compressed GS1 Digital Link this "
        "resolver reads (AIs 00, 01, 22, 10, 21 and key=value pairs, in "
        "GS1's binary encoding, zero padding bits)"
    };

    return (unsigned) rc < sizeof(texts) / sizeof(texts[0])
           ? texts[rc] : "unknown";
}
