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
 * Record (little-endian): "CRFILT1\0", CR_FILTER_NSTAMP u64 (what the
 * filter was built for; cr_filter_stamp() in cr_store_int.h says what
 * they are), u64 keys set since it was sized, u32 lg, u32 0, then 2^lg
 * words of 8 bytes.
 */

#ifndef CR_FILTER_H
#define CR_FILTER_H

#include <stddef.h>
#include <stdint.h>


#define CR_FILTER_NSTAMP   5
#define CR_FILTER_HDR      (8 + 8 * CR_FILTER_NSTAMP + 8 + 8)
#define CR_FILTER_MIN_LG   10          /* 8 KiB */
#define CR_FILTER_MAX_LG   30          /* 8 GiB: never reached */


typedef struct {
    uint64_t        stamp[CR_FILTER_NSTAMP];
    uint64_t        nkeys;             /* keys set since sized */
    unsigned        lg;                /* 2^lg words */
    const uint8_t  *words;             /* decode: into the record */
} cr_filter_t;


/* The lg for n keys (16 bits each), and how many keys it is sized for. */
unsigned cr_filter_lg(uint64_t n);
uint64_t cr_filter_capacity(unsigned lg);

/* Bytes of a record of 2^lg words. */
size_t cr_filter_size(unsigned lg);

/* Writes the header of f (not the words) at p. */
void cr_filter_header(uint8_t *p, const cr_filter_t *f);

/* Reads a record: 0, or -1 if it is not a whole, sane one. */
int cr_filter_decode(const uint8_t *p, size_t n, cr_filter_t *f);

/* words: the record's words (p + CR_FILTER_HDR); key: cr_key_value(). */
void cr_filter_add(uint8_t *words, unsigned lg, uint64_t key);
int cr_filter_maybe(const uint8_t *words, unsigned lg, uint64_t key);

#endif /* CR_FILTER_H */
