/*
 * cr_filter: the override filter.  See cr_filter.h.
 */

#include <string.h>

#include "cr_filter.h"


#define CR_FILTER_MAGIC  "CRFILT2\0"


static uint64_t cr_filter_bits(uint64_t h);
static uint64_t cr_filter_get(const uint8_t *p);
static void cr_filter_put(uint8_t *p, uint64_t v);


unsigned
cr_filter_lg(uint64_t n)
{
    unsigned  lg;

    lg = CR_FILTER_MIN_LG;

    while (lg < CR_FILTER_MAX_LG && cr_filter_capacity(lg) < n) {
        lg++;
    }

    return lg;
}


/* 16 bits a key: 4 keys a word. */
uint64_t
cr_filter_capacity(unsigned lg)
{
    return (uint64_t) 4 << lg;
}


size_t
cr_filter_size(unsigned lg)
{
    return (size_t) 8 << lg;
}


size_t
cr_filter_nchunks(unsigned lg)
{
    return lg > CR_FILTER_CHUNK_LG ? (size_t) 1 << (lg - CR_FILTER_CHUNK_LG)
                                   : 1;
}


size_t
cr_filter_chunk_size(unsigned lg)
{
    return (size_t) 8 << (lg > CR_FILTER_CHUNK_LG ? CR_FILTER_CHUNK_LG : lg);
}


void
cr_filter_header(uint8_t *p, const cr_filter_t *f)
{
    int  i;

    memcpy(p, CR_FILTER_MAGIC, 8);

    for (i = 0; i < CR_FILTER_NSTAMP; i++) {
        cr_filter_put(p + 8 + 8 * i, f->stamp[i]);
    }

    p += 8 + 8 * CR_FILTER_NSTAMP;
    cr_filter_put(p, f->nkeys);
    cr_filter_put(p + 8, f->lg);
}


int
cr_filter_decode(const uint8_t *p, size_t n, cr_filter_t *f)
{
    int             i;
    uint64_t        lg;
    const uint8_t  *q;

    if (n < CR_FILTER_HDR || memcmp(p, CR_FILTER_MAGIC, 8) != 0) {
        return -1;
    }

    for (i = 0; i < CR_FILTER_NSTAMP; i++) {
        f->stamp[i] = cr_filter_get(p + 8 + 8 * i);
    }

    q = p + 8 + 8 * CR_FILTER_NSTAMP;
    f->nkeys = cr_filter_get(q);
    lg = cr_filter_get(q + 8);

    if (n != CR_FILTER_HDR || lg < CR_FILTER_MIN_LG || lg > CR_FILTER_MAX_LG) {
        return -1;
    }

    f->lg = (unsigned) lg;

    return 0;
}


size_t
cr_filter_word(uint64_t h, unsigned lg)
{
    return (size_t) (h >> (64 - lg));
}


void
cr_filter_set(uint8_t *word, uint64_t h)
{
    cr_filter_put(word, cr_filter_get(word) | cr_filter_bits(h));
}


void
cr_filter_add(uint8_t *words, unsigned lg, uint64_t key)
{
    uint64_t  h;

    h = cr_filter_hash(key);
    cr_filter_set(words + 8 * cr_filter_word(h, lg), h);
}


int
cr_filter_maybe(const uint8_t *const *chunks, unsigned lg, uint64_t key)
{
    size_t          w;
    uint64_t        h, bits;
    const uint8_t  *chunk;

    h = cr_filter_hash(key);
    bits = cr_filter_bits(h);
    w = cr_filter_word(h, lg);
    chunk = chunks[w >> CR_FILTER_CHUNK_LG];

    w &= ((size_t) 1 << CR_FILTER_CHUNK_LG) - 1;

    return (cr_filter_get(chunk + 8 * w) & bits) == bits;
}


/* A 64-bit finalizer (splitmix64's): every key bit moves every hash bit,
 * so nearby serials land in unrelated words. */
uint64_t
cr_filter_hash(uint64_t key)
{
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;

    return key;
}


/* 4 bits of the word from the low 24 bits of the hash (the word index
 * comes from the top lg <= 30 bits). */
static uint64_t
cr_filter_bits(uint64_t h)
{
    return ((uint64_t) 1 << (h & 63)) | ((uint64_t) 1 << ((h >> 6) & 63))
           | ((uint64_t) 1 << ((h >> 12) & 63))
           | ((uint64_t) 1 << ((h >> 18) & 63));
}


static uint64_t
cr_filter_get(const uint8_t *p)
{
    uint64_t  v;

    memcpy(&v, p, 8);

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif

    return v;
}


static void
cr_filter_put(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif

    memcpy(p, &v, 8);
}
