/*
 * libFuzzer target: cr_json_escape() fed any bytes.  Oracles: the output
 * fits CR_JSON_ESCAPE_MAX per input byte; it is valid UTF-8 and holds no
 * control character, no bare quote or backslash and no < > & ' (so it is
 * safe in a JSON string and in an HTML <script>); and decoding its escapes
 * gives back the input, with each invalid UTF-8 byte as U+FFFD.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_json.h"


static size_t
utf8_put(uint8_t *p, unsigned c)
{
    if (c < 0x80) {
        p[0] = (uint8_t) c;
        return 1;
    }

    if (c < 0x800) {
        p[0] = (uint8_t) (0xc0 | c >> 6);
        p[1] = (uint8_t) (0x80 | (c & 0x3f));
        return 2;
    }

    p[0] = (uint8_t) (0xe0 | c >> 12);
    p[1] = (uint8_t) (0x80 | ((c >> 6) & 0x3f));
    p[2] = (uint8_t) (0x80 | (c & 0x3f));
    return 3;
}


/* Decodes out[0..n) as the inside of a JSON string; aborts on anything
 * the oracle forbids.  Returns the decoded length. */
static size_t
decode(const uint8_t *s, size_t n, uint8_t *to)
{
    size_t    i, k;
    unsigned  c, j;

    k = 0;

    for (i = 0; i < n; i++) {
        c = s[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>'
            || c == '&' || c == '\'')
        {
            abort();
        }

        if (c != '\\') {
            to[k++] = (uint8_t) c;
            continue;
        }

        if (++i == n) {
            abort();
        }

        switch (s[i]) {
        case '"':
            to[k++] = '"';
            break;
        case '\\':
            to[k++] = '\\';
            break;
        case 'n':
            to[k++] = '\n';
            break;
        case 'r':
            to[k++] = '\r';
            break;
        case 't':
            to[k++] = '\t';
            break;
        case 'u':
            if (i + 4 >= n) {
                abort();
            }
            c = 0;
            for (j = 1; j <= 4; j++) {
                c <<= 4;
                if (s[i + j] >= '0' && s[i + j] <= '9') {
                    c |= s[i + j] - '0';
                } else if (s[i + j] >= 'a' && s[i + j] <= 'f') {
                    c |= s[i + j] - 'a' + 10;
                } else {
                    abort();
                }
            }
            i += 4;
            k += utf8_put(to + k, c);
            break;
        default:
            abort();
        }
    }

    return k;
}


/* The input with each byte that does not start a valid UTF-8 sequence
 * replaced by U+FFFD, as cr_json_escape() promises. */
static size_t
expected(const uint8_t *s, size_t n, uint8_t *to)
{
    size_t    i, k, len, j;
    unsigned  c, min;

    k = 0;

    for (i = 0; i < n; i += len) {
        c = s[i];
        len = 1;

        if (c < 0x80) {
            to[k++] = (uint8_t) c;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            c &= 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            c &= 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            c &= 0x07;
            min = 0x10000;
        } else {
            k += utf8_put(to + k, 0xfffd);
            continue;
        }

        for (j = 1; j < len && i + j < n && (s[i + j] & 0xc0) == 0x80; j++) {
            c = c << 6 | (s[i + j] & 0x3f);
        }

        if (j < len || c < min || c > 0x10ffff
            || (c >= 0xd800 && c <= 0xdfff))
        {
            k += utf8_put(to + k, 0xfffd);
            len = 1;
            continue;
        }

        memcpy(to + k, s + i, len);
        k += len;
    }

    return k;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char     *in, *out;
    size_t    len, dlen, elen;
    uint8_t  *dec, *exp;

    in = malloc(size + 1);
    out = malloc(size * CR_JSON_ESCAPE_MAX + 1);
    dec = malloc(size * 3 + 1);
    exp = malloc(size * 3 + 1);

    if (in && out && dec && exp) {
        memcpy(in, data, size);

        len = cr_json_escape(out, in, size);
        if (len > size * CR_JSON_ESCAPE_MAX
            || len != cr_json_escape(NULL, in, size))
        {
            abort();
        }

        dlen = decode((uint8_t *) out, len, dec);
        elen = expected(data, size, exp);

        if (dlen != elen || memcmp(dec, exp, dlen) != 0) {
            abort();
        }
    }

    free(in);
    free(out);
    free(dec);
    free(exp);

    return 0;
}
