/*
 * code-router publish: ships the master store to an edge path as a new
 * compacted version and points a symlink at it (docs/scaling.md).
 *
 * EDGE_PATH is a symlink to "NAME.vN" beside it (NAME: EDGE_PATH's file
 * name), N counting up.  Each version has a lock file of its own,
 * "NAME.vN-lock" (cr_store_open() names it after the real file), so no
 * reader ever pairs a lock file with another file.  The order matters:
 *
 *   1. copy into a temporary file, fsync it (readers never see a part);
 *   2. link it to the next free version name (never over another file);
 *   3. open and read it as stat does, which also creates its lock file,
 *      group-writable (cr_store_open), and compare its content digest
 *      with the master's snapshot (and with --digest, if given: the
 *      master itself came another way, rsync say);
 *   4. flip the symlink: a new one renamed over EDGE_PATH, so that
 *      EDGE_PATH is at every instant the old version or the new one;
 *   5. fsync the directory, then remove versions beyond the newest N.
 */

#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cr_cli.h"
#include "cr_store.h"


#define CR_PUBLISH_KEEP      3
#define CR_PUBLISH_KEEP_MIN  2         /* the version just replaced stays:
                                        * a worker may be opening it */
#define CR_PUBLISH_KEEP_MAX  1000
#define CR_PUBLISH_NAME_MAX  200       /* room for ".vN-lock" */


typedef struct {
    char   dir[4096];
    char   name[CR_PUBLISH_NAME_MAX + 1];
    char   path[4096];                 /* EDGE_PATH as given */
} cr_edge_t;


static int cr_edge_split(const char *path, cr_edge_t *e);
static int cr_version_seq(const cr_edge_t *e, const char *file,
    uint64_t *seq);
static int cr_versions(const cr_edge_t *e, uint64_t **seqs, size_t *n);
static int cr_seq_desc(const void *a, const void *b);
static int cr_publish_copy(cr_store_t *master, const cr_edge_t *e,
    char *file, size_t len);
static int cr_version_remove(const cr_edge_t *e, const char *file);
static int cr_publish_flip(const cr_edge_t *e, const char *file);
static int cr_publish_prune(const cr_edge_t *e, uint64_t keep,
    unsigned *removed);
static int cr_dir_sync(const char *dir);
static int cr_publish_check(const char *version,
    const uint8_t want[CR_STORE_DIGEST_LEN], uint64_t gen,
    cr_store_info_t *after);


#define CR_PUBLISH_TRIES  3            /* copies while the loader commits */


int
cr_cmd_publish(int argc, char **argv)
{
    int               ch, rc, tries;
    char              err[512], file[CR_PUBLISH_NAME_MAX + 32];
    char              version[sizeof(((cr_edge_t *) 0)->dir) + sizeof(file)];
    uint8_t           want[CR_STORE_DIGEST_LEN], given[CR_STORE_DIGEST_LEN];
    uint64_t          keep, gen;
    unsigned          removed;
    cr_edge_t         e;
    cr_store_t       *master;
    struct stat       sb;
    const char       *db, *to, *digest;
    cr_store_info_t   after;

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "to", required_argument, NULL, 't' },
        { "keep", required_argument, NULL, 'k' },
        { "digest", required_argument, NULL, 'g' },
        { NULL, 0, NULL, 0 }
    };

    db = to = digest = NULL;
    keep = CR_PUBLISH_KEEP;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            db = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'k':
            if (cr_cli_parse_u64(optarg, CR_PUBLISH_KEEP_MAX, &keep) != 0
                || keep < CR_PUBLISH_KEEP_MIN)
            {
                return cr_cli_error("publish", CR_EXIT_USAGE,
                                    "--keep must be %d to %d, not \"%s\"",
                                    CR_PUBLISH_KEEP_MIN, CR_PUBLISH_KEEP_MAX,
                                    optarg);
            }
            break;
        case 'g':
            digest = optarg;
            if (cr_cli_parse_digest(digest, given) != 0) {
                return cr_cli_error("publish", CR_EXIT_USAGE, "--digest "
                                    "must be the 64 hex digits stat "
                                    "--digest or publish printed, not "
                                    "\"%s\"", optarg);
            }
            break;
        default:
            return cr_cli_error("publish", CR_EXIT_USAGE, "bad option");
        }
    }

    if (db == NULL || to == NULL || optind != argc) {
        return cr_cli_error("publish", CR_EXIT_USAGE, "--db MASTER and --to "
                            "EDGE_PATH are required, and nothing else");
    }

    if (cr_edge_split(to, &e) != 0) {
        return cr_cli_error("publish", CR_EXIT_USAGE, "--to \"%s\" must name "
                            "a file (at most %d bytes) in a directory", to,
                            CR_PUBLISH_NAME_MAX);
    }

    if (lstat(to, &sb) == 0) {
        if (!S_ISLNK(sb.st_mode)) {
            return cr_cli_error("publish", CR_EXIT_ENV, "\"%s\" exists and "
                                "is not a symlink: publish points a symlink "
                                "at versions beside it and never replaces a "
                                "file (nginx may have it open); move it "
                                "aside or publish to another path", to);
        }

    } else if (errno != ENOENT) {
        return cr_cli_error("publish", CR_EXIT_ENV, "\"%s\": %s", to,
                            strerror(errno));
    }

    /* The master is opened as a reader: it must be a code-router store of
     * this schema (cr_store_open says why not), and the loader may go on
     * committing while it is copied. */
    if (cr_store_open(&master, db, CR_STORE_RDONLY, err, sizeof(err)) != 0)
    {
        return cr_cli_error("publish", CR_EXIT_ENV, "%s", err);
    }

    /*
     * The master's snapshot is digested, then copied (LMDB's copy takes a
     * snapshot of its own): a copy of another generation, the loader
     * having committed in between, is made again; one of the same
     * generation must hold the same records.
     */
    for (tries = 1; /* void */; tries++) {
        rc = cr_cli_digest("publish", master, db, want, &gen);

        if (rc == CR_CLI_FAULTED) {
            return CR_EXIT_ENV;
        }

        if (rc != CR_EXIT_OK) {
            break;
        }

        if (digest && memcmp(want, given, CR_STORE_DIGEST_LEN) != 0) {
            rc = cr_cli_error("publish", CR_EXIT_ENV, "\"%s\" does not "
                              "hold what --digest says (damaged or not the "
                              "file that was shipped: its generation %llu "
                              "has another digest); not published", db,
                              (unsigned long long) gen);
            break;
        }

        rc = cr_publish_copy(master, &e, file, sizeof(file));
        if (rc != CR_EXIT_OK) {
            break;
        }

        snprintf(version, sizeof(version), "%s/%s", e.dir, file);

        rc = cr_publish_check(version, want, gen, &after);

        if (rc != CR_EXIT_OK) {
            (void) cr_version_remove(&e, file);
        }

        if (rc != CR_EXIT_INVALID) {
            break;
        }

        if (tries == CR_PUBLISH_TRIES) {
            rc = cr_cli_error("publish", CR_EXIT_ENV, "the master was "
                              "committed to during each of %d copies: "
                              "publish between loads", CR_PUBLISH_TRIES);
            break;
        }
    }

    cr_store_close(master);

    if (rc != CR_EXIT_OK) {
        return rc;
    }

    rc = cr_publish_flip(&e, file);
    if (rc != CR_EXIT_OK) {
        (void) cr_version_remove(&e, file);
        return rc;
    }

    printf("published     %s -> %s\n", e.path, file);
    cr_cli_print_info(stdout, &after);
    cr_cli_print_digest(stdout, want);
    fflush(stdout);

    removed = 0;
    rc = cr_publish_prune(&e, keep, &removed);

    printf("removed       %u old version%s\n", removed,
           removed == 1 ? "" : "s");

    return rc;
}


/*
 * Step 3: the new version opened as nginx opens it (its lock file made
 * then), its info read and its content digested.  CR_EXIT_OK if it holds
 * the records of the master's snapshot of generation gen (digest want);
 * CR_EXIT_INVALID if it is of another generation (copy again); else an
 * error printed.
 */
static int
cr_publish_check(const char *version, const uint8_t want[CR_STORE_DIGEST_LEN],
    uint64_t gen, cr_store_info_t *after)
{
    int          rc;
    char         err[512];
    uint8_t      got[CR_STORE_DIGEST_LEN];
    uint64_t     got_gen;
    cr_store_t  *st;

    if (cr_store_open(&st, version, CR_STORE_RDONLY, err, sizeof(err)) != 0)
    {
        return cr_cli_error("publish", CR_EXIT_ENV, "%s", err);
    }

    if (cr_store_info(st, after) != 0) {
        rc = cr_cli_error("publish", CR_EXIT_ENV, "the copy: %s",
                          cr_store_error(st));
        cr_store_close(st);
        return rc;
    }

    rc = cr_cli_digest("publish", st, version, got, &got_gen);

    if (rc == CR_CLI_FAULTED) {
        return CR_EXIT_ENV;
    }

    if (rc != CR_EXIT_OK) {
        /* printed */

    } else if (got_gen != gen) {
        rc = CR_EXIT_INVALID;

    } else if (memcmp(got, want, CR_STORE_DIGEST_LEN) != 0) {
        rc = cr_cli_error("publish", CR_EXIT_ENV, "the copy \"%s\" does "
                          "not hold the records of the master's generation "
                          "%llu (another content digest): damaged on its "
                          "way; not published", version,
                          (unsigned long long) gen);
    }

    cr_store_close(st);

    return rc;
}


/* "dir/name", "name" (dir "."), "/name" (dir "/"); no empty name. */
static int
cr_edge_split(const char *path, cr_edge_t *e)
{
    size_t       n;
    const char  *slash;

    if (strlen(path) >= sizeof(e->path)) {
        return -1;
    }

    snprintf(e->path, sizeof(e->path), "%s", path);

    slash = strrchr(path, '/');

    if (slash == NULL) {
        snprintf(e->dir, sizeof(e->dir), ".");
        slash = path - 1;

    } else if (slash == path) {
        snprintf(e->dir, sizeof(e->dir), "/");

    } else {
        snprintf(e->dir, sizeof(e->dir), "%.*s", (int) (slash - path), path);
    }

    n = strlen(slash + 1);

    if (n == 0 || n > CR_PUBLISH_NAME_MAX || strcmp(slash + 1, ".") == 0
        || strcmp(slash + 1, "..") == 0)
    {
        return -1;
    }

    memcpy(e->name, slash + 1, n + 1);

    return 0;
}


/* 0 if file is a version of the edge, "NAME.vN" with N decimal digits;
 * lock files ("NAME.vN-lock") and anything else are not. */
static int
cr_version_seq(const cr_edge_t *e, const char *file, uint64_t *seq)
{
    size_t  n;

    n = strlen(e->name);

    /* No leading zero: one number, one name. */
    if (strncmp(file, e->name, n) != 0 || strncmp(file + n, ".v", 2) != 0
        || file[n + 2] == '0')
    {
        return -1;
    }

    return cr_cli_parse_u64(file + n + 2, UINT64_MAX - 1, seq);
}


/* The versions beside the edge, newest first. */
static int
cr_versions(const cr_edge_t *e, uint64_t **seqs, size_t *n)
{
    DIR            *d;
    size_t          cap;
    uint64_t        seq, *p;
    struct dirent  *de;

    *seqs = NULL;
    *n = 0;
    cap = 0;

    d = opendir(e->dir);
    if (d == NULL) {
        return cr_cli_error("publish", CR_EXIT_ENV, "cannot list \"%s\": %s",
                            e->dir, strerror(errno));
    }

    while ((de = readdir(d)) != NULL) {
        if (cr_version_seq(e, de->d_name, &seq) != 0) {
            continue;
        }

        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            p = realloc(*seqs, cap * sizeof(uint64_t));
            if (p == NULL) {
                closedir(d);
                free(*seqs);
                *seqs = NULL;
                return cr_cli_error("publish", CR_EXIT_ENV, "out of memory");
            }
            *seqs = p;
        }

        (*seqs)[(*n)++] = seq;
    }

    closedir(d);

    if (*n) {
        qsort(*seqs, *n, sizeof(uint64_t), cr_seq_desc);
    }

    return CR_EXIT_OK;
}


static int
cr_seq_desc(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? 1 : x > y ? -1 : 0;
}


/*
 * Steps 1 and 2: the compacted copy in a temporary file, synced, then
 * linked to the next free version name; file gets that name.  link()
 * fails rather than replace a file, so two publishes at once take two
 * names.
 */
static int
cr_publish_copy(cr_store_t *master, const cr_edge_t *e, char *file,
    size_t len)
{
    int        fd, rc;
    char       tmp[sizeof(e->dir) + sizeof(e->name) + 32];
    char       dst[sizeof(e->dir) + CR_PUBLISH_NAME_MAX + 32];
    size_t     n;
    uint64_t   seq, *seqs;

    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", e->dir, e->name);

    fd = mkstemp(tmp);
    if (fd == -1) {
        return cr_cli_error("publish", CR_EXIT_ENV, "cannot create a file "
                            "in \"%s\": %s", e->dir, strerror(errno));
    }

    /* mkstemp makes it 0600; nginx's workers read it. */
    if (fchmod(fd, 0644) != 0) {
        rc = cr_cli_error("publish", CR_EXIT_ENV, "chmod \"%s\": %s", tmp,
                          strerror(errno));
        goto failed;
    }

    if (cr_store_copy(master, fd) != 0) {
        rc = cr_cli_error("publish", CR_EXIT_ENV, "%s",
                          cr_store_error(master));
        goto failed;
    }

    if (fsync(fd) != 0) {
        rc = cr_cli_error("publish", CR_EXIT_ENV, "fsync \"%s\": %s", tmp,
                          strerror(errno));
        goto failed;
    }

    if (close(fd) != 0) {
        fd = -1;
        rc = cr_cli_error("publish", CR_EXIT_ENV, "close \"%s\": %s", tmp,
                          strerror(errno));
        goto failed;
    }

    fd = -1;

    rc = cr_versions(e, &seqs, &n);
    if (rc != CR_EXIT_OK) {
        goto failed;
    }

    seq = n ? seqs[0] + 1 : 1;
    free(seqs);

    for ( ;; ) {
        snprintf(file, len, "%s.v%llu", e->name, (unsigned long long) seq);
        snprintf(dst, sizeof(dst), "%s/%s", e->dir, file);

        if (link(tmp, dst) == 0) {
            break;
        }

        if (errno != EEXIST || seq == UINT64_MAX - 1) {
            rc = cr_cli_error("publish", CR_EXIT_ENV, "cannot link \"%s\" "
                              "to \"%s\": %s", tmp, dst, strerror(errno));
            goto failed;
        }

        seq++;
    }

    (void) unlink(tmp);

    return CR_EXIT_OK;

failed:

    if (fd != -1) {
        (void) close(fd);
    }

    (void) unlink(tmp);

    return rc;
}


/*
 * Removes a version, then its lock file (once the file is gone nobody can
 * open it and make a new lock file).  CR_EXIT_OK, or an error printed.
 */
static int
cr_version_remove(const cr_edge_t *e, const char *file)
{
    char         p[sizeof(e->dir) + CR_PUBLISH_NAME_MAX + 48];
    unsigned     i;
    const char  *suffix[2] = { "", "-lock" };

    for (i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s%s", e->dir, file, suffix[i]);

        if (unlink(p) != 0 && errno != ENOENT) {
            return cr_cli_error("publish", CR_EXIT_ENV, "cannot remove "
                                "\"%s\": %s", p, strerror(errno));
        }
    }

    return CR_EXIT_OK;
}


/*
 * Step 4: a symlink to the version (relative, so that the directory can
 * be moved or mirrored) under a temporary name, renamed over EDGE_PATH:
 * rename() replaces it atomically, so every open of EDGE_PATH finds the
 * old version or the new one.  Then the directory is synced.
 */
static int
cr_publish_flip(const cr_edge_t *e, const char *file)
{
    char  tmp[sizeof(e->dir) + sizeof(e->name) + 48];

    snprintf(tmp, sizeof(tmp), "%s/.%s.flip-%ld", e->dir, e->name,
             (long) getpid());

    if (unlink(tmp) != 0 && errno != ENOENT) {
        return cr_cli_error("publish", CR_EXIT_ENV, "cannot remove \"%s\": "
                            "%s", tmp, strerror(errno));
    }

    if (symlink(file, tmp) != 0) {
        return cr_cli_error("publish", CR_EXIT_ENV, "cannot create the "
                            "symlink \"%s\": %s", tmp, strerror(errno));
    }

    if (rename(tmp, e->path) != 0) {
        (void) unlink(tmp);
        return cr_cli_error("publish", CR_EXIT_ENV, "cannot rename \"%s\" "
                            "over \"%s\": %s", tmp, e->path, strerror(errno));
    }

    return cr_dir_sync(e->dir);
}


/*
 * Step 5: versions beyond the newest "keep" go, with their lock files.
 * The version EDGE_PATH points at stays whatever its number.
 */
static int
cr_publish_prune(const cr_edge_t *e, uint64_t keep, unsigned *removed)
{
    int        rc;
    char       cur[CR_PUBLISH_NAME_MAX + 32], file[CR_PUBLISH_NAME_MAX + 32];
    size_t     i, n;
    ssize_t    len;
    uint64_t  *seqs, cur_seq;

    len = readlink(e->path, cur, sizeof(cur) - 1);
    if (len < 0) {
        return CR_EXIT_OK;
    }

    cur[len] = '\0';

    if (cr_version_seq(e, cur, &cur_seq) != 0) {
        /* Pointed elsewhere meanwhile (by hand): prune nothing now. */
        return CR_EXIT_OK;
    }

    rc = cr_versions(e, &seqs, &n);
    if (rc != CR_EXIT_OK) {
        return rc;
    }

    for (i = keep; i < n; i++) {
        if (seqs[i] == cur_seq) {
            continue;
        }

        snprintf(file, sizeof(file), "%s.v%llu", e->name,
                 (unsigned long long) seqs[i]);

        rc = cr_version_remove(e, file);
        if (rc != CR_EXIT_OK) {
            break;
        }

        (*removed)++;
    }

    free(seqs);

    return rc;
}


static int
cr_dir_sync(const char *dir)
{
    int  fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return cr_cli_error("publish", CR_EXIT_ENV, "cannot open \"%s\": %s",
                            dir, strerror(errno));
    }

    rc = fsync(fd);
    (void) close(fd);

    if (rc != 0) {
        return cr_cli_error("publish", CR_EXIT_ENV, "fsync \"%s\": %s", dir,
                            strerror(errno));
    }

    return CR_EXIT_OK;
}
