/*
 * Scan counting: per code, the number of scans and the time of the first,
 * in a shared-memory zone (an rbtree and an LRU queue, like limit_req's),
 * persisted in batches to a scan store (cr_scans) by one worker at a time
 * and read back lazily, so counts survive reloads and restarts.
 *
 * Eviction: when the zone is full, the least recently scanned codes that
 * are already in the store are dropped (they are read back at their next
 * scan); codes whose latest scans are not yet stored are never dropped.
 * If none can be dropped, the scan is answered but not counted.  Without
 * a store, evicted codes start again from zero.
 *
 * With ledger= the flush also sends each scanned code's count on this
 * node (cumulative) to PostgreSQL (cr_ledger_scans), from the same
 * thread-pool task, and takes back the total over the nodes: a code's
 * count here is then its own plus the others' as of its last flush.  A
 * code is not dropped while the ledger lacks its latest count either;
 * an outage leaves the codes queued, and the counts sent when it ends
 * are cumulative, kept by maximum: nothing is lost or counted twice.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_ua.h"
#include "cr_valid.h"
#include "ngx_http_code_router.h"


#define CR_FLUSH_MAX          65536     /* records per write transaction */
#define CR_FLUSH_CHUNK        1024      /* per event-loop turn, when the
                                         * write is in a thread pool */
#define CR_FLUSH_STALE_S      30        /* a flusher that died holding it */
#define CR_EVICT_TRIES        32
#define CR_WAIT_DEFAULT_MS    200       /* wait=: how long a scan may
                                         * wait for room */
#define CR_WAIT_MAX_MS        10000
#define CR_FILL_SLICE         65536     /* store records a fill task reads
                                         * into the filter */
#define CR_FILTER_SHARE       16        /* the filter: 1/16 of the zone */

/* ngx_http_code_router_scans_sh_t.filter_state */
#define CR_FILTER_EMPTY       0         /* to fill from the store's first */
#define CR_FILTER_FILLING     1         /* a worker's pool fills it */
#define CR_FILTER_READY       2

/* ngx_http_code_router_scans_flush()'s "how" */
#define CR_FLUSH_TIMER        0         /* the interval's flush */
#define CR_FLUSH_MORE         1         /* the next chunk, at once */
#define CR_FLUSH_ROOM         2         /* a chunk now, in the event loop
                                         * (a scan waits for room) */
#define CR_LEDGER_FLUSH_MS    2000      /* a ledger statement's timeout */
#define CR_LEDGER_OVERLAP_US  3000000   /* polls overlap by more than a
                                         * statement may take (its rows'
                                         * time is its start) */


typedef struct ngx_http_code_router_scan_node_s
    ngx_http_code_router_scan_node_t;

/* The scan counters of one zone, in its shared memory. */
typedef struct {
    ngx_rbtree_t               rbtree;          /* by CR_SCAN_KEY(),
                                                 * then the key's fp */
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                lru;             /* most recent first */
    ngx_queue_t                dirty;           /* not yet in the store */
    /* Not yet in the ledger: a FIFO, singly linked (a node's link is 8
     * bytes, so that a node still fits a 128-byte slab slot).  Nodes are
     * appended by scans and taken from the head only by the flusher,
     * whose batch is thus the queue's first nodes until it marks them. */
    ngx_http_code_router_scan_node_t  *unsent_head;
    ngx_http_code_router_scan_node_t **unsent_tail;
    time_t                     last_flush;
    time_t                     flushing;        /* since; 0: nobody */
    ngx_atomic_t               codes;
    ngx_atomic_t               counted;
    ngx_atomic_t               verified;        /* right PINs the embedded
                                                 * ledger counted in the
                                                 * store (never here) */
    ngx_atomic_t               ignored;         /* HEAD, bots, previews */
    ngx_atomic_t               loaded;          /* read from the store */
    ngx_atomic_t               evicted;
    ngx_atomic_t               full;            /* scans not counted */
    ngx_atomic_t               waits;           /* scans that waited for
                                                 * room (back-pressure) */
    ngx_atomic_t               flushes;
    ngx_atomic_t               flush_errors;
    ngx_atomic_t               unavailable;     /* not counted: no store */
    ngx_atomic_t               unstored;        /* scans the store refused */
    /* The codes the scan store may hold: a Bloom filter (blocked: the
     * bits of a code in one 64-byte block), so that a code's first scan
     * need not search the store for a record it never had.  Every code a
     * flush takes is added before it is written; the store's own codes
     * once, when the zone is made, by a worker's pool thread, a slice at
     * a time (ngx_http_code_router_scans_fill).  Used once filled; bits
     * only ever go from 0 to 1 (atomically: the thread adds without the
     * zone's lock).  NULL: no room for it, never used. */
    uint64_t                  *filter;
    ngx_uint_t                 filter_blocks;
    ngx_atomic_t               filter_state;    /* CR_FILTER_* */
    ngx_atomic_t               filter_ready;    /* the metric: 0 or 1 */
    time_t                     filter_since;    /* the filler's last slice */
    ngx_uint_t                 filter_resume;   /* filter_next is set */
    cr_scan_t                  filter_next;     /* the last record read */
    ngx_atomic_t               skipped;         /* reads the filter saved */
    /* The scan store, as its last write left it (cr_scans_usage). */
    ngx_atomic_t               store_used;
    ngx_atomic_t               store_map;
    ngx_atomic_t               store_limit;
    ngx_atomic_t               store_alert;     /* past the alert share */
    ngx_atomic_t               store_refusing;  /* scans past their share */
    /* The ledger's (ledger=). */
    ngx_atomic_t               ledger_flushes;
    ngx_atomic_t               ledger_errors;
    ngx_atomic_t               ledger_unsent;   /* codes in unsent */
    int64_t                    polled_us;       /* the last poll's start */
    /* The ledger's outage, the workers': whichever flushes next knows
     * it, logs its end, and waits for its retry. */
    ngx_http_code_router_outage_t  ledger_outage;
} ngx_http_code_router_scans_sh_t;


/* A node's key: key id and serial.  The zone holds scans only: right
 * PINs go straight to the store, by the ledger's own transactions
 * (ngx_http_code_router_ledger.c, cr_scans_verify_n). */
#define CR_SCAN_KEY(kid, serial)  ((uint64_t) (kid) << 40 | (serial))

struct ngx_http_code_router_scan_node_s {
    ngx_rbtree_node_t          node;
    ngx_queue_t                lru;
    ngx_queue_t                dirty;
    ngx_http_code_router_scan_node_t  *unsent;  /* the next */
    uint64_t                   key;             /* CR_SCAN_KEY() */
    uint8_t                    fp[CR_SCANS_FP_LEN]; /* of the key */
    uint32_t                   count;           /* this node's */
    uint32_t                   stored;          /* as the store has it */
    uint32_t                   sent;            /* as the ledger has it */
    uint32_t                   others;          /* the other nodes', as
                                                 * of the last flush */
    int64_t                    first;
    uint32_t                   touched;         /* last LRU move, Unix
                                                 * seconds mod 2^32 */
    unsigned                   in_dirty:1;
    unsigned                   in_unsent:1;
};


/* A write of the scan store in a thread pool. */
typedef struct {
    ngx_http_code_router_zone_t       *zone;
    ngx_uint_t                         n;
    int                                rc;      /* cr_scans_put's */
    ngx_uint_t                         ln;      /* codes for the ledger */
    int                                lrc;     /* cr_ledger_scans'; 1:
                                                 * not sent */
    ngx_uint_t                         poll;    /* the others' counts */
    int                                prc;     /* 1: not polled */
    int64_t                            since_us;
    int64_t                            start_us;
    ngx_atomic_t                       done;    /* the thread's part */
    ngx_uint_t                         ended;   /* its marking, done by a
                                                 * scan that waited */
} ngx_http_code_router_flush_t;


/* A slice of the filter's fill, in a thread pool. */
typedef struct {
    ngx_http_code_router_zone_t       *zone;
    cr_scan_t                          from;
    ngx_uint_t                         resume;  /* from is set */
    cr_scan_t                          last;
    size_t                             n;
    int                                rc;
} ngx_http_code_router_fill_t;


/* A code_router_scans zone and its scan store. */
struct ngx_http_code_router_zone_s {
    ngx_str_t                          name;
    ngx_shm_zone_t                    *shm_zone;
    ngx_slab_pool_t                   *shpool;
    ngx_http_code_router_scans_sh_t   *sh;
    ngx_str_t                          store;   /* NUL-terminated; or "" */
    uint64_t                           store_size;
    uint64_t                           store_max;
    time_t                             flush;   /* seconds */
    ngx_msec_t                         wait;    /* wait=: for room */
    cr_scans_t                        *sc;      /* this worker's */
    ngx_str_t                          thread_pool;
    time_t                             flush_stamp; /* of our flush */
    /* This worker's flush of this zone: the records (sorted for the
     * write) and, in the order taken, their nodes and counts; marking
     * them needs no tree search.  Dirty nodes are never evicted, and only
     * the one flusher takes them off the dirty queue. */
    cr_scan_t                         *flush_buf;
    ngx_http_code_router_scan_node_t **flush_nodes;
    uint32_t                          *flush_counts;
    /* The ledger (ledger=): its conninfo and this node's name
     * (NUL-terminated), this worker's connection (used by one flush at
     * a time), and a flush's codes for it with their nodes. */
    ngx_str_t                          ledger;
    ngx_str_t                          node_name;
    cr_ledger_conn_t                  *lconn;
    cr_ledger_scan_t                  *ledger_buf;
    ngx_http_code_router_scan_node_t **ledger_nodes;
    char                               ledger_err[256];
    cr_ledger_others_t                *poll_buf;    /* a poll's answer */
    size_t                             poll_n;
    size_t                             poll_cap;
#if (NGX_THREADS)
    ngx_thread_pool_t                 *tp;
    ngx_thread_task_t                 *task;
    unsigned                           busy:1;  /* a write in the pool */
    unsigned                           posted:1; /* the task not back yet
                                                  * in the event loop */
    ngx_thread_task_t                 *fill_task;
    unsigned                           filling:1;
#endif
    time_t                             room_off; /* waiting for room
                                                  * failed: not this
                                                  * second again */
    ngx_http_code_router_outage_t      outage;  /* of the scan store */
    void                              *receipts;    /* code_router_receipts'
                                                     * (_receipt.c), or
                                                     * NULL */
};


/* The parameters of code_router_scans, parsed. */
typedef struct {
    ngx_str_t                          name;
    ngx_str_t                          store;       /* full path, or "" */
    ngx_str_t                          pool;        /* thread_pool= */
    ngx_str_t                          ledger;      /* ledger= */
    ngx_str_t                          node;        /* node= */
    ssize_t                            size;        /* 0: a reference */
    off_t                              store_size;
    off_t                              store_max;
    ngx_int_t                          flush;
    ngx_int_t                          wait;        /* ms */
} ngx_http_code_router_scans_args_t;


static char *ngx_http_code_router_scans_args(ngx_conf_t *cf,
    ngx_http_code_router_scans_args_t *a);
static char *ngx_http_code_router_scans_define(ngx_conf_t *cf,
    ngx_http_code_router_scans_args_t *a, ngx_http_code_router_zone_t **zone);
static char *ngx_http_code_router_scans_ledger_args(ngx_conf_t *cf,
    ngx_http_code_router_scans_args_t *a);
static ngx_int_t ngx_http_code_router_scans_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static void ngx_http_code_router_scans_refill(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_zone_t *oz);
static ngx_int_t ngx_http_code_router_scans_add(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *z, unsigned kid, uint64_t serial,
    ngx_uint_t count, cr_scan_t *v, ngx_uint_t *counted);
static ngx_http_code_router_scan_node_t *ngx_http_code_router_scans_place(
    ngx_http_code_router_zone_t *z, ngx_log_t *log, uint64_t key,
    const uint8_t *fp, time_t now, const cr_scan_t *stored);
static void ngx_http_code_router_scans_init_node(
    ngx_http_code_router_zone_t *z, ngx_http_code_router_scan_node_t *node,
    uint64_t key, const uint8_t *fp, time_t now, const cr_scan_t *stored);
static ngx_int_t ngx_http_code_router_scans_room(
    ngx_http_code_router_zone_t *z, ngx_log_t *log);
static uint64_t ngx_http_code_router_scans_hash(uint64_t key,
    const uint8_t *fp);
static void ngx_http_code_router_scans_filter_add(
    ngx_http_code_router_scans_sh_t *sh, uint64_t key, const uint8_t *fp);
static ngx_uint_t ngx_http_code_router_scans_never_stored(
    ngx_http_code_router_scans_sh_t *sh, uint64_t key, const uint8_t *fp);
static void ngx_http_code_router_scans_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_code_router_scans_cmp(
    ngx_http_code_router_scan_node_t *node, uint64_t key, const uint8_t *fp);
static ngx_http_code_router_scan_node_t *ngx_http_code_router_scans_find(
    ngx_http_code_router_scans_sh_t *sh, uint64_t key, const uint8_t *fp);
static ngx_http_code_router_scan_node_t *ngx_http_code_router_scans_alloc(
    ngx_http_code_router_zone_t *z);
static ngx_uint_t ngx_http_code_router_scans_evict(
    ngx_http_code_router_zone_t *z, ngx_uint_t tries);
static void ngx_http_code_router_scans_touch(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_scan_node_t *node, time_t now);
static void ngx_http_code_router_scans_bump(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_scan_node_t *node, time_t now);
static void ngx_http_code_router_scans_queue(
    ngx_http_code_router_scans_sh_t *sh,
    ngx_http_code_router_scan_node_t *node);
static uint32_t ngx_http_code_router_scans_total(
    ngx_http_code_router_scan_node_t *node);
static ngx_uint_t ngx_http_code_router_is_bot(ngx_http_request_t *r,
    ngx_http_code_router_loc_conf_t *crlcf);
static ngx_int_t ngx_http_code_router_scans_flush(
    ngx_http_code_router_zone_t *z, ngx_log_t *log, ngx_uint_t force,
    ngx_uint_t how);
static ngx_uint_t ngx_http_code_router_scans_flush_begin(
    ngx_http_code_router_zone_t *z, ngx_log_t *log, ngx_uint_t force,
    ngx_uint_t how, ngx_http_code_router_flush_t *f);
static int ngx_http_code_router_scans_poll(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_flush_t *f);
static int ngx_http_code_router_scans_polled(void *ctx,
    const cr_ledger_others_t *one);
static void ngx_http_code_router_scans_learn(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_flush_t *f);
static ngx_uint_t ngx_http_code_router_scans_unsent(
    ngx_http_code_router_zone_t *z, ngx_log_t *log);
static int ngx_http_code_router_scans_write(ngx_http_code_router_zone_t *z,
    ngx_uint_t n);
static int ngx_http_code_router_scans_send(ngx_http_code_router_zone_t *z,
    ngx_uint_t ln);
static void ngx_http_code_router_scans_flush_end(
    ngx_http_code_router_zone_t *z, ngx_http_code_router_flush_t *f,
    ngx_log_t *log);
static ngx_uint_t ngx_http_code_router_scans_sent(
    ngx_http_code_router_zone_t *z, ngx_uint_t ln, ngx_uint_t mine);
static void ngx_http_code_router_scans_ledger_said(
    ngx_http_code_router_zone_t *z, ngx_http_code_router_flush_t *f,
    ngx_uint_t done, ngx_log_t *log);
static void ngx_http_code_router_scans_usage(ngx_http_code_router_zone_t *z,
    int rc, ngx_log_t *log);
#if (NGX_THREADS)
static void ngx_http_code_router_scans_thread(void *data, ngx_log_t *log);
static void ngx_http_code_router_scans_written(ngx_event_t *ev);
static ngx_thread_task_t *ngx_http_code_router_scans_new_task(
    ngx_cycle_t *cycle, size_t size,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done);
static void ngx_http_code_router_scans_fill(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, ngx_uint_t next);
static void ngx_http_code_router_scans_fill_thread(void *data,
    ngx_log_t *log);
static int ngx_http_code_router_scans_filled(void *ctx, const cr_scan_t *v);
static void ngx_http_code_router_scans_fill_done(ngx_event_t *ev);
#endif
static ngx_int_t ngx_http_code_router_scans_task(
    ngx_http_code_router_zone_t *z, ngx_cycle_t *cycle);
static ngx_int_t ngx_http_code_router_scans_open_one(
    ngx_http_code_router_zone_t *z, ngx_log_t *log);
static void ngx_http_code_router_scans_down(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, const char *err);


/* Per-request log lines, each place its own limit. */
static ngx_http_code_router_limit_t  ngx_http_code_router_full_zone;
static ngx_http_code_router_limit_t  ngx_http_code_router_bad_ignore_regex;


ngx_int_t
ngx_http_code_router_scan(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *z, unsigned kid, uint64_t serial,
    ngx_uint_t count, ngx_http_code_router_decision_t *d)
{
    ngx_uint_t                         counted;
    ngx_http_code_router_loc_conf_t   *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (z->sh == NULL) {
        return NGX_DECLINED;
    }

    if (count == CR_SCAN_NONE) {
        count = 0;                      /* a PIN check: not a scan */

    } else {
        /* Why a scan is not counted, for the scan record. */
        if (!count) {
            d->uncounted = "read_only";

        } else if (crlcf->scans_exclude
                   && ngx_http_test_predicates(r, crlcf->scans_exclude)
                      == NGX_DECLINED)
        {
            count = 0;
            d->uncounted = "excluded";

        } else if (ngx_http_code_router_is_bot(r, crlcf)) {
            count = 0;
            d->uncounted = "bot";
        }

        if (!count) {
            (void) ngx_atomic_fetch_add(&z->sh->ignored, 1);
        }
    }

    if (ngx_http_code_router_scans_add(r, z, kid, serial, count, &d->scans,
                                       &counted)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (count && !counted) {
        d->uncounted = "zone_full";
    }

    d->counted = counted ? 1 : 0;
    d->has_scans = 1;

    return NGX_OK;
}


void
ngx_http_code_router_scans_verified(ngx_http_code_router_zone_t *z)
{
    if (z->sh) {
        (void) ngx_atomic_fetch_add(&z->sh->verified, 1);
    }
}


ngx_str_t *
ngx_http_code_router_zone_name(ngx_http_code_router_zone_t *z)
{
    return &z->name;
}


ngx_uint_t
ngx_http_code_router_zone_stored(ngx_http_code_router_zone_t *z)
{
    return z->store.len != 0;
}


void **
ngx_http_code_router_zone_receipts(ngx_http_code_router_zone_t *z)
{
    return &z->receipts;
}


ngx_str_t *
ngx_http_code_router_zone_ledger(ngx_http_code_router_zone_t *z)
{
    return &z->ledger;
}


/*
 * The scans of (kid, serial): bumped if count is set, and read into *v;
 * *counted says whether it was bumped (a full zone does not count).
 * NGX_DECLINED if the store cannot be read: counting from zero would
 * under-count.
 */
static ngx_int_t
ngx_http_code_router_scans_add(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *z, unsigned kid, uint64_t serial,
    ngx_uint_t count, cr_scan_t *v, ngx_uint_t *counted)
{
    int                                rc;
    time_t                             now;
    uint64_t                           key;
    cr_scan_t                          stored;
    const uint8_t                     *fp;
    ngx_http_code_router_scan_node_t  *node;
    ngx_http_code_router_srv_conf_t   *crscf;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    *counted = 0;

    /* The key that verified the code: brands sharing a zone or a store
     * never share the count of a (kid, serial). */
    fp = crscf->ring->keys[kid].fp;
    key = CR_SCAN_KEY(kid, serial);
    now = ngx_time();

    ngx_shmtx_lock(&z->shpool->mutex);

    node = ngx_http_code_router_scans_find(z->sh, key, fp);

    if (node) {
        if (count) {
            ngx_http_code_router_scans_bump(z, node, now);
        }

        ngx_http_code_router_scans_touch(z, node, now);

        v->count = ngx_http_code_router_scans_total(node);
        v->first = node->first;
        *counted = count;

        ngx_shmtx_unlock(&z->shpool->mutex);

        return NGX_OK;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    /* Not in memory: ask the store, outside the lock. */
    ngx_memzero(&stored, sizeof(cr_scan_t));

    if (z->store.len) {
        /* A code the store never held: its first scan, the usual case,
         * needs no search of the store (its filter says so). */
        if (z->sc && ngx_http_code_router_scans_never_stored(z->sh, key, fp))
        {
            rc = CR_SCANS_NOTFOUND;
            (void) ngx_atomic_fetch_add(&z->sh->skipped, 1);

        } else {
            rc = (z->sc == NULL) ? -1 : cr_scans_get(z->sc, fp, kid, serial,
                                                     CR_SCANS_SCANS, &stored);
        }

        if (rc == -1) {
            /* Counting from zero would under-count: do not count. */
            if (count) {
                (void) ngx_atomic_fetch_add(&z->sh->unavailable, 1);
            }

            if (z->sc) {
                ngx_http_code_router_scans_down(z, r->connection->log,
                                                cr_scans_error(z->sc));
            }

            return NGX_DECLINED;
        }

        if (z->outage.failures) {
            ngx_http_code_router_up(r->connection->log, &z->outage,
                                    "scan store", &z->store);
        }
    }

    v->count = stored.count;
    v->first = stored.first;

    if (!count) {
        return NGX_OK;
    }

    /* Another worker may have added it meanwhile. */
    node = ngx_http_code_router_scans_place(z, r->connection->log, key, fp,
                                            now, &stored);
    if (node == NULL) {
        (void) ngx_atomic_fetch_add(&z->sh->full, 1);

        /* Counted every time in uncounted_total; logged within a limit,
         * the zone its subject. */
        if (ngx_http_code_router_log_ok(&ngx_http_code_router_full_zone,
                                        ngx_crc32_short(z->name.data,
                                                        z->name.len)))
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "code router: zone \"%V\" is full of scans not "
                          "yet stored and none could be written in time; "
                          "this scan is not counted", &z->name);
        }

        return NGX_OK;
    }

    ngx_http_code_router_scans_bump(z, node, now);

    v->count = ngx_http_code_router_scans_total(node);
    v->first = node->first;
    *counted = 1;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


/*
 * Under the zone's lock, returned locked: the node of (key, fp), found or
 * made (a new one from the store's record *stored).  NULL, unlocked, if
 * the zone has no room: when every code in it waits for the store, the
 * scan waits for room (ngx_http_code_router_scans_room), up to wait=,
 * each such scan counted in waits_total.
 */
static ngx_http_code_router_scan_node_t *
ngx_http_code_router_scans_place(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, uint64_t key, const uint8_t *fp, time_t now,
    const cr_scan_t *stored)
{
    ngx_uint_t                         tries;
    ngx_msec_t                         start;
    ngx_http_code_router_scan_node_t  *node;

    start = ngx_current_msec;

    for (tries = 0; /* void */; tries++) {
        ngx_shmtx_lock(&z->shpool->mutex);

        node = ngx_http_code_router_scans_find(z->sh, key, fp);

        if (node) {
            ngx_http_code_router_scans_touch(z, node, now);
            break;
        }

        node = ngx_http_code_router_scans_alloc(z);

        if (node) {
            ngx_http_code_router_scans_init_node(z, node, key, fp, now,
                                                 stored);
            break;
        }

        ngx_shmtx_unlock(&z->shpool->mutex);

        if (z->wait == 0) {
            break;
        }

        if (tries == 0) {
            ngx_time_update();
            start = ngx_current_msec;
            (void) ngx_atomic_fetch_add(&z->sh->waits, 1);

        } else {
            ngx_time_update();
        }

        if (ngx_current_msec - start >= z->wait
            || ngx_http_code_router_scans_room(z, log) != NGX_OK)
        {
            /* Not this second again: a scan waits only where it helps. */
            z->room_off = ngx_time();
            break;
        }
    }

    return node;
}


/* A new node of (key, fp) from the store's record, into the tree. */
static void
ngx_http_code_router_scans_init_node(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_scan_node_t *node, uint64_t key, const uint8_t *fp,
    time_t now, const cr_scan_t *stored)
{
    node->key = key;
    ngx_memcpy(node->fp, fp, CR_SCANS_FP_LEN);
    node->node.key = (ngx_rbtree_key_t) key;
    node->count = stored->count;
    node->stored = stored->count;
    node->sent = 0;
    node->others = 0;
    node->first = stored->first;
    node->in_dirty = 0;
    node->in_unsent = 0;

    ngx_rbtree_insert(&z->sh->rbtree, &node->node);
    ngx_queue_insert_head(&z->sh->lru, &node->lru);
    node->touched = (uint32_t) now;

    (void) ngx_atomic_fetch_add(&z->sh->codes, 1);

    if (stored->count) {
        (void) ngx_atomic_fetch_add(&z->sh->loaded, 1);
    }
}


/*
 * Back-pressure.  The zone has no room for a new code: every code in it
 * waits for the store (or the ledger), and making room would lose a
 * count.  So the scan waits, and its worker with it, while some of them
 * are written: a redirect a few milliseconds late is better than a scan
 * never counted (or a 503).  One step: the pool's finished write marked
 * here (its completion event would wait for the worker's next turn), or
 * the next chunk's write started, then a millisecond's sleep, which gives
 * the pool's idle-priority thread the core (on a core the worker
 * saturates, it gets none: that is how the zone filled).  Without a pool,
 * or while the pool's task is not back in the event loop, the chunk is
 * written here.  NGX_DECLINED: no wait helps (no store; a write failed;
 * the ledger is down; this second's waits already ran out).
 */
static ngx_int_t
ngx_http_code_router_scans_room(ngx_http_code_router_zone_t *z,
    ngx_log_t *log)
{
    ngx_int_t                      rc;
    ngx_uint_t                     how;
#if (NGX_THREADS)
    ngx_http_code_router_flush_t  *ctx;
#endif

    /* The ledger down: its codes stay in the zone until it answers. */
    if (z->store.len == 0 || z->sc == NULL || z->room_off == ngx_time()
        || z->sh->ledger_outage.failures)
    {
        return NGX_DECLINED;
    }

    how = CR_FLUSH_MORE;

#if (NGX_THREADS)
    if (z->busy) {
        ctx = z->task->ctx;

        if (!ctx->done) {
            ngx_msleep(1);
            return NGX_OK;
        }

        ngx_memory_barrier();

        ngx_http_code_router_scans_flush_end(z, ctx, log);
        ctx->ended = 1;
        z->busy = 0;

        return NGX_OK;
    }

    if (z->posted) {
        how = CR_FLUSH_ROOM;
    }
#endif

    rc = ngx_http_code_router_scans_flush(z, log, 0, how);

    if (rc == NGX_ERROR) {
        return NGX_DECLINED;
    }

#if (NGX_THREADS)
    if (z->busy) {
        ngx_msleep(1);
    }
#endif

    if (rc == NGX_DECLINED) {
        ngx_msleep(1);                  /* another worker writes */
    }

    return NGX_OK;
}


/* A code's 64 bits for the filter: (kid, serial) and its key's fp. */
static uint64_t
ngx_http_code_router_scans_hash(uint64_t key, const uint8_t *fp)
{
    uint64_t  h;

    ngx_memcpy(&h, fp, sizeof(uint64_t));

    h ^= key * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;

    return h;
}


/* The code's block (the hash's high half) and three of its 512 bits. */
#define cr_filter_block(sh, h)                                               \
    ((sh)->filter + 8 * (((h) >> 32) * (sh)->filter_blocks >> 32))
#define cr_filter_bit(h, i)   (((h) >> (9 * (i))) & 511)


static void
ngx_http_code_router_scans_filter_add(ngx_http_code_router_scans_sh_t *sh,
    uint64_t key, const uint8_t *fp)
{
    uint64_t    h, *b;
    ngx_uint_t  i, bit;

    if (sh->filter == NULL) {
        return;
    }

    h = ngx_http_code_router_scans_hash(key, fp);
    b = cr_filter_block(sh, h);

    for (i = 0; i < 3; i++) {
        bit = cr_filter_bit(h, i);
        (void) __atomic_fetch_or(&b[bit >> 6], (uint64_t) 1 << (bit & 63),
                                 __ATOMIC_RELAXED);
    }
}


/* 1 if the store has certainly never held a record of the code. */
static ngx_uint_t
ngx_http_code_router_scans_never_stored(ngx_http_code_router_scans_sh_t *sh,
    uint64_t key, const uint8_t *fp)
{
    uint64_t    h, *b;
    ngx_uint_t  i, bit;

    if (sh->filter_state != CR_FILTER_READY) {
        return 0;
    }

    h = ngx_http_code_router_scans_hash(key, fp);
    b = cr_filter_block(sh, h);

    for (i = 0; i < 3; i++) {
        bit = cr_filter_bit(h, i);

        if (!(b[bit >> 6] & ((uint64_t) 1 << (bit & 63)))) {
            return 1;
        }
    }

    return 0;
}


/* The tree's order: the tree key, then (kid, serial), then the key's
 * fingerprint.  The same (kid, serial) under two keys are two nodes. */
static void
ngx_http_code_router_scans_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                **p;
    ngx_http_code_router_scan_node_t  *n;

    n = (ngx_http_code_router_scan_node_t *) node;

    for ( ;; ) {
        p = (ngx_http_code_router_scans_cmp(
                 (ngx_http_code_router_scan_node_t *) temp, n->key, n->fp)
             > 0)
            ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* node's place against (key, fp): <0 if before it, 0, >0 if after it. */
static ngx_int_t
ngx_http_code_router_scans_cmp(ngx_http_code_router_scan_node_t *node,
    uint64_t key, const uint8_t *fp)
{
    ngx_rbtree_key_t  k;

    /* On 32-bit platforms the tree key is truncated: it orders first. */
    k = (ngx_rbtree_key_t) key;

    if (node->node.key != k) {
        return node->node.key < k ? -1 : 1;
    }

    if (node->key != key) {
        return node->key < key ? -1 : 1;
    }

    return ngx_memcmp(node->fp, fp, CR_SCANS_FP_LEN);
}


static ngx_http_code_router_scan_node_t *
ngx_http_code_router_scans_find(ngx_http_code_router_scans_sh_t *sh,
    uint64_t key, const uint8_t *fp)
{
    ngx_int_t           c;
    ngx_rbtree_node_t  *node, *sentinel;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {
        c = ngx_http_code_router_scans_cmp(
                (ngx_http_code_router_scan_node_t *) node, key, fp);

        if (c == 0) {
            return (ngx_http_code_router_scan_node_t *) node;
        }

        node = (c > 0) ? node->left : node->right;
    }

    return NULL;
}


/* A node, evicting the least recently scanned stored codes if need be.
 * Called with the zone locked. */
static ngx_http_code_router_scan_node_t *
ngx_http_code_router_scans_alloc(ngx_http_code_router_zone_t *z)
{
    ngx_http_code_router_scan_node_t  *node;

    node = ngx_slab_alloc_locked(z->shpool,
                                 sizeof(ngx_http_code_router_scan_node_t));
    if (node) {
        return node;
    }

    if (ngx_http_code_router_scans_evict(z, CR_EVICT_TRIES) == 0) {
        return NULL;
    }

    return ngx_slab_alloc_locked(z->shpool,
                                 sizeof(ngx_http_code_router_scan_node_t));
}


/* Drops up to two stored codes among the "tries" least recently scanned;
 * returns how many. */
static ngx_uint_t
ngx_http_code_router_scans_evict(ngx_http_code_router_zone_t *z,
    ngx_uint_t tries)
{
    ngx_uint_t                         i, freed;
    ngx_queue_t                       *q, *prev;
    ngx_http_code_router_scan_node_t  *old;

    freed = 0;
    q = ngx_queue_last(&z->sh->lru);

    for (i = 0; i < tries && q != ngx_queue_sentinel(&z->sh->lru); i++) {
        prev = ngx_queue_prev(q);
        old = ngx_queue_data(q, ngx_http_code_router_scan_node_t, lru);

        if (!old->in_dirty && !old->in_unsent) {
            ngx_queue_remove(&old->lru);
            ngx_rbtree_delete(&z->sh->rbtree, &old->node);
            ngx_slab_free_locked(z->shpool, old);

            (void) ngx_atomic_fetch_add(&z->sh->evicted, 1);
            (void) ngx_atomic_fetch_add(&z->sh->codes, -1);

            if (++freed == 2) {
                break;
            }
        }

        q = prev;
    }

    return freed;
}


/*
 * To the head of the LRU queue, at most once a second per code: a move
 * writes three other nodes' cache lines, and a code scanned many times a
 * second needs no finer order to stay out of eviction's way.
 */
static void
ngx_http_code_router_scans_touch(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_scan_node_t *node, time_t now)
{
    if (node->touched == (uint32_t) now) {
        return;
    }

    node->touched = (uint32_t) now;
    ngx_queue_remove(&node->lru);
    ngx_queue_insert_head(&z->sh->lru, &node->lru);
}


static void
ngx_http_code_router_scans_bump(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_scan_node_t *node, time_t now)
{
    if (node->count < NGX_MAX_UINT32_VALUE) {
        node->count++;
    }

    if (node->first == 0) {
        node->first = now;
    }

    /* Without a store nothing waits to be written: any node may go. */
    if (z->store.len && !node->in_dirty) {
        ngx_queue_insert_tail(&z->sh->dirty, &node->dirty);
        node->in_dirty = 1;
    }

    if (z->ledger.len && !node->in_unsent) {
        ngx_http_code_router_scans_queue(z->sh, node);
        node->in_unsent = 1;
        (void) ngx_atomic_fetch_add(&z->sh->ledger_unsent, 1);
    }

    (void) ngx_atomic_fetch_add(&z->sh->counted, 1);
}


/* To the unsent queue's tail. */
static void
ngx_http_code_router_scans_queue(ngx_http_code_router_scans_sh_t *sh,
    ngx_http_code_router_scan_node_t *node)
{
    node->unsent = NULL;
    *sh->unsent_tail = node;
    sh->unsent_tail = &node->unsent;
}


/* A code's count as this node knows it: its own scans and, with ledger=,
 * the other nodes' as of its last flush. */
static uint32_t
ngx_http_code_router_scans_total(ngx_http_code_router_scan_node_t *node)
{
    return (node->others > NGX_MAX_UINT32_VALUE - node->count)
           ? NGX_MAX_UINT32_VALUE : node->count + node->others;
}


/* Link previews, crawlers and prefetches are not scans. */
static ngx_uint_t
ngx_http_code_router_is_bot(ngx_http_request_t *r,
    ngx_http_code_router_loc_conf_t *crlcf)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *ua;

    static ngx_str_t  purpose[] = {
        ngx_string("Purpose"), ngx_string("Sec-Purpose"), ngx_null_string
    };
    static ngx_str_t  prefetch = ngx_string("prefetch");

    ua = r->headers_in.user_agent;

    if (ua && crlcf->scans_ignore == NGX_CONF_UNSET_PTR) {
        if (cr_ua_is_bot_memo(ua->value.data, ua->value.len)) {
            return 1;
        }

    } else if (ua && crlcf->scans_ignore) {
        rc = ngx_regex_exec(crlcf->scans_ignore, &ua->value, NULL, 0);

        if (rc >= 0) {
            return 1;
        }

        /* A regex that cannot run counts the scan (as no match would). */
        if (rc != NGX_REGEX_NO_MATCHED) {
            ngx_http_code_router_regex_failed(r,
                                        &ngx_http_code_router_bad_ignore_regex,
                                        rc, "code_router_scans_ignore");
        }
    }

    /* Purpose (Safari, old Chrome) and Sec-Purpose: prefetch. */
    return ngx_http_code_router_header_holds(r, purpose, &prefetch);
}


cr_scans_t *
ngx_http_code_router_scans_store(ngx_http_code_router_zone_t *z)
{
    return (z->store.len && z->sh) ? z->sc : NULL;
}


/* Each worker opens the scan stores after fork. */
void
ngx_http_code_router_scans_open(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_zone_t      **zp;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_code_router_module);
    zp = crmcf->zones.elts;

    for (i = 0; i < crmcf->zones.nelts; i++) {
        if (zp[i]->store.len) {
            (void) ngx_http_code_router_scans_open_one(zp[i], cycle->log);

            if (ngx_http_code_router_scans_task(zp[i], cycle) != NGX_OK) {
                ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                              "code router: zone \"%V\": no thread pool "
                              "task; writing in the event loop",
                              &zp[i]->name);
            }
        }
    }
}


static ngx_int_t
ngx_http_code_router_scans_open_one(ngx_http_code_router_zone_t *z,
    ngx_log_t *log)
{
    char  err[1024];

    if (cr_scans_open(&z->sc, (char *) z->store.data, z->store_size, 0, err,
                      sizeof(err))
        != 0)
    {
        z->sc = NULL;
        ngx_http_code_router_scans_down(z, log, err);
        return NGX_ERROR;
    }

    cr_scans_limit(z->sc, z->store_max);

    ngx_http_code_router_up(log, &z->outage, "scan store", &z->store);

    return NGX_OK;
}


/*
 * The scan store cannot be opened or read: counting fails open.  A code
 * not in the zone is answered as if never scanned, neither counted nor
 * held to code_router_max_scans (refusing every genuine buyer would be
 * worse); code_router_scans_unavailable_total counts these scans.
 */
static void
ngx_http_code_router_scans_down(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, const char *err)
{
    u_char  then[256];

    *ngx_snprintf(then, sizeof(then) - 1, "scans of codes not in zone "
                  "\"%V\" are neither counted nor held to "
                  "code_router_max_scans until it opens", &z->name) = '\0';

    ngx_http_code_router_down(log, &z->outage, err, (char *) then);
}


/* This worker's task for the zone's thread pool, if it names one. */
static ngx_int_t
ngx_http_code_router_scans_task(ngx_http_code_router_zone_t *z,
    ngx_cycle_t *cycle)
{
#if (NGX_THREADS)
    if (z->thread_pool.len == 0) {
        return NGX_OK;
    }

    z->tp = ngx_thread_pool_get(cycle, &z->thread_pool);
    if (z->tp == NULL) {
        return NGX_ERROR;
    }

    z->task = ngx_http_code_router_scans_new_task(cycle,
                  sizeof(ngx_http_code_router_flush_t),
                  ngx_http_code_router_scans_thread,
                  ngx_http_code_router_scans_written);
    z->fill_task = ngx_http_code_router_scans_new_task(cycle,
                       sizeof(ngx_http_code_router_fill_t),
                       ngx_http_code_router_scans_fill_thread,
                       ngx_http_code_router_scans_fill_done);
    z->busy = 0;
    z->filling = 0;

    if (z->task == NULL || z->fill_task == NULL) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


#if (NGX_THREADS)

/* A task whose context is size bytes: handler in the pool's thread, done
 * back in the event loop. */
static ngx_thread_task_t *
ngx_http_code_router_scans_new_task(ngx_cycle_t *cycle, size_t size,
    void (*handler)(void *data, ngx_log_t *log), ngx_event_handler_pt done)
{
    ngx_thread_task_t  *task;

    task = ngx_thread_task_alloc(cycle->pool, size);
    if (task == NULL) {
        return NULL;
    }

    task->handler = handler;
    task->event.handler = done;
    task->event.data = task;
    task->event.log = cycle->log;

    return task;
}

#endif


/* Every second, in every worker: one of them writes what is new. */
void
ngx_http_code_router_scans_timer(ngx_log_t *log)
{
    ngx_uint_t                         i;
    ngx_http_code_router_zone_t      **zp, *z;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_code_router_module);
    zp = crmcf->zones.elts;

    for (i = 0; i < crmcf->zones.nelts; i++) {
        z = zp[i];

        if (z->store.len == 0 || z->sh == NULL) {
            continue;
        }

        if (z->sc == NULL
            && (!ngx_http_code_router_retry_due(&z->outage)
                || ngx_http_code_router_scans_open_one(z, log) != NGX_OK))
        {
            continue;
        }

        if (ngx_http_code_router_readers_due(&z->outage)) {
            ngx_http_code_router_readers_cleared(log,
                                                 cr_scans_reader_check(z->sc),
                                                 &z->store);
        }

        (void) ngx_http_code_router_scans_flush(z, log, 0, CR_FLUSH_TIMER);

#if (NGX_THREADS)
        ngx_http_code_router_scans_fill(z, log, 0);
#endif
    }
}


/* A worker that exits writes what is left (a graceful stop or reload). */
void
ngx_http_code_router_scans_close(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_zone_t      **zp;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_code_router_module);
    if (crmcf == NULL) {
        return;
    }

    zp = crmcf->zones.elts;

    for (i = 0; i < crmcf->zones.nelts; i++) {
        if (zp[i]->sc) {
            (void) ngx_http_code_router_scans_flush(zp[i], cycle->log, 1,
                                                    CR_FLUSH_TIMER);
            cr_scans_close(zp[i]->sc);
            zp[i]->sc = NULL;
        }

        if (zp[i]->flush_buf) {
            ngx_free(zp[i]->flush_buf);
            ngx_free(zp[i]->flush_nodes);
            ngx_free(zp[i]->flush_counts);
            zp[i]->flush_buf = NULL;
        }

        if (zp[i]->ledger_buf) {
            ngx_free(zp[i]->ledger_buf);
            ngx_free(zp[i]->ledger_nodes);
            zp[i]->ledger_buf = NULL;
        }

        cr_ledger_conn_free(zp[i]->lconn);
        zp[i]->lconn = NULL;
        free(zp[i]->poll_buf);
        zp[i]->poll_buf = NULL;
        zp[i]->poll_cap = 0;
    }

}


/*
 * Copies the codes with unstored scans under the lock, writes them without
 * it (one write transaction: in the zone's thread pool if it has one, so
 * the event loop never waits for the disk), then marks what was written.
 * Scans counted meanwhile stay dirty for the next round.  With a thread
 * pool, at most CR_FLUSH_CHUNK codes are copied and marked at a time, and
 * a full chunk's completion starts the next one at once ("more"): a
 * second's tens of thousands of codes never hold the event loop (or the
 * other workers, waiting for the lock) for more than a chunk's turn.
 * CR_FLUSH_ROOM writes a chunk in the event loop, pool or not (a scan
 * waits for room).  NGX_OK (written, or in the pool), NGX_DECLINED
 * (nothing to write now) or NGX_ERROR (the write failed).
 */
static ngx_int_t
ngx_http_code_router_scans_flush(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, ngx_uint_t force, ngx_uint_t how)
{
    ngx_http_code_router_flush_t   f;

#if (NGX_THREADS)
    ngx_http_code_router_flush_t  *ctx;

    /* A write whose marking a waiting scan did (room) is not back in
     * the event loop yet: its task cannot be posted again before. */
    if (!force && (z->busy || (z->posted && how != CR_FLUSH_ROOM))) {
        return NGX_DECLINED;
    }

    if (z->busy) {

        /* At exit nginx's thread pools have been drained and joined
         * (their module exits first): the write is done, only its
         * completion event never ran. */
        ngx_http_code_router_scans_flush_end(z, z->task->ctx, log);
        z->busy = 0;
    }
#endif

    if (ngx_http_code_router_scans_flush_begin(z, log, force, how, &f)
        == 0)
    {
        return NGX_DECLINED;
    }

#if (NGX_THREADS)
    if (z->tp && !force && how != CR_FLUSH_ROOM) {
        ctx = z->task->ctx;
        *ctx = f;

        if (ngx_thread_task_post(z->tp, z->task) == NGX_OK) {
            z->busy = 1;
            z->posted = 1;
            return NGX_OK;
        }
    }
#endif

    f.rc = f.n ? ngx_http_code_router_scans_write(z, f.n) : 0;

    /* The network never in the event loop but at exit (a worker that
     * no longer serves), and not then in an outage: else the codes wait
     * for the next flush.  No poll (f.poll is set only for a thread). */
    if (f.ln && force && z->sh->ledger_outage.failures == 0) {
        f.lrc = ngx_http_code_router_scans_send(z, f.ln);
    }

    ngx_http_code_router_scans_flush_end(z, &f, log);

    return (f.rc == -1) ? NGX_ERROR : NGX_OK;
}


/* Under the zone's lock: the dirty codes into the buffer; 0 if none, or
 * if it is not time, or if another worker is writing. */
static ngx_uint_t
ngx_http_code_router_scans_flush_begin(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, ngx_uint_t force, ngx_uint_t how,
    ngx_http_code_router_flush_t *f)
{
    time_t                             now;
    ngx_uint_t                         n, max, tries;
    cr_scan_t                         *buf;
    ngx_queue_t                       *q;
    ngx_http_code_router_scans_sh_t   *sh;
    ngx_http_code_router_scan_node_t  *node;

    /* The zone's own buffers: another zone's flush may run while this
     * one's write is in the thread pool. */
    if (z->flush_buf == NULL) {
        z->flush_nodes = ngx_alloc(CR_FLUSH_MAX * sizeof(void *), log);
        z->flush_counts = ngx_alloc(CR_FLUSH_MAX * sizeof(uint32_t), log);
        z->flush_buf = ngx_alloc(CR_FLUSH_MAX * sizeof(cr_scan_t), log);

        if (z->flush_buf == NULL || z->flush_nodes == NULL
            || z->flush_counts == NULL)
        {
            ngx_free(z->flush_buf);
            ngx_free(z->flush_nodes);
            ngx_free(z->flush_counts);
            z->flush_buf = NULL;
            return 0;
        }
    }

    buf = z->flush_buf;
    sh = z->sh;

    ngx_memzero(f, sizeof(ngx_http_code_router_flush_t));
    f->zone = z;
    f->rc = -1;
    f->lrc = 1;
    f->prc = 1;

    if (z->ledger.len && z->ledger_buf == NULL) {
        z->ledger_buf = ngx_alloc(CR_LEDGER_SCANS_MAX
                                  * sizeof(cr_ledger_scan_t), log);
        z->ledger_nodes = ngx_alloc(CR_LEDGER_SCANS_MAX * sizeof(void *),
                                    log);

        if (z->ledger_buf == NULL || z->ledger_nodes == NULL) {
            ngx_free(z->ledger_buf);
            ngx_free(z->ledger_nodes);
            z->ledger_buf = NULL;
            return 0;
        }
    }

    for (tries = 0; /* void */; tries++) {
        now = ngx_time();

        ngx_shmtx_lock(&z->shpool->mutex);

        if (sh->flushing && now - sh->flushing < CR_FLUSH_STALE_S) {
            ngx_shmtx_unlock(&z->shpool->mutex);

            /* At exit, wait a little for the other writer to finish. */
            if (force && tries < 100) {
                ngx_msleep(10);
                continue;
            }

            return 0;
        }

        break;
    }

    if (!force && how == CR_FLUSH_TIMER
        && now - sh->last_flush < z->flush)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return 0;
    }

    /* The other nodes' counts of the codes in the zone, at each regular
     * flush, in a thread; from where the last poll began, overlapped. */
#if (NGX_THREADS)
    if (z->ledger.len && z->tp && !force && how == CR_FLUSH_TIMER
        && sh->codes
        && ngx_http_code_router_retry_due(&z->sh->ledger_outage))
    {
        f->poll = 1;
        f->start_us = cr_ledger_now_us();
        f->since_us = (sh->polled_us ? sh->polled_us : f->start_us)
                      - CR_LEDGER_OVERLAP_US;
    }
#endif

#if (NGX_THREADS)
    max = (z->tp && !force) ? CR_FLUSH_CHUNK : CR_FLUSH_MAX;
#else
    max = CR_FLUSH_MAX;
#endif

    n = 0;

    for (q = ngx_queue_head(&sh->dirty);
         q != ngx_queue_sentinel(&sh->dirty) && n < max;
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_code_router_scan_node_t, dirty);

        ngx_memcpy(buf[n].fp, node->fp, CR_SCANS_FP_LEN);
        buf[n].kid = (uint8_t) (node->key >> 40);
        buf[n].kind = CR_SCANS_SCANS;
        buf[n].serial = node->key & 0xffffffffffULL;
        buf[n].count = node->count;
        buf[n].first = node->first;
        z->flush_nodes[n] = node;
        z->flush_counts[n] = node->count;
        n++;

        /* Before it is written: the filter never says "never" of a code
         * the store holds. */
        ngx_http_code_router_scans_filter_add(sh, node->key, node->fp);
    }

    f->n = n;
    f->ln = ngx_http_code_router_scans_unsent(z, log);

    if (n == 0 && f->ln == 0 && !f->poll) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return 0;
    }

    sh->flushing = now;
    sh->last_flush = now;
    z->flush_stamp = now;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return n + f->ln + f->poll;
}


/*
 * Under the zone's lock: the codes the ledger lacks the latest count of
 * into its buffer, unless an outage waits for its next try (a second
 * after the last failure).
 */
static ngx_uint_t
ngx_http_code_router_scans_unsent(ngx_http_code_router_zone_t *z,
    ngx_log_t *log)
{
    ngx_uint_t                         n;
    cr_ledger_scan_t                  *b;
    ngx_http_code_router_scan_node_t  *node;

    if (z->ledger.len == 0) {
        /* A reload took ledger= away: the queue would hold its codes in
         * the zone for ever. */
        while (z->sh->unsent_head) {
            node = z->sh->unsent_head;
            z->sh->unsent_head = node->unsent;
            node->in_unsent = 0;
        }

        z->sh->unsent_tail = &z->sh->unsent_head;
        z->sh->ledger_unsent = 0;

        return 0;
    }

    if (!ngx_http_code_router_retry_due(&z->sh->ledger_outage)) {
        return 0;
    }

    n = 0;

    for (node = z->sh->unsent_head;
         node && n < CR_LEDGER_SCANS_MAX;
         node = node->unsent)
    {
        b = &z->ledger_buf[n];

        ngx_memcpy(b->code.fp, node->fp, CR_SCANS_FP_LEN);
        b->code.kid = (unsigned) (node->key >> 40);
        b->code.serial = node->key & 0xffffffffffULL;
        b->count = node->count;
        z->ledger_nodes[n] = node;
        n++;
    }

    return n;
}


/*
 * The write itself: no nginx state but the zone's buffer, so a thread may
 * run it.  Sorted, the records share their B-tree pages.  Scans only:
 * right PINs are committed by the ledger's own transactions
 * (cr_scans_verify_n), which the scans' share never refuses.
 */
static int
ngx_http_code_router_scans_write(ngx_http_code_router_zone_t *z,
    ngx_uint_t n)
{
    ngx_qsort(z->flush_buf, n, sizeof(cr_scan_t), cr_scans_cmp);

    return cr_scans_put(z->sc, z->flush_buf, n);
}


/*
 * The ledger's statement, like the write: the zone's buffer and this
 * worker's connection only (one flush of the zone at a time uses it).
 * Its error into the zone's, for the event loop to log.
 */
static int
ngx_http_code_router_scans_send(ngx_http_code_router_zone_t *z,
    ngx_uint_t ln)
{
    int  rc;

    if (z->lconn == NULL) {
        z->lconn = cr_ledger_conn_new((char *) z->ledger.data,
                                      CR_LEDGER_FLUSH_MS);
        if (z->lconn == NULL) {
            ngx_cpystrn((u_char *) z->ledger_err, (u_char *) "out of memory",
                        sizeof(z->ledger_err));
            return -1;
        }
    }

    if (ln == 0) {
        return 0;
    }

    rc = cr_ledger_scans(z->lconn, (char *) z->node_name.data, z->ledger_buf,
                         ln, cr_ledger_now_us() + CR_LEDGER_FLUSH_MS * 1000);
    if (rc != 0) {
        ngx_cpystrn((u_char *) z->ledger_err,
                    (u_char *) cr_ledger_error(z->lconn),
                    sizeof(z->ledger_err));
    }

    return rc;
}


/* In the thread too: the codes the other nodes counted since the last
 * poll, into the zone's poll buffer (grown as need be). */
static int
ngx_http_code_router_scans_poll(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_flush_t *f)
{
    int  rc;

    z->poll_n = 0;

    rc = ngx_http_code_router_scans_send(z, 0);
    if (rc != 0) {
        return rc;
    }

    rc = cr_ledger_scans_since(z->lconn, (char *) z->node_name.data,
                               f->since_us,
                               cr_ledger_now_us() + CR_LEDGER_FLUSH_MS * 1000,
                               ngx_http_code_router_scans_polled, z);
    if (rc != 0) {
        ngx_cpystrn((u_char *) z->ledger_err,
                    (u_char *) (rc == 1 ? "out of memory"
                                        : cr_ledger_error(z->lconn)),
                    sizeof(z->ledger_err));
        return -1;
    }

    return 0;
}


static int
ngx_http_code_router_scans_polled(void *ctx, const cr_ledger_others_t *one)
{
    ngx_http_code_router_zone_t *z = ctx;

    size_t               cap;
    cr_ledger_others_t  *b;

    if (z->poll_n == z->poll_cap) {
        cap = z->poll_cap ? 2 * z->poll_cap : 1024;
        b = realloc(z->poll_buf, cap * sizeof(cr_ledger_others_t));
        if (b == NULL) {
            return 1;
        }

        z->poll_buf = b;
        z->poll_cap = cap;
    }

    z->poll_buf[z->poll_n++] = *one;

    return 0;
}


/* Under the zone's lock: the other nodes' counts of the codes in the
 * zone (never lowered: each node's count in the ledger only grows). */
static void
ngx_http_code_router_scans_learn(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_flush_t *f)
{
    size_t                             i;
    cr_ledger_others_t                *o;
    ngx_http_code_router_scan_node_t  *node;

    if (f->prc != 0) {
        return;
    }

    for (i = 0; i < z->poll_n; i++) {
        o = &z->poll_buf[i];
        node = ngx_http_code_router_scans_find(z->sh,
                   CR_SCAN_KEY(o->code.kid, o->code.serial), o->code.fp);

        if (node && node->others < o->others) {
            node->others = o->others;
        }
    }

    if (z->sh->polled_us < f->start_us) {
        z->sh->polled_us = f->start_us;
    }
}


/*
 * Under the zone's lock: marks what the store now holds.  Scans of new
 * codes the store refused (past their share, or the map at its limit)
 * are no longer held for it: counted in code_router_scans_unstored_total,
 * they may make room like stored codes (their counts are lost then), so
 * that they never fill the zone.
 */
static void
ngx_http_code_router_scans_flush_end(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_flush_t *f, ngx_log_t *log)
{
    int                                rc, rck;
    uint32_t                           count;
    ngx_uint_t                         i, n, mine, dropped, done;
    cr_scan_t                         *buf;
    ngx_http_code_router_scans_sh_t   *sh;
    ngx_http_code_router_scan_node_t  *node;

    buf = z->flush_buf;
    sh = z->sh;
    dropped = 0;
    n = f->n;
    rc = f->rc;

    ngx_shmtx_lock(&z->shpool->mutex);

    /* Another worker took over a flush it thought dead (after
     * CR_FLUSH_STALE_S): trust only what the tree says. */
    mine = (sh->flushing == z->flush_stamp);

    if (mine) {
        sh->flushing = 0;
    }

    for (i = 0; i < n; i++) {
        if (mine) {
            node = z->flush_nodes[i];
            count = z->flush_counts[i];

        } else {
            node = ngx_http_code_router_scans_find(sh,
                       CR_SCAN_KEY(buf[i].kid, buf[i].serial),
                       buf[i].fp);
            count = buf[i].count;
        }

        if (node == NULL || !node->in_dirty) {
            continue;
        }

        rck = rc;

        /* Refused: the codes the store held were written all the same. */
        if (rck == CR_SCANS_REFUSED && node->stored > 0) {
            rck = 0;
        }

        if (rck != 0) {
            if (rck != CR_SCANS_REFUSED && rck != CR_SCANS_FULL) {
                continue;                   /* retried */
            }

            dropped++;

        } else if (node->stored < count) {
            node->stored = count;
        }

        ngx_queue_remove(&node->dirty);

        if (rck != 0 || node->stored >= node->count) {
            node->in_dirty = 0;

        } else {
            /* Scanned again meanwhile: behind the codes not yet taken,
             * so that the next chunk goes on with those. */
            ngx_queue_insert_tail(&sh->dirty, &node->dirty);
        }
    }

    done = (f->lrc == 0) ? ngx_http_code_router_scans_sent(z, f->ln, mine)
                         : 0;

    ngx_http_code_router_scans_learn(z, f);

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_code_router_scans_ledger_said(z, f, done, log);

    if (n == 0) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->unstored, dropped);

    ngx_http_code_router_scans_usage(z, rc, log);

    if (rc == 0 || dropped) {
        (void) ngx_atomic_fetch_add(&sh->flushes, 1);
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "code router: stored %ui codes of zone \"%V\"",
                       n, &z->name);
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->flush_errors, 1);
    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "code router: zone \"%V\": %s; the scans stay in memory "
                  "and are retried", &z->name, cr_scans_error(z->sc));
}


/*
 * Under the zone's lock: what the ledger now holds of the codes sent,
 * each code's count there for this node and the other nodes' sum.  A
 * count of this node the ledger holds above the zone's is scans this
 * node counted and then lost (a crash before its store had them): the
 * zone takes it back.  A code scanned meanwhile stays queued.  Returns
 * how many codes left the queue.
 */
static ngx_uint_t
ngx_http_code_router_scans_sent(ngx_http_code_router_zone_t *z,
    ngx_uint_t ln, ngx_uint_t mine)
{
    ngx_uint_t                         i, done;
    cr_ledger_scan_t                  *b;
    ngx_http_code_router_scans_sh_t   *sh;
    ngx_http_code_router_scan_node_t  *node;

    sh = z->sh;
    done = 0;

    /* After a takeover the queue's head is the other flusher's: its
     * codes are sent again (by maximum: no harm). */
    if (!mine) {
        return 0;
    }

    for (i = 0; i < ln; i++) {
        b = &z->ledger_buf[i];

        /* The batch is the queue's head (queued codes are never
         * evicted, and only this flusher takes any off). */
        node = sh->unsent_head;

        if (node != z->ledger_nodes[i]) {
            break;
        }

        sh->unsent_head = node->unsent;

        if (sh->unsent_head == NULL) {
            sh->unsent_tail = &sh->unsent_head;
        }

        if (b->node > node->count) {
            node->count = b->node;

            if (z->store.len && !node->in_dirty) {
                ngx_queue_insert_tail(&sh->dirty, &node->dirty);
                node->in_dirty = 1;
            }
        }

        if (node->sent < b->node) {
            node->sent = b->node;
        }

        node->others = b->total - b->node;

        if (node->sent >= node->count) {
            node->in_unsent = 0;
            done++;

        } else {
            ngx_http_code_router_scans_queue(sh, node);
        }
    }

    return done;
}


/* The ledger's answer to a flush, in the metrics and the log: a failure
 * is logged once per outage and the ledger tried again a second later;
 * lrc 1: nothing was sent. */
static void
ngx_http_code_router_scans_ledger_said(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_flush_t *f, ngx_uint_t done, ngx_log_t *log)
{
    ngx_http_code_router_scans_sh_t  *sh;

    sh = z->sh;

    if ((f->ln == 0 || f->lrc == 1) && f->prc == 1) {
        return;
    }

    if ((f->ln && f->lrc != 0 && f->lrc != 1)
        || (f->prc != 0 && f->prc != 1))
    {
        (void) ngx_atomic_fetch_add(&sh->ledger_errors, 1);
        ngx_http_code_router_down(log, &z->sh->ledger_outage, z->ledger_err,
                                  "scans are counted on this node and sent "
                                  "when the ledger answers");
        return;
    }

    (void) ngx_atomic_fetch_add(&sh->ledger_unsent,
                                -(ngx_atomic_int_t) done);

    if (f->lrc == 0) {
        (void) ngx_atomic_fetch_add(&sh->ledger_flushes, 1);
    }

    ngx_http_code_router_up(log, &z->sh->ledger_outage, "ledger of zone",
                            &z->name);
}


/*
 * The store's size into the zone's gauges, and its warnings: once when
 * its data passes the alert share of store_max= (before scans reach
 * theirs), once when it starts and stops refusing scans.
 */
static void
ngx_http_code_router_scans_usage(ngx_http_code_router_zone_t *z,
    int rc, ngx_log_t *log)
{
    ngx_uint_t                        refusing;
    cr_scans_usage_t                  u;
    ngx_http_code_router_scans_sh_t  *sh;

    sh = z->sh;

    if (cr_scans_usage(z->sc, &u) != 0) {
        return;
    }

    sh->store_used = (ngx_atomic_t) u.used;
    sh->store_map = (ngx_atomic_t) u.map;
    sh->store_limit = (ngx_atomic_t) u.limit;

    if (u.alert && ngx_atomic_cmp_set(&sh->store_alert, 0, 1)) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "code router: scan store \"%V\" of zone \"%V\" "
                      "holds %uL bytes of its store_max=%uL: at %uL new "
                      "codes' scans stop being stored (right PINs still "
                      "are); raise store_max=", &z->store, &z->name,
                      u.used, u.limit,
                      u.limit / 8 * CR_SCANS_SCANS_SHARE);

    } else if (!u.alert && ngx_atomic_cmp_set(&sh->store_alert, 1, 0)) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "code router: scan store \"%V\" of zone \"%V\" is "
                      "below its alert share again", &z->store, &z->name);
    }

    if (rc == -1) {
        return;                         /* an error (logged) */
    }

    refusing = (rc == CR_SCANS_REFUSED || rc == CR_SCANS_FULL);

    if (refusing && ngx_atomic_cmp_set(&sh->store_refusing, 0, 1)) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "code router: zone \"%V\": %s; counted in "
                      "code_router_scans_unstored_total", &z->name,
                      cr_scans_error(z->sc));

    } else if (!refusing && ngx_atomic_cmp_set(&sh->store_refusing, 1, 0)) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "code router: zone \"%V\": its scan store takes new "
                      "codes' scans again", &z->name);
    }
}


#if (NGX_THREADS)

/*
 * In a thread of the pool, at idle priority: on a core it shares with a
 * worker (worker_cpu_affinity pins the pool's threads with it) the write
 * runs when the worker waits, and a worker woken by a request takes the
 * core back at once instead of waiting for the write's time slice.  An
 * unprivileged thread cannot leave SCHED_IDLE again: give
 * code_router_scans a pool of its own (conf/nginx.conf does).
 */
static void
ngx_http_code_router_scans_thread(void *data, ngx_log_t *log)
{
    ngx_http_code_router_flush_t  *ctx = data;

#if (NGX_LINUX) && defined(SCHED_IDLE)
    struct sched_param  sp;

    ngx_memzero(&sp, sizeof(struct sched_param));
    (void) pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
#endif

    ctx->rc = ctx->n ? ngx_http_code_router_scans_write(ctx->zone, ctx->n)
                     : 0;

    if (ctx->ln) {
        ctx->lrc = ngx_http_code_router_scans_send(ctx->zone, ctx->ln);
    }

    if (ctx->poll && ctx->lrc != -1 && ctx->lrc != CR_LEDGER_TIMEOUT) {
        ctx->prc = ngx_http_code_router_scans_poll(ctx->zone, ctx);
    }

    /* For a scan waiting for room (ngx_http_code_router_scans_room). */
    ngx_memory_barrier();
    ctx->done = 1;
}


/* Back in the worker's event loop. */
static void
ngx_http_code_router_scans_written(ngx_event_t *ev)
{
    ngx_thread_task_t             *task;
    ngx_http_code_router_flush_t  *ctx;

    task = ev->data;
    ctx = task->ctx;

    /* Unless a scan waiting for room marked it already. */
    if (!ctx->ended) {
        ngx_http_code_router_scans_flush_end(ctx->zone, ctx, ev->log);
    }

    ctx->zone->busy = 0;
    ctx->zone->posted = 0;

    /* A full chunk: there may be more of this second's codes. */
    if (((ctx->rc != -1 && ctx->n == CR_FLUSH_CHUNK)
         || (ctx->lrc == 0 && ctx->ln == CR_LEDGER_SCANS_MAX))
        && !ngx_exiting
        && !ngx_terminate && !ngx_quit)
    {
        (void) ngx_http_code_router_scans_flush(ctx->zone, ev->log, 0,
                                                CR_FLUSH_MORE);
    }
}



/*
 * The filter's fill, from the timer: the next slice of the store's
 * records, unless another worker fills it (a filler gone quiet for
 * CR_FLUSH_STALE_S, say an old worker at a reload, is taken over where
 * it stopped); "next": this worker's next slice.  Only with a thread
 * pool: without one the filter stays unused, every first scan searching
 * the store as before.
 */
static void
ngx_http_code_router_scans_fill(ngx_http_code_router_zone_t *z,
    ngx_log_t *log, ngx_uint_t next)
{
    time_t                            now;
    ngx_http_code_router_fill_t      *ctx;
    ngx_http_code_router_scans_sh_t  *sh;

    sh = z->sh;

    if (z->tp == NULL || z->filling || sh->filter == NULL
        || sh->filter_state == CR_FILTER_READY)
    {
        return;
    }

    now = ngx_time();
    ctx = z->fill_task->ctx;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (sh->filter_state == CR_FILTER_READY
        || (sh->filter_state == CR_FILTER_FILLING && !next
            && now - sh->filter_since < CR_FLUSH_STALE_S))
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    sh->filter_state = CR_FILTER_FILLING;
    sh->filter_since = now;

    ctx->zone = z;
    ctx->from = sh->filter_next;
    ctx->resume = sh->filter_resume;

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (ngx_thread_task_post(z->tp, z->fill_task) == NGX_OK) {
        z->filling = 1;
        return;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0, "code router: zone \"%V\": no "
                  "thread pool task for its filter; retried", &z->name);
}


/* In the pool's thread: a slice of the store's records into the filter. */
static void
ngx_http_code_router_scans_fill_thread(void *data, ngx_log_t *log)
{
    ngx_http_code_router_fill_t  *ctx = data;

    ctx->rc = cr_scans_each_from(ctx->zone->sc,
                                 ctx->resume ? &ctx->from : NULL,
                                 CR_FILL_SLICE,
                                 ngx_http_code_router_scans_filled,
                                 ctx->zone->sh, &ctx->last, &ctx->n);
}


static int
ngx_http_code_router_scans_filled(void *ctx, const cr_scan_t *v)
{
    if (v->kind == CR_SCANS_SCANS) {
        ngx_http_code_router_scans_filter_add(ctx,
                                              CR_SCAN_KEY(v->kid, v->serial),
                                              v->fp);
    }

    return 0;
}


/* Back in the event loop: the next slice at once, or the filter ready. */
static void
ngx_http_code_router_scans_fill_done(ngx_event_t *ev)
{
    ngx_thread_task_t                *task;
    ngx_http_code_router_zone_t      *z;
    ngx_http_code_router_fill_t      *ctx;
    ngx_http_code_router_scans_sh_t  *sh;

    task = ev->data;
    ctx = task->ctx;
    z = ctx->zone;
    sh = z->sh;

    z->filling = 0;

    if (ctx->rc != 0) {
        /* The next timer tries the slice again (after the stale time). */
        ngx_log_error(NGX_LOG_ERR, ev->log, 0, "code router: zone \"%V\": "
                      "filling its filter: %s", &z->name,
                      cr_scans_error(z->sc));
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    if (ctx->n) {
        sh->filter_next = ctx->last;
        sh->filter_resume = 1;
    }

    if (ctx->n < CR_FILL_SLICE) {
        sh->filter_state = CR_FILTER_READY;
        sh->filter_ready = 1;
    }

    sh->filter_since = ngx_time();

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (sh->filter_state == CR_FILTER_READY) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0, "code router: zone "
                      "\"%V\": the filter of its scan store's codes is "
                      "filled: a code's first scan no longer searches the "
                      "store", &z->name);
        return;
    }

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_http_code_router_scans_fill(z, ev->log, 1);
    }
}
#endif


/*
 * For code_router_status: each metric with its HELP and TYPE, then one
 * sample per zone.  The text format wants a metric's samples together, so
 * the loop runs metric by metric, not zone by zone.
 */
typedef struct {
    const char  *name;
    const char  *help;
    const char  *type;
    size_t       offset;
} ngx_http_code_router_scans_metric_t;


#define cr_scans_metric(name, field, type, help)                             \
    { "code_router_scans_" name, help, type,                                 \
      offsetof(ngx_http_code_router_scans_sh_t, field) }

static const ngx_http_code_router_scans_metric_t
    ngx_http_code_router_scans_metrics[] =
{
    cr_scans_metric("total", counted, "counter",
                    "Scans of genuine codes counted."),
    cr_scans_metric("verified_total", verified, "counter",
                    "Right PINs counted in the zone's scan store by the "
                    "embedded ledger (code_router_verify)."),
    cr_scans_metric("ignored_total", ignored, "counter",
                    "Requests not counted as scans (HEAD, bots, previews, "
                    "API reads)."),
    cr_scans_metric("uncounted_total", full, "counter",
                    "Scans not counted: the zone was full of unstored "
                    "scans and none could be written in time."),
    cr_scans_metric("waits_total", waits, "counter",
                    "Scans that waited for room in a zone full of unstored "
                    "scans while some were written (back-pressure)."),
    cr_scans_metric("codes", codes, "gauge", "Codes in the zone."),
    cr_scans_metric("evicted_total", evicted, "counter",
                    "Codes dropped from the zone (already stored)."),
    cr_scans_metric("loaded_total", loaded, "counter",
                    "Codes read back from the scan store."),
    cr_scans_metric("flushes_total", flushes, "counter",
                    "Writes to the scan store."),
    cr_scans_metric("flush_errors_total", flush_errors, "counter",
                    "Failed writes to the scan store."),
    cr_scans_metric("unavailable_total", unavailable, "counter",
                    "Scans not counted nor held to the limits: the scan "
                    "store could not be read."),
    cr_scans_metric("store_skipped_total", skipped, "counter",
                    "First scans of codes the scan store was not searched "
                    "for: its filter says it never held them."),
    cr_scans_metric("filter_ready", filter_ready, "gauge",
                    "1 once the filter of the scan store's codes is filled "
                    "(after a start, from the store)."),
    cr_scans_metric("unstored_total", unstored, "counter",
                    "Codes whose scans the scan store refused (past the "
                    "scans' share of store_max=, or the map at it)."),
    cr_scans_metric("store_bytes", store_used, "gauge",
                    "Bytes of counts in the scan store."),
    cr_scans_metric("store_map_bytes", store_map, "gauge",
                    "The scan store's map, grown up to store_max=."),
    cr_scans_metric("store_limit_bytes", store_limit, "gauge",
                    "The scan store's store_max=."),
    cr_scans_metric("store_alert", store_alert, "gauge",
                    "1 when the scan store is past 5/8 of store_max= "
                    "(scans stop being stored at 6/8)."),
    cr_scans_metric("ledger_flushes_total", ledger_flushes, "counter",
                    "Batches of scan counts the ledger took (ledger=)."),
    cr_scans_metric("ledger_errors_total", ledger_errors, "counter",
                    "Batches of scan counts the ledger did not take "
                    "(down, timeout, no schema): sent again later."),
    cr_scans_metric("ledger_unsent", ledger_unsent, "gauge",
                    "Codes whose latest count the ledger does not have yet.")
};

#define CR_SCANS_METRICS                                                     \
    (sizeof(ngx_http_code_router_scans_metrics)                              \
     / sizeof(ngx_http_code_router_scans_metric_t))


/* The exact length of what ngx_http_code_router_scans_status() writes. */
size_t
ngx_http_code_router_scans_status_len(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *only)
{
    size_t                                      len, names;
    ngx_uint_t                                  i;
    ngx_http_code_router_zone_t               **zp;
    ngx_http_code_router_main_conf_t           *crmcf;
    const ngx_http_code_router_scans_metric_t  *m;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    zp = crmcf->zones.elts;

    names = 0;
    for (i = 0; i < crmcf->zones.nelts; i++) {
        names += zp[i]->name.len;
    }

    len = 0;
    for (i = 0; i < CR_SCANS_METRICS; i++) {
        m = &ngx_http_code_router_scans_metrics[i];
        len += sizeof("# HELP  \n# TYPE  \n") - 1
               + 2 * ngx_strlen(m->name) + ngx_strlen(m->help)
               + ngx_strlen(m->type)
               + crmcf->zones.nelts * (ngx_strlen(m->name)
                                      + sizeof("{zone=\"\"} \n") - 1
                                      + NGX_ATOMIC_T_LEN)
               + names;
    }

    return len;
}


u_char *
ngx_http_code_router_scans_status(ngx_http_request_t *r, u_char *p,
    u_char *last, ngx_http_code_router_zone_t *only)
{
    ngx_uint_t                                  i, z;
    ngx_atomic_t                               *v;
    ngx_http_code_router_zone_t               **zp;
    ngx_http_code_router_main_conf_t           *crmcf;
    const ngx_http_code_router_scans_metric_t  *m;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    zp = crmcf->zones.elts;

    if (crmcf->zones.nelts == 0 || only == NGX_CONF_UNSET_PTR) {
        return p;
    }

    for (i = 0; i < CR_SCANS_METRICS; i++) {
        m = &ngx_http_code_router_scans_metrics[i];

        p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                         m->name, m->help, m->name, m->type);

        for (z = 0; z < crmcf->zones.nelts; z++) {
            if (zp[z]->sh == NULL || (only && zp[z] != only)) {
                continue;
            }

            v = (ngx_atomic_t *) ((u_char *) zp[z]->sh + m->offset);
            p = ngx_slprintf(p, last, "%s{zone=\"%V\"} %uA\n",
                             m->name, &zp[z]->name, *v);
        }
    }

    return p;
}


/*
 * code_router_scans zone=NAME:SIZE [store=PATH] [flush=TIME]
 *                   [store_size=SIZE] [store_max=SIZE] [thread_pool=NAME]
 *                   [ledger=CONNINFO [node=NAME]]
 *                   | zone=NAME | off
 */
char *
ngx_http_code_router_scans_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    char                               *rv;
    ngx_str_t                          *value;
    ngx_uint_t                          i;
    ngx_http_code_router_zone_t        *z, **zp;
    ngx_http_code_router_main_conf_t   *crmcf;
    ngx_http_code_router_scans_args_t   a;

    if (crlcf->scans != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        crlcf->scans = NULL;
        return NGX_CONF_OK;
    }

    rv = ngx_http_code_router_scans_args(cf, &a);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    crmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_code_router_module);
    zp = crmcf->zones.elts;
    z = NULL;

    for (i = 0; i < crmcf->zones.nelts; i++) {
        if (zp[i]->name.len == a.name.len
            && ngx_strncmp(zp[i]->name.data, a.name.data, a.name.len) == 0)
        {
            z = zp[i];
            break;
        }
    }

    if (a.size == 0) {
        /* A reference to a zone defined earlier. */
        if (z == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown zone \"%V\": define it first, with "
                               "\"zone=%V:SIZE\"", &a.name, &a.name);
            return NGX_CONF_ERROR;
        }

        if (a.store.len || a.flush != NGX_CONF_UNSET || a.store_size
            || a.store_max || a.pool.len || a.ledger.len || a.node.len
            || a.wait != NGX_CONF_UNSET)
        {
            return "sets store=, flush=, wait=, store_size=, store_max=, "
                   "thread_pool=, ledger= and node= only where the zone is "
                   "defined (with its size)";
        }

        crlcf->scans = z;
        return NGX_CONF_OK;
    }

    if (z) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already defined", &a.name);
        return NGX_CONF_ERROR;
    }

    return ngx_http_code_router_scans_define(cf, &a, &crlcf->scans);
}


/* The parameters into *a, each checked; "zone=" is required. */
static char *
ngx_http_code_router_scans_args(ngx_conf_t *cf,
    ngx_http_code_router_scans_args_t *a)
{
    u_char     *p;
    off_t       n;
    ngx_str_t  *value, s;
    ngx_uint_t  i;

    value = cf->args->elts;
    ngx_memzero(a, sizeof(ngx_http_code_router_scans_args_t));
    a->flush = NGX_CONF_UNSET;
    a->wait = NGX_CONF_UNSET;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            a->name.data = value[i].data + 5;
            p = (u_char *) ngx_strchr(a->name.data, ':');

            if (p) {
                a->name.len = p - a->name.data;
                s.data = p + 1;
                s.len = value[i].data + value[i].len - s.data;

                a->size = ngx_parse_size(&s);
                if (a->size == NGX_ERROR
                    || a->size < (ssize_t) (8 * ngx_pagesize))
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "zone \"%V\" is too small: it needs "
                                       "at least %uz bytes", &value[i],
                                       8 * ngx_pagesize);
                    return NGX_CONF_ERROR;
                }

            } else {
                a->name.len = value[i].len - 5;
            }

            if (a->name.len == 0) {
                return "needs a zone name: \"zone=NAME:SIZE\"";
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "store=", 6) == 0) {
            a->store.data = value[i].data + 6;
            a->store.len = value[i].len - 6;

            if (a->store.len == 0
                || ngx_conf_full_name(cf->cycle, &a->store, 1) != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            a->flush = ngx_parse_time(&s, 1);
            if (a->flush == NGX_ERROR || a->flush < 1 || a->flush > 60) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": from 1s to 60s",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "wait=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            a->wait = ngx_parse_time(&s, 0);
            if (a->wait == NGX_ERROR || a->wait > CR_WAIT_MAX_MS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": from 0 to %ds",
                                   &value[i], CR_WAIT_MAX_MS / 1000);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0) {
#if (NGX_THREADS)
            a->pool.data = value[i].data + 12;
            a->pool.len = value[i].len - 12;

            if (a->pool.len == 0) {
                return "needs a name: \"thread_pool=NAME\"";
            }

            /* Declared with "thread_pool NAME threads=1;": nginx checks it
             * exists ("unknown thread pool"). */
            if (ngx_thread_pool_add(cf, &a->pool) == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
#else
            return "\"thread_pool=\" needs nginx built --with-threads";
#endif
        }

        if (ngx_strncmp(value[i].data, "ledger=", 7) == 0) {
            a->ledger.data = value[i].data + 7;
            a->ledger.len = value[i].len - 7;

            if (a->ledger.len == 0) {
                return "needs a PostgreSQL connection string: "
                       "\"ledger=postgresql://HOST/DB\"";
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "node=", 5) == 0) {
            a->node.data = value[i].data + 5;
            a->node.len = value[i].len - 5;

            if (!cr_ledger_node_valid((char *) a->node.data, a->node.len)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": 1 to %d of "
                                   "[0-9A-Za-z._-]", &value[i],
                                   CR_LEDGER_NODE_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        /* ngx_parse_offset: k, m and g (ngx_parse_size knows no g). */
        if (ngx_strncmp(value[i].data, "store_size=", 11) == 0
            || ngx_strncmp(value[i].data, "store_max=", 10) == 0)
        {
            p = (u_char *) ngx_strchr(value[i].data, '=') + 1;
            s.data = p;
            s.len = value[i].data + value[i].len - p;

            n = ngx_parse_offset(&s);
            if (n == NGX_ERROR || n < (1 << 20)
                || (uint64_t) n > (uint64_t) NGX_MAX_SIZE_T_VALUE)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": at least 1m", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[6] == 'm') {
                a->store_max = n;
            } else {
                a->store_size = n;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (a->name.len == 0) {
        return "needs \"zone=NAME:SIZE\"";
    }

    return NGX_CONF_OK;
}


/* A new zone of parameters a, checked against the others: into *zone. */
static char *
ngx_http_code_router_scans_define(ngx_conf_t *cf,
    ngx_http_code_router_scans_args_t *a, ngx_http_code_router_zone_t **zone)
{
    char                               err[1024], *rv;
    ngx_uint_t                         i;
    ngx_http_code_router_zone_t       *z, **zp;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_code_router_module);
    zp = crmcf->zones.elts;

    if (a->store_max && a->store_size > a->store_max) {
        return "has a store_max= below its store_size=";
    }

    if (a->store_max && a->store_size == 0
        && (uint64_t) a->store_max < CR_SCANS_DEFAULT_MAP)
    {
        a->store_size = a->store_max;
    }

    if ((a->store_size || a->store_max || a->wait != NGX_CONF_UNSET)
        && a->store.len == 0)
    {
        return "sets store_size=, store_max= and wait= only with store=";
    }

    rv = ngx_http_code_router_scans_ledger_args(cf, a);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    for (i = 0; i < crmcf->zones.nelts; i++) {
        if (a->store.len && zp[i]->store.len == a->store.len
            && ngx_strcmp(zp[i]->store.data, a->store.data) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "scan store \"%V\" is already used by zone "
                               "\"%V\"", &a->store, &zp[i]->name);
            return NGX_CONF_ERROR;
        }
    }

    /* nginx -t: an existing store must be a scan store, never the binding
     * store; a new one is created by the first worker. */
    if (a->store.len
        && cr_scans_open(NULL, (char *) a->store.data, 0, CR_SCANS_CHECK, err,
                         sizeof(err))
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    z->name = a->name;
    z->store = a->store;
    z->store_size = a->store_size;
    z->store_max = a->store_max ? (uint64_t) a->store_max
                                : CR_SCANS_DEFAULT_MAX;
    z->thread_pool = a->pool;
    z->flush = (a->flush == NGX_CONF_UNSET) ? 1 : a->flush;
    z->wait = (a->wait == NGX_CONF_UNSET) ? CR_WAIT_DEFAULT_MS
                                          : (ngx_msec_t) a->wait;
    z->ledger = a->ledger;
    z->node_name = a->node;

    z->shm_zone = ngx_shared_memory_add(cf, &a->name, a->size,
                                        &ngx_http_code_router_module);
    if (z->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (z->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used by another module",
                           &a->name);
        return NGX_CONF_ERROR;
    }

    z->shm_zone->init = ngx_http_code_router_scans_init_zone;
    z->shm_zone->data = z;

    zp = ngx_array_push(&crmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = z;
    *zone = z;

    return NGX_CONF_OK;
}


/*
 * ledger= needs the store (the zone's own counts survive there; the
 * ledger keeps what it has been sent) and a thread pool (the flush's
 * statement never runs in the event loop); node= defaults to the host
 * name, which must then make a node name.  Both NUL-terminated.
 */
static char *
ngx_http_code_router_scans_ledger_args(ngx_conf_t *cf,
    ngx_http_code_router_scans_args_t *a)
{
    u_char     *p;
    ngx_str_t  *h;

    if (a->ledger.len == 0) {
        if (a->node.len) {
            return "sets node= only with ledger=";
        }

        return NGX_CONF_OK;
    }

    if (a->store.len == 0 || a->pool.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ledger=\" needs \"store=\" and "
                           "\"thread_pool=\": the zone's counts are kept "
                           "in its store, and sent from the pool");
        return NGX_CONF_ERROR;
    }

    if (a->node.len == 0) {
        h = &cf->cycle->hostname;

        if (!cr_ledger_node_valid((char *) h->data, h->len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the host name \"%V\" is not a node name: "
                               "set \"node=\" (1 to %d of [0-9A-Za-z._-])",
                               h, CR_LEDGER_NODE_MAX);
            return NGX_CONF_ERROR;
        }

        a->node = *h;
    }

    /* ledger= ends its argument (NUL-terminated by nginx's parser); the
     * host name is not terminated: node= is copied. */
    p = ngx_pnalloc(cf->pool, a->node.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    *ngx_cpymem(p, a->node.data, a->node.len) = '\0';
    a->node.data = p;

    return NGX_CONF_OK;
}


/* code_router_max_scans SCENE|campaign=ID N */
char *
ngx_http_code_router_max_scans(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_int_t                    n;
    ngx_str_t                   *value;
    ngx_http_code_router_max_t  *m;

    value = cf->args->elts;

    if (crlcf->max_scans == NGX_CONF_UNSET_PTR) {
        crlcf->max_scans = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_code_router_max_t));
        if (crlcf->max_scans == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    m = ngx_array_push(crlcf->max_scans);
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(m, sizeof(ngx_http_code_router_max_t));

    if (ngx_strncmp(value[1].data, "campaign=", 9) == 0) {
        m->campaign.data = value[1].data + 9;
        m->campaign.len = value[1].len - 9;

        if (cr_valid_id((char *) m->campaign.data, m->campaign.len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid campaign id in \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

    } else {
        m->scene = cr_scene_parse((char *) value[1].data, value[1].len);

        if (m->scene == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown scene \"%V\": verify, marketing, "
                               "trace, channel, or campaign=ID", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    n = ngx_atoi(value[2].data, value[2].len);
    if (n == NGX_ERROR || n < 1 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of scans \"%V\": from 1 to "
                           "1000000", &value[2]);
        return NGX_CONF_ERROR;
    }

    m->max = n;

    return NGX_CONF_OK;
}


/*
 * At a reload whose zone names another store= (or none before): the
 * filter said what the old one held, so it is emptied and filled again.
 */
static void
ngx_http_code_router_scans_refill(ngx_http_code_router_zone_t *z,
    ngx_http_code_router_zone_t *oz)
{
    ngx_http_code_router_scans_sh_t  *sh;

    sh = z->sh;

    if (sh->filter == NULL
        || (z->store.len == oz->store.len
            && ngx_strncmp(z->store.data, oz->store.data, z->store.len) == 0))
    {
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    ngx_memzero(sh->filter, sh->filter_blocks * 64);
    sh->filter_state = CR_FILTER_EMPTY;
    sh->filter_ready = 0;
    sh->filter_resume = 0;
    sh->filter_since = 0;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* The counters survive a reload: a zone of the old cycle is adopted. */
static ngx_int_t
ngx_http_code_router_scans_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                            len;
    ngx_http_code_router_zone_t      *z, *oz;
    ngx_http_code_router_scans_sh_t  *sh;

    z = shm_zone->data;
    oz = data;

    if (oz) {
        z->shpool = oz->shpool;
        z->sh = oz->sh;
        ngx_http_code_router_scans_refill(z, oz);
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_code_router_scans_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    z->sh = sh;
    z->shpool->data = sh;

    /* The filter (a share of the zone, whole 64-byte blocks), empty. */
    sh->filter_blocks = shm_zone->shm.size / CR_FILTER_SHARE / 64;
    sh->filter = ngx_slab_calloc(z->shpool, sh->filter_blocks * 64);

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_code_router_scans_insert);
    ngx_queue_init(&sh->lru);
    ngx_queue_init(&sh->dirty);
    sh->unsent_tail = &sh->unsent_head;

    len = sizeof(" in code_router_scans zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in code_router_scans zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* A full zone is expected and handled (eviction), not an error. */
    z->shpool->log_nomem = 0;

    return NGX_OK;
}
