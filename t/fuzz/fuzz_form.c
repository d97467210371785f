/*
 * libFuzzer target: cr_form_field() on any body, for the name "pin" and
 * for a name taken from the input.  Oracle: a second, deliberately plain
 * reader (decode every field into a list first, then look) must give the
 * same code and value; a decoded value holds no NUL.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_form.h"


static int
hex(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}


/* Decodes s[0..n) to d; -1 bad escape, -2 NUL, else the length.  Scans
 * the whole input as cr_form does: the first problem wins. */
static long
decode(const uint8_t *s, size_t n, uint8_t *d)
{
    size_t  i, k = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == 0) return -2;
        if (s[i] == '+') { d[k++] = ' '; continue; }
        if (s[i] != '%') { d[k++] = s[i]; continue; }
        if (i + 2 >= n || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return -1;
        d[k] = (uint8_t) (hex(s[i + 1]) * 16 + hex(s[i + 2]));
        if (d[k] == 0) return -2;
        k++;
        i += 2;
    }

    return (long) k;
}


static cr_form_rc_t
plain(const uint8_t *body, size_t len, const uint8_t *name, size_t nlen,
    size_t cap, uint8_t *val, size_t *vlen)
{
    static uint8_t  dn[CR_FORM_MAX], dv[CR_FORM_MAX];
    size_t          i, end, eq, found = 0;
    long            a, b;

    if (len > CR_FORM_MAX) return CR_FORM_TOO_LONG;

    a = decode(body, len, dn);       /* the whole body's first error */
    if (a == -1) return CR_FORM_BAD_ESCAPE;
    if (a == -2) return CR_FORM_NUL;

    for (i = 0; i <= len; i = end + 1) {
        end = i;
        while (end < len && body[end] != '&') end++;
        if (end == i) continue;
        eq = i;
        while (eq < end && body[eq] != '=') eq++;
        a = decode(body + i, eq - i, dn);
        if ((size_t) a != nlen || memcmp(dn, name, nlen) != 0) continue;
        b = (eq < end) ? decode(body + eq + 1, end - eq - 1, dv) : 0;
        if (found++) return CR_FORM_REPEATED;
        memcpy(val, dv, (size_t) b);
        *vlen = (size_t) b;
    }

    if (!found) return CR_FORM_MISSING;
    if (*vlen > cap) return CR_FORM_TOO_LONG;
    return CR_FORM_OK;
}


static void
check(const uint8_t *body, size_t len, const uint8_t *name, size_t nlen,
    size_t cap)
{
    static char     out[CR_FORM_MAX];
    static uint8_t  want[CR_FORM_MAX];
    size_t          n, wn = 0;
    cr_form_rc_t    rc, wrc;

    rc = cr_form_field((const char *) body, len, (const char *) name, nlen,
                       out, cap, &n);
    wrc = plain(body, len, name, nlen, cap, want, &wn);

    if (rc != wrc) abort();
    if (rc != CR_FORM_OK) {
        if (n != 0) abort();
        return;
    }
    if (n != wn || n > cap || memcmp(out, want, n) != 0) abort();
    if (memchr(out, 0, n) != NULL) abort();
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t  nlen;

    check(data, size, (const uint8_t *) "pin", 3, 12);
    check(data, size, (const uint8_t *) "pin", 3, CR_FORM_MAX);

    /* First byte: a name length; the name follows, then the body. */
    if (size > 0) {
        nlen = data[0] % 8;
        if (nlen <= size - 1) {
            check(data + 1 + nlen, size - 1 - nlen, data + 1, nlen,
                  data[0] >> 3);
        }
    }

    return 0;
}
