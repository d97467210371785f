/*
 * POST .../CODE/receive (the API, behind its key): a store received the
 * case or pallet CODE (form fields store=ID, optional dealer=ID).  The
 * receipt is committed to the zone's scan store in nginx's thread pool,
 * then put in the zone's table (_receipt.c), then answered: a receipt
 * answered is a receipt kept.  Idempotent: the same store again gets the
 * first receipt (200); another store gets the first receipt too, with
 * 409 and "diverted" (the goods were found elsewhere), logged.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_form.h"
#include "cr_valid.h"
#include "ngx_http_code_router.h"


#define CR_RECEIVE_MS  2000                 /* the ledger's statement */


typedef struct {
    ngx_str_t                          code;
    ngx_http_code_router_zone_t       *zone;
    cr_scans_t                        *sc;
    ngx_str_t                         *ledger;  /* conninfo, or NULL */
    cr_receipt_t                       asked;
    cr_receipt_t                       r;       /* the answer: the first */
    int                                rc;      /* cr_scans_receive's */
    char                               err[256];
} ngx_http_code_router_receive_t;


static void ngx_http_code_router_receive_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_receive_decide(ngx_http_request_t *r,
    ngx_http_code_router_receive_t *job, u_char *body, size_t len);
#if (NGX_THREADS)
static void ngx_http_code_router_receive_ledger(
    ngx_http_code_router_receive_t *job);
static void ngx_http_code_router_receive_thread(void *data, ngx_log_t *log);
#endif
static void ngx_http_code_router_receive_done(ngx_event_t *ev);
static ngx_int_t ngx_http_code_router_receive_answer(ngx_http_request_t *r,
    ngx_http_code_router_receive_t *job);
static ngx_int_t ngx_http_code_router_receive_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *err);


ngx_int_t
ngx_http_code_router_receive_start(ngx_http_request_t *r, ngx_str_t *code)
{
    ngx_int_t                          rc;
    ngx_uint_t                         status;
    const char                        *err;
    ngx_http_code_router_receive_t    *job;
    ngx_http_code_router_loc_conf_t   *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    status = 0;
    err = NULL;

    if (crlcf->scans == NULL
        || ngx_http_code_router_receipts_ready(crlcf->scans) == NGX_DECLINED)
    {
        status = NGX_HTTP_NOT_FOUND;
        err = "receipts are not configured here (code_router_receipts)";

    } else if (r->method != NGX_HTTP_POST) {
        if (ngx_http_code_router_allow(r, "POST") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        status = NGX_HTTP_NOT_ALLOWED;
        err = "method not allowed: POST .../CODE/receive";

    } else if (r->headers_in.content_length_n > CR_FORM_MAX) {
        status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        err = "the body is over 1024 bytes";

    } else if (!ngx_http_code_router_form_type(r)) {
        status = NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
        err = "the body must be application/x-www-form-urlencoded "
              "with a store field";
    }

    if (status) {
        /* Before the answer: a body left unread would be parsed as the
         * next request on a keep-alive connection. */
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_code_router_receive_error(r, status, err);
    }

    job = ngx_pcalloc(r->pool, sizeof(ngx_http_code_router_receive_t));
    if (job == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    job->code = *code;
    job->zone = crlcf->scans;
    ngx_http_set_ctx(r, job, ngx_http_code_router_module);

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                          ngx_http_code_router_receive_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_code_router_receive_body(ngx_http_request_t *r)
{
    u_char                          *body;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_http_code_router_receive_t  *job;

    job = ngx_http_get_module_ctx(r, ngx_http_code_router_module);

    body = ngx_http_code_router_form_read(r, &len);

    if (body == NULL) {
        ngx_http_finalize_request(r, len ? NGX_HTTP_INTERNAL_SERVER_ERROR
            : ngx_http_code_router_receive_error(r,
                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                  "the body is over 1024 bytes"));
        return;
    }

    rc = ngx_http_code_router_receive_decide(r, job, body, len);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* The form's ids, the code (a genuine case or pallet), then the first
 * receipt in the table, or the write: NGX_DONE (the thread answers), or
 * the answer's rc. */
static ngx_int_t
ngx_http_code_router_receive_decide(ngx_http_request_t *r,
    ngx_http_code_router_receive_t *job, u_char *body, size_t len)
{
    int                               kids;
    size_t                            n;
    cr_store_t                       *st;
    cr_form_rc_t                      frc;
    ngx_thread_task_t                *task;
    ngx_http_code_router_decision_t  *d;
    ngx_http_code_router_srv_conf_t  *crscf;

    frc = cr_form_field((char *) body, len, "store", 5, job->asked.store,
                        CR_RECEIPT_ID_MAX, &n);

    if (frc != CR_FORM_OK || cr_valid_id(job->asked.store, n) != NULL) {
        return ngx_http_code_router_receive_error(r, NGX_HTTP_BAD_REQUEST,
                   "store= must be an id: 1 to 64 letters, digits, '.', "
                   "'_' or '-'");
    }

    job->asked.store_len = (uint8_t) n;

    frc = cr_form_field((char *) body, len, "dealer", 6, job->asked.dealer,
                        CR_RECEIPT_ID_MAX, &n);

    if (frc == CR_FORM_MISSING) {
        n = 0;

    } else if (frc != CR_FORM_OK || cr_valid_id(job->asked.dealer, n)) {
        return ngx_http_code_router_receive_error(r, NGX_HTTP_BAD_REQUEST,
                   "dealer= must be an id: 1 to 64 letters, digits, '.', "
                   "'_' or '-'");
    }

    job->asked.dealer_len = (uint8_t) n;

    d = ngx_palloc(r->pool, sizeof(ngx_http_code_router_decision_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* No scan: a store's receipt is not a consumer's look at the code. */
    if (ngx_http_code_router_decide(r, &job->code, CR_SCAN_NONE, d)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (d->out == CR_OUT_MALFORMED) {
        return ngx_http_code_router_receive_error(r, NGX_HTTP_BAD_REQUEST,
                   "not a code: wrong length or characters");
    }

    if (!d->verified || d->out == CR_OUT_RETIRED) {
        return ngx_http_code_router_receive_error(r, NGX_HTTP_NOT_FOUND,
                   "not a genuine code in service");
    }

    st = d->bound ? ngx_http_code_router_db_store(r) : NULL;
    kids = st ? cr_store_has_children(st, d->kid, d->serial) : -1;

    if (kids < 0 || ngx_http_code_router_receipts_ready(job->zone) != NGX_OK)
    {
        return ngx_http_code_router_receive_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE,
                   "receipts cannot be recorded now; retry");
    }

    /* Only a code with codes packed into it: an item is received with
     * its case, and a receipt of it would activate nothing. */
    if (kids == 0) {
        return ngx_http_code_router_receive_error(r, NGX_HTTP_CONFLICT,
                   "not a case or pallet: no codes are packed into this "
                   "code (a parents file names its children)");
    }

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    ngx_memcpy(job->asked.fp, crscf->ring->keys[d->kid].fp,
               CR_SCANS_FP_LEN);
    job->asked.kid = (uint8_t) d->kid;
    job->asked.serial = d->serial;
    job->asked.at = ngx_time();

    /* Received before (the code, or its pallet): the first receipt, with
     * no write. */
    if (ngx_http_code_router_receipt_find(job->zone, &job->asked,
                                          d->b.parents, d->b.nparents,
                                          &job->r)
        == NGX_OK)
    {
        ngx_http_code_router_receipt_counted(job->zone, &job->r,
                                             &job->asked, 0);
        return ngx_http_code_router_receive_answer(r, job);
    }

    /* No room: refused before it is made durable, never dropped after. */
    if (!ngx_http_code_router_receipt_room(job->zone, job->asked.fp)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "code router: no room for a receipt of key id %ui "
                      "serial %uL: raise code_router_receipts max=",
                      (ngx_uint_t) job->asked.kid, job->asked.serial);
        return ngx_http_code_router_receive_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE,
                   "the receipts table is full; retry later");
    }

    /* The ledger decides, when the zone has one; else the scan store. */
    job->ledger = ngx_http_code_router_receipts_ledger(job->zone);
    job->sc = job->ledger ? NULL
                          : ngx_http_code_router_scans_store(job->zone);

    if (job->ledger == NULL && job->sc == NULL) {
        return ngx_http_code_router_receive_error(r,
                   NGX_HTTP_SERVICE_UNAVAILABLE,
                   "the scan store is not open; retry");
    }

    job->r = job->asked;

    task = ngx_thread_task_alloc(r->pool, 0);
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task->ctx = job;
    task->event.data = r;
    task->event.handler = ngx_http_code_router_receive_done;

#if (NGX_THREADS)
    {
        ngx_str_t           name = ngx_string("default");
        ngx_thread_pool_t  *tp;

        task->handler = ngx_http_code_router_receive_thread;
        tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle, &name);

        if (tp == NULL || ngx_thread_task_post(tp, task) != NGX_OK) {
            return ngx_http_code_router_receive_error(r,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "receipts cannot be recorded now; retry");
        }
    }
#else
    job->rc = cr_scans_receive(job->sc, &job->r);
    ngx_post_event(&task->event, &ngx_posted_events);
#endif

    r->main->blocked++;
    r->main->count++;

    return NGX_DONE;
}


#if (NGX_THREADS)

static void
ngx_http_code_router_receive_ledger(ngx_http_code_router_receive_t *job)
{
    char                 store[CR_RECEIPT_ID_MAX + 1];
    char                 dealer[CR_RECEIPT_ID_MAX + 1];
    cr_ledger_conn_t    *c;
    cr_ledger_code_t     code;
    cr_ledger_receipt_t  one;

    c = cr_ledger_conn_new((char *) job->ledger->data, CR_RECEIVE_MS);
    if (c == NULL) {
        job->rc = -1;
        ngx_cpystrn((u_char *) job->err, (u_char *) "out of memory",
                    sizeof(job->err));
        return;
    }

    ngx_memcpy(code.fp, job->asked.fp, CR_SCANS_FP_LEN);
    code.kid = job->asked.kid;
    code.serial = job->asked.serial;
    ngx_cpystrn((u_char *) store, (u_char *) job->asked.store,
                (size_t) job->asked.store_len + 1);
    ngx_cpystrn((u_char *) dealer, (u_char *) job->asked.dealer,
                (size_t) job->asked.dealer_len + 1);

    job->rc = cr_ledger_receive(c, &code, store, dealer,
                                cr_ledger_now_us() + CR_RECEIVE_MS * 1000,
                                &one);

    if (job->rc == 0) {
        ngx_http_code_router_receipt_from_ledger(&job->r, &one);
        job->rc = one.fresh ? CR_RECEIPT_NEW : CR_RECEIPT_BEFORE;

    } else {
        ngx_cpystrn((u_char *) job->err, (u_char *) cr_ledger_error(c),
                    sizeof(job->err));
        job->rc = -1;
    }

    cr_ledger_conn_free(c);
}


/* In the pool: the durable write (an fsync), or the ledger's statement
 * on a connection of its own (receipts are rare: a connection a receipt
 * costs a few milliseconds, and no connection is shared by threads). */
static void
ngx_http_code_router_receive_thread(void *data, ngx_log_t *log)
{
    ngx_http_code_router_receive_t  *job = data;

    (void) log;

    if (job->ledger) {
        ngx_http_code_router_receive_ledger(job);
        return;
    }

    job->rc = cr_scans_receive(job->sc, &job->r);

    if (job->rc < 0) {
        ngx_cpystrn((u_char *) job->err, (u_char *) cr_scans_error(job->sc),
                    sizeof(job->err));
    }
}

#endif


/* Back in the event loop: the table, then the answer. */
static void
ngx_http_code_router_receive_done(ngx_event_t *ev)
{
    ngx_int_t                        rc;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_code_router_receive_t  *job;

    r = ev->data;
    c = r->connection;
    job = ngx_http_get_module_ctx(r, ngx_http_code_router_module);

    r->main->blocked--;
    r->main->count--;

    if (job->rc != CR_RECEIPT_NEW && job->rc != CR_RECEIPT_BEFORE) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "code router: a receipt cannot be stored: %s",
                      job->err);
        rc = ngx_http_code_router_receive_error(r,
                 NGX_HTTP_SERVICE_UNAVAILABLE,
                 "receipts cannot be recorded now; retry");

    } else if (ngx_http_code_router_receipt_add(job->zone, &job->r,
                                                &job->asked,
                                                job->rc == CR_RECEIPT_NEW,
                                                c->log)
               != NGX_OK)
    {
        rc = ngx_http_code_router_receive_error(r,
                 NGX_HTTP_SERVICE_UNAVAILABLE,
                 "the receipts table is full; retry later");

    } else {
        rc = ngx_http_code_router_receive_answer(r, job);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* The first receipt: 200 "received" (this store's), or 409 "diverted"
 * (another store's, logged). */
static ngx_int_t
ngx_http_code_router_receive_answer(ngx_http_request_t *r,
    ngx_http_code_router_receive_t *job)
{
    u_char        *body, *p;
    size_t         size;
    ngx_uint_t     diverted;
    cr_receipt_t  *f;

    f = &job->r;

    diverted = f->store_len != job->asked.store_len
               || ngx_memcmp(f->store, job->asked.store, f->store_len) != 0;

    if (diverted) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "code router: diverted: store \"%*s\" received "
                      "key id %ui serial %uL, first received by store "
                      "\"%*s\" (dealer \"%*s\")",
                      (size_t) job->asked.store_len, job->asked.store,
                      (ngx_uint_t) job->asked.kid, job->asked.serial,
                      (size_t) f->store_len, f->store,
                      (size_t) f->dealer_len, f->dealer);
    }

    /* ids are [A-Za-z0-9._-]: nothing to escape. */
    size = 256 + 2 * CR_RECEIPT_ID_MAX + 2 * NGX_INT64_LEN;

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"status\":\"%s\",\"kid\":%ui,\"serial\":%uL",
                    diverted ? "diverted" : "received",
                    (ngx_uint_t) job->asked.kid, job->asked.serial);
    /* The receipt that covers it: the code's own, or its pallet's. */
    if (f->kid != job->asked.kid || f->serial != job->asked.serial) {
        p = ngx_sprintf(p, ",\"by\":{\"kid\":%ui,\"serial\":%uL}",
                        (ngx_uint_t) f->kid, f->serial);
    }

    p = ngx_sprintf(p, ",\"store\":\"%*s\"", (size_t) f->store_len,
                    f->store);

    if (f->dealer_len) {
        p = ngx_sprintf(p, ",\"dealer\":\"%*s\"", (size_t) f->dealer_len,
                        f->dealer);
    } else {
        p = ngx_cpymem(p, ",\"dealer\":null", 14);
    }

    p = ngx_http_code_router_json_time(p, "received_at", f->at, 0);
    p = ngx_cpymem(p, "}\n", 2);

    return ngx_http_code_router_send_body(r, "application/json",
                                          diverted ? NGX_HTTP_CONFLICT
                                                   : NGX_HTTP_OK,
                                          body, p - body);
}


static ngx_int_t
ngx_http_code_router_receive_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *err)
{
    u_char  *body, *p;
    size_t   n;

    n = ngx_strlen(err);

    body = ngx_pnalloc(r->pool, 64 + n);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* err is a literal of ours: no quote or backslash. */
    p = ngx_sprintf(body, "{\"status\":\"error\",\"error\":\"%*s\"}\n", n,
                    err);

    return ngx_http_code_router_send_body(r, "application/json", status,
                                          body, p - body);
}
