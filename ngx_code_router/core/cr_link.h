/*
 * cr_link: the product- and lot-level links of a GS1 Digital Link
 * resolver, written once: the rules of a link row, which link answers a
 * request, and the JSON documents a resolver serves (an RFC 9264 linkset,
 * the resolver description).  The link record, its codec and its store
 * key are cr_record.h's, the links in the store cr_store.h's.
 *
 * Pure C: the loader validates rows with it, the nginx module
 * (code_router_gs1) answers with it.  docs/gs1.md says how to write a
 * links file.
 */

#ifndef CR_LINK_H
#define CR_LINK_H

#include <stddef.h>

#include "cr_record.h"


#define CR_LINK_DEFAULT     "gs1:defaultLink"
#define CR_LINK_LINKSET     "linkset"       /* ?linkType=linkset */


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

#endif /* CR_LINK_H */
