/*
 * cr_format_human_time: the times the verify pages show a shopper, in the
 * brand's zone; and the zones code_router_time_zone takes (cr_parse_zone).
 */

#include <string.h>

#include "cr_time.h"
#include "tap.h"


static void
expect(int64_t t, int tz, int en, const char *want)
{
    char  buf[CR_HUMAN_TIME_LEN];

    cr_format_human_time(buf, sizeof(buf), t, tz, en);

    if (!tap_ok(strcmp(buf, want) == 0, "%lld %+d %s: %s", (long long) t, tz,
                en ? "en" : "zh", want))
    {
        tap_diag("got %s", buf);
    }
}


int
main(void)
{
    char     small[8];
    int16_t  tz;

    /* 2026-11-30T13:41:30Z, the example, in Beijing. */
    expect(1796046090, 480, 0, "2026年11月30日 21:41");
    expect(1796046090, 480, 1, "30 Nov 2026, 21:41");
    expect(1796046090, 0, 1, "30 Nov 2026, 13:41");
    /* Across midnight and a month, both ways. */
    expect(1796083200 - 60, 480, 0, "2026年12月1日 07:59");
    expect(1796083200 - 60, -300, 1, "30 Nov 2026, 18:59");
    expect(1796083200 - 8 * 3600, 480, 1, "1 Dec 2026, 00:00");
    expect(0, 0, 1, "1 Jan 1970, 00:00");
    expect(1709164800, 0, 0, "2024年2月29日 00:00");
    expect(1709164800, 330, 1, "29 Feb 2024, 05:30");
    expect(253402300799, 0, 1, "31 Dec 9999, 23:59");
    expect(253402300800, 0, 1, "253402300800");
    expect(-1, 0, 0, "-1");

    cr_format_human_time(small, sizeof(small), 1796046090, 480, 1);
    tap_ok(strcmp(small, "30 Nov ") == 0, "cut to the buffer: \"%s\"", small);

    tap_ok(cr_parse_zone("+08:00", 6, &tz) == NULL && tz == 480, "+08:00");
    tap_ok(cr_parse_zone("-05:30", 6, &tz) == NULL && tz == -330, "-05:30");
    tap_ok(cr_parse_zone("Z", 1, &tz) == NULL && tz == 0, "Z");
    tap_ok(cr_parse_zone("Asia/Shanghai", 13, &tz) != NULL,
           "a zone name is refused");
    tap_ok(cr_parse_zone("+8", 2, &tz) != NULL, "+8 is refused");

    return tap_done();
}
