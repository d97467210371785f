/*
 * cr_ua: what a User-Agent says about its client.  Pure C, so the module
 * and the unit tests share it.
 */

#ifndef CR_UA_H
#define CR_UA_H

#include <stddef.h>


#define CR_UA_BOT_SCAN  512            /* bytes of the User-Agent searched */


/*
 * 1 if the first CR_UA_BOT_SCAN bytes of ua hold, in any case, one of the
 * built-in words of link-preview fetchers and crawlers ("bot", "crawl",
 * "spider", "whatsapp"... see cr_ua.c), else 0.
 */
int cr_ua_is_bot(const unsigned char *ua, size_t len);

/* The built-in words, NULL-terminated (for tests and docs). */
extern const char *const  cr_ua_bot_words[];

#endif /* CR_UA_H */
