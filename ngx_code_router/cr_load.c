/*
 * cr_load: see cr_load.h and docs/loading.md.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cr_link.h"
#include "cr_load.h"
#include "cr_valid.h"


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

static const char  *cr_campaign_cols[C_CN] = {
    "campaign", "name", "type", "url", "appid", "path", "query", "url_link",
    "starts_at", "ends_at", "before_url", "after_url", "delete", "tz"
};

static const char  *cr_batch_cols[B_N] = {
    "batch", "kid", "serial_from", "serial_to", "scene", "campaign", "sku",
    "gtin", "lot", "production_date", "region", "delete"
};

static const char  *cr_code_cols[O_N] = {
    "code", "kid", "serial", "state", "campaign", "delete"
};

static const char  *cr_link_cols[L_N] = {
    "gtin", "lot", "link_type", "href", "title", "lang", "type", "delete"
};


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
};


typedef struct {
    char    *f[CR_CSV_MAXF];
    size_t   fl[CR_CSV_MAXF];
} cr_row_t;


static void cr_err(cr_load_t *l, const cr_loc_t *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cr_fatal(cr_load_t *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cr_store_fail(cr_load_t *l, int rc);
static int cr_load_file(cr_load_t *l, uint32_t fidx);
static int cr_read_line(FILE *f, char *buf, size_t cap, size_t *len,
    int *over);
static int cr_header(cr_load_t *l, cr_row_t *row, int n);
static int cr_blank(cr_row_t *row, int n);
static int cr_convert(cr_load_t *l, char **line, size_t *len);
static int cr_foreign(cr_load_t *l, cr_row_t *row, int n);
static cr_str_t cr_col(cr_load_t *l, cr_row_t *row, int c);
static int cr_is_delete(cr_load_t *l, cr_row_t *row, int c);
static int cr_row_campaign(cr_load_t *l, cr_row_t *row);
static int cr_row_batch(cr_load_t *l, cr_row_t *row);
static int cr_row_code(cr_load_t *l, cr_row_t *row);
static int cr_row_link(cr_load_t *l, cr_row_t *row);
static int cr_check_refs(cr_load_t *l);
static int cr_add_ref(cr_load_t *l, char what, const cr_str_t *id);
static int cr_num(cr_load_t *l, cr_str_t v, const char *col, uint64_t max,
    uint64_t *out);
static int cr_check(cr_load_t *l, const char *col, cr_str_t v,
    const char *reason);
static cr_hent_t *cr_hash_get(cr_hash_t *h, const char *k, size_t n,
    int add);
static void cr_hash_free(cr_hash_t *h);


int
cr_load_encoding_ok(const char *name)
{
    return strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "gbk") == 0
           || strcasecmp(name, "gb18030") == 0;
}


int
cr_load_init(cr_load_t *l, cr_store_t *st, const cr_keyring_t *ring,
    unsigned max_messages, const cr_load_opts_t *opts)
{
    memset(l, 0, sizeof(cr_load_t));

    l->st = st;
    l->ring = ring;
    l->max_messages = max_messages;

    if (opts) {
        l->opts = *opts;
    }

    l->state = calloc(1, sizeof(cr_load_state_t));
    if (l->state == NULL) {
        return -1;
    }

    l->state->cd = (iconv_t) -1;

    l->state->msgs = calloc(max_messages ? max_messages : 1,
                            sizeof(cr_msg_t));
    if (l->state->msgs == NULL) {
        cr_load_free(l);
        return -1;
    }

    if (l->opts.encoding && strcasecmp(l->opts.encoding, "utf-8") != 0) {
        if (!cr_load_encoding_ok(l->opts.encoding)) {
            cr_load_free(l);
            return -1;
        }

        /* One byte in becomes at most 3 of UTF-8 (0x80 is the euro sign
         * in GBK), four bytes at most 4. */
        l->state->conv = malloc(CR_CONV_MAX);
        l->state->cd = iconv_open("UTF-8", l->opts.encoding);

        if (l->state->conv == NULL || l->state->cd == (iconv_t) -1) {
            cr_load_free(l);
            return -1;
        }
    }

    return 0;
}


void
cr_load_free(cr_load_t *l)
{
    unsigned          i;
    cr_load_state_t  *s = l->state;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < s->nmsgs; i++) {
        free(s->msgs[i].text);
    }

    if (s->cd != (iconv_t) -1) {
        iconv_close(s->cd);
    }

    free(s->conv);
    free(s->msgs);
    free(s->refs);
    cr_hash_free(&s->campaigns);
    cr_hash_free(&s->batches);
    cr_hash_free(&s->links);
    free(s);
    l->state = NULL;
}


int
cr_load_transact(cr_load_t *l, cr_store_t *st, const cr_keyring_t *ring,
    unsigned max_messages, const cr_load_opts_t *opts, char *const *files,
    int n, int dry, int64_t now, unsigned *grown)
{
    int  rc, tries;

    *grown = 0;

    for (tries = 0; ; tries++) {
        if (cr_load_init(l, st, ring, max_messages, opts) != 0) {
            return cr_fatal(l, "out of memory, or no converter from %s",
                            opts && opts->encoding ? opts->encoding
                                                   : "utf-8");
        }

        if (cr_store_begin(st) != 0) {
            return cr_store_fail(l, CR_STORE_ERROR);
        }

        rc = cr_load_files(l, files, n);

        if (rc == CR_LOAD_OK && !dry && cr_load_changes(l) != 0) {
            rc = cr_store_commit(st, now);
            if (rc != 0) {
                rc = cr_store_fail(l, rc);
            }

        } else {
            cr_store_abort(st);
        }

        if (rc != CR_LOAD_FULL) {
            return rc;
        }

        /* Nothing was written: grow the map and redo the whole run. */
        if (tries == 7) {
            return cr_fatal(l, "the store is still full after growing its "
                            "map 8 times (%s)", cr_store_error(st));
        }

        cr_load_free(l);

        if (cr_store_grow(st, 0) != 0) {
            memset(l, 0, sizeof(cr_load_t));
            return cr_fatal(l, "%s", cr_store_error(st));
        }

        (*grown)++;
    }
}


uint64_t
cr_load_changes(const cr_load_t *l)
{
    const cr_load_count_t  *c[4] = { &l->campaigns, &l->batches, &l->codes,
                                     &l->links };
    uint64_t                n;
    int                     i;

    n = 0;
    for (i = 0; i < 4; i++) {
        n += c[i]->added + c[i]->changed + c[i]->removed;
    }

    return n;
}


static int
cr_msg_cmp(const void *a, const void *b)
{
    const cr_msg_t  *x = a, *y = b;

    if (x->loc.file != y->loc.file) {
        return x->loc.file < y->loc.file ? -1 : 1;
    }

    if (x->loc.line != y->loc.line) {
        return x->loc.line < y->loc.line ? -1 : 1;
    }

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}


void
cr_load_print_errors(cr_load_t *l, FILE *f)
{
    unsigned  i;

    qsort(l->state->msgs, l->state->nmsgs, sizeof(cr_msg_t), cr_msg_cmp);

    for (i = 0; i < l->state->nmsgs; i++) {
        fprintf(f, "%s\n", l->state->msgs[i].text);
    }

    if (l->errors > l->state->nmsgs) {
        fprintf(f, "... and %lu more errors\n",
                l->errors - (unsigned long) l->state->nmsgs);
    }
}


static void
cr_err(cr_load_t *l, const cr_loc_t *loc, const char *fmt, ...)
{
    int               n;
    char              buf[1024];
    va_list           args;
    cr_load_state_t  *s = l->state;

    l->errors++;

    if (s->nmsgs >= l->max_messages) {
        return;
    }

    n = snprintf(buf, sizeof(buf), "%s:%llu: ", s->files[loc->file],
                 (unsigned long long) loc->line);
    if (n < 0 || (size_t) n >= sizeof(buf)) {
        n = 0;
    }

    va_start(args, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t) n, fmt, args);
    va_end(args);

    s->msgs[s->nmsgs].text = strdup(buf);
    if (s->msgs[s->nmsgs].text) {
        s->msgs[s->nmsgs].loc = *loc;
        s->msgs[s->nmsgs].seq = s->nmsgs;
        s->nmsgs++;
    }
}


static int
cr_fatal(cr_load_t *l, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(l->fatal, sizeof(l->fatal), fmt, args);
    va_end(args);

    return CR_LOAD_FAILED;
}


/* A store call failed: map full is retried by the caller, else fatal. */
static int
cr_store_fail(cr_load_t *l, int rc)
{
    snprintf(l->fatal, sizeof(l->fatal), "%s", cr_store_error(l->st));

    return rc == CR_STORE_FULL ? CR_LOAD_FULL : CR_LOAD_FAILED;
}


int
cr_load_files(cr_load_t *l, char *const *files, int n)
{
    int       rc;
    uint32_t  i;

    l->state->files = files;
    l->state->nfiles = n;

    for (i = 0; i < (uint32_t) n; i++) {
        rc = cr_load_file(l, i);
        if (rc != CR_LOAD_OK) {
            return rc;
        }
    }

    rc = cr_check_refs(l);
    if (rc != CR_LOAD_OK) {
        return rc;
    }

    return l->errors ? CR_LOAD_INVALID : CR_LOAD_OK;
}


static int
cr_load_file(cr_load_t *l, uint32_t fidx)
{
    int               nf, rc, skip, blank_before, over;
    char             *line, *text;
    size_t            len;
    FILE             *f;
    cr_row_t          row;
    const char       *why;
    cr_load_state_t  *s = l->state;

    f = fopen(s->files[fidx], "r");
    if (f == NULL) {
        return cr_fatal(l, "%s: cannot open: %s", s->files[fidx],
                        strerror(errno));
    }

    /* The longest line kept, with a byte order mark and a CR: the rest of
     * a longer one is read and dropped, never held. */
    line = malloc(CR_LINE_MAX + 4);
    if (line == NULL) {
        fclose(f);
        return cr_fatal(l, "out of memory");
    }

    rc = CR_LOAD_OK;
    skip = 0;
    blank_before = 1;

    s->kind = CR_KIND_NONE;
    s->loc.file = fidx;
    s->loc.line = 0;

    while (cr_read_line(f, line, CR_LINE_MAX + 4, &len, &over)) {
        s->loc.line++;

        if (len && line[len - 1] == '\r') {
            len--;
        }

        /* A UTF-8 byte order mark, as Excel writes it. */
        if (s->loc.line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3)
                                            == 0)
        {
            if (s->cd != (iconv_t) -1) {
                cr_err(l, &s->loc, "the file starts with a UTF-8 byte order "
                       "mark: it is UTF-8, load it without --encoding %s",
                       l->opts.encoding);
                break;
            }

            memmove(line, line + 3, len - 3);
            len -= 3;
        }

        if (over || len > CR_LINE_MAX) {
            cr_err(l, &s->loc, "line is longer than %d bytes", CR_LINE_MAX);
            continue;
        }

        text = line;

        if (s->cd != (iconv_t) -1 && cr_convert(l, &text, &len) != 0) {
            continue;
        }

        nf = cr_csv_split(text, len, row.f, row.fl, CR_CSV_MAXF, &why);

        if (nf < 0) {
            cr_err(l, &s->loc, "%s", why);
            continue;
        }

        if (cr_blank(&row, nf)) {
            blank_before = 1;
            continue;
        }

        /* After a blank line (or at the start) a header row may begin a
         * new section; elsewhere every row is data. */
        if (blank_before && (s->kind == CR_KIND_NONE || skip
                             || (row.fl[0] && cr_header(l, &row, -nf) == 0)))
        {
            blank_before = 0;
            skip = cr_header(l, &row, nf) != 0;
            continue;
        }

        blank_before = 0;

        if (skip) {
            continue;
        }

        if (nf != s->nfields) {
            cr_err(l, &s->loc, "%d fields, but the header has %d", nf,
                   s->nfields);
            continue;
        }

        l->rows++;

        if (cr_foreign(l, &row, nf)) {
            continue;
        }

        switch (s->kind) {
        case CR_KIND_CAMPAIGN:
            rc = cr_row_campaign(l, &row);
            break;
        case CR_KIND_BATCH:
            rc = cr_row_batch(l, &row);
            break;
        case CR_KIND_LINK:
            rc = cr_row_link(l, &row);
            break;
        default:
            rc = cr_row_code(l, &row);
            break;
        }

        if (rc != CR_LOAD_OK) {
            break;
        }
    }

    if (rc == CR_LOAD_OK && ferror(f)) {
        rc = cr_fatal(l, "%s: cannot read: %s", s->files[fidx],
                      strerror(errno));
    }

    if (rc == CR_LOAD_OK && s->loc.line == 0) {
        cr_err(l, &s->loc, "the file is empty (a header row is required)");
    }

    free(line);
    fclose(f);

    return rc;
}


/*
 * One line without its LF into buf: at most cap bytes kept, *over set if
 * there were more (read on to the LF and dropped).  Returns 0 at the end
 * of the file or on an error (see ferror), else 1.  A NUL byte is kept.
 */
static int
cr_read_line(FILE *f, char *buf, size_t cap, size_t *len, int *over)
{
    int     c;
    size_t  n;

    n = 0;
    *over = 0;

    while ((c = getc_unlocked(f)) != EOF) {
        if (c == '\n') {
            *len = n;
            return 1;
        }

        if (n < cap) {
            buf[n++] = (char) c;
        } else {
            *over = 1;
        }
    }

    *len = n;

    return n > 0 || *over;
}


/* The line from --encoding to UTF-8, into s->conv; reports a bad byte. */
static int
cr_convert(cr_load_t *l, char **line, size_t *len)
{
    char             *in, *out;
    size_t            inleft, outleft, rc;
    cr_load_state_t  *s = l->state;

    in = *line;
    inleft = *len;
    out = s->conv;
    outleft = CR_CONV_MAX;

    iconv(s->cd, NULL, NULL, NULL, NULL);
    rc = iconv(s->cd, &in, &inleft, &out, &outleft);

    if (rc == (size_t) -1) {
        cr_err(l, &s->loc, "byte %zu (0x%02X) is not %s text%s",
               (size_t) (in - *line) + 1, (unsigned) (uint8_t) *in,
               l->opts.encoding, errno == EILSEQ || errno == EINVAL
               ? " (if the file is UTF-8, load it without --encoding)" : "");
        return -1;
    }

    *line = s->conv;
    *len = (size_t) (out - s->conv);

    return 0;
}


/* A field with a character no product name uses: reports the first. */
static int
cr_foreign(cr_load_t *l, cr_row_t *row, int n)
{
    int               i;
    uint32_t          cp;
    cr_load_state_t  *s = l->state;

    for (i = 0; i < n; i++) {
        if (!cr_foreign_char(row->f[i], row->fl[i], &cp)) {
            continue;
        }

        cr_err(l, &s->loc, "%s: \"%.*s\" holds U+%04X, which no product "
               "name uses: if Excel saved the file as GBK (its default for "
               "Chinese), load it with --encoding gbk",
               s->fname[i] ? s->fname[i] : "?",
               (int) (row->fl[i] > 60 ? 60 : row->fl[i]), row->f[i],
               (unsigned) cp);
        return 1;
    }

    return 0;
}


static int
cr_blank(cr_row_t *row, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (row->fl[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * Reads a header row.  With n < 0 only tests whether the row (of -n
 * fields) is a valid header, quietly; else sets up the section or reports
 * why not (and returns -1: the section is skipped).
 */
static int
cr_header(cr_load_t *l, cr_row_t *row, int n)
{
    int               i, c, ncols, quiet, bad;
    cr_kind_e         kind;
    const char      **cols;
    cr_load_state_t  *s = l->state;
    int               col[CR_CSV_MAXF];
    const char       *fname[CR_CSV_MAXF];

    quiet = n < 0;
    if (quiet) {
        n = -n;
    }

#define CR_IS(i, name)                                                      \
    (row->fl[i] == strlen(name) && strncasecmp(row->f[i], name, row->fl[i]) \
                                   == 0)

    if (CR_IS(0, "campaign")) {
        kind = CR_KIND_CAMPAIGN;
        cols = cr_campaign_cols;
        ncols = C_CN;
    } else if (CR_IS(0, "batch")) {
        kind = CR_KIND_BATCH;
        cols = cr_batch_cols;
        ncols = B_N;
    } else if (CR_IS(0, "code") || CR_IS(0, "kid")) {
        kind = CR_KIND_CODE;
        cols = cr_code_cols;
        ncols = O_N;
    } else if (CR_IS(0, "gtin")) {
        kind = CR_KIND_LINK;
        cols = cr_link_cols;
        ncols = L_N;
    } else {
        if (!quiet) {
            cr_err(l, &s->loc, "unknown kind of file: the header row must "
                   "start with campaign, batch, code, kid or gtin (found "
                   "\"%.*s\")",
                   (int) (row->fl[0] > 40 ? 40 : row->fl[0]), row->f[0]);
        }
        return -1;
    }

    for (c = 0; c < ncols; c++) {
        col[c] = -1;
    }

    for (i = 0; i < n; i++) {
        fname[i] = NULL;
    }

    bad = 0;

    for (i = 0; i < n; i++) {
        for (c = 0; c < ncols; c++) {
            if (CR_IS(i, cols[c])) {
                break;
            }
        }

        if (c == ncols) {
            if (!quiet) {
                cr_err(l, &s->loc, "unknown column \"%.*s\"",
                       (int) (row->fl[i] > 40 ? 40 : row->fl[i]), row->f[i]);
            }
            bad = 1;
            continue;
        }

        if (col[c] != -1) {
            if (!quiet) {
                cr_err(l, &s->loc, "column \"%s\" appears twice", cols[c]);
            }
            bad = 1;
        }

        col[c] = i;
        fname[i] = cols[c];
    }

#undef CR_IS

#define CR_NEED(c)                                                          \
    if (col[c] == -1) {                                                     \
        if (!quiet) {                                                       \
            cr_err(l, &s->loc, "the header lacks the column \"%s\"",        \
                   cols[c]);                                                \
        }                                                                   \
        bad = 1;                                                            \
    }

    switch (kind) {
    case CR_KIND_CAMPAIGN:
        CR_NEED(C_CAMPAIGN);
        CR_NEED(C_TYPE);
        break;

    case CR_KIND_BATCH:
        CR_NEED(B_BATCH);
        CR_NEED(B_KID);
        CR_NEED(B_FROM);
        CR_NEED(B_TO);
        CR_NEED(B_SCENE);
        CR_NEED(B_CAMPAIGN);
        break;

    case CR_KIND_LINK:
        CR_NEED(L_GTIN);
        CR_NEED(L_TYPE);
        CR_NEED(L_HREF);
        break;

    default:
        CR_NEED(O_STATE);

        if (col[O_CODE] == -1 && (col[O_KID] == -1 || col[O_SERIAL] == -1)) {
            if (!quiet) {
                cr_err(l, &s->loc, "the header needs a \"code\" column, or "
                       "\"kid\" and \"serial\" columns");
            }
            bad = 1;
        }

        if (col[O_CODE] != -1 && (col[O_KID] != -1 || col[O_SERIAL] != -1))
        {
            if (!quiet) {
                cr_err(l, &s->loc, "give either a \"code\" column or "
                       "\"kid\" and \"serial\" columns, not both");
            }
            bad = 1;
        }
        break;
    }

#undef CR_NEED

    if (bad) {
        return -1;
    }

    if (!quiet) {
        s->kind = kind;
        s->nfields = n;
        memcpy(s->col, col, sizeof(col));
        memcpy(s->fname, fname, sizeof(fname));
    }

    return 0;
}


int
cr_csv_split(char *s, size_t n, char **f, size_t *fl, int max,
    const char **err)
{
    int      nf;
    char    *out;
    size_t   i;

    nf = 0;
    i = 0;

    for ( ;; ) {
        if (nf == max) {
            *err = "more than 64 fields";
            return -1;
        }

        out = s + i;
        f[nf] = out;

        if (i < n && s[i] == '"') {
            /* Quoted: "" is a quote; the field ends at a lone quote. */
            for (i++; ; i++) {
                if (i >= n) {
                    *err = "a quoted field is not closed on its line "
                           "(values cannot hold line breaks)";
                    return -1;
                }

                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        *out++ = '"';
                        i++;
                        continue;
                    }
                    i++;
                    break;
                }

                *out++ = s[i];
            }

            if (i < n && s[i] != ',') {
                *err = "text after the closing quote of a field";
                return -1;
            }

        } else {
            for ( ; i < n && s[i] != ','; i++) {
                if (s[i] == '"') {
                    *err = "a quote inside an unquoted field (quote the "
                           "whole field and double the quote)";
                    return -1;
                }
                *out++ = s[i];
            }
        }

        fl[nf] = (size_t) (out - f[nf]);
        nf++;

        if (i >= n) {
            return nf;
        }

        i++;    /* the comma */
    }
}


static cr_str_t
cr_col(cr_load_t *l, cr_row_t *row, int c)
{
    int       i;
    cr_str_t  v;

    i = l->state->col[c];

    if (i < 0) {
        v.data = "";
        v.len = 0;
    } else {
        v.data = row->f[i];
        v.len = row->fl[i];
    }

    return v;
}


/* The delete column: empty (upsert) or "yes" (delete); else an error. */
static int
cr_is_delete(cr_load_t *l, cr_row_t *row, int c)
{
    cr_str_t  v;

    v = cr_col(l, row, c);

    if (v.len == 0) {
        return 0;
    }

    if (v.len == 3 && strncasecmp(v.data, "yes", 3) == 0) {
        return 1;
    }

    cr_err(l, &l->state->loc, "delete: \"%.*s\" must be empty or \"yes\"",
           (int) (v.len > 20 ? 20 : v.len), v.data);

    return -1;
}


/* Reports a failed check; returns 1 if it failed. */
static int
cr_check(cr_load_t *l, const char *col, cr_str_t v, const char *reason)
{
    if (reason == NULL) {
        return 0;
    }

    if (v.len > 60) {
        cr_err(l, &l->state->loc, "%s: \"%.60s...\" %s", col, v.data, reason);
    } else {
        cr_err(l, &l->state->loc, "%s: \"%.*s\" %s", col, (int) v.len, v.data,
               reason);
    }

    return 1;
}


static int
cr_num(cr_load_t *l, cr_str_t v, const char *col, uint64_t max,
    uint64_t *out)
{
    size_t    i;
    uint64_t  r;

    r = 0;

    for (i = 0; i < v.len; i++) {
        if (v.data[i] < '0' || v.data[i] > '9'
            || r > (max - (uint64_t) (v.data[i] - '0')) / 10)
        {
            break;
        }
        r = r * 10 + (uint64_t) (v.data[i] - '0');
    }

    if (v.len == 0 || i < v.len || v.len > 20) {
        cr_err(l, &l->state->loc, "%s: \"%.*s\" must be a whole number from "
               "0 to %llu", col, (int) (v.len > 30 ? 30 : v.len), v.data,
               (unsigned long long) max);
        return 1;
    }

    *out = r;

    return 0;
}


/* Records the row defining id; reports a second definition in this run. */
static int
cr_first_definition(cr_load_t *l, cr_hash_t *h, const char *what,
    cr_str_t id)
{
    cr_hent_t  *e;

    e = cr_hash_get(h, id.data, id.len, 0);

    if (e != NULL) {
        cr_err(l, &l->state->loc, "%s \"%.*s\" is also defined at %s:%llu "
               "(one row per %s and run)", what, (int) id.len, id.data,
               l->state->files[e->loc.file],
               (unsigned long long) e->loc.line, what);
        return 0;
    }

    e = cr_hash_get(h, id.data, id.len, 1);
    if (e == NULL) {
        return -1;
    }

    e->loc = l->state->loc;

    return 1;
}


static void
cr_count(cr_load_count_t *c, int put)
{
    switch (put) {
    case CR_PUT_ADDED:
        c->added++;
        break;
    case CR_PUT_CHANGED:
        c->changed++;
        break;
    default:
        c->same++;
        break;
    }
}


static int
cr_row_campaign(cr_load_t *l, cr_row_t *row)
{
    int            del, bad, rc, i, dflt;
    int16_t        tz;
    cr_str_t       v;
    cr_campaign_t  c;

    static const int  str_col[CR_CAMP_NSTR] = {
        C_CAMPAIGN, C_NAME, C_URL, C_APPID, C_PATH, C_QUERY, C_URL_LINK,
        C_BEFORE_URL, C_AFTER_URL
    };

    memset(&c, 0, sizeof(cr_campaign_t));

    for (i = 0; i < CR_CAMP_NSTR; i++) {
        c.s[i] = cr_col(l, row, str_col[i]);
    }

    bad = cr_check(l, "campaign", c.s[CR_CAMP_ID],
                   cr_valid_id(c.s[CR_CAMP_ID].data, c.s[CR_CAMP_ID].len));

    del = cr_is_delete(l, row, C_CDELETE);

    if (bad || del < 0) {
        return CR_LOAD_OK;
    }

    if (cr_first_definition(l, &l->state->campaigns, "campaign",
                            c.s[CR_CAMP_ID])
        <= 0)
    {
        return CR_LOAD_OK;
    }

    if (del) {
        rc = cr_store_del_campaign(l->st, c.s[CR_CAMP_ID].data,
                                   c.s[CR_CAMP_ID].len);

        if (rc == CR_STORE_NOTFOUND) {
            cr_err(l, &l->state->loc, "campaign \"%.*s\" cannot be deleted: "
                   "it does not exist", (int) c.s[CR_CAMP_ID].len,
                   c.s[CR_CAMP_ID].data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_store_fail(l, rc);
        }

        l->campaigns.removed++;

        return cr_add_ref(l, 'd', &c.s[CR_CAMP_ID]);
    }

    v = cr_col(l, row, C_TYPE);
    c.type = (uint8_t) cr_target_parse(v.data, v.len);
    if (c.type == 0) {
        bad |= cr_check(l, "type", v, "must be miniprogram, "
                        "official_account or h5");
    }

    bad |= cr_check(l, "name", c.s[CR_CAMP_NAME],
                    cr_valid_text(c.s[CR_CAMP_NAME].data,
                                  c.s[CR_CAMP_NAME].len, CR_NAME_MAX));

    if (c.type == CR_TARGET_MINIPROGRAM) {
        v = c.s[CR_CAMP_APPID];
        bad |= cr_check(l, "appid", v, v.len ? cr_valid_appid(v.data, v.len)
                        : "is required for a miniprogram campaign");
        v = c.s[CR_CAMP_PATH];
        bad |= cr_check(l, "path", v, cr_valid_mp_path(v.data, v.len));
        v = c.s[CR_CAMP_QUERY];
        bad |= cr_check(l, "query", v, cr_valid_mp_query(v.data, v.len));
        v = c.s[CR_CAMP_URL_LINK];
        if (v.len) {
            bad |= cr_check(l, "url_link", v,
                            cr_valid_url(v.data, v.len, "https://"));
        }
        v = c.s[CR_CAMP_URL];
        if (v.len) {
            bad |= cr_check(l, "url", v, cr_valid_url(v.data, v.len,
                                                      "weixin://"));
        }

    } else if (c.type) {
        v = c.s[CR_CAMP_URL];
        bad |= cr_check(l, "url", v, v.len ? cr_valid_url(v.data, v.len,
                                                          "https://")
                        : "is required for this type");

        for (i = CR_CAMP_APPID; i <= CR_CAMP_URL_LINK; i++) {
            if (c.s[i].len) {
                cr_err(l, &l->state->loc, "%s: must be empty unless type is "
                       "miniprogram", cr_campaign_cols[str_col[i]]);
                bad = 1;
            }
        }
    }

    for (i = CR_CAMP_BEFORE_URL; i <= CR_CAMP_AFTER_URL; i++) {
        v = c.s[i];
        if (v.len) {
            bad |= cr_check(l, cr_campaign_cols[str_col[i]], v,
                            cr_valid_url(v.data, v.len, "https://"));
        }
    }

    c.starts_at = c.ends_at = CR_TIME_NONE;

    /* The zone of zone-less times: the row's tz, else --tz. */
    dflt = l->opts.has_tz ? l->opts.tz : CR_TZ_UNSET;

    v = cr_col(l, row, C_TZ);
    if (v.len) {
        if (cr_check(l, "tz", v, cr_parse_zone(v.data, v.len, &tz))) {
            bad = 1;
            dflt = 0;
        } else {
            dflt = tz;
        }
    }

    v = cr_col(l, row, C_STARTS_AT);
    if (v.len) {
        bad |= cr_check(l, "starts_at", v,
                        cr_parse_time_in(v.data, v.len, dflt, &c.starts_at,
                                         &c.starts_tz));
    }

    v = cr_col(l, row, C_ENDS_AT);
    if (v.len) {
        bad |= cr_check(l, "ends_at", v,
                        cr_parse_time_in(v.data, v.len, dflt, &c.ends_at,
                                         &c.ends_tz));
    }

    if (!bad && c.starts_at != CR_TIME_NONE && c.ends_at != CR_TIME_NONE
        && c.ends_at <= c.starts_at)
    {
        cr_err(l, &l->state->loc, "ends_at must be later than starts_at");
        bad = 1;
    }

    if (bad) {
        return CR_LOAD_OK;
    }

    rc = cr_store_put_campaign(l->st, &c);
    if (rc < 0) {
        return cr_store_fail(l, rc);
    }

    cr_count(&l->campaigns, rc);

    return CR_LOAD_OK;
}


/* A batch or override names a campaign: known now, or later in the run. */
static int
cr_need_campaign(cr_load_t *l, char what, cr_str_t id)
{
    int            rc;
    cr_campaign_t  c;

    rc = cr_store_get_campaign(l->st, id.data, id.len, &c);

    if (rc == 0) {
        return CR_LOAD_OK;
    }

    if (rc != CR_STORE_NOTFOUND) {
        return cr_store_fail(l, rc);
    }

    return cr_add_ref(l, what, &id);
}


static int
cr_row_batch(cr_load_t *l, cr_row_t *row)
{
    int         del, bad, rc, i;
    char        where[512];
    cr_str_t    v;
    uint64_t    n;
    cr_hent_t  *e;
    cr_batch_t  b, other;

    static const int  str_col[CR_BATCH_NSTR] = {
        B_BATCH, B_CAMPAIGN, B_SKU, B_GTIN, B_LOT, B_PRODUCED, B_REGION
    };

    memset(&b, 0, sizeof(cr_batch_t));

    for (i = 0; i < CR_BATCH_NSTR; i++) {
        b.s[i] = cr_col(l, row, str_col[i]);
    }

    v = b.s[CR_BATCH_ID];
    bad = cr_check(l, "batch", v, cr_valid_id(v.data, v.len));
    del = cr_is_delete(l, row, B_DELETE);

    if (bad || del < 0) {
        return CR_LOAD_OK;
    }

    if (cr_first_definition(l, &l->state->batches, "batch", v) <= 0) {
        return CR_LOAD_OK;
    }

    if (del) {
        rc = cr_store_del_batch(l->st, v.data, v.len);

        if (rc == CR_STORE_NOTFOUND) {
            cr_err(l, &l->state->loc, "batch \"%.*s\" cannot be deleted: it "
                   "does not exist", (int) v.len, v.data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_store_fail(l, rc);
        }

        l->batches.removed++;

        return CR_LOAD_OK;
    }

    bad |= cr_num(l, cr_col(l, row, B_KID), "kid", CR_KID_MAX, &n);
    b.kid = (uint8_t) n;
    bad |= cr_num(l, cr_col(l, row, B_FROM), "serial_from", CR_SERIAL_MAX,
                  &b.first);
    bad |= cr_num(l, cr_col(l, row, B_TO), "serial_to", CR_SERIAL_MAX,
                  &b.last);

    if (!bad && b.first > b.last) {
        cr_err(l, &l->state->loc, "serial_to %llu is below serial_from %llu",
               (unsigned long long) b.last, (unsigned long long) b.first);
        bad = 1;
    }

    v = cr_col(l, row, B_SCENE);
    b.scene = (uint8_t) cr_scene_parse(v.data, v.len);
    if (b.scene == 0) {
        bad |= cr_check(l, "scene", v, "must be verify, marketing, trace or "
                        "channel");
    }

    v = b.s[CR_BATCH_CAMPAIGN];
    bad |= cr_check(l, "campaign", v, cr_valid_id(v.data, v.len));

    for (i = CR_BATCH_SKU; i < CR_BATCH_NSTR; i++) {
        v = b.s[i];
        if (v.len == 0) {
            continue;
        }

        bad |= cr_check(l, cr_batch_cols[str_col[i]], v,
                        i == CR_BATCH_GTIN ? cr_valid_gtin(v.data, v.len)
                        : i == CR_BATCH_PRODUCED ? cr_valid_date(v.data, v.len)
                        : cr_valid_label(v.data, v.len, CR_LABEL_MAX));
    }

    if (bad) {
        return CR_LOAD_OK;
    }

    rc = cr_store_put_batch(l->st, &b, &other);

    if (rc == CR_STORE_OVERLAP) {
        e = cr_hash_get(&l->state->batches, other.s[CR_BATCH_ID].data,
                        other.s[CR_BATCH_ID].len, 0);

        if (e) {
            snprintf(where, sizeof(where), "defined at %s:%llu",
                     l->state->files[e->loc.file],
                     (unsigned long long) e->loc.line);
        } else {
            snprintf(where, sizeof(where), "already in the store");
        }

        cr_err(l, &l->state->loc, "batch \"%.*s\" (key id %u, serials %llu "
               "to %llu) overlaps batch \"%.*s\" (serials %llu to %llu, %s)",
               (int) b.s[CR_BATCH_ID].len, b.s[CR_BATCH_ID].data, b.kid,
               (unsigned long long) b.first, (unsigned long long) b.last,
               (int) other.s[CR_BATCH_ID].len, other.s[CR_BATCH_ID].data,
               (unsigned long long) other.first,
               (unsigned long long) other.last, where);

        return CR_LOAD_OK;
    }

    if (rc < 0) {
        return cr_store_fail(l, rc);
    }

    cr_count(&l->batches, rc);

    return cr_need_campaign(l, 'b', b.s[CR_BATCH_CAMPAIGN]);
}


static int
cr_row_code(cr_load_t *l, cr_row_t *row)
{
    int            del, bad, rc;
    unsigned       kid;
    cr_str_t       v, camp;
    uint64_t       n;
    cr_code_rc_t   crc;
    cr_override_t  o;

    memset(&o, 0, sizeof(cr_override_t));
    bad = 0;

    if (l->state->col[O_CODE] != -1) {
        v = cr_col(l, row, O_CODE);

        if (l->ring == NULL) {
            cr_err(l, &l->state->loc, "code: decoding codes needs the key: "
                   "run with --key FILE (or give kid and serial columns)");
            return CR_LOAD_OK;
        }

        kid = 0;
        crc = cr_code_open(l->ring, v.data, v.len, &kid, &o.serial);

        if (crc != CR_CODE_OK) {
            if (crc == CR_CODE_UNKNOWN_KEY) {
                cr_err(l, &l->state->loc, "code: \"%.*s\" has key id %u, "
                       "which --key does not serve",
                       (int) (v.len > 30 ? 30 : v.len), v.data, kid);
            } else {
                bad |= cr_check(l, "code", v, crc == CR_CODE_MALFORMED
                                ? "is malformed (not an 18-character code)"
                                : "is forged (not made with this key)");
            }
            return CR_LOAD_OK;
        }

        o.kid = (uint8_t) kid;

    } else {
        bad |= cr_num(l, cr_col(l, row, O_KID), "kid", CR_KID_MAX, &n);
        o.kid = (uint8_t) n;
        bad |= cr_num(l, cr_col(l, row, O_SERIAL), "serial", CR_SERIAL_MAX,
                      &o.serial);
    }

    del = cr_is_delete(l, row, O_DELETE);

    if (bad || del < 0) {
        return CR_LOAD_OK;
    }

    if (del) {
        rc = cr_store_del_override(l->st, o.kid, o.serial);

        if (rc == CR_STORE_NOTFOUND) {
            cr_err(l, &l->state->loc, "no override for key id %u serial %llu "
                   "to delete", o.kid, (unsigned long long) o.serial);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_store_fail(l, rc);
        }

        l->codes.removed++;

        return CR_LOAD_OK;
    }

    v = cr_col(l, row, O_STATE);
    o.state = (uint8_t) cr_override_parse(v.data, v.len);
    camp = cr_col(l, row, O_CAMPAIGN);

    if (o.state == 0) {
        return cr_check(l, "state", v, "must be revoked or campaign"),
               CR_LOAD_OK;
    }

    if (o.state == CR_OVERRIDE_CAMPAIGN) {
        if (camp.len == 0) {
            cr_err(l, &l->state->loc, "campaign: required when state is "
                   "campaign");
            return CR_LOAD_OK;
        }

        if (cr_check(l, "campaign", camp, cr_valid_id(camp.data, camp.len)))
        {
            return CR_LOAD_OK;
        }

        o.campaign = camp;

    } else if (camp.len) {
        cr_err(l, &l->state->loc, "campaign: must be empty when state is "
               "revoked");
        return CR_LOAD_OK;
    }

    rc = cr_store_put_override(l->st, &o);
    if (rc < 0) {
        return cr_store_fail(l, rc);
    }

    cr_count(&l->codes, rc);

    return o.state == CR_OVERRIDE_CAMPAIGN ? cr_need_campaign(l, 'o', camp)
                                           : CR_LOAD_OK;
}


/*
 * A GS1 link (docs/gs1.md): GTIN-8/12/13/14 stored as GTIN-14, a lot of
 * AI 82 or none, the link type, an https:// href, and optional title,
 * language and media type.  One row per (gtin, lot, link_type, lang) and
 * run; delete=yes removes the link of that key.
 */
static int
cr_row_link(cr_load_t *l, cr_row_t *row)
{
    int         del, bad, rc;
    char        gtin[CR_GS1_GTIN_LEN + 1], enc[CR_GS1_VALUE_ENC_MAX + 1];
    size_t      i;
    uint8_t     key[CR_LINK_KEY_MAX];
    cr_str_t    v;
    cr_link_t   k;

    memset(&k, 0, sizeof(cr_link_t));
    bad = 0;

    v = cr_col(l, row, L_GTIN);

    if (cr_gs1_gtin14(gtin, v.data, v.len) != 0) {
        bad |= cr_check(l, "gtin", v, cr_valid_gtin(v.data, v.len));
    }

    k.s[CR_LINK_GTIN].data = gtin;
    k.s[CR_LINK_GTIN].len = CR_GS1_GTIN_LEN;

    k.s[CR_LINK_LOT] = cr_col(l, row, L_LOT);
    v = k.s[CR_LINK_LOT];

    if (v.len && cr_gs1_encode_value(enc, v.data, v.len) < 0) {
        bad |= cr_check(l, "lot", v, "must be 1..20 characters of GS1's set "
                        "(AI 82: letters, digits and "
                        "!\"%&'()*+,-./:;<=>?_), or empty for the GTIN's "
                        "own links");
    }

    k.s[CR_LINK_TYPE] = cr_col(l, row, L_TYPE);
    bad |= cr_check(l, "link_type", k.s[CR_LINK_TYPE],
                    cr_link_type_check(k.s[CR_LINK_TYPE].data,
                                       k.s[CR_LINK_TYPE].len));

    k.s[CR_LINK_LANG] = cr_col(l, row, L_LANG);
    bad |= cr_check(l, "lang", k.s[CR_LINK_LANG],
                    cr_link_lang_check(k.s[CR_LINK_LANG].data,
                                       k.s[CR_LINK_LANG].len));

    del = cr_is_delete(l, row, L_DELETE);

    if (bad || del < 0) {
        return CR_LOAD_OK;
    }

    /* Its key, readable in a message: blanks are in no field. */
    v.len = cr_link_key(key, &k);
    v.data = (const char *) key;

    for (i = 0; i < v.len; i++) {
        key[i] = key[i] ? key[i] : ' ';
    }

    rc = cr_first_definition(l, &l->state->links, "link", v);
    if (rc <= 0) {
        return rc < 0 ? cr_fatal(l, "out of memory") : CR_LOAD_OK;
    }

    if (del) {
        rc = cr_store_del_link(l->st, &k);

        if (rc == CR_STORE_NOTFOUND) {
            cr_err(l, &l->state->loc, "no link of GTIN %s, lot \"%.*s\", "
                   "type %.*s, lang \"%.*s\" to delete", gtin,
                   (int) k.s[CR_LINK_LOT].len, k.s[CR_LINK_LOT].data,
                   (int) k.s[CR_LINK_TYPE].len, k.s[CR_LINK_TYPE].data,
                   (int) k.s[CR_LINK_LANG].len, k.s[CR_LINK_LANG].data);
            return CR_LOAD_OK;
        }

        if (rc != 0) {
            return cr_store_fail(l, rc);
        }

        l->links.removed++;

        return CR_LOAD_OK;
    }

    k.s[CR_LINK_HREF] = cr_col(l, row, L_HREF);
    bad |= cr_check(l, "href", k.s[CR_LINK_HREF],
                    cr_valid_url(k.s[CR_LINK_HREF].data, k.s[CR_LINK_HREF].len,
                                 "https://"));

    k.s[CR_LINK_TITLE] = cr_col(l, row, L_TITLE);
    bad |= cr_check(l, "title", k.s[CR_LINK_TITLE],
                    cr_valid_text(k.s[CR_LINK_TITLE].data,
                                  k.s[CR_LINK_TITLE].len, CR_LINK_TITLE_MAX));

    k.s[CR_LINK_MEDIA] = cr_col(l, row, L_MEDIA);
    bad |= cr_check(l, "type", k.s[CR_LINK_MEDIA],
                    cr_link_media_check(k.s[CR_LINK_MEDIA].data,
                                        k.s[CR_LINK_MEDIA].len));

    if (bad) {
        return CR_LOAD_OK;
    }

    rc = cr_store_put_link(l->st, &k);
    if (rc < 0) {
        return cr_store_fail(l, rc);
    }

    cr_count(&l->links, rc);

    return CR_LOAD_OK;
}


static int
cr_add_ref(cr_load_t *l, char what, const cr_str_t *id)
{
    size_t            cap;
    cr_ref_t         *r;
    cr_load_state_t  *s = l->state;

    if (s->nrefs == CR_PENDING_MAX) {
        cr_err(l, &s->loc, "more than %d references to campaigns not yet "
               "defined: define campaigns before the rows that use them",
               CR_PENDING_MAX);
        return CR_LOAD_OK;
    }

    if (s->nrefs == s->caprefs) {
        cap = s->caprefs ? s->caprefs * 2 : 64;
        r = realloc(s->refs, cap * sizeof(cr_ref_t));
        if (r == NULL) {
            return cr_fatal(l, "out of memory");
        }
        s->refs = r;
        s->caprefs = cap;
    }

    r = &s->refs[s->nrefs++];
    r->loc = s->loc;
    r->what = what;
    memcpy(r->id, id->data, id->len);
    r->id[id->len] = '\0';

    return CR_LOAD_OK;
}


typedef struct {
    cr_load_t  *l;
    cr_hash_t   deleted;
    unsigned    reported;
} cr_use_ctx_t;


static int
cr_used(cr_use_ctx_t *u, const cr_str_t *camp, const char *what,
    const char *by, size_t bylen)
{
    cr_hent_t  *e;

    e = cr_hash_get(&u->deleted, camp->data, camp->len, 0);

    if (e != NULL && e->loc.line != 0) {
        cr_err(u->l, &e->loc, "campaign \"%.*s\" cannot be deleted: %s "
               "\"%.*s\" still uses it (delete or rebind it in the same run)",
               (int) camp->len, camp->data, what, (int) bylen, by);

        /* One message per deleted campaign is enough. */
        e->loc.line = 0;
    }

    return 0;
}


static int
cr_used_by_batch(void *ctx, const cr_batch_t *b)
{
    return cr_used(ctx, &b->s[CR_BATCH_CAMPAIGN], "batch",
                   b->s[CR_BATCH_ID].data, b->s[CR_BATCH_ID].len);
}


static int
cr_used_by_override(void *ctx, const cr_override_t *o)
{
    char  by[64];
    int   n;

    if (o->state != CR_OVERRIDE_CAMPAIGN) {
        return 0;
    }

    n = snprintf(by, sizeof(by), "key id %u serial %llu", o->kid,
                 (unsigned long long) o->serial);

    return cr_used(ctx, &o->campaign, "the override of", by, (size_t) n);
}


/* References across the run: resolved now that every row is in. */
static int
cr_check_refs(cr_load_t *l)
{
    int               rc, deletions;
    size_t            i;
    cr_ref_t         *r;
    cr_hent_t        *e;
    cr_campaign_t     c;
    cr_use_ctx_t      u;
    cr_load_state_t  *s = l->state;

    memset(&u, 0, sizeof(u));
    u.l = l;
    deletions = 0;

    for (i = 0; i < s->nrefs; i++) {
        r = &s->refs[i];
        rc = cr_store_get_campaign(l->st, r->id, strlen(r->id), &c);

        if (rc != 0 && rc != CR_STORE_NOTFOUND) {
            cr_hash_free(&u.deleted);
            return cr_store_fail(l, rc);
        }

        if (r->what == 'd') {
            /* Deleted and not defined again later in the run. */
            if (rc == CR_STORE_NOTFOUND) {
                e = cr_hash_get(&u.deleted, r->id, strlen(r->id), 1);
                if (e == NULL) {
                    cr_hash_free(&u.deleted);
                    return cr_fatal(l, "out of memory");
                }
                e->loc = r->loc;
                deletions = 1;
            }
            continue;
        }

        if (rc == CR_STORE_NOTFOUND) {
            cr_err(l, &r->loc, "campaign: unknown campaign \"%s\" (define it"
                   " in a campaign file of this run or an earlier one)",
                   r->id);
        }
    }

    rc = 0;

    if (deletions) {
        rc = cr_store_each_batch(l->st, cr_used_by_batch, &u);
        if (rc == 0) {
            rc = cr_store_each_override(l->st, cr_used_by_override, &u);
        }
    }

    cr_hash_free(&u.deleted);

    return rc ? cr_store_fail(l, rc) : CR_LOAD_OK;
}


/* FNV-1a; open addressing, grown at half full. */
static uint64_t
cr_hash_key(const char *k, size_t n)
{
    size_t    i;
    uint64_t  h;

    h = 14695981039346656037ULL;

    for (i = 0; i < n; i++) {
        h = (h ^ (uint8_t) k[i]) * 1099511628211ULL;
    }

    return h;
}


static cr_hent_t *
cr_hash_get(cr_hash_t *h, const char *k, size_t n, int add)
{
    size_t      i, j, cap;
    cr_hent_t  *t, *e;

    if (h->cap) {
        for (i = cr_hash_key(k, n) & (h->cap - 1);
             h->t[i].key;
             i = (i + 1) & (h->cap - 1))
        {
            if (h->t[i].len == n && memcmp(h->t[i].key, k, n) == 0) {
                return &h->t[i];
            }
        }
    }

    if (!add) {
        return NULL;
    }

    if (2 * (h->n + 1) > h->cap) {
        cap = h->cap ? h->cap * 2 : 1024;
        t = calloc(cap, sizeof(cr_hent_t));
        if (t == NULL) {
            return NULL;
        }

        for (j = 0; j < h->cap; j++) {
            if (h->t[j].key == NULL) {
                continue;
            }
            for (i = cr_hash_key(h->t[j].key, h->t[j].len) & (cap - 1);
                 t[i].key;
                 i = (i + 1) & (cap - 1))
            {
                /* void */
            }
            t[i] = h->t[j];
        }

        free(h->t);
        h->t = t;
        h->cap = cap;
    }

    for (i = cr_hash_key(k, n) & (h->cap - 1);
         h->t[i].key;
         i = (i + 1) & (h->cap - 1))
    {
        /* void */
    }

    e = &h->t[i];
    e->key = malloc(n ? n : 1);
    if (e->key == NULL) {
        return NULL;
    }

    memcpy(e->key, k, n);
    e->len = n;
    memset(&e->loc, 0, sizeof(cr_loc_t));
    h->n++;

    return e;
}


static void
cr_hash_free(cr_hash_t *h)
{
    size_t  i;

    for (i = 0; i < h->cap; i++) {
        free(h->t[i].key);
    }

    free(h->t);
    memset(h, 0, sizeof(cr_hash_t));
}
