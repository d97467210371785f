/*
 * cr_time: dates and times, written once: the ISO 8601 forms (and Excel's)
 * the loader and the CLI take, the zones, the range of times a stored
 * record may hold, and how the module, the CLI and the verify pages write
 * a time.
 *
 * Pure C, no time zone database: a time is Unix seconds and a zone in
 * minutes east of UTC, as loaded.  Each parser returns NULL if the value
 * is acceptable, else a short reason for a message.
 */

#ifndef CR_TIME_H
#define CR_TIME_H

#include <stddef.h>
#include <stdint.h>


/* YYYY-MM-DD, a real calendar date. */
const char *cr_valid_date(const char *s, size_t n);

/*
 * A production date as the loader takes it: YYYY-MM-DD, or as Excel
 * shows a date cell, YYYY/M/D (one or two digits for month and day).
 * Writes it as YYYY-MM-DD and a NUL to out (the form stored and dumped).
 */
const char *cr_parse_date(const char *s, size_t n, char out[11]);

/*
 * ISO 8601 date and time with a zone: YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM).
 * Sets Unix seconds and the zone in minutes east of UTC.
 */
const char *cr_parse_time(const char *s, size_t n, int64_t *t, int16_t *tz);

/*
 * The times cr_parse_time() can produce, and so the only ones a stored
 * record may hold: a zone of at most 14:59 either side of UTC, and a local
 * date from 1970-01-01T00:00:00 to 9999-12-31T23:59:59.  Returns 1 if t
 * (Unix seconds) in zone tz (minutes east of UTC) is one of them, else 0.
 */
#define CR_TZ_MAX          (14 * 60 + 59)
#define CR_LOCAL_TIME_MAX  INT64_C(253402300799)   /* 9999-12-31T23:59:59 */

int cr_time_ok(int64_t t, int tz);

/* A zone as --tz and the loader's tz column take it: Z or +HH:MM / -HH:MM
 * (HH <= 14, MM <= 59), in minutes east of UTC. */
const char *cr_parse_zone(const char *s, size_t n, int16_t *tz);

/*
 * As cr_parse_time, and the zone-less forms Excel shows: YYYY/M/D H:MM[:SS],
 * YYYY-MM-DD HH:MM[:SS] (and YYYY-MM-DDTHH:MM[:SS]), read in zone dflt
 * (minutes east of UTC) unless dflt is CR_TZ_UNSET: then refused with a
 * reason that names --tz.
 */
#define CR_TZ_UNSET  INT16_MIN

const char *cr_parse_time_in(const char *s, size_t n, int dflt, int64_t *t,
    int16_t *tz);

/* Formats t in zone tz as above (25 bytes + NUL at most).  A time that
 * cr_time_ok() refuses is written as the decimal number t. */
void cr_format_time(char *out, size_t len, int64_t t, int tz);

/*
 * Formats t in zone tz for a person (the verify pages): en == 0 gives
 * "2026年11月30日 21:41", en != 0 "30 Nov 2026, 21:41".  At most
 * CR_HUMAN_TIME_LEN bytes with the NUL.  A time that cr_time_ok() refuses
 * is written as the decimal number t.
 */
#define CR_HUMAN_TIME_LEN  32

void cr_format_human_time(char *out, size_t len, int64_t t, int tz, int en);

#endif /* CR_TIME_H */
