/*
 * Unit tests of cr_gs1_parse_request and the SSCC key, TAP on stdout:
 * known answers for /00/SSCC links (every outcome), the tolerated
 * trailing '/', and compressed Digital Links.  The compressed vectors
 * marked "toolkit" are what GS1's compression prototype (bundled in the
 * npm package digital-link.js 1.4.3, compressWebUri) writes for the
 * uncompressed link beside them; the others are built bit by bit from
 * the field layout (cr_gs1_request.c's comment), because the prototype
 * reads numbers through JavaScript doubles and so cannot write an
 * SSCC's 18 digits (docs/gs1.md).
 */

#include <stdio.h>
#include <string.h>

#include "cr_gs1.h"
#include "tap.h"


typedef struct {
    const char   *in;
    cr_gs1_rc_t   rc;
    const char   *uri;          /* the URI answered for, for CR_GS1_OK */
    int           compressed;
} req_t;


static const req_t  reqs[] = {
    /* SSCC: a case's or a pallet's key, no qualifiers. */
    { "/00/106141412345678908", CR_GS1_OK, "/00/106141412345678908", 0 },
    { "/s/00/106141412345678908?linkType=gs1:pip", CR_GS1_OK,
      "/s/00/106141412345678908?linkType=gs1:pip", 0 },
    { "/00/106141412345678980", CR_GS1_SSCC_CHECK, NULL, 0 },
    { "/00/106141412345678909", CR_GS1_SSCC_CHECK, NULL, 0 },
    { "/00/10614141234567890", CR_GS1_SSCC_DIGITS, NULL, 0 },
    { "/00/1061414123456789080", CR_GS1_SSCC_DIGITS, NULL, 0 },
    { "/00/10614141234567890A", CR_GS1_SSCC_DIGITS, NULL, 0 },
    { "/00/106141412345678908/21/1", CR_GS1_SSCC_QUALIFIER, NULL, 0 },
    { "/00/106141412345678908/10/AB", CR_GS1_SSCC_QUALIFIER, NULL, 0 },
    { "/00/106141412345678908/01/09506000134352", CR_GS1_OK,
      "/00/106141412345678908/01/09506000134352", 0 },
    /* A trailing '/': one is dropped, the rest is the parser's. */
    { "/01/09506000134352/", CR_GS1_OK, "/01/09506000134352", 0 },
    { "/01/09506000134352/21/ABC/?linkType=gs1:pip", CR_GS1_OK,
      "/01/09506000134352/21/ABC?linkType=gs1:pip", 0 },
    { "/00/106141412345678908/", CR_GS1_OK, "/00/106141412345678908", 0 },
    { "/01/09506000134352//", CR_GS1_BAD_PATH, NULL, 0 },
    { "/", CR_GS1_BAD_PATH, NULL, 0 },
    /* Compressed (toolkit). */
    { "/ARFKk4XBoA", CR_GS1_OK, "/01/09506000134352", 1 },
    { "/CxFRJydaKIlXgkIKMDk", CR_GS1_OK,
      "/01/09520123456788/10/ABC1/21/12345", 1 },
    { "/ChFKk4XBoIRUIMwAP2u25DC-F3m_6", CR_GS1_OK,
      "/01/09506000134352/22/2A/10/AB-123/21/x.y_z", 1 },
    { "/CxFKk4XBoQcFfC", CR_GS1_OK, "/01/09506000134352/10/A%2FB", 1 },
    { "/DBFKk4XBoE1XgkY", CR_GS1_OK, "/01/09506000134352/21/abc123", 1 },
    { "/DBFKk4XBoJFXm94k", CR_GS1_OK, "/01/09506000134352/21/ABCDEF12", 1 },
    { "/ARFKk4XBoeIlinkTypegfPzYuuGng", CR_GS1_OK,
      "/01/09506000134352?linkType=gs1%3Apip", 1 },
    /* ... with a stem, a query of its own, a trailing '/'. */
    { "/a/b/ARFKk4XBoA?x=1", CR_GS1_OK, "/a/b/01/09506000134352?x=1", 1 },
    { "/ARFKk4XBoeIlinkTypegfPzYuuGng?x=1", CR_GS1_OK,
      "/01/09506000134352?linkType=gs1%3Apip&x=1", 1 },
    { "/ARFKk4XBoA/", CR_GS1_OK, "/01/09506000134352", 1 },
    /* Built from the layout: an SSCC; leading zeros of a number kept. */
    { "/ABeRcNWtKMPA", CR_GS1_OK, "/00/106141412345678908", 1 },
    { "/CxFKk4XBoAgD2", CR_GS1_OK, "/01/09506000134352/10/0123", 1 },
    { "/CxFKk4XBoQcFBC", CR_GS1_VALUE_CHAR, NULL, 0 },       /* "A B" */
    /* Not compressed links: refused, never guessed at. */
    { "/ABeRcNWtKMPBCCgwg", CR_GS1_SSCC_QUALIFIER, NULL, 0 },
    { "/ARFKk4XBoAAvIuGrWlGHg", CR_GS1_BAD_COMPRESSED, NULL, 0 }, /* both */
    { "/ARFKk4XBoAIilScLg0A", CR_GS1_BAD_COMPRESSED, NULL, 0 },   /* twice */
    { "/ARFKk4XBoC5_je", CR_GS1_BAD_COMPRESSED, NULL, 0 },        /* AI 17 */
    { "/CxFKk4XBoSsGDBgwYMGDBgwYMGDBgwYMGDB", CR_GS1_VALUE_LENGTH, NULL,
      0 },                                                        /* 21 */
    { "/CxFKk4XBoUME", CR_GS1_BAD_COMPRESSED, NULL, 0 },   /* encoding 5 */
    { "/ARFKk4XBoB", CR_GS1_BAD_COMPRESSED, NULL, 0 },     /* padding 1 */
    { "/ARFKk4XBo", CR_GS1_BAD_COMPRESSED, NULL, 0 },      /* cut short */
    { "/ARFKk4XBoAA", CR_GS1_BAD_COMPRESSED, NULL, 0 },    /* 6 bits more */
    { "/AbXmIPSAAA", CR_GS1_BAD_COMPRESSED, NULL, 0 },     /* 10^14 */
    { "/A", CR_GS1_BAD_COMPRESSED, NULL, 0 },
    { "/ARFKk4XBo+A", CR_GS1_NO_GTIN, NULL, 0 },           /* not base64url */
    { "/ARFKk4XBoA/x", CR_GS1_BAD_COMPRESSED, NULL, 0 },
    { "/ARFKk4XBoA?", CR_GS1_BAD_QUERY, NULL, 0 },
};


static void
test_requests(void)
{
    int             compressed;
    char            out[CR_GS1_CANON_MAX(128)];
    size_t          i, n;
    cr_gs1_rc_t     rc;
    const req_t    *q;
    cr_gs1_link_t   dl;

    for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        q = &reqs[i];
        rc = cr_gs1_parse_request(q->in, strlen(q->in), out, &n,
                                  &compressed, &dl);

        if (!tap_ok(rc == q->rc, "%s: %s", q->in, cr_gs1_rc_name(q->rc))) {
            tap_diag("got %s", cr_gs1_rc_name(rc));
            continue;
        }

        if (rc != CR_GS1_OK) {
            continue;
        }

        tap_ok(n == strlen(q->uri) && memcmp(out, q->uri, n) == 0
               && compressed == q->compressed,
               "%s: answered as %s%s", q->in, q->uri,
               q->compressed ? " (compressed)" : "");
        if (n != strlen(q->uri) || memcmp(out, q->uri, n) != 0) {
            tap_diag("got %.*s", (int) n, out);
        }
    }
}


/* The SSCC's fields: its key and AI, no GTIN, no qualifiers. */
static void
test_sscc_fields(void)
{
    cr_gs1_link_t  dl;

    tap_ok(cr_gs1_parse_url("HTTPS://C.BRAND.CN/00/106141412345678908", 40,
                            &dl) == CR_GS1_OK
           && strcmp(dl.key, "106141412345678908") == 0
           && strcmp(dl.ai, "00") == 0 && dl.gtin[0] == '\0' && dl.has == 0,
           "an SSCC URL: key, AI 00, no GTIN, no qualifiers");

    tap_ok(cr_gs1_parse("/01/09506000134352/21/A", 23, &dl) == CR_GS1_OK
           && strcmp(dl.key, "09506000134352") == 0
           && strcmp(dl.ai, "01") == 0,
           "a GTIN link: the key is the GTIN, AI 01");
}


int
main(void)
{
    test_requests();
    test_sscc_fields();

    return tap_done();
}
