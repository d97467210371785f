#!/usr/bin/perl
# One verdict across every edge: three nginx nodes,
# each with its own scan store and guard zone, and one PostgreSQL ledger
# (a real server, initdb'd by the test).  The right PIN on A, B, C:
# genuine, verified_before 2, verified_before 3, one first time.  3
# clients x 30 right PINs of one code racing across the nodes: counts
# 1..90, each exactly once, one genuine.  A retried request id counts
# once, on any node.  code-router ledger init / show.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use POSIX ();
use CodeRouter::Test qw(mint cli run_cmd);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of
                         ledger_node);
use CodeRouter::Pg;

plan skip_all => 'PostgreSQL is not installed (make deps)' unless CodeRouter::Pg::available();

my $pg = CodeRouter::Pg->new;
my $ci = $pg->conninfo;

# The schema: made, then found current; a node refuses to count without it.
my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($rc, 0, 'ledger init: exit 0') or diag $err;
is($out, "schema 5 (was 0)\n", "... schema 5 (was 0)");
($rc, $out) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($out, "schema 5 (was 5)\n", 'a second init: schema 5 (was 5)');
is($pg->psql("SELECT value FROM code_router_meta WHERE name = 'schema_version'"),
   "5\n", 'code_router_meta: schema_version 5');

my ($d, $key) = verify_setup();
my @nodes = map { ledger_node($d, $key, $ci, $_) } 0 .. 2;
$_->start for @nodes;
my ($A, $B, $C) = @nodes;
my $json = { Accept => 'application/json' };

# 1. A, B, C: one count, one first time.
my $code = mint($key, 1, 7);
my $pin = pin_of($key, 1, 7);
my @j = map { json_of(post_pin($nodes[$_], "/verify?code=$code", $pin, "192.0.2.$_", %$json)) } 0 .. 2;
is_deeply([map { $_->{verification} } @j], [qw(genuine verified_before verified_before)],
          'the right PIN on A, B, C: genuine, verified_before, verified_before');
is_deeply([map { $_->{verifications} } @j], [1, 2, 3], '... counts 1, 2, 3');
is(scalar(keys %{{ map { ($_->{first_verified} // '') => 1 } @j }}), 1,
   "... one first time: $j[0]{first_verified}");
like($j[0]{first_verified} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, '... in ISO 8601');

# ledger show: the same record.
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'show', '--pg', $ci, '--key', $key, $code]);
is($rc, 0, 'ledger show: exit 0') or diag $err;
like($out, qr/^\Q$code\E\tverifications=3\tfirst=\Q$j[0]{first_verified}\E\tlast=\S+Z\trequests=3\n$/,
     '... verifications=3, the first time, 3 request ids');
my $never = mint($key, 1, 8);
($rc, $out) = run_cmd([cli(), 'ledger', 'show', '--pg', $ci, '--key', $key, "https://c.example/$never"]);
is($out, "$never\tnever_verified\n", 'ledger show of a code never verified (a URL): never_verified');
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'show', '--pg', $ci, '--key', $key, 'Z' x 18]);
is($rc, 1, 'ledger show of a forged code: exit 1');
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'show', '--pg', $ci, $code]);
is($rc, 2, 'ledger show without --key: exit 2');
($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', 'host=127.0.0.1 port=1 connect_timeout=2']);
is($rc, 3, 'ledger init against nothing: exit 3');
like($err, qr/code-router ledger: init: ledger: connect: /, '... naming the connection');

# 2. A retried request counts once, on any node; another id counts anew.
my $c2 = mint($key, 1, 9);
my $p2 = pin_of($key, 1, 9);
my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 10);
sub post_req {
    my ($t, $c, $p, $req) = @_;
    return json_of($http->request('POST', $t->url("/v1/codes/$c/verify"), {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => "pin=$p&request=$req" }));
}
my @r = map { post_req($_, $c2, $p2, 'buyer-retry-1') } $A, $B, $C, $A;
is_deeply([map { "$_->{verification}/$_->{verifications}" } @r], [('genuine/1') x 4],
          'one request id on A, B, C, A: genuine 1 each time (counted once)');
my $r2 = post_req($B, $c2, $p2, 'another-2');
is("$r2->{verification}/$r2->{verifications}", 'verified_before/2', 'another request id: verified_before 2');
is($pg->psql("SELECT count FROM code_router_verifications WHERE serial = 9"), "2\n",
   'the ledger holds 2');

# 3. The race: 3 clients x 30 right PINs of one code, across the nodes.
my $c3 = mint($key, 1, 10);
my $p3 = pin_of($key, 1, 10);
my $dir = CodeRouter::Test::tmpdir();
my @kids;
for my $k (0 .. 2) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $h = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 10);
        open my $fh, '>', "$dir/$k" or POSIX::_exit(1);
        for my $i (0 .. 29) {
            my $t = $nodes[($k + $i) % 3];
            my $res = $h->request('POST', $t->url("/v1/codes/$c3/verify"), {
                headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                             'X-Forwarded-For' => "198.51.100.$k" },
                content => "pin=$p3" });
            my $jj = json_of($res);
            print $fh join("\t", $res->{status}, $jj->{verification} // '-',
                           $jj->{verifications} // '-', $jj->{first_verified} // '-'), "\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my @lines = map { split /\n/, CodeRouter::Test::read_file("$dir/$_") } 0 .. 2;
is(scalar @lines, 90, '90 answers');
is(scalar(grep { /^200\t/ } @lines), 90, '... all 200');
my @counts = sort { $a <=> $b } map { (split /\t/)[2] } @lines;
is_deeply(\@counts, [1 .. 90], '... counts 1 to 90, each exactly once');
is(scalar(grep { /\tgenuine\t/ } @lines), 1, '... one genuine');
is(scalar(keys %{{ map { (split /\t/)[3] => 1 } @lines }}), 1, '... one first time');
is($pg->psql("SELECT count FROM code_router_verifications WHERE serial = 10"), "90\n",
   'the ledger holds 90');

# 4. Wrong PINs never reach the ledger, and say nothing of it.
my $wrong = sprintf '%08d', ($p3 + 1) % 100000000;
my $w = json_of(post_pin($B, "/v1/codes/$c3/verify", $wrong, '203.0.113.9'));
is($w->{verification}, 'wrong_pin', 'a wrong PIN: wrong_pin');
is($pg->psql("SELECT count FROM code_router_verifications WHERE serial = 10"), "90\n",
   '... not counted in the ledger');

# 5. /status: the ledger's answers, per node.
my %sum;
for my $t (@nodes) {
    my $m = $t->get('/status')->{content};
    while ($m =~ /^code_router_ledger_requests_total\{ledger="postgresql",outcome="(\w+)"\} (\d+)$/mg) {
        $sum{$1} += $2;
    }
}
is($sum{counted}, 3 + 2 + 90, '/status: 95 counted across the nodes');
is($sum{replayed}, 3, '/status: 3 replayed');
is($sum{timeout} + $sum{error}, 0, '/status: no timeout, no error');

$_->stop for @nodes;
$pg->stop;
done_testing;
