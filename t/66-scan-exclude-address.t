#!/usr/bin/perl
# code_router_scans_exclude through a real nginx: the print line's and
# QA's networks (geo over X-Real-IP) and a header a trusted proxy sets
# are answered as usual but not counted, and the scan record says
# "counted":"0" with why ("excluded"; "bot", "read_only" beside it).  And
# code_router_scan_address: the record's "ip" in full, truncated (/24,
# /48), hashed (keyed, one value per address and day) or not at all.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(tmpdir make_key read_file load_store mint log_line);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,type,url
h5,h5,https://shop.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign
b,1,1,1000,marketing,h5
CSV

my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    log_format scan escape=none '{\$code_router_scan}';
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Real-IP;
    geo \$factory {
        default        0;
        10.9.0.0/16    1;
        10.8.0.0/16    "";
    }
    map \$http_x_qa_probe \$qa {
        default        "";
        trusted-qa     qa;
    }
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m;
    code_router_scans_exclude \$factory \$qa;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location / {
            code_router \$uri;
        }
        location /t/ {
            code_router \$uri;
            code_router_scan_address truncated;
        }
        location /h/ {
            code_router \$uri;
            code_router_scan_address hashed;
        }
        location /n/ {
            code_router \$uri;
            code_router_scan_address none;
        }
        location /all/ {
            code_router \$uri;
            code_router_scans_exclude \$arg_never;
        }
    }
CONF
$t->start;

my $lines = 0;
sub record {
    my ($path, %h) = @_;
    my $r = $t->get($path, \%h);
    $lines++;
    return ($r, JSON::PP::decode_json(
                    log_line($t->prefix . '/logs/scan.log', $lines)));
}

# 1. Exclusion.
my $c = mint($key, 1, 7);
my @cases = (
    ['10.9.1.2', {}, '0', 'excluded', 0, 'the factory network (geo 1)'],
    ['10.1.1.2', {}, '1', '', 1, 'a consumer: counted'],
    ['10.8.1.2', {}, '1', '', 2, 'geo "" does not exclude'],
    ['10.1.1.3', { 'X-QA-Probe' => 'trusted-qa' }, '0', 'excluded', 2,
     'the trusted proxy\'s header (a second value) excludes'],
    ['10.1.1.4', { 'X-QA-Probe' => 'other' }, '1', '', 3,
     'another header value does not'],
    ['10.1.1.5', { 'User-Agent' => 'Googlebot/2.1' }, '0', 'bot', 3,
     'a bot: "bot"'],
);
for my $k (@cases) {
    my ($ip, $h, $counted, $why, $scans, $what) = @$k;
    my ($r, $j) = record("/$c", 'X-Real-IP' => $ip, %$h);
    is($r->{status}, 302, "$what: answered as usual");
    is("$j->{counted} $j->{uncounted} $j->{scans}", "$counted $why $scans",
       "... counted \"$counted\", uncounted \"$why\", $scans scans");
}
{
    my $r = $t->request('HEAD', "/$c", { 'X-Real-IP' => '10.1.1.6' });
    $lines++;
    my ($r2, $j) = record("/all/$c", 'X-Real-IP' => '10.9.1.2');
    my @l = split /\n/, read_file($t->prefix . '/logs/scan.log');
    my $head = JSON::PP::decode_json($l[$lines - 2]);
    is("$head->{counted} $head->{uncounted}", '0 read_only',
       'a HEAD: "read_only"');
    is("$j->{counted} $j->{uncounted} $j->{scans}", '1  4',
       'a location\'s own code_router_scans_exclude replaces the inherited');
}

# 2. The record's address.
my $v6 = '2001:db8:1234:5678:9abc::1';
my @addr = (
    ['/', '10.1.2.3', '10.1.2.3', 'full (the default)'],
    ['/t/', '10.1.2.3', '10.1.2.0', 'truncated IPv4: /24'],
    ['/t/', $v6, '2001:db8:1234::', 'truncated IPv6: /48'],
    ['/t/', '::ffff:10.1.2.3', '::ffff:10.1.2.0',
     'truncated IPv4-mapped IPv6: the IPv4 /24'],
    ['/n/', '10.1.2.3', '', 'none'],
);
for my $a (@addr) {
    my ($loc, $ip, $want, $what) = @$a;
    my (undef, $j) = record("$loc$c", 'X-Real-IP' => $ip);
    is($j->{ip}, $want, "$what: \"$want\"");
}
{
    my (undef, $a1) = record("/h/$c", 'X-Real-IP' => '10.1.2.3');
    my (undef, $a2) = record("/h/$c", 'X-Real-IP' => '10.1.2.3');
    my (undef, $b1) = record("/h/$c", 'X-Real-IP' => '10.1.2.4');
    my (undef, $c1) = record("/h/$c", 'X-Real-IP' => $v6);
    like($a1->{ip}, qr/^[0-9a-f]{16}$/, "hashed: 16 hex digits ($a1->{ip})");
    is($a2->{ip}, $a1->{ip}, '... the same address the same day: the same');
    isnt($b1->{ip}, $a1->{ip}, '... the next address: another');
    like($c1->{ip}, qr/^[0-9a-f]{16}$/, '... IPv6 too');
    isnt($c1->{ip}, $a1->{ip}, '... another again');
}

is_deeply([$t->bad_log_lines], [], 'no alert in the error log');
$t->stop;

# 3. nginx -t.
my $bad = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scan_address masked;
    server { listen 127.0.0.1:%%PORT%%; location / { code_router \$uri; } }
CONF
$bad->write_conf;
my ($rc, $out) = $bad->test_conf;
isnt($rc, 0, 'nginx -t refuses code_router_scan_address masked');
like($out, qr/invalid value "masked"/, '... saying why') or diag $out;

done_testing;
