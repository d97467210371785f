#!/usr/bin/perl
# Scan counts across nodes through the PostgreSQL ledger: two nginx nodes
# (code_router_scans ... ledger= node=) and one PostgreSQL, its schema
# upgraded from version 3.  After a
# flush each node's count ($code_router_scans, the API) is the sum over
# the nodes, and code_router_max_scans holds across them; ledger show
# prints the total and each node's count.  A node SIGKILLed and started
# again continues from the total, never from zero.  PostgreSQL stopped
# (SIGSTOP): scans are answered without a stall and counted locally; on
# SIGCONT the totals catch up exactly, nothing counted twice.  The
# metrics count the ledger's batches and failures; a reload without
# ledger= lets its queue go; nginx -t refuses
# ledger= without store= or thread_pool=, node= without ledger=, and a
# bad node name.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(time sleep);
use CodeRouter::Test qw(tmpdir make_key load_store mint cli run_cmd);
use CodeRouter::Pg;

plan skip_all => 'PostgreSQL is not installed (make deps)' unless CodeRouter::Pg::available();

my $pg = CodeRouter::Pg->new;
my $ci = $pg->conninfo;
my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($rc, 0, 'ledger init') or diag $err;
is($out, "schema 5 (was 0)\n", '... schema 5');
# A ledger of version 3 (before scan counts) is upgraded in place.
$pg->psql('DROP FUNCTION code_router_scans_since(text, double precision); '
          . 'DROP FUNCTION code_router_scans(text, text[], smallint[], bigint[], bigint[]); '
          . 'DROP TABLE code_router_scan_counts; '
          . "UPDATE code_router_meta SET value = '3' WHERE name = 'schema_version'");
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($out, "schema 5 (was 3)\n", 'ledger init upgrades version 3: schema 5 (was 3)') or diag $err;

my $d = tmpdir();
my $key = make_key("$d/1.key");
load_store("$d/brand.mdb", ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url
h5,H5,h5,https://shop.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign
verify,1,1,1000,verify,h5
CSV

sub conf {
    my ($n, $zone) = @_;
    $zone //= "zone=scans:1m store=$d/scans$n/scans.mdb thread_pool=scans "
            . "\"ledger=$ci\" node=node-$n";
    return <<"CONF";
    code_router_db $d/brand.mdb;
    code_router_key 1 $key;
    code_router_scans $zone;
    code_router_max_scans verify 5;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            code_router \$uri;
            add_header X-Scans \$code_router_scans always;
            add_header X-Status \$code_router_status always;
        }
        location /v1/codes/ {
            code_router_api;
        }
        location = /status { code_router_status; }
    }
CONF
}

sub node {
    my ($n) = @_;
    mkdir "$d/scans$n";
    chmod 0777, "$d/scans$n";
    return CodeRouter::Test::Nginx->new(http => conf($n), workers => 2,
        main => 'thread_pool scans threads=1;');
}

my @nodes = map { node($_) } 0 .. 1;
$_->start for @nodes;
$_->allow_log(qr/ledger/) for @nodes;
my ($A, $B) = @nodes;

sub scan { my ($t, $c) = @_; return $t->get("/$c") }
sub scans_of { return scan(@_)->{headers}{'x-scans'} // '' }
sub api_scans {
    my ($t, $c) = @_;
    my $r = $t->get("/v1/codes/$c");
    return (eval { JSON::PP->new->decode($r->{content}) } // {})->{scans} // '';
}
sub show {
    my ($c) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'show', '--pg', $ci,
                                    '--key', $key, $c]);
    return $rc ? "error: $err" : $out;
}
# Past one flush (every second) and its statement.
sub flushed { sleep 2.5 }

# 1. Scans on A and B: after a flush, each node's count is the sum.
my $x = mint($key, 1, 11);
my @a = map { scans_of($A, $x) } 1 .. 3;
my @b = map { scans_of($B, $x) } 1 .. 2;
is("@a | @b", '1 2 3 | 1 2', 'scans on A and B before a flush: each its own');
flushed();
is(api_scans($A, $x), 5, 'after a flush: the API on A says 5 (3 + 2)');
is(api_scans($B, $x), 5, '... and on B');
is(scans_of($B, $x), 6, "B's next scan: \$code_router_scans 6");
flushed();
is(scans_of($A, $x), 7, "... and A's after the next flush: 7");
flushed();
like(show($x), qr/^\Q$x\E\tnever_verified\tscans=7\tnodes=node-0:4,node-1:3\n$/,
     'ledger show: scans=7, node-0:4, node-1:3');
chomp(my $rows = $pg->psql("SELECT string_agg(node || '=' || count, ',' ORDER BY node) "
                           . "FROM code_router_scan_counts WHERE serial = 11"));
is($rows, 'node-0=4,node-1=3', '... one row per node, its cumulative count');

# 2. code_router_max_scans verify 5 across nodes.
my $y = mint($key, 1, 12);
scan($A, $y) for 1 .. 3;
scan($B, $y) for 1 .. 2;
flushed();
my $r = scan($A, $y);
is("$r->{status} $r->{headers}{'x-status'} $r->{headers}{'x-scans'}",
   '410 overscanned 6',
   'the 6th scan of a code with a limit of 5, 3 of them on A: overscanned on A');
$r = scan($B, $y);
is($r->{headers}{'x-status'}, 'overscanned', '... and on B, which saw 2');

# 3. A killed (SIGKILL, every process) and back: its counts continue from
# the total.  Its store has its own 4 scans of x; the first scan's flush
# brings the others' back.
my $before = api_scans($B, $x);
$A->allow_log(qr/./);
$A->kill_all;
$A->start;
my $first = scans_of($A, $x);
ok($first > 1, "A after SIGKILL: its first scan of x counts on from its store ($first), not from 1");
flushed();
is(scans_of($A, $x), $before + 2, "... after a flush: the total plus its 2 scans (" . ($before + 2) . ")");
flushed();
is(api_scans($B, $x), $before + 2, '... and B sees them');

# 4. PostgreSQL stopped: no stall, local counting, then an exact catch-up.
my $z = mint($key, 1, 13);
ok($pg->signal('STOP') >= 2, 'PostgreSQL stopped (SIGSTOP)');
my ($max, @seen) = (0);
for my $i (1 .. 20) {
    my $t0 = time;
    push @seen, scans_of($A, $z);
    my $dt = time - $t0;
    $max = $dt if $dt > $max;
    sleep 0.15;
}
scan($B, $z) for 1 .. 3;
is("@seen", join(' ', 1 .. 20), '20 scans on A meanwhile: counted 1 to 20 locally');
ok($max < 0.5, sprintf '... the slowest answered in %.3f s (no stall)', $max);
sleep 3;
my $m = $A->get('/status')->{content} // '';
like($m, qr/^code_router_scans_ledger_errors_total\{zone="scans"\} [1-9]/m,
     'metric: the ledger\'s failed batches');
like($m, qr/^code_router_scans_ledger_unsent\{zone="scans"\} [1-9]/m,
     '... and the codes waiting for it');
$pg->signal('CONT');
sleep 4;
like(show($z), qr/\tscans=23\tnodes=node-0:20,node-1:3\n$/,
     'after SIGCONT: the ledger has 23 (20 on A, 3 on B), nothing twice');
is(scans_of($A, $z), 24, "A's next scan: 24");
is(scans_of($B, $z), 24, "... B's (its last known total 23, its own 4): 24");
flushed();
is(api_scans($A, $z), 25, '... and after a flush both say 25');
is(api_scans($B, $z), 25, '... on B too');
$m = $A->get('/status')->{content} // '';
like($m, qr/^code_router_scans_ledger_flushes_total\{zone="scans"\} [1-9]/m,
     'metric: the batches the ledger took');
like($m, qr/^code_router_scans_ledger_unsent\{zone="scans"\} 0$/m,
     '... and nothing waiting now');
like($A->error_log, qr/ledger of zone "scans" is open again/,
     'the end of the outage is logged');

# 5. A reload that takes ledger= away (PostgreSQL stopped, codes
# queued): the queue is let go, its codes evictable again, and the counts
# go on on the node.
my $w = mint($key, 1, 14);
ok($pg->signal('STOP') >= 2, 'PostgreSQL stopped again');
scans_of($A, $w) for 1 .. 2;
sleep 1.5;
like($A->get('/status')->{content} // '',
     qr/^code_router_scans_ledger_unsent\{zone="scans"\} [1-9]/m, '2 scans of a new code: queued');
$A->{http} = conf(0, "zone=scans:1m store=$d/scans0/scans.mdb thread_pool=scans");
$A->write_conf;
$A->reload;
sleep 4;       # the old workers' last flush: the statement in flight
like($A->get('/status')->{content} // '',
     qr/^code_router_scans_ledger_unsent\{zone="scans"\} 0$/m,
     'reloaded without ledger=: nothing queued any more');
is(scans_of($A, $w), 3, '... and the code counts on (3)');
$pg->signal('CONT');

$_->stop for @nodes;

# 6. nginx -t on bad ledger= and node=.
my %bad = (
    "zone=a:1m store=$d/scans0/a.mdb \"ledger=$ci\""
        => qr/"ledger=" needs "store=" and "thread_pool="/,
    "zone=a:1m thread_pool=scans \"ledger=$ci\""
        => qr/"ledger=" needs "store=" and "thread_pool="/,
    "zone=a:1m store=$d/scans0/a.mdb node=x"
        => qr/sets node= only with ledger=/,
    "zone=a:1m store=$d/scans0/a.mdb thread_pool=scans \"ledger=$ci\" node=a/b"
        => qr/invalid "node=a\/b"/,
    'zone=a:1m ledger='
        => qr/needs a PostgreSQL connection string/,
);
for my $zc (sort keys %bad) {
    my $n = CodeRouter::Test::Nginx->new(http => conf(0, $zc),
        main => 'thread_pool scans threads=1;');
    $n->write_conf;
    my ($rc, $out) = $n->test_conf;
    isnt($rc, 0, "nginx -t fails: code_router_scans $zc");
    like($out, $bad{$zc}, '... saying why') or diag $out;
}

$pg->stop;
done_testing();
