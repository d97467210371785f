#!/usr/bin/perl
# the times the verify pages show, in the brand's zone (t/unit/test_htime.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('htime', asan => 0);
