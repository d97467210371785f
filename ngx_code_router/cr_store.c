/*
 * cr_store: see cr_store.h.
 */

#define _XOPEN_SOURCE 700        /* POSIX 2008 and XSI: realpath() */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>

#include "cr_filter.h"
#include "cr_link.h"
#include "cr_store.h"
#include "cr_valid.h"


#define CR_META_MAGIC   "CRSTORE\0"
#define CR_META_SIZE    64

#define CR_REC_CAMPAIGN 'C'
#define CR_REC_BATCH    'B'
#define CR_REC_OVERRIDE 'O'
#define CR_REC_LINK     'L'

/* Fixed parts of the records, after the kind byte. */
#define CR_CAMP_FIXED   21             /* type, starts, ends, 2 zones */
#define CR_BATCH_FIXED  18             /* scene, kid, first, last */
#define CR_OVR_FIXED    10             /* state, kid, serial */

/* Below this, a failed write is put down to a full file system. */
#define CR_STORE_LOW_SPACE  (1u << 20)

/* A reader copies the batches and campaigns of a store this small. */
#define CR_CACHE_MAX_RECORDS  65536
#define CR_CACHE_MAX_BYTES    (32u << 20)

/* The override filter's record, in the meta database (cr_filter.h). */
#define CR_FILTER_KEY         "ofilter"


typedef struct {
    uint64_t  generation;
    int64_t   last_commit;
    uint64_t  campaigns;
    uint64_t  batches;
    uint64_t  codes;
} cr_meta_t;


/*
 * A reader's copy of the batches and campaigns of one snapshot, decoded
 * once: the per-code overrides stay in LMDB (there may be billions), the
 * ranges and campaigns a scan needs are a binary search away.
 */
typedef struct {
    uint64_t     key;                  /* kid(8) | last serial(40) */
    int          bad;                  /* the record does not decode */
    cr_batch_t   b;
} cr_cbatch_t;

typedef struct {
    cr_str_t       id;                 /* the key */
    int            bad;
    int            target_ok;          /* passed st->check */
    cr_campaign_t  c;
} cr_ccamp_t;

typedef struct {
    size_t        txnid;               /* of the snapshot; 0: none */
    int           on;                  /* 0: read LMDB instead */
    uint8_t      *arena;               /* keys and records, copied */
    cr_cbatch_t  *batch;               /* in key order */
    size_t        nbatch;
    cr_ccamp_t   *camp;                /* in key order */
    size_t        ncamp;
    int           no_codes;            /* the snapshot has no override */
    int           filter_checked;      /* filter below looked for */
    const uint8_t *filter;             /* its override filter's words, in
                                        * the map: until the txn ends */
    unsigned      filter_lg;
} cr_cache_t;


struct cr_store_s {
    MDB_env    *env;
    MDB_dbi     meta_dbi;
    MDB_dbi     camp_dbi;
    MDB_dbi     batch_dbi;
    MDB_dbi     batch_id_dbi;
    MDB_dbi     code_dbi;
    MDB_dbi     link_dbi;              /* GS1 links (cr_link.h) */
    int         has_links;             /* 0: a store older than them */
    MDB_txn    *rtxn;                  /* reader: see cr_rtxn_begin() */
    MDB_cursor *rcur;
    int         held;                  /* rtxn is live */
    int         nocache;
    cr_cache_t  cache;
    const char *(*check)(const cr_campaign_t *c);
    uint64_t   *fadd;                  /* writer: override keys added */
    size_t      nfadd;
    size_t      capfadd;
    int         fdirty;                /* writer: overrides changed */
    int         fstale;                /* writer: fadd is incomplete */
    uint64_t    froom;                 /* writer: keys the filter takes
                                        * before it must be rebuilt */
    MDB_stat    fstat0;                /* writer: codes at begin */
    MDB_txn    *wtxn;
    cr_meta_t   meta;                  /* of the write transaction */
    size_t      gen_txnid;             /* reader: generation cached by */
    uint64_t    gen;                   /* the txn id it was read in */
    int         rdonly;
    uint64_t    dev;
    uint64_t    ino;
    uint8_t    *buf;                   /* record encoding */
    size_t      bufcap;
    char        path[4096];
    char        err[512];
};


static int cr_fail(cr_store_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cr_mdb_rc(cr_store_t *st, int rc, const char *what);
static int cr_commit_io_error(cr_store_t *st, int rc);
static int cr_txn_begin(cr_store_t *st, unsigned flags, MDB_txn **txn);
static int cr_lock_share(cr_store_t *st);
static int cr_lock_matches_file(cr_store_t *st);
static int cr_store_init(cr_store_t *st, int create);
static int cr_meta_read(cr_store_t *st, MDB_txn *txn, cr_meta_t *m);
static int cr_meta_write(cr_store_t *st);
static int cr_rtxn_begin(cr_store_t *st);
static void cr_rtxn_end(cr_store_t *st);
static int cr_find_batch(cr_store_t *st, const uint8_t *key, unsigned kid,
    uint64_t serial, cr_binding_t *b);
static int cr_find_campaign(cr_store_t *st, cr_str_t id, unsigned kid,
    uint64_t serial, cr_binding_t *b);
static void cr_cache_build(cr_store_t *st);
static int cr_cache_measure(cr_store_t *st, MDB_dbi dbi, size_t *n,
    size_t *bytes);
static int cr_cache_fill(cr_store_t *st, uint8_t *p);
static void cr_cache_free(cr_cache_t *c);
static int cr_keycmp(const void *a, size_t alen, const void *b, size_t blen);
static void cr_cache_filter(cr_store_t *st);
static void cr_filter_stamp(const MDB_stat *ms, uint64_t *stamp);
static void cr_filter_note(cr_store_t *st, const uint8_t *key);
static int cr_filter_write(cr_store_t *st);
static uint64_t cr_key_value(const uint8_t *k);
static int cr_lookup_txn(cr_store_t *st, unsigned kid, uint64_t serial,
    int64_t now, cr_binding_t *b);
static int cr_copy_out(cr_binding_t *b, cr_alloc_pt alloc, void *ctx);
static void cr_put_u16(uint8_t *p, unsigned v);
static void cr_put_u64(uint8_t *p, uint64_t v);
static unsigned cr_get_u16(const uint8_t *p);
static uint64_t cr_get_u64(const uint8_t *p);
static int cr_rec_encode(cr_store_t *st, uint8_t kind, const uint8_t *fixed,
    size_t nfixed, const cr_str_t *s, unsigned ns, MDB_val *out);
static int cr_campaign_time_ok(int64_t t, int tz);
static int cr_rec_decode(const uint8_t *p, size_t n, uint8_t kind,
    size_t nfixed, cr_str_t *s, unsigned ns);
static int cr_put_record(cr_store_t *st, MDB_dbi dbi, MDB_val *key,
    MDB_val *val, uint64_t *count);
static int cr_each(cr_store_t *st, MDB_dbi dbi,
    int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v), void *ctx);


static const char  *cr_target_names[] = {
    NULL, "miniprogram", "official_account", "h5"
};

static const char  *cr_scene_names[] = {
    NULL, "verify", "marketing", "trace", "channel"
};

static const char  *cr_override_names[] = {
    NULL, "revoked", "campaign"
};

static const char  *cr_status_names[] = {
    "ok", "unbound", "revoked", "not_started", "ended"
};


int
cr_store_open(cr_store_t **stp, const char *path, int flags, char *err,
    size_t errlen)
{
    int            rc, exists, statted;
    char          *real;
    unsigned       mflags;
    cr_store_t    *st;
    struct stat    sb;
    MDB_stat       ms;
    MDB_envinfo    info;

    *stp = NULL;

    st = calloc(1, sizeof(cr_store_t));
    if (st == NULL) {
        snprintf(err, errlen, "store \"%s\": out of memory", path);
        return -1;
    }

    st->rdonly = (flags & CR_STORE_RDONLY) != 0;
    st->nocache = (flags & CR_STORE_NOCACHE) != 0;

    /* The real file: a store published by flipping a symlink gets a lock
     * file of its own ("REAL-lock"), never the previous version's. */
    real = realpath(path, NULL);
    snprintf(st->path, sizeof(st->path), "%s", real ? real : path);
    free(real);
    path = st->path;

    exists = stat(path, &sb) == 0;

    if (!exists && (errno != ENOENT || !(flags & CR_STORE_CREATE)
                    || st->rdonly))
    {
        snprintf(err, errlen, "store \"%s\": %s%s", path, strerror(errno),
                 errno == ENOENT ? " (create it with: code-router load "
                                   "--db FILE CSV...)" : "");
        free(st);
        return -1;
    }

    if (exists && !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "store \"%s\" is not a regular file", path);
        free(st);
        return -1;
    }

    /* LMDB would take an empty file for a new store and fail to write it
     * ("Bad file descriptor"): say what is wrong instead. */
    if (exists && st->rdonly && sb.st_size == 0) {
        snprintf(err, errlen, "store \"%s\" is empty (0 bytes): not a "
                 "code-router store", path);
        free(st);
        return -1;
    }

    rc = mdb_env_create(&st->env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(st->env, 8);
    }
    if (rc == 0) {
        rc = mdb_env_set_maxreaders(st->env, CR_STORE_MAXREADERS);
    }

    mflags = MDB_NOSUBDIR;
    if (st->rdonly) {
        mflags |= MDB_RDONLY | MDB_NORDAHEAD;
    }
    if (st->rdonly && (flags & CR_STORE_CHECK)) {
        mflags |= MDB_NOLOCK;
    }

    if (rc == 0) {
        /* 0664 less the umask: cr_lock_share() sets the lock file's. */
        rc = mdb_env_open(st->env, path, mflags, 0664);
    }

    if (rc != 0) {
        snprintf(err, errlen, "store \"%s\": cannot open: %s%s%s%s", path,
                 mdb_strerror(rc),
                 rc == EACCES ? " (a reader must be able to write \"" : "",
                 rc == EACCES ? path : "",
                 rc == EACCES ? "-lock\"; see docs/loading.md)" : "");
        cr_store_close(st);
        return -1;
    }

    statted = stat(path, &sb) == 0;

    if (statted) {
        st->dev = (uint64_t) sb.st_dev;
        st->ino = (uint64_t) sb.st_ino;
    }

    /*
     * A truncated file (a copy cut short, a full disk) keeps valid meta
     * pages that point past its end: the first read of such a page is a
     * SIGBUS, in "nginx -t", a worker or the CLI.  Pages are written
     * before the meta page that uses them, so a sound file always holds
     * its last page.
     */
    mdb_env_info(st->env, &info);

    if (statted && mdb_env_stat(st->env, &ms) == 0
        && (uint64_t) sb.st_size
           < ((uint64_t) info.me_last_pgno + 1) * ms.ms_psize)
    {
        snprintf(err, errlen, "store \"%s\" is truncated: %llu bytes, but "
                 "its pages need %llu (restore a good copy)", path,
                 (unsigned long long) sb.st_size,
                 ((unsigned long long) info.me_last_pgno + 1)
                 * ms.ms_psize);
        cr_store_close(st);
        return -1;
    }

    if (!st->rdonly) {
        mdb_env_info(st->env, &info);
        if (info.me_mapsize < CR_STORE_MIN_MAP) {
            mdb_env_set_mapsize(st->env, CR_STORE_MIN_MAP);
        }
    }

    if ((!(mflags & MDB_NOLOCK) && cr_lock_share(st) != 0)
        || cr_store_init(st, !exists) != 0
        || (st->rdonly && !(flags & CR_STORE_CHECK)
            && cr_lock_matches_file(st) != 0))
    {
        snprintf(err, errlen, "%s", st->err);
        cr_store_close(st);
        return -1;
    }

    *stp = st;

    return 0;
}


void
cr_store_close(cr_store_t *st)
{
    if (st == NULL) {
        return;
    }

    if (st->rcur) {
        mdb_cursor_close(st->rcur);
    }

    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
    }

    cr_cache_free(&st->cache);
    free(st->fadd);

    if (st->wtxn) {
        mdb_txn_abort(st->wtxn);
    }

    if (st->env) {
        mdb_env_close(st->env);
    }

    free(st->buf);
    free(st);
}


const char *
cr_store_error(cr_store_t *st)
{
    return st->err;
}


void
cr_store_file_id(cr_store_t *st, uint64_t *dev, uint64_t *ino)
{
    *dev = st->dev;
    *ino = st->ino;
}


static int
cr_fail(cr_store_t *st, const char *fmt, ...)
{
    va_list  args;
    int      n;
    char    *p;

    n = snprintf(st->err, sizeof(st->err), "store \"%s\": ", st->path);
    if (n < 0 || (size_t) n >= sizeof(st->err)) {
        n = 0;
    }

    va_start(args, fmt);
    vsnprintf(st->err + n, sizeof(st->err) - (size_t) n, fmt, args);
    va_end(args);

    /* Ids in messages come from records, which may have been written
     * behind the loader's back: no CR or LF may forge a log line. */
    for (p = st->err; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }

    return CR_STORE_ERROR;
}


/* Maps an LMDB code to ours; a message for the unexpected ones. */
static int
cr_mdb_rc(cr_store_t *st, int rc, const char *what)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return CR_STORE_NOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        cr_fail(st, "%s: %s", what, mdb_strerror(rc));
        return CR_STORE_FULL;
    default:
        return cr_fail(st, "%s: %s", what, mdb_strerror(rc));
    }
}


/*
 * Every transaction starts here: a writer in another process may have
 * grown the map past ours (MDB_MAP_RESIZED), so adopt its size and retry.
 */
static int
cr_txn_begin(cr_store_t *st, unsigned flags, MDB_txn **txn)
{
    int  rc, tries;

    for (tries = 0; tries < 3; tries++) {
        rc = mdb_txn_begin(st->env, NULL, flags, txn);
        if (rc != MDB_MAP_RESIZED) {
            break;
        }

        rc = mdb_env_set_mapsize(st->env, 0);
        if (rc != 0) {
            break;
        }
    }

    if (rc != 0) {
        *txn = NULL;
    }

    return rc;
}


/*
 * Readers write the lock file "PATH-lock", and nginx's workers, in the
 * group of the store's directory, must not be able to create files there
 * (they could rename one over the store): so whoever creates the lock file
 * (the loader, publish) makes it 0664 whatever its umask, and the
 * directory can be 2755.  A writer that finds a lock file its group cannot
 * write and cannot fix fails, saying so; a reader that could open it is
 * not the one to judge.
 *
 * By path, not by a descriptor: closing any descriptor of the lock file
 * would drop the fcntl() lock by which LMDB tells other processes this
 * one is alive (they would then clear its reader slot).  Only the owner
 * of the directory can swap the file between stat and chmod.
 */
static int
cr_lock_share(cr_store_t *st)
{
    char         lock[sizeof(st->path) + sizeof("-lock")];
    struct stat  sb;

    snprintf(lock, sizeof(lock), "%s-lock", st->path);

    if (lstat(lock, &sb) != 0) {
        return cr_fail(st, "cannot stat its lock file \"%s\": %s", lock,
                       strerror(errno));
    }

    if (!S_ISREG(sb.st_mode)) {
        return cr_fail(st, "its lock file \"%s\" is not a regular file",
                       lock);
    }

    if ((sb.st_mode & 0060) == 0060) {
        return 0;
    }

    if ((sb.st_uid != geteuid() || chmod(lock, 0664) != 0) && !st->rdonly) {
        return cr_fail(st, "its lock file \"%s\" is mode %04o and this user "
                       "cannot make it 0664: nginx's workers could not read "
                       "the store (chmod 0664 it; see docs/loading.md)", lock,
                       (unsigned) (sb.st_mode & 07777));
    }

    return 0;
}


/*
 * LMDB readers take the current meta page from the lock file's last
 * txnid.  A file replaced in place (renamed over the path) while others
 * keep "PATH-lock" open inherits the old file's txnid: readers may then
 * see an older meta page of the new file.  Compare the generation seen
 * through the lock with the newest one in the file, read without it (twice,
 * in case a loader committed in between).  When they differ the open fails:
 * once every process has closed the store, the next open re-initialises
 * the lock from the file.
 */
static int
cr_lock_matches_file(cr_store_t *st)
{
    int              i;
    char             err[512];
    cr_store_t      *chk;
    cr_store_info_t  locked, file;

    for (i = 0; i < 2; i++) {
        if (cr_store_info(st, &locked) != 0) {
            return -1;
        }

        if (cr_store_open(&chk, st->path, CR_STORE_RDONLY | CR_STORE_CHECK,
                          err, sizeof(err))
            != 0)
        {
            return cr_fail(st, "cannot check the lock file: %s", err);
        }

        if (cr_store_info(chk, &file) != 0) {
            cr_store_close(chk);
            return cr_fail(st, "cannot check the lock file");
        }

        cr_store_close(chk);

        if (locked.generation == file.generation) {
            return 0;
        }
    }

    return cr_fail(st, "its lock file \"%s-lock\" belongs to a file that "
                   "was replaced (generation %llu through the lock, %llu in "
                   "the file): refusing to read until every process has "
                   "closed it; publish new stores by switching a symlink",
                   st->path, (unsigned long long) locked.generation,
                   (unsigned long long) file.generation);
}


/* Opens the sub-databases and checks the schema; creates them if new. */
static int
cr_store_init(cr_store_t *st, int create)
{
    int        rc;
    uint8_t    m[CR_META_SIZE];
    MDB_txn   *txn;
    MDB_val    k, v;
    cr_meta_t  meta;
    unsigned   dflags;

    rc = cr_txn_begin(st, st->rdonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0) {
        return cr_fail(st, "cannot begin a transaction: %s",
                       mdb_strerror(rc));
    }

    dflags = st->rdonly ? 0 : MDB_CREATE;

    rc = mdb_dbi_open(txn, "meta", dflags, &st->meta_dbi);

    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return cr_fail(st, "not a code-router store (no meta database)");
    }

    if (rc == 0 && create) {
        memset(m, 0, sizeof(m));
        memcpy(m, CR_META_MAGIC, 8);
        cr_put_u64(m + 8, CR_STORE_SCHEMA);

        k.mv_data = "meta";
        k.mv_size = 4;
        v.mv_data = m;
        v.mv_size = sizeof(m);

        rc = mdb_put(txn, st->meta_dbi, &k, &v, MDB_NOOVERWRITE);
    }

    if (rc == 0) {
        rc = cr_meta_read(st, txn, &meta);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return rc;
        }
    }

    if (rc == 0) {
        rc = mdb_dbi_open(txn, "campaigns", dflags, &st->camp_dbi);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "batches", dflags, &st->batch_dbi);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "batch_ids", dflags, &st->batch_id_dbi);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "codes", dflags, &st->code_dbi);
    }

    /* Added after the first schema: a reader of an older store has no
     * links until a loader adds the database and nginx reopens it. */
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "links", dflags, &st->link_dbi);
        st->has_links = (rc == 0);

        if (rc == MDB_NOTFOUND) {
            rc = 0;
        }
    }

    if (rc != 0) {
        mdb_txn_abort(txn);
        return cr_fail(st, "not a complete code-router store: %s",
                       mdb_strerror(rc));
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return cr_fail(st, "cannot commit: %s", mdb_strerror(rc));
    }

    return 0;
}


static int
cr_meta_read(cr_store_t *st, MDB_txn *txn, cr_meta_t *m)
{
    int       rc;
    MDB_val   k, v;
    uint64_t  schema;
    uint8_t  *p;

    k.mv_data = "meta";
    k.mv_size = 4;

    rc = mdb_get(txn, st->meta_dbi, &k, &v);
    if (rc != 0 || v.mv_size < CR_META_SIZE
        || memcmp(v.mv_data, CR_META_MAGIC, 8) != 0)
    {
        return cr_fail(st, "not a code-router store (no valid meta record)");
    }

    p = v.mv_data;
    schema = cr_get_u64(p + 8);

    if (schema != CR_STORE_SCHEMA) {
        return cr_fail(st, "schema version %llu, but this code-router "
                       "reads version %d: reload it with this version's "
                       "code-router-load into a new store",
                       (unsigned long long) schema, CR_STORE_SCHEMA);
    }

    m->generation = cr_get_u64(p + 16);
    m->last_commit = (int64_t) cr_get_u64(p + 24);
    m->campaigns = cr_get_u64(p + 32);
    m->batches = cr_get_u64(p + 40);
    m->codes = cr_get_u64(p + 48);

    return 0;
}


static int
cr_meta_write(cr_store_t *st)
{
    uint8_t  m[CR_META_SIZE];
    MDB_val  k, v;

    memset(m, 0, sizeof(m));
    memcpy(m, CR_META_MAGIC, 8);
    cr_put_u64(m + 8, CR_STORE_SCHEMA);
    cr_put_u64(m + 16, st->meta.generation);
    cr_put_u64(m + 24, (uint64_t) st->meta.last_commit);
    cr_put_u64(m + 32, st->meta.campaigns);
    cr_put_u64(m + 40, st->meta.batches);
    cr_put_u64(m + 48, st->meta.codes);

    k.mv_data = "meta";
    k.mv_size = 4;
    v.mv_data = m;
    v.mv_size = sizeof(m);

    return cr_mdb_rc(st, mdb_put(st->wtxn, st->meta_dbi, &k, &v, 0),
                     "cannot write meta");
}


/*
 * Starts (or renews) the reader's transaction, adopting a grown map.  A
 * read-only store keeps it between calls until a commit makes it stale:
 * renewing costs a reader slot update and, per named database, a search
 * of the main database (about 2,000 instructions in all), more than a
 * lookup in the cache.  The check reads the newest meta page: no lock.
 */
static int
cr_rtxn_begin(cr_store_t *st)
{
    int          rc;
    MDB_envinfo  ei;

    if (st->held) {
        mdb_env_info(st->env, &ei);

        if (ei.me_last_txnid == mdb_txn_id(st->rtxn)) {
            return 0;
        }

        cr_rtxn_end(st);
    }

    if (st->rtxn) {
        rc = mdb_txn_renew(st->rtxn);

        if (rc == MDB_MAP_RESIZED) {
            /* The renewal ended the transaction; start a fresh one. */
            mdb_txn_abort(st->rtxn);
            st->rtxn = NULL;

            if (st->rcur) {
                mdb_cursor_close(st->rcur);
                st->rcur = NULL;
            }

            rc = mdb_env_set_mapsize(st->env, 0);
        }
    } else {
        rc = 0;
    }

    if (rc == 0 && st->rtxn == NULL) {
        rc = cr_txn_begin(st, MDB_RDONLY, &st->rtxn);
    }

    if (rc != 0) {
        return cr_fail(st, "cannot begin a read transaction: %s",
                       mdb_strerror(rc));
    }

    if (st->rcur) {
        rc = mdb_cursor_renew(st->rtxn, st->rcur);
    } else {
        rc = mdb_cursor_open(st->rtxn, st->batch_dbi, &st->rcur);
    }

    if (rc != 0) {
        mdb_txn_reset(st->rtxn);
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    st->held = 1;

    return 0;
}


/* Ends the snapshot held between lookups, if any. */
static void
cr_rtxn_end(cr_store_t *st)
{
    if (st->held) {
        mdb_txn_reset(st->rtxn);
        st->held = 0;

        /* It points into the snapshot: found again in the next one. */
        st->cache.filter = NULL;
        st->cache.filter_checked = 0;
    }
}


void
cr_store_release(cr_store_t *st)
{
    cr_rtxn_end(st);
}


void
cr_store_set_check(cr_store_t *st,
    const char *(*check)(const cr_campaign_t *c))
{
    st->check = check;
    st->cache.txnid = 0;
}


int
cr_store_cached(cr_store_t *st)
{
    return (st->cache.on ? CR_CACHED_COPY : 0)
           | (st->cache.filter ? CR_CACHED_FILTER : 0);
}


int
cr_store_lookup(cr_store_t *st, unsigned kid, uint64_t serial, int64_t now,
    cr_binding_t *b, cr_alloc_pt alloc, void *ctx)
{
    int  rc;

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    rc = cr_lookup_txn(st, kid, serial, now, b);

    if (rc == 0 && cr_copy_out(b, alloc, ctx) != 0) {
        rc = cr_fail(st, "out of memory");
    }

    /* A writer never keeps its snapshot: it would pin the pages its own
     * commits free, and forbid growing the map. */
    if (!st->rdonly) {
        cr_rtxn_end(st);
    }

    return rc;
}


static int
cr_lookup_txn(cr_store_t *st, unsigned kid, uint64_t serial, int64_t now,
    cr_binding_t *b)
{
    int            rc;
    size_t         txnid;
    uint8_t        key[CR_KEY_LEN];
    MDB_val        k, v;
    cr_str_t       camp;
    cr_meta_t      meta;
    cr_override_t  o;

    memset(b, 0, sizeof(cr_binding_t));
    memset(&o, 0, sizeof(cr_override_t));

    /* The generation changes only with a commit, and so does the txn id:
     * read the meta record once per commit, not once per scan. */
    txnid = mdb_txn_id(st->rtxn);

    if (txnid != st->gen_txnid || st->gen_txnid == 0) {
        rc = cr_meta_read(st, st->rtxn, &meta);
        if (rc != 0) {
            return rc;
        }

        st->gen = meta.generation;
        st->gen_txnid = txnid;
    }

    if (st->rdonly && !st->nocache) {
        if (txnid != st->cache.txnid) {
            cr_cache_build(st);
        }

        if (!st->cache.filter_checked) {
            cr_cache_filter(st);
        }
    }

    b->generation = st->gen;

    cr_key_make(key, kid, serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    /* Most codes have no override: the filter says so without a search
     * of the overrides' B-tree (about 1,900 instructions for 1M). */
    if (st->cache.no_codes
        || (st->cache.filter
            && !cr_filter_maybe(st->cache.filter, st->cache.filter_lg,
                                cr_key_value(key))))
    {
        rc = MDB_NOTFOUND;

    } else {
        rc = mdb_get(st->rtxn, st->code_dbi, &k, &v);
    }

    if (rc == 0) {
        if (cr_override_decode(v.mv_data, v.mv_size, &o) != 0) {
            return cr_fail(st, "bad override record for key id %u serial "
                           "%llu", kid, (unsigned long long) serial);
        }
        b->overridden = 1;

    } else if (rc != MDB_NOTFOUND) {
        return cr_fail(st, "cannot read overrides: %s", mdb_strerror(rc));
    }

    rc = cr_find_batch(st, key, kid, serial, b);
    if (rc != 0) {
        return rc;
    }

    if (b->overridden && o.state == CR_OVERRIDE_REVOKED) {
        b->status = CR_ST_REVOKED;
        return 0;
    }

    if (b->overridden) {
        camp = o.campaign;
    } else if (b->has_batch) {
        camp = b->batch.s[CR_BATCH_CAMPAIGN];
    } else {
        b->status = CR_ST_UNBOUND;
        return 0;
    }

    rc = cr_find_campaign(st, camp, kid, serial, b);
    if (rc != 0) {
        return rc;
    }

    b->has_campaign = 1;

    if (b->campaign.starts_at != CR_TIME_NONE && now < b->campaign.starts_at)
    {
        b->status = CR_ST_NOT_STARTED;

    } else if (b->campaign.ends_at != CR_TIME_NONE
               && now >= b->campaign.ends_at)
    {
        b->status = CR_ST_ENDED;

    } else {
        b->status = CR_ST_OK;
    }

    return 0;
}


/*
 * The batch that may hold (kid, serial): the first range ending at or
 * after the serial, the only one that can hold it.  Sets has_batch if it
 * does; a bad record in the way is an error, as it is to LMDB's seek.
 */
static int
cr_find_batch(cr_store_t *st, const uint8_t *key, unsigned kid,
    uint64_t serial, cr_binding_t *b)
{
    int                 rc, bad;
    size_t              lo, hi, mid;
    uint64_t            want;
    MDB_val             k, v;
    const cr_cbatch_t  *e;

    if (st->cache.on) {
        want = cr_key_value(key);
        lo = 0;
        hi = st->cache.nbatch;

        while (lo < hi) {
            mid = lo + (hi - lo) / 2;

            if (st->cache.batch[mid].key < want) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }

        if (lo == st->cache.nbatch) {
            return 0;
        }

        e = &st->cache.batch[lo];

        if ((e->key >> 40) != kid) {
            return 0;
        }

        bad = e->bad;
        b->batch = e->b;

    } else {
        k.mv_data = (void *) key;
        k.mv_size = CR_KEY_LEN;

        rc = mdb_cursor_get(st->rcur, &k, &v, MDB_SET_RANGE);

        if (rc == MDB_NOTFOUND) {
            return 0;
        }

        if (rc != 0) {
            return cr_fail(st, "cannot read batches: %s", mdb_strerror(rc));
        }

        if (k.mv_size != CR_KEY_LEN || ((uint8_t *) k.mv_data)[0] != kid) {
            return 0;
        }

        bad = cr_batch_decode(v.mv_data, v.mv_size, &b->batch) != 0;
    }

    if (bad) {
        memset(&b->batch, 0, sizeof(cr_batch_t));
        return cr_fail(st, "bad batch record for key id %u serial %llu",
                       kid, (unsigned long long) serial);
    }

    b->has_batch = b->batch.first <= serial && serial <= b->batch.last;

    if (!b->has_batch) {
        memset(&b->batch, 0, sizeof(cr_batch_t));
    }

    return 0;
}


/* The campaign "id" into b->campaign: missing or bad is an error. */
static int
cr_find_campaign(cr_store_t *st, cr_str_t id, unsigned kid, uint64_t serial,
    cr_binding_t *b)
{
    int                rc, c;
    size_t             lo, hi, mid;
    MDB_val            k, v;
    const cr_ccamp_t  *e;

    if (st->cache.on) {
        rc = MDB_NOTFOUND;
        lo = 0;
        hi = st->cache.ncamp;

        while (lo < hi) {
            mid = lo + (hi - lo) / 2;
            e = &st->cache.camp[mid];
            c = cr_keycmp(e->id.data, e->id.len, id.data, id.len);

            if (c == 0) {
                rc = e->bad;
                b->campaign = e->c;
                b->target_ok = e->target_ok;
                break;
            }

            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }

    } else {
        k.mv_data = (void *) id.data;
        k.mv_size = id.len;

        rc = mdb_get(st->rtxn, st->camp_dbi, &k, &v);

        if (rc == 0) {
            rc = cr_campaign_decode(v.mv_data, v.mv_size, &b->campaign);
        }
    }

    if (rc != 0) {
        return cr_fail(st, "campaign \"%.*s\" of key id %u serial %llu is "
                       "%s", (int) id.len, id.data, kid,
                       (unsigned long long) serial,
                       rc == MDB_NOTFOUND ? "missing" : "unreadable");
    }

    return 0;
}


/* LMDB's default order: bytes, then the shorter first. */
static int
cr_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int  c;

    c = memcmp(a, b, alen < blen ? alen : blen);

    if (c == 0) {
        c = alen < blen ? -1 : alen > blen;
    }

    return c;
}


/* A key of cr_key_make() as the number kid(8) | serial(40): two loads. */
static uint64_t
cr_key_value(const uint8_t *k)
{
    uint16_t  lo;
    uint32_t  hi;

    memcpy(&hi, k, 4);
    memcpy(&lo, k + 4, 2);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    hi = __builtin_bswap32(hi);
    lo = __builtin_bswap16(lo);
#endif

    return ((uint64_t) hi << 16) | lo;
}


/*
 * Replaces the cache with the reader's snapshot.  A store over the limits,
 * a key not in the layout of cr_key_make() (written behind the loader's
 * back) or no memory leaves it off: lookups then read LMDB, with the same
 * answers.  1,000 batches take about 0.2 ms, once per commit.
 */
static void
cr_cache_build(cr_store_t *st)
{
    size_t       nb, nc, bytes;
    cr_cache_t  *c;

    c = &st->cache;
    cr_cache_free(c);
    c->txnid = mdb_txn_id(st->rtxn);

    bytes = 0;

    if (cr_cache_measure(st, st->batch_dbi, &nb, &bytes) != 0
        || cr_cache_measure(st, st->camp_dbi, &nc, &bytes) != 0
        || nb + nc > CR_CACHE_MAX_RECORDS || bytes > CR_CACHE_MAX_BYTES)
    {
        return;
    }

    c->arena = malloc(bytes + 1);
    c->batch = malloc((nb + 1) * sizeof(cr_cbatch_t));
    c->camp = malloc((nc + 1) * sizeof(cr_ccamp_t));
    c->nbatch = nb;
    c->ncamp = nc;

    if (c->arena == NULL || c->batch == NULL || c->camp == NULL
        || cr_cache_fill(st, c->arena) != 0)
    {
        cr_cache_free(c);
        c->txnid = mdb_txn_id(st->rtxn);
        return;
    }

    c->on = 1;
}


/*
 * The snapshot's override filter, if it was built for the codes table as
 * the snapshot has it (cr_filter_stamp); or that there are no overrides.
 */
static void
cr_cache_filter(cr_store_t *st)
{
    MDB_val      k, v;
    MDB_stat     ms;
    uint64_t     stamp[CR_FILTER_NSTAMP];
    cr_filter_t  f;
    cr_cache_t  *c;

    c = &st->cache;
    c->filter_checked = 1;
    c->filter = NULL;
    c->no_codes = 0;

    if (mdb_stat(st->rtxn, st->code_dbi, &ms) != 0) {
        return;
    }

    if (ms.ms_entries == 0) {
        c->no_codes = 1;
        return;
    }

    k.mv_data = CR_FILTER_KEY;
    k.mv_size = sizeof(CR_FILTER_KEY) - 1;

    if (mdb_get(st->rtxn, st->meta_dbi, &k, &v) != 0
        || cr_filter_decode(v.mv_data, v.mv_size, &f) != 0)
    {
        return;
    }

    cr_filter_stamp(&ms, stamp);

    if (memcmp(stamp, f.stamp, sizeof(stamp)) == 0) {
        c->filter = f.words;
        c->filter_lg = f.lg;
    }
}


/*
 * What an override filter is built for: the shape of the codes table.  A
 * write to it by anything but cr_store changes the shape (and readers then
 * search the B-tree for every code), unless it adds and deletes keys to the
 * same counts: docs/loading.md says to write with the loader only.
 */
static void
cr_filter_stamp(const MDB_stat *ms, uint64_t *stamp)
{
    stamp[0] = ms->ms_entries;
    stamp[1] = ms->ms_depth;
    stamp[2] = ms->ms_branch_pages;
    stamp[3] = ms->ms_leaf_pages;
    stamp[4] = ms->ms_overflow_pages;
}


/* Counts the records of dbi and adds their bytes; -1 if a batches key is
 * not a code key. */
static int
cr_cache_measure(cr_store_t *st, MDB_dbi dbi, size_t *n, size_t *bytes)
{
    int          rc;
    MDB_val      k, v;
    MDB_cursor  *cur;

    *n = 0;

    if (mdb_cursor_open(st->rtxn, dbi, &cur) != 0) {
        return -1;
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (dbi == st->batch_dbi && k.mv_size != CR_KEY_LEN) {
            break;
        }

        (*n)++;
        *bytes += k.mv_size + v.mv_size;

        if (*n > CR_CACHE_MAX_RECORDS || *bytes > CR_CACHE_MAX_BYTES) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : -1;
}


/* Copies and decodes every batch and campaign (same snapshot, so the
 * counts of cr_cache_measure() hold). */
static int
cr_cache_fill(cr_store_t *st, uint8_t *p)
{
    int          rc;
    size_t       i;
    MDB_val      k, v;
    MDB_cursor  *cur;
    cr_cache_t  *c;

    c = &st->cache;

    if (mdb_cursor_open(st->rtxn, st->batch_dbi, &cur) != 0) {
        return -1;
    }

    i = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && i < c->nbatch;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++)
    {
        memcpy(p, v.mv_data, v.mv_size);
        c->batch[i].key = cr_key_value(k.mv_data);

        c->batch[i].bad = cr_batch_decode(p, v.mv_size, &c->batch[i].b)
                          != 0;
        p += v.mv_size;
    }

    mdb_cursor_close(cur);

    if (i != c->nbatch
        || mdb_cursor_open(st->rtxn, st->camp_dbi, &cur) != 0)
    {
        return -1;
    }

    i = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && i < c->ncamp;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++)
    {
        memcpy(p, k.mv_data, k.mv_size);
        c->camp[i].id.data = (char *) p;
        c->camp[i].id.len = k.mv_size;
        p += k.mv_size;

        memcpy(p, v.mv_data, v.mv_size);
        c->camp[i].bad = cr_campaign_decode(p, v.mv_size, &c->camp[i].c)
                         != 0;
        c->camp[i].target_ok = !c->camp[i].bad && st->check
                               && st->check(&c->camp[i].c) == NULL;
        p += v.mv_size;
    }

    mdb_cursor_close(cur);

    return i == c->ncamp ? 0 : -1;
}


static void
cr_cache_free(cr_cache_t *c)
{
    free(c->arena);
    free(c->batch);
    free(c->camp);
    memset(c, 0, sizeof(cr_cache_t));
}


/* Copies every string of the binding out of the map, in one allocation. */
static int
cr_copy_out(cr_binding_t *b, cr_alloc_pt alloc, void *ctx)
{
    int        i;
    char      *p;
    size_t     total;
    cr_str_t  *s[CR_BATCH_NSTR + CR_CAMP_NSTR];
    int        n;

    n = 0;

    for (i = 0; i < CR_BATCH_NSTR; i++) {
        s[n++] = &b->batch.s[i];
    }

    for (i = 0; i < CR_CAMP_NSTR; i++) {
        s[n++] = &b->campaign.s[i];
    }

    total = 0;
    for (i = 0; i < n; i++) {
        total += s[i]->len;
    }

    if (total == 0) {
        return 0;
    }

    p = alloc(ctx, total);
    if (p == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (s[i]->len) {
            memcpy(p, s[i]->data, s[i]->len);
            s[i]->data = p;
            p += s[i]->len;
        }
    }

    return 0;
}


int
cr_store_info(cr_store_t *st, cr_store_info_t *info)
{
    int          rc;
    MDB_txn     *txn;
    MDB_envinfo  ei;
    MDB_stat     es;
    cr_meta_t    meta;
    struct stat  sb;

    memset(info, 0, sizeof(cr_store_info_t));

    if (st->wtxn) {
        txn = st->wtxn;
        rc = 0;
    } else {
        rc = cr_rtxn_begin(st);
        txn = st->rtxn;
    }

    if (rc != 0) {
        return rc;
    }

    rc = cr_meta_read(st, txn, &meta);

    if (!st->wtxn) {
        cr_rtxn_end(st);
    }

    if (rc != 0) {
        return rc;
    }

    mdb_env_info(st->env, &ei);
    mdb_env_stat(st->env, &es);

    info->generation = meta.generation;
    info->last_commit = meta.last_commit;
    info->campaigns = meta.campaigns;
    info->batches = meta.batches;
    info->codes = meta.codes;
    info->map_size = ei.me_mapsize;
    info->map_used = ((uint64_t) ei.me_last_pgno + 1) * es.ms_psize;
    info->max_readers = ei.me_maxreaders;
    info->readers = ei.me_numreaders;

    if (stat(st->path, &sb) == 0) {
        info->file_size = (uint64_t) sb.st_size;
    }

    return 0;
}


int
cr_store_copy(cr_store_t *st, int fd)
{
    int  rc;

    /* The copy takes a read transaction of its own: this thread's reader
     * slot must not hold a snapshot meanwhile. */
    cr_rtxn_end(st);

    rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    if (rc != 0) {
        return cr_fail(st, "cannot copy: %s", mdb_strerror(rc));
    }

    return 0;
}


int
cr_store_reader_check(cr_store_t *st)
{
    int  dead;

    if (mdb_reader_check(st->env, &dead) != 0) {
        return -1;
    }

    return dead;
}


int
cr_store_begin(cr_store_t *st)
{
    int          rc;
    MDB_val      k, v;
    cr_filter_t  f;

    if (st->rdonly) {
        return cr_fail(st, "opened read-only");
    }

    rc = cr_txn_begin(st, 0, &st->wtxn);
    if (rc != 0) {
        return cr_fail(st, "cannot begin a write transaction: %s",
                       mdb_strerror(rc));
    }

    rc = cr_meta_read(st, st->wtxn, &st->meta);
    if (rc != 0) {
        cr_store_abort(st);
        return rc;
    }

    st->nfadd = 0;
    st->fdirty = 0;
    st->fstale = 0;
    st->froom = 0;

    if (mdb_stat(st->wtxn, st->code_dbi, &st->fstat0) != 0) {
        st->fstale = 1;
    }

    k.mv_data = CR_FILTER_KEY;
    k.mv_size = sizeof(CR_FILTER_KEY) - 1;

    if (mdb_get(st->wtxn, st->meta_dbi, &k, &v) == 0
        && cr_filter_decode(v.mv_data, v.mv_size, &f) == 0
        && f.nkeys <= cr_filter_capacity(f.lg))
    {
        st->froom = cr_filter_capacity(f.lg) - f.nkeys;
    }

    return 0;
}


int
cr_store_commit(cr_store_t *st, int64_t now)
{
    int  rc;

    st->meta.generation++;
    st->meta.last_commit = now;

    rc = cr_filter_write(st);

    if (rc == 0) {
        rc = cr_meta_write(st);
    }

    if (rc != 0) {
        cr_store_abort(st);
        return rc;
    }

    rc = mdb_txn_commit(st->wtxn);
    st->wtxn = NULL;

    if (rc == EIO || rc == ENOSPC || rc == EDQUOT) {
        return cr_commit_io_error(st, rc);
    }

    return cr_mdb_rc(st, rc, "cannot commit");
}


/*
 * LMDB reports a short write -- what a full file system gives -- as EIO
 * ("Input/output error"), which sends an operator looking for a broken
 * disk.  Say when the store's file system is (nearly) out of space.  The
 * transaction was not committed: the store is at its previous generation.
 */
static int
cr_commit_io_error(cr_store_t *st, int rc)
{
    int             fd;
    uint64_t        avail;
    struct statvfs  vfs;

    if (mdb_env_get_fd(st->env, &fd) != 0 || fstatvfs(fd, &vfs) != 0) {
        return cr_fail(st, "cannot commit: %s", mdb_strerror(rc));
    }

    avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;

    if (rc != EIO || avail < CR_STORE_LOW_SPACE) {
        return cr_fail(st, "cannot commit: %s: the file system holding it "
                       "is full (%llu bytes free)",
                       mdb_strerror(rc), (unsigned long long) avail);
    }

    return cr_fail(st, "cannot commit: %s", mdb_strerror(rc));
}


void
cr_store_abort(cr_store_t *st)
{
    if (st->wtxn) {
        mdb_txn_abort(st->wtxn);
        st->wtxn = NULL;
    }
}


uint64_t
cr_store_map_size(cr_store_t *st)
{
    MDB_envinfo  ei;

    mdb_env_info(st->env, &ei);

    return ei.me_mapsize;
}


int
cr_store_grow(cr_store_t *st, uint64_t min_size)
{
    int       rc;
    uint64_t  size;

    size = cr_store_map_size(st) * 2;
    if (size < min_size) {
        size = min_size;
    }

    rc = mdb_env_set_mapsize(st->env, (size_t) size);
    if (rc != 0) {
        return cr_fail(st, "cannot grow the map to %llu bytes: %s",
                       (unsigned long long) size, mdb_strerror(rc));
    }

    return 0;
}


/*
 * Puts key -> val; returns CR_PUT_ADDED, CR_PUT_CHANGED or CR_PUT_SAME
 * (no write at all when the record is unchanged), or an error.
 */
static int
cr_put_record(cr_store_t *st, MDB_dbi dbi, MDB_val *key, MDB_val *val,
    uint64_t *count)
{
    int      rc;
    MDB_val  old;

    old = *val;

    rc = mdb_put(st->wtxn, dbi, key, &old, MDB_NOOVERWRITE);

    if (rc == 0) {
        (*count)++;
        return CR_PUT_ADDED;
    }

    if (rc != MDB_KEYEXIST) {
        return cr_mdb_rc(st, rc, "cannot write");
    }

    /* old now holds the existing value. */
    if (old.mv_size == val->mv_size
        && memcmp(old.mv_data, val->mv_data, val->mv_size) == 0)
    {
        return CR_PUT_SAME;
    }

    rc = mdb_put(st->wtxn, dbi, key, val, 0);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot write");
    }

    return CR_PUT_CHANGED;
}


int
cr_store_get_campaign(cr_store_t *st, const char *id, size_t len,
    cr_campaign_t *c)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) id;
    k.mv_size = len;

    rc = mdb_get(st->wtxn, st->camp_dbi, &k, &v);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read campaigns");
    }

    if (cr_campaign_decode(v.mv_data, v.mv_size, c) != 0) {
        return cr_fail(st, "bad campaign record \"%.*s\"", (int) len, id);
    }

    return 0;
}


int
cr_store_put_campaign(cr_store_t *st, const cr_campaign_t *c)
{
    int      rc;
    uint8_t  f[CR_CAMP_FIXED];
    MDB_val  k, v;

    f[0] = c->type;
    cr_put_u64(f + 1, (uint64_t) c->starts_at);
    cr_put_u64(f + 9, (uint64_t) c->ends_at);
    cr_put_u16(f + 17, (uint16_t) c->starts_tz);
    cr_put_u16(f + 19, (uint16_t) c->ends_tz);

    rc = cr_rec_encode(st, CR_REC_CAMPAIGN, f, sizeof(f), c->s, CR_CAMP_NSTR,
                       &v);
    if (rc != 0) {
        return rc;
    }

    k.mv_data = (void *) c->s[CR_CAMP_ID].data;
    k.mv_size = c->s[CR_CAMP_ID].len;

    return cr_put_record(st, st->camp_dbi, &k, &v, &st->meta.campaigns);
}


int
cr_store_del_campaign(cr_store_t *st, const char *id, size_t len)
{
    int      rc;
    MDB_val  k;

    k.mv_data = (void *) id;
    k.mv_size = len;

    rc = cr_mdb_rc(st, mdb_del(st->wtxn, st->camp_dbi, &k, NULL),
                   "cannot delete a campaign");
    if (rc == 0) {
        st->meta.campaigns--;
    }

    return rc;
}


int
cr_store_put_batch(cr_store_t *st, const cr_batch_t *b, cr_batch_t *other)
{
    int         rc, rc2, moved;
    uint8_t     key[CR_KEY_LEN], f[CR_BATCH_FIXED];
    MDB_val     k, v, idk, old;
    cr_batch_t  cur;
    MDB_cursor *c;
    const cr_str_t  *id;

    id = &b->s[CR_BATCH_ID];

    /* Any range ending at or after our first serial and starting at or
     * before our last overlaps, unless it is this batch's own old range. */
    rc = mdb_cursor_open(st->wtxn, st->batch_dbi, &c);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot open a cursor");
    }

    cr_key_make(key, b->kid, b->first);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    {
        if (((uint8_t *) k.mv_data)[0] != b->kid) {
            break;
        }

        if (cr_batch_decode(v.mv_data, v.mv_size, &cur) != 0) {
            mdb_cursor_close(c);
            return cr_fail(st, "bad batch record");
        }

        if (cur.first > b->last) {
            break;
        }

        if (cur.s[CR_BATCH_ID].len != id->len
            || memcmp(cur.s[CR_BATCH_ID].data, id->data, id->len) != 0)
        {
            *other = cur;
            mdb_cursor_close(c);
            return CR_STORE_OVERLAP;
        }
    }

    mdb_cursor_close(c);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_mdb_rc(st, rc, "cannot read batches");
    }

    f[0] = b->scene;
    f[1] = b->kid;
    cr_put_u64(f + 2, b->first);
    cr_put_u64(f + 10, b->last);

    rc = cr_rec_encode(st, CR_REC_BATCH, f, sizeof(f), b->s, CR_BATCH_NSTR,
                       &v);
    if (rc != 0) {
        return rc;
    }

    /* Where is this batch now?  A batch whose range moved loses the old
     * range key; one whose range stayed is a plain put. */
    idk.mv_data = (void *) id->data;
    idk.mv_size = id->len;
    cr_key_make(key, b->kid, b->last);

    rc = mdb_get(st->wtxn, st->batch_id_dbi, &idk, &old);
    moved = 0;

    if (rc == 0) {
        if (old.mv_size != CR_KEY_LEN || memcmp(old.mv_data, key, CR_KEY_LEN))
        {
            rc = mdb_del(st->wtxn, st->batch_dbi, &old, NULL);
            if (rc != 0 && rc != MDB_NOTFOUND) {
                return cr_mdb_rc(st, rc, "cannot move a batch");
            }
            moved = 1;
        }

    } else if (rc != MDB_NOTFOUND) {
        return cr_mdb_rc(st, rc, "cannot read batch ids");
    }

    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = cr_put_record(st, st->batch_dbi, &k, &v, &st->meta.batches);
    if (rc < 0) {
        return rc;
    }

    if (moved) {
        st->meta.batches--;     /* counted again by the put */
        rc = CR_PUT_CHANGED;
    }

    if (rc == CR_PUT_ADDED || moved) {
        v.mv_data = key;
        v.mv_size = CR_KEY_LEN;

        rc2 = mdb_put(st->wtxn, st->batch_id_dbi, &idk, &v, 0);
        if (rc2 != 0) {
            return cr_mdb_rc(st, rc2, "cannot index a batch");
        }
    }

    return rc;
}


int
cr_store_del_batch(cr_store_t *st, const char *id, size_t len)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) id;
    k.mv_size = len;

    rc = mdb_get(st->wtxn, st->batch_id_dbi, &k, &v);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read batch ids");
    }

    rc = mdb_del(st->wtxn, st->batch_dbi, &v, NULL);
    if (rc == 0) {
        rc = mdb_del(st->wtxn, st->batch_id_dbi, &k, NULL);
    }

    if (rc != 0) {
        return cr_mdb_rc(st, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc,
                         "cannot delete a batch");
    }

    st->meta.batches--;

    return 0;
}


int
cr_store_put_override(cr_store_t *st, const cr_override_t *o)
{
    int      rc;
    uint8_t  key[CR_KEY_LEN], f[CR_OVR_FIXED];
    MDB_val  k, v;

    f[0] = o->state;
    f[1] = o->kid;
    cr_put_u64(f + 2, o->serial);

    rc = cr_rec_encode(st, CR_REC_OVERRIDE, f, sizeof(f), &o->campaign, 1,
                       &v);
    if (rc != 0) {
        return rc;
    }

    cr_key_make(key, o->kid, o->serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = cr_put_record(st, st->code_dbi, &k, &v, &st->meta.codes);

    if (rc == CR_PUT_ADDED) {
        cr_filter_note(st, key);
    } else if (rc == CR_PUT_CHANGED) {
        st->fdirty = 1;
    }

    return rc;
}


int
cr_store_del_override(cr_store_t *st, unsigned kid, uint64_t serial)
{
    int      rc;
    uint8_t  key[CR_KEY_LEN];
    MDB_val  k;

    cr_key_make(key, kid, serial);
    k.mv_data = key;
    k.mv_size = CR_KEY_LEN;

    rc = cr_mdb_rc(st, mdb_del(st->wtxn, st->code_dbi, &k, NULL),
                   "cannot delete an override");
    if (rc == 0) {
        st->meta.codes--;
        st->fdirty = 1;
    }

    return rc;
}


/* One of the three callbacks is set: the kind of record iterated. */
typedef struct {
    int   (*camp)(void *ctx, const cr_campaign_t *c);
    int   (*batch)(void *ctx, const cr_batch_t *b);
    int   (*ovr)(void *ctx, const cr_override_t *o);
    void   *ctx;
} cr_each_ctx_t;


static int
cr_each_decode(void *ctx, const MDB_val *k, const MDB_val *v)
{
    cr_each_ctx_t  *e = ctx;
    cr_campaign_t   c;
    cr_batch_t      b;
    cr_override_t   o;

    (void) k;

    if (e->camp) {
        if (cr_campaign_decode(v->mv_data, v->mv_size, &c) != 0) {
            return CR_STORE_ERROR;
        }
        return e->camp(e->ctx, &c);
    }

    if (e->batch) {
        if (cr_batch_decode(v->mv_data, v->mv_size, &b) != 0) {
            return CR_STORE_ERROR;
        }
        return e->batch(e->ctx, &b);
    }

    if (cr_override_decode(v->mv_data, v->mv_size, &o) != 0) {
        return CR_STORE_ERROR;
    }

    return e->ovr(e->ctx, &o);
}


int
cr_store_each_campaign(cr_store_t *st,
    int (*fn)(void *ctx, const cr_campaign_t *c), void *ctx)
{
    cr_each_ctx_t  e = { fn, NULL, NULL, ctx };

    return cr_each(st, st->camp_dbi, cr_each_decode, &e);
}


int
cr_store_each_batch(cr_store_t *st,
    int (*fn)(void *ctx, const cr_batch_t *b), void *ctx)
{
    cr_each_ctx_t  e = { NULL, fn, NULL, ctx };

    return cr_each(st, st->batch_dbi, cr_each_decode, &e);
}


int
cr_store_each_override(cr_store_t *st,
    int (*fn)(void *ctx, const cr_override_t *o), void *ctx)
{
    cr_each_ctx_t  e = { NULL, NULL, fn, ctx };

    return cr_each(st, st->code_dbi, cr_each_decode, &e);
}


static int
cr_each(cr_store_t *st, MDB_dbi dbi,
    int (*fn)(void *ctx, const MDB_val *k, const MDB_val *v), void *ctx)
{
    int          rc, ret;
    MDB_txn     *txn;
    MDB_cursor  *c;
    MDB_val      k, v;

    if (st->wtxn) {
        txn = st->wtxn;
    } else {
        rc = cr_rtxn_begin(st);
        if (rc != 0) {
            return rc;
        }
        txn = st->rtxn;
    }

    ret = 0;
    rc = mdb_cursor_open(txn, dbi, &c);

    if (rc == 0) {
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        {
            ret = fn(ctx, &k, &v);
            if (ret != 0) {
                break;
            }
        }

        mdb_cursor_close(c);
    }

    if (txn == st->rtxn) {
        cr_rtxn_end(st);
    }

    if (ret == CR_STORE_ERROR) {
        return cr_fail(st, "a record cannot be read");
    }

    if (ret != 0) {
        return ret;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_fail(st, "cannot iterate: %s", mdb_strerror(rc));
    }

    return 0;
}


int
cr_campaign_decode(const uint8_t *p, size_t n, cr_campaign_t *c)
{
    if (cr_rec_decode(p, n, CR_REC_CAMPAIGN, CR_CAMP_FIXED, c->s,
                      CR_CAMP_NSTR)
        != 0)
    {
        return -1;
    }

    p++;
    c->type = p[0];
    c->starts_at = (int64_t) cr_get_u64(p + 1);
    c->ends_at = (int64_t) cr_get_u64(p + 9);
    c->starts_tz = (int16_t) cr_get_u16(p + 17);
    c->ends_tz = (int16_t) cr_get_u16(p + 19);

    if (cr_target_name(c->type) == NULL
        || !cr_campaign_time_ok(c->starts_at, c->starts_tz)
        || !cr_campaign_time_ok(c->ends_at, c->ends_tz))
    {
        return -1;
    }

    return 0;
}


/*
 * Only a time the loader could have stored: every reader formats it (the
 * API, the CLI's dump), and one past the loader's range would overflow
 * there or make a window nobody meant.
 */
static int
cr_campaign_time_ok(int64_t t, int tz)
{
    if (t == CR_TIME_NONE) {
        return tz >= -CR_TZ_MAX && tz <= CR_TZ_MAX;
    }

    return cr_time_ok(t, tz);
}


int
cr_batch_decode(const uint8_t *p, size_t n, cr_batch_t *b)
{
    if (cr_rec_decode(p, n, CR_REC_BATCH, CR_BATCH_FIXED, b->s,
                      CR_BATCH_NSTR)
        != 0)
    {
        return -1;
    }

    p++;
    b->scene = p[0];
    b->kid = p[1];
    b->first = cr_get_u64(p + 2);
    b->last = cr_get_u64(p + 10);

    return cr_scene_name(b->scene) && b->first <= b->last ? 0 : -1;
}


int
cr_override_decode(const uint8_t *p, size_t n, cr_override_t *o)
{
    if (cr_rec_decode(p, n, CR_REC_OVERRIDE, CR_OVR_FIXED, &o->campaign, 1)
        != 0)
    {
        return -1;
    }

    p++;
    o->state = p[0];
    o->kid = p[1];
    o->serial = cr_get_u64(p + 2);

    if (o->state == CR_OVERRIDE_REVOKED) {
        return 0;
    }

    return o->state == CR_OVERRIDE_CAMPAIGN && o->campaign.len ? 0 : -1;
}


static int
cr_rec_encode(cr_store_t *st, uint8_t kind, const uint8_t *fixed,
    size_t nfixed, const cr_str_t *s, unsigned ns, MDB_val *out)
{
    unsigned   i;
    size_t     size, off;
    uint8_t   *p;

    size = 1 + nfixed + 4 * ns;
    for (i = 0; i < ns; i++) {
        size += s[i].len;
    }

    /* u16 offsets: the loader bounds every field far below this. */
    if (size > 0xffff) {
        return cr_fail(st, "record of %zu bytes is too large", size);
    }

    if (size > st->bufcap) {
        p = realloc(st->buf, 0x10000);
        if (p == NULL) {
            return cr_fail(st, "out of memory");
        }
        st->buf = p;
        st->bufcap = 0x10000;
    }

    p = st->buf;
    p[0] = kind;
    memcpy(p + 1, fixed, nfixed);
    off = 1 + nfixed + 4 * ns;

    for (i = 0; i < ns; i++) {
        cr_put_u16(p + 1 + nfixed + 4 * i, (unsigned) off);
        cr_put_u16(p + 1 + nfixed + 4 * i + 2, (unsigned) s[i].len);
        if (s[i].len) {
            memcpy(p + off, s[i].data, s[i].len);
        }
        off += s[i].len;
    }

    out->mv_data = p;
    out->mv_size = size;

    return 0;
}


static int
cr_rec_decode(const uint8_t *p, size_t n, uint8_t kind, size_t nfixed,
    cr_str_t *s, unsigned ns)
{
    unsigned  i, off, len;
    size_t    hdr;

    hdr = 1 + nfixed + 4 * (size_t) ns;

    if (n < hdr || p[0] != kind) {
        return -1;
    }

    for (i = 0; i < ns; i++) {
        off = cr_get_u16(p + 1 + nfixed + 4 * i);
        len = cr_get_u16(p + 1 + nfixed + 4 * i + 2);

        if (off < hdr || (size_t) off + len > n) {
            return -1;
        }

        s[i].data = (const char *) p + off;
        s[i].len = len;
    }

    return 0;
}


/* Remembers an added override's key for the commit's filter update. */
static void
cr_filter_note(cr_store_t *st, const uint8_t *key)
{
    size_t     cap;
    uint64_t  *p;

    st->fdirty = 1;

    /* More than the filter takes: the commit rebuilds it anyway. */
    if (st->fstale || st->nfadd >= st->froom) {
        st->fstale = 1;
        return;
    }

    if (st->nfadd == st->capfadd) {
        cap = st->capfadd ? 2 * st->capfadd : 1024;
        p = realloc(st->fadd, cap * sizeof(uint64_t));

        if (p == NULL) {
            st->fstale = 1;        /* the commit rebuilds it instead */
            return;
        }

        st->fadd = p;
        st->capfadd = cap;
    }

    st->fadd[st->nfadd++] = cr_key_value(key);
}


/*
 * Brings the override filter up to date in the write transaction, at every
 * commit (so a store written by an older version gets one): the keys added
 * set in a copy of the old filter, if it matched the table as this
 * transaction found it and has room; else rebuilt from every key, sized
 * for them.  Deleted keys stay set until a rebuild (a "maybe" costs
 * one search).  A key not of cr_key_make() (written by another tool)
 * leaves no filter: readers then search for every code.
 */
static int
cr_filter_write(cr_store_t *st)
{
    int          rc, valid;
    size_t       i, size;
    uint8_t     *rec;
    MDB_val      k, v, ck, cv;
    MDB_stat     ms;
    uint64_t     stamp0[CR_FILTER_NSTAMP];
    MDB_cursor  *cur;
    cr_filter_t  f;

    rc = mdb_stat(st->wtxn, st->code_dbi, &ms);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot read the overrides' table");
    }

    k.mv_data = CR_FILTER_KEY;
    k.mv_size = sizeof(CR_FILTER_KEY) - 1;
    rec = NULL;

    cr_filter_stamp(&st->fstat0, stamp0);

    valid = !st->fstale && mdb_get(st->wtxn, st->meta_dbi, &k, &v) == 0
            && cr_filter_decode(v.mv_data, v.mv_size, &f) == 0
            && memcmp(f.stamp, stamp0, sizeof(stamp0)) == 0;

    /* Unchanged and right, or nothing to filter. */
    if (!st->fdirty && (valid || ms.ms_entries == 0)) {
        return 0;
    }

    if (valid && f.nkeys + st->nfadd <= cr_filter_capacity(f.lg)) {
        /* A copy: the put below may reuse the old value's pages. */
        size = v.mv_size;
        rec = malloc(size);
        if (rec == NULL) {
            return cr_fail(st, "out of memory");
        }

        memcpy(rec, v.mv_data, size);

        for (i = 0; i < st->nfadd; i++) {
            cr_filter_add(rec + CR_FILTER_HDR, f.lg, st->fadd[i]);
        }

        f.nkeys += st->nfadd;

    } else {
        f.lg = cr_filter_lg(ms.ms_entries);
        f.nkeys = 0;
        size = cr_filter_size(f.lg);
        rec = calloc(1, size);
        if (rec == NULL) {
            return cr_fail(st, "out of memory");
        }

        rc = mdb_cursor_open(st->wtxn, st->code_dbi, &cur);
        if (rc != 0) {
            free(rec);
            return cr_mdb_rc(st, rc, "cannot read the overrides");
        }

        for (rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(cur, &ck, &cv, MDB_NEXT))
        {
            if (ck.mv_size != CR_KEY_LEN) {
                break;
            }

            cr_filter_add(rec + CR_FILTER_HDR, f.lg, cr_key_value(ck.mv_data));
            f.nkeys++;
        }

        mdb_cursor_close(cur);

        if (rc != MDB_NOTFOUND) {
            free(rec);
            rc = mdb_del(st->wtxn, st->meta_dbi, &k, NULL);
            return rc == 0 || rc == MDB_NOTFOUND
                   ? 0 : cr_mdb_rc(st, rc, "cannot delete the filter");
        }
    }

    cr_filter_stamp(&ms, f.stamp);
    cr_filter_header(rec, &f);

    v.mv_data = rec;
    v.mv_size = size;

    rc = mdb_put(st->wtxn, st->meta_dbi, &k, &v, 0);
    free(rec);

    return cr_mdb_rc(st, rc, "cannot write the override filter");
}


void
cr_key_make(uint8_t *k, unsigned kid, uint64_t serial)
{
    k[0] = (uint8_t) kid;
    k[1] = (uint8_t) (serial >> 32);
    k[2] = (uint8_t) (serial >> 24);
    k[3] = (uint8_t) (serial >> 16);
    k[4] = (uint8_t) (serial >> 8);
    k[5] = (uint8_t) serial;
}


static void
cr_put_u16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}


static void
cr_put_u64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}


static unsigned
cr_get_u16(const uint8_t *p)
{
    return (unsigned) p[0] | ((unsigned) p[1] << 8);
}


static uint64_t
cr_get_u64(const uint8_t *p)
{
    int       i;
    uint64_t  v;

    v = 0;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }

    return v;
}


static const char *
cr_name(const char **names, size_t n, unsigned v)
{
    return v < n ? names[v] : NULL;
}


const char *
cr_target_name(unsigned t)
{
    return cr_name(cr_target_names, 4, t);
}


const char *
cr_scene_name(unsigned s)
{
    return cr_name(cr_scene_names, 5, s);
}


const char *
cr_override_name(unsigned s)
{
    return cr_name(cr_override_names, 3, s);
}


const char *
cr_status_name(cr_status_e s)
{
    return (unsigned) s < 5 ? cr_status_names[s] : "unavailable";
}


static unsigned
cr_parse_name(const char **names, unsigned n, const char *s, size_t len)
{
    unsigned  i;

    for (i = 1; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return i;
        }
    }

    return 0;
}


unsigned
cr_target_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_target_names, 4, s, n);
}


unsigned
cr_scene_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_scene_names, 5, s, n);
}


unsigned
cr_override_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_override_names, 3, s, n);
}


/* GS1 links (cr_link.h): records 'L', seven strings, no fixed part. */

int
cr_link_decode(const uint8_t *p, size_t n, cr_link_t *l)
{
    return cr_rec_decode(p, n, CR_REC_LINK, 0, l->s, CR_LINK_NSTR);
}


int
cr_store_put_link(cr_store_t *st, const cr_link_t *l)
{
    int       rc;
    uint8_t   key[CR_LINK_KEY_MAX];
    uint64_t  count;
    MDB_val   k, v;

    if (!st->has_links) {
        return cr_fail(st, "this store has no links database");
    }

    k.mv_data = key;
    k.mv_size = cr_link_key(key, l);

    rc = cr_rec_encode(st, CR_REC_LINK, (const uint8_t *) "", 0, l->s,
                       CR_LINK_NSTR, &v);
    if (rc != 0) {
        return rc;
    }

    /* The meta record counts the first schema's kinds only. */
    count = 0;

    return cr_put_record(st, st->link_dbi, &k, &v, &count);
}


int
cr_store_del_link(cr_store_t *st, const cr_link_t *l)
{
    uint8_t  key[CR_LINK_KEY_MAX];
    MDB_val  k;

    if (!st->has_links) {
        return CR_STORE_NOTFOUND;
    }

    k.mv_data = key;
    k.mv_size = cr_link_key(key, l);

    return cr_mdb_rc(st, mdb_del(st->wtxn, st->link_dbi, &k, NULL),
                     "cannot delete a link");
}


typedef struct {
    int   (*fn)(void *ctx, const cr_link_t *l);
    void   *ctx;
} cr_each_link_ctx_t;


static int
cr_each_link_decode(void *ctx, const MDB_val *k, const MDB_val *v)
{
    cr_link_t            l;
    cr_each_link_ctx_t  *e = ctx;

    (void) k;

    if (cr_link_decode(v->mv_data, v->mv_size, &l) != 0) {
        return CR_STORE_ERROR;
    }

    return e->fn(e->ctx, &l);
}


int
cr_store_each_link(cr_store_t *st, int (*fn)(void *ctx, const cr_link_t *l),
    void *ctx)
{
    cr_each_link_ctx_t  e = { fn, ctx };

    if (!st->has_links) {
        return 0;
    }

    return cr_each(st, st->link_dbi, cr_each_link_decode, &e);
}


int
cr_store_links(cr_store_t *st, const char *gtin, const char *lot,
    size_t lot_len, cr_link_t *out, size_t max, size_t *n,
    cr_alloc_pt alloc, void *ctx)
{
    int          rc, i;
    char        *p;
    size_t       plen;
    uint8_t      prefix[CR_LINK_KEY_MAX];
    MDB_val      k, v;
    MDB_cursor  *c;

    *n = 0;

    if (!st->has_links) {
        return 0;
    }

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    rc = mdb_cursor_open(st->rtxn, st->link_dbi, &c);
    if (rc != 0) {
        return cr_fail(st, "cannot open a cursor: %s", mdb_strerror(rc));
    }

    plen = cr_link_level_key(prefix, gtin, lot, lot_len);
    k.mv_data = prefix;
    k.mv_size = plen;

    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         rc == 0 && *n < max && k.mv_size >= plen
         && memcmp(k.mv_data, prefix, plen) == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    {
        if (cr_link_decode(v.mv_data, v.mv_size, &out[*n]) != 0) {
            mdb_cursor_close(c);
            return cr_fail(st, "a link record cannot be read");
        }

        /* Nothing may point into the map once the snapshot moves on. */
        for (i = 0; i < CR_LINK_NSTR; i++) {
            p = alloc(ctx, out[*n].s[i].len + 1);
            if (p == NULL) {
                mdb_cursor_close(c);
                return cr_fail(st, "out of memory");
            }

            memcpy(p, out[*n].s[i].data, out[*n].s[i].len);
            p[out[*n].s[i].len] = '\0';
            out[*n].s[i].data = p;
        }

        (*n)++;
    }

    mdb_cursor_close(c);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return cr_fail(st, "cannot read the links: %s", mdb_strerror(rc));
    }

    return 0;
}
