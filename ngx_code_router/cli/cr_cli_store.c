/*
 * code-router load, dump, stat: the CLI over cr_store and cr_load.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cr_cli.h"
#include "cr_codec.h"
#include "cr_keyfile.h"
#include "cr_load.h"
#include "cr_scans.h"
#include "cr_store.h"
#include "cr_time.h"


static int cr_load_run(cr_store_t *st, const cr_keyring_t *ring,
    const cr_load_opts_t *lopts, char **files, int nfiles, int dry,
    unsigned max_errors);
static void cr_print_counts(const char *what, const cr_load_count_t *c);
static double cr_now_f(void);
static void cr_csv_field(FILE *f, const cr_str_t *s, int last);
static int cr_dump_campaign(void *ctx, const cr_campaign_t *c);
static int cr_dump_batch(void *ctx, const cr_batch_t *b);
static int cr_dump_batch_dealer(void *ctx, const cr_batch_t *b);
static int cr_dump_batch_activate(void *ctx, const cr_batch_t *b);
static int cr_any_dealer(void *ctx, const cr_batch_t *b);
static int cr_dump_override(void *ctx, const cr_override_t *o);
static int cr_dump_link(void *ctx, const cr_link_t *l);
static int cr_dump_rule(void *ctx, const cr_rule_t *r);
static int cr_any_rule(void *ctx, const cr_rule_t *r);
static int cr_any_link(void *ctx, const cr_link_t *l);
static int cr_dump_parent(void *ctx, const cr_parent_t *p);
static int cr_any_parent(void *ctx, const cr_parent_t *p);
static int cr_cli_open_reader(const char *cmd, const char *db, int optind_,
    int argc, cr_store_t **st);


int
cr_cmd_load(int argc, char **argv)
{
    int            ch, dry, rc, i;
    char           err[512], tmpl[] = "/tmp/code-router-dry-XXXXXX";
    char           tmpdb[sizeof(tmpl) + 16];
    uint8_t        master[CR_MASTER_KEY_LEN];
    uint64_t       max_errors, total, need;
    unsigned       kid;
    cr_key_t       key;
    cr_store_t    *st;
    struct stat    sb;
    cr_store_info_t  info;
    const char    *db, *keyfile, *open_path;
    cr_keyring_t  *ring;
    cr_load_opts_t  lopts;

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "key", required_argument, NULL, 'k' },
        { "dry-run", no_argument, NULL, 'n' },
        { "max-errors", required_argument, NULL, 'm' },
        { "encoding", required_argument, NULL, 'e' },
        { "tz", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 }
    };

    memset(&lopts, 0, sizeof(lopts));

    db = keyfile = NULL;
    dry = 0;
    max_errors = 100;
    ring = NULL;
    tmpdb[0] = '\0';

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            db = optarg;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 'n':
            dry = 1;
            break;
        case 'm':
            if (cr_cli_parse_u64(optarg, 1000000, &max_errors) != 0
                || max_errors == 0)
            {
                return cr_cli_error("load", CR_EXIT_USAGE,
                                    "--max-errors \"%s\": 1..1000000",
                                    optarg);
            }
            break;
        case 'e':
            if (!cr_load_encoding_ok(optarg)) {
                return cr_cli_error("load", CR_EXIT_USAGE,
                                    "--encoding \"%s\": gbk, gb18030 or "
                                    "utf-8", optarg);
            }
            lopts.encoding = optarg;
            break;
        case 't':
            if (cr_parse_zone(optarg, strlen(optarg), &lopts.tz) != NULL) {
                return cr_cli_error("load", CR_EXIT_USAGE,
                                    "--tz \"%s\": must be a zone as "
                                    "+08:00, -05:00 or Z", optarg);
            }
            lopts.has_tz = 1;
            break;
        default:
            return cr_cli_error("load", CR_EXIT_USAGE, "bad option");
        }
    }

    if (db == NULL || optind == argc) {
        return cr_cli_error("load", CR_EXIT_USAGE,
                            "--db PATH and at least one CSV FILE are "
                            "required");
    }

    /* Every input must be a readable regular file: the loader may read
     * them twice (after growing the map), so no pipes. */
    total = 0;
    for (i = optind; i < argc; i++) {
        if (stat(argv[i], &sb) != 0 || !S_ISREG(sb.st_mode)
            || access(argv[i], R_OK) != 0)
        {
            return cr_cli_error("load", CR_EXIT_ENV,
                                "%s: %s", argv[i],
                                errno ? strerror(errno)
                                      : "not a regular file");
        }
        total += (uint64_t) sb.st_size;
    }

    if (keyfile) {
        if (cr_keyfile_read(keyfile, master, err, sizeof(err)) != 0) {
            return cr_cli_error("load", CR_EXIT_ENV, "%s", err);
        }

        ring = sodium_malloc(sizeof(cr_keyring_t));
        if (ring == NULL) {
            return cr_cli_error("load", CR_EXIT_ENV, "out of memory");
        }
        memset(ring, 0, sizeof(cr_keyring_t));

        for (kid = 0; kid <= CR_KID_MAX; kid++) {
            cr_key_derive(&key, kid, master);
            cr_keyring_add(ring, &key);
        }

        sodium_memzero(master, sizeof(master));
        sodium_memzero(&key, sizeof(key));
    }

    /* A dry run creates nothing: with no store yet, it checks the files
     * against an empty store in a temporary directory. */
    open_path = db;

    if (dry && stat(db, &sb) != 0 && errno == ENOENT) {
        if (mkdtemp(tmpl) == NULL) {
            return cr_cli_error("load", CR_EXIT_ENV, "mkdtemp: %s",
                                strerror(errno));
        }
        snprintf(tmpdb, sizeof(tmpdb), "%s/dry.mdb", tmpl);
        open_path = tmpdb;
    }

    if (cr_store_open(&st, open_path, CR_STORE_CREATE, err, sizeof(err))
        != 0)
    {
        rc = cr_cli_error("load", CR_EXIT_ENV, "%s", err);
        goto done;
    }

    /* Room for the worst case up front, so a big load rarely redoes
     * (growing later means running the whole load again). */
    need = total * 4 + (64u << 20);
    if (cr_store_info(st, &info) == 0
        && cr_store_map_size(st) < info.map_used + need)
    {
        cr_store_grow(st, info.map_used + need);
    }

    rc = cr_load_run(st, ring, &lopts, argv + optind, argc - optind, dry,
                     (unsigned) max_errors);

    cr_store_close(st);

done:

    if (tmpdb[0]) {
        unlink(tmpdb);
        snprintf(tmpdb, sizeof(tmpdb), "%s/dry.mdb-lock", tmpl);
        unlink(tmpdb);
        rmdir(tmpl);
    }

    if (ring) {
        sodium_free(ring);
    }

    return rc;
}


static int
cr_load_run(cr_store_t *st, const cr_keyring_t *ring,
    const cr_load_opts_t *lopts, char **files, int nfiles, int dry,
    unsigned max_errors)
{
    int               rc;
    char              when[40];
    double            t0;
    unsigned          grown;
    cr_load_t         l;
    cr_store_info_t   info;

    t0 = cr_now_f();

    rc = cr_load_transact(&l, st, ring, max_errors, lopts, files, nfiles, dry,
                          (int64_t) time(NULL), &grown);

    if (rc == CR_LOAD_FAILED) {
        cr_cli_error("load", CR_EXIT_ENV, "%s; no change made", l.fatal);
        cr_load_free(&l);
        return CR_EXIT_ENV;
    }

    if (rc == CR_LOAD_INVALID) {
        cr_load_print_errors(&l, stderr);
        fprintf(stderr, "code-router load: %lu error%s in %llu rows; no "
                "change made\n", l.errors, l.errors == 1 ? "" : "s",
                (unsigned long long) l.rows);
        cr_load_free(&l);
        return CR_EXIT_INVALID;
    }

    cr_print_counts("campaigns", &l.campaigns);
    cr_print_counts("batches", &l.batches);
    cr_print_counts("codes", &l.codes);
    cr_print_counts("links", &l.links);
    cr_print_counts("rules", &l.rules);
    cr_print_counts("parents", &l.parents);

    if (grown) {
        printf("the map grew %u time%s, to %llu bytes\n", grown,
               grown == 1 ? "" : "s",
               (unsigned long long) cr_store_map_size(st));
    }

    cr_store_info(st, &info);

    if (dry) {
        printf("dry run: %llu rows valid; nothing committed\n",
               (unsigned long long) l.rows);

    } else if (cr_load_changes(&l) == 0) {
        printf("no change: generation stays %llu\n",
               (unsigned long long) info.generation);

    } else {
        cr_format_time(when, sizeof(when), info.last_commit, 0);
        printf("committed generation %llu at %s: %llu rows in %.2f s\n",
               (unsigned long long) info.generation, when,
               (unsigned long long) l.rows, cr_now_f() - t0);
    }

    cr_load_free(&l);

    if (fflush(stdout) != 0) {
        return CR_EXIT_ENV;
    }

    return CR_EXIT_OK;
}


static void
cr_print_counts(const char *what, const cr_load_count_t *c)
{
    printf("%-10s %llu added, %llu changed, %llu unchanged, %llu removed\n",
           what, (unsigned long long) c->added,
           (unsigned long long) c->changed, (unsigned long long) c->same,
           (unsigned long long) c->removed);
}


static double
cr_now_f(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}


/* dump and stat: --db PATH and no other argument, opened read-only. */
static int
cr_cli_open_reader(const char *cmd, const char *db, int optind_, int argc,
    cr_store_t **st)
{
    char  err[512];

    if (db == NULL || optind_ != argc) {
        return cr_cli_error(cmd, CR_EXIT_USAGE, "--db PATH is required, "
                            "and nothing else");
    }

    if (cr_store_open(st, db, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
        return cr_cli_error(cmd, CR_EXIT_ENV, "%s", err);
    }

    return CR_EXIT_OK;
}


int
cr_cmd_dump(int argc, char **argv)
{
    int          ch, rc, kinds, dealer;
    cr_store_t  *st;
    const char  *db;
    static char  obuf[1 << 20];

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "kind", required_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 }
    };

    db = NULL;
    kinds = 7;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            db = optarg;
            break;
        case 'k':
            if (strcmp(optarg, "campaigns") == 0) {
                kinds = 1;
            } else if (strcmp(optarg, "batches") == 0) {
                kinds = 2;
            } else if (strcmp(optarg, "codes") == 0) {
                kinds = 4;
            } else if (strcmp(optarg, "links") == 0) {
                kinds = 8;
            } else if (strcmp(optarg, "rules") == 0) {
                kinds = 16;
            } else if (strcmp(optarg, "parents") == 0) {
                kinds = 32;
            } else {
                return cr_cli_error("dump", CR_EXIT_USAGE, "--kind \"%s\": "
                                    "campaigns, batches, codes, links, "
                                    "rules or parents", optarg);
            }
            break;
        default:
            return cr_cli_error("dump", CR_EXIT_USAGE, "bad option");
        }
    }

    rc = cr_cli_open_reader("dump", db, optind, argc, &st);
    if (rc != CR_EXIT_OK) {
        return rc;
    }

    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    rc = 0;

    /* Sections separated by a blank line: the loader reads them back. */
    if (kinds & 1) {
        fputs("campaign,name,type,url,appid,path,query,url_link,starts_at,"
              "ends_at,before_url,after_url,over_url\n", stdout);
        rc = cr_store_each_campaign(st, cr_dump_campaign, stdout);
    }

    if (rc == 0 && (kinds & 2)) {
        fputs(kinds == 2 ? "" : "\n", stdout);
        /* The dealer and activate columns only if a batch needs them
         * (cr_any_dealer: 1 a dealer, 2 activation on receipt): a store
         * without dealers dumps as it always has. */
        dealer = 0;
        rc = cr_store_each_batch(st, cr_any_dealer, &dealer);

        fputs("batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,"
              "production_date,region", stdout);
        fputs(dealer & 2 ? ",dealer,activate\n"
              : dealer ? ",dealer\n" : "\n", stdout);
        if (rc == 0) {
            rc = cr_store_each_batch(st, dealer & 2 ? cr_dump_batch_activate
                                         : dealer ? cr_dump_batch_dealer
                                                  : cr_dump_batch, stdout);
        }
    }

    if (rc == 0 && (kinds & 4)) {
        fputs(kinds == 4 ? "" : "\n", stdout);
        fputs("kid,serial,state,campaign\n", stdout);
        rc = cr_store_each_override(st, cr_dump_override, stdout);
    }

    /* All kinds: the links section only if there are links (a store
     * without them dumps as it always has). */
    if (rc == 0 && kinds == 7) {
        rc = cr_store_each_link(st, cr_any_link, NULL);
        kinds |= rc == 1 ? 8 : 0;
        rc = rc == 1 ? 0 : rc;
    }

    if (rc == 0 && (kinds & 8)) {
        fputs(kinds == 8 ? "" : "\n", stdout);
        fputs("gtin,lot,link_type,href,title,lang,type\n", stdout);
        rc = cr_store_each_link(st, cr_dump_link, stdout);
    }

    /* Rules likewise: after the campaigns they belong to. */
    if (rc == 0 && (kinds & 7) == 7) {
        rc = cr_store_each_rule(st, NULL, 0, cr_any_rule, NULL);
        kinds |= rc == 1 ? 16 : 0;
        rc = rc == 1 ? 0 : rc;
    }

    if (rc == 0 && (kinds & 16)) {
        fputs(kinds == 16 ? "" : "\n", stdout);
        fputs("campaign,rule,device,lang,region,split,min_scans,max_scans,"
              "type,url,appid,path,query,url_link\n", stdout);
        rc = cr_store_each_rule(st, NULL, 0, cr_dump_rule, stdout);
    }

    /* Parents last, after the batches they need; only if there are any. */
    if (rc == 0 && (kinds & 7) == 7) {
        rc = cr_store_each_parent(st, cr_any_parent, NULL);
        kinds |= rc == 1 ? 32 : 0;
        rc = rc == 1 ? 0 : rc;
    }

    if (rc == 0 && (kinds & 32)) {
        fputs(kinds == 32 ? "" : "\n", stdout);
        fputs("kid,serial_from,serial_to,parent_kid,parent_serial\n", stdout);
        rc = cr_store_each_parent(st, cr_dump_parent, stdout);
    }

    if (rc != 0) {
        rc = cr_cli_error("dump", CR_EXIT_ENV, "%s", cr_store_error(st));
    }

    cr_store_close(st);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        return cr_cli_error("dump", CR_EXIT_ENV, "cannot write: %s",
                            strerror(errno));
    }

    return rc;
}


/* A CSV field: quoted when it holds a comma or a quote. */
static void
cr_csv_field(FILE *f, const cr_str_t *s, int last)
{
    size_t  i;

    if (memchr(s->data, ',', s->len) || memchr(s->data, '"', s->len)) {
        fputc('"', f);
        for (i = 0; i < s->len; i++) {
            if (s->data[i] == '"') {
                fputc('"', f);
            }
            fputc(s->data[i], f);
        }
        fputc('"', f);

    } else {
        fwrite(s->data, 1, s->len, f);
    }

    fputc(last ? '\n' : ',', f);
}


static int
cr_dump_campaign(void *ctx, const cr_campaign_t *c)
{
    int       i;
    FILE     *f = ctx;
    char      starts[40], ends[40];
    cr_str_t  v;

    static const int  order[] = {
        CR_CAMP_ID, CR_CAMP_NAME, -1, CR_CAMP_URL, CR_CAMP_APPID,
        CR_CAMP_PATH, CR_CAMP_QUERY, CR_CAMP_URL_LINK, -2, -3,
        CR_CAMP_BEFORE_URL, CR_CAMP_AFTER_URL, CR_CAMP_OVER_URL
    };

    starts[0] = ends[0] = '\0';

    if (c->starts_at != CR_TIME_NONE) {
        cr_format_time(starts, sizeof(starts), c->starts_at, c->starts_tz);
    }

    if (c->ends_at != CR_TIME_NONE) {
        cr_format_time(ends, sizeof(ends), c->ends_at, c->ends_tz);
    }

    for (i = 0; i < 13; i++) {
        switch (order[i]) {
        case -1:
            v.data = cr_target_name(c->type);
            break;
        case -2:
            v.data = starts;
            break;
        case -3:
            v.data = ends;
            break;
        default:
            v = c->s[order[i]];
            cr_csv_field(f, &v, i == 12);
            continue;
        }

        v.len = strlen(v.data);
        cr_csv_field(f, &v, i == 12);
    }

    return 0;
}


/* A batch's row: its strings up to n (the dealer's column or not), and
 * with act its activate column. */
static int
cr_dump_batch_row(FILE *f, const cr_batch_t *b, int n, int act)
{
    int  i;

    cr_csv_field(f, &b->s[CR_BATCH_ID], 0);
    fprintf(f, "%u,%llu,%llu,%s,", b->kid, (unsigned long long) b->first,
            (unsigned long long) b->last, cr_scene_name(b->scene));

    for (i = CR_BATCH_CAMPAIGN; i < n; i++) {
        cr_csv_field(f, &b->s[i], i == n - 1 && !act);
    }

    if (act) {
        fprintf(f, "%s\n", cr_activate_name(b->activate));
    }

    return 0;
}


static int
cr_dump_batch(void *ctx, const cr_batch_t *b)
{
    return cr_dump_batch_row(ctx, b, CR_BATCH_DEALER, 0);
}


static int
cr_dump_batch_dealer(void *ctx, const cr_batch_t *b)
{
    return cr_dump_batch_row(ctx, b, CR_BATCH_NSTR, 0);
}


/* With the activate column after the dealer's. */
static int
cr_dump_batch_activate(void *ctx, const cr_batch_t *b)
{
    return cr_dump_batch_row(ctx, b, CR_BATCH_NSTR, 1);
}


/* What the batches need of the dump's columns, or-ed into *ctx: 1 a
 * dealer, 2 activation on receipt; never stops the walk. */
static int
cr_any_dealer(void *ctx, const cr_batch_t *b)
{
    int  *need = ctx;

    *need |= (b->s[CR_BATCH_DEALER].len != 0)
             | (b->activate == CR_ACTIVATE_ON_RECEIPT) << 1;

    return 0;
}


static int
cr_dump_override(void *ctx, const cr_override_t *o)
{
    FILE  *f = ctx;

    fprintf(f, "%u,%llu,%s,", o->kid, (unsigned long long) o->serial,
            cr_override_name(o->state));
    cr_csv_field(f, &o->campaign, 1);

    return 0;
}


static int
cr_dump_link(void *ctx, const cr_link_t *l)
{
    int    i;
    FILE  *f = ctx;

    for (i = 0; i < CR_LINK_NSTR; i++) {
        cr_csv_field(f, &l->s[i], i == CR_LINK_NSTR - 1);
    }

    return 0;
}


static int
cr_dump_rule(void *ctx, const cr_rule_t *r)
{
    int          i;
    FILE        *f = ctx;
    const char  *dev;

    cr_csv_field(f, &r->s[CR_RULE_CAMPAIGN], 0);
    dev = r->device ? cr_device_name(r->device) : "";
    fprintf(f, "%u,%s,", r->rule, dev);
    cr_csv_field(f, &r->s[CR_RULE_LANG], 0);
    cr_csv_field(f, &r->s[CR_RULE_REGION], 0);

    if (r->set & CR_RULE_SPLIT) {
        fprintf(f, "%u-%u", r->split_lo, r->split_hi);
    }

    fputc(',', f);

    if (r->set & CR_RULE_MIN_SCANS) {
        fprintf(f, "%llu", (unsigned long long) r->min_scans);
    }

    fputc(',', f);

    if (r->set & CR_RULE_MAX_SCANS) {
        fprintf(f, "%llu", (unsigned long long) r->max_scans);
    }

    fprintf(f, ",%s,", cr_target_name(r->type));

    for (i = CR_RULE_URL; i < CR_RULE_NSTR; i++) {
        cr_csv_field(f, &r->s[i], i == CR_RULE_NSTR - 1);
    }

    return 0;
}


static int
cr_any_rule(void *ctx, const cr_rule_t *r)
{
    (void) ctx;
    (void) r;

    return 1;
}


static int
cr_any_link(void *ctx, const cr_link_t *l)
{
    (void) ctx;
    (void) l;

    return 1;
}


static int
cr_dump_parent(void *ctx, const cr_parent_t *p)
{
    fprintf(ctx, "%u,%llu,%llu,%u,%llu\n", p->kid,
            (unsigned long long) p->first, (unsigned long long) p->last,
            p->parent_kid, (unsigned long long) p->parent);

    return 0;
}


static int
cr_any_parent(void *ctx, const cr_parent_t *p)
{
    (void) ctx;
    (void) p;

    return 1;
}


int
cr_cmd_stat(int argc, char **argv)
{
    int               ch, rc, digest;
    char              err[512];
    uint8_t           d[CR_STORE_DIGEST_LEN];
    uint64_t          gen;
    const char       *db;
    cr_store_t       *st;
    cr_store_info_t   info;

    static const struct option  opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "digest", no_argument, NULL, 'g' },
        { NULL, 0, NULL, 0 }
    };

    db = NULL;
    digest = 0;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            db = optarg;
            break;
        case 'g':
            digest = 1;
            break;
        default:
            return cr_cli_error("stat", CR_EXIT_USAGE, "bad option");
        }
    }

    if (db == NULL || optind != argc) {
        return cr_cli_error("stat", CR_EXIT_USAGE, "--db PATH is required, "
                            "and nothing else");
    }

    /* A scan store is said to be one, with its own numbers. */
    if (access(db, F_OK) == 0
        && cr_scans_open(NULL, db, 0, CR_SCANS_CHECK, err, sizeof(err)) == 0)
    {
        if (digest) {
            return cr_cli_error("stat", CR_EXIT_USAGE, "--digest is for "
                                "binding stores; %s is a scan store", db);
        }

        return cr_cli_scans_stat(db);
    }

    if (!digest) {
        rc = cr_cli_store_info("stat", db, &info);
        if (rc == CR_EXIT_OK) {
            cr_cli_print_info(stdout, &info);
        }

        return rc;
    }

    /* The info and the digest of one snapshot. */
    if (cr_store_open(&st, db, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
        return cr_cli_error("stat", CR_EXIT_ENV, "%s", err);
    }

    rc = cr_cli_digest("stat", st, db, d, &gen);

    if (rc == CR_CLI_FAULTED) {
        return CR_EXIT_ENV;
    }

    if (rc != CR_EXIT_OK) {
        /* printed */

    } else if (cr_store_info(st, &info) != 0) {
        rc = cr_cli_error("stat", CR_EXIT_ENV, "%s", cr_store_error(st));

    } else if (info.generation != gen) {
        rc = cr_cli_error("stat", CR_EXIT_ENV, "the store was committed "
                          "to while its digest was taken: run it again");
    }

    cr_store_close(st);

    if (rc == CR_EXIT_OK) {
        cr_cli_print_info(stdout, &info);
        cr_cli_print_digest(stdout, d);
    }

    return rc;
}


static sigjmp_buf             cr_digest_jmp;
static volatile sig_atomic_t  cr_digest_sig;


static void
cr_digest_fault(int sig)
{
    cr_digest_sig = sig;
    siglongjmp(cr_digest_jmp, 1);
}


int
cr_cli_digest(const char *cmd, cr_store_t *st, const char *path,
    uint8_t d[CR_STORE_DIGEST_LEN], uint64_t *gen)
{
    int                      rc;
    struct sigaction         sa;

    /* Set between sigsetjmp() and a siglongjmp() to it: not locals. */
    static struct sigaction  obus, osegv;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cr_digest_fault;
    sigemptyset(&sa.sa_mask);

    if (sigsetjmp(cr_digest_jmp, 1) != 0) {
        (void) sigaction(SIGBUS, &obus, NULL);
        (void) sigaction(SIGSEGV, &osegv, NULL);
        (void) cr_cli_error(cmd, CR_EXIT_ENV, "\"%s\" is damaged: reading "
                            "its pages faulted (%s); not used", path,
                            cr_digest_sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
        return CR_CLI_FAULTED;
    }

    (void) sigaction(SIGBUS, &sa, &obus);
    (void) sigaction(SIGSEGV, &sa, &osegv);

    rc = cr_store_digest(st, d, gen);

    (void) sigaction(SIGBUS, &obus, NULL);
    (void) sigaction(SIGSEGV, &osegv, NULL);

    if (rc != 0) {
        return cr_cli_error(cmd, CR_EXIT_ENV, "\"%s\": %s", path,
                            cr_store_error(st));
    }

    return CR_EXIT_OK;
}


void
cr_cli_print_digest(FILE *f, const uint8_t d[CR_STORE_DIGEST_LEN])
{
    int  i;

    fprintf(f, "digest        ");

    for (i = 0; i < CR_STORE_DIGEST_LEN; i++) {
        fprintf(f, "%02x", d[i]);
    }

    fprintf(f, "\n");
}


int
cr_cli_parse_digest(const char *s, uint8_t d[CR_STORE_DIGEST_LEN])
{
    int          i, j, c, v;

    if (strlen(s) != CR_STORE_DIGEST_HEX) {
        return -1;
    }

    for (i = 0; i < CR_STORE_DIGEST_LEN; i++) {
        v = 0;

        for (j = 0; j < 2; j++) {
            c = s[2 * i + j];

            if (c >= '0' && c <= '9') {
                v = v * 16 + (c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v = v * 16 + (c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v = v * 16 + (c - 'A' + 10);
            } else {
                return -1;
            }
        }

        d[i] = (uint8_t) v;
    }

    return 0;
}


int
cr_cli_store_info(const char *cmd, const char *db, cr_store_info_t *info)
{
    char         err[512];
    cr_store_t  *st;

    if (cr_store_open(&st, db, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
        return cr_cli_error(cmd, CR_EXIT_ENV, "%s", err);
    }

    if (cr_store_info(st, info) != 0) {
        cr_cli_error(cmd, CR_EXIT_ENV, "%s", cr_store_error(st));
        cr_store_close(st);
        return CR_EXIT_ENV;
    }

    cr_store_close(st);

    return CR_EXIT_OK;
}


void
cr_cli_print_info(FILE *f, const cr_store_info_t *info)
{
    char  when[40];

    if (info->last_commit) {
        cr_format_time(when, sizeof(when), info->last_commit, 0);
    } else {
        snprintf(when, sizeof(when), "never");
    }

    fprintf(f, "schema        %d\n"
            "generation    %llu\n"
            "last_commit   %s\n"
            "campaigns     %llu\n"
            "batches       %llu\n"
            "codes         %llu\n"
            "map_size      %llu\n"
            "map_used      %llu\n"
            "file_size     %llu\n"
            "readers       %u of %u\n",
            CR_STORE_SCHEMA, (unsigned long long) info->generation, when,
            (unsigned long long) info->campaigns,
            (unsigned long long) info->batches,
            (unsigned long long) info->codes,
            (unsigned long long) info->map_size,
            (unsigned long long) info->map_used,
            (unsigned long long) info->file_size, info->readers,
            info->max_readers);
}
