/*
 * code-router mint --gtin and inspect of GS1 Digital Link URLs: the CLI's
 * side of cr_gs1 (docs/gs1.md).
 */

#include <stdio.h>
#include <string.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_gs1.h"


/* QR alphanumeric mode's 45 characters (ISO/IEC 18004): what keeps a
 * printed URL's symbol small. */
static int
cr_qr_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
           || (c != '\0' && strchr(" $%*+-./:", c) != NULL);
}


int
cr_cli_gs1_prefix(const char *url, const char *gtin, const char *lot,
    char *out, size_t size)
{
    int            n;
    char           g14[CR_GS1_GTIN_LEN + 1], enc[CR_GS1_VALUE_ENC_MAX + 1];
    char           probe[CR_GS1_PREFIX_MAX + CR_CODE_LEN + 1];
    size_t         len, host, i;
    const char    *p;
    cr_gs1_rc_t    rc;
    cr_gs1_link_t  dl;

    if (cr_gs1_gtin14(g14, gtin, strlen(gtin)) != 0) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--gtin \"%s\": not a GTIN-8, -12, -13 or -14 "
                            "with a correct check digit", gtin);
    }

    if (lot != NULL && cr_gs1_encode_value(enc, lot, strlen(lot)) < 0) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--lot \"%s\": 1..%d characters of GS1's set "
                            "(AI 82: letters, digits and "
                            "!\"%%&'()*+,-./:;<=>?_)", lot, CR_GS1_VALUE_MAX);
    }

    len = strlen(url);

    if (len && url[len - 1] == '/') {
        len--;                      /* the path below brings its own */
    }

    n = snprintf(out, size, "%.*s/01/%s%s%s/21/", (int) len, url, g14,
                 lot ? "/10/" : "", lot ? enc : "");

    if (n < 0 || (size_t) n >= size) {
        return cr_cli_error("mint", CR_EXIT_USAGE, "--url-prefix is too long");
    }

    /*
     * Upper case for QR alphanumeric mode: the scheme and the host are
     * case-insensitive; a stem and a lot are not, and stay as written.
     */
    p = strstr(out, "://");
    host = p ? (size_t) (p - out) + 3 : 0;

    for (i = 0; i < host + strcspn(out + host, "/"); i++) {
        if (out[i] >= 'a' && out[i] <= 'z') {
            out[i] = (char) (out[i] - 'a' + 'A');
        }
    }

    /* The whole URL must be a Digital Link that cr_gs1 accepts. */
    memcpy(probe, out, (size_t) n);
    memset(probe + n, '0', CR_CODE_LEN);
    rc = cr_gs1_parse_url(probe, (size_t) n + CR_CODE_LEN, &dl);

    if (rc != CR_GS1_OK) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--url-prefix \"%s\" does not make a GS1 Digital "
                            "Link (http(s)://HOST[/STEM]): %s", url,
                            cr_gs1_rc_text(rc));
    }

    for (i = 0; i < (size_t) n && cr_qr_alnum((unsigned char) out[i]); i++) {
        /* void */
    }

    if (i < (size_t) n) {
        fprintf(stderr, "code-router mint: note: '%c' in \"%s\" is outside "
                "QR alphanumeric mode (0-9 A-Z $%%*+-./:): the QR code "
                "will be larger\n", out[i], out);
    }

    return CR_EXIT_OK;
}

