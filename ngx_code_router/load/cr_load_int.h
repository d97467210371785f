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
    CR_KIND_LINK,                      /* GS1 links: cr_link.h */
    CR_KIND_RULE,                      /* campaigns' rules */
    CR_KIND_PARENT                     /* ranges into cases, pallets */
} cr_kind_e;


/* Columns, per kind; the first is the one a header starts with. */
enum {
    C_CAMPAIGN = 0, C_NAME, C_TYPE, C_URL, C_APPID, C_PATH, C_QUERY,
    C_URL_LINK, C_STARTS_AT, C_ENDS_AT, C_BEFORE_URL, C_AFTER_URL,
    C_CDELETE, C_TZ, C_OVER_URL, C_CN
};

enum {
    B_BATCH = 0, B_KID, B_FROM, B_TO, B_SCENE, B_CAMPAIGN, B_SKU, B_GTIN,
    B_LOT, B_PRODUCED, B_REGION, B_DEALER, B_ACTIVATE, B_DELETE, B_N
};

enum {
    O_CODE = 0, O_KID, O_SERIAL, O_STATE, O_CAMPAIGN, O_DELETE, O_N
};

enum {
    L_GTIN = 0, L_LOT, L_TYPE, L_HREF, L_TITLE, L_LANG, L_MEDIA, L_DELETE,
    L_N
};

enum {
    R_CAMPAIGN = 0, R_RULE, R_DEVICE, R_LANG, R_REGION, R_SPLIT,
    R_MIN_SCANS, R_MAX_SCANS, R_TYPE, R_URL, R_APPID, R_PATH, R_QUERY,
    R_URL_LINK, R_DELETE, R_N
};

enum {
    P_KID = 0, P_FROM, P_TO, P_PARENT_KID, P_PARENT_SERIAL, P_DELETE, P_N
};

/* Column names, per kind, in the order above (cr_load_rows.c;
 * cr_load_rules.c, cr_load_parents.c for theirs). */
extern const char  *cr_load_campaign_cols[C_CN];
extern const char  *cr_load_batch_cols[B_N];
extern const char  *cr_load_code_cols[O_N];
extern const char  *cr_load_link_cols[L_N];
extern const char  *cr_load_rule_cols[R_N];
extern const char  *cr_load_parent_cols[P_N];


/* Where a row came from (a file of more lines is refused: 8 bytes a
 * place keeps the sets below small). */
#define CR_LINE_LAST     UINT32_MAX

typedef struct {
    uint32_t  file;
    uint32_t  line;
} cr_loc_t;


/*
 * A set of ids seen in this run, with the row that defined each.  A run
 * of 10 M batches keeps 10 M of them, so an entry is 16 bytes and its key
 * lives in one arena (not a malloc of its own): slots index the entries,
 * which stay in the order they were added.
 */
typedef struct {
    cr_loc_t   loc;
    uint64_t   off:40;                 /* its key, at keys + off */
    uint64_t   len:23;
    uint64_t   bad:1;                  /* that row had errors */
} cr_hent_t;

typedef struct {
    uint32_t   *slot;                  /* entry index + 1; 0: empty */
    size_t      cap;                   /* slots: a power of two */
    cr_hent_t  *e;
    size_t      n;
    size_t      ecap;
    char       *keys;
    size_t      klen;
    size_t      kcap;
} cr_hash_t;


/* A reference to check at the end of the run. */
typedef struct {
    cr_loc_t   loc;
    char       what;                   /* 'b' batch, 'o' override, 'd' del */
    char       id[CR_ID_MAX + 1];
} cr_ref_t;


/* A parents row put, to check when the run ends. */
typedef struct {
    cr_loc_t     loc;
    cr_parent_t  p;
} cr_pend_t;


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
    cr_hash_t     rules;               /* rule keys (cr_rule_key) */
    cr_hash_t     rule_camps;          /* campaigns given rules */
    cr_loc_t      rule_prev;           /* the last rule row: its place, */
    unsigned      rule_prev_num;       /* rule and campaign */
    char          rule_prev_id[CR_ID_MAX + 1];
    cr_hash_t     parents;             /* ranges given parents: kid|last */
    cr_pend_t    *pend;                /* and their rows, to check */
    size_t        npend;
    size_t        cappend;
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
/* The entry of k in h (added if add and absent), or NULL (absent, or no
 * memory).  A pointer is good until the next add. */
cr_hent_t *cr_load_hash_get(cr_hash_t *h, const char *k, size_t n, int add);
/* The key of e, an entry of h (e->len bytes, not terminated). */
#define cr_load_hash_key(h, e)  ((h)->keys + (e)->off)

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

/* The target columns of a campaign or rule (type; url, appid, path,
 * query, url_link at s[0..5)), checked alike; 1 if one was wrong
 * (reported). */
int cr_load_target(cr_load_t *l, unsigned type, const cr_str_t *s);

/* cr_load_rules.c: whether a header row starting with "campaign" is a
 * rules file's (it has a "rule" column); a rules row; the rules of the
 * campaigns the run gave rules, checked as a whole at the end. */
int cr_load_rules_header(const cr_row_t *row, int n);
int cr_load_row_rule(cr_load_t *l, cr_row_t *row);
int cr_load_rules_check(cr_load_t *l);

/* cr_load_parents.c: whether a header row starting with "kid" is a
 * parents file's (it has a "parent_kid" column); a parents row; the rows
 * put, checked against the whole run at its end (bound, no cycle, depth). */
int cr_load_parents_header(const cr_row_t *row, int n);
int cr_load_row_parent(cr_load_t *l, cr_row_t *row);
int cr_load_parents_check(cr_load_t *l);

/* cr_load_rows.c, for cr_load_rules.c: a column of the row ("" if the
 * header lacks it); the delete column (0, 1, or -1: reported); a failed
 * check reported (1) or none (0); a whole number up to max (1: bad,
 * reported); the first definition of id in h (1), a second (0, reported)
 * or no memory (-1); a put's result counted. */
cr_str_t cr_load_col(cr_load_t *l, cr_row_t *row, int c);
int cr_load_is_delete(cr_load_t *l, cr_row_t *row, int c);
int cr_load_check(cr_load_t *l, const char *col, cr_str_t v,
    const char *reason);
int cr_load_num(cr_load_t *l, cr_str_t v, const char *col, uint64_t max,
    uint64_t *out);
int cr_load_first_definition(cr_load_t *l, cr_hash_t *h, const char *what,
    cr_str_t id);
void cr_load_count(cr_load_count_t *c, int put);

#endif /* CR_LOAD_INT_H */
