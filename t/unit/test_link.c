/*
 * Unit tests of cr_link, TAP on stdout: the link row rules, the store key,
 * which link answers, and the linkset and description documents as exact
 * known answers.
 */

#include <stdio.h>
#include <string.h>

#include "cr_link.h"
#include "cr_record.h"
#include "tap.h"


#define S(x)  { x, sizeof(x) - 1 }

static const cr_link_t  links[] = {
    /* lot L1, in key order */
    { { S("09506000134352"), S("L1"), S("gs1:certificationInfo"),
        S("https://c.brand.cn/cert/L1"), S(""), S(""), S("") } },
    { { S("09506000134352"), S("L1"), S("gs1:pip"),
        S("https://c.brand.cn/l1/en"), S("Lot \"1\""), S("en"),
        S("text/html") } },
    /* the GTIN's */
    { { S("09506000134352"), S(""), S("gs1:defaultLink"),
        S("https://c.brand.cn/p"), S(""), S(""), S("") } },
    { { S("09506000134352"), S(""), S("gs1:pip"),
        S("https://c.brand.cn/p/en"), S(""), S("en"), S("") } },
    { { S("09506000134352"), S(""), S("gs1:pip"),
        S("https://c.brand.cn/p/zh"), S("产品"), S("zh-CN"), S("") } },
};
static const unsigned  levels[] = { 0, 0, 1, 1, 1 };
#define NLINKS  (sizeof(links) / sizeof(links[0]))


static void
test_checks(void)
{
    size_t  i;

    static const char  *good_types[] = {
        "gs1:pip", "gs1:certificationInfo", "gs1:defaultLink",
        "https://example.com/voc/recall"
    };
    static const char  *bad_types[] = {
        "", "gs1:", "pip", "gs1:p-p", "linkset", "http://example.com/x",
        "https://example.com/a b",
        "gs1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    };
    static const char  *good_langs[] = { "", "en", "zh-CN", "zh-Hans-CN",
                                         "ast" };
    static const char  *bad_langs[] = { "e", "english", "en_US", "en-",
                                        "en-123456789", "-en", "zh CN" };
    static const char  *good_media[] = { "", "text/html", "application/pdf",
                                         "application/linkset+json" };
    static const char  *bad_media[] = { "text", "text/", "/html",
                                        "text/html; charset=utf-8",
                                        "text/ht ml" };

    for (i = 0; i < sizeof(good_types) / sizeof(char *); i++) {
        tap_ok(cr_link_type_check(good_types[i], strlen(good_types[i]))
               == NULL, "link type \"%s\" accepted", good_types[i]);
    }

    for (i = 0; i < sizeof(bad_types) / sizeof(char *); i++) {
        tap_ok(cr_link_type_check(bad_types[i], strlen(bad_types[i]))
               != NULL, "link type \"%s\" refused", bad_types[i]);
    }

    for (i = 0; i < sizeof(good_langs) / sizeof(char *); i++) {
        tap_ok(cr_link_lang_check(good_langs[i], strlen(good_langs[i]))
               == NULL, "lang \"%s\" accepted", good_langs[i]);
    }

    for (i = 0; i < sizeof(bad_langs) / sizeof(char *); i++) {
        tap_ok(cr_link_lang_check(bad_langs[i], strlen(bad_langs[i]))
               != NULL, "lang \"%s\" refused", bad_langs[i]);
    }

    for (i = 0; i < sizeof(good_media) / sizeof(char *); i++) {
        tap_ok(cr_link_media_check(good_media[i], strlen(good_media[i]))
               == NULL, "media type \"%s\" accepted", good_media[i]);
    }

    for (i = 0; i < sizeof(bad_media) / sizeof(char *); i++) {
        tap_ok(cr_link_media_check(bad_media[i], strlen(bad_media[i]))
               != NULL, "media type \"%s\" refused", bad_media[i]);
    }
}


static void
test_key(void)
{
    size_t   n, m;
    uint8_t  k[CR_LINK_KEY_MAX], lk[CR_LINK_KEY_MAX];

    n = cr_link_key(k, &links[1]);
    tap_ok(n == 14 + 1 + 2 + 1 + 7 + 1 + 2
           && memcmp(k, "09506000134352\0L1\0gs1:pip\0en", n) == 0,
           "key: gtin NUL lot NUL type NUL lang");
    m = cr_link_level_key(lk, "09506000134352", 14, "L1", 2);
    tap_ok(m == 18 && memcmp(k, lk, m) == 0,
           "the level key is the prefix of its links' keys");
    m = cr_link_level_key(lk, "09506000134352", 14, "", 0);
    n = cr_link_key(k, &links[2]);
    tap_ok(m == 16 && memcmp(k, lk, m) == 0,
           "the GTIN level: an empty lot");
    n = cr_link_key(k, &links[1]);
    tap_ok(memcmp(k, lk, m) != 0, "a lot's links are not the GTIN level's");
}


static void
test_pick(void)
{
    const cr_link_t  *l;

    l = cr_link_pick(links, NLINKS, "gs1:pip", 7, NULL, 0);
    tap_ok(l == &links[1], "pip: the lot's first");
    l = cr_link_pick(links, NLINKS, "gs1:pip", 7, "zh-CN,zh;q=0.9", 14);
    tap_ok(l == &links[4], "pip for zh: the GTIN's zh-CN link");
    l = cr_link_pick(links, NLINKS, "gs1:pip", 7, "fr", 2);
    tap_ok(l == &links[1], "pip for fr: none in French, the first");
    l = cr_link_pick(links + 2, NLINKS - 2, "gs1:pip", 7, " EN-gb", 6);
    tap_ok(l == &links[3], "pip for EN-gb at the GTIN level: en");
    l = cr_link_pick(links, NLINKS, CR_LINK_DEFAULT, 15, NULL, 0);
    tap_ok(l == &links[2], "the default link: the GTIN's");
    l = cr_link_pick(links, NLINKS, "gs1:traceability", 16, NULL, 0);
    tap_ok(l == NULL, "a type nobody has: NULL");
    l = cr_link_pick(links, NLINKS, "gs1:pi", 6, NULL, 0);
    tap_ok(l == NULL, "a prefix of a type is not the type");
}


static void
test_linkset(void)
{
    char    buf[2048];
    size_t  n, m;

    static const char  want[] =
        "{\"linkset\":[{\"anchor\":\"https://c.brand.cn/01/09506000134352"
        "/10/L1\","
        "\"https://gs1.org/voc/certificationInfo\":["
        "{\"href\":\"https://c.brand.cn/cert/L1\","
        "\"title\":\"gs1:certificationInfo\"}],"
        "\"https://gs1.org/voc/pip\":["
        "{\"href\":\"https://c.brand.cn/l1/en\",\"title\":\"Lot \\\"1\\\"\","
        "\"hreflang\":[\"en\"],\"type\":\"text/html\"}],"
        "\"https://gs1.org/voc/defaultLink\":["
        "{\"href\":\"https://c.brand.cn/p\","
        "\"title\":\"gs1:defaultLink\"}]}]}\n";
    static const char  anchor[] = "https://c.brand.cn/01/09506000134352/10/L1";

    n = cr_linkset_json(NULL, 0, anchor, sizeof(anchor) - 1, links, levels,
                        NLINKS);
    tap_ok(n == sizeof(want) - 1, "the length is known first (%zu)", n);
    m = cr_linkset_json(buf, sizeof(buf), anchor, sizeof(anchor) - 1, links,
                        levels, NLINKS);
    tap_ok(m == n && memcmp(buf, want, n) == 0,
           "one relation per type, the lot's pip replacing the GTIN's, a "
           "title on every link (the type if none was loaded)");
    if (m != n || memcmp(buf, want, n) != 0) {
        tap_diag("got %.*s", (int) m, buf);
    }

    m = cr_linkset_json(buf, 10, anchor, sizeof(anchor) - 1, links, levels,
                        NLINKS);
    tap_ok(m == n, "a short buffer: the length all the same");

    n = cr_linkset_json(buf, sizeof(buf), "https://x/01/09506000134352", 27,
                        links + 2, levels + 2, NLINKS - 2);
    buf[n] = '\0';
    tap_ok(strstr(buf, "\"https://gs1.org/voc/pip\":[{\"href\":"
                       "\"https://c.brand.cn/p/en\",\"title\":\"gs1:pip\","
                       "\"hreflang\":[\"en\"]},"
                       "{\"href\":\"https://c.brand.cn/p/zh\",\"title\":"
                       "\"\xe4\xba\xa7\xe5\x93\x81\",\"hreflang\":"
                       "[\"zh-CN\"]}]") != NULL,
           "two languages of one type: one relation, two targets");
    n = cr_linkset_json(buf, sizeof(buf), "https://x/01/09506000134352", 27,
                        links, levels, 0);
    buf[n] = '\0';
    tap_ok(strcmp(buf, "{\"linkset\":[{\"anchor\":"
                       "\"https://x/01/09506000134352\"}]}\n") == 0,
           "no links: the anchor alone");
}


static void
test_description(void)
{
    char    buf[1024];
    size_t  n;

    n = cr_gs1_description_json(buf, sizeof(buf), "https://c.brand.cn", 18);
    buf[n < sizeof(buf) ? n : 0] = '\0';
    tap_ok(strncmp(buf, "{\"name\":\"code-router\",\"resolverRoot\":"
                        "\"https://c.brand.cn\",\"supportedPrimaryKeys\":"
                        "[\"01\"]", 77) == 0,
           "the description names its root and its key");
    tap_ok(n == cr_gs1_description_json(NULL, 0, "https://c.brand.cn", 18),
           "its length is known first");
}


int
main(void)
{
    test_checks();
    test_key();
    test_pick();
    test_linkset();
    test_description();

    return tap_done();
}
