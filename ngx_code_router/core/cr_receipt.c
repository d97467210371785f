/*
 * cr_receipt: receipts in the scan store.  See cr_receipt.h.
 */

#include <stdio.h>
#include <string.h>

#include <lmdb.h>

#include "cr_receipt.h"
#include "cr_scans_int.h"
#include "cr_valid.h"


#define CR_RECEIPT_KEY  (CR_SCANS_FP_LEN + 6)


static int cr_receipt_txn(cr_scans_t *sc, cr_receipt_t *r);


int
cr_scans_receive(cr_scans_t *sc, cr_receipt_t *r)
{
    int  rc;

    do {
        rc = cr_receipt_txn(sc, r);
    } while (rc == CR_SCANS_FULL && cr_scans_grown(sc, &rc));

    return rc;
}


/* One try of cr_scans_receive: the first receipt, or this one put. */
static int
cr_receipt_txn(cr_scans_t *sc, cr_receipt_t *r)
{
    int       rc;
    size_t    n;
    uint8_t   k[CR_RECEIPT_KEY], d[CR_RECEIPT_VAL_MAX];
    MDB_dbi   dbi;
    MDB_txn  *txn;
    MDB_val   key, val;

    txn = NULL;

    rc = cr_scans_begin(sc, 0, &txn, CR_SCANS_WRITE_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "begin");
    }

    /* Made by the first receipt: a store without one is unchanged. */
    rc = mdb_dbi_open(txn, "receipts", MDB_CREATE, &dbi);
    if (rc != 0) {
        goto failed;
    }

    key.mv_data = k;
    key.mv_size = cr_scans_key(k, r->fp, r->kid, r->serial, CR_SCANS_SCANS);

    n = cr_receipt_encode(d, r);
    val.mv_data = d;
    val.mv_size = n;

    /* The first receipt wins: NOOVERWRITE gives back the one stored. */
    rc = mdb_put(txn, dbi, &key, &val, MDB_NOOVERWRITE);

    if (rc == MDB_KEYEXIST) {
        if (cr_receipt_decode(val.mv_data, val.mv_size, r) != 0) {
            snprintf(sc->err, sizeof(sc->err), "scan store: a receipt of "
                     "%zu bytes is not one", val.mv_size);
            mdb_txn_abort(txn);
            cr_scans_end(sc);
            return -1;
        }

        mdb_txn_abort(txn);
        cr_scans_end(sc);

        return CR_RECEIPT_BEFORE;
    }

    if (rc != 0) {
        goto failed;
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return cr_scans_write_failed(sc, NULL, rc, "commit");
    }

    cr_scans_end(sc);

    return CR_RECEIPT_NEW;

failed:

    return cr_scans_write_failed(sc, txn, rc, "receive");
}


int
cr_scans_each_receipt(cr_scans_t *sc,
    int (*fn)(void *ctx, const cr_receipt_t *r), void *ctx)
{
    int            rc, out, i;
    MDB_dbi        dbi;
    MDB_txn       *txn;
    MDB_val        key, val;
    MDB_cursor    *cur;
    cr_receipt_t   r;
    const uint8_t *k;

    txn = NULL;

    rc = cr_scans_begin(sc, MDB_RDONLY, &txn, CR_SCANS_WRITE_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "read");
    }

    rc = mdb_dbi_open(txn, "receipts", 0, &dbi);
    if (rc == 0) {
        rc = mdb_cursor_open(txn, dbi, &cur);
    }

    if (rc != 0) {
        mdb_txn_abort(txn);
        cr_scans_end(sc);
        return rc == MDB_NOTFOUND ? 0 : cr_scans_fail(sc, rc, "receipts");
    }

    out = 0;

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        k = key.mv_data;

        if (key.mv_size != CR_RECEIPT_KEY
            || cr_receipt_decode(val.mv_data, val.mv_size, &r) != 0)
        {
            snprintf(sc->err, sizeof(sc->err), "scan store: a receipt with "
                     "a %zu-byte key and a %zu-byte value is not one of "
                     "ours", key.mv_size, val.mv_size);
            out = -1;
            break;
        }

        memcpy(r.fp, k, CR_SCANS_FP_LEN);
        r.kid = k[CR_SCANS_FP_LEN];
        r.serial = 0;

        for (i = 0; i < 5; i++) {
            r.serial = r.serial << 8 | k[CR_SCANS_FP_LEN + 1 + i];
        }

        out = fn(ctx, &r);
        if (out != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    cr_scans_end(sc);

    if (out != 0) {
        return out;
    }

    return rc == MDB_NOTFOUND ? 0 : cr_scans_fail(sc, rc, "read");
}


size_t
cr_receipt_encode(uint8_t *d, const cr_receipt_t *r)
{
    int     i;
    size_t  n;

    for (i = 0; i < 8; i++) {
        d[i] = (uint8_t) ((uint64_t) r->at >> (8 * i));
    }

    n = 8;
    d[n++] = r->store_len;
    memcpy(d + n, r->store, r->store_len);
    n += r->store_len;
    d[n++] = r->dealer_len;
    memcpy(d + n, r->dealer, r->dealer_len);

    return n + r->dealer_len;
}


int
cr_receipt_decode(const uint8_t *p, size_t n, cr_receipt_t *r)
{
    int       i;
    size_t    s, dl;
    uint64_t  t;

    if (n < 10) {
        return -1;
    }

    t = 0;

    for (i = 7; i >= 0; i--) {
        t = (t << 8) | p[i];
    }

    s = p[8];

    if (s == 0 || s > CR_RECEIPT_ID_MAX || n < 10 + s) {
        return -1;
    }

    dl = p[9 + s];

    if (dl > CR_RECEIPT_ID_MAX || n != 10 + s + dl
        || cr_valid_id((const char *) p + 9, s) != NULL
        || (dl && cr_valid_id((const char *) p + 10 + s, dl) != NULL))
    {
        return -1;
    }

    r->at = (int64_t) t;
    r->store_len = (uint8_t) s;
    memcpy(r->store, p + 9, s);
    r->dealer_len = (uint8_t) dl;
    memcpy(r->dealer, p + 10 + s, dl);

    return 0;
}
