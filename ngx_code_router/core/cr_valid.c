/*
 * cr_valid: see cr_valid.h.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cr_record.h"
#include "cr_valid.h"


/*
 * Character classes, one lookup per byte on the request path:
 * 1 = RFC 3986 unreserved (kept as is by cr_url_encode),
 * 2 = allowed in a URL we emit (unreserved, reserved and '%').
 */
#define CR_UNRESERVED  1
#define CR_URLCHAR     2
#define U (CR_UNRESERVED | CR_URLCHAR)
#define R CR_URLCHAR

static const unsigned char  cr_url_class[256] = {
    ['A'] = U, ['B'] = U, ['C'] = U, ['D'] = U, ['E'] = U, ['F'] = U,
    ['G'] = U, ['H'] = U, ['I'] = U, ['J'] = U, ['K'] = U, ['L'] = U,
    ['M'] = U, ['N'] = U, ['O'] = U, ['P'] = U, ['Q'] = U, ['R'] = U,
    ['S'] = U, ['T'] = U, ['U'] = U, ['V'] = U, ['W'] = U, ['X'] = U,
    ['Y'] = U, ['Z'] = U, ['a'] = U, ['b'] = U, ['c'] = U, ['d'] = U,
    ['e'] = U, ['f'] = U, ['g'] = U, ['h'] = U, ['i'] = U, ['j'] = U,
    ['k'] = U, ['l'] = U, ['m'] = U, ['n'] = U, ['o'] = U, ['p'] = U,
    ['q'] = U, ['r'] = U, ['s'] = U, ['t'] = U, ['u'] = U, ['v'] = U,
    ['w'] = U, ['x'] = U, ['y'] = U, ['z'] = U, ['0'] = U, ['1'] = U,
    ['2'] = U, ['3'] = U, ['4'] = U, ['5'] = U, ['6'] = U, ['7'] = U,
    ['8'] = U, ['9'] = U, ['-'] = U, ['.'] = U, ['_'] = U, ['~'] = U,
    [':'] = R, ['/'] = R, ['?'] = R, ['#'] = R, ['['] = R, [']'] = R,
    ['@'] = R, ['!'] = R, ['$'] = R, ['&'] = R, ['\''] = R, ['('] = R,
    [')'] = R, ['*'] = R, ['+'] = R, [','] = R, [';'] = R, ['='] = R,
    ['%'] = R
};

#undef U
#undef R

static int cr_hex(int c);
static int cr_digits(const char *s, size_t n, int *v);
static int64_t cr_days_from_civil(int64_t y, unsigned m, unsigned d);
static void cr_civil_from_days(int64_t z, int64_t *y, unsigned *m,
    unsigned *d);
static int cr_date_ok(int y, int m, int d);
static int cr_digits12(const char *s, size_t n, size_t *i);
static int cr_excel_exponent(const char *s, size_t n);
static char *cr_put_digits(char *p, unsigned v, int n);
static int64_t cr_local_civil(int64_t t, int tz, int64_t *y, unsigned *m,
    unsigned *d);


const char *
cr_valid_id(const char *s, size_t n)
{
    size_t  i;

    if (n == 0) {
        return "is empty";
    }

    if (n > CR_ID_MAX) {
        return "is longer than 64 bytes";
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_'
              || s[i] == '-'))
        {
            return "may hold only letters, digits, '.', '_' and '-'";
        }
    }

    return NULL;
}


size_t
cr_utf8_len(const char *in, size_t n, uint32_t *cp)
{
    size_t          k, i;
    uint32_t        c, min;
    const uint8_t  *s;

    s = (const uint8_t *) in;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        k = 2;
        c = s[0] & 0x1f;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        k = 3;
        c = s[0] & 0x0f;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        k = 4;
        c = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }

    if (n < k) {
        return 0;
    }

    for (i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3f);
    }

    /* overlong forms, surrogates, beyond U+10FFFF */
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;

    return k;
}


const char *
cr_valid_text(const char *s, size_t n, size_t max)
{
    size_t    i, need;
    uint32_t  cp;
    uint8_t   c;

    if (n > max) {
        return "is too long";
    }

    for (i = 0; i < n; i += need) {
        c = (uint8_t) s[i];

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return "holds a control character";
            }
            need = 1;
            continue;
        }

        need = cr_utf8_len(s + i, n - i, &cp);
        if (need == 0) {
            return "is not UTF-8 (save the file as \"CSV UTF-8\", or load "
                   "it with --encoding gbk)";
        }

        /* C1 controls */
        if (cp >= 0x80 && cp <= 0x9f) {
            return "holds a control character";
        }

        if (cp == 0x2028 || cp == 0x2029) {
            return "holds a line separator";
        }
    }

    return NULL;
}


const char *
cr_valid_label(const char *s, size_t n, size_t max)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (s[i] == ' ' || s[i] == '"' || s[i] == '<' || s[i] == '>'
            || s[i] == '\\' || s[i] == '\'')
        {
            return "may not hold spaces, quotes, '<', '>' or '\\'";
        }
    }

    return cr_valid_text(s, n, max);
}


const char *
cr_valid_url(const char *s, size_t n, const char *scheme)
{
    size_t       i, slen, host;
    uint8_t      c;
    const char  *p;

    if (n > CR_URL_MAX) {
        return "is longer than 2048 bytes";
    }

    slen = strlen(scheme);

    if (n < slen || strncasecmp(s, scheme, slen) != 0) {
        return strcmp(scheme, "https://") == 0
               ? "must start with https://"
               : "must start with weixin://";
    }

    for (i = 0; i < n; i++) {
        c = (uint8_t) s[i];

        if (cr_url_class[c] & CR_URLCHAR) {
            if (c == '%' && (i + 2 >= n || !cr_hex(s[i + 1])
                             || !cr_hex(s[i + 2])))
            {
                return "holds a '%' that is not followed by two hex digits";
            }
            continue;
        }

        if (c <= 0x20 || c >= 0x7f) {
            return c >= 0x80
                   ? "holds a non-ASCII character (percent-encode it)"
                   : "holds a space or a control character";
        }

        return "holds a character not allowed in a URL "
               "(one of \" < > \\ ^ ` { | })";
    }

    /* The host: up to the first '/', '?' or '#'; no user info.  s is not
     * NUL-terminated: stay within its n bytes (no strcspn). */
    p = s + slen;

    for (host = 0; host < n - slen; host++) {
        if (p[host] == '/' || p[host] == '?' || p[host] == '#') {
            break;
        }
    }

    if (host == 0) {
        return "has no host";
    }

    for (i = 0; i < host; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')
              || (p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == '-'
              || p[i] == ':'))
        {
            return p[i] == '@' ? "has user info before the host ('@')"
                               : "has a character not allowed in a host";
        }
    }

    return NULL;
}


const char *
cr_valid_appid(const char *s, size_t n)
{
    size_t  i;

    if (n != 18 || s[0] != 'w' || s[1] != 'x') {
        return "must be \"wx\" and 16 hex digits";
    }

    for (i = 2; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
        {
            return "must be \"wx\" and 16 lower-case hex digits";
        }
    }

    return NULL;
}


const char *
cr_valid_mp_path(const char *s, size_t n)
{
    size_t  i;

    if (n > CR_MP_PATH_MAX) {
        return "is longer than 256 bytes";
    }

    if (n && s[0] == '/') {
        return "must not start with '/' (write pages/index/index)";
    }

    for (i = 0; i < n; i++) {
        if (s[i] == '?' || s[i] == '#') {
            return "must not hold '?' or '#' (put parameters in query)";
        }

        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '/' || s[i] == '_'
              || s[i] == '-' || s[i] == '.'))
        {
            return "may hold only letters, digits, '/', '_', '-' and '.'";
        }
    }

    return NULL;
}


size_t
cr_url_encode(char *out, const char *s, size_t n)
{
    size_t         i, len;
    unsigned char  c;

    static const char  hex[] = "0123456789ABCDEF";

    len = 0;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (cr_url_class[c] & CR_UNRESERVED) {
            if (out) {
                out[len] = (char) c;
            }
            len++;

        } else {
            if (out) {
                out[len] = '%';
                out[len + 1] = hex[c >> 4];
                out[len + 2] = hex[c & 0xf];
            }
            len += 3;
        }
    }

    return len;
}


const char *
cr_valid_mp_query(const char *s, size_t n)
{
    const char  *r;

    r = cr_valid_text(s, n, CR_MP_QUERY_MAX);
    if (r) {
        return r;
    }

    /* n first: an empty stored string may have no data pointer. */
    if (n && (memchr(s, ' ', n) || memchr(s, '#', n))) {
        return "must not hold spaces or '#'";
    }

    if (cr_url_encode(NULL, s, n) + CR_MP_QUERY_CODE_ENC > CR_MP_QUERY_MAX) {
        return "is too long: URL-encoded, with \"&code=CODE\" appended, it "
               "must stay within 512 bytes";
    }

    return NULL;
}


/* D[.D+]E[+]D+, as Excel shows a long number in a General cell. */
static int
cr_excel_exponent(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        /* void */
    }

    if (i == 0 || i == n) {
        return 0;
    }

    if (s[i] == '.' || s[i] == ',') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            /* void */
        }
    }

    if (i == n || (s[i] != 'E' && s[i] != 'e')) {
        return 0;
    }

    i++;

    if (i < n && s[i] == '+') {
        i++;
    }

    if (i == n) {
        return 0;
    }

    for ( /* void */ ; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        /* void */
    }

    return i == n;
}


const char *
cr_valid_gtin(const char *s, size_t n)
{
    size_t    i;
    unsigned  sum, w;

    if (cr_excel_exponent(s, n)) {
        return "is a number in Excel's scientific notation, its last "
               "digits lost: format the column as text in Excel (Format "
               "Cells, Text), type the GTINs again, and save";
    }

    if (n != 8 && n != 12 && n != 13 && n != 14) {
        return "must be 8, 12, 13 or 14 digits";
    }

    sum = 0;
    w = 3;

    /* From the digit left of the check digit, weights 3, 1, 3, ... */
    for (i = n - 1; i-- > 0; ) {
        if (s[i] < '0' || s[i] > '9') {
            return "must be digits only";
        }
        sum += (unsigned) (s[i] - '0') * w;
        w = 4 - w;
    }

    if (s[n - 1] < '0' || s[n - 1] > '9') {
        return "must be digits only";
    }

    if ((10 - sum % 10) % 10 != (unsigned) (s[n - 1] - '0')) {
        return "has a wrong check digit";
    }

    return NULL;
}


static int
cr_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F');
}


static int
cr_digits(const char *s, size_t n, int *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        *v = *v * 10 + (s[i] - '0');
    }

    return 0;
}


static int
cr_date_ok(int y, int m, int d)
{
    static const int  mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };

    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) {
        return 0;
    }

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return d <= 29;
    }

    return d <= mdays[m - 1];
}


const char *
cr_valid_date(const char *s, size_t n)
{
    int  y, m, d;

    if (n != 10 || s[4] != '-' || s[7] != '-' || cr_digits(s, 4, &y)
        || cr_digits(s + 5, 2, &m) || cr_digits(s + 8, 2, &d))
    {
        return "must be a date as YYYY-MM-DD";
    }

    if (!cr_date_ok(y, m, d)) {
        return "is not a real date";
    }

    return NULL;
}


const char *
cr_parse_date(const char *s, size_t n, char out[11])
{
    int          y, m, d;
    char        *p;
    size_t       i;
    const char  *form;

    form = "must be a date as YYYY-MM-DD (or 2026/11/20, as Excel shows "
           "it), without a time";

    if (cr_valid_date(s, n) == NULL) {
        memcpy(out, s, 10);
        out[10] = '\0';
        return NULL;
    }

    /* YYYY/M/D: Excel's date cell. */
    i = 5;

    if (n < 8 || cr_digits(s, 4, &y) || s[4] != '/') {
        return n == 10 && s[4] == '-' && s[7] == '-'
               && cr_digits(s, 4, &y) == 0 ? cr_valid_date(s, n) : form;
    }

    m = cr_digits12(s, n, &i);
    if (m < 0 || i >= n || s[i++] != '/') {
        return form;
    }

    d = cr_digits12(s, n, &i);
    if (d < 0 || i != n) {
        return form;
    }

    if (!cr_date_ok(y, m, d)) {
        return "is not a real date";
    }

    p = cr_put_digits(out, (unsigned) y, 4);
    *p++ = '-';
    p = cr_put_digits(p, (unsigned) m, 2);
    *p++ = '-';
    p = cr_put_digits(p, (unsigned) d, 2);
    *p = '\0';

    return NULL;
}


const char *
cr_parse_time(const char *s, size_t n, int64_t *t, int16_t *tz)
{
    int          y, mo, d, h, mi, sec, zh, zm;
    size_t       i;
    const char  *form;

    form = "must be a date and time with a zone, e.g. "
           "2026-11-02T08:00:00+08:00 or 2026-11-02T00:00:00Z";

    if (n < 17 || cr_valid_date(s, 10) != NULL || s[10] != 'T'
        || cr_digits(s + 11, 2, &h) || s[13] != ':'
        || cr_digits(s + 14, 2, &mi))
    {
        return n > 10 && cr_valid_date(s, 10) == NULL && s[10] == ' '
               ? "must separate date and time with 'T'" : form;
    }

    cr_digits(s, 4, &y);
    cr_digits(s + 5, 2, &mo);
    cr_digits(s + 8, 2, &d);

    i = 16;
    sec = 0;

    if (i < n && s[i] == ':') {
        if (i + 3 > n || cr_digits(s + i + 1, 2, &sec)) {
            return form;
        }
        i += 3;
    }

    if (i == n) {
        return "has no zone: add Z or +08:00";
    }

    if (s[i] == 'Z' && i + 1 == n) {
        zh = zm = 0;
        *tz = 0;

    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n
               && cr_digits(s + i + 1, 2, &zh) == 0 && s[i + 3] == ':'
               && cr_digits(s + i + 4, 2, &zm) == 0 && zh <= 14 && zm <= 59)
    {
        *tz = (int16_t) ((s[i] == '-' ? -1 : 1) * (zh * 60 + zm));

    } else {
        return form;
    }

    if (h > 23 || mi > 59 || sec > 59) {
        return "is not a real time of day";
    }

    *t = cr_days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400
         + h * 3600 + mi * 60 + sec - (int64_t) *tz * 60;

    return NULL;
}


const char *
cr_parse_zone(const char *s, size_t n, int16_t *tz)
{
    int  zh, zm;

    if (n == 1 && s[0] == 'Z') {
        *tz = 0;
        return NULL;
    }

    if (n != 6 || (s[0] != '+' && s[0] != '-') || cr_digits(s + 1, 2, &zh)
        || s[3] != ':' || cr_digits(s + 4, 2, &zm) || zh > 14 || zm > 59)
    {
        return "must be a zone as +08:00, -05:00 or Z";
    }

    *tz = (int16_t) ((s[0] == '-' ? -1 : 1) * (zh * 60 + zm));

    return NULL;
}


/* 1 or 2 digits (max 2) at s[*i], as a number; -1 if none. */
static int
cr_digits12(const char *s, size_t n, size_t *i)
{
    int  v, k;

    v = 0;

    for (k = 0; k < 2 && *i < n && s[*i] >= '0' && s[*i] <= '9'; k++) {
        v = v * 10 + (s[(*i)++] - '0');
    }

    return k ? v : -1;
}


const char *
cr_parse_time_in(const char *s, size_t n, int dflt, int64_t *t, int16_t *tz)
{
    int          y, mo, d, h, mi, sec;
    char         sep;
    size_t       i;
    const char  *iso;

    iso = cr_parse_time(s, n, t, tz);

    if (iso == NULL) {
        return NULL;
    }

    /* YYYY(/|-)M(/|-)D( |T)H:MM[:SS], nothing after: no zone. */
    if (n < 13 || cr_digits(s, 4, &y) || (s[4] != '/' && s[4] != '-')) {
        return iso;
    }

    sep = s[4];
    i = 5;
    mo = cr_digits12(s, n, &i);
    if (mo < 0 || i >= n || s[i++] != sep) {
        return iso;
    }
    d = cr_digits12(s, n, &i);
    if (d < 0 || i >= n || (s[i] != ' ' && s[i] != 'T')) {
        return iso;
    }
    i++;
    h = cr_digits12(s, n, &i);
    if (h < 0 || i + 3 > n || s[i] != ':' || cr_digits(s + i + 1, 2, &mi)) {
        return iso;
    }
    i += 3;
    sec = 0;
    if (i < n && s[i] == ':') {
        if (i + 3 != n || cr_digits(s + i + 1, 2, &sec)) {
            return iso;
        }
        i += 3;
    }
    if (i != n) {
        return iso;
    }

    /* With '-' the fields keep two digits: YYYY-MM-DD HH:MM. */
    if (sep == '-' && (n < 16 || s[7] != '-' || s[13] != ':')) {
        return iso;
    }

    if (dflt == CR_TZ_UNSET) {
        return "has no zone: add Z or +08:00, or load with --tz +08:00 "
               "(or give a tz column)";
    }

    if (!cr_date_ok(y, mo, d)) {
        return "is not a real date";
    }

    if (h > 23 || mi > 59 || sec > 59) {
        return "is not a real time of day";
    }

    *tz = (int16_t) dflt;
    *t = cr_days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400
         + h * 3600 + mi * 60 + sec - (int64_t) dflt * 60;

    return NULL;
}


/*
 * The characters of product names: see cr_valid.h and docs/loading.md.
 * Ranges of code points, sorted.  GBK bytes read as UTF-8 decode to
 * Hebrew, Cyrillic, Arabic, Greek and other scripts outside these (the
 * GBK bytes of "zhuan ye" are U+05E8 U+04B5), which catches a GBK file.
 */
static const uint32_t  cr_name_chars[][2] = {
    { 0x0020, 0x007e },     /* ASCII printable */
    { 0x00a0, 0x024f },     /* Latin-1 Supplement, Latin Extended-A, -B */
    { 0x0391, 0x03a9 },     /* Greek capitals (as symbols: ohm) */
    { 0x03b1, 0x03c9 },     /* Greek small letters (alpha, omega-3) */
    { 0x1e00, 0x1eff },     /* Latin Extended Additional (Vietnamese) */
    { 0x2010, 0x2027 },     /* General Punctuation: dashes, quotes, ... */
    { 0x2030, 0x205e },     /* per mille, primes, ... */
    { 0x2070, 0x209f },     /* super- and subscripts */
    { 0x20a0, 0x20cf },     /* currency symbols */
    { 0x2100, 0x27bf },     /* letterlike .. dingbats: TM, degrees C, arrows,
                               circled digits, stars, check marks */
    { 0x2e80, 0x2fdf },     /* CJK radicals, Kangxi radicals */
    { 0x3000, 0x303f },     /* CJK symbols and punctuation */
    { 0x3040, 0x30ff },     /* Hiragana, Katakana */
    { 0x3100, 0x312f },     /* Bopomofo */
    { 0x3130, 0x318f },     /* Hangul compatibility jamo */
    { 0x31c0, 0x31ff },     /* CJK strokes, Katakana extension */
    { 0x3200, 0x4dbf },     /* enclosed CJK, compatibility, Extension A */
    { 0x4e00, 0x9fff },     /* CJK Unified Ideographs */
    { 0xac00, 0xd7a3 },     /* Hangul syllables */
    { 0xf900, 0xfaff },     /* CJK compatibility ideographs */
    { 0xfe0f, 0xfe0f },     /* emoji presentation selector */
    { 0xfe30, 0xfe4f },     /* CJK compatibility forms */
    { 0xff01, 0xffef },     /* fullwidth and halfwidth forms */
    { 0x1f300, 0x1f64f },   /* emoji: pictographs, emoticons */
    { 0x1f680, 0x1f6ff },   /* emoji: transport and map */
    { 0x1f900, 0x1f9ff },   /* emoji: supplemental pictographs */
    { 0x20000, 0x3134f }    /* CJK Extensions B .. G */
};


int
cr_foreign_char(const char *s, size_t n, uint32_t *cp)
{
    size_t    i, k, lo, hi, mid;
    uint32_t  c;

    for (i = 0; i < n; i += k) {
        if ((uint8_t) s[i] < 0x80) {
            k = 1;
            continue;
        }

        k = cr_utf8_len(s + i, n - i, &c);
        if (k == 0) {
            k = 1;
            continue;
        }

        lo = 0;
        hi = sizeof(cr_name_chars) / sizeof(cr_name_chars[0]);

        while (lo < hi) {
            mid = lo + (hi - lo) / 2;

            if (c < cr_name_chars[mid][0]) {
                hi = mid;
            } else if (c > cr_name_chars[mid][1]) {
                lo = mid + 1;
            } else {
                break;
            }
        }

        if (lo >= hi) {
            *cp = c;
            return 1;
        }
    }

    return 0;
}


int
cr_time_ok(int64_t t, int tz)
{
    /* t is bounded first, so the sum below cannot overflow. */
    if (tz < -CR_TZ_MAX || tz > CR_TZ_MAX
        || t < -(int64_t) CR_TZ_MAX * 60
        || t > CR_LOCAL_TIME_MAX + (int64_t) CR_TZ_MAX * 60)
    {
        return 0;
    }

    t += (int64_t) tz * 60;

    return t >= 0 && t <= CR_LOCAL_TIME_MAX;
}


void
cr_format_time(char *out, size_t len, int64_t t, int tz)
{
    char      buf[32], *p;
    size_t    n;
    int64_t   secs, y;
    unsigned  m, d, a;

    if (!cr_time_ok(t, tz)) {
        snprintf(out, len, "%lld", (long long) t);
        return;
    }

    secs = cr_local_civil(t, tz, &y, &m, &d);

    /* By hand: snprintf() cost more than the rest of a scan's counting. */
    p = cr_put_digits(buf, (unsigned) y, 4);
    *p++ = '-';
    p = cr_put_digits(p, m, 2);
    *p++ = '-';
    p = cr_put_digits(p, d, 2);
    *p++ = 'T';
    p = cr_put_digits(p, (unsigned) (secs / 3600), 2);
    *p++ = ':';
    p = cr_put_digits(p, (unsigned) (secs / 60 % 60), 2);
    *p++ = ':';
    p = cr_put_digits(p, (unsigned) (secs % 60), 2);

    if (tz == 0) {
        *p++ = 'Z';

    } else {
        a = (unsigned) (tz < 0 ? -tz : tz);
        *p++ = tz < 0 ? '-' : '+';
        p = cr_put_digits(p, a / 60, 2);
        *p++ = ':';
        p = cr_put_digits(p, a % 60, 2);
    }

    n = p - buf;

    if (len == 0) {
        return;
    }

    if (n >= len) {
        n = len - 1;
    }

    memcpy(out, buf, n);
    out[n] = '\0';
}


/*
 * For people, not programs: the day and minute in the brand's zone, as a
 * shopper writes them.  No zone is shown: the directive that sets it names
 * the brand's own (docs/verify.md, "Times on the pages").
 */
void
cr_format_human_time(char *out, size_t len, int64_t t, int tz, int en)
{
    int64_t    secs, y;
    unsigned   m, d;

    static const char  *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

    if (len == 0) {
        return;
    }

    if (!cr_time_ok(t, tz)) {
        snprintf(out, len, "%lld", (long long) t);
        return;
    }

    secs = cr_local_civil(t, tz, &y, &m, &d);

    if (en) {
        snprintf(out, len, "%u %s %04lld, %02u:%02u", d, mon[m - 1],
                 (long long) y, (unsigned) (secs / 3600),
                 (unsigned) (secs / 60 % 60));
    } else {
        snprintf(out, len, "%04lld年%u月%u日 "
                 "%02u:%02u", (long long) y, m, d, (unsigned) (secs / 3600),
                 (unsigned) (secs / 60 % 60));
    }
}


/* The local date of t (valid) in zone tz; returns the second of its day. */
static int64_t
cr_local_civil(int64_t t, int tz, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t  local, days, secs;

    local = t + (int64_t) tz * 60;
    days = local / 86400;
    secs = local % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }

    cr_civil_from_days(days, y, m, d);

    return secs;
}


static char *
cr_put_digits(char *p, unsigned v, int n)
{
    int  i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char) ('0' + v % 10);
        v /= 10;
    }

    return p + n;
}


/* Howard Hinnant's days-from-civil, proleptic Gregorian. */
static int64_t
cr_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


static void
cr_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t   era;
    unsigned  doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned) (z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t) yoe + era * 400 + (*m <= 2);
}
