/*
 * libFuzzer target: cr_gs1_parse_request, the resolver's reading of a
 * request URI (a trailing '/' tolerated, a compressed Digital Link
 * expanded), fed arbitrary bytes.  Whatever the input, it reads only its
 * len bytes and writes at most CR_GS1_CANON_MAX(len); a link it accepts
 * has a GTIN-14 or SSCC-18 with a correct check digit, its pointers are
 * inside the URI it answers for, and that URI, read again, is itself:
 * accepted, not compressed, unchanged (one answer per link).
 *
 * Input: the URI.  It is copied into a buffer of exactly its length, and
 * the output into one of exactly CR_GS1_CANON_MAX(len), so ASan sees any
 * overread or overwrite.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_gs1.h"
#include "cr_valid.h"
#include "fuzz_inside.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             compressed, again;
    char           *buf, *out, *out2;
    size_t          n, n2, klen;
    cr_gs1_rc_t     rc;
    cr_gs1_link_t   dl, dl2;

    buf = malloc(size ? size : 1);
    out = malloc(CR_GS1_CANON_MAX(size));
    if (buf == NULL || out == NULL) {
        free(buf);
        free(out);
        return 0;
    }

    memcpy(buf, data, size);

    rc = cr_gs1_parse_request(buf, size, out, &n, &compressed, &dl);

    if (cr_gs1_rc_name(rc)[0] == 'u') {
        abort();                /* an outcome without a name */
    }

    if (rc == CR_GS1_OK) {
        klen = strlen(dl.key);

        if (n > CR_GS1_CANON_MAX(size)
            || (klen != CR_GS1_GTIN_LEN && klen != CR_GS1_SSCC_LEN)
            || cr_valid_check_digit(dl.key, klen) != NULL
            || (klen == CR_GS1_SSCC_LEN && dl.has != 0))
        {
            abort();
        }

        check_inside(dl.stem, dl.stem_len, out, n);
        check_inside(dl.query, dl.query_len, out, n);
        check_inside(dl.link_type, dl.link_type_len, out, n);

        out2 = malloc(CR_GS1_CANON_MAX(n));
        if (out2 != NULL) {
            rc = cr_gs1_parse_request(out, n, out2, &n2, &again, &dl2);

            if (rc != CR_GS1_OK || again || n2 != n
                || memcmp(out, out2, n) != 0
                || strcmp(dl.key, dl2.key) != 0)
            {
                abort();
            }

            free(out2);
        }
    }

    free(buf);
    free(out);

    return 0;
}
