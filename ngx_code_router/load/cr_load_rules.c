/*
 * cr_load_rules: the loader's "rules" files (docs/loading.md, "Rules"):
 * one row per campaign and rule, checked and put to the store; at the end
 * of the run the rules of each campaign given rules are checked together
 * (a rule no scan can reach, splits that overlap under the same
 * conditions, too many rules).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cr_load_int.h"
#include "cr_rules.h"
#include "cr_valid.h"


#define CR_RULE_LANG_MAX  35               /* BCP 47's longest usual tag */


const char  *cr_load_rule_cols[R_N] = {
    "campaign", "rule", "device", "lang", "region", "split", "min_scans",
    "max_scans", "type", "url", "appid", "path", "query", "url_link",
    "delete"
};


static int cr_rule_conditions(cr_load_t *l, cr_row_t *row, cr_rule_t *r);
static const char *cr_rule_lang_check(const char *s, size_t n);
static int cr_rule_in_order(cr_load_t *l, const cr_str_t *id, unsigned num);
static int cr_rule_defined(cr_load_t *l, const cr_str_t *id, unsigned num);


int
cr_load_rules_header(const cr_row_t *row, int n)
{
    int  i;

    for (i = 1; i < n; i++) {
        if (row->fl[i] == 4 && strncasecmp(row->f[i], "rule", 4) == 0) {
            return 1;
        }
    }

    return 0;
}


int
cr_load_row_rule(cr_load_t *l, cr_row_t *row)
{
    int        del, bad, rc, i;
    cr_str_t   v;
    uint64_t   n;
    cr_rule_t  r;

    memset(&r, 0, sizeof(cr_rule_t));

    r.s[CR_RULE_CAMPAIGN] = cr_load_col(l, row, R_CAMPAIGN);
    v = r.s[CR_RULE_CAMPAIGN];
    bad = cr_load_check(l, "campaign", v, cr_valid_id(v.data, v.len));

    bad |= cr_load_num(l, cr_load_col(l, row, R_RULE), "rule",
                       CR_RULE_NUM_MAX, &n);
    if (!bad && n == 0) {
        bad = cr_load_check(l, "rule", cr_load_col(l, row, R_RULE),
                            "must be a whole number from 1 to 9999");
    }

    r.rule = (uint16_t) n;
    del = cr_load_is_delete(l, row, R_DELETE);

    if (bad || del < 0) {
        return CR_LOAD_OK;
    }

    rc = cr_rule_defined(l, &v, r.rule);
    if (rc <= 0) {
        return rc < 0 ? cr_load_fatal(l, "out of memory") : CR_LOAD_OK;
    }

    if (del) {
        rc = cr_store_del_rule(l->st, v.data, v.len, r.rule);

        if (rc == CR_STORE_NOTFOUND) {
            cr_load_err(l, &l->state->loc, "rule %u of campaign \"%.*s\" "
                        "cannot be deleted: it does not exist", r.rule,
                        (int) v.len, v.data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        l->rules.removed++;

        return CR_LOAD_OK;
    }

    if (!cr_rule_in_order(l, &v, r.rule)) {
        bad = 1;
    }

    bad |= cr_rule_conditions(l, row, &r);

    v = cr_load_col(l, row, R_TYPE);
    r.type = (uint8_t) cr_target_parse(v.data, v.len);
    if (r.type == 0) {
        bad |= cr_load_check(l, "type", v, "must be miniprogram, "
                             "official_account or h5");
    }

    for (i = CR_RULE_URL; i < CR_RULE_NSTR; i++) {
        r.s[i] = cr_load_col(l, row, R_URL + (i - CR_RULE_URL));
    }

    bad |= cr_load_target(l, r.type, &r.s[CR_RULE_URL]);

    if (bad) {
        return CR_LOAD_OK;
    }

    rc = cr_store_put_rule(l->st, &r);
    if (rc < 0) {
        return cr_load_store_fail(l, rc);
    }

    cr_load_count(&l->rules, rc);

    /* The campaign: in the store now, or defined later in the run. */
    return cr_load_add_ref(l, 'r', &r.s[CR_RULE_CAMPAIGN]);
}


/* The conditions of a rule row: device, lang, region, split, min_scans,
 * max_scans.  1 if one was wrong (reported). */
static int
cr_rule_conditions(cr_load_t *l, cr_row_t *row, cr_rule_t *r)
{
    int       bad;
    unsigned  lo, hi;
    cr_str_t  v;

    bad = 0;

    v = cr_load_col(l, row, R_DEVICE);
    if (v.len) {
        r->device = (uint8_t) cr_device_parse(v.data, v.len);
        if (r->device == 0) {
            bad |= cr_load_check(l, "device", v, "must be ios, android, "
                                 "wechat, alipay, other or empty");
        }
    }

    r->s[CR_RULE_LANG] = cr_load_col(l, row, R_LANG);
    v = r->s[CR_RULE_LANG];
    if (v.len) {
        bad |= cr_load_check(l, "lang", v, cr_rule_lang_check(v.data, v.len));
    }

    r->s[CR_RULE_REGION] = cr_load_col(l, row, R_REGION);
    v = r->s[CR_RULE_REGION];
    if (v.len) {
        bad |= cr_load_check(l, "region", v,
                             cr_valid_label(v.data, v.len, CR_LABEL_MAX));
    }

    v = cr_load_col(l, row, R_SPLIT);
    if (v.len) {
        if (cr_load_check(l, "split", v,
                          cr_split_parse(v.data, v.len, &lo, &hi)))
        {
            bad = 1;

        } else {
            r->set |= CR_RULE_SPLIT;
            r->split_lo = (uint8_t) lo;
            r->split_hi = (uint8_t) hi;
        }
    }

    v = cr_load_col(l, row, R_MIN_SCANS);
    if (v.len) {
        if (cr_load_num(l, v, "min_scans", UINT32_MAX, &r->min_scans)) {
            bad = 1;
        } else {
            r->set |= CR_RULE_MIN_SCANS;
        }
    }

    v = cr_load_col(l, row, R_MAX_SCANS);
    if (v.len) {
        if (cr_load_num(l, v, "max_scans", UINT32_MAX, &r->max_scans)) {
            bad = 1;
        } else {
            r->set |= CR_RULE_MAX_SCANS;
        }
    }

    if ((r->set & CR_RULE_MIN_SCANS) && (r->set & CR_RULE_MAX_SCANS)
        && r->min_scans > r->max_scans)
    {
        cr_load_err(l, &l->state->loc, "min_scans %llu is above max_scans "
                    "%llu: no scan could take the rule",
                    (unsigned long long) r->min_scans,
                    (unsigned long long) r->max_scans);
        bad = 1;
    }

    return bad;
}


/* A language tag or its prefix: letters and digits in subtags of 1..8,
 * joined by '-' ("zh", "zh-TW", "zh-Hant-TW"). */
static const char *
cr_rule_lang_check(const char *s, size_t n)
{
    size_t  i, run;

    if (n > CR_RULE_LANG_MAX) {
        return "is too long for a language tag (35 characters at most)";
    }

    run = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '-' && run > 0 && i + 1 < n) {
            run = 0;
            continue;
        }

        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9'))
            || ++run > 8)
        {
            return "must be a language tag or its prefix, as zh, zh-TW or "
                   "en";
        }
    }

    return NULL;
}


/* The first row of (campaign, rule) in the run: 1; else reported (0);
 * -1 for memory. */
static int
cr_rule_defined(cr_load_t *l, const cr_str_t *id, unsigned num)
{
    char        buf[CR_ID_MAX + 16];
    int         n;
    cr_hent_t  *e, *camp;

    n = snprintf(buf, sizeof(buf), "%.*s rule %u", (int) id->len, id->data,
                 num);

    e = cr_load_hash_get(&l->state->rules, buf, (size_t) n, 0);

    if (e != NULL) {
        cr_load_err(l, &l->state->loc, "rule %u of campaign \"%.*s\" is "
                    "also defined at %s:%llu (one row per rule and run)", num,
                    (int) id->len, id->data, l->state->files[e->loc.file],
                    (unsigned long long) e->loc.line);
        return 0;
    }

    e = cr_load_hash_get(&l->state->rules, buf, (size_t) n, 1);
    if (e == NULL) {
        return -1;
    }

    e->loc = l->state->loc;

    /* The campaign's first rule row of the run: where a message about
     * its rules as a whole is put. */
    camp = cr_load_hash_get(&l->state->rule_camps, id->data, id->len, 1);
    if (camp == NULL) {
        return -1;
    }

    if (camp->loc.line == 0) {
        camp->loc = l->state->loc;
    }

    return 1;
}


/* A campaign's rules come in increasing rule order, row after row: a
 * lower number after a higher one is a reordering nobody should have to
 * spot in a spreadsheet.  0 if out of order (reported). */
static int
cr_rule_in_order(cr_load_t *l, const cr_str_t *id, unsigned num)
{
    cr_load_state_t  *s = l->state;

    if (s->rule_prev.line && s->rule_prev.file == s->loc.file
        && strlen(s->rule_prev_id) == id->len
        && memcmp(s->rule_prev_id, id->data, id->len) == 0
        && num < s->rule_prev_num)
    {
        cr_load_err(l, &s->loc, "rule %u of campaign \"%.*s\" comes after "
                    "rule %u (line %llu): give a campaign's rules in "
                    "increasing order", num, (int) id->len, id->data,
                    s->rule_prev_num,
                    (unsigned long long) s->rule_prev.line);
        return 0;
    }

    s->rule_prev = s->loc;
    s->rule_prev_num = num;
    memcpy(s->rule_prev_id, id->data, id->len);
    s->rule_prev_id[id->len] = '\0';

    return 1;
}


/* The rules of one campaign, as the store has them at the end. */
typedef struct {
    cr_load_t  *l;
    cr_rule_t   r[CR_RULE_MAX];
    cr_loc_t    loc[CR_RULE_MAX];          /* line 0: not in this run */
    size_t      n;
    size_t      more;                      /* beyond CR_RULE_MAX */
} cr_rule_set_t;


static int
cr_rule_collect(void *ctx, const cr_rule_t *r)
{
    char              buf[CR_ID_MAX + 16];
    int               n;
    cr_hent_t        *e;
    cr_rule_set_t    *rs = ctx;

    if (rs->n == CR_RULE_MAX) {
        rs->more++;
        return 0;
    }

    n = snprintf(buf, sizeof(buf), "%.*s rule %u",
                 (int) r->s[CR_RULE_CAMPAIGN].len, r->s[CR_RULE_CAMPAIGN].data,
                 r->rule);
    e = cr_load_hash_get(&rs->l->state->rules, buf, (size_t) n, 0);

    rs->r[rs->n] = *r;
    rs->loc[rs->n].file = e ? e->loc.file : 0;
    rs->loc[rs->n].line = e ? e->loc.line : 0;
    rs->n++;

    return 0;
}


/* Whether two rules ask the same of everything but the split. */
static int
cr_rule_same_but_split(const cr_rule_t *a, const cr_rule_t *b)
{
    int  i;

    if (a->device != b->device
        || (a->set & ~CR_RULE_SPLIT) != (b->set & ~CR_RULE_SPLIT)
        || ((a->set & CR_RULE_MIN_SCANS) && a->min_scans != b->min_scans)
        || ((a->set & CR_RULE_MAX_SCANS) && a->max_scans != b->max_scans))
    {
        return 0;
    }

    for (i = CR_RULE_LANG; i <= CR_RULE_REGION; i++) {
        if (a->s[i].len != b->s[i].len
            || strncasecmp(a->s[i].data, b->s[i].data, a->s[i].len) != 0)
        {
            return 0;
        }
    }

    return 1;
}


/* The later rule j against the earlier i: reported at j's row (or i's,
 * if only i is in this run). */
static void
cr_rule_pair(cr_load_t *l, cr_rule_set_t *rs, size_t i, size_t j)
{
    const cr_loc_t   *at;
    const cr_rule_t  *a, *b;
    const cr_str_t   *id;

    a = &rs->r[i];
    b = &rs->r[j];
    id = &b->s[CR_RULE_CAMPAIGN];
    at = rs->loc[j].line ? &rs->loc[j] : &rs->loc[i];

    if (at->line == 0) {
        return;
    }

    if (a->device == 0 && a->set == 0 && a->s[CR_RULE_LANG].len == 0
        && a->s[CR_RULE_REGION].len == 0)
    {
        cr_load_err(l, at, "rule %u of campaign \"%.*s\" is never taken: "
                    "rule %u before it has no condition and takes every "
                    "scan", b->rule, (int) id->len, id->data, a->rule);
        return;
    }

    if (!cr_rule_same_but_split(a, b)) {
        return;
    }

    if (!(a->set & CR_RULE_SPLIT)) {
        cr_load_err(l, at, "rule %u of campaign \"%.*s\" is never taken: "
                    "rule %u before it asks the same%s and takes every scan "
                    "it would", b->rule, (int) id->len, id->data, a->rule,
                    (b->set & CR_RULE_SPLIT) ? " but for the split" : "");
        return;
    }

    if ((b->set & CR_RULE_SPLIT) && a->split_lo <= b->split_hi
        && b->split_lo <= a->split_hi)
    {
        cr_load_err(l, at, "rule %u of campaign \"%.*s\": split %u-%u "
                    "overlaps split %u-%u of rule %u under the same "
                    "conditions (give each variant its own range)", b->rule,
                    (int) id->len, id->data, b->split_lo, b->split_hi,
                    a->split_lo, a->split_hi, a->rule);
    }
}


int
cr_load_rules_check(cr_load_t *l)
{
    int               rc;
    size_t            i, j, k;
    cr_hash_t        *h;
    cr_hent_t        *e;
    const char       *key;
    cr_rule_set_t    *rs;
    static cr_rule_set_t  set;             /* 64 rules: off the stack */

    h = &l->state->rule_camps;
    rs = &set;

    for (k = 0; k < h->n; k++) {
        e = &h->e[k];
        key = cr_load_hash_key(h, e);

        memset(rs, 0, sizeof(cr_rule_set_t));
        rs->l = l;

        rc = cr_store_each_rule(l->st, key, e->len, cr_rule_collect, rs);
        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        if (rs->more) {
            cr_load_err(l, &e->loc, "campaign \"%.*s\" has %zu rules: at "
                        "most %d", (int) e->len, key, rs->n + rs->more,
                        CR_RULE_MAX);
            continue;
        }

        for (j = 1; j < rs->n; j++) {
            for (i = 0; i < j; i++) {
                cr_rule_pair(l, rs, i, j);
            }
        }
    }

    return CR_LOAD_OK;
}
