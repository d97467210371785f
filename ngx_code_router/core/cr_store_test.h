/*
 * cr_store_test: the store's knobs for the unit tests alone, so that they
 * can compare a reader's answers with and without its decoded copy.
 * Only the unit tests and the store files that implement the knobs
 * (cr_store.c, cr_store_read.c) include this, not cr_store_int.h: the
 * other store files have no business with them.
 */

#ifndef CR_STORE_TEST_H
#define CR_STORE_TEST_H

#include "cr_store.h"


/* cr_store_open() flag for a reader: no copy of the campaigns, no batch
 * pack, no override filter (every lookup searches LMDB). */
#define CR_STORE_NOCACHE     0x08

/* What lookups of the current snapshot use instead of LMDB searches: the
 * copy of the campaigns and rules (not for a big store), the override
 * filter (cr_filter.h; not if another tool wrote the overrides), the
 * batch pack (cr_pack.h; likewise for the batches).  0 for a writer or
 * with CR_STORE_NOCACHE. */
#define CR_CACHED_COPY     0x01
#define CR_CACHED_FILTER   0x02
#define CR_CACHED_BATCHES  0x04

int cr_store_cached(cr_store_t *st);

/* Lookups since the open that the batch pack was on for but could not
 * answer (an unsound chunk): searched in LMDB instead. */
uint64_t cr_store_pack_missed(cr_store_t *st);

#endif /* CR_STORE_TEST_H */
