/*
 * cr_record: the binding store's records as C types, their byte layout,
 * the key of a code and the names of the enumerations.
 *
 * Pure C, no LMDB: cr_store keeps these records, the loader and the CLI
 * build and print them, the fuzzers decode them.  docs/loading.md
 * describes what the fields mean.
 *
 * Records: a kind byte, fixed little-endian fields, then a table of
 * (offset, length) u16 pairs for the strings, then the strings.  Readers
 * use the fixed offsets and check every string's bounds.
 */

#ifndef CR_RECORD_H
#define CR_RECORD_H

#include <stddef.h>
#include <stdint.h>


#define CR_ID_MAX            64        /* campaign and batch ids, bytes */
#define CR_TIME_NONE         INT64_MIN /* open-ended campaign window */
#define CR_KEY_LEN           6         /* kid(1) | serial(5), big-endian */


typedef enum {
    CR_TARGET_MINIPROGRAM = 1,
    CR_TARGET_OFFICIAL_ACCOUNT,
    CR_TARGET_H5
} cr_target_e;

typedef enum {
    CR_SCENE_VERIFY = 1,
    CR_SCENE_MARKETING,
    CR_SCENE_TRACE,
    CR_SCENE_CHANNEL
} cr_scene_e;

typedef enum {
    CR_OVERRIDE_REVOKED = 1,
    CR_OVERRIDE_CAMPAIGN
} cr_override_e;


typedef struct {
    const char  *data;
    size_t       len;
} cr_str_t;


enum {
    CR_CAMP_ID = 0,
    CR_CAMP_NAME,
    CR_CAMP_URL,
    CR_CAMP_APPID,
    CR_CAMP_PATH,
    CR_CAMP_QUERY,
    CR_CAMP_URL_LINK,
    CR_CAMP_BEFORE_URL,
    CR_CAMP_AFTER_URL,
    CR_CAMP_NSTR
};

typedef struct {
    uint8_t    type;                   /* cr_target_e */
    int64_t    starts_at;              /* Unix seconds or CR_TIME_NONE */
    int64_t    ends_at;
    int16_t    starts_tz;              /* minutes east of UTC, as loaded */
    int16_t    ends_tz;
    cr_str_t   s[CR_CAMP_NSTR];
} cr_campaign_t;


enum {
    CR_BATCH_ID = 0,
    CR_BATCH_CAMPAIGN,
    CR_BATCH_SKU,
    CR_BATCH_GTIN,
    CR_BATCH_LOT,
    CR_BATCH_PRODUCED,                 /* production date, YYYY-MM-DD */
    CR_BATCH_REGION,
    CR_BATCH_NSTR
};

typedef struct {
    uint8_t    kid;
    uint8_t    scene;                  /* cr_scene_e */
    uint64_t   first;                  /* serial range, inclusive */
    uint64_t   last;
    cr_str_t   s[CR_BATCH_NSTR];
} cr_batch_t;


typedef struct {
    uint8_t    kid;
    uint8_t    state;                  /* cr_override_e */
    uint64_t   serial;
    cr_str_t   campaign;               /* CR_OVERRIDE_CAMPAIGN only */
} cr_override_t;


/* The key of a code (batches, codes; and the scan store's): CR_KEY_LEN
 * bytes, so that byte order is (kid, serial) order. */
void cr_key_make(uint8_t *k, unsigned kid, uint64_t serial);

/*
 * Record decoders: 0, or -1 for a bad record (wrong kind, a string out of
 * bounds, an unknown enumeration value, a time the loader could not have
 * stored).  The strings point into p.  The fuzzers call them directly.
 */
int cr_campaign_decode(const uint8_t *p, size_t n, cr_campaign_t *c);
int cr_batch_decode(const uint8_t *p, size_t n, cr_batch_t *b);
int cr_override_decode(const uint8_t *p, size_t n, cr_override_t *o);

/* Names as used in CSV files, logs, variables and metrics: NULL for a
 * value without one; parse returns 0 if none. */
const char *cr_target_name(unsigned t);
const char *cr_scene_name(unsigned s);
const char *cr_override_name(unsigned s);
unsigned cr_target_parse(const char *s, size_t n);
unsigned cr_scene_parse(const char *s, size_t n);
unsigned cr_override_parse(const char *s, size_t n);

#endif /* CR_RECORD_H */
