#!/usr/bin/perl
# A short libFuzzer run of each target (make fuzz runs them for minutes):
# the seed corpus in t/fuzz/corpus, which keeps every crash found so far as
# a regression input, then a few seconds of new inputs.  Any sanitizer
# report or oracle failure fails the test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(root run_cmd tmpdir);

my $secs = $ENV{CR_FUZZ_SECONDS} // 5;
# Every t/fuzz/fuzz_NAME.c is a target.
my @names = map { m{/fuzz_(\w+)\.c$} ? $1 : () } sort glob(root() . '/t/fuzz/fuzz_*.c');
for my $name (@names) {
    my $bin = root() . "/build/fuzz/fuzz-$name";
    SKIP: {
        skip "$bin not built (make unit builds it with clang)", 2 unless -x $bin;
        my $d = tmpdir();
        mkdir "$d/corpus";
        my ($rc, $out, $err) = run_cmd([$bin, "-max_total_time=$secs", '-print_final_stats=1',
                                        "-artifact_prefix=$d/", "$d/corpus",
                                        root() . "/t/fuzz/corpus/$name"]);
        is($rc, 0, "fuzz-$name: no crash in $secs s") or diag join "\n", (split /\n/, $err)[-30 .. -1];
        my ($n) = $err =~ /stat::number_of_executed_units:\s+(\d+)/;
        cmp_ok($n // 0, '>', 1000, "fuzz-$name: " . ($n // 0) . ' inputs tried');
    }
}

done_testing;
