/*
 * cr_lmdb: what the two LMDB stores (cr_store, the bindings; cr_scans,
 * the scan counts) set alike.
 */

#ifndef CR_LMDB_H
#define CR_LMDB_H

/* Reader slots of an environment: every nginx worker of every generation
 * still running (reloads overlap) and every loader or CLI reader holds
 * one.  LMDB's default is 126. */
#define CR_LMDB_MAXREADERS  1022

#endif /* CR_LMDB_H */
