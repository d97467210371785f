#!/usr/bin/perl
# Anti-diversion through a real nginx: the request's region from nginx's
# geo module over the client address that the realip module takes from
# X-Real-IP (sent by 127.0.0.1, a trusted proxy); no GeoIP database.
# Logged only by default; code_router_diverted_action fallback answers 403
# "diverted".  Unknown regions on either side are never a diversion.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(tmpdir make_key read_file load_store mint);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,type,url
h5,h5,https://shop.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign,region
zj,1,1,100,trace,h5,CN-ZJ
anywhere,1,101,200,trace,h5,
CSV

sub conf {
    my ($action) = @_;
    return <<"CONF";
    log_format scan '\$code_router_status \$code_router_diverted '
                    '\$code_router_region "\$scan_region" \$status';
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    geo \$scan_region {
        default        "";
        10.1.0.0/16    CN-ZJ;
        10.2.0.0/16    CN-GD;
        10.3.0.0/16    cn-zj;
    }
    code_router_db $db;
    code_router_key 1 $key;
    code_router_region \$scan_region;
    $action
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location / {
            code_router \$uri;
        }
        location /v1/codes/ {
            code_router_api;
        }
        location /plain/ {
            code_router \$uri;
            code_router_diverted_action none;
        }
    }
CONF
}

my $zj = mint($key, 1, 5);
my $any = mint($key, 1, 150);

# The line of the n-th request to $t: nginx logs after it has sent the
# response, so the client may read the log before the line is there.
sub last_log {
    my ($t, $n) = @_;
    my @l;
    for (1 .. 100) {
        @l = split /\n/, read_file($t->prefix . '/logs/scan.log');
        last if @l >= $n;
        sleep 0.05;
    }
    return $l[$n - 1];
}

# 1. Logged only.
my $t = CodeRouter::Test::Nginx->new(http => conf(''));
$t->start;
my @cases = (
    ['10.1.2.3', $zj, 302, 'ok 0 CN-ZJ "CN-ZJ" 302', 'sold where scanned'],
    ['10.2.2.3', $zj, 302, 'ok 1 CN-ZJ "CN-GD" 302',
     'scanned in another region: diverted=1, still routed'],
    ['10.3.2.3', $zj, 302, 'ok 0 CN-ZJ "cn-zj" 302',
     'regions compare without case'],
    ['192.0.2.1', $zj, 302, 'ok 0 CN-ZJ "" 302',
     'an unknown request region is not a diversion'],
    ['10.2.2.3', $any, 302, 'ok 0 - "CN-GD" 302',
     'a batch without a region is never diverted'],
);
my $n = 0;
for my $c (@cases) {
    my ($ip, $code, $st, $log, $what) = @$c;
    is($t->get("/$code", { 'X-Real-IP' => $ip })->{status}, $st, "$what: $st");
    is(last_log($t, ++$n), $log, "... logged: $log");
}
my $j = JSON::PP::decode_json(
    $t->get("/v1/codes/$zj", { 'X-Real-IP' => '10.2.2.3' })->{content});
is($j->{diverted}, JSON::PP::true, 'the API says diverted: true');
is($j->{status}, 'ok', '... with status ok (logging only)');
$t->stop;

# 2. code_router_diverted_action fallback.
$t = CodeRouter::Test::Nginx->new(
    http => conf('code_router_diverted_action fallback;'));
$t->start;
is($t->get("/$zj", { 'X-Real-IP' => '10.2.2.3' })->{status}, 403,
   'fallback: a diverted scan is answered 403');
is(last_log($t, 1), 'diverted 1 CN-ZJ "CN-GD" 403', '... status diverted');
is($t->get("/$zj", { 'X-Real-IP' => '10.1.2.3' })->{status}, 302,
   'fallback: a scan in its region is routed');
is($t->get("/plain/$zj", { 'X-Real-IP' => '10.2.2.3' })->{status}, 302,
   'a location with "code_router_diverted_action none" only logs');
$j = JSON::PP::decode_json(
    $t->get("/v1/codes/$zj", { 'X-Real-IP' => '10.2.2.3' })->{content});
is($j->{status}, 'diverted', 'the API says diverted');
$t->stop;

# 3. nginx -t.
my $bad = CodeRouter::Test::Nginx->new(
    http => conf('code_router_diverted_action redirect;'));
$bad->write_conf;
my ($rc, $out) = $bad->test_conf;
isnt($rc, 0, 'nginx -t fails on an unknown action');
like($out, qr/invalid value "redirect"/, '... saying why') or diag $out;

done_testing;
