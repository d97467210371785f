#!/usr/bin/perl
# Activation on receipt: an item of an activate=on_receipt batch answers
# "inactive" (the router's fallback 404, the API's 200 "inactive") until a
# store has received its case (POST .../CODE/receive), then routes; a
# pallet's receipt activates all its cases' items; the same store again
# gets the first receipt (200), another store the first receipt with 409
# "diverted", logged and counted; the receipts survive a restart (the
# scan store); hostile receipts: an unknown or forged code, an item, bad
# store/dealer ids, no API key, wrong method, an oversized or wrong-typed
# body; no PIN verdict for an inactive item; a full table (max=) holds
# what fits, refuses a new receipt with 503 before it is stored, logged
# and counted; the dump round-trips the activate column.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use HTTP::Tiny;
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file make_key mint
                        load_store);
use CodeRouter::Verify qw(verify_conf pin_of post_pin json_of);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $ex = root() . '/conf/examples';

write_file("$d/items.csv", <<'CSV');
batch,kid,serial_from,serial_to,scene,campaign,sku,lot,activate
roll-R,1,2000000,2099999,verify,verify-page,SERUM-30ML,L2612,on_receipt
roll-N,1,3000000,3000999,trace,trace-page,RICE-5KG,L2613,now
CSV
my $out = load_store($db, "$ex/campaigns.csv", "$d/items.csv",
                     "$ex/packaging.csv");

# The dump writes the column back, and a dump loads into a new store as
# the same dump.
my (undef, $dump) = run_cmd([cli(), 'dump', '--db', $db, '--kind',
                             'batches']);
like($dump, qr/^batch,.*,dealer,activate$/m, 'dump: the activate column');
like($dump, qr/^roll-R,1,2000000,2099999,verify,.*,on_receipt$/m,
     '... on_receipt');
like($dump, qr/^roll-N,.*,now$/m, '... now');
write_file("$d/dump.csv", $dump);
my ($rc, undef, $err) = run_cmd([root() . '/scripts/code-router-load',
                                 '--db', "$d/copy.mdb",
                                 "$ex/campaigns.csv", "$d/dump.csv"]);
is($rc, 0, 'the dump loads') or diag $err;
my (undef, $dump2) = run_cmd([cli(), 'dump', '--db', "$d/copy.mdb",
                              '--kind', 'batches']);
is($dump2, $dump, '... and dumps the same');

write_file("$d/bad.csv", <<'CSV');
batch,kid,serial_from,serial_to,scene,campaign,activate
bad-1,1,5000000,5000009,verify,verify-page,later
CSV
($rc, undef, $err) = run_cmd([root() . '/scripts/code-router-load',
                              '--db', $db, "$d/bad.csv"]);
like($err, qr/bad\.csv:2: activate: "later" must be now or on_receipt/,
     'a bad activate value: its place and message');

mkdir "$d/scans";
chmod 0777, "$d/scans";     # the workers (nobody) create the scan store

my $conf = <<"CONF";
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m store=$d/scans/scans.mdb flush=1s;
    code_router_receipts scans max=100;
    map \$http_x_api_key \$api_ok { default 0; "k-123" 1; }
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/codes/ {
            if (\$api_ok = 0) {
                return 401 '{"status":"error"}\\n';
            }
            client_max_body_size 4k;
            code_router_api;
        }
        location /p/ {
            code_router \$uri;
            add_header X-Dealer \$code_router_dealer always;
        }
        location = /status {
            code_router_status;
        }
    }
CONF
my $t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;

my $http = HTTP::Tiny->new(max_redirect => 0, timeout => 10);
sub receive {
    my ($code, $body, %o) = @_;
    return $http->request($o{method} // 'POST',
        $t->url("/v1/codes/$code/receive"),
        { headers => { 'X-Api-Key' => $o{key} // 'k-123',
                       'Content-Type' => $o{type}
                           // 'application/x-www-form-urlencoded' },
          content => $body });
}
sub api {
    my $r = $http->request('GET', $t->url("/v1/codes/$_[0]"),
                           { headers => { 'X-Api-Key' => 'k-123' } });
    return eval { JSON::PP::decode_json($r->{content}) } // {};
}
sub j { return eval { JSON::PP::decode_json($_[0]{content}) } // {} }

my $item = mint($key, 1, 2000002);              # case 8000001, pallet 8100001
my $item2 = mint($key, 1, 2000008);             # case 8000002
my $loose = mint($key, 1, 2000050);             # in no case
my $plain = mint($key, 1, 3000001);             # activate=now
my $case1 = mint($key, 1, 8000001);
my $case2 = mint($key, 1, 8000002);
my $pallet = mint($key, 1, 8100001);

# 1. Inactive before any receipt; a plain batch routes.
my $r = $t->get("/p/$item");
is($r->{status}, 404, 'an on-receipt item before its case is received: 404');
is(api($item)->{status}, 'inactive', '... the API: inactive');
is(api($loose)->{status}, 'inactive', 'an on-receipt item in no case: inactive');
is($t->get("/p/$plain")->{status}, 302, 'an activate=now item routes');

# 2. Hostile receipts: none changes anything.
is(receive($case1, 'store=S-01', key => 'nope')->{status}, 401,
   'no API key: 401');
is(receive($case1, 'store=S-01', method => 'PUT')->{status}, 405,
   'PUT: 405');
is($http->request('GET', $t->url("/v1/codes/$case1/receive"),
                  { headers => { 'X-Api-Key' => 'k-123' } })->{status},
   405, 'GET: 405');
is(receive($case1, 'store=' . ('x' x 2000))->{status}, 413,
   'a body over 1024 bytes: 413');
is(receive($case1, 'store=S-01', type => 'text/plain')->{status}, 415,
   'not a form: 415');
for my $b ('', 'dealer=D-1', 'store=', 'store=a%20b', 'store=' . ('s' x 65),
           'store=S-01&store=S-02', 'store=S-01&dealer=%E4%B8%AD',
           'store=S-01&dealer=') {
    is(receive($case1, $b)->{status}, 400, "a bad form: \"$b\": 400");
}
is(receive($item, 'store=S-01')->{status}, 409,
   'an item (no codes packed into it): 409');
is(j(receive($item, 'store=S-01'))->{error},
   'not a case or pallet: no codes are packed into this code (a parents '
   . 'file names its children)', '... saying why');
my $forged = $case1;
substr($forged, -1, 1) = substr($forged, -1) eq 'A' ? 'B' : 'A';
is(receive($forged, 'store=S-01')->{status}, 404, 'a forged code: 404');
is(receive('NOTACODE', 'store=S-01')->{status}, 400, 'not a code: 400');
is(api($item)->{status}, 'inactive', 'after all that: still inactive');

# 3. The case received: its items route; the other case's do not.
$r = receive($case1, 'store=S-01&dealer=D-7');
is($r->{status}, 200, 'case 1 received by store S-01: 200') or diag $r->{content};
my $j = j($r);
is_deeply([@$j{qw(status store dealer kid serial)}],
          ['received', 'S-01', 'D-7', 1, 8000001], '... its receipt')
    or diag $r->{content};
like($j->{received_at}, qr/^\d{4}-\d\d-\d\dT/, '... and its time');
$r = $t->get("/p/$item");
is($r->{status}, 302, 'its item now routes');
is($r->{headers}{'x-dealer'}, 'D-7',
   "\$code_router_dealer: the receipt's dealer");
my $a = api($item);
is($a->{status}, 'ok', '... the API: ok');
is_deeply([@{ $a->{receipt} // {} }{qw(kid serial store dealer)}],
          [1, 8000001, 'S-01', 'D-7'], "... the API's receipt")
    or diag explain $a;
is($a->{batch}{dealer}, 'D-7', "... and the batch's dealer is the receipt's");
is(api($item2)->{status}, 'inactive', "the other case's item: inactive");

# Idempotent; another store is the diversion signal.
$r = receive($case1, 'store=S-01');
is($r->{status}, 200, 'the same store again: 200');
is(j($r)->{received_at}, $j->{received_at}, '... the first receipt');
is(j($r)->{dealer}, 'D-7', "... the first receipt's dealer");
$r = receive($case1, 'store=S-99&dealer=D-1');
is($r->{status}, 409, 'another store: 409');
is_deeply([@{ j($r) }{qw(status store dealer)}], ['diverted', 'S-01', 'D-7'],
          '... diverted, with the first receipt (its store and dealer)');

# 4. A pallet received: all its cases' items.
$r = receive($pallet, 'store=S-02');
is($r->{status}, 200, 'the pallet received by S-02') or diag $r->{content};
is(api($item2)->{status}, 'ok', "case 2's item: ok (its pallet received)");
$r = receive($case2, 'store=S-03');
is($r->{status}, 409, 'case 2 then received by another store: 409');
is_deeply([@{ j($r) }{qw(store by)}],
          ['S-02', { kid => 1, serial => 8100001 }],
          "... answered with the pallet's receipt");

# 5. Counted on /status.
my $m = $t->get('/status')->{content};
like($m, qr/^code_router_receipts_total\{zone="scans",result="received"\} 2$/m,
     'status: 2 received');
like($m, qr/^code_router_receipts_total\{zone="scans",result="diverted"\} 2$/m,
     '... 2 diverted');
like($m, qr/^code_router_receipts_total\{zone="scans",result="repeated"\} 1$/m,
     '... 1 repeated');
like($m, qr/^code_router_requests_total\{status="inactive"\} [1-9]\d*$/m,
     '... the outcome inactive counted') or diag $m;
like($t->error_log, qr/diverted: store "S-99" received key id 1 serial 8000001, first received by store "S-01" \(dealer "D-7"\)/,
     'the diversion is logged');

# 6. A restart: the receipts come back from the scan store.
$t->stop;
$t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;
is(api($item)->{status}, 'ok', 'after a restart: still received');
is(api($item2)->{status}, 'ok', '... the pallet too');
is(api(mint($key, 1, 2000100))->{status}, 'inactive',
   '... and an item of no received case still inactive');
$t->stop;

# 7. No prize before retail: a PIN check of an inactive item says no
# verdict, counts none, and spends no guard budget (a locked client would
# show it); a received item's right PIN is genuine.
$t = CodeRouter::Test::Nginx->new(http => verify_conf(dir => $d, key => $key,
    extra => '    code_router_receipts scans;'));
$t->start;
my $pin = pin_of($key, 1, 2000050);
for my $i (1 .. 12) {
    $r = post_pin($t, "/v1/codes/$loose/verify", $i == 12 ? $pin : '000000',
                  '192.0.2.7');
}
$j = json_of($r);
is($j->{status}, 'inactive', 'a right PIN of an inactive item: inactive')
    or diag $r->{content};
ok(!defined $j->{verification}, '... and no verdict');
$m = $t->get('/status')->{content};
unlike($m, qr/^code_router_pin_checks_total\{[^}]*\} [1-9]/m,
       '... no PIN check counted (no guard budget spent)') or diag $m;
$r = post_pin($t, "/v1/codes/$item/verify", pin_of($key, 1, 2000002),
              '192.0.2.7');
is(json_of($r)->{verification}, 'genuine',
   "a received item's right PIN, from the same client: genuine")
    or diag $r->{content};
$t->stop;

# 8. Bounded: a table of max=1 holds the first stored receipt (case 1),
# says the other has no room, and refuses a new receipt with 503, logged
# and counted; nothing is dropped from the store.
write_file("$d/p3.csv", "kid,serial_from,serial_to,parent_kid,parent_serial\n"
           . "1,2000020,2000025,1,8000003\n");
($rc, undef, $err) = run_cmd([root() . '/scripts/code-router-load', '--db',
                              $db, "$d/p3.csv"]);
is($rc, 0, 'a third case packed') or diag $err;
(my $small = $conf) =~ s/code_router_receipts scans max=100;/code_router_receipts scans max=1;/;
$t = CodeRouter::Test::Nginx->new(http => $small);
$t->start;
$t->allow_log(qr/no room/);
is(api($item)->{status}, 'ok', 'max=1: the first stored receipt is held');
is(api($item2)->{status}, 'inactive', "... the pallet's has no room");
like($t->error_log, qr/1 stored receipts have no room \(code_router_receipts max=\)/,
     '... and the log says so');
$r = receive(mint($key, 1, 8000003), 'store=S-04');
is($r->{status}, 503, 'a new receipt into a full table: 503');
like(j($r)->{error}, qr/full/, '... saying the table is full');
like($t->get('/status')->{content},
     qr/^code_router_receipts_total\{zone="scans",result="full"\} 2$/m,
     '... counted (with the one the start found no room for)');
like($t->error_log, qr/no room for a receipt of key id 1 serial 8000003/,
     '... logged');
$t->stop;
$t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;
is(api(mint($key, 1, 2000021))->{status}, 'inactive',
   '... refused before it was stored: after a restart with room, its '
   . 'case is still not received');
is(api($item2)->{status}, 'ok', "... and the pallet's receipt is back");
$t->stop;

done_testing();
