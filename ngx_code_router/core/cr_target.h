/*
 * cr_target: the URLs a scan is sent to, built from a binding.
 *
 * Pure C, so the module, the fuzzers and the unit tests share one
 * definition.  Every builder checks the stored values again with cr_valid
 * first (unless the binding says a reader's copy did, see below): a record
 * written behind the loader's back is refused, never emitted.  Each
 * returns NULL on success, else a short reason; the output is at most
 * cr_target_size(b) bytes and is not NUL-terminated.
 */

#ifndef CR_TARGET_H
#define CR_TARGET_H

#include <stddef.h>

#include "cr_store.h"


typedef const char *(*cr_target_pt)(const cr_binding_t *b, const char *code,
    char *out, size_t *len);


/*
 * The check the builder for c's type makes of c's stored values: NULL, or
 * the reason it would refuse.  A reader's copy of the store runs it once
 * per campaign (cr_store_set_check) and the builders then trust a binding
 * with target_ok set instead of checking for every scan.
 */
const char *cr_target_check(const cr_campaign_t *c);

/* Enough bytes for any URL built from b. */
size_t cr_target_size(const cr_binding_t *b);

/*
 * An H5 or official-account URL: the campaign URL with code, batch, scene
 * and campaign appended as query parameters, the existing query kept,
 * before any fragment.  code is CR_CODE_LEN bytes of the canonical
 * spelling (cr_code_canonical), copied as it is.
 */
const char *cr_target_url(const cr_binding_t *b, const char *code,
    char *out, size_t *len);

/*
 * The plain-text URL Scheme of a mini-program:
 * weixin://dl/business/?appid=A&path=P&query=ENC(Q&code=C)
 * &env_version=release; or the campaign's own weixin:// URL if it has one.
 */
const char *cr_target_scheme(const cr_binding_t *b, const char *code,
    char *out, size_t *len);

#endif /* CR_TARGET_H */
