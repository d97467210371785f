/*
 * Unit tests of the hidden PIN (cr_pin), TAP on stdout.
 *
 * Serials spread over the whole 40-bit range by a fixed golden-ratio
 * step, so a failure replays.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cr_codec.h"
#include "cr_pin.h"
#include "tap.h"
#include "master.h"


#define SPREAD(i)  ((((uint64_t) (i) + 1) * 0x9e3779b97f4a7c15ULL) >> 24)


/*
 * Known answers: master key bytes 00 01 .. 1f.  docs/code-format.md
 * lists some; t/ref/pin.py computes them all from the document alone.  If
 * they change, every PIN printed under a scratch-off layer is wrong.
 */
static void
test_known_answers(void)
{
    int       i;
    char      out[CR_PIN_DIGITS_MAX + 1];
    uint8_t   master[CR_MASTER_KEY_LEN];
    cr_key_t  key;

    static const struct {
        unsigned     kid;
        unsigned     digits;
        uint64_t     serial;
        const char  *pin;
    } kat[] = {
        { 0, 6, 0, "000684" },
        { 0, 6, 1, "924331" },
        { 0, 6, CR_SERIAL_MAX, "395565" },
        { 0, 8, 0, "57768296" },
        { 0, 8, 1, "05452617" },
        { 0, 8, CR_SERIAL_MAX, "89346935" },
        { 0, 12, 0, "598372574657" },
        { 0, 12, 1, "505743810383" },
        { 0, 12, CR_SERIAL_MAX, "077595715665" },
        { 1, 6, 0, "186355" },
        { 1, 6, 1, "079150" },
        { 1, 6, CR_SERIAL_MAX, "658282" },
        { 1, 8, 0, "88901433" },
        { 1, 8, 1, "57408983" },
        { 1, 8, CR_SERIAL_MAX, "60828112" },
        { 1, 12, 0, "292457461217" },
        { 1, 12, 1, "299471081265" },
        { 1, 12, CR_SERIAL_MAX, "420439851114" },
        { 255, 6, 0, "418788" },
        { 255, 6, 1, "868418" },
        { 255, 6, CR_SERIAL_MAX, "190226" },
        { 255, 8, 0, "92131645" },
        { 255, 8, 1, "72296426" },
        { 255, 8, CR_SERIAL_MAX, "87051003" },
        { 255, 12, 0, "257133727096" },
        { 255, 12, 1, "265433292827" },
        { 255, 12, CR_SERIAL_MAX, "995033429923" },
        /*
         * Rare serials whose 12 digits depend on the second SipHash call
         * (a carry from the low 64 bits of h: odds 10^12 / 2^64 a PIN).
         */
        { 1, 12, 2478590, "089405043223" },
        { 1, 12, 6697305, "577073224067" },
        { 1, 12, 63542526, "193173654843" },
    };

    make_master(master, 0);

    for (i = 0; i < (int) (sizeof(kat) / sizeof(kat[0])); i++) {
        memset(out, 0, sizeof(out));
        cr_key_derive(&key, kat[i].kid, master);
        tap_ok(cr_pin_compute(out, kat[i].digits, &key, kat[i].serial) == 0
               && strcmp(out, kat[i].pin) == 0,
               "known answer kid %u serial %llu digits %u: %s (want %s)",
               kat[i].kid, (unsigned long long) kat[i].serial,
               kat[i].digits, out, kat[i].pin);
        tap_ok(cr_pin_check(&key, kat[i].serial, kat[i].digits, kat[i].pin,
                            strlen(kat[i].pin))
               == CR_PIN_OK, "... and checks");
    }
}


/* Every digit count: D digits written, not one byte more, and checked. */
static void
test_every_digit_count(const cr_key_t *key)
{
    int       bad, spill;
    char      out[CR_PIN_DIGITS_MAX + 8];
    size_t    i;
    unsigned  d, e;
    uint64_t  s;

    for (d = CR_PIN_DIGITS_MIN; d <= CR_PIN_DIGITS_MAX; d++) {
        bad = spill = 0;

        for (i = 0; i < 1000; i++) {
            s = SPREAD(i * 7 + d);
            memset(out, '#', sizeof(out));

            if (cr_pin_compute(out, d, key, s) != 0
                || !cr_pin_well_formed(out, d, d)
                || cr_pin_check(key, s, d, out, d) != CR_PIN_OK)
            {
                bad++;
            }

            spill += out[d] != '#';

            /* The same digits are no PIN of another length. */
            for (e = CR_PIN_DIGITS_MIN; e <= CR_PIN_DIGITS_MAX; e++) {
                if (e != d
                    && cr_pin_check(key, s, e, out, d) != CR_PIN_MALFORMED)
                {
                    bad++;
                }
            }
        }

        tap_ok(bad == 0 && spill == 0,
               "digits %u: 1000 PINs computed and checked (%d bad, %d "
               "written past the end)", d, bad, spill);
    }
}


static void
test_limits(const cr_key_t *key)
{
    char      out[CR_PIN_DIGITS_MAX + 1];
    uint8_t   master[CR_MASTER_KEY_LEN], k_pin[CR_SUBKEY_LEN];
    cr_key_t  absent;

    memset(out, '#', sizeof(out));
    tap_ok(cr_pin_compute(out, 5, key, 0) == -1, "compute refuses 5 digits");
    tap_ok(cr_pin_compute(out, 13, key, 0) == -1,
           "compute refuses 13 digits");
    tap_ok(cr_pin_compute(out, 0, key, 0) == -1, "compute refuses 0 digits");
    tap_ok(cr_pin_compute(out, 8, key, CR_SERIAL_MAX + 1) == -1,
           "compute refuses serial 2^40");

    memset(&absent, 0, sizeof(absent));
    tap_ok(cr_pin_compute(out, 8, &absent, 0) == -1,
           "compute refuses a key that is not present");
    tap_ok(out[0] == '#', "... and writes nothing when it refuses");

    tap_ok(cr_pin_check(&absent, 0, 8, "00000000", 8) == CR_PIN_WRONG,
           "check fails closed without a key");
    tap_ok(cr_pin_check(key, CR_SERIAL_MAX + 1, 8, "00000000", 8)
           == CR_PIN_WRONG, "check fails closed for serial 2^40");
    tap_ok(cr_pin_check(key, 0, 5, "00000", 5) == CR_PIN_MALFORMED
           && cr_pin_check(key, 0, 13, "0000000000000", 13)
              == CR_PIN_MALFORMED,
           "digits 5 and 13: every PIN is malformed");

    make_master(master, 0);
    memset(k_pin, 0xaa, sizeof(k_pin));
    tap_ok(cr_pin_key_derive(k_pin, CR_KID_MAX + 1, master) == -1,
           "the PIN key refuses key id 256");
    tap_ok(k_pin[0] == 0 && k_pin[CR_SUBKEY_LEN - 1] == 0,
           "... and is zeroed");
}


static void
test_malformed(const cr_key_t *key)
{
    int           i, bad;
    char          pin[CR_PIN_DIGITS_MAX + 2];
    size_t        j;
    uint64_t      s;
    cr_pin_rc_t   rc;

    static const struct {
        const char  *pin;
        size_t       len;
        const char  *why;
    } cases[] = {
        { "", 0, "empty" },
        { "1234567", 7, "7 digits" },
        { "123456789", 9, "9 digits" },
        { " 1234567", 8, "a leading space" },
        { "1234567 ", 8, "a trailing space" },
        { "1234 567", 8, "a space inside" },
        { "1234\t567", 8, "a tab" },
        { "1234567\n", 8, "a line break" },
        { "1234\0" "567", 8, "a NUL byte" },
        { "+1234567", 8, "a sign" },
        { "-1234567", 8, "a minus" },
        { "1234-567", 8, "a separator" },
        { "1234567a", 8, "a letter" },
        { "123456O7", 8, "letter O for zero" },
        { "12345/78", 8, "the byte before '0'" },
        { "12345:78", 8, "the byte after '9'" },
        { "\xef\xbc\x91" "23456", 8, "a full-width digit" },
        { "1234567\xb9", 8, "a byte above 0x7f" },
    };

    s = 123456;

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        rc = cr_pin_check(key, s, 8, cases[i].pin, cases[i].len);
        tap_ok(rc == CR_PIN_MALFORMED
               && !cr_pin_well_formed(cases[i].pin, cases[i].len, 8),
               "malformed: %s (%s)", cases[i].why, cr_pin_rc_name(rc));
    }

    /* Every byte value that is no digit, at every position of a right PIN. */
    cr_pin_compute(pin, 8, key, s);
    bad = 0;

    for (j = 0; j < 8; j++) {
        for (i = 0; i < 256; i++) {
            char  save = pin[j];

            if (i >= '0' && i <= '9') {
                continue;
            }

            pin[j] = (char) i;
            bad += cr_pin_check(key, s, 8, pin, 8) != CR_PIN_MALFORMED;
            pin[j] = save;
        }
    }

    tap_ok(bad == 0, "each of 246 non-digit bytes at each of 8 positions "
           "of a right PIN is malformed (%d not)", bad);
    tap_ok(cr_pin_check(key, s, 8, pin, 8) == CR_PIN_OK,
           "... and the PIN itself still checks");
}


/* Right PIN of another serial, key id or master; single-digit errors. */
static void
test_wrong(const cr_key_t *key)
{
    int       bad, n;
    char      pin[CR_PIN_DIGITS_MAX], other[CR_PIN_DIGITS_MAX];
    size_t    j;
    uint8_t   master[CR_MASTER_KEY_LEN];
    uint64_t  s;
    cr_key_t  k2, k3;
    unsigned  c;

    s = 77;
    cr_pin_compute(pin, 8, key, s);
    bad = n = 0;

    for (j = 0; j < 8; j++) {
        char  save = pin[j];

        for (c = '0'; c <= '9'; c++) {
            if ((char) c == save) {
                continue;
            }

            pin[j] = (char) c;
            bad += cr_pin_check(key, s, 8, pin, 8) != CR_PIN_WRONG;
            n++;
        }

        pin[j] = save;
    }

    tap_ok(bad == 0 && n == 72,
           "each of the %d single-digit changes is wrong_pin (%d not)", n,
           bad);

    tap_ok(cr_pin_check(key, s + 1, 8, pin, 8) == CR_PIN_WRONG,
           "the PIN of serial 77 is wrong for serial 78");

    make_master(master, 0);
    cr_key_derive(&k2, key->kid + 1, master);
    cr_pin_compute(other, 8, &k2, s);
    tap_ok(memcmp(pin, other, 8) != 0
           && cr_pin_check(&k2, s, 8, pin, 8) == CR_PIN_WRONG,
           "another key id: another PIN");

    make_master(master, 1);
    cr_key_derive(&k3, key->kid, master);
    cr_pin_compute(other, 8, &k3, s);
    tap_ok(memcmp(pin, other, 8) != 0
           && cr_pin_check(&k3, s, 8, pin, 8) == CR_PIN_WRONG,
           "another master key: another PIN");

    tap_ok(memcmp(key->k_pin, key->k_mac, CR_SUBKEY_LEN) != 0
           && memcmp(key->k_pin, key->k_enc, CR_SUBKEY_LEN) != 0,
           "the PIN key is neither code key");

    /* Lengths are independent: the 6-digit PIN is no suffix or prefix. */
    cr_pin_compute(pin, 12, key, s);
    cr_pin_compute(other, 6, key, s);
    tap_ok(memcmp(pin, other, 6) != 0 && memcmp(pin + 6, other, 6) != 0,
           "the 6-digit PIN is neither end of the 12-digit one");
}


/*
 * A sanity check of uniformity (not a proof; the bound is in the docs):
 * 200,000 PINs of 6 digits, every digit at every position within 6
 * standard deviations of 20,000; leading zeros occur.
 */
static void
test_distribution(const cr_key_t *key)
{
    int       i, d, worst;
    char      pin[CR_PIN_DIGITS_MAX];
    long      count[CR_PIN_DIGITS_MAX][10], dev;
    uint64_t  s;

    memset(count, 0, sizeof(count));

    for (s = 0; s < 200000; s++) {
        cr_pin_compute(pin, 6, key, s);

        for (i = 0; i < 6; i++) {
            count[i][pin[i] - '0']++;
        }
    }

    worst = 0;

    for (i = 0; i < 6; i++) {
        for (d = 0; d < 10; d++) {
            dev = count[i][d] - 20000;
            dev = dev < 0 ? -dev : dev;

            if (dev > worst) {
                worst = (int) dev;
            }
        }
    }

    tap_diag("first digit 0..9: %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld",
             count[0][0], count[0][1], count[0][2], count[0][3],
             count[0][4], count[0][5], count[0][6], count[0][7],
             count[0][8], count[0][9]);

    /* sd = sqrt(200000 * 0.1 * 0.9) = 134 */
    tap_ok(worst <= 804, "200000 PINs: each digit at each position "
           "20000 +- %d (6 sd: 804)", worst);
    tap_ok(count[0][0] > 0, "leading zeros occur (%ld of 200000)",
           count[0][0]);
}


int
main(void)
{
    uint8_t   master[CR_MASTER_KEY_LEN];
    cr_key_t  key;

    test_known_answers();

    make_master(master, 0x40);
    cr_key_derive(&key, 7, master);

    test_every_digit_count(&key);
    test_limits(&key);
    test_malformed(&key);
    test_wrong(&key);
    test_distribution(&key);

    return tap_done();
}
