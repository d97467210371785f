/*
 * Receipts (收货): which cases and pallets a store has received, in a
 * table in shared memory beside a code_router_scans zone, so that a scan
 * of an item of an activate=on_receipt batch asks it, without the
 * network, whether its case or its pallet has reached a store
 * (docs/loading.md, "Activation on receipt").
 *
 * The table: open addressing over a power-of-two number of slots, at
 * most three quarters of them used (max= receipts), never an entry
 * removed, so a scan reads it without a lock: a writer (under the slab
 * pool's mutex) fills a slot, then publishes its key behind a barrier.
 * Full is said, never an older receipt dropped: the API answers 503
 * (asked before the receipt is written), and the error log and
 * code_router_receipts_total{result="full"} say why; a start or a poll
 * that finds more receipts than max holds what fits and says the rest.
 * Each key fingerprint (a brand's key id) may hold at most max / (key files
 * configured) receipts, so that one brand cannot fill the table at
 * another's cost.
 *
 * Durable first: a receipt is committed to the zone's scan store
 * (cr_receipt.h) before the table holds it and before the API answers;
 * a worker that opens the store loads every receipt into a table not yet
 * loaded (a new zone: a start, or a reload that made the table anew).
 * Until the table is loaded an on-receipt item is "unavailable", never
 * told inactive (or active) by a guess.  Without a ledger each node's
 * receipts are its own (its scan store): receipts shared by nodes need
 * the ledger.
 *
 * With the zone's ledger= (PostgreSQL), the ledger is where a receipt is
 * durable and decided (the first wins, on whichever node), and the
 * table is filled by polls: every second one worker of each node pulls
 * the receipts made since its last poll (overlapping by
 * CR_RECEIPT_OVERLAP_US, as the scans' polls do), in nginx's default
 * thread pool, so every node sees another's receipt within about a
 * second and a scan never waits on the network.  The first poll pulls
 * all (the table's "loaded").  A poll of its own, not the scans' flush:
 * a receipt is rare, and its pull should not wait behind a flush.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_receipt.h"
#include "ngx_http_code_router.h"


#define CR_RECEIPT_DEFAULT_MAX  65536
#define CR_RECEIPT_KEYS         64      /* fingerprints with a share */
#define CR_RECEIPT_POLL_MS      2000    /* a poll's timeout */
#define CR_RECEIPT_OVERLAP_US   3000000 /* polls overlap by more than a
                                         * statement may take */
#define CR_RECEIPT_STALE_S      30      /* a poller that died */


typedef struct {
    volatile uint64_t              key;         /* kid | serial, plus 1;
                                                 * 0: free */
    cr_receipt_t                   r;           /* its fp: the code's */
} ngx_http_code_router_receipt_slot_t;


typedef struct {
    ngx_uint_t                     loaded;      /* from the scan store */
    ngx_uint_t                     mask;        /* slots - 1 */
    ngx_uint_t                     max;
    ngx_uint_t                     share;       /* per fingerprint */
    ngx_atomic_t                   used;
    ngx_atomic_t                   received;    /* new receipts */
    ngx_atomic_t                   repeated;    /* the same store again */
    ngx_atomic_t                   diverted;    /* another store's */
    ngx_atomic_t                   full;        /* refused: no room */
    ngx_atomic_t                   polls;       /* ledger polls done */
    ngx_atomic_t                   poll_errors;
    int64_t                        polled_us;   /* the next poll's since */
    time_t                         polling;     /* since; 0: nobody */
    ngx_http_code_router_outage_t  outage;      /* of the ledger */
    ngx_uint_t                     nkeys;
    struct {
        uint8_t                    fp[CR_SCANS_FP_LEN];
        ngx_uint_t                 n;
    }                              keys[CR_RECEIPT_KEYS];
    ngx_http_code_router_receipt_slot_t  slot[1];
} ngx_http_code_router_receipts_sh_t;


/* A zone's receipts (what its slot, zone_receipts(), points to). */
typedef struct {
    ngx_http_code_router_zone_t         *zone;
    ngx_shm_zone_t                      *shm;
    ngx_slab_pool_t                     *shpool;
    ngx_http_code_router_receipts_sh_t  *sh;
    ngx_uint_t                           max;
    ngx_uint_t                           slots;
    ngx_http_code_router_main_conf_t    *crmcf;     /* its key files */
    /* ledger=: the zone's conninfo, this worker's poll (its connection,
     * used by one poll at a time, and the rows it brought). */
    ngx_str_t                            ledger;
    cr_ledger_conn_t                    *conn;
    ngx_thread_task_t                   *task;
    cr_ledger_receipt_t                 *rows;
    size_t                               nrows;
    size_t                               cap;
    int64_t                              since_us;
    int64_t                              start_us;
    int                                  rc;
    unsigned                             truncated:1;
    unsigned                             said_full:1;
    char                                 err[256];
} ngx_http_code_router_receipts_t;


static ngx_int_t ngx_http_code_router_receipts_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static int ngx_http_code_router_receipts_load_one(void *ctx,
    const cr_receipt_t *r);
static void ngx_http_code_router_receipts_poll(
    ngx_http_code_router_receipts_t *t, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_code_router_receipts_poll_thread(void *data,
    ngx_log_t *log);
static int ngx_http_code_router_receipts_row(void *ctx,
    const cr_ledger_receipt_t *one);
#endif
static void ngx_http_code_router_receipts_polled(ngx_event_t *ev);
static ngx_http_code_router_receipt_slot_t *
    ngx_http_code_router_receipt_slot(ngx_http_code_router_receipts_sh_t *sh,
    const uint8_t *fp, unsigned kid, uint64_t serial, ngx_uint_t *free);


static ngx_http_code_router_limit_t  ngx_http_code_router_no_receipts;


/* Every zone's receipts, for the workers' load and the status page. */
static ngx_array_t  *ngx_http_code_router_receipts_all;


static ngx_http_code_router_receipts_t *
ngx_http_code_router_receipts_of(ngx_http_code_router_zone_t *z)
{
    return z ? *ngx_http_code_router_zone_receipts(z) : NULL;
}


/*
 * The scan-time check of an item of an on-receipt batch: its case or
 * its pallet received (the chain the lookup read), in the table of the
 * location's zone.  CR_OUT_OK, CR_OUT_INACTIVE, or CR_OUT_UNAVAILABLE
 * while the table is not loaded.  No table at all: inactive, logged
 * (an on-receipt batch must never route as active where nobody can
 * receive it).
 */
ngx_http_code_router_out_e
ngx_http_code_router_receipt_active(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *z, const uint8_t *fp,
    ngx_http_code_router_decision_t *d)
{
    ngx_uint_t                            i;
    ngx_http_code_router_receipts_t      *rc;
    ngx_http_code_router_receipt_slot_t  *s;

    rc = ngx_http_code_router_receipts_of(z);

    if (rc == NULL) {
        if (ngx_http_code_router_log_ok(&ngx_http_code_router_no_receipts,
                                        ngx_crc32_short((u_char *)
                                            d->b.batch.s[CR_BATCH_ID].data,
                                            d->b.batch.s[CR_BATCH_ID].len)))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "code router: batch \"%*s\" activates on "
                          "receipt, but this location's code_router_scans "
                          "zone has no code_router_receipts: its items "
                          "answer \"inactive\"",
                          d->b.batch.s[CR_BATCH_ID].len,
                          d->b.batch.s[CR_BATCH_ID].data);
        }

        return CR_OUT_INACTIVE;
    }

    if (!rc->sh->loaded) {
        return CR_OUT_UNAVAILABLE;
    }

    for (i = 0; i < d->b.nparents; i++) {
        s = ngx_http_code_router_receipt_slot(rc->sh, fp, d->b.parents[i].kid,
                                              d->b.parents[i].serial, NULL);
        if (s == NULL) {
            continue;
        }

        /* The receipt goes with the answer (the API's "receipt"); its
         * dealer, the one the case was shipped to, is the item's
         * ($code_router_dealer, the scan record): a scan the region
         * calls diverted names whose goods they were. */
        d->receipt = ngx_palloc(r->pool, sizeof(cr_receipt_t));
        if (d->receipt == NULL) {
            return CR_OUT_UNAVAILABLE;
        }

        *d->receipt = s->r;

        if (d->receipt->dealer_len) {
            d->b.batch.s[CR_BATCH_DEALER].data = d->receipt->dealer;
            d->b.batch.s[CR_BATCH_DEALER].len = d->receipt->dealer_len;
        }

        return CR_OUT_OK;
    }

    return CR_OUT_INACTIVE;
}


/*
 * The slot of (fp, kid, serial), or NULL; with free, the first free slot
 * on its probe in *free (the slot's index), for an insert.  A reader
 * that meets a key not yet published misses it: the receipt is not yet
 * answered either.
 */
static ngx_http_code_router_receipt_slot_t *
ngx_http_code_router_receipt_slot(ngx_http_code_router_receipts_sh_t *sh,
    const uint8_t *fp, unsigned kid, uint64_t serial, ngx_uint_t *free)
{
    uint64_t                              key, f, h;
    ngx_uint_t                            i, n;
    ngx_http_code_router_receipt_slot_t  *s;

    key = ((uint64_t) kid << 40 | serial) + 1;
    ngx_memcpy(&f, fp, sizeof(f));

    /* Fibonacci hashing of key and fingerprint: only a store that holds
     * the API's key makes receipts, so no stranger picks the slots. */
    h = (key ^ f) * 0x9e3779b97f4a7c15ULL;
    i = (ngx_uint_t) (h >> 32) & sh->mask;

    for (n = 0; n <= sh->mask; n++, i = (i + 1) & sh->mask) {
        s = &sh->slot[i];

        if (s->key == 0) {
            if (free) {
                *free = i;
            }
            return NULL;
        }

        ngx_memory_barrier();

        if (s->key == key && ngx_memcmp(s->r.fp, fp, CR_SCANS_FP_LEN) == 0) {
            return s;
        }
    }

    return NULL;
}


/*
 * The first receipt of the case or pallet r names, or of its chain
 * (parents, n of them: a pallet received covers its cases), into *first:
 * NGX_OK, or NGX_DECLINED if none.
 */
ngx_int_t
ngx_http_code_router_receipt_find(ngx_http_code_router_zone_t *z,
    const cr_receipt_t *r, const cr_parent_ref_t *parents, ngx_uint_t n,
    cr_receipt_t *first)
{
    ngx_uint_t                            i;
    ngx_http_code_router_receipts_t      *rc;
    ngx_http_code_router_receipt_slot_t  *s;

    rc = ngx_http_code_router_receipts_of(z);

    s = ngx_http_code_router_receipt_slot(rc->sh, r->fp, r->kid, r->serial,
                                          NULL);

    for (i = 0; s == NULL && i < n; i++) {
        s = ngx_http_code_router_receipt_slot(rc->sh, r->fp, parents[i].kid,
                                              parents[i].serial, NULL);
    }

    if (s == NULL) {
        return NGX_DECLINED;
    }

    *first = s->r;

    return NGX_OK;
}


/* Whether zone z keeps receipts, and they are loaded: NGX_OK, NGX_AGAIN
 * (not loaded yet), NGX_DECLINED (no table). */
ngx_int_t
ngx_http_code_router_receipts_ready(ngx_http_code_router_zone_t *z)
{
    ngx_http_code_router_receipts_t  *rc;

    rc = ngx_http_code_router_receipts_of(z);

    if (rc == NULL) {
        return NGX_DECLINED;
    }

    return rc->sh->loaded ? NGX_OK : NGX_AGAIN;
}


/* Whether the table has room for one more receipt of key entry k
 * (nkeys: a key not seen yet). */
static ngx_uint_t
ngx_http_code_router_receipt_fits(ngx_http_code_router_receipts_sh_t *sh,
    ngx_uint_t k)
{
    return sh->used < sh->max
           && (k < sh->nkeys ? sh->keys[k].n < sh->share
                             : k < CR_RECEIPT_KEYS);
}


/*
 * Whether zone z's table has room for a receipt of key fingerprint fp:
 * asked before a receipt is written, so that a full table refuses it
 * (503) before it is made durable.  (Two receipts at once may still
 * both pass; the second is then durable and refused by the table: its
 * retry is answered once there is room, and a restart loads it.)
 */
ngx_uint_t
ngx_http_code_router_receipt_room(ngx_http_code_router_zone_t *z,
    const uint8_t *fp)
{
    ngx_uint_t                           k, ok;
    ngx_http_code_router_receipts_sh_t  *sh;
    ngx_http_code_router_receipts_t     *t;

    t = ngx_http_code_router_receipts_of(z);
    sh = t->sh;

    ngx_shmtx_lock(&t->shpool->mutex);

    for (k = 0; k < sh->nkeys; k++) {
        if (ngx_memcmp(sh->keys[k].fp, fp, CR_SCANS_FP_LEN) == 0) {
            break;
        }
    }

    ok = ngx_http_code_router_receipt_fits(sh, k);

    ngx_shmtx_unlock(&t->shpool->mutex);

    if (!ok) {
        (void) ngx_atomic_fetch_add(&sh->full, 1);
    }

    return ok;
}


/*
 * Puts receipt r (durable already) in the table, unless the code has one
 * there (then *first is it: NGX_DECLINED).  NGX_OK, or NGX_BUSY: no room
 * (the table, or the key's share), logged and counted.
 */
static ngx_int_t
ngx_http_code_router_receipt_put(ngx_http_code_router_receipts_t *rc,
    const cr_receipt_t *r, cr_receipt_t *first, ngx_log_t *log)
{
    ngx_uint_t                            i, k, free;
    ngx_http_code_router_receipts_sh_t   *sh;
    ngx_http_code_router_receipt_slot_t  *s;

    sh = rc->sh;
    free = 0;

    s = ngx_http_code_router_receipt_slot(sh, r->fp, r->kid, r->serial,
                                          &free);
    if (s) {
        if (first) {
            *first = s->r;
        }
        return NGX_DECLINED;
    }

    for (k = 0; k < sh->nkeys; k++) {
        if (ngx_memcmp(sh->keys[k].fp, r->fp, CR_SCANS_FP_LEN) == 0) {
            break;
        }
    }

    if (!ngx_http_code_router_receipt_fits(sh, k)) {
        (void) ngx_atomic_fetch_add(&sh->full, 1);

        if (log) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "code router: zone \"%V\": no room for a receipt "
                          "(%uA of %ui used, %ui a key): raise "
                          "code_router_receipts max=",
                          ngx_http_code_router_zone_name(rc->zone),
                          sh->used, sh->max, sh->share);
        }

        return NGX_BUSY;
    }

    if (k == sh->nkeys) {
        ngx_memcpy(sh->keys[k].fp, r->fp, CR_SCANS_FP_LEN);
        sh->keys[k].n = 0;
        sh->nkeys++;
    }

    sh->keys[k].n++;

    i = free;
    sh->slot[i].r = *r;
    ngx_memory_barrier();
    sh->slot[i].key = ((uint64_t) r->kid << 40 | r->serial) + 1;
    (void) ngx_atomic_fetch_add(&sh->used, 1);

    return NGX_OK;
}


/*
 * A receipt the scan store has committed (fresh: CR_RECEIPT_NEW, by this
 * request; else CR_RECEIPT_BEFORE with *r the stored one), into the
 * table; *r becomes the receipt to answer (the first).  NGX_OK, or
 * NGX_BUSY (no room).  Counted: new, repeated (the same store), or
 * diverted (another).
 */
ngx_int_t
ngx_http_code_router_receipt_add(ngx_http_code_router_zone_t *z,
    cr_receipt_t *r, const cr_receipt_t *asked, ngx_uint_t fresh,
    ngx_log_t *log)
{
    ngx_int_t                         rc;
    cr_receipt_t                      first;
    ngx_http_code_router_receipts_t  *t;

    t = ngx_http_code_router_receipts_of(z);

    ngx_shmtx_lock(&t->shpool->mutex);
    rc = ngx_http_code_router_receipt_put(t, r, &first, log);
    ngx_shmtx_unlock(&t->shpool->mutex);

    if (rc == NGX_BUSY) {
        return NGX_BUSY;
    }

    if (rc == NGX_DECLINED) {
        *r = first;
        fresh = 0;
    }

    ngx_http_code_router_receipt_counted(z, r, asked, fresh);

    return NGX_OK;
}


/* Counts the answer r to the receipt asked: received (fresh: recorded
 * by this request), else repeated (the same store) or diverted. */
void
ngx_http_code_router_receipt_counted(ngx_http_code_router_zone_t *z,
    const cr_receipt_t *r, const cr_receipt_t *asked, ngx_uint_t fresh)
{
    ngx_http_code_router_receipts_t  *t;

    t = ngx_http_code_router_receipts_of(z);

    if (r->store_len != asked->store_len
        || ngx_memcmp(r->store, asked->store, r->store_len) != 0)
    {
        (void) ngx_atomic_fetch_add(&t->sh->diverted, 1);

    } else if (fresh) {
        (void) ngx_atomic_fetch_add(&t->sh->received, 1);

    } else {
        (void) ngx_atomic_fetch_add(&t->sh->repeated, 1);
    }
}


/* Each worker, once its scan stores are open (and every second until it
 * is done): the receipts of a table not yet loaded. */
void
ngx_http_code_router_receipts_load(ngx_log_t *log)
{
    int                               rc;
    ngx_uint_t                        i;
    cr_scans_t                       *sc;
    ngx_http_code_router_receipts_t **all;

    if (ngx_http_code_router_receipts_all == NULL) {
        return;
    }

    all = ngx_http_code_router_receipts_all->elts;

    for (i = 0; i < ngx_http_code_router_receipts_all->nelts; i++) {
        if (all[i]->ledger.len) {
            ngx_http_code_router_receipts_poll(all[i], log);
            continue;
        }

        if (all[i]->sh->loaded) {
            continue;
        }

        sc = ngx_http_code_router_scans_store(all[i]->zone);
        if (sc == NULL) {
            continue;                   /* not open: the next second */
        }

        ngx_shmtx_lock(&all[i]->shpool->mutex);

        rc = 0;
        all[i]->nrows = 0;              /* here: those without room */

        if (!all[i]->sh->loaded) {
            rc = cr_scans_each_receipt(sc,
                                   ngx_http_code_router_receipts_load_one,
                                   all[i]);
            if (rc == 0) {
                all[i]->sh->loaded = 1;
            }
        }

        ngx_shmtx_unlock(&all[i]->shpool->mutex);

        if (rc != 0) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "code router: zone \"%V\": receipts cannot be "
                          "loaded: %s",
                          ngx_http_code_router_zone_name(all[i]->zone),
                          cr_scans_error(sc));

        } else if (all[i]->nrows) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "code router: zone \"%V\": %uz stored receipts "
                          "have no room (code_router_receipts max=): the "
                          "items of their cases answer \"inactive\"",
                          ngx_http_code_router_zone_name(all[i]->zone),
                          all[i]->nrows);
        }
    }
}


/* One stored receipt into the table; one without room is counted (full)
 * and the load goes on: what fits is answered, the rest is said. */
static int
ngx_http_code_router_receipts_load_one(void *ctx, const cr_receipt_t *r)
{
    ngx_http_code_router_receipts_t  *t = ctx;

    t->nrows += ngx_http_code_router_receipt_put(t, r, NULL, NULL)
                == NGX_BUSY;

    return 0;
}


/* A receipt of the ledger as the table keeps it. */
void
ngx_http_code_router_receipt_from_ledger(cr_receipt_t *r,
    const cr_ledger_receipt_t *one)
{
    ngx_memcpy(r->fp, one->code.fp, CR_SCANS_FP_LEN);
    r->kid = (uint8_t) one->code.kid;
    r->serial = one->code.serial;
    r->at = one->at;
    r->store_len = (uint8_t) ngx_strlen(one->store);
    ngx_memcpy(r->store, one->store, r->store_len);
    r->dealer_len = (uint8_t) ngx_strlen(one->dealer);
    ngx_memcpy(r->dealer, one->dealer, r->dealer_len);
}


/* Every second: this worker polls the ledger if no worker of this node
 * is polling it (or one died doing so). */
static void
ngx_http_code_router_receipts_poll(ngx_http_code_router_receipts_t *t,
    ngx_log_t *log)
{
    time_t                               now;
    ngx_http_code_router_receipts_sh_t  *sh;

    sh = t->sh;
    now = ngx_time();

    if (t->task == NULL || t->task->event.active
        || !ngx_http_code_router_retry_due(&sh->outage))
    {
        return;
    }

    ngx_shmtx_lock(&t->shpool->mutex);

    if (sh->polling && now - sh->polling < CR_RECEIPT_STALE_S) {
        ngx_shmtx_unlock(&t->shpool->mutex);
        return;
    }

    sh->polling = now;
    t->since_us = sh->polled_us;
    ngx_shmtx_unlock(&t->shpool->mutex);

    t->nrows = 0;
    t->start_us = cr_ledger_now_us();

#if (NGX_THREADS)
    {
        ngx_str_t           name = ngx_string("default");
        ngx_thread_pool_t  *tp;

        tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle, &name);

        if (tp && ngx_thread_task_post(tp, t->task) == NGX_OK) {
            t->task->event.active = 1;
            return;
        }
    }
#endif

    ngx_log_error(NGX_LOG_ERR, log, 0, "code router: zone \"%V\": the "
                  "receipts' poll cannot be posted to the thread pool",
                  ngx_http_code_router_zone_name(t->zone));

    ngx_shmtx_lock(&t->shpool->mutex);
    sh->polling = 0;
    ngx_shmtx_unlock(&t->shpool->mutex);
}


#if (NGX_THREADS)

static void
ngx_http_code_router_receipts_poll_thread(void *data, ngx_log_t *log)
{
    ngx_http_code_router_receipts_t  *t = data;

    (void) log;

    if (t->conn == NULL) {
        t->conn = cr_ledger_conn_new((char *) t->ledger.data,
                                     CR_RECEIPT_POLL_MS);
        if (t->conn == NULL) {
            t->rc = -1;
            ngx_cpystrn((u_char *) t->err, (u_char *) "out of memory",
                        sizeof(t->err));
            return;
        }
    }

    t->rc = cr_ledger_receipts_since(t->conn, t->since_us,
                                     t->start_us
                                     + CR_RECEIPT_POLL_MS * 1000,
                                     ngx_http_code_router_receipts_row, t);

    /* 2: cut at max= rows (the table is full; said by the put). */
    t->truncated = (t->rc == 2);
    t->rc = t->truncated ? 0 : t->rc;

    if (t->rc != 0) {
        ngx_cpystrn((u_char *) t->err,
                    (u_char *) (t->rc == 1 ? "out of memory"
                                           : cr_ledger_error(t->conn)),
                    sizeof(t->err));
    }
}


/* A row of the poll, kept for the event loop (which puts it in shared
 * memory): 1 stops the poll for memory. */
static int
ngx_http_code_router_receipts_row(void *ctx, const cr_ledger_receipt_t *one)
{
    size_t                            cap;
    cr_ledger_receipt_t              *rows;
    ngx_http_code_router_receipts_t  *t = ctx;

    /* No more than the table holds: the rest would find no room (and a
     * ledger of millions must not fill a worker's memory). */
    if (t->nrows == t->max) {
        return 2;
    }

    if (t->nrows == t->cap) {
        cap = t->cap ? 2 * t->cap : 64;
        cap = cap < t->max ? cap : t->max;
        rows = realloc(t->rows, cap * sizeof(cr_ledger_receipt_t));
        if (rows == NULL) {
            return 1;
        }

        t->rows = rows;
        t->cap = cap;
    }

    t->rows[t->nrows++] = *one;

    return 0;
}

#endif


/* The poll's rows into the table; its end said to the other workers. */
static void
ngx_http_code_router_receipts_polled(ngx_event_t *ev)
{
    size_t                               i, full;
    cr_receipt_t                         r;
    ngx_http_code_router_receipts_t     *t;
    ngx_http_code_router_receipts_sh_t  *sh;

    t = ev->data;
    sh = t->sh;
    ev->active = 0;

    if (t->rc != 0) {
        (void) ngx_atomic_fetch_add(&sh->poll_errors, 1);
        ngx_http_code_router_down(ev->log, &sh->outage, t->err,
                                  "receipts made on other nodes are not "
                                  "seen here until it is back");

        ngx_shmtx_lock(&t->shpool->mutex);
        sh->polling = 0;
        ngx_shmtx_unlock(&t->shpool->mutex);
        return;
    }

    full = 0;

    ngx_shmtx_lock(&t->shpool->mutex);

    for (i = 0; i < t->nrows; i++) {
        ngx_http_code_router_receipt_from_ledger(&r, &t->rows[i]);
        full += ngx_http_code_router_receipt_put(t, &r, NULL, NULL)
                == NGX_BUSY;
    }

    /* A poll cut short begins again where it began (it found no room
     * anyway); else the next overlaps this one. */
    if (!t->truncated
        && t->start_us - CR_RECEIPT_OVERLAP_US > sh->polled_us)
    {
        sh->polled_us = t->start_us - CR_RECEIPT_OVERLAP_US;
    }

    sh->loaded = 1;
    sh->polling = 0;
    ngx_shmtx_unlock(&t->shpool->mutex);

    (void) ngx_atomic_fetch_add(&sh->polls, 1);
    ngx_http_code_router_up(ev->log, &sh->outage, "receipts' ledger",
                            ngx_http_code_router_zone_name(t->zone));

    /* Said once while it lasts: the poll runs every second. */
    if ((full || t->truncated) && !t->said_full) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0, "code router: zone \"%V\": "
                      "%uz%s receipts of the ledger have no room "
                      "(code_router_receipts max=)",
                      ngx_http_code_router_zone_name(t->zone), full,
                      t->truncated ? " or more" : "");
    }

    t->said_full = (full || t->truncated);
}


/* Each worker's poll task (ledger=), made at its start. */
ngx_int_t
ngx_http_code_router_receipts_open(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_receipts_t  **all;

    if (ngx_http_code_router_receipts_all == NULL) {
        return NGX_OK;
    }

    all = ngx_http_code_router_receipts_all->elts;

    for (i = 0; i < ngx_http_code_router_receipts_all->nelts; i++) {
        if (all[i]->ledger.len == 0) {
            continue;
        }

        all[i]->task = ngx_thread_task_alloc(cycle->pool, 0);
        if (all[i]->task == NULL) {
            return NGX_ERROR;
        }

        all[i]->task->ctx = all[i];
#if (NGX_THREADS)
        all[i]->task->handler = ngx_http_code_router_receipts_poll_thread;
#endif
        all[i]->task->event.data = all[i];
        all[i]->task->event.log = cycle->log;
        all[i]->task->event.handler = ngx_http_code_router_receipts_polled;
    }

    ngx_http_code_router_receipts_load(cycle->log);

    return NGX_OK;
}


/* The zone's ledger= conninfo (NUL-terminated), or NULL: the scan
 * store keeps its receipts. */
ngx_str_t *
ngx_http_code_router_receipts_ledger(ngx_http_code_router_zone_t *z)
{
    ngx_http_code_router_receipts_t  *t;

    t = ngx_http_code_router_receipts_of(z);

    return (t && t->ledger.len) ? &t->ledger : NULL;
}


/* The zones' receipts metrics for code_router_status. */
size_t
ngx_http_code_router_receipts_status_len(ngx_http_request_t *r)
{
    (void) r;

    if (ngx_http_code_router_receipts_all == NULL) {
        return 0;
    }

    return 1024 + ngx_http_code_router_receipts_all->nelts
                  * (512 + 8 * (NGX_INT64_LEN + NGX_ATOMIC_T_LEN + 64));
}


u_char *
ngx_http_code_router_receipts_status(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_str_t                         *name;
    ngx_uint_t                         i;
    ngx_http_code_router_receipts_t  **all;
    ngx_http_code_router_receipts_sh_t *sh;

    (void) r;

    if (ngx_http_code_router_receipts_all == NULL) {
        return p;
    }

    p = ngx_slprintf(p, last,
            "# HELP code_router_receipts_total Receipts of cases and "
            "pallets by result: received (new), repeated (the same store "
            "again), diverted (another store than the first: goods "
            "found elsewhere), full (refused: no room).\n"
            "# TYPE code_router_receipts_total counter\n");

    all = ngx_http_code_router_receipts_all->elts;

    for (i = 0; i < ngx_http_code_router_receipts_all->nelts; i++) {
        sh = all[i]->sh;
        name = ngx_http_code_router_zone_name(all[i]->zone);

        p = ngx_slprintf(p, last,
                "code_router_receipts_total{zone=\"%V\",result=\"received\"}"
                " %uA\n"
                "code_router_receipts_total{zone=\"%V\",result=\"repeated\"}"
                " %uA\n"
                "code_router_receipts_total{zone=\"%V\",result=\"diverted\"}"
                " %uA\n"
                "code_router_receipts_total{zone=\"%V\",result=\"full\"}"
                " %uA\n",
                name, sh->received, name, sh->repeated, name, sh->diverted,
                name, sh->full);
    }

    p = ngx_slprintf(p, last,
            "# HELP code_router_receipts Receipts held in shared memory, "
            "and the most the table holds (code_router_receipts max=).\n"
            "# TYPE code_router_receipts gauge\n");

    for (i = 0; i < ngx_http_code_router_receipts_all->nelts; i++) {
        sh = all[i]->sh;
        name = ngx_http_code_router_zone_name(all[i]->zone);

        p = ngx_slprintf(p, last,
                "code_router_receipts{zone=\"%V\",of=\"used\"} %uA\n"
                "code_router_receipts{zone=\"%V\",of=\"max\"} %ui\n",
                name, sh->used, name, sh->max);
    }

    return p;
}


/*
 * code_router_receipts ZONE [max=N]: the receipts of the cases and
 * pallets whose items are scanned through code_router_scans zone ZONE
 * (defined before, with a scan store), at most N of them.
 */
char *
ngx_http_code_router_receipts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                         *value, name;
    ngx_int_t                          max;
    ngx_uint_t                         i, slots;
    ngx_http_code_router_zone_t      **zp, *z;
    ngx_http_code_router_receipts_t   *t, **tp;
    ngx_http_code_router_main_conf_t  *crmcf = conf;

    (void) cmd;

    value = cf->args->elts;
    max = CR_RECEIPT_DEFAULT_MAX;

    for (i = 2; i < cf->args->nelts; i++) {
        if (value[i].len > 4 && ngx_strncmp(value[i].data, "max=", 4) == 0) {
            max = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (max < 1 || max > 1 << 24) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\": max= must be a number of "
                                   "receipts from 1 to 16777216", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    z = NULL;
    zp = crmcf->zones.elts;

    for (i = 0; i < crmcf->zones.nelts; i++) {
        if (ngx_http_code_router_zone_name(zp[i])->len == value[1].len
            && ngx_strncmp(ngx_http_code_router_zone_name(zp[i])->data,
                           value[1].data, value[1].len) == 0)
        {
            z = zp[i];
            break;
        }
    }

    if (z == NULL || (!ngx_http_code_router_zone_stored(z)
                      && ngx_http_code_router_zone_ledger(z)->len == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "code_router_receipts \"%V\": no code_router_scans "
                           "zone of that name with a store= or a ledger= "
                           "defined before it (receipts are kept in the "
                           "ledger, else in the scan store)", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (*ngx_http_code_router_zone_receipts(z)) {
        return "is duplicate";
    }

    t = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_receipts_t));
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    /* At most three quarters of the slots in use: short probes. */
    for (slots = 4; slots / 4 * 3 < (ngx_uint_t) max; slots *= 2) {
        /* void */
    }

    t->zone = z;
    t->crmcf = crmcf;

    name = *ngx_http_code_router_zone_ledger(z);

    if (name.len) {
        t->ledger.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (t->ledger.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(t->ledger.data, name.data, name.len);
        t->ledger.data[name.len] = '\0';
        t->ledger.len = name.len;
    }
    t->max = max;
    t->slots = slots;

    name.len = sizeof("code_router_receipts:") - 1 + value[1].len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(name.data, "code_router_receipts:%V", &value[1]);

    t->shm = ngx_shared_memory_add(cf, &name,
                 sizeof(ngx_http_code_router_receipts_sh_t)
                 + slots * sizeof(ngx_http_code_router_receipt_slot_t)
                 + 64 * ngx_pagesize, &ngx_http_code_router_module);
    if (t->shm == NULL) {
        return NGX_CONF_ERROR;
    }

    t->shm->init = ngx_http_code_router_receipts_init_zone;
    t->shm->data = t;

    *ngx_http_code_router_zone_receipts(z) = t;

    if (ngx_http_code_router_receipts_all == NULL
        || ngx_http_code_router_receipts_all->pool != cf->pool)
    {
        ngx_http_code_router_receipts_all = ngx_array_create(cf->pool, 2,
                                                       sizeof(void *));
        if (ngx_http_code_router_receipts_all == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    tp = ngx_array_push(ngx_http_code_router_receipts_all);
    if (tp == NULL) {
        return NGX_CONF_ERROR;
    }

    *tp = t;

    /* The receipt API answers when the scan store has the receipt: it
     * writes in nginx's default thread pool, as the embedded ledger. */
    if (ngx_http_code_router_ledger_embedded(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A new table, or on reload the old one kept if it was made for as many
 * slots (its receipts stay loaded); the key's share from the key files
 * configured now.
 */
static ngx_int_t
ngx_http_code_router_receipts_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                          keys;
    ngx_http_code_router_receipts_t    *t, *old = data;

    t = shm_zone->data;
    t->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* Zones are made after the whole configuration is read: every key
     * file is known. */
    keys = t->crmcf->keys.nelts ? t->crmcf->keys.nelts : 1;

    if (old && old->slots == t->slots) {
        t->sh = old->sh;
        t->sh->max = t->max;
        t->sh->share = t->max / keys ? t->max / keys : 1;
        return NGX_OK;
    }

    t->sh = ngx_slab_calloc(t->shpool,
                            sizeof(ngx_http_code_router_receipts_sh_t)
                            + t->slots
                              * sizeof(ngx_http_code_router_receipt_slot_t));
    if (t->sh == NULL) {
        return NGX_ERROR;
    }

    t->sh->mask = t->slots - 1;
    t->sh->max = t->max;
    t->sh->share = t->max / keys ? t->max / keys : 1;
    t->shpool->data = t->sh;

    return NGX_OK;
}
