/*
 * cr_seal: sealed code packages (码包), the file a brand sends its
 * printer: the plain text that code-router mint prints, encrypted to the
 * printer's public key, with a manifest of what it holds.
 *
 * Pure C (libsodium only), no I/O: the writer and the reader hand bytes
 * to a callback, so the CLI streams millions of lines through them in
 * constant memory and the fuzzer feeds the reader any slices.
 *
 * The layout (docs/code-format.md, "Sealed code packages"), integers big
 * endian:
 *
 *     header  "CRSEAL", version (2), printer's public key (32),
 *             crypto_box_seal of the stream key (80),
 *             crypto_secretstream_xchacha20poly1305 header (24)
 *     records plain length n (4), then n + 17 bytes of one secretstream
 *             message; additional data: its own 4 length bytes, and for
 *             the first record the whole header before them
 *
 * The first record is the manifest (tag PUSH), then the plain text in
 * records of at most CR_SEAL_CHUNK bytes (tag MESSAGE), the last tagged
 * FINAL, then the end of the file.
 */

#ifndef CR_SEAL_H
#define CR_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>


#define CR_SEAL_MAGIC          "CRSEAL"
#define CR_SEAL_MAGIC_LEN      6
#define CR_SEAL_VERSION        1

#define CR_SEAL_PK_LEN         crypto_box_PUBLICKEYBYTES          /* 32 */
#define CR_SEAL_SK_LEN         crypto_box_SECRETKEYBYTES          /* 32 */
#define CR_SEAL_KEY_LEN                                                  \
    crypto_secretstream_xchacha20poly1305_KEYBYTES                 /* 32 */
#define CR_SEAL_BOXED_LEN      (CR_SEAL_KEY_LEN + crypto_box_SEALBYTES)
#define CR_SEAL_SS_HEADER_LEN                                            \
    crypto_secretstream_xchacha20poly1305_HEADERBYTES              /* 24 */
#define CR_SEAL_ABYTES         crypto_secretstream_xchacha20poly1305_ABYTES

/* The header: magic, version, printer's key, boxed key, stream header. */
#define CR_SEAL_HEADER_LEN     (CR_SEAL_MAGIC_LEN + 2 + CR_SEAL_PK_LEN    \
                                + CR_SEAL_BOXED_LEN + CR_SEAL_SS_HEADER_LEN)

/* A record's plain text is at most this long; the writer fills every
 * body record to it but the last. */
#define CR_SEAL_CHUNK          65536

/* The manifest record: a fixed part, then the URL prefix. */
#define CR_SEAL_MANIFEST_VERSION  1
#define CR_SEAL_MANIFEST_FIXED    62
#define CR_SEAL_PREFIX_MAX        1024
#define CR_SEAL_MANIFEST_MAX      (CR_SEAL_MANIFEST_FIXED                \
                                   + CR_SEAL_PREFIX_MAX)

/* The longest manifest JSON (cr_seal_manifest_json), NUL included. */
#define CR_SEAL_JSON_MAX          (1024 + 6 * CR_SEAL_PREFIX_MAX)

#define CR_SEAL_FORMAT_CODES      1
#define CR_SEAL_FORMAT_CSV        2

#define CR_SEAL_SHA256_LEN        crypto_hash_sha256_BYTES        /* 32 */


typedef enum {
    CR_SEAL_OK = 0,
    CR_SEAL_EMPTY,          /* no byte at all */
    CR_SEAL_NOT_PACKAGE,    /* does not start with "CRSEAL" */
    CR_SEAL_VERSION_UNKNOWN,
    CR_SEAL_OTHER_PRINTER,  /* sealed to another printer's key */
    CR_SEAL_KEY,            /* the boxed key does not open */
    CR_SEAL_TRUNCATED,      /* ends inside the header, a record, or
                             * before the FINAL record */
    CR_SEAL_LENGTH,         /* a record longer than CR_SEAL_CHUNK */
    CR_SEAL_AUTH,           /* a record fails authentication */
    CR_SEAL_TAG,            /* a record's tag out of place */
    CR_SEAL_MANIFEST,       /* the manifest record is not one */
    CR_SEAL_MISMATCH,       /* the plain text is not what the manifest
                             * says (bytes, lines, SHA-256) */
    CR_SEAL_TRAILING,       /* bytes after the FINAL record */
    CR_SEAL_OUTPUT,         /* the output callback failed (its errno) */
    CR_SEAL_PUBLIC_KEY,     /* the writer: the public key is unusable */
    CR_SEAL_SODIUM          /* libsodium failed (cannot initialise) */
} cr_seal_rc_t;


/*
 * What a package holds.  printer is the header's public key (not part of
 * the manifest record, but authenticated with it).  bytes and sha256 are
 * of the whole plain text; it has count lines, plus one (the CSV header)
 * with CR_SEAL_FORMAT_CSV.  prefix is the URL each line's URL starts
 * with ("" without one), NUL-terminated.
 */
typedef struct {
    uint8_t   printer[CR_SEAL_PK_LEN];
    uint8_t   format;
    uint8_t   kid;
    uint8_t   pin_digits;       /* 0: no PIN column */
    uint64_t  from;
    uint64_t  count;
    uint64_t  bytes;
    uint8_t   sha256[CR_SEAL_SHA256_LEN];
    size_t    prefix_len;
    char      prefix[CR_SEAL_PREFIX_MAX + 1];
} cr_seal_manifest_t;


/* Where the writer and the reader send bytes: 0, or -1 (errno set). */
typedef int (*cr_seal_out_pt)(void *ctx, const uint8_t *p, size_t n);


typedef struct {
    crypto_secretstream_xchacha20poly1305_state  st;
    crypto_hash_sha256_state                     sha;
    cr_seal_manifest_t   m;
    cr_seal_out_pt       out;
    void                *ctx;
    uint64_t             bytes;
    uint64_t             lines;
    size_t               len;
    uint8_t              buf[CR_SEAL_CHUNK];
    uint8_t              rec[4 + CR_SEAL_CHUNK + CR_SEAL_ABYTES];
} cr_seal_writer_t;


typedef struct {
    crypto_secretstream_xchacha20poly1305_state  st;
    crypto_hash_sha256_state                     sha;
    cr_seal_manifest_t   m;
    cr_seal_out_pt       out;
    void                *ctx;
    cr_seal_rc_t         rc;
    int                  state;
    uint8_t              pk[CR_SEAL_PK_LEN];
    uint8_t              sk[CR_SEAL_SK_LEN];
    uint64_t             offset;    /* input bytes taken so far */
    uint64_t             at;        /* where the current part began */
    uint64_t             records;
    uint64_t             bytes;
    uint64_t             lines;
    size_t               have;
    size_t               need;
    uint8_t              head[CR_SEAL_HEADER_LEN];
    uint8_t              buf[4 + CR_SEAL_CHUNK + CR_SEAL_ABYTES];
    uint8_t              plain[CR_SEAL_CHUNK];
    char                 err[256];
} cr_seal_reader_t;


/*
 * The writer.  cr_seal_begin() checks m (its bytes and sha256 as the
 * plain text to come will have them; m->printer is set from pk), writes
 * the header and the manifest record; cr_seal_write() takes the plain
 * text in any pieces; cr_seal_end() writes the FINAL record only if what
 * was written matches m, bytes, lines and SHA-256 (else
 * CR_SEAL_MISMATCH: the package stays unfinished, so no reader accepts
 * it).  A fresh random stream key every package.  Wipe w afterwards
 * (cr_seal_writer_wipe), whatever the outcome.
 */
cr_seal_rc_t cr_seal_begin(cr_seal_writer_t *w, const uint8_t *pk,
    const cr_seal_manifest_t *m, cr_seal_out_pt out, void *ctx);
cr_seal_rc_t cr_seal_write(cr_seal_writer_t *w, const void *p, size_t n);
cr_seal_rc_t cr_seal_end(cr_seal_writer_t *w);
void cr_seal_writer_wipe(cr_seal_writer_t *w);

/*
 * The reader, fed the package in any slices: cr_seal_read() verifies
 * each record as it completes and hands only verified plain text to out;
 * the last record's plain text only once the whole text matches the
 * manifest.  cr_seal_read_end() at the end of the input: CR_SEAL_OK only
 * if the FINAL record came and nothing after it.  The first error sticks;
 * cr_seal_reader_error() says it in one line (where, and what it means).
 * r->m holds the manifest once the first record is verified (r->records
 * > 0).  Wipe r afterwards (its secret key, the stream key).
 */
void cr_seal_reader_init(cr_seal_reader_t *r, const uint8_t *pk,
    const uint8_t *sk, cr_seal_out_pt out, void *ctx);
cr_seal_rc_t cr_seal_read(cr_seal_reader_t *r, const uint8_t *p, size_t n);
cr_seal_rc_t cr_seal_read_end(cr_seal_reader_t *r);
const char *cr_seal_reader_error(const cr_seal_reader_t *r);
void cr_seal_reader_wipe(cr_seal_reader_t *r);

/* The lines of m's plain text: count, plus the CSV header. */
uint64_t cr_seal_manifest_lines(const cr_seal_manifest_t *m);

/* NULL if m is a manifest code-router could have written, else why. */
const char *cr_seal_manifest_check(const cr_seal_manifest_t *m);

/* The manifest record of m into out (CR_SEAL_MANIFEST_MAX bytes): its
 * length.  And back: 0, or -1 with *why. */
size_t cr_seal_manifest_encode(const cr_seal_manifest_t *m, uint8_t *out);
int cr_seal_manifest_decode(cr_seal_manifest_t *m, const uint8_t *p,
    size_t n, const char **why);

/* m as JSON, the form FILE.manifest.json and unseal --manifest write,
 * into out (CR_SEAL_JSON_MAX bytes): its length. */
size_t cr_seal_manifest_json(const cr_seal_manifest_t *m, char *out);

#endif /* CR_SEAL_H */
