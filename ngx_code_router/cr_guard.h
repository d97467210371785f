/*
 * cr_guard: how many wrong PINs a client may send, written once.
 *
 * Pure C, no I/O, no clock: the module keeps the two small states below
 * in shared memory (one per code and client address, one per code) and
 * asks these functions, passing the time.  docs/verify.md gives the
 * numbers this policy allows an attacker over a year.
 *
 * Per (code, address):  the first CR_GUARD_FREE wrong PINs are answered
 *   at once; the n-th wrong PIN after those locks the address out of this
 *   code for base * 2^(n - free) seconds, at most cap.  A right PIN from
 *   the address clears its record.  Records are never forgotten by time,
 *   only when the zone needs the room (least recently used first).
 *
 * Per code:  a ceiling on wrong PINs from all addresses together, a
 *   token bucket (GCRA: one token each "interval" seconds, "burst" at
 *   most).  While it is empty the code is "under pressure": an address
 *   that has already sent a wrong PIN for it waits for the next token;
 *   an address without a record is still checked.  So a stranger, or a
 *   million of them, can never keep a buyer at a clean address from
 *   checking the PIN on the package -- and the ceiling only ever answers
 *   "locked, try again at T", never anything about the item.
 */

#ifndef CR_GUARD_H
#define CR_GUARD_H

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
 * lock, or the code's next token if it has a record and the code is
 * under pressure, whichever is later.
 */
int64_t cr_guard_admit(const cr_guard_policy_t *p, const cr_guard_addr_t *a,
    const cr_guard_code_t *c, int64_t now);

/*
 * Records a wrong PIN that cr_guard_admit() let through: counts it for
 * the address (locking it from the free-th on) and takes a token of the
 * code.  Returns the address's lock (0: none), for "try again at".
 */
int64_t cr_guard_wrong(const cr_guard_policy_t *p, cr_guard_addr_t *a,
    cr_guard_code_t *c, int64_t now);

/* Records a right PIN: the address's record is cleared. */
void cr_guard_right(cr_guard_addr_t *a);

#endif /* CR_GUARD_H */
