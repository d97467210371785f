#!/usr/bin/perl
# The man pages and --help come from one source, so they
# cannot drift.  man/*.1 are what scripts/man writes from man/*.1.in and
# the CLI's help texts (`make man`); every option a command's getopt table
# takes is in its --help synopsis and in its man section; the pages carry
# debian/changelog's version, render without a groff warning, and the
# help texts name the documents where the package installs them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli root run_cmd tmpdir read_file);

my $root = root();
my $d = tmpdir();
sub cr { return run_cmd([cli(), @_]) }

# ---- the committed pages are the generated ones -----------------------

my ($rc, $out, $err) = run_cmd(["$root/scripts/man", cli(), $d]);
is($rc, 0, 'scripts/man writes the pages') or diag $err;
for my $page ('code-router.1', 'code-router-load.1') {
    my $want = read_file("$d/$page");
    my $have = read_file("$root/man/$page");
    ok($have eq $want, "man/$page is what scripts/man writes (else: make man)")
        or diag `diff -u $root/man/$page $d/$page | head -40`;
    ($rc, $out, $err) = run_cmd(['groff', '-man', '-ww', '-z', "$root/man/$page"]);
    is($err, '', "... and renders without a groff warning");
}

# ---- every option of every command ------------------------------------

(undef, my $help) = cr('--help');
my ($list) = $help =~ /^commands: (.+)$/m;
my @cmds = split ' ', $list // '';
ok(@cmds >= 8, "--help lists the commands (@cmds)");
ok((grep { $_ eq 'scans' } @cmds), '... scans among them');

# A command's options: the getopt tables of cr_cmd_CMD (and of any
# cr_cmd_CMD_* function it dispatches to) in ngx_code_router/cli/cr_cli*.c.
my $src = join "\n", map { read_file($_) } glob "$root/ngx_code_router/cli/cr_cli*.c";
sub options_of {
    my ($cmd) = @_;
    my %o;
    while ($src =~ /^cr_cmd_\Q$cmd\E(?:_\w+)?\(int argc, char \*\*argv\)\n\{(.*?)^\}/msg) {
        my $body = $1;
        while ($body =~ /struct option\s+\w+\[\] = \{(.*?)\};/sg) {
            my $t = $1;
            $o{$1} = 1 while $t =~ /\{ "([a-z][a-z0-9-]*)",/g;
        }
    }
    return sort keys %o;
}

my $man = read_file("$root/man/code-router.1");
my $loadman = read_file("$root/man/code-router-load.1");
sub roff { my ($s) = @_; $s =~ s/-/\\-/g; return $s }
for my $cmd (@cmds) {
    my @opts = options_of($cmd);
    ok(@opts, "$cmd: its options found in cr_cmd_$cmd") or next;
    (undef, my $h) = cr('help', $cmd);
    my ($syn) = split /\n\n/, $h, 2;
    my ($sec) = $man =~ /^\.SS \Q$cmd\E\n(.*?)(?=^\.S[SH] )/ms;
    ok(defined $sec, "code-router(1) has a section for $cmd") or next;
    for my $o (@opts) {
        like($syn, qr/(?<![\w-])--\Q$o\E\b/, "$cmd --help's synopsis names --$o");
        like($sec, qr/\\fB\Q${\ roff("--$o")}\E\\fR/, "... and so does its man section");
    }
    if ($cmd eq 'load') {
        like($loadman, qr/\\fB\Q${\ roff("--$_")}\E\\fR/, "code-router-load(1) names --$_") for @opts;
    }
}

# What issue 24 found missing.
my ($ins) = $man =~ /^\.SS inspect\n(.*?)(?=^\.S[SH] )/ms;
like($ins // '', qr/\\fB\\\-\\\-pin\\fR \\fIPIN\\fR/, 'code-router(1): inspect --pin PIN');
my ($mint) = $man =~ /^\.SS mint\n(.*?)(?=^\.S[SH] )/ms;
like($mint // '', qr/\\fB\\\-\\\-pin\\\-digits\\fR \\fID\\fR/, '... mint --pin-digits D');
like($loadman, qr/\\fB\\\-\\\-encoding\\fR/, 'code-router-load(1): --encoding');
like($loadman, qr/\\fB\\\-\\\-tz\\fR/, '... --tz');

# ---- the version ------------------------------------------------------

(undef, my $v) = cr('--version');
my ($ver) = $v =~ /^code-router (\S+)$/m;
my ($deb) = read_file("$root/debian/changelog") =~ /\Acode-router \(([^)]+)\)/;
is($ver, $deb, "code-router --version is debian/changelog's ($deb)");
like($man, qr/^\.TH CODE-ROUTER 1 \d{4}-\d\d-\d\d "code-router \Q$deb\E" /m, 'code-router(1) shows it');
like($loadman, qr/^\.TH CODE-ROUTER-LOAD 1 \S+ "code-router \Q$deb\E" /m, 'code-router-load(1) too');

# ---- documents by their installed paths -------------------------------

my %installed = map { m{^docs/(\S+)\.md$} ? ($1 => 1) : () } split /\n/, read_file("$root/debian/code-router.docs");
my $all = join "\n", map { (cr('help', $_))[1] } @cmds;
my @named = $all =~ m{/usr/share/doc/code-router/([\w-]+)\.md\.gz}g;
ok(@named >= 3, "help texts name installed documents (@named)");
ok($installed{$_}, "... $_.md is installed by the package (debian/code-router.docs)") for @named;
my @bare = $all =~ m{(?<!\(|/)(docs/[\w-]+\.md)(?! in the source)}g;
is("@bare", '', 'no help text names a document only by its path in the source');
unlike($man . $loadman, qr{/usr/share/doc/code-router/[\w-]+\.md(?!\.gz)}, 'the man pages name the installed (.gz) documents');

# t/README.md's list of the tests is their opening comments.
{
    my ($rc, $out, $err) = run_cmd(["$root/scripts/test-list", '--check']);
    is($rc, 0, "t/README.md lists every test's opening comment (else: make man)")
        or diag $err;
}

done_testing;
