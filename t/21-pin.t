#!/usr/bin/perl
# The hidden PIN's C unit tests (t/unit/test_pin.c): known answers, every
# digit count, malformed and wrong PINs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('pin', asan => 0);
