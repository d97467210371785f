#!/usr/bin/perl
# Fail closed, never wrong: PostgreSQL stopped with
# SIGSTOP (it holds its connections and answers nothing, as a partition
# or a stalled server would).  Right PINs answer 503 "unavailable" within
# timeout=, never "genuine"; wrong PINs too (the guard's budget is the
# ledger's: a check it cannot record says nothing); a scan
# loop beside them never stalls (its slowest answer is measured).  After
# SIGCONT: service resumes; the statements that waited are "late" and
# count nothing, so the buyer's retry (the same request id, as the page's
# form posts it back) says "genuine", count 1.  A database without the
# schema, and a server that is down, answer 503 too, saying why in the
# log.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(time sleep);
use CodeRouter::Test qw(mint cli run_cmd free_port);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);
use CodeRouter::Pg;

plan skip_all => 'PostgreSQL is not installed (make deps)' unless CodeRouter::Pg::available();

my $pg = CodeRouter::Pg->new;
my $ci = $pg->conninfo;
my ($rc, $out, $err) = run_cmd([cli(), 'ledger', 'init', '--pg', $ci]);
is($rc, 0, 'ledger init') or diag $err;
$pg->psql('CREATE DATABASE empty');
(my $empty = $ci) =~ s/dbname=postgres/dbname=empty/;
my $down = 'host=127.0.0.1 port=' . free_port() . ' dbname=postgres user=postgres';
my ($port_empty, $port_down) = (free_port(), free_port());

my ($d, $key) = verify_setup();
my $conf = verify_conf(dir => $d, key => $key, extra => <<"EXTRA");
    server {
        listen 127.0.0.1:$port_empty;
        code_router_ledger "$empty" timeout=1s thread_pool=ledger;
        location /v1/codes/ { code_router_api; }
    }
    server {
        listen 127.0.0.1:$port_down;
        code_router_ledger "$down" timeout=1s thread_pool=ledger;
        location /v1/codes/ { code_router_api; }
    }
EXTRA
$conf = qq{    code_router_ledger "$ci" timeout=1s thread_pool=ledger;\n$conf};
my $t = CodeRouter::Test::Nginx->new(workers => 2, http => $conf,
    main => 'thread_pool ledger threads=4;');
$t->allow_log(qr/ledger/);
$t->start;

my $json = { Accept => 'application/json' };
my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 20);
sub post_req {
    my ($c, $p, $req, %h) = @_;
    my $t0 = time;
    my $base = delete $h{base} // $t->url('');
    my $res = $http->request('POST', "$base/v1/codes/$c/verify", {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded', %h },
        content => "pin=$p" . ($req ? "&request=$req" : '') });
    $res->{elapsed} = time - $t0;
    return $res;
}

# 0. Before: the ledger answers; 8 right PINs at once connect every one
# of the 4 threads, so that below, statements do reach the stopped
# server (and wait there).
my ($c0, $p0) = (mint($key, 1, 100), pin_of($key, 1, 100));
is(json_of(post_req($c0, $p0))->{verification}, 'genuine', 'the ledger up: genuine');
my @warm;
for my $k (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $res = post_req(mint($key, 1, 300 + $k), pin_of($key, 1, 300 + $k));
        POSIX::_exit($res->{status} == 200 ? 0 : 1);
    }
    push @warm, $pid;
}
my $warm_bad = 0;
for (@warm) { waitpid $_, 0; $warm_bad++ if $? }
is($warm_bad, 0, '8 right PINs at once: 200 each');
cmp_ok($pg->psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"),
       '>=', 3, '... the threads hold connections');

# The scan loop, beside everything below until told to stop.
my $dir = CodeRouter::Test::tmpdir();
my $scan_code = mint($key, 1, 200);
my $loop = fork // die "fork: $!";
if ($loop == 0) {
    my $h = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1, timeout => 20);
    my ($n, $bad, $max) = (0, 0, 0);
    until (-e "$dir/stop") {
        my $t0 = time;
        my $res = $h->get($t->url("/$scan_code"));
        my $dt = time - $t0;
        $max = $dt if $dt > $max;
        $bad++ unless $res->{status} == 302;
        $n++;
    }
    CodeRouter::Test::write_file("$dir/loop", "$n $bad $max");
    POSIX::_exit(0);
}

# 1. SIGSTOP: right PINs are unavailable within the timeout.
sleep 0.3;
ok($pg->signal('STOP') >= 2, 'PostgreSQL stopped (SIGSTOP to the server and its backends)');
my ($c1, $p1) = (mint($key, 1, 101), pin_of($key, 1, 101));
my @kids;
for my $k (1 .. 6) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my ($c, $p) = (mint($key, 1, 110 + $k), pin_of($key, 1, 110 + $k));
        my $res = post_req($c, $p, "stalled-$k");
        POSIX::_exit($res->{status} == 503 && $res->{elapsed} < 2.5 ? 0 : 1);
    }
    push @kids, $pid;
}
my $r = post_req($c1, $p1, 'buyer-1');
my $j = json_of($r);
is($r->{status}, 503, 'a right PIN while the ledger is stopped: 503');
is($j->{status}, 'unavailable', '... status unavailable');
ok(!defined $j->{verification}, '... no verification: never genuine');
cmp_ok($r->{elapsed}, '>=', 0.9, sprintf '... after the timeout (%.2f s)', $r->{elapsed});
cmp_ok($r->{elapsed}, '<', 2.5, '... and not much later');
my $bad = 0;
for (@kids) { waitpid $_, 0; $bad++ if $? }
is($bad, 0, '6 more right PINs at once (more than the 4 threads): 503 each, in time');

# A wrong PIN is not told either: the guard's budget is the ledger's
# (t/96), and a check it cannot record is no answer.
my $wrong = sprintf '%08d', ($p1 + 1) % 100000000;
$r = post_req($c1, $wrong, undef, 'X-Forwarded-For' => '203.0.113.1');
is($r->{status}, 503, 'a wrong PIN meanwhile: 503, as a right one');
ok(!defined json_of($r)->{verification}, '... no verification');
cmp_ok($r->{elapsed}, '<', 2.5, sprintf '... within the timeout (%.3f s)', $r->{elapsed});

# The page: 503, "try again", and the form posts the same request id.
$r = $http->request('POST', $t->url("/verify?code=$c1"), {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "pin=$p1&request=page-nonce-1" });
is($r->{status}, 503, 'the page: 503');
like($r->{content}, qr/请稍后再试/, '... try again (zh)');
like($r->{content}, qr/try again/, '... try again (en)');
like($r->{content}, qr/<input type="hidden" name="request" value="page-nonce-1">/,
     '... with the same request id in its form');

my $m = $t->get('/status')->{content};
my ($unavail) = $m =~ /^code_router_ledger_unavailable_total\{ledger="postgresql"\} (\d+)$/m;
cmp_ok($unavail, '>=', 8, "/status: $unavail right PINs unavailable");

# 2. SIGCONT: the waiting statements run late and count nothing.
$pg->signal('CONT');
sleep 1.5;
CodeRouter::Test::write_file("$dir/stop", '');
waitpid $loop, 0;
my ($n, $scan_bad, $max) = split ' ', CodeRouter::Test::read_file("$dir/loop");
cmp_ok($n, '>', 20, "the scan loop ran: $n scans");
is($scan_bad, 0, '... every one answered 302');
# A worker that waited on the ledger would stall for the 1 s timeout (8
# right PINs: seconds); a loaded machine's scheduling, for far less.
cmp_ok($max, '<', 0.9, sprintf '... its slowest %.0f ms: no stall while the ledger hung', 1000 * $max);

is($pg->psql('SELECT count(*) FROM code_router_verifications WHERE serial BETWEEN 101 AND 116'),
   "0\n", 'the ledger after SIGCONT: none of the unavailable right PINs counted');

$r = post_req($c1, $p1, 'buyer-1');
$j = json_of($r);
is($r->{status}, 200, "the buyer's retry (the same request id): 200");
is($j->{verification}, 'genuine', '... genuine, not "verified before, by you"');
is($j->{verifications}, 1, '... count 1');
$j = json_of(post_req($c1, $p1, 'page-nonce-1'));
is($j->{verifications}, 2, 'the page retry: counted once, 2');
$j = json_of(post_req($c1, $p1, 'page-nonce-1'));
is($j->{verifications}, 2, '... and again: still 2 (a replay)');

# 3. PostgreSQL restarted: the threads' connections are closed under
# them; the next right PINs reconnect and count (a failed statement on a
# kept connection is tried once more on a new one), none unavailable.
$pg->stop;
$pg->start;
my $before = ($t->get('/status')->{content} =~ /^code_router_ledger_unavailable_total\{ledger="postgresql"\} (\d+)$/m)[0];
my @after = map { json_of(post_req(mint($key, 1, 400 + $_), pin_of($key, 1, 400 + $_)))->{verification} // 'none' } 1 .. 8;
is_deeply(\@after, [('genuine') x 8], 'after a PostgreSQL restart: 8 right PINs, 8 genuine');
my $after_n = ($t->get('/status')->{content} =~ /^code_router_ledger_unavailable_total\{ledger="postgresql"\} (\d+)$/m)[0];
is($after_n, $before, '... none unavailable');

# 4. No schema, and no server: 503, saying why.
$r = post_req($c1, $p1, undef, base => "http://127.0.0.1:$port_empty");
is($r->{status}, 503, 'a ledger without the schema: 503');
$r = post_req($c1, $p1, undef, base => "http://127.0.0.1:$port_down");
is($r->{status}, 503, 'a ledger that is down: 503');
cmp_ok($r->{elapsed}, '<', 1.5, '... within the timeout');
my $log = $t->error_log;
like($log, qr/ledger: no schema .*run "code-router ledger init --pg CONNINFO"/,
     'the log: no schema, run ledger init');
like($log, qr/ledger: (connect|no answer)/, 'the log: the server that is down');
like($log, qr/ledger: no answer within 1000ms; the (?:right PIN|PIN check) is answered "unavailable"/,
     'the log: the stalled ledger');

$t->stop;
$pg->stop;
done_testing;
