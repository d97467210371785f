/*
 * cr_link: the product- and lot-level links of a GS1 Digital Link
 * resolver, written once: the rules of a link row, the store key of a
 * link, which link answers a request, and the JSON documents a resolver
 * serves (an RFC 9264 linkset, the resolver description).
 *
 * Pure C: the loader validates rows with it, the store keys them with it,
 * the nginx module (code_router_gs1) answers with it.  docs/gs1.md says
 * how to write a links file.
 */

#ifndef CR_LINK_H
#define CR_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "cr_gs1.h"
#include "cr_record.h"
#include "cr_store.h"


/* A link, as a links file's row: gtin,lot,link_type,href,title,lang,type */
enum {
    CR_LINK_GTIN = 0,                  /* GTIN-14 once stored */
    CR_LINK_LOT,                       /* "" for the GTIN's own links */
    CR_LINK_TYPE,                      /* gs1:NAME or an https:// URI */
    CR_LINK_HREF,                      /* the target, https:// */
    CR_LINK_TITLE,
    CR_LINK_LANG,                      /* "" or a language tag */
    CR_LINK_MEDIA,                     /* "" or a media type */
    CR_LINK_NSTR
};

typedef struct {
    cr_str_t  s[CR_LINK_NSTR];
} cr_link_t;


#define CR_LINK_DEFAULT     "gs1:defaultLink"
#define CR_LINK_LINKSET     "linkset"       /* ?linkType=linkset */
#define CR_LINK_TYPE_MAX    128
#define CR_LINK_TITLE_MAX   256
#define CR_LINK_LANG_MAX    35
#define CR_LINK_MEDIA_MAX   64

/* gtin(14) NUL lot NUL type NUL lang */
#define CR_LINK_KEY_MAX  (CR_GS1_GTIN_LEN + CR_GS1_VALUE_MAX + 3 \
                          + CR_LINK_TYPE_MAX + CR_LINK_LANG_MAX)


/*
 * The rules of each field but GTIN (cr_gs1_gtin14), lot (AI 82:
 * cr_gs1_encode_value) and href (cr_valid_url, https://); NULL if the
 * value is acceptable, else a short reason.
 *   type: "gs1:" and 1..64 letters and digits, or an https:// URI; not
 *         "linkset" (a request for the linkset itself).
 *   lang: empty, or a language tag: 2..3 letters, then "-" and 1..8
 *         letters or digits, any number of times (en, zh-CN, zh-Hans-CN).
 *   type: empty, or a media type: TOKEN/TOKEN (text/html).
 */
const char *cr_link_type_check(const char *s, size_t n);
const char *cr_link_lang_check(const char *s, size_t n);
const char *cr_link_media_check(const char *s, size_t n);

/*
 * The loader's rules of the fields a stored link serves (href, https://;
 * title; type, lang and media as above), checked again when a link is
 * read to be served: a record written behind the loader's back, or a
 * damaged copy of the store, must never put its bytes into a Location
 * header or a linkset.  NULL if the link is sound, else a short reason,
 * *field naming the field.
 */
const char *cr_link_check(const cr_link_t *l, const char **field);

/*
 * The store key of a link: gtin NUL lot NUL type NUL lang, so that the
 * links of one level (cr_link_level_key: gtin NUL lot NUL) are neighbours,
 * and one (type, lang) has one link a level.  k holds CR_LINK_KEY_MAX
 * bytes; the fields must have passed the checks.  Returns the length.
 */
size_t cr_link_key(uint8_t *k, const cr_link_t *l);
size_t cr_link_level_key(uint8_t *k, const char *gtin, const char *lot,
    size_t lot_len);

/*
 * The link that answers a request for link type "type" (decoded; n > 0):
 * links[0..nlinks) are the levels' links, the most specific level first
 * (lot, then GTIN), each level in key order.  The first link of that type
 * whose language is the primary language of "lang" (an Accept-Language
 * header, or NULL), else the first of that type; NULL if there is none.
 */
const cr_link_t *cr_link_pick(const cr_link_t *links, size_t nlinks,
    const char *type, size_t n, const char *lang, size_t lang_len);

/*
 * The RFC 9264 linkset (application/linkset+json) of anchor, with the
 * links ordered as for cr_link_pick(): one context object, one relation
 * per link type (gs1:NAME written https://gs1.org/voc/NAME), a more
 * specific level's links of a type replacing a less specific level's.
 * Writes at most size bytes to out (if not NULL) and returns the length
 * the whole document needs: call with NULL first to size the buffer.
 * "level" gives, for each link, its level (0 most specific).
 */
size_t cr_linkset_json(char *out, size_t size, const char *anchor,
    size_t anchor_len, const cr_link_t *links, const unsigned *level,
    size_t nlinks);

/* The resolver description (GS1 resolver standard) of the resolver at
 * root ("https://host"); as above: returns the length needed. */
size_t cr_gs1_description_json(char *out, size_t size, const char *root,
    size_t root_len);

/*
 * The links in the store (cr_store_write.c, cr_store_read.c): key
 * cr_link_key(), record 'L' (cr_record.c) with the seven strings.  A
 * store created before links has none until a loader opens it (then
 * put/each work; a reader opened before sees none until it is reopened).
 */
int cr_link_decode(const uint8_t *p, size_t n, cr_link_t *l);

/* Writer, inside cr_store_begin() .. commit: as the other puts
 * (CR_PUT_ADDED, _CHANGED, _SAME or an error); del: 0 or
 * CR_STORE_NOTFOUND. */
int cr_store_put_link(cr_store_t *st, const cr_link_t *l);
int cr_store_del_link(cr_store_t *st, const cr_link_t *l);
int cr_store_each_link(cr_store_t *st,
    int (*fn)(void *ctx, const cr_link_t *l), void *ctx);

/*
 * Reader: the links of one level (gtin, and lot or ""), in key order, at
 * most max into out[], *n of them; strings copied with alloc() and
 * NUL-terminated.  Uses (and keeps) the snapshot of cr_store_lookup().
 * Returns 0 or CR_STORE_ERROR.
 */
int cr_store_links(cr_store_t *st, const char *gtin, const char *lot,
    size_t lot_len, cr_link_t *out, size_t max, size_t *n,
    cr_alloc_pt alloc, void *ctx);

#endif /* CR_LINK_H */
