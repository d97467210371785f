/*
 * The verification API: the router's decision as JSON, for mini-program
 * backends (WeChat opens the mini-program directly and hands it the
 * scanned URL; nginx never sees that scan).
 *
 *   GET  .../CODE          the decision; the scan count is only read
 *   POST .../CODE/scans    a scan: counted, then decided (thresholds)
 *   POST .../CODE/verify   the PIN check (ngx_http_code_router_verify.c)
 *   POST .../CODE/receive  a store's receipt of a case or pallet
 *                          (ngx_http_code_router_receive.c)
 *
 * Access control is nginx's own (allow/deny, auth_request, a map on an
 * API key header): see conf/api.conf.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_json.h"
#include "cr_valid.h"
#include "ngx_http_code_router.h"


static u_char *ngx_http_code_router_api_decision(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *target, size_t *len);


ngx_int_t
ngx_http_code_router_api_handler(ngx_http_request_t *r)
{
    u_char                            *body;
    size_t                             len;
    ngx_int_t                          rc, wechat;
    ngx_str_t                          v, code, target;
    ngx_uint_t                         scan;
    ngx_http_code_router_ans_e         ans;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_decision_t   *d;

    static u_char  not_allowed[] =
        "{\"status\":\"error\",\"error\":\"method not allowed: GET or HEAD "
        ".../CODE, POST .../CODE/scans, .../CODE/verify or "
        ".../CODE/redeem\"}\n";

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (ngx_http_complex_value(r, crlcf->api, &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* .../CODE/verify and .../CODE/redeem: a PIN, in a body the
     * verifier reads itself. */
    code = v;
    ngx_http_code_router_last_segment(&code);

    if (((code.len == 6 && ngx_strncmp(code.data, "verify", 6) == 0)
         || (code.len == 6 && ngx_strncmp(code.data, "redeem", 6) == 0))
        && code.data > v.data)
    {
        scan = (code.data[0] == 'r') ? CR_API_REDEEM : CR_API_VERIFY;
        code.len = code.data - 1 - v.data;
        code.data = v.data;
        ngx_http_code_router_last_segment(&code);

        return ngx_http_code_router_verify_start(r, &code, scan);
    }

    /* .../CODE/receive: a store's receipt, its form read there. */
    code = v;
    ngx_http_code_router_last_segment(&code);

    if (code.len == 7 && ngx_strncmp(code.data, "receive", 7) == 0
        && code.data > v.data)
    {
        code.len = code.data - 1 - v.data;
        code.data = v.data;
        ngx_http_code_router_last_segment(&code);

        return ngx_http_code_router_receive_start(r, &code);
    }

    /* First, before any other answer: a body left unread would be parsed
     * as the next request on a keep-alive connection (a smuggled scan). */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* The code is the last path segment; "/scans" after it records a
     * scan, which only POST may do. */
    scan = 0;
    code = v;
    ngx_http_code_router_last_segment(&code);

    if (code.len == 5 && ngx_strncmp(code.data, "scans", 5) == 0
        && code.data > v.data)
    {
        scan = 1;
        code.len = code.data - 1 - v.data;
        code.data = v.data;
        ngx_http_code_router_last_segment(&code);
    }

    if (scan ? r->method != NGX_HTTP_POST
             : !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)))
    {
        if (ngx_http_code_router_allow(r, scan ? "POST" : "GET, HEAD")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_code_router_send_body(r, "application/json",
                                              NGX_HTTP_NOT_ALLOWED,
                                              not_allowed,
                                              sizeof(not_allowed) - 1);
    }

    d = ngx_palloc(r->pool, sizeof(ngx_http_code_router_decision_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_code_router_decide(r, &code, scan, d) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* The target the router would send an "ok" scan from this client to
     * (a mini-program's URL Link for WeChat, its URL Scheme elsewhere),
     * chosen by the router's own function; a stored target that fails
     * our rules makes it "unavailable", as for the router. */
    ngx_str_null(&target);

    if (d->bound && d->b.has_campaign) {
        wechat = ngx_http_code_router_client(r, d);
        if (wechat == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_code_router_campaign_target(r, &d->b, d->code, wechat,
                                                  NULL, &target, &ans);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_str_null(&target);

            if (d->out == CR_OUT_OK) {
                d->out = CR_OUT_UNAVAILABLE;
            }
        }
    }

    if (ngx_http_code_router_set_vars(r, d) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = ngx_http_code_router_api_decision(r, d, &target, &len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_code_router_send_body(r, "application/json",
                                    ngx_http_code_router_outcomes[d->out].api,
                                    body, len);
}


/* The body: every string escaped by cr_json; sized before it is written. */
static u_char *
ngx_http_code_router_api_decision(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *target, size_t *len)
{
    u_char         *p, *body;
    size_t          size;
    ngx_uint_t      i;
    const char     *scene, *err;
    cr_batch_t     *bt;
    cr_campaign_t  *c;

    c = &d->b.campaign;
    bt = &d->b.batch;

    size = 1024 + CR_JSON_ESCAPE_MAX * target->len
           + CR_PARENTS_MAX * (32 + NGX_INT64_LEN)
           + 256 + 2 * CR_RECEIPT_ID_MAX;             /* the receipt */

    if (d->bound) {
        for (i = 0; i < CR_BATCH_NSTR; i++) {
            size += 32 + CR_JSON_ESCAPE_MAX * bt->s[i].len;
        }

        for (i = 0; i < CR_CAMP_NSTR; i++) {
            size += 32 + CR_JSON_ESCAPE_MAX * c->s[i].len;
        }
    }

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NULL;
    }

    p = ngx_sprintf(body, "{\"status\":\"%V\"",
                    &ngx_http_code_router_outcomes[d->out].name);

    err = ngx_http_code_router_outcomes[d->out].error;
    if (err) {
        p = ngx_http_code_router_json_str(p, "error", err, ngx_strlen(err));
    }

    if (!d->verified) {
        goto done;
    }

    p = ngx_http_code_router_json_str(p, "code", (char *) d->code,
                                      CR_CODE_LEN);
    p = ngx_sprintf(p, ",\"kid\":%ui,\"serial\":%uL", (ngx_uint_t) d->kid,
                    d->serial);

    if (!d->bound) {
        goto done;
    }

    p = ngx_sprintf(p, ",\"generation\":%uL", d->b.generation);

    /* The chain as numbers, not codes: a stranger holding one item must
     * not learn the codes of its case and pallet. */
    p = ngx_cpymem(p, ",\"parents\":[", 12);

    for (i = 0; i < d->b.nparents; i++) {
        p = ngx_sprintf(p, i ? ",{\"kid\":%ui,\"serial\":%uL}"
                             : "{\"kid\":%ui,\"serial\":%uL}",
                        (ngx_uint_t) d->b.parents[i].kid,
                        d->b.parents[i].serial);
    }

    *p++ = ']';

    if (d->b.has_batch) {
        scene = cr_scene_name(bt->scene);

        p = ngx_cpymem(p, ",\"batch\":{", 10);
        p = ngx_http_code_router_json_str(p, NULL, bt->s[CR_BATCH_ID].data,
                                          bt->s[CR_BATCH_ID].len);
        p = ngx_http_code_router_json_str(p, "scene", scene ? scene : "",
                                          scene ? ngx_strlen(scene) : 0);
        p = ngx_http_code_router_json_str(p, "sku", bt->s[CR_BATCH_SKU].data,
                                          bt->s[CR_BATCH_SKU].len);
        p = ngx_http_code_router_json_str(p, "gtin",
                                          bt->s[CR_BATCH_GTIN].data,
                                          bt->s[CR_BATCH_GTIN].len);
        p = ngx_http_code_router_json_str(p, "lot", bt->s[CR_BATCH_LOT].data,
                                          bt->s[CR_BATCH_LOT].len);
        p = ngx_http_code_router_json_str(p, "production_date",
                                          bt->s[CR_BATCH_PRODUCED].data,
                                          bt->s[CR_BATCH_PRODUCED].len);
        p = ngx_http_code_router_json_str(p, "region",
                                          bt->s[CR_BATCH_REGION].data,
                                          bt->s[CR_BATCH_REGION].len);
        p = ngx_http_code_router_json_str(p, "dealer",
                                          bt->s[CR_BATCH_DEALER].data,
                                          bt->s[CR_BATCH_DEALER].len);
        *p++ = '}';

    } else {
        p = ngx_cpymem(p, ",\"batch\":null", 13);
    }

    if (d->b.has_campaign) {
        p = ngx_cpymem(p, ",\"campaign\":{", 13);
        p = ngx_http_code_router_json_str(p, NULL, c->s[CR_CAMP_ID].data,
                                          c->s[CR_CAMP_ID].len);
        p = ngx_http_code_router_json_str(p, "name", c->s[CR_CAMP_NAME].data,
                                          c->s[CR_CAMP_NAME].len);
        p = ngx_http_code_router_json_str(p, "type",
                                          cr_target_name(c->type),
                                          ngx_strlen(cr_target_name(c->type)));
        p = ngx_http_code_router_json_time(p, "starts_at", c->starts_at,
                                           c->starts_tz);
        p = ngx_http_code_router_json_time(p, "ends_at", c->ends_at,
                                           c->ends_tz);

        if (d->b.rule) {
            p = ngx_sprintf(p, ",\"rule\":%ui", (ngx_uint_t) d->b.rule);
        } else {
            p = ngx_cpymem(p, ",\"rule\":null", 12);
        }

        if (target->len) {
            p = ngx_http_code_router_json_str(p, "target",
                                              (char *) target->data,
                                              target->len);
        } else {
            p = ngx_cpymem(p, ",\"target\":null", 14);
        }

        *p++ = '}';

    } else {
        p = ngx_cpymem(p, ",\"campaign\":null", 16);
    }

    if (d->has_scans) {
        p = ngx_sprintf(p, ",\"scans\":%uD", d->scans.count);

        if (d->scans.first) {
            p = ngx_http_code_router_json_time(p, "first_scan",
                                               d->scans.first, 0);
        } else {
            p = ngx_cpymem(p, ",\"first_scan\":null", 18);
        }

        p = ngx_sprintf(p, ",\"counted\":%s", d->counted ? "true" : "false");
    }

    p = ngx_sprintf(p, ",\"diverted\":%s", d->diverted ? "true" : "false");

    /* An on-receipt item's receipt (ids of [A-Za-z0-9._-]: no escapes). */
    if (d->receipt) {
        p = ngx_sprintf(p, ",\"receipt\":{\"kid\":%ui,\"serial\":%uL,"
                        "\"store\":\"%*s\"", (ngx_uint_t) d->receipt->kid,
                        d->receipt->serial, (size_t) d->receipt->store_len,
                        d->receipt->store);
        p = ngx_http_code_router_json_str(p, "dealer", d->receipt->dealer,
                                          d->receipt->dealer_len);
        p = ngx_http_code_router_json_time(p, "received_at", d->receipt->at,
                                           0);
        *p++ = '}';
    }

done:

    p = ngx_cpymem(p, "}\n", 2);
    *len = p - body;

    return body;
}
