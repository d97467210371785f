/*
 * The verification ledger: where a right PIN is counted before the answer
 * says "genuine" or "verified_before".
 *
 *   embedded (no code_router_ledger): the scan store, one LMDB write
 *       transaction with a synchronous commit (cr_scans_verify);
 *   code_router_ledger "CONNINFO": PostgreSQL (cr_ledger), shared by
 *       every node that names it.
 *
 * and, the same way, a prize's redemption (POST .../CODE/redeem): once
 * per code, the same answer to the same request id; and, with
 * code_router_ledger, every PIN check the node's guard admits, before
 * its verdict is said (cr_ledger_guard: the wrong-PIN budget is the
 * ledger's, the same for every node).
 *
 * Either way the work runs in a thread pool (the disk's fsync, the
 * network and name resolution never stall the event loop): the request
 * waits, holding a reference, and is answered when the task completes.
 * A PostgreSQL ledger also has a timer: past timeout= the request is
 * answered "unavailable" at once, and the task, when it ends, finds no
 * request and is freed.  Each thread keeps one connection per ledger.
 *
 * Why a thread pool rather than libpq's asynchronous API on nginx's
 * events: PQconnectStart resolves host names with a blocking
 * getaddrinfo(), and a worker must not wait on DNS; a thread also keeps
 * the libpq code the same for the module and the CLI (cr_ledger.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "cr_ledger.h"
#include "ngx_http_code_router.h"


#define CR_LEDGER_MAX        16        /* ledgers per configuration */
#define CR_CAMPAIGN_ID_MAX   64
#define CR_BATCH_STORES      16        /* scan stores batched per worker */
#define CR_BATCH_MAX         512       /* right PINs per commit */
#define CR_LEDGER_ERR_LEN    512


/* code_router_ledger: one per http block or server. */
struct ngx_http_code_router_ledger_s {
    ngx_str_t                          conninfo;    /* NUL-terminated */
    ngx_msec_t                         timeout;
    ngx_str_t                          pool_name;
    ngx_uint_t                         index;       /* a thread's conns[] */
#if (NGX_THREADS)
    ngx_thread_pool_t                 *tp;          /* found at first use */
#endif
};


/* The ledgers' metrics, shared by the workers. */
typedef enum {
    CR_LEDGER_M_COUNTED = 0,            /* counted (a new verification) */
    CR_LEDGER_M_REPLAYED,               /* a request id seen before */
    CR_LEDGER_M_LATE,                   /* the database saw it too late */
    CR_LEDGER_M_TIMEOUT,                /* no answer within timeout= */
    CR_LEDGER_M_ERROR,                  /* refused, down, no schema */
    CR_LEDGER_M_N
} ngx_http_code_router_ledger_metric_e;

/* What the ledger said of the PIN checks the guard sent it. */
typedef enum {
    CR_LEDGER_G_RIGHT = 0,
    CR_LEDGER_G_WRONG,
    CR_LEDGER_G_LOCKED,
    CR_LEDGER_G_UNAVAILABLE,            /* late, timeout, error */
    CR_LEDGER_G_N
} ngx_http_code_router_ledger_guard_metric_e;

typedef struct {
    ngx_atomic_t                       n[2][CR_LEDGER_M_N];  /* embedded,
                                                              * postgresql */
    ngx_atomic_t                       unavailable[2];
    ngx_atomic_t                       guard[CR_LEDGER_G_N];
} ngx_http_code_router_ledger_sh_t;


typedef struct ngx_http_code_router_ledger_job_s
    ngx_http_code_router_ledger_job_t;

/* One right PIN on its way: allocated apart from the request, since the
 * request may be answered (timeout) and freed while the thread works. */
struct ngx_http_code_router_ledger_job_s {
    ngx_http_request_t                *r;           /* NULL: answered */
    ngx_http_code_router_ledger_done_pt  done;
    ngx_http_code_router_ledger_guarded_pt  guarded;
    ngx_pool_cleanup_t                *cln;
    ngx_event_t                        timer;
    ngx_log_t                         *log;
    ngx_thread_task_t                 *task;
    /* The embedded ledger's group commit: the jobs committed with this
     * one (the first carries the chain), or waiting for the next. */
    ngx_http_code_router_ledger_job_t *next;
    size_t                             batched;     /* in the chain */

    /* What the thread reads. */
    ngx_uint_t                         redeem;      /* a prize */
    ngx_uint_t                         guard;       /* a PIN check's
                                                     * budget; else a
                                                     * right PIN's count */
    ngx_uint_t                         right;       /* guard: the PIN */
    const cr_guard_policy_t           *policy;      /* guard */
    size_t                             client_len;
    uint8_t                            client[CR_LEDGER_CLIENT_MAX];
    ngx_http_code_router_ledger_t     *ledger;      /* NULL: embedded */
    cr_scans_t                        *sc;
    ngx_http_code_router_zone_t       *zone;        /* sc's, for its metric */
    cr_ledger_code_t                   code;
    int64_t                            now;
    int64_t                            deadline_us;
    char                               request[CR_LEDGER_REQUEST_MAX + 1];
    char                               campaign[CR_CAMPAIGN_ID_MAX + 1];
    u_char                             code_text[CR_CODE_LEN];

    /* What the thread writes. */
    int                                rc;
    cr_scan_t                          v;
    cr_ledger_outcome_e                outcome;
    cr_ledger_redeemed_e               redeemed;
    int64_t                            at;
    cr_ledger_guard_t                  g;
    char                               err[CR_LEDGER_ERR_LEN];
};


/* One scan store's group commit in this worker: right PINs that come
 * while a commit is in the thread pool wait and go in the next, one
 * transaction and one fsync for all of them. */
typedef struct {
    cr_scans_t                        *sc;
    ngx_uint_t                         busy;
    ngx_http_code_router_ledger_job_t *pending;
    ngx_http_code_router_ledger_job_t **tail;
    size_t                             n;
} ngx_http_code_router_ledger_batch_t;


static void ngx_http_code_router_ledger_work(
    ngx_http_code_router_ledger_job_t *job);
#if (NGX_THREADS)
static void ngx_http_code_router_ledger_thread(void *data, ngx_log_t *log);
static ngx_thread_pool_t *ngx_http_code_router_ledger_pool(
    ngx_http_code_router_ledger_t *l);
#endif
static void ngx_http_code_router_ledger_event(ngx_event_t *ev);
static void ngx_http_code_router_ledger_done(
    ngx_http_code_router_ledger_job_t *job);
#if (NGX_THREADS)
static ngx_int_t ngx_http_code_router_ledger_batch(
    ngx_http_code_router_ledger_job_t *job, ngx_thread_pool_t *tp);
static ngx_int_t ngx_http_code_router_ledger_batch_post(
    ngx_http_code_router_ledger_batch_t *b, ngx_thread_pool_t *tp);
static void ngx_http_code_router_ledger_batch_work(
    ngx_http_code_router_ledger_job_t *job);
#endif
static void ngx_http_code_router_ledger_timeout(ngx_event_t *ev);
static void ngx_http_code_router_ledger_cleanup(void *data);
static void ngx_http_code_router_ledger_answer(
    ngx_http_code_router_ledger_job_t *job, ngx_int_t rc);
static ngx_http_code_router_ledger_job_t *ngx_http_code_router_ledger_job(
    ngx_http_request_t *r, ngx_http_code_router_decision_t *d);
static ngx_int_t ngx_http_code_router_ledger_post(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *request,
    ngx_http_code_router_zone_t *z, ngx_uint_t redeem,
    ngx_http_code_router_ledger_done_pt done);
static ngx_int_t ngx_http_code_router_ledger_send(ngx_http_request_t *r,
    ngx_http_code_router_ledger_job_t *job);
static void ngx_http_code_router_ledger_guard_work(
    ngx_http_code_router_ledger_job_t *job, cr_ledger_conn_t *c);
static void ngx_http_code_router_ledger_guard_count(
    ngx_http_code_router_ledger_job_t *job);
static void ngx_http_code_router_ledger_count_guard(
    ngx_http_code_router_ledger_guard_metric_e m);
static ngx_http_code_router_ledger_sh_t *ngx_http_code_router_ledger_sh(
    void);
static void ngx_http_code_router_ledger_redeem_work(
    ngx_http_code_router_ledger_job_t *job, cr_ledger_conn_t *c);
static ngx_int_t ngx_http_code_router_redeem_send(ngx_http_request_t *r,
    ngx_http_code_router_ledger_job_t *job, ngx_int_t rc);
static ngx_int_t ngx_http_code_router_redeem_json(ngx_http_request_t *r,
    ngx_uint_t status, const char *body);
static void ngx_http_code_router_ledger_count(ngx_uint_t pg,
    ngx_http_code_router_ledger_metric_e m);
static ngx_int_t ngx_http_code_router_ledger_request_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_code_router_ledger_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);


static ngx_str_t  ngx_http_code_router_ledger_zone_name =
    ngx_string("code_router_ledger");
static ngx_str_t  ngx_http_code_router_ledger_default_pool =
    ngx_string("default");
static ngx_str_t  ngx_http_code_router_request_var =
    ngx_string("code_router_request");

/* Ledgers so far in the configuration being read (a thread's conns[]
 * index). */
static ngx_uint_t  ngx_http_code_router_ledgers;

#if (NGX_THREADS)
static ngx_thread_pool_t  *ngx_http_code_router_embedded_tp;
static ngx_http_code_router_ledger_batch_t
    ngx_http_code_router_batches[CR_BATCH_STORES];

/* Each pool thread's connections, by ledger index. */
static _Thread_local cr_ledger_conn_t
    *ngx_http_code_router_ledger_conns[CR_LEDGER_MAX];
#endif

static const char  *ngx_http_code_router_ledger_metric_names[CR_LEDGER_M_N]
    = {
    [CR_LEDGER_M_COUNTED] = "counted",
    [CR_LEDGER_M_REPLAYED] = "replayed",
    [CR_LEDGER_M_LATE] = "late",
    [CR_LEDGER_M_TIMEOUT] = "timeout",
    [CR_LEDGER_M_ERROR] = "error"
};


/*
 * Sends the right PIN of decision d to the request's ledger; done is
 * called with NGX_OK and the count, or NGX_DECLINED (unavailable), and
 * its return value finalizes the request.  Returns NGX_DONE (the request
 * waits), or NGX_DECLINED when it cannot even be sent.
 */
ngx_int_t
ngx_http_code_router_ledger_verify(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *request,
    ngx_http_code_router_zone_t *z, ngx_http_code_router_ledger_done_pt done)
{
    return ngx_http_code_router_ledger_post(r, d, request, z, 0, done);
}


/*
 * POST .../CODE/redeem with a right PIN: the prize of the code's
 * campaign, once.  request is required (a retry must be recognised).
 * Returns NGX_DONE (answered later) or the answer's rc.
 */
ngx_int_t
ngx_http_code_router_ledger_redeem(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *request,
    ngx_http_code_router_zone_t *z)
{
    if (request == NULL || request->len == 0) {
        return ngx_http_code_router_redeem_json(r, NGX_HTTP_BAD_REQUEST,
                   "{\"status\":\"error\",\"error\":\"a redemption needs "
                   "request=ID (1 to 64 of 0-9 A-Z a-z _ -): a retry must "
                   "send the same one\"}\n");
    }

    if (ngx_http_code_router_ledger_post(r, d, request, z, 1, NULL)
        == NGX_DONE)
    {
        return NGX_DONE;
    }

    return ngx_http_code_router_redeem_json(r,
               NGX_HTTP_SERVICE_UNAVAILABLE,
               "{\"status\":\"unavailable\",\"error\":\"the ledger "
               "cannot redeem now; retry with the same request\"}\n");
}


/*
 * A PIN check that the guard admitted, of decision d by client (the
 * guard's address id, client_len bytes), its PIN right or not, to the
 * server's code_router_ledger under policy p, before anything is said:
 * done is called with NGX_OK and the ledger's answer, or NGX_DECLINED
 * (unavailable), and its return value finalizes the request.  NGX_DONE,
 * or NGX_DECLINED when it cannot be sent.
 */
ngx_int_t
ngx_http_code_router_ledger_guard(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, const u_char *client,
    size_t client_len, ngx_uint_t right, const cr_guard_policy_t *p,
    ngx_http_code_router_ledger_guarded_pt done)
{
    ngx_http_code_router_ledger_job_t  *job;

    if (client_len > CR_LEDGER_CLIENT_MAX) {
        return NGX_DECLINED;
    }

    job = ngx_http_code_router_ledger_job(r, d);
    if (job == NULL) {
        return NGX_DECLINED;
    }

    job->guard = 1;
    job->right = right;
    job->policy = p;
    job->guarded = done;
    job->client_len = client_len;
    ngx_memcpy(job->client, client, client_len);

    return ngx_http_code_router_ledger_send(r, job);
}


/* A task for the ledger's thread pool (see ledger_verify). */
static ngx_int_t
ngx_http_code_router_ledger_post(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *request,
    ngx_http_code_router_zone_t *z, ngx_uint_t redeem,
    ngx_http_code_router_ledger_done_pt done)
{
    u_char                             *p;
    ngx_http_code_router_ledger_job_t  *job;

    job = ngx_http_code_router_ledger_job(r, d);
    if (job == NULL) {
        return NGX_DECLINED;
    }

    job->done = done;
    job->redeem = redeem;

    /* The prize's campaign, recorded with its redemption. */
    if (d->bound && d->b.has_campaign
        && d->b.campaign.s[CR_CAMP_ID].len <= CR_CAMPAIGN_ID_MAX)
    {
        ngx_memcpy(job->campaign, d->b.campaign.s[CR_CAMP_ID].data,
                   d->b.campaign.s[CR_CAMP_ID].len);
    }

    /* The posted request id, else a fresh one: never two buyers' PINs
     * under one id. */
    if (request && request->len) {
        p = ngx_cpymem(job->request, request->data, request->len);

    } else {
        u_char  rnd[16];

        randombytes_buf(rnd, sizeof(rnd));
        p = ngx_hex_dump((u_char *) job->request, rnd, sizeof(rnd));
    }

    *p = '\0';

    if (job->ledger == NULL) {
        job->sc = ngx_http_code_router_scans_store(z);
        job->zone = z;

        if (job->sc == NULL) {
            job->cln->handler = NULL;
            ngx_free(job->task);
            ngx_http_code_router_ledger_count(0, CR_LEDGER_M_ERROR);
            return NGX_DECLINED;
        }
    }

    return ngx_http_code_router_ledger_send(r, job);
}


/* A job of decision d for the request's ledger, not yet sent; NULL: no
 * memory. */
static ngx_http_code_router_ledger_job_t *
ngx_http_code_router_ledger_job(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d)
{
    ngx_thread_task_t                   *task;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_code_router_srv_conf_t     *crscf;
    ngx_http_code_router_ledger_job_t   *job;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_code_router_ledger_job_t),
                      r->connection->log);
    if (task == NULL) {
        return NULL;
    }

    job = (ngx_http_code_router_ledger_job_t *) (task + 1);
    job->task = task;
    job->r = r;
    job->cln = cln;
    job->log = ngx_cycle->log;
    job->ledger = crscf->ledger;
    ngx_memcpy(job->code_text, d->code, CR_CODE_LEN);

    ngx_memcpy(job->code.fp, crscf->ring->keys[d->kid].fp,
               CR_LEDGER_FP_LEN);
    job->code.kid = d->kid;
    job->code.serial = d->serial;
    job->now = ngx_time();

    return job;
}


/* The job to its thread pool, with its timer and the request held:
 * NGX_DONE, or NGX_DECLINED (the job freed). */
static ngx_int_t
ngx_http_code_router_ledger_send(ngx_http_request_t *r,
    ngx_http_code_router_ledger_job_t *job)
{
    ngx_thread_task_t              *task = job->task;
    ngx_http_code_router_ledger_t  *l = job->ledger;

    task->ctx = job;
    task->event.data = task;
    task->event.handler = ngx_http_code_router_ledger_event;
    task->event.log = job->log;

    job->cln->handler = ngx_http_code_router_ledger_cleanup;
    job->cln->data = job;

    if (l) {
        job->deadline_us = cr_ledger_now_us() + (int64_t) l->timeout * 1000;
        job->timer.handler = ngx_http_code_router_ledger_timeout;
        job->timer.data = job;
        job->timer.log = r->connection->log;
        ngx_add_timer(&job->timer, l->timeout);
    }

#if (NGX_THREADS)
    {
        ngx_thread_pool_t  *tp;

        task->handler = ngx_http_code_router_ledger_thread;
        tp = ngx_http_code_router_ledger_pool(l);

        if (tp && l == NULL && !job->redeem) {
            if (ngx_http_code_router_ledger_batch(job, tp) == NGX_OK) {
                r->main->count++;
                return NGX_DONE;
            }

            tp = NULL;                  /* answered now, unavailable */
        }

        if (tp == NULL || ngx_thread_task_post(tp, task) != NGX_OK) {
            /* The pool's queue is full: answered now, unavailable. */
            job->cln->handler = NULL;

            if (job->timer.timer_set) {
                ngx_del_timer(&job->timer);
            }

            ngx_free(task);
            ngx_http_code_router_ledger_count(l != NULL, CR_LEDGER_M_ERROR);
            return NGX_DECLINED;
        }
    }
#else
    /* No threads in this nginx: the work in the event loop. */
    ngx_http_code_router_ledger_work(job);
    ngx_post_event(&task->event, &ngx_posted_events);
#endif

    r->main->count++;

    return NGX_DONE;
}


/* In a pool thread (or the event loop, without threads): the count. */
static void
ngx_http_code_router_ledger_work(ngx_http_code_router_ledger_job_t *job)
{
    int                  rc;
    cr_ledger_answer_t   a;
    cr_ledger_conn_t   **cp;

    job->err[0] = '\0';

    if (job->redeem && job->ledger == NULL) {
        rc = cr_scans_redeem(job->sc, job->code.fp, job->code.kid,
                             job->code.serial, job->request,
                             ngx_strlen(job->request), job->now, &job->at);
        if (rc < 0) {
            ngx_cpystrn((u_char *) job->err,
                        (u_char *) cr_scans_error(job->sc), CR_LEDGER_ERR_LEN);
            job->rc = -1;
            return;
        }

        job->redeemed = (rc == CR_SCANS_REDEEMED) ? CR_LEDGER_REDEEMED
                        : (rc == CR_SCANS_REPLAYED) ? CR_LEDGER_REDEEM_REPLAYED
                        : CR_LEDGER_ALREADY_REDEEMED;
        job->rc = 0;
        return;
    }

    if (job->ledger == NULL) {
        rc = cr_scans_verify(job->sc, job->code.fp, job->code.kid,
                             job->code.serial, job->now, &job->v);
        if (rc != 0) {
            ngx_cpystrn((u_char *) job->err,
                        (u_char *) cr_scans_error(job->sc), CR_LEDGER_ERR_LEN);
        }

        job->outcome = CR_LEDGER_COUNTED;
        job->rc = rc;
        return;
    }

#if (NGX_THREADS)
    cp = &ngx_http_code_router_ledger_conns[job->ledger->index];
#else
    static cr_ledger_conn_t  *conns[CR_LEDGER_MAX];

    cp = &conns[job->ledger->index];
#endif

    if (*cp == NULL) {
        *cp = cr_ledger_conn_new((char *) job->ledger->conninfo.data,
                                 (unsigned) job->ledger->timeout);

        if (*cp == NULL) {
            ngx_cpystrn((u_char *) job->err, (u_char *) "out of memory",
                        CR_LEDGER_ERR_LEN);
            job->rc = -1;
            return;
        }
    }

    if (job->redeem) {
        ngx_http_code_router_ledger_redeem_work(job, *cp);
        return;
    }

    if (job->guard) {
        ngx_http_code_router_ledger_guard_work(job, *cp);
        return;
    }

    rc = cr_ledger_verify(*cp, &job->code, job->request, job->deadline_us,
                          &a);

    if (rc != 0) {
        ngx_cpystrn((u_char *) job->err, (u_char *) cr_ledger_error(*cp),
                    CR_LEDGER_ERR_LEN);
        job->rc = rc;
        return;
    }

    job->outcome = a.outcome;
    job->v.count = a.count;
    job->v.first = a.first;
    job->rc = (a.outcome == CR_LEDGER_LATE) ? CR_LEDGER_TIMEOUT : 0;
}


/* In a pool thread: the PIN check's budget, in the ledger. */
static void
ngx_http_code_router_ledger_guard_work(ngx_http_code_router_ledger_job_t *job,
    cr_ledger_conn_t *c)
{
    int  rc;

    rc = cr_ledger_guard(c, &job->code, job->client, job->client_len,
                         (int) job->right, job->policy, job->deadline_us,
                         &job->g);

    if (rc != 0) {
        ngx_cpystrn((u_char *) job->err, (u_char *) cr_ledger_error(c),
                    CR_LEDGER_ERR_LEN);
        job->rc = rc;
        return;
    }

    job->rc = (job->g.outcome == CR_LEDGER_GUARD_LATE) ? CR_LEDGER_TIMEOUT
                                                       : 0;
}


static void
ngx_http_code_router_ledger_redeem_work(
    ngx_http_code_router_ledger_job_t *job, cr_ledger_conn_t *c)
{
    int                     rc;
    cr_ledger_redemption_t  a;

    rc = cr_ledger_redeem(c, &job->code, job->request, job->campaign,
                          job->deadline_us, &a);

    if (rc != 0) {
        ngx_cpystrn((u_char *) job->err, (u_char *) cr_ledger_error(c),
                    CR_LEDGER_ERR_LEN);
        job->rc = rc;
        return;
    }

    job->redeemed = a.outcome;
    job->at = a.at;
    job->rc = (a.outcome == CR_LEDGER_REDEEM_LATE) ? CR_LEDGER_TIMEOUT : 0;

    if (a.outcome == CR_LEDGER_REDEEM_LATE) {
        job->outcome = CR_LEDGER_LATE;
    }
}


#if (NGX_THREADS)

static void
ngx_http_code_router_ledger_thread(void *data, ngx_log_t *log)
{
    ngx_http_code_router_ledger_job_t  *job = data;

    if (job->batched) {
        ngx_http_code_router_ledger_batch_work(job);
        return;
    }

    ngx_http_code_router_ledger_work(job);
}


/*
 * The embedded ledger's right PINs, batched: this job is sent now if no
 * commit of its store is in the pool, else it waits for the next (sent
 * when the one in the pool comes back).  NGX_OK, or NGX_ERROR (no room
 * to batch, or the pool refused it).
 */
static ngx_int_t
ngx_http_code_router_ledger_batch(ngx_http_code_router_ledger_job_t *job,
    ngx_thread_pool_t *tp)
{
    ngx_uint_t                            i;
    ngx_http_code_router_ledger_batch_t  *b;

    b = NULL;

    for (i = 0; i < CR_BATCH_STORES; i++) {
        if (ngx_http_code_router_batches[i].sc == job->sc
            || ngx_http_code_router_batches[i].sc == NULL)
        {
            b = &ngx_http_code_router_batches[i];
            break;
        }
    }

    if (b == NULL) {
        return NGX_ERROR;
    }

    if (b->sc == NULL) {
        b->sc = job->sc;
        b->tail = &b->pending;
    }

    job->next = NULL;
    *b->tail = job;
    b->tail = &job->next;
    b->n++;

    if (b->busy) {
        return NGX_OK;
    }

    /* Not busy: nothing was waiting, this job is the batch. */
    if (ngx_http_code_router_ledger_batch_post(b, tp) != NGX_OK) {
        b->pending = NULL;
        b->tail = &b->pending;
        b->n = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The waiting jobs (up to CR_BATCH_MAX) as one task: the first carries
 * the chain.  NGX_ERROR: the pool refused it (the jobs stay waiting
 * and the caller answers the one it has; see batch_next). */
static ngx_int_t
ngx_http_code_router_ledger_batch_post(ngx_http_code_router_ledger_batch_t *b,
    ngx_thread_pool_t *tp)
{
    size_t                              n;
    ngx_http_code_router_ledger_job_t  *first, *j, *last;

    first = b->pending;
    last = first;

    for (n = 1; n < CR_BATCH_MAX && last->next; n++) {
        last = last->next;
    }

    first->batched = n;

    if (ngx_thread_task_post(tp, first->task) != NGX_OK) {
        first->batched = 0;
        return NGX_ERROR;
    }

    /* Off the waiting list: the chain is the task's. */
    b->pending = last->next;
    last->next = NULL;
    b->n -= n;

    if (b->pending == NULL) {
        b->tail = &b->pending;
    }

    for (j = first; j; j = j->next) {
        j->batched = n;
    }

    b->busy = 1;

    return NGX_OK;
}


/* In a pool thread: one transaction for the chain. */
static void
ngx_http_code_router_ledger_batch_work(ngx_http_code_router_ledger_job_t *job)
{
    int                                 rc, *replayed;
    size_t                              i;
    cr_scan_t                          *v;
    const char                        **req;
    ngx_http_code_router_ledger_job_t  *j;

    /* One allocation: the records, their request ids, replayed. */
    v = malloc(job->batched * (sizeof(cr_scan_t) + sizeof(char *)
                               + sizeof(int)));
    if (v == NULL) {
        rc = -1;
        ngx_cpystrn((u_char *) job->err, (u_char *) "out of memory",
                    CR_LEDGER_ERR_LEN);
        goto done;
    }

    req = (const char **) (v + job->batched);
    replayed = (int *) (req + job->batched);

    for (i = 0, j = job; j; i++, j = j->next) {
        ngx_memzero(&v[i], sizeof(cr_scan_t));
        ngx_memcpy(v[i].fp, j->code.fp, CR_SCANS_FP_LEN);
        v[i].kid = (uint8_t) j->code.kid;
        v[i].serial = j->code.serial;
        req[i] = j->request;
    }

    rc = cr_scans_verify_n(job->sc, v, req, replayed, job->batched,
                           job->now);

    if (rc != 0) {
        ngx_cpystrn((u_char *) job->err, (u_char *) cr_scans_error(job->sc),
                    CR_LEDGER_ERR_LEN);
    }

    for (i = 0, j = job; j; i++, j = j->next) {
        j->v = v[i];
        j->outcome = (rc == 0 && replayed[i]) ? CR_LEDGER_REPLAYED
                                              : CR_LEDGER_COUNTED;
    }

    free(v);

done:

    for (j = job; j; j = j->next) {
        j->rc = rc;
    }
}


/* The ledger's pool, or for the embedded ledger nginx's "default" (made
 * by ngx_http_code_router_ledger_embedded() at configuration). */
static ngx_thread_pool_t *
ngx_http_code_router_ledger_pool(ngx_http_code_router_ledger_t *l)
{
    ngx_cycle_t  *cycle = (ngx_cycle_t *) ngx_cycle;

    if (l) {
        if (l->tp == NULL) {
            l->tp = ngx_thread_pool_get(cycle, &l->pool_name);
        }

        return l->tp;
    }

    if (ngx_http_code_router_embedded_tp == NULL) {
        ngx_http_code_router_embedded_tp = ngx_thread_pool_get(cycle,
                                  &ngx_http_code_router_ledger_default_pool);
    }

    return ngx_http_code_router_embedded_tp;
}

#endif


/* In the event loop: the task is done (one job, or a batch's chain). */
static void
ngx_http_code_router_ledger_event(ngx_event_t *ev)
{
    ngx_thread_task_t                  *task = ev->data;
    ngx_http_code_router_ledger_job_t  *job = task->ctx, *next;
#if (NGX_THREADS)
    ngx_uint_t                            i;
    ngx_thread_pool_t                    *tp;
    ngx_http_code_router_ledger_batch_t  *b;
    cr_scans_t                           *sc;

    sc = job->batched ? job->sc : NULL;
#endif

    for ( /* void */ ; job; job = next) {
        next = job->next;
        ngx_http_code_router_ledger_done(job);
    }

#if (NGX_THREADS)
    if (sc == NULL) {
        return;
    }

    /* The store's next batch, if right PINs came meanwhile. */
    for (i = 0; i < CR_BATCH_STORES; i++) {
        b = &ngx_http_code_router_batches[i];

        if (b->sc != sc) {
            continue;
        }

        b->busy = 0;

        if (b->pending == NULL) {
            return;
        }

        tp = ngx_http_code_router_ledger_pool(NULL);

        if (tp && ngx_http_code_router_ledger_batch_post(b, tp) == NGX_OK) {
            return;
        }

        /* The pool refused: the waiting right PINs are unavailable. */
        while (b->pending) {
            job = b->pending;
            b->pending = job->next;
            job->next = NULL;
            job->rc = -1;
            ngx_cpystrn((u_char *) job->err, (u_char *) "the thread pool's "
                        "queue is full", CR_LEDGER_ERR_LEN);
            ngx_http_code_router_ledger_done(job);
        }

        b->tail = &b->pending;
        b->n = 0;

        return;
    }
#endif
}


/* One job's end: counted in the metrics, answered if its request still
 * waits, freed. */
static void
ngx_http_code_router_ledger_done(ngx_http_code_router_ledger_job_t *job)
{
    ngx_uint_t          pg;
    ngx_thread_task_t  *task = job->task;

    pg = (job->ledger != NULL);

    if (job->guard) {
        ngx_http_code_router_ledger_guard_count(job);

    } else if (job->rc == 0) {
        ngx_http_code_router_ledger_count(pg,
            (job->outcome == CR_LEDGER_REPLAYED
             || (job->redeem && job->redeemed != CR_LEDGER_REDEEMED))
            ? CR_LEDGER_M_REPLAYED : CR_LEDGER_M_COUNTED);

        if (!pg && !job->redeem && job->outcome != CR_LEDGER_REPLAYED) {
            ngx_http_code_router_scans_verified(job->zone);
        }

    } else if (job->rc == CR_LEDGER_TIMEOUT) {
        ngx_http_code_router_ledger_count(pg,
            job->outcome == CR_LEDGER_LATE ? CR_LEDGER_M_LATE
                                           : CR_LEDGER_M_TIMEOUT);

    } else {
        ngx_http_code_router_ledger_count(pg, CR_LEDGER_M_ERROR);
    }

    /* After the timer's answer, a timeout is no news. */
    if (job->rc != 0 && job->err[0]
        && (job->r || job->rc != CR_LEDGER_TIMEOUT))
    {
        ngx_log_error(NGX_LOG_ERR, job->r ? job->r->connection->log
                                          : job->log, 0,
                      "code router: %s; the %s is answered "
                      "\"unavailable\"", job->err,
                      job->guard ? "PIN check" : "right PIN");
    }

    if (job->r == NULL) {
        /* Answered meanwhile (timeout), or the request is gone.  A late
         * count, if the database made one, is the request id's: the
         * buyer's retry replays it. */
        ngx_free(task);
        return;
    }

    ngx_http_code_router_ledger_answer(job, job->rc == 0 ? NGX_OK
                                                         : NGX_DECLINED);
    ngx_free(task);
}


/* timeout= passed: "unavailable" now; the task, still out, is freed
 * when it comes back. */
static void
ngx_http_code_router_ledger_timeout(ngx_event_t *ev)
{
    ngx_http_code_router_ledger_job_t  *job = ev->data;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "code router: ledger: no answer within %Mms; the %s is "
                  "answered \"unavailable\"", job->ledger->timeout,
                  job->guard ? "PIN check" : "right PIN");

    ngx_http_code_router_ledger_answer(job, NGX_DECLINED);
}


/* The request's pool goes (a client that went away, a worker exiting):
 * the task must not touch it. */
static void
ngx_http_code_router_ledger_cleanup(void *data)
{
    ngx_http_code_router_ledger_job_t  *job = data;

    job->r = NULL;

    if (job->timer.timer_set) {
        ngx_del_timer(&job->timer);
    }
}


static void
ngx_http_code_router_ledger_answer(ngx_http_code_router_ledger_job_t *job,
    ngx_int_t rc)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = job->r;
    c = r->connection;

    job->r = NULL;
    job->cln->handler = NULL;

    if (job->timer.timer_set) {
        ngx_del_timer(&job->timer);
    }

    /* A right PIN the guard's check could not send on is unavailable
     * as one the count could not record. */
    if (rc != NGX_OK && (!job->guard || job->right)) {
        ngx_http_code_router_ledger_count(job->ledger != NULL,
                                          CR_LEDGER_M_N);
    }

    if (job->guard) {
        if (rc != NGX_OK) {
            ngx_http_code_router_ledger_count_guard(CR_LEDGER_G_UNAVAILABLE);
        }

        ngx_http_finalize_request(r, job->guarded(r, rc, rc == NGX_OK
                                                         ? &job->g : NULL));

    } else if (job->redeem) {
        ngx_http_finalize_request(r,
                                  ngx_http_code_router_redeem_send(r, job, rc));

    } else {
        ngx_http_finalize_request(r, job->done(r, rc, rc == NGX_OK ? &job->v
                                                                   : NULL));
    }

    ngx_http_run_posted_requests(c);
}


/* The redemption's answer, JSON: 200 redeemed (now, or by this request
 * before), 409 already redeemed by another, 503 unavailable. */
static ngx_int_t
ngx_http_code_router_redeem_send(ngx_http_request_t *r,
    ngx_http_code_router_ledger_job_t *job, ngx_int_t rc)
{
    u_char      *body, *p;
    size_t       n;
    ngx_uint_t   status;
    const char  *what;

    static const char  ok[] = "{\"status\":\"ok\"";
    static const char  unavailable[] = "{\"status\":\"unavailable\"";

    n = ngx_strlen(job->campaign);

    body = ngx_pnalloc(r->pool, 192 + CR_CODE_LEN + 6 * n);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        p = ngx_cpymem(body, unavailable, sizeof(unavailable) - 1);
        p = ngx_http_code_router_json_str(p, "code", (char *) job->code_text,
                                          CR_CODE_LEN);
        what = "the ledger cannot redeem now; retry with the same request";
        p = ngx_http_code_router_json_str(p, "error", what,
                                          ngx_strlen(what));
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        goto done;
    }

    if (job->redeemed == CR_LEDGER_ALREADY_REDEEMED) {
        what = "already_redeemed";
        status = NGX_HTTP_CONFLICT;

    } else {
        what = "redeemed";
        status = NGX_HTTP_OK;
    }

    p = ngx_cpymem(body, ok, sizeof(ok) - 1);
    p = ngx_http_code_router_json_str(p, "code", (char *) job->code_text,
                                      CR_CODE_LEN);
    p = ngx_http_code_router_json_str(p, "redemption", what,
                                      ngx_strlen(what));
    p = ngx_http_code_router_json_time(p, "redeemed_at", job->at, 0);

    if (n) {
        p = ngx_http_code_router_json_str(p, "campaign", job->campaign, n);
    }

done:

    p = ngx_cpymem(p, "}\n", 2);
    *p = '\0';

    return ngx_http_code_router_redeem_json(r, status, (char *) body);
}


static ngx_int_t
ngx_http_code_router_redeem_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *body)
{
    if (ngx_http_code_router_header(r, "Cache-Control", CR_LIT("no-store"))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_code_router_send_body(r, "application/json", status,
                                          (u_char *) body,
                                          ngx_strlen(body));
}


/* A guard job's answer, when it came (a timeout is counted when the
 * request is answered). */
static void
ngx_http_code_router_ledger_guard_count(ngx_http_code_router_ledger_job_t *job)
{
    if (job->rc != 0) {
        return;
    }

    ngx_http_code_router_ledger_count_guard(
        job->g.outcome == CR_LEDGER_GUARD_RIGHT ? CR_LEDGER_G_RIGHT
        : job->g.outcome == CR_LEDGER_GUARD_WRONG ? CR_LEDGER_G_WRONG
                                                  : CR_LEDGER_G_LOCKED);
}


static void
ngx_http_code_router_ledger_count_guard(
    ngx_http_code_router_ledger_guard_metric_e m)
{
    (void) ngx_atomic_fetch_add(&ngx_http_code_router_ledger_sh()->guard[m],
                                1);
}


/* The ledgers' metrics of this cycle. */
static ngx_http_code_router_ledger_sh_t *
ngx_http_code_router_ledger_sh(void)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_code_router_module);

    return crmcf->ledger_zone->data;
}


/* One answer of a ledger; CR_LEDGER_M_N: one right PIN unavailable. */
static void
ngx_http_code_router_ledger_count(ngx_uint_t pg,
    ngx_http_code_router_ledger_metric_e m)
{
    ngx_http_code_router_ledger_sh_t  *sh;

    sh = ngx_http_code_router_ledger_sh();

    (void) ngx_atomic_fetch_add(m == CR_LEDGER_M_N ? &sh->unavailable[pg]
                                                   : &sh->n[pg][m], 1);
}


/* $code_router_request: the request id the page's form carries (a
 * retry after "unavailable" posts the same one); fresh unless set. */
void
ngx_http_code_router_ledger_set_request(ngx_http_request_t *r,
    ngx_str_t *id)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    cr_set_var(r, crmcf->request_index, id->data, id->len);
}


static ngx_int_t
ngx_http_code_router_ledger_request_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *p;
    u_char   rnd[16];

    p = ngx_pnalloc(r->pool, 2 * sizeof(rnd));
    if (p == NULL) {
        return NGX_ERROR;
    }

    randombytes_buf(rnd, sizeof(rnd));
    ngx_hex_dump(p, rnd, sizeof(rnd));

    v->data = p;
    v->len = 2 * sizeof(rnd);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_code_router_ledger_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t               *var;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_code_router_module);

    var = ngx_http_add_variable(cf, &ngx_http_code_router_request_var, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_code_router_ledger_request_variable;

    crmcf->request_index = ngx_http_get_variable_index(cf,
                                         &ngx_http_code_router_request_var);
    if (crmcf->request_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* A new configuration counts its ledgers from zero. */
    ngx_http_code_router_ledgers = 0;

    return NGX_OK;
}


/* /status: the ledgers' answers by outcome, for Prometheus. */
static const char  ngx_http_code_router_ledger_metrics[] =
    "# HELP code_router_ledger_requests_total Right PINs sent to the "
    "verification ledger, by what came back.\n"
    "# TYPE code_router_ledger_requests_total counter\n";

static const char  ngx_http_code_router_ledger_unavailable[] =
    "# HELP code_router_ledger_unavailable_total Right PINs answered "
    "\"unavailable\" (503): the ledger could not count them.\n"
    "# TYPE code_router_ledger_unavailable_total counter\n"
    "code_router_ledger_unavailable_total{ledger=\"embedded\"} %uA\n"
    "code_router_ledger_unavailable_total{ledger=\"postgresql\"} %uA\n"
    "# HELP code_router_ledger_guard_total PIN checks the guard sent to "
    "the ledger (its budget is global), by what came back.\n"
    "# TYPE code_router_ledger_guard_total counter\n"
    "code_router_ledger_guard_total{outcome=\"right\"} %uA\n"
    "code_router_ledger_guard_total{outcome=\"wrong\"} %uA\n"
    "code_router_ledger_guard_total{outcome=\"locked\"} %uA\n"
    "code_router_ledger_guard_total{outcome=\"unavailable\"} %uA\n";


size_t
ngx_http_code_router_ledger_status_len(ngx_http_request_t *r)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->ledger_zone == NULL) {
        return 0;
    }

    return sizeof(ngx_http_code_router_ledger_metrics)
           + 2 * CR_LEDGER_M_N
             * (sizeof("code_router_ledger_requests_total{ledger="
                       "\"postgresql\",outcome=\"replayed\"} \n")
                + NGX_ATOMIC_T_LEN)
           + sizeof(ngx_http_code_router_ledger_unavailable)
           + (2 + CR_LEDGER_G_N) * NGX_ATOMIC_T_LEN;
}


u_char *
ngx_http_code_router_ledger_status(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_uint_t                         pg, m;
    ngx_http_code_router_ledger_sh_t  *sh;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->ledger_zone == NULL) {
        return p;
    }

    sh = crmcf->ledger_zone->data;
    p = ngx_slprintf(p, last, "%s", ngx_http_code_router_ledger_metrics);

    for (pg = 0; pg < 2; pg++) {
        for (m = 0; m < CR_LEDGER_M_N; m++) {
            p = ngx_slprintf(p, last, "code_router_ledger_requests_total"
                             "{ledger=\"%s\",outcome=\"%s\"} %uA\n",
                             pg ? "postgresql" : "embedded",
                             ngx_http_code_router_ledger_metric_names[m],
                             sh->n[pg][m]);
        }
    }

    return ngx_slprintf(p, last, ngx_http_code_router_ledger_unavailable,
                        sh->unavailable[0], sh->unavailable[1],
                        sh->guard[CR_LEDGER_G_RIGHT],
                        sh->guard[CR_LEDGER_G_WRONG],
                        sh->guard[CR_LEDGER_G_LOCKED],
                        sh->guard[CR_LEDGER_G_UNAVAILABLE]);
}


/* The metrics' zone, once per configuration; and with it, for the
 * embedded ledger, nginx's "default" thread pool. */
static ngx_int_t
ngx_http_code_router_ledger_zone_add(ngx_conf_t *cf)
{
    ngx_shm_zone_t                    *shm;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_code_router_module);

    if (crmcf->ledger_zone) {
        return NGX_OK;
    }

    shm = ngx_shared_memory_add(cf, &ngx_http_code_router_ledger_zone_name,
                                8 * ngx_pagesize,
                                &ngx_http_code_router_module);
    if (shm == NULL) {
        return NGX_ERROR;
    }

    shm->init = ngx_http_code_router_ledger_init_zone;
    crmcf->ledger_zone = shm;

    return NGX_OK;
}


/* Called by every location that verifies PINs. */
ngx_int_t
ngx_http_code_router_ledger_embedded(ngx_conf_t *cf)
{
#if (NGX_THREADS)
    if (ngx_thread_pool_add(cf, NULL) == NULL) {
        return NGX_ERROR;
    }
#endif

    return ngx_http_code_router_ledger_zone_add(cf);
}


/* code_router_ledger "CONNINFO" [timeout=TIME] [thread_pool=NAME] */
char *
ngx_http_code_router_ledger(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_srv_conf_t *crscf = conf;

    ngx_str_t                      *value, s;
    ngx_int_t                       ms;
    ngx_uint_t                      i;
    ngx_http_code_router_ledger_t  *l;

    if (crscf->ledger) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "needs a PostgreSQL connection string, e.g. "
               "\"host=db.example dbname=code_router\"";
    }

    if (ngx_http_code_router_ledgers == CR_LEDGER_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d \"code_router_ledger\" in one "
                           "configuration", CR_LEDGER_MAX);
        return NGX_CONF_ERROR;
    }

    l = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_ledger_t));
    if (l == NULL) {
        return NGX_CONF_ERROR;
    }

    /* value[1] is NUL-terminated by nginx's parser. */
    l->conninfo = value[1];
    l->timeout = 2000;
    l->pool_name = ngx_http_code_router_ledger_default_pool;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ms = ngx_parse_time(&s, 0);
            if (ms == NGX_ERROR || ms < 10 || ms > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": from 10ms to 60s",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            l->timeout = (ngx_msec_t) ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0) {
            l->pool_name.data = value[i].data + 12;
            l->pool_name.len = value[i].len - 12;

            if (l->pool_name.len == 0) {
                return "needs a name: \"thread_pool=NAME\"";
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)
    /* nginx checks that a named pool is declared ("unknown thread
     * pool"); "default" is made if it is not. */
    if (ngx_thread_pool_add(cf, &l->pool_name) == NULL) {
        return NGX_CONF_ERROR;
    }
#else
    return "needs nginx built --with-threads";
#endif

    if (ngx_http_code_router_ledger_zone_add(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    l->index = ngx_http_code_router_ledgers++;
    crscf->ledger = l;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_code_router_ledger_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    return ngx_http_code_router_shm_counters(shm_zone, data,
                                    sizeof(ngx_http_code_router_ledger_sh_t));
}
