/*
 * Unit tests of the binding store (cr_store) and the loader's transaction
 * (cr_load_transact), TAP on stdout.  Uses a temporary directory.
 *
 * usage: test-store CODE_ROUTER_BINARY   (for the concurrent-loader test)
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "cr_load.h"
#include "cr_store.h"
#include "cr_pack.h"
#include "cr_record_int.h"
#include "cr_store_test.h"
#include "cr_target.h"
#include "cr_time.h"
#include "tap.h"


#define LONG_ID \
    "a-campaign-id-of-64-bytes-to-make-every-row-fat-enough-012345678"

static char  dir[] = "/tmp/cr-test-store-XXXXXX";
static char  path[256];


/* Lookup copies live until the end of the test: freed in main(). */
static void   *allocs[1024];
static size_t  nallocs;


static void *
alloc(void *ctx, size_t n)
{
    (void) ctx;

    if (nallocs == sizeof(allocs) / sizeof(allocs[0])) {
        return NULL;
    }

    return allocs[nallocs++] = malloc(n);
}


static void
free_allocs(void)
{
    while (nallocs) {
        free(allocs[--nallocs]);
    }
}


static cr_str_t
S(const char *s)
{
    cr_str_t  v;

    v.data = s;
    v.len = strlen(s);

    return v;
}


static int
str_is(cr_str_t v, const char *s)
{
    return v.len == strlen(s) && memcmp(v.data, s, v.len) == 0;
}


static void
campaign(cr_campaign_t *c, const char *id, const char *url, int64_t starts,
    int64_t ends)
{
    memset(c, 0, sizeof(cr_campaign_t));
    c->type = CR_TARGET_H5;
    c->s[CR_CAMP_ID] = S(id);
    c->s[CR_CAMP_NAME] = S("名字");
    c->s[CR_CAMP_URL] = S(url);
    c->starts_at = starts;
    c->ends_at = ends;
}


static void
batch(cr_batch_t *b, const char *id, unsigned kid, uint64_t first,
    uint64_t last, const char *camp)
{
    memset(b, 0, sizeof(cr_batch_t));
    b->kid = (uint8_t) kid;
    b->first = first;
    b->last = last;
    b->scene = CR_SCENE_MARKETING;
    b->s[CR_BATCH_ID] = S(id);
    b->s[CR_BATCH_CAMPAIGN] = S(camp);
    b->s[CR_BATCH_REGION] = S("CN-ZJ");
}


static cr_status_e
status_of(cr_store_t *st, unsigned kid, uint64_t serial, int64_t now,
    cr_binding_t *b)
{
    if (cr_store_lookup(st, kid, serial, now, b, alloc, NULL) != 0) {
        tap_diag("lookup failed: %s", cr_store_error(st));
        return (cr_status_e) 99;
    }

    return b->status;
}


static void
test_lookup(void)
{
    int            rc;
    char           err[512];
    cr_store_t    *st;
    cr_campaign_t  c;
    cr_batch_t     b, other;
    cr_override_t  o;
    cr_binding_t   r;

    tap_ok(cr_store_open(&st, path, CR_STORE_CREATE, err, sizeof(err)) == 0,
           "create a store (%s)", err);

    cr_store_begin(st);
    campaign(&c, "live", "https://a.example/x?y=1", 1000, 2000);
    tap_ok(cr_store_put_campaign(st, &c) == CR_PUT_ADDED, "put a campaign");
    tap_ok(cr_store_put_campaign(st, &c) == CR_PUT_SAME,
           "the same campaign again is unchanged");
    campaign(&c, "open", "https://b.example/", CR_TIME_NONE, CR_TIME_NONE);
    cr_store_put_campaign(st, &c);

    batch(&b, "A", 1, 100, 199, "live");
    tap_ok(cr_store_put_batch(st, &b, &other) == CR_PUT_ADDED, "put batch A");
    batch(&b, "B", 1, 200, 299, "open");
    tap_ok(cr_store_put_batch(st, &b, &other) == CR_PUT_ADDED,
           "put batch B, adjacent to A");
    batch(&b, "K2", 2, 150, 150, "open");
    tap_ok(cr_store_put_batch(st, &b, &other) == CR_PUT_ADDED,
           "the same serials under another key id do not overlap");

    batch(&b, "X", 1, 199, 199, "open");
    rc = cr_store_put_batch(st, &b, &other);
    tap_ok(rc == CR_STORE_OVERLAP && str_is(other.s[CR_BATCH_ID], "A"),
           "a one-serial range on A's last serial overlaps A");
    batch(&b, "X", 1, 0, 1000, "open");
    rc = cr_store_put_batch(st, &b, &other);
    tap_ok(rc == CR_STORE_OVERLAP, "a range containing A overlaps");
    batch(&b, "X", 1, 150, 250, "open");
    tap_ok(cr_store_put_batch(st, &b, &other) == CR_STORE_OVERLAP,
           "a range across A and B overlaps");

    memset(&o, 0, sizeof(o));
    o.kid = 1;
    o.serial = 150;
    o.state = CR_OVERRIDE_REVOKED;
    cr_store_put_override(st, &o);
    o.serial = 5000;
    o.state = CR_OVERRIDE_CAMPAIGN;
    o.campaign = S("open");
    cr_store_put_override(st, &o);

    tap_ok(cr_store_commit(st, 42) == 0, "commit");

    tap_ok(status_of(st, 1, 100, 1500, &r) == CR_ST_OK && r.has_batch
           && str_is(r.batch.s[CR_BATCH_ID], "A")
           && str_is(r.campaign.s[CR_CAMP_URL], "https://a.example/x?y=1")
           && str_is(r.campaign.s[CR_CAMP_NAME], "名字")
           && str_is(r.batch.s[CR_BATCH_REGION], "CN-ZJ")
           && r.generation == 1,
           "first serial of A: ok, with batch, campaign and generation");
    tap_ok(status_of(st, 1, 199, 1500, &r) == CR_ST_OK
           && str_is(r.batch.s[CR_BATCH_ID], "A"), "last serial of A");
    tap_ok(status_of(st, 1, 200, 1500, &r) == CR_ST_OK
           && str_is(r.batch.s[CR_BATCH_ID], "B"), "first serial of B");
    tap_ok(status_of(st, 1, 99, 1500, &r) == CR_ST_UNBOUND && !r.has_batch,
           "serial before A: unbound");
    tap_ok(status_of(st, 1, 300, 1500, &r) == CR_ST_UNBOUND,
           "serial after B: unbound");
    tap_ok(status_of(st, 3, 150, 1500, &r) == CR_ST_UNBOUND,
           "a key id with no batches: unbound");
    tap_ok(status_of(st, 2, 150, 1500, &r) == CR_ST_OK
           && str_is(r.batch.s[CR_BATCH_ID], "K2"), "key id 2's batch");
    tap_ok(status_of(st, 1, 999, 1500, &r) == CR_ST_UNBOUND,
           "a gap: unbound");

    tap_ok(status_of(st, 1, 101, 999, &r) == CR_ST_NOT_STARTED,
           "before starts_at: not_started");
    tap_ok(status_of(st, 1, 101, 1000, &r) == CR_ST_OK,
           "at starts_at: ok");
    tap_ok(status_of(st, 1, 101, 1999, &r) == CR_ST_OK,
           "a second before ends_at: ok");
    tap_ok(status_of(st, 1, 101, 2000, &r) == CR_ST_ENDED,
           "at ends_at: ended");
    tap_ok(status_of(st, 1, 250, 0, &r) == CR_ST_OK
           && status_of(st, 1, 250, INT64_MAX, &r) == CR_ST_OK,
           "an open window is always ok");

    tap_ok(status_of(st, 1, 150, 1500, &r) == CR_ST_REVOKED && r.overridden
           && r.has_batch && str_is(r.batch.s[CR_BATCH_ID], "A"),
           "a revoked code in a batch: revoked, batch still known");
    tap_ok(status_of(st, 1, 5000, 1500, &r) == CR_ST_OK && r.overridden
           && !r.has_batch && str_is(r.campaign.s[CR_CAMP_ID], "open"),
           "a one-off campaign on an unbound serial: ok");

    /* Move batch A (same id, new range): the old range is freed. */
    cr_store_begin(st);
    batch(&b, "A", 1, 400, 499, "live");
    tap_ok(cr_store_put_batch(st, &b, &other) == CR_PUT_CHANGED,
           "moving batch A is a change");
    batch(&b, "A", 1, 450, 599, "live");
    tap_ok(cr_store_put_batch(st, &b, &other) == CR_PUT_CHANGED,
           "moving it again, overlapping only its own range, is allowed");
    tap_ok(cr_store_del_campaign(st, "nope", 4) == CR_STORE_NOTFOUND,
           "deleting an unknown campaign: not found");
    tap_ok(cr_store_del_batch(st, "B", 1) == 0, "delete batch B");
    cr_store_commit(st, 43);

    tap_ok(status_of(st, 1, 120, 1500, &r) == CR_ST_UNBOUND,
           "A's old range is unbound after the move");
    tap_ok(status_of(st, 1, 599, 1500, &r) == CR_ST_OK
           && str_is(r.batch.s[CR_BATCH_ID], "A"), "A's new range is bound");
    tap_ok(status_of(st, 1, 250, 1500, &r) == CR_ST_UNBOUND,
           "B's range is unbound after its deletion");

    {
        cr_store_info_t  info;

        cr_store_info(st, &info);
        tap_ok(info.generation == 2 && info.campaigns == 2
               && info.batches == 2 && info.codes == 2
               && info.last_commit == 43,
               "meta: generation 2, 2 campaigns, 2 batches, 2 codes "
               "(%llu %llu %llu %llu)",
               (unsigned long long) info.generation,
               (unsigned long long) info.campaigns,
               (unsigned long long) info.batches,
               (unsigned long long) info.codes);
    }

    cr_store_close(st);
}


static size_t batch_record(uint8_t *p, int kind, unsigned ns,
    const char *dealer);


static void
test_decoders(void)
{
    int            i, bad;
    size_t         n;
    uint8_t        buf[256];
    cr_campaign_t  c;

    static uint8_t  enc[CR_REC_MAX];

    cr_batch_t     b;
    cr_override_t  o;

    /* Every prefix of a garbage buffer, with every kind: no crash, and a
     * record whose offsets leave it is refused. */
    memset(buf, 0xff, sizeof(buf));
    buf[0] = 'C';
    bad = 0;

    for (i = 0; i < (int) sizeof(buf); i++) {
        bad += cr_campaign_decode(buf, (size_t) i, &c) == 0;
        bad += cr_batch_decode(buf, (size_t) i, &b) == 0;
        bad += cr_override_decode(buf, (size_t) i, &o) == 0;
    }

    tap_ok(bad == 0, "records with out-of-bounds strings are refused");

    memset(buf, 0, sizeof(buf));
    buf[0] = 'O';
    buf[1] = 9;    /* no such state */
    tap_ok(cr_override_decode(buf, 16, &o) == -1,
           "an override of an unknown state is refused");
    buf[1] = CR_OVERRIDE_REVOKED;
    buf[11] = 15;  /* offset of the one string: just after the header */
    tap_ok(cr_override_decode(buf, 15, &o) == 0 && o.campaign.len == 0,
           "a minimal revoked override decodes");
    tap_ok(cr_override_decode(buf, 14, &o) == -1, "one byte short: refused");

    /* Batches: "B", the layout before dealers (7 strings), still reads,
     * with no dealer; "D" has the dealer's 8th; a "D" cut after 7 string
     * entries is refused. */
    tap_ok(batch_record(buf, 'B', 7, "D-01") > 0
           && cr_batch_decode(buf, batch_record(buf, 'B', 7, "D-01"), &b) == 0
           && b.s[CR_BATCH_ID].len == 2 && b.first == 1 && b.last == 9
           && b.s[CR_BATCH_DEALER].len == 0,
           "a batch record of the layout before dealers: no dealer");
    tap_ok(cr_batch_decode(buf, batch_record(buf, 'D', 8, "D-01"), &b) == 0
           && b.s[CR_BATCH_DEALER].len == 4
           && memcmp(b.s[CR_BATCH_DEALER].data, "D-01", 4) == 0,
           "a batch record with a dealer");
    tap_ok(cr_batch_decode(buf, batch_record(buf, 'D', 7, "D-01"), &b) != 0,
           "... its 8th string missing: refused");

    /* "A": activation on receipt, all 8 strings; "B" and "D" activate
     * now; the encoder picks the kind from activate and the dealer. */
    tap_ok(cr_batch_decode(buf, batch_record(buf, 'A', 8, "D-01"), &b) == 0
           && b.activate == CR_ACTIVATE_ON_RECEIPT
           && b.s[CR_BATCH_DEALER].len == 4,
           "a batch record that activates on receipt");
    tap_ok(cr_batch_decode(buf, batch_record(buf, 'A', 7, "D-01"), &b) != 0,
           "... its 8th string missing: refused");
    tap_ok(cr_batch_decode(buf, batch_record(buf, 'D', 8, "D-01"), &b) == 0
           && b.activate == CR_ACTIVATE_NOW, "a 'D' record activates now");
    tap_ok(cr_batch_decode(buf, batch_record(buf, 'B', 7, ""), &b) == 0
           && b.activate == CR_ACTIVATE_NOW
           && cr_batch_encode(&b, enc) == batch_record(buf, 'B', 7, "")
           && memcmp(enc, buf, batch_record(buf, 'B', 7, "")) == 0,
           "activate=now without a dealer encodes as 'B', byte for byte");
    b.activate = CR_ACTIVATE_ON_RECEIPT;
    n = cr_batch_encode(&b, enc);
    tap_ok(n == batch_record(buf, 'A', 8, "")
           && memcmp(enc, buf, n) == 0,
           "on_receipt encodes as 'A' with all 8 strings, byte for byte");
    tap_ok(cr_activate_parse("on_receipt", 10) == CR_ACTIVATE_ON_RECEIPT
           && cr_activate_parse("now", 3) == CR_ACTIVATE_NOW
           && cr_activate_parse("later", 5) == -1
           && strcmp(cr_activate_name(CR_ACTIVATE_ON_RECEIPT), "on_receipt")
              == 0, "activate's names");
}


/* A batch record by hand (kind, ns string entries): id "b1", serials 1
 * to 9 of key id 1, scene verify, the 8th string dealer if ns is 8. */
static size_t
batch_record(uint8_t *p, int kind, unsigned ns, const char *dealer)
{
    size_t    off, len;
    unsigned  i;

    memset(p, 0, 256);
    p[0] = (uint8_t) kind;
    p[1] = CR_SCENE_VERIFY;
    p[2] = 1;
    p[3] = 1;                           /* first: 1, little-endian */
    p[11] = 9;                          /* last: 9 */
    off = 19 + 4 * ns;

    for (i = 0; i < ns; i++) {
        len = i == 0 ? 2 : i == 7 ? strlen(dealer) : 0;
        p[19 + 4 * i] = (uint8_t) off;
        p[20 + 4 * i] = (uint8_t) (off >> 8);
        p[21 + 4 * i] = (uint8_t) len;
        memcpy(p + off, i == 0 ? "b1" : dealer, len);
        off += len;
    }

    return off;
}


/* A campaign record as cr_store writes it: type h5, no strings. */
#define CR_CAMP_HDR  (22 + 4 * CR_CAMP_NSTR)

static size_t
camp_record(uint8_t *p, int64_t starts, int stz, int64_t ends, int etz)
{
    int       i;
    uint64_t  v[2];

    memset(p, 0, CR_CAMP_HDR);
    p[0] = 'C';
    p[1] = CR_TARGET_H5;
    v[0] = (uint64_t) starts;
    v[1] = (uint64_t) ends;

    for (i = 0; i < 8; i++) {
        p[2 + i] = (uint8_t) (v[0] >> (8 * i));
        p[10 + i] = (uint8_t) (v[1] >> (8 * i));
    }

    p[18] = (uint8_t) stz;
    p[19] = (uint8_t) ((unsigned) stz >> 8);
    p[20] = (uint8_t) etz;
    p[21] = (uint8_t) ((unsigned) etz >> 8);

    for (i = 0; i < CR_CAMP_NSTR; i++) {
        p[22 + 4 * i] = CR_CAMP_HDR;   /* offset: just after the header */
    }

    return CR_CAMP_HDR;
}


/*
 * Issue 12, item 9: a time written past the loader is refused when the
 * record is decoded, so nobody formats it (INT64_MAX at +14:00 overflowed
 * in cr_format_time).  The range is exactly what cr_parse_time produces.
 */
static void
test_stored_times(void)
{
    char           out[32];
    size_t         n;
    int16_t        tz;
    int64_t        t;
    uint8_t        buf[64];
    cr_campaign_t  c;

    n = camp_record(buf, CR_TIME_NONE, 0, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == 0
           && c.starts_at == CR_TIME_NONE && c.ends_at == CR_TIME_NONE,
           "times: an open window decodes");

    cr_parse_time("9999-12-31T23:59:59-14:59", 25, &t, &tz);
    n = camp_record(buf, CR_TIME_NONE, 0, t, tz);
    tap_ok(cr_campaign_decode(buf, n, &c) == 0 && c.ends_at == t,
           "times: the latest time the loader takes decodes");
    n = camp_record(buf, CR_TIME_NONE, 0, t + 1, tz);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: one second later is refused");

    cr_parse_time("1970-01-01T00:00:00+14:59", 25, &t, &tz);
    n = camp_record(buf, t, tz, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == 0 && c.starts_at == t,
           "times: the earliest time the loader takes decodes");
    n = camp_record(buf, t - 1, tz, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: one second earlier is refused");

    n = camp_record(buf, CR_TIME_NONE, 0, INT64_MAX, 840);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: ends_at INT64_MAX at +14:00 is refused");
    n = camp_record(buf, INT64_MAX - 1, -840, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: starts_at INT64_MAX - 1 at -14:00 is refused");
    n = camp_record(buf, INT64_MIN + 1, 840, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: starts_at INT64_MIN + 1 at +14:00 is refused");
    n = camp_record(buf, 1700000000, CR_TZ_MAX + 1, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: a zone of +15:00 is refused");
    n = camp_record(buf, CR_TIME_NONE, -32768, CR_TIME_NONE, 0);
    tap_ok(cr_campaign_decode(buf, n, &c) == -1,
           "times: an open window with a zone of -32768 is refused");

    /* Whoever formats a time anyway: a number, never overflow. */
    cr_format_time(out, sizeof(out), INT64_MAX, 840);
    tap_ok(strcmp(out, "9223372036854775807") == 0,
           "times: cr_format_time(INT64_MAX, +14:00) writes the number (%s)",
           out);
    cr_format_time(out, sizeof(out), INT64_MIN, -840);
    tap_ok(strcmp(out, "-9223372036854775808") == 0,
           "times: cr_format_time(INT64_MIN, -14:00) writes the number (%s)",
           out);
    cr_format_time(out, sizeof(out), 1780272000, 480);
    tap_ok(strcmp(out, "2026-06-01T08:00:00+08:00") == 0,
           "times: a time in range is formatted as before (%s)", out);
}

/* A write transaction on db's table name, past cr_store (as another tool
 * would write). */
static void
raw_begin(const char *db, const char *name, MDB_env **env, MDB_txn **txn,
    MDB_dbi *dbi)
{
    mdb_env_create(env);
    mdb_env_set_maxdbs(*env, 8);
    mdb_env_open(*env, db, MDB_NOSUBDIR, 0644);
    mdb_txn_begin(*env, NULL, 0, txn);
    mdb_dbi_open(*txn, name, 0, dbi);
}



static void
test_refusals(void)
{
    int          rc;
    char         err[512], p2[300];
    FILE        *f;
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      dbi;
    MDB_val      k, v;
    uint8_t      meta[64];
    cr_store_t  *st;

    snprintf(p2, sizeof(p2), "%s/garbage.mdb", dir);
    f = fopen(p2, "w");
    fputs("this is not an LMDB file at all, just words................", f);
    fclose(f);

    rc = cr_store_open(&st, p2, CR_STORE_RDONLY, err, sizeof(err));
    tap_ok(rc == -1 && strstr(err, "garbage.mdb") != NULL,
           "a garbage file is refused: %s", err);

    snprintf(p2, sizeof(p2), "%s/missing.mdb", dir);
    rc = cr_store_open(&st, p2, CR_STORE_RDONLY, err, sizeof(err));
    tap_ok(rc == -1 && strstr(err, "No such file") != NULL,
           "a missing store is refused: %s", err);

    /* A plain LMDB file that is not ours. */
    snprintf(p2, sizeof(p2), "%s/other.mdb", dir);
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 4);
    mdb_env_open(env, p2, MDB_NOSUBDIR, 0644);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "stuff", MDB_CREATE, &dbi);
    mdb_txn_commit(txn);
    mdb_env_close(env);

    rc = cr_store_open(&st, p2, CR_STORE_RDONLY, err, sizeof(err));
    tap_ok(rc == -1 && strstr(err, "not a code-router store") != NULL,
           "an LMDB file of something else is refused: %s", err);

    /* Our store with a schema from the future. */
    raw_begin(path, "meta", &env, &txn, &dbi);
    k.mv_data = "meta";
    k.mv_size = 4;
    mdb_get(txn, dbi, &k, &v);
    memcpy(meta, v.mv_data, sizeof(meta));
    meta[8] = CR_STORE_SCHEMA + 1;
    v.mv_data = meta;
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);

    rc = cr_store_open(&st, path, CR_STORE_RDONLY, err, sizeof(err));
    tap_ok(rc == -1 && strstr(err, "schema version 3") != NULL,
           "a store of another schema version is refused: %s", err);

    meta[8] = CR_STORE_SCHEMA;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);

    rc = cr_store_open(&st, path, CR_STORE_RDONLY, err, sizeof(err));
    tap_ok(rc == 0, "restored, it opens again");
    cr_store_close(st);
}


/* More rows than the initial 64 MiB map holds: the run is redone. */
static void
test_grow(void)
{
    int          rc;
    char         err[512], csv[300], p2[300], *files[1];
    FILE        *f;
    unsigned     grown;
    uint64_t     i;
    cr_load_t    l;
    cr_store_t  *st;
    cr_binding_t r;

    /* ~100 bytes a row in the store: a 64-byte campaign id each. */
    snprintf(csv, sizeof(csv), "%s/many.csv", dir);
    f = fopen(csv, "w");
    fprintf(f, "campaign,type,url\n%s,h5,https://x.example/\n\n"
            "kid,serial,state,campaign\n", LONG_ID);
    for (i = 0; i < 1000000; i++) {
        fprintf(f, "7,%llu,campaign,%s\n", (unsigned long long) i * 3,
                LONG_ID);
    }
    fclose(f);

    snprintf(p2, sizeof(p2), "%s/grow.mdb", dir);
    if (cr_store_open(&st, p2, CR_STORE_CREATE, err, sizeof(err)) != 0) {
        tap_ok(0, "open %s: %s", p2, err);
        return;
    }

    tap_ok(cr_store_map_size(st) == CR_STORE_MIN_MAP,
           "a new store starts with a %u MiB map", CR_STORE_MIN_MAP >> 20);

    files[0] = csv;
    rc = cr_load_transact(&l, st, NULL, 10, NULL, files, 1, 0, 7, &grown);
    tap_ok(rc == CR_LOAD_OK && grown >= 1 && l.codes.added == 1000000,
           "1000000 rows: the map grew %u time(s) and the run was redone "
           "(%s)", grown, l.fatal);
    cr_load_free(&l);

    tap_ok(status_of(st, 7, 2999997, 0, &r) == CR_ST_OK
           && status_of(st, 7, 2999998, 0, &r) == CR_ST_UNBOUND,
           "the last row is in, exactly once");
    cr_store_close(st);
}


/* Runs "code-router load --db db csv" in a child: its exit status. */
static int
load(const char *cli, const char *db, const char *csv)
{
    int    status;
    pid_t  pid;

    pid = fork();
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL) {
            _exit(126);
        }
        execl(cli, cli, "load", "--db", db, csv, (char *) NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);

    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


/*
 * A reader holding a snapshot while a loader (another process) commits
 * sees the old binding; its next snapshot sees the new one.
 */
static void
test_snapshot(const char *cli)
{
    int          status;
    char         csv[300], err[512];
    FILE        *f;
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      dbi;
    MDB_val      k, v;
    cr_store_t  *st;
    cr_batch_t   b;
    cr_binding_t r;
    uint8_t      key[6] = { 1, 0, 0, 0, 2, 0x57 };   /* kid 1, 599 */

    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_maxreaders(env, CR_STORE_MAXREADERS);
    mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0644);
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    mdb_dbi_open(txn, "batches", 0, &dbi);

    k.mv_data = key;
    k.mv_size = 6;
    tap_ok(mdb_get(txn, dbi, &k, &v) == 0
           && cr_batch_decode(v.mv_data, v.mv_size, &b) == 0
           && str_is(b.s[CR_BATCH_CAMPAIGN], "live"),
           "held snapshot: batch A is bound to campaign live");

    snprintf(csv, sizeof(csv), "%s/rebind.csv", dir);
    f = fopen(csv, "w");
    fputs("batch,kid,serial_from,serial_to,scene,campaign\n"
          "A,1,450,599,marketing,open\n", f);
    fclose(f);

    status = load(cli, path, csv);
    tap_ok(status == 0,
           "a loader process rebinds batch A while the snapshot is held");

    tap_ok(mdb_get(txn, dbi, &k, &v) == 0
           && cr_batch_decode(v.mv_data, v.mv_size, &b) == 0
           && str_is(b.s[CR_BATCH_CAMPAIGN], "live"),
           "the held snapshot still sees the old binding");

    mdb_txn_abort(txn);
    mdb_env_close(env);

    if (cr_store_open(&st, path, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
        tap_ok(0, "open %s: %s", path, err);
        return;
    }

    tap_ok(status_of(st, 1, 500, 1500, &r) == CR_ST_OK
           && str_is(r.campaign.s[CR_CAMP_ID], "open"),
           "the next snapshot sees the new binding");
    cr_store_close(st);
}


/* One line per serial: what a reader answers, to compare two readers. */
static void
answers(const char *db, int flags, char *out, size_t outlen, int *cached)
{
    int           kid;
    char         *p, err[512];
    uint64_t      serial;
    cr_store_t   *st;
    cr_binding_t  r;

    p = out;
    *p = '\0';

    if (cr_store_open(&st, db, CR_STORE_RDONLY | flags, err, sizeof(err))
        != 0)
    {
        tap_diag("%s", err);
        return;
    }

    for (kid = 0; kid < 4; kid++) {
        for (serial = 0; serial < 700; serial += 7) {
            status_of(st, (unsigned) kid, serial + (serial % 3), 1500, &r);
            p += snprintf(p, out + outlen - p, "%d %llu %d %d %.*s %.*s "
                          "%llu\n", kid, (unsigned long long) serial,
                          (int) r.status, r.has_batch,
                          (int) r.batch.s[CR_BATCH_ID].len,
                          r.batch.s[CR_BATCH_ID].data,
                          (int) r.campaign.s[CR_CAMP_URL].len,
                          r.campaign.s[CR_CAMP_URL].data,
                          (unsigned long long) r.generation);
        }
    }

    *cached = cr_store_cached(st);
    cr_store_close(st);
}


/*
 * A reader keeps its snapshot and a copy of the batches and campaigns
 * between lookups: same answers as reading LMDB, a commit by another
 * process seen by the very next lookup, and no copy of a big store.
 */
static void
test_reader_cache(const char *cli)
{
    int           status, cached, plain;
    char          csv[300], err[512], p2[300];
    char          a[65536], b[65536];
    FILE         *f;
    uint64_t      i;
    cr_store_t   *st;
    cr_batch_t    bt, other;
    cr_campaign_t c;
    cr_binding_t  r;

    answers(path, 0, a, sizeof(a), &cached);
    answers(path, CR_STORE_NOCACHE, b, sizeof(b), &plain);
    tap_ok(cached == (CR_CACHED_COPY | CR_CACHED_FILTER | CR_CACHED_BATCHES)
           && plain == 0
           && strlen(a) > 1000 && strcmp(a, b) == 0,
           "400 lookups over 4 key ids: the copy and the override filter "
           "answer as LMDB does");

    if (cr_store_open(&st, path, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
        tap_ok(0, "open %s: %s", path, err);
        return;
    }

    tap_ok(status_of(st, 1, 500, 1500, &r) == CR_ST_OK
           && str_is(r.campaign.s[CR_CAMP_ID], "open"),
           "a reader holds batch A bound to campaign open");

    snprintf(csv, sizeof(csv), "%s/rebind2.csv", dir);
    f = fopen(csv, "w");
    fputs("batch,kid,serial_from,serial_to,scene,campaign\n"
          "A,1,450,599,marketing,live\n", f);
    fclose(f);

    status = load(cli, path, csv);

    tap_ok(status == 0 && status_of(st, 1, 500, 1500, &r) == CR_ST_OK
           && str_is(r.campaign.s[CR_CAMP_ID], "live") && cr_store_cached(st),
           "another process commits: the very next lookup sees it");

    cr_store_release(st);
    tap_ok(status_of(st, 1, 500, 1500, &r) == CR_ST_OK
           && str_is(r.campaign.s[CR_CAMP_ID], "live"),
           "released and taken again: the same answer");
    cr_store_close(st);

    /* The copy runs the target check once per campaign. */
    snprintf(p2, sizeof(p2), "%s/checked.mdb", dir);
    if (cr_store_open(&st, p2, CR_STORE_CREATE, err, sizeof(err)) != 0) {
        tap_ok(0, "open %s: %s", p2, err);
        return;
    }

    cr_store_begin(st);
    campaign(&c, "good", "https://b.example/", CR_TIME_NONE, CR_TIME_NONE);
    cr_store_put_campaign(st, &c);
    campaign(&c, "bad", "http://b.example/", CR_TIME_NONE, CR_TIME_NONE);
    cr_store_put_campaign(st, &c);
    batch(&bt, "G", 1, 0, 9, "good");
    cr_store_put_batch(st, &bt, &other);
    batch(&bt, "B", 1, 10, 19, "bad");
    cr_store_put_batch(st, &bt, &other);
    cr_store_commit(st, 1);
    cr_store_close(st);

    if (cr_store_open(&st, p2, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
        tap_ok(0, "open %s: %s", p2, err);
        return;
    }

    cr_store_set_check(st, cr_target_check);
    status_of(st, 1, 5, 0, &r);
    cached = r.target_ok;
    status_of(st, 1, 15, 0, &r);
    tap_ok(cached == 1 && r.target_ok == 0 && r.status == CR_ST_OK,
           "the copy vouches for an https target, not for an http one");
    cr_store_close(st);

    if (cr_store_open(&st, p2, CR_STORE_RDONLY | CR_STORE_NOCACHE, err,
                      sizeof(err)) != 0)
    {
        tap_ok(0, "open %s: %s", p2, err);
        return;
    }

    cr_store_set_check(st, cr_target_check);
    tap_ok(status_of(st, 1, 5, 0, &r) == CR_ST_OK && r.target_ok == 0,
           "without the copy nothing is vouched for");
    cr_store_close(st);

    /* A batch record that does not decode: the same error both ways. */
    {
        MDB_env  *env;
        MDB_txn  *txn;
        MDB_dbi   dbi;
        MDB_val   k, v;
        uint8_t   key[6] = { 1, 0, 0, 0, 0, 29 };
        int       e1, e2;

        raw_begin(p2, "batches", &env, &txn, &dbi);
        k.mv_data = key;
        k.mv_size = 6;
        v.mv_data = "B\001garbage";
        v.mv_size = 9;
        mdb_put(txn, dbi, &k, &v, 0);
        mdb_txn_commit(txn);
        mdb_env_close(env);

        if (cr_store_open(&st, p2, CR_STORE_RDONLY, err, sizeof(err)) != 0) {
            tap_ok(0, "open %s: %s", p2, err);
            return;
        }

        e1 = cr_store_lookup(st, 1, 25, 0, &r, alloc, NULL) == CR_STORE_ERROR
             && strstr(cr_store_error(st), "bad batch record") != NULL
             && (cr_store_cached(st) & CR_CACHED_COPY);
        e1 = e1 && status_of(st, 1, 5, 0, &r) == CR_ST_OK;
        cr_store_close(st);

        if (cr_store_open(&st, p2, CR_STORE_RDONLY | CR_STORE_NOCACHE, err,
                          sizeof(err)) != 0)
        {
            tap_ok(0, "open %s: %s", p2, err);
            return;
        }

        e2 = cr_store_lookup(st, 1, 25, 0, &r, alloc, NULL) == CR_STORE_ERROR
             && strstr(cr_store_error(st), "bad batch record") != NULL;
        cr_store_close(st);

        tap_ok(e1 && e2, "a batch record that does not decode: an error "
               "from the copy as from LMDB, other batches still served");
    }

    /* One batch more than the old copy took: batches from the pack, the
     * campaign copied. */
    snprintf(p2, sizeof(p2), "%s/many-batches.mdb", dir);
    if (cr_store_open(&st, p2, CR_STORE_CREATE, err, sizeof(err)) != 0) {
        tap_ok(0, "open %s: %s", p2, err);
        return;
    }

    cr_store_begin(st);
    campaign(&c, "open", "https://b.example/", CR_TIME_NONE, CR_TIME_NONE);
    cr_store_put_campaign(st, &c);

    for (i = 0; i < 65537; i++) {
        char  id[16];

        snprintf(id, sizeof(id), "b%llu", (unsigned long long) i);
        batch(&bt, id, 1, i * 10, i * 10 + 4, "open");
        if (cr_store_put_batch(st, &bt, &other) != CR_PUT_ADDED) {
            break;
        }
    }

    tap_ok(i == 65537 && cr_store_commit(st, 1) == 0,
           "a store of 65,537 batches and a campaign");
    cr_store_close(st);

    answers(p2, 0, a, sizeof(a), &cached);
    answers(p2, CR_STORE_NOCACHE, b, sizeof(b), &plain);
    tap_ok((cached & CR_CACHED_COPY) && (cached & CR_CACHED_BATCHES)
           && strstr(a, "1 70 0 1 b7 ") != NULL && strcmp(a, b) == 0,
           "over the old copy's limit: batches from the pack, the "
           "campaigns copied, the same answers");
}


/* Serials 0..n-1 of key id 5 as a reader answers them, against the set. */
static size_t
wrong_answers(const char *db, int flags, const char *revoked, size_t n,
    int *cached)
{
    char          err[512];
    size_t        s, wrong;
    cr_store_t   *st;
    cr_binding_t  r;

    if (cr_store_open(&st, db, CR_STORE_RDONLY | flags, err, sizeof(err))
        != 0)
    {
        tap_diag("%s", err);
        return n;
    }

    wrong = 0;

    for (s = 0; s < n; s++) {
        wrong += (status_of(st, 5, s, 0, &r) == CR_ST_REVOKED) != revoked[s];
        free_allocs();
    }

    *cached = cr_store_cached(st);
    cr_store_close(st);

    return wrong;
}


/*
 * Where the override filter's chunk records of db lie, as offsets into
 * its map (a chunk a commit did not write keeps its pages): up to max, in
 * order; how many there are (0: none, or not all in sequence).
 */
static size_t
filter_chunks(const char *db, size_t *off, size_t max)
{
    size_t       n;
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      dbi;
    MDB_val      k, v;
    MDB_cursor  *cur;
    MDB_envinfo  ei;
    uint8_t      ck[12] = "ofilter.";

    n = 0;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);

    if (mdb_env_open(env, db, MDB_NOSUBDIR | MDB_RDONLY, 0644) != 0) {
        mdb_env_close(env);
        return 0;
    }

    mdb_env_info(env, &ei);
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    mdb_dbi_open(txn, "meta", 0, &dbi);
    mdb_cursor_open(txn, dbi, &cur);

    k.mv_data = ck;
    k.mv_size = sizeof(ck);

    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0) {
        do {
            if (k.mv_size != 12 || memcmp(k.mv_data, "ofilter.", 8) != 0) {
                break;
            }
            if (n < max) {
                off[n] = (size_t) ((char *) v.mv_data - (char *) ei.me_mapaddr);
            }
            n++;
        } while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0);
    }

    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    return n;
}


/*
 * The override filter: no code with an override is ever missed, whatever
 * the loads did (added, deleted, grown past its size), and a table written
 * by another tool makes readers search instead of trusting it.
 */
static void
test_override_filter(const char *cli)
{
    int          cached, rc;
    char         p2[300], csv[300];
    char        *revoked, *old;
    FILE        *f;
    size_t       i, n, s, nc, changed, off0[16], off1[16];
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      dbi;
    MDB_val      k, v;
    uint8_t      key[6] = { 5, 0, 0, 0, 0, 0 };

    n = 200000;
    revoked = calloc(n, 1);
    snprintf(p2, sizeof(p2), "%s/filter.mdb", dir);
    snprintf(csv, sizeof(csv), "%s/filter.csv", dir);

    /* 20,000 scattered overrides, then a reader over every serial. */
    f = fopen(csv, "w");
    fputs("campaign,type,url\nopen,h5,https://b.example/\n\n"
          "batch,kid,serial_from,serial_to,scene,campaign\n"
          "F,5,0,199999,verify,open\n\nkid,serial,state,campaign\n", f);
    for (i = 0; i < 20000; i++) {
        s = (i * 7919 + 13) % n;
        revoked[s] = 1;
        fprintf(f, "5,%zu,revoked,\n", s);
    }
    fclose(f);

    tap_ok(load(cli, p2, csv) == 0, "a load of 20,000 overrides");
    tap_ok(wrong_answers(p2, 0, revoked, n, &cached) == 0
           && (cached & CR_CACHED_FILTER),
           "200,000 serials through the filter: every override found, "
           "no other code revoked");

    /* Added, deleted: the filter is updated, not rebuilt. */
    f = fopen(csv, "w");
    fputs("kid,serial,state,campaign,delete\n", f);
    for (s = 1; s < 200000; s += 40000) {
        fprintf(f, "5,%zu,revoked,,%s\n", s, revoked[s] ? "yes" : "");
        revoked[s] = !revoked[s];
    }
    fclose(f);

    tap_ok(load(cli, p2, csv) == 0
           && wrong_answers(p2, 0, revoked, n, &cached) == 0
           && (cached & CR_CACHED_FILTER),
           "overrides added and deleted: the same answers as the table");

    /* Past the size it was made for: rebuilt bigger. */
    f = fopen(csv, "w");
    fputs("kid,serial,state,campaign\n", f);
    for (s = 3; s < n; s += 2) {
        if (!revoked[s]) {
            revoked[s] = 1;
            fprintf(f, "5,%zu,revoked,\n", s);
        }
    }
    fclose(f);

    tap_ok(load(cli, p2, csv) == 0
           && wrong_answers(p2, 0, revoked, n, &cached) == 0
           && (cached & CR_CACHED_FILTER)
           && wrong_answers(p2, CR_STORE_NOCACHE, revoked, n, &cached) == 0,
           "about 100,000 overrides more: all found, with and without it");

    /* A one-row commit writes one chunk of the filter, not all. */
    nc = filter_chunks(p2, off0, 16);

    f = fopen(csv, "w");
    for (s = 2; revoked[s]; s += 2) { /* void */ }
    fprintf(f, "kid,serial,state,campaign\n5,%zu,revoked,\n", s);
    revoked[s] = 1;
    fclose(f);

    tap_ok(load(cli, p2, csv) == 0 && nc == 4
           && filter_chunks(p2, off1, 16) == nc
           && wrong_answers(p2, 0, revoked, n, &cached) == 0
           && (cached & CR_CACHED_FILTER),
           "a one-row commit into a filter of %zu chunks: all found", nc);

    for (i = 0, changed = 0; i < nc && i < 16; i++) {
        changed += off0[i] != off1[i];
    }

    tap_ok(changed == 1, "... and %zu of its chunks written (1)", changed);

    /* A filter of the first layout (words in its one record), as an older
     * loader left it: not trusted, rebuilt by the next load. */
    raw_begin(p2, "meta", &env, &txn, &dbi);
    k.mv_data = "ofilter";
    k.mv_size = 7;
    rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0) {
        old = malloc(v.mv_size + 64);
        memcpy(old, v.mv_data, v.mv_size);
        memcpy(old, "CRFILT1", 8);
        memset(old + v.mv_size, 0xff, 64);
        v.mv_data = old;
        v.mv_size += 64;
        rc = mdb_put(txn, dbi, &k, &v, 0);
        free(old);
    }
    tap_ok(rc == 0 && mdb_txn_commit(txn) == 0, "a version 1 filter record");
    mdb_env_close(env);

    tap_ok(wrong_answers(p2, 0, revoked, n, &cached) == 0
           && !(cached & CR_CACHED_FILTER),
           "a version 1 filter: not trusted, every override found");

    f = fopen(csv, "w");
    for (s = 2; revoked[s]; s += 2) { /* void */ }
    fprintf(f, "kid,serial,state,campaign\n5,%zu,revoked,\n", s);
    revoked[s] = 1;
    fclose(f);

    tap_ok(load(cli, p2, csv) == 0
           && wrong_answers(p2, 0, revoked, n, &cached) == 0
           && (cached & CR_CACHED_FILTER),
           "the next load rebuilds it in chunks");

    /* Another tool adds an override behind the loader's back. */
    raw_begin(p2, "codes", &env, &txn, &dbi);
    key[5] = 3;                                  /* serial 3: revoked */
    k.mv_data = key;
    k.mv_size = 6;
    rc = mdb_get(txn, dbi, &k, &v);

    for (s = 2; revoked[s]; s += 2) { /* void */ }   /* none, yet */

    key[3] = (uint8_t) (s >> 16);
    key[4] = (uint8_t) (s >> 8);
    key[5] = (uint8_t) s;
    revoked[s] = 1;

    tap_ok(rc == 0 && mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE) == 0
           && mdb_txn_commit(txn) == 0,
           "another tool adds an override for serial %zu", s);
    mdb_env_close(env);

    tap_ok(wrong_answers(p2, 0, revoked, n, &cached) == 0
           && !(cached & CR_CACHED_FILTER),
           "an override written by another tool: the filter is not "
           "trusted, and the code is revoked");

    f = fopen(csv, "w");
    fputs("kid,serial,state,campaign\n5,0,revoked,\n", f);
    revoked[0] = 1;
    fclose(f);

    tap_ok(load(cli, p2, csv) == 0
           && wrong_answers(p2, 0, revoked, n, &cached) == 0
           && (cached & CR_CACHED_FILTER),
           "the next load rebuilds it, the other tool's override in it");

    free(revoked);
}


/* FNV-1a over n bytes, into h. */
static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
    size_t          i;
    const uint8_t  *b;

    b = p;
    for (i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
    }

    return h;
}


/*
 * Every answer (status, batch, or the error) of a reader of db for key
 * ids 0..2 and serials 0, step, 2 step... up to max, folded into one
 * number: two readers that answer alike give the same.
 */
static uint64_t
pack_digest(const char *db, int flags, uint64_t max, uint64_t step,
    int *cached, uint64_t *missed)
{
    int           rc;
    char          err[512];
    unsigned      kid;
    uint64_t      h, s;
    cr_store_t   *st;
    cr_binding_t  r;

    h = 14695981039346656037ull;
    *cached = -1;

    if (cr_store_open(&st, db, CR_STORE_RDONLY | flags, err, sizeof(err))
        != 0)
    {
        tap_diag("%s", err);
        return 0;
    }

    for (kid = 0; kid < 3; kid++) {
        for (s = 0; s <= max; s += step) {
            rc = cr_store_lookup(st, kid, s, 0, &r, alloc, NULL);
            h = mix(h, &rc, sizeof(rc));

            if (rc != 0) {
                h = mix(h, cr_store_error(st), strlen(cr_store_error(st)));
            } else {
                h = mix(h, &r.status, sizeof(r.status));
                rc = r.has_batch;
                h = mix(h, &rc, sizeof(rc));
                h = mix(h, &r.batch.first, sizeof(r.batch.first));
                h = mix(h, &r.batch.last, sizeof(r.batch.last));
                h = mix(h, r.batch.s[CR_BATCH_ID].data,
                        r.batch.s[CR_BATCH_ID].len);
                h = mix(h, r.batch.s[CR_BATCH_REGION].data,
                        r.batch.s[CR_BATCH_REGION].len);
                h = mix(h, r.batch.s[CR_BATCH_DEALER].data,
                        r.batch.s[CR_BATCH_DEALER].len);
            }

            free_allocs();
        }
    }

    *cached = cr_store_cached(st);
    *missed = cr_store_pack_missed(st);
    cr_store_close(st);

    return h;
}


/* The pack answers as LMDB does over db's serials, and is used
 * (want_pack: for every lookup; 2: not for some, an unsound chunk). */
static int
pack_agrees(const char *db, uint64_t max, uint64_t step, int want_pack)
{
    int       c1, c2;
    uint64_t  h1, h2, m1, m2;

    h1 = pack_digest(db, 0, max, step, &c1, &m1);
    h2 = pack_digest(db, CR_STORE_NOCACHE, max, step, &c2, &m2);

    if (h1 != h2 || c2 != 0 || !!(c1 & CR_CACHED_BATCHES) != !!want_pack
        || (want_pack == 2) != (m1 > 0))
    {
        tap_diag("%s: digests %llx %llx, cached %d, %llu lookups missed",
                 db, (unsigned long long) h1, (unsigned long long) h2, c1,
                 (unsigned long long) m1);
        return 0;
    }

    return 1;
}


/* A store of n batches "b<i>" of key id 1, serials 10 i .. 10 i + 4
 * (every third with a dealer: both record kinds), one of key id 2
 * (serials 0..4) and their campaign; 0 or -1. */
static int
pack_store(const char *db, size_t n)
{
    char           id[32];
    size_t         i;
    cr_store_t    *st;
    cr_batch_t     bt, other;
    cr_campaign_t  c;

    unlink(db);

    if (cr_store_open(&st, db, CR_STORE_CREATE, id, sizeof(id)) != 0) {
        return -1;
    }

    cr_store_begin(st);
    campaign(&c, "open", "https://b.example/", CR_TIME_NONE, CR_TIME_NONE);
    cr_store_put_campaign(st, &c);

    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "b%zu", i);
        batch(&bt, id, 1, i * 10, i * 10 + 4, "open");
        if (i % 3 == 0) {
            bt.s[CR_BATCH_DEALER] = S("dealer-7");   /* the other kind */
        }
        if (cr_store_put_batch(st, &bt, &other) != CR_PUT_ADDED) {
            break;
        }
    }

    if (n) {
        batch(&bt, "k2", 2, 0, 4, "open");
        cr_store_put_batch(st, &bt, &other);
    }

    if (i != n || cr_store_commit(st, 1) != 0) {
        cr_store_close(st);
        return -1;
    }

    cr_store_close(st);

    return 0;
}


/*
 * db's pack: its chunks' last keys and where their records lie in the map
 * (up to max; a chunk a commit did not write keeps its pages), and where
 * the directory lies.  How many chunks; -1 if there is no directory.
 */
static long
pack_chunks(const char *db, uint64_t *last, size_t *off, size_t max,
    size_t *dir_off)
{
    long           n;
    size_t         i;
    uint8_t        ck[10];
    MDB_env       *env;
    MDB_txn       *txn;
    MDB_dbi        dbi;
    MDB_val        k, v;
    MDB_envinfo    ei;
    cr_pack_dir_t  d;

    n = -1;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);

    if (mdb_env_open(env, db, MDB_NOSUBDIR | MDB_RDONLY, 0644) != 0) {
        mdb_env_close(env);
        return -1;
    }

    mdb_env_info(env, &ei);
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    mdb_dbi_open(txn, "meta", 0, &dbi);
    k.mv_data = "bpack";
    k.mv_size = 5;

    if (mdb_get(txn, dbi, &k, &v) == 0
        && cr_pack_dir_decode(v.mv_data, v.mv_size, &d) == 0)
    {
        *dir_off = (size_t) ((char *) v.mv_data - (char *) ei.me_mapaddr);
        n = d.n;

        for (i = 0; i < d.n && i < max; i++) {
            last[i] = cr_pack_dir_last(&d, i);
            memcpy(ck, "bpack.", 6);
            ck[6] = (uint8_t) (cr_pack_dir_num(&d, i) >> 24);
            ck[7] = (uint8_t) (cr_pack_dir_num(&d, i) >> 16);
            ck[8] = (uint8_t) (cr_pack_dir_num(&d, i) >> 8);
            ck[9] = (uint8_t) cr_pack_dir_num(&d, i);
            k.mv_data = ck;
            k.mv_size = 10;
            off[i] = mdb_get(txn, dbi, &k, &v) == 0
                     ? (size_t) ((char *) v.mv_data - (char *) ei.me_mapaddr)
                     : 0;
        }
    }

    mdb_txn_abort(txn);
    mdb_env_close(env);

    return n;
}


/* Commits puts of batches pfx<i> for each i of put (serials 10 i + shift
 * .. + 4, region CN-SH) and deletes of batches b<i> for each i of del. */
static int
pack_edit(const char *db, const char *pfx, const size_t *put, size_t nput,
    uint64_t shift, const size_t *del, size_t ndel)
{
    int           rc;
    char          id[32];
    size_t        i;
    cr_store_t   *st;
    cr_batch_t    bt, other;

    if (cr_store_open(&st, db, 0, id, sizeof(id)) != 0) {
        return -1;
    }

    cr_store_begin(st);
    rc = 0;

    for (i = 0; rc >= 0 && i < nput; i++) {
        snprintf(id, sizeof(id), "%s%zu", pfx, put[i]);
        batch(&bt, id, 1, put[i] * 10 + shift, put[i] * 10 + shift + 4,
              "open");
        bt.s[CR_BATCH_REGION] = S("CN-SH");
        rc = cr_store_put_batch(st, &bt, &other);
    }

    for (i = 0; rc >= 0 && i < ndel; i++) {
        snprintf(id, sizeof(id), "b%zu", del[i]);
        rc = cr_store_del_batch(st, id, strlen(id));
    }

    if (rc < 0) {
        tap_diag("%s", cr_store_error(st));
        cr_store_abort(st);
        cr_store_close(st);
        return -1;
    }

    rc = cr_store_commit(st, 2);
    cr_store_close(st);

    return rc;
}


/* A load of one row: batch b30000 in region. */
static int
pack_csv(const char *csv, const char *region)
{
    FILE  *f;

    f = fopen(csv, "w");
    if (f == NULL) {
        return -1;
    }

    fprintf(f, "batch,kid,serial_from,serial_to,scene,campaign,region\n"
            "b30000,1,300000,300004,marketing,open,%s\n", region);

    return fclose(f);
}


/*
 * How many of n chunks (off) and the directory (d) a commit wrote: those
 * that moved other than the rest did (a map opened again may lie
 * elsewhere: the offsets are addresses).
 */
static size_t
pack_moved(const size_t *off0, const size_t *off1, size_t n, size_t d0,
    size_t d1)
{
    size_t  i, k, m, best, shift;

    best = (size_t) -1;

    for (k = 0; k < 2 && k < n; k++) {
        shift = off1[k] - off0[k];
        m = d1 - d0 != shift;

        for (i = 0; i < n; i++) {
            m += off1[i] - off0[i] != shift;
        }

        best = m < best ? m : best;
    }

    return best;
}


/*
 * The batch pack: answers exactly as LMDB's search, for stores of every
 * size and after loads that add, change, move and delete batches at the
 * edges and in the middle of chunks; a chunk or a table it was not built
 * for makes readers search LMDB, with the same answers.
 */
static void
test_batch_pack(const char *cli)
{
    int           ok, rc;
    char          p2[300], csv[300];
    long          n0, n1;
    size_t        i, n, c0, c1, changed, d0, d1, put[1300], del[1300];
    size_t       *off0, *off1;
    uint64_t     *last;
    uint8_t       ck[10], *copy;
    MDB_env      *env;
    MDB_txn      *txn;
    MDB_dbi       dbi;
    MDB_val       k, v;
    static const size_t  sizes[] = { 0, 1, 5, 4097, 65537 };

    off0 = calloc(4096, sizeof(size_t));
    off1 = calloc(4096, sizeof(size_t));
    last = calloc(4096, sizeof(uint64_t));
    snprintf(p2, sizeof(p2), "%s/pack.mdb", dir);

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        n = sizes[i];
        ok = pack_store(p2, n) == 0;
        tap_ok(ok && pack_agrees(p2, n * 10 + 20, n > 5000 ? 31 : 1, 1),
               "%zu batches: the pack answers as LMDB does", n);
    }

    /* 4,097 batches: where its chunks end (batch c0 is chunk 0's last,
     * c1 chunk 1's). */
    pack_store(p2, 4097);
    n0 = pack_chunks(p2, last, off0, 4096, &d0);
    c0 = (size_t) (last[0] & 0xffffffffff) / 10;
    c1 = (size_t) (last[1] & 0xffffffffff) / 10;
    tap_ok(n0 >= 3 && c0 > 10 && c1 < 2 * c0 + 10 && c1 - c0 < 1200,
           "4,097 batches in %ld chunks, %zu in the first", n0, c0 + 1);

    /* Changed at the first and last batch of chunks and in the middle;
     * deleted likewise; one moved from chunk 0 to past the end. */
    put[0] = 0;
    put[1] = c0;
    put[2] = c0 + 1;
    put[3] = (c0 + c1) / 2;
    ok = pack_edit(p2, "b", put, 4, 0, NULL, 0) == 0;
    del[0] = c1;
    del[1] = c1 + 1;
    del[2] = c0 / 2;
    ok = ok && pack_edit(p2, "b", NULL, 0, 0, del, 3) == 0;
    put[0] = 1;
    ok = ok && pack_edit(p2, "b", put, 1, 50000, NULL, 0) == 0;
    tap_ok(ok && pack_agrees(p2, 4097 * 10 + 50020, 1, 1)
           && pack_chunks(p2, last, off1, 4096, &d1) == n0,
           "batches changed, deleted and moved at the edges and in the "
           "middle of chunks: the same answers, the same chunks");

    /* New batches between those of chunk 1: it splits. */
    for (i = 0; c0 + 1 + i < c1; i++) {
        put[i] = c0 + 1 + i;
    }
    ok = pack_edit(p2, "n", put, i, 5, NULL, 0) == 0;
    n1 = pack_chunks(p2, last, off1, 4096, &d1);
    tap_ok(ok && n1 > n0 && pack_agrees(p2, 4097 * 10 + 50020, 1, 1),
           "%zu batches added in chunk 1: %ld chunks, not %ld, the same "
           "answers", i, n1, n0);

    /* Every batch of chunk 0 deleted: the chunk goes. */
    for (i = 0, n = 0; i <= c0; i++) {
        if (i != c0 / 2) {
            del[n++] = i;
        }
    }
    ok = pack_edit(p2, "b", NULL, 0, 0, del, n) == 0;
    tap_ok(ok && pack_chunks(p2, last, off1, 4096, &d1) == n1 - 1
           && pack_agrees(p2, 4097 * 10 + 50020, 1, 1),
           "the batches of chunk 0 deleted: one chunk less, the same "
           "answers");

    /* 65,537 batches: a one-row load through the loader rewrites one
     * chunk and the directory. */
    pack_store(p2, 65537);
    n0 = pack_chunks(p2, last, off0, 4096, &d0);
    snprintf(csv, sizeof(csv), "%s/pack.csv", dir);
    ok = pack_csv(csv, "CN-SH") == 0 && load(cli, p2, csv) == 0;
    n1 = pack_chunks(p2, last, off1, 4096, &d1);

    changed = pack_moved(off0, off1, n1 == n0 ? (size_t) n0 : 0, d0, d1);

    tap_ok(ok && n0 > 40 && n1 == n0 && changed == 2
           && pack_agrees(p2, 655390, 31, 1),
           "a one-row load into %ld chunks: %zu records written (a chunk "
           "and the directory), the same answers", n0, changed);

    /* A batch deleted behind the loader's back: not trusted. */
    raw_begin(p2, "batches", &env, &txn, &dbi);
    ck[0] = 1;
    ck[1] = 0;
    ck[2] = 0;
    ck[3] = (uint8_t) (100004 >> 16);
    ck[4] = (uint8_t) (100004 >> 8);
    ck[5] = (uint8_t) 100004;
    k.mv_data = ck;
    k.mv_size = 6;
    rc = mdb_del(txn, dbi, &k, NULL);
    tap_ok(rc == 0 && mdb_txn_commit(txn) == 0, "another tool deletes a "
           "batch");
    mdb_env_close(env);

    tap_ok(pack_agrees(p2, 655390, 31, 0)
           && pack_agrees(p2, 100010, 1, 0),
           "a pack stamped for another table: not trusted, LMDB's answers");

    ok = pack_csv(csv, "CN-BJ") == 0 && load(cli, p2, csv) == 0;
    tap_ok(ok && pack_agrees(p2, 655390, 31, 1),
           "the next load builds it again");

    /* A chunk that is not sane, and a record in one that does not decode:
     * those lookups search LMDB. */
    pack_chunks(p2, last, off0, 4096, &d0);
    raw_begin(p2, "meta", &env, &txn, &dbi);
    memcpy(ck, "bpack.", 6);
    memset(ck + 6, 0, 4);
    k.mv_data = ck;
    k.mv_size = 10;
    rc = mdb_get(txn, dbi, &k, &v);

    if (rc == 0) {
        copy = malloc(v.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[16 + 8 * 3 + 1] ^= 0x40;       /* a key out of order */
        v.mv_data = copy;
        rc = mdb_put(txn, dbi, &k, &v, 0);

        ck[9] = 1;
        if (rc == 0 && mdb_get(txn, dbi, &k, &v) == 0) {
            /* The first byte, its type, of its last record. */
            memcpy(copy, v.mv_data, v.mv_size);
            n = copy[8] | (size_t) copy[9] << 8;
            i = 16 + 8 * n + 4 * (n - 1);
            copy[copy[i] | (size_t) copy[i + 1] << 8
                 | (size_t) copy[i + 2] << 16] = 0xee;
            v.mv_data = copy;
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
        free(copy);
    }

    tap_ok(rc == 0 && mdb_txn_commit(txn) == 0, "two chunks spoiled");
    mdb_env_close(env);

    tap_ok(pack_agrees(p2, (last[1] & 0xffffffffff) + 20, 1, 2),
           "lookups in them: LMDB's answers, the other chunks used");

    /* A store written before the pack. */
    raw_begin(p2, "meta", &env, &txn, &dbi);
    k.mv_data = "bpack";
    k.mv_size = 5;
    rc = mdb_del(txn, dbi, &k, NULL);
    tap_ok(rc == 0 && mdb_txn_commit(txn) == 0, "a store without a pack");
    mdb_env_close(env);

    ok = pack_agrees(p2, 655390, 31, 0);
    tap_ok(ok && pack_csv(csv, "CN-GZ") == 0 && load(cli, p2, csv) == 0
           && pack_agrees(p2, 655390, 31, 1),
           "searched in LMDB, and packed by the next load");

    free(off0);
    free(off1);
    free(last);
}


int
main(int argc, char **argv)
{
    char  cmd[600];

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    snprintf(path, sizeof(path), "%s/brand.mdb", dir);

    test_lookup();
    test_decoders();
    test_stored_times();
    test_refusals();
    test_grow();

    if (argc > 1) {
        test_snapshot(argv[1]);
        test_reader_cache(argv[1]);
        test_override_filter(argv[1]);
        test_batch_pack(argv[1]);
    }

    free_allocs();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        tap_diag("could not remove %s", dir);
    }

    return tap_done();
}
