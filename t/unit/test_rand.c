/*
 * Unit tests of cr_rand, TAP on stdout: the bytes handed out are the
 * ChaCha20 key stream of the state's key, block after block, each byte
 * once; a new owner draws a new key; a request too long is refused.
 */

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cr_rand.h"
#include "tap.h"


#define N_IDS  200                     /* 16-byte ids: 6+ blocks */


int
main(void)
{
    static cr_rand_t  st, other;
    static uint8_t    got[N_IDS * 16], want[N_IDS * 16 + CR_RAND_BUF];
    uint8_t           nonce[8], key[32], b[16];
    size_t            i, off;
    uint64_t          n;
    int               rc, same;

    rc = 0;
    for (i = 0; i < N_IDS; i++) {
        rc |= cr_rand_bytes(&st, 1, got + i * 16, 16);
    }
    tap_ok(rc == 0, "%d ids of 16 bytes", N_IDS);

    /* The same key's stream, block by block: nothing skipped or reused
     * (512 is a multiple of 16, so no block's tail is left unused). */
    for (n = 0, off = 0; off < sizeof(got); n++, off += CR_RAND_BUF) {
        memcpy(nonce, &n, sizeof(nonce));
        crypto_stream_chacha20(want + off, CR_RAND_BUF, nonce, st.key);
    }
    if (!tap_ok(memcmp(got, want, sizeof(got)) == 0,
                "the ids are the key stream, in order"))
    {
        tap_diag("first byte %02x, the stream's %02x", got[0], want[0]);
    }

    memcpy(key, st.key, sizeof(key));
    rc = cr_rand_bytes(&st, 2, b, sizeof(b));
    tap_ok(rc == 0 && memcmp(key, st.key, sizeof(key)) != 0
           && st.nonce == 1,
           "another owner (a forked child) draws a new key");

    rc = cr_rand_bytes(&other, 1, b, sizeof(b));
    tap_ok(rc == 0 && memcmp(other.key, key, sizeof(key)) != 0,
           "two states never share a key");

    same = 0;
    for (i = 1; i < N_IDS; i++) {
        same |= memcmp(got, got + i * 16, 16) == 0;
    }
    tap_ok(!same, "no id repeats the first");

    tap_ok(cr_rand_bytes(&st, 2, b, CR_RAND_BUF + 1) == -1,
           "more than a block is refused");

    off = st.used;
    tap_ok(cr_rand_bytes(&st, 2, want, CR_RAND_BUF) == 0 && st.used == 512
           && st.nonce == 2 && off == 16,
           "a whole block when the rest is too short: a new block");

    return tap_done();
}
