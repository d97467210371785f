/*
 * cr_pin: see cr_pin.h and docs/code-format.md ("The PIN").
 */

#include <string.h>

#include <sodium.h>

#include "cr_pin.h"


#define CR_PIN_HASH_BYTES  16       /* 128 bits: bias below 2^-88 */
#define CR_PIN_MSG_BYTES   9        /* ver, kid, BE40(serial), digits, i */

/* A KDF context of its own: the PIN key is never a code key. */
static const char cr_pin_kdf_ctx[crypto_kdf_CONTEXTBYTES] = {
    'C', 'R', 'P', 'I', 'N', '0', '0', '1'
};


int
cr_pin_key_derive(uint8_t k_pin[CR_SUBKEY_LEN], unsigned kid,
    const uint8_t master[CR_MASTER_KEY_LEN])
{
    if (kid > CR_KID_MAX || sodium_init() < 0
        || crypto_kdf_derive_from_key(k_pin, CR_SUBKEY_LEN, kid,
                                      cr_pin_kdf_ctx, master)
           != 0)
    {
        sodium_memzero(k_pin, CR_SUBKEY_LEN);
        return -1;
    }

    return 0;
}


int
cr_pin_compute(char *out, unsigned digits, const cr_key_t *key,
    uint64_t serial)
{
    int       i;
    unsigned  d;
    uint8_t   m[CR_PIN_MSG_BYTES], h[CR_PIN_HASH_BYTES];
    uint64_t  limb[4], t;

    if (digits < CR_PIN_DIGITS_MIN || digits > CR_PIN_DIGITS_MAX
        || serial > CR_SERIAL_MAX || !key->present)
    {
        return -1;
    }

    m[0] = CR_CODE_VERSION;
    m[1] = key->kid;
    m[2] = (uint8_t) (serial >> 32);
    m[3] = (uint8_t) (serial >> 24);
    m[4] = (uint8_t) (serial >> 16);
    m[5] = (uint8_t) (serial >> 8);
    m[6] = (uint8_t) serial;
    m[7] = (uint8_t) digits;

    /* 128 bits from two calls of SipHash-2-4, the code's own PRF. */
    m[8] = 0;
    crypto_shorthash_siphash24(h, m, sizeof(m), key->k_pin);
    m[8] = 1;
    crypto_shorthash_siphash24(h + 8, m, sizeof(m), key->k_pin);

    /* h as a big-endian 128-bit number, in four 32-bit limbs. */
    for (i = 0; i < 4; i++) {
        limb[i] = ((uint64_t) h[4 * i] << 24) | ((uint64_t) h[4 * i + 1] << 16)
                  | ((uint64_t) h[4 * i + 2] << 8) | h[4 * i + 3];
    }

    /*
     * floor(h * 10^D / 2^128), one digit at a time: h / 2^128 is a binary
     * fraction; times 10, its integer part is the next decimal digit.
     * Multiplications only, no division: the time does not depend on h.
     */
    for (d = 0; d < digits; d++) {
        t = 0;

        for (i = 3; i >= 0; i--) {
            t = limb[i] * 10 + (t >> 32);
            limb[i] = t & 0xffffffff;
        }

        out[d] = (char) ('0' + (t >> 32));
    }

    sodium_memzero(h, sizeof(h));
    sodium_memzero(limb, sizeof(limb));

    return 0;
}


int
cr_pin_well_formed(const char *pin, size_t len, unsigned digits)
{
    size_t  i;

    if (digits < CR_PIN_DIGITS_MIN || digits > CR_PIN_DIGITS_MAX
        || len != digits)
    {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (pin[i] < '0' || pin[i] > '9') {
            return 0;
        }
    }

    return 1;
}


cr_pin_rc_t
cr_pin_check(const cr_key_t *key, uint64_t serial, unsigned digits,
    const char *pin, size_t len)
{
    int   diff;
    char  want[CR_PIN_DIGITS_MAX];

    if (!cr_pin_well_formed(pin, len, digits)) {
        return CR_PIN_MALFORMED;
    }

    if (cr_pin_compute(want, digits, key, serial) != 0) {
        return CR_PIN_WRONG;
    }

    diff = sodium_memcmp(want, pin, digits);
    sodium_memzero(want, sizeof(want));

    return diff == 0 ? CR_PIN_OK : CR_PIN_WRONG;
}


const char *
cr_pin_rc_name(cr_pin_rc_t rc)
{
    switch (rc) {
    case CR_PIN_OK:
        return "ok";
    case CR_PIN_MALFORMED:
        return "malformed_pin";
    case CR_PIN_WRONG:
        return "wrong_pin";
    }

    return "wrong_pin";
}
