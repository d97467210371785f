/*
 * cr_store_parents: the reader's side of the parents table (cr_store.h):
 * the chain of a code, item -> case -> pallet, a binary search a level in
 * the reader's copy when the parents are few (as for batches), else a
 * cursor seek; nothing at all for a snapshot without parents.
 */

#include <stdlib.h>
#include <string.h>

#include "cr_store_int.h"


static int cr_parent_cached(cr_store_t *st, unsigned kid, uint64_t serial,
    cr_parent_t *p);


int
cr_parent_find(cr_store_t *st, MDB_txn *txn, unsigned kid, uint64_t serial,
    cr_parent_t *p)
{
    int          rc;
    uint8_t      key[CR_KEY_LEN];
    MDB_val      k, v;
    MDB_cursor  *c;

    if (!st->has_parents) {
        return CR_STORE_NOTFOUND;
    }

    if (st->cache.parents_on && st->cache.txnid == mdb_txn_id(txn)) {
        return cr_parent_cached(st, kid, serial, p);
    }

    /* The reader's cursor lives as long as its snapshot (cr_rtxn_begin
     * renews it): opening one costs more than the seek. */
    if (txn == st->rtxn && st->pcur) {
        c = st->pcur;
        rc = 0;

    } else {
        rc = mdb_cursor_open(txn, st->parent_dbi, &c);
        if (rc != 0) {
            return cr_fail(st, "cannot open a cursor: %s",
                           mdb_strerror(rc));
        }

        if (txn == st->rtxn) {
            st->pcur = c;
        }
    }

    /* As for a batch: the first range ending at or after the serial is
     * the only one that can hold it. */
    cr_key_make(key, kid, serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);

    if (rc == 0 && (k.mv_size != CR_KEY_LEN
                    || ((uint8_t *) k.mv_data)[0] != kid))
    {
        rc = MDB_NOTFOUND;
    }

    if (c != st->pcur) {
        mdb_cursor_close(c);
    }

    if (rc == 0 && cr_parent_decode(v.mv_data, v.mv_size, p) != 0) {
        return cr_fail(st, "bad parents record for key id %u serial %llu",
                       kid, (unsigned long long) serial);
    }

    if (rc == MDB_NOTFOUND || (rc == 0 && p->first > serial)) {
        return CR_STORE_NOTFOUND;
    }

    return rc == 0 ? 0 : cr_fail(st, "cannot read parents: %s",
                                 mdb_strerror(rc));
}


int
cr_parents_read(cr_store_t *st, unsigned kid, uint64_t serial,
    cr_binding_t *b)
{
    int          rc;
    cr_parent_t  p;

    b->nparents = 0;

    if (!st->has_parents || (st->cache.filter_checked
                             && st->cache.no_parents))
    {
        return 0;
    }

    /* A store written by the loader has no chain longer than this, nor a
     * cycle; one written otherwise is cut short, never walked forever. */
    while (b->nparents < CR_PARENTS_MAX) {
        rc = cr_parent_find(st, st->rtxn, kid, serial, &p);

        if (rc == CR_STORE_NOTFOUND) {
            return 0;
        }

        if (rc != 0) {
            return rc;
        }

        kid = p.parent_kid;
        serial = p.parent;
        b->parents[b->nparents].kid = p.parent_kid;
        b->parents[b->nparents].serial = p.parent;
        b->nparents++;
    }

    return 0;
}


/* As cr_parent_find, in the copy: the first range ending at or after the
 * serial. */
static int
cr_parent_cached(cr_store_t *st, unsigned kid, uint64_t serial,
    cr_parent_t *p)
{
    size_t               lo, hi, mid;
    uint64_t             want;
    const cr_cparent_t  *e;

    want = ((uint64_t) kid << 40) | serial;
    lo = 0;
    hi = st->cache.nparent;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (st->cache.parent[mid].key < want) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    if (lo == st->cache.nparent) {
        return CR_STORE_NOTFOUND;
    }

    e = &st->cache.parent[lo];

    if ((e->key >> 40) != kid) {
        return CR_STORE_NOTFOUND;
    }

    if (e->bad) {
        return cr_fail(st, "bad parents record for key id %u serial %llu",
                       kid, (unsigned long long) serial);
    }

    if (e->p.first > serial) {
        return CR_STORE_NOTFOUND;
    }

    *p = e->p;

    return 0;
}


void
cr_cache_parents(cr_store_t *st)
{
    int          rc;
    size_t       i;
    MDB_val      k, v;
    MDB_stat     ms;
    MDB_cursor  *cur;
    cr_cache_t  *c;

    c = &st->cache;
    c->parents_on = 0;

    if (!st->has_parents
        || mdb_stat(st->rtxn, st->parent_dbi, &ms) != 0
        || ms.ms_entries > CR_CACHE_MAX_PARENTS)
    {
        return;
    }

    c->parent = malloc((ms.ms_entries + 1) * sizeof(cr_cparent_t));
    if (c->parent == NULL
        || mdb_cursor_open(st->rtxn, st->parent_dbi, &cur) != 0)
    {
        return;
    }

    i = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && i < ms.ms_entries;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++)
    {
        if (k.mv_size != CR_KEY_LEN) {
            break;
        }

        c->parent[i].key = cr_key_value(k.mv_data);
        c->parent[i].bad = cr_parent_decode(v.mv_data, v.mv_size,
                                            &c->parent[i].p) != 0;
    }

    mdb_cursor_close(cur);

    /* Anything amiss: no copy, LMDB is searched instead. */
    c->nparent = i;
    c->parents_on = (rc == 0 || rc == MDB_NOTFOUND) && i == ms.ms_entries;
}


/*
 * Whether any range is packed into (kid, serial): the children index's
 * first key at or after parent kid | serial starts with them.  Only the
 * receipt API asks (one seek a receipt), so no copy is kept.
 */
int
cr_store_has_children(cr_store_t *st, unsigned kid, uint64_t serial)
{
    int          rc;
    uint8_t      key[CR_KEY_LEN];
    MDB_val      k, v;
    MDB_cursor  *c;

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    if (!st->has_parents) {
        return 0;
    }

    rc = mdb_cursor_open(st->rtxn, st->child_dbi, &c);
    if (rc != 0) {
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    cr_key_make(key, kid, serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    mdb_cursor_close(c);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return cr_fail(st, "cannot read children: %s", mdb_strerror(rc));
    }

    return k.mv_size > CR_KEY_LEN && memcmp(k.mv_data, key, CR_KEY_LEN) == 0;
}
