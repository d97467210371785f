#!/usr/bin/perl
# Receipts through the PostgreSQL ledger: two nginx nodes (code_router_scans
# ... ledger= node=, code_router_receipts) and one PostgreSQL, its schema
# upgraded from version 4.  An on-receipt item answers "inactive" on both
# nodes until its case is received on the other node, then routes on
# every node within the pull interval; a pallet's receipt activates its
# cases' items everywhere; a second store's receipt, on either node, is
# answered with the first (409 diverted) and the ledger keeps one row; two
# stores receiving one case at once on two nodes: one wins, both are told
# the same first receipt; a node started afresh pulls every receipt; the
# ledger stopped: a receipt is 503 (never a guess), the scans still
# answered from shared memory.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use HTTP::Tiny;
use Time::HiRes qw(time sleep);
use CodeRouter::Test qw(tmpdir make_key load_store mint cli run_cmd root
                        write_file);
use CodeRouter::Pg;

plan skip_all => 'PostgreSQL is not installed (make deps)'
    unless CodeRouter::Pg::available();

my $pg = CodeRouter::Pg->new;
my $ci = $pg->conninfo;
my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($out, "schema 5 (was 0)\n", 'ledger init: schema 5') or diag $err;
$pg->psql('DROP FUNCTION code_router_receipts_since(double precision); '
          . 'DROP FUNCTION code_router_receive(bytea, smallint, bigint, text, text); '
          . 'DROP TABLE code_router_receipts; '
          . "UPDATE code_router_meta SET value = '4' WHERE name = 'schema_version'");
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($out, "schema 5 (was 4)\n", 'ledger init upgrades version 4: schema 5 (was 4)')
    or diag $err;

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $ex = root() . '/conf/examples';
write_file("$d/items.csv", <<'CSV');
batch,kid,serial_from,serial_to,scene,campaign,activate
roll-R,1,2000000,2099999,verify,verify-page,on_receipt
CSV
load_store("$d/brand.mdb", "$ex/campaigns.csv", "$d/items.csv",
           "$ex/packaging.csv");

sub node {
    my ($n) = @_;
    mkdir "$d/scans$n";
    chmod 0777, "$d/scans$n";
    return CodeRouter::Test::Nginx->new(workers => 2,
        main => 'thread_pool scans threads=1;', http => <<"CONF");
    code_router_db $d/brand.mdb;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m store=$d/scans$n/scans.mdb thread_pool=scans "ledger=$ci" node=node-$n;
    code_router_receipts scans;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /p/ { code_router \$uri; }
        location /v1/codes/ { code_router_api; }
        location = /status { code_router_status; }
    }
CONF
}

my @nodes = map { node($_) } 0 .. 1;
$_->start for @nodes;
$_->allow_log(qr/ledger|diverted/) for @nodes;
my ($A, $B) = @nodes;

my $http = HTTP::Tiny->new(max_redirect => 0, timeout => 10);
sub receive {
    my ($t, $code, $body) = @_;
    return $http->request('POST', $t->url("/v1/codes/$code/receive"),
        { headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
          content => $body });
}
sub status_of {
    my ($t, $c) = @_;
    my $r = $t->get("/v1/codes/$c");
    return (eval { JSON::PP::decode_json($r->{content}) } // {})->{status}
           // "HTTP $r->{status}";
}
sub j { return eval { JSON::PP::decode_json($_[0]{content}) } // {} }
# How long until $t says $want of $c (undef if not within 5 s).
sub until_status {
    my ($t, $c, $want) = @_;
    my $t0 = time;
    while (time - $t0 < 5) {
        return time - $t0 if status_of($t, $c) eq $want;
        sleep 0.1;
    }
    return undef;
}

my $item = mint($key, 1, 2000002);             # case 8000001, pallet 8100001
my $item2 = mint($key, 1, 2000008);            # case 8000002
my ($case1, $case2, $pallet) = map { mint($key, 1, $_) }
                               8000001, 8000002, 8100001;

# The first poll loads the tables.
ok(defined until_status($_, $item, 'inactive'), 'inactive before any receipt')
    for @nodes;
is($A->get("/p/$item")->{status}, 404, '... the router: 404');

# 1. Received on B: routes on A within the pull interval.
my $r = receive($B, $case1, 'store=S-01&dealer=D-7');
is($r->{status}, 200, 'case 1 received on B') or diag $r->{content};
is(status_of($B, $item), 'ok', '... its item is ok on B at once');
my $lag = until_status($A, $item, 'ok');
ok(defined $lag && $lag < 3, 'and on A within the pull interval ('
   . (defined $lag ? sprintf('%.1f s', $lag) : 'never') . ')');
is($A->get("/p/$item")->{status}, 302, "A's router sends the item on");
is(status_of($A, $item2), 'inactive', "the other case's item: still inactive");

# 2. A second store, on the other node: the first receipt, diverted.
$r = receive($A, $case1, 'store=S-99');
is($r->{status}, 409, 'another store on A: 409');
is_deeply([@{ j($r) }{qw(status store dealer)}], ['diverted', 'S-01', 'D-7'],
          "... answered with B's first receipt");
chomp(my $rows = $pg->psql('SELECT count(*) || store FROM code_router_receipts '
                           . 'WHERE serial = 8000001 GROUP BY store'));
is($rows, '1S-01', 'the ledger keeps one receipt, the first');
is(receive($A, $case1, 'store=S-01')->{status}, 200,
   'the first store again, on A: 200');

# 3. A pallet received on A: case 2's items everywhere.
is(receive($A, $pallet, 'store=S-02')->{status}, 200, 'the pallet on A');
ok(defined until_status($B, $item2, 'ok'), "case 2's item ok on B");

# 4. One new case, two stores on two nodes at once: one first receipt.
my $case3 = mint($key, 1, 8000003);
write_file("$d/p3.csv", "kid,serial_from,serial_to,parent_kid,parent_serial\n"
           . "1,2000020,2000025,1,8000003\n1,2000030,2000035,1,8000005\n");
($rc, undef, $err) = run_cmd([root() . '/scripts/code-router-load', '--db',
                              "$d/brand.mdb", "$d/p3.csv"]);
is($rc, 0, 'a third case packed') or diag $err;
my @pids;
for my $i (0 .. 1) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $x = receive($nodes[$i], $case3, "store=R-$i");
        write_file("$d/race$i", "$x->{status} " . (j($x)->{store} // ''));
        exit 0;
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;
my @race = map { CodeRouter::Test::read_file("$d/race$_") } 0 .. 1;
my ($s0, $w0) = split / /, $race[0];
my ($s1, $w1) = split / /, $race[1];
is(join(',', sort($s0, $s1)), '200,409', 'a race: one 200, one 409')
    or diag "@race";
is($w0, $w1, '... both told the same first store');

# 5. A node started afresh pulls every receipt.
$B->stop;
my $C = node(2);
$C->start;
$C->allow_log(qr/ledger/);
ok(defined until_status($C, $item, 'ok'), 'a new node: case 1 received');
is(status_of($C, $item2), 'ok', '... the pallet too');
is(status_of($C, mint($key, 1, 2000040)), 'inactive',
   '... an item of no received case still inactive');

# 6. The ledger stopped: a receipt is 503; scans still answered.
$pg->signal('STOP');
my $t0 = time;
$r = receive($A, mint($key, 1, 8000005), 'store=S-05');
my $took = time - $t0;
$pg->signal('CONT');
is($r->{status}, 503, 'the ledger stopped: a receipt is 503');
ok($took < 5, sprintf('... within the timeout (%.1f s)', $took));
is(status_of($A, $item), 'ok', 'scans of received items still answer');

my $m = $A->get('/status')->{content};
like($m, qr/^code_router_receipts_total\{zone="scans",result="diverted"\} [1-9]/m,
     'status: the diversion counted');
$_->stop for $A, $C;

done_testing();
