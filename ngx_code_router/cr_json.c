/*
 * cr_json: JSON string escaping.  See cr_json.h.
 */

#include <stdint.h>
#include <string.h>

#include "cr_json.h"


static size_t cr_json_put(char *out, const char *s, size_t n);
static size_t cr_json_u(char *out, unsigned c);
static size_t cr_utf8_len(const unsigned char *s, size_t n);


size_t
cr_json_escape(char *out, const char *in, size_t n)
{
    size_t                i, k, len;
    unsigned              c;
    const unsigned char  *s;

    s = (const unsigned char *) in;
    len = 0;

    for (i = 0; i < n; i += k) {
        c = s[i];
        k = 1;

        switch (c) {
        case '"':
            len += cr_json_put(out ? out + len : NULL, "\\\"", 2);
            continue;
        case '\\':
            len += cr_json_put(out ? out + len : NULL, "\\\\", 2);
            continue;
        case '\n':
            len += cr_json_put(out ? out + len : NULL, "\\n", 2);
            continue;
        case '\r':
            len += cr_json_put(out ? out + len : NULL, "\\r", 2);
            continue;
        case '\t':
            len += cr_json_put(out ? out + len : NULL, "\\t", 2);
            continue;
        case '<': case '>': case '&': case '\'': case 0x7f:
            len += cr_json_u(out ? out + len : NULL, c);
            continue;
        }

        if (c < 0x20) {
            len += cr_json_u(out ? out + len : NULL, c);
            continue;
        }

        if (c < 0x80) {
            if (out) {
                out[len] = (char) c;
            }
            len++;
            continue;
        }

        k = cr_utf8_len(s + i, n - i);

        if (k == 0) {
            len += cr_json_u(out ? out + len : NULL, 0xfffd);
            k = 1;
            continue;
        }

        /* U+2028, U+2029: E2 80 A8/A9 */
        if (k == 3 && c == 0xe2 && s[i + 1] == 0x80
            && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9))
        {
            len += cr_json_u(out ? out + len : NULL,
                             0x2000 | (s[i + 2] == 0xa8 ? 0x28 : 0x29));
            continue;
        }

        len += cr_json_put(out ? out + len : NULL, (const char *) s + i, k);
    }

    return len;
}


static size_t
cr_json_put(char *out, const char *s, size_t n)
{
    if (out) {
        memcpy(out, s, n);
    }

    return n;
}


static size_t
cr_json_u(char *out, unsigned c)
{
    static const char  hex[] = "0123456789abcdef";

    if (out) {
        out[0] = '\\';
        out[1] = 'u';
        out[2] = hex[(c >> 12) & 0xf];
        out[3] = hex[(c >> 8) & 0xf];
        out[4] = hex[(c >> 4) & 0xf];
        out[5] = hex[c & 0xf];
    }

    return 6;
}


/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF), or 0. */
static size_t
cr_utf8_len(const unsigned char *s, size_t n)
{
    size_t    k, i;
    uint32_t  c, min;

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

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return k;
}
