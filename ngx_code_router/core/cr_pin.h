/*
 * cr_pin: the hidden PIN of a code (暗码), written once.
 *
 * Pure C (libsodium only): linked by the nginx module, the CLI and the
 * tests.  Specified in docs/code-format.md ("The PIN"); t/ref/pin.py
 * implements that text independently.
 *
 * The PIN is printed out of sight (under a scratch-off layer, inside the
 * package) and proves that whoever types it holds the item.  For a code
 * of key id kid and serial s, with D digits (CR_PIN_DIGITS_MIN ..
 * CR_PIN_DIGITS_MAX):
 *
 *     k_pin = crypto_kdf_derive_from_key(16, kid, "CRPIN001", master)
 *     m     = ver || kid || BE40(s) || D                   (8 bytes)
 *     h     = SipHash-2-4(k_pin, m || 0) || SipHash-2-4(k_pin, m || 1)
 *             (16 bytes, read as a big-endian 128-bit number)
 *     PIN   = floor(h * 10^D / 2^128): D decimal digits, leading zeros
 *
 * k_pin lives in cr_key_t (cr_codec.h), derived by cr_key_derive() with
 * the code's own keys: whoever holds a code's keys holds its PIN key too.
 */

#ifndef CR_PIN_H
#define CR_PIN_H

#include <stddef.h>
#include <stdint.h>

#include "cr_codec.h"


#define CR_PIN_DIGITS_MIN      6
#define CR_PIN_DIGITS_MAX      12
#define CR_PIN_DIGITS_DEFAULT  8


/* Outcome of cr_pin_check(). */
typedef enum {
    CR_PIN_OK = 0,
    CR_PIN_MALFORMED,       /* not exactly D ASCII digits: see below */
    CR_PIN_WRONG            /* well formed, but not this code's PIN */
} cr_pin_rc_t;


/*
 * Derives the PIN key of key id "kid" (0..CR_KID_MAX) from a master key,
 * under a KDF context of its own: independent of the code's tag and
 * encryption keys.  cr_key_derive() calls it; nothing else needs to.
 * Returns 0, or -1 if kid is out of range or libsodium fails (then
 * k_pin is zeroed).
 */
int cr_pin_key_derive(uint8_t k_pin[CR_SUBKEY_LEN], unsigned kid,
    const uint8_t master[CR_MASTER_KEY_LEN]) CR_NONNULL;

/*
 * Writes the "digits" ASCII digits of the PIN of "serial" under "key" to
 * "out" (leading zeros kept; no terminating NUL; nothing written past
 * out[digits - 1]).  Returns 0, or -1 (out untouched) if digits is not
 * CR_PIN_DIGITS_MIN .. CR_PIN_DIGITS_MAX, serial is above CR_SERIAL_MAX
 * or the key is not present.  Deterministic: one PIN per (key, serial,
 * digits); the PINs of one serial with different digit counts are
 * independent, so one length never reveals another.
 */
int cr_pin_compute(char *out, unsigned digits, const cr_key_t *key,
    uint64_t serial) CR_NONNULL;

/*
 * Is the "len" bytes at "pin" (not NUL-terminated) a well-formed PIN of
 * "digits" digits?  Well formed means exactly: len == digits, digits is
 * CR_PIN_DIGITS_MIN .. CR_PIN_DIGITS_MAX, and every byte is '0'..'9'.
 * Anything else is malformed: another length, a sign, whitespace
 * anywhere (leading, trailing, inside), separators, NUL, non-ASCII digits
 * (e.g. full-width "１").  Callers that want to forgive spaces strip them
 * first, in the open.  Returns 1 or 0.  Reads no key; its time depends on
 * the PIN's shape only, which is no secret.
 */
int cr_pin_well_formed(const char *pin, size_t len, unsigned digits)
    CR_NONNULL;

/*
 * Checks "len" bytes at "pin" against the PIN of "serial" (a serial that
 * cr_code_open() returned for a code of key->kid) with "digits" digits:
 * CR_PIN_MALFORMED if !cr_pin_well_formed(pin, len, digits), else
 * CR_PIN_OK or CR_PIN_WRONG.  The digits are compared in constant time
 * (sodium_memcmp over all of them): the time taken does not depend on
 * how many digits are right.  Fails closed: a key not present or a
 * serial above CR_SERIAL_MAX gives CR_PIN_WRONG.  "digits" is the
 * configured length, never the length of the PIN offered: deriving it
 * from the input would let a guesser choose the shortest PIN.
 */
cr_pin_rc_t cr_pin_check(const cr_key_t *key, uint64_t serial,
    unsigned digits, const char *pin, size_t len) CR_NONNULL CR_MUST_CHECK;

/* "ok", "malformed_pin" or "wrong_pin". */
const char *cr_pin_rc_name(cr_pin_rc_t rc);

#endif /* CR_PIN_H */
