/*
 * code-router ledger: the PostgreSQL verification ledger's schema (init)
 * and one code's record (show).  The statements are cr_ledger's, the
 * ones nginx uses.
 */

#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_ledger.h"
#include "cr_time.h"


static void cr_ledger_cli_scans(const cr_ledger_scans_record_t *sr);
static int cr_ledger_cli_show(cr_ledger_conn_t *c, const char *keyfile,
    const char *arg, int64_t timeout_us);


int
cr_cmd_ledger(int argc, char **argv)
{
    int                ch, rc, from;
    uint64_t           secs;
    const char        *sub, *pg, *keyfile;
    cr_ledger_conn_t  *c;

    static const struct option  opts[] = {
        { "pg", required_argument, NULL, 'p' },
        { "key", required_argument, NULL, 'k' },
        { "timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 }
    };

    if (argc < 2 || (strcmp(argv[1], "init") != 0
                     && strcmp(argv[1], "show") != 0))
    {
        return cr_cli_error("ledger", CR_EXIT_USAGE,
                            "init or show, then options");
    }

    sub = argv[1];
    argc--;
    argv++;

    pg = NULL;
    keyfile = NULL;
    secs = 10;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            pg = optarg;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 't':
            if (cr_cli_parse_u64(optarg, 3600, &secs) != 0 || secs == 0) {
                return cr_cli_error("ledger", CR_EXIT_USAGE,
                                    "--timeout \"%s\": 1 to 3600 seconds",
                                    optarg);
            }
            break;
        default:
            return cr_cli_error("ledger", CR_EXIT_USAGE, "bad option");
        }
    }

    if (pg == NULL || *pg == '\0') {
        return cr_cli_error("ledger", CR_EXIT_USAGE,
                            "--pg CONNINFO is required");
    }

    if (strcmp(sub, "init") == 0 && (keyfile || optind != argc)) {
        return cr_cli_error("ledger", CR_EXIT_USAGE,
                            "init takes --pg and --timeout only");
    }

    if (strcmp(sub, "show") == 0 && (keyfile == NULL || optind + 1 != argc))
    {
        return cr_cli_error("ledger", CR_EXIT_USAGE,
                            "show needs --key FILE and one CODE");
    }

    c = cr_ledger_conn_new(pg, (unsigned) secs * 1000);
    if (c == NULL) {
        return cr_cli_error("ledger", CR_EXIT_ENV, "out of memory");
    }

    if (strcmp(sub, "show") == 0) {
        rc = cr_ledger_cli_show(c, keyfile, argv[optind],
                                (int64_t) secs * 1000000);
        cr_ledger_conn_free(c);
        return rc;
    }

    rc = cr_ledger_init(c, cr_ledger_now_us() + (int64_t) secs * 1000000,
                        &from);

    if (rc != 0) {
        rc = cr_cli_error("ledger", CR_EXIT_ENV, "init: %s",
                          rc == CR_LEDGER_TIMEOUT
                          ? "no answer within the timeout"
                          : cr_ledger_error(c));
        cr_ledger_conn_free(c);
        return rc;
    }

    cr_ledger_conn_free(c);

    printf("schema %d (was %d)\n", CR_LEDGER_SCHEMA, from);

    return CR_EXIT_OK;
}


static int
cr_ledger_cli_show(cr_ledger_conn_t *c, const char *keyfile,
    const char *arg, int64_t timeout_us)
{
    int                  rc;
    char                 first[32], last[32];
    unsigned             kid;
    uint8_t              kids[CR_KID_MAX + 1];
    uint64_t             serial;
    const char          *code, *s;
    cr_keyring_t         ring;
    cr_ledger_code_t     lc;
    cr_ledger_record_t   rec;
    cr_ledger_scans_record_t  sr;

    memset(kids, 0, sizeof(kids));

    if (cr_cli_keyring("ledger", keyfile, kids, 0, &ring) != 0) {
        return CR_EXIT_ENV;
    }

    s = strrchr(arg, '/');
    code = s ? s + 1 : arg;

    if (cr_code_open(&ring, code, strlen(code), &kid, &serial)
        != CR_CODE_OK)
    {
        sodium_memzero(&ring, sizeof(ring));
        return cr_cli_error("ledger", CR_EXIT_INVALID, "show: \"%s\" is not "
                            "a genuine code of this key", code);
    }

    memcpy(lc.fp, ring.keys[kid].fp, CR_LEDGER_FP_LEN);
    lc.kid = kid;
    lc.serial = serial;
    sodium_memzero(&ring, sizeof(ring));

    rc = cr_ledger_show(c, &lc, cr_ledger_now_us() + timeout_us, &rec);

    if (rc == 0 || rc == CR_LEDGER_NOTFOUND) {
        rc = cr_ledger_show_scans(c, &lc, cr_ledger_now_us() + timeout_us,
                                  &sr) == 0
             ? (rc == CR_LEDGER_NOTFOUND ? CR_LEDGER_NOTFOUND : 0) : -1;
    }

    if (rc == CR_LEDGER_NOTFOUND) {
        printf("%s\tnever_verified", code);
        cr_ledger_cli_scans(&sr);
        putchar('\n');
        return CR_EXIT_OK;
    }

    if (rc != 0) {
        return cr_cli_error("ledger", CR_EXIT_ENV, "show: %s",
                            rc == CR_LEDGER_TIMEOUT
                            ? "no answer within the timeout"
                            : cr_ledger_error(c));
    }

    printf("%s\tverifications=%u", code, rec.count);

    if (rec.count) {
        cr_format_time(first, sizeof(first), rec.first, 0);
        cr_format_time(last, sizeof(last), rec.last, 0);
        printf("\tfirst=%s\tlast=%s\trequests=%llu", first, last,
               (unsigned long long) rec.requests);
    }

    if (rec.redeemed) {
        cr_format_time(first, sizeof(first), rec.redeemed, 0);
        printf("\tredeemed=%s", first);
    }

    cr_ledger_cli_scans(&sr);
    putchar('\n');

    return CR_EXIT_OK;
}


/* "\tscans=TOTAL\tnodes=NAME:COUNT,..." (the first
 * CR_LEDGER_NODES_SHOWN, then ",..." if there are more); nothing for a
 * code no node counted in the ledger (code_router_scans ... ledger=). */
static void
cr_ledger_cli_scans(const cr_ledger_scans_record_t *sr)
{
    size_t  i;

    if (sr->nodes == 0) {
        return;
    }

    printf("\tscans=%llu\tnodes=", (unsigned long long) sr->total);

    for (i = 0; i < sr->nodes && i < CR_LEDGER_NODES_SHOWN; i++) {
        printf("%s%s:%llu", i ? "," : "", sr->name[i],
               (unsigned long long) sr->count[i]);
    }

    if (sr->nodes > CR_LEDGER_NODES_SHOWN) {
        printf(",...");
    }
}
