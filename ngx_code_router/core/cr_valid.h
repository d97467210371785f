/*
 * cr_valid: the rules every stored value obeys, written once.
 *
 * The loader checks each CSV field with these; the router checks targets
 * again before it emits them, so a record written behind the loader's back
 * cannot inject a header or redirect anywhere unsafe.  Each function returns
 * NULL if the value is acceptable, else a short reason for a message.
 * Dates and times are cr_time.h's.
 */

#ifndef CR_VALID_H
#define CR_VALID_H

#include <stddef.h>
#include <stdint.h>


#define CR_URL_MAX        2048
#define CR_NAME_MAX       256
#define CR_LABEL_MAX      64
#define CR_MP_PATH_MAX    256
#define CR_MP_QUERY_MAX   512      /* URL-encoded, code appended */

/* What the router appends to a mini-program query: "&code=" + the code. */
#define CR_MP_QUERY_CODE_ENC  (3 + 4 + 3 + 18)

/* [A-Za-z0-9._-], 1..CR_ID_MAX bytes: campaign and batch ids. */
const char *cr_valid_id(const char *s, size_t n);

/* The length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, at most U+10FFFF), its code point in *cp;
 * 0 if it is not one.  n >= 1. */
size_t cr_utf8_len(const char *s, size_t n, uint32_t *cp);

/* UTF-8 text without control characters, 0..max bytes: display names. */
const char *cr_valid_text(const char *s, size_t n, size_t max);

/* Text without spaces, quotes, <, >, backslash: SKU, lot, region. */
const char *cr_valid_label(const char *s, size_t n, size_t max);

/*
 * An absolute URL with the given scheme ("https://" or "weixin://"): a
 * host, no user info, only RFC 3986 characters (no spaces, double quotes,
 * <, >, backslash, control or non-ASCII bytes; a single quote is RFC 3986's
 * and allowed), at most CR_URL_MAX bytes.
 */
const char *cr_valid_url(const char *s, size_t n, const char *scheme);

/* "wx" and 16 lower-case hex digits. */
const char *cr_valid_appid(const char *s, size_t n);

/* A mini-program page path: no leading '/', no '?' or '#'. */
const char *cr_valid_mp_path(const char *s, size_t n);

/* A mini-program query: with the code appended, <= 512 bytes encoded. */
const char *cr_valid_mp_query(const char *s, size_t n);

/* Bytes s[0..n) percent-encoded as in a query value (RFC 3986 unreserved
 * kept); returns the encoded length; writes only if out != NULL. */
size_t cr_url_encode(char *out, const char *s, size_t n);

/* GTIN-8, -12, -13 or -14 with a correct GS1 mod-10 check digit.  A
 * number Excel wrote in scientific notation (6.90123E+12) is told how to
 * keep its digits. */
const char *cr_valid_gtin(const char *s, size_t n);

/* n digits whose last is the GS1 mod-10 check digit of the others (the
 * GTINs' and the SSCC's: weights 3, 1, 3, ... from the right). */
const char *cr_valid_check_digit(const char *s, size_t n);

/*
 * The scripts a product name uses (docs/loading.md, "Characters"): the
 * first code point of s[0..n) outside them into *cp, or returns 0 if
 * there is none.  Invalid UTF-8 is skipped (cr_valid_text refuses it).
 */
int cr_foreign_char(const char *s, size_t n, uint32_t *cp);

#endif /* CR_VALID_H */
