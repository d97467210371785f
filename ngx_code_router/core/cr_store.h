/*
 * cr_store: the binding store, an LMDB environment in one file.
 *
 * Pure C (LMDB only): the nginx module reads it, the CLI's load, dump and
 * stat read and write it.  The records and their layout are defined once,
 * in cr_record.h and cr_record.c; docs/loading.md describes what the
 * fields mean.  The store's code is in three files: cr_store.c (open,
 * meta, info, lock file), cr_store_read.c (a reader's snapshot, lookup,
 * decoded copy, override filter), cr_store_write.c (transactions, writes,
 * iteration, filter upkeep); cr_store_int.h is their private state.
 *
 * Sub-databases (all keys big-endian so that byte order is numeric order):
 *
 *   meta       "meta"                    -> schema, generation, counts
 *   campaigns  campaign id               -> campaign record
 *   batches    kid(1) | last serial(5)   -> batch record
 *   batch_ids  batch id                  -> kid(1) | last serial(5)
 *   codes      kid(1) | serial(5)        -> per-code override record
 *   links      cr_link_key()             -> GS1 link record (cr_record.h)
 *   rules      cr_rule_key(): campaign id | NUL | rule(2) -> rule record
 *   parents    kid(1) | last serial(5)   -> parent record (cr_parent_t)
 *   children   parent kid(1) | serial(5) | kid(1) | last serial(5)
 *                                        -> the same parent record
 *
 * A batch is found by one cursor seek: the first batches key >= (kid,
 * serial) is the only range that can hold the serial; it does if its first
 * serial <= serial.  Ranges of one key id never overlap (put refuses).
 * A code's parent is found alike in parents; children is its reverse, so
 * that the loader finds the ranges packed into a code with one seek.
 */

#ifndef CR_STORE_H
#define CR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cr_codec.h"                  /* CR_NONNULL, CR_MUST_CHECK */
#include "cr_lmdb.h"
#include "cr_record.h"


/* 2: campaigns gained over_url, and the rules database was added. */
#define CR_STORE_SCHEMA      2
#define CR_STORE_MAXREADERS  CR_LMDB_MAXREADERS
#define CR_STORE_MIN_MAP     (64u << 20)

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


typedef enum {
    CR_ST_OK = 0,
    CR_ST_UNBOUND,
    CR_ST_REVOKED,
    CR_ST_NOT_STARTED,
    CR_ST_ENDED
} cr_status_e;


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
    const cr_rule_t  *rules;          /* the campaign's, in rule order;
                                       * valid until the next lookup */
    size_t         nrules;
    unsigned       rule;              /* the rule cr_binding_take_rule()
                                       * put in campaign; 0: none */
    unsigned       nparents;          /* the code's chain: its case, then
                                       * the case's pallet (cr_record.h) */
    cr_parent_ref_t  parents[CR_PARENTS_MAX];
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
    char *err, size_t errlen) CR_NONNULL CR_MUST_CHECK;

void cr_store_close(cr_store_t *st);

/* The last error message of a call that returned CR_STORE_ERROR. */
const char *cr_store_error(cr_store_t *st) CR_NONNULL;

/* The device and inode the store was opened from (to notice a rename). */
void cr_store_file_id(cr_store_t *st, uint64_t *dev, uint64_t *ino) CR_NONNULL;

/*
 * Reader: the binding of (kid, serial) at time "now", from one snapshot.
 * Every string is copied with alloc(), so nothing points into the map or
 * the cache afterwards.  b->parents is the code's chain (nearest first),
 * read whatever the status.  Adopts a map grown by a writer (MDB_MAP_RESIZED).
 * Returns 0 or CR_STORE_ERROR.
 *
 * A read-only store keeps its snapshot from one lookup to the next while
 * no commit has happened (checked at every lookup, so a commit is seen by
 * the next one), and keeps a decoded copy of the snapshot's batches and
 * campaigns when they are few (CR_CACHE_MAX_RECORDS in cr_store_int.h): only
 * the per-code override is read from LMDB.  A held snapshot pins the pages
 * a writer frees after it: call cr_store_release() when idle (nginx: once
 * a second).
 */
int cr_store_lookup(cr_store_t *st, unsigned kid, uint64_t serial,
    int64_t now, cr_binding_t *b, cr_alloc_pt alloc, void *ctx);

/* Ends the snapshot held between lookups, if any. */
void cr_store_release(cr_store_t *st) CR_NONNULL;

/*
 * A check of a campaign's stored target (cr_target_check), run once per
 * campaign and snapshot when the copy is made: a lookup that finds a
 * campaign that passed it sets b->target_ok, and the URL builders skip
 * checking it again for every scan.  NULL (the default): no check.
 */
void cr_store_set_check(cr_store_t *st,
    const char *(*check)(const cr_campaign_t *c));

/* Generation, counts, sizes; from a fresh read transaction. */
int cr_store_info(cr_store_t *st, cr_store_info_t *info) CR_NONNULL;

/*
 * Writes a compacted copy of the store (LMDB's MDB_CP_COMPACT: free pages
 * left out, pages renumbered, one snapshot) to fd, a new empty file;
 * does not sync or close it.  Returns 0 or CR_STORE_ERROR.
 */
int cr_store_copy(cr_store_t *st, int fd) CR_NONNULL;

/* Clears reader slots of dead processes; returns how many (or -1). */
int cr_store_reader_check(cr_store_t *st) CR_NONNULL;

/*
 * The store's content digest: BLAKE2b-256 (libsodium's generichash) of
 * every record of one snapshot, sub-database by sub-database in a fixed
 * order (meta, campaigns, batches, batch_ids, codes, links, parents,
 * children: those a store has), each as its
 * name and NUL, then per record in key order the key's length (u32 LE),
 * the key, the value's length (u32 LE), the value, then 0xffffffff.  What
 * the records hold, not how the pages lay them out: a compacted copy has
 * the master's digest, a copy with one byte of a record changed has
 * another.  *generation is the snapshot's.  0, or CR_STORE_ERROR (a page
 * that cannot be read is one).  Reads the whole store.
 */
#define CR_STORE_DIGEST_LEN  32
#define CR_STORE_DIGEST_HEX  (2 * CR_STORE_DIGEST_LEN)

int cr_store_digest(cr_store_t *st, uint8_t digest[CR_STORE_DIGEST_LEN],
    uint64_t *generation) CR_NONNULL;

/*
 * Writer.  begin() takes LMDB's writer lock (waiting for another writer).
 * Strings returned by get/each point into the transaction and are valid
 * until the next write or the end of the transaction.  CR_STORE_FULL from
 * any call: abort, grow the map with cr_store_grow(), and redo the work.
 */
int cr_store_begin(cr_store_t *st) CR_NONNULL;
int cr_store_commit(cr_store_t *st, int64_t now) CR_NONNULL;
void cr_store_abort(cr_store_t *st) CR_NONNULL;
int cr_store_grow(cr_store_t *st, uint64_t min_size) CR_NONNULL;
uint64_t cr_store_map_size(cr_store_t *st) CR_NONNULL;

int cr_store_get_campaign(cr_store_t *st, const char *id, size_t len,
    cr_campaign_t *c) CR_NONNULL;
int cr_store_put_campaign(cr_store_t *st, const cr_campaign_t *c) CR_NONNULL;
int cr_store_del_campaign(cr_store_t *st, const char *id, size_t len)
    CR_NONNULL;

/* On CR_STORE_OVERLAP, *other is the batch in the way. */
int cr_store_put_batch(cr_store_t *st, const cr_batch_t *b,
    cr_batch_t *other) CR_NONNULL;
/* The check put_batch makes, alone (the loader's for a row it does not
 * put): CR_STORE_OVERLAP with *other if another batch (by id) holds a
 * serial of b's range (b->kid, b->first .. b->last), else 0 or an error. */
int cr_store_batch_overlap(cr_store_t *st, const cr_batch_t *b,
    cr_batch_t *other) CR_NONNULL;
int cr_store_del_batch(cr_store_t *st, const char *id, size_t len) CR_NONNULL;

int cr_store_put_override(cr_store_t *st, const cr_override_t *o) CR_NONNULL;
int cr_store_del_override(cr_store_t *st, unsigned kid, uint64_t serial)
    CR_NONNULL;

/* A campaign's rule: put (a new or changed rule of an existing
 * campaign; the loader checks the campaign), delete one.  Deleting a
 * campaign deletes its rules. */
int cr_store_put_rule(cr_store_t *st, const cr_rule_t *r) CR_NONNULL;
int cr_store_del_rule(cr_store_t *st, const char *id, size_t len,
    unsigned rule) CR_NONNULL;

/*
 * The target of rule r (one of b->rules) in place of the campaign's, its
 * strings copied with alloc(), b->target_ok from the rule's check, and
 * b->rule set.  0, or -1 for memory.
 */
int cr_binding_take_rule(cr_binding_t *b, const cr_rule_t *r,
    cr_alloc_pt alloc, void *ctx);

/*
 * The GS1 links (cr_record.h): key cr_link_key(), record 'L' with the
 * seven strings.  A store created before links has none until a loader
 * opens it (then put/each work; a reader opened before sees none until it
 * is reopened).  put: as the other puts (CR_PUT_ADDED, _CHANGED, _SAME or
 * an error); del: 0 or CR_STORE_NOTFOUND.
 */
int cr_store_put_link(cr_store_t *st, const cr_link_t *l) CR_NONNULL;
int cr_store_del_link(cr_store_t *st, const cr_link_t *l) CR_NONNULL;

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
/* Every rule (id NULL), or the rules of campaign id, in rule order. */
int cr_store_each_rule(cr_store_t *st, const char *id, size_t len,
    int (*fn)(void *ctx, const cr_rule_t *r), void *ctx);
int cr_store_each_link(cr_store_t *st,
    int (*fn)(void *ctx, const cr_link_t *l), void *ctx);

/*
 * Parents (cr_parent_t, docs/loading.md "Cases and pallets"), as the GS1
 * links: a store made before them has none until a loader opens it.
 * put: an upsert of the range (p->kid, p->first .. p->last);
 * CR_STORE_OVERLAP with *other if another range overlaps it (a code has
 * one parent).  del: the range of exactly those serials, 0 or
 * CR_STORE_NOTFOUND.  get: the record of the range holding (kid, serial),
 * or CR_STORE_NOTFOUND.  each_child: the ranges whose parent is one of
 * the serials first .. last of kid, in the parents' order.  get and
 * each_parent: inside the write transaction or a read transaction of
 * their own; put, del and each_child: the writer's only.
 */
int cr_store_put_parent(cr_store_t *st, const cr_parent_t *p,
    cr_parent_t *other) CR_NONNULL;
int cr_store_del_parent(cr_store_t *st, unsigned kid, uint64_t first,
    uint64_t last) CR_NONNULL;
int cr_store_get_parent(cr_store_t *st, unsigned kid, uint64_t serial,
    cr_parent_t *p) CR_NONNULL;
int cr_store_each_parent(cr_store_t *st,
    int (*fn)(void *ctx, const cr_parent_t *p), void *ctx);
int cr_store_each_child(cr_store_t *st, unsigned kid, uint64_t first,
    uint64_t last, int (*fn)(void *ctx, const cr_parent_t *p), void *ctx);

/*
 * Reader: 1 if a range of codes is packed into (kid, serial) (a case or a
 * pallet), 0 if none is (an item, or a code of no parents file), or
 * CR_STORE_ERROR.  Uses (and keeps) the snapshot of cr_store_lookup().
 */
int cr_store_has_children(cr_store_t *st, unsigned kid, uint64_t serial)
    CR_NONNULL;

/*
 * Reader: the GS1 links of one level (gtin: a GTIN-14 or an SSCC-18,
 * NUL-terminated; and lot or ""), in key order,
 * at most max into out[], *n of them; strings copied with alloc() and
 * NUL-terminated.  Uses (and keeps) the snapshot of cr_store_lookup().
 * Returns 0 or CR_STORE_ERROR.
 */
int cr_store_links(cr_store_t *st, const char *gtin, const char *lot,
    size_t lot_len, cr_link_t *out, size_t max, size_t *n,
    cr_alloc_pt alloc, void *ctx);

#endif /* CR_STORE_H */
