/*
 * ngx_http_code_router_module: the landing router for one-item-one-code
 * QR codes.  Decodes and verifies the code, looks up its binding in the
 * LMDB store, and answers: a redirect, the mini-program interstitial, or a
 * status for nginx's error_page.  See README.md for directives, variables
 * and outcomes.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_valid.h"
#include "ngx_http_code_router.h"


typedef struct {
    ngx_str_t                   name;
    ngx_http_code_router_var_e  slot;
    ngx_http_get_variable_pt    get;        /* NULL: set by the handler */
} ngx_http_code_router_var_t;


/* A code_router_key seen so far: one master key serves one key id. */
typedef struct {
    ngx_uint_t                  kid;
    ngx_str_t                   path;
    u_char                      digest[CR_MASTER_DIGEST_LEN];
} ngx_http_code_router_key_use_t;


static ngx_int_t ngx_http_code_router_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_code_router_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_code_router_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_code_router_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_code_router_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_code_router_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_code_router_db(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_key_use(ngx_conf_t *cf, ngx_uint_t kid,
    ngx_str_t *path, const uint8_t master[CR_MASTER_KEY_LEN]);
static char *ngx_http_code_router_wechat_ua(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_code_router_literal(ngx_str_t *pattern,
    ngx_str_t *literal);
static ngx_uint_t ngx_http_code_router_find(ngx_str_t *s, ngx_str_t *t);
static ngx_regex_t *ngx_http_code_router_regex(ngx_conf_t *cf,
    ngx_str_t *pattern);
static char *ngx_http_code_router_interstitial(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_code_router(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_scans_ignore(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_code_router_add_shm(ngx_conf_t *cf);
static ngx_int_t ngx_http_code_router_init_shm(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_code_router_wipe(void *data);
static ngx_int_t ngx_http_code_router_init_process(ngx_cycle_t *cycle);
static void ngx_http_code_router_exit_process(ngx_cycle_t *cycle);
static void ngx_http_code_router_timer(ngx_event_t *ev);
static cr_store_t *ngx_http_code_router_store(ngx_http_code_router_db_t *db,
    ngx_log_t *log);
static ngx_int_t ngx_http_code_router_db_open(ngx_http_code_router_db_t *db,
    ngx_log_t *log);
static void ngx_http_code_router_db_close(ngx_http_code_router_db_t *db);
static ngx_int_t ngx_http_code_router_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_region(ngx_http_request_t *r,
    ngx_http_code_router_loc_conf_t *crlcf,
    ngx_http_code_router_decision_t *d);
static ngx_uint_t ngx_http_code_router_overscanned(
    ngx_http_code_router_loc_conf_t *crlcf,
    ngx_http_code_router_decision_t *d);
static ngx_int_t ngx_http_code_router_answer(ngx_http_request_t *r,
    cr_binding_t *b, u_char *code, ngx_uint_t wechat);
static ngx_int_t ngx_http_code_router_redirect(ngx_http_request_t *r,
    ngx_str_t *url, ngx_http_code_router_ans_e ans);
static void ngx_http_code_router_count(ngx_http_request_t *r,
    ngx_http_code_router_out_e out, ngx_uint_t scene, ngx_uint_t wechat,
    ngx_http_code_router_ans_e ans);
static ngx_int_t ngx_http_code_router_set_binding(ngx_http_request_t *r,
    cr_binding_t *b);
static ngx_int_t ngx_http_code_router_is_wechat(ngx_http_request_t *r,
    ngx_http_code_router_srv_conf_t *cscf);
static void *ngx_http_code_router_alloc(void *ctx, size_t n);
static ngx_int_t ngx_http_code_router_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_code_router_code_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_code_router_status_handler(ngx_http_request_t *r);


static ngx_conf_enum_t  ngx_http_code_router_diverted_actions[] = {
    { ngx_string("none"), 0 },
    { ngx_string("fallback"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_code_router_commands[] = {

    { ngx_string("code_router_db"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_db,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE23,
      ngx_http_code_router_key,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_wechat_ua"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_wechat_ua,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_interstitial"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_interstitial,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_code_router_loc_conf_t, interstitial),
      NULL },

    { ngx_string("code_router"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_code_router_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_code_router_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_scans"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_code_router_scans_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_scans_ignore"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_scans_ignore,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_max_scans"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_code_router_max_scans,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_region"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_code_router_loc_conf_t, region),
      NULL },

    { ngx_string("code_router_diverted_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_code_router_loc_conf_t, diverted_fallback),
      &ngx_http_code_router_diverted_actions },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_code_router_module_ctx = {
    ngx_http_code_router_preconfiguration,  /* preconfiguration */
    NULL,                                   /* postconfiguration */

    ngx_http_code_router_create_main_conf,  /* create main configuration */
    NULL,                                   /* init main configuration */

    ngx_http_code_router_create_srv_conf,   /* create server configuration */
    ngx_http_code_router_merge_srv_conf,    /* merge server configuration */

    ngx_http_code_router_create_loc_conf,   /* create location configuration */
    ngx_http_code_router_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_code_router_module = {
    NGX_MODULE_V1,
    &ngx_http_code_router_module_ctx,       /* module context */
    ngx_http_code_router_commands,          /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    ngx_http_code_router_init_process,      /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    ngx_http_code_router_exit_process,      /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_code_router_var_t  ngx_http_code_router_vars[] = {
    { ngx_string("code_router_status"), CR_VAR_STATUS, NULL },
    { ngx_string("code_router_kid"), CR_VAR_KID, NULL },
    { ngx_string("code_router_serial"), CR_VAR_SERIAL, NULL },
    { ngx_string("code_router_batch"), CR_VAR_BATCH, NULL },
    { ngx_string("code_router_scene"), CR_VAR_SCENE, NULL },
    { ngx_string("code_router_campaign"), CR_VAR_CAMPAIGN, NULL },
    { ngx_string("code_router_campaign_name"), CR_VAR_CAMPAIGN_NAME, NULL },
    { ngx_string("code_router_sku"), CR_VAR_SKU, NULL },
    { ngx_string("code_router_gtin"), CR_VAR_GTIN, NULL },
    { ngx_string("code_router_lot"), CR_VAR_LOT, NULL },
    { ngx_string("code_router_production_date"), CR_VAR_PRODUCED, NULL },
    { ngx_string("code_router_region"), CR_VAR_REGION, NULL },
    { ngx_string("code_router_target"), CR_VAR_TARGET, NULL },
    { ngx_string("code_router_client"), CR_VAR_CLIENT, NULL },
    { ngx_string("code_router_generation"), CR_VAR_GENERATION, NULL },
    { ngx_string("code_router_scans"), CR_VAR_SCANS, NULL },
    { ngx_string("code_router_first_scan"), CR_VAR_FIRST_SCAN, NULL },
    { ngx_string("code_router_scan_counted"), CR_VAR_COUNTED, NULL },
    { ngx_string("code_router_diverted"), CR_VAR_DIVERTED, NULL },
    /* Known before any handler ran: a front nginx hashes on it. */
    { ngx_string("code_router_code"), CR_VAR_CODE,
      ngx_http_code_router_code_variable },
    { ngx_string("code_router_scanned"), CR_VAR_SCANNED, NULL },
    { ngx_string("code_router_scan"), CR_VAR_SCAN,
      ngx_http_code_router_scan_variable },
    { ngx_null_string, CR_VAR_N, NULL }
};


ngx_str_t  ngx_http_code_router_outcomes[CR_OUT_N] = {
    ngx_string("ok"), ngx_string("unbound"), ngx_string("revoked"),
    ngx_string("not_started"), ngx_string("ended"), ngx_string("malformed"),
    ngx_string("forged"), ngx_string("unavailable"),
    ngx_string("overscanned"), ngx_string("diverted"),
    ngx_string("retired")
};

/* The status answered when an outcome falls back to error_page. */
static ngx_int_t  ngx_http_code_router_fallback_status[CR_OUT_N] = {
    NGX_HTTP_SERVICE_UNAVAILABLE,       /* ok, but the target is unusable */
    NGX_HTTP_NOT_FOUND,                 /* unbound */
    CR_HTTP_GONE,                       /* revoked */
    NGX_HTTP_NOT_FOUND,                 /* not_started: will exist */
    CR_HTTP_GONE,                       /* ended: gone for good */
    NGX_HTTP_NOT_FOUND,                 /* malformed */
    NGX_HTTP_NOT_FOUND,                 /* forged */
    NGX_HTTP_SERVICE_UNAVAILABLE,       /* unavailable */
    CR_HTTP_GONE,                       /* overscanned: used up */
    NGX_HTTP_FORBIDDEN,                 /* diverted */
    CR_HTTP_GONE                        /* retired: genuine, out of use */
};

static const char  *ngx_http_code_router_answers[CR_ANS_N] = {
    "redirect", "url_link", "interstitial", "window", "fallback"
};

static ngx_str_t  ngx_http_code_router_default_ua =
    ngx_string("MicroMessenger");


static ngx_str_t  ngx_http_code_router_shm_name =
    ngx_string("code_router_metrics_3");    /* a new layout, a new name */

static ngx_event_t  ngx_http_code_router_timer_ev;
static ngx_connection_t  ngx_http_code_router_timer_conn;


static ngx_int_t
ngx_http_code_router_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t               *var;
    ngx_http_code_router_var_t        *v;
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    for (v = ngx_http_code_router_vars; v->name.len; v++) {
        /* The scan record is rendered anew when the log reads it: its
         * status and request time are the final ones. */
        var = ngx_http_add_variable(cf, &v->name,
                                    v->slot == CR_VAR_SCAN
                                    ? NGX_HTTP_VAR_NOCACHEABLE : 0);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get ? v->get : ngx_http_code_router_variable;
        var->data = v->slot;

        cmcf->var_index[v->slot] = ngx_http_get_variable_index(cf, &v->name);
        if (cmcf->var_index[v->slot] == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void *
ngx_http_code_router_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&cmcf->dbs, cf->pool, 2,
                       sizeof(ngx_http_code_router_db_t))
        != NGX_OK
        || ngx_array_init(&cmcf->zones, cf->pool, 2,
                          sizeof(ngx_http_code_router_zone_t *))
           != NGX_OK
        || ngx_array_init(&cmcf->keys, cf->pool, 4,
                          sizeof(ngx_http_code_router_key_use_t))
           != NGX_OK)
    {
        return NULL;
    }

    return cmcf;
}


static void *
ngx_http_code_router_create_srv_conf(ngx_conf_t *cf)
{
    /* All NULL or 0 until set: merged from the parent. */
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_srv_conf_t));
}


static char *
ngx_http_code_router_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_code_router_srv_conf_t  *prev = parent;
    ngx_http_code_router_srv_conf_t  *conf = child;

    /* Keys are inherited only by a server that declares none itself. */
    if (conf->ring == NULL) {
        conf->ring = prev->ring;
    }

    if (conf->db_index == 0) {
        conf->db_index = prev->db_index;
    }

    if (conf->wechat_ua == NULL) {
        if (prev->wechat_ua == NULL) {
            prev->wechat_ua = ngx_http_code_router_regex(cf,
                                        &ngx_http_code_router_default_ua);
            if (prev->wechat_ua == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_http_code_router_literal(&ngx_http_code_router_default_ua,
                                         &prev->wechat_literal);
        }

        conf->wechat_ua = prev->wechat_ua;
        conf->wechat_literal = prev->wechat_literal;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_code_router_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_code_router_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->scans = NGX_CONF_UNSET_PTR;
    conf->scans_ignore = NGX_CONF_UNSET_PTR;
    conf->max_scans = NGX_CONF_UNSET_PTR;
    conf->region = NGX_CONF_UNSET_PTR;
    conf->diverted_fallback = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_code_router_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_code_router_loc_conf_t  *prev = parent;
    ngx_http_code_router_loc_conf_t  *conf = child;

    ngx_http_code_router_srv_conf_t  *cscf;

    ngx_conf_merge_str_value(conf->interstitial, prev->interstitial, "");
    ngx_conf_merge_ptr_value(conf->scans, prev->scans, NULL);
    ngx_conf_merge_ptr_value(conf->max_scans, prev->max_scans, NULL);
    ngx_conf_merge_ptr_value(conf->region, prev->region, NULL);
    ngx_conf_merge_uint_value(conf->diverted_fallback,
                              prev->diverted_fallback, 0);

    /* Unset everywhere: the built-in list (NGX_CONF_UNSET_PTR stays). */
    ngx_conf_merge_ptr_value(conf->scans_ignore, prev->scans_ignore,
                             NGX_CONF_UNSET_PTR);

    if (conf->code == NULL && conf->api == NULL) {
        return NGX_CONF_OK;
    }

    /* The server's conf is merged before its locations: a code_router
     * location without a store or keys is a mistake nginx -t must catch. */
    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_code_router_module);

    if (cscf->db_index == 0 || cscf->ring == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" needs \"%s\" in its server or at "
                      "the http level",
                      conf->code ? "code_router" : "code_router_api",
                      cscf->db_index == 0 ? "code_router_db"
                                          : "code_router_key");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * code_router_db PATH: checked now (so "nginx -t" fails on a missing or
 * foreign file), opened in each worker.
 */
static char *
ngx_http_code_router_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_srv_conf_t *cscf = conf;

    char                               err[1024];
    ngx_str_t                         *value, path;
    ngx_uint_t                         i;
    cr_store_t                        *st;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *cmcf;

    if (cscf->db_index) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);
    db = cmcf->dbs.elts;

    for (i = 0; i < cmcf->dbs.nelts; i++) {
        if (db[i].path.len == path.len
            && ngx_strncmp(db[i].path.data, path.data, path.len) == 0)
        {
            cscf->db_index = i + 1;
            return NGX_CONF_OK;
        }
    }

    if (cr_store_open(&st, (char *) path.data,
                      CR_STORE_RDONLY | CR_STORE_CHECK, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cr_store_close(st);

    db = ngx_array_push(&cmcf->dbs);
    if (db == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(db, sizeof(ngx_http_code_router_db_t));
    db->path = path;
    cscf->db_index = cmcf->dbs.nelts;

    return NGX_CONF_OK;
}


/*
 * code_router_key KID FILE [retired]: read and derive now, so "nginx -t"
 * checks it.  A retired key id still verifies its codes, which then
 * answer "retired" instead of being looked up.
 */
static char *
ngx_http_code_router_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_srv_conf_t *cscf = conf;

    int                  rc;
    char                 err[512], *msg;
    uint8_t              master[CR_MASTER_KEY_LEN];
    cr_key_t             key;
    ngx_int_t            kid;
    ngx_str_t           *value, path;
    ngx_uint_t           retired;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    kid = ngx_atoi(value[1].data, value[1].len);
    if (kid == NGX_ERROR || kid > CR_KID_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key id \"%V\": a key id is 0..%d",
                           &value[1], CR_KID_MAX);
        return NGX_CONF_ERROR;
    }

    retired = 0;

    if (cf->args->nelts == 4) {
        if (value[3].len != 7
            || ngx_strncmp(value[3].data, "retired", 7) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": the only one "
                               "after the file is \"retired\"", &value[3]);
            return NGX_CONF_ERROR;
        }

        retired = 1;
    }

    path = value[2];
    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (cscf->ring == NULL) {
        cscf->ring = ngx_pcalloc(cf->pool, sizeof(cr_keyring_t));
        if (cscf->ring == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_code_router_wipe;
        cln->data = cscf->ring;
    }

    /* path is NUL-terminated by ngx_conf_full_name() */
    if (cr_keyfile_read((char *) path.data, master, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    msg = ngx_http_code_router_key_use(cf, (ngx_uint_t) kid, &path, master);
    if (msg != NGX_CONF_OK) {
        cr_key_wipe(master, sizeof(master));
        return msg;
    }

    rc = cr_key_derive(&key, (unsigned) kid, master);
    cr_key_wipe(master, sizeof(master));

    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot derive keys from \"%V\"", &path);
        return NGX_CONF_ERROR;
    }

    key.retired = (uint8_t) retired;

    rc = cr_keyring_add(cscf->ring, &key);
    cr_key_wipe(&key, sizeof(key));

    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate key id %i", kid);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * One master key per key id, across every server: with one file serving
 * two key ids, a leak of it compromises both, and the separation the key
 * ids were meant to give is not there.  The same key for the same key id
 * in two servers (one file, or a copy) is fine.  Only digests are kept.
 */
static char *
ngx_http_code_router_key_use(ngx_conf_t *cf, ngx_uint_t kid, ngx_str_t *path,
    const uint8_t master[CR_MASTER_KEY_LEN])
{
    u_char                            digest[CR_MASTER_DIGEST_LEN];
    ngx_uint_t                        i;
    ngx_http_code_router_key_use_t   *use;
    ngx_http_code_router_main_conf_t *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    cr_keyfile_digest(master, digest);

    use = cmcf->keys.elts;

    for (i = 0; i < cmcf->keys.nelts; i++) {
        if (use[i].kid != kid
            && ngx_memcmp(use[i].digest, digest, CR_MASTER_DIGEST_LEN) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "key file \"%V\" for key id %ui holds the "
                               "same master key as \"%V\" for key id %ui: "
                               "give every key id its own key (code-router "
                               "keygen)", path, kid, &use[i].path,
                               use[i].kid);
            return NGX_CONF_ERROR;
        }
    }

    use = ngx_array_push(&cmcf->keys);
    if (use == NULL) {
        return NGX_CONF_ERROR;
    }

    use->kid = kid;
    use->path = *path;
    ngx_memcpy(use->digest, digest, CR_MASTER_DIGEST_LEN);

    return NGX_CONF_OK;
}


static char *
ngx_http_code_router_wechat_ua(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_srv_conf_t *cscf = conf;

    ngx_str_t  *value;

    if (cscf->wechat_ua) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cscf->wechat_ua = ngx_http_code_router_regex(cf, &value[1]);
    if (cscf->wechat_ua == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_code_router_literal(&value[1], &cscf->wechat_literal);

    return NGX_CONF_OK;
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


/*
 * A pattern with no metacharacter matches wherever its text occurs: a
 * substring search over a phone's User-Agent costs a fraction of a PCRE
 * call, even JIT-compiled.  The regex is compiled anyway (nginx -t).
 */
static void
ngx_http_code_router_literal(ngx_str_t *pattern, ngx_str_t *literal)
{
    size_t  i;

    ngx_str_null(literal);

    for (i = 0; i < pattern->len; i++) {
        if (ngx_strchr("\\^$.|?*+()[]{}", pattern->data[i]) != NULL) {
            return;
        }
    }

    *literal = *pattern;
}


/* nginx's own PCRE; a bad pattern is reported with file and line. */
/* code_router_scans_ignore REGEX | off: User-Agents that are not scans. */
static char *
ngx_http_code_router_scans_ignore(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t  *value;

    if (crlcf->scans_ignore != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        crlcf->scans_ignore = NULL;
        return NGX_CONF_OK;
    }

    crlcf->scans_ignore = ngx_http_code_router_regex(cf, &value[1]);
    if (crlcf->scans_ignore == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_regex_t *
ngx_http_code_router_regex(ngx_conf_t *cf, ngx_str_t *pattern)
{
    ngx_regex_compile_t  rc;
    u_char               errstr[NGX_MAX_CONF_ERRSTR];

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = *pattern;
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NULL;
    }

    return rc.regex;
}


/* code_router_interstitial URI | @name */
static char *
ngx_http_code_router_interstitial(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    char       *rv;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (crlcf->interstitial.data[0] != '/'
        && crlcf->interstitial.data[0] != '@')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "code_router_interstitial \"%V\" must be a URI "
                           "starting with \"/\" or a named location",
                           &crlcf->interstitial);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* code_router COMPLEX_VALUE: the content handler of a location. */
static char *
ngx_http_code_router(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t                         *value;
    ngx_http_core_loc_conf_t          *clcf;
    ngx_http_compile_complex_value_t   ccv;

    if (crlcf->code) {
        return "is duplicate";
    }

    value = cf->args->elts;

    crlcf->code = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (crlcf->code == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = crlcf->code;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_code_router_add_shm(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_code_router_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    if (ngx_http_code_router_add_shm(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_code_router_add_shm(ngx_conf_t *cf)
{
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);
    if (cmcf->shm) {
        return NGX_OK;
    }

    cmcf->shm = ngx_shared_memory_add(cf, &ngx_http_code_router_shm_name,
                                      8 * ngx_pagesize,
                                      &ngx_http_code_router_module);
    if (cmcf->shm == NULL) {
        return NGX_ERROR;
    }

    cmcf->shm->init = ngx_http_code_router_init_shm;

    return NGX_OK;
}


/* The counters survive a reload: a zone of the old cycle is adopted. */
static ngx_int_t
ngx_http_code_router_init_shm(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shm_zone->data = ngx_slab_calloc(shpool,
                                     sizeof(ngx_http_code_router_metrics_t));
    if (shm_zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm_zone->data;

    return NGX_OK;
}


static void
ngx_http_code_router_wipe(void *data)
{
    cr_key_wipe(data, sizeof(cr_keyring_t));
}


/*
 * Each worker opens its stores here (never before fork).  A store that
 * cannot be opened is logged and retried at requests, which answer 503
 * meanwhile: a worker that failed here would exit and not be respawned.
 */
static ngx_int_t
ngx_http_code_router_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_code_router_module);
    if (cmcf == NULL || cmcf->dbs.nelts == 0) {
        return NGX_OK;
    }

    db = cmcf->dbs.elts;

    for (i = 0; i < cmcf->dbs.nelts; i++) {
        (void) ngx_http_code_router_db_open(&db[i], cycle->log);
    }

    ngx_http_code_router_scans_open(cycle);

    ngx_memzero(&ngx_http_code_router_timer_conn, sizeof(ngx_connection_t));
    ngx_http_code_router_timer_conn.fd = (ngx_socket_t) -1;

    ngx_memzero(&ngx_http_code_router_timer_ev, sizeof(ngx_event_t));
    ngx_http_code_router_timer_ev.handler = ngx_http_code_router_timer;
    ngx_http_code_router_timer_ev.log = cycle->log;
    ngx_http_code_router_timer_ev.data = &ngx_http_code_router_timer_conn;
    ngx_http_code_router_timer_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_code_router_timer_ev, CR_TIMER_MS);

    return NGX_OK;
}


static void
ngx_http_code_router_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_code_router_module);
    if (cmcf == NULL) {
        return;
    }

    db = cmcf->dbs.elts;

    for (i = 0; i < cmcf->dbs.nelts; i++) {
        ngx_http_code_router_db_close(&db[i]);
    }

    ngx_http_code_router_scans_close(cycle);
}


/*
 * Between requests: notice a swapped file, clear dead readers' slots, and
 * end the snapshot lookups keep between commits, so that an idle worker
 * pins a loader's freed pages for a second at most.
 */
static void
ngx_http_code_router_timer(ngx_event_t *ev)
{
    ngx_uint_t                         i;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *cmcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_code_router_module);
    db = cmcf->dbs.elts;

    for (i = 0; i < cmcf->dbs.nelts; i++) {
        if (ngx_http_code_router_store(&db[i], ev->log) != NULL) {
            cr_store_release(db[i].st);
        }
    }

    ngx_http_code_router_scans_timer(ev->log);

    ngx_add_timer(ev, CR_TIMER_MS);
}


/*
 * The store to read now, or NULL (unavailable).  At most every
 * CR_SWAP_CHECK_MS: stat the path; a replaced file (another inode, e.g. a
 * symlink flipped by code-router publish) is reopened at once, a missing
 * one closed; a closed store is retried (once a second).
 */
static cr_store_t *
ngx_http_code_router_store(ngx_http_code_router_db_t *db, ngx_log_t *log)
{
    int                                dead;
    time_t                             now;
    ngx_file_info_t                    fi;
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *cmcf;

    if (ngx_current_msec - db->checked < CR_SWAP_CHECK_MS) {
        return db->st;
    }

    db->checked = ngx_current_msec;
    now = ngx_time();

    if (db->st) {
        if (ngx_file_info(db->path.data, &fi) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "code router: store \"%V\" is gone; answering "
                          "503 until it is back", &db->path);
            ngx_http_code_router_db_close(db);

        } else if ((uint64_t) fi.st_ino != db->ino
                   || (uint64_t) fi.st_dev != db->dev)
        {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "code router: store \"%V\" was replaced; "
                          "reopening", &db->path);
            ngx_http_code_router_db_close(db);
            db->retry = 0;
        }
    }

    if (db->st == NULL && now >= db->retry
        && ngx_http_code_router_db_open(db, log) == NGX_OK)
    {
        cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_code_router_module);
        if (cmcf->shm && cmcf->shm->data) {
            m = cmcf->shm->data;
            (void) ngx_atomic_fetch_add(&m->reopened, 1);
        }
    }

    if (db->st && now >= db->reader_check) {
        db->reader_check = now + CR_READER_CHECK_S;
        dead = cr_store_reader_check(db->st);

        if (dead > 0) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "code router: cleared %d stale reader slot(s) of "
                          "\"%V\"", dead, &db->path);
        }
    }

    return db->st;
}


static ngx_int_t
ngx_http_code_router_db_open(ngx_http_code_router_db_t *db, ngx_log_t *log)
{
    char  err[1024];

    if (cr_store_open(&db->st, (char *) db->path.data, CR_STORE_RDONLY, err,
                      sizeof(err))
        != 0)
    {
        db->st = NULL;
        ngx_http_code_router_down(log, &db->failures, &db->retry, err,
                                  "answering 503 until it opens");
        return NGX_ERROR;
    }

    ngx_http_code_router_up(log, &db->failures, "store", &db->path);
    cr_store_file_id(db->st, &db->dev, &db->ino);
    cr_store_set_check(db->st, cr_target_check);
    db->checked = ngx_current_msec;
    db->reader_check = 0;

    return NGX_OK;
}


/*
 * A store (binding or scan) failed: logged once per outage, then quietly
 * retried every second; "then" says what happens meanwhile.
 */
void
ngx_http_code_router_down(ngx_log_t *log, ngx_uint_t *failures,
    time_t *retry, const char *err, const char *then)
{
    *retry = ngx_time() + 1;

    if ((*failures)++ == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0, "code router: %s; %s", err, then);
    }
}


/* ... and the end of the outage, if there was one. */
void
ngx_http_code_router_up(ngx_log_t *log, ngx_uint_t *failures,
    const char *what, ngx_str_t *path)
{
    if (*failures) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "code router: %s \"%V\" is open again", what, path);
        *failures = 0;
    }
}


static void
ngx_http_code_router_db_close(ngx_http_code_router_db_t *db)
{
    if (db->st) {
        cr_store_close(db->st);
        db->st = NULL;
    }
}


static ngx_int_t
ngx_http_code_router_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc, wechat;
    ngx_str_t                           code;
    ngx_uint_t                          scene;
    ngx_table_elt_t                    *allow;
    ngx_http_code_router_srv_conf_t    *cscf;
    ngx_http_code_router_loc_conf_t    *crlcf;
    ngx_http_code_router_decision_t    *d;

    /* Before any answer, the 405 too: an unread body would be parsed as
     * the next request on a keep-alive connection. */
    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        allow = ngx_list_push(&r->headers_out.headers);
        if (allow == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow->hash = 1;
#if (nginx_version >= 1023000)
        /* 1.23 chains headers of one name: this one is alone. */
        allow->next = NULL;
#endif
        ngx_str_set(&allow->key, "Allow");
        ngx_str_set(&allow->value, "GET, HEAD");

        return NGX_HTTP_NOT_ALLOWED;
    }

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    if (ngx_http_complex_value(r, crlcf->code, &code) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* "code_router $uri;" in a prefix location needs no regex (and
     * /01/.../21/CODE paths work too). */
    ngx_http_code_router_last_segment(&code);

    wechat = ngx_http_code_router_is_wechat(r, cscf);
    if (wechat == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_http_code_router_set_var(r, CR_VAR_CLIENT,
                                        (u_char *) (wechat ? "wechat"
                                                           : "other"),
                                        wechat ? 6 : 5);

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

    if (!d->bound) {
        ngx_http_code_router_count(r, d->out, 0, wechat, CR_ANS_FALLBACK);
        return ngx_http_code_router_fallback_status[d->out];
    }

    if (d->out != CR_OUT_OK && d->out != CR_OUT_NOT_STARTED
        && d->out != CR_OUT_ENDED)
    {
        scene = d->b.has_batch ? d->b.batch.scene : 0;
        ngx_http_code_router_count(r, d->out, scene, wechat,
                                   CR_ANS_FALLBACK);
        return ngx_http_code_router_fallback_status[d->out];
    }

    return ngx_http_code_router_answer(r, &d->b, d->code, wechat);
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


/*
 * Decodes, verifies, looks up, counts and applies the scan and region
 * rules: everything but the answer, which the router and the API each give
 * in their own form.  Sets the variables.  NGX_ERROR only for memory.
 */
ngx_int_t
ngx_http_code_router_decide(ngx_http_request_t *r, ngx_str_t *code,
    ngx_uint_t count, ngx_http_code_router_decision_t *d)
{
    ngx_int_t                          rc;
    cr_store_t                        *st;
    cr_code_rc_t                       crc;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_srv_conf_t   *cscf;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_main_conf_t  *cmcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    d->verified = 0;
    d->bound = 0;
    d->has_scans = 0;
    d->counted = 0;
    d->diverted = 0;
    d->kid = 0;
    d->serial = 0;

    (void) ngx_http_code_router_set_var(r, CR_VAR_SCANNED, code->data,
                                        code->len);

    /* 1. decode and 2. verify: no database touched for a bad code. */
    crc = cr_code_open(cscf->ring, (char *) code->data, code->len, &d->kid,
                       &d->serial);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "code router: \"%V\" %s kid:%ui", code,
                   cr_code_rc_name(crc), (ngx_uint_t) d->kid);

    if (crc == CR_CODE_MALFORMED) {
        d->out = CR_OUT_MALFORMED;
        goto done;
    }

    /* It decodes: one spelling, whichever of its many was sent. */
    cr_code_canonical((char *) d->code, (char *) code->data);

    if (ngx_http_code_router_set_var(r, CR_VAR_CODE, d->code, CR_CODE_LEN)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_code_router_set_num(r, CR_VAR_KID, d->kid) != NGX_OK) {
        return NGX_ERROR;
    }

    if (crc != CR_CODE_OK) {
        /* An unknown key id is indistinguishable from a forgery. */
        d->out = CR_OUT_FORGED;
        goto done;
    }

    d->verified = 1;

    if (ngx_http_code_router_set_num(r, CR_VAR_SERIAL, d->serial) != NGX_OK) {
        return NGX_ERROR;
    }

    /* A retired key id's print run is out of service: its genuine codes
     * say so, whatever the store holds (its rows may be gone, the store
     * may be down), and are neither looked up nor counted. */
    if (cscf->ring->keys[d->kid].retired) {
        d->out = CR_OUT_RETIRED;
        goto done;
    }

    /* 3. look up, in one read transaction. */
    db = &((ngx_http_code_router_db_t *) cmcf->dbs.elts)[cscf->db_index - 1];
    st = ngx_http_code_router_store(db, r->connection->log);

    if (st == NULL
        || cr_store_lookup(st, d->kid, d->serial, ngx_time(), &d->b,
                           ngx_http_code_router_alloc, r->pool)
           != 0)
    {
        if (st) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "code router: %s", cr_store_error(st));
        }

        d->out = CR_OUT_UNAVAILABLE;
        goto done;
    }

    d->bound = 1;
    d->out = (ngx_http_code_router_out_e) d->b.status;

    if (ngx_http_code_router_set_binding(r, &d->b) != NGX_OK) {
        return NGX_ERROR;
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
    if (crlcf->region) {
        if (ngx_http_code_router_region(r, crlcf, d) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (d->out == CR_OUT_OK && d->diverted && crlcf->diverted_fallback == 1) {
        d->out = CR_OUT_DIVERTED;
    }

    if (d->out == CR_OUT_OK && d->has_scans
        && ngx_http_code_router_overscanned(crlcf, d))
    {
        d->out = CR_OUT_OVERSCANNED;
    }

done:

    (void) ngx_http_code_router_outcome(r, d->out);

    return NGX_OK;
}


/* $code_router_diverted: the request's region against the batch's. */
static ngx_int_t
ngx_http_code_router_region(ngx_http_request_t *r,
    ngx_http_code_router_loc_conf_t *crlcf,
    ngx_http_code_router_decision_t *d)
{
    ngx_str_t   here;
    cr_str_t   *batch;

    if (ngx_http_complex_value(r, crlcf->region, &here) != NGX_OK) {
        return NGX_ERROR;
    }

    batch = &d->b.batch.s[CR_BATCH_REGION];

    /* Unknown on either side is not a diversion: we cannot tell. */
    d->diverted = d->b.has_batch && batch->len && here.len
                  && (here.len != batch->len
                      || ngx_strncasecmp(here.data, (u_char *) batch->data,
                                         here.len) != 0);

    return ngx_http_code_router_set_var(r, CR_VAR_DIVERTED,
                                        (u_char *) (d->diverted ? "1" : "0"),
                                        1);
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


/* An ok, not_started or ended decision; $code_router_status is set. */
static ngx_int_t
ngx_http_code_router_answer(ngx_http_request_t *r, cr_binding_t *b,
    u_char *code, ngx_uint_t wechat)
{
    ngx_str_t                         url, id;
    cr_str_t                         *win, *cid;
    ngx_uint_t                        scene;
    ngx_http_code_router_out_e        out;
    ngx_http_code_router_loc_conf_t  *crlcf;

    out = (ngx_http_code_router_out_e) b->status;
    scene = b->has_batch ? b->batch.scene : 0;

    switch (b->status) {

    case CR_ST_OK:
        break;

    case CR_ST_NOT_STARTED:
    case CR_ST_ENDED:
        win = &b->campaign.s[b->status == CR_ST_ENDED ? CR_CAMP_AFTER_URL
                                                      : CR_CAMP_BEFORE_URL];
        if (win->len) {
            /* A bad before_url/after_url is a record written behind the
             * loader's back, like any other bad target: 503 and a log
             * line, not a silent 404/410 that hides it from ops. */
            if (cr_valid_url(win->data, win->len, "https://") != NULL) {
                goto unusable;
            }

            url.data = (u_char *) win->data;
            url.len = win->len;

            ngx_http_code_router_count(r, out, scene, wechat, CR_ANS_WINDOW);
            (void) ngx_http_code_router_set_var(r, CR_VAR_TARGET, url.data,
                                                url.len);
            return ngx_http_code_router_redirect(r, &url, CR_ANS_WINDOW);
        }

        /* fall through */

    default:
        ngx_http_code_router_count(r, out, scene, wechat, CR_ANS_FALLBACK);
        return ngx_http_code_router_fallback_status[out];
    }

    if (b->campaign.type != CR_TARGET_MINIPROGRAM) {
        if (ngx_http_code_router_build(r, b, code, cr_target_url, &url)
            != NGX_OK)
        {
            goto unusable;
        }

        ngx_http_code_router_count(r, CR_OUT_OK, scene, wechat,
                                   CR_ANS_REDIRECT);
        (void) ngx_http_code_router_set_var(r, CR_VAR_TARGET, url.data,
                                            url.len);
        return ngx_http_code_router_redirect(r, &url, CR_ANS_REDIRECT);
    }

    /* A mini-program: inside WeChat its URL Link opens it directly. */
    if (wechat && b->campaign.s[CR_CAMP_URL_LINK].len) {
        url.data = (u_char *) b->campaign.s[CR_CAMP_URL_LINK].data;
        url.len = b->campaign.s[CR_CAMP_URL_LINK].len;

        if (cr_valid_url((char *) url.data, url.len, "https://") != NULL) {
            goto unusable;
        }

        ngx_http_code_router_count(r, CR_OUT_OK, scene, wechat,
                                   CR_ANS_URL_LINK);
        (void) ngx_http_code_router_set_var(r, CR_VAR_TARGET, url.data,
                                            url.len);
        return ngx_http_code_router_redirect(r, &url, CR_ANS_URL_LINK);
    }

    /* Elsewhere a page that opens the weixin:// URL Scheme, with a button:
     * browsers do not follow a bare redirect to weixin://. */
    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (crlcf->interstitial.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "code router: a mini-program target needs "
                      "\"code_router_interstitial\"");
        goto unusable;
    }

    if (ngx_http_code_router_build(r, b, code, cr_target_scheme, &url)
        != NGX_OK)
    {
        goto unusable;
    }

    ngx_http_code_router_count(r, CR_OUT_OK, scene, wechat,
                               CR_ANS_INTERSTITIAL);
    (void) ngx_http_code_router_set_var(r, CR_VAR_TARGET, url.data, url.len);

    if (crlcf->interstitial.data[0] == '@') {
        return ngx_http_named_location(r, &crlcf->interstitial);
    }

    return ngx_http_internal_redirect(r, &crlcf->interstitial, NULL);

unusable:

    /* A target that fails our own rules was written behind the loader's
     * back: never emit it.  Its id came the same way: percent-encode it,
     * so that a CR or LF in it cannot forge a line of the error log. */
    cid = &b->campaign.s[CR_CAMP_ID];
    id.len = cr_url_encode(NULL, cid->data, cid->len);
    id.data = ngx_pnalloc(r->pool, id.len + 1);

    if (id.data == NULL) {
        id.len = 0;

    } else {
        (void) cr_url_encode((char *) id.data, cid->data, cid->len);
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "code router: campaign \"%V\" has an unusable target",
                  &id);

    ngx_http_code_router_count(r, CR_OUT_UNAVAILABLE, scene, wechat,
                               CR_ANS_FALLBACK);

    return ngx_http_code_router_outcome(r, CR_OUT_UNAVAILABLE);
}


/* A 302 that no cache keeps: a binding can change at any moment. */
static ngx_int_t
ngx_http_code_router_redirect(ngx_http_request_t *r, ngx_str_t *url,
    ngx_http_code_router_ans_e ans)
{
    ngx_table_elt_t  *h;

    ngx_http_clear_location(r);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    /* 1.23 chains headers of one name: this one is alone. */
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    /* 1.23 chains headers of one name: this one is alone. */
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Location");
    h->value = *url;
    r->headers_out.location = h;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "code router: %s to \"%V\"",
                   ngx_http_code_router_answers[ans], url);

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* A target URL from one of cr_target's builders, in the request pool. */
ngx_int_t
ngx_http_code_router_build(ngx_http_request_t *r, cr_binding_t *b,
    u_char *code, cr_target_pt build, ngx_str_t *out)
{
    size_t       len;
    const char  *err;

    out->data = ngx_pnalloc(r->pool, cr_target_size(b));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    err = build(b, (const char *) code, (char *) out->data, &len);
    if (err) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "code router: stored target refused: %s", err);
        return NGX_ERROR;
    }

    out->len = len;

    return NGX_OK;
}


/* Sets $code_router_status; returns the status for a fallback. */
ngx_int_t
ngx_http_code_router_outcome(ngx_http_request_t *r,
    ngx_http_code_router_out_e out)
{
    (void) ngx_http_code_router_set_var(r, CR_VAR_STATUS,
                                        ngx_http_code_router_outcomes[out].data,
                                        ngx_http_code_router_outcomes[out].len);

    return ngx_http_code_router_fallback_status[out];
}


static void
ngx_http_code_router_count(ngx_http_request_t *r,
    ngx_http_code_router_out_e out, ngx_uint_t scene, ngx_uint_t wechat,
    ngx_http_code_router_ans_e ans)
{
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (cmcf->shm == NULL || cmcf->shm->data == NULL) {
        return;
    }

    m = cmcf->shm->data;

    (void) ngx_atomic_fetch_add(&m->outcome[out], 1);
    (void) ngx_atomic_fetch_add(&m->scene[scene < 5 ? scene : 0], 1);
    (void) ngx_atomic_fetch_add(&m->client[wechat ? 1 : 0], 1);
    (void) ngx_atomic_fetch_add(&m->answer[ans], 1);
}


static ngx_int_t
ngx_http_code_router_set_binding(ngx_http_request_t *r, cr_binding_t *b)
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
        { CR_VAR_CAMPAIGN, 0, CR_CAMP_ID },
        { CR_VAR_CAMPAIGN_NAME, 0, CR_CAMP_NAME },
    };

    if (ngx_http_code_router_set_num(r, CR_VAR_GENERATION, b->generation)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        cr_str_t  *s = map[i].batch ? &b->batch.s[map[i].index]
                                    : &b->campaign.s[map[i].index];

        if (s->len) {
            (void) ngx_http_code_router_set_var(r, map[i].slot,
                                                (u_char *) s->data, s->len);
        }
    }

    scene = b->has_batch ? cr_scene_name(b->batch.scene) : NULL;

    if (scene) {
        (void) ngx_http_code_router_set_var(r, CR_VAR_SCENE, (u_char *) scene,
                                            ngx_strlen(scene));
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_code_router_set_var(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, u_char *data, size_t len)
{
    ngx_http_variable_value_t         *vv;
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    vv = &r->variables[cmcf->var_index[slot]];

    vv->data = data;
    vv->len = len;
    vv->valid = 1;
    vv->not_found = 0;
    vv->no_cacheable = 0;
    vv->escape = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_code_router_set_num(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, uint64_t v)
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

    return ngx_http_code_router_set_var(r, slot, p, end - p);
}


static ngx_int_t
ngx_http_code_router_is_wechat(ngx_http_request_t *r,
    ngx_http_code_router_srv_conf_t *cscf)
{
    ngx_int_t         rc;
    ngx_table_elt_t  *ua;

    ua = r->headers_in.user_agent;
    if (ua == NULL) {
        return 0;
    }

    if (cscf->wechat_literal.len) {
        return ngx_http_code_router_find(&ua->value, &cscf->wechat_literal);
    }

    rc = ngx_regex_exec(cscf->wechat_ua, &ua->value, NULL, 0);

    if (rc == NGX_REGEX_NO_MATCHED) {
        return 0;
    }

    if (rc < 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      ngx_regex_exec_n " failed: %i on \"%V\"",
                      rc, &ua->value);
        return NGX_ERROR;
    }

    return 1;
}


static void *
ngx_http_code_router_alloc(void *ctx, size_t n)
{
    return ngx_pnalloc(ctx, n);
}


/* Until the handler has run, every code_router variable is not found. */
static ngx_int_t
ngx_http_code_router_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


/*
 * $code_router_code before (or without) the router: the canonical spelling
 * of the code in the location's code_router value, else in $uri's last
 * segment (a front nginx's "hash $code_router_code consistent;" needs no
 * key and no store).  Not found unless the code decodes.
 */
static ngx_int_t
ngx_http_code_router_code_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                           *p;
    uint64_t                          serial;
    unsigned                          kid;
    ngx_str_t                         code;
    ngx_http_code_router_loc_conf_t  *crlcf;

    /* Empty: cr_code_open() then only decodes. */
    static cr_keyring_t  none;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);

    if (crlcf->code) {
        if (ngx_http_complex_value(r, crlcf->code, &code) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        code = r->uri;
    }

    ngx_http_code_router_last_segment(&code);

    if (cr_code_open(&none, (char *) code.data, code.len, &kid, &serial)
        == CR_CODE_MALFORMED)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, CR_CODE_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    cr_code_canonical((char *) p, (char *) code.data);

    v->data = p;
    v->len = CR_CODE_LEN;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* code_router_status: Prometheus text exposition. */
static ngx_int_t
ngx_http_code_router_status_handler(ngx_http_request_t *r)
{
    u_char                            *p, *up;
    size_t                             len;
    time_t                             now;
    int64_t                            v;
    ngx_int_t                          rc;
    ngx_buf_t                         *buf;
    ngx_uint_t                         i, g;
    ngx_chain_t                        out;
    cr_store_t                        *st;
    cr_store_info_t                   *info;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *cmcf;

    static const char  *scenes[5] = {
        "none", "verify", "marketing", "trace", "channel"
    };

    static const char  *gauges[4][2] = {
        { "code_router_db_generation",
          "Generation of the store (each loader commit adds one)." },
        { "code_router_db_map_size_bytes", "Size of the store's map." },
        { "code_router_db_map_used_bytes", "Bytes of the map in use." },
        { "code_router_db_last_commit_age_seconds",
          "Seconds since the last loader commit." }
    };

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    m = cmcf->shm->data;
    db = cmcf->dbs.elts;
    now = ngx_time();

    len = 4096 + cmcf->dbs.nelts * (1024 + 6 * 2 * PATH_MAX)
          + ngx_http_code_router_scans_status_len(r);

    buf = ngx_create_temp_buf(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf->last;

    p = ngx_cpymem(p, "# HELP code_router_requests_total Scans answered, by "
                   "outcome.\n# TYPE code_router_requests_total counter\n",
                   sizeof("# HELP code_router_requests_total Scans answered,"
                          " by outcome.\n# TYPE code_router_requests_total "
                          "counter\n") - 1);

    for (i = 0; i < CR_OUT_N; i++) {
        p = ngx_sprintf(p, "code_router_requests_total{status=\"%V\"} %uA\n",
                        &ngx_http_code_router_outcomes[i], m->outcome[i]);
    }

    p = ngx_sprintf(p, "# HELP code_router_scene_requests_total Scans by the"
                    " scene of their batch.\n"
                    "# TYPE code_router_scene_requests_total counter\n");

    for (i = 0; i < 5; i++) {
        p = ngx_sprintf(p, "code_router_scene_requests_total{scene=\"%s\"} "
                        "%uA\n", scenes[i], m->scene[i]);
    }

    p = ngx_sprintf(p, "# HELP code_router_client_requests_total Scans by "
                    "client.\n"
                    "# TYPE code_router_client_requests_total counter\n"
                    "code_router_client_requests_total{client=\"other\"} "
                    "%uA\n"
                    "code_router_client_requests_total{client=\"wechat\"} "
                    "%uA\n", m->client[0], m->client[1]);

    p = ngx_sprintf(p, "# HELP code_router_answers_total Scans by the kind "
                    "of answer.\n"
                    "# TYPE code_router_answers_total counter\n");

    for (i = 0; i < CR_ANS_N; i++) {
        p = ngx_sprintf(p, "code_router_answers_total{answer=\"%s\"} %uA\n",
                        ngx_http_code_router_answers[i], m->answer[i]);
    }

    p = ngx_sprintf(p, "# HELP code_router_db_reopens_total Store opens by "
                    "workers after start (swaps, outages).\n"
                    "# TYPE code_router_db_reopens_total counter\n"
                    "code_router_db_reopens_total %uA\n", m->reopened);

    /* The text format wants each metric's samples in one group: read
     * every store first, then write metric by metric. */
    info = ngx_pcalloc(r->pool, cmcf->dbs.nelts * sizeof(cr_store_info_t));
    up = ngx_pcalloc(r->pool, cmcf->dbs.nelts);
    if (info == NULL || up == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < cmcf->dbs.nelts; i++) {
        st = ngx_http_code_router_store(&db[i], r->connection->log);
        up[i] = (st != NULL && cr_store_info(st, &info[i]) == 0);
    }

    p = ngx_sprintf(p, "# HELP code_router_db_up Whether this worker can "
                    "read the store.\n# TYPE code_router_db_up gauge\n");

    for (i = 0; i < cmcf->dbs.nelts; i++) {
        p = ngx_sprintf(p, "code_router_db_up{db=\"%V\"} %d\n", &db[i].path,
                        (int) up[i]);
    }

    for (g = 0; g < 4; g++) {
        p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g][0],
                        gauges[g][1], gauges[g][0]);

        for (i = 0; i < cmcf->dbs.nelts; i++) {
            if (!up[i]) {
                continue;
            }

            switch (g) {
            case 0:
                v = (int64_t) info[i].generation;
                break;
            case 1:
                v = (int64_t) info[i].map_size;
                break;
            case 2:
                v = (int64_t) info[i].map_used;
                break;
            default:
                v = info[i].last_commit ? now - info[i].last_commit : -1;
            }

            p = ngx_sprintf(p, "%s{db=\"%V\"} %L\n", gauges[g][0],
                            &db[i].path, v);
        }
    }

    ngx_http_code_router_scans_status(r, &p);

    buf->last = p;
    buf->last_buf = (r == r->main) ? 1 : 0;
    buf->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = buf->last - buf->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = buf;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
