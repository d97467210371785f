#!/usr/bin/perl
# A scan refused by conf/nginx.conf's limit_req is
# answered 429 with the fallback page's "busy, please try again" message
# (中文 and English), never "page not found".  The http block of
# conf/nginx.conf as shipped, its paths pointed into a temporary directory.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use CodeRouter::Test qw(root tmpdir make_key load_store mint read_file);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $other = make_key("$d/2.key");
load_store("$d/brand.mdb", root() . '/conf/examples/campaigns.csv');
mkdir "$d/scans";
chmod 0777, "$d/scans";

my $conf = read_file(root() . '/conf/nginx.conf');
my ($http) = $conf =~ /^http \{\n(.*)^\}/ms or die 'no http block';
my $html = root() . '/conf/html/';
$http =~ s{/var/lib/code-router/brand\.mdb}{$d/brand.mdb}g;
$http =~ s{/etc/nginx/code-router/1\.key}{$key}g;
$http =~ s{/var/lib/code-router/scans/scans\.mdb}{$d/scans/scans.mdb}g;
$http =~ s{/var/log/code-router/(scan|verify)\.log}{%%PREFIX%%/logs/$1.log}g
    or die 'conf/nginx.conf: no scan log';
$http =~ s{^\s*listen \[::\]:\d+[^;]*;\n}{}mg;
$http =~ s{/usr/share/code-router/html/?}{$html}g;
$http =~ s{/usr/share/code-router/wechat}{$d}g;
# The scan server without its TLS (t/81-tls.t tests that); the port-80
# server only redirects to it.
$http =~ s{^    server \{\n        listen 80;\n.*?^    \}\n}{}ms
    or die 'conf/nginx.conf: no port-80 server';
$http =~ s{listen 443 ssl http2;}{listen 127.0.0.1:%%PORT%%;}
    or die 'conf/nginx.conf: no listen 443';
$http =~ s{^\s*(?:ssl_\w+|resolver\w*)\s[^;]*;\n}{}mg;
$http =~ s{include mime.types;}{include /etc/nginx/mime.types;}g;
$http =~ s{^\s*include /etc/nginx/code-router/api\.conf;\n}{}m;
like($http, qr/limit_req_status 429;/, 'conf/nginx.conf: limit_req_status 429');

my $t = CodeRouter::Test::Nginx->new(
    main => 'thread_pool code_router threads=1;', http => $http);
$t->start;

# A forged code: answered without a scan counted, so every answer but the
# rate limit's is the same 404 page.
my $c = mint($other, 1, 5);
my $ua = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1, timeout => 10);
my (%status, $busy, $first);
for my $i (1 .. 120) {
    my $r = $ua->get($t->url("/$c"));
    $status{ $r->{status} }++;
    $first //= $r if $r->{status} != 429;
    $busy //= $r if $r->{status} == 429;
}
ok($status{429}, 'the excess over burst=40 is answered 429 ('
   . ($status{429} // 0) . ' of 120)') or diag explain \%status;
ok(!$status{503}, 'never 503');
cmp_ok($status{404} // 0, '>=', 40, 'the burst is answered (forged: 404)');

$busy //= { content => '', headers => {} };
like($busy->{content}, qr/系统繁忙，请稍后再试/,
     '429: "busy, try again" in 中文');
like($busy->{content}, qr/Busy right now\. Please try again in a moment\./,
     '429: ... and in English');
unlike($busy->{content}, qr/页面不存在|Page not found/,
       '429: not "page not found"');
like($busy->{headers}{'content-type'} // '', qr{^text/html},
     '429: the HTML fallback page');
like($first->{content}, qr/此码未能通过验证/,
     'the scans before: the forged page, unchanged');

$t->stop;
my @log = grep { /"http_status":429/ } split /\n/,
          read_file($t->prefix . '/logs/scan.log');
is(scalar(@log), $status{429} // -1, 'every 429 is in the scan log');
done_testing;
