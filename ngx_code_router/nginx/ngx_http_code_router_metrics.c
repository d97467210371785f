/*
 * The metrics every worker adds to: counters of every answer in shared
 * memory (totals of all workers, kept across reloads).  The status page
 * (ngx_http_code_router_status.c) shows them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_code_router.h"


static ngx_int_t ngx_http_code_router_init_shm(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_str_t  ngx_http_code_router_shm_name =
    ngx_string("code_router_metrics_5");    /* a new layout, a new name */


void
ngx_http_code_router_count(ngx_http_request_t *r,
    ngx_http_code_router_out_e out, ngx_uint_t scene, ngx_uint_t wechat,
    ngx_http_code_router_ans_e ans)
{
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->shm == NULL || crmcf->shm->data == NULL) {
        return;
    }

    m = crmcf->shm->data;

    (void) ngx_atomic_fetch_add(&m->outcome[out], 1);
    (void) ngx_atomic_fetch_add(&m->scene[scene < CR_SCENES ? scene : 0], 1);
    (void) ngx_atomic_fetch_add(&m->client[wechat ? 1 : 0], 1);
    (void) ngx_atomic_fetch_add(&m->answer[ans], 1);
}


void
ngx_http_code_router_count_reopen(void)
{
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_code_router_module);

    if (crmcf->shm && crmcf->shm->data) {
        m = crmcf->shm->data;
        (void) ngx_atomic_fetch_add(&m->reopened, 1);
    }
}


/* A scan of a campaign whose target cannot be answered (its 503 and the
 * error log's line, at most one a second, say which). */
void
ngx_http_code_router_count_unusable(ngx_http_request_t *r)
{
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->shm && crmcf->shm->data) {
        m = crmcf->shm->data;
        (void) ngx_atomic_fetch_add(&m->unusable, 1);
    }
}


ngx_int_t
ngx_http_code_router_add_shm(ngx_conf_t *cf)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_code_router_module);
    if (crmcf->shm) {
        return NGX_OK;
    }

    crmcf->shm = ngx_shared_memory_add(cf, &ngx_http_code_router_shm_name,
                                       8 * ngx_pagesize,
                                       &ngx_http_code_router_module);
    if (crmcf->shm == NULL) {
        return NGX_ERROR;
    }

    crmcf->shm->init = ngx_http_code_router_init_shm;

    return NGX_OK;
}


static ngx_int_t
ngx_http_code_router_init_shm(ngx_shm_zone_t *shm_zone, void *data)
{
    return ngx_http_code_router_shm_counters(shm_zone, data,
                                        sizeof(ngx_http_code_router_metrics_t));
}


/* The counters survive a reload: a zone of the old cycle is adopted. */
ngx_int_t
ngx_http_code_router_shm_counters(ngx_shm_zone_t *shm_zone, void *data,
    size_t size)
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

    shm_zone->data = ngx_slab_calloc(shpool, size);
    if (shm_zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm_zone->data;

    return NGX_OK;
}
