/*
 * $code_router_scan: the members of the scan record, rendered at once and
 * already escaped for a JSON string, so that a scan log is one value
 *
 *     log_format scan escape=none '{$code_router_scan}';
 *
 * and not two dozen variables, each looked up, measured and escaped by
 * the log module twice.  The strings are escaped as nginx's escape=json
 * does ("" for a variable not found); the numbers (kid, serial, scans,
 * generation, http_status, request_time) are JSON numbers and the flags
 * (counted, diverted) true or false, as in the API, null when the router
 * set none, so a warehouse loads the line without casts.  node
 * ($hostname) and request_id ($request_id) let a central store merge
 * many edges and drop a line a shipper sent twice.
 * t/59 checks every member against the variables, for hostile input too.
 * Read in the log phase, so the status is the final one.
 */

#include "ngx_http_code_router.h"


/* A member's key, padded: copied as CR_KEY_PAD bytes at once (one move,
 * not a memcpy call a member), its len counted.  A longer key does not
 * compile (its initializer would not fit). */
#define CR_KEY_PAD  16

typedef struct {
    u_char                      key[CR_KEY_PAD];  /* ,"name":" or ,"name": */
    size_t                      len;
    ngx_http_code_router_var_e  slot;
    ngx_uint_t                  type;       /* CR_JSON_... */
} ngx_http_code_router_member_t;


/* A number or a flag is null when the router set none. */
#define CR_JSON_STRING  0
#define CR_JSON_NUMBER  1
#define CR_JSON_BOOL    2                   /* "1" true, "0" false */

#define CR_KEY(k)  k, sizeof(k) - 1
#define CR_MEMBER(name, slot)                                                \
    { CR_KEY(",\"" name "\":\""), slot, CR_JSON_STRING }
#define CR_NUMBER(name, slot)                                                \
    { CR_KEY(",\"" name "\":"), slot, CR_JSON_NUMBER }
#define CR_BOOL(name, slot)                                                  \
    { CR_KEY(",\"" name "\":"), slot, CR_JSON_BOOL }

/* After "time", "node", "request_id", "status", "http_status" and
 * "code"; then "seen_in". */
static ngx_http_code_router_member_t  ngx_http_code_router_members[] = {
    CR_NUMBER("kid", CR_VAR_KID),
    CR_NUMBER("serial", CR_VAR_SERIAL),
    CR_MEMBER("batch", CR_VAR_BATCH),
    CR_MEMBER("scene", CR_VAR_SCENE),
    CR_MEMBER("campaign", CR_VAR_CAMPAIGN),
    CR_MEMBER("sku", CR_VAR_SKU),
    CR_MEMBER("gtin", CR_VAR_GTIN),
    CR_MEMBER("lot", CR_VAR_LOT),
    CR_MEMBER("region", CR_VAR_REGION),
    CR_MEMBER("dealer", CR_VAR_DEALER),
    CR_MEMBER("target", CR_VAR_TARGET),
    CR_MEMBER("client", CR_VAR_CLIENT),
    CR_NUMBER("scans", CR_VAR_SCANS),
    CR_MEMBER("first_scan", CR_VAR_FIRST_SCAN),
    CR_BOOL("counted", CR_VAR_COUNTED),
    CR_MEMBER("uncounted", CR_VAR_UNCOUNTED),
    CR_BOOL("diverted", CR_VAR_DIVERTED),
    CR_MEMBER("rule", CR_VAR_RULE),
    CR_MEMBER("parents", CR_VAR_PARENTS)
};

#define CR_MEMBERS  \
    (sizeof(ngx_http_code_router_members)                                    \
     / sizeof(ngx_http_code_router_member_t))

/* Values in record order; the numbers are written unquoted (null when
 * the router set none: a malformed code has no kid). */
enum {
    CR_REC_NODE = 0,
    CR_REC_REQUEST_ID,
    CR_REC_STATUS,
    CR_REC_CODE,
    CR_REC_MEMBERS,
    CR_REC_SEEN_IN = CR_REC_MEMBERS + CR_MEMBERS,
    CR_REC_GENERATION,
    CR_REC_IP,
    CR_REC_UA,
    CR_REC_REFERER,
    CR_REC_N
};


/* Value i of val, copied if it is clean, else escaped.  An empty value
 * may have no data at all: memcpy must not see its NULL (UBSan). */
#define ngx_http_code_router_put(p, val, clean, i)                           \
    ((val)[i].len == 0 ? (p)                                                 \
     : ((clean) >> (i) & 1) ? ngx_cpymem(p, (val)[i].data, (val)[i].len)     \
                            : ngx_http_code_router_json(p, &(val)[i]))

static u_char *ngx_http_code_router_digits(u_char *p, uint64_t v);
static ngx_uint_t ngx_http_code_router_is_number(ngx_str_t *s);
static u_char *ngx_http_code_router_number(u_char *p, ngx_str_t *s);
static u_char *ngx_http_code_router_bool(u_char *p, ngx_str_t *s);
static ngx_uint_t ngx_http_code_router_json_clean(ngx_str_t *s);
static size_t ngx_http_code_router_json_len(ngx_str_t *s);
static u_char *ngx_http_code_router_json(u_char *p, ngx_str_t *s);
static void ngx_http_code_router_value(ngx_http_request_t *r,
    ngx_int_t index, ngx_str_t *s);


/*
 * The extra bytes escaping adds to each byte, as nginx's ngx_escape_json:
 * \" and \\, \n \r \t \b \f, other bytes below 0x20 as \u00XX; bytes from
 * 0x80 are copied (nginx does not check UTF-8 either).
 */
static const u_char  ngx_http_code_router_json_extra[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
    /* 0x60 to 0xff: 0 */
};


ngx_int_t
ngx_http_code_router_scan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                            *p;
    size_t                             len;
    ngx_str_t                          val[CR_REC_N];
    ngx_uint_t                         i, status, clean, numbers;
    ngx_time_t                        *tp;
    ngx_msec_int_t                     ms;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_main_conf_t  *crmcf;

    /* As $status and $request_time. */
    if (r->err_status) {
        status = r->err_status;

    } else if (r->headers_out.status) {
        status = r->headers_out.status;

    } else if (r->http_version == NGX_HTTP_VERSION_9) {
        status = 9;

    } else {
        status = 0;
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    /* What central aggregation needs: which node, and a key that is
     * the same in every copy of a line a shipper sent twice. */
    val[CR_REC_NODE] = ngx_cycle->hostname;
    ngx_http_code_router_value(r, crmcf->request_id_index,
                               &val[CR_REC_REQUEST_ID]);
    ngx_http_code_router_value(r, crmcf->var_index[CR_VAR_STATUS],
                               &val[CR_REC_STATUS]);
    ngx_http_code_router_value(r, crmcf->var_index[CR_VAR_SCANNED],
                               &val[CR_REC_CODE]);

    for (i = 0; i < CR_MEMBERS; i++) {
        ngx_http_code_router_value(r,
                      crmcf->var_index[ngx_http_code_router_members[i].slot],
                      &val[CR_REC_MEMBERS + i]);
    }

    ngx_str_null(&val[CR_REC_SEEN_IN]);
    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (crlcf->region
        && ngx_http_complex_value(r, crlcf->region, &val[CR_REC_SEEN_IN])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_code_router_value(r, crmcf->var_index[CR_VAR_GENERATION],
                               &val[CR_REC_GENERATION]);
    if (ngx_http_code_router_scan_address(r, &val[CR_REC_IP]) != NGX_OK) {
        return NGX_ERROR;
    }

    if (r->headers_in.user_agent) {
        val[CR_REC_UA] = r->headers_in.user_agent->value;
    } else {
        ngx_str_null(&val[CR_REC_UA]);
    }

    if (r->headers_in.referer) {
        val[CR_REC_REFERER] = r->headers_in.referer->value;
    } else {
        ngx_str_null(&val[CR_REC_REFERER]);
    }

    len = sizeof("\"time\":\"\",\"node\":\"\",\"request_id\":\"\""
                 ",\"status\":\"\",\"http_status\":,\"code\":\"\""
                 ",\"seen_in\":\"\",\"generation\":,\"ip\":\"\",\"ua\":\"\""
                 ",\"referer\":\"\",\"request_time\":") - 1
          + ngx_cached_http_log_iso8601.len + NGX_INT_T_LEN
          + NGX_TIME_T_LEN + 4;

    numbers = (ngx_uint_t) 1 << CR_REC_GENERATION;

    for (i = 0; i < CR_MEMBERS; i++) {
        len += ngx_http_code_router_members[i].len;

        if (ngx_http_code_router_members[i].type == CR_JSON_STRING) {
            len++;

        } else {
            numbers |= (ngx_uint_t) 1 << (CR_REC_MEMBERS + i);
        }
    }

    /* Nearly every value needs no escaping: found so, it is copied. */
    clean = 0;

    for (i = 0; i < CR_REC_N; i++) {
        if (numbers >> i & 1) {
            len += ngx_max(val[i].len, sizeof("false") - 1);

        } else if (ngx_http_code_router_json_clean(&val[i])) {
            clean |= (ngx_uint_t) 1 << i;
            len += val[i].len;

        } else {
            len += ngx_http_code_router_json_len(&val[i]);
        }
    }

    /* A key's padding may be written past the record's end. */
    p = ngx_pnalloc(r->pool, len + CR_KEY_PAD);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    p = ngx_cpymem(p, "\"time\":\"", sizeof("\"time\":\"") - 1);
    p = ngx_cpymem(p, ngx_cached_http_log_iso8601.data,
                   ngx_cached_http_log_iso8601.len);
    p = ngx_cpymem(p, "\",\"node\":\"", sizeof("\",\"node\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_NODE);
    p = ngx_cpymem(p, "\",\"request_id\":\"",
                   sizeof("\",\"request_id\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_REQUEST_ID);
    p = ngx_cpymem(p, "\",\"status\":\"", sizeof("\",\"status\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_STATUS);
    p = ngx_cpymem(p, "\",\"http_status\":", sizeof("\",\"http_status\":") - 1);

    p = ngx_http_code_router_digits(p, status);

    p = ngx_cpymem(p, ",\"code\":\"", sizeof(",\"code\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_CODE);
    *p++ = '"';

    for (i = 0; i < CR_MEMBERS; i++) {
        ngx_memcpy(p, ngx_http_code_router_members[i].key, CR_KEY_PAD);
        p += ngx_http_code_router_members[i].len;
        switch (ngx_http_code_router_members[i].type) {
        case CR_JSON_NUMBER:
            p = ngx_http_code_router_number(p, &val[CR_REC_MEMBERS + i]);
            break;
        case CR_JSON_BOOL:
            p = ngx_http_code_router_bool(p, &val[CR_REC_MEMBERS + i]);
            break;
        default:
            p = ngx_http_code_router_put(p, val, clean, CR_REC_MEMBERS + i);
            *p++ = '"';
        }
    }

    p = ngx_cpymem(p, ",\"seen_in\":\"", sizeof(",\"seen_in\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_SEEN_IN);
    p = ngx_cpymem(p, "\",\"generation\":", sizeof("\",\"generation\":") - 1);
    p = ngx_http_code_router_number(p, &val[CR_REC_GENERATION]);
    p = ngx_cpymem(p, ",\"ip\":\"", sizeof(",\"ip\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_IP);
    p = ngx_cpymem(p, "\",\"ua\":\"", sizeof("\",\"ua\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_UA);
    p = ngx_cpymem(p, "\",\"referer\":\"", sizeof("\",\"referer\":\"") - 1);
    p = ngx_http_code_router_put(p, val, clean, CR_REC_REFERER);
    p = ngx_cpymem(p, "\",\"request_time\":",
                   sizeof("\",\"request_time\":") - 1);
    /* "%T.%03M" by hand, as the status: ngx_sprintf costs ~400. */
    p = ngx_http_code_router_digits(p, (uint64_t) ms / 1000);
    *p++ = '.';
    *p++ = (u_char) ('0' + ms / 100 % 10);
    *p++ = (u_char) ('0' + ms / 10 % 10);
    *p++ = (u_char) ('0' + ms % 10);

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* v in decimal at p; returns the end. */
static u_char *
ngx_http_code_router_digits(u_char *p, uint64_t v)
{
    u_char  *end, tmp[NGX_INT64_LEN];

    end = tmp + NGX_INT64_LEN;

    do {
        *--end = (u_char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return ngx_cpymem(p, end, tmp + NGX_INT64_LEN - end);
}


/* Whether s is a JSON number the router wrote: decimal digits, no
 * leading zero, fewer than 20 of them. */
static ngx_uint_t
ngx_http_code_router_is_number(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len >= NGX_INT64_LEN
        || (s->data[0] == '0' && s->len > 1))
    {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* s as a JSON number, or null: at most max(s->len, 4) bytes. */
static u_char *
ngx_http_code_router_number(u_char *p, ngx_str_t *s)
{
    if (ngx_http_code_router_is_number(s)) {
        return ngx_cpymem(p, s->data, s->len);
    }

    return ngx_cpymem(p, "null", sizeof("null") - 1);
}


/* A flag of the router's ("1" or "0") as true or false, else null. */
static u_char *
ngx_http_code_router_bool(u_char *p, ngx_str_t *s)
{
    if (s->len == 1 && s->data[0] == '1') {
        return ngx_cpymem(p, "true", sizeof("true") - 1);
    }

    if (s->len == 1 && s->data[0] == '0') {
        return ngx_cpymem(p, "false", sizeof("false") - 1);
    }

    return ngx_cpymem(p, "null", sizeof("null") - 1);
}


/* A variable of the router's as the log module would read it: "" if it
 * is not found. */
static void
ngx_http_code_router_value(ngx_http_request_t *r, ngx_int_t index,
    ngx_str_t *s)
{
    ngx_http_variable_value_t  *vv;

    vv = &r->variables[index];

    if (!vv->valid && !vv->not_found) {
        vv = ngx_http_get_indexed_variable(r, index);
    }

    if (vv == NULL || vv->not_found) {
        ngx_str_null(s);
        return;
    }

    s->data = vv->data;
    s->len = vv->len;
}


/*
 * Whether no byte of s needs escaping: eight bytes at a time, none below
 * 0x20 and none a quote or a backslash (exact, not a heuristic: the
 * classic "has a byte less than n" and "has a zero byte" tests).
 */
static ngx_uint_t
ngx_http_code_router_json_clean(ngx_str_t *s)
{
    size_t     i;
    uint64_t   x, q, b, bad;

    static const uint64_t  ones = 0x0101010101010101ULL;
    static const uint64_t  high = 0x8080808080808080ULL;

    bad = 0;

    for (i = 0; i + 8 <= s->len; i += 8) {
        ngx_memcpy(&x, s->data + i, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        bad |= ((x - ones * 0x20) & ~x)
               | ((q - ones) & ~q)
               | ((b - ones) & ~b);
    }

    if (bad & high) {
        return 0;
    }

    for ( /* void */ ; i < s->len; i++) {
        if (ngx_http_code_router_json_extra[s->data[i]]) {
            return 0;
        }
    }

    return 1;
}


static size_t
ngx_http_code_router_json_len(ngx_str_t *s)
{
    size_t   len, i;
    u_char  *d;

    len = s->len;
    d = s->data;

    for (i = 0; i < s->len; i++) {
        len += ngx_http_code_router_json_extra[d[i]];
    }

    return len;
}


static u_char *
ngx_http_code_router_json(u_char *p, ngx_str_t *s)
{
    u_char   c;
    size_t   i;

    static const u_char  hex[] = "0123456789ABCDEF";

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (ngx_http_code_router_json_extra[c] == 0) {
            *p++ = c;
            continue;
        }

        *p++ = '\\';

        switch (c) {
        case '"':
        case '\\':
            *p++ = c;
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        default:
            p = ngx_cpymem(p, "u00", 3);
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }

    return p;
}
