/*
 * code-router mint: prints the codes of a run of serials (cr_cli.c's
 * usage text says how).  cr_cmd_mint() reads the options, cr_mint_check()
 * refuses a combination that cannot be printed, cr_mint_run() derives
 * the key and streams one line a serial.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_keyfile.h"
#include "cr_pin.h"


/* The longest line: serial, code, URL prefix and code again, PIN. */
#define CR_MINT_LINE_MAX  (64 + CR_GS1_PREFIX_MAX + 2 * CR_CODE_LEN        \
                           + CR_PIN_DIGITS_MAX)


/* What the options asked for; UINT64_MAX marks a number not given. */
typedef struct {
    const char  *keyfile;
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


/* Derives the key of o->kid and prints every line to stdout (block
 * buffered); CR_EXIT_OK, or CR_EXIT_ENV after printing why.  The master
 * key and the derived keys are wiped before returning. */
static int
cr_mint_run(const cr_mint_opts_t *o)
{
    int          rc;
    char         line[CR_MINT_LINE_MAX], err[512];
    uint8_t      master[CR_MASTER_KEY_LEN];
    uint64_t     serial, last;
    cr_key_t     key;
    static char  obuf[1 << 20];

    if (cr_keyfile_read(o->keyfile, master, err, sizeof(err)) != 0) {
        return cr_cli_error("mint", CR_EXIT_ENV, "%s", err);
    }

    rc = cr_key_derive(&key, (unsigned) o->kid, master);
    sodium_memzero(master, sizeof(master));

    if (rc != 0) {
        return cr_cli_error("mint", CR_EXIT_ENV, "cannot derive keys");
    }

    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));

    if (o->csv) {
        fputs(o->pin ? "serial,code,url,pin\n" : "serial,code,url\n",
              stdout);
    }

    last = o->from + (o->count - 1);

    for (serial = o->from; /* void */ ; serial++) {
        fwrite(line, 1, cr_mint_line(line, o, &key, serial), stdout);

        if (serial == last) {
            break;
        }
    }

    sodium_memzero(&key, sizeof(key));

    if (fflush(stdout) != 0 || ferror(stdout)) {
        return cr_cli_error("mint", CR_EXIT_ENV, "cannot write: %s",
                            strerror(errno));
    }

    return CR_EXIT_OK;
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
