/*
 * The $code_router_* variables: registered at configuration, each with
 * its slot in var_index.  Most are set by the one exit of a decision
 * (ngx_http_code_router_send); those here are made when they are read.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cr_time.h"
#include "ngx_http_code_router.h"


typedef struct {
    ngx_str_t                   name;
    ngx_http_code_router_var_e  slot;
    ngx_http_get_variable_pt    get;        /* NULL: set by a decision */
} ngx_http_code_router_var_t;


static ngx_int_t ngx_http_code_router_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_code_router_code_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


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
    { ngx_string("code_router_dealer"), CR_VAR_DEALER, NULL },
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
    { ngx_string("code_router_verification"), CR_VAR_VERIFICATION, NULL },
    { ngx_string("code_router_verifications"), CR_VAR_VERIFICATIONS, NULL },
    { ngx_string("code_router_first_verified"), CR_VAR_FIRST_VERIFIED,
      NULL },
    { ngx_string("code_router_first_verified_zh"), CR_VAR_FIRST_VERIFIED_ZH,
      NULL },
    { ngx_string("code_router_first_verified_en"), CR_VAR_FIRST_VERIFIED_EN,
      NULL },
    { ngx_string("code_router_retry_at"), CR_VAR_RETRY_AT, NULL },
    { ngx_string("code_router_retry_at_zh"), CR_VAR_RETRY_AT_ZH, NULL },
    { ngx_string("code_router_retry_at_en"), CR_VAR_RETRY_AT_EN, NULL },
    { ngx_string("code_router_pin_digits"), CR_VAR_PIN_DIGITS, NULL },
    { ngx_string("code_router_first_scan_zh"), CR_VAR_FIRST_SCAN_ZH,
      ngx_http_code_router_local_time_variable },
    { ngx_string("code_router_first_scan_en"), CR_VAR_FIRST_SCAN_EN,
      ngx_http_code_router_local_time_variable },
    { ngx_string("code_router_scanned"), CR_VAR_SCANNED, NULL },
    { ngx_string("code_router_scan"), CR_VAR_SCAN,
      ngx_http_code_router_scan_variable },
    { ngx_string("code_router_verify_action"), CR_VAR_VERIFY_ACTION, NULL },
    { ngx_string("code_router_rule"), CR_VAR_RULE, NULL },
    { ngx_string("code_router_uncounted"), CR_VAR_UNCOUNTED, NULL },
    { ngx_string("code_router_parents"), CR_VAR_PARENTS, NULL },
    { ngx_null_string, CR_VAR_N, NULL }
};


/* Configuration: the variables, each with its slot in var_index. */
ngx_int_t
ngx_http_code_router_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t               *var;
    ngx_http_code_router_var_t        *v;
    ngx_http_code_router_main_conf_t  *crmcf;

    static ngx_str_t  request_id = ngx_string("request_id");

    crmcf = ngx_http_conf_get_module_main_conf(cf,
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

        crmcf->var_index[v->slot] = ngx_http_get_variable_index(cf,
                                                                &v->name);
        if (crmcf->var_index[v->slot] == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    /* nginx's own, for the scan record. */
    crmcf->request_id_index = ngx_http_get_variable_index(cf, &request_id);
    if (crmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
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


/* From the ISO 8601 $code_router_first_scan, which survives the redirect
 * to the fallback page: no formatting on a scan that shows no page. */
ngx_int_t
ngx_http_code_router_local_time_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                            *p;
    int16_t                            tz;
    int64_t                            t;
    ngx_http_variable_value_t         *iso;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_main_conf_t  *crmcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    iso = &r->variables[crmcf->var_index[CR_VAR_FIRST_SCAN]];

    if (!iso->valid || iso->not_found || iso->len == 0
        || cr_parse_time((char *) iso->data, iso->len, &t, &tz) != NULL)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, CR_HUMAN_TIME_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    cr_format_human_time((char *) p, CR_HUMAN_TIME_LEN, t,
                         (int) crlcf->verify.tz,
                         data == CR_VAR_FIRST_SCAN_EN);

    v->data = p;
    v->len = ngx_strlen(p);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}
