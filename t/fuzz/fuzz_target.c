/*
 * libFuzzer target: the Location builders (cr_target) fed arbitrary
 * campaign and batch values, as a record written behind the loader's back
 * would hold.  Whatever the input, a built URL fits cr_target_size(), keeps
 * the stored URL's scheme, host and path, and passes the same rules the
 * loader applies: no header injection, no open redirect.
 *
 * Input: a flags byte (target type, scene), then the strings separated by
 * NUL bytes: url, appid, path, query, campaign id, batch id.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cr_codec.h"
#include "cr_target.h"
#include "cr_valid.h"


/* RFC 3986 characters, as cr_valid_url() allows: nothing that could end
 * a header line, break out of an HTML attribute or a quoted string. */
static int
safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("-._~:/?#[]@!$&'()*+,;=%", c) != NULL);
}


static void
check(const cr_binding_t *b, const char *code, cr_target_pt build,
    const char *scheme)
{
    char            *out;
    size_t           i, size, len, base;
    const char      *frag;
    const cr_str_t  *url;

    size = cr_target_size(b);
    out = malloc(size + 1);
    if (out == NULL) {
        return;
    }

    if (build(b, code, out, &len) == NULL) {
        if (len > size) {
            abort();
        }

        /* Appended ids may take a long URL past CR_URL_MAX (the loader
         * bounds them); the rest of the rules hold for any length. */
        if (len <= CR_URL_MAX && cr_valid_url(out, len, scheme) != NULL) {
            abort();
        }

        for (i = 0; i < len; i++) {
            if (!safe((unsigned char) out[i])) {
                abort();
            }
        }

        /* The stored URL up to its query or fragment is kept verbatim. */
        url = &b->campaign.s[CR_CAMP_URL];
        frag = memchr(url->data, '#', url->len);
        base = frag ? (size_t) (frag - url->data) : url->len;

        if (url->len && memcmp(out, url->data, base) != 0) {
            abort();
        }
    }

    free(out);
}


/* A binding vouched for by cr_target_check() (target_ok, as a reader's
 * copy sets it) builds exactly what a binding checked again builds. */
static void
same(cr_binding_t *b, const char *code)
{
    char          *o0, *o1;
    size_t         size, l0, l1;
    cr_target_pt   build;

    build = b->campaign.type == CR_TARGET_MINIPROGRAM ? cr_target_scheme
                                                      : cr_target_url;
    size = cr_target_size(b);
    o0 = malloc(size + 1);
    o1 = malloc(size + 1);

    if (o0 && o1) {
        b->target_ok = 0;
        if (build(b, code, o0, &l0) != NULL) {
            abort();
        }

        b->target_ok = 1;
        if (build(b, code, o1, &l1) != NULL || l0 != l1
            || memcmp(o0, o1, l0) != 0)
        {
            abort();
        }
    }

    free(o0);
    free(o1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *copy, *p, *end, *z;
    unsigned       i;
    cr_binding_t   b;

    static const int  field[6] = {
        CR_CAMP_URL, CR_CAMP_APPID, CR_CAMP_PATH, CR_CAMP_QUERY,
        CR_CAMP_ID, -1
    };

    static const char  code[CR_CODE_LEN + 1] = "0123456789ABCDEFGH";

    if (size < 1) {
        return 0;
    }

    /* An exact-size heap copy: ASan sees one byte past the end. */
    copy = malloc(size);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);

    memset(&b, 0, sizeof(b));
    b.has_batch = 1;
    b.has_campaign = 1;
    b.campaign.type = 1 + copy[0] % 3;
    b.batch.scene = 1 + (copy[0] >> 2) % 4;

    p = copy + 1;
    end = copy + size;

    for (i = 0; i < 6 && p <= end; i++) {
        z = memchr(p, '\0', end - p);
        if (z == NULL) {
            z = end;
        }

        if (field[i] >= 0) {
            b.campaign.s[field[i]].data = p;
            b.campaign.s[field[i]].len = z - p;
        } else {
            b.batch.s[CR_BATCH_ID].data = p;
            b.batch.s[CR_BATCH_ID].len = z - p;
        }

        p = z + 1;
    }

    check(&b, code, cr_target_url, "https://");
    check(&b, code, cr_target_scheme, "weixin://");

    /* Vouched for: the same URL, and the other type's builder still
     * checks everything itself. */
    if (cr_target_check(&b.campaign) == NULL) {
        same(&b, code);
        check(&b, code, cr_target_url, "https://");
        check(&b, code, cr_target_scheme, "weixin://");
    }

    free(copy);

    return 0;
}
