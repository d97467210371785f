/*
 * cr_load_rows: the loader's rules for one row of each kind (campaign,
 * batch, code, GS1 link): every column checked, the record built and put to (or
 * deleted from) the store, references to check at the end noted.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cr_gs1.h"
#include "cr_link.h"
#include "cr_load_int.h"
#include "cr_record.h"
#include "cr_store.h"
#include "cr_time.h"
#include "cr_valid.h"


static cr_str_t cr_col(cr_load_t *l, cr_row_t *row, int c);
static int cr_is_delete(cr_load_t *l, cr_row_t *row, int c);
static int cr_num(cr_load_t *l, cr_str_t v, const char *col, uint64_t max,
    uint64_t *out);
static int cr_check(cr_load_t *l, const char *col, cr_str_t v,
    const char *reason);
static int cr_quiet(cr_load_t *l, const char *col);


const char  *cr_load_campaign_cols[C_CN] = {
    "campaign", "name", "type", "url", "appid", "path", "query", "url_link",
    "starts_at", "ends_at", "before_url", "after_url", "delete", "tz",
    "over_url"
};

const char  *cr_load_batch_cols[B_N] = {
    "batch", "kid", "serial_from", "serial_to", "scene", "campaign", "sku",
    "gtin", "lot", "production_date", "region", "dealer", "activate",
    "delete"
};

const char  *cr_load_code_cols[O_N] = {
    "code", "kid", "serial", "state", "campaign", "delete"
};

const char  *cr_load_link_cols[L_N] = {
    "gtin", "lot", "link_type", "href", "title", "lang", "type", "delete"
};


static cr_str_t
cr_col(cr_load_t *l, cr_row_t *row, int c)
{
    int       i;
    cr_str_t  v;

    i = l->state->col[c];

    if (i < 0) {
        v.data = "";
        v.len = 0;
    } else {
        v.data = row->f[i];
        v.len = row->fl[i];
    }

    return v;
}


/* The delete column: empty (upsert) or "yes" (delete); else an error. */
static int
cr_is_delete(cr_load_t *l, cr_row_t *row, int c)
{
    cr_str_t  v;

    v = cr_col(l, row, c);

    if (v.len == 0) {
        return 0;
    }

    if (v.len == 3 && strncasecmp(v.data, "yes", 3) == 0) {
        return 1;
    }

    if (!cr_quiet(l, "delete")) {
        cr_load_err(l, &l->state->loc, "delete: \"%.*s\" must be empty or "
                    "\"yes\"", (int) (v.len > 20 ? 20 : v.len), v.data);
    }

    return -1;
}


/* 1 if column col's field was reported for its encoding: one message is
 * enough for it. */
static int
cr_quiet(cr_load_t *l, const char *col)
{
    int               i;
    cr_load_state_t  *s = l->state;

    for (i = 0; i < s->nfields; i++) {
        if ((s->enc_bad >> i & 1) && s->fname[i]
            && strcmp(s->fname[i], col) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* Reports a failed check; returns 1 if it failed. */
static int
cr_check(cr_load_t *l, const char *col, cr_str_t v, const char *reason)
{
    if (reason == NULL) {
        return 0;
    }

    if (cr_quiet(l, col)) {
        return 1;
    }

    if (v.len > 60) {
        cr_load_err(l, &l->state->loc, "%s: \"%.60s...\" %s", col, v.data, reason);
    } else {
        cr_load_err(l, &l->state->loc, "%s: \"%.*s\" %s", col, (int) v.len, v.data,
               reason);
    }

    return 1;
}


static int
cr_num(cr_load_t *l, cr_str_t v, const char *col, uint64_t max,
    uint64_t *out)
{
    size_t    i;
    uint64_t  r;

    r = 0;

    for (i = 0; i < v.len; i++) {
        if (v.data[i] < '0' || v.data[i] > '9'
            || r > (max - (uint64_t) (v.data[i] - '0')) / 10)
        {
            break;
        }
        r = r * 10 + (uint64_t) (v.data[i] - '0');
    }

    if (v.len == 0 || i < v.len || v.len > 20) {
        if (!cr_quiet(l, col)) {
            cr_load_err(l, &l->state->loc, "%s: \"%.*s\" must be a whole "
                        "number from 0 to %llu", col,
                        (int) (v.len > 30 ? 30 : v.len), v.data,
                        (unsigned long long) max);
        }
        return 1;
    }

    *out = r;

    return 0;
}


/* Records the row defining id; reports a second definition in this run. */
static int
cr_first_definition(cr_load_t *l, cr_hash_t *h, const char *what,
    cr_str_t id)
{
    cr_hent_t  *e;

    e = cr_load_hash_get(h, id.data, id.len, 0);

    if (e != NULL) {
        cr_load_err(l, &l->state->loc, "%s \"%.*s\" is also defined at %s:%llu "
               "(one row per %s and run)", what, (int) id.len, id.data,
               l->state->files[e->loc.file],
               (unsigned long long) e->loc.line, what);
        return 0;
    }

    e = cr_load_hash_get(h, id.data, id.len, 1);
    if (e == NULL) {
        return -1;
    }

    e->loc = l->state->loc;

    return 1;
}


static void
cr_count(cr_load_count_t *c, int put)
{
    switch (put) {
    case CR_PUT_ADDED:
        c->added++;
        break;
    case CR_PUT_CHANGED:
        c->changed++;
        break;
    default:
        c->same++;
        break;
    }
}


int
cr_load_row_campaign(cr_load_t *l, cr_row_t *row)
{
    int            del, bad, rc, i, dflt;
    int16_t        tz;
    cr_str_t       v;
    cr_hent_t     *e;
    cr_campaign_t  c;

    static const int  str_col[CR_CAMP_NSTR] = {
        C_CAMPAIGN, C_NAME, C_URL, C_APPID, C_PATH, C_QUERY, C_URL_LINK,
        C_BEFORE_URL, C_AFTER_URL, C_OVER_URL
    };

    memset(&c, 0, sizeof(cr_campaign_t));

    for (i = 0; i < CR_CAMP_NSTR; i++) {
        c.s[i] = cr_col(l, row, str_col[i]);
    }

    bad = cr_check(l, "campaign", c.s[CR_CAMP_ID],
                   cr_valid_id(c.s[CR_CAMP_ID].data, c.s[CR_CAMP_ID].len));

    del = cr_is_delete(l, row, C_CDELETE);

    if (!bad && cr_first_definition(l, &l->state->campaigns, "campaign",
                                    c.s[CR_CAMP_ID])
                < 0)
    {
        return cr_load_fatal(l, "out of memory");
    }

    if (del > 0) {
        if (!cr_load_row_ok(l)) {
            return CR_LOAD_OK;
        }

        rc = cr_store_del_campaign(l->st, c.s[CR_CAMP_ID].data,
                                   c.s[CR_CAMP_ID].len);

        if (rc == CR_STORE_NOTFOUND) {
            cr_load_err(l, &l->state->loc, "campaign \"%.*s\" cannot be deleted: "
                   "it does not exist", (int) c.s[CR_CAMP_ID].len,
                   c.s[CR_CAMP_ID].data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        l->campaigns.removed++;

        return cr_load_add_ref(l, 'd', &c.s[CR_CAMP_ID]);
    }

    v = cr_col(l, row, C_TYPE);
    c.type = (uint8_t) cr_target_parse(v.data, v.len);
    if (c.type == 0) {
        cr_check(l, "type", v, "must be miniprogram, "
                 "official_account or h5");
    }

    cr_check(l, "name", c.s[CR_CAMP_NAME],
             cr_valid_text(c.s[CR_CAMP_NAME].data,
                           c.s[CR_CAMP_NAME].len, CR_NAME_MAX));

    /* Its errors are the row's (cr_load_row_ok); bad stays the id's. */
    (void) cr_load_target(l, c.type, &c.s[CR_CAMP_URL]);

    for (i = CR_CAMP_BEFORE_URL; i <= CR_CAMP_OVER_URL; i++) {
        v = c.s[i];
        if (v.len) {
            cr_check(l, cr_load_campaign_cols[str_col[i]], v,
                     cr_valid_url(v.data, v.len, "https://"));
        }
    }

    c.starts_at = c.ends_at = CR_TIME_NONE;

    /* The zone of zone-less times: the row's tz, else --tz. */
    dflt = l->opts.has_tz ? l->opts.tz : CR_TZ_UNSET;

    v = cr_col(l, row, C_TZ);
    if (v.len) {
        if (cr_check(l, "tz", v, cr_parse_zone(v.data, v.len, &tz))) {
            dflt = 0;               /* the times are still checked */
        } else {
            dflt = tz;
        }
    }

    v = cr_col(l, row, C_STARTS_AT);
    if (v.len) {
        cr_check(l, "starts_at", v,
                 cr_parse_time_in(v.data, v.len, dflt, &c.starts_at,
                                  &c.starts_tz));
    }

    v = cr_col(l, row, C_ENDS_AT);
    if (v.len) {
        cr_check(l, "ends_at", v,
                 cr_parse_time_in(v.data, v.len, dflt, &c.ends_at,
                                  &c.ends_tz));
    }

    if (c.starts_at != CR_TIME_NONE && c.ends_at != CR_TIME_NONE
        && c.ends_at <= c.starts_at)
    {
        cr_load_err(l, &l->state->loc, "ends_at must be later than starts_at");
    }

    if (!cr_load_row_ok(l)) {
        e = bad ? NULL : cr_load_hash_get(&l->state->campaigns,
                                          c.s[CR_CAMP_ID].data,
                                          c.s[CR_CAMP_ID].len, 0);
        if (e != NULL && e->loc.line == l->state->loc.line
            && e->loc.file == l->state->loc.file)
        {
            e->bad = 1;
        }

        return CR_LOAD_OK;
    }

    rc = cr_store_put_campaign(l->st, &c);
    if (rc < 0) {
        return cr_load_store_fail(l, rc);
    }

    cr_count(&l->campaigns, rc);

    return CR_LOAD_OK;
}


int
cr_load_target(cr_load_t *l, unsigned type, const cr_str_t *s)
{
    int       bad, i;
    cr_str_t  v;

    static const char  *names[5] = {
        "url", "appid", "path", "query", "url_link"
    };

    bad = 0;

    if (type == CR_TARGET_MINIPROGRAM) {
        v = s[1];
        bad |= cr_check(l, "appid", v, v.len ? cr_valid_appid(v.data, v.len)
                        : "is required for a miniprogram campaign");
        v = s[2];
        bad |= cr_check(l, "path", v, cr_valid_mp_path(v.data, v.len));
        v = s[3];
        bad |= cr_check(l, "query", v, cr_valid_mp_query(v.data, v.len));
        v = s[4];
        if (v.len) {
            bad |= cr_check(l, "url_link", v,
                            cr_valid_url(v.data, v.len, "https://"));
        }
        v = s[0];
        if (v.len) {
            bad |= cr_check(l, "url", v, cr_valid_url(v.data, v.len,
                                                      "weixin://"));
        }

    } else if (type) {
        v = s[0];
        bad |= cr_check(l, "url", v, v.len ? cr_valid_url(v.data, v.len,
                                                          "https://")
                        : "is required for this type");

        for (i = 1; i < 5; i++) {
            if (s[i].len) {
                cr_load_err(l, &l->state->loc, "%s: must be empty unless "
                            "type is miniprogram", names[i]);
                bad = 1;
            }
        }
    }

    return bad;
}


/* A batch or override names a campaign: known now, or later in the run. */
static int
cr_need_campaign(cr_load_t *l, char what, cr_str_t id)
{
    int            rc;
    cr_campaign_t  c;

    rc = cr_store_get_campaign(l->st, id.data, id.len, &c);

    if (rc == 0) {
        return CR_LOAD_OK;
    }

    if (rc != CR_STORE_NOTFOUND) {
        return cr_load_store_fail(l, rc);
    }

    return cr_load_add_ref(l, what, &id);
}


int
cr_load_row_batch(cr_load_t *l, cr_row_t *row)
{
    int         del, bad, rc, i, camp_ok, act;
    char        where[512], date[11];
    cr_str_t    v;
    uint64_t    n;
    cr_hent_t  *e;
    cr_batch_t  b, other;

    static const int  str_col[CR_BATCH_NSTR] = {
        B_BATCH, B_CAMPAIGN, B_SKU, B_GTIN, B_LOT, B_PRODUCED, B_REGION,
        B_DEALER
    };

    memset(&b, 0, sizeof(cr_batch_t));

    for (i = 0; i < CR_BATCH_NSTR; i++) {
        b.s[i] = cr_col(l, row, str_col[i]);
    }

    v = b.s[CR_BATCH_ID];
    bad = cr_check(l, "batch", v, cr_valid_id(v.data, v.len));
    del = cr_is_delete(l, row, B_DELETE);

    if (!bad && cr_first_definition(l, &l->state->batches, "batch", v) < 0) {
        return cr_load_fatal(l, "out of memory");
    }

    if (del > 0) {
        if (!cr_load_row_ok(l)) {
            return CR_LOAD_OK;
        }

        rc = cr_store_del_batch(l->st, v.data, v.len);

        if (rc == CR_STORE_NOTFOUND) {
            cr_load_err(l, &l->state->loc, "batch \"%.*s\" cannot be deleted: it "
                   "does not exist", (int) v.len, v.data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        l->batches.removed++;

        return CR_LOAD_OK;
    }

    /* bad from here on: the range is not known (no overlap check). */
    bad |= cr_num(l, cr_col(l, row, B_KID), "kid", CR_KID_MAX, &n);
    b.kid = (uint8_t) n;
    bad |= cr_num(l, cr_col(l, row, B_FROM), "serial_from", CR_SERIAL_MAX,
                  &b.first);
    bad |= cr_num(l, cr_col(l, row, B_TO), "serial_to", CR_SERIAL_MAX,
                  &b.last);

    if (!bad && b.first > b.last) {
        cr_load_err(l, &l->state->loc, "serial_to %llu is below serial_from %llu",
               (unsigned long long) b.last, (unsigned long long) b.first);
        bad = 1;
    }

    v = cr_col(l, row, B_SCENE);
    b.scene = (uint8_t) cr_scene_parse(v.data, v.len);
    if (b.scene == 0) {
        cr_check(l, "scene", v, "must be verify, marketing, trace or "
                 "channel");
    }

    /* activate: now (also an empty cell or no column) or on_receipt. */
    v = cr_col(l, row, B_ACTIVATE);
    act = v.len ? cr_activate_parse(v.data, v.len) : CR_ACTIVATE_NOW;
    if (act < 0) {
        bad |= cr_check(l, "activate", v, "must be now or on_receipt");
    } else {
        b.activate = (uint8_t) act;
    }

    v = b.s[CR_BATCH_CAMPAIGN];
    camp_ok = !cr_check(l, "campaign", v, cr_valid_id(v.data, v.len));

    for (i = CR_BATCH_SKU; i < CR_BATCH_NSTR; i++) {
        v = b.s[i];
        if (v.len == 0) {
            continue;
        }

        if (i == CR_BATCH_PRODUCED) {
            /* Stored as YYYY-MM-DD whichever form the file used. */
            if (!cr_check(l, "production_date", v,
                          cr_parse_date(v.data, v.len, date)))
            {
                b.s[i].data = date;
                b.s[i].len = 10;
            }
            continue;
        }

        cr_check(l, cr_load_batch_cols[str_col[i]], v,
                 i == CR_BATCH_GTIN ? cr_valid_gtin(v.data, v.len)
                 : cr_valid_label(v.data, v.len, CR_LABEL_MAX));
    }

    /* A bad row is not put, but its range is still checked. */
    rc = bad ? 0 : cr_load_row_ok(l) ? cr_store_put_batch(l->st, &b, &other)
                                     : cr_store_batch_overlap(l->st, &b,
                                                              &other);

    if (rc == CR_STORE_OVERLAP) {
        e = cr_load_hash_get(&l->state->batches, other.s[CR_BATCH_ID].data,
                        other.s[CR_BATCH_ID].len, 0);

        if (e) {
            snprintf(where, sizeof(where), "defined at %s:%llu",
                     l->state->files[e->loc.file],
                     (unsigned long long) e->loc.line);
        } else {
            snprintf(where, sizeof(where), "already in the store");
        }

        cr_load_err(l, &l->state->loc, "batch \"%.*s\" (key id %u, serials %llu "
               "to %llu) overlaps batch \"%.*s\" (serials %llu to %llu, %s)",
               (int) b.s[CR_BATCH_ID].len, b.s[CR_BATCH_ID].data, b.kid,
               (unsigned long long) b.first, (unsigned long long) b.last,
               (int) other.s[CR_BATCH_ID].len, other.s[CR_BATCH_ID].data,
               (unsigned long long) other.first,
               (unsigned long long) other.last, where);

    } else if (rc < 0) {
        return cr_load_store_fail(l, rc);

    } else if (cr_load_row_ok(l)) {
        cr_count(&l->batches, rc);
    }

    /* An unknown campaign is reported for a bad row too. */
    return camp_ok ? cr_need_campaign(l, 'b', b.s[CR_BATCH_CAMPAIGN])
                   : CR_LOAD_OK;
}


int
cr_load_row_code(cr_load_t *l, cr_row_t *row)
{
    int            del, rc;
    size_t         clen;
    unsigned       kid;
    cr_str_t       v, camp;
    uint64_t       n;
    const char    *code;
    cr_code_rc_t   crc;
    cr_gs1_rc_t    grc;
    cr_override_t  o;
    cr_gs1_link_t  dl;

    memset(&o, 0, sizeof(cr_override_t));

    if (l->state->col[O_CODE] != -1) {
        v = cr_col(l, row, O_CODE);

        /* The code as printed, or its whole URL, read as inspect does. */
        grc = cr_gs1_code_of(v.data, v.len, &dl, &code, &clen);

        if (cr_quiet(l, "code")) {
            /* its encoding is reported */

        } else if (code == NULL) {
            cr_check(l, "code", v, grc == CR_GS1_OK
                     ? "is a GS1 Digital Link without a serial (AI 21)"
                     : cr_gs1_rc_text(grc));

        } else if (l->ring == NULL) {
            cr_load_err(l, &l->state->loc, "code: decoding codes needs the "
                        "key: run with --key FILE (or give kid and serial "
                        "columns)");

        } else {
            kid = 0;
            crc = cr_code_open(l->ring, code, clen, &kid, &o.serial);

            if (crc == CR_CODE_UNKNOWN_KEY) {
                cr_load_err(l, &l->state->loc, "code: \"%.*s\" has key id %u, "
                       "which --key does not serve",
                       (int) (v.len > 30 ? 30 : v.len), v.data, kid);

            } else if (crc != CR_CODE_OK) {
                cr_check(l, "code", v, crc == CR_CODE_MALFORMED
                         ? "is malformed (not an 18-character code, nor a "
                           "URL ending in one)"
                         : "is forged (not made with this key)");

            } else {
                o.kid = (uint8_t) kid;
            }
        }

    } else {
        if (cr_num(l, cr_col(l, row, O_KID), "kid", CR_KID_MAX, &n) == 0) {
            o.kid = (uint8_t) n;
        }
        cr_num(l, cr_col(l, row, O_SERIAL), "serial", CR_SERIAL_MAX,
               &o.serial);
    }

    del = cr_is_delete(l, row, O_DELETE);

    if (del > 0) {
        if (!cr_load_row_ok(l)) {
            return CR_LOAD_OK;
        }

        rc = cr_store_del_override(l->st, o.kid, o.serial);

        if (rc == CR_STORE_NOTFOUND) {
            cr_load_err(l, &l->state->loc, "no override for key id %u serial %llu "
                   "to delete", o.kid, (unsigned long long) o.serial);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        l->codes.removed++;

        return CR_LOAD_OK;
    }

    v = cr_col(l, row, O_STATE);
    o.state = (uint8_t) cr_override_parse(v.data, v.len);
    camp = cr_col(l, row, O_CAMPAIGN);

    if (o.state == 0) {
        cr_check(l, "state", v, "must be revoked or campaign");

    } else if (o.state == CR_OVERRIDE_CAMPAIGN) {
        if (camp.len == 0) {
            cr_load_err(l, &l->state->loc, "campaign: required when state is "
                   "campaign");

        } else if (!cr_check(l, "campaign", camp,
                             cr_valid_id(camp.data, camp.len)))
        {
            o.campaign = camp;
        }

    } else if (camp.len) {
        cr_load_err(l, &l->state->loc, "campaign: must be empty when state is "
               "revoked");
    }

    if (!cr_load_row_ok(l)) {
        /* An unknown campaign is reported for a bad row too. */
        return o.campaign.len ? cr_need_campaign(l, 'o', camp) : CR_LOAD_OK;
    }

    rc = cr_store_put_override(l->st, &o);
    if (rc < 0) {
        return cr_load_store_fail(l, rc);
    }

    cr_count(&l->codes, rc);

    return o.state == CR_OVERRIDE_CAMPAIGN ? cr_need_campaign(l, 'o', camp)
                                           : CR_LOAD_OK;
}


/*
 * A GS1 link (docs/gs1.md): GTIN-8/12/13/14 stored as GTIN-14 (or an
 * SSCC-18, a case's or pallet's, without a lot), a lot of AI 82 or none,
 * the link type, an https:// href, and optional title, language and media
 * type.  One row per (gtin, lot, link_type, lang) and run; delete=yes
 * removes the link of that key.
 */
int
cr_load_row_link(cr_load_t *l, cr_row_t *row)
{
    int         del, bad, rc;
    char        gtin[CR_GS1_KEY_MAX + 1], enc[CR_GS1_VALUE_ENC_MAX + 1];
    size_t      i;
    const char *why;
    uint8_t     key[CR_LINK_KEY_MAX];
    cr_str_t    v;
    cr_link_t   k;

    memset(&k, 0, sizeof(cr_link_t));
    bad = 0;

    v = cr_col(l, row, L_GTIN);
    k.s[CR_LINK_GTIN].data = gtin;
    k.s[CR_LINK_GTIN].len = CR_GS1_GTIN_LEN;
    k.s[CR_LINK_LOT] = cr_col(l, row, L_LOT);

    if (v.len == CR_GS1_SSCC_LEN) {
        /* An SSCC: /00/SSCC has no lot. */
        why = cr_valid_check_digit(v.data, v.len);

        if (why == NULL && k.s[CR_LINK_LOT].len) {
            why = "is an SSCC (18 digits): a case's or pallet's links have "
                  "no lot";
        }

        bad |= cr_check(l, "gtin", v, why);
        memcpy(gtin, v.data, v.len);
        gtin[v.len] = '\0';
        k.s[CR_LINK_GTIN].len = CR_GS1_SSCC_LEN;

    } else if (cr_gs1_gtin14(gtin, v.data, v.len) != 0) {
        bad |= cr_check(l, "gtin", v, cr_valid_gtin(v.data, v.len));
    }

    v = k.s[CR_LINK_LOT];

    if (v.len && cr_gs1_encode_value(enc, v.data, v.len) < 0) {
        bad |= cr_check(l, "lot", v, "must be 1..20 characters of GS1's set "
                        "(AI 82: letters, digits and "
                        "!\"%&'()*+,-./:;<=>?_), or empty for the GTIN's "
                        "own links");
    }

    k.s[CR_LINK_TYPE] = cr_col(l, row, L_TYPE);
    bad |= cr_check(l, "link_type", k.s[CR_LINK_TYPE],
                    cr_link_type_check(k.s[CR_LINK_TYPE].data,
                                       k.s[CR_LINK_TYPE].len));

    k.s[CR_LINK_LANG] = cr_col(l, row, L_LANG);
    bad |= cr_check(l, "lang", k.s[CR_LINK_LANG],
                    cr_link_lang_check(k.s[CR_LINK_LANG].data,
                                       k.s[CR_LINK_LANG].len));

    del = cr_is_delete(l, row, L_DELETE);

    /* Its key, readable in a message: blanks are in no field. */
    if (!bad) {
        v.len = cr_link_key(key, &k);
        v.data = (const char *) key;

        for (i = 0; i < v.len; i++) {
            key[i] = key[i] ? key[i] : ' ';
        }

        if (cr_first_definition(l, &l->state->links, "link", v) < 0) {
            return cr_load_fatal(l, "out of memory");
        }
    }

    if (del > 0) {
        if (!cr_load_row_ok(l)) {
            return CR_LOAD_OK;
        }

        rc = cr_store_del_link(l->st, &k);

        if (rc == CR_STORE_NOTFOUND) {
            cr_load_err(l, &l->state->loc, "no link of GTIN %s, lot \"%.*s\", "
                   "type %.*s, lang \"%.*s\" to delete", gtin,
                   (int) k.s[CR_LINK_LOT].len, k.s[CR_LINK_LOT].data,
                   (int) k.s[CR_LINK_TYPE].len, k.s[CR_LINK_TYPE].data,
                   (int) k.s[CR_LINK_LANG].len, k.s[CR_LINK_LANG].data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_load_store_fail(l, rc);
        }

        l->links.removed++;

        return CR_LOAD_OK;
    }

    k.s[CR_LINK_HREF] = cr_col(l, row, L_HREF);
    cr_check(l, "href", k.s[CR_LINK_HREF],
             cr_valid_url(k.s[CR_LINK_HREF].data, k.s[CR_LINK_HREF].len,
                          "https://"));

    k.s[CR_LINK_TITLE] = cr_col(l, row, L_TITLE);
    cr_check(l, "title", k.s[CR_LINK_TITLE],
             cr_valid_text(k.s[CR_LINK_TITLE].data, k.s[CR_LINK_TITLE].len,
                           CR_LINK_TITLE_MAX));

    k.s[CR_LINK_MEDIA] = cr_col(l, row, L_MEDIA);
    cr_check(l, "type", k.s[CR_LINK_MEDIA],
             cr_link_media_check(k.s[CR_LINK_MEDIA].data,
                                 k.s[CR_LINK_MEDIA].len));

    if (!cr_load_row_ok(l)) {
        return CR_LOAD_OK;
    }

    rc = cr_store_put_link(l->st, &k);
    if (rc < 0) {
        return cr_load_store_fail(l, rc);
    }

    cr_count(&l->links, rc);

    return CR_LOAD_OK;
}


/* For cr_load_rules.c (cr_load_int.h): the helpers above. */
cr_str_t
cr_load_col(cr_load_t *l, cr_row_t *row, int c)
{
    return cr_col(l, row, c);
}


int
cr_load_is_delete(cr_load_t *l, cr_row_t *row, int c)
{
    return cr_is_delete(l, row, c);
}


int
cr_load_check(cr_load_t *l, const char *col, cr_str_t v, const char *reason)
{
    return cr_check(l, col, v, reason);
}


int
cr_load_num(cr_load_t *l, cr_str_t v, const char *col, uint64_t max,
    uint64_t *out)
{
    return cr_num(l, v, col, max, out);
}


int
cr_load_first_definition(cr_load_t *l, cr_hash_t *h, const char *what,
    cr_str_t id)
{
    return cr_first_definition(l, h, what, id);
}


void
cr_load_count(cr_load_count_t *c, int put)
{
    cr_count(c, put);
}
