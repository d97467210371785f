/*
 * cr_store: the binding store, an LMDB environment in one file.
 *
 * Pure C (LMDB only): the nginx module reads it, the CLI's load, dump and
 * stat read and write it.  Every record layout is defined once, here and in
 * cr_store.c; docs/loading.md describes what the fields mean.
 *
 * Sub-databases (all keys big-endian so that byte order is numeric order):
 *
 *   meta       "meta"                    -> schema, generation, counts
 *   campaigns  campaign id               -> campaign record
 *   batches    kid(1) | last serial(5)   -> batch record
 *   batch_ids  batch id                  -> kid(1) | last serial(5)
 *   codes      kid(1) | serial(5)        -> per-code override record
 *
 * A batch is found by one cursor seek: the first batches key >= (kid,
 * serial) is the only range that can hold the serial; it does if its first
 * serial <= serial.  Ranges of one key id never overlap (put refuses).
 *
 * Records: a kind byte, fixed little-endian fields, then a table of
 * (offset, length) u16 pairs for the strings, then the strings.  Readers
 * use the fixed offsets and check every string's bounds.
 */

#ifndef CR_STORE_H
#define CR_STORE_H

#include <stddef.h>
#include <stdint.h>


#define CR_STORE_SCHEMA      1
#define CR_STORE_MAXREADERS  1022      /* reloads overlap; loaders too */
#define CR_STORE_MIN_MAP     (64u << 20)
#define CR_ID_MAX            64
#define CR_TIME_NONE         INT64_MIN /* open-ended campaign window */
#define CR_KEY_LEN           6         /* kid(1) | serial(5), big-endian */

/* Return codes besides 0 (success). */
#define CR_STORE_ERROR      -1         /* see cr_store_error() */
#define CR_STORE_NOTFOUND   -2
#define CR_STORE_FULL       -3         /* map full: grow and redo */
#define CR_STORE_OVERLAP    -4

/* What a put did. */
#define CR_PUT_ADDED         1
#define CR_PUT_CHANGED       2
#define CR_PUT_SAME          3

/* cr_store_open() flags */
#define CR_STORE_RDONLY      0x01
#define CR_STORE_CREATE      0x02      /* writer: create a new store */
#define CR_STORE_CHECK       0x04      /* with RDONLY: validate and close at
                                        * once, without the lock file (so a
                                        * root "nginx -t" never creates a
                                        * lock file workers cannot write) */
#define CR_STORE_NOCACHE     0x08      /* reader: no copy of the batches
                                        * and campaigns (tests compare) */


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

typedef enum {
    CR_ST_OK = 0,
    CR_ST_UNBOUND,
    CR_ST_REVOKED,
    CR_ST_NOT_STARTED,
    CR_ST_ENDED
} cr_status_e;


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


/* The answer for one (kid, serial) at one time, from one snapshot. */
typedef struct {
    cr_status_e    status;
    uint64_t       generation;
    unsigned       has_batch:1;
    unsigned       has_campaign:1;
    unsigned       overridden:1;      /* a per-code override applied */
    unsigned       target_ok:1;       /* the campaign passed the check of
                                       * cr_store_set_check() in the
                                       * reader's copy (cr_target.h) */
    cr_batch_t     batch;
    cr_campaign_t  campaign;
} cr_binding_t;


typedef struct {
    uint64_t   generation;
    int64_t    last_commit;            /* Unix seconds; 0 if never */
    uint64_t   campaigns;
    uint64_t   batches;
    uint64_t   codes;
    uint64_t   map_size;               /* bytes */
    uint64_t   map_used;               /* bytes in use (last page) */
    uint64_t   file_size;
    unsigned   max_readers;
    unsigned   readers;
} cr_store_info_t;


typedef struct cr_store_s  cr_store_t;

/* The key of a code (batches, codes; and the scan store's): CR_KEY_LEN
 * bytes, so that byte order is (kid, serial) order. */
void cr_key_make(uint8_t *k, unsigned kid, uint64_t serial);

/* Allocates n bytes that outlive the read transaction (e.g. r->pool). */
typedef void *(*cr_alloc_pt)(void *ctx, size_t n);


/*
 * Opens the store in the file "path" (plus "path-lock").  CR_STORE_RDONLY:
 * a reader (MDB_RDONLY | MDB_NORDAHEAD).  Otherwise a writer; with
 * CR_STORE_CREATE a missing store is created.  Checks the schema version:
 * a store of another version is refused with a message saying so.
 * Unless CR_STORE_CHECK, the process that creates the lock file (or owns
 * it) makes it mode 0664 whatever the umask, so that nginx's workers, in
 * the group of a directory they cannot write (2755), can read the store;
 * a writer that cannot make it so fails.
 * Returns 0, or -1 with a message in err.  Never before fork(): open in
 * each process that uses it.
 */
int cr_store_open(cr_store_t **st, const char *path, int flags,
    char *err, size_t errlen);

void cr_store_close(cr_store_t *st);

/* The last error message of a call that returned CR_STORE_ERROR. */
const char *cr_store_error(cr_store_t *st);

/* The device and inode the store was opened from (to notice a rename). */
void cr_store_file_id(cr_store_t *st, uint64_t *dev, uint64_t *ino);

/*
 * Reader: the binding of (kid, serial) at time "now", from one snapshot.
 * Every string is copied with alloc(), so nothing points into the map or
 * the cache afterwards.  Adopts a map grown by a writer (MDB_MAP_RESIZED).
 * Returns 0 or CR_STORE_ERROR.
 *
 * A read-only store keeps its snapshot from one lookup to the next while
 * no commit has happened (checked at every lookup, so a commit is seen by
 * the next one), and keeps a decoded copy of the snapshot's batches and
 * campaigns when they are few (CR_CACHE_MAX_RECORDS in cr_store.c): only
 * the per-code override is read from LMDB.  A held snapshot pins the pages
 * a writer frees after it: call cr_store_release() when idle (nginx: once
 * a second).
 */
int cr_store_lookup(cr_store_t *st, unsigned kid, uint64_t serial,
    int64_t now, cr_binding_t *b, cr_alloc_pt alloc, void *ctx);

/* Ends the snapshot held between lookups, if any. */
void cr_store_release(cr_store_t *st);

/*
 * A check of a campaign's stored target (cr_target_check), run once per
 * campaign and snapshot when the copy is made: a lookup that finds a
 * campaign that passed it sets b->target_ok, and the URL builders skip
 * checking it again for every scan.  NULL (the default): no check.
 */
void cr_store_set_check(cr_store_t *st,
    const char *(*check)(const cr_campaign_t *c));

/* What lookups of the current snapshot use instead of LMDB searches: the
 * copy of the batches and campaigns (not for a big store), the override
 * filter (cr_filter.h; not if another tool wrote the overrides).  0 for a
 * writer or with CR_STORE_NOCACHE. */
#define CR_CACHED_COPY    0x01
#define CR_CACHED_FILTER  0x02

int cr_store_cached(cr_store_t *st);

/* Generation, counts, sizes; from a fresh read transaction. */
int cr_store_info(cr_store_t *st, cr_store_info_t *info);

/*
 * Writes a compacted copy of the store (LMDB's MDB_CP_COMPACT: free pages
 * left out, pages renumbered, one snapshot) to fd, a new empty file;
 * does not sync or close it.  Returns 0 or CR_STORE_ERROR.
 */
int cr_store_copy(cr_store_t *st, int fd);

/* Clears reader slots of dead processes; returns how many (or -1). */
int cr_store_reader_check(cr_store_t *st);

/*
 * Writer.  begin() takes LMDB's writer lock (waiting for another writer).
 * Strings returned by get/each point into the transaction and are valid
 * until the next write or the end of the transaction.  CR_STORE_FULL from
 * any call: abort, grow the map with cr_store_grow(), and redo the work.
 */
int cr_store_begin(cr_store_t *st);
int cr_store_commit(cr_store_t *st, int64_t now);
void cr_store_abort(cr_store_t *st);
int cr_store_grow(cr_store_t *st, uint64_t min_size);
uint64_t cr_store_map_size(cr_store_t *st);

int cr_store_get_campaign(cr_store_t *st, const char *id, size_t len,
    cr_campaign_t *c);
int cr_store_put_campaign(cr_store_t *st, const cr_campaign_t *c);
int cr_store_del_campaign(cr_store_t *st, const char *id, size_t len);

/* On CR_STORE_OVERLAP, *other is the batch in the way. */
int cr_store_put_batch(cr_store_t *st, const cr_batch_t *b,
    cr_batch_t *other);
int cr_store_del_batch(cr_store_t *st, const char *id, size_t len);

int cr_store_put_override(cr_store_t *st, const cr_override_t *o);
int cr_store_del_override(cr_store_t *st, unsigned kid, uint64_t serial);

/*
 * Iteration in key order, inside the write transaction or (if none) a
 * read transaction of its own.  fn returns 0 to go on, anything else to
 * stop (returned as is).
 */
int cr_store_each_campaign(cr_store_t *st,
    int (*fn)(void *ctx, const cr_campaign_t *c), void *ctx);
int cr_store_each_batch(cr_store_t *st,
    int (*fn)(void *ctx, const cr_batch_t *b), void *ctx);
int cr_store_each_override(cr_store_t *st,
    int (*fn)(void *ctx, const cr_override_t *o), void *ctx);

/* Record codecs, exposed for the fuzzers: 0, or -1 for a bad record. */
int cr_campaign_decode(const uint8_t *p, size_t n, cr_campaign_t *c);
int cr_batch_decode(const uint8_t *p, size_t n, cr_batch_t *b);
int cr_override_decode(const uint8_t *p, size_t n, cr_override_t *o);

/* Names as used in CSV files, logs and variables; parse returns 0 if none. */
const char *cr_target_name(unsigned t);
const char *cr_scene_name(unsigned s);
const char *cr_override_name(unsigned s);
const char *cr_status_name(cr_status_e s);
unsigned cr_target_parse(const char *s, size_t n);
unsigned cr_scene_parse(const char *s, size_t n);
unsigned cr_override_parse(const char *s, size_t n);

#endif /* CR_STORE_H */
