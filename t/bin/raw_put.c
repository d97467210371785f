/*
 * raw-put: writes records into a store BEHIND THE LOADER'S BACK, for the
 * hostile-input tests (t/53-hostile.t).  It calls cr_store_begin(),
 * cr_store_put_*() and cr_store_commit() directly, so no rule of cr_valid
 * is applied: any byte may go into any field.  Never use it on a real
 * store.
 *
 * usage: raw-put DB RECORD...
 *
 *   RECORD is a kind followed by its fields, up to the next kind:
 *
 *   campaign id=ID type=h5|official_account|miniprogram|NUMBER
 *            [name= url= appid= path= query= url_link= before_url=
 *             after_url= starts_at=UNIX ends_at=UNIX starts_tz=MINUTES
 *             ends_tz=MINUTES]   (times and zones may be negative)
 *   batch    id=ID kid=N from=SERIAL to=SERIAL scene=NAME|NUMBER
 *            campaign=ID [sku= gtin= lot= produced= region=]
 *   override kid=N serial=SERIAL state=revoked|campaign|NUMBER
 *            [campaign=ID]
 *   link     gtin=GTIN-14 [lot= type= href= title= lang= media=]
 *            (a GS1 link; the store must already hold links)
 *
 * In values, \xHH is the byte HH (so NUL, CR and LF can be written) and
 * \\ a backslash.  All records go in one transaction.  Exit status 0, or
 * 1 with a message on stderr.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cr_store.h"


static const char  *camp_fields[CR_CAMP_NSTR] = {
    "id", "name", "url", "appid", "path", "query", "url_link",
    "before_url", "after_url", "over_url"
};

static const char  *batch_fields[CR_BATCH_NSTR] = {
    "id", "campaign", "sku", "gtin", "lot", "produced", "region", "dealer"
};

static const char  *link_fields[CR_LINK_NSTR] = {
    "gtin", "lot", "type", "href", "title", "lang", "media"
};


static void
die(const char *what, const char *arg)
{
    fprintf(stderr, "raw-put: %s%s%s\n", what, arg ? ": " : "",
            arg ? arg : "");
    exit(1);
}


/* Decodes \xHH and \\ in place; returns the decoded string. */
static cr_str_t
unescape(char *s)
{
    char      *r, *w;
    cr_str_t   v;
    char       hex[3];

    for (r = s, w = s; *r; r++) {
        if (r[0] == '\\' && r[1] == '\\') {
            *w++ = '\\';
            r++;

        } else if (r[0] == '\\' && r[1] == 'x' && r[2] && r[3]) {
            hex[0] = r[2];
            hex[1] = r[3];
            hex[2] = '\0';
            *w++ = (char) strtoul(hex, NULL, 16);
            r += 3;

        } else {
            *w++ = *r;
        }
    }

    v.data = s;
    v.len = (size_t) (w - s);

    return v;
}


static unsigned long long
number(const char *s)
{
    char                *end;
    unsigned long long   n;

    n = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        die("not a number", s);
    }

    return n;
}


static long long
snumber(const char *s)
{
    char       *end;
    long long   n;

    n = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        die("not a number", s);
    }

    return n;
}


/* The index of name in fields, or -1. */
static int
field(const char **fields, int n, const char *name, size_t len)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (strlen(fields[i]) == len && strncmp(fields[i], name, len) == 0) {
            return i;
        }
    }

    return -1;
}


static int
is_kind(const char *s)
{
    return strcmp(s, "campaign") == 0 || strcmp(s, "batch") == 0
           || strcmp(s, "override") == 0 || strcmp(s, "link") == 0;
}


int
main(int argc, char **argv)
{
    int             i, j, f, rc;
    char            err[1024], *eq, *kind, *name;
    size_t          nlen;
    unsigned        t;
    cr_str_t        v;
    cr_store_t     *st;
    cr_batch_t      b, other;
    cr_campaign_t   c;
    cr_override_t   o;
    cr_link_t       lk;

    if (argc < 3 || !is_kind(argv[2])) {
        die("usage: raw-put DB campaign|batch|override|link FIELD=VALUE... "
            "...",
            NULL);
    }

    if (cr_store_open(&st, argv[1], 0, err, sizeof(err)) != 0) {
        die(err, NULL);
    }

    if (cr_store_begin(st) != 0) {
        die(cr_store_error(st), NULL);
    }

    for (i = 2; i < argc; i = j) {
        kind = argv[i];

        memset(&c, 0, sizeof(c));
        memset(&b, 0, sizeof(b));
        memset(&o, 0, sizeof(o));
        memset(&lk, 0, sizeof(lk));
        c.starts_at = CR_TIME_NONE;
        c.ends_at = CR_TIME_NONE;

        for (j = i + 1; j < argc && !is_kind(argv[j]); j++) {
            name = argv[j];
            eq = strchr(name, '=');
            if (eq == NULL) {
                die("not FIELD=VALUE", name);
            }

            nlen = (size_t) (eq - name);
            v = unescape(eq + 1);

            if (kind[0] == 'c') {
                f = field(camp_fields, CR_CAMP_NSTR, name, nlen);
                if (f >= 0) {
                    c.s[f] = v;
                } else if (strncmp(name, "type=", 5) == 0) {
                    t = cr_target_parse(v.data, v.len);
                    c.type = (uint8_t) (t ? t : number(v.data));
                } else if (strncmp(name, "starts_at=", 10) == 0) {
                    c.starts_at = (int64_t) snumber(v.data);
                } else if (strncmp(name, "ends_at=", 8) == 0) {
                    c.ends_at = (int64_t) snumber(v.data);
                } else if (strncmp(name, "starts_tz=", 10) == 0) {
                    c.starts_tz = (int16_t) snumber(v.data);
                } else if (strncmp(name, "ends_tz=", 8) == 0) {
                    c.ends_tz = (int16_t) snumber(v.data);
                } else {
                    die("unknown campaign field", name);
                }

            } else if (kind[0] == 'b') {
                f = field(batch_fields, CR_BATCH_NSTR, name, nlen);
                if (f >= 0) {
                    b.s[f] = v;
                } else if (strncmp(name, "kid=", 4) == 0) {
                    b.kid = (uint8_t) number(v.data);
                } else if (strncmp(name, "from=", 5) == 0) {
                    b.first = number(v.data);
                } else if (strncmp(name, "to=", 3) == 0) {
                    b.last = number(v.data);
                } else if (strncmp(name, "scene=", 6) == 0) {
                    t = cr_scene_parse(v.data, v.len);
                    b.scene = (uint8_t) (t ? t : number(v.data));
                } else {
                    die("unknown batch field", name);
                }

            } else if (kind[0] == 'l') {
                f = field(link_fields, CR_LINK_NSTR, name, nlen);
                if (f < 0) {
                    die("unknown link field", name);
                }
                lk.s[f] = v;

            } else {
                if (strncmp(name, "kid=", 4) == 0) {
                    o.kid = (uint8_t) number(v.data);
                } else if (strncmp(name, "serial=", 7) == 0) {
                    o.serial = number(v.data);
                } else if (strncmp(name, "state=", 6) == 0) {
                    t = cr_override_parse(v.data, v.len);
                    o.state = (uint8_t) (t ? t : number(v.data));
                } else if (strncmp(name, "campaign=", 9) == 0) {
                    o.campaign = v;
                } else {
                    die("unknown override field", name);
                }
            }
        }

        if (kind[0] == 'c') {
            rc = cr_store_put_campaign(st, &c);
        } else if (kind[0] == 'b') {
            rc = cr_store_put_batch(st, &b, &other);
        } else if (kind[0] == 'l') {
            rc = cr_store_put_link(st, &lk);
        } else {
            rc = cr_store_put_override(st, &o);
        }

        if (rc < 0) {
            die(rc == CR_STORE_OVERLAP ? "batch overlaps another"
                                       : cr_store_error(st), kind);
        }
    }

    if (cr_store_commit(st, (int64_t) time(NULL)) != 0) {
        die(cr_store_error(st), NULL);
    }

    cr_store_close(st);

    return 0;
}
