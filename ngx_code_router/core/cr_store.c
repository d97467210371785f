/*
 * cr_store: see cr_store.h.  Opening and closing, the lock file's checks,
 * errors, the meta record, and the whole-store reports (info, copy,
 * reader slots).
 */

#define _XOPEN_SOURCE 700        /* POSIX 2008 and XSI: realpath() */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_store_int.h"
#include "cr_store_test.h"


static int cr_lock_share(cr_store_t *st);
static int cr_data_mode(cr_store_t *st);
static int cr_lock_matches_file(cr_store_t *st);
static int cr_store_init(cr_store_t *st, int create);


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
        rc = mdb_env_set_maxdbs(st->env, 10);
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
        /* 0664 less the umask: cr_lock_share() sets the lock file's,
         * cr_data_mode() the data file's. */
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
        || (!st->rdonly && cr_data_mode(st) != 0)
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

    if (st->pcur) {
        mdb_cursor_close(st->pcur);
    }

    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
    }

    cr_cache_free(&st->cache);
    free(st->fadd);
    free(st->padd);

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


int
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
int
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
int
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
 * The data file is the writer's alone: 0644 whatever the umask (umask 002,
 * Debian's default for users with their own group, left it 0664 in the
 * workers' group of a setgid directory, and any process of that group
 * could rewrite the bindings in place), and never narrower (nginx's
 * workers read it).  A writer that owns a file made so before puts it
 * right; one that cannot says so.  Through LMDB's descriptor: no
 * file can be swapped in between.
 */
static int
cr_data_mode(cr_store_t *st)
{
    int          fd;
    struct stat  sb;

    if (mdb_env_get_fd(st->env, &fd) != 0 || fstat(fd, &sb) != 0) {
        return cr_fail(st, "cannot stat its data file: %s", strerror(errno));
    }

    if ((sb.st_mode & 07777) == 0644) {
        return 0;
    }

    if (fchmod(fd, 0644) != 0) {
        return cr_fail(st, "its data file is mode %04o and this user cannot "
                       "make it 0644: others could rewrite the bindings or "
                       "nginx's workers could not read them (chmod 0644 it; "
                       "see docs/loading.md)",
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
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "rules", dflags, &st->rule_dbi);
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

    /* Parents came later still, alike: both tables or neither. */
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "parents", dflags, &st->parent_dbi);
        if (rc == 0) {
            rc = mdb_dbi_open(txn, "children", dflags, &st->child_dbi);
        }
        st->has_parents = (rc == 0);

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


int
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


int
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


/* A key or a value into the digest: its length (u32 LE), its bytes. */
static void
cr_digest_put(crypto_generichash_blake2b_state *h, const MDB_val *v)
{
    uint8_t  len[4];

    len[0] = (uint8_t) v->mv_size;
    len[1] = (uint8_t) (v->mv_size >> 8);
    len[2] = (uint8_t) (v->mv_size >> 16);
    len[3] = (uint8_t) (v->mv_size >> 24);

    (void) crypto_generichash_blake2b_update(h, len, 4);

    if (v->mv_size) {
        (void) crypto_generichash_blake2b_update(h, v->mv_data, v->mv_size);
    }
}


int
cr_store_digest(cr_store_t *st, uint8_t digest[CR_STORE_DIGEST_LEN],
    uint64_t *generation)
{
    int                                 rc;
    size_t                              i;
    MDB_val                             k, v;
    cr_meta_t                           meta;
    MDB_cursor                         *cur;
    crypto_generichash_blake2b_state    h;

    static const char  end[4] = { '\xff', '\xff', '\xff', '\xff' };

    const struct {
        const char  *name;
        MDB_dbi      dbi;
    } dbs[] = {
        { "meta", st->meta_dbi }, { "campaigns", st->camp_dbi },
        { "batches", st->batch_dbi }, { "batch_ids", st->batch_id_dbi },
        { "codes", st->code_dbi }, { "links", st->link_dbi },
        { "parents", st->parent_dbi }, { "children", st->child_dbi }
    };

    rc = cr_rtxn_begin(st);
    if (rc != 0) {
        return rc;
    }

    rc = cr_meta_read(st, st->rtxn, &meta);
    if (rc != 0) {
        cr_rtxn_end(st);
        return rc;
    }

    *generation = meta.generation;

    (void) crypto_generichash_blake2b_init(&h, NULL, 0, CR_STORE_DIGEST_LEN);

    for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        if ((i == 5 && !st->has_links) || (i >= 6 && !st->has_parents)) {
            continue;
        }

        (void) crypto_generichash_blake2b_update(&h,
                              (const unsigned char *) dbs[i].name,
                              strlen(dbs[i].name) + 1);

        rc = mdb_cursor_open(st->rtxn, dbs[i].dbi, &cur);
        if (rc != 0) {
            break;
        }

        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        {
            cr_digest_put(&h, &k);
            cr_digest_put(&h, &v);
        }

        mdb_cursor_close(cur);

        if (rc != MDB_NOTFOUND) {
            break;
        }

        rc = 0;
        (void) crypto_generichash_blake2b_update(&h,
                                   (const unsigned char *) end, 4);
    }

    cr_rtxn_end(st);

    if (rc != 0) {
        return cr_fail(st, "cannot read every record (damaged?): %s",
                       mdb_strerror(rc));
    }

    (void) crypto_generichash_blake2b_final(&h, digest, CR_STORE_DIGEST_LEN);

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
