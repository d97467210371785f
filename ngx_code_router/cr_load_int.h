/*
 * cr_load_int: the loader's private state, shared by cr_load.c (the run,
 * messages, references), cr_load_csv.c (reading files) and
 * cr_load_rows.c (the rules of each row); nothing else includes it.
 */

#ifndef CR_LOAD_INT_H
#define CR_LOAD_INT_H

#include <iconv.h>
#include <stdint.h>

#include "cr_load.h"


#define CR_CSV_MAXF      64
#define CR_LINE_MAX      65536
#define CR_CONV_MAX      (3 * (CR_LINE_MAX + 4))
#define CR_PENDING_MAX   100000


typedef enum {
    CR_KIND_NONE = 0,
    CR_KIND_CAMPAIGN,
    CR_KIND_BATCH,
    CR_KIND_CODE,
    CR_KIND_LINK                       /* GS1 links: cr_link.h */
} cr_kind_e;


/* Columns, per kind; the first is the one a header starts with. */
enum {
    C_CAMPAIGN = 0, C_NAME, C_TYPE, C_URL, C_APPID, C_PATH, C_QUERY,
    C_URL_LINK, C_STARTS_AT, C_ENDS_AT, C_BEFORE_URL, C_AFTER_URL,
    C_CDELETE, C_TZ, C_CN
};

enum {
    B_BATCH = 0, B_KID, B_FROM, B_TO, B_SCENE, B_CAMPAIGN, B_SKU, B_GTIN,
    B_LOT, B_PRODUCED, B_REGION, B_DELETE, B_N
};

enum {
    O_CODE = 0, O_KID, O_SERIAL, O_STATE, O_CAMPAIGN, O_DELETE, O_N
};

enum {
    L_GTIN = 0, L_LOT, L_TYPE, L_HREF, L_TITLE, L_LANG, L_MEDIA, L_DELETE,
    L_N
};

/* Column names, per kind, in the order above (cr_load_rows.c). */
extern const char  *cr_load_campaign_cols[C_CN];
extern const char  *cr_load_batch_cols[B_N];
extern const char  *cr_load_code_cols[O_N];
extern const char  *cr_load_link_cols[L_N];


/* Where a row came from. */
typedef struct {
    uint32_t  file;
    uint64_t  line;
} cr_loc_t;


/* A set of ids seen in this run, with the row that defined each. */
typedef struct {
    char      *key;
    size_t     len;
    cr_loc_t   loc;
    unsigned   bad:1;                  /* that row had errors */
} cr_hent_t;

typedef struct {
    cr_hent_t  *t;
    size_t      cap;
    size_t      n;
} cr_hash_t;


/* A reference to check at the end of the run. */
typedef struct {
    cr_loc_t   loc;
    char       what;                   /* 'b' batch, 'o' override, 'd' del */
    char       id[CR_ID_MAX + 1];
} cr_ref_t;


/* A kept message, sorted by place before printing. */
typedef struct {
    cr_loc_t   loc;
    unsigned   seq;
    char      *text;
} cr_msg_t;


struct cr_load_state_s {
    char *const  *files;
    int           nfiles;
    cr_msg_t     *msgs;
    unsigned      nmsgs;
    cr_hash_t     campaigns;           /* ids defined in this run */
    cr_hash_t     batches;
    cr_hash_t     links;               /* link keys (cr_link_key) */
    cr_ref_t     *refs;                /* unresolved, and deletions */
    size_t        nrefs;
    size_t        caprefs;

    /* --encoding other than UTF-8: the converter, and a line's UTF-8. */
    iconv_t       cd;
    char         *conv;

    /* The section being read. */
    cr_kind_e     kind;
    int           col[CR_CSV_MAXF];    /* column -> field index, or -1 */
    const char   *fname[CR_CSV_MAXF];  /* field index -> column name */
    int           nfields;
    cr_loc_t      loc;
    unsigned      bom:1;               /* the file began with a UTF-8 BOM */

    /*
     * The row being read: every error of a row is reported (so one run
     * shows all that is wrong), and a row with any is not applied.
     * row_errs counts its messages (cr_load_err); enc_bad marks the
     * fields whose encoding was reported, whose other checks stay quiet.
     */
    unsigned      row_errs;
    uint64_t      enc_bad;             /* bit i: field i */
};


typedef struct {
    char    *f[CR_CSV_MAXF];
    size_t   fl[CR_CSV_MAXF];
} cr_row_t;


/* cr_load.c: a bad row's message at loc (kept, counted); a fatal error
 * (returns CR_LOAD_FAILED); a store call's failure (CR_LOAD_FULL for a
 * full map, else fatal). */
void cr_load_err(cr_load_t *l, const cr_loc_t *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cr_load_fatal(cr_load_t *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cr_load_store_fail(cr_load_t *l, int rc);
/* A reference to check when the run ends ('b' batch, 'o' override, 'd' a
 * deleted campaign); 0 or CR_LOAD_FAILED. */
int cr_load_add_ref(cr_load_t *l, char what, const cr_str_t *id);
/* The entry of k in h (added if add and absent), or NULL. */
cr_hent_t *cr_load_hash_get(cr_hash_t *h, const char *k, size_t n, int add);

/* cr_load_csv.c: reads file fidx of the run, row by row. */
int cr_load_file(cr_load_t *l, uint32_t fidx);

/* 1 if the row being read has had no error (the reader's checks
 * included): a kind's rules write a row only then. */
#define cr_load_row_ok(l)  ((l)->state->row_errs == 0)

/* cr_load_rows.c: one row of each kind checked and applied to the store;
 * 0, or CR_LOAD_FAILED / CR_LOAD_FULL (a bad row is reported, not
 * returned).  Each checks every column, reports every error, and writes
 * only if cr_load_row_ok(). */
int cr_load_row_campaign(cr_load_t *l, cr_row_t *row);
int cr_load_row_batch(cr_load_t *l, cr_row_t *row);
int cr_load_row_code(cr_load_t *l, cr_row_t *row);
int cr_load_row_link(cr_load_t *l, cr_row_t *row);

#endif /* CR_LOAD_INT_H */
