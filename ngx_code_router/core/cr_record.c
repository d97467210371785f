/*
 * cr_record: see cr_record.h (types, names) and cr_record_int.h (layout).
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cr_codec.h"
#include "cr_record.h"
#include "cr_record_int.h"
#include "cr_time.h"


static int cr_campaign_time_ok(int64_t t, int tz);
static int cr_rec_decode(const uint8_t *p, size_t n, uint8_t kind,
    size_t nfixed, cr_str_t *s, unsigned ns);


static const char  *cr_target_names[] = {
    NULL, "miniprogram", "official_account", "h5"
};

static const char  *cr_scene_names[] = {
    NULL, "verify", "marketing", "trace", "channel"
};

static const char  *cr_override_names[] = {
    NULL, "revoked", "campaign"
};

static const char  *cr_activate_names[] = {
    "now", "on_receipt"
};

static const char  *cr_device_names[] = {
    NULL, "ios", "android", "wechat", "alipay", "other"
};


/*
 * A record: the kind byte, the fixed fields, the string table, the
 * strings.  Returns its size; writes nothing if it is over CR_REC_MAX.
 */
static size_t
cr_rec_encode(uint8_t *p, uint8_t kind, const uint8_t *fixed, size_t nfixed,
    const cr_str_t *s, unsigned ns)
{
    unsigned  i;
    size_t    size, off;

    size = 1 + nfixed + 4 * ns;
    for (i = 0; i < ns; i++) {
        size += s[i].len;
    }

    if (size > CR_REC_MAX) {
        return size;
    }

    p[0] = kind;
    memcpy(p + 1, fixed, nfixed);
    off = 1 + nfixed + 4 * ns;

    for (i = 0; i < ns; i++) {
        cr_put_u16(p + 1 + nfixed + 4 * i, (unsigned) off);
        cr_put_u16(p + 1 + nfixed + 4 * i + 2, (unsigned) s[i].len);
        if (s[i].len) {
            memcpy(p + off, s[i].data, s[i].len);
        }
        off += s[i].len;
    }

    return size;
}


size_t
cr_campaign_encode(const cr_campaign_t *c, uint8_t *buf)
{
    uint8_t  f[CR_CAMP_FIXED];

    f[0] = c->type;
    cr_put_u64(f + 1, (uint64_t) c->starts_at);
    cr_put_u64(f + 9, (uint64_t) c->ends_at);
    cr_put_u16(f + 17, (uint16_t) c->starts_tz);
    cr_put_u16(f + 19, (uint16_t) c->ends_tz);

    return cr_rec_encode(buf, CR_REC_CAMPAIGN, f, sizeof(f), c->s,
                         CR_CAMP_NSTR);
}


size_t
cr_batch_encode(const cr_batch_t *b, uint8_t *buf)
{
    uint8_t  f[CR_BATCH_FIXED];

    f[0] = b->scene;
    f[1] = b->kid;
    cr_put_u64(f + 2, b->first);
    cr_put_u64(f + 10, b->last);

    /* Activation on receipt: a kind of its own, which older readers
     * refuse as a bad record (never read as active).  Without it and
     * without a dealer, the record of the versions before dealers: their
     * readers still read the store (docs/loading.md, "Dealers"). */
    if (b->activate == CR_ACTIVATE_ON_RECEIPT) {
        return cr_rec_encode(buf, CR_REC_BATCH_A, f, sizeof(f), b->s,
                             CR_BATCH_NSTR);
    }

    return b->s[CR_BATCH_DEALER].len
           ? cr_rec_encode(buf, CR_REC_BATCH_D, f, sizeof(f), b->s,
                           CR_BATCH_NSTR)
           : cr_rec_encode(buf, CR_REC_BATCH, f, sizeof(f), b->s,
                           CR_BATCH_NSTR - 1);
}


size_t
cr_override_encode(const cr_override_t *o, uint8_t *buf)
{
    uint8_t  f[CR_OVR_FIXED];

    f[0] = o->state;
    f[1] = o->kid;
    cr_put_u64(f + 2, o->serial);

    return cr_rec_encode(buf, CR_REC_OVERRIDE, f, sizeof(f), &o->campaign,
                         1);
}


/* A GS1 link: no fixed part, the seven strings. */
size_t
cr_link_encode(const cr_link_t *l, uint8_t *buf)
{
    return cr_rec_encode(buf, CR_REC_LINK, (const uint8_t *) "", 0, l->s,
                         CR_LINK_NSTR);
}


/* A range's parent: fixed fields only, no strings. */
size_t
cr_parent_encode(const cr_parent_t *r, uint8_t *buf)
{
    uint8_t  f[CR_PARENT_FIXED];

    f[0] = r->kid;
    cr_put_u64(f + 1, r->first);
    cr_put_u64(f + 9, r->last);
    f[17] = r->parent_kid;
    cr_put_u64(f + 18, r->parent);

    return cr_rec_encode(buf, CR_REC_PARENT, f, sizeof(f), NULL, 0);
}


size_t
cr_rule_encode(const cr_rule_t *r, uint8_t *buf)
{
    uint8_t  f[CR_RULE_FIXED];

    cr_put_u16(f, r->rule);
    f[2] = r->device;
    f[3] = r->type;
    f[4] = r->set;
    f[5] = r->split_lo;
    f[6] = r->split_hi;
    cr_put_u64(f + 7, r->min_scans);
    cr_put_u64(f + 15, r->max_scans);

    return cr_rec_encode(buf, CR_REC_RULE, f, sizeof(f), r->s,
                         CR_RULE_NSTR);
}


/* Only a rule the loader could have stored: the readers trust its
 * ranges (a split bucket is compared, never indexed, but a reversed
 * range would be a rule nobody wrote). */
int
cr_rule_decode(const uint8_t *p, size_t n, cr_rule_t *r)
{
    if (cr_rec_decode(p, n, CR_REC_RULE, CR_RULE_FIXED, r->s, CR_RULE_NSTR)
        != 0)
    {
        return -1;
    }

    p++;
    r->rule = (uint16_t) cr_get_u16(p);
    r->device = p[2];
    r->type = p[3];
    r->set = p[4];
    r->split_lo = p[5];
    r->split_hi = p[6];
    r->min_scans = cr_get_u64(p + 7);
    r->max_scans = cr_get_u64(p + 15);
    r->target_ok = 0;
    r->facts = (r->device ? CR_FACT_DEVICE : 0)
               | (r->s[CR_RULE_LANG].len ? CR_FACT_LANG : 0)
               | (r->s[CR_RULE_REGION].len ? CR_FACT_REGION : 0)
               | (r->set & CR_RULE_SPLIT ? CR_FACT_SPLIT : 0)
               | (r->set & (CR_RULE_MIN_SCANS | CR_RULE_MAX_SCANS)
                  ? CR_FACT_SCANS : 0);

    if (r->rule == 0 || r->rule > CR_RULE_NUM_MAX
        || (r->device && cr_device_name(r->device) == NULL)
        || cr_target_name(r->type) == NULL
        || (r->set & ~(CR_RULE_SPLIT | CR_RULE_MIN_SCANS | CR_RULE_MAX_SCANS))
        || r->split_lo > r->split_hi || r->split_hi > 99
        || ((r->set & CR_RULE_MIN_SCANS) && (r->set & CR_RULE_MAX_SCANS)
            && r->min_scans > r->max_scans)
        || r->s[CR_RULE_CAMPAIGN].len == 0)
    {
        return -1;
    }

    return 0;
}


size_t
cr_rule_key(uint8_t *k, const char *id, size_t len, unsigned rule)
{
    if (len > CR_ID_MAX) {
        len = CR_ID_MAX;
    }

    memcpy(k, id, len);
    k[len] = '\0';
    k[len + 1] = (uint8_t) (rule >> 8);
    k[len + 2] = (uint8_t) rule;

    return len + 3;
}


static uint8_t *
cr_key_part(uint8_t *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    p[n] = '\0';

    return p + n + 1;
}


size_t
cr_link_level_key(uint8_t *k, const char *gtin, size_t gtin_len,
    const char *lot, size_t lot_len)
{
    uint8_t  *p;

    p = cr_key_part(k, gtin, gtin_len);
    p = cr_key_part(p, lot, lot_len);

    return (size_t) (p - k);
}


size_t
cr_link_key(uint8_t *k, const cr_link_t *l)
{
    size_t    n;
    uint8_t  *p;

    n = cr_link_level_key(k, l->s[CR_LINK_GTIN].data, l->s[CR_LINK_GTIN].len,
                          l->s[CR_LINK_LOT].data, l->s[CR_LINK_LOT].len);
    p = cr_key_part(k + n, l->s[CR_LINK_TYPE].data, l->s[CR_LINK_TYPE].len);

    /* The last part needs no terminator: nothing follows it. */
    memcpy(p, l->s[CR_LINK_LANG].data, l->s[CR_LINK_LANG].len);

    return (size_t) (p - k) + l->s[CR_LINK_LANG].len;
}


void
cr_rule_target(cr_campaign_t *c, const cr_rule_t *r)
{
    c->type = r->type;
    c->s[CR_CAMP_URL] = r->s[CR_RULE_URL];
    c->s[CR_CAMP_APPID] = r->s[CR_RULE_APPID];
    c->s[CR_CAMP_PATH] = r->s[CR_RULE_PATH];
    c->s[CR_CAMP_QUERY] = r->s[CR_RULE_QUERY];
    c->s[CR_CAMP_URL_LINK] = r->s[CR_RULE_URL_LINK];
}


int
cr_link_decode(const uint8_t *p, size_t n, cr_link_t *l)
{
    return cr_rec_decode(p, n, CR_REC_LINK, 0, l->s, CR_LINK_NSTR);
}


int
cr_campaign_decode(const uint8_t *p, size_t n, cr_campaign_t *c)
{
    if (cr_rec_decode(p, n, CR_REC_CAMPAIGN, CR_CAMP_FIXED, c->s,
                      CR_CAMP_NSTR)
        != 0)
    {
        return -1;
    }

    p++;
    c->type = p[0];
    c->starts_at = (int64_t) cr_get_u64(p + 1);
    c->ends_at = (int64_t) cr_get_u64(p + 9);
    c->starts_tz = (int16_t) cr_get_u16(p + 17);
    c->ends_tz = (int16_t) cr_get_u16(p + 19);

    if (cr_target_name(c->type) == NULL
        || !cr_campaign_time_ok(c->starts_at, c->starts_tz)
        || !cr_campaign_time_ok(c->ends_at, c->ends_tz))
    {
        return -1;
    }

    return 0;
}


/*
 * Only a time the loader could have stored: every reader formats it (the
 * API, the CLI's dump), and one past the loader's range would overflow
 * there or make a window nobody meant.
 */
static int
cr_campaign_time_ok(int64_t t, int tz)
{
    if (t == CR_TIME_NONE) {
        return tz >= -CR_TZ_MAX && tz <= CR_TZ_MAX;
    }

    return cr_time_ok(t, tz);
}


int
cr_batch_decode(const uint8_t *p, size_t n, cr_batch_t *b)
{
    uint8_t   kind;
    unsigned  ns;

    kind = n ? p[0] : CR_REC_BATCH;
    kind = (kind == CR_REC_BATCH_D || kind == CR_REC_BATCH_A) ? kind
                                                              : CR_REC_BATCH;
    ns = (kind == CR_REC_BATCH) ? CR_BATCH_NSTR - 1 : CR_BATCH_NSTR;

    if (cr_rec_decode(p, n, kind, CR_BATCH_FIXED, b->s, ns) != 0) {
        return -1;
    }

    b->activate = (kind == CR_REC_BATCH_A) ? CR_ACTIVATE_ON_RECEIPT
                                           : CR_ACTIVATE_NOW;

    if (ns < CR_BATCH_NSTR) {
        b->s[CR_BATCH_DEALER].data = "";
        b->s[CR_BATCH_DEALER].len = 0;
    }

    p++;
    b->scene = p[0];
    b->kid = p[1];
    b->first = cr_get_u64(p + 2);
    b->last = cr_get_u64(p + 10);

    return cr_scene_name(b->scene) && b->first <= b->last ? 0 : -1;
}


int
cr_override_decode(const uint8_t *p, size_t n, cr_override_t *o)
{
    if (cr_rec_decode(p, n, CR_REC_OVERRIDE, CR_OVR_FIXED, &o->campaign, 1)
        != 0)
    {
        return -1;
    }

    p++;
    o->state = p[0];
    o->kid = p[1];
    o->serial = cr_get_u64(p + 2);

    if (o->state == CR_OVERRIDE_REVOKED) {
        return 0;
    }

    return o->state == CR_OVERRIDE_CAMPAIGN && o->campaign.len ? 0 : -1;
}


int
cr_parent_decode(const uint8_t *p, size_t n, cr_parent_t *r)
{
    if (n != 1 + CR_PARENT_FIXED
        || cr_rec_decode(p, n, CR_REC_PARENT, CR_PARENT_FIXED, NULL, 0) != 0)
    {
        return -1;
    }

    p++;
    r->kid = p[0];
    r->first = cr_get_u64(p + 1);
    r->last = cr_get_u64(p + 9);
    r->parent_kid = p[17];
    r->parent = cr_get_u64(p + 18);

    if (r->first > r->last || r->last > CR_SERIAL_MAX
        || r->parent > CR_SERIAL_MAX)
    {
        return -1;
    }

    /* A range holding its own parent would be a cycle of one. */
    return r->parent_kid == r->kid && r->parent >= r->first
           && r->parent <= r->last ? -1 : 0;
}


static int
cr_rec_decode(const uint8_t *p, size_t n, uint8_t kind, size_t nfixed,
    cr_str_t *s, unsigned ns)
{
    unsigned  i, off, len;
    size_t    hdr;

    hdr = 1 + nfixed + 4 * (size_t) ns;

    if (n < hdr || p[0] != kind) {
        return -1;
    }

    for (i = 0; i < ns; i++) {
        off = cr_get_u16(p + 1 + nfixed + 4 * i);
        len = cr_get_u16(p + 1 + nfixed + 4 * i + 2);

        if (off < hdr || (size_t) off + len > n) {
            return -1;
        }

        s[i].data = (const char *) p + off;
        s[i].len = len;
    }

    return 0;
}


void
cr_key_make(uint8_t *k, unsigned kid, uint64_t serial)
{
    k[0] = (uint8_t) kid;
    k[1] = (uint8_t) (serial >> 32);
    k[2] = (uint8_t) (serial >> 24);
    k[3] = (uint8_t) (serial >> 16);
    k[4] = (uint8_t) (serial >> 8);
    k[5] = (uint8_t) serial;
}


static const char *
cr_name(const char **names, size_t n, unsigned v)
{
    return v < n ? names[v] : NULL;
}


const char *
cr_target_name(unsigned t)
{
    return cr_name(cr_target_names, 4, t);
}


const char *
cr_device_name(unsigned d)
{
    return cr_name(cr_device_names, 6, d);
}


const char *
cr_scene_name(unsigned s)
{
    return cr_name(cr_scene_names, 5, s);
}


const char *
cr_override_name(unsigned s)
{
    return cr_name(cr_override_names, 3, s);
}


static unsigned
cr_parse_name(const char **names, unsigned n, const char *s, size_t len)
{
    unsigned  i;

    for (i = 1; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return i;
        }
    }

    return 0;
}


unsigned
cr_target_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_target_names, 4, s, n);
}


unsigned
cr_scene_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_scene_names, 5, s, n);
}


unsigned
cr_override_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_override_names, 3, s, n);
}


unsigned
cr_device_parse(const char *s, size_t n)
{
    return cr_parse_name(cr_device_names, 6, s, n);
}


const char *
cr_activate_name(unsigned a)
{
    return a < 2 ? cr_activate_names[a] : NULL;
}


int
cr_activate_parse(const char *s, size_t n)
{
    unsigned  i;

    for (i = 0; i < 2; i++) {
        if (strlen(cr_activate_names[i]) == n
            && memcmp(cr_activate_names[i], s, n) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}
