#!/usr/bin/perl
# Two brands (servers with their own code_router_key)
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
use POSIX ();
use CodeRouter::Test qw(tmpdir make_key load_store mint write_file run_cmd);
use Time::HiRes qw(sleep);

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

# 5. Issue 12, item 13: another process grows the scan store's map (as a
# reload with a larger store_size= does) while two workers count under
# load and a thread pool writes.  LMDB lets a process adopt a grown map
# only while none of its transactions is active; the event loop reads
# while the pool thread writes.  Every scan must still be counted, and no
# worker may crash.  (The race is narrow: t/unit/test_json.c holds a read
# open across the growth to show the rule deterministically.)
my ($grc, $gout, $gerr) = run_cmd([CodeRouter::Test::cli(), 'mint', '--key',
    $key{a}, '--kid', 1, '--from', 1, '--count', 600]);
die "mint: $gerr" if $grc;
my @codes = split /\n/, $gout;
my $grow = "$sdir/grow.mdb";
my $g = CodeRouter::Test::Nginx->new(
    main => 'thread_pool tp threads=1;', workers => 2, http => <<"CONF");
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $db{a};
        code_router_key 1 $key{a};
        code_router_scans zone=grow:4m store=$grow store_size=1m
                          thread_pool=tp;
        location / { code_router \$uri; }
        location /v1/codes/ { code_router_api; }
    }
CONF
$g->start;
# Clients: rounds over their own quarter of the codes until the growth is
# done, so first scans read the store while the map grows.
my $stop = "$d/grow.stop";
my @clients;
for my $k (0 .. 3) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $h = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0);
        my ($bad, $rounds) = (0, 0);
        until (-e $stop && $rounds >= 2) {
            for (my $i = $k; $i < @codes; $i += 4) {
                my $r = $h->get($g->url("/$codes[$i]"));
                $bad++ if $r->{status} != 302;
            }
            $rounds++;
        }
        write_file("$d/rounds.$k", "$rounds $bad");
        POSIX::_exit(0);
    }
    push @clients, $pid;
}
# The other process: mdb_load with a 64m map, writing more than the 1m
# nginx has (40,000 records of another fingerprint).
my $dump = "VERSION=3\nformat=bytevalue\nmapsize=" . (64 << 20)
         . "\ndatabase=scans\ntype=btree\nHEADER=END\n";
$dump .= sprintf " 67726f7765723a3a01%010x\n 010000000000000000000000\n", $_
    for 1 .. 40000;
$dump .= "DATA=END\n";
write_file("$d/grow.dump", $dump);
sleep 1;
my ($lrc, undef, $lerr) = run_cmd(['mdb_load', '-n', '-f', "$d/grow.dump",
                                   $grow]);
is($lrc, 0, 'another process grew the map to 64m under load') or diag $lerr;
sleep 1;
write_file($stop, '');
waitpid $_, 0 for @clients;
my (%want, $bad, $total);
for my $k (0 .. 3) {
    my ($rounds, $b) = split ' ', CodeRouter::Test::read_file("$d/rounds.$k");
    $bad += $b;
    for (my $i = $k; $i < @codes; $i += 4) {
        $want{ $codes[$i] } = $rounds;
        $total += $rounds;
    }
}
is($bad, 0, "$total scans under load, all redirected");
$g->stop;
unlike($g->error_log, qr/exited on signal|MDB_MAP_RESIZED|Invalid argument/,
       'no worker crashed, no transaction failed on the resize')
    or diag join "\n", grep { /signal|RESIZED|Invalid/ } split /\n/, $g->error_log;
$g->start;
my $h = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1);
my $off = grep {
    JSON::PP::decode_json($h->get($g->url("/v1/codes/$_"))->{content})
        ->{scans} != $want{$_} } @codes;
is($off, 0, 'every one of 600 codes has its exact count in the store');
$g->stop;

done_testing;
