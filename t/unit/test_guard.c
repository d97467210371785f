/*
 * cr_guard: the wrong-PIN policy -- the free tries, the doubling locks and
 * their cap, a right PIN's reset, the per-code ceiling that never stops a
 * clean address -- and the year-long attacks whose counts docs/verify.md
 * quotes ("Odds of a guess").
 */

#include <stdlib.h>
#include <string.h>

#include "cr_guard.h"
#include "tap.h"


#define YEAR  (365 * 86400LL)

static const cr_guard_policy_t  pol = CR_GUARD_DEFAULT;


/* A attackers guessing one code as fast as the policy lets them, for a
 * year from t = 0; returns the number of PINs checked. */
static long
attack(long naddr)
{
    cr_guard_addr_t  *a;
    cr_guard_code_t   c;
    int64_t           now, at, next;
    long              i, best, n;

    a = calloc((size_t) naddr, sizeof(cr_guard_addr_t));
    memset(&c, 0, sizeof(c));
    now = 0;
    n = 0;

    for ( ;; ) {
        best = -1;
        next = INT64_MAX;

        for (i = 0; i < naddr; i++) {
            at = cr_guard_admit(&pol, &a[i], &c, now);
            if (at == 0) {
                at = now;
            }
            if (at < next) {
                next = at;
                best = i;
            }
        }

        if (next >= YEAR) {
            break;
        }

        now = next;
        (void) cr_guard_wrong(&pol, &a[best], &c, now);
        n++;
    }

    free(a);
    return n;
}


int
main(void)
{
    cr_guard_addr_t  a, b;
    cr_guard_code_t  c;
    int64_t          t, lock;
    unsigned         i;
    long             n;

    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    t = 1000000;

    for (i = 1; i < pol.free; i++) {
        tap_ok(cr_guard_admit(&pol, &a, &c, t) == 0, "wrong PIN %u admitted",
               i);
        tap_ok(cr_guard_wrong(&pol, &a, &c, t) == 0, "  and not locked");
    }

    tap_ok(cr_guard_admit(&pol, &a, &c, t) == 0, "the 5th is admitted");
    lock = cr_guard_wrong(&pol, &a, &c, t);
    tap_ok(lock == t + 60, "the 5th locks for 60 s");
    tap_ok(cr_guard_admit(&pol, &a, &c, t + 59) == t + 60,
           "locked: try again at the lock's end");
    tap_ok(cr_guard_admit(&pol, &a, &c, t + 60) == 0, "admitted at its end");

    t += 60;
    tap_ok(cr_guard_wrong(&pol, &a, &c, t) == t + 120, "the 6th: 120 s");
    t += 120;
    tap_ok(cr_guard_wrong(&pol, &a, &c, t) == t + 240, "the 7th: 240 s");

    for (i = 0; i < 40; i++) {
        t = cr_guard_wrong(&pol, &a, &c, t);
    }
    tap_ok(cr_guard_wrong(&pol, &a, &c, t) == t + 86400,
           "locks stop at the cap (24 h), even after many (no overflow)");

    a.fails = UINT32_MAX;
    tap_ok(cr_guard_wrong(&pol, &a, &c, t) == t + 86400
           && a.fails == UINT32_MAX,
           "the count saturates");

    cr_guard_right(&a);
    tap_ok(a.fails == 0 && cr_guard_admit(&pol, &a, &c, t) == 0,
           "a right PIN clears the address");

    /* The ceiling: 100 tokens, then one each 900 s. */
    memset(&c, 0, sizeof(c));
    t = 5000000;
    for (i = 0; i < 100; i++) {
        memset(&b, 0, sizeof(b));
        (void) cr_guard_wrong(&pol, &b, &c, t);
    }
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == t + 900,
           "bucket empty: an address with a record waits for the next token");
    memset(&a, 0, sizeof(a));
    tap_ok(cr_guard_admit(&pol, &a, &c, t) == 0,
           "bucket empty: a clean address is still checked");

    for (i = 0; i < 100000; i++) {
        memset(&b, 0, sizeof(b));
        (void) cr_guard_wrong(&pol, &b, &c, t);
    }
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == t + 900,
           "the clean addresses' debt is capped: pressure ends one interval "
           "after the guessing");
    tap_ok(cr_guard_admit(&pol, &b, &c, t + 900) == 0,
           "and then the address is admitted");

    b.fails = 7;
    b.until = t + 5000;
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == t + 5000,
           "its own lock when later than the token");

    /* The numbers docs/verify.md quotes. */
    n = attack(1);
    tap_ok(n == 379, "one address, one year: %ld PINs checked (doc: 379)", n);
    tap_diag("one address: %ld a year", n);
    n = attack(1000);
    tap_ok(n <= 1000 + 100 + YEAR / 900 && n >= YEAR / 900,
           "1,000 addresses, one year: %ld PINs checked (doc: at most "
           "36,140)", n);

    return tap_done();
}
