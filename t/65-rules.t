#!/usr/bin/perl
# Campaign rules through a real nginx: device (iPhone, Android, WeChat,
# Alipay User-Agents), Accept-Language, region (geo over X-Real-IP),
# scan counts, and their combinations; the per-item A/B split over
# 10,000 codes of one batch (each half within 48-52 %, every code the
# same variant on every scan); $code_router_rule, the scan record's
# "rule" and the API's target; rules reloaded live; bad rule rows
# refused with FILE:LINE; over_url.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(root cli run_cmd tmpdir make_key read_file
                        write_file load_store log_line);

my $ROOT = root();
my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";

my %UA = (
    iphone  => 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) '
             . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 '
             . 'Mobile/15E148 Safari/604.1',
    android => 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 '
             . '(KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
    wechat  => 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) '
             . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 '
             . 'MicroMessenger/8.0.49(0x18003129) NetType/WIFI Language/zh_CN',
    alipay  => 'Mozilla/5.0 (Linux; U; Android 13; zh-CN; V2227A) '
             . 'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/69.0 '
             . 'UCBrowser/11.6.4.950 UWS/2.11.1.50 Mobile Safari/537.36 '
             . 'AlipayDefined AlipayClient/10.5.36.8100 Language/zh-Hans',
    desktop => 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 '
             . 'Firefox/125.0',
);

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV'], ['r.csv', <<'CSV']);
campaign,type,url,appid,path,query,url_link,over_url
promo,h5,https://shop.example/base,,,,,
ab,h5,https://shop.example/ab,,,,,
caps,h5,https://shop.example/caps,,,,,https://shop.example/over
CSV
batch,kid,serial_from,serial_to,scene,campaign,region
promo,1,1,1000,marketing,promo,CN-ZJ
ab,1,100001,110000,marketing,ab,
caps,1,200001,200100,marketing,caps,
CSV
campaign,rule,device,lang,region,split,min_scans,max_scans,type,url,appid,path,query,url_link
promo,10,wechat,,,,,,miniprogram,,wx1234567890abcdef,pages/promo,src=qr,https://wxaurl.cn/PromoWX
promo,20,alipay,,,,,,h5,https://shop.example/alipay,,,,
promo,30,ios,en,,,,,h5,https://shop.example/ios-en,,,,
promo,40,ios,,,,,,h5,https://shop.example/ios,,,,
promo,50,android,,CN-GD,,,,h5,https://shop.example/android-gd,,,,
promo,60,,zh-TW,,,,,h5,https://shop.example/zh-tw,,,,
promo,70,,zh,,,,,h5,https://shop.example/zh,,,,
promo,80,,,CN-GD,,,,official_account,https://mp.weixin.qq.com/s/GD,,,,
ab,1,,,,0-49,,,h5,https://shop.example/variant-a,,,,
ab,2,,,,50-99,,,h5,https://shop.example/variant-b,,,,
caps,1,,,,,,1,h5,https://shop.example/first,,,,
caps,2,,,,,4,,h5,https://shop.example/used,,,,
CSV

my $conf = <<"CONF";
    log_format scan escape=none '\$code_router_status "\$code_router_rule" \$status '
                    '{\$code_router_scan}';
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    geo \$scan_region {
        default        "";
        10.1.0.0/16    CN-ZJ;
        10.2.0.0/16    CN-GD;
    }
    code_router_db $db;
    code_router_key 1 $key;
    code_router_region \$scan_region;
    code_router_scans zone=scans:1m;
    code_router_max_scans campaign=caps 5;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location / {
            code_router \$uri;
            code_router_interstitial /.cr/open.html;
        }
        location /v1/codes/ {
            code_router_api;
        }
    }
CONF

# Codes of serials from..from+count-1, in order.
sub mint_range {
    my ($from, $count) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $key,
                                    '--kid', 1, '--from', $from,
                                    '--count', $count]);
    die "mint: $err" if $rc;
    return [split /\n/, $out];
}

my $t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;

my $promo = mint_range(1, 40);
my $lines = 0;

sub target {
    my ($code, %h) = @_;
    my %hdr;
    $hdr{'User-Agent'} = $UA{$h{ua}} if $h{ua};
    $hdr{'Accept-Language'} = $h{lang} if defined $h{lang};
    $hdr{'X-Real-IP'} = $h{ip} if $h{ip};
    my $r = $t->get("/$code", \%hdr);
    $lines++;
    my $loc = $r->{headers}{location} // '';
    $loc =~ s/\?.*//;
    return ($r->{status}, $loc);
}

# 1. Each condition alone, then combined.  A fresh code per case, so no
# count can play a part.
my $i = 0;
my @cases = (
    [{ ua => 'wechat' }, 302, 'https://wxaurl.cn/PromoWX', 10,
     'WeChat: rule 10, the mini-program URL Link'],
    [{ ua => 'wechat', lang => 'en' }, 302, 'https://wxaurl.cn/PromoWX', 10,
     '... WeChat on an iPhone is "wechat", not "ios" (one device a scan)'],
    [{ ua => 'alipay' }, 302, 'https://shop.example/alipay', 20,
     'Alipay (on Android): rule 20'],
    [{ ua => 'iphone' }, 302, 'https://shop.example/ios', 40,
     'iPhone, no Accept-Language: rule 40'],
    [{ ua => 'iphone', lang => 'en-US,en;q=0.9' }, 302,
     'https://shop.example/ios-en', 30, 'iPhone and en-US: rule 30 (both)'],
    [{ ua => 'iphone', lang => 'zh-CN,en;q=0.8' }, 302,
     'https://shop.example/ios', 40,
     '... only the first tag counts: zh-CN is not en'],
    [{ ua => 'android' }, 302, 'https://shop.example/base', '',
     'Android elsewhere: no rule holds, the campaign\'s own target'],
    [{ ua => 'android', ip => '10.2.3.4' }, 302,
     'https://shop.example/android-gd', 50,
     'Android in CN-GD (geo): rule 50 (device and region)'],
    [{ ua => 'android', ip => '10.1.3.4' }, 302, 'https://shop.example/base',
     '', 'Android in CN-ZJ: not rule 50'],
    [{ ua => 'desktop', lang => 'zh-TW' }, 302, 'https://shop.example/zh-tw',
     60, 'zh-TW: rule 60'],
    [{ ua => 'desktop', lang => 'zh-tw;q=1' }, 302,
     'https://shop.example/zh-tw', 60, '... tags compare without case'],
    [{ ua => 'desktop', lang => ' zh-Hant-TW, en' }, 302,
     'https://shop.example/zh', 70, 'zh-Hant-TW: not zh-TW, but zh'],
    [{ ua => 'desktop', lang => 'zh' }, 302, 'https://shop.example/zh', 70,
     'zh: rule 70, not rule 60 (zh-TW is not a prefix of zh)'],
    [{ ua => 'desktop', lang => 'zhx' }, 302, 'https://shop.example/base', '',
     'zhx is not zh'],
    [{ ua => 'desktop', lang => '*' }, 302, 'https://shop.example/base', '',
     '"*" is no language'],
    [{ ua => 'desktop', ip => '10.2.9.9' }, 302,
     'https://mp.weixin.qq.com/s/GD', 80, 'CN-GD, no device rule: rule 80'],
    [{ ua => 'desktop', ip => '10.2.9.9', lang => 'zh-CN' }, 302,
     'https://shop.example/zh', 70, '... zh first: the order of rules'],
    [{}, 302, 'https://shop.example/base', '',
     'no User-Agent ("other"): the campaign\'s own'],
);
for my $c (@cases) {
    my ($h, $st, $want, $rule, $what) = @$c;
    my ($got_st, $got) = target($promo->[$i++], %$h);
    is("$got_st $got", "$st $want", $what);
    like(log_line($t->prefix . '/logs/scan.log', $lines), qr/^ok "\Q$rule\E" 302 .*"rule":"\Q$rule\E"/,
         "... \$code_router_rule and the record say \"$rule\"");
}

# The API: the rule taken, and the target it chose (a mini-program's URL
# Link for WeChat, where the campaign's own is an H5 page).
{
    my $r = $t->get("/v1/codes/$promo->[$i]",
                    { 'User-Agent' => $UA{wechat} });
    my $j = JSON::PP::decode_json($r->{content});
    is($j->{campaign}{rule}, 10, 'the API names the rule taken');
    is($j->{campaign}{target}, 'https://wxaurl.cn/PromoWX',
       '... and the target it chose');
    is($j->{campaign}{type}, 'miniprogram', '... of its type');
    $r = $t->get("/v1/codes/$promo->[$i]", { 'User-Agent' => $UA{desktop} });
    $j = JSON::PP::decode_json($r->{content});
    is($j->{campaign}{rule}, undef, 'no rule: "rule": null');
    $lines += 2;                        # the API's scans are logged too
    like($j->{campaign}{target}, qr{^https://shop\.example/base\?},
         '... the campaign\'s own target');
    $i++;
}

# 2. Scan counts: the first scan gets the prize page, scans 2-3 the
# campaign's own, from the 4th "already used", past code_router_max_scans
# (5) the campaign's over_url instead of the 410 page.
{
    my $code = mint_range(200001, 1)->[0];
    my @want = ('https://shop.example/first', 'https://shop.example/caps',
                'https://shop.example/caps', 'https://shop.example/used',
                'https://shop.example/used', 'https://shop.example/over',
                'https://shop.example/over');
    my @got = map { join ' ', target($code, ua => 'desktop') } 1 .. 7;
    is_deeply(\@got, [map { "302 $_" } @want],
              'min_scans/max_scans by the code\'s count; over_url past the '
              . 'limit');
    like(log_line($t->prefix . '/logs/scan.log', $lines), qr/^overscanned "" 302 /,
         '... the scan over the limit is "overscanned", redirected');
}

# 3. The split: 10,000 codes of one batch, each scanned twice, pipelined.
sub pipelined {
    my ($codes) = @_;
    my @loc;
    for (my $k = 0; $k < @$codes; $k += 500) {
        my @chunk = @$codes[$k .. ($k + 499 < $#$codes ? $k + 499 : $#$codes)];
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $t->port,
                                      Timeout => 30) or die "connect: $!";
        my $req = '';
        for my $j (0 .. $#chunk) {
            $req .= "HEAD /$chunk[$j] HTTP/1.1\r\nHost: t\r\n"
                  . ($j == $#chunk ? "Connection: close\r\n" : '') . "\r\n";
        }
        print $s $req;
        local $/;
        my $resp = <$s> // '';
        close $s;
        push @loc, $resp =~ m{^Location: https://shop\.example/(\S+?)\?}mg;
    }
    return \@loc;
}
{
    my $codes = mint_range(100001, 10000);
    my $first = pipelined($codes);
    my $again = pipelined($codes);
    is(scalar @$first, 10000, 'every one of 10,000 codes redirected');
    my $a = grep { $_ eq 'variant-a' } @$first;
    my $b = grep { $_ eq 'variant-b' } @$first;
    is($a + $b, 10000, '... each to variant a or b');
    my $pa = 100 * $a / 10000;
    diag(sprintf 'split 0-49: %d codes (%.2f %%), 50-99: %d (%.2f %%)',
         $a, $pa, $b, 100 - $pa);
    ok($pa >= 48 && $pa <= 52, "0-49 took $pa % (48-52 %)");
    ok(100 - $pa >= 48 && 100 - $pa <= 52, "50-99 took " . (100 - $pa)
       . ' % (48-52 %)');
    is_deeply($again, $first, 'every code the same variant on a second scan');
    # Keyed, not the serial's order: runs of one variant stay short.
    my ($run, $max) = (1, 1);
    for my $k (1 .. $#$first) {
        $run = $first->[$k] eq $first->[$k - 1] ? $run + 1 : 1;
        $max = $run if $run > $max;
    }
    ok($max < 40, "no long run of one variant in serial order (longest $max)");
}

# 4. Rules reloaded live: the next scan follows a load into the running
# store; a deleted rule is gone as soon.
{
    my $code = $promo->[$i++];
    my ($rc, $out, $err) = run_cmd(["$ROOT/scripts/code-router-load", '--db',
        $db, write_file("$d/r2.csv", <<'CSV')]);
campaign,rule,device,lang,region,split,min_scans,max_scans,type,url,appid,path,query,url_link,delete
promo,40,ios,,,,,,h5,https://shop.example/ios-v2,,,,,
promo,30,,,,,,,,,,,,,yes
CSV
    is($rc, 0, 'a rules file loaded into the running store') or diag $err;
    is(join(' ', target($code, ua => 'iphone', lang => 'en')),
       '302 https://shop.example/ios-v2',
       '... the next scan follows it (rule 30 deleted, rule 40 changed)');
}

# 5. Bad rows: FILE:LINE and nothing committed.
{
    my $bad = write_file("$d/bad.csv", <<'CSV');
campaign,rule,device,lang,region,split,min_scans,max_scans,type,url
nope,1,,,,,,,h5,https://x.example/
ab,9,,,,,,,h5,https://x.example/
ab,5,,,,,,,h5,https://x.example/
ab,11,,,,60-40,,,h5,https://x.example/
ab,12,,,,0-100,,,h5,https://x.example/
ab,13,phone,zh_CN,,,5,2,h5,https://x.example/
promo,90,,,,0-59,,,h5,https://x.example/
promo,91,,,,50-99,,,h5,https://x.example/
ab,14,,,,,,,h5,http://x.example/
CSV
    my ($rc, $out, $err) = run_cmd(["$ROOT/scripts/code-router-load", '--db',
                                    $db, $bad]);
    is($rc, 1, 'bad rule rows: exit 1');
    for my $want (
        qr/^\Q$bad\E:2: campaign: unknown campaign "nope"/m,
        qr/^\Q$bad\E:4: rule 5 of campaign "ab" comes after rule 9/m,
        qr/^\Q$bad\E:5: split: "60-40" must be LO-HI/m,
        qr/^\Q$bad\E:6: split: "0-100" must be LO-HI/m,
        qr/^\Q$bad\E:7: device: "phone" must be/m,
        qr/^\Q$bad\E:7: lang: "zh_CN" must be a language tag/m,
        qr/^\Q$bad\E:7: min_scans 5 is above max_scans 2/m,
        qr/^\Q$bad\E:9: rule 91 of campaign "promo": split 50-99 overlaps split 0-59 of rule 90/m,
        qr/^\Q$bad\E:10: url: .* must start with https:/m,
        qr/no change made/,
    ) {
        like($err, $want, "refused: $want");
    }
    is(join(' ', target($promo->[$i++], ua => 'iphone')),
       '302 https://shop.example/ios-v2', '... and the store is as it was');

    my $many = write_file("$d/many.csv", "campaign,rule,min_scans,type,url\n"
        . join('', map { "ab,1$_,$_,h5,https://x.example/$_\n" } 10 .. 72));
    ($rc, $out, $err) = run_cmd(["$ROOT/scripts/code-router-load", '--db',
                                 $db, $many]);
    like($err, qr/^\Q$many\E:2: campaign "ab" has 65 rules: at most 64$/m,
         'a 65th rule of a campaign: refused, at its first row of the run');
    is($rc, 1, '... exit 1');
}

# 6. A campaign deleted takes its rules with it; dump round-trips rules.
{
    my ($rc, $dump) = run_cmd([cli(), 'dump', '--db', $db]);
    is($rc, 0, 'dump');
    like($dump, qr/^campaign,rule,device,lang,region,split,min_scans,max_scans,type,url,appid,path,query,url_link\n/m,
         '... has a rules section');
    like($dump, qr/^ab,2,,,,50-99,,,h5,https:\/\/shop\.example\/variant-b,,,,$/m,
         '... with the rules as loaded');
    my $db2 = "$d/copy.mdb";
    my $f = write_file("$d/dump.csv", $dump);
    ($rc, my $o, my $e) = run_cmd([cli(), 'load', '--db', $db2, $f]);
    is($rc, 0, 'the dump loads into a new store') or diag $e;
    my ($rc2, $dump2) = run_cmd([cli(), 'dump', '--db', $db2]);
    is($dump2, $dump, '... and dumps the same');
}

is_deeply([$t->bad_log_lines], [], 'no alert in the error log');
$t->stop;

# 7. docs/loading.md's worked example, as conf/examples has it (the
# campaign's window left out: the example's dates will pass).
{
    my $ex = "$ROOT/conf/examples";
    (my $camps = read_file("$ex/campaigns.csv"))
        =~ s/,\d{4}-\d\d-\d\dT[^,]*,\d{4}-\d\d-\d\dT[^,]*,/,,,/;
    my $exdb = "$d/example.mdb";
    load_store($exdb, ['ex-c.csv', $camps], "$ex/batches.csv", "$ex/rules.csv");
    (my $exconf = $conf) =~ s/\Q$db\E/$exdb/;
    $exconf =~ s/code_router_max_scans campaign=caps 5;//;
    $t = CodeRouter::Test::Nginx->new(http => $exconf);
    $t->start;
    my @c = @{ mint_range(1000000, 4) };
    my %ua = (wechat => $UA{wechat}, iphone => $UA{iphone},
              android => $UA{android}, alipay => $UA{alipay});
    sub ex {
        my ($code, $ua, $lang, $ip) = @_;
        my $r = $t->get("/$code", { 'User-Agent' => $ua{$ua},
                                    'Accept-Language' => $lang,
                                    ($ip ? ('X-Real-IP' => $ip) : ()) });
        (my $loc = $r->{headers}{location} // "$r->{status}") =~ s/\?.*//;
        return $loc;
    }
    my $prize = 'https://wxaurl.cn/PrIzE1stScN';
    is(ex($c[0], 'wechat', 'zh-CN'), $prize, 'example: the first scan, the prize page (rule 20)');
    is(ex($c[0], 'iphone', 'en-US,en'), 'https://c.brand.cn/en/ios.html',
       'example: 2nd, iPhone Safari, en-US: rule 30');
    is(ex($c[0], 'android', 'en-GB'), 'https://c.brand.cn/en/', 'example: 3rd, Android, en-GB: rule 40');
    is(ex($c[0], 'wechat', 'zh-CN'), 'https://c.brand.cn/used.html',
       'example: the 4th, any client: "already used" (rule 10)');
    is(ex($c[1], 'wechat', 'zh-CN'), $prize, 'example: another code\'s first scan');
    is(ex($c[1], 'alipay', 'zh-CN'), 'https://c.brand.cn/alipay.html', 'example: 2nd, Alipay: rule 50');
    ex($c[2], 'wechat', 'zh-CN');
    my $gd = ex($c[2], 'wechat', 'zh-CN', '10.2.0.9');
    like($gd, qr{^https://c\.brand\.cn/gd-[ab]\.html$}, "example: 2nd, WeChat, from CN-GD: $gd (rule 60 or 70)");
    is(ex($c[2], 'wechat', 'zh-CN', '10.2.7.7'), $gd, '... the same item the same variant');
    ex($c[3], 'wechat', 'zh-CN');
    is(ex($c[3], 'wechat', 'zh-CN', '10.1.0.9'), 'https://wxaurl.cn/AbCdEfGhIjK',
       'example: 2nd, WeChat, from CN-ZJ: the campaign\'s own URL Link');
    $t->stop;
}

done_testing;
