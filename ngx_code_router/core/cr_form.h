/*
 * cr_form: one field of an application/x-www-form-urlencoded body.
 *
 * Pure C, no allocation.  The verify page posts "pin=..." with this
 * encoding; the module reads the body (at most CR_FORM_MAX bytes) and
 * asks for the one field it needs.
 *
 * The body is fields separated by '&'; a field is NAME=VALUE, or NAME
 * alone (an empty value); empty fields ("&&") are skipped.  In names and
 * values '+' is a space and %XX (two hex digits, either case) is that
 * byte; names are compared after decoding, byte for byte (so "p%69n" is
 * "pin", "PIN" is not).  Strict, so that no two readers of one body can
 * disagree about it: the whole body must be well formed, not just the
 * field asked for.
 */

#ifndef CR_FORM_H
#define CR_FORM_H

#include <stddef.h>


#define CR_FORM_MAX  1024          /* bytes of body the edge reads */


typedef enum {
    CR_FORM_OK = 0,
    CR_FORM_TOO_LONG,       /* body over CR_FORM_MAX, or the value over
                             * the caller's buffer */
    CR_FORM_NUL,            /* a NUL byte, raw or %00, anywhere */
    CR_FORM_BAD_ESCAPE,     /* '%' without two hex digits after it */
    CR_FORM_MISSING,        /* no field of that name */
    CR_FORM_REPEATED        /* the name twice or more: refused, never one
                             * of them picked (a proxy that keeps the
                             * first and a backend that keeps the last
                             * would read two PINs from one body) */
} cr_form_rc_t;


/*
 * Finds the field "name" (name_len bytes, already decoded) in body[0..len)
 * and writes its decoded value to out[0..cap), its length to *out_len (no
 * NUL added).  Errors are checked in this order, so one body always gives
 * one answer: CR_FORM_TOO_LONG if len > CR_FORM_MAX; then the body from
 * left to right, the first NUL (CR_FORM_NUL) or bad escape
 * (CR_FORM_BAD_ESCAPE) found; then CR_FORM_REPEATED, CR_FORM_MISSING;
 * then CR_FORM_TOO_LONG if the value does not fit in cap.  On any error
 * *out_len is 0 and out may hold garbage.
 */
cr_form_rc_t cr_form_field(const char *body, size_t len, const char *name,
    size_t name_len, char *out, size_t cap, size_t *out_len);

/* "ok", "too_long", "nul", "bad_escape", "missing", "repeated". */
const char *cr_form_rc_name(cr_form_rc_t rc);

#endif /* CR_FORM_H */
