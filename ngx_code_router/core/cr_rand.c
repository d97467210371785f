/*
 * cr_rand: see cr_rand.h.
 */

#include "cr_rand.h"

#include <string.h>

#include <sodium.h>


#if crypto_stream_chacha20_NONCEBYTES != 8
#error "cr_rand: ChaCha20's nonce is not 8 bytes"
#endif


static int cr_rand_refill(cr_rand_t *st, long owner);


int
cr_rand_bytes(cr_rand_t *st, long owner, uint8_t *out, size_t len)
{
    if (len > CR_RAND_BUF) {
        return -1;
    }

    if (st->owner != owner || CR_RAND_BUF - st->used < len) {
        if (cr_rand_refill(st, owner) != 0) {
            return -1;
        }
    }

    memcpy(out, st->buf + st->used, len);
    st->used += len;

    return 0;
}


/* A new key for a new owner; the next block of the stream. */
static int
cr_rand_refill(cr_rand_t *st, long owner)
{
    uint8_t  nonce[crypto_stream_chacha20_NONCEBYTES];

    if (st->owner != owner) {
        if (sodium_init() < 0) {
            return -1;
        }

        randombytes_buf(st->key, sizeof(st->key));
        st->nonce = 0;
        st->owner = owner;
    }

    /* 8 bytes: a 64-bit block counter never repeats under one key. */
    memcpy(nonce, &st->nonce, sizeof(nonce));
    st->nonce++;

    crypto_stream_chacha20(st->buf, CR_RAND_BUF, nonce, st->key);
    st->used = 0;

    return 0;
}
