/*
 * cr_cli: what the code-router CLI's subcommands share.
 */

#ifndef CR_CLI_H
#define CR_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "cr_codec.h"
#include "cr_gs1.h"
#include "cr_store.h"


#define CR_EXIT_OK          0
#define CR_EXIT_INVALID     1
#define CR_EXIT_USAGE       2
#define CR_EXIT_ENV         3

#define CR_URL_PREFIX_MAX   256

/* Where the Debian package installs a document of docs/ (gzipped, as
 * dh_compress leaves files over 4 KiB): what help texts name. */
#define CR_DOC(name)  "/usr/share/doc/code-router/" name ".md.gz"


/* Prints "code-router CMD: message" to stderr and returns rc. */
int cr_cli_error(const char *cmd, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* code-router mint, in cr_cli_mint.c. */
int cr_cmd_mint(int argc, char **argv);

/* code-router unseal, in cr_cli_seal.c. */
int cr_cmd_unseal(int argc, char **argv);

/*
 * Where a command writes its output: stdout, or with a path a file that
 * appears whole or not at all.  cr_cli_out_open() refuses a path that
 * exists and opens a temporary file beside it (PATH.partial-XXXXXX, mode
 * 0600); cr_cli_out_commit() flushes, syncs, sets "mode" and links it to
 * the path (never over a file that appeared meanwhile);
 * cr_cli_out_discard() removes it.  Errors are printed as "code-router
 * CMD: ..."; both return CR_EXIT_OK or CR_EXIT_ENV.
 */
typedef struct {
    FILE        *f;
    const char  *path;          /* NULL: stdout */
    char         tmp[4096];
} cr_cli_out_t;

int cr_cli_out_open(const char *cmd, cr_cli_out_t *o, const char *path);
int cr_cli_out_commit(const char *cmd, cr_cli_out_t *o, unsigned mode);
void cr_cli_out_discard(cr_cli_out_t *o);

/* A cr_seal_out_pt writing to the FILE * ctx. */
int cr_cli_out_write(void *ctx, const uint8_t *p, size_t n);

/* The store commands, in cr_cli_store.c. */
int cr_cmd_load(int argc, char **argv);
int cr_cmd_dump(int argc, char **argv);
int cr_cmd_stat(int argc, char **argv);

/* Opens the store at db read-only, as nginx's workers do (so its lock
 * file is made group-writable), and reads its info; errors are printed as
 * "code-router CMD: ..." and returned as an exit code.  stat and
 * publish's check of a new version. */
int cr_cli_store_info(const char *cmd, const char *db,
    cr_store_info_t *info);

/* Prints info as "code-router stat" does. */
void cr_cli_print_info(FILE *f, const cr_store_info_t *info);

/* code-router ledger, in cr_cli_ledger.c. */
int cr_cmd_ledger(int argc, char **argv);

/* code-router scans, in cr_cli_scans.c; and stat of a scan store (its
 * kind and counts printed; an exit code). */
int cr_cmd_scans(int argc, char **argv);
int cr_cli_scans_stat(const char *db);

/* The store's content digest (cr_store_digest) as stat --digest and
 * publish print it, "digest" and 64 lower-case hex digits; and --digest's
 * argument back: 0, or -1 if it is not 64 hex digits. */
void cr_cli_print_digest(FILE *f, const uint8_t d[CR_STORE_DIGEST_LEN]);
int cr_cli_parse_digest(const char *s, uint8_t d[CR_STORE_DIGEST_LEN]);

/*
 * cr_store_digest() of st (the file at path), errors printed as
 * "code-router CMD: ...": CR_EXIT_OK, CR_EXIT_ENV, or CR_CLI_FAULTED if
 * reading a page faulted (a damaged file's page numbers point past its
 * end: SIGBUS, or into nonsense: SIGSEGV), which is caught and said:
 * then st must not be used again (not even closed); exit.
 */
#define CR_CLI_FAULTED  (-1)

int cr_cli_digest(const char *cmd, cr_store_t *st, const char *path,
    uint8_t d[CR_STORE_DIGEST_LEN], uint64_t *gen);

/* code-router publish, in cr_cli_publish.c. */
int cr_cmd_publish(int argc, char **argv);

/* GS1 Digital Link, in cr_cli_gs1.c (docs/gs1.md).  The longest prefix
 * cr_cli_gs1_prefix() writes: URL, /01/GTIN, /10/ and an encoded lot, /21/. */
#define CR_GS1_PREFIX_MAX  (CR_URL_PREFIX_MAX + 30 + CR_GS1_VALUE_ENC_MAX)

/* Writes URL (a trailing '/' dropped; scheme and host upper-cased) +
 * "/01/GTIN-14[/10/LOT]/21/" to out (size bytes, at least
 * CR_GS1_PREFIX_MAX + 1); returns CR_EXIT_OK, or CR_EXIT_USAGE after
 * printing why the GTIN, the lot or the URL cannot make a Digital Link.
 * Notes on stderr a character outside QR alphanumeric mode. */
int cr_cli_gs1_prefix(const char *url, const char *gtin, const char *lot,
    char *out, size_t size);

/* Fills *ring (zeroed first) with the keys the key file at path derives
 * for the key ids marked in kids[], or for all if listed is 0; 0, or -1
 * after printing why as "code-router CMD: ...". */
int cr_cli_keyring(const char *cmd, const char *path, const uint8_t *kids,
    int listed, cr_keyring_t *ring);

/* Strict decimal: digits only, no sign, no blanks, at most max. */
int cr_cli_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* --pin-digits' argument: CR_PIN_DIGITS_MIN .. CR_PIN_DIGITS_MAX into
 * *digits; 0, or -1 after printing why as "code-router CMD: ...". */
int cr_cli_parse_pin_digits(const char *cmd, const char *arg,
    unsigned *digits);

#endif /* CR_CLI_H */
