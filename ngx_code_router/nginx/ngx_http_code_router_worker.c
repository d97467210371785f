/*
 * A worker's life: its stores opened after fork, a one-second timer that
 * checks the binding stores and flushes the scan stores, and every store
 * flushed and closed at exit.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_code_router.h"


#define CR_TIMER_MS          1000      /* swap check, stale readers, flush */


static void ngx_http_code_router_timer(ngx_event_t *ev);


static ngx_event_t       ngx_http_code_router_timer_ev;
static ngx_connection_t  ngx_http_code_router_timer_conn;


/*
 * A store that cannot be opened here is retried at requests: a worker
 * that failed its init would exit and not be respawned.
 */
ngx_int_t
ngx_http_code_router_init_process(ngx_cycle_t *cycle)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_code_router_module);
    if (crmcf == NULL || crmcf->dbs.nelts == 0) {
        return NGX_OK;
    }

    ngx_http_code_router_db_open_all(cycle);
    ngx_http_code_router_scans_open(cycle);
    if (ngx_http_code_router_receipts_open(cycle) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "code router: no memory "
                      "for the receipts' polls");
    }

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
ngx_http_code_router_timer(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_code_router_db_tick(ev->log);
    ngx_http_code_router_scans_timer(ev->log);
    ngx_http_code_router_receipts_load(ev->log);

    ngx_add_timer(ev, CR_TIMER_MS);
}


void
ngx_http_code_router_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_code_router_module);
    if (crmcf == NULL) {
        return;
    }

    ngx_http_code_router_db_close_all(cycle);
    ngx_http_code_router_scans_close(cycle);
}
