#!/usr/bin/perl
# Prizes, redeemed once: POST /v1/codes/CODE/redeem
# with the right PIN and a request id.  Through PostgreSQL across three
# nodes: the first request "redeemed" (200), the same request retried on
# any node the same answer, any other "already_redeemed" (409) with the
# time; 3 clients x 10 requests racing: one redeemed.  Without a ledger,
# through the scan store (durable across SIGKILL).  Wrong PINs, no
# request id, and the schema's upgrade from version 1 and refusal of a
# newer one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use POSIX ();
use CodeRouter::Test qw(mint cli run_cmd);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of json_of);
use CodeRouter::Pg;

plan skip_all => 'PostgreSQL is not installed (make deps)' unless CodeRouter::Pg::available();

my $pg = CodeRouter::Pg->new;
my $ci = $pg->conninfo;

# The schema at version 1, as the first release made it: init upgrades.
my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($rc, 0, 'ledger init') or diag $err;
$pg->psql("DROP FUNCTION code_router_redeem; DROP TABLE code_router_redemptions; "
          . "UPDATE code_router_meta SET value = '1' WHERE name = 'schema_version'");

my ($d, $key) = verify_setup();
sub node_conf {
    my ($n, $ledger) = @_;
    mkdir "$d/scans$n";
    chmod 0777, "$d/scans$n";
    my $conf = verify_conf(dir => $d, key => $key);
    $conf =~ s{store=\S+/scans/scans\.mdb;}{store=$d/scans$n/scans.mdb;};
    $conf = qq{    code_router_ledger "$ci" timeout=2s thread_pool=ledger;\n$conf} if $ledger;
    return CodeRouter::Test::Nginx->new(workers => 2, http => $conf,
        main => 'thread_pool ledger threads=4;');
}
my @nodes = map { node_conf($_, 1) } 0 .. 2;
$_->start for @nodes;
$_->allow_log(qr/ledger/) for @nodes;

my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 10);
sub redeem {
    my ($t, $c, $body) = @_;
    my $r = $http->request('POST', $t->url("/v1/codes/$c/redeem"), {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     'X-Forwarded-For' => '192.0.2.50' },
        content => $body });
    return ($r->{status}, json_of($r), $r);
}

my $code = mint($key, 1, 21);
my $pin = pin_of($key, 1, 21);

# 1. A node on the old schema refuses, saying why.
my ($st, $j) = redeem($nodes[0], $code, "pin=$pin&request=prize-1");
is($st, 503, 'schema 1: a redemption is unavailable');
like($nodes[0]->error_log, qr/the schema is version "1", this code-router needs 5/,
     '... the log says the schema is too old');
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($out, "schema 5 (was 1)\n", 'ledger init upgrades it: schema 5 (was 1)');

# 2. Once across nodes; the same request the same answer everywhere.
($st, $j) = redeem($nodes[0], $code, "pin=$pin&request=prize-1");
is($st, 200, 'the first request on A: 200');
is($j->{redemption}, 'redeemed', '... redeemed');
like($j->{redeemed_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "... at $j->{redeemed_at}");
is($j->{campaign}, 'verify-page', "... the code's campaign");
my $at = $j->{redeemed_at};
for my $i (1, 2) {
    ($st, $j) = redeem($nodes[$i], $code, "pin=$pin&request=prize-1");
    is("$st $j->{redemption} $j->{redeemed_at}", "200 redeemed $at",
       "the same request retried on node $i: the same answer");
}
($st, $j) = redeem($nodes[1], $code, "pin=$pin&request=prize-2");
is($st, 409, 'another request: 409');
is($j->{redemption}, 'already_redeemed', '... already_redeemed');
is($j->{redeemed_at}, $at, '... with the time');
is($pg->psql("SELECT request, campaign FROM code_router_redemptions"),
   "prize-1|verify-page\n", 'the ledger holds the one redemption');
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'show', '--pg', $ci, '--key', $key, $code]);
is($out, "$code\tverifications=0\tredeemed=$at\n",
   'ledger show: redeemed, never verified (a redemption is no verification)');

# 3. Refusals: a wrong PIN redeems nothing, no request id is a 400.
my $c2 = mint($key, 1, 22);
my $p2 = pin_of($key, 1, 22);
my $wrong = sprintf '%08d', ($p2 + 1) % 100000000;
($st, $j) = redeem($nodes[0], $c2, "pin=$wrong&request=w-1");
is($st, 403, 'a wrong PIN: 403');
is($j->{verification}, 'wrong_pin', '... wrong_pin');
($st, $j, my $r) = redeem($nodes[0], $c2, "pin=$p2");
is($st, 400, 'no request id: 400');
like($r->{content}, qr/a redemption needs request=ID/, '... saying so');
is($pg->psql("SELECT count(*) FROM code_router_redemptions WHERE serial = 22"), "0\n",
   '... and nothing redeemed');
$r = $http->request('GET', $nodes[0]->url("/v1/codes/$c2/redeem"));
is($r->{status}, 405, 'GET .../redeem: 405');

# 4. The race: 3 clients x 10 requests of their own, across the nodes.
my $c3 = mint($key, 1, 23);
my $p3 = pin_of($key, 1, 23);
my $dir = CodeRouter::Test::tmpdir();
my @kids;
for my $k (0 .. 2) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', "$dir/$k" or POSIX::_exit(1);
        for my $i (0 .. 9) {
            my ($s, $jj) = redeem($nodes[($k + $i) % 3], $c3, "pin=$p3&request=c$k-$i");
            print $fh "$s $jj->{redemption} $jj->{redeemed_at}\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my @lines = map { split /\n/, CodeRouter::Test::read_file("$dir/$_") } 0 .. 2;
is(scalar @lines, 30, '30 racing requests answered');
is(scalar(grep { /^200 redeemed / } @lines), 1, '... one redeemed');
is(scalar(grep { /^409 already_redeemed / } @lines), 29, '... 29 already_redeemed');
is(scalar(keys %{{ map { (split / /)[2] => 1 } @lines }}), 1, '... all with one time');

$_->stop for @nodes;

# 5. A newer schema than this code-router knows: refused.
$pg->psql("UPDATE code_router_meta SET value = '6' WHERE name = 'schema_version'");
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($rc, 3, 'ledger init on a newer schema: exit 3');
like($err, qr/the schema has version 6, this code-router knows 5 at most/, '... saying so');
$pg->stop;

# 6. Without a ledger: the scan store, durable.
my $t = node_conf(9, 0);
$t->start;
my $c4 = mint($key, 1, 24);
my $p4 = pin_of($key, 1, 24);
($st, $j) = redeem($t, $c4, "pin=$p4&request=local-1");
is("$st $j->{redemption}", '200 redeemed', 'the scan store: redeemed');
$at = $j->{redeemed_at};
$t->kill_all;
$t->start;
($st, $j) = redeem($t, $c4, "pin=$p4&request=local-1");
is("$st $j->{redemption} $j->{redeemed_at}", "200 redeemed $at",
   '... after SIGKILL and a restart, the same request: the same answer');
($st, $j) = redeem($t, $c4, "pin=$p4&request=local-2");
is("$st $j->{redemption} $j->{redeemed_at}", "409 already_redeemed $at",
   '... another request: already_redeemed');
$t->stop;
# The store's readers skip a redemption (it is no count).
($rc, $out, $err) = run_cmd([cli(), 'scans', '--store', "$d/scans9/scans.mdb"]);
is($rc, 0, 'code-router scans reads a store that holds a redemption') or diag $err;
unlike($out, qr/,24,/, '... which is no row of counts');

done_testing;
