/*
 * code_router_gs1: a GS1 Digital Link resolver (docs/gs1.md), in the order
 * a request meets it: methods and CORS, the resolver description, the
 * parse (a trailing '/' tolerated, a compressed link expanded; 400
 * bad_uri), then a serialised link through the router's own
 * decision (plus the GTIN and lot check: mismatch) or a product or lot
 * link from the store; every answer leaves through the router's one exit
 * (ngx_http_code_router_send), which counts and sets the variables.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_gs1.h"
#include "cr_link.h"
#include "cr_valid.h"
#include "ngx_http_code_router.h"


#define CR_GS1_LEVEL_MAX  64           /* links read per level */


/* The links of a request's levels, the most specific first. */
typedef struct {
    cr_link_t    link[2 * CR_GS1_LEVEL_MAX];
    unsigned     level[2 * CR_GS1_LEVEL_MAX];
    size_t       n;
} ngx_http_code_router_gs1_links_t;


static ngx_int_t ngx_http_code_router_gs1_preflight(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_gs1_cors(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_gs1_description(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_gs1_code(ngx_http_request_t *r,
    cr_gs1_link_t *dl, ngx_str_t *type, ngx_uint_t linkset,
    ngx_http_code_router_gs1_links_t *ls,
    ngx_http_code_router_decision_t *d, ngx_uint_t wechat);
static ngx_uint_t ngx_http_code_router_gs1_matches(cr_gs1_link_t *dl,
    cr_binding_t *b);
static ngx_int_t ngx_http_code_router_gs1_links(ngx_http_request_t *r,
    cr_gs1_link_t *dl, const char *lot, size_t lot_len, ngx_str_t *type,
    ngx_uint_t linkset, ngx_http_code_router_gs1_links_t *ls,
    ngx_http_code_router_decision_t *d);
static ngx_uint_t ngx_http_code_router_gs1_sound(ngx_http_request_t *r,
    cr_gs1_link_t *dl, const cr_link_t *l, size_t n);
static ngx_int_t ngx_http_code_router_gs1_target(ngx_http_request_t *r,
    cr_gs1_link_t *dl, const cr_link_t *l, ngx_str_t *url);
static ngx_int_t ngx_http_code_router_gs1_linkset(ngx_http_request_t *r,
    ngx_str_t *uri, ngx_http_code_router_gs1_links_t *ls);
static ngx_int_t ngx_http_code_router_gs1_link_header(ngx_http_request_t *r,
    ngx_str_t *uri);
static ngx_int_t ngx_http_code_router_gs1_same_as(ngx_http_request_t *r,
    ngx_str_t *uri);
static ngx_int_t ngx_http_code_router_gs1_root(ngx_http_request_t *r,
    ngx_str_t *root, size_t extra);
static ngx_int_t ngx_http_code_router_gs1_body(ngx_http_request_t *r,
    u_char *p, size_t len, char *type);


static ngx_str_t  ngx_http_code_router_gs1_well_known =
    ngx_string("/.well-known/gs1resolver");

/* A log line a second per bad link (and 64 a second in all). */
static ngx_http_code_router_limit_t  ngx_http_code_router_bad_link;


ngx_int_t
ngx_http_code_router_gs1_handler(ngx_http_request_t *r)
{
    int                               n, compressed;
    size_t                            plen;
    u_char                           *q;
    ngx_int_t                         rc, wechat;
    ngx_str_t                         type, uri;
    ngx_uint_t                        linkset;
    cr_gs1_rc_t                       grc;
    cr_gs1_link_t                    *dl;
    ngx_table_elt_t                  *accept;
    ngx_http_code_router_decision_t  *d;
    ngx_http_code_router_gs1_links_t *ls;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_code_router_gs1_preflight(r);
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        if (ngx_http_code_router_allow(r, "GET, HEAD, OPTIONS") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_HTTP_NOT_ALLOWED;
    }

    /* Any web page may ask a resolver: every answer says so. */
    if (ngx_http_code_router_gs1_cors(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* The URI as sent, before nginx decodes it: an encoded '/' in a lot
     * must stay in the lot. */
    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    plen = q ? (size_t) (q - r->unparsed_uri.data) : r->unparsed_uri.len;

    if (plen == ngx_http_code_router_gs1_well_known.len
        && ngx_strncmp(r->unparsed_uri.data,
                       ngx_http_code_router_gs1_well_known.data, plen) == 0)
    {
        return ngx_http_code_router_gs1_description(r);
    }

    wechat = ngx_http_code_router_is_wechat(r);
    if (wechat == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_code_router_decision_t));
    dl = ngx_palloc(r->pool, sizeof(cr_gs1_link_t));
    ls = ngx_palloc(r->pool, sizeof(ngx_http_code_router_gs1_links_t));
    uri.data = ngx_pnalloc(r->pool, CR_GS1_CANON_MAX(r->unparsed_uri.len));
    if (d == NULL || dl == NULL || ls == NULL || uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d->ans = CR_ANS_FALLBACK;
    ls->n = 0;

    /* The URI answered for: without a trailing '/', uncompressed. */
    grc = cr_gs1_parse_request((char *) r->unparsed_uri.data,
                               r->unparsed_uri.len, (char *) uri.data,
                               &uri.len, &compressed, dl);

    if (grc != CR_GS1_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "code router: not a GS1 Digital Link (%s): %s",
                      cr_gs1_rc_name(grc), cr_gs1_rc_text(grc));
        d->out = CR_OUT_BAD_URI;
        return ngx_http_code_router_send(r, d, wechat);
    }

    /* ?linkType=, decoded; linkset (or Accept) asks for the linkset. */
    type.len = 0;
    type.data = NULL;

    if (dl->link_type && dl->link_type_len) {
        type.data = ngx_pnalloc(r->pool, dl->link_type_len);
        if (type.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = cr_gs1_decode((char *) type.data, dl->link_type_len,
                          dl->link_type, dl->link_type_len);
        type.len = n > 0 ? (size_t) n : 0;
    }

    if (type.len) {
        linkset = type.len == sizeof(CR_LINK_LINKSET) - 1
                  && ngx_strncmp(type.data, CR_LINK_LINKSET, type.len) == 0;
    } else {
        accept = ngx_http_code_router_header_in(r, "Accept");
        linkset = accept != NULL
                  && ngx_strlcasestrn(accept->value.data,
                                      accept->value.data + accept->value.len,
                                      (u_char *) "application/linkset+json",
                                      sizeof("application/linkset+json") - 2)
                     != NULL;
    }

    if (linkset) {
        type.len = 0;
    }

    if (dl->has & CR_GS1_HAS_SERIAL) {
        rc = ngx_http_code_router_gs1_code(r, dl, &type, linkset, ls, d,
                                           wechat);

    } else {
        rc = ngx_http_code_router_gs1_links(r, dl, dl->lot, dl->lot_len,
                                            &type, linkset, ls, d);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* A redirect tells where the item's linkset is. */
    if (d->ans != CR_ANS_FALLBACK && d->ans != CR_ANS_LINKSET
        && ngx_http_code_router_gs1_link_header(r, &uri) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* A compressed link says which one it stands for (a SHALL). */
    if (compressed && ngx_http_code_router_gs1_same_as(r, &uri) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_code_router_send(r, d, wechat);

    if (d->ans != CR_ANS_LINKSET || rc != NGX_OK) {
        return rc;
    }

    return ngx_http_code_router_gs1_linkset(r, &uri, ls);
}


/* OPTIONS: a CORS preflight, answered for any origin. */
static ngx_int_t
ngx_http_code_router_gs1_preflight(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (ngx_http_code_router_gs1_cors(r) != NGX_OK
        || ngx_http_code_router_allow(r, "GET, HEAD, OPTIONS") != NGX_OK
        || ngx_http_code_router_header(r, "Access-Control-Allow-Methods",
                                       CR_LIT("GET, HEAD, OPTIONS")) == NULL
        || ngx_http_code_router_header(r, "Access-Control-Allow-Headers",
                                       CR_LIT("Accept, Accept-Language"))
           == NULL
        || ngx_http_code_router_header(r, "Access-Control-Max-Age",
                                       CR_LIT("86400")) == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    return rc == NGX_ERROR ? rc : NGX_OK;
}


static ngx_int_t
ngx_http_code_router_gs1_cors(ngx_http_request_t *r)
{
    if (ngx_http_code_router_header(r, "Access-Control-Allow-Origin",
                                    CR_LIT("*")) == NULL
        || ngx_http_code_router_header(r, "Access-Control-Expose-Headers",
                                       CR_LIT("Link, Location")) == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* /.well-known/gs1resolver: what this resolver is and serves. */
static ngx_int_t
ngx_http_code_router_gs1_description(ngx_http_request_t *r)
{
    size_t     len;
    u_char    *p;
    ngx_str_t  root;

    if (ngx_http_code_router_gs1_root(r, &root, 0) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = cr_gs1_description_json(NULL, 0, (char *) root.data, root.len);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) cr_gs1_description_json((char *) p, len, (char *) root.data,
                                   root.len);

    return ngx_http_code_router_gs1_body(r, p, len, "application/json");
}


/*
 * A link with a serial (AI 21): the code decided as code_router decides
 * it; then, for a code bound to a batch, the URI's GTIN and lot must be
 * the batch's.  A link type or the linkset comes from the batch's lot and
 * GTIN links; otherwise the router's own answer.
 */
static ngx_int_t
ngx_http_code_router_gs1_code(ngx_http_request_t *r, cr_gs1_link_t *dl,
    ngx_str_t *type, ngx_uint_t linkset, ngx_http_code_router_gs1_links_t *ls,
    ngx_http_code_router_decision_t *d, ngx_uint_t wechat)
{
    ngx_str_t  code;
    cr_str_t  *lot;

    code.data = (u_char *) dl->serial;
    code.len = dl->serial_len;

    /* A HEAD is not a scan (link checkers, monitors). */
    if (ngx_http_code_router_decide(r, &code, r->method == NGX_HTTP_GET, d)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    switch (d->out) {

    case CR_OUT_OK:
    case CR_OUT_NOT_STARTED:
    case CR_OUT_ENDED:
    case CR_OUT_OVERSCANNED:
    case CR_OUT_DIVERTED:
        /* A genuine code moved onto another product: a counterfeit
         * signal, whatever else is true of the code. */
        if (!ngx_http_code_router_gs1_matches(dl, &d->b)) {
            d->out = CR_OUT_MISMATCH;
            return NGX_OK;
        }

        break;

    default:
        return NGX_OK;                  /* the code's own fallback */
    }

    if (d->out == CR_OUT_OK && (type->len || linkset)) {
        lot = &d->b.batch.s[CR_BATCH_LOT];

        return ngx_http_code_router_gs1_links(r, dl, lot->data, lot->len,
                                              type, linkset, ls, d);
    }

    ngx_http_code_router_answer(r, d, wechat);

    return NGX_OK;
}


/* The URI's GTIN is the batch's (as GTIN-14), and its lot, if any. */
static ngx_uint_t
ngx_http_code_router_gs1_matches(cr_gs1_link_t *dl, cr_binding_t *b)
{
    char       gtin[CR_GS1_GTIN_LEN + 1];
    cr_str_t  *s;

    if (!b->has_batch) {
        return 0;
    }

    s = &b->batch.s[CR_BATCH_GTIN];

    if (cr_gs1_gtin14(gtin, s->data, s->len) != 0
        || ngx_strcmp(gtin, dl->gtin) != 0)
    {
        return 0;
    }

    s = &b->batch.s[CR_BATCH_LOT];

    return !(dl->has & CR_GS1_HAS_LOT)
           || (s->len == dl->lot_len
               && ngx_memcmp(s->data, dl->lot, s->len) == 0);
}


/*
 * The links of the lot (if any) and the GTIN: the linkset, the link of a
 * type, or the default link (gs1:defaultLink).  None: no_link (404).
 */
static ngx_int_t
ngx_http_code_router_gs1_links(ngx_http_request_t *r, cr_gs1_link_t *dl,
    const char *lot, size_t lot_len, ngx_str_t *type, ngx_uint_t linkset,
    ngx_http_code_router_gs1_links_t *ls, ngx_http_code_router_decision_t *d)
{
    size_t            n, i;
    cr_store_t       *st;
    ngx_table_elt_t  *lang;
    const cr_link_t  *l;

    st = ngx_http_code_router_db_store(r);
    if (st == NULL) {
        d->out = CR_OUT_UNAVAILABLE;
        d->ans = CR_ANS_FALLBACK;
        return NGX_OK;
    }

    /* The lot's level, then the GTIN's. */
    for (i = 0; i < 2; i++) {
        if (i == 0 && lot_len == 0) {
            continue;
        }

        if (cr_store_links(st, dl->key, i ? "" : lot, i ? 0 : lot_len,
                           &ls->link[ls->n], CR_GS1_LEVEL_MAX, &n,
                           ngx_http_code_router_alloc, r->pool)
            != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "code router: %s", cr_store_error(st));
            d->out = CR_OUT_UNAVAILABLE;
            d->ans = CR_ANS_FALLBACK;
            return NGX_OK;
        }

        while (n--) {
            ls->level[ls->n++] = (unsigned) i;
        }
    }

    d->ans = CR_ANS_FALLBACK;

    if (linkset) {
        d->out = ls->n ? d->out : CR_OUT_NO_LINK;

        if (!ngx_http_code_router_gs1_sound(r, dl, ls->link, ls->n)) {
            d->out = CR_OUT_UNAVAILABLE;
            return NGX_OK;
        }

        d->ans = ls->n ? CR_ANS_LINKSET : CR_ANS_FALLBACK;
        return NGX_OK;
    }

    lang = ngx_http_code_router_header_in(r, "Accept-Language");

    if (type->len) {
        l = cr_link_pick(ls->link, ls->n, (char *) type->data, type->len,
                         lang ? (char *) lang->value.data : NULL,
                         lang ? lang->value.len : 0);
    } else {
        l = cr_link_pick(ls->link, ls->n, CR_LINK_DEFAULT,
                         sizeof(CR_LINK_DEFAULT) - 1,
                         lang ? (char *) lang->value.data : NULL,
                         lang ? lang->value.len : 0);
    }

    if (l == NULL) {
        d->out = CR_OUT_NO_LINK;
        return NGX_OK;
    }

    if (!ngx_http_code_router_gs1_sound(r, dl, l, 1)) {
        d->out = CR_OUT_UNAVAILABLE;
        return NGX_OK;
    }

    if (ngx_http_code_router_gs1_target(r, dl, l, &d->target) != NGX_OK) {
        return NGX_ERROR;
    }

    d->ans = CR_ANS_REDIRECT;

    return NGX_OK;
}


/*
 * Whether links l[0..n) pass the loader's rules (cr_link_check), as a
 * campaign's target is checked before it is sent: a link written behind
 * the loader's back or a damaged copy of the store answers 503
 * (unavailable) and is logged, never put into a Location header or a
 * linkset.  Checked where the links are read, for the ones the answer
 * sends (links are read from the map for each request, not copied into
 * the snapshot's cache as campaigns are).
 */
static ngx_uint_t
ngx_http_code_router_gs1_sound(ngx_http_request_t *r, cr_gs1_link_t *dl,
    const cr_link_t *l, size_t n)
{
    size_t           i;
    uint32_t         key;
    ngx_str_t        lot, type;
    const char      *why, *field;
    const cr_str_t  *s;

    for (i = 0; i < n; i++) {
        why = cr_link_check(&l[i], &field);
        if (why == NULL) {
            continue;
        }

        s = l[i].s;

        key = ngx_crc32_short((u_char *) s[CR_LINK_TYPE].data,
                              s[CR_LINK_TYPE].len)
              ^ ngx_crc32_short((u_char *) dl->key, ngx_strlen(dl->key));

        if (!ngx_http_code_router_log_ok(&ngx_http_code_router_bad_link,
                                         key))
        {
            return 0;
        }

        /* Its key came the same way: percent-encoded, no CR or LF can
         * forge a line of the error log. */
        lot.len = cr_url_encode(NULL, s[CR_LINK_LOT].data,
                                s[CR_LINK_LOT].len);
        type.len = cr_url_encode(NULL, s[CR_LINK_TYPE].data,
                                 s[CR_LINK_TYPE].len);
        lot.data = ngx_pnalloc(r->pool, lot.len + type.len + 1);

        if (lot.data == NULL) {
            return 0;
        }

        type.data = lot.data + lot.len;
        (void) cr_url_encode((char *) lot.data, s[CR_LINK_LOT].data,
                             s[CR_LINK_LOT].len);
        (void) cr_url_encode((char *) type.data, s[CR_LINK_TYPE].data,
                             s[CR_LINK_TYPE].len);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "code router: the link of %s %s, lot \"%V\", type "
                      "\"%V\" has an unusable %s: %s",
                      dl->ai[1] == '0' ? "SSCC" : "GTIN", dl->key, &lot,
                      &type, field, why);
        return 0;
    }

    return 1;
}


/*
 * The link's href with the request's query passed on (less linkType,
 * which was for the resolver): before a fragment, after the href's own
 * query.
 */
static ngx_int_t
ngx_http_code_router_gs1_target(ngx_http_request_t *r, cr_gs1_link_t *dl,
    const cr_link_t *l, ngx_str_t *url)
{
    size_t       hlen, n;
    u_char      *p;
    const char  *href, *hash, *s, *end, *amp;

    href = l->s[CR_LINK_HREF].data;
    hash = memchr(href, '#', l->s[CR_LINK_HREF].len);
    hlen = hash ? (size_t) (hash - href) : l->s[CR_LINK_HREF].len;

    url->data = ngx_pnalloc(r->pool, l->s[CR_LINK_HREF].len
                                     + dl->query_len + 1);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(url->data, href, hlen);
    n = 0;

    end = dl->query ? dl->query + dl->query_len : NULL;

    for (s = dl->query; s && s < end; s = amp + 1) {
        for (amp = s; amp < end && *amp != '&' && *amp != ';'; amp++) {
            /* void */
        }

        if (amp - s >= 9 && ngx_strncmp(s, "linkType=", 9) == 0) {
            continue;
        }

        *p++ = n++ ? '&' : (memchr(href, '?', hlen) ? '&' : '?');
        p = ngx_cpymem(p, s, amp - s);
    }

    if (hash) {
        p = ngx_cpymem(p, hash, l->s[CR_LINK_HREF].len - hlen);
    }

    url->len = p - url->data;

    return NGX_OK;
}


/*
 * 200 application/linkset+json: anchored at the URI answered for (the
 * uncompressed one), without its query.
 */
static ngx_int_t
ngx_http_code_router_gs1_linkset(ngx_http_request_t *r, ngx_str_t *uri,
    ngx_http_code_router_gs1_links_t *ls)
{
    size_t     len, plen;
    u_char    *p, *q;
    ngx_str_t  anchor;

    q = ngx_strlchr(uri->data, uri->data + uri->len, '?');
    plen = q ? (size_t) (q - uri->data) : uri->len;

    if (ngx_http_code_router_gs1_root(r, &anchor, plen) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    anchor.len = ngx_cpymem(anchor.data + anchor.len, uri->data, plen)
                 - anchor.data;

    len = cr_linkset_json(NULL, 0, (char *) anchor.data, anchor.len,
                          ls->link, ls->level, ls->n);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) cr_linkset_json((char *) p, len, (char *) anchor.data, anchor.len,
                           ls->link, ls->level, ls->n);

    return ngx_http_code_router_gs1_body(r, p, len,
                                         "application/linkset+json");
}


/* Link: <PATH?linkType=linkset>; rel="linkset"; type=... (RFC 9264) */
static ngx_int_t
ngx_http_code_router_gs1_link_header(ngx_http_request_t *r, ngx_str_t *uri)
{
    size_t      plen;
    u_char     *p, *q;
    ngx_str_t   v;

    static const char  tail[] =
        "?linkType=linkset>; rel=\"linkset\"; "
        "type=\"application/linkset+json\"";

    q = ngx_strlchr(uri->data, uri->data + uri->len, '?');
    plen = q ? (size_t) (q - uri->data) : uri->len;

    v.data = ngx_pnalloc(r->pool, 1 + plen + sizeof(tail));
    if (v.data == NULL) {
        return NGX_ERROR;
    }

    p = v.data;
    *p++ = '<';
    p = ngx_cpymem(p, uri->data, plen);
    p = ngx_cpymem(p, tail, sizeof(tail) - 1);

    return ngx_http_code_router_header(r, "Link", v.data, p - v.data)
           ? NGX_OK : NGX_ERROR;
}


/*
 * Link: <ROOT/01/...>; rel="owl:sameAs": the uncompressed link a
 * compressed one stands for, query and all (its characters are RFC 3986
 * query characters: no '>' can end the reference early).
 */
static ngx_int_t
ngx_http_code_router_gs1_same_as(ngx_http_request_t *r, ngx_str_t *uri)
{
    u_char     *p;
    ngx_str_t   v;

    static const char  tail[] = ">; rel=\"owl:sameAs\"";

    if (ngx_http_code_router_gs1_root(r, &v, 1 + uri->len + sizeof(tail))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memmove(v.data + 1, v.data, v.len);
    v.data[0] = '<';
    p = ngx_cpymem(v.data + 1 + v.len, uri->data, uri->len);
    p = ngx_cpymem(p, tail, sizeof(tail) - 1);

    return ngx_http_code_router_header(r, "Link", v.data, p - v.data)
           ? NGX_OK : NGX_ERROR;
}


/*
 * The resolver's root, with room for extra bytes: code_router_gs1's
 * root=, else the connection's scheme and the server's (first) name, or
 * the address the request came in on if the server has no plain name.
 * Never the request's Host header: a client's bytes must not become the
 * anchor other parties resolve from.
 */
static ngx_int_t
ngx_http_code_router_gs1_root(ngx_http_request_t *r, ngx_str_t *root,
    size_t extra)
{
    u_char                           *p, addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t                         scheme, host;
    ngx_http_core_srv_conf_t         *crscf;
    ngx_http_code_router_loc_conf_t  *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (crlcf->gs1_root.len) {
        ngx_str_null(&scheme);
        host = crlcf->gs1_root;
        goto copy;
    }

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https://");
    } else
#endif
    {
        ngx_str_set(&scheme, "http://");
    }

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    host = crscf->server_name;

    /* "", a wildcard or a regex names no one host. */
    if (host.len == 0 || host.data[0] == '~' || host.data[0] == '.'
        || ngx_strlchr(host.data, host.data + host.len, '*') != NULL)
    {
        host.data = addr;
        host.len = NGX_SOCKADDR_STRLEN;

        if (ngx_connection_local_sockaddr(r->connection, &host, 1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

copy:

    root->data = ngx_pnalloc(r->pool, scheme.len + host.len + extra);
    if (root->data == NULL) {
        return NGX_ERROR;
    }

    p = root->data;

    if (scheme.len) {
        p = ngx_cpymem(p, scheme.data, scheme.len);
    }

    p = ngx_cpymem(p, host.data, host.len);

    root->len = p - root->data;

    return NGX_OK;
}


/* A 200 document that no cache keeps (links change with each load). */
static ngx_int_t
ngx_http_code_router_gs1_body(ngx_http_request_t *r, u_char *p, size_t len,
    char *type)
{
    if (ngx_http_code_router_header(r, "Cache-Control", CR_LIT("no-store"))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_code_router_send_body(r, type, NGX_HTTP_OK, p, len);
}


