#!/usr/bin/perl
# The verification API through a real nginx: the router's decision as
# JSON for every outcome, checked by two strict parsers (JSON::PP and
# python3 -m json.tool); names with quotes, backslashes, HTML and Chinese
# come back intact; errors are JSON with the right status; GET reads,
# POST .../scans counts; and conf/api.conf's access control (address and
# X-Api-Key) works as written.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Encode ();
use JSON::PP ();
use CodeRouter::Test qw(run_cmd tmpdir make_key write_file
                        load_store mint);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
mkdir "$d/scans";
chmod 0777, "$d/scans";

my $name = q{春季 "抽奖" \\ <script>alert(1)</script> & 'x'};
(my $csv_name = $name) =~ s/"/""/g;

load_store($db, ['c.csv', <<"CSV"], ['b.csv', <<'CSV'], ['o.csv', <<'CSV']);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at
h5,"$csv_name",h5,https://shop.example/p?x=1,,,,,2020-01-01T00:00+08:00,
mp,小程序,miniprogram,,wx0123456789abcdef,pages/a/index,k=v,https://wxaurl.cn/mp1,,
CSV
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region,dealer
b-h5,1,1,100,verify,h5,SKU-1,06901234567892,L1,2026-11-02,CN-ZJ,D-HZ-01
b-mp,1,101,200,marketing,mp,,,,,,
CSV
kid,serial,state,campaign
1,50,revoked,
CSV

my $conf = <<"CONF";
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m store=$d/scans/scans.mdb;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/codes/ {
            code_router_api;
        }
        location /by-arg {
            code_router_api \$arg_code;
        }
        location /r/ {
            code_router \$uri;
            code_router_interstitial /open;
        }
        location = /open {
            internal;
            return 200 \$code_router_target;
        }
    }
CONF

my $t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;

# Both parsers must accept the body; returns the decoded object.
sub json_ok {
    my ($r, $what) = @_;
    like($r->{headers}{'content-type'} // '', qr{^application/json},
         "$what: application/json");
    my $obj = eval { JSON::PP->new->utf8->decode($r->{content}) };
    ok($obj, "$what: JSON::PP parses it") or diag "$@: $r->{content}";
    my $f = write_file("$d/body.json", $r->{content});
    my ($rc, $out, $err) = run_cmd(['python3', '-m', 'json.tool', $f]);
    is($rc, 0, "$what: python3 -m json.tool parses it") or diag $err;
    return $obj // {};
}

my $c = mint($key, 1, 7);
my $r = $t->get("/v1/codes/$c");
is($r->{status}, 200, 'ok code: 200');
my $j = json_ok($r, 'ok code');
is($j->{status}, 'ok', 'status ok');
is($j->{code}, $c, 'code');
is($j->{kid}, 1, 'kid');
is($j->{serial}, 7, 'serial');
cmp_ok($j->{generation}, '>=', 1, 'generation');
is_deeply($j->{batch}, { id => 'b-h5', scene => 'verify', sku => 'SKU-1',
                         gtin => '06901234567892', lot => 'L1',
                         production_date => '2026-11-02', region => 'CN-ZJ',
                         dealer => 'D-HZ-01' },
          'batch');
is($j->{campaign}{id}, 'h5', 'campaign id');
is($j->{campaign}{name}, Encode::decode('UTF-8', $name),
   'a name with quotes, backslash, HTML and Chinese comes back intact');
unlike($r->{content}, qr/<script>|<\/script>/,
       'no raw <script> in the body (escaped as \u003c)');
is($j->{campaign}{type}, 'h5', 'campaign type');
is($j->{campaign}{starts_at}, '2020-01-01T00:00:00+08:00',
   'starts_at in its own zone');
is($j->{campaign}{ends_at}, undef, 'open end: null');
is($j->{campaign}{target},
   "https://shop.example/p?x=1&code=$c&batch=b-h5&scene=verify&campaign=h5",
   'target: where the router sends the scan');
is($j->{scans}, 0, 'scans: 0 (a GET does not count)');
is($j->{first_scan}, undef, 'first_scan: null');
is($j->{diverted}, JSON::PP::false, 'diverted: false');
is_deeply($j->{parents}, [], 'parents: [] (in no case; t/37 has chains)');

# POST .../scans counts.
for my $n (1 .. 3) {
    $r = $t->request('POST', "/v1/codes/$c/scans");
    is(JSON::PP::decode_json($r->{content})->{scans}, $n, "POST: $n scans");
}
$j = JSON::PP::decode_json($t->get("/v1/codes/$c")->{content});
is($j->{scans}, 3, 'GET after three POSTs: 3');
like($j->{first_scan}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'first_scan set');

# The mini-program target: its URL Scheme.
$j = json_ok($t->get('/v1/codes/' . mint($key, 1, 150)), 'mini-program');
is($j->{campaign}{target},
   'weixin://dl/business/?appid=wx0123456789abcdef&path=pages%2Fa%2Findex'
   . '&query=k%3Dv%26code%3D' . mint($key, 1, 150) . '&env_version=release',
   'mini-program target: the URL Scheme');

# The API names the target the router sends the same client to: inside
# WeChat a mini-program's URL Link, elsewhere its URL Scheme (what the
# interstitial opens).
my $mp = mint($key, 1, 151);
my $WX = 'Mozilla/5.0 (iPhone) MicroMessenger/8.0.50';
$r = $t->get("/r/$mp", { 'User-Agent' => $WX });
is($r->{status}, 302, 'the router, WeChat: 302');
is($r->{headers}{location}, 'https://wxaurl.cn/mp1', '... to the URL Link');
$j = json_ok($t->get("/v1/codes/$mp", { 'User-Agent' => $WX }), 'API, WeChat');
is($j->{campaign}{target}, $r->{headers}{location},
   'API, WeChat: the URL Link, as the router sends');
$r = $t->get("/r/$mp");
is($r->{status}, 200, 'the router, elsewhere: the interstitial');
like($r->{content}, qr{^weixin://}, '... which opens the URL Scheme');
$j = json_ok($t->get("/v1/codes/$mp"), 'API, elsewhere');
is($j->{campaign}{target}, $r->{content},
   'API, elsewhere: the URL Scheme, as the router sends');

# Every other outcome.
my @cases = (
    [mint($key, 1, 50), 200, 'revoked'],
    [mint($key, 1, 5000), 200, 'unbound'],
    ['0000', 400, 'malformed'],
    [substr($c, 0, 17) . ($c =~ /Z$/ ? 'Y' : 'Z'), 404, 'forged'],
    [mint($key, 2, 1), 404, 'forged'],
);
for my $case (@cases) {
    my ($code, $http, $status) = @$case;
    $r = $t->get("/v1/codes/$code");
    is($r->{status}, $http, "$status: HTTP $http");
    $j = json_ok($r, $status);
    is($j->{status}, $status, "status $status");
    ok(!exists $j->{code}, "$status: no code echoed") if $http != 200;
    like($j->{error} // '', qr/\w/, "$status: an error message")
        if $http != 200;
}
$j = JSON::PP::decode_json($t->get('/v1/codes/' . mint($key, 1, 5000))->{content});
is($j->{campaign}, undef, 'unbound: campaign null');
is($j->{batch}, undef, 'unbound: batch null');

# The code from another variable.
is(JSON::PP::decode_json($t->get("/by-arg?code=$c")->{content})->{serial}, 7,
   'code_router_api $arg_code');

# Methods.
$r = $t->request('PUT', "/v1/codes/$c");
is($r->{status}, 405, 'PUT: 405');
is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
json_ok($r, 'PUT');
$r = $t->request('GET', "/v1/codes/$c/scans");
is($r->{status}, 405, 'GET .../scans: 405');
is($r->{headers}{allow}, 'POST', '... Allow: POST');
$r = $t->request('POST', "/v1/codes/$c");
is($r->{status}, 405, 'POST .../CODE: 405');
$r = $t->request('HEAD', "/v1/codes/$c");
is($r->{status}, 200, 'HEAD: 200');
is($r->{content} // '', '', '... no body');

# The store gone: 503 JSON.
rename $db, "$db.away";
sleep 1.1;
$r = $t->get("/v1/codes/$c");
is($r->{status}, 503, 'store gone: 503');
$j = json_ok($r, 'issued');
is($j->{status}, 'issued', 'a genuine code: status issued (its signature needs no store)');
is($j->{error}, 'this code was issued by the brand; details are temporarily unavailable; retry',
   '... saying so');
is($j->{code}, $c, '... the code it verified');
like($j->{serial}, qr/^[0-9]+$/, '... and its serial');
ok(!exists $j->{campaign} && !exists $j->{batch}, '... and nothing of its binding');
rename "$db.away", $db;
$t->stop;

# conf/api.conf as shipped, addresses and key pointed at the test.
my $port = CodeRouter::Test::free_port();
my $api = CodeRouter::Test::example_api_conf($port);
my $a = CodeRouter::Test::Nginx->new(http => <<"CONF" . $api);
    code_router_db $db;
    code_router_key 1 $key;
    server { listen 127.0.0.1:%%PORT%%; }
CONF
$a->start;
my $http = HTTP::Tiny->new(max_redirect => 0);
my $u = "http://127.0.0.1:$port/v1/codes/$c";
$r = $http->get($u);
is($r->{status}, 401, 'conf/api.conf: no key, 401');
$r = $http->get($u, { headers => { 'X-Api-Key' => 'wrong' } });
is($r->{status}, 401, 'conf/api.conf: a wrong key, 401');
$r = $http->get($u, { headers => {
    'X-Api-Key' => 'replace-with-a-long-random-key-for-mp1' } });
is($r->{status}, 200, 'conf/api.conf: the key, 200');
is(JSON::PP::decode_json($r->{content})->{status}, 'ok', '... the decision');
# Issue 12, item 8: the key is compared with its case, and whole.
for my $k (uc('replace-with-a-long-random-key-for-mp1'),
           'Replace-with-a-long-random-key-for-mp1',
           'replace-with-a-long-random-key-for-mp1x',
           'xreplace-with-a-long-random-key-for-mp1',
           'replace-with-a-long-random-key-for-mp')
{
    $r = $http->get($u, { headers => { 'X-Api-Key' => $k } });
    is($r->{status}, 401, "conf/api.conf: the key changed (\"$k\"), 401");
}
is($http->get("http://127.0.0.1:$port/other")->{status}, 404,
   'conf/api.conf: other paths 404');
$a->stop;

done_testing;
