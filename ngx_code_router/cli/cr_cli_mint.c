/*
 * code-router mint: prints the codes of a run of serials (cr_cli.c's
 * usage text says how).  cr_cmd_mint() reads the options, cr_mint_check()
 * refuses a combination that cannot be printed, cr_mint_run() derives
 * the key and streams one line a serial (cr_mint_emit) to stdout or
 * --out's file, or with --seal-to through cr_seal's writer
 * (cr_mint_seal): a sealed code package.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_keyfile.h"
#include "cr_pin.h"
#include "cr_seal.h"


/* The longest line: serial, code, URL prefix and code again, PIN. */
#define CR_MINT_LINE_MAX  (64 + CR_GS1_PREFIX_MAX + 2 * CR_CODE_LEN        \
                           + CR_PIN_DIGITS_MAX)


/* A manifest holds the prefix mint prints, a Digital Link's too. */
#if CR_GS1_PREFIX_MAX > CR_SEAL_PREFIX_MAX
#error "a sealed package's manifest cannot hold the longest URL prefix"
#endif

/* What the options asked for; UINT64_MAX marks a number not given. */
typedef struct {
    const char  *keyfile;
    const char  *seal_to;       /* NULL without --seal-to */
    const char  *out;           /* NULL: stdout */
    const char  *prefix;        /* "" without --url-prefix */
    const char  *gtin;          /* NULL without --gtin */
    const char  *lot;           /* NULL without --lot */
    size_t       plen;          /* strlen(prefix), set by cr_mint_check() */
    uint64_t     kid;
    uint64_t     from;
    uint64_t     count;
    unsigned     pin_digits;    /* 0: not given */
    int          csv;
    int          pin;
} cr_mint_opts_t;


static int cr_mint_option(int ch, const char *arg, cr_mint_opts_t *o);
static int cr_mint_check(cr_mint_opts_t *o);
static int cr_mint_run(const cr_mint_opts_t *o);
static int cr_mint_seal(const cr_mint_opts_t *o, const cr_key_t *key,
    const uint8_t *pk, cr_cli_out_t *out);
static int cr_mint_emit(const cr_mint_opts_t *o, const cr_key_t *key,
    cr_seal_out_pt sink, void *ctx);
static int cr_mint_hash(void *ctx, const uint8_t *p, size_t n);
static int cr_mint_sealed(void *ctx, const uint8_t *p, size_t n);
static size_t cr_mint_line(char *line, const cr_mint_opts_t *o,
    const cr_key_t *key, uint64_t serial);
static char *cr_u64_to_str(char *end, uint64_t v);


int
cr_cmd_mint(int argc, char **argv)
{
    int             ch, rc;
    cr_mint_opts_t  o;

    static const struct option  opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "kid", required_argument, NULL, 'i' },
        { "from", required_argument, NULL, 'f' },
        { "count", required_argument, NULL, 'n' },
        { "url-prefix", required_argument, NULL, 'u' },
        { "format", required_argument, NULL, 'F' },
        { "pin", no_argument, NULL, 'P' },
        { "pin-digits", required_argument, NULL, 'D' },
        { "gtin", required_argument, NULL, 'g' },
        { "lot", required_argument, NULL, 'l' },
        { "seal-to", required_argument, NULL, 'S' },
        { "out", required_argument, NULL, 'o' },
        { NULL, 0, NULL, 0 }
    };

    memset(&o, 0, sizeof(o));
    o.prefix = "";
    o.kid = o.from = o.count = UINT64_MAX;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        rc = cr_mint_option(ch, optarg, &o);
        if (rc != CR_EXIT_OK) {
            return rc;
        }
    }

    if (optind != argc) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "unexpected argument \"%s\"", argv[optind]);
    }

    rc = cr_mint_check(&o);
    if (rc != CR_EXIT_OK) {
        return rc;
    }

    return cr_mint_run(&o);
}


/* One option ch (getopt_long's value) with its argument into *o:
 * CR_EXIT_OK, or CR_EXIT_USAGE after printing why. */
static int
cr_mint_option(int ch, const char *arg, cr_mint_opts_t *o)
{
    switch (ch) {
    case 'k':
        o->keyfile = arg;
        break;
    case 'i':
        if (cr_cli_parse_u64(arg, CR_KID_MAX, &o->kid) != 0) {
            return cr_cli_error("mint", CR_EXIT_USAGE,
                                "--kid \"%s\": a key id is 0..%d",
                                arg, CR_KID_MAX);
        }
        break;
    case 'f':
        if (cr_cli_parse_u64(arg, CR_SERIAL_MAX, &o->from) != 0) {
            return cr_cli_error("mint", CR_EXIT_USAGE,
                                "--from \"%s\": a serial is 0..%llu",
                                arg, (unsigned long long) CR_SERIAL_MAX);
        }
        break;
    case 'n':
        if (cr_cli_parse_u64(arg, CR_SERIAL_MAX + 1, &o->count) != 0
            || o->count == 0)
        {
            return cr_cli_error("mint", CR_EXIT_USAGE,
                                "--count \"%s\": must be 1..%llu",
                                arg, (unsigned long long) CR_SERIAL_MAX + 1);
        }
        break;
    case 'u':
        o->prefix = arg;
        break;
    case 'g':
        o->gtin = arg;
        break;
    case 'l':
        o->lot = arg;
        break;
    case 'S':
        o->seal_to = arg;
        break;
    case 'o':
        o->out = arg;
        break;
    case 'F':
        if (strcmp(arg, "csv") == 0) {
            o->csv = 1;
        } else if (strcmp(arg, "codes") == 0) {
            o->csv = 0;
        } else {
            return cr_cli_error("mint", CR_EXIT_USAGE,
                                "--format \"%s\": codes or csv", arg);
        }
        break;
    case 'P':
        o->pin = 1;
        break;
    case 'D':
        if (cr_cli_parse_pin_digits("mint", arg, &o->pin_digits) != 0) {
            return CR_EXIT_USAGE;
        }
        break;
    default:
        return cr_cli_error("mint", CR_EXIT_USAGE, "bad option");
    }

    return CR_EXIT_OK;
}


/*
 * Refuses options missing or at odds (CR_EXIT_USAGE after printing why),
 * else CR_EXIT_OK with the defaults filled in: pin_digits, plen, and
 * with --gtin the prefix made a Digital Link's (in static storage).
 */
static int
cr_mint_check(cr_mint_opts_t *o)
{
    int          rc;
    static char  dl_prefix[CR_GS1_PREFIX_MAX + 1];

    if (o->keyfile == NULL || o->kid == UINT64_MAX || o->from == UINT64_MAX
        || o->count == UINT64_MAX)
    {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--key, --kid, --from and --count are required");
    }

    /* One column a field: --format codes has no room for the PIN. */
    if (o->pin && !o->csv) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--pin needs --format csv: the PIN goes in a "
                            "column of its own");
    }

    if (o->pin_digits && !o->pin) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--pin-digits needs --pin");
    }

    if (o->pin_digits == 0) {
        o->pin_digits = CR_PIN_DIGITS_DEFAULT;
    }

    if (o->count - 1 > CR_SERIAL_MAX - o->from) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--from %llu --count %llu runs past the last "
                            "serial %llu", (unsigned long long) o->from,
                            (unsigned long long) o->count,
                            (unsigned long long) CR_SERIAL_MAX);
    }

    o->plen = strlen(o->prefix);

    if (o->plen > CR_URL_PREFIX_MAX
        || strpbrk(o->prefix, ",\"\r\n") != NULL)
    {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--url-prefix: at most %d bytes, without "
                            "commas, quotes or line breaks",
                            CR_URL_PREFIX_MAX);
    }

    /* Binary on a terminal helps nobody and may upset it. */
    if (o->seal_to != NULL && o->out == NULL && isatty(STDOUT_FILENO)) {
        return cr_cli_error("mint", CR_EXIT_USAGE,
                            "--seal-to writes a binary package: give --out "
                            "FILE, or redirect stdout");
    }

    if (o->lot != NULL && o->gtin == NULL) {
        return cr_cli_error("mint", CR_EXIT_USAGE, "--lot needs --gtin");
    }

    if (o->gtin != NULL) {
        if (o->plen == 0) {
            return cr_cli_error("mint", CR_EXIT_USAGE,
                                "--gtin needs --url-prefix: a Digital Link "
                                "is a URL");
        }

        rc = cr_cli_gs1_prefix(o->prefix, o->gtin, o->lot, dl_prefix,
                               sizeof(dl_prefix));
        if (rc != CR_EXIT_OK) {
            return rc;
        }

        o->prefix = dl_prefix;
        o->plen = strlen(o->prefix);
    }

    return CR_EXIT_OK;
}


/* Derives the key of o->kid and writes every line to stdout or --out's
 * file, plain or sealed to --seal-to's key; CR_EXIT_OK, or CR_EXIT_ENV
 * after printing why (nothing left at --out's path then).  The master
 * key and the derived keys are wiped before returning. */
static int
cr_mint_run(const cr_mint_opts_t *o)
{
    int           rc;
    char          err[512];
    uint8_t       master[CR_MASTER_KEY_LEN], pk[CR_PRINTER_PK_LEN];
    cr_key_t      key;
    cr_cli_out_t  out;

    /* The printer's key first: a wrong file is said before any work. */
    if (o->seal_to != NULL
        && cr_keyfile_printer_read_public(o->seal_to, pk, err, sizeof(err))
           != 0)
    {
        return cr_cli_error("mint", CR_EXIT_ENV, "--seal-to: %s", err);
    }

    if (cr_keyfile_read(o->keyfile, master, err, sizeof(err)) != 0) {
        return cr_cli_error("mint", CR_EXIT_ENV, "%s", err);
    }

    rc = cr_key_derive(&key, (unsigned) o->kid, master);
    sodium_memzero(master, sizeof(master));

    if (rc != 0) {
        return cr_cli_error("mint", CR_EXIT_ENV, "cannot derive keys");
    }

    rc = cr_cli_out_open("mint", &out, o->out);

    if (rc == CR_EXIT_OK) {
        if (o->seal_to != NULL) {
            rc = cr_mint_seal(o, &key, pk, &out);

        } else if (cr_mint_emit(o, &key, cr_cli_out_write, out.f) != 0) {
            rc = cr_cli_error("mint", CR_EXIT_ENV, "cannot write: %s",
                              strerror(errno));

        } else {
            rc = cr_cli_out_commit("mint", &out, 0600);
        }

        if (rc != CR_EXIT_OK) {
            cr_cli_out_discard(&out);
        }
    }

    sodium_memzero(&key, sizeof(key));

    return rc;
}


/* The first pass's: the text's length and hash. */
typedef struct {
    crypto_hash_sha256_state  sha;
    uint64_t                  bytes;
} cr_mint_digest_t;


/* The second pass's: the writer, and where it failed. */
typedef struct {
    cr_seal_writer_t  w;
    cr_seal_rc_t      rc;
} cr_mint_sealer_t;


/*
 * A sealed package of the run into out: a first pass hashes the text
 * (the manifest comes first in the package, the SHA-256 in it), the
 * second seals it; the writer refuses to finish unless the second pass
 * gave the same text.  With --out, the manifest goes to FILE.manifest.json
 * too, and the package is linked last: the package at its path means the
 * manifest is beside it.
 */
static int
cr_mint_seal(const cr_mint_opts_t *o, const cr_key_t *key, const uint8_t *pk,
    cr_cli_out_t *out)
{
    int                      rc;
    char                     json[CR_SEAL_JSON_MAX], mpath[4096];
    size_t                   n;
    cr_cli_out_t             mout;
    cr_mint_digest_t         d;
    cr_seal_manifest_t       m;
    static cr_mint_sealer_t  s;

    memset(&m, 0, sizeof(m));
    m.format = o->csv ? CR_SEAL_FORMAT_CSV : CR_SEAL_FORMAT_CODES;
    m.kid = (uint8_t) o->kid;
    m.pin_digits = o->pin ? (uint8_t) o->pin_digits : 0;
    m.from = o->from;
    m.count = o->count;
    m.prefix_len = o->plen;
    memcpy(m.prefix, o->prefix, o->plen);

    mout.path = NULL;
    mout.f = NULL;
    mout.tmp[0] = '\0';

    if (o->out != NULL) {
        if ((size_t) snprintf(mpath, sizeof(mpath), "%s.manifest.json",
                              o->out)
            >= sizeof(mpath))
        {
            return cr_cli_error("mint", CR_EXIT_ENV, "\"%s\": the name is "
                                "too long", o->out);
        }

        rc = cr_cli_out_open("mint", &mout, mpath);
        if (rc != CR_EXIT_OK) {
            return rc;
        }
    }

    crypto_hash_sha256_init(&d.sha);
    d.bytes = 0;
    (void) cr_mint_emit(o, key, cr_mint_hash, &d);
    m.bytes = d.bytes;
    crypto_hash_sha256_final(&d.sha, m.sha256);

    s.rc = cr_seal_begin(&s.w, pk, &m, cr_cli_out_write, out->f);

    if (s.rc == CR_SEAL_OK) {
        (void) cr_mint_emit(o, key, cr_mint_sealed, &s);
    }

    if (s.rc == CR_SEAL_OK) {
        s.rc = cr_seal_end(&s.w);
    }

    m = s.w.m;
    cr_seal_writer_wipe(&s.w);

    switch (s.rc) {
    case CR_SEAL_OK:
        break;
    case CR_SEAL_OUTPUT:
        rc = cr_cli_error("mint", CR_EXIT_ENV, "cannot write: %s",
                          strerror(errno));
        goto failed;
    case CR_SEAL_PUBLIC_KEY:
        rc = cr_cli_error("mint", CR_EXIT_ENV, "--seal-to \"%s\": not a "
                          "usable public key (a box cannot be sealed to it)",
                          o->seal_to);
        goto failed;
    case CR_SEAL_MISMATCH:
        rc = cr_cli_error("mint", CR_EXIT_ENV, "the second pass gave "
                          "another text than the first: nothing sealed");
        goto failed;
    case CR_SEAL_MANIFEST:
        /* mint's checks refuse what a manifest cannot hold first. */
        rc = cr_cli_error("mint", CR_EXIT_ENV, "cannot seal: a manifest "
                          "cannot describe this run");
        goto failed;
    default:
        rc = cr_cli_error("mint", CR_EXIT_ENV, "cannot seal: libsodium "
                          "failed (%d)", (int) s.rc);
        goto failed;
    }

    if (o->out != NULL) {
        n = cr_seal_manifest_json(&m, json);

        if (fwrite(json, 1, n, mout.f) != n) {
            rc = cr_cli_error("mint", CR_EXIT_ENV, "cannot write \"%s\": %s",
                              mpath, strerror(errno));
            goto failed;
        }

        rc = cr_cli_out_commit("mint", &mout, 0644);
        if (rc != CR_EXIT_OK) {
            goto failed;
        }
    }

    rc = cr_cli_out_commit("mint", out, 0644);

    if (rc != CR_EXIT_OK && o->out != NULL) {
        (void) unlink(mpath);
    }

    return rc;

failed:

    cr_cli_out_discard(&mout);

    return rc;
}


/*
 * Every line of the run (a CSV header first) to sink, in blocks of up to
 * 64 KiB; 0, or -1 once sink failed (errno is its).
 */
static int
cr_mint_emit(const cr_mint_opts_t *o, const cr_key_t *key,
    cr_seal_out_pt sink, void *ctx)
{
    size_t          len;
    uint64_t        serial, last;
    const char     *head;
    static uint8_t  buf[65536];

    len = 0;

    if (o->csv) {
        head = o->pin ? "serial,code,url,pin\n" : "serial,code,url\n";
        len = strlen(head);
        memcpy(buf, head, len);
    }

    last = o->from + (o->count - 1);

    for (serial = o->from; /* void */ ; serial++) {
        if (len > sizeof(buf) - CR_MINT_LINE_MAX) {
            if (sink(ctx, buf, len) != 0) {
                return -1;
            }

            len = 0;
        }

        len += cr_mint_line((char *) buf + len, o, key, serial);

        if (serial == last) {
            break;
        }
    }

    return sink(ctx, buf, len);
}


/* The first pass's sink: counts and hashes. */
static int
cr_mint_hash(void *ctx, const uint8_t *p, size_t n)
{
    cr_mint_digest_t  *d;

    d = ctx;
    d->bytes += n;
    crypto_hash_sha256_update(&d->sha, p, n);

    return 0;
}


/* The second pass's sink: the writer; its first error stops the pass. */
static int
cr_mint_sealed(void *ctx, const uint8_t *p, size_t n)
{
    cr_mint_sealer_t  *s;

    s = ctx;
    s->rc = cr_seal_write(&s->w, p, n);

    return s->rc == CR_SEAL_OK ? 0 : -1;
}


/* Writes serial's line, '\n' included, to line (CR_MINT_LINE_MAX bytes):
 * "PREFIXCODE", or with --format csv "SERIAL,CODE,[PREFIXCODE][,PIN]";
 * returns its length. */
static size_t
cr_mint_line(char *line, const cr_mint_opts_t *o, const cr_key_t *key,
    uint64_t serial)
{
    char    *p, *num, digits[24];
    size_t   n;

    p = line;

    if (o->csv) {
        num = cr_u64_to_str(digits + sizeof(digits), serial);
        n = (size_t) (digits + sizeof(digits) - num);
        memcpy(p, num, n);
        p += n;
        *p++ = ',';
        cr_code_seal(p, key, serial);
        p += CR_CODE_LEN;
        *p++ = ',';

        if (o->plen) {
            memcpy(p, o->prefix, o->plen);
            p += o->plen;
            memcpy(p, p - o->plen - 1 - CR_CODE_LEN, CR_CODE_LEN);
            p += CR_CODE_LEN;
        }

        if (o->pin) {
            *p++ = ',';
            cr_pin_compute(p, o->pin_digits, key, serial);
            p += o->pin_digits;
        }

    } else {
        memcpy(p, o->prefix, o->plen);
        p += o->plen;
        cr_code_seal(p, key, serial);
        p += CR_CODE_LEN;
    }

    *p++ = '\n';

    return (size_t) (p - line);
}


/* Writes v in decimal ending just before "end"; returns its first byte. */
static char *
cr_u64_to_str(char *end, uint64_t v)
{
    do {
        *--end = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    return end;
}
