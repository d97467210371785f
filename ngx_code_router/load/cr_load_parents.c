/*
 * cr_load_parents: the loader's "parents" files (docs/loading.md, "Cases
 * and pallets"): a range of codes packed into a parent code, items into a
 * case, cases into a pallet.  A row is checked and put at once (its
 * numbers; a code has one parent: no overlap with another range, in the
 * store or the run); what depends on the whole run is checked when it
 * ends: child and parent bound to batches (which may come later), no
 * cycle, at most CR_PARENT_LEVELS levels.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cr_load_int.h"
#include "cr_record.h"
#include "cr_store.h"


const char  *cr_load_parent_cols[P_N] = {
    "kid", "serial_from", "serial_to", "parent_kid", "parent_serial",
    "delete"
};


static void cr_parent_where(cr_load_t *l, const cr_parent_t *p, char *buf,
    size_t size);
static int cr_pend_grow(cr_load_state_t *s);
static int cr_parent_check(cr_load_t *l, const cr_pend_t *pd);


int
cr_load_parents_header(const cr_row_t *row, int n)
{
    int  i;

    for (i = 1; i < n; i++) {
        if (row->fl[i] == 10 && strncasecmp(row->f[i], "parent_kid", 10) == 0)
        {
            return 1;
        }
    }

    return 0;
}


int
cr_load_row_parent(cr_load_t *l, cr_row_t *row)
{
    int               bad, del, rc;
    char              where[512];
    uint8_t           key[CR_KEY_LEN];
    uint64_t          n;
    cr_str_t          to;
    cr_pend_t        *pd;
    cr_hent_t        *e;
    cr_parent_t       p, other;
    cr_load_state_t  *s = l->state;

    memset(&p, 0, sizeof(cr_parent_t));

    bad = cr_load_num(l, cr_load_col(l, row, P_KID), "kid", CR_KID_MAX, &n);
    p.kid = (uint8_t) n;
    bad |= cr_load_num(l, cr_load_col(l, row, P_FROM), "serial_from",
                       CR_SERIAL_MAX, &p.first);

    /* One code: serial_to may be left empty. */
    to = cr_load_col(l, row, P_TO);
    p.last = p.first;
    if (to.len) {
        bad |= cr_load_num(l, to, "serial_to", CR_SERIAL_MAX, &p.last);
    }

    del = cr_load_is_delete(l, row, P_DELETE);

    if (!bad && p.first > p.last) {
        cr_load_err(l, &s->loc, "serial_to %llu is below serial_from %llu",
                    (unsigned long long) p.last,
                    (unsigned long long) p.first);
        bad = 1;
    }

    if (del != 0) {
        if (del < 0 || !cr_load_row_ok(l)) {
            return CR_LOAD_OK;
        }

        rc = cr_store_del_parent(l->st, p.kid, p.first, p.last);

        if (rc == CR_STORE_NOTFOUND) {
            cr_load_err(l, &s->loc, "key id %u serials %llu to %llu have no "
                        "parent to delete (give the range as loaded)", p.kid,
                        (unsigned long long) p.first,
                        (unsigned long long) p.last);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        l->parents.removed++;

        return CR_LOAD_OK;
    }

    if (cr_load_num(l, cr_load_col(l, row, P_PARENT_KID), "parent_kid",
                    CR_KID_MAX, &n) == 0)
    {
        p.parent_kid = (uint8_t) n;
    } else {
        bad = 1;
    }

    bad |= cr_load_num(l, cr_load_col(l, row, P_PARENT_SERIAL),
                       "parent_serial", CR_SERIAL_MAX, &p.parent);

    if (!bad && p.parent_kid == p.kid && p.parent >= p.first
        && p.parent <= p.last)
    {
        cr_load_err(l, &s->loc, "parent_serial %llu is inside the range it "
                    "is the parent of (a code cannot hold itself)",
                    (unsigned long long) p.parent);
        bad = 1;
    }

    if (bad) {
        return CR_LOAD_OK;
    }

    /* One row per range and run: a second would silently replace it. */
    cr_key_make(key, p.kid, p.last);
    e = cr_load_hash_get(&s->parents, (char *) key, CR_KEY_LEN, 0);

    if (e != NULL) {
        cr_load_err(l, &s->loc, "key id %u serials %llu to %llu are also "
                    "given at %s:%llu (one row per range and run)", p.kid,
                    (unsigned long long) p.first, (unsigned long long) p.last,
                    s->files[e->loc.file], (unsigned long long) e->loc.line);
        return CR_LOAD_OK;
    }

    if (!cr_load_row_ok(l)) {
        return CR_LOAD_OK;
    }

    rc = cr_store_put_parent(l->st, &p, &other);

    if (rc == CR_STORE_OVERLAP) {
        cr_parent_where(l, &other, where, sizeof(where));

        cr_load_err(l, &s->loc, "key id %u serials %llu to %llu overlap "
                    "serials %llu to %llu, packed into %u:%llu (%s): a code "
                    "has one parent", p.kid, (unsigned long long) p.first,
                    (unsigned long long) p.last,
                    (unsigned long long) other.first,
                    (unsigned long long) other.last, other.parent_kid,
                    (unsigned long long) other.parent, where);
        return CR_LOAD_OK;
    }

    if (rc < 0) {
        return cr_load_store_fail(l, rc);
    }

    cr_load_count(&l->parents, rc);

    e = cr_load_hash_get(&s->parents, (char *) key, CR_KEY_LEN, 1);

    if (e == NULL || (s->npend == s->cappend && cr_pend_grow(s) != 0)) {
        return cr_load_fatal(l, "out of memory");
    }

    e->loc = s->loc;
    pd = &s->pend[s->npend++];
    pd->loc = s->loc;
    pd->p = p;

    return CR_LOAD_OK;
}


/* "defined at FILE:LINE" for a range of this run, or "already in the
 * store". */
static void
cr_parent_where(cr_load_t *l, const cr_parent_t *p, char *buf, size_t size)
{
    uint8_t           key[CR_KEY_LEN];
    cr_hent_t        *e;
    cr_load_state_t  *s = l->state;

    cr_key_make(key, p->kid, p->last);
    e = cr_load_hash_get(&s->parents, (char *) key, CR_KEY_LEN, 0);

    if (e) {
        snprintf(buf, size, "defined at %s:%llu", s->files[e->loc.file],
                 (unsigned long long) e->loc.line);
    } else {
        snprintf(buf, size, "already in the store");
    }
}


/* Room for more rows to check at the end of the run. */
static int
cr_pend_grow(cr_load_state_t *s)
{
    size_t      cap;
    cr_pend_t  *p;

    cap = s->cappend ? 2 * s->cappend : 64;
    p = realloc(s->pend, cap * sizeof(cr_pend_t));
    if (p == NULL) {
        return -1;
    }

    s->pend = p;
    s->cappend = cap;

    return 0;
}


int
cr_load_parents_check(cr_load_t *l)
{
    int     rc;
    size_t  i;

    for (i = 0; i < l->state->npend; i++) {
        rc = cr_parent_check(l, &l->state->pend[i]);
        if (rc != CR_LOAD_OK) {
            return rc;
        }
    }

    return CR_LOAD_OK;
}


/* 1 if kid's serials first .. last are all in one batch, 0 if not, or an
 * error: the batch overlap check with an id no batch has. */
static int
cr_bound(cr_load_t *l, unsigned kid, uint64_t first, uint64_t last)
{
    int         rc;
    cr_batch_t  b, other;

    memset(&b, 0, sizeof(cr_batch_t));
    b.kid = (uint8_t) kid;
    b.first = first;
    b.last = first;

    rc = cr_store_batch_overlap(l->st, &b, &other);

    if (rc == CR_STORE_OVERLAP) {
        return other.first <= first && last <= other.last;
    }

    return rc;
}


typedef struct {
    cr_load_t  *l;
    unsigned    budget;                /* levels still allowed below */
    int         over;                  /* more were found */
} cr_below_t;


/* Whether the ranges packed into p's codes go deeper than the budget. */
static int
cr_below_child(void *ctx, const cr_parent_t *p)
{
    int          rc;
    cr_below_t  *b = ctx, sub;

    if (b->budget == 0) {
        b->over = 1;
        return 1;
    }

    sub.l = b->l;
    sub.budget = b->budget - 1;
    sub.over = 0;

    rc = cr_store_each_child(b->l->st, p->kid, p->first, p->last,
                             cr_below_child, &sub);
    if (rc < 0) {
        return rc;
    }

    b->over = sub.over;

    return sub.over;
}


static int
cr_parent_check(cr_load_t *l, const cr_pend_t *pd)
{
    int                rc, bound, up;
    unsigned           kid;
    uint64_t           serial;
    cr_below_t         below;
    cr_parent_t        a;
    const cr_parent_t *p = &pd->p;

    bound = cr_bound(l, p->kid, p->first, p->last);
    if (bound < 0) {
        return cr_load_store_fail(l, bound);
    }

    if (!bound) {
        cr_load_err(l, &pd->loc, "key id %u serials %llu to %llu are not all "
                    "in one batch (bind them in a batch file of this run or "
                    "an earlier one)", p->kid, (unsigned long long) p->first,
                    (unsigned long long) p->last);
    }

    bound = cr_bound(l, p->parent_kid, p->parent, p->parent);
    if (bound < 0) {
        return cr_load_store_fail(l, bound);
    }

    if (!bound) {
        cr_load_err(l, &pd->loc, "parent %u:%llu is in no batch (bind it in "
                    "a batch file of this run or an earlier one)",
                    p->parent_kid, (unsigned long long) p->parent);
    }

    /* Up from the parent: a cycle comes back into the range; a chain
     * needs no more than CR_PARENT_LEVELS steps to be refused. */
    kid = p->parent_kid;
    serial = p->parent;

    for (up = 0; up < CR_PARENT_LEVELS; up++) {
        rc = cr_store_get_parent(l->st, kid, serial, &a);

        if (rc == CR_STORE_NOTFOUND) {
            break;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        if (a.parent_kid == p->kid && a.parent >= p->first
            && a.parent <= p->last)
        {
            cr_load_err(l, &pd->loc, "a cycle: parent %u:%llu is itself "
                        "packed (%d level%s up) into %u:%llu, a code of this "
                        "range", p->parent_kid,
                        (unsigned long long) p->parent, up + 1,
                        up ? "s" : "", a.parent_kid,
                        (unsigned long long) a.parent);
            return CR_LOAD_OK;
        }

        kid = a.parent_kid;
        serial = a.parent;
    }

    /* Levels: those below the range, the range, its parent, and up. */
    below.l = l;
    below.budget = up < CR_PARENT_LEVELS - 2
                   ? (unsigned) (CR_PARENT_LEVELS - 2 - up) : 0;
    below.over = 0;

    if (up <= CR_PARENT_LEVELS - 2) {
        rc = cr_store_each_child(l->st, p->kid, p->first, p->last,
                                 cr_below_child, &below);
        if (rc < 0) {
            return cr_load_store_fail(l, rc);
        }
    }

    if (up > CR_PARENT_LEVELS - 2 || below.over) {
        cr_load_err(l, &pd->loc, "key id %u serials %llu to %llu into "
                    "%u:%llu make a chain of more than %d levels (item, "
                    "case, pallet)", p->kid, (unsigned long long) p->first,
                    (unsigned long long) p->last, p->parent_kid,
                    (unsigned long long) p->parent, CR_PARENT_LEVELS);
    }

    return CR_LOAD_OK;
}
