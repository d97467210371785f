/*
 * cr_form: the pin field of a form body -- every rule of cr_form.h, each
 * error code, and the order in which errors are found.
 */

#include <string.h>

#include "cr_form.h"
#include "tap.h"


static void
expect(const char *body, size_t len, const char *name, size_t cap,
    cr_form_rc_t want, const char *value, size_t vlen, const char *what)
{
    char          out[2048];
    size_t        n;
    cr_form_rc_t  rc;

    n = 99;
    rc = cr_form_field(body, len, name, strlen(name), out, cap, &n);

    if (!tap_ok(rc == want
                && (rc != CR_FORM_OK ? n == 0
                                     : n == vlen && memcmp(out, value, n) == 0),
                "%s: %s", what, cr_form_rc_name(want)))
    {
        tap_diag("got %s, %zu bytes", cr_form_rc_name(rc), n);
    }
}

#define S(s)  s, sizeof(s) - 1


int
main(void)
{
    char    big[CR_FORM_MAX + 2];
    size_t  i;

    expect(S("pin=12345678"), "pin", 64, CR_FORM_OK, S("12345678"), "plain");
    expect(S("a=1&pin=0042&b=2"), "pin", 64, CR_FORM_OK, S("0042"),
           "among others");
    expect(S("pin=1+2%2B3"), "pin", 64, CR_FORM_OK, S("1 2+3"),
           "'+' is a space, %2B a plus");
    expect(S("p%69n=7"), "pin", 64, CR_FORM_OK, S("7"), "escaped name");
    expect(S("pin=%4a%4A"), "pin", 64, CR_FORM_OK, S("JJ"), "hex either case");
    expect(S("pin=%EF%BC%91"), "pin", 64, CR_FORM_OK, S("\xef\xbc\x91"),
           "UTF-8 bytes kept as bytes");
    expect(S("pin="), "pin", 64, CR_FORM_OK, S(""), "empty value");
    expect(S("pin"), "pin", 64, CR_FORM_OK, S(""), "name alone");
    expect(S("&&pin=1&&"), "pin", 64, CR_FORM_OK, S("1"), "empty fields");
    expect(S("pin=a=b"), "pin", 64, CR_FORM_OK, S("a=b"), "'=' in a value");
    expect(S("PIN=1"), "pin", 64, CR_FORM_MISSING, S(""), "case-sensitive");
    expect(S("pins=1&pi=2"), "pin", 64, CR_FORM_MISSING, S(""),
           "prefix and longer names");
    expect(S(""), "pin", 64, CR_FORM_MISSING, S(""), "empty body");
    expect(S("x=pin"), "pin", 64, CR_FORM_MISSING, S(""), "as a value");
    expect(S("pin=1&pin=1"), "pin", 64, CR_FORM_REPEATED, S(""),
           "repeated, same value");
    expect(S("pin=1&p%69n=2"), "pin", 64, CR_FORM_REPEATED, S(""),
           "repeated, one escaped");
    expect(S("pin&pin=2"), "pin", 64, CR_FORM_REPEATED, S(""),
           "repeated, one without value");
    expect(S("pin=12\0"), "pin", 64, CR_FORM_NUL, S(""), "raw NUL");
    expect(S("pin=12%00"), "pin", 64, CR_FORM_NUL, S(""), "%00");
    expect(S("x=%00&pin=1"), "pin", 64, CR_FORM_NUL, S(""),
           "NUL in another field");
    expect(S("pin=1%"), "pin", 64, CR_FORM_BAD_ESCAPE, S(""), "'%' at end");
    expect(S("pin=1%4"), "pin", 64, CR_FORM_BAD_ESCAPE, S(""), "one digit");
    expect(S("pin=%G1"), "pin", 64, CR_FORM_BAD_ESCAPE, S(""), "not hex");
    expect(S("x=%zz&pin=1"), "pin", 64, CR_FORM_BAD_ESCAPE, S(""),
           "bad escape in another field");
    expect(S("pin=1%zz\0"), "pin", 64, CR_FORM_BAD_ESCAPE, S(""),
           "first error wins: escape before NUL");
    expect(S("pin=\0%zz"), "pin", 64, CR_FORM_NUL, S(""),
           "first error wins: NUL before escape");
    expect(S("pin=1%zz&pin=2"), "pin", 64, CR_FORM_BAD_ESCAPE, S(""),
           "a bad body before repetition");
    expect(S("pin=123456789"), "pin", 8, CR_FORM_TOO_LONG, S(""),
           "value over the buffer");
    expect(S("pin=%31%32%33%34%35%36%37%38"), "pin", 8, CR_FORM_OK,
           S("12345678"), "escaped value fits decoded");
    expect(S("pin=123456789&pin=1"), "pin", 8, CR_FORM_REPEATED, S(""),
           "repetition before length");

    memset(big, 'a', sizeof(big));
    memcpy(big, "pin=1&x=", 8);
    expect(big, CR_FORM_MAX, "pin", 64, CR_FORM_OK, S("1"),
           "a body of CR_FORM_MAX bytes");
    expect(big, CR_FORM_MAX + 1, "pin", 64, CR_FORM_TOO_LONG, S(""),
           "a body one byte over CR_FORM_MAX");

    for (i = 0; i < sizeof(big); i++) {
        big[i] = (i % 3 == 0) ? '%' : '0';
    }
    expect(big, CR_FORM_MAX - 1, "pin", 64, CR_FORM_NUL, S(""),
           "all %00");

    tap_ok(strcmp(cr_form_rc_name((cr_form_rc_t) 77), "unknown") == 0,
           "an unknown rc has a name");

    return tap_done();
}
