#!/usr/bin/perl
# docs/code-format.md, implemented independently in t/ref/code_format.py,
# must give exactly the codes that the C codec mints, for random master
# keys, key ids and serials across the whole 40-bit range.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli run_cmd tmpdir write_file);

my $ref = "$FindBin::Bin/ref/code_format.py";
my $dir = tmpdir();
srand(20261122);

for my $round (1 .. 8) {
    my $master = join '', map { chr int rand 256 } 1 .. 32;
    my $keyfile = write_file("$dir/k$round", $master, 0600);
    my $kid = $round == 1 ? 0 : $round == 2 ? 255 : int rand 256;
    my @serials = (0, 1099511627775, map { int(rand(2**40)) } 1 .. 6);
    my @cli;
    for my $s (@serials) {
        my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $keyfile,
                                        '--kid', $kid, '--from', $s,
                                        '--count', 1]);
        is($rc, 0, "mint kid $kid serial $s") or diag $err;
        push @cli, $out;
    }
    my ($rc, $out, $err) = run_cmd(['python3', $ref, unpack('H*', $master),
                                    $kid, @serials]);
    is($rc, 0, 'reference implementation runs') or diag $err;
    is($out, join('', @cli), "kid $kid: C and the written format agree");
}

done_testing;
