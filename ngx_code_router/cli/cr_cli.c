/*
 * code-router: the command-line tool.
 *
 * One binary, one subcommand per job.  Errors go to stderr as
 * "code-router CMD: what is wrong"; exit codes (also in --help and README):
 *
 *     0  success
 *     1  the input was read but is not valid (inspect: a code is invalid,
 *        or its --pin malformed or wrong)
 *     2  usage: unknown command or option, bad option value
 *     3  environment: a file cannot be read or written
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_keyfile.h"
#include "cr_pin.h"
#include "cr_version.h"


typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *usage;
} cr_cmd_t;


static int cr_cmd_keygen(int argc, char **argv);
static int cr_cmd_inspect(int argc, char **argv);
static int cr_main_usage(FILE *f);
static int cr_inspect_one(const cr_keyring_t *ring, const char *arg,
    const char *pin, unsigned digits);


/*
 * The commands, in the order --help lists them.  A command's usage text
 * is the one source of its --help and of its section of code-router(1)
 * (scripts/man, `make man`): "usage: code-router NAME ..." (indented lines
 * continue it; "       code-router NAME ..." adds a form), a blank line,
 * then paragraphs (a line starting with "--" or "Exit status " starts
 * one).  The synopsis names every option of the getopt tables of
 * cr_cmd_NAME() and of any cr_cmd_NAME_*() it dispatches to (t/27).  A
 * new command is one row here, a "make man", and a README line.
 */
static const cr_cmd_t  cr_cmds[] = {
    { "keygen", cr_cmd_keygen,
      "usage: code-router keygen --out FILE\n"
      "       code-router keygen --printer --out PRINTER\n"
      "\n"
      "Writes a fresh 32-byte master key to FILE with mode 0600.\n"
      "Refuses to overwrite an existing file.\n"
      "--printer writes a printer's key pair for sealed code packages\n"
      "instead: PRINTER.key, the secret key (mode 0600, kept at the printer\n"
      "and read with a master key's checks), and PRINTER.pub, the public\n"
      "key (0644, one line of text, sent to the brand for mint --seal-to);\n"
      "neither is written if either exists.\n" },

    { "mint", cr_cmd_mint,
      "usage: code-router mint --key FILE --kid N --from SERIAL --count N\n"
      "                        [--url-prefix URL [--gtin GTIN [--lot LOT]]]\n"
      "                        [--format codes|csv] [--pin [--pin-digits D]]\n"
      "                        [--seal-to PRINTER.pub] [--out FILE]\n"
      "\n"
      "Prints the codes of serials SERIAL .. SERIAL+N-1 under key id N\n"
      "(0..255), one a line, streamed.  Serials are 0 .. 1099511627775\n"
      "(40 bits).  With --url-prefix each line is URL followed by the\n"
      "code.  --format csv prints a header and \"serial,code,url\" rows\n"
      "(url empty without --url-prefix).\n"
      "--pin (with --format csv) adds a \"pin\" column: each code's hidden\n"
      "PIN of D digits (6..12, default 8), leading zeros kept.\n"
      "--gtin makes each URL a GS1 Digital Link, the code as serial (AI\n"
      "21): URL/01/GTIN-14[/10/LOT]/21/CODE, GTIN-8/12/13 zero-padded,\n"
      "LOT (AI 10: 1..20 of GS1's characters) percent-encoded, scheme and\n"
      "host in upper case (QR alphanumeric mode).\n"
      "See " CR_DOC("gs1") " (docs/gs1.md in the source).\n"
      "--seal-to writes a sealed code package instead, the default way to\n"
      "send codes to a printer: the same text encrypted to the printer's\n"
      "public key (keygen --printer), a fresh key every package, with a\n"
      "manifest inside (key id, serials, count, format, URL prefix, bytes,\n"
      "SHA-256 of the text) that only unseal with the printer's secret key\n"
      "opens.  Two passes over the serials (the SHA-256 first), in constant\n"
      "memory.  The layout: " CR_DOC("code-format") "\n"
      "(docs/code-format.md in the source).\n"
      "--out writes FILE instead of stdout, whole or not at all, never over\n"
      "an existing file: mode 0600 plain (it is worth as much as the key),\n"
      "0644 sealed, with FILE.manifest.json beside it, the manifest in plain\n"
      "JSON for the brand's records.  A sealed package is not written to a\n"
      "terminal.\n"
      "Exit status 0, 2 usage, 3 a key or output file error.\n" },

    { "unseal", cr_cmd_unseal,
      "usage: code-router unseal --key PRINTER.key [--in FILE] [--out FILE]\n"
      "                          [--manifest]\n"
      "\n"
      "Reads a sealed code package (mint --seal-to) from stdin or --in FILE\n"
      "and writes its plain text, byte for byte what mint printed, to\n"
      "stdout.  Each record is authenticated before its text is written;\n"
      "the end of the package (its FINAL record, then nothing) and the\n"
      "manifest's lines, bytes and SHA-256 are checked before the last\n"
      "record's text is.  A package damaged anywhere, truncated, followed\n"
      "by other bytes, sealed to another printer, or not a package at all\n"
      "is refused with the reason, and the text written before is\n"
      "incomplete: an exit status other than 0 means discard the output.\n"
      "The layout: " CR_DOC("code-format") "\n"
      "(docs/code-format.md in the source).\n"
      "--out writes FILE instead of stdout, mode 0600, only once the whole\n"
      "package is verified (never over an existing file).\n"
      "--manifest prints the verified manifest as JSON, as mint --out\n"
      "wrote it to FILE.manifest.json, instead of the text (the whole\n"
      "package is still read and checked).\n"
      "Exit status 0 verified, 1 not a sound package for this key, 2 usage,\n"
      "3 a key or file error.\n" },

    { "inspect", cr_cmd_inspect,
      "usage: code-router inspect --key FILE [--kid N]... CODE|URL|-...\n"
      "       code-router inspect --key FILE [--kid N]... --pin PIN\n"
      "                           [--pin-digits D] CODE|URL\n"
      "\n"
      "Decodes and verifies each code (a URL's last path segment is taken\n"
      "as its code, a GS1 Digital Link's serial (AI 21); - reads codes\n"
      "from stdin, one a line) and prints\n"
      "CODE<TAB>ok<TAB>kid=N<TAB>serial=S, or CODE<TAB>REASON[<TAB>kid=N]\n"
      "with REASON one of malformed, unknown_key, forged.  A Digital Link\n"
      "adds gtin=GTIN-14 and lot=LOT; one that is not valid prints\n"
      "URL<TAB>bad_uri<TAB>WHY, one without AI 21 URL<TAB>no_serial.\n"
      "FILE is tried for every key id unless --kid names the one it\n"
      "belongs to (one key file per key id).\n"
      "--pin checks one genuine code's hidden PIN of D digits (6..12,\n"
      "default 8): ok adds pin=ok; REASON is then also malformed_pin\n"
      "(not exactly D digits 0-9) or wrong_pin.\n"
      "Exit status 0 only if every code was valid (and the PIN right),\n"
      "1 otherwise.\n" },

    { "load", cr_cmd_load,
      "usage: code-router load --db PATH [--key FILE] [--dry-run]\n"
      "                        [--max-errors N]\n"
      "                        [--encoding gbk|gb18030|utf-8]\n"
      "                        [--tz +HH:MM|-HH:MM|Z] FILE...\n"
      "\n"
      "Loads campaign, batch, code (override), GS1 link and campaign rule\n"
      "CSV files into the store at PATH (created if missing) in one\n"
      "transaction: every row is applied, or none.  Every error of each bad\n"
      "row is reported as FILE:LINE: reason (the first N messages, default\n"
      "100) and nothing is committed.  --key decodes a \"code\" column\n"
      "(codes, or the printed URLs, read as inspect reads them).  --dry-run\n"
      "checks and counts, commits nothing.\n"
      "--encoding: the files' encoding (default utf-8; Chinese Excel saves\n"
      "CSV as gbk); a file that starts with a UTF-8 byte order mark (Excel's\n"
      "\"CSV UTF-8\") is UTF-8 whatever --encoding says.  A text field with\n"
      "a character no product name uses (see the docs) is refused with the\n"
      "hint to use --encoding gbk.\n"
      "--tz: the zone of times written without one, as Excel shows them\n"
      "(2026/12/1 10:00, 2026-12-01 10:00:00); a campaign row's tz column\n"
      "overrides it.  Without either such a time is an error.\n"
      "The file format, every rule and error: " CR_DOC("loading") "\n"
      "(docs/loading.md in the source).\n"
      "Exit status 0 committed, 1 bad rows, 2 usage, 3 file or store "
      "error.\n" },

    { "dump", cr_cmd_dump,
      "usage: code-router dump --db PATH [--kind KIND]\n"
      "  KIND: campaigns, batches, codes, links, rules or parents\n"
      "\n"
      "Writes the store as CSV that code-router load reads back unchanged:\n"
      "one kind, or all as sections separated by a blank line (links,\n"
      "rules and parents only if the store has any).\n" },

    { "stat", cr_cmd_stat,
      "usage: code-router stat --db PATH [--digest]\n"
      "\n"
      "Prints the schema, generation, last commit, counts, map size and\n"
      "use, file size and reader slots of the store; with --digest also\n"
      "its content digest (BLAKE2b-256 of every record, as publish prints\n"
      "it and publish --digest checks it; reads the whole store).  Of a\n"
      "scan store (code_router_scans) it says so, and prints its version,\n"
      "how many codes it has counted scans and right PINs of, map size and\n"
      "use, and reader slots.\n" },

    { "scans", cr_cmd_scans,
      "usage: code-router scans --store FILE\n"
      "       code-router scans --store FILE --key FILE --kid N CODE|URL...\n"
      "\n"
      "Reads the scan store FILE (code_router_scans) beside nginx, as CSV:\n"
      "every code it has counted, \"key,kid,serial,scans,first_scan,\n"
      "verified,first_verified\" (key: the fingerprint of the key that\n"
      "signed the code, in hex; verified: right PINs; the first times in\n"
      "UTC, empty if never), or with --key and --kid the codes named (a\n"
      "URL read as inspect reads it), each a row with a \"code\" column in\n"
      "front, zeros for a genuine code never counted.  nginx writes the\n"
      "counts a few seconds after the scans (code_router_scans flush=).\n"
      "Exit status 0, 1 if a code is not a genuine code of key id N, 2\n"
      "usage, 3 the store or the key cannot be read.\n" },

    { "ledger", cr_cmd_ledger,
      "usage: code-router ledger init --pg CONNINFO [--timeout SECONDS]\n"
      "       code-router ledger show --pg CONNINFO --key FILE\n"
      "                               [--timeout SECONDS] CODE|URL\n"
      "\n"
      "The verification ledger in PostgreSQL that nginx's\n"
      "code_router_ledger counts right PINs and prizes in, and keeps\n"
      "the PIN guard's wrong-PIN records in (schema 3), and where\n"
      "code_router_scans ... ledger= adds each node's scan counts\n"
      "(schema 4), shared by every edge node (" CR_DOC("scaling") ").\n"
      "init creates its schema, or upgrades an older one, in one\n"
      "transaction, and prints \"schema N (was M)\"; a newer schema than\n"
      "this code-router knows is refused.  show prints one code's record:\n"
      "CODE<TAB>verifications=N<TAB>first=TIME<TAB>last=TIME<TAB>\n"
      "requests=N (times in ISO 8601, UTC; requests: the request ids\n"
      "remembered), then <TAB>redeemed=TIME if its prize was redeemed; or\n"
      "CODE<TAB>never_verified; then, if nodes counted its scans in the\n"
      "ledger, <TAB>scans=TOTAL<TAB>nodes=NAME:N,... (the first 16 by\n"
      "name).  CONNINFO is a libpq connection string or URI (a password\n"
      "belongs in PGPASSFILE).\n"
      "--timeout: for each step (default 10).\n"
      "Exit status 0 done, 1 not a genuine code, 2 usage, 3 database "
      "error.\n" },

    { "publish", cr_cmd_publish,
      "usage: code-router publish --db MASTER --to EDGE_PATH [--keep N]\n"
      "                           [--digest HEX]\n"
      "\n"
      "Publishes the store MASTER to the path nginx reads, EDGE_PATH, as a\n"
      "symlink to a new version beside it: writes a compacted copy of\n"
      "MASTER (one snapshot; the loader may go on committing) under the\n"
      "next name EDGE_PATH.vN, syncs it, opens and reads it as stat does\n"
      "(which creates its lock file EDGE_PATH.vN-lock, mode 0664), checks\n"
      "that it holds the records of MASTER's snapshot (their content\n"
      "digest; with --digest HEX, MASTER's must be HEX too: a file that\n"
      "came by rsync is checked before it is served), points\n"
      "EDGE_PATH at it by renaming a new symlink over it (atomic: nginx\n"
      "finds the old version or the new one, never nothing), and removes\n"
      "the versions beyond the newest N (default 3, at least 2) with their\n"
      "lock files.  Prints the new version's stat and digest.  Refuses a\n"
      "damaged copy or MASTER (another digest), a MASTER that\n"
      "is not a code-router store, and an EDGE_PATH that exists and is not\n"
      "a symlink.  One publish per EDGE_PATH at a time.  Remote edges and\n"
      "directory permissions: " CR_DOC("scaling") "\n"
      "(docs/scaling.md in the source).\n"
      "Exit status 0 published, 2 usage, 3 file or store error (EDGE_PATH\n"
      "is unchanged unless the error came after \"published\").\n" },

    { NULL, NULL, NULL }
};


int
main(int argc, char **argv)
{
    const cr_cmd_t  *c;

    if (argc < 2) {
        cr_main_usage(stderr);
        return CR_EXIT_USAGE;
    }

    if (strcmp(argv[1], "--version") == 0) {
        puts("code-router " CR_VERSION);
        return CR_EXIT_OK;
    }

    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0)
    {
        if (argc > 2) {
            for (c = cr_cmds; c->name; c++) {
                if (strcmp(argv[2], c->name) == 0) {
                    fputs(c->usage, stdout);
                    return CR_EXIT_OK;
                }
            }
        }

        cr_main_usage(stdout);
        return CR_EXIT_OK;
    }

    if (sodium_init() < 0) {
        fprintf(stderr, "code-router: libsodium cannot initialise\n");
        return CR_EXIT_ENV;
    }

    for (c = cr_cmds; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            if (argc > 2 && (strcmp(argv[2], "--help") == 0
                             || strcmp(argv[2], "-h") == 0))
            {
                fputs(c->usage, stdout);
                return CR_EXIT_OK;
            }

            /* getopt sees "code-router-CMD" as argv[0]. */
            return c->run(argc - 1, argv + 1);
        }
    }

    fprintf(stderr, "code-router: unknown command \"%s\"\n", argv[1]);
    cr_main_usage(stderr);

    return CR_EXIT_USAGE;
}


static int
cr_main_usage(FILE *f)
{
    const cr_cmd_t  *c;

    fputs("usage: code-router COMMAND [OPTIONS]\n\ncommands:", f);

    for (c = cr_cmds; c->name; c++) {
        fprintf(f, " %s", c->name);
    }

    fputs("\n\n'code-router COMMAND --help' describes each.\n"
          "code-router --version prints the version.\n"
          "exit status: 0 success, 1 invalid input, 2 usage, "
          "3 file or system error\n", f);

    return 0;
}


int
cr_cli_error(const char *cmd, int rc, const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "code-router %s: ", cmd);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);

    if (rc == CR_EXIT_USAGE) {
        fprintf(stderr, "(see: code-router %s --help)\n", cmd);
    }

    return rc;
}


int
cr_cli_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t  v;

    if (*s == '\0') {
        return -1;
    }

    v = 0;

    for ( /* void */ ; *s; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        if (v > (max - (uint64_t) (*s - '0')) / 10) {
            return -1;
        }

        v = v * 10 + (uint64_t) (*s - '0');
    }

    *out = v;

    return 0;
}


static int
cr_cmd_keygen(int argc, char **argv)
{
    int          ch, printer;
    char         err[512];
    size_t       len;
    const char  *out;

    static const struct option  opts[] = {
        { "out", required_argument, NULL, 'o' },
        { "printer", no_argument, NULL, 'p' },
        { NULL, 0, NULL, 0 }
    };

    out = NULL;
    printer = 0;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            out = optarg;
            break;
        case 'p':
            printer = 1;
            break;
        default:
            return cr_cli_error("keygen", CR_EXIT_USAGE, "bad option");
        }
    }

    if (out == NULL || optind != argc) {
        return cr_cli_error("keygen", CR_EXIT_USAGE,
                            "--out FILE is required, and nothing else");
    }

    if (!printer) {
        if (cr_keyfile_create(out, err, sizeof(err)) != 0) {
            return cr_cli_error("keygen", CR_EXIT_ENV, "%s", err);
        }

        return CR_EXIT_OK;
    }

    /* "--out p.key" would make p.key.key and p.key.pub. */
    len = strlen(out);

    if (len == 0 || out[len - 1] == '/'
        || (len >= 4 && (strcmp(out + len - 4, ".key") == 0
                         || strcmp(out + len - 4, ".pub") == 0)))
    {
        return cr_cli_error("keygen", CR_EXIT_USAGE,
                            "--printer --out PRINTER names the pair: it "
                            "writes PRINTER.key and PRINTER.pub (\"%s\" "
                            "would not)", out);
    }

    if (cr_keyfile_printer_create(out, err, sizeof(err)) != 0) {
        return cr_cli_error("keygen", CR_EXIT_ENV, "%s", err);
    }

    return CR_EXIT_OK;
}


int
cr_cli_out_open(const char *cmd, cr_cli_out_t *o, const char *path)
{
    int          fd;
    struct stat  st;

    o->path = path;
    o->tmp[0] = '\0';

    if (path == NULL) {
        o->f = stdout;
        return CR_EXIT_OK;
    }

    if (lstat(path, &st) == 0) {
        return cr_cli_error(cmd, CR_EXIT_ENV, "\"%s\" exists: refusing to "
                            "overwrite it", path);
    }

    if ((size_t) snprintf(o->tmp, sizeof(o->tmp), "%s.partial-XXXXXX", path)
        >= sizeof(o->tmp))
    {
        o->tmp[0] = '\0';
        return cr_cli_error(cmd, CR_EXIT_ENV, "\"%s\": the name is too long",
                            path);
    }

    /* mkstemp: mode 0600, never an existing file. */
    fd = mkstemp(o->tmp);
    if (fd == -1) {
        cr_cli_error(cmd, CR_EXIT_ENV, "cannot create \"%s\": %s", o->tmp,
                     strerror(errno));
        o->tmp[0] = '\0';
        return CR_EXIT_ENV;
    }

    o->f = fdopen(fd, "w");
    if (o->f == NULL) {
        close(fd);
        cr_cli_out_discard(o);
        return cr_cli_error(cmd, CR_EXIT_ENV, "cannot open \"%s\": %s",
                            path, strerror(errno));
    }

    return CR_EXIT_OK;
}


int
cr_cli_out_commit(const char *cmd, cr_cli_out_t *o, unsigned mode)
{
    int  fd;

    if (o->path == NULL) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
            return cr_cli_error(cmd, CR_EXIT_ENV, "cannot write: %s",
                                strerror(errno));
        }

        return CR_EXIT_OK;
    }

    fd = fileno(o->f);

    if (fflush(o->f) != 0 || ferror(o->f) || fchmod(fd, (mode_t) mode) != 0
        || fsync(fd) != 0)
    {
        cr_cli_error(cmd, CR_EXIT_ENV, "cannot write \"%s\": %s", o->path,
                     strerror(errno));
        cr_cli_out_discard(o);
        return CR_EXIT_ENV;
    }

    if (fclose(o->f) != 0) {
        o->f = NULL;
        cr_cli_error(cmd, CR_EXIT_ENV, "cannot write \"%s\": %s", o->path,
                     strerror(errno));
        cr_cli_out_discard(o);
        return CR_EXIT_ENV;
    }

    o->f = NULL;

    /* link(), unlike rename(), fails on a file that appeared since. */
    if (link(o->tmp, o->path) != 0) {
        cr_cli_error(cmd, CR_EXIT_ENV, "cannot create \"%s\": %s%s", o->path,
                     strerror(errno),
                     errno == EEXIST ? " (refusing to overwrite it)" : "");
        cr_cli_out_discard(o);
        return CR_EXIT_ENV;
    }

    (void) unlink(o->tmp);
    o->tmp[0] = '\0';

    return CR_EXIT_OK;
}


void
cr_cli_out_discard(cr_cli_out_t *o)
{
    if (o->path == NULL) {
        return;
    }

    if (o->f != NULL) {
        (void) fclose(o->f);
        o->f = NULL;
    }

    if (o->tmp[0] != '\0') {
        (void) unlink(o->tmp);
        o->tmp[0] = '\0';
    }
}


int
cr_cli_out_write(void *ctx, const uint8_t *p, size_t n)
{
    return fwrite(p, 1, n, ctx) == n ? 0 : -1;
}


int
cr_cli_parse_pin_digits(const char *cmd, const char *arg, unsigned *digits)
{
    uint64_t  v;

    if (cr_cli_parse_u64(arg, CR_PIN_DIGITS_MAX, &v) != 0
        || v < CR_PIN_DIGITS_MIN)
    {
        cr_cli_error(cmd, CR_EXIT_USAGE,
                     "--pin-digits \"%s\": a PIN has %d..%d digits", arg,
                     CR_PIN_DIGITS_MIN, CR_PIN_DIGITS_MAX);
        return -1;
    }

    *digits = (unsigned) v;

    return 0;
}


static int
cr_cmd_inspect(int argc, char **argv)
{
    int           ch, bad, i, listed;
    char          buf[4096];
    size_t        n;
    unsigned      pin_digits;
    uint8_t       kids[CR_KID_MAX + 1];
    uint64_t      kid;
    const char   *keyfile, *pin;
    cr_keyring_t  ring;

    static const struct option  opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "kid", required_argument, NULL, 'i' },
        { "pin", required_argument, NULL, 'P' },
        { "pin-digits", required_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 }
    };

    keyfile = NULL;
    pin = NULL;
    pin_digits = 0;
    listed = 0;
    memset(kids, 0, sizeof(kids));

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'k':
            if (keyfile != NULL) {
                return cr_cli_error("inspect", CR_EXIT_USAGE,
                                    "one --key only");
            }
            keyfile = optarg;
            break;
        case 'i':
            if (cr_cli_parse_u64(optarg, CR_KID_MAX, &kid) != 0) {
                return cr_cli_error("inspect", CR_EXIT_USAGE,
                                    "--kid \"%s\": a key id is 0..%d",
                                    optarg, CR_KID_MAX);
            }
            kids[kid] = 1;
            listed = 1;
            break;
        case 'P':
            if (pin != NULL) {
                return cr_cli_error("inspect", CR_EXIT_USAGE,
                                    "one --pin only");
            }
            pin = optarg;
            break;
        case 'D':
            if (cr_cli_parse_pin_digits("inspect", optarg, &pin_digits)
                != 0)
            {
                return CR_EXIT_USAGE;
            }
            break;
        default:
            return cr_cli_error("inspect", CR_EXIT_USAGE, "bad option");
        }
    }

    if (keyfile == NULL || optind == argc) {
        return cr_cli_error("inspect", CR_EXIT_USAGE,
                            "--key FILE and at least one CODE are required");
    }

    /* A PIN belongs to one item: one code, named on the command line. */
    if (pin != NULL && (optind + 1 != argc || strcmp(argv[optind], "-") == 0))
    {
        return cr_cli_error("inspect", CR_EXIT_USAGE,
                            "--pin checks exactly one CODE (not -)");
    }

    if (pin_digits && pin == NULL) {
        return cr_cli_error("inspect", CR_EXIT_USAGE,
                            "--pin-digits needs --pin");
    }

    if (pin_digits == 0) {
        pin_digits = CR_PIN_DIGITS_DEFAULT;
    }

    if (cr_cli_keyring("inspect", keyfile, kids, listed, &ring) != 0) {
        return CR_EXIT_ENV;
    }

    bad = 0;

    for (i = optind; i < argc; i++) {
        if (strcmp(argv[i], "-") != 0) {
            bad |= cr_inspect_one(&ring, argv[i], pin, pin_digits);
            continue;
        }

        while (fgets(buf, sizeof(buf), stdin) != NULL) {
            n = strcspn(buf, "\r\n");
            buf[n] = '\0';

            if (n) {
                bad |= cr_inspect_one(&ring, buf, NULL, 0);
            }
        }
    }

    sodium_memzero(&ring, sizeof(ring));

    if (fflush(stdout) != 0) {
        return cr_cli_error("inspect", CR_EXIT_ENV, "cannot write: %s",
                            strerror(errno));
    }

    return bad ? CR_EXIT_INVALID : CR_EXIT_OK;
}


int
cr_cli_keyring(const char *cmd, const char *path, const uint8_t *kids,
    int listed, cr_keyring_t *ring)
{
    char      err[512];
    unsigned  k;
    uint8_t   master[CR_MASTER_KEY_LEN];
    cr_key_t  key;

    if (cr_keyfile_read(path, master, err, sizeof(err)) != 0) {
        cr_cli_error(cmd, CR_EXIT_ENV, "%s", err);
        return -1;
    }

    memset(ring, 0, sizeof(cr_keyring_t));

    for (k = 0; k <= CR_KID_MAX; k++) {
        if (listed && !kids[k]) {
            continue;
        }

        if (cr_key_derive(&key, k, master) != 0) {
            sodium_memzero(master, sizeof(master));
            cr_cli_error(cmd, CR_EXIT_ENV, "cannot derive keys");
            return -1;
        }

        cr_keyring_add(ring, &key);
    }

    sodium_memzero(master, sizeof(master));
    sodium_memzero(&key, sizeof(key));

    return 0;
}


/* Prints s escaped: it is untrusted input. */
static void
cr_print_escaped(const char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((unsigned char) *s < 0x21 || (unsigned char) *s > 0x7e) {
            printf("\\x%02x", (unsigned char) *s);
        } else {
            putchar(*s);
        }
    }
}


/*
 * Prints one verdict; returns 1 if the code is not valid.  With a PIN (of
 * "digits" digits), a genuine code is valid only if the PIN is right.  A
 * GS1 Digital Link's code is its serial (AI 21); its GTIN and lot follow
 * the verdict.
 */
static int
cr_inspect_one(const cr_keyring_t *ring, const char *arg, const char *pin,
    unsigned digits)
{
    int            bad;
    size_t         len;
    const char    *code;
    unsigned       kid;
    uint64_t       serial;
    cr_pin_rc_t    prc;
    cr_code_rc_t   rc;
    cr_gs1_rc_t    grc;
    cr_gs1_link_t  dl;

    grc = cr_gs1_code_of(arg, strlen(arg), &dl, &code, &len);

    if (grc != CR_GS1_OK && grc != CR_GS1_NO_GTIN) {
        cr_print_escaped(arg);
        printf("\tbad_uri\t%s\n", cr_gs1_rc_name(grc));
        cr_cli_error("inspect", CR_EXIT_INVALID, "not a valid GS1 Digital "
                     "Link: %s", cr_gs1_rc_text(grc));
        return 1;
    }

    if (code == NULL) {
        cr_print_escaped(arg);
        printf("\tno_serial\t%s=%s\n", dl.ai[1] == '0' ? "sscc" : "gtin",
               dl.key);
        return 1;
    }

    rc = cr_code_open(ring, code, len, &kid, &serial);

    cr_print_escaped(code);
    bad = 1;

    switch (rc) {
    case CR_CODE_OK:
        if (pin == NULL) {
            printf("\tok\tkid=%u\tserial=%llu", kid,
                   (unsigned long long) serial);
            bad = 0;
            break;
        }

        prc = cr_pin_check(&ring->keys[kid], serial, digits, pin,
                           strlen(pin));

        if (prc == CR_PIN_OK) {
            printf("\tok\tkid=%u\tserial=%llu\tpin=ok", kid,
                   (unsigned long long) serial);
            bad = 0;
            break;
        }

        printf("\t%s\tkid=%u\tserial=%llu", cr_pin_rc_name(prc), kid,
               (unsigned long long) serial);

        if (prc == CR_PIN_MALFORMED) {
            cr_cli_error("inspect", CR_EXIT_INVALID,
                         "--pin: a PIN is exactly %u digits 0-9, without "
                         "spaces or signs (got %zu bytes%s)", digits,
                         strlen(pin),
                         strspn(pin, "0123456789") == strlen(pin)
                         ? "" : ", not all digits");
        }

        break;

    case CR_CODE_MALFORMED:
        printf("\tmalformed");
        break;

    default:
        printf("\t%s\tkid=%u", cr_code_rc_name(rc), kid);
        break;
    }

    if (grc == CR_GS1_OK) {
        printf("\tgtin=%s", dl.gtin);

        if (dl.has & CR_GS1_HAS_LOT) {
            fputs("\tlot=", stdout);
            cr_print_escaped(dl.lot);
        }
    }

    putchar('\n');

    return bad;
}
