/*
 * code_router_fast_user_agent on: nginx's User-Agent sniffing (the
 * r->headers_in.msie, msie6, opera, gecko, chrome, safari and konqueror
 * flags that msie_padding, msie_refresh, keepalive_disable and
 * gzip_disable read) set by the same rules with memchr and memcmp over
 * the header's length, instead of nginx's ngx_strstrn, a byte loop with
 * a strncmp call at every first-letter match: up to seven passes over
 * the header, about 4,700 instructions for a phone's Safari.
 *
 * The rules are nginx's own (ngx_http_process_user_agent, the same in
 * 1.22 and 1.26), step for step; only the search differs, and over a
 * value nginx's parsers keep free of NUL and end with one, ngx_strstrn
 * finds what a search bounded by the length finds.  t/98 sends thousands
 * of User-Agents to nginx with and without the directive and compares
 * every flag.
 *
 * $code_router_user_agent_flags names the flags nginx set, with or
 * without the directive ("msie,msie6", "safari", "" for none): what a
 * change of the sniffing would show.
 *
 * The handler is swapped in this cycle's hash of request headers (built
 * per configuration from nginx's static table), never in the table, so a
 * reload without the directive finds nginx's handler again and a failed
 * reload changes nothing.
 */

#include "ngx_http_code_router.h"


static ngx_int_t ngx_http_code_router_user_agent(ngx_http_request_t *r,
    ngx_table_elt_t *h, ngx_uint_t offset);
static u_char *ngx_http_code_router_find(u_char *p, u_char *end,
    const char *word, size_t len, size_t at);
static ngx_hash_elt_t *ngx_http_code_router_header_elt(ngx_hash_t *hash,
    u_char *lowcase, size_t len);
static ngx_int_t ngx_http_code_router_ua_flags(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_str_t  ngx_http_code_router_ua_flags_name =
    ngx_string("code_router_user_agent_flags");


#define cr_find(p, end, word, at)                                            \
    ngx_http_code_router_find(p, end, word, sizeof(word) - 1, at)


static ngx_int_t
ngx_http_code_router_user_agent(ngx_http_request_t *r, ngx_table_elt_t *h,
    ngx_uint_t offset)
{
    u_char  *ua, *end, *msie;

    /* nginx's ngx_http_process_header_line for 1.23 and later (every
     * User-Agent header is kept, and sniffed); 1.22 keeps and sniffs the
     * first alone. */
#if (nginx_version >= 1023000)
    ngx_table_elt_t  **ph;

    ph = (ngx_table_elt_t **) ((char *) &r->headers_in + offset);

    while (*ph) {
        ph = &(*ph)->next;
    }

    *ph = h;
    h->next = NULL;
#else
    (void) offset;

    if (r->headers_in.user_agent) {
        return NGX_OK;
    }

    r->headers_in.user_agent = h;
#endif

    ua = h->value.data;
    end = ua + h->value.len;

    msie = cr_find(ua, end, "MSIE ", 2);

    if (msie && msie + 7 < end) {

        r->headers_in.msie = 1;

        if (msie[6] == '.') {

            switch (msie[5]) {
            case '4':
            case '5':
                r->headers_in.msie6 = 1;
                break;
            case '6':
                if (cr_find(msie + 8, end, "SV1", 1) == NULL) {
                    r->headers_in.msie6 = 1;
                }
                break;
            }
        }
    }

    if (cr_find(ua, end, "Opera", 0)) {
        r->headers_in.opera = 1;
        r->headers_in.msie = 0;
        r->headers_in.msie6 = 0;
    }

    if (!r->headers_in.msie && !r->headers_in.opera) {

        if (cr_find(ua, end, "Gecko/", 0)) {
            r->headers_in.gecko = 1;

        } else if (cr_find(ua, end, "Chrome/", 0)) {
            r->headers_in.chrome = 1;

        } else if (cr_find(ua, end, "Safari/", 0)
                   && cr_find(ua, end, "Mac OS X", 7))
        {
            r->headers_in.safari = 1;

        } else if (cr_find(ua, end, "Konqueror", 3)) {
            r->headers_in.konqueror = 1;
        }
    }

    return NGX_OK;
}


/*
 * The first word in [p, end), or NULL.  memchr looks for the word's byte
 * at "at", the one rarest in browsers' strings (an "X" for "Mac OS X", a
 * capital "I" for "MSIE "): the first place it fits the word is the
 * first place the word starts.
 */
static u_char *
ngx_http_code_router_find(u_char *p, u_char *end, const char *word,
    size_t len, size_t at)
{
    u_char  *a, *last;

    if ((size_t) (end - p) < len) {
        return NULL;
    }

    last = end - len + at;              /* the last place "at" can be */

    for (a = p + at; a <= last; a++) {
        a = memchr(a, word[at], last - a + 1);

        if (a == NULL) {
            return NULL;
        }

        if (ngx_memcmp(a - at, word, len) == 0) {
            return a - at;
        }
    }

    return NULL;
}


/* At postconfiguration: nginx has built this cycle's header hash. */
ngx_int_t
ngx_http_code_router_user_agent_install(ngx_conf_t *cf)
{
    ngx_hash_elt_t                    *elt;
    ngx_http_header_t                 *hh, *fast;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_code_router_module);
    if (crmcf->fast_user_agent != 1) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    elt = ngx_http_code_router_header_elt(&cmcf->headers_in_hash,
                                          (u_char *) "user-agent",
                                          sizeof("user-agent") - 1);
    if (elt == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "code_router_fast_user_agent: this nginx has no "
                           "User-Agent handler");
        return NGX_ERROR;
    }

    hh = elt->value;

    fast = ngx_palloc(cf->pool, sizeof(ngx_http_header_t));
    if (fast == NULL) {
        return NGX_ERROR;
    }

    *fast = *hh;
    fast->handler = ngx_http_code_router_user_agent;
    elt->value = fast;

    return NGX_OK;
}


/* The element of a header's lower-case name, as ngx_hash_find walks to
 * it (it returns the value, and the value is what is swapped). */
static ngx_hash_elt_t *
ngx_http_code_router_header_elt(ngx_hash_t *hash, u_char *lowcase,
    size_t len)
{
    ngx_uint_t       key;
    ngx_hash_elt_t  *elt;

    key = ngx_hash_key(lowcase, len);

    elt = hash->buckets[key % hash->size];
    if (elt == NULL) {
        return NULL;
    }

    while (elt->value) {
        if (len == (size_t) elt->len
            && ngx_strncmp(elt->name, lowcase, len) == 0)
        {
            return elt;
        }

        elt = (ngx_hash_elt_t *) ngx_align_ptr(&elt->name[0] + elt->len,
                                               sizeof(void *));
    }

    return NULL;
}


ngx_int_t
ngx_http_code_router_user_agent_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_code_router_ua_flags_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_code_router_ua_flags;

    return NGX_OK;
}


static ngx_int_t
ngx_http_code_router_ua_flags(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *p, *start;

    start = ngx_pnalloc(r->pool, sizeof("msie,msie6,opera,gecko,chrome,"
                                        "safari,konqueror"));
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

#define cr_flag(name)                                                        \
    if (r->headers_in.name) {                                                \
        p = ngx_cpymem(p, ",", p != start);                                  \
        p = ngx_cpymem(p, #name, sizeof(#name) - 1);                         \
    }

    cr_flag(msie)
    cr_flag(msie6)
    cr_flag(opera)
    cr_flag(gecko)
    cr_flag(chrome)
    cr_flag(safari)
    cr_flag(konqueror)

#undef cr_flag

    v->len = p - start;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = start;

    return NGX_OK;
}
