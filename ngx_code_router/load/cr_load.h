/*
 * cr_load: the loader's core.  CSV files in, validated rows applied to a
 * store's write transaction; every bad row reported as "FILE:LINE: ...".
 *
 * Pure C: the CLI's "load" command and the fuzzers use it.  The caller owns
 * the transaction (cr_store_begin/commit/abort): cr_load_files() only
 * writes into it, so "all or nothing" is the caller committing only when
 * the run had no error.  docs/loading.md documents the file format.
 */

#ifndef CR_LOAD_H
#define CR_LOAD_H

#include <stdint.h>
#include <stdio.h>

#include "cr_codec.h"
#include "cr_store.h"


#define CR_LOAD_OK       0
#define CR_LOAD_INVALID  1             /* rows were wrong; see messages */
#define CR_LOAD_FULL     CR_STORE_FULL /* grow the map and run again */
#define CR_LOAD_FAILED   -1            /* I/O or store failure: fatal */


typedef struct {
    uint64_t  added;
    uint64_t  changed;
    uint64_t  same;
    uint64_t  removed;
} cr_load_count_t;


typedef struct cr_load_state_s  cr_load_state_t;


/* How the files are read (docs/loading.md); all zero: the defaults. */
typedef struct {
    const char  *encoding;             /* NULL or "utf-8", "gbk", "gb18030" */
    int          has_tz;               /* tz below applies (--tz) */
    int16_t      tz;                   /* zone of zone-less times, minutes */
} cr_load_opts_t;

typedef struct {
    cr_store_t          *st;
    const cr_keyring_t  *ring;         /* NULL: a code column is an error */
    unsigned             max_messages; /* kept for printing */
    cr_load_opts_t       opts;

    unsigned long        errors;       /* all of them, kept or not */
    cr_load_count_t      campaigns;
    cr_load_count_t      batches;
    cr_load_count_t      codes;
    cr_load_count_t      links;        /* GS1 links (cr_link.h) */
    cr_load_count_t      rules;        /* campaigns' rules */
    cr_load_count_t      parents;      /* ranges into cases, pallets */
    uint64_t             rows;
    char                 fatal[1024];  /* with CR_LOAD_FAILED / FULL */

    cr_load_state_t     *state;
} cr_load_t;


/* Prepares a run (opts NULL: the defaults); returns 0 or -1 (out of
 * memory, or an encoding iconv does not know). */
int cr_load_init(cr_load_t *l, cr_store_t *st, const cr_keyring_t *ring,
    unsigned max_messages, const cr_load_opts_t *opts);

/* The encodings --encoding takes: 1 if name is one of them. */
int cr_load_encoding_ok(const char *name);

/*
 * Reads the files in order and applies their rows to the store's open
 * write transaction, then checks references across the whole run
 * (batches and overrides name existing campaigns; a deleted campaign is
 * used by nothing; parents and children are bound, without cycles, at
 * most CR_PARENT_LEVELS deep).  Returns CR_LOAD_OK, CR_LOAD_INVALID,
 * CR_LOAD_FULL or CR_LOAD_FAILED.
 */
int cr_load_files(cr_load_t *l, char *const *files, int n);

/*
 * The whole run as one write transaction: begins it (waiting for another
 * writer), loads, and commits only if every row was good, something
 * changed and dry is 0.  A full map is grown and the run redone, up to
 * 8 times; *grown counts the redos.  Returns CR_LOAD_OK, CR_LOAD_INVALID
 * or CR_LOAD_FAILED (message in l->fatal).  Re-initialises l each try.
 */
int cr_load_transact(cr_load_t *l, cr_store_t *st, const cr_keyring_t *ring,
    unsigned max_messages, const cr_load_opts_t *opts, char *const *files,
    int n, int dry, int64_t now, unsigned *grown);

/* Rows added, changed or removed by the run. */
uint64_t cr_load_changes(const cr_load_t *l);

/* Prints the kept messages, then "... and N more" if some were not kept. */
void cr_load_print_errors(cr_load_t *l, FILE *f);

void cr_load_free(cr_load_t *l);

/*
 * Splits one CSV line (RFC 4180 quoting, no line breaks inside fields) in
 * place into at most max fields.  Returns the number of fields, or -1 with
 * a reason in *err.  Exposed for the fuzzers.
 */
int cr_csv_split(char *s, size_t n, char **f, size_t *fl, int max,
    const char **err);

#endif /* CR_LOAD_H */
