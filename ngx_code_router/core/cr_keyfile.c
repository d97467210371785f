/*
 * cr_keyfile: see cr_keyfile.h.
 */

#define _XOPEN_SOURCE 700       /* realpath() */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_keyfile.h"
#include "cr_seal.h"


static int cr_keyfile_load(const char *path, const char *what, int secret,
    uint8_t *buf, size_t size, size_t *n, struct stat *st, char *err,
    size_t errlen);
static int cr_keyfile_private(const char *path, const char *what,
    const struct stat *st, char *err, size_t errlen);
static const char *cr_keyfile_kind(const uint8_t *p, size_t n);
static int cr_keyfile_not_printer(const char *path, const char *what,
    const uint8_t *buf, size_t n, const struct stat *st, const char *want,
    const char *wanted, char *err, size_t errlen);
static int cr_keyfile_hex(const uint8_t *s, uint8_t *out, size_t n);
static unsigned cr_keyfile_nibble(uint8_t c);
static int cr_keyfile_write(const char *path, const char *what,
    const uint8_t *data, size_t len, mode_t mode, char *err, size_t errlen);
static int cr_keyfile_open(const char *path, char *err, size_t errlen);
static int cr_keyfile_link_dir(const char *path, char *err, size_t errlen);


int
cr_keyfile_read(const char *path, uint8_t master[CR_MASTER_KEY_LEN],
    char *err, size_t errlen)
{
    size_t       n;
    const char  *kind;
    struct stat  st;
    uint8_t      buf[CR_MASTER_KEY_LEN + 1];

    /* One byte more than a key, so that a longer file is caught; and
     * enough to tell a printer's key file by its first line. */
    if (cr_keyfile_load(path, "key file", 1, buf, sizeof(buf), &n, &st,
                        err, errlen)
        != 0)
    {
        return -1;
    }

    kind = cr_keyfile_kind(buf, n);

    if (kind != NULL) {
        snprintf(err, errlen, "key file \"%s\" is %s, not a master key "
                 "(code-router keygen makes one)", path, kind);
        goto failed;
    }

    if (cr_keyfile_private(path, "key file", &st, err, errlen) != 0) {
        goto failed;
    }

    if (n != CR_MASTER_KEY_LEN || st.st_size != CR_MASTER_KEY_LEN) {
        snprintf(err, errlen, "key file \"%s\" is %lld bytes: a master key "
                 "is exactly %d bytes (make one with: code-router keygen)",
                 path, (long long) st.st_size, CR_MASTER_KEY_LEN);
        goto failed;
    }

    memcpy(master, buf, CR_MASTER_KEY_LEN);
    sodium_memzero(buf, sizeof(buf));

    return 0;

failed:

    sodium_memzero(buf, sizeof(buf));
    return -1;
}


int
cr_keyfile_printer_read(const char *path, uint8_t pk[CR_PRINTER_PK_LEN],
    uint8_t sk[CR_PRINTER_SK_LEN], char *err, size_t errlen)
{
    size_t       n;
    struct stat  st;
    uint8_t      buf[CR_PRINTER_KEY_SIZE + 1], check[CR_PRINTER_PK_LEN];

    if (cr_keyfile_load(path, "printer key file", 1, buf, sizeof(buf), &n,
                        &st, err, errlen)
        != 0)
    {
        return -1;
    }

    if (cr_keyfile_not_printer(path, "printer key file", buf, n, &st,
                               CR_PRINTER_KEY_PREFIX,
                               "a printer's secret key", err, errlen)
        != 0)
    {
        goto failed;
    }

    if (n >= sizeof("code-router printer public key ") - 1
        && memcmp(buf, "code-router printer public key ",
                  sizeof("code-router printer public key ") - 1) == 0)
    {
        snprintf(err, errlen, "printer key file \"%s\" is a printer's "
                 "public key: opening a package needs the secret key, the "
                 ".key file that code-router keygen --printer wrote beside "
                 "it", path);
        goto failed;
    }

    if (cr_keyfile_private(path, "printer key file", &st, err, errlen) != 0)
    {
        goto failed;
    }

    if (n != CR_PRINTER_KEY_SIZE || st.st_size != CR_PRINTER_KEY_SIZE
        || memcmp(buf, CR_PRINTER_KEY_PREFIX, CR_PRINTER_PREFIX_LEN) != 0
        || cr_keyfile_hex(buf + CR_PRINTER_PREFIX_LEN, pk, CR_PRINTER_PK_LEN)
           != 0
        || buf[CR_PRINTER_PREFIX_LEN + 64] != ' '
        || cr_keyfile_hex(buf + CR_PRINTER_PREFIX_LEN + 65, sk,
                          CR_PRINTER_SK_LEN) != 0
        || buf[CR_PRINTER_KEY_SIZE - 1] != '\n')
    {
        snprintf(err, errlen, "printer key file \"%s\" is damaged: a "
                 "printer's secret key is one line of %d bytes, \"%s\" and "
                 "two keys of 64 lower-case hex digits", path,
                 CR_PRINTER_KEY_SIZE, CR_PRINTER_KEY_PREFIX "PK SK");
        goto failed;
    }

    /* An X25519 public key is its secret key times the base point: a
     * changed digit in either would open nothing, and say so late. */
    if (crypto_scalarmult_base(check, sk) != 0
        || sodium_memcmp(check, pk, CR_PRINTER_PK_LEN) != 0)
    {
        snprintf(err, errlen, "printer key file \"%s\" is damaged: its "
                 "public key is not its secret key's", path);
        goto failed;
    }

    sodium_memzero(buf, sizeof(buf));

    return 0;

failed:

    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(sk, CR_PRINTER_SK_LEN);
    return -1;
}


int
cr_keyfile_printer_read_public(const char *path,
    uint8_t pk[CR_PRINTER_PK_LEN], char *err, size_t errlen)
{
    size_t       n;
    struct stat  st;
    uint8_t      buf[CR_PRINTER_KEY_SIZE + 1];

    if (cr_keyfile_load(path, "printer key file", 0, buf, sizeof(buf), &n,
                        &st, err, errlen)
        != 0)
    {
        return -1;
    }

    if (cr_keyfile_not_printer(path, "printer key file", buf, n, &st,
                               CR_PRINTER_PUB_PREFIX,
                               "a printer's public key", err, errlen)
        != 0)
    {
        goto failed;
    }

    if (n >= sizeof("code-router printer secret key ") - 1
        && memcmp(buf, "code-router printer secret key ",
                  sizeof("code-router printer secret key ") - 1) == 0)
    {
        snprintf(err, errlen, "printer key file \"%s\" is a printer's "
                 "secret key: seal to its public key, the .pub file beside "
                 "it (the secret key stays at the printer)", path);
        goto failed;
    }

    if (n != CR_PRINTER_PUB_SIZE || st.st_size != CR_PRINTER_PUB_SIZE
        || memcmp(buf, CR_PRINTER_PUB_PREFIX, CR_PRINTER_PREFIX_LEN) != 0
        || cr_keyfile_hex(buf + CR_PRINTER_PREFIX_LEN, pk, CR_PRINTER_PK_LEN)
           != 0
        || buf[CR_PRINTER_PUB_SIZE - 1] != '\n')
    {
        snprintf(err, errlen, "printer key file \"%s\" is damaged: a "
                 "printer's public key is one line of %d bytes, \"%s\" and "
                 "64 lower-case hex digits", path, CR_PRINTER_PUB_SIZE,
                 CR_PRINTER_PUB_PREFIX "PK");
        goto failed;
    }

    sodium_memzero(buf, sizeof(buf));

    return 0;

failed:

    sodium_memzero(buf, sizeof(buf));
    return -1;
}


/*
 * Opens a key file (a secret one as cr_keyfile_open() does, with its
 * directory checks), which must be a regular file, and reads at most
 * "size" bytes of it into buf: *n of them, *st its status.  0, or -1 with
 * "err" (what the file is called in it: "what").
 */
static int
cr_keyfile_load(const char *path, const char *what, int secret, uint8_t *buf,
    size_t size, size_t *n, struct stat *st, char *err, size_t errlen)
{
    int      fd;
    ssize_t  k;

    if (secret) {
        fd = cr_keyfile_open(path, err, errlen);
        if (fd == -1) {
            return -1;
        }

    } else {
        /* O_NONBLOCK: a FIFO is refused below, not waited on. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd == -1) {
            snprintf(err, errlen, "%s \"%s\": cannot open: %s", what, path,
                     strerror(errno));
            return -1;
        }
    }

    if (fstat(fd, st) == -1) {
        snprintf(err, errlen, "%s \"%s\": cannot stat: %s",
                 what, path, strerror(errno));
        goto failed;
    }

    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s \"%s\" is not a regular file", what, path);
        goto failed;
    }

    *n = 0;

    while (*n < size) {
        k = read(fd, buf + *n, size - *n);

        if (k == -1 && errno == EINTR) {
            continue;
        }

        if (k == -1) {
            snprintf(err, errlen, "%s \"%s\": cannot read: %s",
                     what, path, strerror(errno));
            sodium_memzero(buf, size);
            goto failed;
        }

        if (k == 0) {
            break;
        }

        *n += (size_t) k;
    }

    close(fd);

    return 0;

failed:

    close(fd);
    return -1;
}


/* A secret key file: no access for group and others, owned by root or
 * by the user reading it.  0, or -1 with "err". */
static int
cr_keyfile_private(const char *path, const char *what, const struct stat *st,
    char *err, size_t errlen)
{
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "%s \"%s\" has mode %04o: group and "
                 "others must have no access (chmod 600 %s)",
                 what, path, (unsigned) (st->st_mode & 07777), path);
        return -1;
    }

    /* Whoever owns the file can chmod it and rewrite it: only root and
     * the user reading it (nginx's master, the CLI's user) may. */
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(err, errlen, "%s \"%s\" is owned by uid %lu: a key "
                 "must be owned by root or by the user reading it (uid %lu)",
                 what, path, (unsigned long) st->st_uid,
                 (unsigned long) geteuid());
        return -1;
    }

    return 0;
}


/*
 * What a file that is not the key asked for is, by its first bytes: a
 * printer's key file or a sealed package, in words for a message; NULL
 * if none of them.
 */
static const char *
cr_keyfile_kind(const uint8_t *p, size_t n)
{
    static const struct {
        const char  *start;
        const char  *kind;
    } kinds[] = {
        { "code-router printer secret key ",
          "a printer's secret key (code-router keygen --printer)" },
        { "code-router printer public key ",
          "a printer's public key (code-router keygen --printer)" },
        { CR_PRINTER_ANY_PREFIX,
          "a printer's key file (code-router keygen --printer)" },
        { CR_SEAL_MAGIC,
          "a sealed code package (code-router mint --seal-to)" },
    };

    size_t  i, len;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        len = strlen(kinds[i].start);

        if (n >= len && memcmp(p, kinds[i].start, len) == 0) {
            return kinds[i].kind;
        }
    }

    return NULL;
}


/*
 * A file read as a printer's key (its first line should be "want") that
 * is not one at all: a master key, a sealed package, or anything else,
 * each said as such.  A printer's key of the other half or another
 * version is left to the caller.  0 if it starts like a printer's key,
 * else -1 with "err".
 */
static int
cr_keyfile_not_printer(const char *path, const char *what,
    const uint8_t *buf, size_t n, const struct stat *st, const char *want,
    const char *wanted, char *err, size_t errlen)
{
    size_t       len;
    const char  *kind;

    len = sizeof(CR_PRINTER_ANY_PREFIX) - 1;

    if (n >= len && memcmp(buf, CR_PRINTER_ANY_PREFIX, len) == 0) {
        /* "code-router printer public key v2 ...": a later format. */
        len = CR_PRINTER_PREFIX_LEN - 3;

        if (n > len + 1 && buf[len] == 'v' && memcmp(buf, want, len) == 0
            && memcmp(buf, want, CR_PRINTER_PREFIX_LEN) != 0)
        {
            snprintf(err, errlen, "%s \"%s\" is %s of a version this "
                     "code-router does not read (it reads \"%s\")", what,
                     path, wanted, want);
            return -1;
        }

        return 0;
    }

    kind = cr_keyfile_kind(buf, n);

    if (kind != NULL) {
        snprintf(err, errlen, "%s \"%s\" is %s, not %s", what, path, kind,
                 wanted);
        return -1;
    }

    if (st->st_size == CR_MASTER_KEY_LEN) {
        snprintf(err, errlen, "%s \"%s\" is %d bytes without a printer "
                 "key's first line: a master key (code-router keygen), not "
                 "%s (code-router keygen --printer writes PRINTER.key and "
                 "PRINTER.pub)", what, path, CR_MASTER_KEY_LEN, wanted);
        return -1;
    }

    snprintf(err, errlen, "%s \"%s\" is not %s: it does not start with "
             "\"%s\" (code-router keygen --printer writes PRINTER.key and "
             "PRINTER.pub)", what, path, wanted, want);

    return -1;
}


/* 2n lower-case hex digits at s into out: 0, or -1. */
static int
cr_keyfile_hex(const uint8_t *s, uint8_t *out, size_t n)
{
    size_t    i;
    unsigned  hi, lo;

    for (i = 0; i < n; i++) {
        hi = cr_keyfile_nibble(s[2 * i]);
        lo = cr_keyfile_nibble(s[2 * i + 1]);

        if (hi > 15 || lo > 15) {
            return -1;
        }

        out[i] = (uint8_t) (hi << 4 | lo);
    }

    return 0;
}


static unsigned
cr_keyfile_nibble(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return (unsigned) (c - '0');
    }

    if (c >= 'a' && c <= 'f') {
        return (unsigned) (c - 'a' + 10);
    }

    return 16;
}


/*
 * Opens the file that "path" resolves to, from inside its directory, once
 * that directory is known not to be writable by group or others: whoever
 * can write it can rename another key into place.  The directory checked
 * is the one that holds the file actually opened (after every symbolic
 * link), and O_NOFOLLOW on the last step means nothing can swap a link in
 * between.  O_NONBLOCK: a FIFO put where the key belongs must be refused
 * (not a regular file), not hang "nginx -t" in open() for a writer.
 */
static int
cr_keyfile_open(const char *path, char *err, size_t errlen)
{
    int          dfd, fd;
    char        *real, *slash;
    const char  *dir, *base;
    struct stat  st;

    if (cr_keyfile_link_dir(path, err, errlen) != 0) {
        return -1;
    }

    real = realpath(path, NULL);
    if (real == NULL) {
        snprintf(err, errlen, "key file \"%s\": cannot open: %s",
                 path, strerror(errno));
        return -1;
    }

    /* realpath() gives an absolute path: there is always a slash. */
    slash = strrchr(real, '/');
    *slash = '\0';
    dir = (slash == real) ? "/" : real;
    base = slash + 1;

    fd = -1;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot open its directory "
                 "\"%s\": %s", path, dir, strerror(errno));
        goto done;
    }

    if (fstat(dfd, &st) == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot stat its directory "
                 "\"%s\": %s", path, dir, strerror(errno));
        goto done;
    }

    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "key file \"%s\" is in directory \"%s\" of "
                 "mode %04o: group and others must not be able to write "
                 "where a key is kept (chmod go-w %s, or move the key)",
                 path, dir, (unsigned) (st.st_mode & 07777), dir);
        goto done;
    }

    fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (fd == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot open: %s",
                 path, strerror(errno));
    }

done:

    if (dfd != -1) {
        close(dfd);
    }

    free(real);

    return fd;
}


/*
 * A key named through a symbolic link: whoever can write the link's
 * directory can point the link at another file, so that directory must
 * not be writable by group or others either.
 */
static int
cr_keyfile_link_dir(const char *path, char *err, size_t errlen)
{
    int           rc;
    char         *dir, *slash;
    struct stat   st;

    if (lstat(path, &st) == -1 || !S_ISLNK(st.st_mode)) {
        return 0;               /* realpath() reports what is wrong */
    }

    dir = strdup(path);
    if (dir == NULL) {
        snprintf(err, errlen, "key file \"%s\": out of memory", path);
        return -1;
    }

    slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");

    } else if (slash == dir) {
        slash[1] = '\0';

    } else {
        *slash = '\0';
    }

    rc = 0;

    if (stat(dir, &st) == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot stat its directory "
                 "\"%s\": %s", path, dir, strerror(errno));
        rc = -1;

    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "key file \"%s\" is a symbolic link in "
                 "directory \"%s\" of mode %04o: group and others must not "
                 "be able to write where a key is kept (chmod go-w %s)",
                 path, dir, (unsigned) (st.st_mode & 07777), dir);
        rc = -1;
    }

    free(dir);

    return rc;
}


void
cr_keyfile_digest(const uint8_t master[CR_MASTER_KEY_LEN],
    uint8_t digest[CR_MASTER_DIGEST_LEN])
{
    (void) crypto_generichash(digest, CR_MASTER_DIGEST_LEN, master,
                              CR_MASTER_KEY_LEN, NULL, 0);
}


int
cr_keyfile_create(const char *path, char *err, size_t errlen)
{
    int      rc;
    uint8_t  key[CR_MASTER_KEY_LEN];

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot initialise");
        return -1;
    }

    randombytes_buf(key, sizeof(key));
    rc = cr_keyfile_write(path, "key file", key, sizeof(key), 0600, err,
                          errlen);
    sodium_memzero(key, sizeof(key));

    return rc;
}


int
cr_keyfile_printer_create(const char *base, char *err, size_t errlen)
{
    int          rc;
    char         key[4096], pub[4096];
    char         text[CR_PRINTER_KEY_SIZE + 1];
    uint8_t      pk[CR_PRINTER_PK_LEN], sk[CR_PRINTER_SK_LEN];
    struct stat  st;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot initialise");
        return -1;
    }

    if ((size_t) snprintf(key, sizeof(key), "%s.key", base) >= sizeof(key)
        || (size_t) snprintf(pub, sizeof(pub), "%s.pub", base) >= sizeof(pub))
    {
        snprintf(err, errlen, "printer key file \"%s\": the name is too "
                 "long", base);
        return -1;
    }

    /* Neither file is written if either exists: a pair half new, half
     * old would open nothing. */
    if (lstat(pub, &st) == 0) {
        snprintf(err, errlen, "printer key file \"%s\": cannot create: %s "
                 "(refusing to overwrite a key)", pub, strerror(EEXIST));
        return -1;
    }

    if (errno != ENOENT) {
        snprintf(err, errlen, "printer key file \"%s\": cannot create: %s",
                 pub, strerror(errno));
        return -1;
    }

    crypto_box_keypair(pk, sk);

    memcpy(text, CR_PRINTER_KEY_PREFIX, CR_PRINTER_PREFIX_LEN);
    sodium_bin2hex(text + CR_PRINTER_PREFIX_LEN, 65, pk, sizeof(pk));
    text[CR_PRINTER_PREFIX_LEN + 64] = ' ';
    sodium_bin2hex(text + CR_PRINTER_PREFIX_LEN + 65, 65, sk, sizeof(sk));
    text[CR_PRINTER_KEY_SIZE - 1] = '\n';

    rc = cr_keyfile_write(key, "printer key file", (uint8_t *) text,
                          CR_PRINTER_KEY_SIZE, 0600, err, errlen);
    sodium_memzero(text, sizeof(text));
    sodium_memzero(sk, sizeof(sk));

    if (rc != 0) {
        return -1;
    }

    memcpy(text, CR_PRINTER_PUB_PREFIX, CR_PRINTER_PREFIX_LEN);
    sodium_bin2hex(text + CR_PRINTER_PREFIX_LEN, 65, pk, sizeof(pk));
    text[CR_PRINTER_PUB_SIZE - 1] = '\n';

    if (cr_keyfile_write(pub, "printer key file", (uint8_t *) text,
                         CR_PRINTER_PUB_SIZE, 0644, err, errlen)
        != 0)
    {
        unlink(key);
        return -1;
    }

    return 0;
}


/*
 * Creates "path" with "mode" (never overwriting: O_EXCL) holding data,
 * and fsyncs it; on failure removes it.  0, or -1 with "err".
 */
static int
cr_keyfile_write(const char *path, const char *what, const uint8_t *data,
    size_t len, mode_t mode, char *err, size_t errlen)
{
    int      fd;
    ssize_t  n;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd == -1) {
        snprintf(err, errlen, "%s \"%s\": cannot create: %s%s", what, path,
                 strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite a key)" : "");
        return -1;
    }

    /* The umask may have narrowed the mode, never widened it: a public
     * key is 0644 whatever the umask, a secret one 0600. */
    (void) fchmod(fd, mode);

    n = write(fd, data, len);

    if (n != (ssize_t) len || fsync(fd) == -1) {
        snprintf(err, errlen, "%s \"%s\": cannot write: %s", what, path,
                 n == -1 || n == (ssize_t) len ? strerror(errno)
                                               : "short write");
        close(fd);
        unlink(path);
        return -1;
    }

    if (close(fd) == -1) {
        snprintf(err, errlen, "%s \"%s\": cannot close: %s", what, path,
                 strerror(errno));
        unlink(path);
        return -1;
    }

    return 0;
}
