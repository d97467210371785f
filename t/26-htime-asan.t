#!/usr/bin/perl
# t/unit/test_htime.c under AddressSanitizer and UBSan.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('htime', asan => 1);
