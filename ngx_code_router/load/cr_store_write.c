/*
 * cr_store_write: the writer's side of cr_store.h.  Transactions (begin,
 * commit, abort, growing the map), puts and deletes of each record,
 * iteration, and the override filter's upkeep at every commit.
 */

#define _XOPEN_SOURCE 700        /* POSIX 2008 and XSI: fstatvfs() */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cr_store_int.h"


static int cr_commit_io_error(cr_store_t *st, int rc);
static int cr_each(cr_store_t *st, MDB_dbi dbi,
    int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v), void *ctx);
static void cr_filter_note(cr_store_t *st, const uint8_t *key);
static int cr_filter_write(cr_store_t *st);


int
cr_store_begin(cr_store_t *st)
{
    int          rc;
    MDB_val      k, v;
    cr_filter_t  f;

    if (st->rdonly) {
        return cr_fail(st, "opened read-only");
    }

    if (st->buf == NULL) {
        st->buf = malloc(CR_REC_MAX);
        if (st->buf == NULL) {
            return cr_fail(st, "out of memory");
        }
    }

    rc = cr_txn_begin(st, 0, &st->wtxn);
    if (rc != 0) {
        return cr_fail(st, "cannot begin a write transaction: %s",
                       mdb_strerror(rc));
    }

    rc = cr_meta_read(st, st->wtxn, &st->meta);
    if (rc != 0) {
        cr_store_abort(st);
        return rc;
    }

    st->nfadd = 0;
    st->fdirty = 0;
    st->fstale = 0;
    st->froom = 0;

    if (mdb_stat(st->wtxn, st->code_dbi, &st->fstat0) != 0) {
        st->fstale = 1;
    }

    st->npadd = 0;
    st->pstale = mdb_stat(st->wtxn, st->batch_dbi, &st->pstat0) != 0;

    k.mv_data = CR_FILTER_KEY;
    k.mv_size = sizeof(CR_FILTER_KEY) - 1;

    if (mdb_get(st->wtxn, st->meta_dbi, &k, &v) == 0
        && cr_filter_decode(v.mv_data, v.mv_size, &f) == 0
        && f.nkeys <= cr_filter_capacity(f.lg))
    {
        st->froom = cr_filter_capacity(f.lg) - f.nkeys;
    }

    return 0;
}


int
cr_store_commit(cr_store_t *st, int64_t now)
{
    int  rc;

    st->meta.generation++;
    st->meta.last_commit = now;

    rc = cr_filter_write(st);

    if (rc == 0) {
        rc = cr_pack_write(st);
    }

    if (rc == 0) {
        rc = cr_meta_write(st);
    }

    if (rc != 0) {
        cr_store_abort(st);
        return rc;
    }

    rc = mdb_txn_commit(st->wtxn);
    st->wtxn = NULL;

    if (rc == EIO || rc == ENOSPC || rc == EDQUOT) {
        return cr_commit_io_error(st, rc);
    }

    return cr_mdb_rc(st, rc, "cannot commit");
}


/*
 * LMDB reports a short write -- what a full file system gives -- as EIO
 * ("Input/output error"), which sends an operator looking for a broken
 * disk.  Say when the store's file system is (nearly) out of space.  The
 * transaction was not committed: the store is at its previous generation.
 */
static int
cr_commit_io_error(cr_store_t *st, int rc)
{
    int             fd;
    uint64_t        avail;
    struct statvfs  vfs;

    if (mdb_env_get_fd(st->env, &fd) != 0 || fstatvfs(fd, &vfs) != 0) {
        return cr_fail(st, "cannot commit: %s", mdb_strerror(rc));
    }

    avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;

    if (rc != EIO || avail < CR_STORE_LOW_SPACE) {
        return cr_fail(st, "cannot commit: %s: the file system holding it "
                       "is full (%llu bytes free)",
                       mdb_strerror(rc), (unsigned long long) avail);
    }

    return cr_fail(st, "cannot commit: %s", mdb_strerror(rc));
}


void
cr_store_abort(cr_store_t *st)
{
    if (st->wtxn) {
        mdb_txn_abort(st->wtxn);
        st->wtxn = NULL;
    }
}


uint64_t
cr_store_map_size(cr_store_t *st)
{
    MDB_envinfo  ei;

    mdb_env_info(st->env, &ei);

    return ei.me_mapsize;
}


int
cr_store_grow(cr_store_t *st, uint64_t min_size)
{
    int       rc;
    uint64_t  size;

    size = cr_store_map_size(st) * 2;
    if (size < min_size) {
        size = min_size;
    }

    rc = mdb_env_set_mapsize(st->env, (size_t) size);
    if (rc != 0) {
        return cr_fail(st, "cannot grow the map to %llu bytes: %s",
                       (unsigned long long) size, mdb_strerror(rc));
    }

    return 0;
}


/*
 * The record an encoder wrote into st->buf as an LMDB value, or an error
 * if it did not fit.
 */
int
cr_rec_value(cr_store_t *st, size_t n, MDB_val *v)
{
    if (n > CR_REC_MAX) {
        return cr_fail(st, "record of %zu bytes is too large", n);
    }

    v->mv_data = st->buf;
    v->mv_size = n;

    return 0;
}


/*
 * Puts key -> val; returns CR_PUT_ADDED, CR_PUT_CHANGED or CR_PUT_SAME
 * (no write at all when the record is unchanged), or an error.
 */
int
cr_put_record(cr_store_t *st, MDB_dbi dbi, MDB_val *key, MDB_val *val,
    uint64_t *count)
{
    int      rc;
    MDB_val  old;

    old = *val;

    rc = mdb_put(st->wtxn, dbi, key, &old, MDB_NOOVERWRITE);

    if (rc == 0) {
        (*count)++;
        return CR_PUT_ADDED;
    }

    if (rc != MDB_KEYEXIST) {
        return cr_mdb_rc(st, rc, "cannot write");
    }

    /* old now holds the existing value. */
    if (old.mv_size == val->mv_size
        && memcmp(old.mv_data, val->mv_data, val->mv_size) == 0)
    {
        return CR_PUT_SAME;
    }

    rc = mdb_put(st->wtxn, dbi, key, val, 0);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot write");
    }

    return CR_PUT_CHANGED;
}


int
cr_store_get_campaign(cr_store_t *st, const char *id, size_t len,
    cr_campaign_t *c)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) id;
    k.mv_size = len;

    rc = mdb_get(st->wtxn, st->camp_dbi, &k, &v);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read campaigns");
    }

    if (cr_campaign_decode(v.mv_data, v.mv_size, c) != 0) {
        return cr_fail(st, "bad campaign record \"%.*s\"", (int) len, id);
    }

    return 0;
}


int
cr_store_put_campaign(cr_store_t *st, const cr_campaign_t *c)
{
    int      rc;
    MDB_val  k, v;

    rc = cr_rec_value(st, cr_campaign_encode(c, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    k.mv_data = (void *) c->s[CR_CAMP_ID].data;
    k.mv_size = c->s[CR_CAMP_ID].len;

    return cr_put_record(st, st->camp_dbi, &k, &v, &st->meta.campaigns);
}


int
cr_store_del_campaign(cr_store_t *st, const char *id, size_t len)
{
    int      rc;
    MDB_val  k;

    k.mv_data = (void *) id;
    k.mv_size = len;

    rc = cr_mdb_rc(st, mdb_del(st->wtxn, st->camp_dbi, &k, NULL),
                   "cannot delete a campaign");
    if (rc == 0) {
        st->meta.campaigns--;
        rc = cr_rules_del_campaign(st, id, len);
    }

    return rc;
}


int
cr_store_batch_overlap(cr_store_t *st, const cr_batch_t *b,
    cr_batch_t *other)
{
    int              rc;
    uint8_t          key[CR_KEY_LEN];
    MDB_val          k, v;
    cr_batch_t       cur;
    MDB_cursor      *c;
    const cr_str_t  *id;

    id = &b->s[CR_BATCH_ID];

    /* Any range ending at or after our first serial and starting at or
     * before our last overlaps, unless it is this batch's own old range. */
    rc = mdb_cursor_open(st->wtxn, st->batch_dbi, &c);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot open a cursor");
    }

    cr_key_make(key, b->kid, b->first);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    {
        if (((uint8_t *) k.mv_data)[0] != b->kid) {
            break;
        }

        if (cr_batch_decode(v.mv_data, v.mv_size, &cur) != 0) {
            mdb_cursor_close(c);
            return cr_fail(st, "bad batch record");
        }

        if (cur.first > b->last) {
            break;
        }

        if (cur.s[CR_BATCH_ID].len != id->len
            || memcmp(cur.s[CR_BATCH_ID].data, id->data, id->len) != 0)
        {
            *other = cur;
            mdb_cursor_close(c);
            return CR_STORE_OVERLAP;
        }
    }

    mdb_cursor_close(c);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_mdb_rc(st, rc, "cannot read batches");
    }

    return 0;
}


int
cr_store_put_batch(cr_store_t *st, const cr_batch_t *b, cr_batch_t *other)
{
    int              rc, rc2, moved;
    uint8_t          key[CR_KEY_LEN];
    MDB_val          k, v, idk, old;
    const cr_str_t  *id;

    id = &b->s[CR_BATCH_ID];

    rc = cr_store_batch_overlap(st, b, other);
    if (rc != 0) {
        return rc;
    }

    rc = cr_rec_value(st, cr_batch_encode(b, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    /* Where is this batch now?  A batch whose range moved loses the old
     * range key; one whose range stayed is a plain put. */
    idk.mv_data = (void *) id->data;
    idk.mv_size = id->len;
    cr_key_make(key, b->kid, b->last);

    rc = mdb_get(st->wtxn, st->batch_id_dbi, &idk, &old);
    moved = 0;

    if (rc == 0) {
        if (old.mv_size != CR_KEY_LEN || memcmp(old.mv_data, key, CR_KEY_LEN))
        {
            if (old.mv_size == CR_KEY_LEN) {
                cr_pack_note(st, old.mv_data);
            } else {
                st->pstale = 1;
            }
            rc = mdb_del(st->wtxn, st->batch_dbi, &old, NULL);
            if (rc != 0 && rc != MDB_NOTFOUND) {
                return cr_mdb_rc(st, rc, "cannot move a batch");
            }
            moved = 1;
        }

    } else if (rc != MDB_NOTFOUND) {
        return cr_mdb_rc(st, rc, "cannot read batch ids");
    }

    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = cr_put_record(st, st->batch_dbi, &k, &v, &st->meta.batches);
    if (rc < 0) {
        return rc;
    }

    if (rc != CR_PUT_SAME) {
        cr_pack_note(st, key);
    }

    if (moved) {
        st->meta.batches--;     /* counted again by the put */
        rc = CR_PUT_CHANGED;
    }

    if (rc == CR_PUT_ADDED || moved) {
        v.mv_data = key;
        v.mv_size = CR_KEY_LEN;

        rc2 = mdb_put(st->wtxn, st->batch_id_dbi, &idk, &v, 0);
        if (rc2 != 0) {
            return cr_mdb_rc(st, rc2, "cannot index a batch");
        }
    }

    return rc;
}


int
cr_store_del_batch(cr_store_t *st, const char *id, size_t len)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) id;
    k.mv_size = len;

    rc = mdb_get(st->wtxn, st->batch_id_dbi, &k, &v);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read batch ids");
    }

    if (v.mv_size == CR_KEY_LEN) {
        cr_pack_note(st, v.mv_data);
    } else {
        st->pstale = 1;
    }

    rc = mdb_del(st->wtxn, st->batch_dbi, &v, NULL);
    if (rc == 0) {
        rc = mdb_del(st->wtxn, st->batch_id_dbi, &k, NULL);
    }

    if (rc != 0) {
        return cr_mdb_rc(st, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc,
                         "cannot delete a batch");
    }

    st->meta.batches--;

    return 0;
}


int
cr_store_put_override(cr_store_t *st, const cr_override_t *o)
{
    int      rc;
    uint8_t  key[CR_KEY_LEN];
    MDB_val  k, v;

    rc = cr_rec_value(st, cr_override_encode(o, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    cr_key_make(key, o->kid, o->serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = cr_put_record(st, st->code_dbi, &k, &v, &st->meta.codes);

    if (rc == CR_PUT_ADDED) {
        cr_filter_note(st, key);
    } else if (rc == CR_PUT_CHANGED) {
        st->fdirty = 1;
    }

    return rc;
}


int
cr_store_del_override(cr_store_t *st, unsigned kid, uint64_t serial)
{
    int      rc;
    uint8_t  key[CR_KEY_LEN];
    MDB_val  k;

    cr_key_make(key, kid, serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = cr_mdb_rc(st, mdb_del(st->wtxn, st->code_dbi, &k, NULL),
                   "cannot delete an override");
    if (rc == 0) {
        st->meta.codes--;
        st->fdirty = 1;
    }

    return rc;
}


/* One of the three callbacks is set: the kind of record iterated. */
typedef struct {
    int   (*camp)(void *ctx, const cr_campaign_t *c);
    int   (*batch)(void *ctx, const cr_batch_t *b);
    int   (*ovr)(void *ctx, const cr_override_t *o);
    void   *ctx;
} cr_each_ctx_t;


static int
cr_each_decode(void *ctx, const MDB_val *k, const MDB_val *v)
{
    cr_each_ctx_t  *e = ctx;
    cr_campaign_t   c;
    cr_batch_t      b;
    cr_override_t   o;

    (void) k;

    if (e->camp) {
        if (cr_campaign_decode(v->mv_data, v->mv_size, &c) != 0) {
            return CR_STORE_ERROR;
        }
        return e->camp(e->ctx, &c);
    }

    if (e->batch) {
        if (cr_batch_decode(v->mv_data, v->mv_size, &b) != 0) {
            return CR_STORE_ERROR;
        }
        return e->batch(e->ctx, &b);
    }

    if (cr_override_decode(v->mv_data, v->mv_size, &o) != 0) {
        return CR_STORE_ERROR;
    }

    return e->ovr(e->ctx, &o);
}


int
cr_store_each_campaign(cr_store_t *st,
    int (*fn)(void *ctx, const cr_campaign_t *c), void *ctx)
{
    cr_each_ctx_t  e = { fn, NULL, NULL, ctx };

    return cr_each(st, st->camp_dbi, cr_each_decode, &e);
}


int
cr_store_each_batch(cr_store_t *st,
    int (*fn)(void *ctx, const cr_batch_t *b), void *ctx)
{
    cr_each_ctx_t  e = { NULL, fn, NULL, ctx };

    return cr_each(st, st->batch_dbi, cr_each_decode, &e);
}


int
cr_store_each_override(cr_store_t *st,
    int (*fn)(void *ctx, const cr_override_t *o), void *ctx)
{
    cr_each_ctx_t  e = { NULL, NULL, fn, ctx };

    return cr_each(st, st->code_dbi, cr_each_decode, &e);
}


int
cr_store_put_link(cr_store_t *st, const cr_link_t *l)
{
    int       rc;
    uint8_t   key[CR_LINK_KEY_MAX];
    uint64_t  count;
    MDB_val   k, v;

    if (!st->has_links) {
        return cr_fail(st, "this store has no links database");
    }

    rc = cr_rec_value(st, cr_link_encode(l, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    k.mv_data = key;
    k.mv_size = cr_link_key(key, l);

    /* The meta record counts the first schema's kinds only. */
    count = 0;

    return cr_put_record(st, st->link_dbi, &k, &v, &count);
}


int
cr_store_del_link(cr_store_t *st, const cr_link_t *l)
{
    uint8_t  key[CR_LINK_KEY_MAX];
    MDB_val  k;

    if (!st->has_links) {
        return CR_STORE_NOTFOUND;
    }

    k.mv_data = key;
    k.mv_size = cr_link_key(key, l);

    return cr_mdb_rc(st, mdb_del(st->wtxn, st->link_dbi, &k, NULL),
                     "cannot delete a link");
}


typedef struct {
    int   (*fn)(void *ctx, const cr_link_t *l);
    void   *ctx;
} cr_each_link_ctx_t;


static int
cr_each_link_decode(void *ctx, const MDB_val *k, const MDB_val *v)
{
    cr_link_t            l;
    cr_each_link_ctx_t  *e = ctx;

    (void) k;

    if (cr_link_decode(v->mv_data, v->mv_size, &l) != 0) {
        return CR_STORE_ERROR;
    }

    return e->fn(e->ctx, &l);
}


int
cr_store_each_link(cr_store_t *st, int (*fn)(void *ctx, const cr_link_t *l),
    void *ctx)
{
    cr_each_link_ctx_t  e = { fn, ctx };

    if (!st->has_links) {
        return 0;
    }

    return cr_each(st, st->link_dbi, cr_each_link_decode, &e);
}


typedef struct {
    int   (*fn)(void *ctx, const cr_parent_t *p);
    void   *ctx;
} cr_each_parent_ctx_t;


static int
cr_each_parent_decode(void *ctx, const MDB_val *k, const MDB_val *v)
{
    cr_parent_t            p;
    cr_each_parent_ctx_t  *e = ctx;

    (void) k;

    if (cr_parent_decode(v->mv_data, v->mv_size, &p) != 0) {
        return CR_STORE_ERROR;
    }

    return e->fn(e->ctx, &p);
}


int
cr_store_each_parent(cr_store_t *st,
    int (*fn)(void *ctx, const cr_parent_t *p), void *ctx)
{
    cr_each_parent_ctx_t  e = { fn, ctx };

    if (!st->has_parents) {
        return 0;
    }

    return cr_each(st, st->parent_dbi, cr_each_parent_decode, &e);
}


static int
cr_each(cr_store_t *st, MDB_dbi dbi,
    int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v), void *ctx)
{
    int          rc, ret;
    MDB_txn     *txn;
    MDB_cursor  *c;
    MDB_val      k, v;

    if (st->wtxn) {
        txn = st->wtxn;
    } else {
        rc = cr_rtxn_begin(st);
        if (rc != 0) {
            return rc;
        }
        txn = st->rtxn;
    }

    ret = 0;
    rc = mdb_cursor_open(txn, dbi, &c);

    if (rc == 0) {
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        {
            ret = fn(ctx, &k, &v);
            if (ret != 0) {
                break;
            }
        }

        mdb_cursor_close(c);
    }

    if (txn == st->rtxn) {
        cr_rtxn_end(st);
    }

    if (ret == CR_STORE_ERROR) {
        return cr_fail(st, "a record cannot be read");
    }

    if (ret != 0) {
        return ret;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_fail(st, "cannot iterate: %s", mdb_strerror(rc));
    }

    return 0;
}


/* Remembers an added override's key for the commit's filter update. */
static void
cr_filter_note(cr_store_t *st, const uint8_t *key)
{
    st->fdirty = 1;

    /* More than the filter takes: the commit rebuilds it anyway. */
    if (st->fstale || st->nfadd >= st->froom) {
        st->fstale = 1;
        return;
    }

    if (cr_keys_add(&st->fadd, &st->nfadd, &st->capfadd, cr_key_value(key))
        != 0)
    {
        st->fstale = 1;            /* the commit rebuilds it instead */
    }
}


int
cr_keys_add(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    size_t     c;
    uint64_t  *p;

    if (*n == *cap) {
        c = *cap ? 2 * *cap : 1024;
        p = realloc(*a, c * sizeof(uint64_t));

        if (p == NULL) {
            return -1;
        }

        *a = p;
        *cap = c;
    }

    (*a)[(*n)++] = v;

    return 0;
}


int
cr_cmp_u64(const void *a, const void *b)
{
    uint64_t  x, y;

    x = *(const uint64_t *) a;
    y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}


/* Puts chunk i of f, size bytes at p; an LMDB code. */
static int
cr_filter_put_chunk(cr_store_t *st, uint32_t i, const uint8_t *p,
    size_t size)
{
    MDB_val  k, v;
    uint8_t  ck[CR_FILTER_CHUNK_KEY];

    cr_filter_chunk_key(ck, i);
    k.mv_data = ck;
    k.mv_size = sizeof(ck);
    v.mv_data = (void *) p;
    v.mv_size = size;

    return mdb_put(st->wtxn, st->meta_dbi, &k, &v, 0);
}


/*
 * The keys added, set in copies of the chunks they fall in: the others
 * are not written (a one-row commit rewrites 64 KiB, whatever the
 * filter's size).  0, -1 (a chunk is missing or wrong: rebuild it), or
 * an LMDB code.
 */
static int
cr_filter_update(cr_store_t *st, const cr_filter_t *f)
{
    int       rc;
    size_t    i, j, w, size, chunk;
    uint8_t   ck[CR_FILTER_CHUNK_KEY];
    uint8_t  *buf;
    MDB_val   k, v;

    size = cr_filter_chunk_size(f->lg);
    buf = malloc(size);
    if (buf == NULL) {
        return -1;
    }

    /* Hashes in place of keys: sorted, they come chunk by chunk. */
    for (i = 0; i < st->nfadd; i++) {
        st->fadd[i] = cr_filter_hash(st->fadd[i]);
    }

    qsort(st->fadd, st->nfadd, sizeof(uint64_t), cr_cmp_u64);

    rc = 0;

    for (i = 0; rc == 0 && i < st->nfadd; i = j) {
        chunk = cr_filter_word(st->fadd[i], f->lg) >> CR_FILTER_CHUNK_LG;

        cr_filter_chunk_key(ck, (uint32_t) chunk);
        k.mv_data = ck;
        k.mv_size = sizeof(ck);

        if (mdb_get(st->wtxn, st->meta_dbi, &k, &v) != 0
            || v.mv_size != size)
        {
            rc = -1;
            break;
        }

        /* A copy: the put below may reuse the old value's pages. */
        memcpy(buf, v.mv_data, size);

        for (j = i; j < st->nfadd; j++) {
            w = cr_filter_word(st->fadd[j], f->lg);
            if (w >> CR_FILTER_CHUNK_LG != chunk) {
                break;
            }

            w &= ((size_t) 1 << CR_FILTER_CHUNK_LG) - 1;
            cr_filter_set(buf + 8 * w, st->fadd[j]);
        }

        rc = cr_filter_put_chunk(st, (uint32_t) chunk, buf, size);
    }

    free(buf);

    return rc;
}


/* The filter built anew from every key, sized for them, in f and its
 * *nchunks chunks; 0, -1 (a key not of cr_key_make(): no filter) or an
 * LMDB code (ENOMEM: no memory). */
static int
cr_filter_rebuild(cr_store_t *st, const MDB_stat *ms, cr_filter_t *f,
    size_t *nchunks)
{
    int          rc;
    size_t       i, n, size;
    uint8_t     *words;
    MDB_val      ck, cv;
    MDB_cursor  *cur;

    f->lg = cr_filter_lg(ms->ms_entries);
    f->nkeys = 0;
    words = calloc(1, cr_filter_size(f->lg));
    if (words == NULL) {
        return ENOMEM;
    }

    rc = mdb_cursor_open(st->wtxn, st->code_dbi, &cur);
    if (rc != 0) {
        free(words);
        return rc;
    }

    for (rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &ck, &cv, MDB_NEXT))
    {
        if (ck.mv_size != CR_KEY_LEN) {
            break;
        }

        cr_filter_add(words, f->lg, cr_key_value(ck.mv_data));
        f->nkeys++;
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        free(words);
        return rc == 0 ? -1 : rc;
    }

    n = cr_filter_nchunks(f->lg);
    size = cr_filter_chunk_size(f->lg);
    rc = 0;

    for (i = 0; rc == 0 && i < n; i++) {
        rc = cr_filter_put_chunk(st, (uint32_t) i, words + i * size, size);
    }

    free(words);
    *nchunks = n;

    return rc;
}


int
cr_chunks_del(cr_store_t *st, const char *prefix, size_t plen, size_t from,
    int header)
{
    int          rc;
    MDB_val      k, v;
    uint8_t      ck[64];
    MDB_cursor  *cur;

    if (header) {
        k.mv_data = (void *) prefix;
        k.mv_size = plen - 1;
        rc = mdb_del(st->wtxn, st->meta_dbi, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    rc = mdb_cursor_open(st->wtxn, st->meta_dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    cr_chunk_key(ck, prefix, plen, (uint32_t) from);
    k.mv_data = ck;
    k.mv_size = plen + 4;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size == plen + 4 && memcmp(k.mv_data, ck, plen) == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}


/*
 * Brings the override filter up to date in the write transaction, at every
 * commit (so a store written by an older version gets one): the keys added
 * set in the chunks they fall in, if the filter matched the table as this
 * transaction found it and has room; else rebuilt from every key, sized
 * for them.  Deleted keys stay set until a rebuild (a "maybe" costs
 * one search).  A key not of cr_key_make() (written by another tool)
 * leaves no filter: readers then search for every code.
 */
static int
cr_filter_write(cr_store_t *st)
{
    int          rc, valid;
    size_t       n;
    MDB_val      k, v;
    MDB_stat     ms;
    uint8_t      hdr[CR_FILTER_HDR];
    uint64_t     stamp0[CR_FILTER_NSTAMP];
    cr_filter_t  f;

    rc = mdb_stat(st->wtxn, st->code_dbi, &ms);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read the overrides' table");
    }

    k.mv_data = CR_FILTER_KEY;
    k.mv_size = sizeof(CR_FILTER_KEY) - 1;

    cr_filter_stamp(&st->fstat0, stamp0);

    valid = !st->fstale && mdb_get(st->wtxn, st->meta_dbi, &k, &v) == 0
            && cr_filter_decode(v.mv_data, v.mv_size, &f) == 0
            && memcmp(f.stamp, stamp0, sizeof(stamp0)) == 0;

    /* Unchanged and right, or nothing to filter. */
    if (!st->fdirty && (valid || ms.ms_entries == 0)) {
        return 0;
    }

    rc = valid && f.nkeys + st->nfadd <= cr_filter_capacity(f.lg)
         ? cr_filter_update(st, &f) : -1;

    if (rc == 0) {
        f.nkeys += st->nfadd;

    } else if (rc == -1) {
        rc = cr_filter_rebuild(st, &ms, &f, &n);

        if (rc == 0) {
            rc = cr_chunks_del(st, CR_FILTER_KEY, sizeof(CR_FILTER_KEY), n, 0);

        } else if (rc == -1) {
            rc = cr_chunks_del(st, CR_FILTER_KEY, sizeof(CR_FILTER_KEY), 0, 1);
            return cr_mdb_rc(st, rc, "cannot delete the filter");

        } else if (rc == ENOMEM) {
            return cr_fail(st, "out of memory");
        }
    }

    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot write the override filter");
    }

    cr_filter_stamp(&ms, f.stamp);
    cr_filter_header(hdr, &f);

    v.mv_data = hdr;
    v.mv_size = sizeof(hdr);

    rc = mdb_put(st->wtxn, st->meta_dbi, &k, &v, 0);

    return cr_mdb_rc(st, rc, "cannot write the override filter");
}
