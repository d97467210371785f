/*
 * cr_store_rules: campaigns' rules in the store (see cr_store.h).  Their
 * iteration (the writer's and a reader's); the reader's copy of them and
 * the slow path that reads one campaign's rules from LMDB; the taking of
 * a rule's target into a binding.
 */

#include <stdlib.h>
#include <string.h>

#include "cr_store_int.h"


static int cr_rules_cursor(cr_store_t *st, MDB_txn **txn, MDB_cursor **cur);
static int cr_rules_walk(cr_store_t *st, MDB_cursor *cur, const char *id,
    size_t len, int (*fn)(void *ctx, const cr_rule_t *r), void *ctx);
static void cr_rules_done(cr_store_t *st, MDB_cursor *cur);
static int cr_rule_check(cr_store_t *st, const cr_campaign_t *c,
    const cr_rule_t *r);


/* The writer's transaction, or a read transaction of the reader's slot
 * (ended by cr_rules_done), and a cursor on the rules. */
static int
cr_rules_cursor(cr_store_t *st, MDB_txn **txn, MDB_cursor **cur)
{
    int  rc;

    if (st->wtxn) {
        *txn = st->wtxn;

    } else {
        rc = cr_rtxn_begin(st);
        if (rc != 0) {
            return rc;
        }

        *txn = st->rtxn;
    }

    rc = mdb_cursor_open(*txn, st->rule_dbi, cur);
    if (rc != 0) {
        if (!st->wtxn) {
            cr_rtxn_end(st);
        }

        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    return 0;
}


static void
cr_rules_done(cr_store_t *st, MDB_cursor *cur)
{
    mdb_cursor_close(cur);

    if (!st->wtxn) {
        cr_rtxn_end(st);
    }
}


int
cr_store_each_rule(cr_store_t *st, const char *id, size_t len,
    int (*fn)(void *ctx, const cr_rule_t *r), void *ctx)
{
    int          rc;
    MDB_txn     *txn;
    MDB_cursor  *cur;

    rc = cr_rules_cursor(st, &txn, &cur);
    if (rc != 0) {
        return rc;
    }

    rc = cr_rules_walk(st, cur, id, len, fn, ctx);

    cr_rules_done(st, cur);

    return rc;
}


/* The rules under cur, all (id NULL) or campaign id's, to fn. */
static int
cr_rules_walk(cr_store_t *st, MDB_cursor *cur, const char *id, size_t len,
    int (*fn)(void *ctx, const cr_rule_t *r), void *ctx)
{
    int        rc;
    size_t     plen;
    uint8_t    key[CR_RULE_KEY_MAX];
    MDB_val    k, v;
    cr_rule_t  r;

    plen = id ? cr_rule_key(key, id, len, 0) - 2 : 0;
    k.mv_data = key;
    k.mv_size = plen;

    for (rc = mdb_cursor_get(cur, &k, &v, id ? MDB_SET_RANGE : MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (id && (k.mv_size != plen + 2
                   || memcmp(k.mv_data, key, plen) != 0))
        {
            break;
        }

        if (cr_rule_decode(v.mv_data, v.mv_size, &r) != 0) {
            return cr_fail(st, "a rule record cannot be read");
        }

        rc = fn(ctx, &r);
        if (rc != 0) {
            return rc;
        }
    }

    return rc == 0 || rc == MDB_NOTFOUND
           ? 0 : cr_fail(st, "cannot read the rules: %s", mdb_strerror(rc));
}


/*
 * The copy's rules, from p on in the arena: decoded, checked, and given
 * to their campaigns (rules sort by campaign, in the campaigns' order:
 * cr_rule_key).  A bad rule makes its campaign bad, as a bad campaign
 * record does: its scans are unavailable, never sent to half its rules.
 * A rule of no campaign (written behind the loader's back) is ignored.
 */
int
cr_cache_rules(cr_store_t *st, uint8_t *p)
{
    int          rc, c;
    size_t       i, lo, hi, mid;
    MDB_val      k, v;
    cr_str_t     id;
    MDB_cursor  *cur;
    cr_cache_t  *cc;
    cr_ccamp_t  *e;
    cr_rule_t   *r;

    cc = &st->cache;

    if (mdb_cursor_open(st->rtxn, st->rule_dbi, &cur) != 0) {
        return -1;
    }

    i = 0;
    e = NULL;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && i < cc->nrule;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size < 3) {
            continue;
        }

        id.data = k.mv_data;
        id.len = k.mv_size - 3;

        if (e == NULL || cr_keycmp(e->id.data, e->id.len, id.data, id.len))
        {
            e = NULL;
            lo = 0;
            hi = cc->ncamp;

            while (lo < hi) {
                mid = lo + (hi - lo) / 2;
                c = cr_keycmp(cc->camp[mid].id.data, cc->camp[mid].id.len,
                              id.data, id.len);
                if (c == 0) {
                    e = &cc->camp[mid];
                    e->rule0 = i;
                    break;
                }

                if (c < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
        }

        if (e == NULL) {
            continue;
        }

        memcpy(p, v.mv_data, v.mv_size);
        r = &cc->rule[i];

        if (cr_rule_decode(p, v.mv_size, r) != 0
            || e->nrules == CR_RULE_MAX)
        {
            e->bad = 1;

        } else {
            r->target_ok = !e->bad && cr_rule_check(st, &e->c, r);
            e->nrules++;
            i++;
        }

        p += v.mv_size;
    }

    mdb_cursor_close(cur);

    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}


/* Whether the reader's check passes the campaign with r's target. */
static int
cr_rule_check(cr_store_t *st, const cr_campaign_t *c, const cr_rule_t *r)
{
    cr_campaign_t  t;

    if (st->check == NULL) {
        return 0;
    }

    t = *c;
    cr_rule_target(&t, r);

    return st->check(&t) == NULL;
}


typedef struct {
    cr_store_t    *st;
    cr_rule_t     *rules;
    size_t         n;
    cr_alloc_pt    alloc;
    void          *ctx;
} cr_rules_read_t;


static int
cr_rules_read_one(void *ctx, const cr_rule_t *r)
{
    int               i;
    char             *p;
    cr_rules_read_t  *rr = ctx;
    cr_rule_t        *to;

    if (rr->n == CR_RULE_MAX) {
        return 1;
    }

    /* Room for the most a campaign may have, once it has one: most
     * campaigns have none, and their scans allocate nothing here. */
    if (rr->rules == NULL) {
        rr->rules = rr->alloc(rr->ctx, CR_RULE_MAX * sizeof(cr_rule_t));
        if (rr->rules == NULL) {
            return cr_fail(rr->st, "out of memory");
        }
    }

    to = &rr->rules[rr->n++];
    *to = *r;

    for (i = 0; i < CR_RULE_NSTR; i++) {
        if (r->s[i].len == 0) {
            continue;
        }

        p = rr->alloc(rr->ctx, r->s[i].len);
        if (p == NULL) {
            return cr_fail(rr->st, "out of memory");
        }

        memcpy(p, r->s[i].data, r->s[i].len);
        to->s[i].data = p;
    }

    return 0;
}


/* The slow path of a store too large for the copy: b's campaign's rules
 * from LMDB, each checked now (the copy checks once per commit). */
int
cr_rules_read(cr_store_t *st, cr_binding_t *b, cr_alloc_pt alloc, void *ctx)
{
    int               rc;
    size_t            i;
    cr_str_t         *id;
    MDB_cursor       *cur;
    cr_rules_read_t   rr;

    rr.st = st;
    rr.rules = NULL;
    rr.n = 0;
    rr.alloc = alloc;
    rr.ctx = ctx;
    id = &b->campaign.s[CR_CAMP_ID];

    /* The lookup's own snapshot: the same commit as its campaign. */
    rc = mdb_cursor_open(st->rtxn, st->rule_dbi, &cur);
    if (rc != 0) {
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    rc = cr_rules_walk(st, cur, id->data, id->len, cr_rules_read_one, &rr);
    mdb_cursor_close(cur);

    if (rc != 0) {
        return rc == CR_STORE_ERROR ? rc
               : cr_fail(st, "campaign \"%.*s\" has more than %d rules",
                         (int) id->len, id->data, CR_RULE_MAX);
    }

    for (i = 0; i < rr.n; i++) {
        rr.rules[i].target_ok = cr_rule_check(st, &b->campaign,
                                              &rr.rules[i]);
    }

    b->rules = rr.rules;
    b->nrules = rr.n;

    return 0;
}


int
cr_binding_take_rule(cr_binding_t *b, const cr_rule_t *r, cr_alloc_pt alloc,
    void *ctx)
{
    int        i;
    char      *p;
    size_t     total;
    cr_rule_t  copy;

    copy = *r;
    total = 0;

    for (i = CR_RULE_URL; i < CR_RULE_NSTR; i++) {
        total += r->s[i].len;
    }

    p = total ? alloc(ctx, total) : NULL;
    if (total && p == NULL) {
        return -1;
    }

    for (i = CR_RULE_URL; i < CR_RULE_NSTR; i++) {
        if (r->s[i].len) {
            memcpy(p, r->s[i].data, r->s[i].len);
            copy.s[i].data = p;
            p += r->s[i].len;
        }
    }

    cr_rule_target(&b->campaign, &copy);
    b->target_ok = r->target_ok;
    b->rule = r->rule;

    return 0;
}
