/*
 * cr_keyfile: reading and writing key files: master keys, and printers'
 * key pairs for sealed code packages (cr_seal.h).
 *
 * A key file holds exactly CR_MASTER_KEY_LEN (32) raw bytes, must not be
 * accessible by group or others (mode 0600 or 0400), must be owned by root
 * or by the user reading it, and must sit in a directory that group and
 * others cannot write (whoever can write the directory can replace the
 * key).  Pure C: shared by the nginx module (read at configuration time,
 * in the master) and the CLI.
 */

#ifndef CR_KEYFILE_H
#define CR_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "cr_codec.h"


#define CR_MASTER_DIGEST_LEN  32

/*
 * A printer's key pair (libsodium crypto_box, X25519), one text line a
 * file, lower-case hex:
 *
 *     PRINTER.pub  "code-router printer public key v1 " PK "\n"
 *     PRINTER.key  "code-router printer secret key v1 " PK " " SK "\n"
 *
 * The secret key file is kept as a master key file is (mode 0600, the
 * same checks on reading); the public one is 0644, sent to the brand.
 */
#define CR_PRINTER_PUB_PREFIX  "code-router printer public key v1 "
#define CR_PRINTER_KEY_PREFIX  "code-router printer secret key v1 "
#define CR_PRINTER_ANY_PREFIX  "code-router printer "
#define CR_PRINTER_PREFIX_LEN  34
#define CR_PRINTER_PK_LEN      32
#define CR_PRINTER_SK_LEN      32
#define CR_PRINTER_PUB_SIZE    (CR_PRINTER_PREFIX_LEN + 64 + 1)
#define CR_PRINTER_KEY_SIZE    (CR_PRINTER_PREFIX_LEN + 64 + 1 + 64 + 1)


/*
 * Reads a master key.  Returns 0, or -1 with a one-line message in "err"
 * naming the file and what is wrong: cannot resolve or open, not a
 * regular file, group/other access, owner neither root nor geteuid(), a
 * directory writable by group or others, wrong size.  Symbolic links are
 * resolved first (realpath) and the directory checked is the one that
 * holds the file actually read: the file is opened relative to that
 * directory, without following a link, so the two cannot differ.  A path
 * that is itself a symbolic link also needs a directory that group and
 * others cannot write (they could re-point the link).  The key is wiped
 * from the stack copy.  A printer's key file or a sealed package given
 * as a master key is named as what it is.
 */
int cr_keyfile_read(const char *path, uint8_t master[CR_MASTER_KEY_LEN],
    char *err, size_t errlen) CR_NONNULL CR_MUST_CHECK;

/*
 * Creates "path" with mode 0600 (never overwriting: O_EXCL) holding a
 * fresh random master key, and fsyncs it.  Returns 0 or -1 with "err".
 */
int cr_keyfile_create(const char *path, char *err, size_t errlen)
    CR_NONNULL;

/*
 * Creates base.key (mode 0600) and base.pub (0644) holding a fresh
 * printer key pair, never overwriting either (neither is written if one
 * exists), and fsyncs them.  Returns 0 or -1 with "err".
 */
int cr_keyfile_printer_create(const char *base, char *err, size_t errlen);

/*
 * Reads a printer's secret key file (its public key with it) with every
 * check of cr_keyfile_read(), and checks that its halves belong together.
 * Returns 0, or -1 with "err": also naming a master key, a public key or
 * a sealed package given in its place.
 */
int cr_keyfile_printer_read(const char *path,
    uint8_t pk[CR_PRINTER_PK_LEN], uint8_t sk[CR_PRINTER_SK_LEN],
    char *err, size_t errlen);

/*
 * Reads a printer's public key file (a regular file; public, so no mode
 * checks).  Returns 0, or -1 with "err": also naming a master key, a
 * printer's secret key or a sealed package given in its place.
 */
int cr_keyfile_printer_read_public(const char *path,
    uint8_t pk[CR_PRINTER_PK_LEN], char *err, size_t errlen);

/*
 * A one-way digest (BLAKE2b-256) of a master key: tells whether two key
 * files hold the same key without keeping or logging the key itself.
 */
void cr_keyfile_digest(const uint8_t master[CR_MASTER_KEY_LEN],
    uint8_t digest[CR_MASTER_DIGEST_LEN]) CR_NONNULL;

#endif /* CR_KEYFILE_H */
