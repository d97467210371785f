#!/usr/bin/perl
# A deterministic corpus of User-Agent values for t/98 (one a line,
# bytes, no network): real browsers' strings, old and new (MSIE 4-11,
# Opera Presto and Blink, Konqueror, Gecko, Chrome, Safari, Edge, WeChat,
# in-app browsers, bots), and strings made to catch a search that differs
# from nginx's: each of nginx's words at the start, at the end, one byte
# short, repeated, overlapping itself, in another case, next to bytes
# above 0x7f and control bytes, and in values up to 7,000 bytes; then
# random mixtures of all of these from a fixed seed.  No value holds NUL,
# CR or LF (nginx refuses them in a header).
#
#   t/bin/ua-corpus.pl [N]    N random mixtures (default 3000)
use strict;
use warnings;

my $N = shift // 3000;
my @ua;

# ---------------------------------------------------------------- real
push @ua, split /\n/, <<'REAL';
Mozilla/4.0 (compatible; MSIE 4.01; Windows 95)
Mozilla/4.0 (compatible; MSIE 5.0; Windows 98; DigExt)
Mozilla/4.0 (compatible; MSIE 5.5; Windows NT 5.0)
Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)
Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)
Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1; .NET CLR 1.1.4322)
Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0; .NET CLR 1.0.3705)
Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)
Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; Trident/4.0; SV1)
Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)
Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)
Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)
Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko
Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; en) Opera 8.50
Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.229 Version/11.62
Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54
Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0
Mozilla/5.0 (compatible; Konqueror/3.5; Linux) KHTML/3.5.10 (like Gecko)
Mozilla/5.0 (X11; Linux x86_64) KHTML/5.20.0 (like Gecko) Konqueror/5
Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0
Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0
Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0
Mozilla/5.0 (Android 13; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0
Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.8.1.20) Gecko/20081217 Firefox/2.0.0.20
Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36
Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36
Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36
Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0
Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1
Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1
Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15
Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1
Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15
Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.33(0x18002129) NetType/WIFI Language/zh_CN
Mozilla/5.0 (Linux; Android 12; V2171A Build/SP1A.210812.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/86.0.4240.99 XWEB/4317 MMWEBSDK/20220903 Mobile Safari/537.36 MMWEBID/4481 MicroMessenger/8.0.28.2240(0x28001C57) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64
Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30
Mozilla/5.0 (Linux; Android 11; Redmi Note 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.104 Mobile Safari/537.36 UCBrowser/13.4.0.1306
Mozilla/5.0 (iPhone; CPU iPhone OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/6.5.10) DingTalk/6.5.10 Channel/201200 language/zh-Hans-CN
Mozilla/5.0 (Linux; Android 9; MI 6 Build/PKQ1.190118.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/76.0.3809.89 Mobile Safari/537.36 T7/11.20 SP-engine/2.16.0 baiduboxapp/11.20.2.3 (Baidu; P1 9)
Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)
Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)
Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)
Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)
Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)
Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0
WhatsApp/2.23.20.0 A
TelegramBot (like TwitterBot)
curl/8.5.0
Wget/1.21.3
python-requests/2.31.0
Go-http-client/1.1
Java/1.8.0_151
okhttp/4.9.0
Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.6.13
Links (2.20.2; Linux 5.10.0 x86_64; GNU C 10.2.1; text)
w3m/0.5.3+git20230121
Mozilla/3.0 (compatible; NetPositive/2.1.1; BeOS)
Mozilla/4.08 [en] (WinNT; U ;Nav)
Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.9.0.3) Gecko/2008092816 Iceweasel/3.0.3 (Debian-3.0.3-3)
Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4 NintendoBrowser/5.1.0.20393
Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0 Safari/605.1.15
Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like Gecko) Version/6.0 TV Safari/538.1
Dalvik/2.1.0 (Linux; U; Android 11; M2010J19SG Build/RKQ1.201004.002)
REAL

# Versions and platforms of the families, combined.
for my $v (4 .. 11) {
    for my $minor ('.0', '.01', '.5', '.', '', 'b', '.0b') {
        for my $tail ('', '; SV1', '; Windows NT 5.1; SV1', '; Windows NT 5.1',
                      '; SV1; Opera 9', ' SV', 'SV1') {
            push @ua, "Mozilla/4.0 (compatible; MSIE $v$minor$tail)";
        }
    }
}
for my $os ('Windows NT 10.0; Win64; x64', 'X11; Linux x86_64',
            'Macintosh; Intel Mac OS X 10_15_7', 'Linux; Android 14; Pixel 8',
            'iPhone; CPU iPhone OS 17_2 like Mac OS X') {
    for my $v (49, 87, 100, 118, 121) {
        push @ua, "Mozilla/5.0 ($os) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/$v.0.0.0 Safari/537.36",
                  "Mozilla/5.0 ($os; rv:$v.0) Gecko/20100101 Firefox/$v.0",
                  "Mozilla/5.0 ($os) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/$v.0 Safari/605.1.15",
                  "Mozilla/5.0 ($os) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.$v(0x1800292b) NetType/4G Language/zh_CN",
                  "Opera/9.80 ($os; U; en) Presto/2.12.388 Version/12.$v",
                  "Mozilla/5.0 ($os) KHTML/4.$v (like Gecko) Konqueror/4.$v";
    }
}

# ---------------------------------------------------------------- edges
my @words = ('MSIE ', 'Opera', 'Gecko/', 'Chrome/', 'Safari/', 'Mac OS X',
             'Konqueror', 'SV1', 'MSIE 6.0', 'MSIE 5.5', 'MSIE 4.', 'MSIE 6.');
for my $w (@words) {
    my $short = substr($w, 0, length($w) - 1);
    my $rest = substr($w, 1);
    push @ua, $w, "x$w", "${w}x", "xx$w", "$w$w", "$w$w$w", "$short",
              "$short$w", "$w$short", lc $w, uc $w, "$short x",
              substr($w, 0, 1) x 40 . $rest, "$short" x 20 . $w,
              " $w ", "\t$w\t", "\xff$w\xfe", "\x80$short\x80$w",
              "\x01$w\x7f", ('a' x 6990) . $w, $w . ('b' x 6990),
              ('M' x 3000) . $w . ('M' x 3000);
    # The word at each distance from the end, so that "msie + 7 < end"
    # is met and missed by one byte.
    push @ua, "Mozilla $w" . substr('6.0; SV1)', 0, $_) for 0 .. 9;
}
push @ua, 'MSIE 6.0; SV1', 'MSIE 6.0 SV1', 'MSIE 6.0SV1', 'MSIE 6.0;SV',
          'MSIE 6.0; sv1', 'SV1 MSIE 6.0 x', 'MSIE 6.0 x SV1 y', 'MSIE 6.0 xSV',
          'MSIE 6.0 xSV1', 'MSIE 6.0xSV1', 'MSIE 6.0 MSIE 5.5', 'MSIE 5.5 MSIE 6.0 SV1',
          'MSIE 6.1', 'MSIE 6,0 x', 'MSIE 66.0 x', 'MSIE .6.0x', 'MSIE 4.0',
          'MSIE 4.0 ', 'MSIE 4.0  ', 'MSIE 5.', 'MSIE 5.x', 'MSIE 5.xx',
          'Opera MSIE 6.0 x', 'MSIE 6.0 x Opera', 'OperaMSIE 5.0 x', 'MSIE 5.0 xOpera',
          'Opera Gecko/', 'Gecko/ Chrome/', 'Chrome/ Gecko/', 'Safari/ Mac OS X',
          'Mac OS X Safari/', 'Safari/ Mac OS', 'Mac OS XSafari/', 'Safari/Mac OS X',
          'Safari/ Konqueror', 'Konqueror Safari/', 'Chrome/ Safari/ Mac OS X',
          'Gecko/Chrome/Safari/Mac OS XKonqueror', 'KonquerorGecko/', 'Geck o/',
          'Gecko /', 'GGecko/', 'GeGecko/', 'Chrom/', 'CChrome/', 'ChChrome/',
          'SSafari/ MMac OS X', 'Mac OS Mac OS X Safari/', 'KKonqueror',
          'KonKonqueror', 'OOpera', 'OpOpera', 'MMSIE 6.0 x', 'MSMSIE 6.0 x',
          'MSIMSIE 6.0 x', 'MSIEMSIE 6.0 x', 'MSIE MSIE 6.0 x', 'MSIE  6.0 xx',
          "MSIE \xff.0 xx", "MSIE 6\xff0 xx", "MSIE 6.\xff xx", "\xc3\xa9Opera",
          'a', 'M', 'O', 'G', 'C', 'S', 'K', ' ', '-', 'Mozilla', 'Mozilla/5.0';

# ---------------------------------------------------------------- mixtures
my @frag = (@words, qw(Mozilla/5.0 AppleWebKit/537.36 KHTML like Gecko)
            , '(', ')', ';', ' ', 'Windows NT 5.1', 'Trident/7.0',
            'Version/4.0', 'Mobile', 'MicroMessenger/8.0', "\xe4\xb8\xad",
            "\x7f", "\x1b", "\t", 'M', 'O', 'G', 'C', 'S', 'K', 'X', '6', '.',
            '5', '4', 'V', '1');
srand(20261204);
for (1 .. $N) {
    my $n = 1 + int rand 12;
    my $s = join '', map { $frag[int rand @frag] } 1 .. $n;
    $s = ('z' x int rand 4000) . $s if rand() < 0.05;
    push @ua, $s;
}

# A header value is trimmed by nginx: no leading or trailing space or tab
# (the value would differ from what was sent, not the flags; keep them
# comparable), and none is empty.
for (@ua) { s/^[ \t]+//; s/[ \t]+$//; }
my %seen;
print "$_\n" for grep { length && !$seen{$_}++ } @ua;
