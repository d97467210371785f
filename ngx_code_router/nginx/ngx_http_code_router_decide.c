/*
 * The decision every front end shares, in the order a request meets it:
 * decide() (decode, verify, look up, count, the scan and region rules);
 * the answer, picked in one switch on the outcome; one exit that counts,
 * sets the variables and sends.  The outcomes' table is here: one row
 * each, all the module knows of one.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_rules.h"
#include "cr_time.h"
#include "cr_ua.h"
#include "cr_valid.h"
#include "ngx_http_code_router.h"


#define CR_HTTP_GONE         410       /* nginx has no NGX_HTTP_GONE */


/* A stored outcome is an outcome of ours, value for value. */
_Static_assert((int) CR_OUT_OK == (int) CR_ST_OK, "CR_OUT_OK");
_Static_assert((int) CR_OUT_UNBOUND == (int) CR_ST_UNBOUND, "CR_OUT_UNBOUND");
_Static_assert((int) CR_OUT_REVOKED == (int) CR_ST_REVOKED, "CR_OUT_REVOKED");
_Static_assert((int) CR_OUT_NOT_STARTED == (int) CR_ST_NOT_STARTED,
               "CR_OUT_NOT_STARTED");
_Static_assert((int) CR_OUT_ENDED == (int) CR_ST_ENDED, "CR_OUT_ENDED");


static void ngx_http_code_router_region(ngx_str_t *here,
    ngx_http_code_router_decision_t *d);
static ngx_uint_t ngx_http_code_router_overscanned(
    ngx_http_code_router_loc_conf_t *crlcf,
    ngx_http_code_router_decision_t *d);
static ngx_int_t ngx_http_code_router_rules(ngx_http_request_t *r,
    ngx_str_t *here, ngx_http_code_router_decision_t *d);
static cr_str_t ngx_http_code_router_lang(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_window(ngx_http_request_t *r,
    cr_binding_t *b, ngx_uint_t field, ngx_str_t *url);
static ngx_int_t ngx_http_code_router_stored_url(ngx_http_request_t *r,
    cr_binding_t *b, cr_str_t *s, ngx_str_t *url);
static void ngx_http_code_router_overrun(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d);
static void ngx_http_code_router_unusable(ngx_http_request_t *r,
    cr_binding_t *b, const char *why);
static ngx_int_t ngx_http_code_router_redirect(ngx_http_request_t *r,
    ngx_str_t *url, ngx_http_code_router_ans_e ans);
static ngx_int_t ngx_http_code_router_set_binding(ngx_http_request_t *r,
    ngx_int_t *index, cr_binding_t *b);
static ngx_int_t ngx_http_code_router_set_parents(ngx_http_request_t *r,
    ngx_int_t index, cr_binding_t *b);
static ngx_int_t ngx_http_code_router_set_scans(ngx_http_request_t *r,
    ngx_int_t *index, ngx_http_code_router_decision_t *d);
static ngx_uint_t ngx_http_code_router_find(ngx_str_t *s, ngx_str_t *t);


/*
 * fallback: the status when the outcome falls back to error_page.  api:
 * the status of the API's JSON (and the verify page's, where the code
 * itself fails): a fact about a genuine code is a 200.  error: the JSON's
 * "error" member.  zh, en: the fallback page's message (conf/html/
 * fallback.html says the same with SSI).
 */
#define CR_OUTCOME(n, f, a, e, zh, en)  { ngx_string(n), f, a, e, { zh, en } }

const ngx_http_code_router_outcome_t
    ngx_http_code_router_outcomes[CR_OUT_N] =
{
    /* ok, but a fallback: never (an unusable target is unavailable) */
    [CR_OUT_OK] = CR_OUTCOME("ok", NGX_HTTP_SERVICE_UNAVAILABLE,
        NGX_HTTP_OK, NULL,
        "页面不存在", "Page not found."),
    [CR_OUT_UNBOUND] = CR_OUTCOME("unbound", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_OK, NULL,
        "此码尚未激活", "This code is genuine but not activated yet."),
    [CR_OUT_REVOKED] = CR_OUTCOME("revoked", CR_HTTP_GONE, NGX_HTTP_OK, NULL,
        "此码已作废", "This code has been revoked."),
    /* not_started: will exist; ended: gone for good */
    [CR_OUT_NOT_STARTED] = CR_OUTCOME("not_started", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_OK, NULL,
        "活动尚未开始",
        "The campaign has not started yet. Please come back later."),
    [CR_OUT_ENDED] = CR_OUTCOME("ended", CR_HTTP_GONE, NGX_HTTP_OK, NULL,
        "活动已结束，感谢您的参与",
        "The campaign has ended. Thank you for taking part."),
    [CR_OUT_MALFORMED] = CR_OUTCOME("malformed", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_BAD_REQUEST, "not a code: wrong length or characters",
        "无法识别此码",
        "This code cannot be read. Please scan it again."),
    [CR_OUT_FORGED] = CR_OUTCOME("forged", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_NOT_FOUND,
        "not a genuine code: the signature does not match",
        "此码未能通过验证，商品可能不是正品",
        "This code could not be verified: the item may not be genuine."),
    [CR_OUT_UNAVAILABLE] = CR_OUTCOME("unavailable",
        NGX_HTTP_SERVICE_UNAVAILABLE, NGX_HTTP_SERVICE_UNAVAILABLE,
        "the code cannot be looked up or counted now; retry",
        "服务暂时不可用，请稍后再试",
        "Temporarily unavailable. Please try again in a moment."),
    /* overscanned: used up */
    [CR_OUT_OVERSCANNED] = CR_OUTCOME("overscanned", CR_HTTP_GONE,
        NGX_HTTP_OK, NULL,
        "此码已被查询 {{scans}} 次，"
        "首次查询时间 {{first_scan_zh}}，商品可能是仿冒品",
        "This code has been checked {{scans}} times\n"
        "  since {{first_scan_en}}: the item may be a copy."),
    [CR_OUT_DIVERTED] = CR_OUTCOME("diverted", NGX_HTTP_FORBIDDEN,
        NGX_HTTP_OK, NULL,
        "此商品不在本地区销售",
        "This item is not sold in this region."),
    /* retired: genuine, out of use; a fact, not an error */
    [CR_OUT_RETIRED] = CR_OUTCOME("retired", CR_HTTP_GONE, NGX_HTTP_OK,
        NULL,
        "此码为正品码，但所属批次的印刷码已停用",
        "This code is genuine, but it comes from a retired print run and "
        "is no longer in service."),
    /* code_router_gs1's, never the API's; bad_uri is never a 200 */
    [CR_OUT_BAD_URI] = CR_OUTCOME("bad_uri", NGX_HTTP_BAD_REQUEST,
        NGX_HTTP_BAD_REQUEST, NULL,
        "无法识别此二维码的商品链接",
        "This product link cannot be read. Please scan the code again."),
    [CR_OUT_MISMATCH] = CR_OUTCOME("mismatch", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_NOT_FOUND, NULL,
        "此码与商品不符，商品可能是仿冒品",
        "This code does not belong to this product: the item may be a "
        "copy."),
    [CR_OUT_NO_LINK] = CR_OUTCOME("no_link", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_NOT_FOUND, NULL,
        "暂无此商品的相关信息",
        "There is no such information for this product."),
    /* issued: the details will be back; retry */
    [CR_OUT_ISSUED] = CR_OUTCOME("issued", NGX_HTTP_SERVICE_UNAVAILABLE,
        NGX_HTTP_SERVICE_UNAVAILABLE,
        "this code was issued by the brand; details are temporarily "
        "unavailable; retry",
        "此码为品牌方发放的正品码，"
        "详细信息暂时无法查询，请稍后再试",
        "This code was issued by the brand; details are temporarily "
        "unavailable. Please try again in a moment."),
    /* inactive: genuine, not on sale yet; like not_started it will be
     * (404 for a fallback: nothing to cache as gone), a fact for the API
     * (200).  Not 403: the buyer did nothing wrong. */
    [CR_OUT_INACTIVE] = CR_OUTCOME("inactive", NGX_HTTP_NOT_FOUND,
        NGX_HTTP_OK, NULL,
        "此商品尚未上架",
        "This item has not reached a store yet.")
};

/* What the SSI page says where no outcome is known: "$status = 429",
 * else page not found. */
const ngx_http_code_router_message_t
    ngx_http_code_router_status_messages[CR_PAGE_N - CR_OUT_N] =
{
    { "系统繁忙，请稍后再试",
      "Busy right now. Please try again in a moment." },
    { "页面不存在", "Page not found." }
};

const char  *ngx_http_code_router_answers[CR_ANS_N] = {
    "redirect", "url_link", "interstitial", "window", "fallback", "linkset"
};


/* Per-request log lines, each place its own limit. */
static ngx_http_code_router_limit_t  ngx_http_code_router_bad_record;
static ngx_http_code_router_limit_t  ngx_http_code_router_bad_target;
static ngx_http_code_router_limit_t  ngx_http_code_router_bad_ua_regex;


ngx_int_t
ngx_http_code_router_decide(ngx_http_request_t *r, ngx_str_t *code,
    ngx_uint_t count, ngx_http_code_router_decision_t *d)
{
    ngx_int_t                         rc;
    ngx_str_t                         here;
    cr_store_t                       *st;
    cr_code_rc_t                      crc;
    ngx_http_code_router_srv_conf_t  *crscf;
    ngx_http_code_router_loc_conf_t  *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    d->ans = CR_ANS_FALLBACK;
    d->target.len = 0;
    d->decoded = 0;
    d->verified = 0;
    d->bound = 0;
    d->has_scans = 0;
    d->counted = 0;
    d->uncounted = NULL;
    d->wechat = NGX_DECLINED;
    d->regional = 0;
    d->diverted = 0;
    d->receipt = NULL;
    d->kid = 0;
    d->serial = 0;
    d->scanned = *code;

    /* 1. decode and 2. verify: no database touched for a bad code. */
    crc = cr_code_open(crscf->ring, (char *) code->data, code->len, &d->kid,
                       &d->serial);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "code router: \"%V\" %s kid:%ui", code,
                   cr_code_rc_name(crc), (ngx_uint_t) d->kid);

    if (crc == CR_CODE_MALFORMED) {
        d->out = CR_OUT_MALFORMED;
        return NGX_OK;
    }

    /* It decodes: one spelling, whichever of its many was sent. */
    cr_code_canonical((char *) d->code, (char *) code->data);
    d->decoded = 1;

    if (crc != CR_CODE_OK) {
        /* An unknown key id is indistinguishable from a forgery. */
        d->out = CR_OUT_FORGED;
        return NGX_OK;
    }

    d->verified = 1;

    /* A retired key id's print run is out of service: its genuine codes
     * say so, whatever the store holds (its rows may be gone, the store
     * may be down), and are neither looked up nor counted. */
    if (crscf->ring->keys[d->kid].retired) {
        d->out = CR_OUT_RETIRED;
        return NGX_OK;
    }

    /* 3. look up, in one read transaction. */
    st = ngx_http_code_router_db_store(r);

    if (st == NULL
        || cr_store_lookup(st, d->kid, d->serial, ngx_time(), &d->b,
                           ngx_http_code_router_alloc, r->pool)
           != 0)
    {
        /* A bad record is logged by its code's key, not at every scan. */
        if (st && ngx_http_code_router_log_ok(&ngx_http_code_router_bad_record,
                                               ngx_crc32_short(d->code,
                                                               CR_CODE_LEN)))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "code router: %s", cr_store_error(st));
        }

        /* The signature needs no store: the brand issued this code,
         * whatever its binding says when the store is back.  No verdict
         * beyond that (a PIN is still "unavailable"). */
        d->out = CR_OUT_ISSUED;
        return NGX_OK;
    }

    d->bound = 1;
    d->out = (ngx_http_code_router_out_e) d->b.status;

    /* An item of an on-receipt batch is bound once a store has its case
     * or pallet: a look in shared memory (_receipt.c). */
    if (d->out == CR_OUT_OK && d->b.has_batch
        && d->b.batch.activate == CR_ACTIVATE_ON_RECEIPT)
    {
        d->out = ngx_http_code_router_receipt_active(r, crlcf->scans,
                                         crscf->ring->keys[d->kid].fp, d);
    }

    /* 4. the scan facts: every scan of a genuine code counts, whatever
     * its binding says (a copy scanned after the campaign is evidence). */
    if (crlcf->scans) {
        rc = ngx_http_code_router_scan(r, crlcf->scans, d->kid, d->serial,
                                       count, d);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    /* 5. the region, then the scan threshold. */
    here.len = 0;
    here.data = NULL;

    if (crlcf->region) {
        if (ngx_http_complex_value(r, crlcf->region, &here) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_code_router_region(&here, d);
    }

    if (d->out == CR_OUT_OK && d->diverted && crlcf->diverted_fallback == 1) {
        d->out = CR_OUT_DIVERTED;
    }

    if (d->out == CR_OUT_OK && d->has_scans
        && ngx_http_code_router_overscanned(crlcf, d))
    {
        d->out = CR_OUT_OVERSCANNED;
    }

    /* 6. the campaign's rules, on the facts above. */
    if (d->out == CR_OUT_OK && d->b.nrules) {
        return ngx_http_code_router_rules(r, &here, d);
    }

    return NGX_OK;
}


/*
 * The first rule of the campaign whose conditions hold gives the target
 * (cr_rules.h); only the facts its rules ask about are gathered.
 */
static ngx_int_t
ngx_http_code_router_rules(ngx_http_request_t *r, ngx_str_t *here,
    ngx_http_code_router_decision_t *d)
{
    unsigned                          need;
    ngx_int_t                         wechat;
    ngx_table_elt_t                  *ua;
    cr_rule_facts_t                   f;
    const cr_rule_t                  *rule;
    ngx_http_code_router_srv_conf_t  *crscf;

    need = cr_rules_need(d->b.rules, d->b.nrules);

    ngx_memzero(&f, sizeof(cr_rule_facts_t));

    if (need & CR_FACT_DEVICE) {
        /* WeChat by the router's own check: one answer for both. */
        wechat = ngx_http_code_router_client(r, d);
        if (wechat == NGX_ERROR) {
            return NGX_ERROR;
        }

        ua = r->headers_in.user_agent;
        f.device = cr_ua_device(ua ? ua->value.data : NULL,
                                ua ? ua->value.len : 0, (int) wechat);
    }

    if (need & CR_FACT_LANG) {
        f.lang = ngx_http_code_router_lang(r);
    }

    f.region.data = (const char *) here->data;
    f.region.len = here->len;

    if (need & CR_FACT_SPLIT) {
        crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
        f.bucket = cr_split_bucket(&crscf->ring->keys[d->kid], d->serial);
    }

    f.has_scans = d->has_scans;
    f.scans = d->scans.count;

    rule = cr_rule_pick(d->b.rules, d->b.nrules, &f);

    if (rule == NULL) {
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "code router: rule %ui of %ui", (ngx_uint_t) rule->rule,
                   (ngx_uint_t) d->b.nrules);

    return cr_binding_take_rule(&d->b, rule, ngx_http_code_router_alloc,
                                r->pool) == 0 ? NGX_OK : NGX_ERROR;
}


/* Accept-Language's first tag; "" without one. */
static cr_str_t
ngx_http_code_router_lang(ngx_http_request_t *r)
{
    cr_str_t          none = { "", 0 };
    ngx_table_elt_t  *h;

    h = ngx_http_code_router_header_in(r, "Accept-Language");

    return h ? cr_lang_first((const char *) h->value.data, h->value.len)
             : none;
}


/* $code_router_diverted: the request's region against the batch's. */
static void
ngx_http_code_router_region(ngx_str_t *here,
    ngx_http_code_router_decision_t *d)
{
    cr_str_t  *batch;

    batch = &d->b.batch.s[CR_BATCH_REGION];

    /* Unknown on either side is not a diversion: we cannot tell. */
    d->regional = 1;
    d->diverted = d->b.has_batch && batch->len && here->len
                  && (here->len != batch->len
                      || ngx_strncasecmp(here->data, (u_char *) batch->data,
                                         here->len) != 0);
}


/* The first code_router_max_scans rule for the campaign, else the scene. */
static ngx_uint_t
ngx_http_code_router_overscanned(ngx_http_code_router_loc_conf_t *crlcf,
    ngx_http_code_router_decision_t *d)
{
    ngx_uint_t                   i, max;
    cr_str_t                    *camp;
    ngx_http_code_router_max_t  *m;

    if (crlcf->max_scans == NULL) {
        return 0;
    }

    m = crlcf->max_scans->elts;
    camp = &d->b.campaign.s[CR_CAMP_ID];
    max = 0;

    for (i = 0; i < crlcf->max_scans->nelts; i++) {
        if (m[i].scene == 0) {
            if (camp->len == m[i].campaign.len
                && ngx_strncmp(camp->data, m[i].campaign.data, camp->len)
                   == 0)
            {
                max = m[i].max;
                break;
            }

        } else if (max == 0 && d->b.has_batch
                   && d->b.batch.scene == m[i].scene)
        {
            max = m[i].max;
        }
    }

    return max && d->scans.count > max;
}


/*
 * The one place that picks the answer: by the outcome, its kind and URL.
 * A target that fails our own rules was written behind the loader's
 * back: never emitted; the outcome becomes "unavailable" (503).
 */
void
ngx_http_code_router_answer(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_uint_t wechat)
{
    ngx_http_code_router_loc_conf_t  *crlcf;

    switch (d->out) {

    case CR_OUT_OK:
        crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

        if (ngx_http_code_router_campaign_target(r, &d->b, d->code, wechat,
                                                 &crlcf->interstitial,
                                                 &d->target, &d->ans)
            == NGX_OK)
        {
            return;
        }

        break;

    case CR_OUT_NOT_STARTED:
    case CR_OUT_ENDED:
    case CR_OUT_OVERSCANNED:
        switch (ngx_http_code_router_window(r, &d->b,
                                            d->out == CR_OUT_OVERSCANNED
                                            ? CR_CAMP_OVER_URL
                                            : d->out == CR_OUT_ENDED
                                            ? CR_CAMP_AFTER_URL
                                            : CR_CAMP_BEFORE_URL,
                                            &d->target))
        {
        case NGX_OK:
            d->ans = CR_ANS_WINDOW;
            return;
        case NGX_DECLINED:
            return;                     /* no window: a fallback */
        default:
            break;
        }

        break;

    default:
        return;                         /* a fallback */
    }

    d->out = CR_OUT_UNAVAILABLE;
    d->ans = CR_ANS_FALLBACK;
    d->target.len = 0;
}


ngx_int_t
ngx_http_code_router_campaign_target(ngx_http_request_t *r, cr_binding_t *b,
    u_char *code, ngx_uint_t wechat, ngx_str_t *interstitial, ngx_str_t *url,
    ngx_http_code_router_ans_e *ans)
{
    size_t         len;
    const char    *err;
    cr_target_pt   build;

    if (b->campaign.type != CR_TARGET_MINIPROGRAM) {
        build = cr_target_url;
        *ans = CR_ANS_REDIRECT;

    } else if (wechat && b->campaign.s[CR_CAMP_URL_LINK].len) {
        /* A mini-program: inside WeChat its URL Link opens it directly. */
        *ans = CR_ANS_URL_LINK;

        return ngx_http_code_router_stored_url(r, b,
                                        &b->campaign.s[CR_CAMP_URL_LINK], url);

    } else if (interstitial && interstitial->len == 0) {
        /* Elsewhere a page that opens the weixin:// URL Scheme, with a
         * button: browsers do not follow a bare redirect to weixin://. */
        ngx_http_code_router_unusable(r, b, "a mini-program target needs "
                                            "\"code_router_interstitial\"");
        return NGX_DECLINED;

    } else {
        build = cr_target_scheme;
        *ans = CR_ANS_INTERSTITIAL;
    }

    url->data = ngx_pnalloc(r->pool, cr_target_size(b));
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    err = build(b, (const char *) code, (char *) url->data, &len);
    if (err) {
        ngx_http_code_router_unusable(r, b, err);
        return NGX_DECLINED;
    }

    url->len = len;

    return NGX_OK;
}


/* The before_url, after_url or over_url (field) of a campaign not
 * started, ended, or scanned past code_router_max_scans: NGX_DECLINED if
 * it has none (or no campaign), NGX_ERROR if it is unusable. */
static ngx_int_t
ngx_http_code_router_window(ngx_http_request_t *r, cr_binding_t *b,
    ngx_uint_t field, ngx_str_t *url)
{
    cr_str_t  *win;

    win = &b->campaign.s[field];

    if (!b->has_campaign || win->len == 0) {
        return NGX_DECLINED;
    }

    /* A bad before_url/after_url is a record written behind the loader's
     * back, like any other bad target: 503 and a log line, not a silent
     * 404/410 that hides it from ops. */
    return ngx_http_code_router_stored_url(r, b, win, url) == NGX_OK
           ? NGX_OK : NGX_ERROR;
}


/* A stored https:// URL sent as it is, if it passes our rules (the
 * loader's): NGX_DECLINED if not (logged). */
static ngx_int_t
ngx_http_code_router_stored_url(ngx_http_request_t *r, cr_binding_t *b,
    cr_str_t *s, ngx_str_t *url)
{
    const char  *err;

    err = cr_valid_url(s->data, s->len, "https://");
    if (err) {
        ngx_http_code_router_unusable(r, b, err);
        return NGX_DECLINED;
    }

    url->data = (u_char *) s->data;
    url->len = s->len;

    return NGX_OK;
}


/* Counted; one line per bad campaign a second, whatever the scans of it. */
static void
ngx_http_code_router_unusable(ngx_http_request_t *r, cr_binding_t *b,
    const char *why)
{
    ngx_str_t   id;
    cr_str_t   *cid;

    cid = &b->campaign.s[CR_CAMP_ID];

    /* Every one counted, whatever the log's limit. */
    ngx_http_code_router_count_unusable(r);

    if (!ngx_http_code_router_log_ok(&ngx_http_code_router_bad_target,
                                     ngx_crc32_short((u_char *) cid->data,
                                                     cid->len)))
    {
        return;
    }

    /* Its id came the same way: percent-encode it, so that a CR or LF in
     * it cannot forge a line of the error log. */
    id.len = cr_url_encode(NULL, cid->data, cid->len);
    id.data = ngx_pnalloc(r->pool, id.len + 1);

    if (id.data == NULL) {
        id.len = 0;

    } else {
        (void) cr_url_encode((char *) id.data, cid->data, cid->len);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "code router: campaign \"%V\" has an unusable target: %s",
                  &id, why);
}


/* A genuine code no batch of the server's store holds: counted by store. */
static void
ngx_http_code_router_overrun(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d)
{
    ngx_http_code_router_srv_conf_t   *crscf;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    if (crscf->db_index) {
        ngx_http_code_router_count_overrun(r,
            ngx_http_code_router_db_path(crmcf, crscf->db_index - 1),
            d->kid, d->serial);
    }
}


/* The one exit: counts the answer, sets the variables, sends it. */
ngx_int_t
ngx_http_code_router_send(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_uint_t wechat)
{
    ngx_uint_t                         status;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_main_conf_t  *crmcf;

    ngx_http_code_router_count(r, d->out,
                               d->bound && d->b.has_batch ? d->b.batch.scene
                                                          : 0,
                               wechat, d->ans);

    if (d->out == CR_OUT_UNBOUND && d->verified) {
        ngx_http_code_router_overrun(r, d);
    }

    if (ngx_http_code_router_set_vars(r, d) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    cr_set_var(r, crmcf->var_index[CR_VAR_CLIENT],
               wechat ? "wechat" : "other", wechat ? 6 : 5);

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (d->ans == CR_ANS_FALLBACK) {
        status = ngx_http_code_router_outcomes[d->out].fallback;

        /* The module's own page, or the status for error_page. */
        if (crlcf->page) {
            return ngx_http_code_router_page_send(r, crlcf->page, d->out,
                                                  status, d);
        }

        return status;
    }

    if (d->ans == CR_ANS_LINKSET) {
        return NGX_OK;                  /* the resolver sends it */
    }

    cr_set_var(r, crmcf->var_index[CR_VAR_TARGET], d->target.data,
               d->target.len);

    if (d->ans != CR_ANS_INTERSTITIAL) {
        return ngx_http_code_router_redirect(r, &d->target, d->ans);
    }

    if (crlcf->interstitial.data[0] == '@') {
        return ngx_http_named_location(r, &crlcf->interstitial);
    }

    return ngx_http_internal_redirect(r, &crlcf->interstitial, NULL);
}


/* A 302 that no cache keeps: a binding can change at any moment. */
static ngx_int_t
ngx_http_code_router_redirect(ngx_http_request_t *r, ngx_str_t *url,
    ngx_http_code_router_ans_e ans)
{
    ngx_table_elt_t  *h;

    ngx_http_clear_location(r);

    if (ngx_http_code_router_header(r, "Cache-Control", CR_LIT("no-store"))
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_http_code_router_header(r, "Location", url->data, url->len);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.location = h;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "code router: %s to \"%V\"",
                   ngx_http_code_router_answers[ans], url);

    return NGX_HTTP_MOVED_TEMPORARILY;
}


ngx_int_t
ngx_http_code_router_set_vars(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d)
{
    ngx_int_t                         *index;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    index = crmcf->var_index;

    cr_set_var(r, index[CR_VAR_STATUS],
               ngx_http_code_router_outcomes[d->out].name.data,
               ngx_http_code_router_outcomes[d->out].name.len);
    cr_set_var(r, index[CR_VAR_SCANNED], d->scanned.data, d->scanned.len);

    if (!d->decoded) {
        return NGX_OK;
    }

    cr_set_var(r, index[CR_VAR_CODE], d->code, CR_CODE_LEN);

    if (ngx_http_code_router_set_num(r, index[CR_VAR_KID], d->kid) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!d->verified) {
        return NGX_OK;
    }

    if (ngx_http_code_router_set_num(r, index[CR_VAR_SERIAL], d->serial)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!d->bound) {
        return NGX_OK;
    }

    if (ngx_http_code_router_set_binding(r, index, &d->b) != NGX_OK) {
        return NGX_ERROR;
    }

    if (d->has_scans
        && ngx_http_code_router_set_scans(r, index, d) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (d->regional) {
        cr_set_var(r, index[CR_VAR_DIVERTED], d->diverted ? "1" : "0", 1);
    }

    if (d->b.rule
        && ngx_http_code_router_set_num(r, index[CR_VAR_RULE], d->b.rule)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (d->b.nparents
        && ngx_http_code_router_set_parents(r, index[CR_VAR_PARENTS], &d->b)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}



static ngx_int_t
ngx_http_code_router_set_binding(ngx_http_request_t *r, ngx_int_t *index,
    cr_binding_t *b)
{
    ngx_uint_t   i;
    const char  *scene;

    static const struct {
        ngx_http_code_router_var_e  slot;
        int                         batch;
        int                         index;
    } map[] = {
        { CR_VAR_BATCH, 1, CR_BATCH_ID },
        { CR_VAR_SKU, 1, CR_BATCH_SKU },
        { CR_VAR_GTIN, 1, CR_BATCH_GTIN },
        { CR_VAR_LOT, 1, CR_BATCH_LOT },
        { CR_VAR_PRODUCED, 1, CR_BATCH_PRODUCED },
        { CR_VAR_REGION, 1, CR_BATCH_REGION },
        { CR_VAR_DEALER, 1, CR_BATCH_DEALER },
        { CR_VAR_CAMPAIGN, 0, CR_CAMP_ID },
        { CR_VAR_CAMPAIGN_NAME, 0, CR_CAMP_NAME },
    };

    if (ngx_http_code_router_set_num(r, index[CR_VAR_GENERATION],
                                     b->generation)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        cr_str_t  *s = map[i].batch ? &b->batch.s[map[i].index]
                                    : &b->campaign.s[map[i].index];

        if (s->len) {
            cr_set_var(r, index[map[i].slot], s->data, s->len);
        }
    }

    scene = b->has_batch ? cr_scene_name(b->batch.scene) : NULL;

    if (scene) {
        cr_set_var(r, index[CR_VAR_SCENE], scene, ngx_strlen(scene));
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_code_router_set_scans(ngx_http_request_t *r, ngx_int_t *index,
    ngx_http_code_router_decision_t *d)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, 32);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (d->scans.first) {
        cr_format_time((char *) p, 32, d->scans.first, 0);
    } else {
        *p = '\0';
    }

    if (ngx_http_code_router_set_num(r, index[CR_VAR_SCANS], d->scans.count)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cr_set_var(r, index[CR_VAR_FIRST_SCAN], p, ngx_strlen(p));
    cr_set_var(r, index[CR_VAR_COUNTED], d->counted ? "1" : "0", 1);

    if (!d->counted && d->uncounted) {
        cr_set_var(r, index[CR_VAR_UNCOUNTED], d->uncounted,
                   ngx_strlen(d->uncounted));
    }

    return NGX_OK;
}


/* "KID:SERIAL", nearest first, space-separated: "1:5000 1:9000". */
static ngx_int_t
ngx_http_code_router_set_parents(ngx_http_request_t *r, ngx_int_t index,
    cr_binding_t *b)
{
    u_char      *p, *start;
    ngx_uint_t   i;

    start = ngx_pnalloc(r->pool, b->nparents * (NGX_INT64_LEN + 5));
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    for (i = 0; i < b->nparents; i++) {
        p = ngx_sprintf(p, i ? " %ui:%uL" : "%ui:%uL",
                        (ngx_uint_t) b->parents[i].kid,
                        b->parents[i].serial);
    }

    cr_set_var(r, index, start, p - start);

    return NGX_OK;
}


ngx_int_t
ngx_http_code_router_client(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d)
{
    if (d->wechat == NGX_DECLINED) {
        d->wechat = ngx_http_code_router_is_wechat(r);
    }

    return d->wechat;
}


ngx_int_t
ngx_http_code_router_is_wechat(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_table_elt_t                  *ua;
    ngx_http_code_router_srv_conf_t  *crscf;

    ua = r->headers_in.user_agent;
    if (ua == NULL) {
        return 0;
    }

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    if (crscf->wechat_literal.len) {
        return ngx_http_code_router_find(&ua->value, &crscf->wechat_literal);
    }

    rc = ngx_regex_exec(crscf->wechat_ua, &ua->value, NULL, 0);

    if (rc == NGX_REGEX_NO_MATCHED) {
        return 0;
    }

    if (rc < 0) {
        ngx_http_code_router_regex_failed(r,
                                          &ngx_http_code_router_bad_ua_regex,
                                          rc, "code_router_wechat_ua");
        return NGX_ERROR;
    }

    return 1;
}


/* Whether s holds t: memchr() to each candidate, cheaper than memmem()
 * for a short needle in a User-Agent. */
static ngx_uint_t
ngx_http_code_router_find(ngx_str_t *s, ngx_str_t *t)
{
    u_char  *p, *last;

    p = s->data;
    last = s->data + s->len;

    while ((size_t) (last - p) >= t->len) {
        p = memchr(p, t->data[0], last - p - t->len + 1);

        if (p == NULL) {
            return 0;
        }

        if (ngx_memcmp(p, t->data, t->len) == 0) {
            return 1;
        }

        p++;
    }

    return 0;
}


