#!/usr/bin/perl
# cr_ua C unit tests (t/unit/test_ua.c): the built-in bot matcher.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('ua', asan => 0);
