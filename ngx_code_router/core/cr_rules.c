/*
 * cr_rules: see cr_rules.h.
 */

#include <string.h>

#include <sodium.h>

#include "cr_rules.h"


static int cr_lang_holds(const cr_str_t *want, const cr_str_t *tag);
static int cr_ascii_caseeq(const char *a, const char *b, size_t n);


unsigned
cr_rules_need(const cr_rule_t *rules, size_t n)
{
    size_t    i;
    unsigned  need;

    need = 0;

    for (i = 0; i < n; i++) {
        need |= rules[i].facts;
    }

    return need;
}


const cr_rule_t *
cr_rule_pick(const cr_rule_t *rules, size_t n, const cr_rule_facts_t *f)
{
    size_t            i;
    const cr_rule_t  *r;
    const cr_str_t   *s;

    for (i = 0; i < n; i++) {
        r = &rules[i];

        if (r->facts == 0) {
            return r;                   /* no condition: it holds */
        }

        if (r->device && r->device != f->device) {
            continue;
        }

        if ((r->set & CR_RULE_SPLIT)
            && (f->bucket < r->split_lo || f->bucket > r->split_hi))
        {
            continue;
        }

        if ((r->set & (CR_RULE_MIN_SCANS | CR_RULE_MAX_SCANS))
            && (!f->has_scans
                || ((r->set & CR_RULE_MIN_SCANS) && f->scans < r->min_scans)
                || ((r->set & CR_RULE_MAX_SCANS) && f->scans > r->max_scans)))
        {
            continue;
        }

        s = &r->s[CR_RULE_REGION];

        if (s->len && (s->len != f->region.len
                       || !cr_ascii_caseeq(s->data, f->region.data, s->len)))
        {
            continue;
        }

        if (r->s[CR_RULE_LANG].len
            && !cr_lang_holds(&r->s[CR_RULE_LANG], &f->lang))
        {
            continue;
        }

        return r;
    }

    return NULL;
}


static int
cr_lang_holds(const cr_str_t *want, const cr_str_t *tag)
{
    if (tag->len < want->len
        || !cr_ascii_caseeq(want->data, tag->data, want->len))
    {
        return 0;
    }

    return tag->len == want->len || tag->data[want->len] == '-';
}


static int
cr_ascii_caseeq(const char *a, const char *b, size_t n)
{
    size_t         i;
    unsigned char  x, y;

    for (i = 0; i < n; i++) {
        x = (unsigned char) a[i];
        y = (unsigned char) b[i];
        x = (x >= 'A' && x <= 'Z') ? x | 0x20 : x;
        y = (y >= 'A' && y <= 'Z') ? y | 0x20 : y;

        if (x != y) {
            return 0;
        }
    }

    return 1;
}


unsigned
cr_split_bucket(const cr_key_t *key, uint64_t serial)
{
    uint8_t   m[6], h[crypto_shorthash_siphash24_BYTES];
    uint64_t  v;

    /* kid | BE40(serial): the item, as the code names it. */
    m[0] = key->kid;
    m[1] = (uint8_t) (serial >> 32);
    m[2] = (uint8_t) (serial >> 24);
    m[3] = (uint8_t) (serial >> 16);
    m[4] = (uint8_t) (serial >> 8);
    m[5] = (uint8_t) serial;

    crypto_shorthash_siphash24(h, m, sizeof(m), key->k_split);

    /* Little-endian, as SipHash's output is defined: the same bucket on
     * every node, whatever its byte order. */
    memcpy(&v, h, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif

    /* 2^64 mod 100 is 16: a bias below 10^-17. */
    return (unsigned) (v % 100);
}


cr_str_t
cr_lang_first(const char *v, size_t len)
{
    size_t    i, j;
    cr_str_t  t;

    for (i = 0; i < len && (v[i] == ' ' || v[i] == '\t'); i++) {
        /* void */
    }

    for (j = i; j < len && v[j] != ',' && v[j] != ';' && v[j] != ' '
                && v[j] != '\t'; j++)
    {
        /* void */
    }

    t.data = v + i;
    t.len = j - i;

    if (t.len == 1 && t.data[0] == '*') {
        t.len = 0;
    }

    return t;
}


static const char *
cr_split_num(const char **p, const char *end, unsigned *v)
{
    const char  *s;

    s = *p;
    *v = 0;

    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 3) {
        *v = *v * 10 + (unsigned) (**p - '0');
        (*p)++;
    }

    return *p == s || *v > 99 ? "must be LO-HI, two whole numbers from 0 to "
                                "99 with LO <= HI (as 0-49)"
                              : NULL;
}


const char *
cr_split_parse(const char *s, size_t n, unsigned *lo, unsigned *hi)
{
    const char  *p, *end, *err;

    p = s;
    end = s + n;

    err = cr_split_num(&p, end, lo);
    if (err) {
        return err;
    }

    if (p == end || *p++ != '-') {
        return "must be LO-HI, two whole numbers from 0 to 99 with LO <= HI "
               "(as 0-49)";
    }

    err = cr_split_num(&p, end, hi);
    if (err) {
        return err;
    }

    if (p != end || *lo > *hi) {
        return "must be LO-HI, two whole numbers from 0 to 99 with LO <= HI "
               "(as 0-49)";
    }

    return NULL;
}
