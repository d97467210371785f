/*
 * code-router unseal: the plain text of a sealed code package, at the
 * printer (cr_cli.c's usage text says how; the format is cr_seal.h's).
 * The package streams through cr_seal's reader in 64 KiB reads, so a
 * package of millions of lines takes constant memory.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_keyfile.h"
#include "cr_seal.h"


/* Where the plain text goes, and whether any has gone. */
typedef struct {
    FILE  *f;
    int    wrote;
} cr_unseal_sink_t;


static int cr_unseal_run(int fd, const char *in, int manifest,
    const uint8_t *pk, const uint8_t *sk, cr_cli_out_t *out);
static int cr_unseal_write(void *ctx, const uint8_t *p, size_t n);


int
cr_cmd_unseal(int argc, char **argv)
{
    int           ch, fd, rc, manifest;
    char          err[512];
    uint8_t       pk[CR_PRINTER_PK_LEN], sk[CR_PRINTER_SK_LEN];
    const char   *keyfile, *in, *outpath;
    cr_cli_out_t  out;

    static const struct option  opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },
        { "manifest", no_argument, NULL, 'm' },
        { NULL, 0, NULL, 0 }
    };

    keyfile = NULL;
    in = NULL;
    outpath = NULL;
    manifest = 0;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'k':
            keyfile = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case 'o':
            outpath = optarg;
            break;
        case 'm':
            manifest = 1;
            break;
        default:
            return cr_cli_error("unseal", CR_EXIT_USAGE, "bad option");
        }
    }

    if (optind != argc) {
        return cr_cli_error("unseal", CR_EXIT_USAGE,
                            "unexpected argument \"%s\" (the package comes "
                            "on stdin, or with --in FILE)", argv[optind]);
    }

    if (keyfile == NULL) {
        return cr_cli_error("unseal", CR_EXIT_USAGE,
                            "--key PRINTER.key is required");
    }

    /* Waiting on a terminal for a binary package helps nobody. */
    if (in == NULL && isatty(STDIN_FILENO)) {
        return cr_cli_error("unseal", CR_EXIT_USAGE,
                            "stdin is a terminal: give --in FILE, or send "
                            "the package on stdin");
    }

    if (cr_keyfile_printer_read(keyfile, pk, sk, err, sizeof(err)) != 0) {
        return cr_cli_error("unseal", CR_EXIT_ENV, "%s", err);
    }

    fd = STDIN_FILENO;

    if (in != NULL) {
        fd = open(in, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            sodium_memzero(sk, sizeof(sk));
            return cr_cli_error("unseal", CR_EXIT_ENV, "cannot open \"%s\": "
                                "%s", in, strerror(errno));
        }
    }

    rc = cr_cli_out_open("unseal", &out, outpath);

    if (rc == CR_EXIT_OK) {
        rc = cr_unseal_run(fd, in, manifest, pk, sk, &out);

        if (rc == CR_EXIT_OK) {
            rc = cr_cli_out_commit("unseal", &out, 0600);
        } else {
            cr_cli_out_discard(&out);
        }
    }

    sodium_memzero(sk, sizeof(sk));

    if (in != NULL) {
        close(fd);
    }

    return rc;
}


/*
 * Reads the package from fd to its end through the reader, the text to
 * out (or, with manifest, the manifest's JSON once all is verified); an
 * exit code, the error printed.
 */
static int
cr_unseal_run(int fd, const char *in, int manifest, const uint8_t *pk,
    const uint8_t *sk, cr_cli_out_t *out)
{
    int                      rc;
    char                     json[CR_SEAL_JSON_MAX];
    size_t                   n;
    ssize_t                  k;
    cr_seal_rc_t             src;
    cr_unseal_sink_t         sink;
    static uint8_t           buf[65536];
    static cr_seal_reader_t  r;

    sink.f = out->f;
    sink.wrote = 0;

    cr_seal_reader_init(&r, pk, sk, manifest ? NULL : cr_unseal_write,
                        &sink);
    src = r.rc;

    while (src == CR_SEAL_OK) {
        k = read(fd, buf, sizeof(buf));

        if (k == -1 && errno == EINTR) {
            continue;
        }

        if (k == -1) {
            cr_seal_reader_wipe(&r);
            return cr_cli_error("unseal", CR_EXIT_ENV, "cannot read %s: %s",
                                in ? in : "stdin", strerror(errno));
        }

        if (k == 0) {
            src = cr_seal_read_end(&r);
            break;
        }

        src = cr_seal_read(&r, buf, (size_t) k);
    }

    if (src != CR_SEAL_OK) {
        rc = (src == CR_SEAL_OUTPUT || src == CR_SEAL_SODIUM)
             ? CR_EXIT_ENV : CR_EXIT_INVALID;

        /* What went to stdout cannot be taken back: say it is not the
         * package (with --out, nothing was written where it would be). */
        cr_cli_error("unseal", rc, "%s%s", cr_seal_reader_error(&r),
                     sink.wrote && out->path == NULL
                     ? "; discard the text written before it" : "");
        cr_seal_reader_wipe(&r);
        return rc;
    }

    if (manifest) {
        n = cr_seal_manifest_json(&r.m, json);

        if (fwrite(json, 1, n, out->f) != n) {
            cr_seal_reader_wipe(&r);
            return cr_cli_error("unseal", CR_EXIT_ENV, "cannot write: %s",
                                strerror(errno));
        }
    }

    cr_seal_reader_wipe(&r);

    return CR_EXIT_OK;
}


static int
cr_unseal_write(void *ctx, const uint8_t *p, size_t n)
{
    cr_unseal_sink_t  *s;

    s = ctx;
    s->wrote = 1;

    return cr_cli_out_write(s->f, p, n);
}
