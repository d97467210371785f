/*
 * cr_scans: the scan store, an LMDB environment in one file, separate from
 * the binding store (the loader keeps sole write access to that one).
 *
 * Pure C (LMDB only).  nginx's workers read it when a code is not in the
 * shared-memory counters and write it in batches, one worker at a time.
 *
 *   scans   fp[8] | kid u8 | serial u40 BE  ->  count u32 | first i64, LE
 *           fp[8] | kid u8 | serial u40 BE | 'v'  ->  the same, of right
 *                   PINs (code_router_verify): a count and a first time
 *                   of their own, next to the code's scans
 *   meta    "version"  ->  CR_SCANS_VERSION, u32 LE
 *
 *           fp[8] | kid u8 | serial u40 BE | 'q'  ->  count u32 | first i64 |
 *                   the request id: the code's last right PIN's request
 *                   and its answer (a retried POST replays it)
 *           fp[8] | kid u8 | serial u40 BE | 'r'  ->  redeemed_at i64 LE |
 *                   the request id (1..64 bytes): the code's one prize
 *                   (cr_scans_redeem), its request id for retries
 *
 * fp is the fingerprint of the key that signed the code (cr_key_t.fp):
 * the same (kid, serial) under two brands' keys is two codes, counted
 * apart.  Version 1 (no meta, keys without fp) is refused with a clear
 * error: its counts cannot be told apart by key.
 *
 * The 'v' records were added in version 2 without a new version: a store
 * without them reads as "never verified", and an older reader never asks
 * for them.
 *
 * A put never lowers a stored count or moves a first scan later, so a
 * late or repeated batch cannot lose scans.
 */

#ifndef CR_SCANS_H
#define CR_SCANS_H

#include <stddef.h>
#include <stdint.h>


#define CR_SCANS_NOTFOUND   -2
#define CR_SCANS_FULL       -3          /* the map is at its limit */
#define CR_SCANS_REFUSED    -4          /* scans past their share */

#define CR_SCANS_VERSION    2
#define CR_SCANS_FP_LEN     8           /* = CR_KEY_FP_LEN */

/* cr_scan_t.kind */
#define CR_SCANS_SCANS      0           /* scans of the public code */
#define CR_SCANS_VERIFIED   1           /* right PINs */

#define CR_SCANS_DEFAULT_MAP  (1024ull << 20)
#define CR_SCANS_DEFAULT_MAX  (16ull << 30)

/*
 * Of the limit (cr_scans_limit), scans may fill CR_SCANS_SCANS_SHARE
 * eighths; the rest is kept for right PINs (and for the pages a write
 * copies), so that no amount of scans, of any brand sharing the store,
 * stops a verification being stored.  From CR_SCANS_ALERT_SHARE eighths
 * cr_scans_usage() says "alert".
 */
#define CR_SCANS_SCANS_SHARE  6
#define CR_SCANS_ALERT_SHARE  5

/* cr_scans_open() flags */
#define CR_SCANS_CHECK      0x01        /* validate without the lock file,
                                         * create nothing (nginx -t) */
#define CR_SCANS_READ       0x02        /* read an existing store beside
                                         * nginx (code-router scans): no
                                         * writes, nothing created but the
                                         * lock file */


typedef struct {
    uint8_t    fp[CR_SCANS_FP_LEN];     /* the key's fingerprint */
    uint8_t    kid;
    uint8_t    kind;                    /* CR_SCANS_SCANS or _VERIFIED */
    uint64_t   serial;
    uint32_t   count;
    int64_t    first;                   /* Unix seconds; 0: never */
} cr_scan_t;

typedef struct cr_scans_s  cr_scans_t;


/*
 * Opens (creating it if need be) or, with CR_SCANS_CHECK, validates the
 * store at path.  0, or -1 with err set: e.g. another LMDB database, or a
 * scan store of another version.
 */
int cr_scans_open(cr_scans_t **sc, const char *path, uint64_t map_size,
    int flags, char *err, size_t errlen);
void cr_scans_close(cr_scans_t *sc);
const char *cr_scans_error(cr_scans_t *sc);

/* The record of (fp, kid, serial) of that kind: 0 and *v filled,
 * CR_SCANS_NOTFOUND, or -1. */
int cr_scans_get(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN],
    unsigned kid, uint64_t serial, unsigned kind, cr_scan_t *v);

/*
 * Merges n records in one write transaction: 0, CR_SCANS_FULL,
 * CR_SCANS_REFUSED or -1 (nothing written).  Sorted with cr_scans_cmp
 * (the store's key order), the records share their B-tree pages.
 *
 * A map too small is grown, doubling, up to the limit (the caller is the
 * store's one writer: nginx's flush); other processes adopt it between
 * their transactions.  CR_SCANS_FULL: the map is at the limit, nothing
 * written.  A batch that holds scans (CR_SCANS_SCANS) and would leave
 * the store's data past the scans' share of the limit is
 * CR_SCANS_REFUSED: only the records of codes the store already held are
 * written (a record exists once its count is above 0).  nginx's flush
 * puts scans only: right PINs are written by cr_scans_verify_n, which
 * the scans' share never refuses.
 */
int cr_scans_put(cr_scans_t *sc, const cr_scan_t *v, size_t n);

/*
 * A right PIN of (fp, kid, serial), durably: in one write transaction,
 * the 'v' record's count plus one (first = now if it had none), committed
 * with LMDB's synchronous commit (fsync) before it returns, so a verdict
 * said after it survives a power cut.  *v gets the new count and first
 * time.  0, CR_SCANS_FULL or -1 (cr_scans_error).  Blocks on the disk:
 * nginx calls it in a thread pool.  Never mixes with a flush's merge: a
 * put keeps the larger count, so a late flush cannot lower it.
 */
int cr_scans_verify(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN],
    unsigned kid, uint64_t serial, int64_t now, cr_scan_t *v)
    __attribute__((warn_unused_result));

/*
 * The same for n right PINs in one transaction and one fsync (a group
 * commit): v[i]'s fp, kid and serial in, its count and first time out,
 * in order (the same code twice counts twice).  req (or NULL): each one's
 * request id (NUL-terminated, 1 to CR_SCANS_REQUEST_MAX bytes; NULL or ""
 * for none): the code's last request id is kept ('q'), and the same one
 * again is answered its first answer, counting nothing (replayed[i] = 1,
 * if replayed is not NULL).  All are committed, or none (the error is
 * the batch's).
 */
int cr_scans_verify_n(cr_scans_t *sc, cr_scan_t *v, const char *const *req,
    int *replayed, size_t n, int64_t now)
    __attribute__((warn_unused_result));

/* cr_scans_redeem() results besides -1 */
#define CR_SCANS_REDEEMED   0           /* this request redeemed it now */
#define CR_SCANS_REPLAYED   1           /* this request, earlier */
#define CR_SCANS_TAKEN      2           /* another request, earlier */

#define CR_SCANS_REQUEST_MAX  64

/*
 * Redeems the code's prize for request id request (1 to
 * CR_SCANS_REQUEST_MAX bytes), durably (a synchronous commit) unless it
 * was redeemed before: CR_SCANS_REDEEMED, _REPLAYED or _TAKEN with *at the
 * redemption's time, CR_SCANS_FULL or -1.  Blocks on the disk.
 */
int cr_scans_redeem(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN],
    unsigned kid, uint64_t serial, const char *request, size_t len,
    int64_t now, int64_t *at)
    __attribute__((warn_unused_result));

/*
 * Every record in key order, in one read snapshot: fn(ctx, record) returns
 * 0 to go on, anything else to stop (returned as is).  A code's
 * CR_SCANS_VERIFIED record comes right after its CR_SCANS_SCANS one;
 * redemptions ('r') are not counts and are skipped.
 * Returns 0, fn's value, or -1 (a bad record, or LMDB: see
 * cr_scans_error).
 */
int cr_scans_each(cr_scans_t *sc, int (*fn)(void *ctx, const cr_scan_t *v),
    void *ctx);

/*
 * The same, one slice at a time, each in a read snapshot of its own: the
 * records whose keys sort after *from's (from the first, if from is
 * NULL), at most max of them.  *n gets how many were visited (below max:
 * the last slice) and *last the last one (to pass as from next time).
 * Returns as cr_scans_each.  A record written between two slices is
 * visited if its key sorts after *last.
 */
int cr_scans_each_from(cr_scans_t *sc, const cr_scan_t *from, size_t max,
    int (*fn)(void *ctx, const cr_scan_t *v), void *ctx, cr_scan_t *last,
    size_t *n);

/* What "code-router stat" says of a scan store. */
typedef struct {
    uint32_t   version;
    uint64_t   scanned;                 /* CR_SCANS_SCANS records */
    uint64_t   verified;                /* CR_SCANS_VERIFIED records */
    uint64_t   map_size;
    uint64_t   map_used;
    unsigned   readers;
    unsigned   max_readers;
} cr_scans_info_t;

/* Fills *info (counting the records: one pass); 0 or -1. */
int cr_scans_info(cr_scans_t *sc, cr_scans_info_t *info);

/* The limit the map may grow to (default CR_SCANS_DEFAULT_MAX, never
 * below the map the store was opened with). */
void cr_scans_limit(cr_scans_t *sc, uint64_t max);

typedef struct {
    uint64_t   used;                    /* bytes of the counts' pages */
    uint64_t   map;                     /* this process's map */
    uint64_t   limit;
    int        alert;                   /* used past the alert share */
} cr_scans_usage_t;

/* The store's size now (a read transaction): 0, or -1 with the error. */
int cr_scans_usage(cr_scans_t *sc, cr_scans_usage_t *u);

/* qsort's comparison of two cr_scan_t in the store's key order. */
int cr_scans_cmp(const void *a, const void *b);

/* Clears reader slots of dead processes; returns how many, or -1. */
int cr_scans_reader_check(cr_scans_t *sc);

#endif /* CR_SCANS_H */
