/*
 * corrupt-write.so: an LD_PRELOAD shim for t/47-store-files.t, a copy
 * damaged on its way to the disk.  A write(2) to a file whose path holds
 * $CR_CORRUPT_NAME and whose bytes cover offset $CR_CORRUPT_AT is written
 * with the 4 bytes there changed (XOR 0xa5); every other write, and the
 * caller's buffer, are left alone.  Never in production: a test helper.
 */

#define _GNU_SOURCE             /* RTLD_NEXT */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>


typedef ssize_t (*write_pt)(int fd, const void *buf, size_t n);


ssize_t
write(int fd, const void *buf, size_t n)
{
    char                 link[64], path[4096];
    char                *copy;
    off_t                off;
    size_t               i;
    ssize_t              len, rc;
    const char          *name, *at;
    unsigned long long   a;

    static write_pt  real;

    if (real == NULL) {
        real = (write_pt) dlsym(RTLD_NEXT, "write");
    }

    name = getenv("CR_CORRUPT_NAME");
    at = getenv("CR_CORRUPT_AT");

    if (name == NULL || at == NULL || n < 4) {
        return real(fd, buf, n);
    }

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    len = readlink(link, path, sizeof(path) - 1);

    if (len <= 0) {
        return real(fd, buf, n);
    }

    path[len] = '\0';
    off = lseek(fd, 0, SEEK_CUR);
    a = strtoull(at, NULL, 10);

    if (strstr(path, name) == NULL || off < 0
        || a < (unsigned long long) off
        || a + 4 > (unsigned long long) off + n)
    {
        return real(fd, buf, n);
    }

    copy = malloc(n);
    if (copy == NULL) {
        return real(fd, buf, n);
    }

    memcpy(copy, buf, n);

    for (i = 0; i < 4; i++) {
        copy[a - (unsigned long long) off + i] ^= (char) 0xa5;
    }

    rc = real(fd, copy, n);
    free(copy);

    return rc;
}
