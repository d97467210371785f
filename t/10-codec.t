#!/usr/bin/perl
# The codec's C unit tests (t/unit/test_codec.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit cli);
exec_unit('codec', asan => 0);
