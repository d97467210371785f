#!/usr/bin/perl
# The guard's budget on N nodes: three nginx nodes with their own guard
# zones and one PostgreSQL ledger, a client's wrong PINs sent round robin
# by the test.  5 wrong PINs in all lock the client out of the code on
# every node (the 5th says so, the 6th anywhere is locked, as on one
# node), its right PIN then too; another buyer's right PIN is genuine.
# An API buyer (buyer=) is one client across the nodes too.
# The code's budget is one: 100 wrong PINs from 20 addresses spread over
# the nodes empty it, and a client past its free PINs whose own lock has
# ended is told "locked" by a node that never saw it.  Ledger stopped
# (SIGSTOP): wrong and right PINs alike answer 503, told nothing, and
# nothing is recorded.  The metric counts what the ledger said.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use HTTP::Tiny;
use CodeRouter::Test qw(mint cli run_cmd);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of
                         ledger_node);
use CodeRouter::Pg;

plan skip_all => 'PostgreSQL is not installed (make deps)' unless CodeRouter::Pg::available();

my $pg = CodeRouter::Pg->new;
my $ci = $pg->conninfo;
my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($rc, 0, 'ledger init') or diag $err;
is($out, "schema 5 (was 0)\n", '... schema 5');

my ($d, $key) = verify_setup();
my @nodes = map { ledger_node($d, $key, $ci, $_) } 0 .. 2;
$_->start for @nodes;
$_->allow_log(qr/ledger/) for @nodes;
my %json = (Accept => 'application/json');
my $rr = 0;
sub next_node { return $nodes[$rr++ % 3] }
sub wrong_of { return sprintf '%08d', ($_[0] + 1) % 100000000 }

# 1. One client, round robin: 5 wrong PINs in all, then locked everywhere.
my $code = mint($key, 1, 31);
my $pin = pin_of($key, 1, 31);
my $wrong = wrong_of($pin);
my @st;
for my $i (1 .. 5) {
    my $r = post_pin(next_node(), "/verify?code=$code", $wrong, '192.0.2.7', %json);
    push @st, $r->{status} . ' ' . (json_of($r)->{verification} // '');
}
is_deeply(\@st, [('403 wrong_pin') x 5], '5 wrong PINs over A, B, C, A, B: wrong_pin each');
my $r = post_pin($nodes[1], "/verify?code=$code", $wrong, '192.0.2.7', %json);
my $j = json_of($r);
is("$r->{status} $j->{verification}", '429 locked', 'the 6th, on B: locked');
ok($j->{retry_at}, "... with a time to try again: $j->{retry_at}");
$r = post_pin($nodes[2], "/verify?code=$code", $wrong, '192.0.2.7', %json);
is($r->{status}, 429, '... and on C, which saw only 1 of them');
for my $n (0 .. 2) {
    $r = post_pin($nodes[$n], "/verify?code=$code", $pin, '192.0.2.7', %json);
    is($r->{status}, 429, "the client's right PIN on node $n: locked, as on one node");
}
is($pg->psql('SELECT fails FROM code_router_guard_clients'), "5\n",
   'the ledger: one client record, 5 wrong PINs');

# Another buyer's right PIN is not held up by a stranger's wrong ones.
$r = post_pin($nodes[2], "/verify?code=$code", $pin, '198.51.100.1', %json);
$j = json_of($r);
is("$r->{status} $j->{verification}", '200 genuine', "another buyer's right PIN: genuine");

# An API buyer (buyer=) is one client on every node: hashed under the
# brand's key, not each zone's own.
my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 10);
sub api_pin {
    my ($t, $c, $body) = @_;
    return $http->request('POST', $t->url("/v1/codes/$c/verify"), {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     'X-Forwarded-For' => '10.0.0.5', %json },
        content => $body });
}
my $cb = mint($key, 1, 34);
my $pb = pin_of($key, 1, 34);
my $u1 = 'a3f1' x 16;
@st = map { api_pin($nodes[$_ % 3], $cb, 'pin=' . wrong_of($pb) . "&buyer=$u1")->{status} } 0 .. 4;
is_deeply(\@st, [(403) x 5], "one buyer's 5 wrong PINs through the API over A, B, C: 403 each");
is(api_pin($nodes[2], $cb, "pin=$pb&buyer=$u1")->{status}, 429,
   '... its right PIN next, on C: locked (one record for the buyer)');
is(json_of(api_pin($nodes[0], $cb, "pin=$pb&buyer=" . ('77c0' x 16)))->{verification},
   'genuine', '... another buyer of the same backend: genuine');

# 2. The code's budget is every node's: 20 addresses x 5 wrong PINs.
my $c2 = mint($key, 1, 32);
my $p2 = pin_of($key, 1, 32);
my $w2 = wrong_of($p2);
my %seen;
for my $a (1 .. 20) {
    for my $i (1 .. 5) {
        $r = post_pin(next_node(), "/verify?code=$c2", $w2, "203.0.113.$a", %json);
        $seen{$r->{status}}++;
    }
}
is_deeply(\%seen, { 403 => 100 }, '100 wrong PINs from 20 addresses over the nodes: wrong_pin each');
chomp(my $left = $pg->psql("SELECT tat - extract(epoch FROM now())::bigint FROM code_router_guard_codes "
                     . "WHERE serial = 32"));
ok($left >= 99 * 900 && $left <= 100 * 900, "the ledger's bucket is empty: tat now + $left s");
# 203.0.113.1's own lock ends (in the ledger; it was sent to A, B, C...,
# so take a client whose records only the ledger has): 192.0.2.99 sent
# its 5 to A alone, and its lock is over.
for my $i (1 .. 5) {
    post_pin($nodes[0], "/verify?code=$c2", $w2, '192.0.2.99', %json);
}
$pg->psql("UPDATE code_router_guard_clients SET until = 0 WHERE client = '\\x04c000026300000000'");
$r = post_pin($nodes[2], "/verify?code=$c2", $p2, '192.0.2.99', %json);
$j = json_of($r);
is("$r->{status} $j->{verification}", '429 locked',
   'a client past its 5, lock over, on C that never saw it: locked (the code is under pressure)');
ok(($j->{retry_at} // '') ne '', "... until the next token: $j->{retry_at}");
$r = post_pin($nodes[2], "/verify?code=$c2", $p2, '198.51.100.2', %json);
is(json_of($r)->{verification}, 'genuine', '... a buyer with no wrong PIN still is checked: genuine');

# 3. The ledger stopped: neither a wrong nor a right PIN is told.
my $c3 = mint($key, 1, 33);
my $p3 = pin_of($key, 1, 33);
my $rows = $pg->psql('SELECT count(*) FROM code_router_guard_clients');
ok($pg->signal('STOP') >= 2, 'PostgreSQL stopped (SIGSTOP)');
my $t0 = time;
my $rw = post_pin($nodes[0], "/verify?code=$c3", wrong_of($p3), '192.0.2.50', %json);
my $dt = time - $t0;
my $rg = post_pin($nodes[1], "/verify?code=$c3", $p3, '192.0.2.51', %json);
is($rw->{status}, 503, 'a wrong PIN meanwhile: 503');
is($rg->{status}, 503, 'a right PIN meanwhile: 503');
ok($dt < 3, sprintf '... within the timeout (%.2f s)', $dt);
is(json_of($rw)->{status}, 'unavailable', '... "unavailable"');
is((json_of($rw)->{verification} // ''), (json_of($rg)->{verification} // ''),
   '... the same verdict (none) for both: the PIN is not told');
$pg->signal('CONT');
sleep 1;
is($pg->psql('SELECT count(*) FROM code_router_guard_clients'), $rows,
   'after SIGCONT: the late statements recorded nothing');
$r = post_pin($nodes[0], "/verify?code=$c3", $p3, '192.0.2.51', %json);
is(json_of($r)->{verification}, 'genuine', '... and the right PIN, retried, is genuine');

# 4. The metric.
my $m = $nodes[0]->get("/status")->{content} // "";
like($m, qr/^code_router_ledger_guard_total\{outcome="wrong"\} [1-9]/m, 'metric: wrong PINs the ledger counted');
like($m, qr/^code_router_ledger_guard_total\{outcome="unavailable"\} [1-9]/m, '... and the unavailable');
like($m, qr/^code_router_ledger_guard_total\{outcome="locked"\} \d/m, '... and the locked');

$_->stop for @nodes;
$pg->stop;
done_testing();
