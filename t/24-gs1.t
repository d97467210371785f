#!/usr/bin/perl
# The GS1 Digital Link C unit tests (t/unit/test_gs1.c, test_link.c), plain and
# under ASan and UBSan: known answers for every outcome, field and document.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(root run_cmd);

$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=1';
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';

for my $bin (map { my $n = $_; map { root() . "/build/t/test-$n$_" } "", "-asan" } qw(gs1 link)) {
    SKIP: {
        skip "$bin not built (make unit)", 3 unless -x $bin;
        my ($rc, $out, $err) = run_cmd([$bin]);
        my @bad = grep { /^not ok/ } split /\n/, $out;
        my ($plan) = $out =~ /^1\.\.(\d+)$/m;
        is($rc, 0, "$bin exits 0") or diag $err;
        is_deeply(\@bad, [], '... every known answer right') or diag $out;
        cmp_ok($plan // 0, '>=', 50, "... " . ($plan // 0) . ' checks ran');
    }
}

done_testing;
