/*
 * Unit tests of cr_ua, TAP on stdout: the bot matcher on real User-Agents
 * and against a plain reference (lower-case the first 512 bytes, strstr
 * every occurrence of each word, keep those with a word boundary at both
 * ends).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cr_ua.h"
#include "tap.h"


static int
ref_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}


static int
ref_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}


/* The rule of cr_ua.h, written out: a word may start or end between
 * s[j - 1] and s[j]. */
static int
ref_edge(const unsigned char *s, size_t j, size_t len)
{
    int  before, here;

    if (j == 0 || j == len) {
        return 1;
    }

    before = ref_upper(s[j - 1]) || ref_lower(s[j - 1]);
    here = ref_upper(s[j]) || ref_lower(s[j]);

    if (before != here || !before) {
        return 1;                       /* a letter next to a non-letter */
    }

    if (!ref_upper(s[j])) {
        return 0;                       /* ...x or ...Xx: inside a word */
    }

    if (ref_lower(s[j - 1])) {
        return 1;                       /* xX: "ahrefsBot" */
    }

    return j + 1 < len && ref_lower(s[j + 1]);  /* XXx: "GPTBot" */
}


static int
reference(const unsigned char *ua, size_t len)
{
    char                low[CR_UA_BOT_SCAN + 1], *p;
    size_t              i, n, at;
    const char *const  *w;

    n = len < CR_UA_BOT_SCAN ? len : CR_UA_BOT_SCAN;

    for (i = 0; i < n; i++) {
        /* NUL would end strstr() early: any byte that is no letter. */
        low[i] = ua[i] >= 'A' && ua[i] <= 'Z' ? (char) (ua[i] | 0x20)
                 : ua[i] ? (char) ua[i] : '\x01';
    }
    low[n] = '\0';

    for (w = cr_ua_bot_words; *w; w++) {
        for (p = strstr(low, *w); p; p = strstr(p + 1, *w)) {
            at = (size_t) (p - low);

            if (ref_edge(ua, at, len) && ref_edge(ua, at + strlen(*w), len)) {
                return 1;
            }
        }
    }

    return 0;
}


static int
is_bot(const char *s)
{
    return cr_ua_is_bot((const unsigned char *) s, strlen(s));
}


int
main(void)
{
    int                 wrong, found, memo_wrong, keep_bot;
    char                keep[64];
    size_t              keep_len;
    char                buf[700];
    size_t              i, j, k, len, pos;
    size_t              nwords;
    unsigned            seed;
    const char *const  *w;

    /* People: each is counted.  Phones whose names hold "bot", "spider"
     * or "crawl" inside a word, in the form their browsers send. */
    static const char  *browsers[] = {
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
        "Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 "
        "MicroMessenger/8.0.50",
        /* issue 12: this CUBOT was never counted */
        "Mozilla/5.0 (Linux; Android 11; CUBOT KINGKONG 5 Pro) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.196 "
        "Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; CUBOT_X30 Build/QP1A.190711.020; "
        "wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
        "Chrome/86.0.4240.99 XWEB/4375 MMWEBSDK/20221011 Mobile "
        "Safari/537.36 MMWEBID/6131 MicroMessenger/8.0.30.2260(0x28001E3B)"
        " WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
        "Mozilla/5.0 (Linux; Android 9; Cubot P30 Build/PPR1.180610.011) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.104 "
        "Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 12; CUBOT NOTE 30) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36 "
        "SogouMobileBrowser/5.28.10",
        "Mozilla/5.0 (Linux; U; Android 10; zh-cn; V2001A "
        "Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/66.0.3359.126 MQQBrowser/10.5 Mobile "
        "Safari/537.36 QQ/8.4.10.4875",
        /* near misses: the words inside others */
        "Mozilla/5.0 (Linux; Android 12; Robotic X1) Chrome/120 Mobile",
        "Mozilla/5.0 (Linux; Android 12; SPIDERMAN-EDITION) Chrome/120",
        "Mozilla/5.0 (Linux; Android 12; Crawley 3) Chrome/120 Abbott",
        "Mozilla/5.0 (Linux; Android 12; BOTANIC Previewer) Chrome/120",
        "", "b", "bo", "Bo t", "ro-bo-t", "Previe", "CUBOT", "CUBOTS", "cubots"
    };

    /* Crawlers and link-preview fetchers: none is counted.  The QQ
     * string is QQ's URL checker as logged in public nginx logs (e.g.
     * the GitHub code search for "QQ-URL-Manager"); the WeChat one is
     * its iOS share extension ("WeChatShareExtensionNew", the name
     * matomo's device-detector lists as "WeChat Share Extension") in
     * the CFNetwork form every iOS extension sends. */
    static const char  *bots[] = {
        "Mozilla/5.0 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
        "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 "
        "Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)",
        "Googlebot-Image/1.0",
        "Mozilla/5.0 (compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; "
        "+http://www.baidu.com/search/spider.html)",
        "Mozilla/5.0 (compatible; Baiduspider-render/2.0; "
        "+http://www.baidu.com/search/spider.html)",
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Mobile Safari/537.36 (compatible; Bytespider; "
        "spider-feedback@bytedance.com)",
        "Sogou web spider/4.0(+http://www.sogou.com/docs/help/"
        "webmasters.htm#07)",
        "Sogou inst spider/4.0(+http://www.sogou.com/docs/help/"
        "webmasters.htm#07)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/69.0.3497.81 YisouSpider/5.0 "
        "Safari/537.36",
        "facebookexternalhit/1.1 "
        "(+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Slackbot 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (Linux; U; Android 4.4.2; zh-cn; GT-I9500 "
        "Build/KOT49H) AppleWebKit/537.36 (KHTML, like Gecko)Version/4.0 "
        "MQQBrowser/5.0 QQ-URL-Manager Mobile Safari/537.36",
        "WeChatShareExtensionNew/8.0.40 CFNetwork/1410.0.3 Darwin/22.6.0",
        "TelegramBot (like TwitterBot)", "Twitterbot/1.0",
        "WhatsApp/2.23.20.0 A",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
        "GPTBot/1.0; +https://openai.com/gptbot)",
        "CCBot/2.0 (https://commoncrawl.org/faq/)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
        "Mozilla/5.0 (compatible; Yahoo! Slurp; "
        "http://help.yahoo.com/help/us/ysearch/slurp)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "Chrome-Lighthouse", "Embedly/0.2",
        "ia_archiver (+http://www.alexa.com/site/help/webmasters; "
        "crawler@alexa.com)",
        "BOT", "xSpIdEr", "a bot"
    };

    for (i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++) {
        tap_ok(!is_bot(browsers[i]), "a browser is no bot: \"%.40s\"",
               browsers[i]);
    }

    for (i = 0; i < sizeof(bots) / sizeof(bots[0]); i++) {
        tap_ok(is_bot(bots[i]), "a bot: \"%s\"", bots[i]);
    }

    /* Every word, in either case, at every position of a 600-byte text of
     * spaces, is found exactly when it lies within the first 512 bytes;
     * inside other letters, never. */
    wrong = 0;
    for (w = cr_ua_bot_words; *w; w++) {
        len = strlen(*w);

        for (pos = 0; pos + len <= 600; pos++) {
            memset(buf, ' ', 600);
            for (k = 0; k < len; k++) {
                /* all upper case or all lower: camel case inside would
                 * make words of its own ("crawLer": "craw", "Ler") */
                buf[pos + k] = (char) (pos % 2 && (*w)[k] >= 'a'
                                       ? (*w)[k] - 'a' + 'A' : (*w)[k]);
            }
            found = cr_ua_is_bot((unsigned char *) buf, 600);
            wrong += found != (pos + len <= CR_UA_BOT_SCAN);

            memset(buf, 'q', 600);
            memcpy(buf + pos, *w, len);
            wrong += cr_ua_is_bot((unsigned char *) buf, 600);
        }
    }
    tap_ok(wrong == 0, "each word at each position of 600 bytes: found "
           "exactly within the first %d, never inside a word (%d wrong)",
           CR_UA_BOT_SCAN, wrong);

    /* Random strings of word prefixes (near misses, and sometimes whole
     * words) in random case and other bytes, against the reference. */
    for (nwords = 0; cr_ua_bot_words[nwords]; nwords++) {
        /* count */
    }

    wrong = 0;
    found = 0;
    memo_wrong = 0;
    keep_len = 0;
    keep_bot = 0;
    seed = 20261122;
    for (i = 0; i < 200000; i++) {
        static const char  other[] = " /-;()xX\x00\xc2\x80";

        len = 0;
        while (len < 60) {
            seed = seed * 1103515245 + 12345;
            if ((seed >> 16) % 3 == 0) {
                buf[len++] = other[(seed >> 20) % (sizeof(other) - 1)];
                continue;
            }

            w = &cr_ua_bot_words[(seed >> 16) % nwords];
            k = strlen(*w);
            k = (seed >> 24) % 8 == 0 ? k : 1 + (seed >> 20) % (k - 1);

            for (j = 0; j < k && len < 60; j++) {
                seed = seed * 1103515245 + 12345;
                buf[len++] = (char) ((seed >> 16) & 1 ? (*w)[j] - 'a' + 'A'
                                                      : (*w)[j]);
            }
        }

        k = cr_ua_is_bot((unsigned char *) buf, len);
        found += (int) k;

        /* Remembered: the same answer when new, again, and after other
         * strings took slots (200,000 strings through 64 slots). */
        memo_wrong += cr_ua_is_bot_memo((unsigned char *) buf, len) != (int) k;
        memo_wrong += cr_ua_is_bot_memo((unsigned char *) buf, len) != (int) k;
        if (i >= 1000 && i % 1000 == 0) {
            memo_wrong += cr_ua_is_bot_memo((unsigned char *) keep, keep_len)
                          != keep_bot;
        }
        if (i % 1000 == 0) {
            memcpy(keep, buf, len);
            keep_len = len;
            keep_bot = (int) k;
        }

        if ((int) k != reference((unsigned char *) buf, len) && wrong++ == 0) {
            tap_diag("differs from the reference on \"%.*s\"", (int) len,
                     buf);
        }
    }
    tap_ok(wrong == 0 && found > 20000 && found < 190000,
           "200,000 random strings: the same as the reference (%d bots)",
           found);
    tap_ok(memo_wrong == 0, "cr_ua_is_bot_memo: the same answers, new, "
           "remembered and replaced (%d wrong)", memo_wrong);

    /* Longer than a slot holds: not remembered, still answered. */
    memset(buf, 'x', 600);
    memcpy(buf + 400, " Googlebot/2.1", 14);
    tap_ok(cr_ua_is_bot_memo((unsigned char *) buf, 600) == 1
           && cr_ua_is_bot_memo((unsigned char *) buf, 300) == 0,
           "cr_ua_is_bot_memo: a User-Agent longer than %d bytes",
           CR_UA_MEMO_LEN);

    return tap_done();
}
