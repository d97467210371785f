/*
 * cr_codec: see cr_codec.h and docs/code-format.md.
 */

#include <string.h>

#include <sodium.h>

#include "cr_codec.h"
#include "cr_pin.h"


#define CR_TAG_BYTES    5
#define CR_HDR_CHARS    2
#define CR_FIELD_CHARS  8

/* Domain-separation context of the key derivation: 8 bytes, no NUL. */
static const char cr_kdf_ctx[crypto_kdf_CONTEXTBYTES] = {
    'C', 'R', 'C', 'O', 'D', 'E', '0', '1'
};

/* ... and of the fingerprint (cr_key_t.fp), never a code's keys. */
static const char cr_fp_ctx[crypto_kdf_CONTEXTBYTES] = {
    'C', 'R', 'S', 'C', 'A', 'N', 'F', 'P'
};

/* ... of the rules' split and of hashed addresses: neither reveals
 * anything of the code's keys, nor of each other. */
static const char cr_split_ctx[crypto_kdf_CONTEXTBYTES] = {
    'C', 'R', 'S', 'P', 'L', 'I', 'T', '1'
};

static const char cr_addr_ctx[crypto_kdf_CONTEXTBYTES] = {
    'C', 'R', 'A', 'D', 'D', 'R', 'H', '1'
};

static const char cr_b32_alphabet[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/*
 * Crockford decode table, value + 1 (0: not in the alphabet).  Lower case
 * and the aliases I, L (for 1) and O (for 0) decode too.
 */
static const uint8_t cr_b32_value[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6,
    ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10, ['A'] = 11, ['a'] = 11,
    ['B'] = 12, ['b'] = 12, ['C'] = 13, ['c'] = 13, ['D'] = 14, ['d'] = 14,
    ['E'] = 15, ['e'] = 15, ['F'] = 16, ['f'] = 16, ['G'] = 17, ['g'] = 17,
    ['H'] = 18, ['h'] = 18, ['J'] = 19, ['j'] = 19, ['K'] = 20, ['k'] = 20,
    ['M'] = 21, ['m'] = 21, ['N'] = 22, ['n'] = 22, ['P'] = 23, ['p'] = 23,
    ['Q'] = 24, ['q'] = 24, ['R'] = 25, ['r'] = 25, ['S'] = 26, ['s'] = 26,
    ['T'] = 27, ['t'] = 27, ['V'] = 28, ['v'] = 28, ['W'] = 29, ['w'] = 29,
    ['X'] = 30, ['x'] = 30, ['Y'] = 31, ['y'] = 31, ['Z'] = 32, ['z'] = 32,
    ['I'] = 2, ['i'] = 2, ['L'] = 2, ['l'] = 2, ['O'] = 1, ['o'] = 1
};


static void cr_put40(uint8_t *p, uint64_t v);
static uint64_t cr_prf40(const uint8_t k[CR_SUBKEY_LEN], const uint8_t *m,
    size_t len);
static uint64_t cr_tag(const cr_key_t *key, uint64_t serial);
static uint64_t cr_mask(const cr_key_t *key, uint64_t tag);
static void cr_b32_put(char *out, uint64_t v, int nchars);
static int cr_b32_get(const char *s, int nchars, uint64_t *v);


int
cr_key_derive(cr_key_t *key, unsigned kid,
    const uint8_t master[CR_MASTER_KEY_LEN])
{
    uint8_t  fp[crypto_kdf_BYTES_MIN];

    if (kid > CR_KID_MAX || sodium_init() < 0) {
        return -1;
    }

    memset(key, 0, sizeof(cr_key_t));

    /* Subkey ids 2*kid and 2*kid+1: one pair per key id, never shared. */
    if (crypto_kdf_derive_from_key(key->k_mac, CR_SUBKEY_LEN,
                                   (uint64_t) kid * 2, cr_kdf_ctx, master)
        != 0
        || crypto_kdf_derive_from_key(key->k_enc, CR_SUBKEY_LEN,
                                      (uint64_t) kid * 2 + 1, cr_kdf_ctx,
                                      master)
           != 0
        || cr_pin_key_derive(key->k_pin, kid, master) != 0
        || crypto_kdf_derive_from_key(fp, sizeof(fp), kid, cr_fp_ctx,
                                      master)
           != 0
        || crypto_kdf_derive_from_key(key->k_split, CR_SUBKEY_LEN, kid,
                                      cr_split_ctx, master)
           != 0
        || crypto_kdf_derive_from_key(key->k_addr, CR_SUBKEY_LEN, kid,
                                      cr_addr_ctx, master)
           != 0)
    {
        sodium_memzero(key, sizeof(cr_key_t));
        return -1;
    }

    memcpy(key->fp, fp, CR_KEY_FP_LEN);

    key->kid = (uint8_t) kid;
    key->present = 1;

    return 0;
}


int
cr_keyring_add(cr_keyring_t *ring, const cr_key_t *key)
{
    if (!key->present || ring->keys[key->kid].present) {
        return -1;
    }

    ring->keys[key->kid] = *key;

    return 0;
}


void
cr_key_wipe(void *p, size_t len)
{
    sodium_memzero(p, len);
}


int
cr_code_seal(char out[CR_CODE_LEN], const cr_key_t *key, uint64_t serial)
{
    uint64_t  tag, c;

    if (serial > CR_SERIAL_MAX || !key->present) {
        return -1;
    }

    tag = cr_tag(key, serial);
    c = serial ^ cr_mask(key, tag);

    cr_b32_put(out, ((uint64_t) CR_CODE_VERSION << 8) | key->kid,
               CR_HDR_CHARS);
    cr_b32_put(out + CR_HDR_CHARS, c, CR_FIELD_CHARS);
    cr_b32_put(out + CR_HDR_CHARS + CR_FIELD_CHARS, tag, CR_FIELD_CHARS);

    return 0;
}


cr_code_rc_t
cr_code_open(const cr_keyring_t *ring, const char *s, size_t len,
    unsigned *kid, uint64_t *serial)
{
    uint8_t          got[CR_TAG_BYTES], want[CR_TAG_BYTES];
    uint64_t         hdr, c, tag, sn;
    const cr_key_t  *key;

    if (len != CR_CODE_LEN) {
        return CR_CODE_MALFORMED;
    }

    if (cr_b32_get(s, CR_HDR_CHARS, &hdr) != 0
        || cr_b32_get(s + CR_HDR_CHARS, CR_FIELD_CHARS, &c) != 0
        || cr_b32_get(s + CR_HDR_CHARS + CR_FIELD_CHARS, CR_FIELD_CHARS,
                      &tag)
           != 0
        || (hdr >> 8) != CR_CODE_VERSION)
    {
        return CR_CODE_MALFORMED;
    }

    *kid = (unsigned) (hdr & 0xff);
    key = &ring->keys[*kid];

    if (!key->present) {
        return CR_CODE_UNKNOWN_KEY;
    }

    sn = c ^ cr_mask(key, tag);

    cr_put40(got, tag);
    cr_put40(want, cr_tag(key, sn));

    if (sodium_memcmp(got, want, CR_TAG_BYTES) != 0) {
        return CR_CODE_FORGED;
    }

    *serial = sn;

    return CR_CODE_OK;
}


void
cr_code_canonical(char out[CR_CODE_LEN], const char *in)
{
    int  i;

    for (i = 0; i < CR_CODE_LEN; i++) {
        out[i] = cr_b32_alphabet[(cr_b32_value[(uint8_t) in[i]] - 1) & 31];
    }
}


const char *
cr_code_rc_name(cr_code_rc_t rc)
{
    switch (rc) {
    case CR_CODE_OK:
        return "ok";
    case CR_CODE_MALFORMED:
        return "malformed";
    case CR_CODE_UNKNOWN_KEY:
        return "unknown_key";
    case CR_CODE_FORGED:
        return "forged";
    }

    return "malformed";
}


static void
cr_put40(uint8_t *p, uint64_t v)
{
    p[0] = (uint8_t) (v >> 32);
    p[1] = (uint8_t) (v >> 24);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 8);
    p[4] = (uint8_t) v;
}


/* The first 40 bits (first 5 output bytes, big-endian) of SipHash-2-4. */
static uint64_t
cr_prf40(const uint8_t k[CR_SUBKEY_LEN], const uint8_t *m, size_t len)
{
    uint8_t  h[crypto_shorthash_siphash24_BYTES];

    crypto_shorthash_siphash24(h, m, len, k);

    return ((uint64_t) h[0] << 32) | ((uint64_t) h[1] << 24)
           | ((uint64_t) h[2] << 16) | ((uint64_t) h[3] << 8) | h[4];
}


static uint64_t
cr_tag(const cr_key_t *key, uint64_t serial)
{
    uint8_t  m[2 + CR_TAG_BYTES];

    m[0] = CR_CODE_VERSION;
    m[1] = key->kid;
    cr_put40(m + 2, serial);

    return cr_prf40(key->k_mac, m, sizeof(m));
}


static uint64_t
cr_mask(const cr_key_t *key, uint64_t tag)
{
    uint8_t  m[CR_TAG_BYTES];

    cr_put40(m, tag);

    return cr_prf40(key->k_enc, m, sizeof(m));
}


static void
cr_b32_put(char *out, uint64_t v, int nchars)
{
    int  i;

    for (i = nchars - 1; i >= 0; i--) {
        out[i] = cr_b32_alphabet[v & 31];
        v >>= 5;
    }
}


static int
cr_b32_get(const char *s, int nchars, uint64_t *v)
{
    int       i;
    uint8_t   d;
    uint64_t  r;

    r = 0;

    for (i = 0; i < nchars; i++) {
        d = cr_b32_value[(uint8_t) s[i]];

        if (d == 0) {
            return -1;
        }

        r = (r << 5) | (uint64_t) (d - 1);
    }

    *v = r;

    return 0;
}
