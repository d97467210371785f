#!/usr/bin/perl
# the application/x-www-form-urlencoded reader of the verify POST (t/unit/test_form.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('form', asan => 0);
