/*
 * The master keys of the known-answer tests (test_codec.c, test_pin.c):
 * bytes first, first+1, ..., first+31.  docs/code-format.md and t/ref/
 * use the same keys, so the vectors of every format share one key.
 */

#ifndef CR_TEST_MASTER_H
#define CR_TEST_MASTER_H

#include <stdint.h>

#include "cr_codec.h"


static void
make_master(uint8_t m[CR_MASTER_KEY_LEN], uint8_t first)
{
    int  i;

    for (i = 0; i < CR_MASTER_KEY_LEN; i++) {
        m[i] = (uint8_t) (first + i);
    }
}

#endif /* CR_TEST_MASTER_H */
