#!/usr/bin/perl
# The store's C unit tests (t/unit/test_store.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit cli);
exec_unit('store', asan => 0, args => [cli()]);
