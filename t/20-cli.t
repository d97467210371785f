#!/usr/bin/perl
# The code-router CLI: keygen, mint, inspect (also with the hidden PIN),
# their errors and exit codes (0 ok, 1 invalid input, 2 usage, 3 file or
# system error).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file read_file);

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

# mint --pin: a pin column of D digits; inspect --pin checks one code
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                       '--count', 3, '--format', 'csv', '--pin',
                       '--url-prefix', 'HTTPS://C.BRAND.CN/');
is($rc, 0, 'mint --pin') or diag $err;
my @rows = split /\n/, $out;
is(shift @rows, 'serial,code,url,pin', '... header with a pin column');
my @pins;
for my $i (0 .. 2) {
    my ($s, $c, $u, $p, @more) = split /,/, $rows[$i], -1;
    is("$s,$c,$u", 1000 + $i . ",$codes[$i],HTTPS://C.BRAND.CN/$codes[$i]",
       "row $i: serial, code and url as without --pin");
    like($p, qr/^[0-9]{8}$/, "... and a PIN of 8 digits");
    is(scalar @more, 0, '... and nothing more');
    push @pins, $p;
}
isnt($pins[0], $pins[1], 'neighbours have different PINs');
($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                       '--count', 1, '--format', 'csv', '--pin');
like($out, qr/^serial,code,url,pin\n1000,$codes[0],,[0-9]{8}\n\z/,
     'mint --pin without a prefix: empty url');
for my $d (6, 12) {
    ($rc, $out, $err) = cr('mint', '--key', $key, '--kid', 1, '--from', 1000,
                           '--count', 1, '--format', 'csv', '--pin',
                           '--pin-digits', $d);
    like($out, qr/,[0-9]{$d}\n\z/, "--pin-digits $d: $d digits");
    my ($pd) = $out =~ /,([0-9]+)\n\z/;
    ($rc, my $v) = cr('inspect', '--key', $key, '--pin', $pd,
                      '--pin-digits', $d, $codes[0]);
    is($rc, 0, "inspect --pin --pin-digits $d: right");
    ($rc, $v) = cr('inspect', '--key', $key, '--pin', $pd, $codes[0]);
    is($rc, 1, "... but not against the default 8 digits");
    is($v, "$codes[0]\tmalformed_pin\tkid=1\tserial=1000\n",
       '... malformed_pin');
}

($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', $pins[0],
                       $codes[0]);
is($rc, 0, 'inspect --pin: genuine code, right PIN: exit 0') or diag $err;
is($out, "$codes[0]\tok\tkid=1\tserial=1000\tpin=ok\n", '... pin=ok');
($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', $pins[0],
                       'https://c.brand.cn/' . lc $codes[0]);
is($rc, 0, '... a URL in lower case too');
($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', $pins[1],
                       $codes[0]);
is($rc, 1, "another code's PIN: exit 1");
is($out, "$codes[0]\twrong_pin\tkid=1\tserial=1000\n", '... wrong_pin');
is($err, '', '... and nothing on stderr');
($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', $pins[0],
                       $forged);
is($rc, 1, 'a forged code with a PIN: exit 1');
is($out, "$forged\tforged\tkid=1\n", "... the code's own reason");
($rc, $out, $err) = cr('inspect', '--key', $key, '--kid', 2,
                       '--pin', $pins[0], $codes[0]);
is($out, "$codes[0]\tunknown_key\tkid=1\n", '... or unknown_key');
($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', $pins[0],
                       'TOOSHORT');
is($out, "TOOSHORT\tmalformed\n", '... or malformed');

my @badpins = (
    ['', 'empty', qr/got 0 bytes\)/],
    [substr($pins[0], 0, 7), '7 digits', qr/exactly 8 digits.*got 7 bytes\)/],
    ["$pins[0]0", '9 digits', qr/got 9 bytes\)/],
    [" $pins[0]", 'a leading space', qr/got 9 bytes, not all digits/],
    [substr($pins[0], 0, 4) . ' ' . substr($pins[0], 5), 'a space inside',
     qr/got 8 bytes, not all digits/],
    ["+" . substr($pins[0], 1), 'a sign', qr/not all digits/],
    [substr($pins[0], 0, 7) . 'a', 'a letter', qr/not all digits/],
    ["\x{ff11}" x 8, 'full-width digits', qr/not all digits/],
);
for my $b (@badpins) {
    my $p = $b->[0];
    utf8::encode($p);
    ($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', $p, $codes[0]);
    is($rc, 1, "inspect --pin with $b->[1]: exit 1 (input, not usage)");
    is($out, "$codes[0]\tmalformed_pin\tkid=1\tserial=1000\n",
       '... malformed_pin');
    like($err, $b->[2], '... and stderr says what a PIN is');
}

my @badpinuse = (
    [['mint', '--pin'], qr/--pin needs --format csv/],
    [['mint', '--format', 'csv', '--pin-digits', 8],
     qr/--pin-digits needs --pin/],
    [['mint', '--format', 'csv', '--pin', '--pin-digits', 5],
     qr/--pin-digits "5": a PIN has 6\.\.12 digits/],
    [['mint', '--format', 'csv', '--pin', '--pin-digits', 13],
     qr/--pin-digits "13"/],
    [['mint', '--format', 'csv', '--pin', '--pin-digits', '8x'],
     qr/--pin-digits "8x"/],
    [['mint', '--format', 'csv', '--pin', '--pin-digits', ''],
     qr/--pin-digits ""/],
    [['mint', '--format', 'csv', '--pin=8'], qr/bad option/],
    [['inspect', '--pin', $pins[0], @codes[0, 1]],
     qr/--pin checks exactly one CODE/],
    [['inspect', '--pin', $pins[0], '-'], qr/--pin checks exactly one CODE/],
    [['inspect', '--pin', $pins[0], '--pin', $pins[0], $codes[0]],
     qr/one --pin only/],
    [['inspect', '--pin-digits', 8, $codes[0]], qr/--pin-digits needs --pin/],
    [['inspect', '--pin', $pins[0], '--pin-digits', 0, $codes[0]],
     qr/--pin-digits "0"/],
);
for my $b (@badpinuse) {
    my ($cmd, @args) = @{ $b->[0] };
    my @base = $cmd eq 'mint'
             ? ('--key', $key, '--kid', 1, '--from', 0, '--count', 1)
             : ('--key', $key);
    ($rc, $out, $err) = cr($cmd, @base, @args);
    is($rc, 2, "$cmd @args: usage error");
    like($err, $b->[1], '... says what is wrong');
    is($out, '', '... and prints nothing on stdout');
}

($rc, $out, $err) = cr('inspect', '--key', $key);
is($rc, 2, 'inspect without codes is a usage error');
($rc, $out, $err) = cr('inspect', '--kid', 1, $codes[0]);
is($rc, 2, 'inspect without --key is a usage error');

# --version (issue 24, item 3): debian/changelog's version, the one the
# packages carry (cr_version.h, shared with the module's build_info).
my ($deb) = read_file(root() . '/debian/changelog') =~ /\Acode-router \(([^)]+)\)/;
($rc, $out, $err) = cr('--version');
is($rc, 0, 'code-router --version: exit 0') or diag $err;
is($out, "code-router $deb\n", "... prints \"code-router $deb\", debian/changelog's version");
my ($hdr) = read_file(root() . '/ngx_code_router/core/cr_version.h') =~ /#define CR_VERSION\s+"([^"]+)"/;
is($hdr, $deb, '... cr_version.h holds the same version');
($rc, $out, $err) = cr('--help');
like($out, qr/^code-router --version/m, '--help names --version');
($rc, $out, $err) = run_cmd([root() . '/scripts/code-router-load', '--version']);
is($out, "code-router $deb\n", 'code-router-load --version: the same');

done_testing;
