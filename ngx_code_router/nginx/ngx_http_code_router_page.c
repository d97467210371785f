/*
 * code_router_fallback_page: the fallback page answered by the module
 * itself.  The template is read and rendered for every outcome at
 * configuration time; a request copies nothing but the few values that
 * change (the overscanned count and first times), HTML-escaped, between
 * pieces cut at configuration.  The SSI page through error_page costs
 * the SSI filter's parse of the whole page on every answer: a flood of
 * forged codes must cost no more than a valid scan.  code_router_fallback
 * answers nginx's own statuses (limit_req's 429) with the same page.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_time.h"
#include "ngx_http_code_router.h"


#define CR_PAGE_MAX          65536      /* bytes of a template */
#define CR_PAGE_TYPE         "text/html; charset=utf-8"

/* The values a request splices in; in a rendered page, NUL then one of
 * these bytes (a template holds no NUL). */
#define CR_SLOT_SCANS        1
#define CR_SLOT_FIRST_ZH     2
#define CR_SLOT_FIRST_EN     3

#define CR_PH_STATUS         4
#define CR_PH_MESSAGE_ZH     5
#define CR_PH_MESSAGE_EN     6


/* One outcome's page: n pieces, a slot between each two. */
typedef struct {
    ngx_str_t                     *part;
    u_char                        *slot;
    ngx_uint_t                     n;
    size_t                         len;         /* of the pieces */
} ngx_http_code_router_page_out_t;

struct ngx_http_code_router_page_s {
    ngx_str_t                         file;     /* full name */
    ngx_str_t                         text;     /* the template */
    ngx_http_code_router_page_out_t   out[CR_PAGE_N];
};


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     kind;
} ngx_http_code_router_placeholder_t;


static ngx_int_t ngx_http_code_router_page_expand(ngx_conf_t *cf,
    ngx_http_code_router_page_t *page, ngx_array_t *buf, ngx_str_t *text,
    const ngx_str_t *name, const ngx_http_code_router_message_t *msg);
static ngx_int_t ngx_http_code_router_page_push(ngx_array_t *buf,
    u_char *p, size_t n);
static ngx_int_t ngx_http_code_router_page_cut(ngx_conf_t *cf,
    ngx_array_t *buf, ngx_http_code_router_page_out_t *o);
static void ngx_http_code_router_page_error(ngx_conf_t *cf,
    ngx_http_code_router_page_t *page, u_char *at, const ngx_str_t *name,
    const char *what, u_char *s, size_t n);


static ngx_http_code_router_placeholder_t  ngx_http_code_router_ph[] = {
    { ngx_string("status"), CR_PH_STATUS },
    { ngx_string("message_zh"), CR_PH_MESSAGE_ZH },
    { ngx_string("message_en"), CR_PH_MESSAGE_EN },
    { ngx_string("scans"), CR_SLOT_SCANS },
    { ngx_string("first_scan_zh"), CR_SLOT_FIRST_ZH },
    { ngx_string("first_scan_en"), CR_SLOT_FIRST_EN },
    { ngx_null_string, 0 }
};


ngx_http_code_router_page_t *
ngx_http_code_router_page_read(ngx_conf_t *cf, ngx_str_t *path)
{
    ssize_t                       n;
    ngx_file_t                    file;
    ngx_file_info_t               fi;
    ngx_http_code_router_page_t  *page;

    page = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_page_t));
    if (page == NULL) {
        return NULL;
    }

    page->file = *path;

    if (ngx_conf_full_name(cf->cycle, &page->file, 1) != NGX_OK) {
        return NULL;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = page->file;
    file.log = cf->log;

    file.fd = ngx_open_file(page->file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                            0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "code_router_fallback_page: "
                           ngx_open_file_n " \"%V\" failed", &page->file);
        return NULL;
    }

    page->text.data = NULL;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "code_router_fallback_page: "
                           ngx_fd_info_n " \"%V\" failed", &page->file);

    } else if (!ngx_is_file(&fi) || ngx_file_size(&fi) > CR_PAGE_MAX
               || ngx_file_size(&fi) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "code_router_fallback_page \"%V\": %s",
                           &page->file,
                           !ngx_is_file(&fi) ? "not a regular file"
                           : ngx_file_size(&fi) == 0 ? "empty"
                           : "larger than 64 KB");

    } else {
        page->text.len = (size_t) ngx_file_size(&fi);
        page->text.data = ngx_pnalloc(cf->pool, page->text.len);

        if (page->text.data) {
            n = ngx_read_file(&file, page->text.data, page->text.len, 0);

            if (n != (ssize_t) page->text.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "code_router_fallback_page \"%V\": "
                                   "short read", &page->file);
                page->text.data = NULL;
            }
        }
    }

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &page->file);
    }

    if (page->text.data == NULL) {
        return NULL;
    }

    /* A NUL marks a slot in a rendered page. */
    if (ngx_strlchr(page->text.data, page->text.data + page->text.len, '\0')
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "code_router_fallback_page \"%V\": a NUL byte",
                           &page->file);
        return NULL;
    }

    return page;
}


ngx_int_t
ngx_http_code_router_page_render(ngx_conf_t *cf,
    ngx_http_code_router_page_t *page, ngx_uint_t out, const ngx_str_t *name,
    const ngx_http_code_router_message_t *msg)
{
    ngx_array_t  buf;

    if (ngx_array_init(&buf, cf->temp_pool, page->text.len + 512, 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_code_router_page_expand(cf, page, &buf, &page->text, name,
                                         msg)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_code_router_page_cut(cf, &buf, &page->out[out]);
}


/* text into buf: msg NULL for a message (which names no message). */
static ngx_int_t
ngx_http_code_router_page_expand(ngx_conf_t *cf,
    ngx_http_code_router_page_t *page, ngx_array_t *buf, ngx_str_t *text,
    const ngx_str_t *name, const ngx_http_code_router_message_t *msg)
{
    u_char                              *p, *q, *end, *close;
    u_char                               mark[2];
    ngx_str_t                            m;
    ngx_http_code_router_placeholder_t  *ph;

    p = text->data;
    end = text->data + text->len;

    while (p < end) {
        q = ngx_strlchr(p, end, '{');

        if (q == NULL || q + 1 == end || q[1] != '{') {
            q = q ? q + 1 : end;

            if (ngx_http_code_router_page_push(buf, p, q - p) != NGX_OK) {
                return NGX_ERROR;
            }

            p = q;
            continue;
        }

        if (ngx_http_code_router_page_push(buf, p, q - p) != NGX_OK) {
            return NGX_ERROR;
        }

        close = ngx_strlchr(q + 2, end, '}');

        if (close == NULL || close + 1 == end || close[1] != '}') {
            ngx_http_code_router_page_error(cf, page, msg ? q : NULL, name,
                                            "an unclosed \"{{\"", NULL, 0);
            return NGX_ERROR;
        }

        for (ph = ngx_http_code_router_ph; ph->name.len; ph++) {
            if ((size_t) (close - q - 2) == ph->name.len
                && ngx_strncmp(q + 2, ph->name.data, ph->name.len) == 0)
            {
                break;
            }
        }

        if (ph->name.len == 0 || (msg == NULL && ph->kind >= CR_PH_STATUS)) {
            ngx_http_code_router_page_error(cf, page, msg ? q : NULL, name,
                                            "an unknown placeholder", q,
                                            close + 2 - q);
            return NGX_ERROR;
        }

        switch (ph->kind) {

        case CR_PH_STATUS:
            if (ngx_http_code_router_page_push(buf, name->data, name->len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        case CR_PH_MESSAGE_ZH:
        case CR_PH_MESSAGE_EN:
            m.data = (u_char *) (ph->kind == CR_PH_MESSAGE_ZH ? msg->zh
                                                              : msg->en);
            m.len = ngx_strlen(m.data);

            if (ngx_http_code_router_page_expand(cf, page, buf, &m, name,
                                                 NULL)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        default:
            mark[0] = '\0';
            mark[1] = (u_char) ph->kind;

            if (ngx_http_code_router_page_push(buf, mark, 2) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        p = close + 2;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_code_router_page_push(ngx_array_t *buf, u_char *p, size_t n)
{
    u_char  *d;

    if (n == 0) {
        return NGX_OK;
    }

    d = ngx_array_push_n(buf, n);
    if (d == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(d, p, n);

    return NGX_OK;
}


/* The rendered page in buf into o's pieces and slots, in cf->pool. */
static ngx_int_t
ngx_http_code_router_page_cut(ngx_conf_t *cf, ngx_array_t *buf,
    ngx_http_code_router_page_out_t *o)
{
    u_char      *s, *p, *end, *q;
    ngx_uint_t   n;

    s = ngx_pnalloc(cf->pool, buf->nelts);
    if (s == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s, buf->elts, buf->nelts);
    end = s + buf->nelts;

    n = 1;
    for (p = s; (p = ngx_strlchr(p, end, '\0')) != NULL; p += 2) {
        n++;
    }

    o->part = ngx_palloc(cf->pool, n * sizeof(ngx_str_t));
    o->slot = ngx_pnalloc(cf->pool, n);
    if (o->part == NULL || o->slot == NULL) {
        return NGX_ERROR;
    }

    o->n = 0;
    o->len = 0;

    for (p = s; ; p = q + 2) {
        q = ngx_strlchr(p, end, '\0');

        o->part[o->n].data = p;
        o->part[o->n].len = (q ? q : end) - p;
        o->len += o->part[o->n].len;

        if (q == NULL) {
            o->n++;
            return NGX_OK;
        }

        o->slot[o->n++] = q[1];
    }
}


/* A template's error (at: where in it; NULL: in the message of outcome
 * name, ours). */
static void
ngx_http_code_router_page_error(ngx_conf_t *cf,
    ngx_http_code_router_page_t *page, u_char *at, const ngx_str_t *name,
    const char *what, u_char *s, size_t n)
{
    u_char      *p;
    ngx_uint_t   line;

    if (at == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "code_router_fallback_page \"%V\": %s \"%*s\" "
                           "in the message of \"%V\"",
                           &page->file, what, n, s, name);
        return;
    }

    line = 1;

    for (p = page->text.data; p < at; p++) {
        line += (*p == '\n');
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "code_router_fallback_page \"%V\": %s%s%*s%s in "
                       "line %ui (known: {{status}}, {{message_zh}}, "
                       "{{message_en}}, {{scans}}, {{first_scan_zh}}, "
                       "{{first_scan_en}})",
                       &page->file, what, n ? " \"" : "", n, s,
                       n ? "\"" : "", line);
}


ngx_int_t
ngx_http_code_router_page_send(ngx_http_request_t *r,
    ngx_http_code_router_page_t *page, ngx_uint_t out, ngx_uint_t status,
    ngx_http_code_router_decision_t *d)
{
    u_char                            *body, *p;
    size_t                             len;
    ngx_str_t                          v[4];
    ngx_uint_t                         i;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_page_out_t   *o;
    u_char                             scans[NGX_INT64_LEN];
    u_char                             zh[CR_HUMAN_TIME_LEN];
    u_char                             en[CR_HUMAN_TIME_LEN];

    o = &page->out[out];

    if (ngx_http_code_router_header(r, "Cache-Control", CR_LIT("no-store"))
        == NULL
        || ngx_http_code_router_header(r, "X-Content-Type-Options",
                                       CR_LIT("nosniff"))
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (o->n == 1) {
        return ngx_http_code_router_send_body(r, CR_PAGE_TYPE, status,
                                              o->part[0].data, o->len);
    }

    /* What a page shows of the count (as the SSI page's "echo" with
     * default=""): nothing where none is known. */
    v[0].len = 0;
    v[CR_SLOT_SCANS].data = scans;
    v[CR_SLOT_SCANS].len = d && d->has_scans
                           ? (size_t) (ngx_sprintf(scans, "%uD",
                                                   d->scans.count) - scans)
                           : 0;
    v[CR_SLOT_FIRST_ZH].data = zh;
    v[CR_SLOT_FIRST_EN].data = en;
    v[CR_SLOT_FIRST_ZH].len = 0;
    v[CR_SLOT_FIRST_EN].len = 0;

    if (d && d->has_scans && d->scans.first) {
        crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

        cr_format_human_time((char *) zh, CR_HUMAN_TIME_LEN, d->scans.first,
                             (int) crlcf->verify.tz, 0);
        cr_format_human_time((char *) en, CR_HUMAN_TIME_LEN, d->scans.first,
                             (int) crlcf->verify.tz, 1);
        v[CR_SLOT_FIRST_ZH].len = ngx_strlen(zh);
        v[CR_SLOT_FIRST_EN].len = ngx_strlen(en);
    }

    len = o->len;

    for (i = 0; i + 1 < o->n; i++) {
        len += v[o->slot[i]].len
               + ngx_escape_html(NULL, v[o->slot[i]].data,
                                 v[o->slot[i]].len);
    }

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = body;

    for (i = 0; i < o->n; i++) {
        p = ngx_cpymem(p, o->part[i].data, o->part[i].len);

        if (i + 1 < o->n) {
            p = (u_char *) ngx_escape_html(p, v[o->slot[i]].data,
                                           v[o->slot[i]].len);
        }
    }

    return ngx_http_code_router_send_body(r, CR_PAGE_TYPE, status, body,
                                          len);
}


ngx_int_t
ngx_http_code_router_fallback_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_uint_t                        status;
    ngx_http_code_router_loc_conf_t  *crlcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    /* error_page keeps the status it redirects for; a request sent here
     * by anything else finds nothing. */
    status = r->err_status >= NGX_HTTP_BAD_REQUEST ? r->err_status
                                                   : NGX_HTTP_NOT_FOUND;

    return ngx_http_code_router_page_send(r, crlcf->page,
                                          status == NGX_HTTP_TOO_MANY_REQUESTS
                                          ? CR_PAGE_BUSY : CR_PAGE_OTHER,
                                          status, NULL);
}
