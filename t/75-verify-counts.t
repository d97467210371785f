#!/usr/bin/perl
# Right PINs are counts that last: kept in the scan zone across
# two workers, a reload and a restart (the scan store's 'v' records,
# a count and a first time of their own, apart from the code's scans);
# counted per tenant (two brands' keys share a zone and a store, their
# codes of one serial counted apart); a lockout survives a reload; and
# the fallback page shows the first scan in the brand's zone.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
use Encode ();
use Time::Local ();
use JSON::PP ();
use CodeRouter::Test qw(make_key mint load_store);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
load_store("$d/brand.mdb", ['t.csv', <<'CSV']);
batch,kid,serial_from,serial_to,scene,campaign
roll-t,1,2000,2999,trace,verify-page
CSV
my $other = make_key("$d/other.key");      # another brand, also kid 1
load_store("$d/other.mdb", ['oc.csv', <<'CSV'], ['ob.csv', <<'CSV']);
campaign,name,type,url
o,Other brand,h5,https://other.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign
ob,1,1,1000,verify,o
CSV

my $extra = <<"X";
    code_router_max_scans trace 1;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name other;
        code_router_db $d/other.mdb;
        code_router_key 1 $other;
        location /v1/codes/ {
            code_router_api;
        }
    }
X
my $t = CodeRouter::Test::Nginx->new(workers => 2,
    http => verify_conf(dir => $d, key => $key, extra => $extra));
$t->start;

my $code = mint($key, 1, 5);
my $pin = pin_of($key, 1, 5);
my $path = "/v1/codes/$code/verify";

sub verify {
    my ($addr) = @_;
    return json_of(post_pin($t, $path, $pin, $addr));
}

# The other brand's API, through its server name (raw: HTTP::Tiny cannot
# set Host).
sub other_verify {
    my ($c, $p) = @_;
    my $resp = $t->raw("POST /v1/codes/$c/verify HTTP/1.1\r\nHost: other\r\n"
        . "Connection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        . "Content-Length: " . length("pin=$p") . "\r\n\r\npin=$p");
    my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
    return JSON::PP->new->decode($body // '{}');
}

my $j = verify('192.0.2.1');
is($j->{verification}, 'genuine', 'first right PIN: genuine');
my $first = $j->{first_verified};
is($t->get("/$code")->{status}, 302, 'a scan of the code');
is(json_of($t->get("/v1/codes/$code"))->{scans}, 1, '... its scans: 1, apart from the PINs');

# Two workers, new connections: exact counts 2..21.
my @n = map { verify("192.0.2.$_")->{verifications} } 2 .. 21;
is_deeply(\@n, [2 .. 21], 'two workers count 2..21 exactly');

# Per tenant: the other brand's code of the same kid and serial.
my $ocode = mint($other, 1, 5);
isnt($ocode, $code, "the other brand's code of serial 5 is another code");
my $oj = other_verify($ocode, pin_of($other, 1, 5));
is($oj->{verification}, 'genuine', "the other brand's first right PIN: genuine (counted apart)");
is($oj->{verifications}, 1, '... count 1');

# A lockout, then a reload: both kept.
my $code2 = mint($key, 1, 6);
my $wrong = sprintf '%08d', (pin_of($key, 1, 6) + 1) % 100000000;
post_pin($t, "/v1/codes/$code2/verify", $wrong, '203.0.113.9') for 1 .. 5;
is(json_of(post_pin($t, "/v1/codes/$code2/verify", $wrong, '203.0.113.9'))->{verification},
   'locked', 'an address locked out of a code');
$t->reload;
$j = verify('192.0.2.30');
is($j->{verification}, 'verified_before', 'after a reload: verified_before');
is($j->{verifications}, 22, '... count 22');
is($j->{first_verified}, $first, '... the first time kept');
is(json_of(post_pin($t, "/v1/codes/$code2/verify", $wrong, '203.0.113.9'))->{verification},
   'locked', '... and the lockout kept');

# A restart: from the scan store.
$t->stop;
$t->start;
$j = verify('192.0.2.31');
is($j->{verifications}, 23, 'after a restart: count 23, read back from the store');
is($j->{first_verified}, $first, '... the first time kept');
is(json_of($t->get("/v1/codes/$code"))->{scans}, 1, '... the scans kept apart (1)');
$oj = other_verify($ocode, pin_of($other, 1, 5));
is($oj->{verifications}, 2, "... the other brand's count too (2)");
my $m = $t->get('/status')->{content};
# Right PINs are read, counted and committed in the store itself (the
# embedded ledger, issue 23), never loaded into the zone.
like($m, qr/^code_router_ledger_requests_total\{ledger="embedded",outcome="counted"\} [1-9]/m,
     'metrics: counted in the store by the embedded ledger');

# Times on the fallback page too, in the brand's zone (the issue's
# complaint: a shopper in Beijing read 2026-11-30T13:41:30Z).
my $tc = mint($key, 1, 2001);
is($t->get("/$tc")->{status}, 302, 'a trace code: the first scan');
my $r = $t->get("/$tc");
is($r->{status}, 410, '... the second is overscanned (code_router_max_scans trace 1)');
my ($iso) = json_of($t->get("/v1/codes/$tc"))->{first_scan} =~ /^(.{16})/;
my ($y, $mo, $dd, $h, $mi) = $iso =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+)/;
my @lt = gmtime(Time::Local::timegm(0, $mi, $h, $dd, $mo - 1, $y) + 8 * 3600);
my $zh = sprintf '%d年%d月%d日 %02d:%02d', $lt[5] + 1900, $lt[4] + 1, $lt[3], $lt[2], $lt[1];
my $en = sprintf '%d %s %d, %02d:%02d', $lt[3],
    (qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec))[$lt[4]], $lt[5] + 1900, $lt[2], $lt[1];
my $page = Encode::decode('UTF-8', $r->{content});
like($page, qr/此码已被查询 2 次，首次查询时间 \Q$zh\E，/, "the fallback page: first scan $zh (+08:00)");
like($page, qr/checked 2 times\s+since \Q$en\E:/, "... and $en");
unlike($page, qr/\d{4}-\d\d-\d\dT/, '... no ISO 8601 time shown to people');

$t->stop;
done_testing;
