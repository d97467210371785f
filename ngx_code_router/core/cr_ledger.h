/*
 * cr_ledger: the shared verification ledger in PostgreSQL, through libpq.
 *
 * Pure C (libpq only), shared by the nginx module (one connection per
 * thread of a thread pool, each thread's own cr_ledger_conn_t) and the
 * CLI (code-router ledger init, show).
 *
 * One right PIN is one statement, SELECT * FROM code_router_verify(...),
 * a PL/pgSQL function of the schema (cr_ledger.c has its text):
 *   - "late" without writing anything when the database's clock is past
 *     the deadline the edge sent (the edge has answered "unavailable"
 *     by then: a statement that waited behind a stalled server must not
 *     count once it wakes);
 *   - "replayed" with the first answer's count and time when that request
 *     id was counted before (a retried POST, on any node, counts once);
 *   - else "counted": the code's count plus one, its first time (the
 *     database's now() of the first) kept.
 * Rows are keyed by the key's fingerprint, key id and serial, as the scan
 * store keys them.
 *
 * Times are Unix seconds; deadlines Unix microseconds, of this host's
 * clock: the connection measures the database's offset when it connects
 * and sends the deadline in the database's clock.
 */

#ifndef CR_LEDGER_H
#define CR_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "cr_guard.h"


#define CR_LEDGER_SCHEMA       5        /* code_router_meta schema_version:
                                         * 1 verifications, 2 redemptions,
                                         * 3 the guard's records, 4 the
                                         * nodes' scan counts, 5 receipts
                                         * of cases and pallets */
#define CR_LEDGER_ID_MAX       64       /* a receipt's store, dealer */
#define CR_LEDGER_FP_LEN       8        /* = CR_KEY_FP_LEN */
#define CR_LEDGER_REQUEST_MAX  64       /* a request id's bytes, at most */
#define CR_LEDGER_CLIENT_MAX   16       /* a guard client id's, at most */
#define CR_LEDGER_NODE_MAX     64       /* a node name's bytes, at most */
#define CR_LEDGER_SCANS_MAX    1024     /* codes per cr_ledger_scans */
#define CR_LEDGER_NODES_SHOWN  16       /* nodes show lists, at most */

/* Results besides 0 and -1. */
#define CR_LEDGER_TIMEOUT      -2       /* the deadline passed first */
#define CR_LEDGER_NOTFOUND     -3       /* show: never verified */


typedef enum {
    CR_LEDGER_COUNTED = 0,
    CR_LEDGER_REPLAYED,
    CR_LEDGER_LATE
} cr_ledger_outcome_e;

typedef struct {
    uint8_t               fp[CR_LEDGER_FP_LEN];
    unsigned              kid;
    uint64_t              serial;
} cr_ledger_code_t;

typedef struct {
    cr_ledger_outcome_e   outcome;
    uint32_t              count;        /* verifications, this one included */
    int64_t               first;        /* the first's time, Unix seconds */
} cr_ledger_answer_t;

typedef enum {
    CR_LEDGER_REDEEMED = 0,             /* by this request, now */
    CR_LEDGER_REDEEM_REPLAYED,          /* by this request, before */
    CR_LEDGER_ALREADY_REDEEMED,         /* by another request */
    CR_LEDGER_REDEEM_LATE
} cr_ledger_redeemed_e;

typedef struct {
    cr_ledger_redeemed_e  outcome;
    int64_t               at;           /* the redemption's time */
} cr_ledger_redemption_t;

/* What code_router_guard says of one PIN check (times in this host's
 * clock). */
typedef enum {
    CR_LEDGER_GUARD_RIGHT = 0,          /* admitted; the client cleared */
    CR_LEDGER_GUARD_WRONG,              /* admitted; counted */
    CR_LEDGER_GUARD_LOCKED,             /* not admitted: retry at */
    CR_LEDGER_GUARD_LATE
} cr_ledger_guarded_e;

typedef struct {
    cr_ledger_guarded_e   outcome;
    uint32_t              fails;        /* the client's wrong PINs */
    int64_t               until;        /* the client's lock; 0: none */
    int64_t               tat;          /* the code's budget (GCRA) */
    int64_t               retry;        /* locked: try again at */
} cr_ledger_guard_t;

/* One code's record, for code-router ledger show. */
typedef struct {
    uint32_t              count;
    int64_t               first;
    int64_t               last;
    uint64_t              requests;     /* request ids remembered */
    int64_t               redeemed;     /* its prize's time; 0: not */
} cr_ledger_record_t;

/* One code's scans on this node, sent by cr_ledger_scans: count in;
 * its count in the ledger (this node's, never below count unless the
 * ledger kept more) and the total over every node, out. */
typedef struct {
    cr_ledger_code_t      code;
    uint32_t              count;        /* this node's, cumulative */
    uint32_t              node;         /* out: the ledger's, this node */
    uint32_t              total;        /* out: every node's sum */
} cr_ledger_scan_t;

/* A code's scans in the ledger, for code-router ledger show. */
typedef struct {
    uint64_t              total;
    size_t                nodes;        /* in the ledger (may be more
                                         * than shown) */
    char                  name[CR_LEDGER_NODES_SHOWN][CR_LEDGER_NODE_MAX + 1];
    uint64_t              count[CR_LEDGER_NODES_SHOWN];
} cr_ledger_scans_record_t;

typedef struct cr_ledger_conn_s  cr_ledger_conn_t;


/*
 * A connection to conninfo (a libpq connection string or URI), not yet
 * made: the first call that needs it connects (and reconnects after an
 * error or a timeout), and sets the server's statement_timeout to
 * timeout_ms (the caller's own timeout).  conninfo is copied.  NULL for
 * memory.  A connection is used by one thread at a time.
 */
cr_ledger_conn_t *cr_ledger_conn_new(const char *conninfo,
    unsigned timeout_ms) __attribute__((nonnull));
void cr_ledger_conn_free(cr_ledger_conn_t *c);

/* The last error of c, for the log. */
const char *cr_ledger_error(cr_ledger_conn_t *c) __attribute__((nonnull));

/*
 * Records a right PIN of code under request id (1 to CR_LEDGER_REQUEST_MAX
 * bytes of [0-9A-Za-z_-]) before deadline_us: 0 and *a filled,
 * CR_LEDGER_TIMEOUT (the connection is dropped: the statement may still
 * run, and then answers "late" or is replayed by the request's retry), or
 * -1 (cr_ledger_error).  Connects if need be, within the same deadline.
 */
int cr_ledger_verify(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *request, int64_t deadline_us, cr_ledger_answer_t *a)
    __attribute__((nonnull, warn_unused_result));

/*
 * Redeems code's prize (of campaign, recorded with it) for request id
 * request before deadline_us: code_router_redeem, version 2 of the
 * schema.  0 and *a (redeemed now, replayed, already redeemed by
 * another request, or late), CR_LEDGER_TIMEOUT or -1, as
 * cr_ledger_verify.
 */
int cr_ledger_redeem(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *request, const char *campaign, int64_t deadline_us,
    cr_ledger_redemption_t *a)
    __attribute__((nonnull, warn_unused_result));

/*
 * The guard's policy p (cr_guard), applied in the ledger to one PIN
 * check of code by client (1 to CR_LEDGER_CLIENT_MAX bytes: the node's
 * address id), whose PIN the caller found right or wrong but has not
 * said: code_router_guard, version 3 of the schema.  Admitted, a wrong
 * PIN counts for the client and spends one of the code's tokens, a right
 * one clears the client; a client that is locked, or past its free wrong
 * PINs while the code's tokens are spent, is "locked" and nothing is
 * recorded.  So every node's checks of a code share one budget.  0 and
 * *g, CR_LEDGER_TIMEOUT or -1, as cr_ledger_verify.
 */
int cr_ledger_guard(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const uint8_t *client, size_t client_len, int right,
    const cr_guard_policy_t *p, int64_t deadline_us, cr_ledger_guard_t *g)
    __attribute__((nonnull, warn_unused_result));

/* The record of code (verifications and prize): 0,
 * CR_LEDGER_NOTFOUND (neither), CR_LEDGER_TIMEOUT or -1. */
int cr_ledger_show(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    int64_t deadline_us, cr_ledger_record_t *rec)
    __attribute__((nonnull, warn_unused_result));

/*
 * Adds this node's (node: 1 to CR_LEDGER_NODE_MAX bytes of
 * cr_ledger_node_valid) cumulative scan counts of n codes (1 to
 * CR_LEDGER_SCANS_MAX, each code once) to the ledger in one statement,
 * code_router_scans (version 4): each code's row of this node keeps the
 * greater of its count and the one sent, so a replay, a late statement
 * or a count sent again after an outage changes nothing, and the total
 * is the sum over the nodes.  s[i].node and s[i].total filled.  0,
 * CR_LEDGER_TIMEOUT or -1, as cr_ledger_verify (all or nothing).
 */
int cr_ledger_scans(cr_ledger_conn_t *c, const char *node,
    cr_ledger_scan_t *s, size_t n, int64_t deadline_us)
    __attribute__((nonnull, warn_unused_result));

/* One code the other nodes scanned: their sum (cr_ledger_scans_since). */
typedef struct {
    cr_ledger_code_t      code;
    uint32_t              others;
} cr_ledger_others_t;

/*
 * The codes other nodes than node counted since since_us (this host's
 * clock; rows are stamped with the database's transaction time, so the
 * caller overlaps its polls by more than a statement may take), with the
 * other nodes' sum of each: fn(ctx, one) for each, 0 to go on.  0 (fn's
 * non-zero stops it and is returned), CR_LEDGER_TIMEOUT or -1.
 */
int cr_ledger_scans_since(cr_ledger_conn_t *c, const char *node,
    int64_t since_us, int64_t deadline_us,
    int (*fn)(void *ctx, const cr_ledger_others_t *one), void *ctx)
    __attribute__((warn_unused_result));

/* One row of code_router_scans_since: fp (16 hex digits), kid (decimal,
 * at most 255), serial (decimal, at most 2^40 - 1), others (decimal, held
 * at UINT32_MAX).  0 and *one, or -1.  Fuzzed. */
int cr_ledger_parse_others(const char *fp, size_t fp_len, const char *kid,
    size_t kid_len, const char *serial, size_t serial_len,
    const char *others, size_t others_len, cr_ledger_others_t *one)
    __attribute__((warn_unused_result));

/* A receipt of a case or pallet (code): its store, its dealer ("":
 * none), its time; fresh: made by this call. */
typedef struct {
    cr_ledger_code_t      code;
    int                   fresh;
    int64_t               at;
    char                  store[CR_LEDGER_ID_MAX + 1];
    char                  dealer[CR_LEDGER_ID_MAX + 1];
} cr_ledger_receipt_t;

/*
 * The receipt of code by store (and dealer, or ""; both ids of
 * [0-9A-Za-z._-], 1 (dealer 0) to CR_LEDGER_ID_MAX bytes, checked by the
 * caller) unless it was received before (version 5): *out the first
 * receipt, out->fresh if it is this one.  Committed before it returns.
 * 0, CR_LEDGER_TIMEOUT or -1, as cr_ledger_verify.
 */
int cr_ledger_receive(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *store, const char *dealer, int64_t deadline_us,
    cr_ledger_receipt_t *out)
    __attribute__((nonnull, warn_unused_result));

/* Every receipt made since since_us (this host's clock; overlap the
 * polls, as for scans): fn(ctx, one) for each in time order, 0 to go
 * on.  0 (fn's non-zero stops it and is returned), CR_LEDGER_TIMEOUT or
 * -1. */
int cr_ledger_receipts_since(cr_ledger_conn_t *c, int64_t since_us,
    int64_t deadline_us,
    int (*fn)(void *ctx, const cr_ledger_receipt_t *one), void *ctx)
    __attribute__((warn_unused_result));

/* One row's store, dealer and at (decimal Unix seconds) of a receipt:
 * 0 and *one's, or -1.  Fuzzed. */
int cr_ledger_parse_receipt(const char *store, size_t store_len,
    const char *dealer, size_t dealer_len, const char *at, size_t at_len,
    cr_ledger_receipt_t *one)
    __attribute__((warn_unused_result));

/* code's scans in the ledger: 0 (rec->nodes 0: never counted), or
 * CR_LEDGER_TIMEOUT or -1. */
int cr_ledger_show_scans(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    int64_t deadline_us, cr_ledger_scans_record_t *rec)
    __attribute__((nonnull, warn_unused_result));

/* Whether s[0..n) is a node name: 1 to CR_LEDGER_NODE_MAX bytes of
 * [0-9A-Za-z._-]. */
int cr_ledger_node_valid(const char *s, size_t n);

/*
 * One answer row of code_router_scans (text): the code's place in the
 * batch ord (decimal, 1 to n), this node's count (at most UINT32_MAX, as
 * sent) and the total (decimal, at least node; a total past UINT32_MAX,
 * the zone's counts' width, is held at it).  0 with *place (0-based), *node and
 * *total, or -1.  Fuzzed.
 */
int cr_ledger_parse_scans(const char *ord, size_t ord_len, const char *node,
    size_t node_len, const char *total, size_t total_len, size_t n,
    size_t *place, uint32_t *node_count, uint32_t *total_count)
    __attribute__((warn_unused_result));

/*
 * Creates the schema, or upgrades an older one, in one transaction (under
 * an advisory lock: two inits do not interleave).  *from: the version
 * found (0: none).  0, or -1; a newer schema than CR_LEDGER_SCHEMA is
 * refused.
 */
int cr_ledger_init(cr_ledger_conn_t *c, int64_t deadline_us, int *from)
    __attribute__((nonnull, warn_unused_result));

/* Whether s[0..n) is a request id as cr_ledger_verify takes it. */
int cr_ledger_request_valid(const char *s, size_t n);

/*
 * The answer row of code_router_verify as libpq gives it (text format):
 * outcome ("counted", "replayed", "late"), count (a decimal u32, at least
 * 1 unless late) and first (decimal Unix seconds).  0 and *a filled, or
 * -1 for anything else.  Fuzzed (t/fuzz/fuzz_ledger.c).
 */
int cr_ledger_parse_answer(const char *outcome, size_t outcome_len,
    const char *count, size_t count_len, const char *first,
    size_t first_len, cr_ledger_answer_t *a)
    __attribute__((warn_unused_result));

/* The answer row of code_router_redeem: outcome ("redeemed",
 * "replayed", "already_redeemed", "late") and the time (decimal Unix
 * seconds, not 0 unless late).  0 and *a, or -1.  Fuzzed. */
int cr_ledger_parse_redemption(const char *outcome, size_t outcome_len,
    const char *at, size_t at_len, cr_ledger_redemption_t *a)
    __attribute__((warn_unused_result));

/* The answer row of code_router_guard: outcome ("right", "wrong",
 * "locked", "late"), the client's wrong PINs and lock, the code's tat,
 * the time to retry (not 0 exactly when locked; a wrong PIN counts at
 * least 1), all decimal.  0 and *g, or -1.  Fuzzed. */
int cr_ledger_parse_guard(const char *outcome, size_t outcome_len,
    const char *fails, size_t fails_len, const char *until,
    size_t until_len, const char *tat, size_t tat_len, const char *retry,
    size_t retry_len, cr_ledger_guard_t *g)
    __attribute__((warn_unused_result));

/* Unix microseconds of this host's clock. */
int64_t cr_ledger_now_us(void);

#endif /* CR_LEDGER_H */
