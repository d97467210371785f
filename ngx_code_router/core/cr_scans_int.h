/*
 * cr_scans_int: the scan store's state and the helpers its files share
 * (cr_scans.c: counts, PINs, prizes; cr_receipt.c: receipts).  Private
 * to them.
 */

#ifndef CR_SCANS_INT_H
#define CR_SCANS_INT_H

#include <pthread.h>

#include <lmdb.h>

#include "cr_scans.h"


struct cr_scans_s {
    MDB_env    *env;
    MDB_dbi     dbi;
    MDB_dbi     meta;
    MDB_txn    *rtxn;                   /* reset between reads */

    /* LMDB lets mdb_env_set_mapsize() run only while no transaction of
     * this process is active, and nginx reads in the event loop while a
     * thread-pool thread writes: every transaction is counted in "live",
     * and the map is adopted, under "lock", only when none is. */
    pthread_mutex_t   lock;
    unsigned          live;

    uint64_t          max;              /* the map's limit */

    char        err[512];
};


/* An LMDB error rc in what: -1, sc->err set. */
int cr_scans_fail(cr_scans_t *sc, int rc, const char *what);

/* Begins a txn (or renews *txn) counted live, adopting a grown map: 0 or
 * an LMDB error; cr_scans_end() when it is over. */
int cr_scans_begin(cr_scans_t *sc, unsigned flags, MDB_txn **txn,
    int tries);
void cr_scans_end(cr_scans_t *sc);

/* A write txn that failed with rc, aborted (txn NULL: its commit) and
 * ended: CR_SCANS_FULL for a full map, else -1. */
int cr_scans_write_failed(cr_scans_t *sc, MDB_txn *txn, int rc,
    const char *what);

/* After a try that found the map full: 1 grown (try again), or 0 with
 * *rc the answer. */
int cr_scans_grown(cr_scans_t *sc, int *rc);

/* Tries, 100 us apart, to adopt a grown map while another txn is live:
 * that one is a begin about to adopt it (a write txn, once begun, holds
 * LMDB's write lock, so no other process can grow the map meanwhile). */
#define CR_SCANS_READ_TRIES     10      /* the event loop: 1 ms at most */
#define CR_SCANS_WRITE_TRIES    1000    /* a pool thread: 100 ms */

/* A record's key: fp | kid | serial (big-endian), and a kind's byte
 * after it but for CR_SCANS_SCANS; at most CR_SCANS_FP_LEN + 7 bytes.
 * Returns its length. */
size_t cr_scans_key(uint8_t *k, const uint8_t *fp, unsigned kid,
    uint64_t serial, unsigned kind);

#endif /* CR_SCANS_INT_H */
