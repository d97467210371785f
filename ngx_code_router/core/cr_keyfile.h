/*
 * cr_keyfile: reading and writing master key files.
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
 * Reads a master key.  Returns 0, or -1 with a one-line message in "err"
 * naming the file and what is wrong: cannot resolve or open, not a
 * regular file, group/other access, owner neither root nor geteuid(), a
 * directory writable by group or others, wrong size.  Symbolic links are
 * resolved first (realpath) and the directory checked is the one that
 * holds the file actually read: the file is opened relative to that
 * directory, without following a link, so the two cannot differ.  A path
 * that is itself a symbolic link also needs a directory that group and
 * others cannot write (they could re-point the link).  The key is wiped
 * from the stack copy.
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
 * A one-way digest (BLAKE2b-256) of a master key: tells whether two key
 * files hold the same key without keeping or logging the key itself.
 */
void cr_keyfile_digest(const uint8_t master[CR_MASTER_KEY_LEN],
    uint8_t digest[CR_MASTER_DIGEST_LEN]) CR_NONNULL;

#endif /* CR_KEYFILE_H */
