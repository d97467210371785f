/*
 * cr_guard: the wrong-PIN policy -- the free tries, the doubling locks and
 * their cap, a right PIN's reset, the per-code ceiling that never stops an
 * address within its free PINs (a buyer's typo under 7 days of strangers'
 * pressure), what the zone may forget -- and the year-long attacks whose
 * counts docs/verify.md quotes ("Odds of a guess").
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
    b.fails = pol.free;
    b.until = 0;
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == t + 900,
           "bucket empty: an address past its free PINs waits for the token");
    b.fails = pol.free - 1;
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == 0,
           "bucket empty: an address within its free PINs is checked");
    memset(&a, 0, sizeof(a));
    tap_ok(cr_guard_admit(&pol, &a, &c, t) == 0,
           "bucket empty: a clean address is checked");

    for (i = 0; i < 100000; i++) {
        memset(&b, 0, sizeof(b));
        (void) cr_guard_wrong(&pol, &b, &c, t);
    }
    b.fails = pol.free;
    b.until = 0;
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == t + 900,
           "the free PINs' debt is capped: pressure ends one interval "
           "after the guessing");
    tap_ok(cr_guard_admit(&pol, &b, &c, t + 900) == 0,
           "and then the address is admitted");

    /* What the zone may forget: a code's record only while its bucket is
     * full; an address's never while it holds a wrong PIN or a lock. */
    memset(&c, 0, sizeof(c));
    tap_ok(!cr_guard_code_kept(&c, t), "a full bucket may be forgotten");
    cr_guard_code_spend(&pol, &c, 1, t);
    tap_ok(cr_guard_code_kept(&c, t + 899)
           && !cr_guard_code_kept(&c, t + 900),
           "one wrong PIN: kept for one interval");
    cr_guard_code_spend(&pol, &c, 1000, t);
    tap_ok(cr_guard_code_next(&pol, &c) == t + 900
           && cr_guard_code_kept(&c, t + 100 * 900 - 1)
           && !cr_guard_code_kept(&c, t + 100 * 900),
           "a ledger's 1,000 spent at once: empty, kept until refilled");
    memset(&a, 0, sizeof(a));
    tap_ok(!cr_guard_addr_kept(&a), "a clear address may be forgotten");
    (void) cr_guard_wrong(&pol, &a, &c, t);
    tap_ok(cr_guard_addr_kept(&a), "one wrong PIN: kept");
    cr_guard_right(&a);
    tap_ok(!cr_guard_addr_kept(&a), "a right PIN: may be forgotten");

    b.fails = 7;
    b.until = t + 5000;
    tap_ok(cr_guard_admit(&pol, &b, &c, t) == t + 5000,
           "its own lock when later than the token");

    /* Issue 21, item 2: a buyer who made one typo, while a stranger keeps
     * the code under pressure with one wrong PIN every 14 minutes from a
     * fresh address, for 7 days: the buyer is checked every time (it was
     * 0 of 719). */
    memset(&c, 0, sizeof(c));
    t = 7000000;
    for (i = 0; i < 100; i++) {
        memset(&b, 0, sizeof(b));
        (void) cr_guard_wrong(&pol, &b, &c, t);
    }
    memset(&a, 0, sizeof(a));
    (void) cr_guard_wrong(&pol, &a, &c, t);
    n = 0;
    for (i = 0; i < 719; i++) {
        memset(&b, 0, sizeof(b));
        (void) cr_guard_wrong(&pol, &b, &c, t + i * 840);
        n += cr_guard_admit(&pol, &a, &c, t + i * 840 + 420) == 0;
    }
    tap_ok(n == 719, "7 days of pressure: the buyer with one typo was "
           "checked %ld of 719 times", n);
    (void) cr_guard_wrong(&pol, &a, &c, t + 7 * 86400);
    (void) cr_guard_wrong(&pol, &a, &c, t + 7 * 86400);
    (void) cr_guard_wrong(&pol, &a, &c, t + 7 * 86400);
    tap_ok(cr_guard_admit(&pol, &a, &c, t + 7 * 86400) == 0,
           "... and after 4 wrong PINs still checked (fewer than 5)");
    lock = cr_guard_wrong(&pol, &a, &c, t + 7 * 86400);
    tap_ok(lock == t + 7 * 86400 + 60, "the 5th locks for 60 s");
    tap_ok(cr_guard_admit(&pol, &a, &c, t + 7 * 86400 + 60)
           == t + 7 * 86400 + 900,
           "past its free PINs, under pressure it waits for the token");

    /* A ledger's buyer key: the same from the same brand key (every
     * node), another from another, and not the brand key itself. */
    {
        uint8_t  s1[CR_GUARD_BUYER_KEY_LEN], s2[CR_GUARD_BUYER_KEY_LEN];
        uint8_t  k1[CR_GUARD_BUYER_KEY_LEN], k1b[CR_GUARD_BUYER_KEY_LEN];
        uint8_t  k2[CR_GUARD_BUYER_KEY_LEN];
        uint8_t  h1[CR_GUARD_BUYER_LEN], h2[CR_GUARD_BUYER_LEN];

        memset(s1, 0x11, sizeof(s1));
        memset(s2, 0x12, sizeof(s2));
        cr_guard_buyer_key_of(k1, s1);
        cr_guard_buyer_key_of(k1b, s1);
        cr_guard_buyer_key_of(k2, s2);
        tap_ok(memcmp(k1, k1b, sizeof(k1)) == 0,
               "buyer key of a brand key: the same on every node");
        tap_ok(memcmp(k1, k2, sizeof(k1)) != 0
               && memcmp(k1, s1, sizeof(k1)) != 0,
               "... another for another brand key, not the key itself");
        cr_guard_buyer(h1, k1, "openid-1", 8);
        cr_guard_buyer(h2, k1b, "openid-1", 8);
        tap_ok(memcmp(h1, h2, sizeof(h1)) == 0,
               "... one buyer, one id under it");
    }

    /* The numbers docs/verify.md quotes. */
    n = attack(1);
    tap_ok(n == 379, "one address, one year: %ld PINs checked (doc: 379)", n);
    tap_diag("one address: %ld a year", n);
    n = attack(1000);
    tap_ok(n <= 5 * 1000 + 100 + YEAR / 900 && n >= YEAR / 900,
           "1,000 addresses, one year: %ld PINs checked (doc: at most "
           "40,140)", n);
    tap_diag("1,000 addresses: %ld a year", n);

    return tap_done();
}
