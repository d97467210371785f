/*
 * code_router_fast_request_id on: nginx's $request_id (32 hexadecimal
 * digits of 16 random bytes) from the worker's own ChaCha20 stream
 * (cr_rand) instead of OpenSSL's RAND_bytes, which costs about 6,600
 * instructions a call through OpenSSL 3's generator (most of a scan
 * record's price: the record carries the id).  The same format, as
 * unpredictable: the key comes from the system's generator in each
 * worker.  The variable's handler is nginx's own per configuration cycle
 * (its copy of the core variables), so a reload without the directive
 * brings nginx's generator back and a failed reload changes nothing.
 */

#include "ngx_http_code_router.h"

#include "cr_rand.h"


static ngx_int_t ngx_http_code_router_request_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static cr_rand_t  ngx_http_code_router_rand;


static ngx_int_t
ngx_http_code_router_request_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *id;
    u_char   bytes[16];

    if (cr_rand_bytes(&ngx_http_code_router_rand, (long) ngx_pid, bytes,
                      sizeof(bytes))
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "code_router_fast_request_id: no random bytes");
        return NGX_ERROR;
    }

    id = ngx_pnalloc(r->pool, 2 * sizeof(bytes));
    if (id == NULL) {
        return NGX_ERROR;
    }

    v->len = 2 * sizeof(bytes);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = id;

    ngx_hex_dump(id, bytes, sizeof(bytes));

    return NGX_OK;
}


/* At postconfiguration: the core variables are this cycle's copies. */
ngx_int_t
ngx_http_code_router_request_id_install(ngx_conf_t *cf)
{
    ngx_uint_t                         i;
    ngx_hash_key_t                    *key;
    ngx_http_variable_t               *v;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_code_router_module);
    if (crmcf->fast_request_id != 1) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    key = cmcf->variables_keys->keys.elts;
    for (i = 0; i < cmcf->variables_keys->keys.nelts; i++) {
        if (key[i].key.len == sizeof("request_id") - 1
            && ngx_strncmp(key[i].key.data, "request_id",
                           sizeof("request_id") - 1)
               == 0)
        {
            v = key[i].value;
            v->get_handler = ngx_http_code_router_request_id;
            v->data = 0;
            return NGX_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "code_router_fast_request_id: this nginx has no "
                       "$request_id");
    return NGX_ERROR;
}
