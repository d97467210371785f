/*
 * Unit tests of cr_rules and the rule record, TAP on stdout: the first
 * tag of Accept-Language, language prefixes, split ranges, the order of
 * rules and each condition, the split bucket (stable, keyed, even), the
 * device of a User-Agent, a rule record's round trip and refusals; and
 * the store's rules: a reader with and without its decoded copy sees the
 * same rules in order, checked; deleting a rule or its campaign.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cr_record_int.h"
#include "cr_rules.h"
#include "cr_store.h"
#include "cr_store_test.h"
#include "cr_target.h"
#include "cr_ua.h"
#include "tap.h"


static cr_str_t
str(const char *s)
{
    cr_str_t  v;

    v.data = s;
    v.len = strlen(s);

    return v;
}


/* A bump allocator over one static arena: the lookups' copies. */
static void *
test_alloc(void *ctx, size_t n)
{
    void           *p;
    static size_t   used;
    static uint8_t  arena[1 << 20];

    (void) ctx;

    if (used + n > sizeof(arena)) {
        return NULL;
    }

    p = arena + used;
    used += (n + 15) & ~(size_t) 15;

    return p;
}


/* The rules a reader's lookup of serial 5 sees, as "rule:target_ok:url"
 * joined by spaces. */
static const char *
seen(const char *path, int flags)
{
    size_t         i;
    char           err[512];
    static char    out[1024];
    cr_store_t    *st;
    cr_binding_t   b;

    out[0] = '\0';

    if (cr_store_open(&st, path, CR_STORE_RDONLY | flags, err, sizeof(err))
        != 0)
    {
        snprintf(out, sizeof(out), "open: %s", err);
        return out;
    }

    cr_store_set_check(st, cr_target_check);

    if (cr_store_lookup(st, 1, 5, 0, &b, test_alloc, NULL) != 0) {
        snprintf(out, sizeof(out), "lookup: %s", cr_store_error(st));

    } else {
        for (i = 0; i < b.nrules; i++) {
            snprintf(out + strlen(out), sizeof(out) - strlen(out),
                     "%s%u:%u:%.*s", i ? " " : "", b.rules[i].rule,
                     b.rules[i].target_ok,
                     (int) b.rules[i].s[CR_RULE_URL].len,
                     b.rules[i].s[CR_RULE_URL].data);
        }
    }

    cr_store_close(st);

    return out;
}


static int
count_rule(void *ctx, const cr_rule_t *r)
{
    (void) r;
    (*(int *) ctx)++;

    return 0;
}


static void
test_store(void)
{
    int            n;
    char           dir[] = "/tmp/cr-test-rules-XXXXXX", path[256], err[512];
    cr_store_t    *st;
    cr_batch_t     b, other;
    cr_rule_t      r;
    cr_campaign_t  c;

    if (mkdtemp(dir) == NULL) {
        tap_ok(0, "mkdtemp");
        return;
    }

    snprintf(path, sizeof(path), "%s/s.mdb", dir);

    if (cr_store_open(&st, path, CR_STORE_CREATE, err, sizeof(err)) != 0) {
        tap_ok(0, "create: %s", err);
        return;
    }

    memset(&c, 0, sizeof(c));
    c.type = CR_TARGET_H5;
    c.starts_at = c.ends_at = CR_TIME_NONE;
    c.s[CR_CAMP_URL] = str("https://x.example/c");

    memset(&b, 0, sizeof(b));
    b.kid = 1;
    b.scene = CR_SCENE_MARKETING;
    b.first = 1;
    b.last = 10;
    b.s[CR_BATCH_ID] = str("b");
    b.s[CR_BATCH_CAMPAIGN] = str("ab");

    memset(&r, 0, sizeof(r));
    r.type = CR_TARGET_H5;
    r.s[CR_RULE_CAMPAIGN] = str("ab");

    cr_store_begin(st);
    /* "a" and "abc" sort around "ab": their rules must not become ab's. */
    c.s[CR_CAMP_ID] = str("a");
    cr_store_put_campaign(st, &c);
    c.s[CR_CAMP_ID] = str("ab");
    cr_store_put_campaign(st, &c);
    c.s[CR_CAMP_ID] = str("abc");
    cr_store_put_campaign(st, &c);
    cr_store_put_batch(st, &b, &other);

    r.rule = 300;
    r.s[CR_RULE_URL] = str("https://x.example/300");
    cr_store_put_rule(st, &r);
    r.rule = 2;
    r.s[CR_RULE_URL] = str("https://x.example/2");
    cr_store_put_rule(st, &r);
    r.rule = 40;
    r.s[CR_RULE_URL] = str("http://x.example/not-https");
    cr_store_put_rule(st, &r);
    r.s[CR_RULE_CAMPAIGN] = str("a");
    r.rule = 1;
    r.s[CR_RULE_URL] = str("https://x.example/a1");
    cr_store_put_rule(st, &r);
    r.s[CR_RULE_CAMPAIGN] = str("abc");
    r.s[CR_RULE_URL] = str("https://x.example/abc1");
    cr_store_put_rule(st, &r);
    tap_ok(cr_store_commit(st, 1) == 0, "a store with rules of three "
           "campaigns");

    /* One environment of a file per process at a time (LMDB): the
     * writer is closed while a reader looks. */
    cr_store_close(st);

    tap_ok(strcmp(seen(path, 0), "2:1:https://x.example/2 "
                  "40:0:http://x.example/not-https 300:1:https://x.example/300")
           == 0, "the copy: ab's rules in rule order (2 before 300), each "
           "checked: %s", seen(path, 0));
    tap_ok(strcmp(seen(path, CR_STORE_NOCACHE), seen(path, 0)) == 0,
           "without the copy, from LMDB: the same");

    if (cr_store_open(&st, path, 0, err, sizeof(err)) != 0) {
        tap_ok(0, "open: %s", err);
        return;
    }

    n = 0;
    cr_store_each_rule(st, "ab", 2, count_rule, &n);
    tap_ok(n == 3, "each_rule of ab: 3 (not a's, not abc's): %d", n);
    n = 0;
    cr_store_each_rule(st, NULL, 0, count_rule, &n);
    tap_ok(n == 5, "each_rule of all: 5");

    cr_store_begin(st);
    tap_ok(cr_store_del_rule(st, "ab", 2, 40) == 0
           && cr_store_del_rule(st, "ab", 2, 41) == CR_STORE_NOTFOUND,
           "delete a rule; a missing one is NOTFOUND");
    cr_store_commit(st, 2);
    cr_store_close(st);
    tap_ok(strcmp(seen(path, 0), "2:1:https://x.example/2 "
                  "300:1:https://x.example/300") == 0,
           "the next lookup sees it gone");

    if (cr_store_open(&st, path, 0, err, sizeof(err)) != 0) {
        tap_ok(0, "open: %s", err);
        return;
    }

    cr_store_begin(st);
    n = cr_store_del_campaign(st, "abc", 3);
    n |= cr_store_commit(st, 3);
    tap_ok(n == 0, "campaign abc deleted: %s", n ? cr_store_error(st) : "");
    n = 0;
    cr_store_each_rule(st, NULL, 0, count_rule, &n);
    tap_ok(n == 3, "deleting campaign abc deleted its rule, not ab's nor "
           "a's: %d left", n);

    cr_store_close(st);
}


static const char *
first_tag(const char *al)
{
    static char  buf[64];
    cr_str_t     t;

    t = cr_lang_first(al, strlen(al));
    snprintf(buf, sizeof(buf), "%.*s", (int) t.len, t.data);

    return buf;
}


int
main(void)
{
    size_t            i, n;
    unsigned          lo, hi, b, a_count, key2_same;
    uint8_t           master[CR_MASTER_KEY_LEN], buf[CR_REC_MAX];
    static uint8_t    keep[4][256];
    cr_key_t          key, key2;
    cr_rule_t         rules[4], r2;
    cr_rule_facts_t   f;
    const cr_rule_t  *got;

    /* Accept-Language's first tag. */
    tap_ok(strcmp(first_tag("zh-CN,zh;q=0.9,en;q=0.8"), "zh-CN") == 0,
           "first tag of zh-CN,zh;q=0.9");
    tap_ok(strcmp(first_tag("  en-US ;q=1"), "en-US") == 0,
           "blanks skipped, blank ends the tag");
    tap_ok(strcmp(first_tag("*"), "") == 0, "\"*\" is no tag");
    tap_ok(strcmp(first_tag(""), "") == 0, "empty");

    /* Split ranges. */
    tap_ok(cr_split_parse("0-49", 4, &lo, &hi) == NULL && lo == 0
           && hi == 49, "0-49");
    tap_ok(cr_split_parse("7-7", 3, &lo, &hi) == NULL && lo == 7 && hi == 7,
           "7-7");
    tap_ok(cr_split_parse("50-40", 5, &lo, &hi) != NULL, "50-40 refused");
    tap_ok(cr_split_parse("0-100", 5, &lo, &hi) != NULL, "0-100 refused");
    tap_ok(cr_split_parse("0-", 2, &lo, &hi) != NULL, "0- refused");
    tap_ok(cr_split_parse("-5", 2, &lo, &hi) != NULL, "-5 refused");
    tap_ok(cr_split_parse("0-49x", 5, &lo, &hi) != NULL, "0-49x refused");
    tap_ok(cr_split_parse("000-1", 5, &lo, &hi) == NULL, "000-1 is 0-1");
    tap_ok(cr_split_parse("0000-1", 6, &lo, &hi) != NULL,
           "0000-1 refused (three digits at most)");

    /* Conditions and order. */
    memset(rules, 0, sizeof(rules));
    rules[0].rule = 1;
    rules[0].device = CR_DEVICE_IOS;
    rules[0].s[CR_RULE_LANG] = str("zh-TW");
    rules[1].rule = 2;
    rules[1].s[CR_RULE_LANG] = str("zh");
    rules[1].s[CR_RULE_REGION] = str("CN-GD");
    rules[2].rule = 3;
    rules[2].set = CR_RULE_SPLIT | CR_RULE_MIN_SCANS;
    rules[2].split_lo = 10;
    rules[2].split_hi = 19;
    rules[2].min_scans = 2;
    rules[3].rule = 4;
    rules[3].set = CR_RULE_MAX_SCANS;
    rules[3].max_scans = 1;

    /* As a reader has them: decoded (which sets their facts). */
    for (i = 0; i < 4; i++) {
        rules[i].type = CR_TARGET_H5;
        rules[i].s[CR_RULE_CAMPAIGN] = str("promo");
        n = cr_rule_encode(&rules[i], buf);
        memcpy(keep[i], buf, n);

        if (cr_rule_decode(keep[i], n, &rules[i]) != 0) {
            break;
        }
    }

    tap_ok(i == 4, "four rules round-trip");
    tap_ok(cr_rules_need(rules, 1) == (CR_FACT_DEVICE | CR_FACT_LANG),
           "need: device and lang for rule 1");
    tap_ok(cr_rules_need(rules, 4) == 0x1f, "need: every fact for all four");

    memset(&f, 0, sizeof(f));
    f.device = CR_DEVICE_IOS;
    f.lang = str("ZH-tw");
    f.bucket = 50;
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got && got->rule == 1, "ios and zh-TW (any case): rule 1");

    f.lang = str("zh-TWx");
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got == NULL, "zh-TWx is not zh-TW nor zh... nor anything");

    f.lang = str("zh-TW");
    f.region = str("cn-gd");
    f.device = CR_DEVICE_ANDROID;
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got && got->rule == 2, "android, zh-TW, cn-gd: rule 2 (zh)");

    f.region = str("");
    f.bucket = 15;
    f.has_scans = 1;
    f.scans = 1;
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got && got->rule == 4, "bucket 15 but 1 scan: rule 4");
    f.scans = 2;
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got && got->rule == 3, "bucket 15, 2 scans: rule 3");
    f.bucket = 20;
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got == NULL, "bucket 20, 2 scans: none");
    f.has_scans = 0;
    f.scans = 0;
    f.bucket = 15;
    got = cr_rule_pick(rules, 4, &f);
    tap_ok(got == NULL, "an unknown count holds for no min/max rule");

    /* The bucket: stable, keyed, about even. */
    memset(master, 7, sizeof(master));
    cr_key_derive(&key, 1, master);
    master[0] ^= 1;
    cr_key_derive(&key2, 1, master);

    a_count = 0;
    key2_same = 0;
    n = 100000;

    for (i = 0; i < n; i++) {
        b = cr_split_bucket(&key, i);
        a_count += b < 50;
        key2_same += cr_split_bucket(&key2, i) == b;

        if (b > 99 || b != cr_split_bucket(&key, i)) {
            break;
        }
    }

    tap_ok(i == n, "every bucket in 0..99, the same each time");
    tap_diag("0-49: %u of %zu; same bucket under another key: %u", a_count,
             n, key2_same);
    tap_ok(a_count > n * 49 / 100 && a_count < n * 51 / 100,
           "0-49 takes 49-51 %% of 100,000 serials");
    tap_ok(key2_same < n * 2 / 100,
           "another key puts serials in other buckets (about 1 %% alike)");

    /* The device. */
#define DEV(ua, w)  cr_ua_device((const unsigned char *) (ua), strlen(ua), w)
    tap_ok(DEV("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4)", 0)
           == CR_DEVICE_IOS, "iPhone");
    tap_ok(DEV("Mozilla/5.0 (iPad; CPU OS 17_4)", 0) == CR_DEVICE_IOS,
           "iPad");
    tap_ok(DEV("Mozilla/5.0 (Linux; Android 14; Pixel 8)", 0)
           == CR_DEVICE_ANDROID, "Android");
    tap_ok(DEV("Mozilla/5.0 (Linux; Android 13) AlipayClient/10.5", 0)
           == CR_DEVICE_ALIPAY, "Alipay before Android");
    tap_ok(DEV("Mozilla/5.0 (iPhone) MicroMessenger/8.0", 1)
           == CR_DEVICE_WECHAT, "WeChat (the router's check) before iOS");
    tap_ok(DEV("Mozilla/5.0 (X11; Linux x86_64)", 0) == CR_DEVICE_OTHER,
           "a desktop is other");
    tap_ok(cr_ua_device(NULL, 0, 0) == CR_DEVICE_OTHER, "no User-Agent");
    tap_ok(DEV("android iphone", 0) == CR_DEVICE_OTHER,
           "case-sensitive, as clients write them");
#undef DEV

    /* The record. */
    rules[2].type = CR_TARGET_H5;
    rules[2].s[CR_RULE_CAMPAIGN] = str("promo");
    rules[2].s[CR_RULE_URL] = str("https://x.example/a");
    n = cr_rule_encode(&rules[2], buf);
    tap_ok(cr_rule_decode(buf, n, &r2) == 0 && r2.rule == 3
           && r2.set == rules[2].set && r2.split_lo == 10
           && r2.split_hi == 19 && r2.min_scans == 2
           && r2.s[CR_RULE_URL].len == 19, "a rule record round-trips");
    buf[1 + 5] = 30;                        /* split_lo above split_hi */
    tap_ok(cr_rule_decode(buf, n, &r2) != 0, "a reversed split is refused");
    buf[1 + 5] = 10;
    buf[1 + 6] = 100;
    tap_ok(cr_rule_decode(buf, n, &r2) != 0, "a split past 99 is refused");
    buf[1 + 6] = 19;
    buf[1 + 2] = 9;
    tap_ok(cr_rule_decode(buf, n, &r2) != 0, "an unknown device is refused");
    buf[1 + 2] = 0;
    tap_ok(cr_rule_decode(buf, n - 1, &r2) != 0, "a short record is refused");

    test_store();

    return tap_done();
}
