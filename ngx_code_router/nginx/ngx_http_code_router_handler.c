/*
 * The content handler of a code_router location: a scan.  The decision
 * and the answer are ngx_http_code_router_decide.c's, shared with the
 * API and the GS1 resolver.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_code_router.h"


ngx_int_t
ngx_http_code_router_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc, wechat;
    ngx_str_t                         code;
    ngx_http_code_router_loc_conf_t  *crlcf;
    ngx_http_code_router_decision_t  *d;

    /* Before any answer, the 405 too: an unread body would be parsed as
     * the next request on a keep-alive connection. */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_code_router_allow(r, "GET, HEAD") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (ngx_http_complex_value(r, crlcf->code, &code) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* "code_router $uri;" in a prefix location needs no regex (and
     * /01/.../21/CODE paths work too). */
    ngx_http_code_router_last_segment(&code);

    d = ngx_palloc(r->pool, sizeof(ngx_http_code_router_decision_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* A HEAD is not a scan (link checkers, monitors). */
    if (ngx_http_code_router_decide(r, &code, r->method == NGX_HTTP_GET, d)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    wechat = ngx_http_code_router_client(r, d);
    if (wechat == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_code_router_answer(r, d, wechat);

    return ngx_http_code_router_send(r, d, wechat);
}
