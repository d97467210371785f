/*
 * cr_pack_write: the batch pack's upkeep at every commit (cr_pack.h).
 * The chunks the batch keys put or deleted fall in are built again from
 * the batches table, by a cursor over their key range (one that grew past
 * CR_PACK_CHUNK is split), the others are kept as they are, and the
 * directory is written anew: a one-row commit rewrites one chunk and the
 * directory, whatever the number of batches.  A pack that is missing or
 * was built for another batches table is built from every batch.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cr_store_int.h"


#define CR_PACK_MAX_N  (CR_PACK_CHUNK / CR_PACK_ENTRY)
#define CR_KEY_MAX     (((uint64_t) 1 << 48) - 1)


/* A new directory and the chunk being filled. */
typedef struct {
    cr_store_t  *st;
    uint64_t    *last;                 /* the directory being made */
    uint32_t    *num;
    size_t       n;
    size_t       cap;
    uint32_t     next;                 /* chunk number to use next */
    int          reuse;                /* 1: the next chunk out is num0 */
    uint32_t     num0;
    size_t       nk;                   /* batches in the chunk */
    size_t       rbytes;               /* their record bytes */
    uint64_t     keys[CR_PACK_MAX_N + 1];
    uint32_t     len[CR_PACK_MAX_N + 1];
    uint8_t     *recs;                 /* CR_PACK_CHUNK + CR_REC_MAX */
    uint8_t     *out;                  /* the chunk encoded */
} cr_pw_t;


static int cr_pw_range(cr_pw_t *pw, int has_lo, uint64_t lo, int has_hi,
    uint64_t hi);
static int cr_pw_add(cr_pw_t *pw, uint64_t key, const MDB_val *v);
static int cr_pw_flush(cr_pw_t *pw);
static int cr_pw_dir_add(cr_pw_t *pw, uint64_t last, uint32_t num);
static int cr_pw_update(cr_pw_t *pw, const cr_pack_dir_t *d);


void
cr_pack_note(cr_store_t *st, const uint8_t *key)
{
    if (st->pstale) {
        return;                        /* the commit rebuilds it anyway */
    }

    if (cr_keys_add(&st->padd, &st->npadd, &st->cappadd, cr_key_value(key))
        != 0)
    {
        st->pstale = 1;
    }
}


int
cr_pack_write(cr_store_t *st)
{
    int            rc, valid;
    size_t         size;
    MDB_val        k, v;
    MDB_stat       ms;
    uint8_t       *old, *hdr;
    uint64_t       stamp0[CR_PACK_NSTAMP];
    cr_pw_t       *pw;
    cr_pack_dir_t  d;

    rc = mdb_stat(st->wtxn, st->batch_dbi, &ms);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read the batches' table");
    }

    k.mv_data = CR_PACK_KEY;
    k.mv_size = sizeof(CR_PACK_KEY) - 1;
    old = NULL;

    /* A copy: the puts below may move the directory's pages. */
    if (mdb_get(st->wtxn, st->meta_dbi, &k, &v) == 0) {
        old = malloc(v.mv_size + 1);
        if (old == NULL) {
            return cr_fail(st, "out of memory");
        }
        memcpy(old, v.mv_data, v.mv_size);
    }

    cr_filter_stamp(&st->pstat0, stamp0);

    valid = !st->pstale && old != NULL
            && cr_pack_dir_decode(old, v.mv_size, &d) == 0
            && memcmp(d.stamp, stamp0, sizeof(stamp0)) == 0;

    if (valid && st->npadd == 0) {
        free(old);
        return 0;
    }

    pw = calloc(1, sizeof(cr_pw_t));
    if (pw != NULL) {
        pw->st = st;
        pw->recs = malloc(CR_PACK_CHUNK + CR_REC_MAX);
        pw->out = malloc(cr_pack_chunk_size(1, CR_PACK_CHUNK + CR_REC_MAX));
    }

    if (pw == NULL || pw->recs == NULL || pw->out == NULL) {
        rc = ENOMEM;

    } else if (valid) {
        rc = cr_pw_update(pw, &d);

    } else {
        rc = cr_chunks_del(st, CR_PACK_KEY, sizeof(CR_PACK_KEY), 0, 0);
        if (rc == 0) {
            rc = cr_pw_range(pw, 0, 0, 0, 0);
        }
    }

    free(old);

    if (rc == 0) {
        cr_filter_stamp(&ms, d.stamp);
        d.n = (uint32_t) pw->n;
        d.next = pw->next;
        size = CR_PACK_DIR_HDR + pw->n * CR_PACK_DIR_ENTRY;
        hdr = malloc(size);

        if (hdr == NULL) {
            rc = ENOMEM;

        } else {
            cr_pack_dir_encode(hdr, &d, pw->last, pw->num);
            v.mv_data = hdr;
            v.mv_size = size;
            rc = mdb_put(st->wtxn, st->meta_dbi, &k, &v, 0);
            free(hdr);
        }

    } else if (rc == -1) {
        /* A key not of cr_key_make(): no pack, readers search LMDB. */
        rc = cr_chunks_del(st, CR_PACK_KEY, sizeof(CR_PACK_KEY), 0, 1);
    }

    if (pw) {
        free(pw->recs);
        free(pw->out);
        free(pw->last);
        free(pw->num);
        free(pw);
    }

    if (rc == ENOMEM) {
        return cr_fail(st, "out of memory");
    }

    return cr_mdb_rc(st, rc, "cannot write the batch pack");
}


/*
 * The directory d with the chunks the noted keys fall in built again: a
 * key after the last chunk's last key falls in the last chunk.  0, -1 (a
 * key not of cr_key_make()) or an LMDB code.
 */
static int
cr_pw_update(cr_pw_t *pw, const cr_pack_dir_t *d)
{
    int          rc;
    size_t       i, j, n;
    uint64_t     hi, *keys;
    cr_store_t  *st;

    st = pw->st;
    keys = st->padd;
    n = st->npadd;
    pw->next = d->next;

    if (d->n == 0) {
        return cr_pw_range(pw, 0, 0, 0, 0);
    }

    qsort(keys, n, sizeof(uint64_t), cr_cmp_u64);

    rc = 0;
    j = 0;

    for (i = 0; rc == 0 && i < d->n; i++) {
        hi = cr_pack_dir_last(d, i);

        if (j == n || (keys[j] > hi && i + 1 < d->n)) {
            rc = cr_pw_dir_add(pw, hi, cr_pack_dir_num(d, i));
            continue;
        }

        while (j < n && (keys[j] <= hi || i + 1 == d->n)) {
            j++;
        }

        pw->reuse = 1;
        pw->num0 = cr_pack_dir_num(d, i);

        rc = cr_pw_range(pw, i > 0, i ? cr_pack_dir_last(d, i - 1) : 0,
                         i + 1 < d->n, hi);

        /* Every batch of the chunk is gone: so is the chunk. */
        if (rc == 0 && pw->reuse) {
            uint8_t  ck[CR_PACK_CHUNK_KEY];
            MDB_val  k;

            pw->reuse = 0;
            cr_pack_chunk_key(ck, pw->num0);
            k.mv_data = ck;
            k.mv_size = sizeof(ck);
            rc = mdb_del(st->wtxn, st->meta_dbi, &k, NULL);
        }
    }

    return rc;
}


/* Packs every batch after lo (has_lo) and at most hi (has_hi) into chunks;
 * 0, -1 (a key not of cr_key_make()) or an LMDB code. */
static int
cr_pw_range(cr_pw_t *pw, int has_lo, uint64_t lo, int has_hi, uint64_t hi)
{
    int          rc;
    uint8_t      key[CR_KEY_LEN];
    uint64_t     kv;
    MDB_val      k, v;
    MDB_cursor  *cur;

    if (has_lo && lo == CR_KEY_MAX) {
        return 0;
    }

    rc = mdb_cursor_open(pw->st->wtxn, pw->st->batch_dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    if (has_lo) {
        cr_key_make(key, (unsigned) ((lo + 1) >> 40),
                    (lo + 1) & (((uint64_t) 1 << 40) - 1));
        k.mv_data = key;
        k.mv_size = CR_KEY_LEN;
    }

    for (rc = mdb_cursor_get(cur, &k, &v, has_lo ? MDB_SET_RANGE : MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != CR_KEY_LEN) {
            rc = -1;
            break;
        }

        kv = cr_key_value(k.mv_data);

        if (has_hi && kv > hi) {
            break;
        }

        rc = cr_pw_add(pw, kv, &v);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    return cr_pw_flush(pw);
}


/* One batch into the chunk, the chunk out first if it would grow past
 * CR_PACK_CHUNK; an LMDB code. */
static int
cr_pw_add(cr_pw_t *pw, uint64_t key, const MDB_val *v)
{
    int  rc;

    if (pw->nk > 0
        && cr_pack_chunk_size(pw->nk + 1, pw->rbytes + v->mv_size)
           > CR_PACK_CHUNK)
    {
        rc = cr_pw_flush(pw);
        if (rc != 0) {
            return rc;
        }
    }

    memcpy(pw->recs + pw->rbytes, v->mv_data, v->mv_size);
    pw->keys[pw->nk] = key;
    pw->len[pw->nk] = (uint32_t) v->mv_size;
    pw->nk++;
    pw->rbytes += v->mv_size;

    return 0;
}


/* Puts the chunk being filled, if any, and enters it in the directory;
 * an LMDB code. */
static int
cr_pw_flush(cr_pw_t *pw)
{
    int       rc;
    uint8_t   ck[CR_PACK_CHUNK_KEY];
    uint32_t  num;
    MDB_val   k, v;

    if (pw->nk == 0) {
        return 0;
    }

    num = pw->reuse ? pw->num0 : pw->next++;
    pw->reuse = 0;

    cr_pack_chunk_key(ck, num);
    k.mv_data = ck;
    k.mv_size = sizeof(ck);
    v.mv_data = pw->out;
    v.mv_size = cr_pack_chunk_encode(pw->out, pw->nk, pw->keys, pw->len,
                                     pw->recs);

    rc = mdb_put(pw->st->wtxn, pw->st->meta_dbi, &k, &v, 0);
    if (rc != 0) {
        return rc;
    }

    rc = cr_pw_dir_add(pw, pw->keys[pw->nk - 1], num);
    pw->nk = 0;
    pw->rbytes = 0;

    return rc;
}


static int
cr_pw_dir_add(cr_pw_t *pw, uint64_t last, uint32_t num)
{
    size_t     cap;
    uint32_t  *n;
    uint64_t  *l;

    if (pw->n == pw->cap) {
        cap = pw->cap ? 2 * pw->cap : 64;
        l = realloc(pw->last, cap * sizeof(uint64_t));
        if (l == NULL) {
            return ENOMEM;
        }
        pw->last = l;

        n = realloc(pw->num, cap * sizeof(uint32_t));
        if (n == NULL) {
            return ENOMEM;
        }
        pw->num = n;
        pw->cap = cap;
    }

    pw->last[pw->n] = last;
    pw->num[pw->n] = num;
    pw->n++;

    return 0;
}
