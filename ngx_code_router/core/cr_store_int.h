/*
 * cr_store_int: the store's private state, shared by cr_store.c,
 * cr_store_read.c and cr_store_write.c and by nothing else.
 */

#ifndef CR_STORE_INT_H
#define CR_STORE_INT_H

#include <lmdb.h>
#include <string.h>

#include "cr_filter.h"
#include "cr_pack.h"
#include "cr_record_int.h"
#include "cr_store.h"


#define CR_META_MAGIC   "CRSTORE\0"
#define CR_META_SIZE    64

/* Below this, a failed write is put down to a full file system. */
#define CR_STORE_LOW_SPACE  (1u << 20)

/* A reader copies the campaigns and rules of a store this small, again
 * after every commit; the batches it finds in the batch pack (cr_pack.h),
 * in the map: no copy. */
#define CR_CACHE_MAX_RECORDS  65536
#define CR_CACHE_MAX_BYTES    (32u << 20)

/* A reader copies the parents' ranges of a store of at most this many
 * (once per commit, in every worker; more are searched in LMDB). */
#define CR_CACHE_MAX_PARENTS  65536

/* The override filter's header record, in the meta database
 * (cr_filter.h), and its chunks': "ofilter." and the chunk's number, 4
 * bytes big-endian (so a cursor meets them in order). */
#define CR_FILTER_KEY         "ofilter"
#define CR_FILTER_CHUNK_KEY   (sizeof(CR_FILTER_KEY) + 4)

/* The batch pack's directory record and its chunks', likewise. */
#define CR_PACK_KEY           "bpack"
#define CR_PACK_CHUNK_KEY     (sizeof(CR_PACK_KEY) + 4)

/* prefix "name." (plen: sizeof("name")) and i, big-endian. */
static inline void
cr_chunk_key(uint8_t *k, const char *prefix, size_t plen, uint32_t i)
{
    memcpy(k, prefix, plen - 1);
    k[plen - 1] = '.';
    k[plen] = (uint8_t) (i >> 24);
    k[plen + 1] = (uint8_t) (i >> 16);
    k[plen + 2] = (uint8_t) (i >> 8);
    k[plen + 3] = (uint8_t) i;
}

static inline void
cr_filter_chunk_key(uint8_t *k, uint32_t i)
{
    cr_chunk_key(k, CR_FILTER_KEY, sizeof(CR_FILTER_KEY), i);
}

static inline void
cr_pack_chunk_key(uint8_t *k, uint32_t i)
{
    cr_chunk_key(k, CR_PACK_KEY, sizeof(CR_PACK_KEY), i);
}


typedef struct {
    uint64_t  generation;
    int64_t   last_commit;
    uint64_t  campaigns;
    uint64_t  batches;
    uint64_t  codes;
} cr_meta_t;


/*
 * A reader's copy of the campaigns of one snapshot, decoded once, and its
 * batch pack and override filter, pointers into the map: the per-code
 * overrides stay in LMDB (there may be billions), the ranges and
 * campaigns a scan needs are a binary search away.
 */
typedef struct {
    uint64_t     key;                  /* kid(8) | last serial(40) */
    int          bad;                  /* the record does not decode */
    cr_parent_t  p;
} cr_cparent_t;

typedef struct {
    cr_str_t       id;                 /* the key */
    int            bad;                /* it or one of its rules */
    int            target_ok;          /* passed st->check */
    size_t         rule0;              /* its rules: rule[rule0..+nrules) */
    size_t         nrules;
    cr_campaign_t  c;
} cr_ccamp_t;

typedef struct {
    size_t        txnid;               /* of the snapshot; 0: none */
    int           on;                  /* campaigns and rules copied (0:
                                        * read LMDB instead) */
    uint8_t      *arena;               /* keys and records, copied */
    cr_ccamp_t   *camp;                /* in key order */
    size_t        ncamp;
    cr_rule_t    *rule;                /* in key order: by campaign */
    size_t        nrule;
    int           no_codes;            /* the snapshot has no override */
    int           no_parents;          /* nor a parent (cr_cache_filter) */
    cr_cparent_t *parent;              /* the parents, in key order, when */
    size_t        nparent;             /* at most CR_CACHE_MAX_PARENTS */
    int           parents_on;
    int           filter_checked;      /* filter below looked for */
    const uint8_t **filter;            /* its override filter's chunks, in
                                        * the map: until the txn ends */
    size_t        filter_cap;          /* pointers filter has room for */
    unsigned      filter_lg;
    int           filter_on;           /* filter is the snapshot's */
    int           pack_checked;        /* pack below looked for */
    int           pack_on;             /* pack is the snapshot's */
    cr_pack_dir_t pack;                /* its directory, in the map */
    const uint8_t **pack_chunk;        /* each chunk, found on its first
                                        * use; cr_pack_bad: not sane */
    size_t       *pack_size;           /* and its size */
    size_t        pack_cap;            /* pointers pack_chunk has room
                                        * for */
} cr_cache_t;


struct cr_store_s {
    MDB_env    *env;
    MDB_dbi     meta_dbi;
    MDB_dbi     camp_dbi;
    MDB_dbi     batch_dbi;
    MDB_dbi     batch_id_dbi;
    MDB_dbi     code_dbi;
    MDB_dbi     link_dbi;              /* GS1 links (cr_record.h) */
    MDB_dbi     rule_dbi;              /* campaigns' rules */
    MDB_dbi     parent_dbi;            /* ranges' parents (cr_parent_t) */
    MDB_dbi     child_dbi;             /* their index by parent */
    int         has_links;             /* 0: a store older than them */
    int         has_parents;           /* 0: a store older than them */
    MDB_txn    *rtxn;                  /* reader: see cr_rtxn_begin() */
    MDB_cursor *rcur;
    MDB_cursor *pcur;                  /* reader: on parents, kept as rcur */
    int         held;                  /* rtxn is live */
    int         nocache;
    cr_cache_t  cache;
    uint64_t    pack_missed;           /* lookups the pack could not
                                        * answer (cr_store_test.h) */
    const char *(*check)(const cr_campaign_t *c);
    uint64_t   *fadd;                  /* writer: override keys added */
    size_t      nfadd;
    size_t      capfadd;
    int         fdirty;                /* writer: overrides changed */
    int         fstale;                /* writer: fadd is incomplete */
    uint64_t    froom;                 /* writer: keys the filter takes
                                        * before it must be rebuilt */
    MDB_stat    fstat0;                /* writer: codes at begin */
    uint64_t   *padd;                  /* writer: batch keys put or
                                        * deleted */
    size_t      npadd;
    size_t      cappadd;
    int         pstale;                /* writer: padd is incomplete */
    MDB_stat    pstat0;                /* writer: batches at begin */
    MDB_txn    *wtxn;
    cr_meta_t   meta;                  /* of the write transaction */
    size_t      gen_txnid;             /* reader: generation cached by */
    uint64_t    gen;                   /* the txn id it was read in */
    int         rdonly;
    uint64_t    dev;
    uint64_t    ino;
    uint8_t    *buf;                   /* writer: a record, CR_REC_MAX */
    char        path[4096];
    char        err[512];
};


/* cr_store.c: errors, transactions, the meta record. */
/* Sets the message of cr_store_error(); returns CR_STORE_ERROR. */
int cr_fail(cr_store_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An LMDB code as ours (CR_STORE_NOTFOUND, _FULL, _ERROR with a message
 * "what: LMDB's"). */
int cr_mdb_rc(cr_store_t *st, int rc, const char *what);
/* mdb_txn_begin() adopting a map another process grew; an LMDB code. */
int cr_txn_begin(cr_store_t *st, unsigned flags, MDB_txn **txn);
/* The meta record of txn into m (a wrong magic or schema is an error);
 * st->meta into the write transaction.  0 or CR_STORE_ERROR / _FULL. */
int cr_meta_read(cr_store_t *st, MDB_txn *txn, cr_meta_t *m);
int cr_meta_write(cr_store_t *st);

/* cr_store_write.c: the record in st->buf of n bytes as a value (an
 * error if it is over CR_REC_MAX); key -> val put, CR_PUT_ADDED,
 * _CHANGED or _SAME (nothing written), count raised if added. */
int cr_rec_value(cr_store_t *st, size_t n, MDB_val *v);
int cr_put_record(cr_store_t *st, MDB_dbi dbi, MDB_val *key, MDB_val *val,
    uint64_t *count);
/* Deletes the meta records "prefix.<n>" (cr_chunk_key) of n >= from,
 * and with header the record "prefix"; an LMDB code.  The order of two
 * u64 (for qsort). */
int cr_chunks_del(cr_store_t *st, const char *prefix, size_t plen,
    size_t from, int header);
int cr_cmp_u64(const void *a, const void *b);
/* Appends v to the list *a of *n (room for *cap, doubled as need be): 0,
 * or -1 for no memory (the list unchanged). */
int cr_keys_add(uint64_t **a, size_t *n, size_t *cap, uint64_t v);

/* cr_pack_write.c: a batch key put or deleted, noted for the commit's
 * pack update; the update (0 or an error). */
void cr_pack_note(cr_store_t *st, const uint8_t *key);
int cr_pack_write(cr_store_t *st);

/* cr_store_read.c: the reader's snapshot (st->rtxn, st->rcur), begun or
 * kept; and its end.  The copy's memory. */
int cr_rtxn_begin(cr_store_t *st);
void cr_rtxn_end(cr_store_t *st);
void cr_cache_free(cr_cache_t *c);

/* cr_store_parents.c: the chain of (kid, serial) into b (the reader's
 * snapshot); the parents record of the range holding (kid, serial) in
 * txn: 0, CR_STORE_NOTFOUND or CR_STORE_ERROR. */
int cr_parents_read(cr_store_t *st, unsigned kid, uint64_t serial,
    cr_binding_t *b);
int cr_parent_find(cr_store_t *st, MDB_txn *txn, unsigned kid,
    uint64_t serial, cr_parent_t *p);
/* The copy's parents (cr_cache_build), when they are few. */
void cr_cache_parents(cr_store_t *st);

/* cr_store_rules.c: the copy's rules (after its campaigns), and the
 * rules of b's campaign from LMDB, copied with alloc (no copy). */
int cr_cache_rules(cr_store_t *st, uint8_t *p);
int cr_rules_read(cr_store_t *st, cr_binding_t *b, cr_alloc_pt alloc,
    void *ctx);
/* Deletes every rule of campaign id (cr_store_del_campaign). */
int cr_rules_del_campaign(cr_store_t *st, const char *id, size_t len);


/*
 * What an override filter (or batch pack) is built for: the shape of the
 * codes (batches) table.  A
 * write to it by anything but cr_store changes the shape (and readers then
 * search the B-tree for every code), unless it adds and deletes keys to the
 * same counts: docs/loading.md says to write with the loader only.
 */
static inline void
cr_filter_stamp(const MDB_stat *ms, uint64_t *stamp)
{
    stamp[0] = ms->ms_entries;
    stamp[1] = ms->ms_depth;
    stamp[2] = ms->ms_branch_pages;
    stamp[3] = ms->ms_leaf_pages;
    stamp[4] = ms->ms_overflow_pages;
}


#endif /* CR_STORE_INT_H */
