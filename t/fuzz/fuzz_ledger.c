/*
 * libFuzzer target: cr_ledger_parse_answer(), what reads PostgreSQL's
 * answer row to a right PIN (outcome, count, first time), on any three
 * fields (the input split at its first two NUL bytes; libpq's values may
 * hold anything a wrong schema or a hostile server sends), and
 * cr_ledger_request_valid() on the whole input; and
 * cr_ledger_parse_redemption() on the first two fields; and
 * cr_ledger_parse_guard() on five (the input split at its first four NUL
 * bytes); cr_ledger_parse_scans() on three fields (the batch's size
 * from the input's length) and cr_ledger_parse_others() on four, the
 * rows of code_router_scans and code_router_scans_since;
 * cr_ledger_parse_receipt() on three (a receipt's store, dealer, time:
 * ids of [0-9A-Za-z._-], the store not empty); and
 * cr_ledger_node_valid() on the whole input.  Oracle: a plain reader
 * (strtoull on a copy, bounds checked after) must agree on acceptance
 * and values; a counted or replayed answer always has count >= 1; a
 * guard's retry time is there exactly when it says "locked", and a wrong
 * PIN counts at least one; a scan row's place is within the batch and
 * its node's count never above the total.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_ledger.h"


/* A decimal of 1..20 digits, value at most max: 0 and *v, or -1. */
static int
plain_u64(const uint8_t *s, size_t n, uint64_t max, uint64_t *v)
{
    char                 buf[32];
    char                *end;
    size_t               i;
    unsigned long long   x;

    if (n == 0 || n > 20) return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    x = strtoull(buf, &end, 10);
    if (errno == ERANGE || x > max) return -1;
    *v = x;
    return 0;
}


/* The input as k fields split at NUL bytes (the last runs to the end):
 * 0, or -1 if it has fewer. */
static int
split(const uint8_t *data, size_t size, int k, const uint8_t **f,
    size_t *len)
{
    int     i;
    size_t  at;

    at = 0;
    for (i = 0; i < k; i++) {
        f[i] = data + at;
        for (len[i] = 0; at + len[i] < size && data[at + len[i]] != 0;
             len[i]++)
        { }
        if (i < k - 1 && at + len[i] == size) return -1;
        if (i == k - 1) len[i] = size - at;
        at += len[i] + 1;
    }
    return 0;
}


/* code_router_scans' row: place, node, total; the batch of size % 1025
 * codes. */
static void
fuzz_scans(const uint8_t *data, size_t size)
{
    int            rc, want;
    size_t         len[3], n, place;
    uint32_t       nc, tc;
    uint64_t       v[3];
    const uint8_t *f[3];

    if (split(data, size, 3, f, len) != 0) return;
    n = size % (CR_LEDGER_SCANS_MAX + 1);

    rc = cr_ledger_parse_scans((const char *) f[0], len[0],
                               (const char *) f[1], len[1],
                               (const char *) f[2], len[2], n, &place, &nc,
                               &tc);
    want = plain_u64(f[0], len[0], n, &v[0]) == 0 && v[0] >= 1
           && plain_u64(f[1], len[1], UINT32_MAX, &v[1]) == 0
           && plain_u64(f[2], len[2], INT64_MAX, &v[2]) == 0
           && v[2] >= v[1];

    if ((rc == 0) != want) abort();
    if (rc == 0 && (place != v[0] - 1 || place >= n || nc != v[1]
                    || tc != (v[2] > UINT32_MAX ? UINT32_MAX : v[2])
                    || nc > tc))
    {
        abort();
    }
}


static int
plain_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* code_router_scans_since's row: fp (hex), kid, serial, others. */
static void
fuzz_others(const uint8_t *data, size_t size)
{
    int                  rc, want, i;
    size_t               len[4];
    uint64_t             v[3];
    cr_ledger_others_t   one;
    const uint8_t       *f[4];

    if (split(data, size, 4, f, len) != 0) return;

    rc = cr_ledger_parse_others((const char *) f[0], len[0],
                                (const char *) f[1], len[1],
                                (const char *) f[2], len[2],
                                (const char *) f[3], len[3], &one);
    want = len[0] == 16
           && plain_u64(f[1], len[1], 255, &v[0]) == 0
           && plain_u64(f[2], len[2], (1ULL << 40) - 1, &v[1]) == 0
           && plain_u64(f[3], len[3], INT64_MAX, &v[2]) == 0;
    for (i = 0; want && i < 16; i++) {
        want = plain_hex(f[0][i]) >= 0;
    }

    if ((rc == 0) != want) abort();
    if (rc != 0) return;
    for (i = 0; i < 8; i++) {
        if (one.code.fp[i] != (plain_hex(f[0][2 * i]) << 4
                               | plain_hex(f[0][2 * i + 1])))
        {
            abort();
        }
    }
    if (one.code.kid != v[0] || one.code.serial != v[1]
        || one.others != (v[2] > UINT32_MAX ? UINT32_MAX : v[2]))
    {
        abort();
    }
}


static int
plain_id(const uint8_t *s, size_t n, size_t min)
{
    size_t  i;

    if (n < min || n > CR_LEDGER_ID_MAX) return 0;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'
              || s[i] == '-' || s[i] == '.'))
        {
            return 0;
        }
    }
    return 1;
}


/* A receipt's row: store, dealer, at. */
static void
fuzz_receipt(const uint8_t *data, size_t size)
{
    int                   rc, want;
    size_t                len[3];
    uint64_t              at;
    cr_ledger_receipt_t   one;
    const uint8_t        *f[3];

    if (split(data, size, 3, f, len) != 0) return;

    rc = cr_ledger_parse_receipt((const char *) f[0], len[0],
                                 (const char *) f[1], len[1],
                                 (const char *) f[2], len[2], &one);
    want = plain_id(f[0], len[0], 1) && plain_id(f[1], len[1], 0)
           && plain_u64(f[2], len[2], INT64_MAX, &at) == 0;

    if ((rc == 0) != want) abort();
    if (rc != 0) return;
    if (strlen(one.store) != len[0] || memcmp(one.store, f[0], len[0]) != 0
        || strlen(one.dealer) != len[1]
        || memcmp(one.dealer, f[1], len[1]) != 0
        || (uint64_t) one.at != at)
    {
        abort();
    }
}


/* code_router_guard's row: five fields, split at NUL bytes. */
static void
fuzz_guard(const uint8_t *data, size_t size)
{
    int                 rc, want, i;
    size_t              len[5];
    uint64_t            v[4];
    cr_ledger_guard_t   g;
    const uint8_t      *f[5];

    static const char  *names[] = { "right", "wrong", "locked", "late" };

    if (split(data, size, 5, f, len) != 0) return;

    rc = cr_ledger_parse_guard((const char *) f[0], len[0],
                               (const char *) f[1], len[1],
                               (const char *) f[2], len[2],
                               (const char *) f[3], len[3],
                               (const char *) f[4], len[4], &g);

    want = -1;
    for (i = 0; i < 4; i++) {
        if (len[0] == strlen(names[i])
            && memcmp(f[0], names[i], len[0]) == 0)
        {
            want = i;
        }
    }
    if (want != -1
        && (plain_u64(f[1], len[1], UINT32_MAX, &v[0]) != 0
            || plain_u64(f[2], len[2], INT64_MAX, &v[1]) != 0
            || plain_u64(f[3], len[3], INT64_MAX, &v[2]) != 0
            || plain_u64(f[4], len[4], INT64_MAX, &v[3]) != 0
            || (want == CR_LEDGER_GUARD_LOCKED) != (v[3] != 0)
            || (want == CR_LEDGER_GUARD_WRONG && v[0] == 0)))
    {
        want = -1;
    }

    if ((rc == 0) != (want != -1)) {
        abort();
    }

    if (rc == 0 && ((int) g.outcome != want || g.fails != v[0]
                    || g.until != (int64_t) v[1] || g.tat != (int64_t) v[2]
                    || g.retry != (int64_t) v[3]))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc, want, ok;
    size_t               a, b, i;
    uint64_t             n, f;
    cr_ledger_answer_t   ans;
    const uint8_t       *o, *c, *t;
    size_t               olen, clen, tlen;

    /* Request ids: 1..64 of [0-9A-Za-z_-]. */
    ok = (size >= 1 && size <= CR_LEDGER_REQUEST_MAX);
    for (i = 0; ok && i < size; i++) {
        uint8_t  ch = data[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')
             || (ch >= 'a' && ch <= 'z') || ch == '_' || ch == '-';
    }
    if (cr_ledger_request_valid((const char *) data, size) != ok) {
        abort();
    }

    /* Node names: the same and '.'. */
    ok = (size >= 1 && size <= CR_LEDGER_NODE_MAX);
    for (i = 0; ok && i < size; i++) {
        uint8_t  ch = data[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')
             || (ch >= 'a' && ch <= 'z') || ch == '_' || ch == '-'
             || ch == '.';
    }
    if (cr_ledger_node_valid((const char *) data, size) != ok) {
        abort();
    }

    fuzz_guard(data, size);
    fuzz_scans(data, size);
    fuzz_others(data, size);
    fuzz_receipt(data, size);

    /* Three fields. */
    for (a = 0; a < size && data[a] != 0; a++) { }
    if (a == size) return 0;
    for (b = a + 1; b < size && data[b] != 0; b++) { }
    if (b == size) return 0;

    o = data;
    olen = a;
    c = data + a + 1;
    clen = b - a - 1;
    t = data + b + 1;
    tlen = size - b - 1;

    rc = cr_ledger_parse_answer((const char *) o, olen, (const char *) c,
                                clen, (const char *) t, tlen, &ans);

    want = -1;
    if (plain_u64(c, clen, UINT32_MAX, &n) == 0
        && plain_u64(t, tlen, INT64_MAX, &f) == 0)
    {
        if (olen == 4 && memcmp(o, "late", 4) == 0) {
            want = CR_LEDGER_LATE;
        } else if (n && f && olen == 7 && memcmp(o, "counted", 7) == 0) {
            want = CR_LEDGER_COUNTED;
        } else if (n && f && olen == 8 && memcmp(o, "replayed", 8) == 0) {
            want = CR_LEDGER_REPLAYED;
        }
    }

    if ((rc == 0) != (want != -1)) {
        abort();
    }

    if (rc == 0 && ((int) ans.outcome != want || ans.count != n
                    || ans.first != (int64_t) f))
    {
        abort();
    }

    if (rc == 0 && ans.outcome != CR_LEDGER_LATE && ans.count == 0) {
        abort();
    }

    /* The redemption row: the first two fields. */
    {
        cr_ledger_redemption_t  rd;
        int                     rrc, rwant;

        rrc = cr_ledger_parse_redemption((const char *) o, olen,
                                         (const char *) c, clen, &rd);
        rwant = -1;
        if (plain_u64(c, clen, INT64_MAX, &n) == 0) {
            if (olen == 4 && memcmp(o, "late", 4) == 0) {
                rwant = CR_LEDGER_REDEEM_LATE;
            } else if (n && olen == 8 && memcmp(o, "redeemed", 8) == 0) {
                rwant = CR_LEDGER_REDEEMED;
            } else if (n && olen == 8 && memcmp(o, "replayed", 8) == 0) {
                rwant = CR_LEDGER_REDEEM_REPLAYED;
            } else if (n && olen == 16
                       && memcmp(o, "already_redeemed", 16) == 0)
            {
                rwant = CR_LEDGER_ALREADY_REDEEMED;
            }
        }
        if ((rrc == 0) != (rwant != -1)
            || (rrc == 0 && ((int) rd.outcome != rwant
                             || rd.at != (int64_t) n)))
        {
            abort();
        }
    }

    return 0;
}
