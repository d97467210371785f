/*
 * cr_target: the URLs a scan is sent to.  See cr_target.h.
 */

#include <string.h>

#include "cr_codec.h"
#include "cr_target.h"
#include "cr_valid.h"


#define CR_SCHEME_PREFIX  "weixin://dl/business/?appid="
#define CR_SCHEME_SUFFIX  "&env_version=release"


static const char *cr_check_mp(const cr_str_t *s);


static char *
cr_cpy(char *p, const char *s, size_t n)
{
    if (n) {
        memcpy(p, s, n);
    }

    return p + n;
}


const char *
cr_target_check(const cr_campaign_t *c)
{
    const cr_str_t  *s;

    s = c->s;

    if (c->type != CR_TARGET_MINIPROGRAM) {
        return cr_valid_url(s[CR_CAMP_URL].data, s[CR_CAMP_URL].len,
                            "https://");
    }

    return cr_check_mp(s);
}


/* A mini-program's own weixin:// URL, or its appid, path and query. */
static const char *
cr_check_mp(const cr_str_t *s)
{
    const char  *err;

    if (s[CR_CAMP_URL].len) {
        return cr_valid_url(s[CR_CAMP_URL].data, s[CR_CAMP_URL].len,
                            "weixin://");
    }

    err = cr_valid_appid(s[CR_CAMP_APPID].data, s[CR_CAMP_APPID].len);
    if (err == NULL) {
        err = cr_valid_mp_path(s[CR_CAMP_PATH].data, s[CR_CAMP_PATH].len);
    }
    if (err == NULL) {
        err = cr_valid_mp_query(s[CR_CAMP_QUERY].data, s[CR_CAMP_QUERY].len);
    }

    return err;
}


size_t
cr_target_size(const cr_binding_t *b)
{
    size_t           url, scheme;
    const cr_str_t  *c;

    c = b->campaign.s;

    /* Each appended parameter: "&name=" and a value encoded (3x). */
    url = c[CR_CAMP_URL].len
          + 4 * sizeof("&campaign=")
          + 3 * (CR_CODE_LEN + b->batch.s[CR_BATCH_ID].len + 16
                 + c[CR_CAMP_ID].len);

    scheme = c[CR_CAMP_URL].len
             + sizeof(CR_SCHEME_PREFIX "&path=&query=" CR_SCHEME_SUFFIX)
             + c[CR_CAMP_APPID].len + 3 * c[CR_CAMP_PATH].len
             + 3 * (c[CR_CAMP_QUERY].len + sizeof("&code=") + CR_CODE_LEN);

    return url > scheme ? url : scheme;
}


const char *
cr_target_url(const cr_binding_t *b, const char *code, char *out,
    size_t *len)
{
    char            *p;
    size_t           i, base, n;
    const char      *frag, *scene, *err;
    const cr_str_t  *url;
    cr_str_t         v[4];

    static const char  *names[4] = { "code", "batch", "scene", "campaign" };

    /* The canonical code (Crockford base32: digits and capitals) and a
     * scene's name (lower-case letters) are unreserved: copied as they
     * are.  The batch and campaign ids come from the store: encoded. */
    static const unsigned char  plain[4] = { 1, 0, 1, 0 };

    url = &b->campaign.s[CR_CAMP_URL];

    if (!b->target_ok || b->campaign.type == CR_TARGET_MINIPROGRAM) {
        err = cr_valid_url(url->data, url->len, "https://");
        if (err) {
            return err;
        }
    }

    scene = b->has_batch ? cr_scene_name(b->batch.scene) : NULL;

    v[0].data = code;
    v[0].len = CR_CODE_LEN;
    v[1] = b->batch.s[CR_BATCH_ID];
    v[2].data = scene ? scene : "";
    v[2].len = scene ? strlen(scene) : 0;
    v[3] = b->campaign.s[CR_CAMP_ID];

    frag = memchr(url->data, '#', url->len);
    base = frag ? (size_t) (frag - url->data) : url->len;

    p = cr_cpy(out, url->data, base);
    n = memchr(url->data, '?', base) != NULL;

    for (i = 0; i < 4; i++) {
        if (v[i].len == 0) {
            continue;
        }

        /* "?" first unless the URL has a query; "&" unless it ends so. */
        if (n == 0) {
            *p++ = '?';
        } else if (p[-1] != '?' && p[-1] != '&') {
            *p++ = '&';
        }

        n++;
        p = cr_cpy(p, names[i], strlen(names[i]));
        *p++ = '=';
        p = plain[i] ? cr_cpy(p, v[i].data, v[i].len)
                     : p + cr_url_encode(p, v[i].data, v[i].len);
    }

    p = cr_cpy(p, url->data + base, url->len - base);
    *len = p - out;

    return NULL;
}


const char *
cr_target_scheme(const cr_binding_t *b, const char *code, char *out,
    size_t *len)
{
    char            *p, q[CR_MP_QUERY_MAX + 8 + CR_CODE_LEN];
    size_t           qlen;
    const char      *err;
    const cr_str_t  *own, *appid, *path, *query;

    if (!b->target_ok || b->campaign.type != CR_TARGET_MINIPROGRAM) {
        err = cr_check_mp(b->campaign.s);
        if (err) {
            return err;
        }
    }

    own = &b->campaign.s[CR_CAMP_URL];

    if (own->len) {
        *len = cr_cpy(out, own->data, own->len) - out;
        return NULL;
    }

    appid = &b->campaign.s[CR_CAMP_APPID];
    path = &b->campaign.s[CR_CAMP_PATH];
    query = &b->campaign.s[CR_CAMP_QUERY];

    /* The query as the mini-program will see it, the code appended;
     * cr_valid_mp_query() bounds it, so q always has room. */
    p = cr_cpy(q, query->data, query->len);
    if (query->len && p[-1] != '&') {
        *p++ = '&';
    }
    p = cr_cpy(p, "code=", 5);
    p = cr_cpy(p, code, CR_CODE_LEN);
    qlen = p - q;

    p = cr_cpy(out, CR_SCHEME_PREFIX, sizeof(CR_SCHEME_PREFIX) - 1);
    p = cr_cpy(p, appid->data, appid->len);
    p = cr_cpy(p, "&path=", 6);
    p += cr_url_encode(p, path->data, path->len);
    p = cr_cpy(p, "&query=", 7);
    p += cr_url_encode(p, q, qlen);
    p = cr_cpy(p, CR_SCHEME_SUFFIX, sizeof(CR_SCHEME_SUFFIX) - 1);
    *len = p - out;

    return NULL;
}
