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


static int cr_keyfile_open(const char *path, char *err, size_t errlen);
static int cr_keyfile_link_dir(const char *path, char *err, size_t errlen);


int
cr_keyfile_read(const char *path, uint8_t master[CR_MASTER_KEY_LEN],
    char *err, size_t errlen)
{
    int          fd;
    ssize_t      n;
    struct stat  st;
    uint8_t      buf[CR_MASTER_KEY_LEN + 1];

    fd = cr_keyfile_open(path, err, errlen);
    if (fd == -1) {
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot stat: %s",
                 path, strerror(errno));
        goto failed;
    }

    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file \"%s\" is not a regular file", path);
        goto failed;
    }

    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "key file \"%s\" has mode %04o: group and "
                 "others must have no access (chmod 600 %s)",
                 path, (unsigned) (st.st_mode & 07777), path);
        goto failed;
    }

    /* Whoever owns the file can chmod it and rewrite it: only root and
     * the user reading it (nginx's master, the CLI's user) may. */
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "key file \"%s\" is owned by uid %lu: a key "
                 "must be owned by root or by the user reading it (uid %lu)",
                 path, (unsigned long) st.st_uid, (unsigned long) geteuid());
        goto failed;
    }

    /* Read one byte more than a key, so that a longer file is caught. */
    n = read(fd, buf, sizeof(buf));

    if (n == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot read: %s",
                 path, strerror(errno));
        goto failed;
    }

    if (n != CR_MASTER_KEY_LEN || st.st_size != CR_MASTER_KEY_LEN) {
        snprintf(err, errlen, "key file \"%s\" is %lld bytes: a master key "
                 "is exactly %d bytes (make one with: code-router keygen)",
                 path, (long long) st.st_size, CR_MASTER_KEY_LEN);
        sodium_memzero(buf, sizeof(buf));
        goto failed;
    }

    memcpy(master, buf, CR_MASTER_KEY_LEN);
    sodium_memzero(buf, sizeof(buf));
    close(fd);

    return 0;

failed:

    close(fd);
    return -1;
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
    int      fd;
    ssize_t  n;
    uint8_t  key[CR_MASTER_KEY_LEN];

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot initialise");
        return -1;
    }

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot create: %s%s", path,
                 strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite a key)" : "");
        return -1;
    }

    /* The umask may have narrowed 0600 but never widened it; make sure. */
    (void) fchmod(fd, 0600);

    randombytes_buf(key, sizeof(key));
    n = write(fd, key, sizeof(key));
    sodium_memzero(key, sizeof(key));

    if (n != (ssize_t) sizeof(key) || fsync(fd) == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot write: %s", path,
                 n == -1 || n == (ssize_t) sizeof(key) ? strerror(errno)
                                                      : "short write");
        close(fd);
        unlink(path);
        return -1;
    }

    if (close(fd) == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot close: %s", path,
                 strerror(errno));
        unlink(path);
        return -1;
    }

    return 0;
}
