#!/usr/bin/perl
# A flush of more codes than one chunk (1,024) with a thread pool: the
# event loop copies and marks them a chunk at a time, each completed chunk
# starting the next at once.  9,000 codes scanned between flushes 20 s
# apart: one flush writes them in transactions moments apart, and a
# SIGKILL of every process after it loses no scan.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use HTTP::Tiny;
use Time::HiRes qw(sleep time);
use POSIX ();
use CodeRouter::Test qw(tmpdir counting_store counting_http);

my $N = 9000;
my ($key, $db, $sdir, $codes) = counting_store(tmpdir(), $N);
my @codes = @$codes;
is(scalar @codes, $N, "$N codes");

my $t = CodeRouter::Test::Nginx->new(
    main => 'thread_pool tp threads=1;',
    http => counting_http($db, $key, "zone=big:16m store=$sdir/scans.mdb "
                                     . 'flush=20s thread_pool=tp'));
$t->start;

my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1);
sub flushes {
    my ($m) = $http->get($t->url('/status'))->{content}
        =~ /^code_router_scans_flushes_total\{zone="big"\} (\d+)/m;
    return $m // 0;
}

# One scan each, every tenth code twice, by three clients; meanwhile the
# flushes are watched: a flush that finds more than a chunk makes two
# write transactions within moments (flushes are 20 s apart).
my @kids;
for my $k (0 .. 2) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $h = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1);
        my $bad = 0;
        for (my $i = $k; $i < $N; $i += 3) {
            for (1 .. ($i % 10 == 0 ? 2 : 1)) {
                $bad++ if $h->get($t->url("/$codes[$i]"))->{status} != 302;
            }
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my %left = map { $_ => 1 } @kids;
my (@seen, $done, $failed);
my $end = time + 120;
$failed = 0;
while (time < $end) {
    my $f = flushes();
    push @seen, [time, $f] if !@seen || $f != $seen[-1][1];
    for my $k (keys %left) {
        next if waitpid($k, POSIX::WNOHANG()) != $k;
        $failed++ if $?;
        delete $left{$k};
    }
    $done //= time if !%left;
    # After the scans: a flush, then quiet for 3 s (its chunks are over).
    last if $done && $seen[-1][0] > $done && time - $seen[-1][0] > 3;
    sleep 0.1;
}
is($failed, 0, 'every scan redirected');
my $close = 0;
for my $i (1 .. $#seen) {
    $close++ if $seen[$i][1] - $seen[$i - 1][1] >= 2
             || ($i > 1 && $seen[$i][0] - $seen[$i - 1][0] < 3);
}
cmp_ok($close, '>', 0, 'a flush of more than a chunk: write transactions moments apart')
    or diag(join ' ', map { sprintf '%.1f:%d', $_->[0] - $seen[0][0], $_->[1] } @seen);
note(sprintf 'scans done at %.1f s; flushes: %s', $done - $seen[0][0],
             join ' ', map { sprintf '%.1f:%d', $_->[0] - $seen[0][0], $_->[1] } @seen);

$t->kill_all;

$t->start;
my %wrong;
for my $i (0 .. $N - 1) {
    my $j = JSON::PP::decode_json($http->get($t->url("/v1/codes/$codes[$i]"))->{content});
    my $want = $i % 10 == 0 ? 2 : 1;
    $wrong{$i} = $j->{scans} if ($j->{scans} // -1) != $want;
}
is(scalar keys %wrong, 0, "all $N codes' counts read back from the store after a SIGKILL")
    or diag(join ' ', map { "$_:$wrong{$_}" } (sort { $a <=> $b } keys %wrong)[0 .. 9]);
unlike($t->error_log, qr/no thread pool task/, 'the pool did the writing');

$t->stop;
done_testing();
