/*
 * code-router scans: the scan store (code_router_scans) read beside nginx:
 * every code's scan and right-PIN counts, or those of the codes named;
 * and what "code-router stat" says of a scan store.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_gs1.h"
#include "cr_scans.h"
#include "cr_time.h"


/* One code's two records, merged into one row as the store reads. */
typedef struct {
    int        have;
    cr_scan_t  scans;
    cr_scan_t  verified;
} cr_scans_row_t;


static void cr_scans_print_row(const char *code, const cr_scans_row_t *r);
static int cr_scans_list(void *ctx, const cr_scan_t *v);
static int cr_scans_lookup(cr_scans_t *sc, const cr_keyring_t *ring,
    unsigned kid, const char *arg);


int
cr_cmd_scans(int argc, char **argv)
{
    int              ch, rc, i, bad;
    char             err[512];
    uint8_t          kids[CR_KID_MAX + 1];
    uint64_t         kid;
    cr_scans_t      *sc;
    const char      *store, *keyfile;
    cr_keyring_t     ring;
    cr_scans_row_t   row;

    static const struct option  opts[] = {
        { "store", required_argument, NULL, 's' },
        { "key", required_argument, NULL, 'k' },
        { "kid", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 }
    };

    store = keyfile = NULL;
    kid = UINT64_MAX;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            store = optarg;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 'i':
            if (cr_cli_parse_u64(optarg, CR_KID_MAX, &kid) != 0) {
                return cr_cli_error("scans", CR_EXIT_USAGE,
                                    "--kid \"%s\": a key id is 0..%d",
                                    optarg, CR_KID_MAX);
            }
            break;
        default:
            return cr_cli_error("scans", CR_EXIT_USAGE, "bad option");
        }
    }

    if (store == NULL) {
        return cr_cli_error("scans", CR_EXIT_USAGE, "--store FILE is "
                            "required");
    }

    /* Codes are looked up under their key: one key file per key id. */
    if ((keyfile != NULL) != (optind < argc)
        || (keyfile != NULL) != (kid != UINT64_MAX))
    {
        return cr_cli_error("scans", CR_EXIT_USAGE, "either no code, or "
                            "--key FILE --kid N and the codes to look up");
    }

    memset(&ring, 0, sizeof(ring));
    memset(kids, 0, sizeof(kids));

    if (keyfile != NULL) {
        kids[kid] = 1;

        if (cr_cli_keyring("scans", keyfile, kids, 1, &ring) != 0) {
            return CR_EXIT_ENV;
        }
    }

    if (cr_scans_open(&sc, store, 0, CR_SCANS_READ, err, sizeof(err)) != 0) {
        sodium_memzero(&ring, sizeof(ring));
        return cr_cli_error("scans", CR_EXIT_ENV, "%s", err);
    }

    fputs(keyfile ? "code,key,kid,serial,scans,first_scan,verified,"
                    "first_verified\n"
                  : "key,kid,serial,scans,first_scan,verified,"
                    "first_verified\n", stdout);
    bad = 0;

    if (keyfile == NULL) {
        memset(&row, 0, sizeof(row));
        rc = cr_scans_each(sc, cr_scans_list, &row);

        if (rc == 0 && row.have) {
            cr_scans_print_row(NULL, &row);
        }

    } else {
        rc = 0;

        for (i = optind; i < argc && rc == 0; i++) {
            rc = cr_scans_lookup(sc, &ring, (unsigned) kid, argv[i]);
            if (rc == 1) {
                bad = 1;
                rc = 0;
            }
        }
    }

    sodium_memzero(&ring, sizeof(ring));

    if (rc != 0) {
        cr_cli_error("scans", CR_EXIT_ENV, "%s", cr_scans_error(sc));
        cr_scans_close(sc);
        return CR_EXIT_ENV;
    }

    cr_scans_close(sc);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        return cr_cli_error("scans", CR_EXIT_ENV, "cannot write: %s",
                            strerror(errno));
    }

    return bad ? CR_EXIT_INVALID : CR_EXIT_OK;
}


/* Records arrive in key order: a code's two are neighbours. */
static int
cr_scans_list(void *ctx, const cr_scan_t *v)
{
    cr_scans_row_t  *r = ctx;
    const cr_scan_t *s;

    s = r->have & 1 ? &r->scans : &r->verified;

    if (r->have && (memcmp(s->fp, v->fp, CR_SCANS_FP_LEN) != 0
                    || s->kid != v->kid || s->serial != v->serial))
    {
        cr_scans_print_row(NULL, r);
        memset(r, 0, sizeof(cr_scans_row_t));
    }

    if (v->kind == CR_SCANS_SCANS) {
        r->scans = *v;
        r->have |= 1;
    } else {
        r->verified = *v;
        r->have |= 2;
    }

    return 0;
}


/* One code (or printed URL): 0, 1 if it is not a genuine code of kid, or
 * -1 (the store). */
static int
cr_scans_lookup(cr_scans_t *sc, const cr_keyring_t *ring, unsigned kid,
    const char *arg)
{
    int             rc;
    char            canon[CR_CODE_LEN + 1];
    size_t          len;
    unsigned        k;
    uint64_t        serial;
    const char     *code;
    cr_code_rc_t    crc;
    cr_gs1_link_t   dl;
    cr_scans_row_t  r;

    (void) cr_gs1_code_of(arg, strlen(arg), &dl, &code, &len);

    crc = code ? cr_code_open(ring, code, len, &k, &serial)
               : CR_CODE_MALFORMED;

    if (crc != CR_CODE_OK) {
        cr_cli_error("scans", CR_EXIT_INVALID, "\"%s\": %s%s", arg,
                     cr_code_rc_name(crc), crc == CR_CODE_UNKNOWN_KEY
                     ? " (not of --kid)" : "");
        return 1;
    }

    memset(&r, 0, sizeof(r));

    rc = cr_scans_get(sc, ring->keys[kid].fp, kid, serial, CR_SCANS_SCANS,
                      &r.scans);
    if (rc == 0) {
        r.have |= 1;
    } else if (rc != CR_SCANS_NOTFOUND) {
        return -1;
    }

    rc = cr_scans_get(sc, ring->keys[kid].fp, kid, serial,
                      CR_SCANS_VERIFIED, &r.verified);
    if (rc == 0) {
        r.have |= 2;
    } else if (rc != CR_SCANS_NOTFOUND) {
        return -1;
    }

    /* A code never scanned is a row of zeros: it is genuine. */
    memcpy(r.scans.fp, ring->keys[kid].fp, CR_SCANS_FP_LEN);
    r.scans.kid = (uint8_t) kid;
    r.scans.serial = serial;
    r.have |= 1;

    cr_code_canonical(canon, code);
    canon[CR_CODE_LEN] = '\0';
    cr_scans_print_row(canon, &r);

    return 0;
}


/* code (if any), key fingerprint, kid, serial, then each count and the
 * time of its first (UTC; empty if never). */
static void
cr_scans_print_row(const char *code, const cr_scans_row_t *r)
{
    int               i, k;
    char              when[40];
    const cr_scan_t  *id, *s;

    id = r->have & 1 ? &r->scans : &r->verified;

    if (code) {
        printf("%s,", code);
    }

    for (i = 0; i < CR_SCANS_FP_LEN; i++) {
        printf("%02x", id->fp[i]);
    }

    printf(",%u,%llu", id->kid, (unsigned long long) id->serial);

    for (k = 1; k <= 2; k++) {
        s = k == 1 ? &r->scans : &r->verified;

        if (!(r->have & k) || s->first == 0) {
            printf(",%u,", (r->have & k) ? s->count : 0);
            continue;
        }

        cr_format_time(when, sizeof(when), s->first, 0);
        printf(",%u,%s", s->count, when);
    }

    putchar('\n');
}


int
cr_cli_scans_stat(const char *db)
{
    char              err[512];
    cr_scans_t       *sc;
    cr_scans_info_t   info;

    if (cr_scans_open(&sc, db, 0, CR_SCANS_READ, err, sizeof(err)) != 0) {
        return cr_cli_error("stat", CR_EXIT_ENV, "%s", err);
    }

    if (cr_scans_info(sc, &info) != 0) {
        cr_cli_error("stat", CR_EXIT_ENV, "%s", cr_scans_error(sc));
        cr_scans_close(sc);
        return CR_EXIT_ENV;
    }

    cr_scans_close(sc);

    printf("kind          scan store (code_router_scans; its records: "
           "code-router scans --store %s)\n"
           "version       %u\n"
           "scanned       %llu codes\n"
           "verified      %llu codes\n"
           "map_size      %llu\n"
           "map_used      %llu\n"
           "readers       %u of %u\n",
           db, info.version, (unsigned long long) info.scanned,
           (unsigned long long) info.verified,
           (unsigned long long) info.map_size,
           (unsigned long long) info.map_used, info.readers,
           info.max_readers);

    return CR_EXIT_OK;
}
