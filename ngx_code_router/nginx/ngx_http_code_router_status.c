/*
 * The code_router_status page: the metrics
 * (ngx_http_code_router_metrics.c) with the stores', scan zones', PIN
 * guards' and ledgers' state, in Prometheus' text format.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_code_router.h"
#include "cr_version.h"


static u_char *ngx_http_code_router_counters(u_char *p, u_char *last,
    const char *name, const char *help, const char *label,
    const char *(*label_of)(ngx_uint_t i), ngx_atomic_t *v, ngx_uint_t n);
static const char *ngx_http_code_router_outcome_name(ngx_uint_t i);
static const char *ngx_http_code_router_scene_name(ngx_uint_t i);
static const char *ngx_http_code_router_answer_name(ngx_uint_t i);
static u_char *ngx_http_code_router_overrun_status(u_char *p, u_char *last,
    ngx_http_code_router_main_conf_t *crmcf, ngx_uint_t server,
    ngx_uint_t mine);


/*
 * code_router_status: Prometheus text exposition.  Every write is bounded
 * by the buffer's end (ngx_slprintf); a page that would not fit is an
 * error, never a truncated page.  scope=all (the operator's page): every
 * store, zone and total.  scope=server (a tenant's page): only the store
 * of the location's server and the scan zone the location counts in;
 * the totals of every server (answers, PIN checks) and other tenants'
 * store paths and generations are left out.
 */
ngx_int_t
ngx_http_code_router_status_handler(ngx_http_request_t *r)
{
    u_char                            *p, *last, *up;
    size_t                             len;
    time_t                             now;
    int64_t                            v;
    ngx_int_t                          rc;
    ngx_buf_t                         *buf;
    ngx_uint_t                         i, g, ndb;
    ngx_uint_t                         mine;
    ngx_chain_t                        out;
    cr_store_t                        *st;
    cr_store_info_t                   *info;
    ngx_http_code_router_zone_t       *zone;
    ngx_http_code_router_metrics_t    *m;
    ngx_http_code_router_srv_conf_t   *crscf;
    ngx_http_code_router_loc_conf_t   *crlcf;
    ngx_http_code_router_main_conf_t  *crmcf;

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

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);
    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    m = crmcf->shm->data;
    ndb = crmcf->dbs.nelts;
    now = ngx_time();

    /* scope=server: store db_index - 1 alone (none: 0, a server without
     * code_router_db), the location's zone alone (NGX_CONF_UNSET_PTR:
     * none). */
    mine = crlcf->status_server ? crscf->db_index : 0;
    zone = NULL;

    if (crlcf->status_server) {
        zone = (crlcf->scans && crlcf->scans != NGX_CONF_UNSET_PTR)
               ? crlcf->scans : NGX_CONF_UNSET_PTR;
    }

    /* Room for the fixed text (under 3 KB), and for each store five
     * lines of at most 96 bytes besides its path; the zones' lines are
     * counted exactly. */
    len = 4096 + ngx_http_code_router_scans_status_len(r, NULL)
          + ngx_http_code_router_guard_status_len(r)
          + ngx_http_code_router_ledger_status_len(r)
          + ngx_http_code_router_receipts_status_len(r);

    for (i = 0; i < ndb; i++) {
        len += (5 + CR_OVERRUN_PER_DB + 1)
               * (96 + ngx_http_code_router_db_path(crmcf, i)->len);
    }

    buf = ngx_create_temp_buf(r->pool, len);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf->last;
    last = buf->end;

    /* The version this worker runs: after an upgrade, a reload keeps the
     * old module mapped, and only this line shows it (README, Upgrades). */
    p = ngx_slprintf(p, last,
                     "# HELP code_router_build_info The code-router module "
                     "this worker runs, and the nginx it was built for.\n"
                     "# TYPE code_router_build_info gauge\n"
                     "code_router_build_info{version=\"" CR_VERSION "\","
                     "nginx=\"" NGINX_VERSION "\"} 1\n");

    if (crlcf->status_server) {
        goto stores;
    }

    p = ngx_http_code_router_counters(p, last, "code_router_requests_total",
                                      "Scans answered, by outcome.", "status",
                                      ngx_http_code_router_outcome_name,
                                      m->outcome, CR_OUT_N);

    p = ngx_http_code_router_counters(p, last,
                                      "code_router_scene_requests_total",
                                      "Scans by the scene of their batch.",
                                      "scene",
                                      ngx_http_code_router_scene_name,
                                      m->scene, CR_SCENES);

    p = ngx_slprintf(p, last,
                     "# HELP code_router_client_requests_total Scans by "
                     "client.\n"
                     "# TYPE code_router_client_requests_total counter\n"
                     "code_router_client_requests_total{client=\"other\"} "
                     "%uA\n"
                     "code_router_client_requests_total{client=\"wechat\"} "
                     "%uA\n", m->client[0], m->client[1]);

    p = ngx_http_code_router_counters(p, last, "code_router_answers_total",
                                      "Scans by the kind of answer.", "answer",
                                      ngx_http_code_router_answer_name,
                                      m->answer, CR_ANS_N);

    p = ngx_slprintf(p, last,
                     "# HELP code_router_db_reopens_total Store opens by "
                     "workers after start (swaps, outages).\n"
                     "# TYPE code_router_db_reopens_total counter\n"
                     "code_router_db_reopens_total %uA\n"
                     "# HELP code_router_unusable_targets_total Scans of a "
                     "campaign whose target cannot be answered (503).\n"
                     "# TYPE code_router_unusable_targets_total counter\n"
                     "code_router_unusable_targets_total %uA\n",
                     m->reopened, m->unusable);

stores:

    /* The text format wants each metric's samples in one group: read
     * every store first, then write metric by metric. */
    info = ngx_pcalloc(r->pool, ndb * sizeof(cr_store_info_t));
    up = ngx_pcalloc(r->pool, ndb);
    if ((info == NULL || up == NULL) && ndb) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < ndb; i++) {
        if (crlcf->status_server && i + 1 != mine) {
            continue;
        }

        st = ngx_http_code_router_db_get(crmcf, i, r->connection->log);
        up[i] = (st != NULL && cr_store_info(st, &info[i]) == 0);
    }

    p = ngx_slprintf(p, last,
                     "# HELP code_router_db_up Whether this worker can "
                     "read the store.\n# TYPE code_router_db_up gauge\n");

    for (i = 0; i < ndb; i++) {
        if (crlcf->status_server && i + 1 != mine) {
            continue;
        }

        p = ngx_slprintf(p, last, "code_router_db_up{db=\"%V\"} %d\n",
                         ngx_http_code_router_db_path(crmcf, i), (int) up[i]);
    }

    for (g = 0; g < 4; g++) {
        p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s gauge\n",
                         gauges[g][0], gauges[g][1], gauges[g][0]);

        for (i = 0; i < ndb; i++) {
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

            p = ngx_slprintf(p, last, "%s{db=\"%V\"} %L\n", gauges[g][0],
                             ngx_http_code_router_db_path(crmcf, i), v);
        }
    }

    p = ngx_http_code_router_overrun_status(p, last, crmcf,
                                            crlcf->status_server, mine);

    p = ngx_http_code_router_scans_status(r, p, last, zone);

    if (!crlcf->status_server) {
        p = ngx_http_code_router_guard_status(r, p, last);
        p = ngx_http_code_router_ledger_status(r, p, last);
        p = ngx_http_code_router_receipts_status(r, p, last);
    }

    if (p == last) {
        /* The sizes above missed a line: a short page would be wrong. */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "code router: status page larger than its %uz bytes",
                      len);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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


/* A counter family: its HELP and TYPE, then a sample per label value. */
static u_char *
ngx_http_code_router_counters(u_char *p, u_char *last, const char *name,
    const char *help, const char *label,
    const char *(*label_of)(ngx_uint_t i), ngx_atomic_t *v, ngx_uint_t n)
{
    ngx_uint_t  i;

    p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s counter\n",
                     name, help, name);

    for (i = 0; i < n; i++) {
        p = ngx_slprintf(p, last, "%s{%s=\"%s\"} %uA\n",
                         name, label, label_of(i), v[i]);
    }

    return p;
}


/* ngx_string() literals end in a NUL. */
static const char *
ngx_http_code_router_outcome_name(ngx_uint_t i)
{
    return (const char *) ngx_http_code_router_outcomes[i].name.data;
}


static const char *
ngx_http_code_router_scene_name(ngx_uint_t i)
{
    const char  *scene;

    scene = cr_scene_name(i);

    return scene ? scene : "none";
}


static const char *
ngx_http_code_router_answer_name(ngx_uint_t i)
{
    return ngx_http_code_router_answers[i];
}


/*
 * The overrun counters of each store the page shows (a server's page:
 * store mine - 1 alone, none if 0): a sample per key id and block of
 * serials seen, and each store's scans that found no slot left; the
 * table's own losses on the operator's page.
 */
static u_char *
ngx_http_code_router_overrun_status(u_char *p, u_char *last,
    ngx_http_code_router_main_conf_t *crmcf, ngx_uint_t server,
    ngx_uint_t mine)
{
    uint32_t                          crc;
    uint64_t                          key, block, kid;
    ngx_str_t                        *path;
    ngx_uint_t                        i, j, pass;
    ngx_http_code_router_overrun_t   *e;
    ngx_http_code_router_metrics_t   *m;

    static const char  *help[2][2] = {
        { "code_router_overrun_scans_total",
          "Scans of genuine codes that no bound batch holds (a printer "
          "overrun or a leaked code package), by store, key id and block "
          "of 1048576 serials." },
        { "code_router_overrun_other_scans_total",
          "Overrun scans of a store's further blocks (past the 16 counted "
          "a store)." }
    };

    m = crmcf->shm->data;

    for (pass = 0; pass < 2; pass++) {
        p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s counter\n",
                         help[pass][0], help[pass][1], help[pass][0]);

        for (i = 0; i < crmcf->dbs.nelts; i++) {
            if (server && i + 1 != mine) {
                continue;
            }

            path = ngx_http_code_router_db_path(crmcf, i);
            crc = ngx_crc32_short(path->data, path->len);

            if (pass == 1) {
                e = ngx_http_code_router_overrun_find(m,
                                                 CR_OVERRUN_KEY(crc, 0, 0));
                p = ngx_slprintf(p, last, "%s{db=\"%V\"} %uA\n",
                                 help[1][0], path, e ? e->count : 0);
                continue;
            }

            for (j = 0; j < CR_OVERRUN_SLOTS; j++) {
                key = m->overrun[j].key;
                kid = (key >> CR_OVERRUN_BLOCK_LG) & 0x1ff;

                if (key >> 32 != crc || kid == 0) {
                    continue;
                }

                block = key & ((1 << CR_OVERRUN_BLOCK_LG) - 1);

                p = ngx_slprintf(p, last, "%s{db=\"%V\",kid=\"%uL\","
                                 "serials=\"%uL-%uL\"} %uA\n", help[0][0],
                                 path, kid - 1,
                                 block << CR_OVERRUN_BLOCK_LG,
                                 ((block + 1) << CR_OVERRUN_BLOCK_LG) - 1,
                                 m->overrun[j].count);
            }
        }
    }

    if (!server) {
        p = ngx_slprintf(p, last,
                         "# HELP code_router_overrun_lost_total Overrun "
                         "scans not counted by store: the table of blocks "
                         "was full.\n"
                         "# TYPE code_router_overrun_lost_total counter\n"
                         "code_router_overrun_lost_total %uA\n",
                         m->overrun_lost);
    }

    return p;
}
