/*
 * cr_gs1: GS1 Digital Link URIs with a GTIN or SSCC key, and their
 * compressed form, written once.
 *
 * Pure C: linked by the nginx module (code_router_gs1), the CLI (mint
 * --gtin, inspect) and the tests.  What is accepted, and every deliberate
 * difference from the standard's grammar, is in docs/gs1.md; the npm
 * package digital-link.js judges the same corpus (t/25-gs1-oracle.t).
 *
 *     [/stem]/01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}][?query]
 *     [/stem]/00/{sscc}[?query]
 *
 * - the key is the rightmost "01" or "00" segment followed by an even
 *   number of segments (as digital-link.js finds it); the segments before
 *   it are the stem: non-empty RFC 3986 path segments, not interpreted;
 * - the GTIN is 14 digits with a correct mod-10 check digit (GTIN-8, -12
 *   and -13 are written zero-padded to 14); the SSCC (a case's or a
 *   pallet's) 18 digits with one, and no key qualifiers;
 * - key qualifiers 22, 10, 21 at most once each, in that order; no other;
 * - a value is 1..20 characters of GS1's AI 82 set: 0-9 A-Z a-z - . _
 *   written as they are, the other 19 percent-encoded (%21 for '!', %2F
 *   for '/', hex digits of either case); nothing else, and no escape of a
 *   character that needs none;
 * - a query, if any, is RFC 3986 query characters with valid escapes, and
 *   its first parameter is NAME=VALUE with a non-empty NAME; parameters are
 *   separated by '&' or ';'.  linkType is the first parameter so named.
 */

#ifndef CR_GS1_H
#define CR_GS1_H

#include <stddef.h>


#define CR_GS1_GTIN_LEN    14
#define CR_GS1_SSCC_LEN    18
#define CR_GS1_KEY_MAX     CR_GS1_SSCC_LEN
#define CR_GS1_VALUE_MAX   20       /* decoded characters of 22, 10, 21 */

/* The longest encoded value: every character as %XX. */
#define CR_GS1_VALUE_ENC_MAX  (3 * CR_GS1_VALUE_MAX)

#define CR_GS1_HAS_CPV     1
#define CR_GS1_HAS_LOT     2
#define CR_GS1_HAS_SERIAL  4


/* Outcome of cr_gs1_parse(), named by cr_gs1_rc_name(). */
typedef enum {
    CR_GS1_OK = 0,
    CR_GS1_BAD_URL,         /* full URLs only: not http(s)://host[:port]/ */
    CR_GS1_BAD_PATH,        /* empty segment, bad character or escape */
    CR_GS1_NO_GTIN,         /* no /01/{gtin} nor /00/{sscc} key */
    CR_GS1_GTIN_DIGITS,     /* not 14 digits (pad GTIN-8/12/13 with 0s) */
    CR_GS1_GTIN_CHECK,      /* wrong check digit */
    CR_GS1_BAD_QUALIFIER,   /* a key qualifier other than 22, 10, 21 */
    CR_GS1_QUALIFIER_ORDER, /* repeated, or not in the order 22, 10, 21 */
    CR_GS1_VALUE_CHAR,      /* outside AI 82, or not encoded as required */
    CR_GS1_VALUE_LENGTH,    /* empty, or over 20 characters decoded */
    CR_GS1_BAD_QUERY,       /* not a query as above */
    CR_GS1_SSCC_DIGITS,     /* an SSCC not of 18 digits */
    CR_GS1_SSCC_CHECK,      /* an SSCC's check digit wrong */
    CR_GS1_SSCC_QUALIFIER,  /* anything after /00/{sscc} in the path */
    CR_GS1_BAD_COMPRESSED   /* not the compressed form of a link above */
} cr_gs1_rc_t;


/* One parsed link.  Pointers point into the parsed URI. */
typedef struct {
    const char  *stem;          /* "" or "/seg/seg", raw */
    size_t       stem_len;
    const char  *ai;            /* the key's AI: "01" or "00" */
    char         key[CR_GS1_KEY_MAX + 1];       /* GTIN-14 or SSCC-18 */
    char         gtin[CR_GS1_GTIN_LEN + 1];     /* "" for an SSCC */
    unsigned     has;           /* CR_GS1_HAS_* */
    char         cpv[CR_GS1_VALUE_MAX + 1];     /* decoded, NUL-terminated */
    char         lot[CR_GS1_VALUE_MAX + 1];
    char         serial[CR_GS1_VALUE_MAX + 1];
    size_t       cpv_len, lot_len, serial_len;
    const char  *query;         /* after '?', raw; NULL if there is none */
    size_t       query_len;
    const char  *link_type;     /* linkType's value, raw (percent-encoded) */
    size_t       link_type_len; /* link_type NULL if absent */
} cr_gs1_link_t;


/*
 * Parses a request URI as it arrives on the request line: "len" bytes at
 * "uri", path and optional "?query", no fragment, not percent-decoded
 * (an encoded '/' inside a value must stay a value).  Fills *dl on
 * CR_GS1_OK; on any other outcome *dl is undefined.
 */
cr_gs1_rc_t cr_gs1_parse(const char *uri, size_t len, cr_gs1_link_t *dl);

/*
 * As cr_gs1_parse(), for an absolute URL: "http://" or "https://" (either
 * case), a host (RFC 3986 reg-name, IPv4 or [IPv6]), an optional ":port",
 * then the request URI.  A URL without a path is CR_GS1_NO_GTIN.
 */
cr_gs1_rc_t cr_gs1_parse_url(const char *url, size_t len, cr_gs1_link_t *dl);

/*
 * The code in a printed text, read one way by inspect and by the loader's
 * code column: a GS1 Digital Link's serial (AI 21); else a URL's last
 * path segment (HTTPS://C.BRAND.CN/CODE); else the text itself.  Returns
 * CR_GS1_NO_GTIN (not a Digital Link: not an http(s) URL, or one without
 * a GTIN key; *code and *code_len set), CR_GS1_OK (*dl filled; *code is
 * its serial, or NULL if it has no AI 21), or the outcome that makes a
 * URL an invalid Digital Link (*code NULL).
 */
cr_gs1_rc_t cr_gs1_code_of(const char *s, size_t n, cr_gs1_link_t *dl,
    const char **code, size_t *code_len);

/*
 * Parses the request URI a resolver answers for (docs/gs1.md): "len"
 * bytes at "uri" as cr_gs1_parse() takes them, with one trailing '/' of
 * the path tolerated (dropped), and a compressed Digital Link
 * ([/stem]/{base64url}[?query], GS1 Digital Link: Compression) written
 * out uncompressed: [/stem]/01/...[?pairs][&query].  That URI, the one
 * the link is answered for, is written to out (at most
 * CR_GS1_CANON_MAX(len) bytes, no NUL; *dl points into it), its length
 * to *out_len, and *compressed says whether it was compressed.  Returns
 * cr_gs1_parse()'s outcome for it; CR_GS1_BAD_COMPRESSED for a last
 * segment of base64url characters, after no key, that is no compressed
 * link this parser takes (the AIs 00, 01, 22, 10 and 21, non-GS1
 * key=value pairs, zero bits padding the last character).
 */
#define CR_GS1_CANON_MAX(len)  (3 * (len) + 64)

cr_gs1_rc_t cr_gs1_parse_request(const char *uri, size_t len, char *out,
    size_t *out_len, int *compressed, cr_gs1_link_t *dl);

/* "ok", "bad_url", "bad_path", "no_gtin", ... as in the enum. */
const char *cr_gs1_rc_name(cr_gs1_rc_t rc);

/* A sentence for a person: what is wrong and how to write it. */
const char *cr_gs1_rc_text(cr_gs1_rc_t rc);

/*
 * Writes the GTIN-14 of a GTIN-8, -12, -13 or -14 with a correct check
 * digit (cr_valid_gtin) to out, zero-padded, NUL-terminated.  Returns 0,
 * or -1 if the GTIN is not valid.
 */
int cr_gs1_gtin14(char out[CR_GS1_GTIN_LEN + 1], const char *s, size_t n);

/*
 * Percent-encodes a key-qualifier value as a Digital Link writes it
 * (upper-case hex, so a URL stays in QR alphanumeric mode as far as the
 * value allows).  Writes at most CR_GS1_VALUE_ENC_MAX bytes and a NUL to
 * out; returns the encoded length, or -1 if the value is empty, longer
 * than CR_GS1_VALUE_MAX or has a character outside AI 82.
 */
int cr_gs1_encode_value(char out[CR_GS1_VALUE_ENC_MAX + 1], const char *s,
    size_t n);

/*
 * Percent-decodes len bytes of a query value (linkType) into out (at most
 * "size" bytes, no NUL); '+' stays '+'.  Returns the decoded length, or -1
 * if it does not fit or an escape is not %XX.
 */
int cr_gs1_decode(char *out, size_t size, const char *s, size_t len);

#endif /* CR_GS1_H */
