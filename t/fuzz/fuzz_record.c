/*
 * libFuzzer target: the store's record decoders (campaign, batch,
 * override, GS1 link, campaign rule, parent; and the scan store's receipt
 * value, which must encode back byte for byte) fed arbitrary bytes as a
 * record.  Every string a decoder returns is read in full, so a slice
 * outside the record is an AddressSanitizer report.  A campaign's times
 * are formatted as the API formats them (UBSan reports an overflow), and a
 * decoded time must be one the loader could have stored (issue 12, 9).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_receipt.h"
#include "cr_record.h"
#include "cr_time.h"


static volatile unsigned  sink;


static void
time_oracle(int64_t t, int tz)
{
    char  buf[32];

    if (t == CR_TIME_NONE) {
        return;
    }

    if (!cr_time_ok(t, tz)) {
        abort();
    }

    cr_format_time(buf, sizeof(buf), t, tz);
    sink += (unsigned char) buf[0];
}


static void
touch(const cr_str_t *s, unsigned n)
{
    unsigned  i;
    size_t    k;

    for (i = 0; i < n; i++) {
        for (k = 0; k < s[i].len; k++) {
            sink += (unsigned char) s[i].data[k];
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t        *copy;
    cr_campaign_t   c;
    cr_batch_t      b;
    cr_override_t   o;
    cr_link_t       l;
    cr_rule_t       r;
    cr_parent_t     p;
    cr_receipt_t    rc;

    /* An exact-size heap copy: ASan sees one byte past the end. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);

    if (cr_campaign_decode(copy, size, &c) == 0) {
        touch(c.s, CR_CAMP_NSTR);
        (void) cr_target_name(c.type);
        time_oracle(c.starts_at, c.starts_tz);
        time_oracle(c.ends_at, c.ends_tz);
    }

    if (cr_batch_decode(copy, size, &b) == 0) {
        touch(b.s, CR_BATCH_NSTR);
        if (b.first > b.last || cr_scene_name(b.scene) == NULL
            || b.activate > CR_ACTIVATE_ON_RECEIPT)
        {
            abort();
        }
    }

    /* The scan store's receipt value: lengths inside, ids of ours, and
     * encoded back byte for byte. */
    if (cr_receipt_decode(copy, size, &rc) == 0) {
        uint8_t  back[CR_RECEIPT_VAL_MAX];

        if (rc.store_len == 0 || rc.store_len > CR_RECEIPT_ID_MAX
            || rc.dealer_len > CR_RECEIPT_ID_MAX
            || cr_receipt_encode(back, &rc) != size
            || memcmp(back, copy, size) != 0)
        {
            abort();
        }
    }

    if (cr_override_decode(copy, size, &o) == 0) {
        touch(&o.campaign, 1);
    }

    if (cr_link_decode(copy, size, &l) == 0) {
        touch(l.s, CR_LINK_NSTR);
    }

    /* A rule the readers take: ranges they compare without checking. */
    if (cr_rule_decode(copy, size, &r) == 0) {
        touch(r.s, CR_RULE_NSTR);
        if (r.split_lo > r.split_hi || r.split_hi > 99
            || cr_target_name(r.type) == NULL
            || ((r.set & CR_RULE_MIN_SCANS) && (r.set & CR_RULE_MAX_SCANS)
                && r.min_scans > r.max_scans))
        {
            abort();
        }
    }

    /* A parent the chain walk takes: a range, not holding its parent. */
    if (cr_parent_decode(copy, size, &p) == 0
        && (p.first > p.last
            || (p.parent_kid == p.kid && p.parent >= p.first
                && p.parent <= p.last)))
    {
        abort();
    }

    free(copy);

    return 0;
}
