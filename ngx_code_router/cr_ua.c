/*
 * cr_ua: see cr_ua.h.
 */

#include <stdint.h>
#include <string.h>

#include "cr_ua.h"


const char *const  cr_ua_bot_words[] = {
    "bot", "crawl", "embedly", "facebookexternalhit", "headless",
    "lighthouse", "preview", "skypeuripreview", "slurp", "spider",
    "telegram", "whatsapp", NULL
};


static void cr_ua_init(void);
static int cr_ua_words_at(const unsigned char *p, unsigned which, size_t n);
static int cr_ua_word_at(const unsigned char *p, const char *w, size_t n);


/*
 * Byte pairs, lower-cased, in a table of all 65,536: the low 4 bits say
 * which word (index + 1) starts with the pair, the high 4 bits which word
 * has it as its second and third letters; 15: more than one, try them
 * all.  Every word has 3 letters or more, so looking at every other
 * position is enough: a word starting at an odd position has its second
 * and third letters at the even one after it.
 */
#define CR_UA_ALL  15

static uint8_t  cr_ua_pairs[65536];
static int      cr_ua_ready;


/*
 * A PCRE alternation of the words cost some 6,000 instructions for a
 * phone's User-Agent even JIT-compiled; a table of first letters then the
 * second letter, a byte at a time, about 2,300; this about 1,400.
 */
int
cr_ua_is_bot(const unsigned char *ua, size_t len)
{
    size_t    n, e;
    unsigned  mark;

    if (!cr_ua_ready) {
        cr_ua_init();
    }

    n = len < CR_UA_BOT_SCAN ? len : CR_UA_BOT_SCAN;

    for (e = 0; e + 1 < n; e += 2) {
        mark = cr_ua_pairs[(unsigned) (ua[e] | 0x20) << 8
                           | (ua[e + 1] | 0x20)];

        if (mark == 0) {
            continue;
        }

        if (cr_ua_words_at(ua + e, mark & 15, n - e)
            || (e > 0 && cr_ua_words_at(ua + e - 1, mark >> 4, n - e + 1)))
        {
            return 1;
        }
    }

    return 0;
}


static void
cr_ua_init(void)
{
    unsigned              i, a, b, id;
    const unsigned char  *u;

    for (i = 0; cr_ua_bot_words[i]; i++) {
        u = (const unsigned char *) cr_ua_bot_words[i];
        a = (unsigned) u[0] << 8 | u[1];
        b = (unsigned) u[1] << 8 | u[2];
        id = i + 1 < CR_UA_ALL ? i + 1 : CR_UA_ALL;

        cr_ua_pairs[a] = (uint8_t) ((cr_ua_pairs[a] & 0xf0)
                                    | ((cr_ua_pairs[a] & 15) ? CR_UA_ALL
                                                             : id));
        cr_ua_pairs[b] = (uint8_t) ((cr_ua_pairs[b] & 15)
                                    | ((cr_ua_pairs[b] >> 4) ? CR_UA_ALL
                                                             : id) << 4);
    }

    cr_ua_ready = 1;
}


/* Whether word "which" (index + 1; CR_UA_ALL: any; 0: none) starts at p,
 * within n bytes. */
static int
cr_ua_words_at(const unsigned char *p, unsigned which, size_t n)
{
    const char *const  *w;

    if (which != CR_UA_ALL) {
        return which && cr_ua_word_at(p, cr_ua_bot_words[which - 1], n);
    }

    for (w = cr_ua_bot_words; *w; w++) {
        if (cr_ua_word_at(p, *w, n)) {
            return 1;
        }
    }

    return 0;
}


/* Whether the word w (lower case) starts at p, in any ASCII case, within
 * n bytes. */
static int
cr_ua_word_at(const unsigned char *p, const char *w, size_t n)
{
    size_t  i;

    for (i = 0; w[i]; i++) {
        if (i == n) {
            return 0;
        }

        if (p[i] != (unsigned char) w[i]
            && !(p[i] >= 'A' && p[i] <= 'Z' && (p[i] | 0x20) == w[i]))
        {
            return 0;
        }
    }

    return 1;
}
