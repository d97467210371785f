/*
 * cr_json: JSON string escaping for the verification API.
 *
 * Pure C.  The output is safe inside a JSON string and, because <, >, &
 * and ' are escaped too, inside an HTML <script> block.  Bytes that are
 * not valid UTF-8 become U+FFFD; U+2028 and U+2029 are escaped (some
 * JavaScript parsers end a line on them).
 */

#ifndef CR_JSON_H
#define CR_JSON_H

#include <stddef.h>


/* At most this many output bytes per input byte. */
#define CR_JSON_ESCAPE_MAX  6

/* Escapes s[0..n) into out (if not NULL); returns the output length. */
size_t cr_json_escape(char *out, const char *s, size_t n);

#endif /* CR_JSON_H */
