/*
 * cr_load: see cr_load.h and docs/loading.md.  A run: its state, its
 * messages (kept, sorted by place), the files in order, and the
 * references checked across the whole run when every file is read.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cr_load_int.h"
#include "cr_valid.h"


static int cr_check_refs(cr_load_t *l);
static void cr_hash_free(cr_hash_t *h);


int
cr_load_init(cr_load_t *l, cr_store_t *st, const cr_keyring_t *ring,
    unsigned max_messages, const cr_load_opts_t *opts)
{
    memset(l, 0, sizeof(cr_load_t));

    l->st = st;
    l->ring = ring;
    l->max_messages = max_messages;

    if (opts) {
        l->opts = *opts;
    }

    l->state = calloc(1, sizeof(cr_load_state_t));
    if (l->state == NULL) {
        return -1;
    }

    l->state->cd = (iconv_t) -1;

    l->state->msgs = calloc(max_messages ? max_messages : 1,
                            sizeof(cr_msg_t));
    if (l->state->msgs == NULL) {
        cr_load_free(l);
        return -1;
    }

    if (l->opts.encoding && strcasecmp(l->opts.encoding, "utf-8") != 0) {
        if (!cr_load_encoding_ok(l->opts.encoding)) {
            cr_load_free(l);
            return -1;
        }

        /* One byte in becomes at most 3 of UTF-8 (0x80 is the euro sign
         * in GBK), four bytes at most 4. */
        l->state->conv = malloc(CR_CONV_MAX);
        l->state->cd = iconv_open("UTF-8", l->opts.encoding);

        if (l->state->conv == NULL || l->state->cd == (iconv_t) -1) {
            cr_load_free(l);
            return -1;
        }
    }

    return 0;
}


void
cr_load_free(cr_load_t *l)
{
    unsigned          i;
    cr_load_state_t  *s = l->state;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < s->nmsgs; i++) {
        free(s->msgs[i].text);
    }

    if (s->cd != (iconv_t) -1) {
        iconv_close(s->cd);
    }

    free(s->conv);
    free(s->msgs);
    free(s->refs);
    cr_hash_free(&s->campaigns);
    cr_hash_free(&s->batches);
    cr_hash_free(&s->links);
    cr_hash_free(&s->rules);
    cr_hash_free(&s->rule_camps);
    cr_hash_free(&s->parents);
    free(s->pend);
    free(s);
    l->state = NULL;
}


int
cr_load_transact(cr_load_t *l, cr_store_t *st, const cr_keyring_t *ring,
    unsigned max_messages, const cr_load_opts_t *opts, char *const *files,
    int n, int dry, int64_t now, unsigned *grown)
{
    int  rc, tries;

    *grown = 0;

    for (tries = 0; ; tries++) {
        if (cr_load_init(l, st, ring, max_messages, opts) != 0) {
            return cr_load_fatal(l, "out of memory, or no converter from %s",
                            opts && opts->encoding ? opts->encoding
                                                   : "utf-8");
        }

        if (cr_store_begin(st) != 0) {
            return cr_load_store_fail(l, CR_STORE_ERROR);
        }

        rc = cr_load_files(l, files, n);

        if (rc == CR_LOAD_OK && !dry && cr_load_changes(l) != 0) {
            rc = cr_store_commit(st, now);
            if (rc != 0) {
                rc = cr_load_store_fail(l, rc);
            }

        } else {
            cr_store_abort(st);
        }

        if (rc != CR_LOAD_FULL) {
            return rc;
        }

        /* Nothing was written: grow the map and redo the whole run. */
        if (tries == 7) {
            return cr_load_fatal(l, "the store is still full after growing its "
                            "map 8 times (%s)", cr_store_error(st));
        }

        cr_load_free(l);

        if (cr_store_grow(st, 0) != 0) {
            memset(l, 0, sizeof(cr_load_t));
            return cr_load_fatal(l, "%s", cr_store_error(st));
        }

        (*grown)++;
    }
}


uint64_t
cr_load_changes(const cr_load_t *l)
{
    const cr_load_count_t  *c[6] = { &l->campaigns, &l->batches, &l->codes,
                                     &l->links, &l->rules, &l->parents };
    uint64_t                n;
    int                     i;

    n = 0;
    for (i = 0; i < 6; i++) {
        n += c[i]->added + c[i]->changed + c[i]->removed;
    }

    return n;
}


static int
cr_msg_cmp(const void *a, const void *b)
{
    const cr_msg_t  *x = a, *y = b;

    if (x->loc.file != y->loc.file) {
        return x->loc.file < y->loc.file ? -1 : 1;
    }

    if (x->loc.line != y->loc.line) {
        return x->loc.line < y->loc.line ? -1 : 1;
    }

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}


void
cr_load_print_errors(cr_load_t *l, FILE *f)
{
    unsigned  i;

    qsort(l->state->msgs, l->state->nmsgs, sizeof(cr_msg_t), cr_msg_cmp);

    for (i = 0; i < l->state->nmsgs; i++) {
        fprintf(f, "%s\n", l->state->msgs[i].text);
    }

    if (l->errors > l->state->nmsgs) {
        fprintf(f, "... and %lu more errors\n",
                l->errors - (unsigned long) l->state->nmsgs);
    }
}


void
cr_load_err(cr_load_t *l, const cr_loc_t *loc, const char *fmt, ...)
{
    int               n;
    char              buf[1024];
    va_list           args;
    cr_load_state_t  *s = l->state;

    l->errors++;
    s->row_errs++;

    if (s->nmsgs >= l->max_messages) {
        return;
    }

    n = snprintf(buf, sizeof(buf), "%s:%llu: ", s->files[loc->file],
                 (unsigned long long) loc->line);
    if (n < 0 || (size_t) n >= sizeof(buf)) {
        n = 0;
    }

    va_start(args, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t) n, fmt, args);
    va_end(args);

    s->msgs[s->nmsgs].text = strdup(buf);
    if (s->msgs[s->nmsgs].text) {
        s->msgs[s->nmsgs].loc = *loc;
        s->msgs[s->nmsgs].seq = s->nmsgs;
        s->nmsgs++;
    }
}


int
cr_load_fatal(cr_load_t *l, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(l->fatal, sizeof(l->fatal), fmt, args);
    va_end(args);

    return CR_LOAD_FAILED;
}


/* A store call failed: map full is retried by the caller, else fatal. */
int
cr_load_store_fail(cr_load_t *l, int rc)
{
    snprintf(l->fatal, sizeof(l->fatal), "%s", cr_store_error(l->st));

    return rc == CR_STORE_FULL ? CR_LOAD_FULL : CR_LOAD_FAILED;
}


int
cr_load_files(cr_load_t *l, char *const *files, int n)
{
    int       rc;
    uint32_t  i;

    l->state->files = files;
    l->state->nfiles = n;

    for (i = 0; i < (uint32_t) n; i++) {
        rc = cr_load_file(l, i);
        if (rc != CR_LOAD_OK) {
            return rc;
        }
    }

    rc = cr_check_refs(l);
    if (rc != CR_LOAD_OK) {
        return rc;
    }

    rc = cr_load_rules_check(l);
    if (rc != CR_LOAD_OK) {
        return rc;
    }

    rc = cr_load_parents_check(l);
    if (rc != CR_LOAD_OK) {
        return rc;
    }

    return l->errors ? CR_LOAD_INVALID : CR_LOAD_OK;
}


int
cr_load_add_ref(cr_load_t *l, char what, const cr_str_t *id)
{
    size_t            cap;
    cr_ref_t         *r;
    cr_load_state_t  *s = l->state;

    if (s->nrefs == CR_PENDING_MAX) {
        cr_load_err(l, &s->loc, "more than %d references to campaigns not yet "
               "defined: define campaigns before the rows that use them",
               CR_PENDING_MAX);
        return CR_LOAD_OK;
    }

    if (s->nrefs == s->caprefs) {
        cap = s->caprefs ? s->caprefs * 2 : 64;
        r = realloc(s->refs, cap * sizeof(cr_ref_t));
        if (r == NULL) {
            return cr_load_fatal(l, "out of memory");
        }
        s->refs = r;
        s->caprefs = cap;
    }

    r = &s->refs[s->nrefs++];
    r->loc = s->loc;
    r->what = what;
    memcpy(r->id, id->data, id->len);
    r->id[id->len] = '\0';

    return CR_LOAD_OK;
}


typedef struct {
    cr_load_t  *l;
    cr_hash_t   deleted;
    unsigned    reported;
} cr_use_ctx_t;


static int
cr_used(cr_use_ctx_t *u, const cr_str_t *camp, const char *what,
    const char *by, size_t bylen)
{
    cr_hent_t  *e;

    e = cr_load_hash_get(&u->deleted, camp->data, camp->len, 0);

    if (e != NULL && e->loc.line != 0) {
        cr_load_err(u->l, &e->loc, "campaign \"%.*s\" cannot be deleted: %s "
               "\"%.*s\" still uses it (delete or rebind it in the same run)",
               (int) camp->len, camp->data, what, (int) bylen, by);

        /* One message per deleted campaign is enough. */
        e->loc.line = 0;
    }

    return 0;
}


static int
cr_used_by_batch(void *ctx, const cr_batch_t *b)
{
    return cr_used(ctx, &b->s[CR_BATCH_CAMPAIGN], "batch",
                   b->s[CR_BATCH_ID].data, b->s[CR_BATCH_ID].len);
}


static int
cr_used_by_override(void *ctx, const cr_override_t *o)
{
    char  by[64];
    int   n;

    if (o->state != CR_OVERRIDE_CAMPAIGN) {
        return 0;
    }

    n = snprintf(by, sizeof(by), "key id %u serial %llu", o->kid,
                 (unsigned long long) o->serial);

    return cr_used(ctx, &o->campaign, "the override of", by, (size_t) n);
}


/* References across the run: resolved now that every row is in. */
static int
cr_check_refs(cr_load_t *l)
{
    int               rc, deletions;
    size_t            i;
    cr_ref_t         *r;
    cr_hent_t        *e;
    cr_campaign_t     c;
    cr_use_ctx_t      u;
    cr_load_state_t  *s = l->state;

    memset(&u, 0, sizeof(u));
    u.l = l;
    deletions = 0;

    for (i = 0; i < s->nrefs; i++) {
        r = &s->refs[i];
        rc = cr_store_get_campaign(l->st, r->id, strlen(r->id), &c);

        if (rc != 0 && rc != CR_STORE_NOTFOUND) {
            cr_hash_free(&u.deleted);
            return cr_load_store_fail(l, rc);
        }

        if (r->what == 'd') {
            /* Deleted and not defined again later in the run. */
            if (rc == CR_STORE_NOTFOUND) {
                e = cr_load_hash_get(&u.deleted, r->id, strlen(r->id), 1);
                if (e == NULL) {
                    cr_hash_free(&u.deleted);
                    return cr_load_fatal(l, "out of memory");
                }
                e->loc = r->loc;
                deletions = 1;
            }
            continue;
        }

        /* A campaign whose own row had errors is not unknown: that row
         * is reported, and the rows using it are not blamed. */
        e = cr_load_hash_get(&s->campaigns, r->id, strlen(r->id), 0);

        if (rc == CR_STORE_NOTFOUND && (e == NULL || !e->bad)) {
            cr_load_err(l, &r->loc, "campaign: unknown campaign \"%s\" (define it"
                   " in a campaign file of this run or an earlier one)",
                   r->id);
        }
    }

    rc = 0;

    if (deletions) {
        rc = cr_store_each_batch(l->st, cr_used_by_batch, &u);
        if (rc == 0) {
            rc = cr_store_each_override(l->st, cr_used_by_override, &u);
        }
    }

    cr_hash_free(&u.deleted);

    return rc ? cr_load_store_fail(l, rc) : CR_LOAD_OK;
}


/* FNV-1a; open addressing over the slots, grown at 70 % full. */
static uint64_t
cr_hash_key(const char *k, size_t n)
{
    size_t    i;
    uint64_t  h;

    h = 14695981039346656037ULL;

    for (i = 0; i < n; i++) {
        h = (h ^ (uint8_t) k[i]) * 1099511628211ULL;
    }

    return h;
}


/* The slot where k is, or the empty one where it would go. */
static size_t
cr_hash_slot(const cr_hash_t *h, const char *k, size_t n)
{
    size_t            i;
    const cr_hent_t  *e;

    for (i = cr_hash_key(k, n) & (h->cap - 1);
         h->slot[i];
         i = (i + 1) & (h->cap - 1))
    {
        e = &h->e[h->slot[i] - 1];
        if (e->len == n && memcmp(h->keys + e->off, k, n) == 0) {
            break;
        }
    }

    return i;
}


/* Doubles the slots; 0, or -1 (no memory: h unchanged). */
static int
cr_hash_grow(cr_hash_t *h)
{
    size_t      i, j, cap;
    uint32_t   *slot;
    cr_hent_t  *e;

    cap = h->cap ? h->cap * 2 : 1024;
    slot = calloc(cap, sizeof(uint32_t));
    if (slot == NULL) {
        return -1;
    }

    for (j = 0; j < h->n; j++) {
        e = &h->e[j];
        for (i = cr_hash_key(h->keys + e->off, e->len) & (cap - 1);
             slot[i];
             i = (i + 1) & (cap - 1))
        {
            /* void */
        }
        slot[i] = (uint32_t) (j + 1);
    }

    free(h->slot);
    h->slot = slot;
    h->cap = cap;

    return 0;
}


/* Room for one more item of size in *p (doubled as need be); 0 or -1. */
static int
cr_hash_room(void **p, size_t *cap, size_t used, size_t need, size_t size)
{
    size_t   c;
    void    *q;

    if (used + need <= *cap) {
        return 0;
    }

    for (c = *cap ? *cap : 1024; c < used + need; c *= 2) {
        /* void */
    }

    /* Large blocks grow by mremap: no copy, and no second block held. */
    q = realloc(*p, c * size);
    if (q == NULL) {
        return -1;
    }

    *p = q;
    *cap = c;

    return 0;
}


cr_hent_t *
cr_load_hash_get(cr_hash_t *h, const char *k, size_t n, int add)
{
    size_t      i;
    cr_hent_t  *e;

    i = 0;

    if (h->cap) {
        i = cr_hash_slot(h, k, n);
        if (h->slot[i]) {
            return &h->e[h->slot[i] - 1];
        }
    }

    if (!add) {
        return NULL;
    }

    if (h->n + 1 >= UINT32_MAX || n >= (1u << 23)) {
        return NULL;
    }

    if (10 * (h->n + 1) > 7 * h->cap) {
        if (cr_hash_grow(h) != 0) {
            return NULL;
        }
        i = cr_hash_slot(h, k, n);
    }

    if (cr_hash_room((void **) &h->e, &h->ecap, h->n, 1, sizeof(cr_hent_t))
        != 0
        || cr_hash_room((void **) &h->keys, &h->kcap, h->klen, n ? n : 1, 1)
           != 0)
    {
        return NULL;
    }

    e = &h->e[h->n];
    memset(e, 0, sizeof(cr_hent_t));
    e->off = h->klen;
    e->len = n;
    memcpy(h->keys + h->klen, k, n);
    h->klen += n;
    h->slot[i] = (uint32_t) ++h->n;

    return e;
}


static void
cr_hash_free(cr_hash_t *h)
{
    free(h->slot);
    free(h->e);
    free(h->keys);
    memset(h, 0, sizeof(cr_hash_t));
}

