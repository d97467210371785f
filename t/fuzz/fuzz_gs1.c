/*
 * libFuzzer target: the GS1 Digital Link parser (cr_gs1) fed arbitrary
 * request URIs and URLs.  Whatever the input, the parser reads only its
 * len bytes, and a link it accepts obeys cr_gs1.h: a GTIN of 14 digits
 * with a correct check digit (or an SSCC of 18, alone), values of 1..20
 * AI 82 characters that encode and parse back to themselves, pointers
 * inside the input.
 *
 * Input: a flags byte (bit 0: parse as a URL), then the URI.  The URI is
 * copied into a buffer of exactly its length so ASan sees any overread.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_gs1.h"
#include "cr_valid.h"
#include "fuzz_inside.h"


static void
check_value(const char *v, size_t len, unsigned has, unsigned bit)
{
    char           enc[CR_GS1_VALUE_ENC_MAX + 1], uri[128];
    int            n;
    cr_gs1_link_t  dl;

    if (!(has & bit)) {
        return;
    }

    if (len == 0 || len > CR_GS1_VALUE_MAX || strlen(v) != len) {
        abort();
    }

    n = cr_gs1_encode_value(enc, v, len);
    if (n < 0) {
        abort();            /* a value outside AI 82 was accepted */
    }

    memcpy(uri, "/01/09506000134352/10/", 22);
    memcpy(uri + 22, enc, (size_t) n);

    if (cr_gs1_parse(uri, 22 + (size_t) n, &dl) != CR_GS1_OK
        || dl.lot_len != len || memcmp(dl.lot, v, len) != 0)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *buf, out[64];
    size_t          len;
    cr_gs1_rc_t     rc;
    cr_gs1_link_t   dl;

    if (size < 1) {
        return 0;
    }

    len = size - 1;
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return 0;
    }

    memcpy(buf, data + 1, len);

    rc = (data[0] & 1) ? cr_gs1_parse_url(buf, len, &dl)
                       : cr_gs1_parse(buf, len, &dl);

    if (cr_gs1_rc_name(rc)[0] == 'u') {
        abort();            /* an outcome without a name */
    }

    if (rc == CR_GS1_OK && strcmp(dl.ai, "00") == 0) {
        /* An SSCC: 18 digits with their check digit, nothing else. */
        if (strlen(dl.key) != CR_GS1_SSCC_LEN || dl.gtin[0] != '\0'
            || cr_valid_check_digit(dl.key, CR_GS1_SSCC_LEN) != NULL
            || dl.has != 0)
        {
            abort();
        }

    } else if (rc == CR_GS1_OK) {
        if (strlen(dl.gtin) != CR_GS1_GTIN_LEN
            || cr_valid_gtin(dl.gtin, CR_GS1_GTIN_LEN) != NULL
            || strcmp(dl.key, dl.gtin) != 0)
        {
            abort();
        }

        check_value(dl.cpv, dl.cpv_len, dl.has, CR_GS1_HAS_CPV);
        check_value(dl.lot, dl.lot_len, dl.has, CR_GS1_HAS_LOT);
        check_value(dl.serial, dl.serial_len, dl.has, CR_GS1_HAS_SERIAL);
        check_inside(dl.stem, dl.stem_len, buf, len);
        check_inside(dl.query, dl.query_len, buf, len);
        check_inside(dl.link_type, dl.link_type_len, buf, len);

        if (dl.link_type != NULL) {
            (void) cr_gs1_decode(out, sizeof(out), dl.link_type,
                                 dl.link_type_len);
        }
    }

    free(buf);

    return 0;
}
