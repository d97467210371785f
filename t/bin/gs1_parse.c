/*
 * gs1-parse: the verdict of cr_gs1 on each line of stdin, one line out
 * per line in, for t/25-gs1-oracle.t (compared with digital-link.js's).
 * A line starting with '/' is a request URI (cr_gs1_parse), any other a
 * URL (cr_gs1_parse_url).  Prints the outcome's name; for "ok" also the
 * key and the qualifiers present, tab-separated.  With --request, each
 * line is a request URI read as the resolver reads it
 * (cr_gs1_parse_request: a trailing '/' tolerated, a compressed link
 * expanded), and the line also has the URI it answers for (uri=) and
 * compressed=1 if it was; for t/35-gs1-compressed.t.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cr_gs1.h"


int
main(int argc, char **argv)
{
    int            request, compressed;
    char           line[8192], *canon;
    size_t         n, clen;
    cr_gs1_rc_t    rc;
    cr_gs1_link_t  dl;

    request = argc > 1 && strcmp(argv[1], "--request") == 0;
    canon = malloc(CR_GS1_CANON_MAX(sizeof(line)));
    if (canon == NULL) {
        return 1;
    }

    while (fgets(line, sizeof(line), stdin) != NULL) {
        n = strcspn(line, "\n");
        line[n] = '\0';
        compressed = 0;
        clen = 0;

        if (request) {
            rc = cr_gs1_parse_request(line, n, canon, &clen, &compressed,
                                      &dl);
        } else {
            rc = line[0] == '/' ? cr_gs1_parse(line, n, &dl)
                                : cr_gs1_parse_url(line, n, &dl);
        }

        fputs(cr_gs1_rc_name(rc), stdout);

        if (rc == CR_GS1_OK && dl.ai[1] == '0') {
            printf("\tsscc=%s", dl.key);

        } else if (rc == CR_GS1_OK) {
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

        if (rc == CR_GS1_OK && dl.ai[1] == '0' && dl.link_type) {
            printf("\tlinkType=%.*s", (int) dl.link_type_len, dl.link_type);
        }

        if (request && rc == CR_GS1_OK) {
            printf("\turi=%.*s", (int) clen, canon);
        }

        if (compressed) {
            fputs("\tcompressed=1", stdout);
        }

        putchar('\n');
    }

    free(canon);

    return fflush(stdout) == 0 ? 0 : 1;
}
