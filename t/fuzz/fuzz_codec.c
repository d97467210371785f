/*
 * libFuzzer target: the code decoder and verifier.  Oracle: a string that
 * cr_code_open() accepts must seal back, from its key id and serial, to
 * exactly its canonical spelling (nothing else can verify).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_codec.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  i;
    char                 canon[CR_CODE_LEN], again[CR_CODE_LEN];
    uint8_t              master[CR_MASTER_KEY_LEN];
    unsigned             kid;
    uint64_t             serial;
    cr_key_t             key;
    static cr_keyring_t  ring;
    static int           ready;

    if (!ready) {
        for (i = 0; i < CR_MASTER_KEY_LEN; i++) {
            master[i] = (uint8_t) i;          /* the known-answer key */
        }
        for (kid = 0; kid < 3; kid++) {
            cr_key_derive(&key, kid, master);
            cr_keyring_add(&ring, &key);
        }
        ready = 1;
    }

    if (cr_code_open(&ring, (const char *) data, size, &kid, &serial)
        != CR_CODE_OK)
    {
        return 0;
    }

    cr_code_canonical(canon, (const char *) data);

    if (cr_code_seal(again, &ring.keys[kid], serial) != 0
        || memcmp(canon, again, CR_CODE_LEN) != 0)
    {
        abort();
    }

    return 0;
}
