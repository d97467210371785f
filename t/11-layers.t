#!/usr/bin/perl
# The module's files call downward only: ngx_http_code_router.h declares
# them bottom up, one "/* ngx_http_code_router_NAME.c */" section each,
# and every symbol a file uses from another (nm of the built objects) must
# be defined in a file declared before it.  module.c, the tables, is on
# top.  The module object itself (ngx_http_code_router_module, through
# which every file reads its configuration) is not a call.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

my $root = "$FindBin::Bin/..";
my $src = "$root/ngx_code_router/nginx";
my $obj = "$root/build/nginx/addon/nginx";

plan skip_all => "no objects in $obj (run make)" unless -d $obj;

open my $fh, '<', "$src/ngx_http_code_router.h" or die "$!";
my @order;
while (<$fh>) {
    push @order, $1 if m{^/\* ngx_http_code_router_(\w+)\.c \*/$};
}
close $fh;
ok(@order >= 10, 'the header declares the files in ' . scalar(@order)
                 . ' sections: ' . join(' ', @order));

my %rank;
@rank{@order} = 0 .. $#order;
$rank{module} = @order;                 # the tables, on top

my @files = map { m{ngx_http_code_router_(\w+)\.c$} ? $1 : () }
            glob "$src/ngx_http_code_router_*.c";
my @unplaced = grep { !exists $rank{$_} } @files;
is("@unplaced", '', 'every file of the module has its place in the header');

my (%def, %undef);
for my $f (@files) {
    my $o = "$obj/ngx_http_code_router_$f.o";
    ok(-f $o, "$f: built") or next;
    ok(-M $o <= -M "$src/ngx_http_code_router_$f.c",
       "... after its source changed") or diag "run make";
    for (`nm --defined-only -g $o`) {
        $def{$1} = $f if /^\S+\s+[TDRBC]\s+(\S+)$/;
    }
    $undef{$f} = [map { /^\s+U\s+(\S+)$/ ? $1 : () } `nm -u $o`];
}

# Every use of one file's symbol by another: [from, to, symbol].
my @edges;
for my $f (sort keys %undef) {
    for my $s (@{ $undef{$f} }) {
        next if $s eq 'ngx_http_code_router_module';
        my $t = $def{$s};
        push @edges, [$f, $t, $s] if defined $t && $t ne $f;
    }
}
cmp_ok(scalar @edges, '>', 40,
       'the objects show ' . scalar(@edges) . ' uses across files');

sub upward {
    my ($rank) = @_;
    return grep { $rank->{ $_->[1] } >= $rank->{ $_->[0] } } @edges;
}

my @up = upward(\%rank);
is(scalar @up, 0, 'every file calls only files below it')
    or diag join "\n", map { "$_->[0] -> $_->[1]: $_->[2]" } @up;

# The check can fail: the same files in the reverse order call upward.
my %rev;
@rev{@order} = reverse 0 .. $#order;
$rev{module} = @order;
cmp_ok(scalar(upward(\%rev)), '>', 0,
       '... and the same check of the reversed order finds upward calls');

done_testing;
