/*
 * cr_ua: see cr_ua.h.
 */

#include <stdint.h>
#include <string.h>

#include "cr_record.h"
#include "cr_ua.h"


/*
 * Generic words first, then names of crawlers and link-preview fetchers
 * whose own name does not end in a word of its own ("Googlebot", not
 * "AhrefsBot"), each matched as a whole word (see cr_ua.h).  Not "sogou"
 * (SogouMobileBrowser is a browser; Sogou's spiders say "spider"), not
 * "telegram" (Telegram's in-app browser; its fetcher is TelegramBot).
 * Every entry starts with two letters and ends with a letter; at most 64.
 */
const char *const  cr_ua_bot_words[] = {
    "bot", "bots", "crawl", "crawler", "spider", "slurp", "preview",
    "headless", "lighthouse", "embedly", "iframely", "archiver",

    "googlebot", "bingbot", "msnbot", "baiduspider", "bytespider",
    "sosospider", "applebot", "amazonbot", "slackbot", "twitterbot",
    "telegrambot", "discordbot", "pinterestbot", "redditbot",
    "bitlybot", "facebot", "facebookexternalhit", "whatsapp",
    "skypeuripreview",

    /* WeChat's iOS share extension fetches a page for its link card;
     * QQ's URL checker fetches every link sent in QQ. */
    "wechatshareextensionnew", "qq-url-manager",
    NULL
};


#define CR_UA_OTHER  0
#define CR_UA_LOWER  1
#define CR_UA_UPPER  2

static void cr_ua_init(void);
static int cr_ua_boundary(const unsigned char *ua, size_t j, size_t len);
static int cr_ua_match(const unsigned char *ua, size_t i, size_t n,
    size_t len, uint64_t which);


/* Whether a word starts at a letter, by the class of the byte before
 * and its own (index before << 2 | here): after a non-letter; a capital
 * after a small letter ("ahrefsBot"); a capital after a capital if a
 * small letter follows ("GPTBot", not "CUBOT"). */
#define CR_UA_NO             0
#define CR_UA_YES            1
#define CR_UA_IF_LOWER_NEXT  2

static const uint8_t  cr_ua_start[12] = {
    /* before other */  CR_UA_NO, CR_UA_YES, CR_UA_YES, CR_UA_NO,
    /* before lower */  CR_UA_NO, CR_UA_NO, CR_UA_YES, CR_UA_NO,
    /* before upper */  CR_UA_NO, CR_UA_NO, CR_UA_IF_LOWER_NEXT, CR_UA_NO
};

typedef struct {
    size_t         len;                 /* 0: empty */
    int            bot;
    unsigned char  ua[CR_UA_MEMO_LEN];
} cr_ua_memo_t;

static cr_ua_memo_t  cr_ua_memo[CR_UA_MEMO_SLOTS];

static uint8_t   cr_ua_class[256];
static uint64_t  cr_ua_pairs[26 * 26];     /* entries by first two letters */
static int       cr_ua_ready;


/*
 * One pass over the bytes, carrying the class of the one before: only
 * where a word starts (cr_ua_boundary's rule, as a table of the classes
 * before and here) are its first two letters looked up, and only the
 * entries they begin (rarely any) compared; one that matches must end
 * where a word ends.  About 6 instructions a byte: most bytes are inside
 * a word, and a word is looked at once, not at each of its letters.
 */
int
cr_ua_is_bot(const unsigned char *ua, size_t len)
{
    size_t    i, n;
    unsigned  c, prev, start;
    uint64_t  which;

    if (!cr_ua_ready) {
        cr_ua_init();
    }

    n = len < CR_UA_BOT_SCAN ? len : CR_UA_BOT_SCAN;
    prev = CR_UA_OTHER;                 /* the start is a boundary */

    for (i = 0; i + 1 < n; i++) {
        c = cr_ua_class[ua[i]];
        start = cr_ua_start[prev << 2 | c];
        prev = c;

        if (start == CR_UA_NO
            || (start == CR_UA_IF_LOWER_NEXT
                && cr_ua_class[ua[i + 1]] != CR_UA_LOWER)
            || cr_ua_class[ua[i + 1]] == CR_UA_OTHER)
        {
            continue;
        }

        which = cr_ua_pairs[((ua[i] | 0x20) - 'a') * 26
                            + ((ua[i + 1] | 0x20) - 'a')];

        if (which && cr_ua_match(ua, i, n, len, which)) {
            return 1;
        }
    }

    return 0;
}


int
cr_ua_is_bot_memo(const unsigned char *ua, size_t len)
{
    size_t         i;
    uint64_t       h, w;
    cr_ua_memo_t  *m;

    if (len == 0 || len > CR_UA_MEMO_LEN) {
        return cr_ua_is_bot(ua, len);
    }

    /* Eight bytes at a time, multiplied in: every byte moves the slot. */
    h = len;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, ua + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    }

    for ( /* void */ ; i < len; i++) {
        h = (h ^ ua[i]) * 0x9e3779b97f4a7c15ULL;
    }

    m = &cr_ua_memo[(h >> 58) % CR_UA_MEMO_SLOTS];

    if (m->len == len && memcmp(m->ua, ua, len) == 0) {
        return m->bot;
    }

    m->bot = cr_ua_is_bot(ua, len);
    m->len = len;
    memcpy(m->ua, ua, len);

    return m->bot;
}


static void
cr_ua_init(void)
{
    unsigned     i, c;
    const char  *w;

    for (c = 'a'; c <= 'z'; c++) {
        cr_ua_class[c] = CR_UA_LOWER;
        cr_ua_class[c - 'a' + 'A'] = CR_UA_UPPER;
    }

    for (i = 0; cr_ua_bot_words[i]; i++) {
        w = cr_ua_bot_words[i];
        cr_ua_pairs[(w[0] - 'a') * 26 + (w[1] - 'a')] |= (uint64_t) 1 << i;
    }

    cr_ua_ready = 1;
}


/*
 * Whether a word may start or end between ua[j - 1] and ua[j]: at either
 * end of the User-Agent, between a letter and anything else, and inside
 * a run of letters where camel case starts a word ("AhrefsBot",
 * "HeadlessChrome", "GPTBot"; not "CUBOT").
 */
static int
cr_ua_boundary(const unsigned char *ua, size_t j, size_t len)
{
    unsigned  a, b;

    if (j == 0 || j == len) {
        return 1;
    }

    a = cr_ua_class[ua[j - 1]];
    b = cr_ua_class[ua[j]];

    if (a == CR_UA_OTHER || b == CR_UA_OTHER) {
        return 1;
    }

    return b == CR_UA_UPPER
           && (a == CR_UA_LOWER
               || (j + 1 < len && cr_ua_class[ua[j + 1]] == CR_UA_LOWER));
}


/* Whether one of the entries in "which" is at ua + i, in any ASCII case,
 * within the first n bytes, and ends at a boundary. */
static int
cr_ua_match(const unsigned char *ua, size_t i, size_t n, size_t len,
    uint64_t which)
{
    size_t       k;
    unsigned     b;
    const char  *w;

    /* The entries one by one, by their bits (usually one). */
    for ( /* void */ ; which; which &= which - 1) {
        b = (unsigned) __builtin_ctzll(which);
        w = cr_ua_bot_words[b];

        for (k = 0; w[k] && i + k < n; k++) {
            if ((cr_ua_class[ua[i + k]] == CR_UA_UPPER
                 ? ua[i + k] | 0x20 : ua[i + k]) != (unsigned char) w[k])
            {
                break;
            }
        }

        if (w[k] == '\0' && cr_ua_boundary(ua, i + k, len)) {
            return 1;
        }
    }

    return 0;
}


/*
 * Two passes of memchr() over the capitals of the markers: every "A"
 * (AlipayClient, Android) and every "P" after an "i" (iPhone, iPad,
 * iPod).  A phone's User-Agent has few of either: a handful of calls,
 * where a search per marker would stop at every "i" of the string.
 */
unsigned
cr_ua_device(const unsigned char *ua, size_t len, int wechat)
{
    int                   android;
    const unsigned char  *p, *last;

    if (wechat) {
        return CR_DEVICE_WECHAT;
    }

    if (len > CR_UA_BOT_SCAN) {
        len = CR_UA_BOT_SCAN;
    }

    last = ua + len;
    android = 0;

#define CR_AT(p, w)                                                          \
    ((size_t) (last - (p)) >= sizeof(w) - 1                                  \
     && memcmp(p, w, sizeof(w) - 1) == 0)

    for (p = ua; p < last && (p = memchr(p, 'A', last - p)); p++) {
        if (CR_AT(p, "AlipayClient")) {
            return CR_DEVICE_ALIPAY;
        }

        android |= CR_AT(p, "Android");
    }

    for (p = ua + 1; p < last && (p = memchr(p, 'P', last - p)); p++) {
        if (p[-1] == 'i'
            && (CR_AT(p, "Phone") || CR_AT(p, "Pad") || CR_AT(p, "Pod")))
        {
            return CR_DEVICE_IOS;
        }
    }

#undef CR_AT

    return android ? CR_DEVICE_ANDROID : CR_DEVICE_OTHER;
}
