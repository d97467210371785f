/*
 * cr_filter: the override filter, a blocked Bloom filter over the keys of
 * the per-code overrides, kept in the binding store so that a scan of a
 * code without an override does not search the overrides' B-tree.
 *
 * Pure C.  cr_store writes it with every commit that changes overrides and
 * says when a reader may trust it; this file is its layout and arithmetic.
 * A key sets 4 bits of one 64-bit word.  Sized at 16 bits per key, about
 * 1 code in 200 without an override is a "maybe" (measured: 1 in 214 with
 * 1M keys) and is looked up, as before; a code with an override is always
 * a "maybe": never a false "no".
 *
 * Header record (little-endian): "CRFILT2\0", CR_FILTER_NSTAMP u64 (what
 * the filter was built for; cr_filter_stamp() in cr_store_int.h says what
 * they are), u64 keys set since it was sized, u32 lg, u32 0.  The 2^lg
 * words of 8 bytes follow in cr_filter_nchunks(lg) chunk records of
 * 2^CR_FILTER_CHUNK_LG words each (fewer if the filter is smaller), so a
 * commit that adds a few keys rewrites a few 64 KiB chunks, not the whole
 * filter (32 MB for 10 M overrides: LMDB copies a value on every write).
 * Version 1 kept the words in the header record: a reader finds no
 * filter in such a store and searches, until the next load rebuilds it.
 */

#ifndef CR_FILTER_H
#define CR_FILTER_H

#include <stddef.h>
#include <stdint.h>


#define CR_FILTER_NSTAMP   5
#define CR_FILTER_HDR      (8 + 8 * CR_FILTER_NSTAMP + 8 + 8)
#define CR_FILTER_MIN_LG   10          /* 8 KiB */
#define CR_FILTER_MAX_LG   30          /* 8 GiB: never reached */
#define CR_FILTER_CHUNK_LG 13          /* 64 KiB a chunk */


typedef struct {
    uint64_t        stamp[CR_FILTER_NSTAMP];
    uint64_t        nkeys;             /* keys set since sized */
    unsigned        lg;                /* 2^lg words */
} cr_filter_t;


/* The lg for n keys (16 bits each), and how many keys it is sized for. */
unsigned cr_filter_lg(uint64_t n);
uint64_t cr_filter_capacity(unsigned lg);

/* Bytes of 2^lg words; chunks of them, and each chunk's bytes. */
size_t cr_filter_size(unsigned lg);
size_t cr_filter_nchunks(unsigned lg);
size_t cr_filter_chunk_size(unsigned lg);

/* Writes the header record of f at p (CR_FILTER_HDR bytes). */
void cr_filter_header(uint8_t *p, const cr_filter_t *f);

/* Reads a header record: 0, or -1 if it is not a whole, sane one. */
int cr_filter_decode(const uint8_t *p, size_t n, cr_filter_t *f);

/*
 * key: cr_key_value().  Its hash; the index of its word among the 2^lg
 * (chunk: index >> CR_FILTER_CHUNK_LG); the hash's bits set in a word.
 * Sorting hashes sorts their words: the index is the hash's top bits.
 */
uint64_t cr_filter_hash(uint64_t key);
size_t cr_filter_word(uint64_t h, unsigned lg);
void cr_filter_set(uint8_t *word, uint64_t h);

/* words: all 2^lg words, contiguous (a filter being built). */
void cr_filter_add(uint8_t *words, unsigned lg, uint64_t key);

/* chunks: each chunk's words, in order (a reader's pointers into the
 * map).  0: the key has no override; 1: it may have one. */
int cr_filter_maybe(const uint8_t *const *chunks, unsigned lg,
    uint64_t key);

#endif /* CR_FILTER_H */
