#!/usr/bin/perl
# The GS1 Digital Link parser's C unit tests (t/unit/test_gs1.c), plain and
# under ASan and UBSan: known answers for every outcome and field.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(root run_cmd);

$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=1';
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';

for my $bin (map { root() . "/build/t/test-gs1$_" } '', '-asan') {
    SKIP: {
        skip "$bin not built (make unit)", 3 unless -x $bin;
        my ($rc, $out, $err) = run_cmd([$bin]);
        my @bad = grep { /^not ok/ } split /\n/, $out;
        my ($plan) = $out =~ /^1\.\.(\d+)$/m;
        is($rc, 0, "$bin exits 0") or diag $err;
        is_deeply(\@bad, [], '... every known answer right') or diag $out;
        cmp_ok($plan // 0, '>=', 100, "... " . ($plan // 0) . ' checks ran');
    }
}

done_testing;
