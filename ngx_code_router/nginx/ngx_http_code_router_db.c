/*
 * The binding stores in each worker: opened after fork, reopened when
 * code-router publish swaps the file, retried once a second in an outage
 * (answering 503 meanwhile), checked by the worker's timer
 * (ngx_http_code_router_worker.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_code_router.h"


#define CR_SWAP_CHECK_MS     250       /* stat of the store's path: a
                                        * published version is served
                                        * within this (plus a request) */


/* One binding store; servers naming the same file share it. */
typedef struct {
    ngx_str_t                       path;       /* NUL-terminated */
    cr_store_t                     *st;         /* this worker's; or NULL */
    uint64_t                        dev;
    uint64_t                        ino;
    ngx_msec_t                      checked;    /* ngx_current_msec */
    ngx_http_code_router_outage_t   outage;
} ngx_http_code_router_db_t;


static cr_store_t *ngx_http_code_router_db_check(ngx_http_code_router_db_t *db,
    ngx_log_t *log);
static ngx_int_t ngx_http_code_router_db_open(ngx_http_code_router_db_t *db,
    ngx_log_t *log);
static void ngx_http_code_router_db_close(ngx_http_code_router_db_t *db);


cr_store_t *
ngx_http_code_router_db_store(ngx_http_request_t *r)
{
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_srv_conf_t   *crscf;
    ngx_http_code_router_main_conf_t  *crmcf;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    db = crmcf->dbs.elts;

    return ngx_http_code_router_db_check(&db[crscf->db_index - 1],
                                         r->connection->log);
}


/*
 * The store to read now, or NULL (unavailable).  At most every
 * CR_SWAP_CHECK_MS: stat the path; a replaced file (another inode, e.g. a
 * symlink flipped by code-router publish) is reopened at once, a missing
 * one closed; a closed store is retried (once a second).
 */
static cr_store_t *
ngx_http_code_router_db_check(ngx_http_code_router_db_t *db, ngx_log_t *log)
{
    ngx_file_info_t  fi;

    if (ngx_current_msec - db->checked < CR_SWAP_CHECK_MS) {
        return db->st;
    }

    db->checked = ngx_current_msec;

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
            db->outage.retry = 0;
        }
    }

    if (db->st == NULL && ngx_http_code_router_retry_due(&db->outage)
        && ngx_http_code_router_db_open(db, log) == NGX_OK)
    {
        ngx_http_code_router_count_reopen();
    }

    if (db->st && ngx_http_code_router_readers_due(&db->outage)) {
        ngx_http_code_router_readers_cleared(log,
                                             cr_store_reader_check(db->st),
                                             &db->path);
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
        ngx_http_code_router_down(log, &db->outage, err,
                                  "answering 503 until it opens");
        return NGX_ERROR;
    }

    ngx_http_code_router_up(log, &db->outage, "store", &db->path);
    cr_store_file_id(db->st, &db->dev, &db->ino);
    cr_store_set_check(db->st, cr_target_check);
    db->checked = ngx_current_msec;

    return NGX_OK;
}


static void
ngx_http_code_router_db_close(ngx_http_code_router_db_t *db)
{
    if (db->st) {
        cr_store_close(db->st);
        db->st = NULL;
    }
}


ngx_str_t *
ngx_http_code_router_db_path(ngx_http_code_router_main_conf_t *crmcf,
    ngx_uint_t i)
{
    return &((ngx_http_code_router_db_t *) crmcf->dbs.elts)[i].path;
}


cr_store_t *
ngx_http_code_router_db_get(ngx_http_code_router_main_conf_t *crmcf,
    ngx_uint_t i, ngx_log_t *log)
{
    return ngx_http_code_router_db_check(
               &((ngx_http_code_router_db_t *) crmcf->dbs.elts)[i], log);
}


/*
 * Each worker opens its stores after fork, never before.  A store that
 * cannot be opened is logged and retried at requests, which answer 503
 * meanwhile.
 */
void
ngx_http_code_router_db_open_all(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_code_router_module);
    db = crmcf->dbs.elts;

    for (i = 0; i < crmcf->dbs.nelts; i++) {
        (void) ngx_http_code_router_db_open(&db[i], cycle->log);
    }
}


/*
 * Between requests: notice a swapped file, clear dead readers' slots, and
 * end the snapshot lookups keep between commits, so that an idle worker
 * pins a loader's freed pages for a second at most.
 */
void
ngx_http_code_router_db_tick(ngx_log_t *log)
{
    ngx_uint_t                         i;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_code_router_module);
    db = crmcf->dbs.elts;

    for (i = 0; i < crmcf->dbs.nelts; i++) {
        if (ngx_http_code_router_db_check(&db[i], log) != NULL) {
            cr_store_release(db[i].st);
        }
    }
}


void
ngx_http_code_router_db_close_all(ngx_cycle_t *cycle)
{
    ngx_uint_t                         i;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_code_router_module);
    db = crmcf->dbs.elts;

    for (i = 0; i < crmcf->dbs.nelts; i++) {
        ngx_http_code_router_db_close(&db[i]);
    }
}


/*
 * code_router_db PATH: checked now (so "nginx -t" fails on a missing or
 * foreign file), opened in each worker.
 */
char *
ngx_http_code_router_db_add(ngx_conf_t *cf, ngx_str_t *path,
    ngx_uint_t *index)
{
    char                               err[1024];
    ngx_uint_t                         i;
    cr_store_t                        *st;
    ngx_http_code_router_db_t         *db;
    ngx_http_code_router_main_conf_t  *crmcf;

    if (ngx_conf_full_name(cf->cycle, path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                               ngx_http_code_router_module);

    if (crmcf->dbs.elts == NULL
        && ngx_array_init(&crmcf->dbs, cf->pool, 2,
                          sizeof(ngx_http_code_router_db_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    db = crmcf->dbs.elts;

    for (i = 0; i < crmcf->dbs.nelts; i++) {
        if (db[i].path.len == path->len
            && ngx_strncmp(db[i].path.data, path->data, path->len) == 0)
        {
            *index = i + 1;
            return NGX_CONF_OK;
        }
    }

    if (cr_store_open(&st, (char *) path->data,
                      CR_STORE_RDONLY | CR_STORE_CHECK, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cr_store_close(st);

    db = ngx_array_push(&crmcf->dbs);
    if (db == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(db, sizeof(ngx_http_code_router_db_t));
    db->path = *path;
    *index = crmcf->dbs.nelts;

    return NGX_CONF_OK;
}
