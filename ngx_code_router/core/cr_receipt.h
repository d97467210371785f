/*
 * cr_receipt: a case's or pallet's receipt by a store (收货), kept in the
 * scan store (cr_scans.h) when there is no ledger: the first receipt of a
 * code wins, for good, and a later one is answered with it.
 *
 * Pure C (LMDB only).  nginx writes a receipt in a thread pool before it
 * answers (POST .../CODE/receive, ngx_http_code_router_receipt.c) and
 * reads every receipt back into shared memory when a worker opens the
 * store; docs/loading.md, "Activation on receipt".
 *
 * The scan store's sub-database "receipts" (made by the first receipt, so
 * a store without one is the store it always was, and older readers never
 * open it):
 *
 *   receipts  fp[8] | kid u8 | serial u40 BE  ->  at i64 LE | store len
 *             u8 | store | dealer len u8 | dealer
 *
 * fp is the fingerprint of the key that signed the code, as for scans:
 * two brands' (kid, serial) are two codes.
 */

#ifndef CR_RECEIPT_H
#define CR_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "cr_scans.h"


#define CR_RECEIPT_ID_MAX   64          /* store and dealer ids, bytes:
                                         * cr_valid_id() */
#define CR_RECEIPT_VAL_MAX  (8 + 2 + 2 * CR_RECEIPT_ID_MAX)

/* cr_scans_receive() results besides -1 and CR_SCANS_FULL */
#define CR_RECEIPT_NEW      0           /* recorded now */
#define CR_RECEIPT_BEFORE   1           /* received before: the first */


typedef struct {
    uint8_t    fp[CR_SCANS_FP_LEN];
    uint8_t    kid;
    uint64_t   serial;                  /* the case's or the pallet's */
    int64_t    at;                      /* Unix seconds */
    uint8_t    store_len;
    uint8_t    dealer_len;              /* 0: none given */
    char       store[CR_RECEIPT_ID_MAX];
    char       dealer[CR_RECEIPT_ID_MAX];
} cr_receipt_t;


/*
 * Records receipt *r (its at the time now) of (fp, kid, serial) unless
 * the code was received before: in one write transaction, committed with
 * LMDB's synchronous commit (the scan store has no MDB_NOSYNC), so that a
 * receipt answered is a receipt kept.  CR_RECEIPT_NEW, or
 * CR_RECEIPT_BEFORE with *r replaced by the first receipt;
 * CR_SCANS_FULL or -1 (cr_scans_error), nothing written.  Blocks on the
 * disk: nginx calls it in a thread pool.
 */
int cr_scans_receive(cr_scans_t *sc, cr_receipt_t *r)
    __attribute__((warn_unused_result));

/*
 * Every receipt, in key order, in one read snapshot: fn(ctx, r) returns 0
 * to go on, anything else to stop (returned as is).  0 (also for a store
 * without receipts), fn's value, or -1 (a bad record, or LMDB).
 */
int cr_scans_each_receipt(cr_scans_t *sc,
    int (*fn)(void *ctx, const cr_receipt_t *r), void *ctx);

/* A receipt's value (at, store, dealer) at d, which holds
 * CR_RECEIPT_VAL_MAX bytes: its length.  decode: 0, or -1 for a value
 * that is not one (lengths out of bounds, an id cr_valid_id refuses). */
size_t cr_receipt_encode(uint8_t *d, const cr_receipt_t *r);
int cr_receipt_decode(const uint8_t *p, size_t n, cr_receipt_t *r);

#endif /* CR_RECEIPT_H */
