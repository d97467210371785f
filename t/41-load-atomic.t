#!/usr/bin/perl
# All or nothing, at scale: a bad row at line 9,999,999 of a 10-million-row
# file leaves the store as it was; a loader SIGKILLed mid-run (early, late,
# during the commit) leaves the previous generation intact; two loaders at
# once are serialised by LMDB's writer lock; the map grows by itself.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file);

my $d = tmpdir();
my $db = "$d/brand.mdb";
my $ex = root() . '/conf/examples';

sub cr { return run_cmd([cli(), @_]) }
sub stat_of {
    my (undef, $out) = cr('stat', '--db', $db);
    return { map { /^(\w+)\s+(.*)$/ ? ($1 => $2) : () } split /\n/, $out };
}

my ($rc, $out, $err) = cr('load', '--db', $db, "$ex/campaigns.csv",
                          "$ex/batches.csv", "$ex/revoked.csv");
is($rc, 0, 'a store at generation 1') or diag $err;
my $before = stat_of();
my (undef, $dump_before) = cr('dump', '--db', $db);

# 10,000,000 override rows (line 1 is the header).
my $big = "$d/big.csv";
system("awk 'BEGIN { print \"kid,serial,state,campaign\";"
       . " for (i = 0; i < 10000000; i++) print \"3,\" i * 5 \",revoked,\" }'"
       . " > $big") == 0 or die "awk: $?";

# The same with line 9,999,999 broken.
my $bad = "$d/bad.csv";
system("awk 'NR == 9999999 { print \"3,NaN,revoked,\"; next } { print }'"
       . " $big > $bad") == 0 or die;

my $t0 = time;
($rc, $out, $err) = cr('load', '--db', $db, $bad);
my $took = time - $t0;
is($rc, 1, 'a bad row at line 9,999,999 fails the run');
like($err, qr/^\Q$bad\E:9999999: serial: "NaN" must be a whole number/m,
     '... naming that line');
like($err, qr/1 error in 10000000 rows; no change made/, '... all rows read');
is_deeply(stat_of(), $before, 'the store is exactly as it was (stat)');
is((cr('dump', '--db', $db))[1], $dump_before, '... and (dump)');
diag sprintf('10M rows validated and rolled back in %.1f s', $took);

# SIGKILL at several moments of a 10-million-row load.
my @killed;
for my $delay (0.3, 2.0, 4.5, 6.5, 8.0) {
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec cli(), 'load', '--db', $db, $big;
        exit 127;
    }
    sleep $delay;
    kill 'KILL', $pid;
    waitpid $pid, 0;
    my $sig = $? & 127;
    my $now = stat_of();
    if ($sig == 9 && $now->{generation} != $before->{generation}) {
        # Killed after its commit, on its way out (closing, freeing): the
        # commit is whole, as for a load that finished.
        is($now->{generation}, $before->{generation} + 1,
           "killed after $delay s, after its commit: one new generation");
        is($now->{codes}, $before->{codes} + 10000000, '... with every row');
        last;
    } elsif ($sig == 9) {
        push @killed, $delay;
        is($now->{generation}, $before->{generation},
           "killed after $delay s: still generation $before->{generation}");
        is($now->{codes}, $before->{codes}, '... with the same overrides');
        is((cr('dump', '--db', $db, '--kind', 'batches'))[1],
           (split /\n\n/, $dump_before)[1] . "\n", '... and the same batches');
    } else {
        # It finished before the kill: then it committed, whole.
        is($? >> 8, 0, "not killed after $delay s: it finished and committed");
        is($now->{codes}, $before->{codes} + 10000000, '... every row');
        last;
    }
}
ok(scalar @killed >= 3, 'at least three loads were killed mid-run (at '
   . join(', ', @killed) . ' s)');

# Two loaders at once: the second waits for the writer lock.  Rows of
# their own (key id 5), so the big one changes the store whatever the
# kills above did.
my $big5 = "$d/big5.csv";
system("sed 's/^3,/5,/' $big > $big5") == 0 or die "sed: $?";
my $mid = stat_of();
my $gen = $mid->{generation};
my $pid = fork // die;
if (!$pid) {
    open STDOUT, '>', "$d/first.out";
    exec cli(), 'load', '--db', $db, $big5;
    exit 127;
}
sleep 0.5;
write_file("$d/small.csv", "kid,serial,state,campaign\n4,1,revoked,\n");
($rc, $out, $err) = cr('load', '--db', $db, "$d/small.csv");
my $second_done = time;
waitpid $pid, 0;
is($? >> 8, 0, 'the big loader succeeded') or diag `cat $d/first.out`;
is($rc, 0, 'the loader started while it ran also succeeded') or diag $err;
my $after = stat_of();
is($after->{generation}, $gen + 2, 'two commits, one after the other');
is($after->{codes}, $mid->{codes} + 10000000 + 1,
   'both loads are in the store, exactly');
like(CodeRouter::Test::read_file("$d/first.out"),
     qr/committed generation \Q@{[$gen + 1]}\E /,
     'the first loader committed first; the second waited for it');

# The map grew past its initial 64 MiB by itself.
ok($after->{map_size} > 64 * 1024 * 1024,
   "the map grew by itself: $after->{map_size} bytes");
ok($after->{map_used} <= $after->{map_size}, 'use within the map');

done_testing;
