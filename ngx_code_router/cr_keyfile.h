/*
 * cr_keyfile: reading and writing master key files.
 *
 * A key file holds exactly CR_MASTER_KEY_LEN (32) raw bytes and must not be
 * accessible by group or others (mode 0600 or 0400).  Pure C: shared by the
 * nginx module (read at configuration time, in the master) and the CLI.
 */

#ifndef CR_KEYFILE_H
#define CR_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "cr_codec.h"


/*
 * Reads a master key.  Returns 0, or -1 with a one-line message in "err"
 * naming the file and what is wrong: cannot open, not a regular file,
 * group/other access, wrong size.  The key is wiped from the stack copy.
 */
int cr_keyfile_read(const char *path, uint8_t master[CR_MASTER_KEY_LEN],
    char *err, size_t errlen);

/*
 * Creates "path" with mode 0600 (never overwriting: O_EXCL) holding a
 * fresh random master key, and fsyncs it.  Returns 0 or -1 with "err".
 */
int cr_keyfile_create(const char *path, char *err, size_t errlen);

#endif /* CR_KEYFILE_H */
