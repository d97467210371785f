/*
 * For the fuzzers of parsers that hand back pointers into their input:
 * abort() unless p[0..len) lies inside buf[0..size) (or p is NULL).
 */

#ifndef FUZZ_INSIDE_H
#define FUZZ_INSIDE_H

#include <stdlib.h>


static void
check_inside(const char *p, size_t len, const char *buf, size_t size)
{
    if (p != NULL && (p < buf || p + len > buf + size)) {
        abort();
    }
}

#endif /* FUZZ_INSIDE_H */
