#!/usr/bin/perl
# A signed code during an outage: the binding store cannot be read, but a
# code that verifies under its key was issued by the brand.  The router's
# page, the verify page and the API say so (status "issued", 503, its own
# metric and message); a forged or malformed code is still that; a right
# PIN is still answered "unavailable", never "genuine"; the store back,
# everything is as before.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(mint);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
my $db = "$d/brand.mdb";
(my $conf = verify_conf(dir => $d, key => $key))
    =~ s/error_page 404 410 /error_page 404 410 503 /;

my $t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;

my $code = mint($key, 1, 42);
my $pin = pin_of($key, 1, 42);
(my $forged = $code) =~ s/.$/substr($code, -1) eq 'A' ? 'B' : 'A'/e;
my $json = { Accept => 'application/json' };

is($t->get("/$code")->{status}, 302, 'the store readable: 302');

rename $db, "$db.away" or die "rename: $!";
sleep 1.1;

my $r = $t->get("/$code");
is($r->{status}, 503, 'the store gone, a genuine code: 503');
like($r->{content}, qr/此码为品牌方发放的正品码，详细信息暂时无法查询/,
     '... the page says the brand issued it (zh)');
like($r->{content}, qr/This code was issued by the brand; details are temporarily unavailable/,
     '... and in English');
like($r->{content}, qr{<p class="why">issued</p>}, '... status issued');
unlike($r->{content}, qr/Temporarily unavailable\. Please/, '... not the bare "unavailable"');

$r = $t->get("/$forged");
is($r->{status}, 404, 'a forged code in the outage: 404');
like($r->{content}, qr{<p class="why">forged</p>}, '... forged, as ever');
$r = $t->get('/0' . substr($code, 1));
like($r->{content}, qr{<p class="why">malformed</p>}, 'a malformed one: malformed');

$r = $t->get("/verify?code=$code", $json);
is($r->{status}, 503, 'the verify location, JSON: 503');
is(json_of($r)->{status}, 'issued', '... status issued');
$r = $t->get("/verify?code=$code");
like($r->{content}, qr/data-status="issued"/, 'the verify page: status issued');
like($r->{content}, qr/This code was issued by the brand/, '... the same message');
unlike($r->{content}, qr/<form/, '... and no PIN form (a PIN cannot be counted now)');

$r = post_pin($t, "/verify?code=$code", $pin, '192.0.2.10', %$json);
my $j = json_of($r);
is($r->{status}, 503, 'the right PIN in the outage: 503');
is($j->{status}, 'unavailable', '... "unavailable": "issued" is no PIN verdict');
isnt($j->{verification} // '', 'genuine', '... never "genuine"');
$r = post_pin($t, "/verify?code=$code", $pin, '192.0.2.10');
like($r->{content}, qr/data-status="unavailable"/, '... the page says unavailable too');

$r = $t->get("/v1/codes/$code");
$j = json_of($r);
is($r->{status}, 503, 'the API: 503');
is($j->{status}, 'issued', '... status issued');
is($j->{error}, 'this code was issued by the brand; details are temporarily unavailable; retry',
   '... its message');
is($j->{code}, $code, '... the code');
ok(!exists $j->{campaign}, '... nothing of the binding');
$j = json_of($t->get("/v1/codes/$forged"));
is($j->{status}, 'forged', 'the API, a forged code: forged');

my $status = $t->get('/status')->{content};
like($status, qr/^code_router_requests_total\{status="issued"\} 1$/m,
     'code_router_requests_total{status="issued"}: the scan')
    or diag $status;

rename "$db.away", $db or die "rename: $!";
sleep 1.1;
is($t->get("/$code")->{status}, 302, 'the store back: 302');
$r = post_pin($t, "/verify?code=$code", $pin, '192.0.2.10', %$json);
is(json_of($r)->{verification}, 'genuine',
   '... and the first right PIN is "genuine" (the outage counted none)');

$t->stop;

done_testing;
