/*
 * cr_store_parents: the reader's side of the parents table (cr_store.h):
 * the chain of a code, item -> case -> pallet, one cursor seek a level,
 * and none at all for a snapshot without parents (most stores today).
 */

#include <string.h>

#include "cr_store_int.h"


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

    rc = mdb_cursor_open(txn, st->parent_dbi, &c);
    if (rc != 0) {
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
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

    if (rc == 0 && cr_parent_decode(v.mv_data, v.mv_size, p) != 0) {
        mdb_cursor_close(c);
        return cr_fail(st, "bad parents record for key id %u serial %llu",
                       kid, (unsigned long long) serial);
    }

    mdb_cursor_close(c);

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
