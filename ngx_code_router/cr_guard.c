/*
 * cr_guard: the wrong-PIN policy.  See cr_guard.h.
 */

#include "cr_guard.h"


/* The earliest time at which the code has a token again; <= now: has. */
static int64_t
cr_guard_token_at(const cr_guard_policy_t *p, const cr_guard_code_t *c)
{
    /* GCRA: a token is there while tat <= now + (burst - 1) * interval. */
    return c->tat - (int64_t) (p->burst ? p->burst - 1 : 0) * p->interval;
}


int64_t
cr_guard_admit(const cr_guard_policy_t *p, const cr_guard_addr_t *a,
    const cr_guard_code_t *c, int64_t now)
{
    int64_t  at;

    at = (a->until > now) ? a->until : 0;

    if (a->fails > 0) {
        int64_t  token = cr_guard_token_at(p, c);

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
    int64_t   lock, ceiling;

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

    /* Take a token.  Clean addresses may still guess while the bucket is
     * empty: the debt they run up is capped at one interval, so that the
     * pressure ends one interval after the guessing does. */
    c->tat = ((c->tat > now) ? c->tat : now) + p->interval;

    ceiling = now + (int64_t) (p->burst ? p->burst - 1 : 0) * p->interval
              + p->interval;
    if (c->tat > ceiling) {
        c->tat = ceiling;
    }

    return a->until;
}


void
cr_guard_right(cr_guard_addr_t *a)
{
    a->fails = 0;
    a->until = 0;
}
