/*
 * cr_cli: what the code-router CLI's subcommands share.
 */

#ifndef CR_CLI_H
#define CR_CLI_H

#include <stdint.h>


#define CR_EXIT_OK          0
#define CR_EXIT_INVALID     1
#define CR_EXIT_USAGE       2
#define CR_EXIT_ENV         3

#define CR_URL_PREFIX_MAX   256


/* Prints "code-router CMD: message" to stderr and returns rc. */
int cr_cli_error(const char *cmd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The store commands, in cr_cli_store.c. */
int cr_cmd_load(int argc, char **argv);
int cr_cmd_dump(int argc, char **argv);
int cr_cmd_stat(int argc, char **argv);

/* Strict decimal: digits only, no sign, no blanks, at most max. */
int cr_cli_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif /* CR_CLI_H */
