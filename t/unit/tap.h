/*
 * tap.h: the few TAP helpers the C unit tests need (prove reads them).
 */

#ifndef CR_TAP_H
#define CR_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int  tap_n, tap_failed;

static int
tap_ok(int cond, const char *fmt, ...)
{
    va_list  args;

    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    putchar('\n');
    fflush(stdout);

    if (!cond) {
        tap_failed++;
    }

    return cond;
}

static void
tap_diag(const char *fmt, ...)
{
    va_list  args;

    printf("# ");
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    putchar('\n');
}

static int
tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* CR_TAP_H */
