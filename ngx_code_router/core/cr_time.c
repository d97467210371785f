/*
 * cr_time: see cr_time.h.
 */

#include <stdio.h>
#include <string.h>

#include "cr_time.h"


static int cr_digits(const char *s, size_t n, int *v);
static int64_t cr_days_from_civil(int64_t y, unsigned m, unsigned d);
static void cr_civil_from_days(int64_t z, int64_t *y, unsigned *m,
    unsigned *d);
static int cr_date_ok(int y, int m, int d);
static int cr_digits12(const char *s, size_t n, size_t *i);
static char *cr_put_digits(char *p, unsigned v, int n);
static int64_t cr_local_civil(int64_t t, int tz, int64_t *y, unsigned *m,
    unsigned *d);


static int
cr_digits(const char *s, size_t n, int *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        *v = *v * 10 + (s[i] - '0');
    }

    return 0;
}


static int
cr_date_ok(int y, int m, int d)
{
    static const int  mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };

    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) {
        return 0;
    }

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return d <= 29;
    }

    return d <= mdays[m - 1];
}


const char *
cr_valid_date(const char *s, size_t n)
{
    int  y, m, d;

    if (n != 10 || s[4] != '-' || s[7] != '-' || cr_digits(s, 4, &y)
        || cr_digits(s + 5, 2, &m) || cr_digits(s + 8, 2, &d))
    {
        return "must be a date as YYYY-MM-DD";
    }

    if (!cr_date_ok(y, m, d)) {
        return "is not a real date";
    }

    return NULL;
}


const char *
cr_parse_date(const char *s, size_t n, char out[11])
{
    int          y, m, d;
    char        *p;
    size_t       i;
    const char  *form;

    form = "must be a date as YYYY-MM-DD (or 2026/11/20, as Excel shows "
           "it), without a time";

    if (cr_valid_date(s, n) == NULL) {
        memcpy(out, s, 10);
        out[10] = '\0';
        return NULL;
    }

    /* YYYY/M/D: Excel's date cell. */
    i = 5;

    if (n < 8 || cr_digits(s, 4, &y) || s[4] != '/') {
        return n == 10 && s[4] == '-' && s[7] == '-'
               && cr_digits(s, 4, &y) == 0 ? cr_valid_date(s, n) : form;
    }

    m = cr_digits12(s, n, &i);
    if (m < 0 || i >= n || s[i++] != '/') {
        return form;
    }

    d = cr_digits12(s, n, &i);
    if (d < 0 || i != n) {
        return form;
    }

    if (!cr_date_ok(y, m, d)) {
        return "is not a real date";
    }

    p = cr_put_digits(out, (unsigned) y, 4);
    *p++ = '-';
    p = cr_put_digits(p, (unsigned) m, 2);
    *p++ = '-';
    p = cr_put_digits(p, (unsigned) d, 2);
    *p = '\0';

    return NULL;
}


const char *
cr_parse_time(const char *s, size_t n, int64_t *t, int16_t *tz)
{
    int          y, mo, d, h, mi, sec, zh, zm;
    size_t       i;
    const char  *form;

    form = "must be a date and time with a zone, e.g. "
           "2026-11-02T08:00:00+08:00 or 2026-11-02T00:00:00Z";

    if (n < 17 || cr_valid_date(s, 10) != NULL || s[10] != 'T'
        || cr_digits(s + 11, 2, &h) || s[13] != ':'
        || cr_digits(s + 14, 2, &mi))
    {
        return n > 10 && cr_valid_date(s, 10) == NULL && s[10] == ' '
               ? "must separate date and time with 'T'" : form;
    }

    cr_digits(s, 4, &y);
    cr_digits(s + 5, 2, &mo);
    cr_digits(s + 8, 2, &d);

    i = 16;
    sec = 0;

    if (i < n && s[i] == ':') {
        if (i + 3 > n || cr_digits(s + i + 1, 2, &sec)) {
            return form;
        }
        i += 3;
    }

    if (i == n) {
        return "has no zone: add Z or +08:00";
    }

    if (s[i] == 'Z' && i + 1 == n) {
        zh = zm = 0;
        *tz = 0;

    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n
               && cr_digits(s + i + 1, 2, &zh) == 0 && s[i + 3] == ':'
               && cr_digits(s + i + 4, 2, &zm) == 0 && zh <= 14 && zm <= 59)
    {
        *tz = (int16_t) ((s[i] == '-' ? -1 : 1) * (zh * 60 + zm));

    } else {
        return form;
    }

    if (h > 23 || mi > 59 || sec > 59) {
        return "is not a real time of day";
    }

    *t = cr_days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400
         + h * 3600 + mi * 60 + sec - (int64_t) *tz * 60;

    return NULL;
}


const char *
cr_parse_zone(const char *s, size_t n, int16_t *tz)
{
    int  zh, zm;

    if (n == 1 && s[0] == 'Z') {
        *tz = 0;
        return NULL;
    }

    if (n != 6 || (s[0] != '+' && s[0] != '-') || cr_digits(s + 1, 2, &zh)
        || s[3] != ':' || cr_digits(s + 4, 2, &zm) || zh > 14 || zm > 59)
    {
        return "must be a zone as +08:00, -05:00 or Z";
    }

    *tz = (int16_t) ((s[0] == '-' ? -1 : 1) * (zh * 60 + zm));

    return NULL;
}


/* 1 or 2 digits (max 2) at s[*i], as a number; -1 if none. */
static int
cr_digits12(const char *s, size_t n, size_t *i)
{
    int  v, k;

    v = 0;

    for (k = 0; k < 2 && *i < n && s[*i] >= '0' && s[*i] <= '9'; k++) {
        v = v * 10 + (s[(*i)++] - '0');
    }

    return k ? v : -1;
}


const char *
cr_parse_time_in(const char *s, size_t n, int dflt, int64_t *t, int16_t *tz)
{
    int          y, mo, d, h, mi, sec;
    char         sep;
    size_t       i;
    const char  *iso;

    iso = cr_parse_time(s, n, t, tz);

    if (iso == NULL) {
        return NULL;
    }

    /* YYYY(/|-)M(/|-)D( |T)H:MM[:SS], nothing after: no zone. */
    if (n < 13 || cr_digits(s, 4, &y) || (s[4] != '/' && s[4] != '-')) {
        return iso;
    }

    sep = s[4];
    i = 5;
    mo = cr_digits12(s, n, &i);
    if (mo < 0 || i >= n || s[i++] != sep) {
        return iso;
    }
    d = cr_digits12(s, n, &i);
    if (d < 0 || i >= n || (s[i] != ' ' && s[i] != 'T')) {
        return iso;
    }
    i++;
    h = cr_digits12(s, n, &i);
    if (h < 0 || i + 3 > n || s[i] != ':' || cr_digits(s + i + 1, 2, &mi)) {
        return iso;
    }
    i += 3;
    sec = 0;
    if (i < n && s[i] == ':') {
        if (i + 3 != n || cr_digits(s + i + 1, 2, &sec)) {
            return iso;
        }
        i += 3;
    }
    if (i != n) {
        return iso;
    }

    /* With '-' the fields keep two digits: YYYY-MM-DD HH:MM. */
    if (sep == '-' && (n < 16 || s[7] != '-' || s[13] != ':')) {
        return iso;
    }

    if (dflt == CR_TZ_UNSET) {
        return "has no zone: add Z or +08:00, or load with --tz +08:00 "
               "(or give a tz column)";
    }

    if (!cr_date_ok(y, mo, d)) {
        return "is not a real date";
    }

    if (h > 23 || mi > 59 || sec > 59) {
        return "is not a real time of day";
    }

    *tz = (int16_t) dflt;
    *t = cr_days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400
         + h * 3600 + mi * 60 + sec - (int64_t) dflt * 60;

    return NULL;
}


int
cr_time_ok(int64_t t, int tz)
{
    /* t is bounded first, so the sum below cannot overflow. */
    if (tz < -CR_TZ_MAX || tz > CR_TZ_MAX
        || t < -(int64_t) CR_TZ_MAX * 60
        || t > CR_LOCAL_TIME_MAX + (int64_t) CR_TZ_MAX * 60)
    {
        return 0;
    }

    t += (int64_t) tz * 60;

    return t >= 0 && t <= CR_LOCAL_TIME_MAX;
}


void
cr_format_time(char *out, size_t len, int64_t t, int tz)
{
    char      buf[32], *p;
    size_t    n;
    int64_t   secs, y;
    unsigned  m, d, a;

    if (!cr_time_ok(t, tz)) {
        snprintf(out, len, "%lld", (long long) t);
        return;
    }

    secs = cr_local_civil(t, tz, &y, &m, &d);

    /* By hand: snprintf() cost more than the rest of a scan's counting. */
    p = cr_put_digits(buf, (unsigned) y, 4);
    *p++ = '-';
    p = cr_put_digits(p, m, 2);
    *p++ = '-';
    p = cr_put_digits(p, d, 2);
    *p++ = 'T';
    p = cr_put_digits(p, (unsigned) (secs / 3600), 2);
    *p++ = ':';
    p = cr_put_digits(p, (unsigned) (secs / 60 % 60), 2);
    *p++ = ':';
    p = cr_put_digits(p, (unsigned) (secs % 60), 2);

    if (tz == 0) {
        *p++ = 'Z';

    } else {
        a = (unsigned) (tz < 0 ? -tz : tz);
        *p++ = tz < 0 ? '-' : '+';
        p = cr_put_digits(p, a / 60, 2);
        *p++ = ':';
        p = cr_put_digits(p, a % 60, 2);
    }

    n = p - buf;

    if (len == 0) {
        return;
    }

    if (n >= len) {
        n = len - 1;
    }

    memcpy(out, buf, n);
    out[n] = '\0';
}


/*
 * For people, not programs: the day and minute in the brand's zone, as a
 * shopper writes them.  No zone is shown: the directive that sets it names
 * the brand's own (docs/verify.md, "Times on the pages").
 */
void
cr_format_human_time(char *out, size_t len, int64_t t, int tz, int en)
{
    int64_t    secs, y;
    unsigned   m, d;

    static const char  *mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

    if (len == 0) {
        return;
    }

    if (!cr_time_ok(t, tz)) {
        snprintf(out, len, "%lld", (long long) t);
        return;
    }

    secs = cr_local_civil(t, tz, &y, &m, &d);

    if (en) {
        snprintf(out, len, "%u %s %04lld, %02u:%02u", d, mon[m - 1],
                 (long long) y, (unsigned) (secs / 3600),
                 (unsigned) (secs / 60 % 60));
    } else {
        snprintf(out, len, "%04lld年%u月%u日 "
                 "%02u:%02u", (long long) y, m, d, (unsigned) (secs / 3600),
                 (unsigned) (secs / 60 % 60));
    }
}


/* The local date of t (valid) in zone tz; returns the second of its day. */
static int64_t
cr_local_civil(int64_t t, int tz, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t  local, days, secs;

    local = t + (int64_t) tz * 60;
    days = local / 86400;
    secs = local % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }

    cr_civil_from_days(days, y, m, d);

    return secs;
}


static char *
cr_put_digits(char *p, unsigned v, int n)
{
    int  i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = (char) ('0' + v % 10);
        v /= 10;
    }

    return p + n;
}


/* Howard Hinnant's days-from-civil, proleptic Gregorian. */
static int64_t
cr_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


static void
cr_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t   era;
    unsigned  doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned) (z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t) yoe + era * 400 + (*m <= 2);
}
