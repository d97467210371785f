#!/usr/bin/perl
# Issue 12, item 2: two brands (servers with their own code_router_key)
# sharing one scan zone, or one zone and its scan store, never share the
# count of a (kid, serial): counts are keyed by the key's fingerprint too.
# Before the fix brand A's serial S scanned 7 times made brand B's first
# scan of its own serial S "overscanned" (410).  Also: counts survive
# adding a key id to a server, and a scan store of the old format
# (version 1) is refused by nginx -t with a clear message.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use HTTP::Tiny;
use CodeRouter::Test qw(tmpdir make_key load_store mint write_file run_cmd);

my $d = tmpdir();
my %key = (a => make_key("$d/a.key"), b => make_key("$d/b.key"));
my $key2 = make_key("$d/a2.key");
my $sdir = "$d/scans";
mkdir $sdir;
chmod 0777, $sdir;

my %db;
for my $brand (qw(a b)) {
    $db{$brand} = "$d/$brand.mdb";
    load_store($db{$brand}, ["c$brand.csv", <<'CSV'], ["b$brand.csv", <<'CSV']);
campaign,name,type,url
h5,H5,h5,https://shop.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign
verify,1,1,1000,verify,h5
verify2,2,1,1000,verify,h5
CSV
}

my $port_b = CodeRouter::Test::free_port();

sub conf {
    my ($zone, %o) = @_;
    my $extra = $o{a_key2} ? "        code_router_key 2 $key2;\n" : '';
    return <<"CONF";
    code_router_scans $zone;
    code_router_max_scans verify 5;
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $db{a};
        code_router_key 1 $key{a};
$extra        location / { code_router \$uri; }
        location /v1/codes/ { code_router_api; }
    }
    server {
        listen 127.0.0.1:$port_b;
        code_router_db $db{b};
        code_router_key 1 $key{b};
        location / { code_router \$uri; }
        location /v1/codes/ { code_router_api; }
    }
CONF
}

my $http = HTTP::Tiny->new(max_redirect => 0);
sub url { my ($t, $brand, $path) = @_;
          return $brand eq 'a' ? $t->url($path)
                               : "http://127.0.0.1:$port_b$path" }
sub scan { my ($t, $brand, $c) = @_;
           return $http->get(url($t, $brand, "/$c"))->{status} }
sub scans { my ($t, $brand, $c) = @_;
            my $r = $http->get(url($t, $brand, "/v1/codes/$c"));
            return JSON::PP::decode_json($r->{content})->{scans} }

my ($a7, $b7) = (mint($key{a}, 1, 7), mint($key{b}, 1, 7));
isnt($a7, $b7, "two brands' codes for kid 1, serial 7 differ");

# 1. One zone, no store, shared by both servers.
my $t = CodeRouter::Test::Nginx->new(http => conf('zone=shared:1m'));
$t->start;
my @s = map { scan($t, 'a', $a7) } 1 .. 7;
is_deeply(\@s, [(302) x 5, 410, 410],
          'brand A: serial 7 scanned 7 times, the 6th and 7th overscanned');
is(scan($t, 'b', $b7), 302,
   "shared zone: brand B's first scan of its own serial 7 is routed (302)");
is(scans($t, 'b', $b7), 1, '... and counted once');
is(scans($t, 'a', $a7), 7, "... brand A's count is still 7");
$t->stop;

# 2. One zone and its scan store: counts read back from the store.
my $zone = "zone=stored:1m store=$sdir/shared.mdb";
$t = CodeRouter::Test::Nginx->new(http => conf($zone));
$t->start;
scan($t, 'a', $a7) for 1 .. 7;
$t->stop;                  # graceful: the store has A's 7 scans
ok(-s "$sdir/shared.mdb", 'the scan store is written');
$t->start;                 # a fresh zone: every count comes from the store
is(scan($t, 'b', $b7), 302,
   "shared store: brand B's first scan of its own serial 7 is routed (302)");
is(scans($t, 'b', $b7), 1, '... and counted once');
is(scans($t, 'a', $a7), 7, "... brand A's 7 scans are read back");
scan($t, 'b', $b7) for 1 .. 2;
$t->stop;

# 3. Adding a key id to a server keeps its counts.
$t = CodeRouter::Test::Nginx->new(http => conf($zone, a_key2 => 1));
$t->start;
is(scans($t, 'a', $a7), 7, 'brand A with key id 2 added: still 7 scans');
is(scans($t, 'b', $b7), 3, 'brand B: 3 scans');
my $a2 = mint($key2, 2, 7);
is(scan($t, 'a', $a2), 302, "key id 2's serial 7 is a code of its own");
is(scans($t, 'a', $a2), 1, '... counted from 1');
$t->stop;

# 4. A scan store of version 1 (records keyed by kid and serial alone):
# nginx -t refuses it, naming the version and what to do.
my $old = "$sdir/old.mdb";
write_file("$d/old.dump", <<'DUMP');
VERSION=3
format=bytevalue
database=scans
type=btree
HEADER=END
 010000000007
 070000000000000000000000
DATA=END
DUMP
my ($rc, $out, $err) = run_cmd(['mdb_load', '-n', '-f', "$d/old.dump", $old]);
is($rc, 0, 'a version 1 scan store made with mdb_load') or diag $err;
my $n = CodeRouter::Test::Nginx->new(
    http => conf("zone=old:1m store=$old"));
$n->write_conf;
my $msg;
($rc, $msg) = $n->test_conf;
isnt($rc, 0, 'nginx -t refuses a version 1 scan store');
like($msg, qr/scan store "\Q$old\E" has version 1, this code-router reads version 2.*move it aside/,
     '... saying its version and what to do') or diag $msg;

done_testing;
