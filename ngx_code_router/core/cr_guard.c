/*
 * cr_guard: the wrong-PIN policy.  See cr_guard.h.
 */

#include <sodium.h>

#include "cr_guard.h"


_Static_assert(CR_GUARD_BUYER_LEN == crypto_shorthash_BYTES
               && CR_GUARD_BUYER_KEY_LEN == crypto_shorthash_KEYBYTES,
               "a buyer id is one SipHash-2-4");


int64_t
cr_guard_code_next(const cr_guard_policy_t *p, const cr_guard_code_t *c)
{
    /* GCRA: a token is there while tat <= now + (burst - 1) * interval. */
    return c->tat - (int64_t) (p->burst ? p->burst - 1 : 0) * p->interval;
}


void
cr_guard_code_spend(const cr_guard_policy_t *p, cr_guard_code_t *c,
    uint32_t n, int64_t now)
{
    int64_t  ceiling;

    ceiling = now + (int64_t) (p->burst ? p->burst : 1) * p->interval;

    /* Addresses within their free wrong PINs may still guess while the
     * bucket is empty: the debt they run up is capped. */
    c->tat = ((c->tat > now) ? c->tat : now) + (int64_t) n * p->interval;

    if (c->tat > ceiling) {
        c->tat = ceiling;
    }
}


int
cr_guard_code_kept(const cr_guard_code_t *c, int64_t now)
{
    return c->tat > now;
}


int64_t
cr_guard_admit(const cr_guard_policy_t *p, const cr_guard_addr_t *a,
    const cr_guard_code_t *c, int64_t now)
{
    int64_t  at, token;

    at = (a->until > now) ? a->until : 0;

    /* Pressure waits only for an address past its free wrong PINs: a
     * buyer's typo never lets strangers keep the buyer out. */
    if (a->fails >= p->free) {
        token = cr_guard_code_next(p, c);

        if (token > now && token > at) {
            at = token;
        }
    }

    return at;
}


int64_t
cr_guard_wrong(const cr_guard_policy_t *p, cr_guard_addr_t *a,
    cr_guard_code_t *c, int64_t now)
{
    uint32_t  n;
    int64_t   lock;

    if (a->fails < UINT32_MAX) {
        a->fails++;
    }

    a->until = 0;

    if (a->fails >= p->free) {
        n = a->fails - p->free;
        lock = (n >= 31) ? (int64_t) p->cap
                         : (int64_t) p->base << n;
        if (lock > (int64_t) p->cap) {
            lock = p->cap;
        }

        a->until = now + lock;
    }

    cr_guard_code_spend(p, c, 1, now);

    return a->until;
}


void
cr_guard_right(cr_guard_addr_t *a)
{
    a->fails = 0;
    a->until = 0;
}


int
cr_guard_addr_kept(const cr_guard_addr_t *a)
{
    return a->fails > 0 || a->until > 0;
}


void
cr_guard_buyer_key(uint8_t key[CR_GUARD_BUYER_KEY_LEN])
{
    randombytes_buf(key, CR_GUARD_BUYER_KEY_LEN);
}


void
cr_guard_buyer_key_of(uint8_t key[CR_GUARD_BUYER_KEY_LEN],
    const uint8_t secret[CR_GUARD_BUYER_KEY_LEN])
{
    static const char  label[] = "code-router guard buyer, ledger";

    (void) crypto_generichash(key, CR_GUARD_BUYER_KEY_LEN,
                              (const unsigned char *) label,
                              sizeof(label) - 1, secret,
                              CR_GUARD_BUYER_KEY_LEN);
}


void
cr_guard_buyer(uint8_t out[CR_GUARD_BUYER_LEN],
    const uint8_t key[CR_GUARD_BUYER_KEY_LEN], const char *id, size_t len)
{
    (void) crypto_shorthash(out, (const unsigned char *) id, len, key);
}
