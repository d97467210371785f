/*
 * cr_json and cr_scans: escaping (every control character, quotes,
 * backslash, HTML, invalid UTF-8, U+2028) and the scan store (merge by
 * max, refusal of another LMDB database).
 */

#define _DEFAULT_SOURCE        /* mkdtemp */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cr_json.h"
#include "cr_scans.h"
#include "cr_store.h"
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


static void
test_scans(void)
{
    int          rc;
    char         dir[] = "/tmp/cr-scans-XXXXXX", path[64], bind[64];
    char         err[512];
    cr_scan_t    v[2], got;
    cr_store_t  *st;
    cr_scans_t  *sc;

    if (mkdtemp(dir) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(path, sizeof(path), "%s/scans.mdb", dir);
    snprintf(bind, sizeof(bind), "%s/brand.mdb", dir);

    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           == 0, "check: a store not yet created is fine");

    rc = cr_scans_open(&sc, path, 1 << 20, 0, err, sizeof(err));
    if (!tap_ok(rc == 0, "open creates the store")) {
        tap_diag("%s", err);
        return;
    }

    tap_ok(cr_scans_get(sc, 1, 5, &got) == CR_SCANS_NOTFOUND,
           "an unknown code: not found");

    v[0] = (cr_scan_t) { 1, 5, 10, 1000 };
    v[1] = (cr_scan_t) { 255, 0xffffffffffULL, 1, 2000 };
    tap_ok(cr_scans_put(sc, v, 2) == 0, "put two");
    tap_ok(cr_scans_get(sc, 1, 5, &got) == 0 && got.count == 10
           && got.first == 1000, "read back: 10 scans since 1000");
    tap_ok(cr_scans_get(sc, 255, 0xffffffffffULL, &got) == 0
           && got.count == 1, "the largest kid and serial");

    v[0] = (cr_scan_t) { 1, 5, 7, 3000 };
    tap_ok(cr_scans_put(sc, v, 1) == 0 && cr_scans_get(sc, 1, 5, &got) == 0
           && got.count == 10 && got.first == 1000,
           "a lower count or later first scan never wins (max merge)");

    v[0] = (cr_scan_t) { 1, 5, 12, 900 };
    tap_ok(cr_scans_put(sc, v, 1) == 0 && cr_scans_get(sc, 1, 5, &got) == 0
           && got.count == 12 && got.first == 900, "a higher count wins");

    cr_scans_close(sc);

    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           == 0, "check: an existing scan store is fine");

    rc = cr_store_open(&st, bind, CR_STORE_CREATE, err, sizeof(err));
    if (rc == 0) {
        (void) cr_store_begin(st);
        (void) cr_store_commit(st, 1);
        cr_store_close(st);
    }

    rc = cr_scans_open(&sc, bind, 0, 0, err, sizeof(err));
    tap_ok(rc != 0 && strstr(err, "binding store") != NULL,
           "a binding store is refused as a scan store: %s", err);

    snprintf(path, sizeof(path), "%s/none/scans.mdb", dir);
    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           != 0 && strstr(err, "No such file") != NULL,
           "check: a missing directory is refused: %s", err);

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    if (system(path) != 0) {
        tap_diag("could not remove %s", dir);
    }
}


int
main(void)
{
    test_escape();
    test_scans();

    return tap_done();
}
