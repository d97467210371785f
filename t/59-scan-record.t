#!/usr/bin/perl
# $code_router_scan, the scan record rendered in one variable, against the
# variables it is made of: a log_format of the same members with
# escape=json is written beside it for every request of one server, and
# every line must be valid JSON with the same members and values (the
# strings byte for byte; the numbers as JSON numbers, null where the
# variable is empty): redirects, a fallback after error_page, forged,
# malformed and lower-case codes, a HEAD, a bot, a diverted scan, a
# request the router never saw, hostile User-Agent and Referer bytes
# (quotes, backslashes, control bytes, UTF-8 and invalid bytes).  node is
# $hostname and request_id nginx's $request_id; parents the code's case
# and pallet.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(scan_dir root tmpdir make_key read_file load_store mint);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $sdir = scan_dir($d);
my $html = root() . '/conf/html';

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV'], ['o.csv', <<'CSV'], ['p.csv', <<'CSV']);
campaign,type,url
h5,h5,https://shop.example/p?x=1
CSV
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,region,dealer
zj,1,1,100,verify,h5,SKU-1,06901234567892,L1,CN-ZJ,杭州经销商-01
CSV
kid,serial,state,campaign
1,50,revoked,
CSV
kid,serial_from,serial_to,parent_kid,parent_serial
1,1,12,1,90
1,90,91,1,95
CSV

# The members as variables (the numbers quoted: a log_format cannot say
# null for an empty one).
my $old = <<'FMT';
'{"time":"$time_iso8601","node":"$hostname","request_id":"$request_id",'
'"status":"$code_router_status",'
'"http_status":$status,"code":"$code","kid":"$code_router_kid",'
'"serial":"$code_router_serial","batch":"$code_router_batch",'
'"scene":"$code_router_scene","campaign":"$code_router_campaign",'
'"sku":"$code_router_sku","gtin":"$code_router_gtin",'
'"lot":"$code_router_lot","region":"$code_router_region",'
'"dealer":"$code_router_dealer",'
'"target":"$code_router_target","client":"$code_router_client",'
'"scans":"$code_router_scans","first_scan":"$code_router_first_scan",'
'"counted":"$code_router_scan_counted",'
'"uncounted":"$code_router_uncounted",'
'"diverted":"$code_router_diverted","rule":"$code_router_rule",'
'"parents":"$code_router_parents",'
'"seen_in":"$scan_region",'
'"generation":"$code_router_generation","ip":"$remote_addr",'
'"ua":"$http_user_agent","referer":"$http_referer",'
'"request_time":$request_time}'
FMT

# The example's scan log as conf/nginx.conf has it now.
my ($new) = read_file(root() . '/conf/nginx.conf') =~ /^\s*log_format scan (escape=none .*?);$/m
    or die 'no log_format scan in conf/nginx.conf';
like($new, qr/\$code_router_scan\b/, 'the example logs $code_router_scan');

my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    log_format old escape=json $old;
    log_format scan $new;
    geo \$scan_region {
        default        "";
        10.2.0.0/16    CN-GD;
    }
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m store=$sdir/scans.mdb;
    code_router_region \$scan_region;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/old.log old;
        access_log %%PREFIX%%/logs/new.log scan;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            error_page 403 404 410 429 503 /.code-router/fallback.html;
        }
        location /.code-router/ {
            internal;
            alias $html/;
            ssi on;
        }
        location / {
            return 404;
        }
    }
CONF
$t->start;

my $ok = mint($key, 1, 7);
my $revoked = mint($key, 1, 50);
(my $forged = $ok) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
my $malformed = '0' . substr($ok, 1);
my $iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 '
           . '(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';

my @req = (
    ['GET', "/$ok", { 'User-Agent' => $iphone }],
    ['GET', "/$ok", { 'User-Agent' => $iphone, Referer => 'https://a.example/"x"' }],
    ['GET', '/' . lc $ok, { 'User-Agent' => $iphone }],
    ['HEAD', "/$ok", { 'User-Agent' => $iphone }],
    ['GET', "/$ok", { 'User-Agent' => 'Googlebot/2.1 (+http://www.google.com/bot.html)' }],
    ['GET', "/$ok", { 'User-Agent' => $iphone, 'X-Real-IP' => '10.2.0.9' }],
    ['GET', "/$revoked", { 'User-Agent' => $iphone }],
    ['GET', "/$forged", {}],
    ['GET', "/$malformed", { 'User-Agent' => $iphone }],
    ['GET', '/favicon.ico', { 'User-Agent' => $iphone }],
    ['GET', "/$ok", { 'User-Agent' => qq{a"b\\c\td\x01e\x1ff\x7fg \xe4\xb8\xad \xff\x80 \x08\x0c} }],
    ['GET', "/$ok", { 'User-Agent' => '', Referer => qq{\\"\x1b[0m} }],
);
for my $q (@req) {
    my ($method, $path, $h) = @$q;
    my $text = "$method $path HTTP/1.0\r\nHost: c.brand.cn\r\n"
             . join('', map { "$_: $h->{$_}\r\n" } sort keys %$h) . "\r\n";
    my $resp = $t->raw($text);
    like($resp, qr{^HTTP/1\.[01] \d{3}}, "$method $path answered");
}

# nginx writes a request's lines after the answer: wait for all of them.
my (@old, @new);
for (1 .. 100) {
    @old = split /\n/, read_file($t->prefix . '/logs/old.log');
    @new = split /\n/, read_file($t->prefix . '/logs/new.log');
    last if @old >= @req && @new >= @req;
    sleep 0.05;
}
is(scalar @new, scalar @req, 'one scan record a request');
is(scalar @old, scalar @req, 'one line of the variables a request');

# The record's members in order, and which are numbers.
my @members = qw(time node request_id status http_status code kid serial
                 batch scene campaign sku gtin lot region dealer target client
                 scans first_scan counted uncounted diverted rule parents
                 seen_in
                 generation ip ua referer request_time);
my %number = map { $_ => 1 } qw(kid serial scans generation);
my %flag = map { $_ => 1 } qw(counted diverted);
# JSON::PP keeps bytes (utf8 off: the UA's invalid bytes stay as sent).
my $j = JSON::PP->new->utf8(0);
for my $i (0 .. $#req) {
    my $what = "$req[$i][0] $req[$i][1]";
    my $rec = eval { $j->decode($new[$i]) };
    ok($rec, "the record is JSON: $what") or diag("$@: $new[$i]");
    my $want = $j->decode($old[$i]);
    for my $m (keys %number) {
        $want->{$m} = $want->{$m} eq '' ? undef : 0 + $want->{$m};
    }
    for my $m (keys %flag) {
        $want->{$m} = $want->{$m} eq '' ? undef
                    : $want->{$m} ? JSON::PP::true : JSON::PP::false;
    }
    is_deeply($rec, $want, "... with the variables' values: $what")
        or diag("$new[$i]\n$old[$i]");
    # Numbers unquoted, every member there, in the record's order.
    my @keys = $new[$i] =~ /(?:^\{|,)"([a-z_]+)":(?=["0-9ntf])/g;
    is_deeply(\@keys, \@members, '... every member, in order');
    my @raw = map { $new[$i] =~ /[{,]"$_":([^,"]*)[,}]/ ? $1 : '(quoted)' }
                  sort keys %number, keys %flag;
    is_deeply(\@raw, [map { !defined $_ ? 'null' : !ref $_ ? $_
                             : $_ ? 'true' : 'false' }
                       @$want{sort keys %number, keys %flag}],
              '... numbers and flags unquoted (' . join(' ', @raw) . ')');
}

# The example's line, member by member.
my $rec = eval { $j->decode($new[0]) };
ok($rec, 'the record is JSON') or diag($@);
is($rec->{status}, 'ok', 'status');
is($rec->{http_status}, 302, 'http_status is a number');
is($rec->{code}, $ok, 'code');
like($rec->{target}, qr{^https://shop\.example/p\?x=1&code=\Q$ok\E&}, 'target')
    or diag($new[0]);
is($rec->{scans}, 1, 'scans: a number');
is($rec->{kid}, 1, 'kid: a number');
like($rec->{request_id}, qr/^[0-9a-f]{32}$/, "request_id: nginx's \$request_id");
chomp(my $host = `hostname`);
is($rec->{node}, lc $host, 'node: the hostname');
is($rec->{seen_in}, '', 'seen_in');
is($rec->{parents}, '1:90 1:95', 'parents: its case, then the pallet');
my $div = $j->decode($new[5]);
is($div->{seen_in}, 'CN-GD', 'seen_in from code_router_region');
is($div->{diverted}, JSON::PP::true, 'a diverted scan: true');
is($div->{dealer}, '杭州经销商-01',
   '... naming the dealer whose goods were found elsewhere');
is($rec->{diverted}, JSON::PP::false, '... another not: false');
my $gone = $j->decode($new[6]);
is_deeply([@$gone{qw(status http_status)}], ['revoked', 410], 'the fallback: the final status');
is($gone->{parents}, '', 'a code in no case: parents ""');
my $other = $j->decode($new[9]);
is_deeply([@$other{qw(status code http_status kid serial scans)}],
          ['', '', 404, undef, undef, undef],
          'a request the router never saw: its numbers null');
my $mal = $j->decode($new[8]);
is_deeply([@$mal{qw(status kid serial)}], ['malformed', undef, undef],
          'a malformed code: kid and serial null');
my %ids = map { $j->decode($_)->{request_id} => 1 } @new;
is(scalar keys %ids, scalar @new, 'a request id a request');
like($new[10], qr/"ua":"a\\"b\\\\c\\td\\u0001e\\u001Ff\x7fg \xe4\xb8\xad \xff\x80 \\b\\f"/,
     'control bytes escaped as nginx does, other bytes as they came');

$t->stop;
done_testing();
