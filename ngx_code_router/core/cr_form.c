/*
 * cr_form: one field of an application/x-www-form-urlencoded body.
 * See cr_form.h for the rules.
 */

#include <string.h>

#include "cr_form.h"


static int cr_form_hex(unsigned char c);
static char cr_form_byte(const char *s, size_t *i);
static cr_form_rc_t cr_form_scan(const char *body, size_t len);
static size_t cr_form_decode(const char *s, size_t n, char *out, size_t cap);
static int cr_form_name_is(const char *s, size_t n, const char *name,
    size_t name_len);


cr_form_rc_t
cr_form_field(const char *body, size_t len, const char *name,
    size_t name_len, char *out, size_t cap, size_t *out_len)
{
    size_t        i, end, eq, vlen;
    const char   *v;
    cr_form_rc_t  rc;

    *out_len = 0;

    if (len > CR_FORM_MAX) {
        return CR_FORM_TOO_LONG;
    }

    rc = cr_form_scan(body, len);
    if (rc != CR_FORM_OK) {
        return rc;
    }

    v = NULL;
    vlen = 0;

    for (i = 0; i < len; i = end + 1) {
        for (end = i; end < len && body[end] != '&'; end++) { /* void */ }

        for (eq = i; eq < end && body[eq] != '='; eq++) { /* void */ }

        if (end == i || !cr_form_name_is(body + i, eq - i, name, name_len)) {
            continue;
        }

        if (v != NULL) {
            return CR_FORM_REPEATED;
        }

        v = (eq < end) ? body + eq + 1 : body + end;
        vlen = (eq < end) ? end - eq - 1 : 0;
    }

    if (v == NULL) {
        return CR_FORM_MISSING;
    }

    /* The body is well formed: the decoded value is the raw length less
     * two bytes a "%XX". */
    if (cr_form_decode(v, vlen, NULL, 0) > cap) {
        return CR_FORM_TOO_LONG;
    }

    *out_len = cr_form_decode(v, vlen, out, cap);

    return CR_FORM_OK;
}


const char *
cr_form_rc_name(cr_form_rc_t rc)
{
    static const char  *names[] = {
        "ok", "too_long", "nul", "bad_escape", "missing", "repeated"
    };

    return (unsigned) rc < sizeof(names) / sizeof(names[0])
           ? names[rc] : "unknown";
}


static int
cr_form_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* The first NUL or bad escape in the body, left to right. */
static cr_form_rc_t
cr_form_scan(const char *body, size_t len)
{
    size_t  i;
    int     hi, lo;

    for (i = 0; i < len; i++) {
        if (body[i] == '\0') {
            return CR_FORM_NUL;
        }

        if (body[i] != '%') {
            continue;
        }

        hi = (i + 1 < len) ? cr_form_hex((unsigned char) body[i + 1]) : -1;
        lo = (i + 2 < len) ? cr_form_hex((unsigned char) body[i + 2]) : -1;

        if (hi < 0 || lo < 0) {
            return CR_FORM_BAD_ESCAPE;
        }

        if (hi == 0 && lo == 0) {
            return CR_FORM_NUL;
        }

        i += 2;
    }

    return CR_FORM_OK;
}


/* The byte that s[*i..] (well formed) encodes; moves *i past it. */
static char
cr_form_byte(const char *s, size_t *i)
{
    char  c;

    c = s[(*i)++];

    if (c == '+') {
        return ' ';
    }

    if (c == '%') {
        c = (char) (cr_form_hex((unsigned char) s[*i]) << 4
                    | cr_form_hex((unsigned char) s[*i + 1]));
        *i += 2;
    }

    return c;
}


/* Decodes s[0..n) (well formed) into out[0..cap); returns the decoded
 * length, which may exceed cap (then only cap bytes are written; with
 * out == NULL nothing is). */
static size_t
cr_form_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t  i, k;
    char    c;

    for (i = 0, k = 0; i < n; k++) {
        c = cr_form_byte(s, &i);

        if (out != NULL && k < cap) {
            out[k] = c;
        }
    }

    return k;
}


/* Is the encoded s[0..n) the decoded name[0..name_len)? */
static int
cr_form_name_is(const char *s, size_t n, const char *name, size_t name_len)
{
    size_t  i, k;

    for (i = 0, k = 0; i < n; k++) {
        if (k >= name_len || name[k] != cr_form_byte(s, &i)) {
            return 0;
        }
    }

    return k == name_len;
}
