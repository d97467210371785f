#!/usr/bin/perl
# cr_json and cr_scans C unit tests (t/unit/test_json.c).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CodeRouter::Test qw(exec_unit);
exec_unit('json', asan => 0);
