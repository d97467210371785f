/*
 * cr_scans, the scan store: merge by max, counts apart per key
 * fingerprint, refusal of another LMDB database and of an older version,
 * a map grown by another process adopted only while no transaction is
 * live; the map grown by the writer up to its limit, scans refused past
 * their share while right PINs are still written; and the fingerprint the
 * counts are keyed by.
 */

#define _GNU_SOURCE            /* mkdtemp, RTLD_NEXT */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "cr_codec.h"
#include "cr_scans.h"
#include "cr_store.h"
#include "tap.h"


static cr_scan_t
scan(const uint8_t *fp, unsigned kid, uint64_t serial, uint32_t count,
    int64_t first)
{
    cr_scan_t  s;

    memcpy(s.fp, fp, CR_SCANS_FP_LEN);
    s.kid = (uint8_t) kid;
    s.kind = CR_SCANS_SCANS;
    s.serial = serial;
    s.count = count;
    s.first = first;

    return s;
}


static void
test_scans(void)
{
    int          rc;
    char         dir[] = "/tmp/cr-scans-XXXXXX", path[64], bind[64];
    char         err[512];
    MDB_env     *env;
    MDB_txn     *txn;
    MDB_dbi      dbi;
    MDB_val      k, d;
    cr_scan_t    v[2], got;
    uint8_t      fa[8] = "brand-A", fb[8] = "brand-B";
    cr_store_t  *st;
    cr_scans_t  *sc;

    if (mkdtemp(dir) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(path, sizeof(path), "%s/scans.mdb", dir);
    snprintf(bind, sizeof(bind), "%s/brand.mdb", dir);

    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           == 0, "check: a store not yet created is fine");

    rc = cr_scans_open(&sc, path, 1 << 20, 0, err, sizeof(err));
    if (!tap_ok(rc == 0, "open creates the store")) {
        tap_diag("%s", err);
        return;
    }

    tap_ok(cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &got)
           == CR_SCANS_NOTFOUND,
           "an unknown code: not found");

    v[0] = scan(fa, 1, 5, 10, 1000);
    v[1] = scan(fa, 255, 0xffffffffffULL, 1, 2000);
    tap_ok(cr_scans_put(sc, v, 2) == 0, "put two");
    tap_ok(cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &got)
           == 0 && got.count == 10
           && got.first == 1000 && memcmp(got.fp, fa, 8) == 0,
           "read back: 10 scans since 1000");
    tap_ok(cr_scans_get(sc, fa, 255, 0xffffffffffULL, CR_SCANS_SCANS, &got) == 0
           && got.count == 1, "the largest kid and serial");

    v[0] = scan(fa, 1, 5, 7, 3000);
    tap_ok(cr_scans_put(sc, v, 1) == 0
           && cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &got) == 0
           && got.count == 10 && got.first == 1000,
           "a lower count or later first scan never wins (max merge)");

    v[0] = scan(fa, 1, 5, 12, 900);
    tap_ok(cr_scans_put(sc, v, 1) == 0
           && cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &got) == 0
           && got.count == 12 && got.first == 900, "a higher count wins");

    /* Issue 12, item 2: another brand's key, the same (kid, serial). */
    tap_ok(cr_scans_get(sc, fb, 1, 5, CR_SCANS_SCANS, &got)
           == CR_SCANS_NOTFOUND,
           "the same kid and serial under another key: not found");
    v[0] = scan(fb, 1, 5, 1, 4000);
    tap_ok(cr_scans_put(sc, v, 1) == 0
           && cr_scans_get(sc, fb, 1, 5, CR_SCANS_SCANS, &got)
              == 0 && got.count == 1
           && cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &got)
              == 0 && got.count == 12,
           "... counted apart: 1 under one key, 12 under the other");

    /* Right PINs (code_router_verify): a record of their own next to the
     * code's scans, with the same merge rules. */
    tap_ok(cr_scans_get(sc, fa, 1, 5, CR_SCANS_VERIFIED, &got)
           == CR_SCANS_NOTFOUND, "right PINs of a scanned code: none yet");
    v[0] = scan(fa, 1, 5, 1, 5000);
    v[0].kind = CR_SCANS_VERIFIED;
    v[1] = scan(fa, 1, 5, 13, 900);
    tap_ok(cr_scans_cmp(&v[1], &v[0]) < 0 && cr_scans_cmp(&v[0], &v[1]) > 0,
           "cr_scans_cmp: a code's scans, then its right PINs");
    tap_ok(cr_scans_put(sc, v, 2) == 0
           && cr_scans_get(sc, fa, 1, 5, CR_SCANS_VERIFIED, &got) == 0
           && got.count == 1 && got.first == 5000
           && got.kind == CR_SCANS_VERIFIED,
           "right PINs read back: 1 since 5000");
    tap_ok(cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &got) == 0
           && got.count == 13 && got.first == 900,
           "... the scans apart: 13 since 900");
    v[0].count = 0;
    v[0].first = 6000;
    tap_ok(cr_scans_put(sc, v, 1) == 0
           && cr_scans_get(sc, fa, 1, 5, CR_SCANS_VERIFIED, &got) == 0
           && got.count == 1 && got.first == 5000,
           "... a lower count or a later first never wins");
    tap_ok(cr_scans_get(sc, fb, 1, 5, CR_SCANS_VERIFIED, &got)
           == CR_SCANS_NOTFOUND, "... and never another key's");

    v[0] = scan(fb, 1, 6, 1, 0);
    v[1] = scan(fa, 2, 1, 1, 0);
    tap_ok(cr_scans_cmp(&v[0], &v[1]) > 0 && cr_scans_cmp(&v[1], &v[0]) < 0
           && cr_scans_cmp(&v[0], &v[0]) == 0,
           "cr_scans_cmp orders by fingerprint first, as the store does");

    cr_scans_close(sc);

    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           == 0, "check: an existing scan store is fine");

    rc = cr_store_open(&st, bind, CR_STORE_CREATE, err, sizeof(err));
    if (rc == 0) {
        (void) cr_store_begin(st);
        (void) cr_store_commit(st, 1);
        cr_store_close(st);
    }

    rc = cr_scans_open(&sc, bind, 0, 0, err, sizeof(err));
    tap_ok(rc != 0 && strstr(err, "binding store") != NULL,
           "a binding store is refused as a scan store: %s", err);

    /* A store of version 1 (counts keyed by kid and serial alone, no
     * "meta"): refused by name, in a check and in an open. */
    snprintf(path, sizeof(path), "%s/v1.mdb", dir);
    rc = mdb_env_create(&env);
    if (rc == 0) {
        (void) mdb_env_set_maxdbs(env, 2);
        rc = mdb_env_open(env, path, MDB_NOSUBDIR, 0600);
    }
    if (rc == 0) {
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    }
    if (rc == 0) {
        k.mv_data = "\x01\x00\x00\x00\x00\x05";
        k.mv_size = 6;
        d.mv_data = "\x07\0\0\0\0\0\0\0\0\0\0\0";
        d.mv_size = 12;
        rc = mdb_dbi_open(txn, "scans", MDB_CREATE, &dbi);
        if (rc == 0) {
            rc = mdb_put(txn, dbi, &k, &d, 0);
        }
        rc = rc ? rc : mdb_txn_commit(txn);
    }
    mdb_env_close(env);
    tap_ok(rc == 0, "a version 1 store made");

    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           != 0 && strstr(err, "has version 1") != NULL,
           "check: a version 1 store is refused: %s", err);
    tap_ok(cr_scans_open(&sc, path, 0, 0, err, sizeof(err)) != 0
           && strstr(err, "has version 1") != NULL,
           "open: a version 1 store is refused: %s", err);

    snprintf(path, sizeof(path), "%s/none/scans.mdb", dir);
    tap_ok(cr_scans_open(NULL, path, 0, CR_SCANS_CHECK, err, sizeof(err))
           != 0 && strstr(err, "No such file") != NULL,
           "check: a missing directory is refused: %s", err);

    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    if (system(path) != 0) {
        tap_diag("could not remove %s", dir);
    }
}


/*
 * Issue 12, item 13.  LMDB: mdb_env_set_mapsize() only while no txn of
 * the process is active.  mdb_get and mdb_env_set_mapsize are wrapped
 * (this program's definitions win over liblmdb's for cr_scans' calls): a
 * read is held inside its txn while another process grows the map and a
 * write begins, as nginx's event loop reads while a pool thread writes.
 */
static volatile int  hold_armed, hold_inside, hold_release, resize_live;


int
mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    int   i;
    int (*real)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);

    if (hold_armed) {
        hold_armed = 0;
        hold_inside = 1;

        for (i = 0; i < 5000 && !hold_release; i++) {
            usleep(1000);
        }

        hold_inside = 0;
    }

    *(void **) &real = dlsym(RTLD_NEXT, "mdb_get");

    return real(txn, dbi, key, data);
}


int
mdb_env_set_mapsize(MDB_env *env, size_t size)
{
    int (*real)(MDB_env *, size_t);

    if (hold_inside) {
        resize_live++;          /* would unmap the held read's pages */
        return EINVAL;
    }

    *(void **) &real = dlsym(RTLD_NEXT, "mdb_env_set_mapsize");

    return real(env, size);
}


typedef struct {
    cr_scans_t  *sc;
    uint8_t     *fp;
    int          rc;
    cr_scan_t    got;
} reader_t;


static void *
reader(void *data)
{
    reader_t  *rd = data;

    rd->rc = cr_scans_get(rd->sc, rd->fp, 1, 5, CR_SCANS_SCANS,
                           &rd->got);

    return NULL;
}


static void
test_resize(void)
{
    int          rc, i;
    char         dir[] = "/tmp/cr-scans-XXXXXX", path[64], dump[64];
    char         cmd[256], err[512];
    FILE        *f;
    uint8_t      fa[8] = "brand-A";
    reader_t     rd;
    cr_scan_t    v;
    pthread_t    th;
    cr_scans_t  *sc;

    if (mkdtemp(dir) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(path, sizeof(path), "%s/scans.mdb", dir);
    snprintf(dump, sizeof(dump), "%s/grow.dump", dir);

    rc = cr_scans_open(&sc, path, 1 << 20, 0, err, sizeof(err));
    if (!tap_ok(rc == 0, "resize: a store with a 1m map")) {
        tap_diag("%s", err);
        return;
    }

    v = scan(fa, 1, 5, 10, 1000);
    tap_ok(cr_scans_put(sc, &v, 1) == 0, "resize: one record");

    /* More than 1m of records, under a 64m map: another process grows it. */
    f = fopen(dump, "w");
    if (f == NULL) {
        tap_ok(0, "resize: the dump");
        return;
    }

    fprintf(f, "VERSION=3\nformat=bytevalue\nmapsize=%d\n"
            "database=scans\ntype=btree\nHEADER=END\n", 64 << 20);

    for (i = 0; i < 40000; i++) {
        fprintf(f, " 67726f7765723a3a01%010x\n 010000000000000000000000\n",
                i);
    }

    fprintf(f, "DATA=END\n");
    fclose(f);

    rd.sc = sc;
    rd.fp = fa;
    hold_armed = 1;
    hold_release = 0;
    resize_live = 0;

    if (pthread_create(&th, NULL, reader, &rd) != 0) {
        tap_ok(0, "resize: a reader thread");
        return;
    }

    for (i = 0; i < 5000 && !hold_inside; i++) {
        usleep(1000);
    }

    snprintf(cmd, sizeof(cmd), "mdb_load -n -f '%s' '%s'", dump, path);
    tap_ok(hold_inside && system(cmd) == 0,
           "resize: another process grew the map to 64m while a read is "
           "live");

    v = scan(fa, 1, 6, 1, 2000);
    rc = cr_scans_put(sc, &v, 1);
    tap_ok(resize_live == 0,
           "a write does not adopt the grown map while a read is live");
    tap_ok(rc != 0, "... it fails instead, to be retried: %s",
           rc ? cr_scans_error(sc) : "");

    hold_release = 1;
    pthread_join(th, NULL);
    tap_ok(rd.rc == 0 && rd.got.count == 10,
           "the held read completes: 10 scans");

    tap_ok(cr_scans_put(sc, &v, 1) == 0
           && cr_scans_get(sc, fa, 1, 6, CR_SCANS_SCANS, &v) == 0
           && v.count == 1
           && cr_scans_get(sc, fa, 1, 5, CR_SCANS_SCANS, &v) == 0
           && v.count == 10,
           "then the write adopts the map and lands; reads see both");
    tap_ok(resize_live == 0, "the map was never adopted under a live txn");

    cr_scans_close(sc);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        tap_diag("could not remove %s", dir);
    }
}


/* The fingerprint scan counts are keyed by: one per (master, kid), and
 * none of the code's keys. */
static void
test_fingerprint(void)
{
    uint8_t   m1[CR_MASTER_KEY_LEN], m2[CR_MASTER_KEY_LEN];
    cr_key_t  a, a2, b, c;

    memset(m1, 0x11, sizeof(m1));
    memset(m2, 0x22, sizeof(m2));

    tap_ok(cr_key_derive(&a, 1, m1) == 0 && cr_key_derive(&a2, 1, m1) == 0
           && cr_key_derive(&b, 1, m2) == 0 && cr_key_derive(&c, 2, m1) == 0,
           "keys derived");
    tap_ok(memcmp(a.fp, a2.fp, CR_KEY_FP_LEN) == 0,
           "fingerprint: the same for the same master and key id");
    tap_ok(memcmp(a.fp, b.fp, CR_KEY_FP_LEN) != 0,
           "... another for another master key");
    tap_ok(memcmp(a.fp, c.fp, CR_KEY_FP_LEN) != 0,
           "... another for another key id");
    tap_ok(memcmp(a.fp, a.k_mac, CR_KEY_FP_LEN) != 0
           && memcmp(a.fp, a.k_enc, CR_KEY_FP_LEN) != 0,
           "... and no part of the code's keys");
    tap_ok(CR_KEY_FP_LEN == CR_SCANS_FP_LEN,
           "the scan store keys by the whole fingerprint");

    cr_key_wipe(&a, sizeof(a));
    cr_key_wipe(&a2, sizeof(a2));
    cr_key_wipe(&b, sizeof(b));
    cr_key_wipe(&c, sizeof(c));
}


/* Issue 21, item 4: the writer grows the map up to the limit; scans of
 * new codes stop at their share, right PINs do not. */
static void
test_limit(void)
{
    int               rc;
    char              dir[] = "/tmp/cr-scans-XXXXXX", path[64], cmd[128];
    char              err[512];
    size_t            i, batches;
    uint64_t          serial;
    cr_scan_t        *v, got;
    cr_scans_t       *sc;
    cr_scans_usage_t  u;
    uint8_t           fa[8] = "brand-A", fb[8] = "brand-B";

    if (mkdtemp(dir) == NULL || (v = calloc(1000, sizeof(*v))) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(path, sizeof(path), "%s/scans.mdb", dir);

    rc = cr_scans_open(&sc, path, 1 << 20, 0, err, sizeof(err));
    if (!tap_ok(rc == 0, "limit: a store with a 1m map")) {
        tap_diag("%s", err);
        return;
    }

    cr_scans_limit(sc, 2 << 20);

    /* Brand B's scans of new codes, 1,000 a write, until refused. */
    serial = 1;
    rc = 0;

    for (batches = 0; batches < 200 && rc == 0; batches++) {
        for (i = 0; i < 1000; i++) {
            v[i] = scan(fb, 1, serial++, 1, 1000);
        }

        rc = cr_scans_put(sc, v, 1000);
    }

    tap_ok(rc == CR_SCANS_REFUSED, "limit: scans of new codes refused "
           "after %zu writes: %s", batches, cr_scans_error(sc));
    memset(&u, 0, sizeof(u));
    rc = cr_scans_usage(sc, &u);
    tap_ok(rc == 0 && u.map == 2 << 20 && u.limit == 2 << 20,
           "... the map grew from 1m to the 2m limit (%llu)",
           (unsigned long long) u.map);
    tap_ok(u.used <= (2 << 20) / 8 * CR_SCANS_SCANS_SHARE && u.alert,
           "... the data within the scans' share (%llu bytes), alert set",
           (unsigned long long) u.used);
    tap_ok(cr_scans_get(sc, fb, 1, serial - 1, CR_SCANS_SCANS, &got)
           == CR_SCANS_NOTFOUND, "... the refused write's new codes not "
           "stored");

    /* The refused batch again, with codes the store holds among it. */
    v[0] = scan(fb, 1, 1, 5, 1000);
    v[999] = scan(fb, 1, 2, 7, 1000);
    qsort(v, 1000, sizeof(*v), cr_scans_cmp);
    tap_ok(cr_scans_put(sc, v, 1000) == CR_SCANS_REFUSED
           && cr_scans_get(sc, fb, 1, 1, CR_SCANS_SCANS, &got) == 0
           && got.count == 5
           && cr_scans_get(sc, fb, 1, 2, CR_SCANS_SCANS, &got) == 0
           && got.count == 7,
           "... refused, but the codes it held were raised (5, 7)");

    /* Brand A's right PINs of 1,000 fresh codes, then 1,000 more. */
    for (i = 0; i < 1000; i++) {
        v[i] = scan(fa, 1, i + 1, 1, 2000);
        v[i].kind = CR_SCANS_VERIFIED;
    }

    rc = cr_scans_put(sc, v, 1000);
    tap_ok(rc == 0, "limit: 1,000 right PINs of new codes are written: %s",
           rc ? cr_scans_error(sc) : "");

    for (i = 0; i < 1000; i++) {
        v[i].serial += 1000;
    }

    rc = cr_scans_put(sc, v, 1000);
    tap_ok(rc == 0 && cr_scans_get(sc, fa, 1, 2000, CR_SCANS_VERIFIED, &got)
           == 0 && got.count == 1,
           "... and 1,000 more, past the scans' share: %s",
           rc ? cr_scans_error(sc) : "");

    /* Right PINs until the map is at its limit: CR_SCANS_FULL, then
     * nothing written. */
    for (batches = 0; batches < 200 && rc == 0; batches++) {
        for (i = 0; i < 1000; i++) {
            v[i].serial += 1000;
        }

        rc = cr_scans_put(sc, v, 1000);
    }

    tap_ok(rc == CR_SCANS_FULL
           && cr_scans_get(sc, fa, 1, v[0].serial, CR_SCANS_VERIFIED, &got)
              == CR_SCANS_NOTFOUND
           && cr_scans_usage(sc, &u) == 0 && u.map == 2 << 20,
           "limit: right PINs stop only at the limit itself: %s",
           cr_scans_error(sc));

    cr_scans_close(sc);
    free(v);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        tap_diag("could not remove %s", dir);
    }
}


int
main(void)
{
    test_scans();
    test_fingerprint();
    test_resize();
    test_limit();

    return tap_done();
}
