/*
 * cr_store_write_parents: the writer's puts, deletes and searches of the
 * parents table and its children index (see cr_store.h).  Beside
 * cr_store_write.c on the writer's side: the module reads the chain with
 * cr_store_parents.c only.
 */

#include <string.h>

#include "cr_store_int.h"


#define CR_CHILD_KEY_LEN  (2 * CR_KEY_LEN)

static int cr_parent_overlap(cr_store_t *st, const cr_parent_t *p,
    cr_parent_t *other, cr_parent_t *old);
static int cr_child_index(cr_store_t *st, const cr_parent_t *p, int put);


/* The children index's key: the parent, then the range (its last). */
static void
cr_child_key(uint8_t *k, const cr_parent_t *p)
{
    cr_key_make(k, p->parent_kid, p->parent);
    cr_key_make(k + CR_KEY_LEN, p->kid, p->last);
}


int
cr_store_put_parent(cr_store_t *st, const cr_parent_t *p, cr_parent_t *other)
{
    int          rc, rc2, had;
    uint8_t      key[CR_KEY_LEN];
    uint64_t     count;
    MDB_val      k, v;
    cr_parent_t  old;

    if (!st->has_parents) {
        return cr_fail(st, "this store has no parents database");
    }

    rc = cr_parent_overlap(st, p, other, &old);
    if (rc < 0 || rc == CR_STORE_OVERLAP) {
        return rc;
    }

    had = (rc == 1);

    rc = cr_rec_value(st, cr_parent_encode(p, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    cr_key_make(key, p->kid, p->last);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    /* The meta record counts the first schema's kinds only. */
    count = 0;

    rc = cr_put_record(st, st->parent_dbi, &k, &v, &count);
    if (rc != CR_PUT_ADDED && rc != CR_PUT_CHANGED) {
        return rc;
    }

    /* A new parent for the same range: the old one's index entry goes. */
    rc2 = had ? cr_child_index(st, &old, 0) : 0;

    if (rc2 == 0) {
        rc2 = cr_child_index(st, p, 1);
    }

    return rc2 == 0 ? rc : rc2;
}


/*
 * CR_STORE_OVERLAP (with *other) if a range other than p's own overlaps
 * p's; 1 with *old if p's range is stored (same first and last); else 0.
 */
static int
cr_parent_overlap(cr_store_t *st, const cr_parent_t *p, cr_parent_t *other,
    cr_parent_t *old)
{
    int          rc, ret;
    uint8_t      key[CR_KEY_LEN];
    MDB_val      k, v;
    MDB_cursor  *c;
    cr_parent_t  cur;

    rc = mdb_cursor_open(st->wtxn, st->parent_dbi, &c);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot open a cursor");
    }

    cr_key_make(key, p->kid, p->first);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;
    ret = 0;

    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    {
        if (((uint8_t *) k.mv_data)[0] != p->kid) {
            break;
        }

        if (cr_parent_decode(v.mv_data, v.mv_size, &cur) != 0) {
            mdb_cursor_close(c);
            return cr_fail(st, "bad parents record");
        }

        if (cur.first > p->last) {
            break;
        }

        if (cur.first == p->first && cur.last == p->last) {
            *old = cur;
            ret = 1;
            continue;
        }

        *other = cur;
        ret = CR_STORE_OVERLAP;
        break;
    }

    mdb_cursor_close(c);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_mdb_rc(st, rc, "cannot read parents");
    }

    return ret;
}


/* Adds (put) or removes p's entry of the children index. */
static int
cr_child_index(cr_store_t *st, const cr_parent_t *p, int put)
{
    int      rc;
    uint8_t  key[CR_CHILD_KEY_LEN];
    MDB_val  k, v;

    cr_child_key(key, p);
    k.mv_data = key;
    k.mv_size = CR_CHILD_KEY_LEN;

    if (!put) {
        rc = mdb_del(st->wtxn, st->child_dbi, &k, NULL);
        return rc == 0 || rc == MDB_NOTFOUND
               ? 0 : cr_mdb_rc(st, rc, "cannot index a parent");
    }

    rc = cr_rec_value(st, cr_parent_encode(p, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_put(st->wtxn, st->child_dbi, &k, &v, 0);

    return rc == 0 ? 0 : cr_mdb_rc(st, rc, "cannot index a parent");
}


int
cr_store_del_parent(cr_store_t *st, unsigned kid, uint64_t first,
    uint64_t last)
{
    int          rc;
    uint8_t      key[CR_KEY_LEN];
    MDB_val      k, v;
    cr_parent_t  p;

    if (!st->has_parents) {
        return CR_STORE_NOTFOUND;
    }

    cr_key_make(key, kid, last);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = mdb_get(st->wtxn, st->parent_dbi, &k, &v);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read parents");
    }

    if (cr_parent_decode(v.mv_data, v.mv_size, &p) != 0) {
        return cr_fail(st, "bad parents record");
    }

    if (p.first != first) {
        return CR_STORE_NOTFOUND;
    }

    rc = mdb_del(st->wtxn, st->parent_dbi, &k, NULL);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot delete a parent");
    }

    return cr_child_index(st, &p, 0);
}


int
cr_store_get_parent(cr_store_t *st, unsigned kid, uint64_t serial,
    cr_parent_t *p)
{
    int  rc;

    if (st->wtxn) {
        return cr_parent_find(st, st->wtxn, kid, serial, p);
    }

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    rc = cr_parent_find(st, st->rtxn, kid, serial, p);
    cr_rtxn_end(st);

    return rc;
}


int
cr_store_each_child(cr_store_t *st, unsigned kid, uint64_t first,
    uint64_t last, int (*fn)(void *ctx, const cr_parent_t *p), void *ctx)
{
    int          rc, ret;
    uint8_t      from[CR_KEY_LEN], to[CR_KEY_LEN];
    MDB_val      k, v;
    MDB_cursor  *c;
    cr_parent_t  p;

    if (!st->has_parents || st->wtxn == NULL) {
        return st->has_parents ? cr_fail(st, "no write transaction") : 0;
    }

    rc = mdb_cursor_open(st->wtxn, st->child_dbi, &c);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot open a cursor");
    }

    cr_key_make(from, kid, first);
    cr_key_make(to, kid, last);
    k.mv_data = from;
    k.mv_size = CR_KEY_LEN;
    ret = 0;

    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != CR_CHILD_KEY_LEN
            || memcmp(k.mv_data, to, CR_KEY_LEN) > 0)
        {
            break;
        }

        if (cr_parent_decode(v.mv_data, v.mv_size, &p) != 0) {
            ret = cr_fail(st, "bad parents record");
            break;
        }

        ret = fn(ctx, &p);
        if (ret != 0) {
            break;
        }
    }

    mdb_cursor_close(c);

    if (ret != 0) {
        return ret;
    }

    return rc == 0 || rc == MDB_NOTFOUND
           ? 0 : cr_mdb_rc(st, rc, "cannot read parents");
}
