/*
 * ngx_http_code_router_module: the landing router for one-item-one-code
 * QR codes.  See README.md for the directives and variables.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_codec.h"
#include "cr_keyfile.h"


/* Per-request results, kept as indexed variables (they survive redirects). */
typedef enum {
    CR_VAR_STATUS = 0,
    CR_VAR_KID,
    CR_VAR_SERIAL,
    CR_VAR_CLIENT,
    CR_VAR_N
} ngx_http_code_router_var_e;


typedef struct {
    ngx_int_t                  var_index[CR_VAR_N];
} ngx_http_code_router_main_conf_t;


typedef struct {
    cr_keyring_t              *ring;
    ngx_array_t               *ua_regex;    /* NULL: not set at this level */
    ngx_regex_t               *wechat_ua;
} ngx_http_code_router_srv_conf_t;


typedef struct {
    ngx_http_complex_value_t  *code;
} ngx_http_code_router_loc_conf_t;


typedef struct {
    ngx_str_t                  name;
    ngx_http_code_router_var_e slot;
} ngx_http_code_router_var_t;


static ngx_int_t ngx_http_code_router_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_code_router_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_code_router_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_code_router_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_code_router_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_code_router_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_code_router_wechat_ua(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_code_router(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_code_router_wipe(void *data);
static ngx_int_t ngx_http_code_router_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_code_router_set_var(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, u_char *data, size_t len);
static ngx_int_t ngx_http_code_router_set_num(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, uint64_t v);
static ngx_int_t ngx_http_code_router_is_wechat(ngx_http_request_t *r,
    ngx_http_code_router_srv_conf_t *cscf);
static ngx_int_t ngx_http_code_router_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_command_t  ngx_http_code_router_commands[] = {

    { ngx_string("code_router_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2,
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

    { ngx_string("code_router"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_code_router,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

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
    NULL                                    /* merge location configuration */
};


ngx_module_t  ngx_http_code_router_module = {
    NGX_MODULE_V1,
    &ngx_http_code_router_module_ctx,       /* module context */
    ngx_http_code_router_commands,          /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_code_router_var_t  ngx_http_code_router_vars[] = {
    { ngx_string("code_router_status"), CR_VAR_STATUS },
    { ngx_string("code_router_kid"), CR_VAR_KID },
    { ngx_string("code_router_serial"), CR_VAR_SERIAL },
    { ngx_string("code_router_client"), CR_VAR_CLIENT },
    { ngx_null_string, CR_VAR_N }
};


static ngx_str_t  ngx_http_code_router_default_ua =
    ngx_string("MicroMessenger");


static ngx_int_t
ngx_http_code_router_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t               *var;
    ngx_http_code_router_var_t        *v;
    ngx_http_code_router_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    for (v = ngx_http_code_router_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, 0);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = ngx_http_code_router_variable;
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
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_main_conf_t));
}


static void *
ngx_http_code_router_create_srv_conf(ngx_conf_t *cf)
{
    /* ring and wechat_ua stay NULL until set: merged from the parent. */
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_srv_conf_t));
}


static char *
ngx_http_code_router_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_code_router_srv_conf_t  *prev = parent;
    ngx_http_code_router_srv_conf_t  *conf = child;

    ngx_regex_compile_t  rc;
    u_char               errstr[NGX_MAX_CONF_ERRSTR];

    /* Keys are inherited only by a server that declares none itself. */
    if (conf->ring == NULL) {
        conf->ring = prev->ring;
    }

    if (conf->wechat_ua == NULL) {
        if (prev->wechat_ua == NULL) {
            ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

            rc.pattern = ngx_http_code_router_default_ua;
            rc.pool = cf->pool;
            rc.err.len = NGX_MAX_CONF_ERRSTR;
            rc.err.data = errstr;

            if (ngx_regex_compile(&rc) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
                return NGX_CONF_ERROR;
            }

            prev->wechat_ua = rc.regex;
        }

        conf->wechat_ua = prev->wechat_ua;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_code_router_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_loc_conf_t));
}


/* code_router_key KID FILE: read and derive now, so "nginx -t" checks it. */
static char *
ngx_http_code_router_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_code_router_srv_conf_t *cscf = conf;

    int                  rc;
    char                 err[512];
    uint8_t              master[CR_MASTER_KEY_LEN];
    cr_key_t             key;
    ngx_int_t            kid;
    ngx_str_t           *value, path;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    kid = ngx_atoi(value[1].data, value[1].len);
    if (kid == NGX_ERROR || kid > CR_KID_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key id \"%V\": a key id is 0..%d",
                           &value[1], CR_KID_MAX);
        return NGX_CONF_ERROR;
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

    rc = cr_key_derive(&key, (unsigned) kid, master);
    cr_key_wipe(master, sizeof(master));

    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot derive keys from \"%V\"", &path);
        return NGX_CONF_ERROR;
    }

    rc = cr_keyring_add(cscf->ring, &key);
    cr_key_wipe(&key, sizeof(key));

    if (rc != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate key id %i", kid);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_code_router_wechat_ua(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_srv_conf_t *cscf = conf;

    ngx_str_t            *value;
    ngx_regex_compile_t   rc;
    u_char                errstr[NGX_MAX_CONF_ERRSTR];

    if (cscf->wechat_ua) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = value[1];
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
        return NGX_CONF_ERROR;
    }

    cscf->wechat_ua = rc.regex;

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

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_code_router_handler;

    return NGX_CONF_OK;
}


static void
ngx_http_code_router_wipe(void *data)
{
    cr_key_wipe(data, sizeof(cr_keyring_t));
}


static ngx_int_t
ngx_http_code_router_handler(ngx_http_request_t *r)
{
    unsigned                          kid;
    uint64_t                          serial;
    ngx_int_t                         rc;
    ngx_str_t                         code;
    cr_code_rc_t                      crc;
    ngx_http_code_router_loc_conf_t  *crlcf;
    ngx_http_code_router_srv_conf_t  *cscf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    cscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    if (ngx_http_complex_value(r, crlcf->code, &code) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_code_router_is_wechat(r, cscf);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_code_router_set_var(r, CR_VAR_CLIENT,
                                     (u_char *) (rc ? "wechat" : "other"),
                                     rc ? 6 : 5)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (cscf->ring == NULL) {
        crc = code.len == CR_CODE_LEN ? CR_CODE_UNKNOWN_KEY
                                      : CR_CODE_MALFORMED;
        kid = 0;

    } else {
        crc = cr_code_open(cscf->ring, (char *) code.data, code.len, &kid,
                           &serial);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "code router: \"%V\" %s kid:%ui", &code,
                   cr_code_rc_name(crc), (ngx_uint_t) kid);

    if (crc == CR_CODE_MALFORMED) {
        (void) ngx_http_code_router_set_var(r, CR_VAR_STATUS,
                                            (u_char *) "malformed", 9);
        return NGX_HTTP_NOT_FOUND;
    }

    if (ngx_http_code_router_set_num(r, CR_VAR_KID, kid) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (crc != CR_CODE_OK) {
        /* An unknown key id is indistinguishable from a forgery. */
        (void) ngx_http_code_router_set_var(r, CR_VAR_STATUS,
                                            (u_char *) "forged", 6);
        return NGX_HTTP_NOT_FOUND;
    }

    if (ngx_http_code_router_set_num(r, CR_VAR_SERIAL, serial) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* No binding store yet: a genuine code is bound to nothing. */
    (void) ngx_http_code_router_set_var(r, CR_VAR_STATUS,
                                        (u_char *) "unbound", 7);

    return NGX_HTTP_NOT_FOUND;
}


static ngx_int_t
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


static ngx_int_t
ngx_http_code_router_set_num(ngx_http_request_t *r,
    ngx_http_code_router_var_e slot, uint64_t v)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_code_router_set_var(r, slot, p,
                                        ngx_sprintf(p, "%uL", v) - p);
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


/* Until the handler has run, every code_router variable is not found. */
static ngx_int_t
ngx_http_code_router_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}
