/*
 * cr_load_csv: the loader's reader: a file's lines (BOM, CRLF, the
 * longest line), converted from --encoding to UTF-8, split as CSV, the
 * header that starts each section, and each row handed to the rules of
 * its kind (cr_load_rows.c).
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cr_load_int.h"
#include "cr_valid.h"


static int cr_read_line(FILE *f, char *buf, size_t cap, size_t *len,
    int *over);
static int cr_header(cr_load_t *l, cr_row_t *row, int n);
static int cr_blank(cr_row_t *row, int n);
static int cr_convert(cr_load_t *l, char **line, size_t *len);
static void cr_check_encoding(cr_load_t *l, cr_row_t *row, int n);


int
cr_load_encoding_ok(const char *name)
{
    return strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "gbk") == 0
           || strcasecmp(name, "gb18030") == 0;
}


int
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
        return cr_load_fatal(l, "%s: cannot open: %s", s->files[fidx],
                        strerror(errno));
    }

    /* The longest line kept, with a byte order mark and a CR: the rest of
     * a longer one is read and dropped, never held. */
    line = malloc(CR_LINE_MAX + 4);
    if (line == NULL) {
        fclose(f);
        return cr_load_fatal(l, "out of memory");
    }

    rc = CR_LOAD_OK;
    skip = 0;
    blank_before = 1;

    s->kind = CR_KIND_NONE;
    s->bom = 0;
    s->loc.file = fidx;
    s->loc.line = 0;

    while (cr_read_line(f, line, CR_LINE_MAX + 4, &len, &over)) {
        if (s->loc.line == CR_LINE_LAST) {
            rc = cr_load_fatal(l, "%s: more than %u lines: split it",
                               s->files[fidx], CR_LINE_LAST);
            break;
        }

        s->loc.line++;

        if (len && line[len - 1] == '\r') {
            len--;
        }

        /* A UTF-8 byte order mark, as Excel's "CSV UTF-8" writes it: the
         * file is UTF-8 whatever --encoding says, so one run can mix it
         * with GBK files. */
        if (s->loc.line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3)
                                            == 0)
        {
            s->bom = 1;
            memmove(line, line + 3, len - 3);
            len -= 3;
        }

        if (over || len > CR_LINE_MAX) {
            cr_load_err(l, &s->loc, "line is longer than %d bytes", CR_LINE_MAX);
            continue;
        }

        text = line;

        if (s->cd != (iconv_t) -1 && !s->bom
            && cr_convert(l, &text, &len) != 0)
        {
            continue;
        }

        nf = cr_csv_split(text, len, row.f, row.fl, CR_CSV_MAXF, &why);

        if (nf < 0) {
            cr_load_err(l, &s->loc, "%s", why);
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
            cr_load_err(l, &s->loc, "%d fields, but the header has %d", nf,
                   s->nfields);
            continue;
        }

        l->rows++;
        s->row_errs = 0;
        cr_check_encoding(l, &row, nf);

        switch (s->kind) {
        case CR_KIND_CAMPAIGN:
            rc = cr_load_row_campaign(l, &row);
            break;
        case CR_KIND_BATCH:
            rc = cr_load_row_batch(l, &row);
            break;
        case CR_KIND_LINK:
            rc = cr_load_row_link(l, &row);
            break;
        case CR_KIND_RULE:
            rc = cr_load_row_rule(l, &row);
            break;
        case CR_KIND_PARENT:
            rc = cr_load_row_parent(l, &row);
            break;
        default:
            rc = cr_load_row_code(l, &row);
            break;
        }

        if (rc != CR_LOAD_OK) {
            break;
        }
    }

    if (rc == CR_LOAD_OK && ferror(f)) {
        rc = cr_load_fatal(l, "%s: cannot read: %s", s->files[fidx],
                      strerror(errno));
    }

    if (rc == CR_LOAD_OK && s->loc.line == 0) {
        cr_load_err(l, &s->loc, "the file is empty (a header row is required)");
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
        cr_load_err(l, &s->loc, "byte %zu (0x%02X) is not %s text%s",
               (size_t) (in - *line) + 1, (unsigned) (uint8_t) *in,
               l->opts.encoding, errno == EILSEQ || errno == EINVAL
               ? " (if the file is UTF-8, load it without --encoding)" : "");
        return -1;
    }

    *line = s->conv;
    *len = (size_t) (out - s->conv);

    return 0;
}


/*
 * Every field that is not UTF-8, or holds a character no product name
 * uses (the mark of a GBK file read as UTF-8), reported with the one hint
 * that fits how the file was read; the field's own rules then stay quiet.
 */
static void
cr_check_encoding(cr_load_t *l, cr_row_t *row, int n)
{
    int               i, shown;
    size_t            k, step;
    uint32_t          cp;
    const char       *what, *hint;
    char              held[32], other[96];
    cr_load_state_t  *s = l->state;

    s->enc_bad = 0;

    for (i = 0; i < n; i++) {
        cp = 0;

        for (k = 0; k < row->fl[i]; k += step) {
            step = 1;

            if ((uint8_t) row->f[i][k] >= 0x80) {
                step = cr_utf8_len(row->f[i] + k, row->fl[i] - k, &cp);
                if (step == 0) {
                    break;
                }
            }
        }

        if (k < row->fl[i]) {
            what = "is not UTF-8";

        } else if (cr_foreign_char(row->f[i], row->fl[i], &cp)) {
            snprintf(held, sizeof(held), "holds U+%04X", (unsigned) cp);
            what = held;

        } else {
            continue;
        }

        if (s->bom) {
            hint = ", and the file starts with a UTF-8 byte order mark, so "
                   "it is read as UTF-8 whatever --encoding says: save it "
                   "from Excel again as \"CSV UTF-8\"";

        } else if (s->cd != (iconv_t) -1) {
            snprintf(other, sizeof(other), ", which no product name uses "
                     "(the file was read as %s, as --encoding says)",
                     l->opts.encoding);
            hint = other;

        } else if (what == held) {
            hint = ", which no product name uses: if Excel saved the file "
                   "as GBK (its default for Chinese), load it with "
                   "--encoding gbk";

        } else {
            hint = " (save the file as \"CSV UTF-8\", or load it with "
                   "--encoding gbk)";
        }

        shown = (int) (row->fl[i] > 60 ? 60 : row->fl[i]);
        cr_load_err(l, &s->loc, "%s: \"%.*s\" %s%s",
                    s->fname[i] ? s->fname[i] : "?", shown, row->f[i], what,
                    hint);
        s->enc_bad |= (uint64_t) 1 << i;
    }
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

    if (CR_IS(0, "campaign") && cr_load_rules_header(row, n)) {
        kind = CR_KIND_RULE;
        cols = cr_load_rule_cols;
        ncols = R_N;
    } else if (CR_IS(0, "campaign")) {
        kind = CR_KIND_CAMPAIGN;
        cols = cr_load_campaign_cols;
        ncols = C_CN;
    } else if (CR_IS(0, "batch")) {
        kind = CR_KIND_BATCH;
        cols = cr_load_batch_cols;
        ncols = B_N;
    } else if (CR_IS(0, "kid") && cr_load_parents_header(row, n)) {
        kind = CR_KIND_PARENT;
        cols = cr_load_parent_cols;
        ncols = P_N;
    } else if (CR_IS(0, "code") || CR_IS(0, "kid")) {
        kind = CR_KIND_CODE;
        cols = cr_load_code_cols;
        ncols = O_N;
    } else if (CR_IS(0, "gtin")) {
        kind = CR_KIND_LINK;
        cols = cr_load_link_cols;
        ncols = L_N;
    } else {
        if (!quiet) {
            cr_load_err(l, &s->loc, "unknown kind of file: the header row must "
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
                cr_load_err(l, &s->loc, "unknown column \"%.*s\"",
                       (int) (row->fl[i] > 40 ? 40 : row->fl[i]), row->f[i]);
            }
            bad = 1;
            continue;
        }

        if (col[c] != -1) {
            if (!quiet) {
                cr_load_err(l, &s->loc, "column \"%s\" appears twice", cols[c]);
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
            cr_load_err(l, &s->loc, "the header lacks the column \"%s\"",        \
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

    case CR_KIND_RULE:
        CR_NEED(R_CAMPAIGN);
        CR_NEED(R_RULE);
        break;

    case CR_KIND_PARENT:
        CR_NEED(P_KID);
        CR_NEED(P_FROM);
        CR_NEED(P_PARENT_KID);
        CR_NEED(P_PARENT_SERIAL);
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
                cr_load_err(l, &s->loc, "the header needs a \"code\" column, or "
                       "\"kid\" and \"serial\" columns");
            }
            bad = 1;
        }

        if (col[O_CODE] != -1 && (col[O_KID] != -1 || col[O_SERIAL] != -1))
        {
            if (!quiet) {
                cr_load_err(l, &s->loc, "give either a \"code\" column or "
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
