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
 * the server's code_router_pin_guard zone (ngx_http_code_router_guard.c).
 * docs/verify.md has the rules and their odds.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_form.h"
#include "cr_json.h"
#include "cr_ledger.h"
#include "cr_pin.h"
#include "cr_time.h"
#include "ngx_http_code_router.h"


/* An API buyer id: at most this many bytes (a hashed openid is 64 hex). */
#define CR_GUARD_BUYER_MAX    128


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
static ngx_int_t ngx_http_code_router_verify_guarded(ngx_http_request_t *r,
    ngx_int_t rc, const cr_ledger_guard_t *g);
static ngx_int_t ngx_http_code_router_verify_right(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx);
static ngx_int_t ngx_http_code_router_verify_counted(ngx_http_request_t *r,
    ngx_int_t rc, cr_scan_t *v);
static ngx_int_t ngx_http_code_router_verify_finish(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, ngx_http_code_router_ver_e ver,
    cr_scan_t *v, int64_t retry);
static const char *ngx_http_code_router_verify_buyer(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx, u_char *body, size_t len);
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
static char *ngx_http_code_router_verify_zone(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *conf, const char *what);
static char *ngx_http_code_router_verify_action(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *conf);


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
    ngx_http_code_router_srv_conf_t    *crscf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    /* An API location may lack what a verify location must have. */
    if (api && (crscf->guard == NULL || crlcf->scans == NULL)) {
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
    ngx_uint_t        status;

    status = 0;
    *err = NULL;

    if (r->headers_in.content_length_n > CR_FORM_MAX) {
        status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        *err = "the body is over 1024 bytes";

    } else if (!ngx_http_code_router_form_type(r)) {
        status = NGX_HTTP_UNSUPPORTED_MEDIA_TYPE;
        *err = "the body must be application/x-www-form-urlencoded "
               "with a pin field";
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
    u_char                             *body;
    size_t                              len, blen;
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

    body = ngx_http_code_router_form_read(r, &blen);

    if (body == NULL) {
        ngx_http_finalize_request(r, blen ? NGX_HTTP_INTERNAL_SERVER_ERROR
            : ngx_http_code_router_verify_error(r,
                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                  "the body is over 1024 bytes"));
        return;
    }

    if (ctx->api) {
        err = ngx_http_code_router_verify_buyer(r, ctx, body, blen);
        if (err) {
            ngx_http_finalize_request(r,
                ngx_http_code_router_verify_error(r, NGX_HTTP_BAD_REQUEST,
                                                  err));
            return;
        }
    }

    frc = cr_form_field((char *) body, blen, "pin", 3, (char *) pin,
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
    frc = cr_form_field((char *) body, blen, "request", 7, (char *) rid,
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
    ngx_uint_t                         global;
    ngx_http_code_router_ver_e         ver;
    ngx_http_code_router_srv_conf_t   *crscf;
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

    /* No prize before retail: an item not yet received by a store
     * (inactive) gets no verdict and spends no guard budget. */
    if (!d->verified || d->out == CR_OUT_UNAVAILABLE
        || d->out == CR_OUT_INACTIVE)
    {
        goto answer;
    }

    if (!cr_pin_well_formed((char *) pin, len, crlcf->verify.digits)) {
        ver = CR_VER_MALFORMED_PIN;
        goto answer;
    }

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    global = (crscf->ledger != NULL);

    ver = ngx_http_code_router_guard_check(r, d, &ctx->buyer, pin, len,
                                          global, &retry);
    ctx->d = d;

    if (global && ver != CR_VER_LOCKED) {
        /* The budget is every node's: the ledger admits and records the
         * check before its verdict is said (verify_guarded()); without
         * the ledger, neither a right nor a wrong PIN is told. */
        if (ngx_http_code_router_guard_ask(r, d, &ctx->buyer,
                                           ver == CR_VER_GENUINE,
                                           ngx_http_code_router_verify_guarded)
            == NGX_DONE)
        {
            return NGX_DONE;
        }

        d->out = CR_OUT_UNAVAILABLE;
        ver = CR_VER_NONE;
        goto answer;
    }

    if (ver == CR_VER_GENUINE) {
        return ngx_http_code_router_verify_right(r, ctx);
    }

answer:

    ctx->d = d;

    return ngx_http_code_router_verify_finish(r, ctx, ver, &v, retry);
}


/* The ledger's answer to a PIN check the guard admitted: locked (by
 * another node's records, say), wrong, or right (then counted), or
 * unavailable; its records are the zone's from now on. */
static ngx_int_t
ngx_http_code_router_verify_guarded(ngx_http_request_t *r, ngx_int_t rc,
    const cr_ledger_guard_t *g)
{
    cr_scan_t                           none;
    ngx_http_code_router_verify_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_code_router_module);
    ngx_memzero(&none, sizeof(cr_scan_t));

    if (rc != NGX_OK) {
        ctx->d->out = CR_OUT_UNAVAILABLE;

        return ngx_http_code_router_verify_finish(r, ctx, CR_VER_NONE,
                                                  &none, 0);
    }

    ngx_http_code_router_guard_fold(r, ctx->d, &ctx->buyer, g);

    switch (g->outcome) {

    case CR_LEDGER_GUARD_RIGHT:
        return ngx_http_code_router_verify_right(r, ctx);

    case CR_LEDGER_GUARD_WRONG:
        return ngx_http_code_router_verify_finish(r, ctx, CR_VER_WRONG_PIN,
                                                  &none, g->until);

    default:                            /* locked */
        return ngx_http_code_router_verify_finish(r, ctx, CR_VER_LOCKED,
                                                  &none, g->retry);
    }
}


/*
 * A right PIN, said only once the ledger holds it (durable, and the same
 * on every node): the answer comes back to verify_counted(), or the
 * redemption's to the ledger.
 */
static ngx_int_t
ngx_http_code_router_verify_right(ngx_http_request_t *r,
    ngx_http_code_router_verify_ctx_t *ctx)
{
    cr_scan_t                         none;
    ngx_http_code_router_decision_t  *d = ctx->d;
    ngx_http_code_router_loc_conf_t  *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (ctx->api == CR_API_REDEEM) {
        return ngx_http_code_router_ledger_redeem(r, d, &ctx->request,
                                                  crlcf->scans);
    }

    if (ngx_http_code_router_ledger_verify(r, d, &ctx->request,
            crlcf->scans, ngx_http_code_router_verify_counted)
        == NGX_DONE)
    {
        return NGX_DONE;
    }

    /* A right PIN that cannot be counted is not an answer: "genuine"
     * twice for one code would hide a copy. */
    d->out = CR_OUT_UNAVAILABLE;
    ngx_memzero(&none, sizeof(cr_scan_t));

    return ngx_http_code_router_verify_finish(r, ctx, CR_VER_NONE, &none, 0);
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
        ngx_http_code_router_guard_count(r, ver);

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

        if (ngx_http_code_router_header(r, "Retry-After", p,
                ngx_sprintf(p, "%T", (time_t) (retry - ngx_time())) - p)
            == NULL)
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
    if (ngx_http_code_router_header(r, "Cache-Control", CR_LIT("no-store"))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_code_router_send_body(r, "application/json", status,
                                          body, len);
}


/* Configuration: the directives, the location part, the guard zone. */

/* code_router_verify [CODE]: CODE's last path segment; default $uri. */
char *
ngx_http_code_router_verify(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t  *value, uri = ngx_string("$uri");

    if (crlcf->verify.code || crlcf->code || crlcf->api) {
        return "is duplicate, or in a \"code_router\" or "
               "\"code_router_api\" location";
    }

    value = cf->args->elts;

    return ngx_http_code_router_content(cf,
                                        cf->args->nelts == 2 ? &value[1]
                                                             : &uri,
                                        &crlcf->verify.code,
                                        ngx_http_code_router_verify_handler);
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
    ngx_http_code_router_srv_conf_t   *crscf;

    ngx_conf_merge_str_value(conf->verify.page, prev->verify.page, "");
    ngx_conf_merge_uint_value(conf->verify.digits, prev->verify.digits,
                              CR_PIN_DIGITS_DEFAULT);
    ngx_conf_merge_value(conf->verify.tz, prev->verify.tz, 0);

    crscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_code_router_module);

    /* The API's POST .../CODE/verify counts where the API location
     * counts scans (with a guard at all): the same rules hold there. */
    if (conf->verify.code == NULL) {
        if (conf->api && conf->scans && conf->scans != NGX_CONF_UNSET_PTR
            && crscf->guard)
        {
            return ngx_http_code_router_verify_zone(cf, conf,
                                                    "code_router_api");
        }

        return NGX_CONF_OK;
    }

    if (crscf->db_index == 0 || crscf->ring == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_verify\" needs \"%s\" in its "
                           "server or at the http level",
                           crscf->db_index == 0 ? "code_router_db"
                                               : "code_router_key");
        return NGX_CONF_ERROR;
    }

    if (conf->scans == NULL || conf->scans == NGX_CONF_UNSET_PTR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_verify\" needs \"code_router_scans"
                           "\": right PINs are counted there");
        return NGX_CONF_ERROR;
    }

    if (crscf->guard == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"code_router_verify\" needs "
                           "\"code_router_pin_guard zone=NAME:SIZE\" in its "
                           "server or at the http level: wrong PINs are "
                           "limited there");
        return NGX_CONF_ERROR;
    }

    ngx_http_code_router_guard_brand(cf, crscf);

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
    ngx_http_code_router_srv_conf_t    *crscf;
    ngx_http_code_router_main_conf_t   *crmcf;

    crscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_code_router_module);
    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    if (!ngx_http_code_router_zone_stored(conf->scans)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" counts right PINs in zone \"%V\", "
                           "which has no \"store=\": its verifications "
                           "would be forgotten (docs/verify.md)", what,
                           ngx_http_code_router_zone_name(conf->scans));
        return NGX_CONF_ERROR;
    }

    if (crscf->ring == NULL) {
        return NGX_CONF_OK;             /* refused by the caller's check */
    }

    if (crmcf->verifiers.elts == NULL
        && ngx_array_init(&crmcf->verifiers, cf->pool, 4,
                          sizeof(ngx_http_code_router_verifier_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (kid = 0; kid <= CR_KID_MAX; kid++) {
        key = &crscf->ring->keys[kid];

        if (!key->present) {
            continue;
        }

        vf = crmcf->verifiers.elts;

        for (i = 0; i < crmcf->verifiers.nelts; i++) {
            if (ngx_memcmp(vf[i].fp, key->fp, CR_SCANS_FP_LEN) == 0) {
                break;
            }
        }

        if (i < crmcf->verifiers.nelts) {
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

        vf = ngx_array_push(&crmcf->verifiers);
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


