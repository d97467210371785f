#!/usr/bin/perl
# A short libFuzzer run of each target (make fuzz runs them for minutes):
# the seed corpus in t/fuzz/corpus, which keeps every crash found so far as
# a regression input, then a few seconds of new inputs.  Any sanitizer
# report or oracle failure fails the test.  The targets run side by side,
# as many at once as there are cores (each is one process, one core).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(root tmpdir);

my $secs = $ENV{CR_FUZZ_SECONDS} // 5;
my $jobs = $ENV{CR_FUZZ_JOBS} // (`nproc` =~ /(\d+)/ ? $1 : 1);
# Every t/fuzz/fuzz_NAME.c is a target.
my @names = map { m{/fuzz_(\w+)\.c$} ? $1 : () } sort glob(root() . '/t/fuzz/fuzz_*.c');
ok(@names >= 5, scalar(@names) . ' targets: ' . join(' ', @names));

# Starts a target with its output in DIR/err: the pid.
sub start {
    my ($name, $d) = @_;
    my $bin = root() . "/build/fuzz/fuzz-$name";
    mkdir "$d/corpus";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', "$d/out" or die;
        open STDERR, '>', "$d/err" or die;
        exec $bin, "-max_total_time=$secs", '-print_final_stats=1',
             "-artifact_prefix=$d/", "$d/corpus",
             root() . "/t/fuzz/corpus/$name";
        die "exec $bin: $!";
    }
    return $pid;
}

my (%run, @queue, %done);
for my $name (@names) {
    if (-x root() . "/build/fuzz/fuzz-$name") {
        push @queue, $name;
    } else {
        SKIP: { skip "build/fuzz/fuzz-$name not built (make unit builds it with clang)", 2 }
    }
}
while (@queue || %run) {
    while (@queue && keys(%run) < $jobs) {
        my $name = shift @queue;
        my $d = tmpdir();
        $run{ start($name, $d) } = [$name, $d];
    }
    my $pid = waitpid(-1, 0);
    last if $pid < 0;
    my $job = delete $run{$pid} or next;
    $done{ $job->[0] } = [$?, $job->[1]];
}

for my $name (sort keys %done) {
    my ($status, $d) = @{ $done{$name} };
    my $err = do { local (@ARGV, $/) = ("$d/err"); <> } // '';
    is($status, 0, "fuzz-$name: no crash in $secs s")
        or diag join "\n", (split /\n/, $err)[-30 .. -1];
    my ($n) = $err =~ /stat::number_of_executed_units:\s+(\d+)/;
    cmp_ok($n // 0, '>', 1000, "fuzz-$name: " . ($n // 0) . ' inputs tried');
}

done_testing;
