/*
 * gs1-parse: the verdict of cr_gs1 on each line of stdin, one line out
 * per line in, for t/25-gs1-oracle.t (compared with digital-link.js's).
 * A line starting with '/' is a request URI (cr_gs1_parse), any other a
 * URL (cr_gs1_parse_url).  Prints the outcome's name; for "ok" also the
 * GTIN and the qualifiers present, tab-separated.
 */

#include <stdio.h>
#include <string.h>

#include "cr_gs1.h"


int
main(void)
{
    char           line[8192];
    size_t         n;
    cr_gs1_rc_t    rc;
    cr_gs1_link_t  dl;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        n = strcspn(line, "\n");
        line[n] = '\0';

        rc = line[0] == '/' ? cr_gs1_parse(line, n, &dl)
                            : cr_gs1_parse_url(line, n, &dl);

        fputs(cr_gs1_rc_name(rc), stdout);

        if (rc == CR_GS1_OK) {
            printf("\tgtin=%s", dl.gtin);

            if (dl.has & CR_GS1_HAS_CPV) {
                printf("\tcpv=%s", dl.cpv);
            }

            if (dl.has & CR_GS1_HAS_LOT) {
                printf("\tlot=%s", dl.lot);
            }

            if (dl.has & CR_GS1_HAS_SERIAL) {
                printf("\tserial=%s", dl.serial);
            }

            if (dl.link_type) {
                printf("\tlinkType=%.*s", (int) dl.link_type_len,
                       dl.link_type);
            }
        }

        putchar('\n');
    }

    return fflush(stdout) == 0 ? 0 : 1;
}
