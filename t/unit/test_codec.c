/*
 * Unit tests of the code codec (cr_codec), TAP on stdout.
 *
 * Random inputs come from a fixed-seed splitmix64, so a failure replays.
 */

#include <stdint.h>
#include <string.h>

#include "cr_codec.h"
#include "tap.h"
#include "master.h"


static const char  alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t  rng_state = 0x2026112210330001ULL;


static uint64_t
rng(void)
{
    uint64_t  z;

    z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


/* The Crockford value of c, or -1: an oracle independent of the codec. */
static int
b32_value(int c)
{
    const char  *p;

    if (c == 'I' || c == 'i' || c == 'L' || c == 'l') {
        return 1;
    }

    if (c == 'O' || c == 'o') {
        return 0;
    }

    if (c >= 'a' && c <= 'z') {
        c -= 0x20;
    }

    p = c ? strchr(alphabet, c) : NULL;

    return p ? (int) (p - alphabet) : -1;
}


/*
 * Known answers: master key bytes 00 01 .. 1f.  docs/code-format.md and
 * t/ref/code_format.py reproduce these independently; if they change, the
 * format changed and every printed code in the field would break.
 */
static void
test_known_answers(void)
{
    int            i;
    char           out[CR_CODE_LEN + 1];
    uint8_t        master[CR_MASTER_KEY_LEN];
    cr_key_t       key;

    static const struct {
        unsigned     kid;
        uint64_t     serial;
        const char  *code;
    } kat[] = {
        { 1, 0, "81G9FDR1JM231DQJ7R" },
        { 1, 1, "81APQ0N03S0GSRVMZW" },
        { 1, 42, "81R5WV8F4QFEE5MWHS" },
        { 1, 1000000, "819NEVRWF6C88VD2V3" },
        { 1, CR_SERIAL_MAX, "817KWDJ6WKKN13HM4A" },
        { 0, 0, "80C2H51JS26VTF51M3" },
        { 255, 123456789012, "FZ1TK086JD0PK9WC7Z" },
    };

    make_master(master, 0);
    out[CR_CODE_LEN] = '\0';

    for (i = 0; i < (int) (sizeof(kat) / sizeof(kat[0])); i++) {
        cr_key_derive(&key, kat[i].kid, master);
        cr_code_seal(out, &key, kat[i].serial);
        tap_ok(strcmp(out, kat[i].code) == 0,
               "known answer kid %u serial %llu: %s (want %s)", kat[i].kid,
               (unsigned long long) kat[i].serial, out, kat[i].code);
    }
}


/* Seals and opens one serial; returns 1 on an exact round trip. */
static int
round_trip(const cr_keyring_t *ring, const cr_key_t *key, uint64_t serial)
{
    char          code[CR_CODE_LEN];
    unsigned      kid;
    uint64_t      got;
    cr_code_rc_t  rc;

    if (cr_code_seal(code, key, serial) != 0) {
        return 0;
    }

    got = ~serial;
    rc = cr_code_open(ring, code, CR_CODE_LEN, &kid, &got);

    return rc == CR_CODE_OK && kid == key->kid && got == serial;
}


static void
test_round_trip(const cr_keyring_t *ring, const cr_key_t *key)
{
    int       k;
    long      bad, n;
    uint64_t  s;

    bad = n = 0;

    for (s = 0; s < 1000000; s++, n++) {
        bad += !round_trip(ring, key, s);
    }

    tap_ok(bad == 0, "round trip of serials 0..999999 (%ld bad)", bad);

    bad = 0;

    for (s = CR_SERIAL_MAX - 999999; ; s++, n++) {
        bad += !round_trip(ring, key, s);
        if (s == CR_SERIAL_MAX) {
            break;
        }
    }

    tap_ok(bad == 0, "round trip of the last 1000000 serials (%ld bad)", bad);

    bad = 0;

    for (k = 0; k < CR_SERIAL_BITS; k++) {
        s = UINT64_C(1) << k;
        bad += !round_trip(ring, key, s - 1) + !round_trip(ring, key, s)
               + !round_trip(ring, key, s + 1);
        n += 3;
    }

    tap_ok(bad == 0, "round trip around every power of two (%ld bad)", bad);

    bad = 0;

    for (k = 0; k < 1000000; k++, n++) {
        bad += !round_trip(ring, key, rng() & CR_SERIAL_MAX);
    }

    tap_ok(bad == 0, "round trip of 1000000 random serials (%ld bad)", bad);
    tap_diag("%ld serials round-tripped", n);
}


static void
test_limits(const cr_key_t *key)
{
    char          code[CR_CODE_LEN];
    uint8_t       master[CR_MASTER_KEY_LEN];
    cr_key_t      k2;
    cr_keyring_t  ring;

    make_master(master, 0);

    tap_ok(cr_code_seal(code, key, CR_SERIAL_MAX + 1) == -1,
           "seal refuses serial 2^40");
    tap_ok(cr_key_derive(&k2, CR_KID_MAX + 1, master) == -1,
           "derive refuses key id 256");

    memset(&ring, 0, sizeof(ring));
    tap_ok(cr_keyring_add(&ring, key) == 0, "keyring takes a key id");
    tap_ok(cr_keyring_add(&ring, key) == -1,
           "keyring refuses the same key id twice");
}


static void
test_case_and_aliases(const cr_keyring_t *ring, const cr_key_t *key)
{
    int           i, bad, n;
    char          code[CR_CODE_LEN], alt[CR_CODE_LEN];
    unsigned      kid;
    uint64_t      serial, got;

    bad = n = 0;

    for (serial = 0; serial < 20000; serial++) {
        cr_code_seal(code, key, serial * 7919);

        /* lower case, and a random mix of cases and aliases */
        for (i = 0; i < CR_CODE_LEN; i++) {
            alt[i] = (code[i] >= 'A' && code[i] <= 'Z') ? code[i] | 0x20
                                                        : code[i];
        }

        bad += cr_code_open(ring, alt, CR_CODE_LEN, &kid, &got) != CR_CODE_OK
               || got != serial * 7919;

        for (i = 0; i < CR_CODE_LEN; i++) {
            alt[i] = code[i];

            if (code[i] == '1' && (rng() & 1)) {
                alt[i] = "IiLl"[rng() & 3];
                n++;
            } else if (code[i] == '0' && (rng() & 1)) {
                alt[i] = "Oo"[rng() & 1];
                n++;
            } else if (code[i] >= 'A' && (rng() & 1)) {
                alt[i] = code[i] | 0x20;
            }
        }

        bad += cr_code_open(ring, alt, CR_CODE_LEN, &kid, &got) != CR_CODE_OK
               || got != serial * 7919;
    }

    tap_ok(bad == 0, "lower case, mixed case and I/L/O aliases decode to the"
           " same serial (%d bad, %d aliases tried)", bad, n);
}


/*
 * Every change of one character to a character of another value (or to
 * any byte outside the alphabet) must be rejected.
 */
static void
test_single_char_changes(const cr_keyring_t *ring, const cr_key_t *key)
{
    int           pos, b, orig;
    long          accepted, tried;
    char          code[CR_CODE_LEN];
    unsigned      kid;
    uint64_t      serial, got, i;

    accepted = tried = 0;

    for (i = 0; i < 500; i++) {
        serial = rng() & CR_SERIAL_MAX;
        cr_code_seal(code, key, serial);

        for (pos = 0; pos < CR_CODE_LEN; pos++) {
            orig = code[pos];

            for (b = 0; b < 256; b++) {
                if (b32_value(b) == b32_value(orig)) {
                    continue;   /* the same code, spelt otherwise */
                }

                code[pos] = (char) b;
                tried++;

                if (cr_code_open(ring, code, CR_CODE_LEN, &kid, &got)
                    == CR_CODE_OK)
                {
                    accepted++;
                }
            }

            code[pos] = (char) orig;
        }
    }

    tap_ok(accepted == 0, "%ld single-character changes: %ld accepted",
           tried, accepted);
}


static void
test_random_strings(const cr_keyring_t *ring)
{
    int           i;
    long          accepted, forged, n;
    char          code[CR_CODE_LEN];
    unsigned      kid;
    uint64_t      got, r;
    cr_code_rc_t  rc;

    accepted = forged = 0;

    /* Version 1 and key id 1 or 2 (both live), so every string reaches
     * the authenticator check: the real test of 2^-40 forgery odds. */
    for (n = 0; n < 1000000; n++) {
        code[0] = '8';
        code[1] = (rng() & 1) ? '1' : '2';

        r = rng();
        for (i = 2; i < CR_CODE_LEN; i++) {
            if (i == 10) {
                r = rng();
            }
            code[i] = alphabet[r & 31];
            r >>= 5;
        }

        rc = cr_code_open(ring, code, CR_CODE_LEN, &kid, &got);
        accepted += rc == CR_CODE_OK;
        forged += rc == CR_CODE_FORGED;
    }

    tap_ok(accepted == 0 && forged == n,
           "1000000 random well-formed strings: %ld accepted, %ld forged",
           accepted, forged);

    accepted = 0;

    for (n = 0; n < 1000000; n++) {
        for (i = 0; i < CR_CODE_LEN; i++) {
            code[i] = (char) (rng() & 0xff);
        }

        accepted += cr_code_open(ring, code, CR_CODE_LEN, &kid, &got)
                    == CR_CODE_OK;
    }

    tap_ok(accepted == 0, "1000000 random byte strings: %ld accepted",
           accepted);
}


static void
test_malformed(const cr_keyring_t *ring, const cr_key_t *key)
{
    int           bad;
    char          code[CR_CODE_LEN], buf[64];
    size_t        len;
    unsigned      kid;
    uint64_t      got;

    cr_code_seal(code, key, 12345);
    bad = 0;

    for (len = 0; len < sizeof(buf); len++) {
        if (len == CR_CODE_LEN) {
            continue;
        }
        memset(buf, '0', sizeof(buf));
        memcpy(buf, code, len < CR_CODE_LEN ? len : CR_CODE_LEN);
        bad += cr_code_open(ring, buf, len, &kid, &got) != CR_CODE_MALFORMED;
    }

    tap_ok(bad == 0, "every length but %d is malformed", CR_CODE_LEN);

    memcpy(buf, code, CR_CODE_LEN);
    buf[0] = '0';   /* version 0 */
    tap_ok(cr_code_open(ring, buf, CR_CODE_LEN, &kid, &got)
           == CR_CODE_MALFORMED, "version 0 is malformed");
    buf[0] = 'G';   /* version 2 */
    tap_ok(cr_code_open(ring, buf, CR_CODE_LEN, &kid, &got)
           == CR_CODE_MALFORMED, "version 2 is malformed");

    memcpy(buf, code, CR_CODE_LEN);
    buf[5] = 'U';
    tap_ok(cr_code_open(ring, buf, CR_CODE_LEN, &kid, &got)
           == CR_CODE_MALFORMED, "U (not in Crockford's alphabet) is "
           "malformed");
    buf[5] = '\0';
    tap_ok(cr_code_open(ring, buf, CR_CODE_LEN, &kid, &got)
           == CR_CODE_MALFORMED, "an embedded NUL is malformed");
    buf[5] = '-';
    tap_ok(cr_code_open(ring, buf, CR_CODE_LEN, &kid, &got)
           == CR_CODE_MALFORMED, "a hyphen is malformed");
}


static void
test_keys(const cr_key_t *key1)
{
    char          code[CR_CODE_LEN];
    uint8_t       master[CR_MASTER_KEY_LEN];
    unsigned      kid;
    uint64_t      got;
    cr_key_t      other, k2;
    cr_keyring_t  ring;

    memset(&ring, 0, sizeof(ring));
    cr_keyring_add(&ring, key1);
    cr_code_seal(code, key1, 777);

    /* Key id 3 not in the ring. */
    make_master(master, 0);
    cr_key_derive(&k2, 3, master);
    cr_code_seal(code, &k2, 777);
    kid = 0;
    tap_ok(cr_code_open(&ring, code, CR_CODE_LEN, &kid, &got)
           == CR_CODE_UNKNOWN_KEY && kid == 3,
           "a code of an absent key id is unknown_key, kid reported");

    /* Same key id, another master key. */
    make_master(master, 100);
    cr_key_derive(&other, key1->kid, master);
    cr_code_seal(code, &other, 777);
    tap_ok(cr_code_open(&ring, code, CR_CODE_LEN, &kid, &got)
           == CR_CODE_FORGED, "a code of another master key is forged");

    /* Same master, another key id: independent keys, so moving a code's
     * key id field to a live key id does not verify. */
    memset(&ring, 0, sizeof(ring));
    cr_keyring_add(&ring, key1);
    make_master(master, 0);
    cr_key_derive(&k2, 2, master);
    cr_keyring_add(&ring, &k2);
    cr_code_seal(code, key1, 777);
    code[1] = '2';
    tap_ok(cr_code_open(&ring, code, CR_CODE_LEN, &kid, &got)
           == CR_CODE_FORGED, "a key id field changed to another live one is"
           " forged");
    tap_ok(memcmp(key1->k_mac, k2.k_mac, CR_SUBKEY_LEN) != 0
           && memcmp(key1->k_enc, k2.k_enc, CR_SUBKEY_LEN) != 0
           && memcmp(key1->k_mac, key1->k_enc, CR_SUBKEY_LEN) != 0,
           "subkeys differ per key id and per purpose");
}


/*
 * Opacity: over consecutive serials, each of the 80 bits of c and tag is
 * set about half the time.  An unmasked serial would show in c's high
 * bits (always 0 here).
 */
static void
test_opaque(const cr_key_t *key)
{
    int       i, worst_bit, v;
    long      ones[80], worst, n;
    char      code[CR_CODE_LEN];
    uint64_t  s;

    memset(ones, 0, sizeof(ones));
    n = 100000;

    for (s = 0; s < (uint64_t) n; s++) {
        cr_code_seal(code, key, s);

        for (i = 0; i < 80; i++) {
            v = b32_value(code[2 + i / 5]);
            ones[i] += (v >> (4 - i % 5)) & 1;
        }
    }

    worst = 0;
    worst_bit = 0;

    for (i = 0; i < 80; i++) {
        if (labs(ones[i] - n / 2) > worst) {
            worst = labs(ones[i] - n / 2);
            worst_bit = i;
        }
    }

    /* 6 sigma of a fair coin over 100000 draws is about 950. */
    tap_ok(worst < 1000, "codes of serials 0..99999 look random: worst bit "
           "%d off balance by %ld of %ld", worst_bit, worst, n);
}


int
main(void)
{
    uint8_t       master[CR_MASTER_KEY_LEN];
    cr_key_t      key1, key2;
    cr_keyring_t  ring;

    make_master(master, 0);
    cr_key_derive(&key1, 1, master);
    cr_key_derive(&key2, 2, master);
    memset(&ring, 0, sizeof(ring));
    cr_keyring_add(&ring, &key1);
    cr_keyring_add(&ring, &key2);

    test_known_answers();
    test_limits(&key1);
    test_round_trip(&ring, &key1);
    test_case_and_aliases(&ring, &key1);
    test_single_char_changes(&ring, &key1);
    test_random_strings(&ring);
    test_malformed(&ring, &key1);
    test_keys(&key1);
    test_opaque(&key1);

    return tap_done();
}
