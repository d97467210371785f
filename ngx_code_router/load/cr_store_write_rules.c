/*
 * cr_store_write_rules: the writer's puts and deletes of campaigns' rules
 * (see cr_store.h).  Beside cr_store_write.c on the writer's side: the
 * read-only module never links them.
 */

#include <string.h>

#include "cr_store_int.h"


int
cr_store_put_rule(cr_store_t *st, const cr_rule_t *r)
{
    int       rc;
    uint8_t   key[CR_RULE_KEY_MAX];
    uint64_t  count;
    MDB_val   k, v;

    rc = cr_rec_value(st, cr_rule_encode(r, st->buf), &v);
    if (rc != 0) {
        return rc;
    }

    k.mv_data = key;
    k.mv_size = cr_rule_key(key, r->s[CR_RULE_CAMPAIGN].data,
                            r->s[CR_RULE_CAMPAIGN].len, r->rule);

    /* The meta record counts the first schema's kinds only. */
    count = 0;

    return cr_put_record(st, st->rule_dbi, &k, &v, &count);
}


int
cr_store_del_rule(cr_store_t *st, const char *id, size_t len, unsigned rule)
{
    uint8_t  key[CR_RULE_KEY_MAX];
    MDB_val  k;

    k.mv_data = key;
    k.mv_size = cr_rule_key(key, id, len, rule);

    return cr_mdb_rc(st, mdb_del(st->wtxn, st->rule_dbi, &k, NULL),
                     "cannot delete a rule");
}


int
cr_rules_del_campaign(cr_store_t *st, const char *id, size_t len)
{
    int          rc;
    uint8_t      key[CR_RULE_KEY_MAX];
    size_t       plen;
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(st->wtxn, st->rule_dbi, &cur);
    if (rc != 0) {
        return cr_mdb_rc(st, rc, "cannot delete rules");
    }

    plen = cr_rule_key(key, id, len, 0) - 2;

    /* Sought again after each delete: the prefix's first rule. */
    for ( ;; ) {
        k.mv_data = key;
        k.mv_size = plen;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc != 0 || k.mv_size != plen + 2
            || memcmp(k.mv_data, key, plen) != 0)
        {
            break;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == 0 || rc == MDB_NOTFOUND
           ? 0 : cr_mdb_rc(st, rc, "cannot delete rules");
}

