/*
 * Unit tests of sealed code packages (cr_seal) and printers' key files
 * (cr_keyfile_printer_*), TAP on stdout.
 *
 * Round trips of texts at and around the record size (64 KiB) written
 * and read in pieces of every size from 1 byte; the writer's refusals (a
 * manifest it could not have, a text that is not the manifest's); the
 * header's layout as docs/code-format.md gives it; and packages built
 * here by hand from the document (libsodium directly: tags out of place,
 * a manifest that lies, a record too long) to reach each of the reader's
 * verdicts, with no unverified byte and no last record handed out.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_keyfile.h"
#include "cr_seal.h"
#include "tap.h"


#define CHUNK  CR_SEAL_CHUNK


/* A growing byte buffer: the sink of writers and readers. */
typedef struct {
    uint8_t  *p;
    size_t    len;
    size_t    cap;
    int       fail_after;     /* > 0: the n-th write fails */
} buf_t;


static int
buf_out(void *ctx, const uint8_t *p, size_t n)
{
    buf_t  *b = ctx;

    if (b->fail_after > 0 && --b->fail_after == 0) {
        errno = EIO;
        return -1;
    }

    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            abort();
        }
    }

    memcpy(b->p + b->len, p, n);
    b->len += n;

    return 0;
}


static uint8_t  pk[CR_SEAL_PK_LEN], sk[CR_SEAL_SK_LEN];
static uint8_t  pk2[CR_SEAL_PK_LEN], sk2[CR_SEAL_SK_LEN];
static cr_seal_writer_t  w;
static cr_seal_reader_t  r;


/* A text of n bytes in lines of 1..40 bytes, the last ending in '\n'. */
static uint8_t *
make_text(size_t n, uint64_t *lines)
{
    size_t    i;
    uint8_t  *t;

    t = malloc(n);
    *lines = 0;

    for (i = 0; i < n; i++) {
        t[i] = (uint8_t) ('A' + (i * 7) % 26);

        if (i == n - 1 || (i * 2654435761u) % 37 == 0) {
            t[i] = '\n';
            (*lines)++;
        }
    }

    return t;
}


/* The manifest of text t: format codes, count its lines. */
static void
manifest_of(cr_seal_manifest_t *m, const uint8_t *t, size_t n,
    uint64_t lines)
{
    memset(m, 0, sizeof(*m));
    m->format = CR_SEAL_FORMAT_CODES;
    m->kid = 9;
    m->from = 1000;
    m->count = lines;
    m->bytes = n;
    crypto_hash_sha256(m->sha256, t, n);
    memcpy(m->prefix, "HTTPS://C.BRAND.CN/", 19);
    m->prefix_len = 19;
}


/* Seals t (n bytes) written in pieces of "piece" bytes (0: at once). */
static cr_seal_rc_t
seal(buf_t *out, const uint8_t *t, size_t n, const cr_seal_manifest_t *m,
    size_t piece)
{
    size_t        off, k;
    cr_seal_rc_t  rc;

    rc = cr_seal_begin(&w, pk, m, buf_out, out);

    for (off = 0; rc == CR_SEAL_OK && off < n; off += k) {
        k = piece ? piece : n;
        k = k < n - off ? k : n - off;
        rc = cr_seal_write(&w, t + off, k);
    }

    if (rc == CR_SEAL_OK) {
        rc = cr_seal_end(&w);
    }

    cr_seal_writer_wipe(&w);

    return rc;
}


/* Reads pkg in pieces of "piece" bytes (0: at once) into out. */
static cr_seal_rc_t
unseal(buf_t *out, const uint8_t *pkg, size_t n, size_t piece,
    const uint8_t *rpk, const uint8_t *rsk)
{
    size_t        off, k;
    cr_seal_rc_t  rc;

    out->len = 0;
    cr_seal_reader_init(&r, rpk, rsk, buf_out, out);
    rc = CR_SEAL_OK;

    for (off = 0; rc == CR_SEAL_OK && off < n; off += k) {
        k = piece ? piece : n;
        k = k < n - off ? k : n - off;
        rc = cr_seal_read(&r, pkg + off, k);
    }

    if (rc == CR_SEAL_OK) {
        rc = cr_seal_read_end(&r);
    }

    return rc;
}


static void
test_round_trips(void)
{
    size_t              i, j, n, records;
    uint8_t            *t;
    uint64_t            lines;
    buf_t               pkg, out;
    cr_seal_rc_t        rc;
    cr_seal_manifest_t  m;

    static const size_t  sizes[] = {
        1, 2, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK - 1,
        3 * CHUNK + 1, 1000000
    };
    static const size_t  pieces[] = { 0, 1, 17, 4096, CHUNK, CHUNK + 3 };

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        n = sizes[i];
        t = make_text(n, &lines);
        manifest_of(&m, t, n, lines);

        for (j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
            /* Byte by byte only where it is quick. */
            if (pieces[j] == 1 && n > 3 * CHUNK + 1) {
                continue;
            }

            memset(&pkg, 0, sizeof(pkg));
            memset(&out, 0, sizeof(out));

            rc = seal(&pkg, t, n, &m, pieces[j]);
            records = (n + CHUNK - 1) / CHUNK;

            tap_ok(rc == CR_SEAL_OK
                   && pkg.len == CR_SEAL_HEADER_LEN + 4 + 62 + 19 + 17
                                 + n + records * (4 + 17),
                   "%zu bytes written in pieces of %zu: sealed, %zu text "
                   "records, %zu bytes as the layout says", n, pieces[j],
                   records, pkg.len);

            rc = unseal(&out, pkg.p, pkg.len, pieces[(j + 1) % 6], pk, sk);
            tap_ok(rc == CR_SEAL_OK && out.len == n
                   && memcmp(out.p, t, n) == 0
                   && r.m.count == lines && r.m.bytes == n
                   && memcmp(r.m.printer, pk, CR_SEAL_PK_LEN) == 0,
                   "... read in pieces of %zu: the same text, the "
                   "manifest's (%s)", pieces[(j + 1) % 6],
                   cr_seal_reader_error(&r));
            cr_seal_reader_wipe(&r);

            free(pkg.p);
            free(out.p);
        }

        free(t);
    }
}


/* The header, byte by byte as the document lays it out. */
static void
test_layout(void)
{
    uint8_t             *t, key[32];
    uint64_t             lines;
    buf_t                pkg;
    cr_seal_manifest_t   m;
    crypto_secretstream_xchacha20poly1305_state  st;
    uint8_t              plain[CR_SEAL_MANIFEST_MAX];
    unsigned long long   plen;
    unsigned char        tag;
    uint8_t              ad[CR_SEAL_HEADER_LEN + 4];
    size_t               len;

    t = make_text(5000, &lines);
    manifest_of(&m, t, 5000, lines);
    memset(&pkg, 0, sizeof(pkg));
    seal(&pkg, t, 5000, &m, 0);

    tap_ok(CR_SEAL_HEADER_LEN == 144, "the header is 144 bytes");
    tap_ok(memcmp(pkg.p, "CRSEAL\0\1", 8) == 0,
           "bytes 0..7: \"CRSEAL\" and version 1 (2 bytes, big endian)");
    tap_ok(memcmp(pkg.p + 8, pk, 32) == 0,
           "bytes 8..39: the printer's public key");
    tap_ok(crypto_box_seal_open(key, pkg.p + 40, 80, pk, sk) == 0,
           "bytes 40..119: the stream key, crypto_box_seal'ed to it");
    tap_ok(crypto_secretstream_xchacha20poly1305_init_pull(&st, pkg.p + 120,
                                                           key) == 0,
           "bytes 120..143: the secretstream header");

    len = (size_t) pkg.p[144] << 24 | (size_t) pkg.p[145] << 16
          | (size_t) pkg.p[146] << 8 | pkg.p[147];
    memcpy(ad, pkg.p, 148);
    tap_ok(len == 62 + 19
           && crypto_secretstream_xchacha20poly1305_pull(&st, plain, &plen,
                  &tag, pkg.p + 148, len + 17, ad, 148) == 0
           && tag == crypto_secretstream_xchacha20poly1305_TAG_PUSH
           && plen == len,
           "record 0: its length (4 bytes), the manifest, tag PUSH, the "
           "header and the length as additional data");
    tap_ok(plain[0] == 1 && plain[1] == CR_SEAL_FORMAT_CODES && plain[2] == 9
           && plain[3] == 0 && plain[11] == (1000 & 0xff)
           && plain[10] == (1000 >> 8) && plain[19] == lines
           && plain[27] == (5000 & 0xff) && plain[26] == (5000 >> 8)
           && memcmp(plain + 28, m.sha256, 32) == 0
           && plain[60] == 0 && plain[61] == 19
           && memcmp(plain + 62, "HTTPS://C.BRAND.CN/", 19) == 0,
           "the manifest: version, format, kid, PIN digits, from, count, "
           "bytes, SHA-256, prefix length and prefix");

    sodium_memzero(key, sizeof(key));
    free(pkg.p);
    free(t);
}


static void
test_manifest(void)
{
    int                 rc;
    char                json[CR_SEAL_JSON_MAX];
    size_t              n;
    uint8_t             enc[CR_SEAL_MANIFEST_MAX];
    const char         *why;
    cr_seal_manifest_t  m, back;
    buf_t               pkg;

    memset(&m, 0, sizeof(m));
    memset(m.printer, 0xab, sizeof(m.printer));
    m.format = CR_SEAL_FORMAT_CSV;
    m.kid = 255;
    m.pin_digits = 8;
    m.from = 1099511627774ULL;
    m.count = 2;
    m.bytes = 300;
    memset(m.sha256, 0x01, sizeof(m.sha256));
    memcpy(m.prefix, "HTTPS://X/<&'>", 14);
    m.prefix_len = 14;

    n = cr_seal_manifest_json(&m, json);
    tap_ok(n == strlen(json) && strcmp(json,
        "{\n"
        "  \"package\": \"code-router sealed codes\",\n"
        "  \"version\": 1,\n"
        "  \"printer\": \"abababababababababababababababababababababababababab"
        "abababababab\",\n"
        "  \"kid\": 255,\n"
        "  \"from\": 1099511627774,\n"
        "  \"to\": 1099511627775,\n"
        "  \"count\": 2,\n"
        "  \"format\": \"csv\",\n"
        "  \"pin_digits\": 8,\n"
        "  \"url_prefix\": \"HTTPS://X/\\u003c\\u0026\\u0027\\u003e\",\n"
        "  \"lines\": 3,\n"
        "  \"bytes\": 300,\n"
        "  \"sha256\": \"01010101010101010101010101010101010101010101010101"
        "01010101010101\"\n"
        "}\n") == 0, "the manifest's JSON, to the byte");

    n = cr_seal_manifest_encode(&m, enc);
    memset(&back, 0, sizeof(back));
    tap_ok(n == 62 + 14 && cr_seal_manifest_decode(&back, enc, n, &why) == 0
           && back.format == m.format && back.kid == m.kid
           && back.pin_digits == 8 && back.from == m.from
           && back.count == 2 && back.bytes == 300
           && memcmp(back.sha256, m.sha256, 32) == 0
           && back.prefix_len == 14 && strcmp(back.prefix, m.prefix) == 0,
           "encode, decode: the same manifest");
    tap_ok(cr_seal_manifest_decode(&back, enc, n - 1, &why) != 0
           && cr_seal_manifest_decode(&back, enc, n + 1, &why) != 0
           && cr_seal_manifest_decode(&back, enc, 61, &why) != 0,
           "decode: a length other than 62 and the prefix's refused");
    enc[0] = 2;
    rc = cr_seal_manifest_decode(&back, enc, n, &why);
    tap_ok(rc != 0, "decode: manifest version 2 refused (%s)", why);

    /* What the writer refuses to begin with. */
    {
        cr_seal_manifest_t  x;
        int                 i, ok;

        ok = 1;

        for (i = 0; i < 8; i++) {
            x = m;

            switch (i) {
            case 0: x.count = 0; break;
            case 1: x.format = 3; break;
            case 2: x.format = CR_SEAL_FORMAT_CODES; break;   /* with a PIN */
            case 3: x.pin_digits = 13; break;
            case 4: x.from = 1099511627775ULL; break;          /* 2 past */
            case 5: x.prefix[3] = ','; break;
            case 6: x.bytes = 2; break;                        /* < lines */
            case 7: x.prefix_len = CR_SEAL_PREFIX_MAX + 1; break;
            }

            memset(&pkg, 0, sizeof(pkg));
            ok &= cr_seal_manifest_check(&x) != NULL
                  && cr_seal_begin(&w, pk, &x, buf_out, &pkg)
                     == CR_SEAL_MANIFEST
                  && pkg.len == 0;
            cr_seal_writer_wipe(&w);
            free(pkg.p);
        }

        tap_ok(ok, "the writer begins no package with a manifest code-router"
               " could not have written (8 cases), writes nothing");
    }
}


static void
test_writer_refuses(void)
{
    uint8_t             *t;
    uint64_t             lines;
    buf_t                pkg, out;
    cr_seal_rc_t         rc;
    cr_seal_manifest_t   m, x;

    t = make_text(3 * CHUNK, &lines);
    manifest_of(&m, t, 3 * CHUNK, lines);

    x = m;
    x.sha256[5] ^= 1;
    memset(&pkg, 0, sizeof(pkg));
    rc = seal(&pkg, t, 3 * CHUNK, &x, 1000);
    tap_ok(rc == CR_SEAL_MISMATCH, "a text whose SHA-256 is not the "
           "manifest's: the writer does not finish (%d)", (int) rc);
    memset(&out, 0, sizeof(out));
    rc = unseal(&out, pkg.p, pkg.len, 0, pk, sk);
    tap_ok(rc == CR_SEAL_TRUNCATED && out.len == 2 * CHUNK,
           "... what it wrote reads as truncated (%s)",
           cr_seal_reader_error(&r));
    free(pkg.p);
    free(out.p);

    x = m;
    x.bytes++;
    memset(&pkg, 0, sizeof(pkg));
    tap_ok(seal(&pkg, t, 3 * CHUNK, &x, 0) == CR_SEAL_MISMATCH,
           "... nor one byte short of the manifest's");
    free(pkg.p);

    x = m;
    x.count++;
    x.bytes++;
    memset(&pkg, 0, sizeof(pkg));
    tap_ok(seal(&pkg, t, 3 * CHUNK, &x, 0) == CR_SEAL_MISMATCH,
           "... nor a line short");
    free(pkg.p);

    memset(&pkg, 0, sizeof(pkg));
    pkg.fail_after = 3;
    tap_ok(seal(&pkg, t, 3 * CHUNK, &m, 0) == CR_SEAL_OUTPUT,
           "an output that fails: CR_SEAL_OUTPUT");
    free(pkg.p);

    {
        uint8_t  zero[CR_SEAL_PK_LEN];

        memset(zero, 0, sizeof(zero));
        memset(&pkg, 0, sizeof(pkg));
        tap_ok(cr_seal_begin(&w, zero, &m, buf_out, &pkg)
               == CR_SEAL_PUBLIC_KEY && pkg.len == 0,
               "an all-zero public key: CR_SEAL_PUBLIC_KEY, nothing written");
        cr_seal_writer_wipe(&w);
        free(pkg.p);
    }

    free(t);
}


/*
 * A package made here from the document: the header, then records of
 * the given plain texts and tags; the manifest m's record first unless
 * man is NULL (then recs[0] is whatever it is).
 */
typedef struct {
    const uint8_t  *p;
    size_t          n;
    unsigned char   tag;
} rec_t;

static void
craft(buf_t *out, const uint8_t *to, const rec_t *recs, int nrecs)
{
    int      i;
    uint8_t  head[CR_SEAL_HEADER_LEN], key[32], ad[CR_SEAL_HEADER_LEN + 4];
    uint8_t *c;
    size_t   adlen;
    crypto_secretstream_xchacha20poly1305_state  st;

    memcpy(head, "CRSEAL\0\1", 8);
    memcpy(head + 8, to, 32);
    crypto_secretstream_xchacha20poly1305_keygen(key);
    crypto_box_seal(head + 40, key, 32, to);
    crypto_secretstream_xchacha20poly1305_init_push(&st, head + 120, key);
    buf_out(out, head, sizeof(head));

    for (i = 0; i < nrecs; i++) {
        c = malloc(4 + recs[i].n + 17);
        c[0] = (uint8_t) (recs[i].n >> 24);
        c[1] = (uint8_t) (recs[i].n >> 16);
        c[2] = (uint8_t) (recs[i].n >> 8);
        c[3] = (uint8_t) recs[i].n;
        adlen = 0;

        if (i == 0) {
            memcpy(ad, head, sizeof(head));
            adlen = sizeof(head);
        }

        memcpy(ad + adlen, c, 4);
        adlen += 4;
        crypto_secretstream_xchacha20poly1305_push(&st, c + 4, NULL,
            recs[i].p, recs[i].n, ad, adlen, recs[i].tag);
        buf_out(out, c, 4 + recs[i].n + 17);
        free(c);
    }
}


#define T_MSG    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define T_PUSH   crypto_secretstream_xchacha20poly1305_TAG_PUSH
#define T_REKEY  crypto_secretstream_xchacha20poly1305_TAG_REKEY
#define T_FINAL  crypto_secretstream_xchacha20poly1305_TAG_FINAL


static void
test_verdicts(void)
{
    int                 i;
    size_t              mn, k;
    uint8_t             man[CR_SEAL_MANIFEST_MAX], *t, *big, tail[500];
    uint64_t            lines;
    buf_t               pkg, out;
    cr_seal_rc_t        rc;
    cr_seal_manifest_t  m, x;

    /* A text of two records: the first, then the last; and its last 500
     * bytes with one letter's case changed (the lines are the same). */
    t = make_text(CHUNK + 500, &lines);
    manifest_of(&m, t, CHUNK + 500, lines);
    mn = cr_seal_manifest_encode(&m, man);
    memcpy(tail, t + CHUNK, sizeof(tail));
    for (k = 0; tail[k] == '\n'; k++) { }
    tail[k] ^= 0x20;

    struct {
        const char    *what;
        rec_t          recs[4];
        int            n;
        cr_seal_rc_t   want;
        size_t         out;       /* text handed out */
    } cases[] = {
        { "made here by the document: read",
          { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
            { t + CHUNK, 500, T_FINAL } }, 3, CR_SEAL_OK, CHUNK + 500 },
        { "an empty FINAL record after full ones: read",
          { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
            { t + CHUNK, 500, T_MSG }, { t, 0, T_FINAL } }, 4, CR_SEAL_OK,
          CHUNK + 500 },
        { "the manifest tagged MESSAGE",
          { { man, mn, T_MSG }, { t, CHUNK, T_MSG },
            { t + CHUNK, 500, T_FINAL } }, 3, CR_SEAL_TAG, 0 },
        { "the manifest tagged FINAL",
          { { man, mn, T_FINAL } }, 1, CR_SEAL_TAG, 0 },
        { "a text record tagged PUSH",
          { { man, mn, T_PUSH }, { t, CHUNK, T_PUSH },
            { t + CHUNK, 500, T_FINAL } }, 3, CR_SEAL_TAG, 0 },
        { "a text record tagged REKEY",
          { { man, mn, T_PUSH }, { t, CHUNK, T_REKEY },
            { t + CHUNK, 500, T_FINAL } }, 3, CR_SEAL_TAG, 0 },
        { "no FINAL record",
          { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
            { t + CHUNK, 500, T_MSG } }, 3, CR_SEAL_TRUNCATED, CHUNK + 500 },
        { "a record past the text's length",
          { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
            { t + CHUNK, 500, T_MSG }, { t, 1, T_FINAL } }, 4,
          CR_SEAL_MISMATCH, CHUNK + 500 },
        { "the last record one byte changed: not handed out",
          { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
            { tail, 500, T_FINAL } }, 3, CR_SEAL_MISMATCH, CHUNK },
        { "the text one byte short",
          { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
            { t + CHUNK, 499, T_FINAL } }, 3, CR_SEAL_MISMATCH, CHUNK },
        { "a manifest record that is not one",
          { { t, 70, T_PUSH }, { t, CHUNK, T_MSG } }, 2, CR_SEAL_MANIFEST,
          0 },
    };

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        memset(&pkg, 0, sizeof(pkg));
        memset(&out, 0, sizeof(out));
        craft(&pkg, pk, cases[i].recs, cases[i].n);
        rc = unseal(&out, pkg.p, pkg.len, 333, pk, sk);
        tap_ok(rc == cases[i].want && out.len == cases[i].out
               && (out.len == 0 || memcmp(out.p, t, out.len) == 0),
               "%s: %d, %zu bytes handed out (%s)", cases[i].what, (int) rc,
               out.len, rc ? cr_seal_reader_error(&r) : "ok");
        cr_seal_reader_wipe(&r);
        free(pkg.p);
        free(out.p);
    }

    /* One line more, or fewer, than the manifest's. */
    x = m;
    x.count = lines - 1;
    mn = cr_seal_manifest_encode(&x, man);
    {
        rec_t  recs[] = { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
                          { t + CHUNK, 500, T_FINAL } };

        memset(&pkg, 0, sizeof(pkg));
        memset(&out, 0, sizeof(out));
        craft(&pkg, pk, recs, 3);
        rc = unseal(&out, pkg.p, pkg.len, 0, pk, sk);
        tap_ok(rc == CR_SEAL_MISMATCH && out.len == CHUNK,
               "a line more than the manifest's: %s",
               cr_seal_reader_error(&r));
        free(pkg.p);
        free(out.p);
    }

    /* A record longer than a record may be. */
    big = calloc(1, CHUNK + 1);
    big[CHUNK] = '\n';
    mn = cr_seal_manifest_encode(&m, man);
    {
        rec_t  recs[] = { { man, mn, T_PUSH }, { big, CHUNK + 1, T_FINAL } };

        memset(&pkg, 0, sizeof(pkg));
        memset(&out, 0, sizeof(out));
        craft(&pkg, pk, recs, 2);
        rc = unseal(&out, pkg.p, pkg.len, 0, pk, sk);
        tap_ok(rc == CR_SEAL_LENGTH && out.len == 0,
               "a record of 65537 bytes: %s", cr_seal_reader_error(&r));
        free(pkg.p);
        free(out.p);
    }
    free(big);

    /* The header's own verdicts. */
    {
        rec_t  recs[] = { { man, mn, T_PUSH }, { t, CHUNK, T_MSG },
                          { t + CHUNK, 500, T_FINAL } };

        memset(&pkg, 0, sizeof(pkg));
        craft(&pkg, pk, recs, 3);

        memset(&out, 0, sizeof(out));
        tap_ok(unseal(&out, pkg.p, pkg.len, 0, pk2, sk2)
               == CR_SEAL_OTHER_PRINTER, "another printer's key: %s",
               cr_seal_reader_error(&r));

        pkg.p[7] = 2;
        tap_ok(unseal(&out, pkg.p, pkg.len, 0, pk, sk)
               == CR_SEAL_VERSION_UNKNOWN, "version 2: %s",
               cr_seal_reader_error(&r));
        pkg.p[7] = 1;

        pkg.p[60] ^= 0x80;
        tap_ok(unseal(&out, pkg.p, pkg.len, 0, pk, sk) == CR_SEAL_KEY,
               "the boxed key changed: %s", cr_seal_reader_error(&r));
        pkg.p[60] ^= 0x80;

        pkg.p[130] ^= 0x80;
        tap_ok(unseal(&out, pkg.p, pkg.len, 0, pk, sk) == CR_SEAL_AUTH
               && out.len == 0, "the stream header changed: %s",
               cr_seal_reader_error(&r));
        pkg.p[130] ^= 0x80;

        tap_ok(unseal(&out, pkg.p, 0, 0, pk, sk) == CR_SEAL_EMPTY,
               "nothing: %s", cr_seal_reader_error(&r));
        tap_ok(unseal(&out, (const uint8_t *) "CRSEAX", 6, 0, pk, sk)
               == CR_SEAL_NOT_PACKAGE, "\"CRSEAX\": %s",
               cr_seal_reader_error(&r));
        tap_ok(unseal(&out, (const uint8_t *) "X", 1, 0, pk, sk)
               == CR_SEAL_NOT_PACKAGE,
               "one byte that is not the magic's: said at once");
        tap_ok(unseal(&out, (const uint8_t *) "CRS", 3, 0, pk, sk)
               == CR_SEAL_TRUNCATED, "\"CRS\": %s",
               cr_seal_reader_error(&r));

        buf_out(&pkg, (const uint8_t *) "x", 1);
        tap_ok(unseal(&out, pkg.p, pkg.len, 7, pk, sk) == CR_SEAL_TRAILING
               && out.len == CHUNK + 500, "a byte after the end: %s",
               cr_seal_reader_error(&r));
        pkg.len--;

        out.fail_after = 2;
        tap_ok(unseal(&out, pkg.p, pkg.len, 0, pk, sk) == CR_SEAL_OUTPUT,
               "an output that fails: %s", cr_seal_reader_error(&r));

        /* Once failed, always failed: nothing more is taken. */
        tap_ok(cr_seal_read(&r, pkg.p, 10) == CR_SEAL_OUTPUT
               && cr_seal_read_end(&r) == CR_SEAL_OUTPUT,
               "the first error sticks");

        cr_seal_reader_wipe(&r);
        free(pkg.p);
        free(out.p);
    }

    free(t);
}


/* keygen --printer's files, read back; a master key is not one. */
static void
test_key_files(void)
{
    int          rc;
    char         dir[] = "/tmp/cr-seal-XXXXXX", base[64], path[80], err[512];
    uint8_t      rpk[32], rsk[32], ppk[32];
    struct stat  st;
    FILE        *f;

    err[0] = '\0';

    if (mkdtemp(dir) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(base, sizeof(base), "%s/p", dir);
    rc = cr_keyfile_printer_create(base, err, sizeof(err));
    tap_ok(rc == 0, "a printer's key pair created");

    snprintf(path, sizeof(path), "%s.key", base);
    tap_ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600
           && st.st_size == CR_PRINTER_KEY_SIZE, "PRINTER.key: 0600, %d "
           "bytes", CR_PRINTER_KEY_SIZE);
    rc = cr_keyfile_printer_read(path, rpk, rsk, err, sizeof(err));
    tap_ok(rc == 0, "... read back");

    snprintf(path, sizeof(path), "%s.pub", base);
    tap_ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644
           && st.st_size == CR_PRINTER_PUB_SIZE, "PRINTER.pub: 0644, %d "
           "bytes", CR_PRINTER_PUB_SIZE);
    tap_ok(cr_keyfile_printer_read_public(path, ppk, err, sizeof(err)) == 0
           && memcmp(ppk, rpk, 32) == 0, "... read back: the same public "
           "key");

    rc = cr_keyfile_printer_create(base, err, sizeof(err));
    tap_ok(rc != 0 && strstr(err, "refusing to overwrite") != NULL,
           "not created again: %s", err);

    snprintf(path, sizeof(path), "%s/master", dir);
    rc = cr_keyfile_create(path, err, sizeof(err)) == 0
         && cr_keyfile_printer_read(path, rpk, rsk, err, sizeof(err)) != 0;
    tap_ok(rc && strstr(err, "a master key") != NULL,
           "a master key as a printer's: %s", err);

    snprintf(path, sizeof(path), "%s/v9.pub", dir);
    f = fopen(path, "w");
    fputs("code-router printer public key v9 ", f);
    fclose(f);
    rc = cr_keyfile_printer_read_public(path, ppk, err, sizeof(err));
    tap_ok(rc != 0 && strstr(err, "of a version this code-router does not "
                             "read") != NULL, "version 9: %s", err);

    sodium_memzero(rsk, sizeof(rsk));

    snprintf(path, sizeof(path), "rm -r '%s'", dir);
    if (system(path) != 0) {
        tap_diag("cannot remove %s", dir);
    }
}


int
main(void)
{
    if (sodium_init() < 0) {
        tap_ok(0, "sodium_init");
        return tap_done();
    }

    crypto_box_keypair(pk, sk);
    crypto_box_keypair(pk2, sk2);

    test_layout();
    test_round_trips();
    test_manifest();
    test_writer_refuses();
    test_verdicts();
    test_key_files();

    return tap_done();
}
