/*
 * cr_pack: the batch pack, the batches' records packed in key order into
 * chunk records of about 64 KiB, with a directory of the chunks, kept in
 * the binding store (meta database) so that a reader finds a batch by two
 * binary searches in the map instead of a B-tree search, and has no copy
 * to make after a commit (docs/performance-notes.md has the costs).
 *
 * Pure C.  cr_store writes it with every commit (cr_pack_write.c) and
 * says when a reader may trust it; this file is its layout and searches.
 * A record in a chunk is the batches table's value byte for byte
 * (cr_batch_encode): one record format stays the definition.
 *
 * Directory record (key "bpack", little-endian): "CRBPACK1",
 * CR_PACK_NSTAMP u64 (the batches table the pack was built for:
 * cr_filter_stamp() in cr_store_int.h), u32 n chunks, u32 the next chunk
 * number to use, then n u64 (each chunk's last key, increasing), then n
 * u32 (each chunk's number).  Chunk i holds every batch whose key is
 * after chunk i-1's last key and at most its own; a key is
 * cr_key_value() of the batches table's key, kid(8) | last serial(40).
 *
 * Chunk record (key "bpack." and its number, 4 bytes big-endian):
 * "CRBCHK1\0", u32 n batches (at least 1), u32 0, then n u64 keys
 * (increasing), then n + 1 u32 offsets from the chunk's start (record i
 * is [off[i], off[i+1]), the last offset the chunk's size), then the
 * records.  A commit rebuilds only the chunks its changed keys fall in,
 * splitting one that grew past CR_PACK_CHUNK.
 */

#ifndef CR_PACK_H
#define CR_PACK_H

#include <stddef.h>
#include <stdint.h>


#define CR_PACK_NSTAMP     5
#define CR_PACK_DIR_HDR    (8 + 8 * CR_PACK_NSTAMP + 8)
#define CR_PACK_DIR_ENTRY  12          /* u64 last key, u32 number */
#define CR_PACK_CHUNK_HDR  16
#define CR_PACK_ENTRY      12          /* u64 key, u32 offset */
#define CR_PACK_CHUNK      65536       /* a chunk's size, unless one
                                        * record alone is bigger */


typedef struct {
    uint64_t        stamp[CR_PACK_NSTAMP];
    uint32_t        n;                 /* chunks */
    uint32_t        next;              /* chunk number to use next */
    const uint8_t  *last;              /* n u64: in the record */
    const uint8_t  *num;               /* n u32 */
} cr_pack_dir_t;


/* Reads a directory record: 0, or -1 if it is not a whole, sane one (its
 * last keys increase). */
int cr_pack_dir_decode(const uint8_t *p, size_t size, cr_pack_dir_t *d);

/* Chunk i's last key and number. */
uint64_t cr_pack_dir_last(const cr_pack_dir_t *d, size_t i);
uint32_t cr_pack_dir_num(const cr_pack_dir_t *d, size_t i);

/* The first chunk whose last key is at or after key: d->n if none. */
size_t cr_pack_dir_find(const cr_pack_dir_t *d, uint64_t key);

/* Writes a directory of d->n chunks at p, from last[] and num[]
 * (CR_PACK_DIR_HDR + d->n * CR_PACK_DIR_ENTRY bytes). */
void cr_pack_dir_encode(uint8_t *p, const cr_pack_dir_t *d,
    const uint64_t *last, const uint32_t *num);

/*
 * Checks a chunk record of size bytes: its header, its size, its first
 * key after lo (with has_lo) and its last key hi (the directory's word for
 * it).  0 or -1.  In O(1): a reader checks a chunk on its first use in a
 * snapshot, and a walk of its 1,000 entries would cost 20 lookups; the
 * entries a lookup meets are checked by the two below.
 */
int cr_pack_chunk_check(const uint8_t *p, size_t size, int has_lo,
    uint64_t lo, uint64_t hi);

/*
 * In a checked chunk of size bytes: the first batch whose key is at or
 * after key (there is one: the last key is the directory's), its record;
 * returns its key id.  -1 if the entry or the one before it is unsound (a
 * record outside the chunk, a key that is not its record's, keys out of
 * order): a chunk not to trust for this key.
 */
int cr_pack_chunk_find(const uint8_t *p, size_t size, uint64_t key,
    const uint8_t **rec, size_t *len);

/* Writes a chunk of n batches at p: keys[], the records' sizes len[] and
 * their bytes recs, contiguous; returns its size. */
size_t cr_pack_chunk_encode(uint8_t *p, size_t n, const uint64_t *keys,
    const uint32_t *len, const uint8_t *recs);

/* The size of a chunk of n batches of rbytes record bytes in all. */
size_t cr_pack_chunk_size(size_t n, size_t rbytes);

#endif /* CR_PACK_H */
