/*
 * Unit tests of cr_gs1, TAP on stdout: known answers for the Digital Link
 * parser (every outcome, every field), the GTIN-14 padding, the value
 * encoder and the query decoder.  Examples transcribed from the GS1
 * Digital Link standard use its GTINs 09506000134352 and 09520123456788.
 */

#include <stdio.h>
#include <string.h>

#include "cr_gs1.h"
#include "tap.h"


typedef struct {
    const char   *in;
    cr_gs1_rc_t   rc;
    const char   *gtin;         /* the fields, for CR_GS1_OK */
    const char   *cpv;
    const char   *lot;
    const char   *serial;
    const char   *stem;
    const char   *link_type;
} kat_t;


/* An input refused with rc: no fields. */
#define BAD(in, rc)  { in, rc, NULL, NULL, NULL, NULL, NULL, NULL }


static const kat_t  kats[] = {
    /* Valid links, full URLs and request URIs. */
    { "https://id.gs1.org/01/09506000134352", CR_GS1_OK,
      "09506000134352", NULL, NULL, NULL, "", NULL },
    { "https://example.com/01/09520123456788/10/ABC1/21/12345", CR_GS1_OK,
      "09520123456788", NULL, "ABC1", "12345", "", NULL },
    { "HTTPS://C.BRAND.CN/01/06901234567892/10/L2612/21/7Q3M0ZC4",
      CR_GS1_OK, "06901234567892", NULL, "L2612", "7Q3M0ZC4", "", NULL },
    { "/01/09506000134352/22/2A/10/AB-123/21/x.y_z", CR_GS1_OK,
      "09506000134352", "2A", "AB-123", "x.y_z", "", NULL },
    { "/a/b/01/09506000134352/21/01", CR_GS1_OK,
      "09506000134352", NULL, NULL, "01", "/a/b", NULL },
    { "http://[::1]:8080/p/01/09506000134352", CR_GS1_OK,
      "09506000134352", NULL, NULL, NULL, "/p", NULL },
    /* A value "01": the rightmost key with whole pairs after it wins. */
    { "/01/09506000134352/10/01/09520123456788", CR_GS1_OK,
      "09520123456788", NULL, NULL, NULL, "/01/09506000134352/10", NULL },
    /* Percent-encoding: the 17 characters that need it, either hex case. */
    { "/01/09506000134352/10/A%2FB%2fC%21%25", CR_GS1_OK,
      "09506000134352", NULL, "A/B/C!%", NULL, "", NULL },
    { "/01/09506000134352/10/%22%26%27%28%29%2A%2B%2C%3A%3B%3C%3D%3E%3F",
      CR_GS1_OK, "09506000134352", NULL, "\"&'()*+,:;<=>?", NULL, "",
      NULL },
    { "/01/09506000134352/21/12345678901234567890", CR_GS1_OK,
      "09506000134352", NULL, NULL, "12345678901234567890", "", NULL },
    { "/01/09506000134352/21/%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F"
      "%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F", CR_GS1_OK,
      "09506000134352", NULL, NULL, "////////////////////", "", NULL },
    /* The query: linkType is the first parameter so named, raw. */
    { "/01/09506000134352?linkType=gs1:pip", CR_GS1_OK,
      "09506000134352", NULL, NULL, NULL, "", "gs1:pip" },
    { "/01/09506000134352?a=1;linkType=gs1%3AcertificationInfo&linkType=x",
      CR_GS1_OK, "09506000134352", NULL, NULL, NULL, "",
      "gs1%3AcertificationInfo" },
    { "/01/09506000134352?xlinkType=a&linkType=", CR_GS1_OK,
      "09506000134352", NULL, NULL, NULL, "", "" },
    { "/01/09506000134352?17=261231&utm=qr/a?b", CR_GS1_OK,
      "09506000134352", NULL, NULL, NULL, "", NULL },

    /* Each way to be wrong. */
    BAD("ftp://example.com/01/09506000134352", CR_GS1_BAD_URL),
    BAD("https:/example.com/01/09506000134352", CR_GS1_BAD_URL),
    BAD("https:///01/09506000134352", CR_GS1_BAD_URL),
    BAD("https://user@example.com/01/09506000134352", CR_GS1_BAD_URL),
    BAD("https://[zz]/01/09506000134352", CR_GS1_BAD_URL),
    BAD("https://example.com:8x/01/09506000134352", CR_GS1_BAD_URL),
    BAD("https://example.com", CR_GS1_NO_GTIN),
    BAD("01/09506000134352", CR_GS1_BAD_PATH),
    BAD("", CR_GS1_BAD_PATH),
    BAD("/01/09506000134352/", CR_GS1_BAD_PATH),
    BAD("/01/09506000134352/10//21/X", CR_GS1_BAD_PATH),
    BAD("//01/09506000134352", CR_GS1_BAD_PATH),
    BAD("/a%zz/01/09506000134352", CR_GS1_BAD_PATH),
    BAD("/a\"b/01/09506000134352", CR_GS1_BAD_PATH),
    BAD("/", CR_GS1_BAD_PATH),
    BAD("/01", CR_GS1_NO_GTIN),
    BAD("/01/09506000134352/10", CR_GS1_NO_GTIN),
    BAD("/414/9506000134352", CR_GS1_NO_GTIN),
    BAD("/gtin/09506000134352", CR_GS1_NO_GTIN),
    BAD("/01/9506000134352", CR_GS1_GTIN_DIGITS),
    BAD("/01/95060001", CR_GS1_GTIN_DIGITS),
    BAD("/01/0950600013435x", CR_GS1_GTIN_DIGITS),
    BAD("/01/009506000134352", CR_GS1_GTIN_DIGITS),
    BAD("/01/09506000134353", CR_GS1_GTIN_CHECK),
    BAD("/01/09506000134352/235/X", CR_GS1_BAD_QUALIFIER),
    BAD("/01/09506000134352/17/261231", CR_GS1_BAD_QUALIFIER),
    BAD("/01/09506000134352/21/A/10/B", CR_GS1_QUALIFIER_ORDER),
    BAD("/01/09506000134352/10/A/22/B", CR_GS1_QUALIFIER_ORDER),
    BAD("/01/09506000134352/10/A/10/B", CR_GS1_QUALIFIER_ORDER),
    BAD("/01/09506000134352/21/A/21/B", CR_GS1_QUALIFIER_ORDER),
    BAD("/01/09506000134352/10/A!B", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A\"B", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A~B", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A%41B", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A%2DB", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A%7EB", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A%20B", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A%2", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/A%G1", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/10/\xe6\x89\xb9", CR_GS1_VALUE_CHAR),
    BAD("/01/09506000134352/21/123456789012345678901", CR_GS1_VALUE_LENGTH),
    BAD("/01/09506000134352/22/%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F"
      "%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F", CR_GS1_VALUE_LENGTH),
    BAD("/01/09506000134352?", CR_GS1_BAD_QUERY),
    BAD("/01/09506000134352?linkType", CR_GS1_BAD_QUERY),
    BAD("/01/09506000134352?=x", CR_GS1_BAD_QUERY),
    BAD("/01/09506000134352?a=%zz", CR_GS1_BAD_QUERY),
    BAD("/01/09506000134352?a=b c", CR_GS1_BAD_QUERY),
    BAD("/01/09506000134352?a=b#c", CR_GS1_BAD_QUERY),
    BAD("/01/09506000134352?a=\"", CR_GS1_BAD_QUERY),
};


static int
same(const char *want, const char *got, size_t len)
{
    if (want == NULL) {
        return got == NULL;
    }

    return got != NULL && strlen(want) == len && memcmp(want, got, len) == 0;
}


static void
test_kats(void)
{
    size_t          i;
    cr_gs1_rc_t     rc;
    const kat_t    *k;
    cr_gs1_link_t   dl;

    for (i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        k = &kats[i];
        rc = k->in[0] == '/' || k->in[0] == '\0' || k->in[0] == '0'
             ? cr_gs1_parse(k->in, strlen(k->in), &dl)
             : cr_gs1_parse_url(k->in, strlen(k->in), &dl);

        if (!tap_ok(rc == k->rc, "%s: %s", k->in, cr_gs1_rc_name(k->rc))) {
            tap_diag("got %s", cr_gs1_rc_name(rc));
            continue;
        }

        if (rc != CR_GS1_OK) {
            continue;
        }

        tap_ok(strcmp(dl.gtin, k->gtin) == 0
               && same(k->cpv, (dl.has & CR_GS1_HAS_CPV) ? dl.cpv : NULL,
                       dl.cpv_len)
               && same(k->lot, (dl.has & CR_GS1_HAS_LOT) ? dl.lot : NULL,
                       dl.lot_len)
               && same(k->serial,
                       (dl.has & CR_GS1_HAS_SERIAL) ? dl.serial : NULL,
                       dl.serial_len)
               && same(k->stem, dl.stem, dl.stem_len)
               && same(k->link_type, dl.link_type, dl.link_type_len),
               "%s: its fields", k->in);
    }
}


static void
test_text(void)
{
    int  rc;

    for (rc = CR_GS1_OK; rc <= CR_GS1_BAD_COMPRESSED; rc++) {
        tap_ok(strcmp(cr_gs1_rc_name(rc), "unknown") != 0
               && strcmp(cr_gs1_rc_text(rc), "unknown") != 0,
               "outcome %d has a name (%s) and a text", rc,
               cr_gs1_rc_name(rc));
    }

    tap_ok(strcmp(cr_gs1_rc_name(CR_GS1_BAD_COMPRESSED + 1), "unknown") == 0,
           "an outcome past the last is unknown");
}


static void
test_gtin14(void)
{
    char  out[CR_GS1_GTIN_LEN + 1];

    tap_ok(cr_gs1_gtin14(out, "9506000134352", 13) == 0
           && strcmp(out, "09506000134352") == 0, "GTIN-13 zero-padded");
    tap_ok(cr_gs1_gtin14(out, "614141123452", 12) == 0
           && strcmp(out, "00614141123452") == 0, "GTIN-12 zero-padded");
    tap_ok(cr_gs1_gtin14(out, "95011011", 8) == 0
           && strcmp(out, "00000095011011") == 0, "GTIN-8 zero-padded");
    tap_ok(cr_gs1_gtin14(out, "09520123456788", 14) == 0
           && strcmp(out, "09520123456788") == 0, "GTIN-14 as it is");
    tap_ok(cr_gs1_gtin14(out, "9506000134353", 13) == -1,
           "a wrong check digit is refused");
    tap_ok(cr_gs1_gtin14(out, "950600013435", 11) == -1,
           "11 digits are refused");
}


static void
test_encode(void)
{
    int   n;
    char  out[CR_GS1_VALUE_ENC_MAX + 1];

    n = cr_gs1_encode_value(out, "AB-12.x_Z", 9);
    tap_ok(n == 9 && strcmp(out, "AB-12.x_Z") == 0, "plain characters kept");
    n = cr_gs1_encode_value(out, "A/B!%\"", 6);
    tap_ok(n == 14 && strcmp(out, "A%2FB%21%25%22") == 0,
           "the others as %XX, upper-case hex");
    n = cr_gs1_encode_value(out, "????????????????????", 20);
    tap_ok(n == CR_GS1_VALUE_ENC_MAX && strlen(out) == 60,
           "20 escaped characters fill the buffer");
    tap_ok(cr_gs1_encode_value(out, "", 0) == -1, "empty refused");
    tap_ok(cr_gs1_encode_value(out, "123456789012345678901", 21) == -1,
           "21 characters refused");
    tap_ok(cr_gs1_encode_value(out, "A B", 3) == -1, "a space refused");
    tap_ok(cr_gs1_encode_value(out, "A~B", 3) == -1, "a tilde refused");
    tap_ok(cr_gs1_encode_value(out, "\xe6\x89\xb9", 3) == -1,
           "non-ASCII refused");
}


/* Every encoded value parses back to itself. */
static void
test_round_trip(void)
{
    int            c, n, bad;
    char           v[2], enc[CR_GS1_VALUE_ENC_MAX + 1], uri[128];
    cr_gs1_link_t  dl;

    bad = 0;

    for (c = 1; c < 256; c++) {
        v[0] = (char) c;
        n = cr_gs1_encode_value(enc, v, 1);

        if (n < 0) {
            continue;
        }

        snprintf(uri, sizeof(uri), "/01/09506000134352/10/%s", enc);

        if (cr_gs1_parse(uri, strlen(uri), &dl) != CR_GS1_OK
            || dl.lot_len != 1 || dl.lot[0] != (char) c)
        {
            tap_diag("character %d: %s", c, uri);
            bad++;
        }
    }

    tap_ok(bad == 0, "each AI 82 character encodes and parses back");
}


static void
test_decode(void)
{
    int   n;
    char  out[16];

    n = cr_gs1_decode(out, sizeof(out), "gs1%3Apip+x", 11);
    tap_ok(n == 9 && memcmp(out, "gs1:pip+x", 9) == 0, "decoded");
    tap_ok(cr_gs1_decode(out, sizeof(out), "a%2", 3) == -1,
           "a cut escape refused");
    tap_ok(cr_gs1_decode(out, 4, "abcde", 5) == -1, "too long refused");
    tap_ok(cr_gs1_decode(out, 4, "abcd", 4) == 4, "exactly fits");
}


/* The code in a printed text, as inspect and the loader read it. */
static void
test_code_of(void)
{
    size_t          i, n;
    const char     *code;
    cr_gs1_rc_t     rc;
    cr_gs1_link_t   dl;

    static const struct {
        const char   *text;
        cr_gs1_rc_t   rc;
        const char   *code;         /* NULL: none */
    } cases[] = {
        { "1K7M3Q9ZX4T2R8B5C0", CR_GS1_NO_GTIN, "1K7M3Q9ZX4T2R8B5C0" },
        { "HTTPS://C.BRAND.CN/1K7M3Q9ZX4T2R8B5C0", CR_GS1_NO_GTIN,
          "1K7M3Q9ZX4T2R8B5C0" },
        { "https://c.brand.cn/a/b/1k7m", CR_GS1_NO_GTIN, "1k7m" },
        { "https://c.brand.cn/", CR_GS1_BAD_PATH, NULL },
        { "ftp://x/01/06901234567892/21/AB", CR_GS1_NO_GTIN, "AB" },
        { "HTTPS://C.BRAND.CN/01/06901234567892/21/1K7M3Q9ZX4T2R8B5C0",
          CR_GS1_OK, "1K7M3Q9ZX4T2R8B5C0" },
        { "HTTPS://C.BRAND.CN/01/06901234567892/10/L1", CR_GS1_OK, NULL },
        { "HTTPS://C.BRAND.CN/01/06901234567893/21/AB", CR_GS1_GTIN_CHECK,
          NULL },
        { "", CR_GS1_NO_GTIN, "" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        code = "unset";
        n = 99;
        rc = cr_gs1_code_of(cases[i].text, strlen(cases[i].text), &dl,
                            &code, &n);

        tap_ok(rc == cases[i].rc
               && (cases[i].code == NULL
                   ? code == NULL
                   : code != NULL && n == strlen(cases[i].code)
                     && memcmp(code, cases[i].code, n) == 0),
               "code of \"%s\": %s", cases[i].text,
               cases[i].code ? cases[i].code : "(none)");
    }
}


int
main(void)
{
    test_kats();
    test_code_of();
    test_text();
    test_gtin14();
    test_encode();
    test_round_trip();
    test_decode();

    return tap_done();
}
