/*
 * cr_seal: sealed code packages.  See cr_seal.h and docs/code-format.md.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cr_codec.h"
#include "cr_json.h"
#include "cr_pin.h"
#include "cr_seal.h"


/* The reader's states: what the bytes it waits for are. */
enum {
    CR_SEAL_ST_HEADER = 0,
    CR_SEAL_ST_LENGTH,
    CR_SEAL_ST_RECORD,
    CR_SEAL_ST_DONE,
    CR_SEAL_ST_FAILED
};

#define CR_SEAL_TAG_MESSAGE  crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define CR_SEAL_TAG_PUSH     crypto_secretstream_xchacha20poly1305_TAG_PUSH
#define CR_SEAL_TAG_REKEY    crypto_secretstream_xchacha20poly1305_TAG_REKEY
#define CR_SEAL_TAG_FINAL    crypto_secretstream_xchacha20poly1305_TAG_FINAL

/* Where the header's fields start. */
#define CR_SEAL_OFF_VERSION  CR_SEAL_MAGIC_LEN
#define CR_SEAL_OFF_PK       (CR_SEAL_OFF_VERSION + 2)
#define CR_SEAL_OFF_BOXED    (CR_SEAL_OFF_PK + CR_SEAL_PK_LEN)
#define CR_SEAL_OFF_SS       (CR_SEAL_OFF_BOXED + CR_SEAL_BOXED_LEN)


static cr_seal_rc_t cr_seal_emit(cr_seal_writer_t *w, const uint8_t *p,
    size_t n, unsigned char tag, const uint8_t *head);
static uint64_t cr_seal_newlines(const uint8_t *p, size_t n);
static void cr_seal_put_be(uint8_t *p, uint64_t v, size_t n);
static uint64_t cr_seal_get_be(const uint8_t *p, size_t n);
static cr_seal_rc_t cr_seal_fail(cr_seal_reader_t *r, cr_seal_rc_t rc,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cr_seal_rc_t cr_seal_header(cr_seal_reader_t *r);
static cr_seal_rc_t cr_seal_record(cr_seal_reader_t *r);
static void cr_seal_next_record(cr_seal_reader_t *r);
static const char *cr_seal_tag_name(unsigned char tag);


uint64_t
cr_seal_manifest_lines(const cr_seal_manifest_t *m)
{
    return m->count + (m->format == CR_SEAL_FORMAT_CSV);
}


const char *
cr_seal_manifest_check(const cr_seal_manifest_t *m)
{
    size_t  i;

    if (m->format != CR_SEAL_FORMAT_CODES && m->format != CR_SEAL_FORMAT_CSV)
    {
        return "the format is neither codes (1) nor csv (2)";
    }

    /* mint prints a PIN only in a CSV column of its own. */
    if (m->pin_digits != 0
        && (m->format != CR_SEAL_FORMAT_CSV
            || m->pin_digits < CR_PIN_DIGITS_MIN
            || m->pin_digits > CR_PIN_DIGITS_MAX))
    {
        return "PIN digits are 0, or 6..12 with the csv format";
    }

    if (m->count == 0 || m->from > CR_SERIAL_MAX
        || m->count - 1 > CR_SERIAL_MAX - m->from)
    {
        return "the serials are not a run of 1 or more within 40 bits";
    }

    /* Every line ends in '\n': never fewer bytes than lines. */
    if (m->bytes < cr_seal_manifest_lines(m)) {
        return "fewer bytes than lines";
    }

    if (m->prefix_len > CR_SEAL_PREFIX_MAX) {
        return "the URL prefix is longer than 1024 bytes";
    }

    /* What mint refuses in a prefix (it would break a line or a CSV
     * field), and NUL, which argv cannot hold. */
    for (i = 0; i < m->prefix_len; i++) {
        if (m->prefix[i] == '\0' || strchr(",\"\r\n", m->prefix[i]) != NULL)
        {
            return "the URL prefix holds a NUL, comma, quote or line break";
        }
    }

    return NULL;
}


size_t
cr_seal_manifest_encode(const cr_seal_manifest_t *m, uint8_t *out)
{
    out[0] = CR_SEAL_MANIFEST_VERSION;
    out[1] = m->format;
    out[2] = m->kid;
    out[3] = m->pin_digits;
    cr_seal_put_be(out + 4, m->from, 8);
    cr_seal_put_be(out + 12, m->count, 8);
    cr_seal_put_be(out + 20, m->bytes, 8);
    memcpy(out + 28, m->sha256, CR_SEAL_SHA256_LEN);
    cr_seal_put_be(out + 60, m->prefix_len, 2);
    memcpy(out + CR_SEAL_MANIFEST_FIXED, m->prefix, m->prefix_len);

    return CR_SEAL_MANIFEST_FIXED + m->prefix_len;
}


int
cr_seal_manifest_decode(cr_seal_manifest_t *m, const uint8_t *p, size_t n,
    const char **why)
{
    if (n < CR_SEAL_MANIFEST_FIXED) {
        *why = "shorter than its fixed part (62 bytes)";
        return -1;
    }

    if (p[0] != CR_SEAL_MANIFEST_VERSION) {
        *why = "a manifest version this code-router does not read";
        return -1;
    }

    m->format = p[1];
    m->kid = p[2];
    m->pin_digits = p[3];
    m->from = cr_seal_get_be(p + 4, 8);
    m->count = cr_seal_get_be(p + 12, 8);
    m->bytes = cr_seal_get_be(p + 20, 8);
    memcpy(m->sha256, p + 28, CR_SEAL_SHA256_LEN);
    m->prefix_len = (size_t) cr_seal_get_be(p + 60, 2);

    if (m->prefix_len > CR_SEAL_PREFIX_MAX
        || n != CR_SEAL_MANIFEST_FIXED + m->prefix_len)
    {
        *why = "its length is not 62 bytes and the URL prefix's";
        return -1;
    }

    memcpy(m->prefix, p + CR_SEAL_MANIFEST_FIXED, m->prefix_len);
    m->prefix[m->prefix_len] = '\0';

    *why = cr_seal_manifest_check(m);

    return *why ? -1 : 0;
}


size_t
cr_seal_manifest_json(const cr_seal_manifest_t *m, char *out)
{
    int     n;
    char    printer[2 * CR_SEAL_PK_LEN + 1], sha[2 * CR_SEAL_SHA256_LEN + 1];
    size_t  len;

    sodium_bin2hex(printer, sizeof(printer), m->printer, CR_SEAL_PK_LEN);
    sodium_bin2hex(sha, sizeof(sha), m->sha256, CR_SEAL_SHA256_LEN);

    n = snprintf(out, CR_SEAL_JSON_MAX,
                 "{\n"
                 "  \"package\": \"code-router sealed codes\",\n"
                 "  \"version\": %d,\n"
                 "  \"printer\": \"%s\",\n"
                 "  \"kid\": %u,\n"
                 "  \"from\": %llu,\n"
                 "  \"to\": %llu,\n"
                 "  \"count\": %llu,\n"
                 "  \"format\": \"%s\",\n"
                 "  \"pin_digits\": %u,\n"
                 "  \"url_prefix\": \"",
                 CR_SEAL_VERSION, printer, (unsigned) m->kid,
                 (unsigned long long) m->from,
                 (unsigned long long) (m->from + m->count - 1),
                 (unsigned long long) m->count,
                 m->format == CR_SEAL_FORMAT_CSV ? "csv" : "codes",
                 (unsigned) m->pin_digits);

    len = (size_t) n;
    len += cr_json_escape(out + len, m->prefix, m->prefix_len);

    n = snprintf(out + len, CR_SEAL_JSON_MAX - len,
                 "\",\n"
                 "  \"lines\": %llu,\n"
                 "  \"bytes\": %llu,\n"
                 "  \"sha256\": \"%s\"\n"
                 "}\n",
                 (unsigned long long) cr_seal_manifest_lines(m),
                 (unsigned long long) m->bytes, sha);

    return len + (size_t) n;
}


/* ---- the writer ------------------------------------------------------ */


cr_seal_rc_t
cr_seal_begin(cr_seal_writer_t *w, const uint8_t *pk,
    const cr_seal_manifest_t *m, cr_seal_out_pt out, void *ctx)
{
    size_t        n;
    uint8_t       head[CR_SEAL_HEADER_LEN], key[CR_SEAL_KEY_LEN];
    uint8_t       man[CR_SEAL_MANIFEST_MAX];
    cr_seal_rc_t  rc;

    memset(w, 0, offsetof(cr_seal_writer_t, buf));
    w->m = *m;
    memcpy(w->m.printer, pk, CR_SEAL_PK_LEN);
    w->out = out;
    w->ctx = ctx;

    if (sodium_init() < 0) {
        return CR_SEAL_SODIUM;
    }

    if (cr_seal_manifest_check(&w->m) != NULL) {
        return CR_SEAL_MANIFEST;
    }

    memcpy(head, CR_SEAL_MAGIC, CR_SEAL_MAGIC_LEN);
    cr_seal_put_be(head + CR_SEAL_OFF_VERSION, CR_SEAL_VERSION, 2);
    memcpy(head + CR_SEAL_OFF_PK, pk, CR_SEAL_PK_LEN);

    /* A fresh key every package: the stream's nonces are then never
     * reused, whatever the printer is sent. */
    crypto_secretstream_xchacha20poly1305_keygen(key);

    if (crypto_box_seal(head + CR_SEAL_OFF_BOXED, key, sizeof(key), pk) != 0)
    {
        sodium_memzero(key, sizeof(key));
        return CR_SEAL_PUBLIC_KEY;
    }

    (void) crypto_secretstream_xchacha20poly1305_init_push(&w->st,
                                               head + CR_SEAL_OFF_SS, key);
    sodium_memzero(key, sizeof(key));

    if (out(ctx, head, sizeof(head)) != 0) {
        return CR_SEAL_OUTPUT;
    }

    crypto_hash_sha256_init(&w->sha);

    n = cr_seal_manifest_encode(&w->m, man);
    rc = cr_seal_emit(w, man, n, CR_SEAL_TAG_PUSH, head);

    return rc;
}


cr_seal_rc_t
cr_seal_write(cr_seal_writer_t *w, const void *p, size_t n)
{
    size_t          k;
    cr_seal_rc_t    rc;
    const uint8_t  *s;

    s = p;
    crypto_hash_sha256_update(&w->sha, s, n);
    w->bytes += n;
    w->lines += cr_seal_newlines(s, n);

    while (n) {
        /* A full chunk goes out only once more text follows it: the
         * last one must wait for cr_seal_end() to be tagged FINAL. */
        if (w->len == CR_SEAL_CHUNK) {
            rc = cr_seal_emit(w, w->buf, w->len, CR_SEAL_TAG_MESSAGE, NULL);
            if (rc != CR_SEAL_OK) {
                return rc;
            }

            w->len = 0;
        }

        k = CR_SEAL_CHUNK - w->len;
        k = k < n ? k : n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
    }

    return CR_SEAL_OK;
}


cr_seal_rc_t
cr_seal_end(cr_seal_writer_t *w)
{
    uint8_t  sha[CR_SEAL_SHA256_LEN];

    crypto_hash_sha256_final(&w->sha, sha);

    if (w->bytes != w->m.bytes || w->lines != cr_seal_manifest_lines(&w->m)
        || sodium_memcmp(sha, w->m.sha256, sizeof(sha)) != 0)
    {
        return CR_SEAL_MISMATCH;
    }

    return cr_seal_emit(w, w->buf, w->len, CR_SEAL_TAG_FINAL, NULL);
}


void
cr_seal_writer_wipe(cr_seal_writer_t *w)
{
    sodium_memzero(w, sizeof(cr_seal_writer_t));
}


/* One record of n plain bytes (at most CR_SEAL_CHUNK) with its tag; head
 * (the header) is the first record's additional data. */
static cr_seal_rc_t
cr_seal_emit(cr_seal_writer_t *w, const uint8_t *p, size_t n,
    unsigned char tag, const uint8_t *head)
{
    uint8_t  ad[CR_SEAL_HEADER_LEN + 4];
    size_t   adlen;

    cr_seal_put_be(w->rec, n, 4);

    adlen = 0;

    if (head != NULL) {
        memcpy(ad, head, CR_SEAL_HEADER_LEN);
        adlen = CR_SEAL_HEADER_LEN;
    }

    memcpy(ad + adlen, w->rec, 4);
    adlen += 4;

    (void) crypto_secretstream_xchacha20poly1305_push(&w->st, w->rec + 4,
                                             NULL, p, n, ad, adlen, tag);

    if (w->out(w->ctx, w->rec, 4 + n + CR_SEAL_ABYTES) != 0) {
        return CR_SEAL_OUTPUT;
    }

    return CR_SEAL_OK;
}


/* ---- the reader ------------------------------------------------------ */


void
cr_seal_reader_init(cr_seal_reader_t *r, const uint8_t *pk,
    const uint8_t *sk, cr_seal_out_pt out, void *ctx)
{
    memset(r, 0, offsetof(cr_seal_reader_t, buf));
    memcpy(r->pk, pk, CR_SEAL_PK_LEN);
    memcpy(r->sk, sk, CR_SEAL_SK_LEN);
    r->out = out;
    r->ctx = ctx;
    r->state = CR_SEAL_ST_HEADER;
    r->need = CR_SEAL_HEADER_LEN;
    r->err[0] = '\0';
    crypto_hash_sha256_init(&r->sha);

    if (sodium_init() < 0) {
        cr_seal_fail(r, CR_SEAL_SODIUM, "libsodium cannot initialise");
    }
}


cr_seal_rc_t
cr_seal_read(cr_seal_reader_t *r, const uint8_t *p, size_t n)
{
    size_t        k, m;
    uint8_t      *to;
    cr_seal_rc_t  rc;

    while (n && r->state != CR_SEAL_ST_FAILED) {

        if (r->state == CR_SEAL_ST_DONE) {
            return cr_seal_fail(r, CR_SEAL_TRAILING, "%s after the final "
                                "record (at byte %llu): not part of a "
                                "package", n == 1 ? "a byte" : "bytes",
                                (unsigned long long) r->offset);
        }

        to = (r->state == CR_SEAL_ST_HEADER) ? r->head : r->buf;
        k = r->need - r->have;
        k = k < n ? k : n;
        memcpy(to + r->have, p, k);

        /* Say "not a package" at its first byte that is not the magic,
         * before waiting for a header that may never come. */
        if (r->state == CR_SEAL_ST_HEADER && r->have < CR_SEAL_MAGIC_LEN) {
            m = r->have + k < CR_SEAL_MAGIC_LEN ? r->have + k
                                                : CR_SEAL_MAGIC_LEN;
            if (memcmp(r->head, CR_SEAL_MAGIC, m) != 0) {
                return cr_seal_fail(r, CR_SEAL_NOT_PACKAGE, "not a sealed "
                                    "code package (it does not start with "
                                    "\"" CR_SEAL_MAGIC "\")");
            }
        }

        r->have += k;
        r->offset += k;
        p += k;
        n -= k;

        if (r->have < r->need) {
            break;
        }

        switch (r->state) {
        case CR_SEAL_ST_HEADER:
            rc = cr_seal_header(r);
            break;

        case CR_SEAL_ST_LENGTH:
            m = (size_t) cr_seal_get_be(r->buf, 4);

            if (m > CR_SEAL_CHUNK) {
                return cr_seal_fail(r, CR_SEAL_LENGTH, "record %llu (at "
                                    "byte %llu) says it holds %zu bytes, "
                                    "more than a record may (%d): the "
                                    "package is damaged",
                                    (unsigned long long) r->records,
                                    (unsigned long long) r->at, m,
                                    CR_SEAL_CHUNK);
            }

            r->state = CR_SEAL_ST_RECORD;
            r->need = 4 + m + CR_SEAL_ABYTES;
            rc = CR_SEAL_OK;
            break;

        default: /* CR_SEAL_ST_RECORD */
            rc = cr_seal_record(r);
            break;
        }

        if (rc != CR_SEAL_OK) {
            return rc;
        }
    }

    return r->rc;
}


cr_seal_rc_t
cr_seal_read_end(cr_seal_reader_t *r)
{
    switch (r->state) {
    case CR_SEAL_ST_FAILED:
    case CR_SEAL_ST_DONE:
        return r->rc;

    case CR_SEAL_ST_HEADER:
        if (r->have == 0) {
            return cr_seal_fail(r, CR_SEAL_EMPTY, "empty input: not a sealed "
                                "code package");
        }

        return cr_seal_fail(r, CR_SEAL_TRUNCATED, "truncated: it ends inside "
                            "the header, after %zu of its %d bytes",
                            r->have, CR_SEAL_HEADER_LEN);

    default:
        if (r->have == 0 && r->records == 0) {
            return cr_seal_fail(r, CR_SEAL_TRUNCATED, "truncated: it ends "
                                "after the header, before the manifest");
        }

        if (r->have == 0) {
            return cr_seal_fail(r, CR_SEAL_TRUNCATED, "truncated: it ends "
                                "after record %llu (at byte %llu), before "
                                "the final record",
                                (unsigned long long) r->records - 1,
                                (unsigned long long) r->offset);
        }

        return cr_seal_fail(r, CR_SEAL_TRUNCATED, "truncated: it ends inside "
                            "record %llu (at byte %llu), after %zu of its "
                            "bytes", (unsigned long long) r->records,
                            (unsigned long long) r->at, r->have);
    }
}


const char *
cr_seal_reader_error(const cr_seal_reader_t *r)
{
    return r->err;
}


void
cr_seal_reader_wipe(cr_seal_reader_t *r)
{
    sodium_memzero(r, sizeof(cr_seal_reader_t));
}


/* The whole header is in r->head: its version, the printer, the key. */
static cr_seal_rc_t
cr_seal_header(cr_seal_reader_t *r)
{
    char      mine[2 * CR_SEAL_PK_LEN + 1], theirs[2 * CR_SEAL_PK_LEN + 1];
    unsigned  version;
    uint8_t   key[CR_SEAL_KEY_LEN];

    version = (unsigned) cr_seal_get_be(r->head + CR_SEAL_OFF_VERSION, 2);

    if (version != CR_SEAL_VERSION) {
        return cr_seal_fail(r, CR_SEAL_VERSION_UNKNOWN, "a sealed code "
                            "package of version %u: this code-router reads "
                            "version %d", version, CR_SEAL_VERSION);
    }

    /* Not needed to decrypt (the box would not open), but it names the
     * mistake: the package went to another printer. */
    if (sodium_memcmp(r->head + CR_SEAL_OFF_PK, r->pk, CR_SEAL_PK_LEN) != 0)
    {
        sodium_bin2hex(theirs, sizeof(theirs), r->head + CR_SEAL_OFF_PK,
                       CR_SEAL_PK_LEN);
        sodium_bin2hex(mine, sizeof(mine), r->pk, CR_SEAL_PK_LEN);
        return cr_seal_fail(r, CR_SEAL_OTHER_PRINTER, "sealed to another "
                            "printer's key (public key %.16s...), not to "
                            "this one (%.16s...)", theirs, mine);
    }

    if (crypto_box_seal_open(key, r->head + CR_SEAL_OFF_BOXED,
                             CR_SEAL_BOXED_LEN, r->pk, r->sk) != 0)
    {
        return cr_seal_fail(r, CR_SEAL_KEY, "the package key (bytes %d..%d) "
                            "does not open with this printer key: the "
                            "header is damaged", CR_SEAL_OFF_BOXED,
                            CR_SEAL_OFF_SS - 1);
    }

    if (crypto_secretstream_xchacha20poly1305_init_pull(&r->st,
                                         r->head + CR_SEAL_OFF_SS, key) != 0)
    {
        sodium_memzero(key, sizeof(key));
        return cr_seal_fail(r, CR_SEAL_AUTH, "the stream header (bytes "
                            "%d..%d) is not valid: the header is damaged",
                            CR_SEAL_OFF_SS, CR_SEAL_HEADER_LEN - 1);
    }

    sodium_memzero(key, sizeof(key));
    memcpy(r->m.printer, r->pk, CR_SEAL_PK_LEN);

    cr_seal_next_record(r);

    return CR_SEAL_OK;
}


/* A whole record is in r->buf (its length, then the message). */
static cr_seal_rc_t
cr_seal_record(cr_seal_reader_t *r)
{
    int                 rc;
    uint8_t             ad[CR_SEAL_HEADER_LEN + 4];
    size_t              adlen;
    uint64_t            lines, want;
    const char         *why;
    unsigned char       tag;
    unsigned long long  n;

    adlen = 0;

    if (r->records == 0) {
        memcpy(ad, r->head, CR_SEAL_HEADER_LEN);
        adlen = CR_SEAL_HEADER_LEN;
    }

    memcpy(ad + adlen, r->buf, 4);
    adlen += 4;

    rc = crypto_secretstream_xchacha20poly1305_pull(&r->st, r->plain, &n,
                                  &tag, r->buf + 4, r->have - 4, ad, adlen);
    if (rc != 0) {
        return cr_seal_fail(r, CR_SEAL_AUTH, "record %llu (at byte %llu) "
                            "fails authentication: the package is damaged "
                            "or altered", (unsigned long long) r->records,
                            (unsigned long long) r->at);
    }

    if (r->records == 0) {
        if (tag != CR_SEAL_TAG_PUSH) {
            return cr_seal_fail(r, CR_SEAL_TAG, "record 0, the manifest, "
                                "has the tag %s, not PUSH",
                                cr_seal_tag_name(tag));
        }

        if (cr_seal_manifest_decode(&r->m, r->plain, (size_t) n, &why) != 0)
        {
            return cr_seal_fail(r, CR_SEAL_MANIFEST, "the manifest (record "
                                "0) is not valid: %s", why);
        }

        goto next;
    }

    if (tag != CR_SEAL_TAG_MESSAGE && tag != CR_SEAL_TAG_FINAL) {
        return cr_seal_fail(r, CR_SEAL_TAG, "record %llu (at byte %llu) has "
                            "the tag %s: a record of plain text is MESSAGE "
                            "or FINAL", (unsigned long long) r->records,
                            (unsigned long long) r->at,
                            cr_seal_tag_name(tag));
    }

    lines = cr_seal_newlines(r->plain, (size_t) n);
    want = cr_seal_manifest_lines(&r->m);

    /* Stop at the first record past what the manifest announced, before
     * its text goes out. */
    if (n > r->m.bytes - r->bytes) {
        return cr_seal_fail(r, CR_SEAL_MISMATCH, "the plain text is longer "
                            "than the manifest's %llu bytes (at record %llu)",
                            (unsigned long long) r->m.bytes,
                            (unsigned long long) r->records);
    }

    if (lines > want - r->lines) {
        return cr_seal_fail(r, CR_SEAL_MISMATCH, "the plain text has more "
                            "than the manifest's %llu lines (at record %llu)",
                            (unsigned long long) want,
                            (unsigned long long) r->records);
    }

    r->bytes += n;
    r->lines += lines;
    crypto_hash_sha256_update(&r->sha, r->plain, (size_t) n);

    if (tag == CR_SEAL_TAG_FINAL) {
        uint8_t  sha[CR_SEAL_SHA256_LEN];

        crypto_hash_sha256_final(&r->sha, sha);

        if (r->bytes != r->m.bytes) {
            return cr_seal_fail(r, CR_SEAL_MISMATCH, "the plain text is "
                                "%llu bytes, the manifest says %llu",
                                (unsigned long long) r->bytes,
                                (unsigned long long) r->m.bytes);
        }

        if (r->lines != want) {
            return cr_seal_fail(r, CR_SEAL_MISMATCH, "the plain text has "
                                "%llu lines, the manifest says %llu",
                                (unsigned long long) r->lines,
                                (unsigned long long) want);
        }

        if (sodium_memcmp(sha, r->m.sha256, sizeof(sha)) != 0) {
            return cr_seal_fail(r, CR_SEAL_MISMATCH, "the plain text's "
                                "SHA-256 is not the manifest's");
        }
    }

    if (n && r->out != NULL && r->out(r->ctx, r->plain, (size_t) n) != 0) {
        return cr_seal_fail(r, CR_SEAL_OUTPUT, "cannot write the plain "
                            "text: %s", strerror(errno));
    }

    if (tag == CR_SEAL_TAG_FINAL) {
        r->records++;
        r->state = CR_SEAL_ST_DONE;
        r->have = 0;
        return CR_SEAL_OK;
    }

next:

    r->records++;
    cr_seal_next_record(r);

    return CR_SEAL_OK;
}


/* The reader waits for the next record: its 4-byte length first. */
static void
cr_seal_next_record(cr_seal_reader_t *r)
{
    r->state = CR_SEAL_ST_LENGTH;
    r->at = r->offset;
    r->have = 0;
    r->need = 4;
}


static cr_seal_rc_t
cr_seal_fail(cr_seal_reader_t *r, cr_seal_rc_t rc, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, args);
    va_end(args);

    r->rc = rc;
    r->state = CR_SEAL_ST_FAILED;

    return rc;
}


static const char *
cr_seal_tag_name(unsigned char tag)
{
    switch (tag) {
    case CR_SEAL_TAG_MESSAGE:
        return "MESSAGE";
    case CR_SEAL_TAG_PUSH:
        return "PUSH";
    case CR_SEAL_TAG_REKEY:
        return "REKEY";
    case CR_SEAL_TAG_FINAL:
        return "FINAL";
    default:
        return "unknown";
    }
}


/* ---- bytes ----------------------------------------------------------- */


static uint64_t
cr_seal_newlines(const uint8_t *p, size_t n)
{
    uint64_t        lines;
    const uint8_t  *end, *nl;

    lines = 0;
    end = p + n;

    while (p < end && (nl = memchr(p, '\n', (size_t) (end - p))) != NULL) {
        lines++;
        p = nl + 1;
    }

    return lines;
}


static void
cr_seal_put_be(uint8_t *p, uint64_t v, size_t n)
{
    while (n--) {
        p[n] = (uint8_t) v;
        v >>= 8;
    }
}


static uint64_t
cr_seal_get_be(const uint8_t *p, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }

    return v;
}
