/*
 * The PIN check (暗码查询): code_router_verify.
 *
 *   GET  .../CODE           the page for the code, with a PIN form
 *   POST .../CODE  pin=...  the PIN checked: genuine (the first right
 *                           PIN), verified_before, wrong_pin or locked
 *
 * and, from a code_router_api location, POST .../CODE/verify (always
 * JSON).  Right PINs are counted in the scan zone and its store (a count
 * and a first time of their own, cr_scans.h); wrong PINs are limited by
 * cr_guard's policy, whose state lives in the server's
 * code_router_pin_guard zone, shared by every worker: the codes' budgets
 * and the (code, address) records apart, nothing that limits a guess
 * ever dropped for room.  docs/verify.md has the rules and their odds.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_form.h"
#include "cr_json.h"
#include "cr_ledger.h"
#include "cr_pin.h"
#include "cr_valid.h"
#include "ngx_http_code_router.h"


/* fp | kid | serial BE40 (a code's budget), then an address: its kind
 * and up to 8 bytes (an IPv4 address, an IPv6 /64, a buyer's hash). */
#define CR_GUARD_ID_LEN       (CR_SCANS_FP_LEN + 1 + 5 + 1 + 8)

/* An API buyer id: at most this many bytes (a hashed openid is 64 hex). */
#define CR_GUARD_BUYER_MAX    128

/* A full zone looks at this many codes' records, least recently spent
 * first, for one whose bucket is full again (it says what no record
 * says). */
#define CR_GUARD_SCAN         8

/* A full zone answers "locked": say so, at most this often. */
#define CR_GUARD_FULL_LOG_S   60


typedef enum {
    CR_VER_NONE = 0,                    /* GET: the form */
    CR_VER_GENUINE,
    CR_VER_VERIFIED_BEFORE,
    CR_VER_WRONG_PIN,
    CR_VER_LOCKED,
    CR_VER_MALFORMED_PIN,
    CR_VER_N
} ngx_http_code_router_ver_e;


/* The guard zone's two kinds of record, each with its own tree and its
 * own share of the zone, so that a flood of one never crowds out the
 * other. */
typedef enum {
    CR_GUARD_CODE = 0,                  /* a code's budget */
    CR_GUARD_ADDR,                      /* a (code, address) record */
    CR_GUARD_KINDS
} ngx_http_code_router_guard_kind_e;

typedef struct {
    ngx_rbtree_t                  rbtree[CR_GUARD_KINDS];
    ngx_rbtree_node_t             sentinel[CR_GUARD_KINDS];
    ngx_queue_t                   lru;          /* codes, least recently
                                                 * spent last */
    ngx_atomic_t                  room[CR_GUARD_KINDS];  /* records that
                                                 * may still be made */
    u_char                        buyer_key[CR_GUARD_BUYER_KEY_LEN];
    time_t                        full_logged;
    ngx_atomic_t                  outcome[CR_VER_N];
    ngx_atomic_t                  records;
    ngx_atomic_t                  evicted;      /* full buckets dropped */
    ngx_atomic_t                  full;         /* locked: no room */
} ngx_http_code_router_guard_sh_t;

typedef struct {
    ngx_rbtree_node_t             node;         /* key: a hash of id */
    ngx_queue_t                   lru;          /* codes only */
    u_char                        id[CR_GUARD_ID_LEN];  /* zero-padded */
    union {
        cr_guard_addr_t           addr;
        cr_guard_code_t           code;
    } u;
} ngx_http_code_router_guard_node_t;

/* The slab allocator gives a record a 128-byte slot (docs/verify.md and
 * README say so): 32 to a 4 KB page. */
#define CR_GUARD_SLOT         128

#if (NGX_PTR_SIZE == 8)
_Static_assert(sizeof(ngx_http_code_router_guard_node_t) > CR_GUARD_SLOT / 2
               && sizeof(ngx_http_code_router_guard_node_t) <= CR_GUARD_SLOT,
               "a guard record takes a 128-byte slab slot");
#endif

typedef struct {
    ngx_slab_pool_t                  *shpool;
    ngx_http_code_router_guard_sh_t  *sh;
    cr_keyring_t                     *brand;    /* configuration: the
                                                 * first verify's keys */
    ngx_uint_t                        shared;   /* ... and another's */
} ngx_http_code_router_guard_t;


/* A key whose right PINs some location counts, and the zone it counts
 * them in (configuration only): one key, one zone. */
typedef struct {
    u_char                        fp[CR_SCANS_FP_LEN];
    ngx_uint_t                    kid;
    ngx_http_code_router_zone_t  *zone;
} ngx_http_code_router_verifier_t;


/* Between the handler and the body's arrival, and the ledger's answer
 * (no redirect in between). */
typedef struct {
    ngx_str_t                     code;
    ngx_uint_t                    api;
    ngx_str_t                     request;      /* the form's, or "" */
    ngx_http_code_router_decision_t  *d;
    ngx_str_t                     buyer;        /* the API's buyer= */
    ngx_uint_t                    refuse;       /* 413, 415 once read */
    const char                   *refuse_err;
} ngx_http_code_router_verify_ctx_t;


static ngx_int_t ngx_http_code_router_verify_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_code_router_verify_body_check(
    ngx_http_request_t *r, const char **err);
static ngx_uint_t ngx_http_code_router_verify_cross_site(
    ngx_http_request_t *r);
static void ngx_http_code_router_verify_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_verify_pin(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, u_char *pin, size_t len);
static ngx_int_t ngx_http_code_router_verify_counted(ngx_http_request_t *r,
    ngx_int_t rc, cr_scan_t *v);
static ngx_int_t ngx_http_code_router_verify_finish(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry);
static const char *ngx_http_code_router_verify_buyer(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, u_char *body, size_t len);
static ngx_http_code_router_ver_e ngx_http_code_router_verify_guard(
    ngx_http_request_t *r, ngx_http_code_router_verify_ctx_t *ctx,
    ngx_http_code_router_decision_t *d, const u_char *pin, size_t len,
    int64_t *retry);
static void ngx_http_code_router_guard_id(ngx_http_request_t *r,
    ngx_http_code_router_guard_t *g, ngx_http_code_router_verify_ctx_t *ctx,
    ngx_http_code_router_decision_t *d, u_char *code_id, u_char *addr_id);
static ngx_http_code_router_guard_node_t *ngx_http_code_router_guard_find(
    ngx_http_code_router_guard_t *g, ngx_uint_t kind, u_char *id);
static ngx_http_code_router_guard_node_t *ngx_http_code_router_guard_make(
    ngx_http_code_router_guard_t *g, ngx_uint_t kind, u_char *id,
    time_t now);
static void ngx_http_code_router_guard_drop(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, ngx_http_code_router_guard_node_t *gn);
static void ngx_http_code_router_guard_brand(ngx_conf_t *cf,
    ngx_http_code_router_srv_conf_t *cscf);
static ngx_int_t ngx_http_code_router_verify_vars(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry);
static ngx_int_t ngx_http_code_router_verify_answer(ngx_http_request_t *r,
    ngx_uint_t api, ngx_http_code_router_decision_t *d,
    ngx_http_code_router_ver_e ver, cr_scan_t *v, int64_t retry);
static ngx_int_t ngx_http_code_router_verify_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_code_router_decision_t *d,
    ngx_http_code_router_ver_e ver, cr_scan_t *v, int64_t retry);
static ngx_int_t ngx_http_code_router_verify_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *err);
static ngx_int_t ngx_http_code_router_verify_send(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
static ngx_int_t ngx_http_code_router_push_header(ngx_http_request_t *r,
    const char *key, u_char *value, size_t len);
static char *ngx_http_code_router_verify_zone(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *conf, const char *what);
static char *ngx_http_code_router_verify_action(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *conf);
static ngx_int_t ngx_http_code_router_guard_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_code_router_guard_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


/* A PIN verdict: its name ($code_router_verification, the JSON's
 * "verification") and its status; one row each. */
typedef struct {
    ngx_str_t                     name;
    ngx_uint_t                    status;
} ngx_http_code_router_verdict_t;

static const ngx_http_code_router_verdict_t
    ngx_http_code_router_verdicts[CR_VER_N] =
{
    [CR_VER_NONE] = { ngx_string(""), NGX_HTTP_OK },            /* the form */
    [CR_VER_GENUINE] = { ngx_string("genuine"), NGX_HTTP_OK },
    [CR_VER_VERIFIED_BEFORE] = { ngx_string("verified_before"),
                                 NGX_HTTP_OK },
    [CR_VER_WRONG_PIN] = { ngx_string("wrong_pin"), NGX_HTTP_FORBIDDEN },
    [CR_VER_LOCKED] = { ngx_string("locked"), NGX_HTTP_TOO_MANY_REQUESTS },
    [CR_VER_MALFORMED_PIN] = { ngx_string("malformed_pin"),
                               NGX_HTTP_BAD_REQUEST }
};

static const cr_guard_policy_t  ngx_http_code_router_policy =
    CR_GUARD_DEFAULT;


static ngx_int_t
ngx_http_code_router_verify_handler(ngx_http_request_t *r)
{
    ngx_str_t                         v;
    ngx_http_code_router_loc_conf_t  *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (ngx_http_complex_value(r, crlcf->verify.code, &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_code_router_last_segment(&v);

    return ngx_http_code_router_verify_start(r, &v, 0);
}


/*
 * GET shows the code; POST reads the body, then checks the PIN.  api:
 * JSON whatever Accept says, and POST only (POST .../CODE/verify).
 */
ngx_int_t
ngx_http_code_router_verify_start(ngx_http_request_t *r, ngx_str_t *code,
    ngx_uint_t api)
{
    ngx_int_t                           rc;
    ngx_uint_t                          status;
    const char                         *err;
    ngx_http_code_router_decision_t    *d;
    ngx_http_code_router_verify_ctx_t  *ctx;
    ngx_http_code_router_loc_conf_t    *crlcf;
    ngx_http_code_router_srv_conf_t    *cscf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    /* An API location may lack what a verify location must have. */
    if (api && (cscf->guard == NULL || crlcf->scans == NULL)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "code router: POST .../CODE/verify needs "
                      "\"code_router_pin_guard\" and \"code_router_scans\"");
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_code_router_verify_error(r, NGX_HTTP_NOT_FOUND,
                   "PIN verification is not configured here");
    }

    if (r->method == NGX_HTTP_POST) {
        status = ngx_http_code_router_verify_body_check(r, &err);

        /* Over HTTP/1.x nginx's discard reads the body after the answer,
         * the connection kept alive.  An HTTP/2 stream answered before
         * its body ends is reset (discarding only skips its DATA), and
         * clients drop the answer: there the body is read first (nginx
         * keeps it within client_max_body_size). */
        if (status && r->http_version < NGX_HTTP_VERSION_20) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_code_router_verify_error(r, status, err);
        }

        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_code_router_verify_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->refuse = status;
        ctx->refuse_err = err;
        ctx->code = *code;
        ctx->api = api;
        ngx_str_null(&ctx->buyer);
        ngx_http_set_ctx(r, ctx, ngx_http_code_router_module);

        /* One buffer: the body is at most CR_FORM_MAX bytes. */
        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r,
                                           ngx_http_code_router_verify_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    /* Before any other answer: a body left unread would be parsed as
     * the next request on a keep-alive connection. */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (api || !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_code_router_allow(r, api ? "POST" : "GET, HEAD, POST")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_code_router_verify_error(r, NGX_HTTP_NOT_ALLOWED,
                   api ? "method not allowed: POST .../CODE/verify"
                       : "method not allowed: GET, HEAD or POST");
    }

    d = ngx_palloc(r->pool, sizeof(ngx_http_code_router_decision_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* The page is no scan: the scan that led here was counted. */
    if (ngx_http_code_router_decide(r, code, CR_SCAN_READ, d) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_code_router_verify_vars(r, d, CR_VER_NONE, NULL, 0)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_code_router_verify_answer(r, 0, d, CR_VER_NONE, NULL, 0);
}


/* Before reading: the size announced, and the type.  0 if the body is
 * a PIN form to read; else the status to refuse it with, and *err. */
static ngx_uint_t
ngx_http_code_router_verify_body_check(ngx_http_request_t *r,
    const char **err)
{
    ngx_str_t        *ct;
    ngx_uint_t        status;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    status = 0;
    *err = NULL;

    if (r->headers_in.content_length_n > CR_FORM_MAX) {
        status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        *err = "the body is over 1024 bytes";

    } else {
        ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                        : NULL;

        /* The type, then nothing or parameters (e.g. "; charset=UTF-8"). */
        if (ct == NULL || ct->len < form.len
            || ngx_strncasecmp(ct->data, form.data, form.len) != 0
            || (ct->len > form.len && ct->data[form.len] != ';'
                && ct->data[form.len] != ' ' && ct->data[form.len] != '\t'))
        {
            status = NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
            *err = "the body must be application/x-www-form-urlencoded "
                   "with a pin field";
        }
    }

    return status;
}


/*
 * A form posted from another site's page, by the browser's word, as
 * frameworks' cross-origin rules read it (Go's CrossOriginProtection):
 * Sec-Fetch-Site decides if sent (same-origin and none pass); else an
 * Origin must name this Host; a request with neither (an old browser, a
 * program) passes: no browser sent it from another site's page.
 */
static ngx_uint_t
ngx_http_code_router_verify_cross_site(ngx_http_request_t *r)
{
    u_char           *p, *last;
    ngx_str_t        *site, *origin, *host;
    ngx_table_elt_t  *h;

    h = ngx_http_code_router_header_in(r, "Sec-Fetch-Site");

    if (h) {
        site = &h->value;

        return !((site->len == 11
                  && ngx_strncasecmp(site->data, (u_char *) "same-origin",
                                     11) == 0)
                 || (site->len == 4
                     && ngx_strncasecmp(site->data, (u_char *) "none", 4)
                        == 0));
    }

    h = ngx_http_code_router_header_in(r, "Origin");

    if (h == NULL) {
        return 0;
    }

    origin = &h->value;

    /* scheme://host[:port], against the Host the request was sent to
     * ("null", an opaque origin, matches nothing); without a Host header
     * (an HTTP/2 :authority alone), the server name nginx took from the
     * request, any port. */
    last = origin->data + origin->len;
    p = ngx_strlcasestrn(origin->data, last, (u_char *) "://", 3 - 1);

    if (p == NULL) {
        return 1;
    }

    p += 3;

    if (r->headers_in.host) {
        host = &r->headers_in.host->value;

        return !((size_t) (last - p) == host->len
                 && ngx_strncasecmp(p, host->data, host->len) == 0);
    }

    host = &r->headers_in.server;

    return !(host->len && (size_t) (last - p) >= host->len
             && ngx_strncasecmp(p, host->data, host->len) == 0
             && (p + host->len == last || p[host->len] == ':'));
}


static void
ngx_http_code_router_verify_body(ngx_http_request_t *r)
{
    u_char                             *body, *p;
    size_t                              len;
    ngx_buf_t                          *b;
    ngx_chain_t                        *cl;
    const char                         *err;
    cr_form_rc_t                        frc;
    ngx_http_code_router_verify_ctx_t  *ctx;

    size_t                              rlen;
    u_char                              pin[CR_PIN_DIGITS_MAX + 1];
    u_char                              rid[CR_LEDGER_REQUEST_MAX + 1];

    ctx = ngx_http_get_module_ctx(r, ngx_http_code_router_module);

    /* Over HTTP/2, a body refused before reading, now read. */
    if (ctx->refuse) {
        ngx_http_finalize_request(r,
            ngx_http_code_router_verify_error(r, ctx->refuse,
                                              ctx->refuse_err));
        return;
    }

    /* The page's form, posted from another site's page: every visitor of
     * that page would be a fresh guessing address.  The API is for
     * backends (no browser, its own key).  Refused once the body is read
     * (at most CR_FORM_MAX bytes): an HTTP/2 stream answered before its
     * body ends is reset, and clients drop the answer. */
    if (!ctx->api && ngx_http_code_router_verify_cross_site(r)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "code router: a cross-site PIN form refused");

        ngx_http_finalize_request(r,
            ngx_http_code_router_verify_error(r, NGX_HTTP_FORBIDDEN,
                "a PIN form posted from another site is refused: post it "
                "from this site's page"));
        return;
    }

    len = 0;

    if (r->request_body == NULL) {
        goto read;
    }

    /* Chunked bodies announce no size: count what came. */
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            len += CR_FORM_MAX + 1;     /* only a big body goes to a file */
            break;
        }

        len += b->last - b->pos;
    }

read:

    if (len > CR_FORM_MAX) {
        ngx_http_finalize_request(r,
            ngx_http_code_router_verify_error(r,
                NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                "the body is over 1024 bytes"));
        return;
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body;

    /* An empty buffer (no body, a chunked body's end) may have no
     * memory at all: memcpy() must not see its NULL. */
    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        if (cl->buf->last > cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    if (ctx->api) {
        err = ngx_http_code_router_verify_buyer(r, ctx, body, len);
        if (err) {
            ngx_http_finalize_request(r,
                ngx_http_code_router_verify_error(r, NGX_HTTP_BAD_REQUEST,
                                                  err));
            return;
        }
    }

    frc = cr_form_field((char *) body, len, "pin", 3, (char *) pin,
                        sizeof(pin), &len);

    if (frc == CR_FORM_TOO_LONG) {
        /* Longer than any PIN: malformed, as a PIN; not a form error. */
        len = sizeof(pin);

    } else if (frc != CR_FORM_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "code router: a PIN form that is not one: %s",
                      cr_form_rc_name(frc));

        ngx_http_finalize_request(r,
            ngx_http_code_router_verify_error(r, NGX_HTTP_BAD_REQUEST,
                frc == CR_FORM_MISSING  ? "no pin field in the form" :
                frc == CR_FORM_REPEATED ? "the pin field is repeated" :
                frc == CR_FORM_NUL      ? "a NUL byte in the form"
                                        : "a bad %-escape in the form"));
        return;
    }

    /* The request id (the page's nonce, the API caller's): a retry of
     * one request counts once in the ledger. */
    frc = cr_form_field((char *) body, p - body, "request", 7, (char *) rid,
                        sizeof(rid), &rlen);

    if (frc == CR_FORM_OK && cr_ledger_request_valid((char *) rid, rlen)) {
        ctx->request.data = ngx_pnalloc(r->pool, rlen);
        if (ctx->request.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(ctx->request.data, rid, rlen);
        ctx->request.len = rlen;
        ngx_http_code_router_ledger_set_request(r, &ctx->request);

    } else if (frc != CR_FORM_MISSING) {
        ngx_http_finalize_request(r,
            ngx_http_code_router_verify_error(r, NGX_HTTP_BAD_REQUEST,
                "the request field must be 1 to 64 of 0-9 A-Z a-z _ -, "
                "once"));
        return;
    }

    ngx_http_finalize_request(r,
        ngx_http_code_router_verify_pin(r, ctx, pin, len));
}


/* One decision, one exit: the code, then the PIN, then the count. */
static ngx_int_t
ngx_http_code_router_verify_pin(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, u_char *pin, size_t len)
{
    int64_t                            retry;
    cr_scan_t                          v;
    ngx_http_code_router_ver_e         ver;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_decision_t   *d;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    d = ngx_palloc(r->pool, sizeof(ngx_http_code_router_decision_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* A PIN check is no scan, nor a read of one: it is counted in
     * code_router_pin_checks_total (below), not with the scans. */
    if (ngx_http_code_router_decide(r, &ctx->code, CR_SCAN_NONE, d)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&v, sizeof(cr_scan_t));
    retry = 0;
    ver = CR_VER_NONE;

    /* No PIN of a code that is not genuine, and none while the stores
     * cannot say what they hold: "issued" is no PIN verdict. */
    if (d->out == CR_OUT_ISSUED) {
        d->out = CR_OUT_UNAVAILABLE;
    }

    if (!d->verified || d->out == CR_OUT_UNAVAILABLE) {
        goto answer;
    }

    if (!cr_pin_well_formed((char *) pin, len, crlcf->verify.digits)) {
        ver = CR_VER_MALFORMED_PIN;
        goto answer;
    }

    ver = ngx_http_code_router_verify_guard(r, ctx, d, pin, len, &retry);

    if (ver == CR_VER_GENUINE) {
        /* Said only once the ledger holds it (durable, and the same on
         * every node): the answer comes back to verify_counted(). */
        ctx->d = d;

        if (ctx->api == CR_API_REDEEM) {
            return ngx_http_code_router_ledger_redeem(r, d, &ctx->request,
                                                      crlcf->scans);
        }

        if (ngx_http_code_router_ledger_verify(r, d, &ctx->request,
                                               crlcf->scans,
                                               ngx_http_code_router_verify_counted)
            == NGX_DONE)
        {
            return NGX_DONE;
        }

        /* A right PIN that cannot be counted is not an answer: "genuine"
         * twice for one code would hide a copy. */
        d->out = CR_OUT_UNAVAILABLE;
        ver = CR_VER_NONE;
        goto answer;
    }

answer:

    ctx->d = d;

    return ngx_http_code_router_verify_finish(r, ctx, ver, &v, retry);
}


/* The ledger's answer to a right PIN: the count, or unavailable. */
static ngx_int_t
ngx_http_code_router_verify_counted(ngx_http_request_t *r, ngx_int_t rc,
    cr_scan_t *v)
{
    cr_scan_t                           none;
    ngx_http_code_router_verify_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_code_router_module);

    if (rc != NGX_OK) {
        ctx->d->out = CR_OUT_UNAVAILABLE;
        ngx_memzero(&none, sizeof(cr_scan_t));

        return ngx_http_code_router_verify_finish(r, ctx, CR_VER_NONE,
                                                  &none, 0);
    }

    return ngx_http_code_router_verify_finish(r, ctx,
               v->count > 1 ? CR_VER_VERIFIED_BEFORE : CR_VER_GENUINE, v, 0);
}


/* The one exit of a PIN check: variables, metrics, log, answer. */
static ngx_int_t
ngx_http_code_router_verify_finish(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry)
{
    ngx_http_code_router_guard_t      *g;
    ngx_http_code_router_srv_conf_t   *cscf;
    ngx_http_code_router_decision_t   *d;

    d = ctx->d;

    /* The count and the first time are the right PIN's to know: a wrong
     * or locked one (from anyone holding the public code) is told
     * neither. */
    if (ver != CR_VER_GENUINE && ver != CR_VER_VERIFIED_BEFORE) {
        v = NULL;
    }

    if (ngx_http_code_router_verify_vars(r, d, ver, v, retry) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ver != CR_VER_NONE) {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
        g = cscf->guard->data;
        (void) ngx_atomic_fetch_add(&g->sh->outcome[ver], 1);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "code router: PIN for %*s: %V", (size_t) CR_CODE_LEN,
                      d->code, &ngx_http_code_router_verdicts[ver].name);
    }

    return ngx_http_code_router_verify_answer(r, ctx->api, d, ver, v, retry);
}


/*
 * The API's buyer= (a backend's opaque id of its user, e.g. the openid
 * hashed): the guard's address for this check, so that the backend's
 * users do not share its one address.  Only the API reads it: its
 * location is the backend's (access control, conf/api.conf); on the
 * public page anyone could choose a fresh "address" with it.  Without
 * the field the address is the backend's.  Returns NULL or the error.
 */
static const char *
ngx_http_code_router_verify_buyer(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, u_char *body, size_t len)
{
    size_t        n;
    cr_form_rc_t  frc;

    u_char        buyer[CR_GUARD_BUYER_MAX];

    frc = cr_form_field((char *) body, len, "buyer", 5, (char *) buyer,
                        sizeof(buyer), &n);

    switch (frc) {

    case CR_FORM_OK:
        break;

    case CR_FORM_MISSING:
        return NULL;

    case CR_FORM_TOO_LONG:
        return "the buyer field is over 128 bytes";

    case CR_FORM_REPEATED:
        return "the buyer field is repeated";

    default:                    /* the pin's reading names the rest */
        return NULL;
    }

    if (n == 0) {
        return "the buyer field is empty";
    }

    ctx->buyer.data = ngx_pnalloc(r->pool, n);
    if (ctx->buyer.data == NULL) {
        return "no memory";
    }

    ngx_memcpy(ctx->buyer.data, buyer, n);
    ctx->buyer.len = n;

    return NULL;
}


/*
 * The policy (cr_guard) around the PIN check, in one critical section of
 * the guard zone, so that two workers cannot both let a locked address
 * through.  Before the PIN is looked at, the zone must have room for what
 * a wrong one records: a check that could not be counted would be a free
 * guess.  Returns CR_VER_GENUINE for a right PIN (its count is the
 * caller's), CR_VER_WRONG_PIN or CR_VER_LOCKED with *retry set.
 */
static ngx_http_code_router_ver_e
ngx_http_code_router_verify_guard(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx,
    ngx_http_code_router_decision_t *d, const u_char *pin, size_t len,
    int64_t *retry)
{
    time_t                              now;
    int64_t                             token;
    cr_pin_rc_t                         prc;
    cr_guard_addr_t                     clean;
    cr_guard_code_t                     full;
    ngx_http_code_router_ver_e          ver;
    ngx_http_code_router_guard_t       *g;
    ngx_http_code_router_srv_conf_t    *cscf;
    ngx_http_code_router_loc_conf_t    *crlcf;
    ngx_http_code_router_guard_node_t  *cn, *an;

    u_char                              code_id[CR_GUARD_ID_LEN];
    u_char                              addr_id[CR_GUARD_ID_LEN];

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    g = cscf->guard->data;

    ngx_http_code_router_guard_id(r, g, ctx, d, code_id, addr_id);
    ngx_memzero(&clean, sizeof(clean));
    ngx_memzero(&full, sizeof(full));
    now = ngx_time();
    *retry = 0;

    ngx_shmtx_lock(&g->shpool->mutex);

    cn = ngx_http_code_router_guard_find(g, CR_GUARD_CODE, code_id);
    an = ngx_http_code_router_guard_find(g, CR_GUARD_ADDR, addr_id);

    *retry = cr_guard_admit(&ngx_http_code_router_policy,
                            an ? &an->u.addr : &clean,
                            cn ? &cn->u.code : &full, now);
    if (*retry) {
        ver = CR_VER_LOCKED;
        goto done;
    }

    if (cn == NULL) {
        cn = ngx_http_code_router_guard_make(g, CR_GUARD_CODE, code_id, now);
        if (cn == NULL) {
            *retry = now + ngx_http_code_router_policy.interval;
            goto full;
        }
    }

    if (an == NULL) {
        an = ngx_http_code_router_guard_make(g, CR_GUARD_ADDR, addr_id, now);

        /* Without room for a new address's record, its wrong PIN is
         * still counted by the code's budget; under pressure it would be
         * a fresh budget: never. */
        token = cr_guard_code_next(&ngx_http_code_router_policy,
                                   &cn->u.code);
        if (an == NULL && token > now) {
            *retry = token;
            goto full;
        }
    }

    prc = cr_pin_check(&cscf->ring->keys[d->kid], d->serial,
                       crlcf->verify.digits, (const char *) pin, len);

    if (prc == CR_PIN_OK) {
        /* A cleared record and a full bucket say what none says. */
        if (an) {
            ngx_http_code_router_guard_drop(g, CR_GUARD_ADDR, an);
        }

        if (!cr_guard_code_kept(&cn->u.code, now)) {
            ngx_http_code_router_guard_drop(g, CR_GUARD_CODE, cn);
        }

        ver = CR_VER_GENUINE;
        goto done;
    }

    /* Wrong (or fail closed): counted for both. */
    ver = CR_VER_WRONG_PIN;

    *retry = cr_guard_wrong(&ngx_http_code_router_policy,
                            an ? &an->u.addr : &clean, &cn->u.code, now);

    ngx_queue_remove(&cn->lru);
    ngx_queue_insert_head(&g->sh->lru, &cn->lru);

    goto done;

full:

    ver = CR_VER_LOCKED;
    (void) ngx_atomic_fetch_add(&g->sh->full, 1);

    if (now - g->sh->full_logged >= CR_GUARD_FULL_LOG_S) {
        g->sh->full_logged = now;
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "code router: the PIN guard zone \"%V\" is full "
                      "(every record limits a guess); new %s answered "
                      "\"locked\" (a bigger zone: docs/verify.md)",
                      &cscf->guard->shm.name,
                      (an == NULL && cn) ? "addresses on codes under "
                                           "pressure are"
                                         : "codes are");
    }

done:

    ngx_shmtx_unlock(&g->shpool->mutex);

    return ver;
}


/*
 * The records' ids: the code as the scan counts know it (the key's
 * fingerprint, kid, serial: two brands' codes never share a record), and
 * with it the client: the API's buyer id, else the address nginx sees
 * after realip.  An IPv6 address counts by its /64: one subscriber gets
 * a /64, and 2^64 addresses must not be 2^64 guessers; an IPv4-mapped
 * one, or one of NAT64's well-known prefix 64:ff9b::/96 (RFC 6052: every
 * IPv4 client behind the translator), as its IPv4 address.
 */
static void
ngx_http_code_router_guard_id(ngx_http_request_t *r,
    ngx_http_code_router_guard_t *g, ngx_http_code_router_verify_ctx_t *ctx,
    ngx_http_code_router_decision_t *d, u_char *code_id, u_char *addr_id)
{
    ngx_uint_t                        i;
    struct sockaddr                  *sa;
    ngx_http_code_router_srv_conf_t  *cscf;
#if (NGX_HAVE_INET6)
    u_char                           *a6;

    static const u_char  nat64[12] = { 0, 0x64, 0xff, 0x9b };
#endif

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    ngx_memzero(code_id, CR_GUARD_ID_LEN);
    ngx_memcpy(code_id, cscf->ring->keys[d->kid].fp, CR_SCANS_FP_LEN);
    code_id[CR_SCANS_FP_LEN] = (u_char) d->kid;

    for (i = 0; i < 5; i++) {
        code_id[CR_SCANS_FP_LEN + 1 + i] = (u_char) (d->serial
                                                     >> (8 * (4 - i)));
    }

    ngx_memcpy(addr_id, code_id, CR_GUARD_ID_LEN);

    sa = r->connection->sockaddr;
    i = CR_SCANS_FP_LEN + 6;

    if (ctx->buyer.len) {
        addr_id[i] = 'b';
        cr_guard_buyer(&addr_id[i + 1], g->sh->buyer_key,
                       (const char *) ctx->buyer.data, ctx->buyer.len);
        return;
    }

    switch (sa->sa_family) {

    case AF_INET:
        addr_id[i] = 4;
        ngx_memcpy(&addr_id[i + 1],
                   &((struct sockaddr_in *) sa)->sin_addr.s_addr, 4);
        break;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        a6 = ((struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) a6)
            || ngx_memcmp(a6, nat64, 12) == 0)
        {
            addr_id[i] = 4;
            ngx_memcpy(&addr_id[i + 1], &a6[12], 4);

        } else {
            addr_id[i] = 6;
            ngx_memcpy(&addr_id[i + 1], a6, 8);
        }

        break;
#endif

    default:                        /* a UNIX socket: one local client */
        addr_id[i] = 1;
        break;
    }
}


/* The record of id in its kind's tree, or NULL.  Zone locked. */
static ngx_http_code_router_guard_node_t *
ngx_http_code_router_guard_find(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, u_char *id)
{
    uint32_t                            hash;
    ngx_int_t                           rc;
    ngx_rbtree_node_t                  *node, *sentinel;
    ngx_http_code_router_guard_node_t  *gn;

    hash = ngx_crc32_short(id, CR_GUARD_ID_LEN);

    node = g->sh->rbtree[kind].root;
    sentinel = g->sh->rbtree[kind].sentinel;

    while (node != sentinel) {
        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        gn = (ngx_http_code_router_guard_node_t *) node;
        rc = ngx_memcmp(id, gn->id, CR_GUARD_ID_LEN);

        if (rc == 0) {
            return gn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * A new record of id, or NULL if its kind's share is used up.  Only a
 * code's record whose bucket is full again is ever dropped for room (it
 * says what no record says): a lock, a spent budget or an address's
 * wrong PIN is never forgotten.  Those looked at that must stay go to
 * the head, so that the next look sees others.  Zone locked.
 */
static ngx_http_code_router_guard_node_t *
ngx_http_code_router_guard_make(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, u_char *id, time_t now)
{
    ngx_uint_t                          i;
    ngx_queue_t                        *q;
    ngx_http_code_router_guard_node_t  *gn;

    for (i = 0; kind == CR_GUARD_CODE && g->sh->room[kind] == 0
                && i < CR_GUARD_SCAN && !ngx_queue_empty(&g->sh->lru); i++)
    {
        q = ngx_queue_last(&g->sh->lru);
        gn = ngx_queue_data(q, ngx_http_code_router_guard_node_t, lru);

        if (cr_guard_code_kept(&gn->u.code, now)) {
            ngx_queue_remove(q);
            ngx_queue_insert_head(&g->sh->lru, q);
            continue;
        }

        ngx_http_code_router_guard_drop(g, kind, gn);
        (void) ngx_atomic_fetch_add(&g->sh->evicted, 1);
    }

    if (g->sh->room[kind] == 0) {
        return NULL;
    }

    gn = ngx_slab_alloc_locked(g->shpool,
                               sizeof(ngx_http_code_router_guard_node_t));
    if (gn == NULL) {
        return NULL;
    }

    ngx_memzero(gn, sizeof(ngx_http_code_router_guard_node_t));
    ngx_memcpy(gn->id, id, CR_GUARD_ID_LEN);
    gn->node.key = ngx_crc32_short(id, CR_GUARD_ID_LEN);

    ngx_rbtree_insert(&g->sh->rbtree[kind], &gn->node);

    if (kind == CR_GUARD_CODE) {
        ngx_queue_insert_head(&g->sh->lru, &gn->lru);
    }

    g->sh->room[kind]--;
    (void) ngx_atomic_fetch_add(&g->sh->records, 1);

    return gn;
}


/* Zone locked. */
static void
ngx_http_code_router_guard_drop(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, ngx_http_code_router_guard_node_t *gn)
{
    if (kind == CR_GUARD_CODE) {
        ngx_queue_remove(&gn->lru);
    }

    ngx_rbtree_delete(&g->sh->rbtree[kind], &gn->node);
    ngx_slab_free_locked(g->shpool, gn);

    g->sh->room[kind]++;
    (void) ngx_atomic_fetch_add(&g->sh->records, -1);
}


static void
ngx_http_code_router_guard_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                  **p;
    ngx_http_code_router_guard_node_t   *n, *t;

    n = (ngx_http_code_router_guard_node_t *) node;

    for ( ;; ) {
        t = (ngx_http_code_router_guard_node_t *) temp;

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            p = (ngx_memcmp(n->id, t->id, CR_GUARD_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

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


/* The variables the page and the log read: the decision's, then the
 * PIN's; times twice, for machines (ISO 8601, UTC) and for people (the
 * brand's zone, zh and en). */
static ngx_int_t
ngx_http_code_router_verify_vars(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry)
{
    u_char                            *p;
    int64_t                            t;
    ngx_int_t                          tz, *index;
    ngx_uint_t                         i;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_main_conf_t  *crmcf;

    static const ngx_http_code_router_var_e  slots[2][3] = {
        { CR_VAR_FIRST_VERIFIED, CR_VAR_FIRST_VERIFIED_ZH,
          CR_VAR_FIRST_VERIFIED_EN },
        { CR_VAR_RETRY_AT, CR_VAR_RETRY_AT_ZH, CR_VAR_RETRY_AT_EN }
    };

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    index = crmcf->var_index;
    tz = crlcf->verify.tz;

    if (ngx_http_code_router_set_vars(r, d) != NGX_OK) {
        return NGX_ERROR;
    }

    cr_set_var(r, index[CR_VAR_VERIFICATION],
               ngx_http_code_router_verdicts[ver].name.data,
               ngx_http_code_router_verdicts[ver].name.len);

    if (ngx_http_code_router_set_num(r, index[CR_VAR_PIN_DIGITS],
                                     crlcf->verify.digits)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* The form's target: a path of the configuration and the canonical
     * code, never the request's own URI (//verify would post elsewhere). */
    if (d->decoded && crlcf->verify.action.len) {
        p = ngx_pnalloc(r->pool, crlcf->verify.action.len + CR_CODE_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, crlcf->verify.action.data, crlcf->verify.action.len);
        ngx_memcpy(p + crlcf->verify.action.len, d->code, CR_CODE_LEN);
        cr_set_var(r, index[CR_VAR_VERIFY_ACTION], p,
                   crlcf->verify.action.len + CR_CODE_LEN);
    }

    if (v && ngx_http_code_router_set_num(r, index[CR_VAR_VERIFICATIONS],
                                          v->count)
             != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < 2; i++) {
        t = (i == 0) ? (v ? v->first : 0) : retry;

        if (t == 0) {
            continue;
        }

        p = ngx_pnalloc(r->pool, 3 * CR_HUMAN_TIME_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        cr_format_time((char *) p, CR_HUMAN_TIME_LEN, t, 0);
        cr_format_human_time((char *) p + CR_HUMAN_TIME_LEN,
                             CR_HUMAN_TIME_LEN, t, (int) tz, 0);
        cr_format_human_time((char *) p + 2 * CR_HUMAN_TIME_LEN,
                             CR_HUMAN_TIME_LEN, t, (int) tz, 1);

        cr_set_var(r, index[slots[i][0]], p, ngx_strlen(p));
        p += CR_HUMAN_TIME_LEN;
        cr_set_var(r, index[slots[i][1]], p, ngx_strlen(p));
        p += CR_HUMAN_TIME_LEN;
        cr_set_var(r, index[slots[i][2]], p, ngx_strlen(p));
    }

    return NGX_OK;
}


/* The page for people, JSON for programs (the API, Accept: JSON). */
static ngx_int_t
ngx_http_code_router_verify_answer(ngx_http_request_t *r, ngx_uint_t api,
    ngx_http_code_router_decision_t *d, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry)
{
    ngx_uint_t                        status, json;
    ngx_table_elt_t                  *accept;
    ngx_http_code_router_loc_conf_t  *crlcf;

    static ngx_str_t  app_json = ngx_string("application/json");

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    status = (ver != CR_VER_NONE)
             ? ngx_http_code_router_verdicts[ver].status
             : ngx_http_code_router_outcomes[d->out].api;

    if (ver == CR_VER_LOCKED) {
        u_char  *p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_code_router_push_header(r, "Retry-After", p,
                ngx_sprintf(p, "%T", (time_t) (retry - ngx_time())) - p)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* Not r->headers_in.accept: that member exists only with
     * NGX_HTTP_HEADERS (--with-compat or HTTP/2), and a plain
     * --add-module build has neither. */
    accept = ngx_http_code_router_header_in(r, "Accept");

    json = api || crlcf->verify.page.len == 0
           || (accept
               && ngx_strlcasestrn(accept->value.data,
                                   accept->value.data + accept->value.len,
                                   app_json.data, app_json.len - 1)
                  != NULL);

    if (json) {
        return ngx_http_code_router_verify_json(r, status, d, ver, v, retry);
    }

    /* The page reads the variables; its location says no-store.  A
     * static page answers GET, with the verdict's status (as error_page
     * makes it): logs and monitoring see a 403, a 429, a 404. */
    if (status != NGX_HTTP_OK) {
        r->err_status = status;
        r->expect_tested = 1;
    }

    if (r->method != NGX_HTTP_HEAD) {
        r->method = NGX_HTTP_GET;
        r->method_name = ngx_http_core_get_method;
    }

    return ngx_http_internal_redirect(r, &crlcf->verify.page, NULL);
}


static ngx_int_t
ngx_http_code_router_verify_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_code_router_decision_t *d, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry)
{
    u_char                           *body, *p;
    size_t                            size;
    ngx_uint_t                        i;
    cr_batch_t                       *bt;
    const char                       *err;
    ngx_http_code_router_loc_conf_t  *crlcf;

    static const ngx_uint_t  facts[] = {
        CR_BATCH_SKU, CR_BATCH_GTIN, CR_BATCH_LOT, CR_BATCH_PRODUCED
    };
    static const char  *names[] = {
        "sku", "gtin", "lot", "production_date"
    };

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    bt = &d->b.batch;

    /* Sized before it is written; the batch only if there is one. */
    size = 512 + CR_CODE_LEN;

    if (d->verified && d->bound && d->b.has_batch) {
        for (i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
            size += 32 + CR_JSON_ESCAPE_MAX * bt->s[facts[i]].len;
        }
    }

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"status\":\"%V\"",
                    &ngx_http_code_router_outcomes[d->out].name);

    /* Where the code itself fails (malformed, forged, unavailable,
     * issued): the API's error, and no PIN verdict. */
    err = ngx_http_code_router_outcomes[d->out].error;

    if (!d->verified) {
        p = ngx_http_code_router_json_str(p, "error", err, ngx_strlen(err));
        goto done;
    }

    p = ngx_http_code_router_json_str(p, "code", (char *) d->code,
                                      CR_CODE_LEN);

    if (err) {
        p = ngx_http_code_router_json_str(p, "error", err, ngx_strlen(err));
        goto done;
    }

    if (d->bound && d->b.has_batch) {
        for (i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
            p = ngx_http_code_router_json_str(p, names[i],
                                              bt->s[facts[i]].data,
                                              bt->s[facts[i]].len);
        }
    }

    p = ngx_sprintf(p, ",\"pin_digits\":%ui", crlcf->verify.digits);

    if (ver == CR_VER_NONE) {
        p = ngx_cpymem(p, ",\"verification\":null", 20);
        goto done;
    }

    p = ngx_sprintf(p, ",\"verification\":\"%V\"",
                    &ngx_http_code_router_verdicts[ver].name);

    /* Only a right PIN is told the count and the first time. */
    if (v) {
        p = ngx_sprintf(p, ",\"verifications\":%uD", v->count);
        p = ngx_http_code_router_json_time(p, "first_verified",
                                           v->first ? v->first
                                                    : CR_TIME_NONE, 0);
    }

    if (ver == CR_VER_LOCKED) {
        p = ngx_http_code_router_json_time(p, "retry_at", retry, 0);
    }

done:

    p = ngx_cpymem(p, "}\n", 2);

    return ngx_http_code_router_verify_send(r, status, body, p - body);
}


static ngx_int_t
ngx_http_code_router_verify_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *err)
{
    u_char  *body, *p;
    size_t   n;

    n = ngx_strlen(err);

    body = ngx_pnalloc(r->pool, 64 + CR_JSON_ESCAPE_MAX * n);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, "{\"status\":\"error\"", 17);
    p = ngx_http_code_router_json_str(p, "error", err, n);
    p = ngx_cpymem(p, "}\n", 2);

    return ngx_http_code_router_verify_send(r, status, body, p - body);
}


/* Every answer of the verifier, JSON or error: never stored by a cache
 * (a count changes with each right PIN). */
static ngx_int_t
ngx_http_code_router_verify_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    if (ngx_http_code_router_push_header(r, "Cache-Control",
                                         (u_char *) "no-store", 8)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_code_router_send_body(r, "application/json", status,
                                          body, len);
}


static ngx_int_t
ngx_http_code_router_push_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_http_code_router_header(r);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;

    return NGX_OK;
}


/* /status: the PIN checks by outcome and the guard zone, for Prometheus
 * (a guesser shows up here long before the odds matter). */
static const char  ngx_http_code_router_verify_metrics[] =
    "# HELP code_router_pin_checks_total PINs checked by code_router_verify"
    ", by what they said.\n"
    "# TYPE code_router_pin_checks_total counter\n";

static const char  ngx_http_code_router_guard_metrics[] =
    "# HELP code_router_pin_guard_records Wrong-PIN records (per code and "
    "address, per code) in the guard zones.\n"
    "# TYPE code_router_pin_guard_records gauge\n"
    "code_router_pin_guard_records %uA\n"
    "# HELP code_router_pin_guard_room Records the guard zones can still "
    "make, by kind (none left: new guessers are answered locked).\n"
    "# TYPE code_router_pin_guard_room gauge\n"
    "code_router_pin_guard_room{kind=\"code\"} %uA\n"
    "code_router_pin_guard_room{kind=\"address\"} %uA\n"
    "# HELP code_router_pin_guard_evicted_total Codes' records dropped for "
    "room, their buckets full again (nothing is forgotten).\n"
    "# TYPE code_router_pin_guard_evicted_total counter\n"
    "code_router_pin_guard_evicted_total %uA\n"
    "# HELP code_router_pin_guard_full_total PIN checks answered locked "
    "because the guard zone had no room to count them.\n"
    "# TYPE code_router_pin_guard_full_total counter\n"
    "code_router_pin_guard_full_total %uA\n";


size_t
ngx_http_code_router_verify_status_len(ngx_http_request_t *r)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->guards.nelts == 0) {
        return 0;
    }

    return sizeof(ngx_http_code_router_verify_metrics)
           + CR_VER_N * (sizeof("code_router_pin_checks_total{verification="
                                "\"malformed_pin\"} \n") + NGX_ATOMIC_T_LEN)
           + sizeof(ngx_http_code_router_guard_metrics)
           + 5 * NGX_ATOMIC_T_LEN;
}


/* Every guard zone's counts, summed (a zone per server: one brand's). */
u_char *
ngx_http_code_router_verify_status(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_uint_t                         i, z;
    ngx_atomic_uint_t                  outcome[CR_VER_N], sum[6];
    ngx_shm_zone_t                   **zones;
    ngx_http_code_router_guard_sh_t   *sh;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->guards.nelts == 0) {
        return p;
    }

    ngx_memzero(outcome, sizeof(outcome));
    ngx_memzero(sum, sizeof(sum));
    zones = crmcf->guards.elts;

    for (z = 0; z < crmcf->guards.nelts; z++) {
        sh = ((ngx_http_code_router_guard_t *) zones[z]->data)->sh;

        for (i = 0; i < CR_VER_N; i++) {
            outcome[i] += sh->outcome[i];
        }

        sum[0] += sh->records;
        sum[1] += sh->room[CR_GUARD_CODE];
        sum[2] += sh->room[CR_GUARD_ADDR];
        sum[3] += sh->evicted;
        sum[4] += sh->full;
    }

    p = ngx_slprintf(p, last, "%s", ngx_http_code_router_verify_metrics);

    for (i = CR_VER_GENUINE; i < CR_VER_N; i++) {
        p = ngx_slprintf(p, last,
                         "code_router_pin_checks_total{verification=\"%V\"}"
                         " %uA\n", &ngx_http_code_router_verdicts[i].name,
                         outcome[i]);
    }

    return ngx_slprintf(p, last, ngx_http_code_router_guard_metrics,
                        sum[0], sum[1], sum[2], sum[3], sum[4]);
}


/* Configuration: the directives, the location part, the guard zone. */

/* code_router_verify [CODE]: CODE's last path segment; default $uri. */
char *
ngx_http_code_router_verify(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t                         *value, uri = ngx_string("$uri");
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_compile_complex_value_t   ccv;

    if (crlcf->verify.code || crlcf->code || crlcf->api) {
        return "is duplicate, or in a \"code_router\" or "
               "\"code_router_api\" location";
    }

    value = cf->args->elts;

    crlcf->verify.code = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
    if (crlcf->verify.code == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = (cf->args->nelts == 2) ? &value[1] : &uri;
    ccv.complex_value = crlcf->verify.code;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_verify_handler;

    return NGX_CONF_OK;
}


/* code_router_verify_page URI: the SSI page for people (not JSON). */
char *
ngx_http_code_router_verify_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t  *value;

    if (crlcf->verify.page.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].data[0] != '/') {
        return "needs a URI that starts with \"/\"";
    }

    crlcf->verify.page = value[1];

    return NGX_CONF_OK;
}


/* code_router_pin_digits D: as minted (code-router mint --pin-digits). */
char *
ngx_http_code_router_pin_digits(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (crlcf->verify.digits != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);

    if (n < CR_PIN_DIGITS_MIN || n > CR_PIN_DIGITS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_pin_digits\" must be %d to %d, "
                           "as \"code-router mint --pin-digits\" takes, "
                           "not \"%V\"", CR_PIN_DIGITS_MIN,
                           CR_PIN_DIGITS_MAX, &value[1]);
        return NGX_CONF_ERROR;
    }

    crlcf->verify.digits = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


/* code_router_time_zone Z|+HH:MM|-HH:MM: times on the pages. */
char *
ngx_http_code_router_time_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    int16_t      tz;
    ngx_str_t   *value;
    const char  *err;

    if (crlcf->verify.tz != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    err = cr_parse_zone((char *) value[1].data, value[1].len, &tz);

    if (err) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_time_zone\" takes a fixed offset "
                           "such as +08:00 or Z, not \"%V\" (%s; see "
                           "docs/verify.md, \"Times on the pages\")",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    crlcf->verify.tz = tz;

    return NGX_CONF_OK;
}


/* code_router_pin_guard zone=NAME:SIZE: the wrong-PIN records, at the
 * http level or a server's own (one brand's: no other can fill it). */
char *
ngx_http_code_router_pin_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_srv_conf_t *cscf = conf;

    u_char                            *p;
    ssize_t                            size;
    ngx_str_t                         *value, name, s;
    ngx_shm_zone_t                   **zp;
    ngx_http_code_router_guard_t      *g;
    ngx_http_code_router_main_conf_t  *cmcf;

    if (cscf->guard) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0
        || (p = ngx_strlchr(value[1].data + 5,
                            value[1].data + value[1].len, ':'))
           == NULL)
    {
        return "takes zone=NAME:SIZE";
    }

    name.data = value[1].data + 5;
    name.len = p - name.data;
    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR) {
        return "takes zone=NAME:SIZE";
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &name);
        return NGX_CONF_ERROR;
    }

    cscf->guard = ngx_shared_memory_add(cf, &name, size,
                                        &ngx_http_code_router_module);
    if (cscf->guard == NULL) {
        return NGX_CONF_ERROR;
    }

    /* A name given again (servers of one brand sharing a zone). */
    if (cscf->guard->data) {
        if (cscf->guard->init != ngx_http_code_router_guard_init) {
            return "zone is already used";
        }

        return NGX_CONF_OK;
    }

    g = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_guard_t));
    if (g == NULL) {
        return NGX_CONF_ERROR;
    }

    cscf->guard->init = ngx_http_code_router_guard_init;
    cscf->guard->data = g;

    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    if (cmcf->guards.elts == NULL
        && ngx_array_init(&cmcf->guards, cf->pool, 4,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zp = ngx_array_push(&cmcf->guards);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = cscf->guard;

    /* Every PIN check has a guard: with it, what right PINs need. */
    if (ngx_http_code_router_ledger_embedded(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void
ngx_http_code_router_verify_create(ngx_http_code_router_verify_conf_t *conf)
{
    conf->digits = NGX_CONF_UNSET_UINT;
    conf->tz = NGX_CONF_UNSET;
}


/* nginx -t refuses a verify location that could not count or limit. */
char *
ngx_http_code_router_verify_merge(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *prev,
    ngx_http_code_router_loc_conf_t *conf)
{
    ngx_http_code_router_srv_conf_t   *cscf;

    ngx_conf_merge_str_value(conf->verify.page, prev->verify.page, "");
    ngx_conf_merge_uint_value(conf->verify.digits, prev->verify.digits,
                              CR_PIN_DIGITS_DEFAULT);
    ngx_conf_merge_value(conf->verify.tz, prev->verify.tz, 0);

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_code_router_module);

    /* The API's POST .../CODE/verify counts where the API location
     * counts scans (with a guard at all): the same rules hold there. */
    if (conf->verify.code == NULL) {
        if (conf->api && conf->scans && conf->scans != NGX_CONF_UNSET_PTR
            && cscf->guard)
        {
            return ngx_http_code_router_verify_zone(cf, conf,
                                                    "code_router_api");
        }

        return NGX_CONF_OK;
    }

    if (cscf->db_index == 0 || cscf->ring == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_verify\" needs \"%s\" in its "
                           "server or at the http level",
                           cscf->db_index == 0 ? "code_router_db"
                                               : "code_router_key");
        return NGX_CONF_ERROR;
    }

    if (conf->scans == NULL || conf->scans == NGX_CONF_UNSET_PTR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_verify\" needs \"code_router_scans"
                           "\": right PINs are counted there");
        return NGX_CONF_ERROR;
    }

    if (cscf->guard == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_verify\" needs "
                           "\"code_router_pin_guard zone=NAME:SIZE\" in its "
                           "server or at the http level: wrong PINs are "
                           "limited there");
        return NGX_CONF_ERROR;
    }

    ngx_http_code_router_guard_brand(cf, cscf);

    if (ngx_http_code_router_verify_action(cf, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_code_router_verify_zone(cf, conf, "code_router_verify");
}


/*
 * A verifying location's zone: with a store (a zone alone forgets right
 * PINs when it needs room, and "genuine" would be said twice), and the
 * only zone any location counts its keys' right PINs in (two would each
 * say "genuine" once).
 */
static char *
ngx_http_code_router_verify_zone(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *conf, const char *what)
{
    ngx_uint_t                          kid, i;
    cr_key_t                           *key;
    ngx_http_code_router_verifier_t    *vf;
    ngx_http_code_router_srv_conf_t    *cscf;
    ngx_http_code_router_main_conf_t   *cmcf;

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_code_router_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    if (!ngx_http_code_router_zone_stored(conf->scans)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" counts right PINs in zone \"%V\", "
                           "which has no \"store=\": its verifications "
                           "would be forgotten (docs/verify.md)", what,
                           ngx_http_code_router_zone_name(conf->scans));
        return NGX_CONF_ERROR;
    }

    if (cscf->ring == NULL) {
        return NGX_CONF_OK;             /* refused by the caller's check */
    }

    if (cmcf->verifiers.elts == NULL
        && ngx_array_init(&cmcf->verifiers, cf->pool, 4,
                          sizeof(ngx_http_code_router_verifier_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (kid = 0; kid <= CR_KID_MAX; kid++) {
        key = &cscf->ring->keys[kid];

        if (!key->present) {
            continue;
        }

        vf = cmcf->verifiers.elts;

        for (i = 0; i < cmcf->verifiers.nelts; i++) {
            if (ngx_memcmp(vf[i].fp, key->fp, CR_SCANS_FP_LEN) == 0) {
                break;
            }
        }

        if (i < cmcf->verifiers.nelts) {
            if (vf[i].zone != conf->scans) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%s\" counts right PINs of key id %ui "
                                   "in zone \"%V\", another location in "
                                   "zone \"%V\": one key's verifications "
                                   "must be counted in one zone, or the "
                                   "same PIN is \"genuine\" in each", what,
                                   kid,
                                   ngx_http_code_router_zone_name(
                                       conf->scans),
                                   ngx_http_code_router_zone_name(
                                       vf[i].zone));
                return NGX_CONF_ERROR;
            }

            continue;
        }

        vf = ngx_array_push(&cmcf->verifiers);
        if (vf == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(vf->fp, key->fp, CR_SCANS_FP_LEN);
        vf->kid = kid;
        vf->zone = conf->scans;
    }

    return NGX_CONF_OK;
}


/*
 * Where the page's form posts: fixed by the location, the canonical code
 * after it (never the request's URI, which the client spells):
 * "location = /verify" with "code_router_verify $arg_NAME" posts to
 * /verify?NAME=CODE; a prefix location "/v/" with the code the last
 * segment of $uri (the default) to /v/CODE.  Other locations cannot say
 * where a code goes, and get no page.
 */
static char *
ngx_http_code_router_verify_action(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *conf)
{
    u_char                    *p;
    ngx_str_t                 *v, name, arg;
    ngx_uint_t                 i, exact;
    ngx_http_core_loc_conf_t  *clcf;

    if (conf->verify.page.len == 0) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    name = clcf->name;
    v = &conf->verify.code->value;
    exact = clcf->exact_match;

    ngx_str_null(&arg);

    if (v->len > 5 && ngx_strncmp(v->data, "$arg_", 5) == 0) {
        arg.data = v->data + 5;
        arg.len = v->len - 5;

        for (i = 0; i < arg.len; i++) {
            if (!isalnum(arg.data[i]) && arg.data[i] != '_') {
                ngx_str_null(&arg);
                break;
            }
        }
    }

    if (
#if (NGX_PCRE)
        clcf->regex == NULL &&
#endif
        !clcf->named && !clcf->noname
        && name.len && name.data[0] == '/'
        && (name.len == 1 || (name.data[1] != '/' && name.data[1] != '\\')))
    {
        if (exact && arg.len) {
            p = ngx_pnalloc(cf->pool, name.len + arg.len + 2);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }

            conf->verify.action.data = p;
            p = ngx_cpymem(p, name.data, name.len);
            *p++ = '?';
            p = ngx_cpymem(p, arg.data, arg.len);
            *p++ = '=';
            conf->verify.action.len = p - conf->verify.action.data;

            return NGX_CONF_OK;
        }

        if (!exact && name.data[name.len - 1] == '/'
            && v->len == 4 && ngx_strncmp(v->data, "$uri", 4) == 0)
        {
            conf->verify.action = name;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"code_router_verify_page\" needs a location whose "
                       "form target is fixed: \"location = /PATH\" with "
                       "\"code_router_verify $arg_NAME\", or \"location "
                       "/PREFIX/\" with \"code_router_verify\" (the form "
                       "posts to /PATH?NAME=CODE or /PREFIX/CODE)");
    return NGX_CONF_ERROR;
}


/* One brand can fill a zone it shares with another (nothing is dropped
 * for room): nginx -t says so, once per zone. */
static void
ngx_http_code_router_guard_brand(ngx_conf_t *cf,
    ngx_http_code_router_srv_conf_t *cscf)
{
    ngx_uint_t                     i;
    cr_keyring_t                  *a, *b;
    ngx_http_code_router_guard_t  *g;

    g = cscf->guard->data;
    a = g->brand;
    b = cscf->ring;

    if (a == NULL) {
        g->brand = b;
        return;
    }

    if (a == b || g->shared) {
        return;
    }

    for (i = 0; i <= CR_KID_MAX; i++) {
        if (a->keys[i].present != b->keys[i].present
            || (a->keys[i].present
                && ngx_memcmp(a->keys[i].fp, b->keys[i].fp, CR_KEY_FP_LEN)
                   != 0))
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "the PIN guard zone \"%V\" is shared by "
                               "servers with other keys: one brand's "
                               "guessers can fill it at another's cost; give "
                               "each brand's server its own "
                               "\"code_router_pin_guard\"",
                               &cscf->guard->shm.name);
            g->shared = 1;
            return;
        }
    }
}


static ngx_int_t
ngx_http_code_router_guard_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_code_router_guard_t  *og = data;
    ngx_http_code_router_guard_t  *g = shm_zone->data;

    ngx_uint_t                     i, slots;

    g->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* A reload keeps the records: a lockout outlives "nginx -s reload". */
    if (og) {
        g->sh = og->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        g->sh = g->shpool->data;
        return NGX_OK;
    }

    g->sh = ngx_slab_calloc(g->shpool,
                            sizeof(ngx_http_code_router_guard_sh_t));
    if (g->sh == NULL) {
        return NGX_ERROR;
    }

    g->shpool->data = g->sh;

    for (i = 0; i < CR_GUARD_KINDS; i++) {
        ngx_rbtree_init(&g->sh->rbtree[i], &g->sh->sentinel[i],
                        ngx_http_code_router_guard_insert);
    }

    ngx_queue_init(&g->sh->lru);
    cr_guard_buyer_key(g->sh->buyer_key);

    /* The free pages in 128-byte slots, less one page of slack: a quarter
     * for the codes' budgets (they come and go), the rest for the
     * addresses' records (kept until a right PIN or a restart). */
    slots = (g->shpool->pfree > 1 ? g->shpool->pfree - 1 : 0)
            * (ngx_pagesize / CR_GUARD_SLOT);
    g->sh->room[CR_GUARD_CODE] = slots / 4;
    g->sh->room[CR_GUARD_ADDR] = slots - slots / 4;

    g->shpool->log_nomem = 0;

    return NGX_OK;
}
