/*
 * ngx_http_code_router: what the module's source files share.
 *
 * ngx_http_code_router_module.c   directives, the router, metrics
 * ngx_http_code_router_scans.c    scan counters (shared memory, scan store)
 * ngx_http_code_router_api.c      the verification API (JSON)
 * ngx_http_code_router_scanlog.c  $code_router_scan, the scan record
 */

#ifndef NGX_HTTP_CODE_ROUTER_H
#define NGX_HTTP_CODE_ROUTER_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_codec.h"
#include "cr_keyfile.h"
#include "cr_scans.h"
#include "cr_store.h"
#include "cr_target.h"


#define CR_TIMER_MS          1000      /* swap check, stale readers, flush */
#define CR_READER_CHECK_S    10
#define CR_SWAP_CHECK_MS     250       /* stat of the store's path: a
                                        * published version is served
                                        * within this (plus a request) */
#define CR_HTTP_GONE         410       /* nginx has no NGX_HTTP_GONE */


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
    CR_VAR_TARGET,
    CR_VAR_CLIENT,
    CR_VAR_GENERATION,
    CR_VAR_SCANS,
    CR_VAR_FIRST_SCAN,
    CR_VAR_COUNTED,
    CR_VAR_DIVERTED,
    CR_VAR_CODE,
    CR_VAR_SCANNED,                     /* the router's argument */
    CR_VAR_SCAN,                        /* the scan record (a get handler) */
    CR_VAR_N
} ngx_http_code_router_var_e;


/* Outcomes, as counted and as $code_router_status says them. */
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
    CR_OUT_N
} ngx_http_code_router_out_e;


typedef enum {
    CR_ANS_REDIRECT = 0,                /* 302 to an https:// target */
    CR_ANS_URL_LINK,                    /* 302 to a WeChat URL Link */
    CR_ANS_INTERSTITIAL,                /* the page that opens weixin:// */
    CR_ANS_WINDOW,                      /* 302 to before_url / after_url */
    CR_ANS_FALLBACK,                    /* a status for error_page */
    CR_ANS_N
} ngx_http_code_router_ans_e;


/* Counters in shared memory: totals of all workers, kept across reloads. */
typedef struct {
    ngx_atomic_t               outcome[CR_OUT_N];
    ngx_atomic_t               scene[5];        /* 0: no batch */
    ngx_atomic_t               client[2];       /* other, wechat */
    ngx_atomic_t               answer[CR_ANS_N];
    ngx_atomic_t               reopened;
} ngx_http_code_router_metrics_t;


/* One binding store; servers naming the same file share it. */
typedef struct {
    ngx_str_t                  path;            /* NUL-terminated */
    cr_store_t                *st;              /* this worker's; or NULL */
    uint64_t                   dev;
    uint64_t                   ino;
    ngx_msec_t                 checked;         /* ngx_current_msec */
    time_t                     retry;
    time_t                     reader_check;
    ngx_uint_t                 failures;
} ngx_http_code_router_db_t;


/* The scan counters of one zone, in its shared memory. */
typedef struct {
    ngx_rbtree_t               rbtree;          /* by kid << 40 | serial,
                                                 * then the key's fp */
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                lru;             /* most recent first */
    ngx_queue_t                dirty;           /* not yet in the store */
    time_t                     last_flush;
    time_t                     flushing;        /* since; 0: nobody */
    ngx_atomic_t               codes;
    ngx_atomic_t               counted;
    ngx_atomic_t               ignored;         /* HEAD, bots, previews */
    ngx_atomic_t               loaded;          /* read from the store */
    ngx_atomic_t               evicted;
    ngx_atomic_t               full;            /* scans not counted */
    ngx_atomic_t               flushes;
    ngx_atomic_t               flush_errors;
    ngx_atomic_t               unavailable;     /* not counted: no store */
} ngx_http_code_router_scans_sh_t;


typedef struct {
    ngx_rbtree_node_t          node;
    ngx_queue_t                lru;
    ngx_queue_t                dirty;
    uint64_t                   key;             /* kid << 40 | serial */
    uint8_t                    fp[CR_SCANS_FP_LEN]; /* of the key */
    uint32_t                   count;
    uint32_t                   stored;          /* as the store has it */
    int64_t                    first;
    time_t                     touched;         /* last LRU move */
    unsigned                   in_dirty:1;
} ngx_http_code_router_scan_node_t;


typedef struct ngx_http_code_router_zone_s  ngx_http_code_router_zone_t;


/* A write of the scan store in a thread pool. */
typedef struct {
    ngx_http_code_router_zone_t       *zone;
    ngx_uint_t                         n;
    int                                rc;
} ngx_http_code_router_flush_t;


/* A code_router_scans zone and its scan store. */
struct ngx_http_code_router_zone_s {
    ngx_str_t                          name;
    ngx_shm_zone_t                    *shm_zone;
    ngx_slab_pool_t                   *shpool;
    ngx_http_code_router_scans_sh_t   *sh;
    ngx_str_t                          store;   /* NUL-terminated; or "" */
    uint64_t                           store_size;
    time_t                             flush;   /* seconds */
    cr_scans_t                        *sc;      /* this worker's */
    ngx_str_t                          thread_pool;
    time_t                             flush_stamp; /* of our flush */
    /* This worker's flush of this zone: the records (sorted for the
     * write) and, in the order taken, their nodes and counts; marking
     * them needs no tree search.  Dirty nodes are never evicted, and only
     * the one flusher takes them off the dirty queue. */
    cr_scan_t                         *flush_buf;
    ngx_http_code_router_scan_node_t **flush_nodes;
    uint32_t                          *flush_counts;
#if (NGX_THREADS)
    ngx_thread_pool_t                 *tp;
    ngx_thread_task_t                 *task;
    unsigned                           busy:1;  /* a write in the pool */
#endif
    time_t                             retry;
    time_t                             reader_check;
    ngx_uint_t                         failures; /* in this outage */
};


typedef struct {
    ngx_int_t                  var_index[CR_VAR_N];
    ngx_array_t                dbs;             /* ngx_http_code_router_db_t */
    ngx_array_t                zones;           /* zone_t * */
    ngx_array_t                keys;            /* ..._key_use_t: at
                                                 * configuration only */
    ngx_shm_zone_t            *shm;
} ngx_http_code_router_main_conf_t;


typedef struct {
    cr_keyring_t              *ring;
    ngx_regex_t               *wechat_ua;
    ngx_str_t                  wechat_literal;  /* the regex, if it is
                                                 * plain text; else "" */
    ngx_http_code_router_db_t *db;
    ngx_uint_t                 db_index;        /* into dbs, plus one */
} ngx_http_code_router_srv_conf_t;


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
    ngx_http_code_router_zone_t   *scans;       /* or NULL: not counted */
    ngx_regex_t                   *scans_ignore;  /* NGX_CONF_UNSET_PTR:
                                                   * the built-in list */
    ngx_array_t                   *max_scans;   /* ..._max_t */
    ngx_http_complex_value_t      *region;
    ngx_uint_t                     diverted_fallback;
} ngx_http_code_router_loc_conf_t;


/* What the router decided about one code, for the router and the API. */
typedef struct {
    ngx_http_code_router_out_e     out;
    unsigned                       kid;
    uint64_t                       serial;
    unsigned                       verified:1;
    unsigned                       bound:1;     /* b holds a lookup */
    unsigned                       has_scans:1;
    unsigned                       counted:1;
    unsigned                       diverted:1;
    u_char                         code[CR_CODE_LEN];
    cr_binding_t                   b;
    cr_scan_t                      scans;
} ngx_http_code_router_decision_t;


extern ngx_module_t  ngx_http_code_router_module;
extern ngx_str_t     ngx_http_code_router_outcomes[CR_OUT_N];


void ngx_http_code_router_last_segment(ngx_str_t *v);
ngx_int_t ngx_http_code_router_set_var(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, u_char *data, size_t len);
ngx_int_t ngx_http_code_router_set_num(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, uint64_t v);
ngx_int_t ngx_http_code_router_decide(ngx_http_request_t *r, ngx_str_t *code,
    ngx_uint_t count, ngx_http_code_router_decision_t *d);
ngx_int_t ngx_http_code_router_outcome(ngx_http_request_t *r,
    ngx_http_code_router_out_e out);
ngx_int_t ngx_http_code_router_build(ngx_http_request_t *r, cr_binding_t *b,
    u_char *code, cr_target_pt build, ngx_str_t *out);

void ngx_http_code_router_down(ngx_log_t *log, ngx_uint_t *failures,
    time_t *retry, const char *err, const char *then);
void ngx_http_code_router_up(ngx_log_t *log, ngx_uint_t *failures,
    const char *what, ngx_str_t *path);

char *ngx_http_code_router_scans_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_code_router_max_scans(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_code_router_scan(ngx_http_request_t *r,
    ngx_http_code_router_zone_t *z, unsigned kid, uint64_t serial,
    ngx_uint_t count, ngx_http_code_router_decision_t *d);
void ngx_http_code_router_scans_open(ngx_cycle_t *cycle);
void ngx_http_code_router_scans_timer(ngx_log_t *log);
void ngx_http_code_router_scans_close(ngx_cycle_t *cycle);
void ngx_http_code_router_scans_status(ngx_http_request_t *r, u_char **p);
size_t ngx_http_code_router_scans_status_len(ngx_http_request_t *r);

char *ngx_http_code_router_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_code_router_scan_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

#endif /* NGX_HTTP_CODE_ROUTER_H */
