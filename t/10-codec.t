#!/usr/bin/perl
# The codec's C unit tests (t/unit/test_codec.c), which print TAP.
use strict;
use warnings;
use FindBin;
my $bin = "$FindBin::Bin/../build/t/test-codec";
-x $bin or do { print "1..0 # SKIP $bin not built (make unit)\n"; exit 0 };
exec $bin or die "exec $bin: $!";
