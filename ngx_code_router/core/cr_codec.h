/*
 * cr_codec: the code-router code format, written once.
 *
 * Pure C (libsodium only): linked by the nginx module, the CLI, the unit
 * tests and the fuzzers alike.  The format is specified in
 * docs/code-format.md; this header is its only implementation.
 *
 * A code is CR_CODE_LEN Crockford base32 characters carrying 90 bits:
 *
 *     ver (2) | kid (8) | c (40) | tag (40)
 *
 *     tag = first 40 bits of SipHash-2-4(k_mac, ver || kid || serial)
 *     c   = serial XOR first 40 bits of SipHash-2-4(k_enc, tag)
 *
 * where k_mac and k_enc are derived per key id from that key id's 32-byte
 * master key with crypto_kdf_derive_from_key() (one master key per key id:
 * nginx refuses one on two key ids).
 */

#ifndef CR_CODEC_H
#define CR_CODEC_H

#include <stddef.h>
#include <stdint.h>


#define CR_CODE_LEN         18
#define CR_CODE_VERSION     1
#define CR_KID_MAX          255
#define CR_SERIAL_BITS      40
#define CR_SERIAL_MAX       ((UINT64_C(1) << CR_SERIAL_BITS) - 1)
#define CR_MASTER_KEY_LEN   32
#define CR_SUBKEY_LEN       16
#define CR_KEY_FP_LEN       8


/*
 * The attributes of the cores' prototypes (gcc and clang), here because
 * every core header that needs them includes this one: CR_NONNULL where
 * every pointer argument is required, CR_MUST_CHECK where ignoring the
 * result would ignore a failure, a forgery or a wrong PIN.
 */
#define CR_NONNULL     __attribute__((nonnull))
#define CR_MUST_CHECK  __attribute__((warn_unused_result))


/* Outcome of cr_code_open(), in the order the checks are made. */
typedef enum {
    CR_CODE_OK = 0,
    CR_CODE_MALFORMED,      /* wrong length, alphabet or version */
    CR_CODE_UNKNOWN_KEY,    /* well formed, but no key for its key id */
    CR_CODE_FORGED          /* the authenticator does not match */
} cr_code_rc_t;


/* The derived keys of one key id.  Treat as opaque. */
typedef struct {
    uint8_t   k_mac[CR_SUBKEY_LEN];
    uint8_t   k_enc[CR_SUBKEY_LEN];
    uint8_t   k_pin[CR_SUBKEY_LEN];     /* the hidden PIN's: cr_pin.h */
    uint8_t   k_split[CR_SUBKEY_LEN];   /* campaign rules' split: cr_rules.h */
    uint8_t   k_addr[CR_SUBKEY_LEN];    /* hashed client addresses */
    uint8_t   fp[CR_KEY_FP_LEN];    /* names the key, not secret: scan
                                     * counts are keyed by it, so two keys
                                     * never share the count of a serial */
    uint8_t   kid;
    uint8_t   present;
    uint8_t   retired;      /* verifies, but its print run is retired */
} cr_key_t;


/* All key ids that are live at once, indexed by key id.  Zero it first. */
typedef struct {
    cr_key_t  keys[CR_KID_MAX + 1];
} cr_keyring_t;


/*
 * Derives the keys of key id "kid" (0..CR_KID_MAX) from a master key:
 * the code's two, the PIN's (cr_pin_key_derive()), the rules' split and
 * the scan record's address hash (KDF contexts of their own).  Returns 0, or -1
 * if kid is out of range or libsodium cannot initialise.  The same
 * master key gives independent keys for different key ids.  Also sets
 * key->fp, a fingerprint of (master, kid) from a KDF context of its own:
 * it reveals nothing of k_mac, k_enc or k_pin.
 */
int cr_key_derive(cr_key_t *key, unsigned kid,
    const uint8_t master[CR_MASTER_KEY_LEN]) CR_NONNULL;

/*
 * Adds a derived key to a keyring; returns 0, or -1 if its key id is
 * already present (two files for one key id is a configuration error).
 */
int cr_keyring_add(cr_keyring_t *ring, const cr_key_t *key) CR_NONNULL;

/* Wipes key material (sodium_memzero), e.g. before freeing. */
void cr_key_wipe(void *p, size_t len) CR_NONNULL;

/*
 * Writes the CR_CODE_LEN characters of the code for "serial" to "out"
 * (upper case, no terminating NUL).  Returns 0, or -1 if serial is above
 * CR_SERIAL_MAX.  Deterministic: one serial has exactly one code per key.
 */
int cr_code_seal(char out[CR_CODE_LEN], const cr_key_t *key,
    uint64_t serial) CR_NONNULL;

/*
 * Decodes and verifies "len" bytes at "s" (not NUL-terminated).  Accepts
 * lower case and the Crockford aliases I, L (for 1) and O (for 0); nothing
 * else.  On CR_CODE_OK sets *kid and *serial.  On CR_CODE_UNKNOWN_KEY and
 * CR_CODE_FORGED sets *kid (the claimed one) and leaves *serial alone.
 * The tag is compared in constant time; the work done does not depend on
 * how many tag bits are right.
 */
cr_code_rc_t cr_code_open(const cr_keyring_t *ring, const char *s,
    size_t len, unsigned *kid, uint64_t *serial) CR_NONNULL CR_MUST_CHECK;

/*
 * Writes the canonical spelling (upper case, no aliases) of a code that
 * cr_code_open() did not call CR_CODE_MALFORMED (with any keyring, an
 * empty one too: every other answer means the code decodes).  For any
 * other input the result is undefined.
 */
void cr_code_canonical(char out[CR_CODE_LEN], const char *in) CR_NONNULL;

/* "ok", "malformed", "unknown_key" or "forged". */
const char *cr_code_rc_name(cr_code_rc_t rc);

#endif /* CR_CODEC_H */
