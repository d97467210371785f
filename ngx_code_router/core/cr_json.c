/*
 * cr_json: JSON string escaping.  See cr_json.h.
 */

#include <stdint.h>
#include <string.h>

#include "cr_json.h"
#include "cr_valid.h"


static size_t cr_json_put(char *out, const char *s, size_t n);
static size_t cr_json_u(char *out, unsigned c);


size_t
cr_json_escape(char *out, const char *in, size_t n)
{
    size_t                i, k, len;
    uint32_t              cp;
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

        k = cr_utf8_len((const char *) s + i, n - i, &cp);

        if (k == 0) {
            len += cr_json_u(out ? out + len : NULL, 0xfffd);
            k = 1;
            continue;
        }

        if (cp == 0x2028 || cp == 0x2029) {
            len += cr_json_u(out ? out + len : NULL, cp);
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
