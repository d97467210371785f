/*
 * cr_rand: unpredictable bytes without a system call or a library lock
 * per use.  A ChaCha20 key stream (libsodium) under a key drawn from the
 * system's generator, cut into CR_RAND_BUF-byte blocks under successive
 * nonces.  Pure C, so the module and the unit tests share it.
 */

#ifndef CR_RAND_H
#define CR_RAND_H

#include <stddef.h>
#include <stdint.h>


#define CR_RAND_BUF  512               /* bytes of key stream at a time */


typedef struct {
    uint8_t   key[32];
    uint64_t  nonce;                   /* of the next block */
    size_t    used;                    /* bytes of buf handed out */
    long      owner;                   /* the process the key is for */
    uint8_t   buf[CR_RAND_BUF];
} cr_rand_t;


/*
 * Fills out with len (at most CR_RAND_BUF) unpredictable bytes.  owner
 * names the calling process (its pid, never 0): a state made for another
 * process (the parent before a fork, or never used) draws a new key
 * first, so two processes never share a stream.  Each byte is handed out
 * once.  Not for threads sharing one state.  -1 if len is too long or
 * libsodium cannot start, else 0.
 */
int cr_rand_bytes(cr_rand_t *st, long owner, uint8_t *out, size_t len);

#endif /* CR_RAND_H */
