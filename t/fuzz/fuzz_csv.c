/*
 * libFuzzer target: the loader's CSV row splitter and every field rule.
 * Oracles: split fields lie inside the line; an accepted timestamp formats
 * and parses back to the same instant and zone (also one read in a
 * default zone, Excel's forms, and it is in the range a record may hold);
 * cr_url_encode's length matches what it writes; a rules file's split
 * range is ordered and within 0-99, Accept-Language's first tag lies
 * inside the value.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_load.h"
#include "cr_rules.h"
#include "cr_time.h"
#include "cr_valid.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          n, i;
    char        *line, *f[64], out[64], date[11], *enc;
    size_t       fl[64], k, len;
    int16_t      tz, tz2;
    uint32_t     cp;
    int64_t      t, t2;
    const char  *err, *s;

    line = malloc(size + 1);
    if (line == NULL) {
        return 0;
    }
    memcpy(line, data, size);

    n = cr_csv_split(line, size, f, fl, 64, &err);

    for (i = 0; i < n; i++) {
        if (f[i] < line || f[i] + fl[i] > line + size) {
            abort();
        }
    }

    free(line);

    s = (const char *) data;

    (void) cr_valid_id(s, size);
    (void) cr_valid_text(s, size, 256);
    (void) cr_valid_label(s, size, 64);
    (void) cr_valid_url(s, size, "https://");
    (void) cr_valid_url(s, size, "weixin://");
    (void) cr_valid_appid(s, size);
    (void) cr_valid_mp_path(s, size);
    (void) cr_valid_mp_query(s, size);
    (void) cr_valid_gtin(s, size);
    (void) cr_valid_date(s, size);

    /* An accepted production date is stored as a valid YYYY-MM-DD. */
    if (cr_parse_date(s, size, date) == NULL
        && cr_valid_date(date, strlen(date)) != NULL)
    {
        abort();
    }

    {
        unsigned  lo, hi;
        cr_str_t  tag;

        if (cr_split_parse(s, size, &lo, &hi) == NULL
            && (lo > hi || hi > 99))
        {
            abort();
        }

        tag = cr_lang_first(s, size);
        if (tag.data < s || tag.data + tag.len > s + size) {
            abort();
        }
    }

    if (cr_parse_time(s, size, &t, &tz) == NULL) {
        cr_format_time(out, sizeof(out), t, tz);
        if (cr_parse_time(out, strlen(out), &t2, &tz2) != NULL || t2 != t
            || tz2 != tz)
        {
            abort();
        }
    }

    if (cr_parse_time_in(s, size, CR_TZ_UNSET, &t, &tz) == NULL
        && cr_parse_time(s, size, &t2, &tz2) != NULL)
    {
        abort();                /* no zone and no default: refused */
    }

    if (cr_parse_time_in(s, size, 480, &t, &tz) == NULL) {
        cr_format_time(out, sizeof(out), t, tz);
        if (!cr_time_ok(t, tz)
            || cr_parse_time(out, strlen(out), &t2, &tz2) != NULL
            || t2 != t || tz2 != tz)
        {
            abort();
        }
    }

    (void) cr_parse_zone(s, size, &tz);
    (void) cr_foreign_char(s, size, &cp);

    len = cr_url_encode(NULL, s, size);
    enc = malloc(len + 1);
    if (enc) {
        k = cr_url_encode(enc, s, size);
        if (k != len) {
            abort();
        }
        free(enc);
    }

    return 0;
}
