/*
 * cr_gs1_request: the request URI a resolver answers for (cr_gs1.h,
 * docs/gs1.md): one trailing '/' tolerated, and a compressed Digital Link
 * (GS1 Digital Link: Compression) written out uncompressed, then parsed
 * by cr_gs1_parse(), so that every rule is checked in one place.
 *
 * The compressed form is the base64url (A-Z a-z 0-9 - _, 6 bits a
 * character, zero bits padding the last) of a bit string of fields, each
 * opened by 8 bits read as two hex digits:
 *
 * - two decimal digits: an AI, then its value: 00 as 18 digits in 60
 *   bits, 01 as 14 digits in 47 bits (ceil(n log2 10 + 0.01) bits for n
 *   digits), 22, 10 and 21 as an encoding (3 bits), a length (5 bits)
 *   and the characters;
 * - 0A, 0B, 0C: AI 01 then 22, 10 or 21 (the standard's optimisations);
 * - F and 7 bits more: a non-GS1 key=value pair: the key's length, its
 *   characters in base64url, then an encoding, a length (7 bits) and the
 *   value.
 *
 * Encodings: 0 digits (one number), 1 lower-case hex, 2 upper-case hex
 * (4 bits a character), 3 base64url (6), 4 ASCII (7).
 */

#include <string.h>

#include "cr_gs1.h"
#include "cr_valid.h"


/* The AIs a compressed link may carry, in the order of the path. */
enum { CR_Z_SSCC, CR_Z_GTIN, CR_Z_CPV, CR_Z_LOT, CR_Z_SERIAL, CR_Z_N };


typedef struct {
    const char  *s;             /* base64url characters */
    size_t       bits;          /* 6 each */
    size_t       at;            /* bits read */
    int          short_read;    /* a read past the end */
} cr_z_bits_t;


typedef struct {
    char        *p;
    size_t       n, cap;
    size_t       path;          /* where the pairs begin */
    int          over;
} cr_z_out_t;


typedef struct {
    char        v[CR_GS1_VALUE_MAX + 1];  /* 20 characters, or 18 digits */
    size_t      n;
    int         set;
} cr_z_value_t;


static const char  cr_z_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


static cr_gs1_rc_t cr_z_expand(const char *seg, size_t len, cr_z_out_t *o,
    cr_z_out_t *pairs);
static cr_gs1_rc_t cr_z_field(cr_z_bits_t *b, cr_z_value_t *v,
    cr_z_out_t *pairs);
static cr_gs1_rc_t cr_z_value(cr_z_bits_t *b, unsigned enc, size_t n,
    size_t max, char *out);
static cr_gs1_rc_t cr_z_number(cr_z_bits_t *b, size_t n, char *out);
static void cr_z_put(cr_z_out_t *o, const char *s, size_t n);


static int
cr_z_index(int c)
{
    const char  *p;

    p = c ? strchr(cr_z_b64, c) : NULL;

    return p ? (int) (p - cr_z_b64) : -1;
}


/* The next n <= 32 bits, most significant first; 0 past the end. */
static unsigned long
cr_z_get(cr_z_bits_t *b, unsigned n)
{
    size_t         i;
    unsigned long  v;

    if (b->bits - b->at < n) {
        b->short_read = 1;
        b->at = b->bits;
        return 0;
    }

    v = 0;

    for (i = 0; i < n; i++, b->at++) {
        v = v << 1
            | ((unsigned long) cr_z_index((unsigned char) b->s[b->at / 6])
               >> (5 - b->at % 6) & 1);
    }

    return v;
}


/* Bits of an n-digit number: ceil(n log2(10) + 0.01), the standard's. */
static size_t
cr_z_number_bits(size_t n)
{
    /* log2(10) = 3.32192809488736...: 10^9 (n log2 10 + 0.01), rounded
     * up, then its ceiling in bits (exact for n below 10^4). */
    unsigned long long  x;

    x = (unsigned long long) n * 3321928095ULL + 10000000ULL;

    return (size_t) ((x + 999999999ULL) / 1000000000ULL);
}


cr_gs1_rc_t
cr_gs1_parse_request(const char *uri, size_t len, char *out,
    size_t *out_len, int *compressed, cr_gs1_link_t *dl)
{
    size_t        plen, qlen, last, i;
    const char   *q;
    cr_z_out_t    o;
    cr_gs1_rc_t   rc;

    *compressed = 0;

    q = memchr(uri, '?', len);
    plen = q ? (size_t) (q - uri) : len;
    qlen = len - plen;

    /* "/01/.../" answers as "/01/...": a resolver SHOULD tolerate it. */
    o.p = out;
    o.n = 0;
    o.cap = CR_GS1_CANON_MAX(len);
    o.over = 0;

    if (plen > 1 && uri[plen - 1] == '/') {
        plen--;
    }

    cr_z_put(&o, uri, plen);
    cr_z_put(&o, uri + len - qlen, qlen);
    *out_len = o.n;

    rc = cr_gs1_parse(out, o.n, dl);

    if (rc != CR_GS1_NO_GTIN) {
        return rc;
    }

    /* No key: is the last segment a compressed link? */
    for (last = plen; last > 0 && uri[last - 1] != '/'; last--) {
        /* void */
    }

    if (last == 0 || last == plen) {
        return rc;
    }

    for (i = last; i < plen; i++) {
        if (cr_z_index((unsigned char) uri[i]) < 0) {
            return rc;
        }
    }

    /* The stem, the path of the key and qualifiers, then (a second
     * reading) the pairs, then the request's own query. */
    o.n = 0;
    cr_z_put(&o, uri, last - 1);

    rc = cr_z_expand(uri + last, plen - last, &o, NULL);
    if (rc != CR_GS1_OK) {
        return rc;
    }

    o.path = o.n;
    (void) cr_z_expand(uri + last, plen - last, NULL, &o);

    if (qlen) {
        cr_z_put(&o, o.n > o.path ? "&" : "?", 1);
        cr_z_put(&o, q + 1, qlen - 1);
    }

    if (o.over) {
        return CR_GS1_BAD_COMPRESSED;
    }

    *out_len = o.n;
    *compressed = 1;

    return cr_gs1_parse(out, o.n, dl);
}


/*
 * The fields of one compressed segment: the key and qualifiers written to
 * o as a path (if o), or the pairs to pairs as ?NAME=VALUE&... (if pairs,
 * on a second reading of a segment the first found sound).
 */
static cr_gs1_rc_t
cr_z_expand(const char *seg, size_t len, cr_z_out_t *o, cr_z_out_t *pairs)
{
    int            i, n;
    char           enc[CR_GS1_VALUE_ENC_MAX + 1];
    cr_z_bits_t    b;
    cr_gs1_rc_t    rc;
    cr_z_value_t   v[CR_Z_N];

    static const char  *ai[CR_Z_N] = { "/00/", "/01/", "/22/", "/10/",
                                       "/21/" };

    memset(v, 0, sizeof(v));

    b.s = seg;
    b.bits = 6 * len;
    b.at = 0;
    b.short_read = 0;

    while (b.bits - b.at >= 6) {
        rc = cr_z_field(&b, v, pairs);
        if (rc != CR_GS1_OK) {
            return rc;
        }
    }

    /* The padding: fewer than 6 bits, all 0 (one string per link). */
    if (b.short_read || cr_z_get(&b, (unsigned) (b.bits - b.at)) != 0
        || v[CR_Z_GTIN].set == v[CR_Z_SSCC].set)
    {
        return CR_GS1_BAD_COMPRESSED;
    }

    for (i = 0; o != NULL && i < CR_Z_N; i++) {
        if (!v[i].set) {
            continue;
        }

        cr_z_put(o, ai[i], 4);

        if (i == CR_Z_GTIN || i == CR_Z_SSCC) {
            cr_z_put(o, v[i].v, v[i].n);
            continue;
        }

        n = cr_gs1_encode_value(enc, v[i].v, v[i].n);
        if (n < 0) {
            return v[i].n == 0 ? CR_GS1_VALUE_LENGTH : CR_GS1_VALUE_CHAR;
        }

        cr_z_put(o, enc, (size_t) n);
    }

    return CR_GS1_OK;
}


/* One field: an AI and its value, an optimisation's, or a pair. */
static cr_gs1_rc_t
cr_z_field(cr_z_bits_t *b, cr_z_value_t *v, cr_z_out_t *pairs)
{
    int            k;
    char           key[128], val[128];
    size_t         i, n, klen;
    unsigned long  h;
    cr_gs1_rc_t    rc;

    h = cr_z_get(b, 8);

    switch (h) {
    case 0x00: k = CR_Z_SSCC; break;
    case 0x01: k = CR_Z_GTIN; break;
    case 0x22: k = CR_Z_CPV; break;
    case 0x10: k = CR_Z_LOT; break;
    case 0x21: k = CR_Z_SERIAL; break;
    case 0x0A: k = CR_Z_CPV; break;
    case 0x0B: k = CR_Z_LOT; break;
    case 0x0C: k = CR_Z_SERIAL; break;
    default: k = -1; break;
    }

    if (b->short_read) {
        return CR_GS1_BAD_COMPRESSED;
    }

    if (k < 0 && (h >> 4) == 0xF) {
        /* A pair: its key (7 bits of length, base64url), its value. */
        klen = (h & 0xF) << 3 | cr_z_get(b, 3);

        for (i = 0; i < klen; i++) {
            key[i] = cr_z_b64[cr_z_get(b, 6)];
        }

        h = cr_z_get(b, 3);
        n = cr_z_get(b, 7);

        rc = cr_z_value(b, (unsigned) h, n, sizeof(val), val);
        if (rc != CR_GS1_OK) {
            return rc;
        }

        if (pairs == NULL) {
            return CR_GS1_OK;
        }

        cr_z_put(pairs, pairs->n == pairs->path ? "?" : "&", 1);
        cr_z_put(pairs, key, klen);
        cr_z_put(pairs, "=", 1);

        i = cr_url_encode(NULL, val, n);
        if (!pairs->over && pairs->cap - pairs->n >= i) {
            pairs->n += cr_url_encode(pairs->p + pairs->n, val, n);
        } else {
            pairs->over = 1;
        }

        return CR_GS1_OK;
    }

    if (k < 0) {
        return CR_GS1_BAD_COMPRESSED;   /* an AI this resolver never reads */
    }

    /* An optimisation code: the GTIN first. */
    if (h > 0x09 && h < 0x10) {
        if (v[CR_Z_GTIN].set) {
            return CR_GS1_BAD_COMPRESSED;
        }

        v[CR_Z_GTIN].set = 1;
        v[CR_Z_GTIN].n = CR_GS1_GTIN_LEN;

        rc = cr_z_number(b, CR_GS1_GTIN_LEN, v[CR_Z_GTIN].v);
        if (rc != CR_GS1_OK) {
            return rc;
        }
    }

    if (v[k].set) {
        return CR_GS1_BAD_COMPRESSED;   /* twice */
    }

    v[k].set = 1;

    if (k == CR_Z_GTIN || k == CR_Z_SSCC) {
        v[k].n = k == CR_Z_GTIN ? CR_GS1_GTIN_LEN : CR_GS1_SSCC_LEN;
        return cr_z_number(b, v[k].n, v[k].v);
    }

    h = cr_z_get(b, 3);
    v[k].n = cr_z_get(b, 5);

    if (v[k].n > CR_GS1_VALUE_MAX) {
        return CR_GS1_VALUE_LENGTH;
    }

    return cr_z_value(b, (unsigned) h, v[k].n, sizeof(v[k].v), v[k].v);
}


/* n characters in encoding enc into out (max bytes); no NUL. */
static cr_gs1_rc_t
cr_z_value(cr_z_bits_t *b, unsigned enc, size_t n, size_t max, char *out)
{
    size_t         i;
    unsigned long  c;

    static const char  hex[] = "0123456789abcdef0123456789ABCDEF";

    if (n >= max) {
        return CR_GS1_VALUE_LENGTH;
    }

    if (enc == 0) {
        return cr_z_number(b, n, out);
    }

    for (i = 0; i < n; i++) {
        switch (enc) {
        case 1:
        case 2:
            c = (unsigned long) hex[16 * (enc - 1) + cr_z_get(b, 4)];
            break;
        case 3:
            c = (unsigned long) cr_z_b64[cr_z_get(b, 6)];
            break;
        case 4:
            c = cr_z_get(b, 7);
            break;
        default:
            return CR_GS1_BAD_COMPRESSED;
        }

        out[i] = (char) c;
    }

    return b->short_read ? CR_GS1_BAD_COMPRESSED : CR_GS1_OK;
}


/*
 * n decimal digits stored as one binary number of cr_z_number_bits(n)
 * bits: doubled in decimal bit by bit, left-padded with 0s to n; a number
 * of more than n digits is refused (no encoder writes one).
 */
static cr_gs1_rc_t
cr_z_number(cr_z_bits_t *b, size_t n, char *out)
{
    int     carry;
    size_t  i, bits, j;

    memset(out, 0, n);
    bits = cr_z_number_bits(n);

    for (i = 0; i < bits; i++) {
        carry = (int) cr_z_get(b, 1);

        for (j = n; j-- > 0; ) {
            out[j] = (char) (out[j] * 2 + carry);
            carry = out[j] >= 10;
            out[j] = (char) (out[j] - 10 * carry);
        }

        if (carry) {
            return CR_GS1_BAD_COMPRESSED;
        }
    }

    for (j = 0; j < n; j++) {
        out[j] = (char) (out[j] + '0');
    }

    return b->short_read ? CR_GS1_BAD_COMPRESSED : CR_GS1_OK;
}


static void
cr_z_put(cr_z_out_t *o, const char *s, size_t n)
{
    if (o->over || o->cap - o->n < n) {
        o->over = 1;
        return;
    }

    memcpy(o->p + o->n, s, n);
    o->n += n;
}
