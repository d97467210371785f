#!/usr/bin/perl
# Where right PINs are counted, as nginx -t checks it: a verify
# location (or the API's POST .../CODE/verify) on a scan zone without a
# store is refused (its verifications would be forgotten: shown below
# with a zone that needs room); two zones counting one key's right PINs
# (the page in one, the API in another, or two servers) are refused,
# so the same PIN cannot be "genuine" twice; one zone for page and API
# says "genuine" once.  And the form's target needs a location that fixes
# it: a regex location or a code from elsewhere is refused with a page.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(mint make_key);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
my $other = make_key("$d/other.key");
my $base = verify_conf(dir => $d, key => $key);

sub conf_fails {
    my ($conf, $want, $what) = @_;
    my $bt = CodeRouter::Test::Nginx->new(http => $conf);
    my ($rc, $out) = $bt->test_conf;
    isnt($rc, 0, "nginx -t fails: $what");
    like($out, $want, "... $what: the message says why");
}

sub conf_passes {
    my ($conf, $what) = @_;
    my $bt = CodeRouter::Test::Nginx->new(http => $conf);
    my ($rc, $out) = $bt->test_conf;
    is($rc, 0, "nginx -t passes: $what") or diag $out;
}

# 5. A zone without a store, for the page and for the API.
my $mem = $base =~ s{code_router_scans zone=scans:1m store=\S+;}
                    {code_router_scans zone=mem:32k;}r;
conf_fails($mem, qr/"code_router_verify" counts right PINs in zone "mem", which has no "store="/,
           'code_router_verify on a zone without a store');
my $api_mem = $base =~ s{(location /v1/codes/ \{)}
                        {$1\n            code_router_scans zone=mem:32k;}r;
$api_mem =~ s{location = /verify \{.*?\n        \}}{}s or die;
conf_fails($api_mem, qr/"code_router_api" counts right PINs in zone "mem", which has no "store="/,
           "the API's verify on a zone without a store");
my $api_mem_noguard = $api_mem =~ s/code_router_pin_guard zone=pins:1m;//r;
conf_passes($api_mem_noguard, 'an API without a guard (no PIN check) on a zone without a store');

# 10. One key, two verifying zones.
my $two = $base =~ s{(location /v1/codes/ \{)}
                    {$1\n            code_router_scans zone=api:1m store=$d/scans/api.mdb;}r;
conf_fails($two, qr/counts right PINs of key id 1 in zone "api", another location in zone "scans"/,
           'the page in one zone, the API in another, for one key');
my $servers = $base . <<"X";
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name second;
        code_router_scans zone=second:1m store=$d/scans/second.mdb;
        location / {
            code_router_verify;
        }
    }
X
conf_fails($servers, qr/of key id 1 in zone "second", another location in zone "scans"/,
           'two servers with one key, each its own zone');
my $tenants = $servers =~ s/(server_name second;)/$1\n        code_router_key 1 $other;/r;
conf_passes($tenants, 'two servers with two keys, each its own zone');

# The same zone for the page and the API: the same PIN is genuine once.
my $t = CodeRouter::Test::Nginx->new(workers => 2, http => $base);
$t->start;
my $code = mint($key, 1, 70);
my $pin = pin_of($key, 1, 70);
my %json = (Accept => 'application/json');
my $j = json_of(post_pin($t, "/verify?code=$code", $pin, '192.0.2.1', %json));
is($j->{verification}, 'genuine', 'the page: genuine');
$j = json_of(post_pin($t, "/v1/codes/$code/verify", $pin, '192.0.2.2'));
is($j->{verification}, 'verified_before', 'then the API: verified_before, never genuine twice');
is($j->{verifications}, 2, '... verifications 2');
$t->stop;

# 5, shown: before the check, a zone without a store forgot a right PIN
# once other codes' scans needed its room.  Now nginx -t refuses it (above);
# the same run with a store keeps it.
my $small = $base =~ s{code_router_scans zone=scans:1m store=(\S+);}
                      {code_router_scans zone=scans:32k store=$1.small;}r;
$t = CodeRouter::Test::Nginx->new(http => $small);
$t->start;
$code = mint($key, 1, 71);
$pin = pin_of($key, 1, 71);
is(json_of(post_pin($t, "/verify?code=$code", $pin, '192.0.2.3', %json))
   ->{verification}, 'genuine', 'a 32k zone with a store: genuine');
sleep 1.5;                                  # flushed to the store
$t->get('/' . mint($key, 1, $_)) for 100 .. 499;
$j = json_of(post_pin($t, "/verify?code=$code", $pin, '192.0.2.4', %json));
is($j->{verification}, 'verified_before', '... after 400 scans of other codes: verified_before');
is($j->{verifications}, 2, '... verifications 2 (read back from the store)');
$t->stop;

# 9. The form's target must be fixed by the location.
my $regex = $base =~ s#location = /verify \{#location ~ ^/verify\$ {#r;
conf_fails($regex, qr/"code_router_verify_page" needs a location whose form target is fixed/,
           'a page in a regex location');
my $cookie = $base =~ s{code_router_verify \$arg_code;}{code_router_verify \$cookie_code;}r;
conf_fails($cookie, qr/form target is fixed/, 'a page with the code from a cookie');
my $exact = qr/location = \/verify \{\n\s*code_router_verify \$arg_code;/;
my $noslash = $base =~ s#$exact#location /verify {\n code_router_verify;#r;
conf_fails($noslash, qr/form target is fixed/, 'a page in a prefix location without a trailing /');
my $prefix = $base =~ s#$exact#location /v/ {\n code_router_verify;#r;
$t = CodeRouter::Test::Nginx->new(http => $prefix);
$t->start;
$code = mint($key, 1, 72);
my $resp = $t->raw("GET //v/x/\L$code\E HTTP/1.0\r\nHost: x\r\n\r\n");
like($resp, qr/<form method="post" action="\/v\/$code">/,
     'a prefix location /v/: GET //v/x/code posts to /v/CODE');
$t->stop;

done_testing;
