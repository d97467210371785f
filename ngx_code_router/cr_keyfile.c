/*
 * cr_keyfile: see cr_keyfile.h.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_keyfile.h"


int
cr_keyfile_read(const char *path, uint8_t master[CR_MASTER_KEY_LEN],
    char *err, size_t errlen)
{
    int          fd;
    ssize_t      n;
    struct stat  st;
    uint8_t      buf[CR_MASTER_KEY_LEN + 1];

    /* O_NONBLOCK: a FIFO put where the key belongs must be refused below
     * (not a regular file), not hang "nginx -t" in open() for a writer.
     * It changes nothing for a regular file. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1) {
        snprintf(err, errlen, "key file \"%s\": cannot open: %s",
                 path, strerror(errno));
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
