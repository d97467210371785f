#!/usr/bin/perl
# One node, the embedded ledger: a right PIN is
# committed to the scan store (LMDB, synchronous commit, in a thread
# pool) before the answer says "genuine"; SIGKILL of every nginx process
# within 50 ms of that answer, a restart, and the same PIN says
# "verified_before" with the same first time.  Before, the count sat in
# shared memory until the next flush and a restart said "genuine" again.
# Also: the form's request id is checked (400 for a bad one), and
# /status counts the embedded ledger's answers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use HTTP::Tiny;
use POSIX ();
use CodeRouter::Test qw(mint);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
# A long flush interval: only the ledger's own commit can save a count.
my $conf = verify_conf(dir => $d, key => $key);
$conf =~ s{store=(\S+);}{store=$1 flush=60s;};
my $t = CodeRouter::Test::Nginx->new(workers => 2, http => $conf);
$t->start;

my $json = { Accept => 'application/json' };
my @codes = map { [mint($key, 1, $_), pin_of($key, 1, $_)] } 501 .. 503;

# 1. genuine, then every process killed at once.
my ($code, $pin) = @{ $codes[0] };
my @pids = ($t->pid, split ' ', `pgrep -P ${\ $t->pid}`);
is(scalar @pids, 3, 'the master and its 2 workers');
my $r = post_pin($t, "/verify?code=$code", $pin, '192.0.2.1', %$json);
my $t0 = time;
kill 'KILL', @pids;
my $killed = time - $t0;
$t->kill_all;
my $j = json_of($r);
is($j->{verification}, 'genuine', 'the first right PIN: genuine');
is($j->{verifications}, 1, '... count 1');
cmp_ok($killed, '<', 0.05, sprintf 'every process killed %.1f ms after the answer', 1000 * $killed);
my $first = $j->{first_verified};

$t->start;
$r = post_pin($t, "/verify?code=$code", $pin, '192.0.2.3', %$json);
$j = json_of($r);
is($r->{status}, 200, 'after the restart: 200');
is($j->{verification}, 'verified_before', '... verified_before: the count survived SIGKILL');
is($j->{verifications}, 2, '... count 2');
is($j->{first_verified}, $first, '... with the first time');

# 2. The API alike, and two PINs of one code back to back before a kill.
my ($c2, $p2) = @{ $codes[1] };
my @v = map { json_of(post_pin($t, "/v1/codes/$c2/verify", $p2, "192.0.2.1$_"))->{verifications} } 1 .. 2;
$t->kill_all;
is_deeply(\@v, [1, 2], 'the API: counts 1 and 2, then SIGKILL');
$t->start;
$j = json_of(post_pin($t, "/v1/codes/$c2/verify", $p2, '192.0.2.20'));
is($j->{verifications}, 3, '... and 3 after the restart');

# 3. The request id: a valid one is taken; a bad one is a 400, counted
# nothing.
my ($c3, $p3) = @{ $codes[2] };
my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0);
for my $bad ('a b', 'x' x 65, 'é', '') {
    $r = $http->request('POST', $t->url("/v1/codes/$c3/verify"), {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => "pin=$p3&request=" . join '', map { sprintf '%%%02X', ord } split //, $bad });
    is($r->{status}, 400, "request id \"$bad\": 400");
    like($r->{content}, qr/the request field/, '... saying why');
}
$r = $http->request('POST', $t->url("/v1/codes/$c3/verify"), {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "pin=$p3&request=abc&request=abd" });
is($r->{status}, 400, 'request id given twice: 400');
$r = $http->request('POST', $t->url("/v1/codes/$c3/verify"), {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "pin=$p3&request=Req_1-x" });
is(json_of($r)->{verification}, 'genuine', 'a valid request id: counted (genuine)');

# The same request id again (a retried POST): the same answer, counted
# once, also after a SIGKILL; another id counts.
my @rr = map { json_of($http->request('POST', $t->url("/v1/codes/$c3/verify"), {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "pin=$p3&request=$_" })) } qw(Req_1-x Req_1-x);
is_deeply([map { "$_->{verification}/$_->{verifications}" } @rr], ['genuine/1', 'genuine/1'],
          'the same request id twice: genuine 1, twice (counted once)');
$t->kill_all;
$t->start;
@rr = map { json_of($http->request('POST', $t->url("/v1/codes/$c3/verify"), {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "pin=$p3&request=$_" })) } qw(Req_1-x Req_2);
is_deeply([map { "$_->{verification}/$_->{verifications}" } @rr], ['genuine/1', 'verified_before/2'],
          '... after a SIGKILL still genuine 1; another request id: verified_before 2');

# 4. The page's form carries a request id (the retry of an "unavailable"
# posts the same one back).
$r = $t->get("/verify?code=$c3");
like($r->{content}, qr/<input type="hidden" name="request" value="[0-9a-f]{32}">/,
     'the page: a hidden request id in the form');

# 5. The group commit: 4 clients x 25 right PINs of one code at once,
# on 2 workers (the right PINs that come while a commit is in the pool
# go in the next one): counts 1 to 100, each once, one genuine; and
# every one survives a SIGKILL right after the last answer.
my ($c5, $p5) = (mint($key, 1, 504), pin_of($key, 1, 504));
my $dir = CodeRouter::Test::tmpdir();
my @kids;
for my $k (0 .. 3) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $h = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 20);
        open my $fh, '>', "$dir/$k" or POSIX::_exit(1);
        for (1 .. 25) {
            my $res = $h->request('POST', $t->url("/v1/codes/$c5/verify"), {
                headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                             'X-Forwarded-For' => "198.51.100.$k" },
                content => "pin=$p5" });
            my $jj = json_of($res);
            print $fh "$res->{status}\t", $jj->{verification} // '-', "\t",
                      $jj->{verifications} // '-', "\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my @lines = map { split /\n/, CodeRouter::Test::read_file("$dir/$_") } 0 .. 3;
is(scalar(grep { /^200\t/ } @lines), 100, '100 racing right PINs on one node: 200 each');
is_deeply([sort { $a <=> $b } map { (split /\t/)[2] } @lines], [1 .. 100],
          '... counts 1 to 100, each exactly once');
is(scalar(grep { /\tgenuine\t/ } @lines), 1, '... one genuine');
my $m = $t->get('/status')->{content};
$t->kill_all;
$t->start;
$j = json_of(post_pin($t, "/v1/codes/$c5/verify", $p5, '192.0.2.99'));
is($j->{verifications}, 101, '... and after SIGKILL, the next is 101');

# 6. /status: the embedded ledger's answers.
my ($n) = $m =~ /^code_router_ledger_requests_total\{ledger="embedded",outcome="counted"\} (\d+)$/m;
is($n, 101, '/status: 101 right PINs counted by the embedded ledger since the restart before');
like($m, qr/^code_router_ledger_unavailable_total\{ledger="embedded"\} 0$/m, '/status: none unavailable');

$t->stop;
done_testing;
