/*
 * cr_guard: how many wrong PINs a client may send, written once.
 *
 * Pure C, no I/O, no clock (the buyer key below takes random bytes from
 * libsodium): the module keeps the two small states below
 * in shared memory (one per code and client address, one per code, kept
 * apart) and asks these functions, passing the time.  docs/verify.md
 * gives the numbers this policy allows an attacker over a year.
 *
 * Per (code, address):  the first CR_GUARD_FREE wrong PINs are answered
 *   at once; the n-th wrong PIN after those locks the address out of this
 *   code for base * 2^(n - free) seconds, at most cap.  A right PIN from
 *   the address clears its record.  A record with a wrong PIN in it is
 *   never forgotten (cr_guard_addr_kept): forgetting it would give its
 *   address a fresh budget.
 *
 * Per code:  a ceiling on wrong PINs from all addresses together, a
 *   token bucket (GCRA: one token each "interval" seconds, "burst" at
 *   most).  While it is empty the code is "under pressure": an address
 *   that has used its free wrong PINs waits for the next token; an
 *   address that has used fewer is still checked.  So a stranger, or a
 *   million of them, can never keep a buyer who made a typo or two from
 *   checking the PIN on the package -- and the ceiling only ever answers
 *   "locked, try again at T", never anything about the item.  A code's
 *   record may be forgotten only while its bucket is full
 *   (cr_guard_code_kept), when it says no more than no record.
 *
 * The per-code functions (cr_guard_code_*) are the whole of the budget:
 * a ledger that sums several nodes' wrong PINs can keep the same record
 * by spending there what other nodes report.
 */

#ifndef CR_GUARD_H
#define CR_GUARD_H

#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint32_t   free;            /* wrong PINs before any lock: 5 */
    uint32_t   base;            /* seconds of the first lock: 60 */
    uint32_t   cap;             /* the longest lock: 86400 */
    uint32_t   interval;        /* per code: a token each: 900 */
    uint32_t   burst;           /* per code: tokens at most: 100 */
} cr_guard_policy_t;

#define CR_GUARD_DEFAULT  { 5, 60, 86400, 900, 100 }


/* One client address and one code.  All zero: no record. */
typedef struct {
    uint32_t   fails;           /* wrong PINs since the last right one */
    int64_t    until;           /* locked until (Unix seconds); 0: not */
} cr_guard_addr_t;

/* One code, all addresses.  All zero: a full bucket. */
typedef struct {
    int64_t    tat;             /* GCRA's theoretical arrival time */
} cr_guard_code_t;


/*
 * May this address have a PIN checked for this code at "now"?  Returns
 * 0 if so; else the time (> now) at which it may try again -- its own
 * lock, or the code's next token if it has used its free wrong PINs and
 * the code is under pressure, whichever is later.
 */
int64_t cr_guard_admit(const cr_guard_policy_t *p, const cr_guard_addr_t *a,
    const cr_guard_code_t *c, int64_t now);

/*
 * Records a wrong PIN that cr_guard_admit() let through: counts it for
 * the address (locking it from the free-th on) and spends a token of the
 * code (cr_guard_code_spend).  Returns the address's lock (0: none), for
 * "try again at".
 */
int64_t cr_guard_wrong(const cr_guard_policy_t *p, cr_guard_addr_t *a,
    cr_guard_code_t *c, int64_t now);

/* Records a right PIN: the address's record is cleared (all zero: it may
 * be dropped). */
void cr_guard_right(cr_guard_addr_t *a);

/* Nonzero while the address's record must be kept: it holds a wrong PIN
 * (a spent part of its free budget) or a lock. */
int cr_guard_addr_kept(const cr_guard_addr_t *a);


/*
 * The code's budget.  cr_guard_code_next: the time of its next token
 * (<= now: it has one now).  cr_guard_code_spend: n wrong PINs, here or
 * reported by other nodes, spent at "now"; the debt is capped at one
 * interval past a full bucket's worth, so that the pressure ends one
 * interval after the guessing does.  cr_guard_code_kept: nonzero while
 * the bucket is not full (a record that is full may be dropped: it says
 * what no record says).
 */
int64_t cr_guard_code_next(const cr_guard_policy_t *p,
    const cr_guard_code_t *c);
void cr_guard_code_spend(const cr_guard_policy_t *p, cr_guard_code_t *c,
    uint32_t n, int64_t now);
int cr_guard_code_kept(const cr_guard_code_t *c, int64_t now);



/*
 * A buyer id from a trusted caller (the API's backend: a user's openid,
 * hashed) as an address: 8 bytes of SipHash-2-4 under a key of the zone
 * (cr_guard_buyer_key: random, so that ids cannot be chosen to share a
 * record).  Any bytes; the caller bounds len.
 */
#define CR_GUARD_BUYER_KEY_LEN  16
#define CR_GUARD_BUYER_LEN      8

void cr_guard_buyer_key(uint8_t key[CR_GUARD_BUYER_KEY_LEN]);

/* The key every node of a brand shares for buyer ids kept in a ledger
 * (one buyer, one record, whichever node hashed it): BLAKE2b of a label
 * under secret, a key of the brand's (cr_key_t's k_addr); it reveals
 * nothing of secret. */
void cr_guard_buyer_key_of(uint8_t key[CR_GUARD_BUYER_KEY_LEN],
    const uint8_t secret[CR_GUARD_BUYER_KEY_LEN]);
void cr_guard_buyer(uint8_t out[CR_GUARD_BUYER_LEN],
    const uint8_t key[CR_GUARD_BUYER_KEY_LEN], const char *id, size_t len);

#endif /* CR_GUARD_H */
