/*
 * cr_record_int: the records' byte layout, private to cr_record.c and the
 * store's files (cr_store*.c).  The helpers are inline: lookups run them
 * for every scan.
 */

#ifndef CR_RECORD_INT_H
#define CR_RECORD_INT_H

#include <string.h>

#include "cr_record.h"


#define CR_REC_CAMPAIGN 'C'
#define CR_REC_BATCH    'B'              /* CR_BATCH_NSTR - 1 strings */
#define CR_REC_BATCH_D  'D'              /* a batch with a dealer: all */
#define CR_REC_BATCH_A  'A'              /* activate=on_receipt: all */
#define CR_REC_OVERRIDE 'O'
#define CR_REC_LINK     'L'              /* GS1 links */
#define CR_REC_RULE     'R'
#define CR_REC_PARENT   'P'              /* a range's parent */

/* Fixed parts of the records, after the kind byte. */
#define CR_CAMP_FIXED   21             /* type, starts, ends, 2 zones */
#define CR_BATCH_FIXED  18             /* scene, kid, first, last */
#define CR_OVR_FIXED    10             /* state, kid, serial */
#define CR_PARENT_FIXED 26             /* kid, first, last, parent kid,
                                        * parent serial */
#define CR_RULE_FIXED   23             /* rule, device, type, set, split
                                        * lo, hi, min, max scans */

/* The largest record: its string table holds u16 offsets. */
#define CR_REC_MAX      0xffff


/*
 * Record encoders: write the record of c (b, o) into buf, which holds
 * CR_REC_MAX bytes, and return its size; a size over CR_REC_MAX means it
 * does not fit and nothing was written (the loader bounds every field far
 * below this).
 */
size_t cr_campaign_encode(const cr_campaign_t *c, uint8_t *buf);
size_t cr_batch_encode(const cr_batch_t *b, uint8_t *buf);
size_t cr_override_encode(const cr_override_t *o, uint8_t *buf);
size_t cr_link_encode(const cr_link_t *l, uint8_t *buf);
size_t cr_rule_encode(const cr_rule_t *r, uint8_t *buf);
size_t cr_parent_encode(const cr_parent_t *r, uint8_t *buf);


/* LMDB's default order: bytes, then the shorter first. */
static inline int
cr_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int  c;

    c = memcmp(a, b, alen < blen ? alen : blen);

    if (c == 0) {
        c = alen < blen ? -1 : alen > blen;
    }

    return c;
}


/* A key of cr_key_make() as the number kid(8) | serial(40): two loads. */
static inline uint64_t
cr_key_value(const uint8_t *k)
{
    uint16_t  lo;
    uint32_t  hi;

    memcpy(&hi, k, 4);
    memcpy(&lo, k + 4, 2);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    hi = __builtin_bswap32(hi);
    lo = __builtin_bswap16(lo);
#endif

    return ((uint64_t) hi << 16) | lo;
}


static inline void
cr_put_u16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}


static inline void
cr_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}


static inline void
cr_put_u64(uint8_t *p, uint64_t v)
{
    cr_put_u32(p, (uint32_t) v);
    cr_put_u32(p + 4, (uint32_t) (v >> 32));
}


static inline unsigned
cr_get_u16(const uint8_t *p)
{
    return (unsigned) p[0] | ((unsigned) p[1] << 8);
}


/* Little-endian loads that compile to one load on such a machine: the
 * batch pack reads several a lookup. */
static inline uint32_t
cr_get_u32(const uint8_t *p)
{
    uint32_t  v;

    memcpy(&v, p, 4);

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif

    return v;
}


static inline uint64_t
cr_get_u64(const uint8_t *p)
{
    uint64_t  v;

    memcpy(&v, p, 8);

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif

    return v;
}


/* The key a batch record of n bytes is stored under, as cr_key_value()
 * (kid | last serial), from its fixed part; UINT64_MAX if it is not one.
 * Inline: the batch pack checks two a lookup. */
static inline uint64_t
cr_batch_key(const uint8_t *p, size_t n)
{
    uint64_t  last;

    if (n < 1 + CR_BATCH_FIXED
        || (p[0] != CR_REC_BATCH && p[0] != CR_REC_BATCH_D
            && p[0] != CR_REC_BATCH_A))
    {
        return UINT64_MAX;
    }

    last = cr_get_u64(p + 11);

    return ((uint64_t) p[2] << 40) | (last & (((uint64_t) 1 << 40) - 1));
}


#endif /* CR_RECORD_INT_H */
