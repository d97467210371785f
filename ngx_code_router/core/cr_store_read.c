/*
 * cr_store_read: a reader's side of cr_store.h.  The snapshot held from
 * one lookup to the next, the lookup itself, the decoded copy of the
 * snapshot's campaigns, its batch pack and override filter, and the copy
 * of a binding out of the map.
 */

#include <stdlib.h>
#include <string.h>

#include "cr_store_int.h"
#include "cr_store_test.h"


/* A chunk of the pack that is not sane: lookups in it search LMDB. */
static const uint8_t  cr_pack_bad[1];


static int cr_lookup_txn(cr_store_t *st, unsigned kid, uint64_t serial,
    int64_t now, cr_binding_t *b);
static int cr_find_batch(cr_store_t *st, const uint8_t *key, unsigned kid,
    uint64_t serial, cr_binding_t *b);
static int cr_find_campaign(cr_store_t *st, cr_str_t id, unsigned kid,
    uint64_t serial, cr_binding_t *b);
static int cr_pack_batch(cr_store_t *st, uint64_t want, unsigned kid,
    cr_batch_t *batch);
static const uint8_t *cr_pack_chunk(cr_store_t *st, size_t i);
static void cr_cache_build(cr_store_t *st);
static void cr_cache_filter(cr_store_t *st);
static void cr_cache_pack(cr_store_t *st);
static int cr_cache_measure(cr_store_t *st, MDB_dbi dbi, size_t *n,
    size_t *bytes);
static int cr_cache_fill(cr_store_t *st, uint8_t **pp);
static int cr_copy_out(cr_binding_t *b, cr_alloc_pt alloc, void *ctx);


int
cr_store_lookup(cr_store_t *st, unsigned kid, uint64_t serial, int64_t now,
    cr_binding_t *b, cr_alloc_pt alloc, void *ctx)
{
    int  rc;

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    rc = cr_lookup_txn(st, kid, serial, now, b);

    if (rc == 0 && cr_copy_out(b, alloc, ctx) != 0) {
        rc = cr_fail(st, "out of memory");
    }

    /* Without the copy, the campaign's rules are read (and copied) now. */
    if (rc == 0 && b->has_campaign && !st->cache.on) {
        rc = cr_rules_read(st, b, alloc, ctx);
    }

    /* A writer never keeps its snapshot: it would pin the pages its own
     * commits free, and forbid growing the map. */
    if (!st->rdonly) {
        cr_rtxn_end(st);
    }

    return rc;
}


/*
 * Starts (or renews) the reader's transaction, adopting a grown map.  A
 * read-only store keeps it between calls until a commit makes it stale:
 * renewing costs a reader slot update and, per named database, a search
 * of the main database: more than a lookup in the cache.  The check reads the newest meta page: no lock.
 */
int
cr_rtxn_begin(cr_store_t *st)
{
    int          rc;
    MDB_envinfo  ei;

    if (st->held) {
        mdb_env_info(st->env, &ei);

        if (ei.me_last_txnid == mdb_txn_id(st->rtxn)) {
            return 0;
        }

        cr_rtxn_end(st);
    }

    if (st->rtxn) {
        rc = mdb_txn_renew(st->rtxn);

        if (rc == MDB_MAP_RESIZED) {
            /* The renewal ended the transaction; start a fresh one. */
            mdb_txn_abort(st->rtxn);
            st->rtxn = NULL;

            if (st->rcur) {
                mdb_cursor_close(st->rcur);
                st->rcur = NULL;
            }

            if (st->pcur) {
                mdb_cursor_close(st->pcur);
                st->pcur = NULL;
            }

            rc = mdb_env_set_mapsize(st->env, 0);
        }
    } else {
        rc = 0;
    }

    if (rc == 0 && st->rtxn == NULL) {
        rc = cr_txn_begin(st, MDB_RDONLY, &st->rtxn);
    }

    if (rc != 0) {
        return cr_fail(st, "cannot begin a read transaction: %s",
                       mdb_strerror(rc));
    }

    if (st->rcur) {
        rc = mdb_cursor_renew(st->rtxn, st->rcur);
    } else {
        rc = mdb_cursor_open(st->rtxn, st->batch_dbi, &st->rcur);
    }

    if (rc == 0 && st->pcur) {
        rc = mdb_cursor_renew(st->rtxn, st->pcur);
    }

    if (rc != 0) {
        mdb_txn_reset(st->rtxn);
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    st->held = 1;

    return 0;
}


static int
cr_lookup_txn(cr_store_t *st, unsigned kid, uint64_t serial, int64_t now,
    cr_binding_t *b)
{
    int            rc;
    size_t         txnid;
    uint8_t        key[CR_KEY_LEN];
    MDB_val        k, v;
    cr_str_t       camp;
    cr_meta_t      meta;
    cr_override_t  o;

    memset(b, 0, sizeof(cr_binding_t));
    memset(&o, 0, sizeof(cr_override_t));

    /* The generation changes only with a commit, and so does the txn id:
     * read the meta record once per commit, not once per scan. */
    txnid = mdb_txn_id(st->rtxn);

    if (txnid != st->gen_txnid || st->gen_txnid == 0) {
        rc = cr_meta_read(st, st->rtxn, &meta);
        if (rc != 0) {
            return rc;
        }

        st->gen = meta.generation;
        st->gen_txnid = txnid;
    }

    if (st->rdonly && !st->nocache) {
        if (txnid != st->cache.txnid) {
            cr_cache_build(st);
        }

        if (!st->cache.filter_checked) {
            cr_cache_filter(st);
        }

        if (!st->cache.pack_checked) {
            cr_cache_pack(st);
        }
    }

    b->generation = st->gen;

    cr_key_make(key, kid, serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    /* Most codes have no override: the filter says so without a search
     * of the overrides' B-tree (docs/performance-notes.md has the cost). */
    if (st->cache.no_codes
        || (st->cache.filter_on
            && !cr_filter_maybe(st->cache.filter, st->cache.filter_lg,
                                cr_key_value(key))))
    {
        rc = MDB_NOTFOUND;

    } else {
        rc = mdb_get(st->rtxn, st->code_dbi, &k, &v);
    }

    if (rc == 0) {
        if (cr_override_decode(v.mv_data, v.mv_size, &o) != 0) {
            return cr_fail(st, "bad override record for key id %u serial "
                           "%llu", kid, (unsigned long long) serial);
        }
        b->overridden = 1;

    } else if (rc != MDB_NOTFOUND) {
        return cr_fail(st, "cannot read overrides: %s", mdb_strerror(rc));
    }

    rc = cr_find_batch(st, key, kid, serial, b);
    if (rc != 0) {
        return rc;
    }

    rc = cr_parents_read(st, kid, serial, b);
    if (rc != 0) {
        return rc;
    }

    if (b->overridden && o.state == CR_OVERRIDE_REVOKED) {
        b->status = CR_ST_REVOKED;
        return 0;
    }

    if (b->overridden) {
        camp = o.campaign;
    } else if (b->has_batch) {
        camp = b->batch.s[CR_BATCH_CAMPAIGN];
    } else {
        b->status = CR_ST_UNBOUND;
        return 0;
    }

    rc = cr_find_campaign(st, camp, kid, serial, b);
    if (rc != 0) {
        return rc;
    }

    b->has_campaign = 1;

    if (b->campaign.starts_at != CR_TIME_NONE && now < b->campaign.starts_at)
    {
        b->status = CR_ST_NOT_STARTED;

    } else if (b->campaign.ends_at != CR_TIME_NONE
               && now >= b->campaign.ends_at)
    {
        b->status = CR_ST_ENDED;

    } else {
        b->status = CR_ST_OK;
    }

    return 0;
}


/*
 * The batch that may hold (kid, serial): the first range ending at or
 * after the serial, the only one that can hold it.  Sets has_batch if it
 * does; a bad record in the way is an error, as it is to LMDB's seek.
 */
static int
cr_find_batch(cr_store_t *st, const uint8_t *key, unsigned kid,
    uint64_t serial, cr_binding_t *b)
{
    int      rc, bad;
    MDB_val  k, v;

    bad = st->cache.pack_on
          ? cr_pack_batch(st, cr_key_value(key), kid, &b->batch) : -1;

    if (bad == 1) {
        return 0;
    }

    /* No pack, or it cannot say: LMDB's seek, with its answer. */
    if (bad != 0) {
        st->pack_missed += st->cache.pack_on;

        k.mv_data = (void *) key;
        k.mv_size = CR_KEY_LEN;

        rc = mdb_cursor_get(st->rcur, &k, &v, MDB_SET_RANGE);

        if (rc == MDB_NOTFOUND) {
            return 0;
        }

        if (rc != 0) {
            return cr_fail(st, "cannot read batches: %s", mdb_strerror(rc));
        }

        if (k.mv_size != CR_KEY_LEN || ((uint8_t *) k.mv_data)[0] != kid) {
            return 0;
        }

        bad = cr_batch_decode(v.mv_data, v.mv_size, &b->batch) != 0;
    }

    if (bad) {
        memset(&b->batch, 0, sizeof(cr_batch_t));
        return cr_fail(st, "bad batch record for key id %u serial %llu",
                       kid, (unsigned long long) serial);
    }

    b->has_batch = b->batch.first <= serial && serial <= b->batch.last;

    if (!b->has_batch) {
        memset(&b->batch, 0, sizeof(cr_batch_t));
    }

    return 0;
}


/*
 * In the batch pack: the first batch at or after want into batch.  0; 1
 * if none can hold it (none at or after, or of another key id); -1 if the
 * pack cannot say (a chunk or its record does not decode).
 */
static int
cr_pack_batch(cr_store_t *st, uint64_t want, unsigned kid,
    cr_batch_t *batch)
{
    int             got;
    size_t          i, len;
    const uint8_t  *p, *rec;

    i = cr_pack_dir_find(&st->cache.pack, want);

    if (i == st->cache.pack.n) {
        return 1;
    }

    p = st->cache.pack_chunk[i];

    if (p == NULL) {
        p = cr_pack_chunk(st, i);
    }

    if (p == cr_pack_bad) {
        return -1;
    }

    got = cr_pack_chunk_find(p, st->cache.pack_size[i], want, &rec, &len);

    if (got < 0) {
        return -1;
    }

    if ((unsigned) got != kid) {
        return 1;
    }

    return cr_batch_decode(rec, len, batch) == 0 ? 0 : -1;
}


/* Chunk i of the pack, found on its first use in the snapshot and kept;
 * cr_pack_bad if it is missing or not the directory's. */
static const uint8_t *
cr_pack_chunk(cr_store_t *st, size_t i)
{
    uint8_t         ck[CR_PACK_CHUNK_KEY];
    MDB_val         k, v;
    cr_pack_dir_t  *d;

    d = &st->cache.pack;
    cr_pack_chunk_key(ck, cr_pack_dir_num(d, i));
    k.mv_data = ck;
    k.mv_size = sizeof(ck);

    if (mdb_get(st->rtxn, st->meta_dbi, &k, &v) != 0
        || cr_pack_chunk_check(v.mv_data, v.mv_size, i > 0,
                               i ? cr_pack_dir_last(d, i - 1) : 0,
                               cr_pack_dir_last(d, i)) != 0)
    {
        st->cache.pack_chunk[i] = cr_pack_bad;
    } else {
        st->cache.pack_chunk[i] = v.mv_data;
        st->cache.pack_size[i] = v.mv_size;
    }

    return st->cache.pack_chunk[i];
}


/* The campaign "id" into b->campaign: missing or bad is an error. */
static int
cr_find_campaign(cr_store_t *st, cr_str_t id, unsigned kid, uint64_t serial,
    cr_binding_t *b)
{
    int                rc, c;
    size_t             lo, hi, mid;
    MDB_val            k, v;
    const cr_ccamp_t  *e;

    if (st->cache.on) {
        rc = MDB_NOTFOUND;
        lo = 0;
        hi = st->cache.ncamp;

        while (lo < hi) {
            mid = lo + (hi - lo) / 2;
            e = &st->cache.camp[mid];
            c = cr_keycmp(e->id.data, e->id.len, id.data, id.len);

            if (c == 0) {
                rc = e->bad;
                b->campaign = e->c;
                b->target_ok = e->target_ok;
                b->rules = st->cache.rule + e->rule0;
                b->nrules = e->nrules;
                break;
            }

            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }

    } else {
        k.mv_data = (void *) id.data;
        k.mv_size = id.len;

        rc = mdb_get(st->rtxn, st->camp_dbi, &k, &v);

        if (rc == 0) {
            rc = cr_campaign_decode(v.mv_data, v.mv_size, &b->campaign);
        }
    }

    if (rc != 0) {
        return cr_fail(st, "campaign \"%.*s\" of key id %u serial %llu is "
                       "%s", (int) id.len, id.data, kid,
                       (unsigned long long) serial,
                       rc == MDB_NOTFOUND ? "missing" : "unreadable");
    }

    return 0;
}


/* Copies every string of the binding out of the map, in one allocation. */
static int
cr_copy_out(cr_binding_t *b, cr_alloc_pt alloc, void *ctx)
{
    int        i;
    char      *p;
    size_t     total;
    cr_str_t  *s[CR_BATCH_NSTR + CR_CAMP_NSTR];
    int        n;

    n = 0;

    for (i = 0; i < CR_BATCH_NSTR; i++) {
        s[n++] = &b->batch.s[i];
    }

    for (i = 0; i < CR_CAMP_NSTR; i++) {
        s[n++] = &b->campaign.s[i];
    }

    total = 0;
    for (i = 0; i < n; i++) {
        total += s[i]->len;
    }

    if (total == 0) {
        return 0;
    }

    p = alloc(ctx, total);
    if (p == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (s[i]->len) {
            memcpy(p, s[i]->data, s[i]->len);
            s[i]->data = p;
            p += s[i]->len;
        }
    }

    return 0;
}



/*
 * Replaces the cache with the reader's snapshot.  A store over the limits
 * or no memory leaves the copy off: lookups then read LMDB, with the same
 * answers.  The batches are not copied: the pack (cr_cache_pack) serves
 * them from the map.
 */
static void
cr_cache_build(cr_store_t *st)
{
    size_t       nc, nr, bytes;
    uint8_t     *p;
    cr_cache_t  *c;

    c = &st->cache;
    cr_cache_free(c);
    c->txnid = mdb_txn_id(st->rtxn);
    cr_cache_parents(st);

    bytes = 0;

    if (cr_cache_measure(st, st->camp_dbi, &nc, &bytes) != 0
        || cr_cache_measure(st, st->rule_dbi, &nr, &bytes) != 0
        || nc + nr > CR_CACHE_MAX_RECORDS || bytes > CR_CACHE_MAX_BYTES)
    {
        return;
    }

    c->arena = malloc(bytes + 1);
    c->camp = malloc((nc + 1) * sizeof(cr_ccamp_t));
    c->rule = malloc((nr + 1) * sizeof(cr_rule_t));
    c->ncamp = nc;
    c->nrule = nr;
    p = c->arena;

    if (c->arena == NULL || c->camp == NULL
        || c->rule == NULL || cr_cache_fill(st, &p) != 0
        || cr_cache_rules(st, p) != 0)
    {
        cr_cache_free(c);
        c->txnid = mdb_txn_id(st->rtxn);
        cr_cache_parents(st);
        return;
    }

    c->on = 1;
}


/* Counts the records of dbi and adds their bytes. */
static int
cr_cache_measure(cr_store_t *st, MDB_dbi dbi, size_t *n, size_t *bytes)
{
    int          rc;
    MDB_val      k, v;
    MDB_cursor  *cur;

    *n = 0;

    if (mdb_cursor_open(st->rtxn, dbi, &cur) != 0) {
        return -1;
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        (*n)++;
        *bytes += k.mv_size + v.mv_size;

        if (*n > CR_CACHE_MAX_RECORDS || *bytes > CR_CACHE_MAX_BYTES) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : -1;
}


/* Copies and decodes every campaign (same snapshot, so the counts of
 * cr_cache_measure() hold). */
static int
cr_cache_fill(cr_store_t *st, uint8_t **pp)
{
    int          rc;
    size_t       i;
    uint8_t     *p;
    MDB_val      k, v;
    MDB_cursor  *cur;
    cr_cache_t  *c;

    c = &st->cache;
    p = *pp;

    if (mdb_cursor_open(st->rtxn, st->camp_dbi, &cur) != 0) {
        return -1;
    }

    i = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && i < c->ncamp;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++)
    {
        memcpy(p, k.mv_data, k.mv_size);
        c->camp[i].id.data = (char *) p;
        c->camp[i].id.len = k.mv_size;
        p += k.mv_size;

        memcpy(p, v.mv_data, v.mv_size);
        c->camp[i].bad = cr_campaign_decode(p, v.mv_size, &c->camp[i].c)
                         != 0;
        c->camp[i].target_ok = !c->camp[i].bad && st->check
                               && st->check(&c->camp[i].c) == NULL;
        c->camp[i].rule0 = 0;
        c->camp[i].nrules = 0;
        p += v.mv_size;
    }

    mdb_cursor_close(cur);
    *pp = p;

    return i == c->ncamp ? 0 : -1;
}


/*
 * The snapshot's override filter, if it was built for the codes table as
 * the snapshot has it (cr_filter_stamp) and every chunk is there; or that
 * there are no overrides.  Once per snapshot: a walk of the chunks (512
 * for 10 M overrides), pointers kept.
 */
static void
cr_cache_filter(cr_store_t *st)
{
    size_t        i, n, size;
    MDB_val       k, v;
    MDB_stat      ms;
    uint8_t       ck[CR_FILTER_CHUNK_KEY];
    uint64_t      stamp[CR_FILTER_NSTAMP];
    cr_filter_t   f;
    cr_cache_t   *c;
    MDB_cursor   *cur;
    const uint8_t **p;

    c = &st->cache;
    c->filter_checked = 1;
    c->filter_on = 0;
    c->no_codes = 0;
    c->no_parents = !st->has_parents
                    || (mdb_stat(st->rtxn, st->parent_dbi, &ms) == 0
                        && ms.ms_entries == 0);

    if (mdb_stat(st->rtxn, st->code_dbi, &ms) != 0) {
        return;
    }

    if (ms.ms_entries == 0) {
        c->no_codes = 1;
        return;
    }

    k.mv_data = CR_FILTER_KEY;
    k.mv_size = sizeof(CR_FILTER_KEY) - 1;

    if (mdb_get(st->rtxn, st->meta_dbi, &k, &v) != 0
        || cr_filter_decode(v.mv_data, v.mv_size, &f) != 0)
    {
        return;
    }

    cr_filter_stamp(&ms, stamp);

    if (memcmp(stamp, f.stamp, sizeof(stamp)) != 0) {
        return;
    }

    n = cr_filter_nchunks(f.lg);
    size = cr_filter_chunk_size(f.lg);

    if (n > c->filter_cap) {
        p = realloc(c->filter, n * sizeof(uint8_t *));
        if (p == NULL) {
            return;
        }
        c->filter = p;
        c->filter_cap = n;
    }

    if (mdb_cursor_open(st->rtxn, st->meta_dbi, &cur) != 0) {
        return;
    }

    cr_filter_chunk_key(ck, 0);
    k.mv_data = ck;
    k.mv_size = sizeof(ck);

    for (i = 0; i < n; i++) {
        cr_filter_chunk_key(ck, (uint32_t) i);

        if (mdb_cursor_get(cur, &k, &v, i ? MDB_NEXT : MDB_SET_KEY) != 0
            || k.mv_size != sizeof(ck) || memcmp(k.mv_data, ck, sizeof(ck))
            || v.mv_size != size)
        {
            break;
        }

        c->filter[i] = v.mv_data;
    }

    mdb_cursor_close(cur);

    if (i == n) {
        c->filter_lg = f.lg;
        c->filter_on = 1;
    }
}


/*
 * The snapshot's batch pack, if it was built for the batches table as the
 * snapshot has it (cr_filter_stamp): one get of its directory (about 1,100
 * chunks, 13 KB, for 1 M batches), its chunks found as lookups need them.
 */
static void
cr_cache_pack(cr_store_t *st)
{
    MDB_val         k, v;
    MDB_stat        ms;
    uint64_t        stamp[CR_PACK_NSTAMP];
    cr_cache_t     *c;
    size_t         *sz;
    cr_pack_dir_t   d;
    const uint8_t **p;

    c = &st->cache;
    c->pack_checked = 1;
    c->pack_on = 0;

    k.mv_data = CR_PACK_KEY;
    k.mv_size = sizeof(CR_PACK_KEY) - 1;

    if (mdb_stat(st->rtxn, st->batch_dbi, &ms) != 0
        || mdb_get(st->rtxn, st->meta_dbi, &k, &v) != 0
        || cr_pack_dir_decode(v.mv_data, v.mv_size, &d) != 0)
    {
        return;
    }

    cr_filter_stamp(&ms, stamp);

    if (memcmp(stamp, d.stamp, sizeof(stamp)) != 0) {
        return;
    }

    if (d.n >= c->pack_cap) {
        p = realloc(c->pack_chunk, (d.n + 1) * sizeof(uint8_t *));
        if (p == NULL) {
            return;
        }
        c->pack_chunk = p;

        sz = realloc(c->pack_size, (d.n + 1) * sizeof(size_t));
        if (sz == NULL) {
            return;
        }
        c->pack_size = sz;
        c->pack_cap = d.n + 1;
    }

    memset(c->pack_chunk, 0, d.n * sizeof(uint8_t *));
    c->pack = d;
    c->pack_on = 1;
}


void
cr_cache_free(cr_cache_t *c)
{
    free(c->arena);
    free(c->pack_chunk);
    free(c->pack_size);
    free(c->camp);
    free(c->rule);
    free(c->filter);
    free(c->parent);
    memset(c, 0, sizeof(cr_cache_t));
}


void
cr_store_release(cr_store_t *st)
{
    cr_rtxn_end(st);
}


/* Ends the snapshot held between lookups, if any. */
void
cr_rtxn_end(cr_store_t *st)
{
    if (st->held) {
        mdb_txn_reset(st->rtxn);
        st->held = 0;

        /* It points into the snapshot: found again in the next one. */
        st->cache.filter_on = 0;
        st->cache.filter_checked = 0;
        st->cache.pack_on = 0;
        st->cache.pack_checked = 0;
    }
}


void
cr_store_set_check(cr_store_t *st,
    const char *(*check)(const cr_campaign_t *c))
{
    st->check = check;
    st->cache.txnid = 0;
}


int
cr_store_cached(cr_store_t *st)
{
    return (st->cache.on ? CR_CACHED_COPY : 0)
           | (st->cache.pack_on ? CR_CACHED_BATCHES : 0)
           | (st->cache.filter_on ? CR_CACHED_FILTER : 0);
}


uint64_t
cr_store_pack_missed(cr_store_t *st)
{
    return st->pack_missed;
}


int
cr_store_links(cr_store_t *st, const char *gtin, const char *lot,
    size_t lot_len, cr_link_t *out, size_t max, size_t *n,
    cr_alloc_pt alloc, void *ctx)
{
    int          rc, i;
    char        *p;
    size_t       plen;
    uint8_t      prefix[CR_LINK_KEY_MAX];
    MDB_val      k, v;
    MDB_cursor  *c;

    *n = 0;

    if (!st->has_links) {
        return 0;
    }

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_cursor_open(st->rtxn, st->link_dbi, &c);
    if (rc != 0) {
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    plen = cr_link_level_key(prefix, gtin, strlen(gtin), lot, lot_len);
    k.mv_data = prefix;
    k.mv_size = plen;

    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0 && *n < max && k.mv_size >= plen
         && memcmp(k.mv_data, prefix, plen) == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    {
        if (cr_link_decode(v.mv_data, v.mv_size, &out[*n]) != 0) {
            mdb_cursor_close(c);
            return cr_fail(st, "a link record cannot be read");
        }

        /* Nothing may point into the map once the snapshot moves on. */
        for (i = 0; i < CR_LINK_NSTR; i++) {
            p = alloc(ctx, out[*n].s[i].len + 1);
            if (p == NULL) {
                mdb_cursor_close(c);
                return cr_fail(st, "out of memory");
            }

            memcpy(p, out[*n].s[i].data, out[*n].s[i].len);
            p[out[*n].s[i].len] = '\0';
            out[*n].s[i].data = p;
        }

        (*n)++;
    }

    mdb_cursor_close(c);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_fail(st, "cannot read the links: %s", mdb_strerror(rc));
    }

    return 0;
}
