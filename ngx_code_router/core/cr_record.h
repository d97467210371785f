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

#include "cr_gs1.h"


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
    CR_CAMP_OVER_URL,                  /* past code_router_max_scans */
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
    CR_BATCH_DEALER,                   /* who the batch was sold to */
    CR_BATCH_NSTR
};

/*
 * When a batch's items answer as bound (the loader's "activate" column):
 * now (at once), or on_receipt: "inactive" until a store has received
 * their case or pallet (POST .../CODE/receive; docs/loading.md,
 * "Activation on receipt").  Stored as the record's kind: 'A' is a batch
 * of all the strings that activates on receipt, so that a store without
 * one keeps the kinds older readers know ('B', 'D').
 */
typedef enum {
    CR_ACTIVATE_NOW = 0,
    CR_ACTIVATE_ON_RECEIPT
} cr_activate_e;

typedef struct {
    uint8_t    kid;
    uint8_t    scene;                  /* cr_scene_e */
    uint8_t    activate;               /* cr_activate_e */
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


/*
 * A GS1 Digital Link resolver's link, as a links file's row:
 * gtin,lot,link_type,href,title,lang,type.  The rules of its fields, and
 * what a resolver does with it, are cr_link.h's; docs/gs1.md.
 */
enum {
    CR_LINK_GTIN = 0,                  /* GTIN-14 (or SSCC-18) stored */
    CR_LINK_LOT,                       /* "" for the GTIN's own links */
    CR_LINK_TYPE,                      /* gs1:NAME or an https:// URI */
    CR_LINK_HREF,                      /* the target, https:// */
    CR_LINK_TITLE,
    CR_LINK_LANG,                      /* "" or a language tag */
    CR_LINK_MEDIA,                     /* "" or a media type */
    CR_LINK_NSTR
};

typedef struct {
    cr_str_t  s[CR_LINK_NSTR];
} cr_link_t;

#define CR_LINK_TYPE_MAX    128
#define CR_LINK_TITLE_MAX   256
#define CR_LINK_LANG_MAX    35
#define CR_LINK_MEDIA_MAX   64

/* gtin(14) NUL lot NUL type NUL lang */
#define CR_LINK_KEY_MAX  (CR_GS1_KEY_MAX + CR_GS1_VALUE_MAX + 3 \
                          + CR_LINK_TYPE_MAX + CR_LINK_LANG_MAX)


/*
 * A campaign's rule (the loader's "rules" files): when every condition
 * set holds for a scan, the rule's target replaces the campaign's.  The
 * rules of a campaign are tried in the order of "rule"; docs/loading.md.
 */
typedef enum {
    CR_DEVICE_ANY = 0,                 /* no condition */
    CR_DEVICE_IOS,
    CR_DEVICE_ANDROID,
    CR_DEVICE_WECHAT,
    CR_DEVICE_ALIPAY,
    CR_DEVICE_OTHER
} cr_device_e;

#define CR_RULE_MAX          64        /* rules per campaign */
#define CR_RULE_NUM_MAX      9999      /* the largest "rule" */
#define CR_RULE_KEY_MAX      (CR_ID_MAX + 3)

/* Which of the numeric conditions are set. */
#define CR_RULE_SPLIT        0x01
#define CR_RULE_MIN_SCANS    0x02
#define CR_RULE_MAX_SCANS    0x04

/* The facts of a scan a rule asks about (cr_rule_t.facts, cr_rules.h). */
#define CR_FACT_DEVICE       0x01
#define CR_FACT_LANG         0x02
#define CR_FACT_REGION       0x04
#define CR_FACT_SPLIT        0x08
#define CR_FACT_SCANS        0x10

enum {
    CR_RULE_CAMPAIGN = 0,
    CR_RULE_LANG,                      /* a language tag prefix */
    CR_RULE_REGION,
    CR_RULE_URL,                       /* the target: as the campaign's */
    CR_RULE_APPID,
    CR_RULE_PATH,
    CR_RULE_QUERY,
    CR_RULE_URL_LINK,
    CR_RULE_NSTR
};

typedef struct {
    uint16_t   rule;                   /* 1..CR_RULE_NUM_MAX */
    uint8_t    device;                 /* cr_device_e */
    uint8_t    type;                   /* cr_target_e */
    uint8_t    set;                    /* CR_RULE_SPLIT ... */
    uint8_t    split_lo;               /* 0..99, inclusive */
    uint8_t    split_hi;
    uint8_t    target_ok;              /* not stored: a reader's copy
                                        * checked the target (cr_store.h) */
    uint8_t    facts;                  /* not stored: CR_FACT_*, set by
                                        * cr_rule_decode() */
    uint64_t   min_scans;
    uint64_t   max_scans;
    cr_str_t   s[CR_RULE_NSTR];
} cr_rule_t;


/*
 * A range of codes packed into one parent (the loader's "parents" files):
 * items into a case, cases into a pallet.  Key: kid | last (as a batch's),
 * so one seek finds the range that may hold a serial; first <= last, and
 * the parent is not in the range.  A chain has at most CR_PARENT_LEVELS
 * levels (item, case, pallet): a code has at most CR_PARENTS_MAX parents
 * above it.
 */
#define CR_PARENT_LEVELS     3
#define CR_PARENTS_MAX       (CR_PARENT_LEVELS - 1)

typedef struct {
    uint8_t    kid;
    uint8_t    parent_kid;
    uint64_t   first;                  /* the children, inclusive */
    uint64_t   last;
    uint64_t   parent;                 /* the parent's serial */
} cr_parent_t;

/* One link of a code's chain: the parent's key id and serial. */
typedef struct {
    uint8_t    kid;
    uint64_t   serial;
} cr_parent_ref_t;


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
int cr_rule_decode(const uint8_t *p, size_t n, cr_rule_t *r);
int cr_parent_decode(const uint8_t *p, size_t n, cr_parent_t *r);
/* A link's fields are not checked here: cr_link_check() does. */
int cr_link_decode(const uint8_t *p, size_t n, cr_link_t *l);

/*
 * The store key of a link: gtin NUL lot NUL type NUL lang (the "gtin" a
 * GTIN-14, or the SSCC-18 of a case's or pallet's links), so that the
 * links of one level (cr_link_level_key: gtin NUL lot NUL) are neighbours,
 * and one (type, lang) has one link a level.  k holds CR_LINK_KEY_MAX
 * bytes; the fields must have passed the checks.  Returns the length.
 */
size_t cr_link_key(uint8_t *k, const cr_link_t *l);
size_t cr_link_level_key(uint8_t *k, const char *gtin, size_t gtin_len,
    const char *lot, size_t lot_len);

/* The key of a rule: campaign id, a NUL (ids have none, so a campaign's
 * rules sort together and in the campaigns' order), rule number (BE16).
 * Writes at most CR_RULE_KEY_MAX bytes; returns the length. */
size_t cr_rule_key(uint8_t *k, const char *id, size_t len, unsigned rule);

/* A campaign with rule r's target in place of its own (type, url, appid,
 * path, query, url_link): what the target builders and checks take. */
void cr_rule_target(cr_campaign_t *c, const cr_rule_t *r);

/* Names as used in CSV files, logs, variables and metrics: NULL for a
 * value without one; parse returns 0 if none. */
const char *cr_target_name(unsigned t);
const char *cr_scene_name(unsigned s);
const char *cr_override_name(unsigned s);
const char *cr_device_name(unsigned d);
unsigned cr_target_parse(const char *s, size_t n);
unsigned cr_scene_parse(const char *s, size_t n);
unsigned cr_override_parse(const char *s, size_t n);
unsigned cr_device_parse(const char *s, size_t n);

/* "now", "on_receipt"; parse: the cr_activate_e, or -1 if neither. */
const char *cr_activate_name(unsigned a);
int cr_activate_parse(const char *s, size_t n);

#endif /* CR_RECORD_H */
