/*
 * cr_valid: see cr_valid.h.
 */

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
static int cr_excel_exponent(const char *s, size_t n);


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
    if (cr_excel_exponent(s, n)) {
        return "is a number in Excel's scientific notation, its last "
               "digits lost: format the column as text in Excel (Format "
               "Cells, Text), type the GTINs again, and save";
    }

    if (n != 8 && n != 12 && n != 13 && n != 14) {
        return "must be 8, 12, 13 or 14 digits";
    }

    return cr_valid_check_digit(s, n);
}


const char *
cr_valid_check_digit(const char *s, size_t n)
{
    size_t    i;
    unsigned  sum, w;

    if (n == 0) {
        return "must be digits only";
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
