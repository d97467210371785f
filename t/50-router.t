#!/usr/bin/perl
# The router through a real nginx and a real store: every outcome with its
# status, headers and Location; percent-encoding; WeChat and other
# clients; methods; long URIs; the fallback page per reason; variables that
# survive the internal redirect; metrics; and nginx -t on bad directives.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(strftime);
use JSON::PP ();
use CodeRouter::Test qw(cli root run_cmd tmpdir make_key write_file read_file
                        load_store mint);


my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
my $WX = 'Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0.50';

sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $_[0])) }
my ($past2, $past1, $fut1, $fut2) = (iso(-172800), iso(-86400), iso(86400), iso(172800));

load_store($db, ['c.csv', <<"EOF"], ['b.csv', <<'EOF'], ['o.csv', <<'EOF']);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
h5,H5,h5,https://shop.example/landing?ref=qr#top,,,,,,,,
oa,公众号,official_account,https://mp.weixin.qq.com/s/abc,,,,,,,,
mp,春季抽奖,miniprogram,,wx0123456789abcdef,pages/lottery/index,活动=春季&k=a/b?c,https://wxaurl.cn/XyZ,,,,
mpn,No link,miniprogram,,wx0123456789abcdef,pages/a,,,,,,
mpo,Own scheme,miniprogram,weixin://dl/business/?t=TICKET123,wx0123456789abcdef,,,,,,,
fut,Soon,h5,https://x.example/,,,,,$fut1,$fut2,https://x.example/soon,
futb,Soon bare,h5,https://x.example/,,,,,$fut1,,,
past,Over,h5,https://x.example/,,,,,$past2,$past1,,https://x.example/ended
pastb,Over bare,h5,https://x.example/,,,,,,$past1,,
EOF
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b-h5,1,1,100,verify,h5,SKU-1,06901234567892,L1,2026-11-02,CN-ZJ
b-oa,1,101,200,trace,oa,,,,,
b-mp,1,201,300,marketing,mp,,,,,
b-mpn,1,301,400,marketing,mpn,,,,,
b-mpo,1,401,500,marketing,mpo,,,,,
b-fut,1,501,600,marketing,fut,,,,,
b-futb,1,601,700,marketing,futb,,,,,
b-past,1,701,800,marketing,past,,,,,
b-pastb,1,801,900,marketing,pastb,,,,,
EOF
kid,serial,state,campaign
1,50,revoked,
1,5000,campaign,oa
EOF

my $conf = <<"EOF";
    log_format scan escape=json '{"status":"\$code_router_status","kid":"\$code_router_kid",'
        '"serial":"\$code_router_serial","batch":"\$code_router_batch",'
        '"scene":"\$code_router_scene","campaign":"\$code_router_campaign",'
        '"sku":"\$code_router_sku","gtin":"\$code_router_gtin","lot":"\$code_router_lot",'
        '"produced":"\$code_router_production_date","region":"\$code_router_region",'
        '"target":"\$code_router_target","client":"\$code_router_client",'
        '"generation":"\$code_router_generation","http":\$status,"uri":"\$request_uri"}';
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            code_router_interstitial /.cr/open.html;
            error_page 404 410 503 /.cr/fallback.html;
        }
        location /any/ {
            code_router \$uri;
            error_page 404 410 503 /.cr/fallback.html;
        }
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
            add_header Cache-Control "no-store" always;
        }
        location = /status { code_router_status; }
    }
EOF

my $t = CodeRouter::Test::Nginx->new(http => $conf);
my ($rc, $log) = $t->test_conf;
is($rc, 0, 'nginx -t passes') or diag $log;
$t->start;

sub code { mint($key, 1, $_[0]) }
sub get { my ($serial, $ua) = @_; return $t->get('/' . code($serial), $ua ? { 'User-Agent' => $ua } : {}) }
sub status_of_page { $_[0]{content} =~ /data-status="([^"]*)"/ ? $1 : '' }

# ok, h5: the campaign URL with parameters, query kept, before the fragment.
my $c = code(7);
my $r = $t->get("/$c");
is($r->{status}, 302, 'ok, h5: 302');
is($r->{headers}{location},
   "https://shop.example/landing?ref=qr&code=$c&batch=b-h5&scene=verify&campaign=h5#top",
   '... Location: the target, parameters appended to its query, fragment last');
is($r->{headers}{'cache-control'}, 'no-store', '... Cache-Control: no-store');
$r = $t->get('/' . lc $c);
like($r->{headers}{location}, qr/code=$c&/, 'a lower-case scan forwards the canonical code');

$r = get(150);
is($r->{status}, 302, 'ok, official_account: 302');
like($r->{headers}{location}, qr{^https://mp\.weixin\.qq\.com/s/abc\?code=\w{18}&batch=b-oa&scene=trace&campaign=oa$},
     '... a URL without a query gets one');

$r = get(5000);
like($r->{headers}{location}, qr{^https://mp\.weixin\.qq\.com/s/abc\?code=\w{18}&campaign=oa$},
     'a one-off campaign on an unbound serial: no batch, no scene');

# Mini-program.
my $mc = code(250);
$r = get(250, $WX);
is($r->{status}, 302, 'mini-program inside WeChat: 302');
is($r->{headers}{location}, 'https://wxaurl.cn/XyZ', '... to the URL Link');
is($r->{headers}{'cache-control'}, 'no-store', '... not cached');

$r = $t->get("/$mc");
is($r->{status}, 200, 'mini-program outside WeChat: the interstitial (200)');
like($r->{headers}{'content-type'}, qr{^text/html}, '... HTML');
is($r->{headers}{'cache-control'}, 'no-store', '... not cached');
my $scheme = 'weixin://dl/business/?appid=wx0123456789abcdef&path=pages%2Flottery%2Findex'
           . '&query=%E6%B4%BB%E5%8A%A8%3D%E6%98%A5%E5%AD%A3%26k%3Da%2Fb%3Fc%26code%3D' . $mc
           . '&env_version=release';
(my $escaped = $scheme) =~ s/&/&amp;/g;
like($r->{content}, qr/href="\Q$escaped\E"/,
     '... the URL Scheme, query (Chinese, =, &, /, ?) and code encoded, HTML-escaped in the href');
like($r->{content}, qr/<h1>春季抽奖<\/h1>/, '... the campaign name');
unlike($r->{content}, qr/<!--#/, '... every SSI command rendered');

$r = get(350, $WX);
is($r->{status}, 200, 'mini-program without a URL Link, inside WeChat: the interstitial');
like($r->{content}, qr/href="weixin:\/\/dl\/business\/\?appid=wx0123456789abcdef&amp;path=pages%2Fa&amp;query=code%3D\w{18}&amp;env_version=release"/,
     '... with the code as the whole query');
$r = get(450);
like($r->{content}, qr/href="weixin:\/\/dl\/business\/\?t=TICKET123"/,
     'a campaign with its own weixin:// URL uses it');

# Campaign windows.
$r = get(550);
is($r->{status}, 302, 'not started, with before_url: 302');
is($r->{headers}{location}, 'https://x.example/soon', '... to before_url');
$r = get(650);
is($r->{status}, 404, 'not started, no before_url: 404');
is(status_of_page($r), 'not_started', '... the fallback says not_started');
like($r->{content}, qr/活动尚未开始/, '... in Chinese');
$r = get(750);
is($r->{headers}{location}, 'https://x.example/ended', 'ended, with after_url: 302 there');
$r = get(850);
is($r->{status}, 410, 'ended, no after_url: 410');
is(status_of_page($r), 'ended', '... fallback: ended');

# Fallbacks.
$r = get(50);
is($r->{status}, 410, 'revoked: 410');
is(status_of_page($r), 'revoked', '... fallback: revoked');
like($r->{content}, qr/此码已作废.*This code has been revoked/s, '... bilingual');
$r = get(9999);
is($r->{status}, 404, 'unbound: 404');
is(status_of_page($r), 'unbound', '... fallback: unbound');
my $forged = $c;
substr($forged, 17, 1) = substr($forged, 17, 1) eq 'A' ? 'B' : 'A';
$r = $t->get("/$forged");
is($r->{status}, 404, 'forged: 404');
is(status_of_page($r), 'forged', '... fallback: forged');
my $other = mint(make_key("$d/other.key"), 1, 7);
$r = $t->get("/$other");
is(status_of_page($r), 'forged', 'a code of another key: forged');
$r = $t->get('/' . mint($key, 9, 7));
is(status_of_page($r), 'forged', 'a code of a key id not configured: forged');
$r = $t->get('/0123456789ABCDEFGH');
is($r->{status}, 404, 'malformed (18 characters, wrong version): 404');
is(status_of_page($r), 'malformed', '... fallback: malformed');
$r = $t->get('/any/deeper/' . $c);
is($r->{status}, 302, 'code_router $uri: the code is the last path segment (no regex needed)');
$r = $t->get('/any/' . ('Z' x 7000));
is($r->{status}, 404, 'a 7 kB path reaching the handler: 404');
is(status_of_page($r), 'malformed', '... malformed');
$r = $t->get('/' . ('A' x 10240));
is($r->{status}, 414, 'a 10 kB URI: nginx answers 414 before the router');

# Methods.
$r = $t->request('HEAD', "/$c");
is($r->{status}, 302, 'HEAD: 302');
is($r->{headers}{location}, "https://shop.example/landing?ref=qr&code=$c&batch=b-h5&scene=verify&campaign=h5#top",
   '... with the same Location');
is($r->{content} // '', '', '... and no body');
for my $m (qw(POST PUT DELETE OPTIONS PATCH)) {
    $r = $t->request($m, "/$c");
    is($r->{status}, 405, "$m: 405");
    is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
}
my $raw = $t->raw("POST /$c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
like($raw, qr/^HTTP\/1.1 405/, 'POST with a body: 405, body not read');

# A commit moves $code_router_generation at the next scan.
load_store($db, ['gen.csv', "campaign,type,url\ngen2,h5,https://x.example/\n"]);
my $after_commit = code(8);
$t->get("/$after_commit");

# The scan log: variables are there, also after error_page's redirect.
$t->stop;
my @log = map { JSON::PP::decode_json($_) } grep { length }
          split /\n/, read_file($t->prefix . '/logs/scan.log');

my ($h5) = grep { $_->{uri} eq "/$c" } @log;
is_deeply({ map { $_ => $h5->{$_} } qw(status kid serial batch scene campaign sku gtin lot produced region client generation http) },
          { status => 'ok', kid => 1, serial => 7, batch => 'b-h5', scene => 'verify', campaign => 'h5',
            sku => 'SKU-1', gtin => '06901234567892', lot => 'L1', produced => '2026-11-02',
            region => 'CN-ZJ', client => 'other', generation => 1, http => 302 },
          'the scan log line of a redirect has every variable');
like($h5->{target}, qr/^https:\/\/shop\.example\/landing\?ref=qr&code=/, '... and the target');
my ($gen2) = grep { $_->{uri} eq "/$after_commit" } @log;
is($gen2->{generation}, 2, 'the scan after a commit carries the new generation');
my ($rev) = grep { $_->{serial} eq '50' } @log;
is($rev->{status}, 'revoked', 'a revoked scan is logged as revoked (after the redirect to the fallback)');
is($rev->{batch}, 'b-h5', '... with its batch');
is($rev->{http}, 410, '... and status 410');
my ($wx) = grep { $_->{client} eq 'wechat' } @log;
is($wx->{target}, 'https://wxaurl.cn/XyZ', 'a WeChat scan: client wechat, target the URL Link');
is(scalar $t->bad_log_lines, 0, 'no alert or crit in the error log');

# Metrics.
$t->start;
get(7); get(50); $t->get("/$forged"); get(250, $WX);
$r = $t->get('/status');
is($r->{status}, 200, 'the status endpoint answers');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, '... Prometheus text');
my %m = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $r->{content};
cmp_ok($m{'code_router_requests_total{status="ok"}'}, '>=', 2, 'counts ok scans');
cmp_ok($m{'code_router_requests_total{status="revoked"}'}, '>=', 1, 'counts revoked');
cmp_ok($m{'code_router_requests_total{status="forged"}'}, '>=', 1, 'counts forged');
cmp_ok($m{'code_router_client_requests_total{client="wechat"}'}, '>=', 1, 'counts WeChat');
cmp_ok($m{'code_router_scene_requests_total{scene="verify"}'}, '>=', 2, 'counts by scene');
cmp_ok($m{'code_router_answers_total{answer="url_link"}'}, '>=', 1, 'counts by answer');
is($m{qq{code_router_db_up{db="$db"}}}, 1, 'the store is up');
is($m{qq{code_router_db_generation{db="$db"}}}, 2, 'its generation (2 after the commit above)');
cmp_ok($m{qq{code_router_db_map_size_bytes{db="$db"}}}, '>', 0, 'its map size');
like($m{qq{code_router_db_last_commit_age_seconds{db="$db"}}}, qr/^\d+$/, 'the age of its last commit');
my $before_ok = $m{'code_router_requests_total{status="ok"}'};
$t->reload;
get(7);
%m = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $t->get('/status')->{content};
is($m{'code_router_requests_total{status="ok"}'}, $before_ok + 1,
   'counters are totals across workers and survive a reload');
$t->stop;

# A custom WeChat regex.
$t = CodeRouter::Test::Nginx->new(http => "    code_router_wechat_ua \"(?i)wxwork|micromessenger\";\n$conf");
$t->start;
is(get(250, 'Mozilla/5.0 wxwork/4.0')->{headers}{location}, 'https://wxaurl.cn/XyZ',
   'code_router_wechat_ua: a custom regex');
is(get(250, 'Mozilla/5.0 Safari')->{status}, 200, '... and others still get the interstitial');
$t->stop;

# A pattern without metacharacters is searched for as text (cheaper than
# PCRE): the same answers as the regex would give.
$t = CodeRouter::Test::Nginx->new(http => "    code_router_wechat_ua wxwork;\n$conf");
$t->start;
is(get(250, 'Mozilla/5.0 wxwork')->{headers}{location}, 'https://wxaurl.cn/XyZ',
   'code_router_wechat_ua as plain text: found at the end of the User-Agent');
is(get(250, 'wxwork/4.0 Mozilla')->{headers}{location}, 'https://wxaurl.cn/XyZ', '... at its start');
is(get(250, 'wwxwxwork')->{headers}{location}, 'https://wxaurl.cn/XyZ', '... after false starts');
is(get(250, 'Mozilla/5.0 WXWORK/4.0')->{status}, 200, '... case-sensitive, as the regex is');
is(get(250, 'Mozilla/5.0 wxwor')->{status}, 200, '... a part of it is no match');
is(get(250, 'wx')->{status}, 200, '... nor a User-Agent shorter than it');
$t->stop;

# nginx -t on bad directives: file and line.
write_file("$d/garbage.mdb", 'garbage ' x 1000);
my @bad = (
    ["code_router_db $d/none.mdb;", qr/store "\Q$d\E\/none\.mdb": No such file or directory/],
    ["code_router_db $d/garbage.mdb;", qr/store "\Q$d\E\/garbage\.mdb": cannot open: MDB_INVALID/],
    ["code_router_db $db; code_router_db $db;", qr/"code_router_db" directive is duplicate/],
    ["code_router_interstitial open.html;", qr/code_router_interstitial "open\.html" must be a URI/],
    ["server { location /s { code_router_status on; } }", qr/invalid parameter "on": scope=all or scope=server/],
    ["server { location /s { code_router_status scope=all x; } }", qr/invalid number of arguments in "code_router_status"/],
    ["server { location /c { code_router \$uri; code_router_interstitial x; } }", qr/code_router_interstitial "x" must be a URI/],
);
for my $b (@bad) {
    my $bt = CodeRouter::Test::Nginx->new(http => "    $b->[0]\n    code_router_key 1 $key;\n");
    my ($rc, $out) = $bt->test_conf;
    isnt($rc, 0, "nginx -t fails: $b->[0]");
    like($out, $b->[1], '... clearly');
    like($out, qr/in \S+nginx\.conf:\d+/, '... with file and line');
}

done_testing;
