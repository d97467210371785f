/*
 * The ledger's pure C parts: cr_scans_verify (the embedded ledger: one
 * durable count per call, first time kept, never lowered by a flush's
 * merge, apart per key fingerprint and from the scans), and cr_ledger's
 * reading of PostgreSQL's answers and request ids.  The PostgreSQL
 * statements themselves run against a real server in t/93 and t/94.
 */

#define _GNU_SOURCE            /* mkdtemp */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cr_ledger.h"
#include "cr_scans.h"
#include "tap.h"


static void
test_embedded(void)
{
    int          rc;
    char         dir[] = "/tmp/cr-ledger-XXXXXX", path[64], err[512];
    uint8_t      fa[8] = "brand-A", fb[8] = "brand-B";
    cr_scan_t    v, got, low;
    cr_scans_t  *sc;

    if (mkdtemp(dir) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(path, sizeof(path), "%s/scans.mdb", dir);

    rc = cr_scans_open(&sc, path, 0, 0, err, sizeof(err));
    if (!tap_ok(rc == 0, "the scan store opens")) {
        tap_diag("%s", err);
        return;
    }

    rc = cr_scans_verify(sc, fa, 1, 42, 1000, &v);
    tap_ok(rc == 0 && v.count == 1 && v.first == 1000,
           "a first right PIN: count 1, first 1000");
    rc = cr_scans_verify(sc, fa, 1, 42, 2000, &v);
    tap_ok(rc == 0 && v.count == 2 && v.first == 1000,
           "a second: count 2, the first time kept");

    rc = cr_scans_get(sc, fa, 1, 42, CR_SCANS_VERIFIED, &got);
    tap_ok(rc == 0 && got.count == 2 && got.first == 1000,
           "read back as a 'v' record: 2, 1000");
    tap_ok(cr_scans_get(sc, fa, 1, 42, CR_SCANS_SCANS, &got)
           == CR_SCANS_NOTFOUND, "the code's scans are apart: none");
    tap_ok(cr_scans_get(sc, fb, 1, 42, CR_SCANS_VERIFIED, &got)
           == CR_SCANS_NOTFOUND, "another key's (kid, serial): none");

    /* A flush's late merge of an older, lower count cannot lower it. */
    memset(&low, 0, sizeof(low));
    memcpy(low.fp, fa, 8);
    low.kid = 1;
    low.kind = CR_SCANS_VERIFIED;
    low.serial = 42;
    low.count = 1;
    low.first = 3000;
    tap_ok(cr_scans_put(sc, &low, 1) == 0, "a merge of count 1");
    rc = cr_scans_verify(sc, fa, 1, 42, 4000, &v);
    tap_ok(rc == 0 && v.count == 3 && v.first == 1000,
           "... the next right PIN is 3, first 1000");

    /* Redemptions: once, the same answer to the same request. */
    {
        int64_t  at;

        rc = cr_scans_redeem(sc, fa, 1, 42, "req-1", 5, 5000, &at);
        tap_ok(rc == CR_SCANS_REDEEMED && at == 5000, "redeemed at 5000");
        rc = cr_scans_redeem(sc, fa, 1, 42, "req-1", 5, 6000, &at);
        tap_ok(rc == CR_SCANS_REPLAYED && at == 5000,
               "the same request: replayed, at 5000");
        rc = cr_scans_redeem(sc, fa, 1, 42, "req-2", 5, 6000, &at);
        tap_ok(rc == CR_SCANS_TAKEN && at == 5000,
               "another request: taken, at 5000");
        rc = cr_scans_redeem(sc, fa, 1, 42, "req-10", 6, 6000, &at);
        tap_ok(rc == CR_SCANS_TAKEN, "a request id extending the first: "
               "taken");
        rc = cr_scans_redeem(sc, fb, 1, 42, "req-2", 5, 7000, &at);
        tap_ok(rc == CR_SCANS_REDEEMED && at == 7000,
               "another key's (kid, serial): its own prize");
        tap_ok(cr_scans_redeem(sc, fa, 1, 43, "", 0, 1, &at) == -1,
               "an empty request id: refused");
        rc = cr_scans_verify(sc, fa, 1, 42, 8000, &v);
        tap_ok(rc == 0 && v.count == 4, "the verifications are apart: 4");
    }

    /* Request ids: the code's last one is replayed, counting nothing. */
    {
        int          rep[3];
        cr_scan_t    b[3];
        const char  *req[3] = { "q-1", "q-1", "q-2" };

        memset(b, 0, sizeof(b));

        for (rc = 0; rc < 3; rc++) {
            memcpy(b[rc].fp, fa, 8);
            b[rc].kid = 1;
            b[rc].serial = 77;
        }

        rc = cr_scans_verify_n(sc, b, req, rep, 3, 9000);
        tap_ok(rc == 0 && b[0].count == 1 && b[1].count == 1
               && b[2].count == 2 && !rep[0] && rep[1] && !rep[2],
               "a batch: q-1 counted 1, q-1 again replayed 1, q-2 counted 2");
        rc = cr_scans_verify_n(sc, b, req + 2, rep, 1, 9100);
        tap_ok(rc == 0 && b[0].count == 2 && b[0].first == 9000 && rep[0],
               "the last request id again: replayed, 2, first 9000");
        rc = cr_scans_verify_n(sc, b, req, rep, 1, 9200);
        tap_ok(rc == 0 && b[0].count == 3 && !rep[0],
               "an older one (not the last): counted, 3");
    }

    cr_scans_close(sc);

    /* Durable: a new open (another process's view) reads what was
     * committed. */
    rc = cr_scans_open(&sc, path, 0, 0, err, sizeof(err));
    tap_ok(rc == 0 && cr_scans_get(sc, fa, 1, 42, CR_SCANS_VERIFIED, &got)
           == 0 && got.count == 4, "reopened: 4");
    cr_scans_close(sc);

    snprintf(err, sizeof(err), "%s-lock", path);
    unlink(err);
    unlink(path);
    rmdir(dir);
}


static void
test_answers(void)
{
    cr_ledger_answer_t  a;

#define ANS(o, c, f)                                                         \
    cr_ledger_parse_answer(o, strlen(o), c, strlen(c), f, strlen(f), &a)

    tap_ok(ANS("counted", "1", "1796226222") == 0
           && a.outcome == CR_LEDGER_COUNTED && a.count == 1
           && a.first == 1796226222, "counted 1");
    tap_ok(ANS("replayed", "90", "1") == 0
           && a.outcome == CR_LEDGER_REPLAYED && a.count == 90,
           "replayed 90");
    tap_ok(ANS("late", "0", "0") == 0 && a.outcome == CR_LEDGER_LATE,
           "late");
    tap_ok(ANS("counted", "4294967295", "1") == 0 && a.count == UINT32_MAX,
           "the largest count");
    tap_ok(ANS("counted", "4294967296", "1") == -1, "a count over u32");
    tap_ok(ANS("counted", "0", "1") == -1, "counted with count 0");
    tap_ok(ANS("replayed", "1", "0") == -1, "replayed without a time");
    tap_ok(ANS("counted", "-1", "1") == -1, "a negative count");
    tap_ok(ANS("counted", " 1", "1") == -1, "a blank");
    tap_ok(ANS("counted", "", "1") == -1, "an empty count");
    tap_ok(ANS("counted", "1", "9223372036854775808") == -1,
           "a time over i64");
    tap_ok(ANS("Counted", "1", "1") == -1, "another outcome's case");
    tap_ok(ANS("counte", "1", "1") == -1, "a prefix of an outcome");
    tap_ok(ANS("genuine", "1", "1") == -1, "an unknown outcome");
    tap_ok(cr_ledger_parse_answer(NULL, 0, "1", 1, "1", 1, &a) == -1,
           "a NULL field");
#undef ANS

    {
        cr_ledger_redemption_t  rd;

        tap_ok(cr_ledger_parse_redemption("redeemed", 8, "17", 2, &rd) == 0
               && rd.outcome == CR_LEDGER_REDEEMED && rd.at == 17,
               "redeemed at 17");
        tap_ok(cr_ledger_parse_redemption("already_redeemed", 16, "17", 2,
                                          &rd) == 0
               && rd.outcome == CR_LEDGER_ALREADY_REDEEMED,
               "already_redeemed");
        tap_ok(cr_ledger_parse_redemption("replayed", 8, "0", 1, &rd) == -1,
               "replayed without a time");
        tap_ok(cr_ledger_parse_redemption("late", 4, "0", 1, &rd) == 0
               && rd.outcome == CR_LEDGER_REDEEM_LATE, "late");
        tap_ok(cr_ledger_parse_redemption("redeem", 6, "1", 1, &rd) == -1,
               "an unknown outcome");
    }

    {
        cr_ledger_guard_t  g;

#define GRD(o, n, u, t, r)                                                   \
    cr_ledger_parse_guard(o, strlen(o), n, strlen(n), u, strlen(u), t,       \
                          strlen(t), r, strlen(r), &g)

        tap_ok(GRD("wrong", "5", "1796226282", "1796227122", "0") == 0
               && g.outcome == CR_LEDGER_GUARD_WRONG && g.fails == 5
               && g.until == 1796226282 && g.tat == 1796227122
               && g.retry == 0, "guard: wrong, the fifth, locked until");
        tap_ok(GRD("locked", "5", "1796226282", "0", "1796226282") == 0
               && g.outcome == CR_LEDGER_GUARD_LOCKED
               && g.retry == 1796226282, "guard: locked, retry at");
        tap_ok(GRD("right", "0", "0", "0", "0") == 0
               && g.outcome == CR_LEDGER_GUARD_RIGHT, "guard: right");
        tap_ok(GRD("late", "0", "0", "0", "0") == 0
               && g.outcome == CR_LEDGER_GUARD_LATE, "guard: late");
        tap_ok(GRD("locked", "5", "0", "0", "0") == -1,
               "guard: locked without a time to retry");
        tap_ok(GRD("wrong", "1", "0", "0", "7") == -1,
               "guard: a retry time that is no lock");
        tap_ok(GRD("wrong", "0", "0", "0", "0") == -1,
               "guard: a wrong PIN that counted none");
        tap_ok(GRD("wrong", "4294967296", "0", "0", "0") == -1,
               "guard: wrong PINs over u32");
        tap_ok(GRD("Wrong", "1", "0", "0", "0") == -1,
               "guard: another outcome's case");
        tap_ok(GRD("right", "0", "-1", "0", "0") == -1,
               "guard: a negative time");
        tap_ok(cr_ledger_parse_guard("right", 5, NULL, 0, "0", 1, "0", 1,
                                     "0", 1, &g) == -1, "guard: a NULL field");
#undef GRD
    }

    {
        size_t    place;
        uint32_t  nc, tc;

#define SCN(o, c, t, n)                                                      \
    cr_ledger_parse_scans(o, strlen(o), c, strlen(c), t, strlen(t), n,       \
                          &place, &nc, &tc)

        tap_ok(SCN("3", "4", "7", 3) == 0 && place == 2 && nc == 4
               && tc == 7, "scans: the third code, 4 here, 7 in all");
        tap_ok(SCN("0", "1", "1", 3) == -1, "scans: place 0");
        tap_ok(SCN("4", "1", "1", 3) == -1, "scans: a place past the batch");
        tap_ok(SCN("1", "5", "4", 3) == -1, "scans: a node above the total");
        tap_ok(SCN("1", "4294967296", "4294967296", 1) == -1,
               "scans: a node's count over u32");
        tap_ok(SCN("1", "1", "9223372036854775807", 1) == 0
               && tc == UINT32_MAX, "scans: a total past u32 is held at it");
        tap_ok(SCN("1", "-1", "1", 1) == -1, "scans: a negative count");
        tap_ok(cr_ledger_parse_scans("1", 1, NULL, 0, "1", 1, 1, &place,
                                     &nc, &tc) == -1, "scans: a NULL field");
#undef SCN
    }

    {
        cr_ledger_others_t  one;

#define OTH(f, k, s, o)                                                      \
    cr_ledger_parse_others(f, strlen(f), k, strlen(k), s, strlen(s), o,      \
                           strlen(o), &one)

        tap_ok(OTH("0102a304050607ff", "1", "1099511627775", "42") == 0
               && one.code.fp[0] == 1 && one.code.fp[2] == 0xa3
               && one.code.fp[7] == 0xff && one.code.kid == 1
               && one.code.serial == 1099511627775ULL && one.others == 42,
               "others: fp, kid, the largest serial, the sum");
        tap_ok(OTH("0102A30405060708", "1", "1", "1") == -1,
               "others: upper-case hex (encode() writes lower)");
        tap_ok(OTH("01020304050607", "1", "1", "1") == -1,
               "others: a short fingerprint");
        tap_ok(OTH("0102030405060708", "256", "1", "1") == -1,
               "others: a kid over 255");
        tap_ok(OTH("0102030405060708", "1", "1099511627776", "1") == -1,
               "others: a serial over 40 bits");
        tap_ok(OTH("0102030405060708", "1", "1", "99999999999") == 0
               && one.others == UINT32_MAX, "others: held at u32");
#undef OTH
    }

    tap_ok(cr_ledger_node_valid("node-1.example", 14), "node node-1.example");
    tap_ok(!cr_ledger_node_valid("a/b", 3), "a slash in a node name");
    tap_ok(!cr_ledger_node_valid("a\0b", 3), "a NUL in a node name");
    tap_ok(!cr_ledger_node_valid("", 0), "an empty node name");
    tap_ok(!cr_ledger_request_valid("a.b", 3), "a dot in a request id");

    tap_ok(cr_ledger_request_valid("Req_1-x", 7), "request id Req_1-x");
    tap_ok(!cr_ledger_request_valid("", 0), "an empty request id");
    tap_ok(!cr_ledger_request_valid("a b", 3), "a blank in a request id");
    tap_ok(!cr_ledger_request_valid("a\0b", 3), "a NUL in a request id");
    tap_ok(cr_ledger_request_valid(
               "0123456789012345678901234567890123456789012345678901234567890123",
               64), "64 characters");
    tap_ok(!cr_ledger_request_valid(
               "01234567890123456789012345678901234567890123456789012345678901234",
               65), "65: too long");
}


int
main(void)
{
    test_embedded();
    test_answers();

    return tap_done();
}
