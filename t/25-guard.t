#!/usr/bin/perl
# the wrong-PIN policy: free tries, locks, the per-code ceiling and a year of attacks (t/unit/test_guard.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('guard', asan => 0);
