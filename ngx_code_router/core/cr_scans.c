/*
 * cr_scans: the scan store.  See cr_scans.h.
 */

#define _DEFAULT_SOURCE         /* usleep */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "cr_lmdb.h"
#include "cr_scans.h"
#include "cr_scans_int.h"


#define CR_SCANS_KEY   (CR_SCANS_FP_LEN + 7)   /* at most */
#define CR_SCANS_VAL   12
#define CR_SCANS_REDEMPTION  2                  /* the 'r' key */
#define CR_SCANS_REQUEST     3                  /* the 'q' key */


static int cr_scans_check_dir(const char *path, char *err, size_t errlen);
static int cr_scans_schema(cr_scans_t *sc, MDB_txn *txn, int create,
    const char *path, char *err, size_t errlen);
static int cr_scans_grow(cr_scans_t *sc);
static int cr_scans_write(cr_scans_t *sc, MDB_txn *txn, const cr_scan_t *v,
    size_t n, int stored_only);
static uint64_t cr_scans_used(cr_scans_t *sc, MDB_txn *txn);
static void cr_scans_decode(const MDB_val *v, cr_scan_t *s);
static void cr_scans_encode(uint8_t *d, const cr_scan_t *s);
static int cr_scans_verify_txn(cr_scans_t *sc, cr_scan_t *v,
    const char *const *req, int *replayed, size_t n, int64_t now);
static int cr_scans_redeem_txn(cr_scans_t *sc,
    const uint8_t fp[CR_SCANS_FP_LEN], unsigned kid, uint64_t serial,
    const char *request, size_t len, int64_t now, int64_t *at);


int
cr_scans_open(cr_scans_t **out, const char *path, uint64_t map_size,
    int flags, char *err, size_t errlen)
{
    int           rc;
    unsigned      env_flags;
    MDB_txn      *txn;
    MDB_dbi       main;
    MDB_stat      ms;
    cr_scans_t   *sc;
    struct stat   fi;

    if (out) {
        *out = NULL;
    }

    sc = calloc(1, sizeof(cr_scans_t));
    if (sc == NULL) {
        snprintf(err, errlen, "scan store \"%s\": out of memory", path);
        return -1;
    }

    if (pthread_mutex_init(&sc->lock, NULL) != 0) {
        free(sc);
        snprintf(err, errlen, "scan store \"%s\": no mutex", path);
        return -1;
    }

    env_flags = MDB_NOSUBDIR | MDB_NOTLS;

    if (flags & CR_SCANS_READ) {
        if (stat(path, &fi) != 0) {
            cr_scans_close(sc);
            snprintf(err, errlen, "scan store \"%s\": %s", path,
                     strerror(errno));
            return -1;
        }

        env_flags |= MDB_RDONLY;

    } else if (flags & CR_SCANS_CHECK) {
        /* nginx -t: an existing file must be a scan store; a missing one
         * is created later, by a worker, in a directory that exists. */
        if (stat(path, &fi) != 0) {
            cr_scans_close(sc);
            if (errno == ENOENT) {
                return cr_scans_check_dir(path, err, errlen);
            }
            snprintf(err, errlen, "scan store \"%s\": %s", path,
                     strerror(errno));
            return -1;
        }

        env_flags |= MDB_RDONLY | MDB_NOLOCK;
    }

    rc = mdb_env_create(&sc->env);
    if (rc == 0) {
        (void) mdb_env_set_maxdbs(sc->env, 3);
        (void) mdb_env_set_maxreaders(sc->env, CR_LMDB_MAXREADERS);
        rc = mdb_env_set_mapsize(sc->env, map_size ? map_size
                                                   : CR_SCANS_DEFAULT_MAP);
    }

    if (rc == 0) {
        rc = mdb_env_open(sc->env, path, env_flags, 0600);
    }

    if (rc != 0) {
        snprintf(err, errlen, "scan store \"%s\": %s", path,
                 mdb_strerror(rc));
        goto failed;
    }

    rc = mdb_txn_begin(sc->env, NULL, env_flags & MDB_RDONLY, &txn);
    if (rc != 0) {
        snprintf(err, errlen, "scan store \"%s\": %s", path,
                 mdb_strerror(rc));
        goto failed;
    }

    /* Never the binding store (or anything else): its main database
     * names other sub-databases and no "scans". */
    rc = mdb_dbi_open(txn, "scans", 0, &sc->dbi);

    if (rc == MDB_NOTFOUND) {
        if (mdb_dbi_open(txn, NULL, 0, &main) == 0
            && mdb_stat(txn, main, &ms) == 0 && ms.ms_entries != 0)
        {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "scan store \"%s\" is another LMDB "
                     "database (a binding store?), not a scan store", path);
            goto failed;
        }

        if (flags & CR_SCANS_READ) {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "scan store \"%s\" is empty: nginx has "
                     "counted no scan into it yet", path);
            goto failed;
        }

        if (env_flags & MDB_RDONLY) {
            mdb_txn_abort(txn);     /* empty: a new store, made later */
            cr_scans_close(sc);
            return 0;
        }

        rc = mdb_dbi_open(txn, "scans", MDB_CREATE, &sc->dbi);
        if (rc == 0) {
            rc = cr_scans_schema(sc, txn, 1, path, err, errlen);
        }

    } else if (rc == 0) {
        rc = cr_scans_schema(sc, txn, 0, path, err, errlen);
        if (rc == -1) {
            mdb_txn_abort(txn);
            goto failed;
        }
    }

    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    } else {
        mdb_txn_abort(txn);
    }

    if (rc != 0) {
        snprintf(err, errlen, "scan store \"%s\": %s", path,
                 mdb_strerror(rc));
        goto failed;
    }

    if (flags & CR_SCANS_CHECK) {
        cr_scans_close(sc);
        return 0;
    }

    cr_scans_limit(sc, CR_SCANS_DEFAULT_MAX);

    *out = sc;

    return 0;

failed:

    cr_scans_close(sc);

    return -1;
}


void
cr_scans_close(cr_scans_t *sc)
{
    if (sc == NULL) {
        return;
    }

    if (sc->rtxn) {
        mdb_txn_abort(sc->rtxn);
    }

    if (sc->env) {
        mdb_env_close(sc->env);
    }

    (void) pthread_mutex_destroy(&sc->lock);
    free(sc);
}


const char *
cr_scans_error(cr_scans_t *sc)
{
    return sc->err;
}


int
cr_scans_get(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN], unsigned kid,
    uint64_t serial, unsigned kind, cr_scan_t *v)
{
    int       rc;
    uint8_t   k[CR_SCANS_KEY];
    MDB_val   key, val;

    /* Renews the reset read txn, or begins one. */
    rc = cr_scans_begin(sc, MDB_RDONLY, &sc->rtxn, CR_SCANS_READ_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "read");
    }

    key.mv_data = k;
    key.mv_size = cr_scans_key(k, fp, kid, serial, kind);

    rc = mdb_get(sc->rtxn, sc->dbi, &key, &val);

    if (rc == 0 && val.mv_size == CR_SCANS_VAL) {
        memcpy(v->fp, fp, CR_SCANS_FP_LEN);
        v->kid = kid;
        v->kind = (uint8_t) kind;
        v->serial = serial;
        cr_scans_decode(&val, v);
    }

    mdb_txn_reset(sc->rtxn);
    cr_scans_end(sc);

    if (rc == MDB_NOTFOUND) {
        return CR_SCANS_NOTFOUND;
    }

    if (rc == 0 && val.mv_size != CR_SCANS_VAL) {
        snprintf(sc->err, sizeof(sc->err), "scan store: a record of %zu "
                 "bytes, not %d", val.mv_size, CR_SCANS_VAL);
        return -1;
    }

    return rc ? cr_scans_fail(sc, rc, "get") : 0;
}


int
cr_scans_put(cr_scans_t *sc, const cr_scan_t *v, size_t n)
{
    int        rc, refused;
    size_t     i;
    uint64_t   used, before, share;
    MDB_txn   *txn;

    share = sc->max / 8 * CR_SCANS_SCANS_SHARE;
    refused = 0;

    for (i = 0; i < n && v[i].kind != CR_SCANS_SCANS; i++) {
        /* void */
    }

    for ( ;; ) {
        txn = NULL;

        rc = cr_scans_begin(sc, 0, &txn, CR_SCANS_WRITE_TRIES);
        if (rc != 0) {
            return cr_scans_fail(sc, rc, "begin");
        }

        before = cr_scans_used(sc, txn);
        rc = cr_scans_write(sc, txn, v, n, refused);

        if (rc == 0) {
            used = cr_scans_used(sc, txn);

            /* Scans that grow the data past their share wait: written
             * again, only those of codes the store holds (raising a
             * count does not grow it). */
            if (i < n && !refused && used > share && used > before) {
                mdb_txn_abort(txn);
                cr_scans_end(sc);
                snprintf(sc->err, sizeof(sc->err), "scan store: its data "
                         "would be %llu bytes, past the %llu that scans may "
                         "fill of its limit of %llu (store_max=): new codes' "
                         "scans are not stored; right PINs still are",
                         (unsigned long long) used,
                         (unsigned long long) share,
                         (unsigned long long) sc->max);
                refused = 1;
                continue;
            }

            rc = mdb_txn_commit(txn);

        } else {
            mdb_txn_abort(txn);
        }

        cr_scans_end(sc);

        if (rc == 0) {
            return refused ? CR_SCANS_REFUSED : 0;
        }

        if (rc != MDB_MAP_FULL) {
            return cr_scans_fail(sc, rc, "put");
        }

        rc = cr_scans_grow(sc);

        if (rc == CR_SCANS_FULL) {
            snprintf(sc->err, sizeof(sc->err), "scan store: the map is at "
                     "its limit of %llu bytes (store_max=)",
                     (unsigned long long) sc->max);
            return CR_SCANS_FULL;
        }

        if (rc != 0) {
            return cr_scans_fail(sc, rc, "growing the map");
        }
    }
}


int
cr_scans_verify(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN],
    unsigned kid, uint64_t serial, int64_t now, cr_scan_t *v)
{
    memset(v, 0, sizeof(cr_scan_t));
    memcpy(v->fp, fp, CR_SCANS_FP_LEN);
    v->kid = (uint8_t) kid;
    v->serial = serial;

    return cr_scans_verify_n(sc, v, NULL, NULL, 1, now);
}


int
cr_scans_verify_n(cr_scans_t *sc, cr_scan_t *v, const char *const *req,
    int *replayed, size_t n, int64_t now)
{
    int  rc;

    /* A map too small is grown (up to the limit) and the batch tried
     * again: right PINs are never refused for the scans' share. */
    do {
        rc = cr_scans_verify_txn(sc, v, req, replayed, n, now);
    } while (rc == CR_SCANS_FULL && cr_scans_grown(sc, &rc));

    return rc;
}


/* One try of cr_scans_verify_n: 0, CR_SCANS_FULL (the map) or -1. */
static int
cr_scans_verify_txn(cr_scans_t *sc, cr_scan_t *v, const char *const *req,
    int *replayed, size_t n, int64_t now)
{
    int        rc;
    size_t     i, len;
    uint8_t    k[CR_SCANS_KEY], d[CR_SCANS_VAL], q[CR_SCANS_KEY];
    uint8_t    qd[CR_SCANS_VAL + CR_SCANS_REQUEST_MAX];
    MDB_txn   *txn;
    MDB_val    key, val, qkey;
    cr_scan_t  s;

    txn = NULL;

    rc = cr_scans_begin(sc, 0, &txn, CR_SCANS_WRITE_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "begin");
    }

    /* In order: two right PINs of one code in a batch are 1 and 2 (the
     * transaction reads its own writes). */
    for (i = 0; i < n; i++) {
        s = v[i];
        s.kind = CR_SCANS_VERIFIED;
        s.count = 0;
        s.first = 0;

        len = (req && req[i]) ? strlen(req[i]) : 0;

        if (replayed) {
            replayed[i] = 0;
        }

        /* The code's last request id: the same request again (a retried
         * POST) is answered what it was, and counts nothing. */
        if (len && len <= CR_SCANS_REQUEST_MAX) {
            qkey.mv_data = q;
            qkey.mv_size = cr_scans_key(q, s.fp, s.kid, s.serial,
                                        CR_SCANS_REQUEST);

            rc = mdb_get(txn, sc->dbi, &qkey, &val);

            if (rc == 0 && val.mv_size == CR_SCANS_VAL + len
                && memcmp((uint8_t *) val.mv_data + CR_SCANS_VAL, req[i],
                          len) == 0)
            {
                cr_scans_decode(&val, &s);
                v[i] = s;

                if (replayed) {
                    replayed[i] = 1;
                }

                continue;
            }

            if (rc != 0 && rc != MDB_NOTFOUND) {
                goto failed;
            }
        }

        key.mv_data = k;
        key.mv_size = cr_scans_key(k, s.fp, s.kid, s.serial,
                                   CR_SCANS_VERIFIED);

        rc = mdb_get(txn, sc->dbi, &key, &val);

        if (rc == 0 && val.mv_size == CR_SCANS_VAL) {
            cr_scans_decode(&val, &s);

        } else if (rc == 0) {
            snprintf(sc->err, sizeof(sc->err), "scan store: a record of "
                     "%zu bytes, not %d", val.mv_size, CR_SCANS_VAL);
            mdb_txn_abort(txn);
            cr_scans_end(sc);
            return -1;

        } else if (rc != MDB_NOTFOUND) {
            goto failed;
        }

        if (s.count == UINT32_MAX) {
            snprintf(sc->err, sizeof(sc->err), "scan store: a "
                     "verification count at its maximum");
            mdb_txn_abort(txn);
            cr_scans_end(sc);
            return -1;
        }

        s.count++;

        if (s.first == 0) {
            s.first = now;
        }

        cr_scans_encode(d, &s);
        val.mv_data = d;
        val.mv_size = sizeof(d);

        rc = mdb_put(txn, sc->dbi, &key, &val, 0);
        if (rc != 0) {
            goto failed;
        }

        if (len && len <= CR_SCANS_REQUEST_MAX) {
            memcpy(qd, d, CR_SCANS_VAL);
            memcpy(qd + CR_SCANS_VAL, req[i], len);
            val.mv_data = qd;
            val.mv_size = CR_SCANS_VAL + len;

            rc = mdb_put(txn, sc->dbi, &qkey, &val, 0);
            if (rc != 0) {
                goto failed;
            }
        }

        v[i] = s;
    }

    /* The environment has no MDB_NOSYNC: the commit returns after
     * fsync(), once for the whole batch. */
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return cr_scans_write_failed(sc, NULL, rc, "commit");
    }

    cr_scans_end(sc);

    return 0;

failed:

    return cr_scans_write_failed(sc, txn, rc, "verify");
}


int
cr_scans_redeem(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN],
    unsigned kid, uint64_t serial, const char *request, size_t len,
    int64_t now, int64_t *at)
{
    int  rc;

    do {
        rc = cr_scans_redeem_txn(sc, fp, kid, serial, request, len, now, at);
    } while (rc == CR_SCANS_FULL && cr_scans_grown(sc, &rc));

    return rc;
}


/* One try of cr_scans_redeem. */
static int
cr_scans_redeem_txn(cr_scans_t *sc, const uint8_t fp[CR_SCANS_FP_LEN],
    unsigned kid, uint64_t serial, const char *request, size_t len,
    int64_t now, int64_t *at)
{
    int       rc, i, out;
    uint8_t   k[CR_SCANS_KEY], d[8 + CR_SCANS_REQUEST_MAX];
    uint64_t  t;
    MDB_txn  *txn;
    MDB_val   key, val;

    if (len == 0 || len > CR_SCANS_REQUEST_MAX) {
        snprintf(sc->err, sizeof(sc->err), "scan store: a bad request id");
        return -1;
    }

    txn = NULL;

    rc = cr_scans_begin(sc, 0, &txn, CR_SCANS_WRITE_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "begin");
    }

    key.mv_data = k;
    key.mv_size = cr_scans_key(k, fp, kid, serial, CR_SCANS_REDEMPTION);

    rc = mdb_get(txn, sc->dbi, &key, &val);

    if (rc == 0) {
        if (val.mv_size <= 8 || val.mv_size > sizeof(d)) {
            snprintf(sc->err, sizeof(sc->err), "scan store: a redemption "
                     "of %zu bytes", val.mv_size);
            mdb_txn_abort(txn);
            cr_scans_end(sc);
            return -1;
        }

        memcpy(d, val.mv_data, val.mv_size);
        t = 0;

        for (i = 7; i >= 0; i--) {
            t = (t << 8) | d[i];
        }

        *at = (int64_t) t;
        out = (val.mv_size - 8 == len && memcmp(d + 8, request, len) == 0)
              ? CR_SCANS_REPLAYED : CR_SCANS_TAKEN;

        mdb_txn_abort(txn);
        cr_scans_end(sc);

        return out;
    }

    if (rc != MDB_NOTFOUND) {
        goto failed;
    }

    for (i = 0; i < 8; i++) {
        d[i] = (uint8_t) ((uint64_t) now >> (8 * i));
    }

    memcpy(d + 8, request, len);
    val.mv_data = d;
    val.mv_size = 8 + len;

    rc = mdb_put(txn, sc->dbi, &key, &val, MDB_NOOVERWRITE);
    if (rc != 0) {
        goto failed;
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return cr_scans_write_failed(sc, NULL, rc, "commit");
    }

    cr_scans_end(sc);

    *at = now;

    return CR_SCANS_REDEEMED;

failed:

    return cr_scans_write_failed(sc, txn, rc, "redeem");
}


void
cr_scans_limit(cr_scans_t *sc, uint64_t max)
{
    MDB_envinfo  info;

    (void) pthread_mutex_lock(&sc->lock);
    mdb_env_info(sc->env, &info);
    (void) pthread_mutex_unlock(&sc->lock);

    sc->max = (max > info.me_mapsize) ? max : info.me_mapsize;
}


int
cr_scans_usage(cr_scans_t *sc, cr_scans_usage_t *u)
{
    int          rc;
    MDB_envinfo  info;

    rc = cr_scans_begin(sc, MDB_RDONLY, &sc->rtxn, CR_SCANS_READ_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "read");
    }

    u->used = cr_scans_used(sc, sc->rtxn);
    mdb_txn_reset(sc->rtxn);

    (void) pthread_mutex_lock(&sc->lock);
    mdb_env_info(sc->env, &info);
    (void) pthread_mutex_unlock(&sc->lock);

    cr_scans_end(sc);

    u->map = info.me_mapsize;
    u->limit = sc->max;
    u->alert = u->used > sc->max / 8 * CR_SCANS_ALERT_SHARE;

    return 0;
}


int
cr_scans_reader_check(cr_scans_t *sc)
{
    int  dead;

    if (mdb_reader_check(sc->env, &dead) != 0) {
        return -1;
    }

    return dead;
}


int
cr_scans_each(cr_scans_t *sc, int (*fn)(void *ctx, const cr_scan_t *v),
    void *ctx)
{
    size_t  n;

    return cr_scans_each_from(sc, NULL, SIZE_MAX, fn, ctx, NULL, &n);
}


int
cr_scans_each_from(cr_scans_t *sc, const cr_scan_t *from, size_t max,
    int (*fn)(void *ctx, const cr_scan_t *v), void *ctx, cr_scan_t *last,
    size_t *n)
{
    int          rc, r;
    size_t       i;
    uint8_t      fk[CR_SCANS_KEY];
    MDB_txn     *txn;
    MDB_val      key, val;
    cr_scan_t    s;
    MDB_cursor  *cur;
    const uint8_t  *k;

    *n = 0;

    txn = NULL;
    rc = cr_scans_begin(sc, MDB_RDONLY, &txn, CR_SCANS_WRITE_TRIES);
    if (rc != 0) {
        return cr_scans_fail(sc, rc, "read");
    }

    rc = mdb_cursor_open(txn, sc->dbi, &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        cr_scans_end(sc);
        return cr_scans_fail(sc, rc, "cursor");
    }

    r = 0;

    if (from) {
        /* The first key at or after from's, and past it if it is from's
         * own (its longer keys, 'v' and the rest, sort after it). */
        key.mv_data = fk;
        key.mv_size = cr_scans_key(fk, from->fp, from->kid, from->serial,
                                   from->kind);

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

        if (rc == 0 && key.mv_size == cr_scans_key(fk, from->fp, from->kid,
                                                   from->serial, from->kind)
            && memcmp(key.mv_data, fk, key.mv_size) == 0)
        {
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
        }

    } else {
        rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    }

    for ( /* void */ ;
         rc == 0 && *n < max;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        k = key.mv_data;

        /* A prize's redemption, a right PIN's last request id: no
         * counts (cr_scans_redeem, cr_scans_verify_n). */
        if (key.mv_size == CR_SCANS_FP_LEN + 7
            && (k[CR_SCANS_FP_LEN + 6] == 'r' || k[CR_SCANS_FP_LEN + 6] == 'q')
            && val.mv_size > CR_SCANS_VAL - 4)
        {
            continue;
        }

        if ((key.mv_size != CR_SCANS_FP_LEN + 6
             && (key.mv_size != CR_SCANS_FP_LEN + 7
                 || k[CR_SCANS_FP_LEN + 6] != 'v'))
            || val.mv_size != CR_SCANS_VAL)
        {
            snprintf(sc->err, sizeof(sc->err), "scan store: a record with "
                     "a %zu-byte key and a %zu-byte value is not one of "
                     "ours", key.mv_size, val.mv_size);
            r = -1;
            break;
        }

        memcpy(s.fp, k, CR_SCANS_FP_LEN);
        s.kid = k[CR_SCANS_FP_LEN];
        s.serial = 0;

        for (i = 0; i < 5; i++) {
            s.serial = s.serial << 8 | k[CR_SCANS_FP_LEN + 1 + i];
        }

        s.kind = key.mv_size == CR_SCANS_FP_LEN + 6 ? CR_SCANS_SCANS
                                                    : CR_SCANS_VERIFIED;
        cr_scans_decode(&val, &s);

        (*n)++;

        if (last) {
            *last = s;
        }

        r = fn(ctx, &s);
        if (r != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    cr_scans_end(sc);

    if (r != 0) {
        return r;
    }

    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : cr_scans_fail(sc, rc, "read");
}


static int
cr_scans_count(void *ctx, const cr_scan_t *v)
{
    cr_scans_info_t  *info = ctx;

    if (v->kind == CR_SCANS_SCANS) {
        info->scanned++;
    } else {
        info->verified++;
    }

    return 0;
}


int
cr_scans_info(cr_scans_t *sc, cr_scans_info_t *info)
{
    int           rc;
    MDB_stat      ms;
    MDB_envinfo   ei;

    memset(info, 0, sizeof(cr_scans_info_t));
    info->version = CR_SCANS_VERSION;

    rc = mdb_env_info(sc->env, &ei);
    if (rc == 0) {
        rc = mdb_env_stat(sc->env, &ms);
    }

    if (rc != 0) {
        return cr_scans_fail(sc, rc, "info");
    }

    info->map_size = ei.me_mapsize;
    info->map_used = (uint64_t) (ei.me_last_pgno + 1) * ms.ms_psize;
    info->readers = ei.me_numreaders;
    info->max_readers = ei.me_maxreaders;

    return cr_scans_each(sc, cr_scans_count, info);
}


/* The store's key order: fp, then kid, then serial. */
int
cr_scans_cmp(const void *a, const void *b)
{
    int               c;
    const cr_scan_t  *x = a, *y = b;

    c = memcmp(x->fp, y->fp, CR_SCANS_FP_LEN);
    if (c != 0) {
        return c;
    }

    if (x->kid != y->kid) {
        return x->kid < y->kid ? -1 : 1;
    }

    if (x->serial != y->serial) {
        return x->serial < y->serial ? -1 : 1;
    }

    /* A shorter key first, as LMDB orders a key and its extension. */
    if (x->kind != y->kind) {
        return x->kind < y->kind ? -1 : 1;
    }

    return 0;
}


/*
 * The "meta" sub-database: writes the version into a new store, or
 * checks an existing one's.  0, -1 (err set) or an LMDB error.
 */
static int
cr_scans_schema(cr_scans_t *sc, MDB_txn *txn, int create, const char *path,
    char *err, size_t errlen)
{
    int        rc;
    uint8_t    d[4];
    uint32_t   version;
    MDB_val    key, val;

    key.mv_data = "version";
    key.mv_size = sizeof("version") - 1;

    if (create) {
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &sc->meta);
        if (rc != 0) {
            return rc;
        }

        version = CR_SCANS_VERSION;
        d[0] = (uint8_t) version;
        d[1] = (uint8_t) (version >> 8);
        d[2] = (uint8_t) (version >> 16);
        d[3] = (uint8_t) (version >> 24);
        val.mv_data = d;
        val.mv_size = sizeof(d);

        return mdb_put(txn, sc->meta, &key, &val, 0);
    }

    version = 1;            /* before "meta": counts keyed by kid, serial */

    rc = mdb_dbi_open(txn, "meta", 0, &sc->meta);
    if (rc == 0) {
        rc = mdb_get(txn, sc->meta, &key, &val);
        if (rc == 0 && val.mv_size == 4) {
            memcpy(d, val.mv_data, 4);
            version = (uint32_t) d[0] | (uint32_t) d[1] << 8
                      | (uint32_t) d[2] << 16 | (uint32_t) d[3] << 24;
        } else if (rc == 0) {
            version = 0;
        }
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    if (version != CR_SCANS_VERSION) {
        snprintf(err, errlen, "scan store \"%s\" has version %u, this "
                 "code-router reads version %d (counts keyed by the key's "
                 "fingerprint): move it aside to start counting afresh "
                 "(see README, \"Scan counting\")", path, version,
                 CR_SCANS_VERSION);
        return -1;
    }

    return 0;
}


/* fp | kid | serial, big-endian: one brand's codes sort together; a
 * code's right PINs ('v') next to its scans.  Returns the key's length. */
size_t
cr_scans_key(uint8_t *k, const uint8_t *fp, unsigned kid, uint64_t serial,
    unsigned kind)
{
    int  i;

    memcpy(k, fp, CR_SCANS_FP_LEN);
    k[CR_SCANS_FP_LEN] = (uint8_t) kid;

    for (i = 0; i < 5; i++) {
        k[CR_SCANS_FP_LEN + 1 + i] = (uint8_t) (serial >> (8 * (4 - i)));
    }

    if (kind == CR_SCANS_SCANS) {
        return CR_SCANS_FP_LEN + 6;
    }

    k[CR_SCANS_FP_LEN + 6] = (kind == CR_SCANS_REDEMPTION) ? 'r'
                             : (kind == CR_SCANS_REQUEST) ? 'q' : 'v';

    return CR_SCANS_FP_LEN + 7;
}


/* A store not yet created: its directory must exist. */
static int
cr_scans_check_dir(const char *path, char *err, size_t errlen)
{
    char         dir[4096], *slash;
    struct stat  fi;

    if (strlen(path) >= sizeof(dir)) {
        snprintf(err, errlen, "scan store path is too long");
        return -1;
    }

    strcpy(dir, path);
    slash = strrchr(dir, '/');

    if (slash == NULL || slash == dir) {
        return 0;
    }

    *slash = '\0';

    if (stat(dir, &fi) != 0 || !S_ISDIR(fi.st_mode)) {
        snprintf(err, errlen, "scan store \"%s\": directory \"%s\": %s",
                 path, dir, errno ? strerror(errno) : "not a directory");
        return -1;
    }

    return 0;
}


int
cr_scans_fail(cr_scans_t *sc, int rc, const char *what)
{
    snprintf(sc->err, sizeof(sc->err), "scan store: %s: %s", what,
             mdb_strerror(rc));
    return -1;
}


/*
 * Begins a txn (or renews *txn, a reset read txn) and counts it live; 0 or
 * an LMDB error.  MDB_MAP_RESIZED (another process grew the map, e.g. a
 * reload with a larger store_size=) is adopted here, and only when no
 * other txn of this process is live; else retried, up to "tries" times.
 */
int
cr_scans_begin(cr_scans_t *sc, unsigned flags, MDB_txn **txn, int tries)
{
    int  rc, i;

    for (i = 0; /* void */; i++) {
        (void) pthread_mutex_lock(&sc->lock);
        sc->live++;
        (void) pthread_mutex_unlock(&sc->lock);

        if (*txn) {
            rc = mdb_txn_renew(*txn);
        } else {
            rc = mdb_txn_begin(sc->env, NULL, flags, txn);
            if (rc != 0) {
                *txn = NULL;
            }
        }

        if (rc != MDB_MAP_RESIZED) {
            if (rc != 0) {
                cr_scans_end(sc);
            }

            return rc;
        }

        (void) pthread_mutex_lock(&sc->lock);

        if (--sc->live == 0) {
            if (*txn) {
                mdb_txn_abort(*txn);        /* reset: not active */
                *txn = NULL;
            }

            rc = mdb_env_set_mapsize(sc->env, 0);
        }

        (void) pthread_mutex_unlock(&sc->lock);

        if (rc != MDB_MAP_RESIZED) {
            if (rc != 0) {
                return rc;
            }

            continue;                       /* adopted: begin again */
        }

        if (i >= tries) {
            return rc;
        }

        (void) usleep(100);
    }
}


void
cr_scans_end(cr_scans_t *sc)
{
    (void) pthread_mutex_lock(&sc->lock);
    sc->live--;
    (void) pthread_mutex_unlock(&sc->lock);
}


/*
 * Doubles the map, up to the limit: 0, CR_SCANS_FULL (at the limit) or an
 * LMDB error.  Only while no txn of this process is live (the event
 * loop's reads: as in cr_scans_begin), else retried for up to 100 ms.
 */
static int
cr_scans_grow(cr_scans_t *sc)
{
    int          i, rc;
    uint64_t     size;
    MDB_envinfo  info;

    for (i = 0; i < CR_SCANS_WRITE_TRIES; i++) {
        (void) pthread_mutex_lock(&sc->lock);

        mdb_env_info(sc->env, &info);

        if (info.me_mapsize >= sc->max) {
            (void) pthread_mutex_unlock(&sc->lock);
            return CR_SCANS_FULL;
        }

        if (sc->live == 0) {
            if (sc->rtxn) {
                mdb_txn_abort(sc->rtxn);    /* reset: not active */
                sc->rtxn = NULL;
            }

            size = (info.me_mapsize > sc->max / 2) ? sc->max
                                                   : 2 * info.me_mapsize;
            rc = mdb_env_set_mapsize(sc->env, size);

            (void) pthread_mutex_unlock(&sc->lock);
            return rc;
        }

        (void) pthread_mutex_unlock(&sc->lock);
        (void) usleep(100);
    }

    return EBUSY;
}


/* The records into txn, merged with what it holds (with stored_only,
 * only those it holds): 0 or an LMDB error. */
static int
cr_scans_write(cr_scans_t *sc, MDB_txn *txn, const cr_scan_t *v, size_t n,
    int stored_only)
{
    int          rc;
    size_t       i;
    uint8_t      k[CR_SCANS_KEY], d[CR_SCANS_VAL];
    MDB_val      key, val;
    cr_scan_t    old, s;
    MDB_cursor  *cur;

    /* One cursor: each record is one B-tree descent, found and replaced
     * in place (callers sort by key, so descents share their pages). */
    rc = mdb_cursor_open(txn, sc->dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    for (i = 0; i < n; i++) {
        s = v[i];
        key.mv_data = k;
        key.mv_size = cr_scans_key(k, s.fp, s.kid, s.serial, s.kind);

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);

        if (rc == 0 && val.mv_size == CR_SCANS_VAL) {
            cr_scans_decode(&val, &old);

            if (old.count > s.count) {
                s.count = old.count;
            }

            if (old.first && (s.first == 0 || old.first < s.first)) {
                s.first = old.first;
            }

            if (s.count == old.count && s.first == old.first) {
                continue;
            }

        } else if (rc == MDB_NOTFOUND && stored_only) {
            continue;

        } else if (rc != 0 && rc != MDB_NOTFOUND) {
            break;
        }

        cr_scans_encode(d, &s);

        val.mv_data = d;
        val.mv_size = sizeof(d);

        rc = mdb_cursor_put(cur, &key, &val, rc == 0 ? MDB_CURRENT : 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return (i == n) ? 0 : rc;
}


/* The bytes of the counts' pages in txn (its own writes included). */
static uint64_t
cr_scans_used(cr_scans_t *sc, MDB_txn *txn)
{
    MDB_stat  ms;

    if (mdb_stat(txn, sc->dbi, &ms) != 0) {
        return 0;
    }

    return (uint64_t) (ms.ms_branch_pages + ms.ms_leaf_pages
                       + ms.ms_overflow_pages) * ms.ms_psize;
}


static void
cr_scans_decode(const MDB_val *v, cr_scan_t *s)
{
    int             i;
    uint64_t        f;
    const uint8_t  *p;

    p = v->mv_data;
    s->count = 0;
    f = 0;

    for (i = 3; i >= 0; i--) {
        s->count = (s->count << 8) | p[i];
    }

    for (i = 7; i >= 0; i--) {
        f = (f << 8) | p[4 + i];
    }

    s->first = (int64_t) f;
}


/* A write txn that failed with rc (txn NULL: its commit, which freed
 * it): aborted and ended; CR_SCANS_FULL for a full map, else -1. */
int
cr_scans_write_failed(cr_scans_t *sc, MDB_txn *txn, int rc,
    const char *what)
{
    if (txn) {
        mdb_txn_abort(txn);
    }

    cr_scans_end(sc);

    if (rc == MDB_MAP_FULL) {
        snprintf(sc->err, sizeof(sc->err), "scan store: the map is full");
        return CR_SCANS_FULL;
    }

    return cr_scans_fail(sc, rc, what);
}


/* After a try that found the map full: grown (1: try again), or not
 * (0, *rc the answer: CR_SCANS_FULL at the limit, else -1). */
int
cr_scans_grown(cr_scans_t *sc, int *rc)
{
    int  g;

    g = cr_scans_grow(sc);

    if (g == 0) {
        return 1;
    }

    if (g == CR_SCANS_FULL) {
        snprintf(sc->err, sizeof(sc->err), "scan store: the map is at "
                 "its limit of %llu bytes (store_max=)",
                 (unsigned long long) sc->max);
        *rc = CR_SCANS_FULL;

    } else {
        *rc = cr_scans_fail(sc, g, "growing the map");
    }

    return 0;
}


static void
cr_scans_encode(uint8_t *d, const cr_scan_t *s)
{
    int  j;

    for (j = 0; j < 4; j++) {
        d[j] = (uint8_t) (s->count >> (8 * j));
    }

    for (j = 0; j < 8; j++) {
        d[4 + j] = (uint8_t) ((uint64_t) s->first >> (8 * j));
    }
}
