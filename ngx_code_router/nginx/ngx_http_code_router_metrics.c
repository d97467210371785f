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
static ngx_http_code_router_overrun_t *ngx_http_code_router_overrun_slot(
    ngx_http_code_router_metrics_t *m, uint64_t key);


static ngx_str_t  ngx_http_code_router_shm_name =
    ngx_string("code_router_metrics_6");    /* a new layout, a new name */


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


void
ngx_http_code_router_count_overrun(ngx_http_request_t *r, ngx_str_t *db,
    unsigned kid, uint64_t serial)
{
    uint32_t                           crc;
    uint64_t                           key;
    ngx_slab_pool_t                   *shpool;
    ngx_http_code_router_overrun_t    *e, *own;
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->shm == NULL || crmcf->shm->data == NULL) {
        return;
    }

    m = crmcf->shm->data;
    crc = ngx_crc32_short(db->data, db->len);
    key = CR_OVERRUN_KEY(crc, kid + 1, serial >> CR_OVERRUN_BLOCK_LG);

    e = ngx_http_code_router_overrun_find(m, key);

    if (e == NULL) {
        /* A block not seen before: its slot is taken under the lock, so
         * that two workers do not take two, nor a store more than its. */
        shpool = (ngx_slab_pool_t *) crmcf->shm->shm.addr;
        ngx_shmtx_lock(&shpool->mutex);

        own = ngx_http_code_router_overrun_slot(m, CR_OVERRUN_KEY(crc, 0, 0));
        if (own && own->key == 0) {
            own->key = CR_OVERRUN_KEY(crc, 0, 0);
        }

        e = ngx_http_code_router_overrun_slot(m, key);

        if (e == NULL || e->key == 0) {
            if (e && own && own->slots < CR_OVERRUN_PER_DB) {
                own->slots++;
                e->key = key;

            } else {
                e = own;                /* counted as the store's other */
            }
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }

    (void) ngx_atomic_fetch_add(e ? &e->count : &m->overrun_lost, 1);
}


ngx_http_code_router_overrun_t *
ngx_http_code_router_overrun_find(ngx_http_code_router_metrics_t *m,
    uint64_t key)
{
    ngx_http_code_router_overrun_t  *e;

    e = ngx_http_code_router_overrun_slot(m, key);

    return (e && e->key == key) ? e : NULL;
}


/* The entry of key, else the free slot where it would go, else NULL (the
 * table is full).  A slot is taken only under the zone's lock. */
static ngx_http_code_router_overrun_t *
ngx_http_code_router_overrun_slot(ngx_http_code_router_metrics_t *m,
    uint64_t key)
{
    ngx_uint_t  i, n;

    i = (ngx_uint_t) (key ^ key >> 29) & (CR_OVERRUN_SLOTS - 1);

    for (n = 0; n < CR_OVERRUN_SLOTS; n++) {
        if (m->overrun[i].key == key || m->overrun[i].key == 0) {
            return &m->overrun[i];
        }

        i = (i + 1) & (CR_OVERRUN_SLOTS - 1);
    }

    return NULL;
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
                                       16 * ngx_pagesize,
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
