#!/usr/bin/perl
# The code-router CLI: keygen, mint, inspect, their errors and exit codes
# (0 ok, 1 invalid input, 2 usage, 3 file or system error).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli run_cmd tmpdir write_file read_file);

my $d = tmpdir();
my $key = "$d/brand.key";

sub cr { return run_cmd([cli(), @_]) }

# keygen
my ($rc, $out, $err) = cr('keygen', '--out', $key);
is($rc, 0, 'keygen writes a key') or diag $err;
is(-s $key, 32, 'a key is 32 bytes');
is((stat $key)[2] & 07777, 0600, 'with mode 0600');
my $first = read_file($key);
($rc, $out, $err) = cr('keygen', '--out', $key);
is($rc, 3, 'keygen refuses to overwrite (exit 3)');
like($err, qr/refusing to overwrite/, '... and says so');
is(read_file($key), $first, '... and the key is unchanged');
cr('keygen', '--out', "$d/other.key");
isnt(read_file("$d/other.key"), $first, 'two keys differ');
($rc, $out, $err) = cr('keygen');
is($rc, 2, 'keygen without --out is a usage error');

# help
for my $cmd (qw(keygen mint inspect)) {
    ($rc, $out, $err) = cr($cmd, '--help');
    is($rc, 0, "$cmd --help exits 0");
    like($out, qr/^usage: code-router $cmd/, "$cmd --help prints its usage");
}
($rc, $out, $err) = cr('--help');
like($out, qr/commands:.*keygen.*mint.*inspect/s, '--help lists commands');
($rc, $out, $err) = cr('frobnicate');
is($rc, 2, 'unknown command: exit 2');
like($err, qr/unknown command "frobnicate"/, '... named on stderr');
($rc) = cr();
is($rc, 2, 'no command: exit 2');

# mint
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                       '--count', 5);
is($rc, 0, 'mint 5 codes');
my @codes = split /\n/, $out;
is(scalar @codes, 5, 'one code a line');
like($_, qr/^[0-9A-HJKMNP-TV-Z]{18}$/, "code $_ is 18 Crockford chars")
    for @codes;
my %seen;
is(scalar(grep { !$seen{$_}++ } @codes), 5, 'all distinct');

($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                       '--count', 2, '--url-prefix', 'HTTPS://C.BRAND.CN/');
is($out, "HTTPS://C.BRAND.CN/$codes[0]\nHTTPS://C.BRAND.CN/$codes[1]\n",
   '--url-prefix prefixes each code');

($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                       '--count', 2, '--format', 'csv',
                       '--url-prefix', 'HTTPS://C.BRAND.CN/');
is($out, "serial,code,url\n1000,$codes[0],HTTPS://C.BRAND.CN/$codes[0]\n"
       . "1001,$codes[1],HTTPS://C.BRAND.CN/$codes[1]\n", 'csv format');
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                       '--count', 1, '--format', 'csv');
is($out, "serial,code,url\n1000,$codes[0],\n", 'csv without a prefix');

($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 7,
                       '--from', 1099511627775, '--count', 1);
is($rc, 0, 'the last serial mints');
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 7,
                       '--from', 1099511627775, '--count', 2);
is($rc, 2, 'a range past the last serial is refused');
like($err, qr/runs past the last serial 1099511627775/, '... with the limit');

my @bad = (
    [['--kid', 256], qr/--kid "256": a key id is 0..255/],
    [['--kid', '-1'], qr/--kid "-1"/],
    [['--kid', '1x'], qr/--kid "1x"/],
    [['--from', '1099511627776'], qr/--from "1099511627776"/],
    [['--from', ' 5'], qr/--from " 5"/],
    [['--count', 0], qr/--count "0": must be 1\.\./],
    [['--count', '99999999999999999999999'], qr/--count/],
    [['--format', 'json'], qr/--format "json": codes or csv/],
    [['--url-prefix', 'https://a,b/'], qr/--url-prefix/],
);
for my $b (@bad) {
    my %o = ('--key' => $key, '--kid' => 1, '--from' => 0, '--count' => 1,
             @{ $b->[0] });
    ($rc, $out, $err) = cr('mint', %o);
    is($rc, 2, "mint @{ $b->[0] }: usage error");
    like($err, $b->[1], '... says what is wrong');
    is($out, '', '... and prints no code');
}
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1);
is($rc, 2, 'mint without --from/--count');
like($err, qr/required/, '... names what is required');
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 0,
                       '--count', 1, 'extra');
is($rc, 2, 'mint with a stray argument');

# bad key files
my @badkeys = (
    ['short', 'x' x 31, 0600, qr/is 31 bytes: a master key is exactly 32/],
    ['long', 'x' x 33, 0600, qr/is 33 bytes/],
    ['empty', '', 0600, qr/is 0 bytes/],
    ['group', 'x' x 32, 0640, qr/has mode 0640: group and others must have no access/],
    ['other', 'x' x 32, 0604, qr/has mode 0604/],
);
for my $b (@badkeys) {
    my $f = write_file("$d/bad-$b->[0].key", $b->[1], $b->[2]);
    ($rc, $out, $err) = cr('mint', '--key', $f, '--kid', 1, '--from', 0,
                           '--count', 1);
    is($rc, 3, "key file $b->[0]: exit 3");
    like($err, qr/key file "\Q$f\E"/, '... names the file');
    like($err, $b->[3], "... and says what is wrong");
    is($out, '', '... and mints nothing');
    ($rc, $out, $err) = cr('inspect', '--key', $f, 'X');
    is($rc, 3, "inspect refuses key file $b->[0] too");
}
($rc, $out, $err) = cr('mint', '--key', "$d/missing.key", '--kid', 1,
                       '--from', 0, '--count', 1);
is($rc, 3, 'missing key file: exit 3');
like($err, qr/cannot open: No such file/, '... says why');
mkdir "$d/adir", 0700;
($rc, $out, $err) = cr('mint', '--key', "$d/adir", '--kid', 1, '--from', 0,
                       '--count', 1);
like($err, qr/not a regular file|has mode/, 'a directory is refused');
# A key directly in /tmp (1777): anybody could rename another file there.
($rc, $out, $err) = cr('mint', '--key', $d, '--kid', 1, '--from', 0,
                       '--count', 1);
like($err, qr/is in directory "\/tmp" of mode 1777: group and others must not/,
     'a key in /tmp itself is refused');

# inspect
($rc, $out, $err) = cr('inspect', '--key', $key, @codes[0, 1]);
is($rc, 0, 'inspect of valid codes exits 0');
is($out, "$codes[0]\tok\tkid=1\tserial=1000\n$codes[1]\tok\tkid=1\tserial=1001\n",
   'prints kid and serial');
($rc, $out, $err) = cr('inspect', '--key', $key, lc $codes[2],
                       "HTTPS://C.BRAND.CN/$codes[3]");
is($rc, 0, 'lower case and a full URL are accepted');
like($out, qr/\tok\tkid=1\tserial=1002\n.*\tok\tkid=1\tserial=1003\n/s,
     '... with their serials');

my $forged = $codes[0];
substr($forged, 17, 1) = substr($forged, 17, 1) eq 'A' ? 'B' : 'A';
($rc, $out, $err) = cr('inspect', '--key', $key, $codes[0], $forged,
                       'TOOSHORT', "BAD\x01CODE");
is($rc, 1, 'one invalid code makes exit 1');
is($out, "$codes[0]\tok\tkid=1\tserial=1000\n$forged\tforged\tkid=1\n"
       . "TOOSHORT\tmalformed\nBAD\\x01CODE\tmalformed\n",
   'each invalid code gets its reason; control bytes are escaped');

($rc, $out, $err) = cr('inspect', '--key', $key, '--kid', 2, $codes[0]);
is($rc, 1, 'a key id not listed with --kid');
is($out, "$codes[0]\tunknown_key\tkid=1\n", '... is unknown_key');

($rc, $out, $err) = cr('inspect', '--key', "$d/other.key", $codes[0]);
is($out, "$codes[0]\tforged\tkid=1\n", 'another key: forged');

($rc, $out, $err) = run_cmd([cli(), 'inspect', '--key', $key, '-'],
                            join("\n", @codes) . "\n\n");
is($rc, 0, 'codes from stdin');
is(scalar(() = $out =~ /\tok\t/g), 5, '... all five verified');

($rc, $out, $err) = cr('inspect', '--key', $key);
is($rc, 2, 'inspect without codes is a usage error');
($rc, $out, $err) = cr('inspect', '--kid', 1, $codes[0]);
is($rc, 2, 'inspect without --key is a usage error');

done_testing;
