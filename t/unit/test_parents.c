/*
 * Unit tests of the parents record and table: the record's bytes (a
 * known-answer vector), its round trip and refusals (another kind, a
 * short or long record, a reversed range, a serial past 40 bits, a parent
 * inside its own range); the store's puts (added, unchanged, changed, an
 * overlap refused, the old index entry gone when a range moves to another
 * parent), gets (the range holding a serial, none outside), the children
 * index, deletes (only the range as put); and the chain a lookup returns,
 * from a writer and from read-only readers with and without their copy,
 * nearest first, cut at CR_PARENTS_MAX, and none for a store without
 * parents.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cr_record_int.h"
#include "cr_store.h"
#include "cr_store_test.h"
#include "tap.h"


static void *
alloc(void *ctx, size_t n)
{
    static uint8_t  arena[1 << 16];
    static size_t   used;

    (void) ctx;

    if (used + n > sizeof(arena)) {
        used = 0;
    }

    used += n;

    return arena + used - n;
}


static cr_parent_t
P(unsigned kid, uint64_t first, uint64_t last, unsigned pkid, uint64_t par)
{
    cr_parent_t  p;

    memset(&p, 0, sizeof(p));
    p.kid = (uint8_t) kid;
    p.first = first;
    p.last = last;
    p.parent_kid = (uint8_t) pkid;
    p.parent = par;

    return p;
}


static void
test_record(void)
{
    size_t       n;
    uint8_t      buf[CR_REC_MAX];
    cr_parent_t  p, q;

    /* 'P', kid, first and last (LE64), parent kid, parent (LE64). */
    static const uint8_t  kat[27] = {
        'P', 0x01,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02,
        0x41, 0x1f, 0x7a, 0x00, 0x00, 0x00, 0x00, 0x00
    };

    p = P(1, 1, 6, 2, 8003393);
    n = cr_parent_encode(&p, buf);
    tap_ok(n == sizeof(kat) && memcmp(buf, kat, n) == 0,
           "the record of 1:1-6 in 2:8003393: the known bytes");

    memset(&q, 0xee, sizeof(q));
    tap_ok(cr_parent_decode(kat, sizeof(kat), &q) == 0 && q.kid == 1
           && q.first == 1 && q.last == 6 && q.parent_kid == 2
           && q.parent == 8003393, "it decodes back");

    p = P(255, CR_SERIAL_MAX, CR_SERIAL_MAX, 0, 0);
    n = cr_parent_encode(&p, buf);
    tap_ok(cr_parent_decode(buf, n, &q) == 0 && q.kid == 255
           && q.first == CR_SERIAL_MAX && q.parent == 0,
           "the largest serial and key id round-trip");

    memcpy(buf, kat, sizeof(kat));
    buf[0] = 'B';
    tap_ok(cr_parent_decode(buf, sizeof(kat), &q) != 0,
           "another kind is refused");
    tap_ok(cr_parent_decode(kat, sizeof(kat) - 1, &q) != 0,
           "a short record is refused");
    memcpy(buf, kat, sizeof(kat));
    buf[sizeof(kat)] = 0;
    tap_ok(cr_parent_decode(buf, sizeof(kat) + 1, &q) != 0,
           "a long record is refused");

    p = P(1, 7, 6, 2, 9);
    n = cr_parent_encode(&p, buf);
    tap_ok(cr_parent_decode(buf, n, &q) != 0, "a reversed range is refused");

    p = P(1, 1, CR_SERIAL_MAX + 1, 2, 9);
    n = cr_parent_encode(&p, buf);
    tap_ok(cr_parent_decode(buf, n, &q) != 0,
           "a serial past 40 bits is refused");

    p = P(1, 1, 6, 1, 6);
    n = cr_parent_encode(&p, buf);
    tap_ok(cr_parent_decode(buf, n, &q) != 0,
           "a parent inside its own range is refused");

    p = P(1, 1, 6, 2, 6);
    n = cr_parent_encode(&p, buf);
    tap_ok(cr_parent_decode(buf, n, &q) == 0,
           "... but the same serial of another key id is a parent");
}


typedef struct {
    unsigned  n;
    uint64_t  last[8];
} kids_t;


static int
each_kid(void *ctx, const cr_parent_t *p)
{
    kids_t  *k = ctx;

    if (k->n < 8) {
        k->last[k->n] = p->last;
    }
    k->n++;

    return 0;
}


static int
chain_is(cr_store_t *st, uint64_t serial, unsigned n, uint64_t a,
    uint64_t b)
{
    int           rc;
    cr_binding_t  bd;

    rc = cr_store_lookup(st, 1, serial, 0, &bd, alloc, NULL);
    if (rc != 0 || bd.nparents != n) {
        tap_diag("serial %llu: rc %d (%s), %u parents",
                 (unsigned long long) serial, rc,
                 rc ? cr_store_error(st) : "", bd.nparents);
        return 0;
    }

    return (n < 1 || (bd.parents[0].kid == 1 && bd.parents[0].serial == a))
           && (n < 2 || (bd.parents[1].kid == 1
                         && bd.parents[1].serial == b));
}


static void
test_store(const char *path)
{
    int            rc, i;
    kids_t         k;
    const char    *what;
    cr_store_t    *st, *rd;
    cr_parent_t    p, other, got;
    cr_binding_t   bd;
    char           err[256];

    if (cr_store_open(&st, path, CR_STORE_CREATE, err, sizeof(err)) != 0) {
        tap_ok(0, "open: %s", err);
        return;
    }

    /* A store with no parents at all: an empty chain. */
    rc = cr_store_open(&rd, path, CR_STORE_RDONLY, err, sizeof(err));
    tap_ok(rc == 0 && cr_store_lookup(rd, 1, 3, 0, &bd, alloc, NULL) == 0
           && bd.nparents == 0, "no parents in the store: an empty chain");
    if (rc == 0) {
        cr_store_close(rd);
    }

    (void) cr_store_begin(st);

    p = P(1, 1, 6, 1, 100);
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_ADDED,
           "items 1-6 into case 100: added");
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_SAME,
           "again: unchanged");
    p = P(1, 7, 12, 1, 101);
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_ADDED,
           "items 7-12 into case 101");
    p = P(1, 100, 101, 1, 200);
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_ADDED,
           "cases 100-101 into pallet 200");
    p = P(1, 200, 200, 1, 300);
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_ADDED,
           "pallet 200 into 300 (the loader refuses it; the store does not)");

    p = P(1, 6, 7, 1, 102);
    rc = cr_store_put_parent(st, &p, &other);
    tap_ok(rc == CR_STORE_OVERLAP && other.first == 1 && other.last == 6,
           "items 6-7 overlap 1-6: refused, naming it");
    p = P(1, 1, 5, 1, 102);
    rc = cr_store_put_parent(st, &p, &other);
    tap_ok(rc == CR_STORE_OVERLAP, "items 1-5 (inside 1-6): refused");
    p = P(2, 1, 6, 1, 150);
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_ADDED,
           "the same serials of key id 2: their own");

    tap_ok(cr_store_get_parent(st, 1, 4, &got) == 0 && got.first == 1
           && got.last == 6 && got.parent == 100,
           "get: serial 4 is in case 100");
    tap_ok(cr_store_get_parent(st, 1, 13, &got) == CR_STORE_NOTFOUND,
           "get: serial 13 is in none");
    tap_ok(cr_store_get_parent(st, 0, 4, &got) == CR_STORE_NOTFOUND,
           "get: key id 0 has none");

    memset(&k, 0, sizeof(k));
    rc = cr_store_each_child(st, 1, 100, 101, each_kid, &k);
    tap_ok(rc == 0 && k.n == 2 && k.last[0] == 6 && k.last[1] == 12,
           "the children of 100-101: 1-6, 7-12");
    memset(&k, 0, sizeof(k));
    rc = cr_store_each_child(st, 1, 102, 199, each_kid, &k);
    tap_ok(rc == 0 && k.n == 1 && k.last[0] == 6,
           "of 102-199: key id 2's 1-6");


    /* Item 7-12 move to case 102: the index of 101 loses them. */
    p = P(1, 7, 12, 1, 102);
    tap_ok(cr_store_put_parent(st, &p, &other) == CR_PUT_CHANGED,
           "items 7-12 into case 102: changed");
    memset(&k, 0, sizeof(k));
    rc = cr_store_each_child(st, 1, 101, 101, each_kid, &k);
    tap_ok(rc == 0 && k.n == 0, "case 101 holds nothing now");
    memset(&k, 0, sizeof(k));
    rc = cr_store_each_child(st, 1, 102, 102, each_kid, &k);
    tap_ok(rc == 0 && k.n == 1 && k.last[0] == 12, "case 102 holds 7-12");

    tap_ok(cr_store_del_parent(st, 1, 2, 6) == CR_STORE_NOTFOUND,
           "delete 2-6 (not a range put): not found");
    tap_ok(cr_store_del_parent(st, 1, 200, 200) == 0,
           "delete pallet 200's parent");
    tap_ok(cr_store_get_parent(st, 1, 200, &got) == CR_STORE_NOTFOUND,
           "... gone");
    memset(&k, 0, sizeof(k));
    rc = cr_store_each_child(st, 1, 300, 300, each_kid, &k);
    tap_ok(rc == 0 && k.n == 0, "... from the index too");

    tap_ok(cr_store_commit(st, 1) == 0, "commit");

    /* A writer's lookup reads the last commit. */
    tap_ok(chain_is(st, 3, 2, 100, 200),
           "a writer's lookup: item 3 -> 100 -> 200");

    /* Readers with and without their copy (one at a time: LMDB gives a
     * thread one reader slot). */
    for (i = 0; i < 2; i++) {
        if (cr_store_open(&rd, path, CR_STORE_RDONLY
                                     | (i ? CR_STORE_NOCACHE : 0),
                          err, sizeof(err)) != 0)
        {
            tap_ok(0, "open a reader: %s", err);
            break;
        }

        what = i ? "a reader without its copy" : "a reader";
        tap_ok(chain_is(rd, 3, 2, 100, 200), "%s: item 3 -> 100 -> 200",
               what);
        tap_ok(chain_is(rd, 9, 1, 102, 0), "%s: item 9 -> 102", what);
        tap_ok(chain_is(rd, 13, 0, 0, 0), "%s: item 13: none", what);
        tap_ok(chain_is(rd, 100, 1, 200, 0), "%s: case 100 -> 200", what);
        tap_ok(chain_is(rd, 200, 0, 0, 0), "%s: pallet 200: none", what);
        tap_ok(i || (cr_store_cached(rd) & CR_CACHED_COPY),
               "%s: with its copy", what);
        cr_store_close(rd);
    }

    cr_store_close(st);
}


int
main(int argc, char **argv)
{
    char  dir[] = "/tmp/cr-parents-XXXXXX";
    char  path[300], cmd[400];

    (void) argc;
    (void) argv;

    test_record();

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    snprintf(path, sizeof(path), "%s/brand.mdb", dir);
    test_store(path);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        tap_diag("could not remove %s", dir);
    }

    return tap_done();
}
