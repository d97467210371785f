/*
 * ngx_http_code_router_module: the landing router for one-item-one-code
 * QR codes.  This file holds the module's tables, its directives and
 * their configuration; the request path is in _handler.c (see
 * ngx_http_code_router.h for every file's job).  See README.md for
 * directives, variables and outcomes.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_valid.h"
#include "ngx_http_code_router.h"


/* A code_router_key seen so far: one master key serves one key id. */
typedef struct {
    ngx_uint_t                  kid;
    ngx_str_t                   path;
    u_char                      digest[CR_MASTER_DIGEST_LEN];
} ngx_http_code_router_key_use_t;


static ngx_int_t ngx_http_code_router_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_code_router_postconfiguration(ngx_conf_t *cf);
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
static void ngx_http_code_router_wipe(void *data);
static char *ngx_http_code_router_wechat_ua(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_code_router_literal(ngx_str_t *pattern,
    ngx_str_t *literal);
static char *ngx_http_code_router_scans_ignore(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_regex_t *ngx_http_code_router_regex(ngx_conf_t *cf,
    ngx_str_t *pattern);
static char *ngx_http_code_router_interstitial(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_code_router_fallback_page(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_code_router_fallback(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_code_router(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_gs1(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* {{status}} of a page for nginx's own statuses: no outcome. */
static ngx_str_t  ngx_http_code_router_no_outcome = ngx_string("");


static ngx_conf_enum_t  ngx_http_code_router_diverted_actions[] = {
    { ngx_string("none"), 0 },
    { ngx_string("fallback"), 1 },
    { ngx_null_string, 0 }
};

static ngx_conf_enum_t  ngx_http_code_router_scan_addresses[] = {
    { ngx_string("full"), CR_ADDR_FULL },
    { ngx_string("truncated"), CR_ADDR_TRUNCATED },
    { ngx_string("hashed"), CR_ADDR_HASHED },
    { ngx_string("none"), CR_ADDR_NONE },
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

    { ngx_string("code_router_verify"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_code_router_verify,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_verify_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_verify_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_pin_digits"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_pin_digits,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_time_zone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_time_zone,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_ledger"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_http_code_router_ledger,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_receipts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_code_router_receipts,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_pin_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_pin_guard,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_interstitial"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_interstitial,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_code_router_loc_conf_t, interstitial),
      NULL },

    { ngx_string("code_router_fallback_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router_fallback_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_fallback"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_code_router_fallback,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("code_router_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
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

    { ngx_string("code_router_gs1"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_code_router_gs1,
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

    { ngx_string("code_router_scans_exclude"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_set_predicate_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_code_router_loc_conf_t, scans_exclude),
      NULL },

    { ngx_string("code_router_scan_address"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_code_router_loc_conf_t, scan_address),
      &ngx_http_code_router_scan_addresses },

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

    { ngx_string("code_router_fast_request_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_code_router_main_conf_t, fast_request_id),
      NULL },

    { ngx_string("code_router_fast_user_agent"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_code_router_main_conf_t, fast_user_agent),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_code_router_module_ctx = {
    ngx_http_code_router_preconfiguration,  /* preconfiguration */
    ngx_http_code_router_postconfiguration, /* postconfiguration */

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


static ngx_str_t  ngx_http_code_router_default_ua =
    ngx_string("MicroMessenger");


static ngx_int_t
ngx_http_code_router_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_code_router_ledger_add_variables(cf) != NGX_OK
        || ngx_http_code_router_user_agent_add_variables(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_code_router_add_variables(cf);
}


static ngx_int_t
ngx_http_code_router_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_code_router_request_id_install(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_code_router_user_agent_install(cf);
}


static void *
ngx_http_code_router_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_main_conf_t));
    if (crmcf == NULL) {
        return NULL;
    }

    crmcf->fast_request_id = NGX_CONF_UNSET;
    crmcf->fast_user_agent = NGX_CONF_UNSET;

    /* dbs: set up by the first code_router_db (_db.c knows its type). */
    if (ngx_array_init(&crmcf->zones, cf->pool, 2,
                       sizeof(ngx_http_code_router_zone_t *))
        != NGX_OK
        || ngx_array_init(&crmcf->keys, cf->pool, 4,
                          sizeof(ngx_http_code_router_key_use_t))
           != NGX_OK)
    {
        return NULL;
    }

    return crmcf;
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

    if (conf->ledger == NULL) {
        conf->ledger = prev->ledger;
    }

    if (conf->guard == NULL) {
        conf->guard = prev->guard;
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

    conf->page = NGX_CONF_UNSET_PTR;
    conf->scans = NGX_CONF_UNSET_PTR;
    conf->scans_ignore = NGX_CONF_UNSET_PTR;
    conf->scans_exclude = NGX_CONF_UNSET_PTR;
    conf->scan_address = NGX_CONF_UNSET_UINT;
    conf->max_scans = NGX_CONF_UNSET_PTR;
    conf->region = NGX_CONF_UNSET_PTR;
    conf->diverted_fallback = NGX_CONF_UNSET_UINT;
    ngx_http_code_router_verify_create(&conf->verify);

    return conf;
}


static char *
ngx_http_code_router_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_code_router_loc_conf_t  *prev = parent;
    ngx_http_code_router_loc_conf_t  *conf = child;

    ngx_http_code_router_srv_conf_t  *crscf;

    ngx_conf_merge_str_value(conf->interstitial, prev->interstitial, "");
    ngx_conf_merge_ptr_value(conf->page, prev->page, NULL);
    ngx_conf_merge_ptr_value(conf->scans, prev->scans, NULL);
    ngx_conf_merge_ptr_value(conf->max_scans, prev->max_scans, NULL);
    ngx_conf_merge_ptr_value(conf->scans_exclude, prev->scans_exclude, NULL);
    ngx_conf_merge_uint_value(conf->scan_address, prev->scan_address,
                              CR_ADDR_FULL);
    ngx_conf_merge_ptr_value(conf->region, prev->region, NULL);
    ngx_conf_merge_uint_value(conf->diverted_fallback,
                              prev->diverted_fallback, 0);

    /* Unset everywhere: the built-in list (NGX_CONF_UNSET_PTR stays). */
    ngx_conf_merge_ptr_value(conf->scans_ignore, prev->scans_ignore,
                             NGX_CONF_UNSET_PTR);

    if (ngx_http_code_router_verify_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->fallback && conf->page == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"code_router_fallback\" needs "
                      "\"code_router_fallback_page\" in its location, "
                      "server or at the http level");
        return NGX_CONF_ERROR;
    }

    if (conf->code == NULL && conf->api == NULL && !conf->gs1) {
        return NGX_CONF_OK;
    }

    /* The server's conf is merged before its locations: a code_router
     * location without a store or keys is a mistake nginx -t must catch. */
    crscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_code_router_module);

    if (crscf->db_index == 0 || crscf->ring == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" needs \"%s\" in its server or at "
                      "the http level",
                      conf->code ? "code_router"
                      : conf->api ? "code_router_api" : "code_router_gs1",
                      crscf->db_index == 0 ? "code_router_db"
                                          : "code_router_key");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* code_router_db PATH: see ngx_http_code_router_db_add(). */
static char *
ngx_http_code_router_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_srv_conf_t *crscf = conf;

    ngx_str_t  *value, path;

    if (crscf->db_index) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    return ngx_http_code_router_db_add(cf, &path, &crscf->db_index);
}


/*
 * code_router_key KID FILE [retired]: read and derive now, so "nginx -t"
 * checks it.  A retired key id still verifies its codes, which then
 * answer "retired" instead of being looked up.
 */
static char *
ngx_http_code_router_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_srv_conf_t *crscf = conf;

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

    if (crscf->ring == NULL) {
        crscf->ring = ngx_pcalloc(cf->pool, sizeof(cr_keyring_t));
        if (crscf->ring == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_code_router_wipe;
        cln->data = crscf->ring;
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

    rc = cr_keyring_add(crscf->ring, &key);
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
    ngx_http_code_router_key_use_t    *use;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    cr_keyfile_digest(master, digest);

    use = crmcf->keys.elts;

    for (i = 0; i < crmcf->keys.nelts; i++) {
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

    use = ngx_array_push(&crmcf->keys);
    if (use == NULL) {
        return NGX_CONF_ERROR;
    }

    use->kid = kid;
    use->path = *path;
    ngx_memcpy(use->digest, digest, CR_MASTER_DIGEST_LEN);

    return NGX_CONF_OK;
}


static void
ngx_http_code_router_wipe(void *data)
{
    cr_key_wipe(data, sizeof(cr_keyring_t));
}


static char *
ngx_http_code_router_wechat_ua(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_srv_conf_t *crscf = conf;

    ngx_str_t  *value;

    if (crscf->wechat_ua) {
        return "is duplicate";
    }

    value = cf->args->elts;

    crscf->wechat_ua = ngx_http_code_router_regex(cf, &value[1]);
    if (crscf->wechat_ua == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_code_router_literal(&value[1], &crscf->wechat_literal);

    return NGX_CONF_OK;
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


/* nginx's own PCRE; a bad pattern is reported with file and line. */
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


/* code_router_fallback_page FILE | off: rendered for every outcome now,
 * so that nginx -t names a bad template. */
static char *
ngx_http_code_router_fallback_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t                    *value;
    ngx_uint_t                    i;
    ngx_http_code_router_page_t  *page;

    if (crlcf->page != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        crlcf->page = NULL;
        return NGX_CONF_OK;
    }

    page = ngx_http_code_router_page_read(cf, &value[1]);
    if (page == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < CR_PAGE_N; i++) {
        if (ngx_http_code_router_page_render(cf, page, i,
                i < CR_OUT_N ? &ngx_http_code_router_outcomes[i].name
                             : &ngx_http_code_router_no_outcome,
                i < CR_OUT_N ? &ngx_http_code_router_outcomes[i].message
                    : &ngx_http_code_router_status_messages[i - CR_OUT_N])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    crlcf->page = page;

    return NGX_CONF_OK;
}


/* code_router_fallback: the content handler of an error_page's location,
 * for nginx's own statuses (its page: checked at merge). */
static char *
ngx_http_code_router_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (crlcf->fallback) {
        return "is duplicate";
    }

    crlcf->fallback = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_fallback_handler;

    return NGX_CONF_OK;
}


/* code_router COMPLEX_VALUE: the content handler of a location. */
static char *
ngx_http_code_router(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t  *value;

    if (crlcf->code) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_code_router_add_shm(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_code_router_content(cf, &value[1], &crlcf->code,
                                        ngx_http_code_router_handler);
}


/* code_router_api [CODE]: CODE's last path segment; default $uri. */
static char *
ngx_http_code_router_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t  *value, uri = ngx_string("$uri");

    if (crlcf->api || crlcf->code) {
        return "is duplicate, or in a \"code_router\" location";
    }

    value = cf->args->elts;

    return ngx_http_code_router_content(cf,
                                        cf->args->nelts == 2 ? &value[1]
                                                             : &uri,
                                        &crlcf->api,
                                        ngx_http_code_router_api_handler);
}


/* code_router_gs1 [root=URL]: the location resolves GS1 Digital Links. */
static char *
ngx_http_code_router_gs1(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    u_char                    *host;
    ngx_str_t                 *value, root;
    const char                *err;
    ngx_http_core_loc_conf_t  *clcf;

    if (crlcf->gs1 || crlcf->api || crlcf->code) {
        return "is duplicate, or in a \"code_router\" or \"code_router_api\" "
               "location";
    }

    /* root=SCHEME://HOST[:PORT]: what the linkset's anchor and the
     * description's resolverRoot say (else the server's name, never the
     * client's Host header). */
    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (ngx_strncmp(value[1].data, "root=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        root.data = value[1].data + 5;
        root.len = value[1].len - 5;

        err = cr_valid_url((char *) root.data, root.len,
                           (root.len > 5 && root.data[4] == ':')
                           ? "http://" : "https://");
        host = ngx_strlchr(root.data, root.data + root.len, ':');

        if (err == NULL
            && (ngx_strlchr(host + 3, root.data + root.len, '/') != NULL
                || ngx_strlchr(host + 3, root.data + root.len, '?') != NULL
                || ngx_strlchr(host + 3, root.data + root.len, '#') != NULL))
        {
            err = "must have no path, query or fragment";
        }

        if (err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": %s (https://HOST[:PORT] or "
                               "http://HOST[:PORT])", &value[1], err);
            return NGX_CONF_ERROR;
        }

        crlcf->gs1_root = root;
    }

    if (ngx_http_code_router_add_shm(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    crlcf->gs1 = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_gs1_handler;

    return NGX_CONF_OK;
}


/* code_router_status [scope=all|server] */
static char *
ngx_http_code_router_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_loc_conf_t *crlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (ngx_strcmp(value[1].data, "scope=server") == 0) {
            crlcf->status_server = 1;

        } else if (ngx_strcmp(value[1].data, "scope=all") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": scope=all or "
                               "scope=server", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_code_router_add_shm(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_status_handler;

    return NGX_CONF_OK;
}
