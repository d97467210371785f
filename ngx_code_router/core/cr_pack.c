/*
 * cr_pack: the batch pack.  See cr_pack.h.
 */

#include <string.h>

#include "cr_pack.h"
#include "cr_record_int.h"


#define CR_PACK_DIR_MAGIC    "CRBPACK1"
#define CR_PACK_CHUNK_MAGIC  "CRBCHK1\0"


static inline uint64_t cr_pack_entry(const uint8_t *p, size_t size,
    size_t i, const uint8_t **rec, size_t *len);


int
cr_pack_dir_decode(const uint8_t *p, size_t size, cr_pack_dir_t *d)
{
    size_t  i;

    if (size < CR_PACK_DIR_HDR || memcmp(p, CR_PACK_DIR_MAGIC, 8) != 0) {
        return -1;
    }

    for (i = 0; i < CR_PACK_NSTAMP; i++) {
        d->stamp[i] = cr_get_u64(p + 8 + 8 * i);
    }

    p += 8 + 8 * CR_PACK_NSTAMP;
    d->n = cr_get_u32(p);
    d->next = cr_get_u32(p + 4);

    if ((size - CR_PACK_DIR_HDR) / CR_PACK_DIR_ENTRY != d->n
        || (size - CR_PACK_DIR_HDR) % CR_PACK_DIR_ENTRY != 0)
    {
        return -1;
    }

    d->last = p + 8;
    d->num = d->last + 8 * (size_t) d->n;

    for (i = 1; i < d->n; i++) {
        if (cr_pack_dir_last(d, i - 1) >= cr_pack_dir_last(d, i)) {
            return -1;
        }
    }

    return 0;
}


uint64_t
cr_pack_dir_last(const cr_pack_dir_t *d, size_t i)
{
    return cr_get_u64(d->last + 8 * i);
}


uint32_t
cr_pack_dir_num(const cr_pack_dir_t *d, size_t i)
{
    return cr_get_u32(d->num + 4 * i);
}


size_t
cr_pack_dir_find(const cr_pack_dir_t *d, uint64_t key)
{
    size_t  lo, hi, mid;

    lo = 0;
    hi = d->n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (cr_get_u64(d->last + 8 * mid) < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    return lo;
}


void
cr_pack_dir_encode(uint8_t *p, const cr_pack_dir_t *d,
    const uint64_t *last, const uint32_t *num)
{
    size_t  i;

    memcpy(p, CR_PACK_DIR_MAGIC, 8);

    for (i = 0; i < CR_PACK_NSTAMP; i++) {
        cr_put_u64(p + 8 + 8 * i, d->stamp[i]);
    }

    p += 8 + 8 * CR_PACK_NSTAMP;
    cr_put_u32(p, d->n);
    cr_put_u32(p + 4, d->next);
    p += 8;

    for (i = 0; i < d->n; i++) {
        cr_put_u64(p + 8 * i, last[i]);
    }

    p += 8 * (size_t) d->n;

    for (i = 0; i < d->n; i++) {
        cr_put_u32(p + 4 * i, num[i]);
    }
}


/* O(1): a reader checks a chunk on its first use in every snapshot, and
 * a walk of its 1,000 entries would cost more than 1,000 lookups. */
int
cr_pack_chunk_check(const uint8_t *p, size_t size, int has_lo, uint64_t lo,
    uint64_t hi)
{
    size_t  n;

    if (size < CR_PACK_CHUNK_HDR || memcmp(p, CR_PACK_CHUNK_MAGIC, 8) != 0)
    {
        return -1;
    }

    n = cr_get_u32(p + 8);

    if (n == 0 || n > (size - CR_PACK_CHUNK_HDR) / CR_PACK_ENTRY
        || cr_get_u32(p + CR_PACK_CHUNK_HDR + 12 * n) != size
        || (has_lo && cr_get_u64(p + CR_PACK_CHUNK_HDR) <= lo)
        || cr_get_u64(p + CR_PACK_CHUNK_HDR + 8 * (n - 1)) != hi)
    {
        return -1;
    }

    return 0;
}


int
cr_pack_chunk_find(const uint8_t *p, size_t size, uint64_t key,
    const uint8_t **rec, size_t *len)
{
    size_t          lo, hi, mid;
    uint64_t        k;
    const uint8_t  *keys;

    keys = p + CR_PACK_CHUNK_HDR;
    lo = 0;
    hi = cr_get_u32(p + 8) - 1;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (cr_get_u64(keys + 8 * mid) < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    /* The search went by sound keys: the entry's and the one before it
     * are their records', and around the key. */
    k = cr_pack_entry(p, size, lo, rec, len);

    if (k == UINT64_MAX || k < key) {
        return -1;
    }

    if (lo > 0) {
        const uint8_t  *prev;
        size_t          plen;
        uint64_t        pk;

        pk = cr_pack_entry(p, size, lo - 1, &prev, &plen);

        if (pk == UINT64_MAX || pk >= key) {
            return -1;
        }
    }

    return (int) (k >> 40);
}


/* Entry i's record and key, if the record is inside the chunk and is a
 * batch record stored under that key; else UINT64_MAX. */
static inline uint64_t
cr_pack_entry(const uint8_t *p, size_t size, size_t i, const uint8_t **rec,
    size_t *len)
{
    size_t          n, off, end;
    uint64_t        k;
    const uint8_t  *offs;

    n = cr_get_u32(p + 8);
    offs = p + CR_PACK_CHUNK_HDR + 8 * n;
    off = cr_get_u32(offs + 4 * i);
    end = cr_get_u32(offs + 4 * i + 4);

    if (off < cr_pack_chunk_size(n, 0) || off > end || end > size) {
        return UINT64_MAX;
    }

    k = cr_get_u64(p + CR_PACK_CHUNK_HDR + 8 * i);

    if (cr_batch_key(p + off, end - off) != k) {
        return UINT64_MAX;
    }

    *rec = p + off;
    *len = end - off;

    return k;
}


size_t
cr_pack_chunk_encode(uint8_t *p, size_t n, const uint64_t *keys,
    const uint32_t *len, const uint8_t *recs)
{
    size_t    i, off, rbytes;
    uint8_t  *offs;

    memcpy(p, CR_PACK_CHUNK_MAGIC, 8);
    cr_put_u32(p + 8, (uint32_t) n);
    cr_put_u32(p + 12, 0);

    offs = p + CR_PACK_CHUNK_HDR + 8 * n;
    off = cr_pack_chunk_size(n, 0);
    rbytes = 0;

    for (i = 0; i < n; i++) {
        cr_put_u64(p + CR_PACK_CHUNK_HDR + 8 * i, keys[i]);
        cr_put_u32(offs + 4 * i, (uint32_t) (off + rbytes));
        rbytes += len[i];
    }

    cr_put_u32(offs + 4 * n, (uint32_t) (off + rbytes));
    memcpy(p + off, recs, rbytes);

    return off + rbytes;
}


size_t
cr_pack_chunk_size(size_t n, size_t rbytes)
{
    return CR_PACK_CHUNK_HDR + CR_PACK_ENTRY * n + 4 + rbytes;
}
