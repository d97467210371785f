/*
 * cr_ua: what a User-Agent says about its client.  Pure C, so the module
 * and the unit tests share it.
 */

#ifndef CR_UA_H
#define CR_UA_H

#include <stddef.h>


#define CR_UA_BOT_SCAN  512            /* bytes of the User-Agent searched */


/*
 * 1 if the first CR_UA_BOT_SCAN bytes of ua hold, in any ASCII case, one
 * of the built-in words of crawlers and link-preview fetchers as a whole
 * word, else 0.  The words are generic ("bot", "spider", "crawler",
 * "preview"...) or names ("googlebot", "baiduspider", "whatsapp"...; see
 * cr_ua.c).  A word starts and ends at either end of the User-Agent, next
 * to a byte that is no ASCII letter, or where camel case starts a word
 * (before "Bot" in "AhrefsBot" and "GPTBot"): "Googlebot/2.1", "Sogou web
 * spider", "TelegramBot" are bots; "CUBOT KINGKONG", "Cubot", "Robotic"
 * are not.  A word must lie wholly within the first CR_UA_BOT_SCAN bytes
 * (its end is judged by the byte after it, which may lie beyond them).
 */
int cr_ua_is_bot(const unsigned char *ua, size_t len);

/*
 * cr_ua_is_bot(ua, len), remembered: the answers for the last User-Agents
 * of at most CR_UA_MEMO_LEN bytes, one per slot of a small table indexed
 * by a hash of all the bytes, compared whole before an answer is reused
 * (the same answer, never a guess).  Phones send few distinct strings
 * (one iOS version's Safari is one string), so most scans skip the list.
 * The table is the process's own: not for threads.
 */
#define CR_UA_MEMO_LEN    256
#define CR_UA_MEMO_SLOTS  64

int cr_ua_is_bot_memo(const unsigned char *ua, size_t len);

/*
 * The device of a campaign rule (cr_device_e in cr_record.h), one value,
 * the first that holds: CR_DEVICE_WECHAT if wechat is set (the router's
 * own WeChat check, code_router_wechat_ua, decides that), CR_DEVICE_ALIPAY
 * for Alipay's in-app browser ("AlipayClient"), CR_DEVICE_IOS for
 * "iPhone", "iPad" or "iPod", CR_DEVICE_ANDROID for "Android", else
 * CR_DEVICE_OTHER (no User-Agent too).  Case-sensitive, as the clients
 * write them; the first CR_UA_BOT_SCAN bytes are searched.
 */
unsigned cr_ua_device(const unsigned char *ua, size_t len, int wechat);

/* The built-in words, NULL-terminated (for tests and docs). */
extern const char *const  cr_ua_bot_words[];

#endif /* CR_UA_H */
