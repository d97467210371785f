/*
 * The helpers every other file of the module uses, and which use none of
 * them: a response's body and headers, the request's headers, a number
 * into a variable, JSON members, the per-request log limiter, the
 * outage tracker of a store kept open by a worker, and a location's
 * content handler with its code.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_form.h"
#include "cr_json.h"
#include "cr_time.h"
#include "ngx_http_code_router.h"


static ngx_table_elt_t *ngx_http_code_router_header_find(
    ngx_http_request_t *r, ngx_str_t *names, ngx_str_t *token);


ngx_int_t
ngx_http_code_router_send_body(ngx_http_request_t *r, char *type,
    ngx_uint_t status, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    /* A decision changes with the store and the counts. */
    r->headers_out.last_modified_time = -1;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_table_elt_t *
ngx_http_code_router_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    /* 1.23 chains headers of one name: this one is alone. */
    h->next = NULL;
#endif
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = value;
    h->value.len = len;

    return h;
}


ngx_int_t
ngx_http_code_router_allow(ngx_http_request_t *r, char *methods)
{
    return ngx_http_code_router_header(r, "Allow", (u_char *) methods,
                                       ngx_strlen(methods))
           ? NGX_OK : NGX_ERROR;
}


ngx_table_elt_t *
ngx_http_code_router_header_in(ngx_http_request_t *r, const char *name)
{
    ngx_str_t  names[2];

    names[0].data = (u_char *) name;
    names[0].len = ngx_strlen(name);
    ngx_str_null(&names[1]);

    return ngx_http_code_router_header_find(r, names, NULL);
}


ngx_uint_t
ngx_http_code_router_header_holds(ngx_http_request_t *r, ngx_str_t *names,
    ngx_str_t *token)
{
    return ngx_http_code_router_header_find(r, names, token) != NULL;
}


/* The one walk of the request's headers: the first named any of names
 * (a list ending in an empty name) whose value holds token (or any). */
static ngx_table_elt_t *
ngx_http_code_router_header_find(ngx_http_request_t *r, ngx_str_t *names,
    ngx_str_t *token)
{
    ngx_uint_t        i;
    ngx_str_t        *n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (n = names; n->len; n++) {
            if (h[i].key.len == n->len
                && ngx_strncasecmp(h[i].key.data, n->data, n->len) == 0)
            {
                break;
            }
        }

        if (n->len
            && (token == NULL
                || ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    token->data, token->len - 1)
                   != NULL))
        {
            return &h[i];
        }
    }
}


/* The code is the last path segment of a value: cuts v down to it. */
void
ngx_http_code_router_last_segment(ngx_str_t *v)
{
    u_char  *p;

    p = v->len ? memrchr(v->data, '/', v->len) : NULL;

    if (p) {
        v->len -= p + 1 - v->data;
        v->data = p + 1;
    }
}


ngx_int_t
ngx_http_code_router_set_num(ngx_http_request_t *r, ngx_int_t index,
    uint64_t v)
{
    u_char  *p, *end;

    /* Digits from the end: cheaper than ngx_sprintf on the request path. */
    end = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (end == NULL) {
        return NGX_ERROR;
    }

    end += NGX_INT64_LEN;
    p = end;

    do {
        *--p = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    cr_set_var(r, index, p, end - p);

    return NGX_OK;
}


ngx_uint_t
ngx_http_code_router_log_ok(ngx_http_code_router_limit_t *l, uint32_t subject)
{
    time_t  now;

    now = ngx_time();

    if (l->second != now) {
        l->second = now;
        l->lines = 0;
    }

    if (l->lines == CR_LOG_SLOTS
        || (l->slot[subject % CR_LOG_SLOTS].subject == subject
            && l->slot[subject % CR_LOG_SLOTS].last == now))
    {
        return 0;
    }

    l->slot[subject % CR_LOG_SLOTS].subject = subject;
    l->slot[subject % CR_LOG_SLOTS].last = now;
    l->lines++;

    return 1;
}


void
ngx_http_code_router_regex_failed(ngx_http_request_t *r,
    ngx_http_code_router_limit_t *l, ngx_int_t rc, const char *what)
{
    /* One subject: the regex, whatever the User-Agent. */
    if (ngx_http_code_router_log_ok(l, 0)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "code router: %s: " ngx_regex_exec_n " failed: %i on "
                      "\"%V\"", what, rc, &r->headers_in.user_agent->value);
    }
}


/* ,"name":"escaped" -- or, without a name, "id":"escaped" after '{'. */
u_char *
ngx_http_code_router_json_str(u_char *p, const char *name, const char *s,
    size_t n)
{
    if (name) {
        p = ngx_sprintf(p, ",\"%s\":\"", name);
    } else {
        p = ngx_cpymem(p, "\"id\":\"", 6);
    }

    p += cr_json_escape((char *) p, s, n);
    *p++ = '"';

    return p;
}


u_char *
ngx_http_code_router_json_time(u_char *p, const char *name, int64_t t,
    int tz)
{
    char  buf[32];

    if (t == CR_TIME_NONE) {
        return ngx_sprintf(p, ",\"%s\":null", name);
    }

    cr_format_time(buf, sizeof(buf), t, tz);

    return ngx_sprintf(p, ",\"%s\":\"%s\"", name, buf);
}


void
ngx_http_code_router_down(ngx_log_t *log, ngx_http_code_router_outage_t *o,
    const char *err, const char *then)
{
    o->retry = ngx_time() + 1;

    if (o->failures++ == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "code router: %s; %s", err, then);
    }
}


void
ngx_http_code_router_up(ngx_log_t *log, ngx_http_code_router_outage_t *o,
    const char *what, ngx_str_t *path)
{
    /* A store just opened has its readers checked at once. */
    o->reader_check = 0;

    if (o->failures) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "code router: %s \"%V\" is open again", what, path);
        o->failures = 0;
    }
}


ngx_uint_t
ngx_http_code_router_retry_due(ngx_http_code_router_outage_t *o)
{
    return ngx_time() >= o->retry;
}


ngx_uint_t
ngx_http_code_router_readers_due(ngx_http_code_router_outage_t *o)
{
    time_t  now;

    now = ngx_time();

    if (now < o->reader_check) {
        return 0;
    }

    o->reader_check = now + CR_READER_CHECK_S;

    return 1;
}


void
ngx_http_code_router_readers_cleared(ngx_log_t *log, int dead,
    ngx_str_t *path)
{
    if (dead > 0) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "code router: cleared %d stale reader slot(s) of "
                      "\"%V\"", dead, path);
    }
}


char *
ngx_http_code_router_content(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_complex_value_t **cv, ngx_http_handler_pt handler)
{
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_compile_complex_value_t   ccv;

    *cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (*cv == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = *cv;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = handler;

    return NGX_CONF_OK;
}


void *
ngx_http_code_router_alloc(void *ctx, size_t n)
{
    return ngx_pnalloc(ctx, n);
}


ngx_uint_t
ngx_http_code_router_form_type(ngx_http_request_t *r)
{
    ngx_str_t        *ct;

    static ngx_str_t  form = ngx_string("application/x-www-form-urlencoded");

    ct = r->headers_in.content_type ? &r->headers_in.content_type->value
                                    : NULL;

    /* The type, then nothing or parameters (e.g. "; charset=UTF-8"). */
    return ct && ct->len >= form.len
           && ngx_strncasecmp(ct->data, form.data, form.len) == 0
           && (ct->len == form.len || ct->data[form.len] == ';'
               || ct->data[form.len] == ' ' || ct->data[form.len] == '\t');
}


u_char *
ngx_http_code_router_form_read(ngx_http_request_t *r, size_t *len)
{
    u_char       *body, *p;
    size_t        n;
    ngx_chain_t  *cl;

    n = 0;

    /* Chunked bodies announce no size: count what came. */
    for (cl = r->request_body ? r->request_body->bufs : NULL; cl;
         cl = cl->next)
    {
        if (cl->buf->in_file) {
            n = CR_FORM_MAX + 1;        /* only a big body goes to a file */
            break;
        }

        n += cl->buf->last - cl->buf->pos;
    }

    if (n > CR_FORM_MAX) {
        *len = 0;
        return NULL;
    }

    body = ngx_pnalloc(r->pool, n + 1);
    if (body == NULL) {
        *len = 1;
        return NULL;
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

    *p = '\0';
    *len = n;

    return body;
}
