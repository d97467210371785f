#!/usr/bin/perl
# The same unit tests built with AddressSanitizer and UBSan: any report
# aborts the binary (-fno-sanitize-recover), which prove counts as failure.
use strict;
use warnings;
use FindBin;
my $bin = "$FindBin::Bin/../build/t/test-codec-asan";
-x $bin or do { print "1..0 # SKIP $bin not built (make unit)\n"; exit 0 };
$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=1';
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';
exec $bin or die "exec $bin: $!";
