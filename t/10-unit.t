#!/usr/bin/perl
# The C unit tests of the pure C cores: every t/unit/test_NAME.c (what
# each checks is the comment at its top), built by make unit into
# build/t/test-NAME and, with AddressSanitizer and UBSan, into
# build/t/test-NAME-asan.  Each subject is a subtest, run plain and under
# the sanitizers; each of the test's own TAP lines is an assertion here.
#
#   prove -v t/10-unit.t                 every subject
#   CR_UNIT=store prove -v t/10-unit.t   one (a list: CR_UNIT="json pin")
#
# Every test gets the CLI's path as its argument (test_store runs
# concurrent loaders with it; the others ignore it).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TAP::Parser;
use CodeRouter::Test qw(root cli);

my @names = map { m{/test_(\w+)\.c$} ? $1 : () } sort glob(root() . '/t/unit/test_*.c');
if (my $only = $ENV{CR_UNIT}) {
    my %want = map { $_ => 1 } split ' ', $only;
    @names = grep { $want{$_} } @names;
}
plan skip_all => 'no unit test selected' unless @names;

$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=1';
$ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1';

# Runs one binary; each TAP line it prints becomes an ok() here.
sub run_unit {
    my ($bin) = @_;
    plan skip_all => "$bin not built (make unit)" unless -x $bin;
    my $p = TAP::Parser->new({ exec => [$bin, cli()] });
    while (my $r = $p->next) {
        if ($r->is_test) {
            ok($r->is_ok, $r->description =~ s/^- //r);
        } elsif ($r->is_comment) {
            note $r->comment;
        }
    }
    is($p->tests_planned, $p->tests_run, 'ran every test it planned');
    is($p->wait, 0, 'exit status 0, no signal (no sanitizer report)');
    done_testing;
}

# What a subject checks: the opening comment of its file.
sub what_it_checks {
    my ($name) = @_;
    open my $fh, '<', root() . "/t/unit/test_$name.c" or return '';
    my ($c) = do { local $/; <$fh> } =~ m{^/\*(.*?)\*/}s or return '';
    return join "\n", grep { /\S/ } map { s/^\s*\*\s?//r } split /\n/, $c;
}

for my $name (@names) {
    subtest $name => sub {
        note what_it_checks($name);
        subtest 'plain' => sub { run_unit(root() . "/build/t/test-$name") };
        subtest 'ASan+UBSan' => sub { run_unit(root() . "/build/t/test-$name-asan") };
        done_testing;
    };
}

done_testing;
