/*
 * libFuzzer target: cr_seal's reader, and its writer in a round trip.
 * The printer's key pair is fixed (from a seed), so the seed corpus in
 * t/fuzz/corpus/seal/ holds packages sealed to it.
 *
 * The first byte chooses.  Even: the rest is a package, read twice, in
 * slices of a size from the first byte and at once.  Oracles: the
 * verdict, the text handed out and the error do not depend on the
 * slicing; no text before a verified manifest; never more than the
 * manifest's bytes; an accepted package's text has the manifest's bytes,
 * lines and SHA-256.  Odd: the rest is a text (a '\n' added if it does
 * not end in one; with bits 0xc0, repeated past one record, so that
 * small inputs make packages of two text records too), sealed in pieces and
 * read back: accepted, the same text; then one of its bytes flipped, and
 * it cut short, where the input says: refused, and what was handed out a
 * part of the text, never all.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cr_seal.h"


typedef struct {
    uint8_t  *p;
    size_t    len;
    size_t    cap;
    int       early;        /* text came before the manifest */
    cr_seal_reader_t  *r;
} sink_t;


static uint8_t  pk[CR_SEAL_PK_LEN], sk[CR_SEAL_SK_LEN];
static cr_seal_reader_t  r1, r2;
static cr_seal_writer_t  w;


static int
sink_out(void *ctx, const uint8_t *p, size_t n)
{
    sink_t  *s = ctx;

    if (s->r != NULL && s->r->records == 0) {
        s->early = 1;
    }

    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 64;
        s->p = realloc(s->p, s->cap);
        if (s->p == NULL) {
            abort();
        }
    }

    memcpy(s->p + s->len, p, n);
    s->len += n;

    return 0;
}


static cr_seal_rc_t
read_all(cr_seal_reader_t *r, sink_t *s, const uint8_t *p, size_t n,
    size_t slice)
{
    size_t        off, k;
    cr_seal_rc_t  rc;

    memset(s, 0, sizeof(*s));
    s->r = r;
    cr_seal_reader_init(r, pk, sk, sink_out, s);
    rc = r->rc;

    for (off = 0; rc == CR_SEAL_OK && off < n; off += k) {
        k = slice < n - off ? slice : n - off;
        rc = cr_seal_read(r, p + off, k);
    }

    if (rc == CR_SEAL_OK) {
        rc = cr_seal_read_end(r);
    }

    return rc;
}


static uint64_t
newlines(const uint8_t *p, size_t n)
{
    size_t    i;
    uint64_t  c;

    for (i = 0, c = 0; i < n; i++) {
        c += p[i] == '\n';
    }

    return c;
}


static void
check_package(const uint8_t *p, size_t n, size_t slice)
{
    uint8_t       sha[CR_SEAL_SHA256_LEN];
    sink_t        a, b;
    cr_seal_rc_t  ra, rb;

    ra = read_all(&r1, &a, p, n, slice);
    rb = read_all(&r2, &b, p, n, n ? n : 1);

    if (ra != rb || a.len != b.len || (a.len && memcmp(a.p, b.p, a.len))
        || strcmp(cr_seal_reader_error(&r1), cr_seal_reader_error(&r2)) != 0)
    {
        abort();                /* the slicing changed the outcome */
    }

    if (a.early || (r1.records && a.len > r1.m.bytes)) {
        abort();
    }

    if (ra == CR_SEAL_OK) {
        crypto_hash_sha256(sha, a.p, a.len);

        if (a.len != r1.m.bytes
            || newlines(a.p, a.len) != cr_seal_manifest_lines(&r1.m)
            || memcmp(sha, r1.m.sha256, sizeof(sha)) != 0
            || cr_seal_manifest_check(&r1.m) != NULL)
        {
            abort();
        }
    }

    if (ra != CR_SEAL_OK && cr_seal_reader_error(&r1)[0] == '\0') {
        abort();                /* every refusal says why */
    }

    free(a.p);
    free(b.p);
}


/* Seals text t and reads it back; then damaged at "at", and cut there. */
static void
round_trip(const uint8_t *t, size_t n, size_t piece, size_t at)
{
    size_t              off, k;
    sink_t              pkg, out;
    cr_seal_rc_t        rc;
    cr_seal_manifest_t  m;

    memset(&m, 0, sizeof(m));
    m.format = CR_SEAL_FORMAT_CODES;
    m.count = newlines(t, n);
    m.bytes = n;
    crypto_hash_sha256(m.sha256, t, n);

    memset(&pkg, 0, sizeof(pkg));
    rc = cr_seal_begin(&w, pk, &m, sink_out, &pkg);

    for (off = 0; rc == CR_SEAL_OK && off < n; off += k) {
        k = piece < n - off ? piece : n - off;
        rc = cr_seal_write(&w, t + off, k);
    }

    if (rc == CR_SEAL_OK) {
        rc = cr_seal_end(&w);
    }

    cr_seal_writer_wipe(&w);

    if (rc != CR_SEAL_OK) {
        abort();
    }

    rc = read_all(&r1, &out, pkg.p, pkg.len, piece);

    if (rc != CR_SEAL_OK || out.len != n || memcmp(out.p, t, n) != 0) {
        abort();
    }

    free(out.p);

    at %= pkg.len;
    pkg.p[at] ^= 0x10;
    rc = read_all(&r1, &out, pkg.p, pkg.len, piece);

    if (rc == CR_SEAL_OK || out.len >= n
        || (out.len && memcmp(out.p, t, out.len) != 0))
    {
        abort();
    }

    free(out.p);
    pkg.p[at] ^= 0x10;

    rc = read_all(&r1, &out, pkg.p, at, piece);

    if (rc == CR_SEAL_OK || out.len >= n
        || (out.len && memcmp(out.p, t, out.len) != 0))
    {
        abort();
    }

    free(out.p);
    free(pkg.p);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* The seed corpus is sealed to this key pair. */
    static const uint8_t  seed[32] = "code-router fuzz_seal key seed.";

    (void) argc;
    (void) argv;

    if (sodium_init() < 0
        || crypto_box_seed_keypair(pk, sk, seed) != 0)
    {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int       big;
    size_t    n, at, k;
    uint8_t  *t;

    if (size == 0) {
        return 0;
    }

    if ((data[0] & 1) == 0) {
        check_package(data + 1, size - 1, 1 + (size_t) (data[0] >> 1) * 97);
        return 0;
    }

    /* A text: the rest, ending in '\n'; where to damage it, from its
     * first bytes. */
    n = size - 1;
    big = (data[0] & 0xc0) == 0xc0;
    t = malloc(n + 1 + (big ? CR_SEAL_CHUNK + n + 1 : 0));
    memcpy(t, data + 1, n);

    if (n == 0 || t[n - 1] != '\n') {
        t[n++] = '\n';
    }

    if (big) {
        for (k = n; n < CR_SEAL_CHUNK + 1; n += k) {
            memcpy(t + n, t, k);
        }
    }

    at = 0;
    memcpy(&at, t, n < sizeof(at) ? n : sizeof(at));

    round_trip(t, n, 1 + (size_t) (data[0] >> 1) * 1031, at);

    free(t);

    return 0;
}
