/*
 * cr_link: see cr_link.h and docs/gs1.md.
 */

#include <string.h>

#include "cr_json.h"
#include "cr_link.h"
#include "cr_record.h"
#include "cr_valid.h"


#define CR_GS1_VOC  "https://gs1.org/voc/"


/* A writer that counts what it could not write: out may be NULL. */
typedef struct {
    char    *out;
    size_t   size;
    size_t   len;
} cr_buf_t;


static void
cr_put(cr_buf_t *b, const char *s, size_t n)
{
    if (b->out != NULL && b->len + n <= b->size) {
        memcpy(b->out + b->len, s, n);
    } else {
        b->out = NULL;              /* too small: only count from now */
    }

    b->len += n;
}


static void
cr_puts(cr_buf_t *b, const char *s)
{
    cr_put(b, s, strlen(s));
}


/* A JSON string: the quotes and the escaped bytes. */
static void
cr_put_json(cr_buf_t *b, const char *s, size_t n)
{
    size_t  len;

    len = cr_json_escape(NULL, s, n);

    cr_put(b, "\"", 1);

    if (b->out != NULL && b->len + len <= b->size) {
        cr_json_escape(b->out + b->len, s, n);
        b->len += len;

    } else {
        b->out = NULL;
        b->len += len;
    }

    cr_put(b, "\"", 1);
}


static int
cr_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
           || (c >= 'a' && c <= 'z');
}


static int
cr_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}


const char *
cr_link_type_check(const char *s, size_t n)
{
    size_t  i;

    if (n > 4 && memcmp(s, "gs1:", 4) == 0) {
        if (n > 4 + 64) {
            return "must be gs1:NAME with at most 64 letters and digits";
        }

        for (i = 4; i < n; i++) {
            if (!cr_alnum((unsigned char) s[i])) {
                return "must be gs1:NAME with letters and digits only "
                       "(e.g. gs1:pip, gs1:certificationInfo)";
            }
        }

        return NULL;
    }

    if (n > 8 && memcmp(s, "https://", 8) == 0) {
        if (n > CR_LINK_TYPE_MAX) {
            return "must be at most 128 bytes";
        }

        for (i = 8; i < n; i++) {
            if (!cr_alnum((unsigned char) s[i])
                && strchr("-._~:/?#[]@!$&'()*+,;=%", s[i]) == NULL)
            {
                return "must hold only RFC 3986 characters";
            }
        }

        return NULL;
    }

    return "must be gs1:NAME (GS1's vocabulary, e.g. gs1:pip) or an "
           "https:// URI";
}


const char *
cr_link_lang_check(const char *s, size_t n)
{
    size_t  i, run;

    if (n == 0) {
        return NULL;
    }

    if (n > CR_LINK_LANG_MAX) {
        return "must be at most 35 bytes";
    }

    for (i = 0; i < n && cr_alpha((unsigned char) s[i]); i++) {
        /* void */
    }

    if (i < 2 || i > 3) {
        return "must start with 2 or 3 letters (en, zh-CN)";
    }

    while (i < n) {
        if (s[i] != '-') {
            return "must be a language tag LANG[-SUBTAG]... (en, zh-CN, "
                   "zh-Hans-CN)";
        }

        for (i++, run = 0; i < n && cr_alnum((unsigned char) s[i]);
             i++, run++)
        {
            /* void */
        }

        if (run == 0 || run > 8) {
            return "must have subtags of 1..8 letters or digits";
        }
    }

    return NULL;
}


/* RFC 9110 token characters. */
static size_t
cr_token(const char *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!cr_alnum((unsigned char) s[i])
            && strchr("!#$%&'*+-.^_`|~", s[i]) == NULL)
        {
            break;
        }
    }

    return i;
}


const char *
cr_link_media_check(const char *s, size_t n)
{
    size_t  t;

    if (n == 0) {
        return NULL;
    }

    if (n > CR_LINK_MEDIA_MAX) {
        return "must be at most 64 bytes";
    }

    t = cr_token(s, n);

    if (t == 0 || t == n || s[t] != '/' || t + 1 == n
        || cr_token(s + t + 1, n - t - 1) != n - t - 1)
    {
        return "must be a media type TYPE/SUBTYPE (text/html), without "
               "parameters";
    }

    return NULL;
}


const char *
cr_link_check(const cr_link_t *l, const char **field)
{
    const char      *err;
    const cr_str_t  *s;

    s = l->s;

    *field = "href";
    err = cr_valid_url(s[CR_LINK_HREF].data, s[CR_LINK_HREF].len,
                       "https://");

    if (err == NULL) {
        *field = "title";
        err = cr_valid_text(s[CR_LINK_TITLE].data, s[CR_LINK_TITLE].len,
                            CR_LINK_TITLE_MAX);
    }

    if (err == NULL) {
        *field = "link_type";
        err = cr_link_type_check(s[CR_LINK_TYPE].data, s[CR_LINK_TYPE].len);
    }

    if (err == NULL) {
        *field = "lang";
        err = cr_link_lang_check(s[CR_LINK_LANG].data, s[CR_LINK_LANG].len);
    }

    if (err == NULL) {
        *field = "type";
        err = cr_link_media_check(s[CR_LINK_MEDIA].data,
                                  s[CR_LINK_MEDIA].len);
    }

    return err;
}


static int
cr_eq(const cr_str_t *a, const char *s, size_t n)
{
    return a->len == n && (n == 0 || memcmp(a->data, s, n) == 0);
}


/* The primary language of an Accept-Language header: its first tag's
 * letters before '-', ',', ';' or a blank. */
static size_t
cr_primary(const char *s, size_t n, const char **p)
{
    size_t  i;

    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }

    for (i = 0; i < n && cr_alpha((unsigned char) s[i]); i++) {
        /* void */
    }

    *p = s;

    return i;
}


static int
cr_lang_is(const cr_str_t *tag, const char *p, size_t n)
{
    size_t  i;

    if (n == 0 || tag->len < n || (tag->len > n && tag->data[n] != '-')) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if ((tag->data[i] | 0x20) != (p[i] | 0x20)) {
            return 0;
        }
    }

    return 1;
}


const cr_link_t *
cr_link_pick(const cr_link_t *links, size_t nlinks, const char *type,
    size_t n, const char *lang, size_t lang_len)
{
    size_t            i, plen;
    const char       *p;
    const cr_link_t  *first;

    plen = lang ? cr_primary(lang, lang_len, &p) : 0;
    first = NULL;

    for (i = 0; i < nlinks; i++) {
        if (!cr_eq(&links[i].s[CR_LINK_TYPE], type, n)) {
            continue;
        }

        if (plen && cr_lang_is(&links[i].s[CR_LINK_LANG], p, plen)) {
            return &links[i];
        }

        if (first == NULL) {
            first = &links[i];
        }
    }

    return first;
}


/* The relation type as RFC 9264 writes it: an absolute URI. */
static void
cr_put_rel(cr_buf_t *b, const cr_str_t *type)
{
    char    rel[sizeof(CR_GS1_VOC) + CR_LINK_TYPE_MAX];
    size_t  n;

    if (type->len > 4 && memcmp(type->data, "gs1:", 4) == 0
        && type->len - 4 < CR_LINK_TYPE_MAX)
    {
        n = sizeof(CR_GS1_VOC) - 1;
        memcpy(rel, CR_GS1_VOC, n);
        memcpy(rel + n, type->data + 4, type->len - 4);
        cr_put_json(b, rel, n + type->len - 4);
        return;
    }

    cr_put_json(b, type->data, type->len);
}


static void
cr_put_target(cr_buf_t *b, const cr_link_t *l)
{
    cr_puts(b, "{\"href\":");
    cr_put_json(b, l->s[CR_LINK_HREF].data, l->s[CR_LINK_HREF].len);

    /* Every link has a title (the resolver standard's SHALL): a link
     * loaded without one is titled with its link type. */
    cr_puts(b, ",\"title\":");

    if (l->s[CR_LINK_TITLE].len) {
        cr_put_json(b, l->s[CR_LINK_TITLE].data, l->s[CR_LINK_TITLE].len);
    } else {
        cr_put_json(b, l->s[CR_LINK_TYPE].data, l->s[CR_LINK_TYPE].len);
    }

    if (l->s[CR_LINK_LANG].len) {
        cr_puts(b, ",\"hreflang\":[");
        cr_put_json(b, l->s[CR_LINK_LANG].data, l->s[CR_LINK_LANG].len);
        cr_puts(b, "]");
    }

    if (l->s[CR_LINK_MEDIA].len) {
        cr_puts(b, ",\"type\":");
        cr_put_json(b, l->s[CR_LINK_MEDIA].data, l->s[CR_LINK_MEDIA].len);
    }

    cr_puts(b, "}");
}


/* True if a link before i has the same type (its relation is written). */
static int
cr_type_seen(const cr_link_t *links, size_t i)
{
    size_t  j;

    for (j = 0; j < i; j++) {
        if (cr_eq(&links[j].s[CR_LINK_TYPE], links[i].s[CR_LINK_TYPE].data,
                  links[i].s[CR_LINK_TYPE].len))
        {
            return 1;
        }
    }

    return 0;
}


size_t
cr_linkset_json(char *out, size_t size, const char *anchor,
    size_t anchor_len, const cr_link_t *links, const unsigned *level,
    size_t nlinks)
{
    size_t     i, j, lvl;
    cr_buf_t   b;
    unsigned   first;

    b.out = out;
    b.size = size;
    b.len = 0;

    cr_puts(&b, "{\"linkset\":[{\"anchor\":");
    cr_put_json(&b, anchor, anchor_len);

    for (i = 0; i < nlinks; i++) {
        if (cr_type_seen(links, i)) {
            continue;
        }

        /* The most specific level that has this type, all its links. */
        lvl = level[i];

        cr_puts(&b, ",");
        cr_put_rel(&b, &links[i].s[CR_LINK_TYPE]);
        cr_puts(&b, ":[");
        first = 1;

        for (j = i; j < nlinks; j++) {
            if (level[j] != lvl
                || !cr_eq(&links[j].s[CR_LINK_TYPE],
                          links[i].s[CR_LINK_TYPE].data,
                          links[i].s[CR_LINK_TYPE].len))
            {
                continue;
            }

            if (!first) {
                cr_puts(&b, ",");
            }

            cr_put_target(&b, &links[j]);
            first = 0;
        }

        cr_puts(&b, "]");
    }

    cr_puts(&b, "}]}\n");

    return b.len;
}


size_t
cr_gs1_description_json(char *out, size_t size, const char *root,
    size_t root_len)
{
    cr_buf_t  b;

    b.out = out;
    b.size = size;
    b.len = 0;

    cr_puts(&b, "{\"name\":\"code-router\",\"resolverRoot\":");
    cr_put_json(&b, root, root_len);
    cr_puts(&b, ",\"supportedPrimaryKeys\":[\"01\",\"00\"],"
                "\"supportedLinkType\":[{\"namespace\":\"" CR_GS1_VOC "\","
                "\"prefix\":\"gs1:\","
                "\"profile\":\"" CR_GS1_VOC "?show=linktypes\"}],"
                "\"linkTypeDefaultCanBeLinkset\":false,"
                "\"supportedContextValuesEnumerated\":[],"
                "\"validatesURIs\":true}\n");

    return b.len;
}
