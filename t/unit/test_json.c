/*
 * cr_json: escaping (every control character, quotes, backslash, HTML,
 * invalid UTF-8, U+2028).
 */

#include <stdio.h>
#include <string.h>

#include "cr_json.h"
#include "tap.h"


static int
escapes_to(const char *in, size_t n, const char *want)
{
    char    out[512];
    size_t  len;

    len = cr_json_escape(NULL, in, n);
    if (len != cr_json_escape(out, in, n) || len >= sizeof(out)) {
        return 0;
    }

    out[len] = '\0';

    if (strcmp(out, want) != 0) {
        tap_diag("got %s, want %s", out, want);
        return 0;
    }

    return 1;
}


static void
test_escape(void)
{
    int       all;
    char      c, want[16];
    unsigned  i;

    tap_ok(escapes_to("plain ASCII", 11, "plain ASCII"), "ASCII as is");
    tap_ok(escapes_to("a\"b\\c", 5, "a\\\"b\\\\c"), "quote and backslash");
    tap_ok(escapes_to("\n\r\t", 3, "\\n\\r\\t"), "\\n \\r \\t");
    tap_ok(escapes_to("<script>&'", 10,
                      "\\u003cscript\\u003e\\u0026\\u0027"),
           "< > & ' escaped (safe in HTML too)");
    tap_ok(escapes_to("春季", 6, "春季"), "Chinese as is (UTF-8)");
    tap_ok(escapes_to("\xe2\x80\xa8\xe2\x80\xa9", 6, "\\u2028\\u2029"),
           "U+2028 and U+2029 escaped");
    tap_ok(escapes_to("a\0b", 3, "a\\u0000b"), "NUL escaped");
    tap_ok(escapes_to("\x7f", 1, "\\u007f"), "DEL escaped");

    all = 1;
    for (i = 1; i < 0x20; i++) {
        if (i == '\n' || i == '\r' || i == '\t') {
            continue;
        }
        c = (char) i;
        snprintf(want, sizeof(want), "\\u%04x", i);
        all &= escapes_to(&c, 1, want);
    }
    tap_ok(all, "every other control character as \\u00XX");

    tap_ok(escapes_to("\xff", 1, "\\ufffd"), "an invalid byte: U+FFFD");
    tap_ok(escapes_to("\xc0\xaf", 2, "\\ufffd\\ufffd"),
           "an overlong sequence: U+FFFD each byte");
    tap_ok(escapes_to("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd"),
           "a UTF-16 surrogate: U+FFFD");
    tap_ok(escapes_to("\xe6\x98", 2, "\\ufffd\\ufffd"),
           "a truncated sequence: U+FFFD");
    tap_ok(escapes_to("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"),
           "a 4-byte character as is");
    tap_ok(cr_json_escape(NULL, "\x01", 1) <= CR_JSON_ESCAPE_MAX,
           "at most CR_JSON_ESCAPE_MAX bytes per input byte");
}


int
main(void)
{
    test_escape();

    return tap_done();
}
