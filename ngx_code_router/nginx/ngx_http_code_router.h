/*
 * ngx_http_code_router: what several of the module's files share.  Each
 * file's private state stays in it.
 *
 * ngx_http_code_router_handler.c  the request path: decide, answer,
 *                                 variables
 * ngx_http_code_router_api.c      the verification API (JSON)
 * ngx_http_code_router_gs1.c      the GS1 Digital Link resolver
 * ngx_http_code_router_verify.c   the PIN check (code_router_verify)
 * ngx_http_code_router_scans.c    scan counting (shared memory, scan store)
 * ngx_http_code_router_ledger.c   right PINs counted durably (the scan
 *                                 store, or PostgreSQL: cr_ledger)
 * ngx_http_code_router_receipt.c  receipts of cases and pallets in shared
 *                                 memory (code_router_receipts), the
 *                                 scan-time check of an on-receipt item
 * ngx_http_code_router_receive.c  POST .../CODE/receive (the API)
 * ngx_http_code_router_db.c       binding stores in workers, the timer
 * ngx_http_code_router_page.c     the fallback page (code_router_fallback_page)
 * ngx_http_code_router_status.c   metrics and the code_router_status page
 * ngx_http_code_router_module.c   directives, configuration, module tables
 * ngx_http_code_router_scanlog.c  $code_router_scan, the scan record
 * ngx_http_code_router_address.c  the client address the record keeps
 */

#ifndef NGX_HTTP_CODE_ROUTER_H
#define NGX_HTTP_CODE_ROUTER_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_codec.h"
#include "cr_guard.h"
#include "cr_ledger.h"
#include "cr_receipt.h"
#include "cr_keyfile.h"
#include "cr_scans.h"
#include "cr_store.h"
#include "cr_target.h"


#define CR_READER_CHECK_S    10        /* stale reader slots, every store */


/* Per-request results, kept as indexed variables (they survive redirects). */
typedef enum {
    CR_VAR_STATUS = 0,
    CR_VAR_KID,
    CR_VAR_SERIAL,
    CR_VAR_BATCH,
    CR_VAR_SCENE,
    CR_VAR_CAMPAIGN,
    CR_VAR_CAMPAIGN_NAME,
    CR_VAR_SKU,
    CR_VAR_GTIN,
    CR_VAR_LOT,
    CR_VAR_PRODUCED,
    CR_VAR_REGION,
    CR_VAR_DEALER,
    CR_VAR_TARGET,
    CR_VAR_CLIENT,
    CR_VAR_GENERATION,
    CR_VAR_SCANS,
    CR_VAR_FIRST_SCAN,
    CR_VAR_COUNTED,
    CR_VAR_DIVERTED,
    CR_VAR_CODE,
    CR_VAR_VERIFICATION,
    CR_VAR_VERIFICATIONS,
    CR_VAR_FIRST_VERIFIED,
    CR_VAR_FIRST_VERIFIED_ZH,
    CR_VAR_FIRST_VERIFIED_EN,
    CR_VAR_RETRY_AT,
    CR_VAR_RETRY_AT_ZH,
    CR_VAR_RETRY_AT_EN,
    CR_VAR_PIN_DIGITS,
    CR_VAR_FIRST_SCAN_ZH,
    CR_VAR_FIRST_SCAN_EN,
    CR_VAR_SCANNED,                     /* the router's argument */
    CR_VAR_SCAN,                        /* the scan record (a get handler) */
    CR_VAR_VERIFY_ACTION,               /* where the page's form posts */
    CR_VAR_RULE,                        /* the campaign rule taken */
    CR_VAR_UNCOUNTED,                   /* why a scan was not counted */
    CR_VAR_PARENTS,                     /* the code's case and pallet */
    CR_VAR_N
} ngx_http_code_router_var_e;


/* Outcomes, as counted and as $code_router_status says them.  The first
 * five are the store's cr_status_e, value for value (checked at compile
 * time in ngx_http_code_router_decide.c). */
typedef enum {
    CR_OUT_OK = 0,
    CR_OUT_UNBOUND,
    CR_OUT_REVOKED,
    CR_OUT_NOT_STARTED,
    CR_OUT_ENDED,
    CR_OUT_MALFORMED,
    CR_OUT_FORGED,
    CR_OUT_UNAVAILABLE,
    CR_OUT_OVERSCANNED,
    CR_OUT_DIVERTED,
    CR_OUT_RETIRED,                             /* genuine, retired key id */
    CR_OUT_BAD_URI,                     /* code_router_gs1: not a Digital
                                         * Link (400) */
    CR_OUT_MISMATCH,                    /* ...: a genuine code of another
                                         * GTIN or lot */
    CR_OUT_NO_LINK,                     /* ...: no link of that type */
    CR_OUT_ISSUED,                      /* genuine (it verifies under its
                                         * key), but the binding store
                                         * cannot be read now */
    CR_OUT_INACTIVE,                    /* genuine, of an activate=
                                         * on_receipt batch whose case
                                         * no store has received */
    CR_OUT_N
} ngx_http_code_router_out_e;


/* PIN verdicts, as counted and as $code_router_verification says them. */
typedef enum {
    CR_VER_NONE = 0,                    /* GET: the form */
    CR_VER_GENUINE,
    CR_VER_VERIFIED_BEFORE,
    CR_VER_WRONG_PIN,
    CR_VER_LOCKED,
    CR_VER_MALFORMED_PIN,
    CR_VER_N
} ngx_http_code_router_ver_e;


/* The kind of answer the router gives. */
typedef enum {
    CR_ANS_REDIRECT = 0,                /* 302 to an https:// target */
    CR_ANS_URL_LINK,                    /* 302 to a WeChat URL Link */
    CR_ANS_INTERSTITIAL,                /* the page that opens weixin:// */
    CR_ANS_WINDOW,                      /* 302 to before_url / after_url /
                                         * over_url */
    CR_ANS_FALLBACK,                    /* a status for error_page */
    CR_ANS_LINKSET,                     /* code_router_gs1: a linkset, 200 */
    CR_ANS_N
} ngx_http_code_router_ans_e;


typedef struct ngx_http_code_router_zone_s  ngx_http_code_router_zone_t;
typedef struct ngx_http_code_router_ledger_s  ngx_http_code_router_ledger_t;
/* A fallback page of code_router_fallback_page: its template, rendered
 * for every outcome at configuration time (_page.c). */
typedef struct ngx_http_code_router_page_s  ngx_http_code_router_page_t;


typedef struct {
    ngx_int_t                  var_index[CR_VAR_N];
    ngx_int_t                  request_id_index;  /* $request_id */
    ngx_array_t                dbs;             /* ..._db_t, in _db.c */
    ngx_array_t                zones;           /* zone_t * */
    ngx_array_t                keys;            /* ..._key_use_t: at
                                                 * configuration only */
    ngx_shm_zone_t            *shm;             /* the metrics */
    ngx_shm_zone_t            *ledger_zone;     /* the ledgers' metrics */
    ngx_int_t                  request_index;   /* $code_router_request */
    ngx_array_t                verifiers;       /* ..._verifier_t, in
                                                 * _verify.c: at
                                                 * configuration only */
    ngx_array_t                guards;          /* ngx_shm_zone_t *: every
                                                 * code_router_pin_guard
                                                 * zone, for /status */
    ngx_flag_t                 fast_request_id; /* code_router_fast_... */
    ngx_flag_t                 fast_user_agent;
} ngx_http_code_router_main_conf_t;


typedef struct {
    cr_keyring_t              *ring;
    ngx_regex_t               *wechat_ua;
    ngx_str_t                  wechat_literal;  /* the regex, if it is
                                                 * plain text; else "" */
    ngx_uint_t                 db_index;        /* into dbs, plus one */
    ngx_http_code_router_ledger_t  *ledger;     /* code_router_ledger, or
                                                 * NULL: the scan store */
    ngx_shm_zone_t            *guard;           /* code_router_pin_guard */
} ngx_http_code_router_srv_conf_t;


/* code_router_verify and what goes with it. */
typedef struct {
    ngx_http_complex_value_t      *code;        /* or NULL: not verify */
    ngx_str_t                      page;        /* "": JSON only */
    ngx_str_t                      action;      /* the form's path, the
                                                 * canonical code after
                                                 * it; "" without page */
    ngx_uint_t                     digits;      /* of the PINs */
    ngx_int_t                      tz;          /* minutes east of UTC */
} ngx_http_code_router_verify_conf_t;


/* code_router_scan_address: what the scan record keeps of the client's
 * address (ngx_http_code_router_address.c). */
typedef enum {
    CR_ADDR_FULL = 0,
    CR_ADDR_TRUNCATED,                  /* IPv4 /24, IPv6 /48 */
    CR_ADDR_HASHED,                     /* keyed, rotating daily */
    CR_ADDR_NONE
} ngx_http_code_router_addr_e;


/* code_router_max_scans SCENE|campaign=ID N */
typedef struct {
    ngx_uint_t                 scene;           /* 0: by campaign */
    ngx_str_t                  campaign;
    ngx_uint_t                 max;
} ngx_http_code_router_max_t;


typedef struct {
    ngx_http_complex_value_t      *code;
    ngx_http_complex_value_t      *api;
    ngx_str_t                      interstitial;
    ngx_http_code_router_page_t   *page;        /* code_router_fallback_page,
                                                 * NULL: error_page's;
                                                 * NGX_CONF_UNSET_PTR */
    ngx_http_code_router_zone_t   *scans;       /* or NULL: not counted */
    ngx_regex_t                   *scans_ignore;  /* NGX_CONF_UNSET_PTR:
                                                   * the built-in list */
    ngx_array_t                   *scans_exclude; /* predicates, as
                                                   * proxy_no_cache's */
    ngx_uint_t                     scan_address;  /* ..._addr_e */
    ngx_array_t                   *max_scans;   /* ..._max_t */
    ngx_http_complex_value_t      *region;
    ngx_uint_t                     diverted_fallback;
    ngx_uint_t                     gs1;         /* code_router_gs1 */
    ngx_uint_t                     fallback;    /* code_router_fallback */
    ngx_str_t                      gs1_root;    /* its root=, or empty */
    ngx_uint_t                     status_server;   /* code_router_status
                                                     * scope=server */
    ngx_http_code_router_verify_conf_t  verify;
} ngx_http_code_router_loc_conf_t;


/* What the router decided about one code, for the router and the API. */
typedef struct {
    ngx_http_code_router_out_e     out;
    ngx_http_code_router_ans_e     ans;         /* the router's answer */
    ngx_str_t                      target;      /* its URL, if it has one */
    ngx_str_t                      scanned;     /* the code as given */
    unsigned                       kid;
    uint64_t                       serial;
    unsigned                       decoded:1;   /* code, kid are set */
    unsigned                       verified:1;  /* serial is set */
    unsigned                       bound:1;     /* b holds a lookup */
    unsigned                       has_scans:1;
    unsigned                       counted:1;
    const char                    *uncounted;   /* why not: a literal */
    ngx_int_t                      wechat;      /* 1, 0; NGX_DECLINED: not
                                                 * asked yet (_client()) */
    unsigned                       regional:1;  /* diverted was checked */
    unsigned                       diverted:1;
    u_char                         code[CR_CODE_LEN];
    cr_binding_t                   b;
    cr_scan_t                      scans;
    cr_receipt_t                  *receipt;     /* an on-receipt item's
                                                 * case's or pallet's
                                                 * (r->pool), or NULL */
} ngx_http_code_router_decision_t;


/*
 * Per-request log lines within a limit, per worker and per place that
 * logs one: a subject (a campaign, a record, a zone: a hash of it) at most
 * once a second, and at most CR_LOG_SLOTS lines a second in all.
 */
#define CR_LOG_SLOTS         64

typedef struct {
    time_t                         second;
    ngx_uint_t                     lines;       /* in that second */
    struct {
        uint32_t                   subject;
        time_t                     last;
    }                              slot[CR_LOG_SLOTS];
} ngx_http_code_router_limit_t;


/* A store kept open by a worker: its outage and its reader check. */
typedef struct {
    time_t                         retry;
    time_t                         reader_check;
    ngx_uint_t                     failures;    /* in this outage */
} ngx_http_code_router_outage_t;


extern ngx_module_t  ngx_http_code_router_module;


/*
 * The module's files, bottom up: each calls only files declared before
 * it here (t/11 checks it).  util; the state a request reads or adds to
 * (metrics, address, scanlog, db, scans, ledger, guard); the fallback page
 * the decision's exit sends (page); the decision every front end shares;
 * the front ends (handler, gs1, verify, api, status); nginx's own handlers
 * the module may swap (request_id, user_agent); on top the module's
 * tables (module.c, variables) and the worker's lifecycle.
 */


/* ngx_http_code_router_util.c */

/* A body answer: status, the media type (a literal), len bytes at body
 * (in the pool); never cached by Last-Modified.  What the handler returns. */
ngx_int_t ngx_http_code_router_send_body(ngx_http_request_t *r,
    char *type, ngx_uint_t status, u_char *body, size_t len);

/* The first request header named name (any case), or NULL; for those
 * nginx keeps in headers_in only in some builds (Accept), or not at all
 * (Origin, Sec-Fetch-Site). */
ngx_table_elt_t *ngx_http_code_router_header_in(ngx_http_request_t *r,
    const char *name);

/* Whether a request header named any of names (any case; the list ends
 * in an empty name) holds token (any case), as "Purpose: prefetch" does:
 * one walk of the headers for all the names. */
ngx_uint_t ngx_http_code_router_header_holds(ngx_http_request_t *r,
    ngx_str_t *names, ngx_str_t *token);

/* Pushes the response header "key: value" (len bytes) alone of its name;
 * key and value must outlive the response's headers (literals, r->pool).
 * The header, or NULL for memory. */
ngx_table_elt_t *ngx_http_code_router_header(ngx_http_request_t *r,
    const char *key, u_char *value, size_t len);

/* A literal's bytes and length, as value and len above. */
#define CR_LIT(s)  (u_char *) (s), sizeof(s) - 1

/* The pool allocator (ctx: an ngx_pool_t) the cores' callbacks take. */
void *ngx_http_code_router_alloc(void *ctx, size_t n);

/* Sets the indexed variable of index (crmcf->var_index[...]) to d[0..n),
 * which must outlive the request's variables (r->pool or static). */
#define cr_set_var(r, index, d, n)                                           \
    do {                                                                     \
        ngx_http_variable_value_t  *vv_ = &(r)->variables[index];            \
        vv_->data = (u_char *) (d);                                          \
        vv_->len = (n);                                                      \
        vv_->valid = 1;                                                      \
        vv_->not_found = 0;                                                  \
        vv_->no_cacheable = 0;                                               \
        vv_->escape = 0;                                                     \
    } while (0)

/* Sets it to the decimal digits of v; NGX_ERROR for memory. */
ngx_int_t ngx_http_code_router_set_num(ngx_http_request_t *r,
    ngx_int_t index, uint64_t v);

/* Cuts v down to its last path segment (the code). */
void ngx_http_code_router_last_segment(ngx_str_t *v);

/* Configuration: compiles value into *cv (the location's code) and makes
 * handler the location's content handler.  NGX_CONF_OK or an error. */
char *ngx_http_code_router_content(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_complex_value_t **cv, ngx_http_handler_pt handler);

/* A form body (verify, receive): whether Content-Type is
 * application/x-www-form-urlencoded (with parameters or not); and the
 * body read, in one NUL-terminated copy (r->pool), *len its bytes.  NULL
 * with *len 0 if it is over CR_FORM_MAX (413), with *len 1 for memory. */
ngx_uint_t ngx_http_code_router_form_type(ngx_http_request_t *r);
u_char *ngx_http_code_router_form_read(ngx_http_request_t *r, size_t *len);

/* Adds "Allow: methods" for a 405; NGX_ERROR for memory. */
ngx_int_t ngx_http_code_router_allow(ngx_http_request_t *r, char *methods);

/* Whether a per-request log line about subject may be written now (see
 * limit_t); the metrics count what it is about, every time. */
ngx_uint_t ngx_http_code_router_log_ok(ngx_http_code_router_limit_t *l,
    uint32_t subject);

/* A regex of ours failed to run (not "no match"): logged within a limit. */
void ngx_http_code_router_regex_failed(ngx_http_request_t *r,
    ngx_http_code_router_limit_t *l, ngx_int_t rc, const char *what);

/* ,"name":"escaped s" (or "id":"..." after '{' without a name), and
 * ,"name":"ISO 8601 time in zone tz" (null for CR_TIME_NONE): the end. */
u_char *ngx_http_code_router_json_str(u_char *p, const char *name,
    const char *s, size_t n);
u_char *ngx_http_code_router_json_time(u_char *p, const char *name,
    int64_t t, int tz);

/* Any store (binding or scan) kept open by a worker.  down(): it failed;
 * logged once per outage, retried a second later ("then" says what
 * happens meanwhile).  up(): it opened; the end of an outage is logged.
 * retry_due(): a closed store may be tried now.  readers_due(): its stale
 * reader slots are to be cleared now (every CR_READER_CHECK_S);
 * readers_cleared() logs how many were. */
void ngx_http_code_router_down(ngx_log_t *log,
    ngx_http_code_router_outage_t *o, const char *err, const char *then);
void ngx_http_code_router_up(ngx_log_t *log, ngx_http_code_router_outage_t *o,
    const char *what, ngx_str_t *path);
ngx_uint_t ngx_http_code_router_retry_due(ngx_http_code_router_outage_t *o);
ngx_uint_t ngx_http_code_router_readers_due(ngx_http_code_router_outage_t *o);
void ngx_http_code_router_readers_cleared(ngx_log_t *log, int dead,
    ngx_str_t *path);


/* ngx_http_code_router_metrics.c */

#define CR_SCENES            5          /* 0: no batch, then cr_scene_e */

/*
 * Overruns: scans of genuine codes outside every bound batch (a printer
 * that printed past its range, or a leaked code package), counted by
 * store, key id and block of 2^CR_OVERRUN_BLOCK_LG serials.  An open-
 * addressed table of keys crc32(store path)(32) | kid + 1 (9) | block
 * (20); kid + 1 = 0 is a store's own entry: the slots it holds (at most
 * CR_OVERRUN_PER_DB, so that no tenant's leaks crowd out another's) and
 * its scans that found none left.  The store's path, not its index, so
 * that the counts survive a reload that adds a store.
 */
#define CR_OVERRUN_SLOTS     1024
#define CR_OVERRUN_PER_DB    16
#define CR_OVERRUN_BLOCK_LG  20

typedef struct {
    ngx_atomic_t                   key;             /* 0: free */
    ngx_atomic_t                   count;
    ngx_atomic_t                   slots;           /* a store's entry */
} ngx_http_code_router_overrun_t;

#define CR_OVERRUN_KEY(crc, kid, block)                                    \
    ((uint64_t) (crc) << 32 | (uint64_t) (kid) << CR_OVERRUN_BLOCK_LG     \
     | (uint64_t) (block))

/* The counters in the metrics' zone, shared by every worker. */
typedef struct {
    ngx_atomic_t                   outcome[CR_OUT_N];
    ngx_atomic_t                   scene[CR_SCENES];
    ngx_atomic_t                   client[2];       /* other, wechat */
    ngx_atomic_t                   answer[CR_ANS_N];
    ngx_atomic_t                   reopened;
    ngx_atomic_t                   unusable;        /* targets, in scans */
    ngx_atomic_t                   overrun_lost;    /* no slot left */
    ngx_http_code_router_overrun_t overrun[CR_OVERRUN_SLOTS];
} ngx_http_code_router_metrics_t;

/* Counts one answer in the metrics shared by all workers. */
void ngx_http_code_router_count(ngx_http_request_t *r,
    ngx_http_code_router_out_e out, ngx_uint_t scene, ngx_uint_t wechat,
    ngx_http_code_router_ans_e ans);

/* Counts a store opened by a worker after its start. */
void ngx_http_code_router_count_reopen(void);

/* A scan answered 503 for its campaign's unusable target. */
void ngx_http_code_router_count_unusable(ngx_http_request_t *r);

/* A scan of genuine code kid, serial that no batch of store db (its path)
 * holds (an overrun or a leak: not a forgery). */
void ngx_http_code_router_count_overrun(ngx_http_request_t *r,
    ngx_str_t *db, unsigned kid, uint64_t serial);

/* The entry of key in m's overrun table, or NULL. */
ngx_http_code_router_overrun_t *ngx_http_code_router_overrun_find(
    ngx_http_code_router_metrics_t *m, uint64_t key);

/* A zone's init of ngx_atomic_t counters: size bytes of zeros in a new
 * zone, the old cycle's kept on reload.  (shm_zone->init calls it.) */
ngx_int_t ngx_http_code_router_shm_counters(ngx_shm_zone_t *shm_zone,
    void *data, size_t size);

/* The metrics' shared memory, added once by any directive that needs it. */
ngx_int_t ngx_http_code_router_add_shm(ngx_conf_t *cf);


/* ngx_http_code_router_address.c */

/* The client's address as code_router_scan_address keeps it, into *out
 * (r->pool or the connection's); NGX_ERROR for memory. */
ngx_int_t ngx_http_code_router_scan_address(ngx_http_request_t *r,
    ngx_str_t *out);


/* ngx_http_code_router_scanlog.c */

/* $code_router_scan: the scan record's JSON members, escaped. */
ngx_int_t ngx_http_code_router_scan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* ngx_http_code_router_db.c */

/* The binding store of the request's server, NULL if it is unavailable:
 * reopened when its file was replaced, retried in an outage. */
cr_store_t *ngx_http_code_router_db_store(ngx_http_request_t *r);

/* Store i (from 0) of crmcf->dbs for the status page: its path, and the
 * store to read now or NULL. */
ngx_str_t *ngx_http_code_router_db_path(
    ngx_http_code_router_main_conf_t *crmcf, ngx_uint_t i);
cr_store_t *ngx_http_code_router_db_get(
    ngx_http_code_router_main_conf_t *crmcf, ngx_uint_t i, ngx_log_t *log);

/* code_router_db PATH: checks the file now; its index into dbs plus one
 * in *index (servers naming one file share it).  NGX_CONF_OK or an
 * error, logged. */
char *ngx_http_code_router_db_add(ngx_conf_t *cf, ngx_str_t *path,
    ngx_uint_t *index);

/* Worker start, every second, worker exit: every store opened; swapped
 * files noticed, stale readers cleared, snapshots ended; every store
 * closed. */
void ngx_http_code_router_db_open_all(ngx_cycle_t *cycle);
void ngx_http_code_router_db_tick(ngx_log_t *log);
void ngx_http_code_router_db_close_all(ngx_cycle_t *cycle);


/* ngx_http_code_router_scans.c */

/* Counts a scan of (kid, serial) if count is CR_SCAN_COUNT and the
 * request is not a bot's, else only reads the count (CR_SCAN_READ and a
 * bot's scan: code_router_scans_ignored_total; CR_SCAN_NONE: no scan
 * request, counted nowhere); fills d->scans, d->counted and
 * d->has_scans.  NGX_DECLINED: no count known (the zone or its store is
 * not there).  NGX_ERROR: memory. */
ngx_int_t ngx_http_code_router_scan(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *z, unsigned kid, uint64_t serial,
    ngx_uint_t count, ngx_http_code_router_decision_t *d);

/* The zone's scan store as this worker has it open, or NULL (none, or
 * not open now): right PINs are counted there, by the embedded ledger
 * (ngx_http_code_router_ledger.c), never in the zone. */
cr_scans_t *ngx_http_code_router_scans_store(ngx_http_code_router_zone_t *z);

/* A right PIN the embedded ledger committed to the zone's store: counted
 * in code_router_scans_verified_total (the zone itself holds none). */
void ngx_http_code_router_scans_verified(ngx_http_code_router_zone_t *z);

/* The zone's name, and whether it has a scan store (a right PIN is only
 * counted for good in one). */
ngx_str_t *ngx_http_code_router_zone_name(ngx_http_code_router_zone_t *z);
ngx_uint_t ngx_http_code_router_zone_stored(ngx_http_code_router_zone_t *z);

/* The zone's slot for its receipts table (ngx_http_code_router_receipt.c
 * owns what it points to; NULL: the zone keeps no receipts). */
void **ngx_http_code_router_zone_receipts(ngx_http_code_router_zone_t *z);

/* The zone's ledger= conninfo (NUL-terminated), or "". */
ngx_str_t *ngx_http_code_router_zone_ledger(ngx_http_code_router_zone_t *z);

/* Worker start, every second, worker exit: open, flush, flush and close
 * the scan stores. */
void ngx_http_code_router_scans_open(ngx_cycle_t *cycle);
void ngx_http_code_router_scans_timer(ngx_log_t *log);
void ngx_http_code_router_scans_close(ngx_cycle_t *cycle);

/* The zones' metrics for code_router_status (only zone "only", if not
 * NULL): at most len() bytes, written from p, never past last; returns
 * the end. */
size_t ngx_http_code_router_scans_status_len(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *only);
u_char *ngx_http_code_router_scans_status(ngx_http_request_t *r, u_char *p,
    u_char *last, ngx_http_code_router_zone_t *only);

/* The directives code_router_scans and code_router_max_scans. */
char *ngx_http_code_router_scans_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_code_router_max_scans(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* ngx_http_code_router_ledger.c */

/* What a right PIN's count comes back to: rc NGX_OK and the count and
 * first time in *v, or NGX_DECLINED (v NULL: answer "unavailable").
 * Returns what finalizes the request. */
typedef ngx_int_t (*ngx_http_code_router_ledger_done_pt)(
    ngx_http_request_t *r, ngx_int_t rc, cr_scan_t *v);

/* What a PIN check's budget comes back to: rc NGX_OK and the ledger's
 * answer in *g, or NGX_DECLINED (g NULL: answer "unavailable").
 * Returns what finalizes the request. */
typedef ngx_int_t (*ngx_http_code_router_ledger_guarded_pt)(
    ngx_http_request_t *r, ngx_int_t rc, const cr_ledger_guard_t *g);

/* A PIN check the guard admitted (decision d, the guard's id of the
 * client, the PIN right or not, not yet said), to the server's
 * code_router_ledger under the guard's policy p: NGX_DONE (done will be
 * called), or NGX_DECLINED (answer "unavailable" now). */
ngx_int_t ngx_http_code_router_ledger_guard(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, const u_char *client,
    size_t client_len, ngx_uint_t right, const cr_guard_policy_t *p,
    ngx_http_code_router_ledger_guarded_pt done);

/* Counts the right PIN of decision d durably, in the server's
 * code_router_ledger or else the scan store of zone z, under request id
 * request (empty: a fresh one), in a thread pool: NGX_DONE (done will be
 * called, and the request is held until then), or NGX_DECLINED (it could
 * not be sent: answer "unavailable" now). */
ngx_int_t ngx_http_code_router_ledger_verify(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *request,
    ngx_http_code_router_zone_t *z, ngx_http_code_router_ledger_done_pt done);

/* POST .../CODE/redeem with the right PIN of decision d: the prize,
 * once per code, in the same ledger; request (required) makes a retry
 * the same answer.  NGX_DONE (answered when the ledger is), or the rc
 * of an answer already sent (400 without request, 503). */
ngx_int_t ngx_http_code_router_ledger_redeem(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *request,
    ngx_http_code_router_zone_t *z);

/* Sets $code_router_request (the page's form posts it back) to id. */
void ngx_http_code_router_ledger_set_request(ngx_http_request_t *r,
    ngx_str_t *id);

/* Registers $code_router_request (preconfiguration). */
ngx_int_t ngx_http_code_router_ledger_add_variables(ngx_conf_t *cf);

/* What a location that verifies PINs needs at configuration: the
 * metrics' zone and nginx's default thread pool. */
ngx_int_t ngx_http_code_router_ledger_embedded(ngx_conf_t *cf);

/* The directive code_router_ledger. */
char *ngx_http_code_router_ledger(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* The ledgers' metrics for code_router_status, as the zones'. */
size_t ngx_http_code_router_ledger_status_len(ngx_http_request_t *r);
u_char *ngx_http_code_router_ledger_status(ngx_http_request_t *r, u_char *p,
    u_char *last);


/* ngx_http_code_router_receipt.c */

/* The scan-time check of decision d, an item of an activate=on_receipt
 * batch signed by the key of fingerprint fp: its case or pallet received,
 * in zone z's table.  CR_OUT_OK, CR_OUT_INACTIVE (also where z keeps no
 * receipts: logged), or CR_OUT_UNAVAILABLE (the table not loaded yet).
 * Shared memory only, no lock, no store, no network. */
ngx_http_code_router_out_e ngx_http_code_router_receipt_active(
    ngx_http_request_t *r, ngx_http_code_router_zone_t *z, const uint8_t *fp,
    ngx_http_code_router_decision_t *d);

/* Whether zone z keeps receipts: NGX_OK (loaded), NGX_AGAIN (not yet
 * loaded from its scan store), NGX_DECLINED (no code_router_receipts). */
ngx_int_t ngx_http_code_router_receipts_ready(ngx_http_code_router_zone_t *z);

/* The first receipt of r's code, or of one of its n parents (a pallet
 * received covers its cases), into *first: NGX_OK, or NGX_DECLINED. */
ngx_int_t ngx_http_code_router_receipt_find(ngx_http_code_router_zone_t *z,
    const cr_receipt_t *r, const cr_parent_ref_t *parents, ngx_uint_t n,
    cr_receipt_t *first);

/* Whether z's table has room for a receipt of key fingerprint fp (else
 * counted full): asked before the receipt is made durable. */
ngx_uint_t ngx_http_code_router_receipt_room(ngx_http_code_router_zone_t *z,
    const uint8_t *fp);

/* A receipt the scan store committed (r; asked: the one the API asked
 * for; fresh: this request wrote it) into z's table; *r becomes the
 * first receipt.  NGX_OK, or NGX_BUSY: no room (logged, counted). */
ngx_int_t ngx_http_code_router_receipt_add(ngx_http_code_router_zone_t *z,
    cr_receipt_t *r, const cr_receipt_t *asked, ngx_uint_t fresh,
    ngx_log_t *log);

/* Counts the answer r to the receipt asked: received (fresh), else
 * repeated (the same store) or diverted (another store). */
void ngx_http_code_router_receipt_counted(ngx_http_code_router_zone_t *z,
    const cr_receipt_t *r, const cr_receipt_t *asked, ngx_uint_t fresh);

/* Worker start and every second: tables not yet loaded, from their scan
 * stores; with ledger=, a poll of the receipts made since the last.
 * open(): the worker's poll tasks, then a first load.  NGX_ERROR: memory. */
void ngx_http_code_router_receipts_load(ngx_log_t *log);
ngx_int_t ngx_http_code_router_receipts_open(ngx_cycle_t *cycle);

/* The zone's ledger= conninfo (NUL-terminated), or NULL (the scan store
 * keeps its receipts). */
ngx_str_t *ngx_http_code_router_receipts_ledger(
    ngx_http_code_router_zone_t *z);

/* A receipt the ledger answered, as the table keeps it. */
void ngx_http_code_router_receipt_from_ledger(cr_receipt_t *r,
    const cr_ledger_receipt_t *one);

/* The receipts' metrics for code_router_status, as the zones'. */
size_t ngx_http_code_router_receipts_status_len(ngx_http_request_t *r);
u_char *ngx_http_code_router_receipts_status(ngx_http_request_t *r,
    u_char *p, u_char *last);

/* The directive code_router_receipts. */
char *ngx_http_code_router_receipts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* ngx_http_code_router_guard.c */

/* A PIN verdict: its name ($code_router_verification, the JSON's
 * "verification") and its status; one row each, by
 * ngx_http_code_router_ver_e. */
typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     status;
} ngx_http_code_router_verdict_t;

extern const ngx_http_code_router_verdict_t
    ngx_http_code_router_verdicts[CR_VER_N];

/* Checks pin (len bytes, well formed) of genuine decision d under the
 * wrong-PIN policy, in the server's guard zone, in one critical section
 * (two workers cannot both let a locked address through); the address is
 * buyer (the API's buyer=) if not empty, else the client's.  Returns
 * CR_VER_GENUINE for a right PIN (counting it is the caller's), or
 * CR_VER_WRONG_PIN or CR_VER_LOCKED with *retry set (when to try again;
 * 0: now).  global (a code_router_ledger): the zone only admits, and
 * records nothing; the verdict, not yet said, goes to guard_ask. */
ngx_http_code_router_ver_e ngx_http_code_router_guard_check(
    ngx_http_request_t *r, ngx_http_code_router_decision_t *d,
    ngx_str_t *buyer, const u_char *pin, size_t len, ngx_uint_t global,
    int64_t *retry);

/* The admitted check (right or not) to the ledger, whose budget is
 * every node's: NGX_DONE (done gets its answer), or NGX_DECLINED
 * (answer "unavailable" now). */
ngx_int_t ngx_http_code_router_guard_ask(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *buyer, ngx_uint_t right,
    ngx_http_code_router_ledger_guarded_pt done);

/* The ledger's answer lg folded into the zone (the later of each
 * record), so that its locks are answered here at once. */
void ngx_http_code_router_guard_fold(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *buyer,
    const cr_ledger_guard_t *lg);

/* Counts verdict ver in code_router_pin_checks_total. */
void ngx_http_code_router_guard_count(ngx_http_request_t *r,
    ngx_http_code_router_ver_e ver);

/* The directive code_router_pin_guard. */
char *ngx_http_code_router_pin_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* nginx -t warns, once per zone, of a guard zone shared by servers of
 * other keys (one brand can fill it at another's cost). */
void ngx_http_code_router_guard_brand(ngx_conf_t *cf,
    ngx_http_code_router_srv_conf_t *crscf);

/* The PIN checks' and guard zones' metrics for code_router_status, as the
 * scan zones'. */
size_t ngx_http_code_router_guard_status_len(ngx_http_request_t *r);
u_char *ngx_http_code_router_guard_status(ngx_http_request_t *r, u_char *p,
    u_char *last);


/* ngx_http_code_router_page.c */

/* An outcome's message for people, in Chinese and English: HTML as it
 * stands (literals of ours), with {{scans}}, {{first_scan_zh}} or
 * {{first_scan_en}} where a request's values go. */
typedef struct {
    const char                    *zh;
    const char                    *en;
} ngx_http_code_router_message_t;

/* The pages of a template: one per outcome, then those of nginx's own
 * statuses (code_router_fallback): limit_req's 429, and any other. */
#define CR_PAGE_BUSY         CR_OUT_N
#define CR_PAGE_OTHER        (CR_OUT_N + 1)
#define CR_PAGE_N            (CR_OUT_N + 2)

/* Reads the template at path (relative: to the configuration's prefix),
 * at most 64 KB, no NUL byte; NULL (logged) if it cannot be. */
ngx_http_code_router_page_t *ngx_http_code_router_page_read(ngx_conf_t *cf,
    ngx_str_t *path);

/* Renders page for outcome out (or CR_PAGE_BUSY, _OTHER), named name
 * (empty for those two), saying msg: its placeholders
 * {{status}}, {{message_zh}}, {{message_en}} filled in now, the others
 * cut out for the request.  NGX_ERROR (logged) for an unknown or
 * unclosed placeholder, or memory. */
ngx_int_t ngx_http_code_router_page_render(ngx_conf_t *cf,
    ngx_http_code_router_page_t *page, ngx_uint_t out, const ngx_str_t *name,
    const ngx_http_code_router_message_t *msg);

/* Answers decision d with outcome out's page and status: text/html, no
 * caching, nosniff; d's count and first scan (in the location's
 * code_router_time_zone) HTML-escaped into it (d NULL: none).  What the
 * handler returns. */
ngx_int_t ngx_http_code_router_page_send(ngx_http_request_t *r,
    ngx_http_code_router_page_t *page, ngx_uint_t out, ngx_uint_t status,
    ngx_http_code_router_decision_t *d);

/* The content handler of a code_router_fallback location: the page of
 * the status error_page redirected for (429: busy; any other: not
 * found), or 404's. */
ngx_int_t ngx_http_code_router_fallback_handler(ngx_http_request_t *r);


/* ngx_http_code_router_decide.c */

/* What the module knows of an outcome: one row each, indexed by
 * ngx_http_code_router_out_e.  name: $code_router_status and the JSON's
 * "status"; fallback: the status of a fallback to error_page; api: the
 * status of the API's JSON; error: the JSON's "error", or NULL;
 * message: what code_router_fallback_page says. */
typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     fallback;
    ngx_uint_t                     api;
    const char                    *error;
    ngx_http_code_router_message_t message;     /* the fallback page's */
} ngx_http_code_router_outcome_t;

extern const ngx_http_code_router_outcome_t
    ngx_http_code_router_outcomes[CR_OUT_N];

/* The page's messages for nginx's own statuses (code_router_fallback):
 * limit_req's 429, and any other; by CR_PAGE_BUSY - CR_OUT_N. */
extern const ngx_http_code_router_message_t
    ngx_http_code_router_status_messages[CR_PAGE_N - CR_OUT_N];

/* The answers' names (the metrics' label), by ngx_http_code_router_ans_e. */
extern const char  *ngx_http_code_router_answers[CR_ANS_N];

/* What decide() does with the code's scan count: count it (a scan), read
 * it (a request that could have been one: HEAD, an API read; counted in
 * code_router_scans_ignored_total), or only read it (a PIN check: no
 * scan at all, counted in code_router_pin_checks_total). */
#define CR_SCAN_READ   0
#define CR_SCAN_COUNT  1
#define CR_SCAN_NONE   2

/* Decodes, verifies, looks up, counts (count: CR_SCAN_*) and applies the
 * scan and region rules: fills d, sets no variable.  NGX_ERROR only for
 * memory. */
ngx_int_t ngx_http_code_router_decide(ngx_http_request_t *r, ngx_str_t *code,
    ngx_uint_t count, ngx_http_code_router_decision_t *d);

/* Picks the answer to decision d in one switch on its outcome: d->ans and
 * d->target (an unusable target turns ok into unavailable). */
void ngx_http_code_router_answer(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_uint_t wechat);

/* The one exit: counts d, sets the variables, and sends its answer (a
 * redirect, the interstitial, or the fallback status for error_page).
 * CR_ANS_LINKSET: counts and sets only, returns NGX_OK, and the caller
 * sends the document. */
ngx_int_t ngx_http_code_router_send(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_uint_t wechat);

/* The target of an ok decision about bound code b for this client, and
 * its kind (redirect, URL Link, interstitial).  interstitial: the
 * location's, or NULL where none is needed (the API names the URL only).
 * NGX_DECLINED: the stored target is unusable (logged). */
ngx_int_t ngx_http_code_router_campaign_target(ngx_http_request_t *r,
    cr_binding_t *b, u_char *code, ngx_uint_t wechat, ngx_str_t *interstitial,
    ngx_str_t *url, ngx_http_code_router_ans_e *ans);

/* Sets the variables of decision d (not $code_router_target nor
 * $code_router_client, which are the router's). */
ngx_int_t ngx_http_code_router_set_vars(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d);

/* 1 if the request comes from WeChat, 0 if not, NGX_ERROR. */
ngx_int_t ngx_http_code_router_is_wechat(ngx_http_request_t *r);

/* The same, asked once per decision d (the rules and the answer). */
ngx_int_t ngx_http_code_router_client(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d);


/* ngx_http_code_router_handler.c */

/* The content handler of a code_router location. */
ngx_int_t ngx_http_code_router_handler(ngx_http_request_t *r);


/* ngx_http_code_router_gs1.c */

/* The content handler of a code_router_gs1 location (docs/gs1.md). */
ngx_int_t ngx_http_code_router_gs1_handler(ngx_http_request_t *r);


/* ngx_http_code_router_verify.c */

/* verify_start()'s api: the page (0), POST .../CODE/verify, or POST
 * .../CODE/redeem (a right PIN redeems the prize). */
#define CR_API_VERIFY   1
#define CR_API_REDEEM   2

/* GET: the page of the code; POST: reads the body (pin=...), then checks
 * the PIN.  api: JSON always, POST only (POST .../CODE/verify). */
ngx_int_t ngx_http_code_router_verify_start(ngx_http_request_t *r,
    ngx_str_t *code, ngx_uint_t api);

/* The directives code_router_verify, _verify_page, _pin_digits,
 * _time_zone; and the location configuration's part. */
char *ngx_http_code_router_verify(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_code_router_verify_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_code_router_pin_digits(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_code_router_time_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_code_router_verify_create(ngx_http_code_router_verify_conf_t
    *conf);
char *ngx_http_code_router_verify_merge(ngx_conf_t *cf,
    ngx_http_code_router_loc_conf_t *prev,
    ngx_http_code_router_loc_conf_t *conf);


/* ngx_http_code_router_receive.c */

/* POST .../CODE/receive (the API): a case or pallet received by store=,
 * dealer= (docs/loading.md, "Activation on receipt"). */
ngx_int_t ngx_http_code_router_receive_start(ngx_http_request_t *r,
    ngx_str_t *code);


/* ngx_http_code_router_api.c */

/* The content handler of a code_router_api location. */
ngx_int_t ngx_http_code_router_api_handler(ngx_http_request_t *r);


/* ngx_http_code_router_status.c */

/* The content handler of a code_router_status location. */
ngx_int_t ngx_http_code_router_status_handler(ngx_http_request_t *r);


/* ngx_http_code_router_request_id.c */

/* code_router_fast_request_id on: $request_id's handler swapped for this
 * cycle's (postconfiguration); nothing when off. */
ngx_int_t ngx_http_code_router_request_id_install(ngx_conf_t *cf);


/* ngx_http_code_router_user_agent.c */

/* code_router_fast_user_agent on: the User-Agent header's handler swapped
 * in this cycle's header hash (postconfiguration); nothing when off. */
ngx_int_t ngx_http_code_router_user_agent_install(ngx_conf_t *cf);

/* Registers $code_router_user_agent_flags (preconfiguration). */
ngx_int_t ngx_http_code_router_user_agent_add_variables(ngx_conf_t *cf);


/* ngx_http_code_router_variables.c */

/* Registers the $code_router_* variables (preconfiguration). */
ngx_int_t ngx_http_code_router_add_variables(ngx_conf_t *cf);


/* $code_router_first_scan_zh, _en: $code_router_first_scan for people,
 * in the location's code_router_time_zone, made when a page reads it. */
ngx_int_t ngx_http_code_router_local_time_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* ngx_http_code_router_worker.c */

/* Worker start and exit: every store opened, the timer started; every
 * store flushed and closed. */
ngx_int_t ngx_http_code_router_init_process(ngx_cycle_t *cycle);
void ngx_http_code_router_exit_process(ngx_cycle_t *cycle);

#endif /* NGX_HTTP_CODE_ROUTER_H */
