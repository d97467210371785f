/*
 * Unit tests of cr_ua, TAP on stdout: the bot matcher against a plain
 * reference (lower-case the first 512 bytes, strstr each word).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cr_ua.h"
#include "tap.h"


static int
reference(const unsigned char *ua, size_t len)
{
    char                low[CR_UA_BOT_SCAN + 1];
    size_t              i, n;
    const char *const  *w;

    n = len < CR_UA_BOT_SCAN ? len : CR_UA_BOT_SCAN;

    for (i = 0; i < n; i++) {
        /* NUL would end strstr() early: any byte that is no letter. */
        low[i] = ua[i] >= 'A' && ua[i] <= 'Z' ? (char) (ua[i] | 0x20)
                 : ua[i] ? (char) ua[i] : '\x01';
    }
    low[n] = '\0';

    for (w = cr_ua_bot_words; *w; w++) {
        if (strstr(low, *w) != NULL) {
            return 1;
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
    int                 wrong, found;
    char                buf[700];
    size_t              i, j, k, len, pos;
    unsigned            seed;
    const char *const  *w;

    static const char  *browsers[] = {
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 "
        "Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 "
        "MicroMessenger/8.0.50",
        "", "b", "bo", "Bo t", "ro-bo-t", "Previe"
    };

    static const char  *bots[] = {
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "facebookexternalhit/1.1", "WhatsApp/2.23", "TelegramBot",
        "Mozilla/5.0 (compatible; bingbot/2.0)", "Slackbot 1.0",
        "BOT", "xSpIdEr", "Yahoo! Slurp", "SkypeUriPreview Preview/0.5",
        "HeadlessChrome/120", "Chrome-Lighthouse", "Embedly/0.2",
        "ia_archiver crawler"
    };

    for (i = 0; i < sizeof(browsers) / sizeof(browsers[0]); i++) {
        tap_ok(!is_bot(browsers[i]), "a browser is no bot: \"%.40s\"",
               browsers[i]);
    }

    for (i = 0; i < sizeof(bots) / sizeof(bots[0]); i++) {
        tap_ok(is_bot(bots[i]), "a bot: \"%s\"", bots[i]);
    }

    /* Every word, in mixed case, at every position of a 600-byte text,
     * is found exactly when it starts within the first 512 bytes minus
     * its length. */
    wrong = 0;
    for (w = cr_ua_bot_words; *w; w++) {
        len = strlen(*w);

        for (pos = 0; pos + len <= 600; pos++) {
            memset(buf, 'x', 600);
            for (k = 0; k < len; k++) {
                buf[pos + k] = (char) ((pos + k) % 2
                                       ? (*w)[k] - 'a' + 'A' : (*w)[k]);
            }
            found = cr_ua_is_bot((unsigned char *) buf, 600);
            wrong += found != (pos + len <= CR_UA_BOT_SCAN);
        }
    }
    tap_ok(wrong == 0, "each word at each position of 600 bytes: found "
           "exactly within the first %d (%d wrong)", CR_UA_BOT_SCAN, wrong);

    /* Random strings of word prefixes (near misses, and sometimes whole
     * words) in random case and other bytes, against the reference. */
    wrong = 0;
    found = 0;
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

            w = &cr_ua_bot_words[(seed >> 16) % 12];
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

        if ((int) k != reference((unsigned char *) buf, len) && wrong++ == 0) {
            tap_diag("differs from the reference on \"%.*s\"", (int) len,
                     buf);
        }
    }
    tap_ok(wrong == 0 && found > 20000 && found < 180000,
           "200,000 random strings: the same as the reference (%d bots)",
           found);

    return tap_done();
}
