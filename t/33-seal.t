#!/usr/bin/perl
# Sealed code packages (码包, docs/code-format.md "Sealed code packages"):
# keygen --printer's key pair (modes, no overwrite, each wrong kind of
# file refused by name); mint --seal-to and unseal give back mint's plain
# text byte for byte (codes, URLs, CSV with PINs, Digital Links), the
# manifest's count, serials and SHA-256 (computed here with Digest::SHA)
# right, inside and beside the package; and every package that is not
# sound for the key (another printer's, a flipped byte anywhere,
# truncated anywhere, records dropped or swapped, bytes after the end,
# empty, not a package) exits 1 with the reason and never leaves the
# whole text on stdout, nor any file at --out.  t/ref/unseal.py, a reader
# written from the document alone (PyNaCl), reads every package the same.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use CodeRouter::Test qw(cli run_cmd tmpdir make_key write_file read_file);

my $d = tmpdir();
chmod 0700, $d;
my $ref = "$FindBin::Bin/ref/unseal.py";
sub ref_unseal { my $in = shift; return run_cmd(['/usr/bin/python3', $ref, @_], $in) }
sub cr { return run_cmd([cli(), @_]) }
sub cr_in { my $in = shift; return run_cmd([cli(), @_], $in) }
sub mode { return (stat $_[0])[2] & 07777 }

my $master = make_key("$d/1.key");

# ---- keygen --printer -------------------------------------------------

my ($rc, $out, $err) = cr('keygen', '--printer', '--out', "$d/p");
is($rc, 0, 'keygen --printer writes a pair') or diag $err;
is(mode("$d/p.key"), 0600, 'PRINTER.key: mode 0600');
is(mode("$d/p.pub"), 0644, 'PRINTER.pub: mode 0644');
my $pub = read_file("$d/p.pub");
my $sec = read_file("$d/p.key");
like($pub, qr/\Acode-router printer public key v1 ([0-9a-f]{64})\n\z/,
     'the public key: one line, its hex');
my ($pkhex) = $pub =~ /([0-9a-f]{64})/;
like($sec, qr/\Acode-router printer secret key v1 \Q$pkhex\E [0-9a-f]{64}\n\z/,
     'the secret key: one line, the public key then the secret one');

{
    my $old = umask 077;
    ($rc, $out, $err) = cr('keygen', '--printer', '--out', "$d/u");
    umask $old;
    is($rc, 0, 'keygen --printer under umask 077');
    is(mode("$d/u.pub"), 0644, '... the public key still 0644');
    is(mode("$d/u.key"), 0600, '... the secret key 0600');
}

($rc, $out, $err) = cr('keygen', '--printer', '--out', "$d/p");
is($rc, 3, 'keygen --printer refuses to overwrite (exit 3)');
like($err, qr/refusing to overwrite a key/, '... and says so');
is(read_file("$d/p.key"), $sec, '... the secret key unchanged');
is(read_file("$d/p.pub"), $pub, '... the public key unchanged');

write_file("$d/half.pub", "x\n");
($rc, $out, $err) = cr('keygen', '--printer', '--out', "$d/half");
is($rc, 3, 'PRINTER.pub exists: refused');
ok(!-e "$d/half.key", '... and no PRINTER.key written');
write_file("$d/other.key", "y\n");
($rc, $out, $err) = cr('keygen', '--printer', '--out', "$d/other");
is($rc, 3, 'PRINTER.key exists: refused');
is(read_file("$d/other.key"), "y\n", '... it is unchanged');
ok(!-e "$d/other.pub", '... and no PRINTER.pub written');

for my $bad ("$d/x.key", "$d/x.pub") {
    ($rc, $out, $err) = cr('keygen', '--printer', '--out', $bad);
    is($rc, 2, "--printer --out $bad: usage (it names the pair)");
    like($err, qr/writes PRINTER\.key and PRINTER\.pub/, '... said');
}

cr('keygen', '--printer', '--out', "$d/q");        # another printer

# ---- the plain texts and their packages -------------------------------

my @runs = (
    ['codes with a URL prefix, 3000',
     '--kid', 1, '--from', 1000, '--count', 3000,
     '--url-prefix', 'HTTPS://C.BRAND.CN/'],
    ['codes alone, one', '--kid', 7, '--from', 1099511627775, '--count', 1],
    ['csv with PINs, 2000',
     '--kid', 2, '--from', 0, '--count', 2000, '--format', 'csv', '--pin',
     '--url-prefix', 'HTTPS://C.BRAND.CN/'],
    ['csv with 12-digit PINs and a Digital Link, 1500',
     '--kid', 3, '--from', 5, '--count', 1500, '--format', 'csv', '--pin',
     '--pin-digits', 12, '--url-prefix', 'https://id.brand.cn/',
     '--gtin', '12345670', '--lot', 'A1'],
    ['csv without PINs, 10000 (ten text records)',
     '--kid', 4, '--from', 77, '--count', 10000, '--format', 'csv',
     '--url-prefix', 'HTTPS://C.BRAND.CN/'],
);

my %pkg;
my $n = 0;
for my $run (@runs) {
    my ($name, @opts) = @$run;
    $n++;
    my %o;
    for my $i (0 .. $#opts) {
        $o{$opts[$i]} = $opts[$i + 1]
            if $opts[$i] =~ /^--(kid|from|count|format|pin-digits)$/;
    }
    my ($prc, $plain, $perr) = cr('mint', '--key', $master, @opts);
    is($prc, 0, "$name: mint") or diag $perr;

    ($rc, $out, $err) = cr('mint', '--key', $master, @opts,
                           '--seal-to', "$d/p.pub", '--out', "$d/pkg$n");
    is($rc, 0, "$name: mint --seal-to --out") or diag $err;
    is($out, '', '... nothing on stdout');
    is(mode("$d/pkg$n"), 0644, '... the package 0644');
    my @left = glob("$d/pkg$n.partial-*");
    is(scalar @left, 0, '... no partial file left');
    my $sealed = read_file("$d/pkg$n");
    unlike($sealed, qr/\Q${\ substr($plain, 0, 40)}\E/, '... the text is not in it');

    ($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/pkg$n");
    is($rc, 0, "$name: unseal --in") or diag $err;
    ok($out eq $plain, '... gives back mint\'s text byte for byte')
        or diag 'got ' . length($out) . ' bytes, want ' . length($plain);
    ($rc, $out, $err) = cr_in($sealed, 'unseal', '--key', "$d/p.key");
    ok($rc == 0 && $out eq $plain, '... and from stdin');

    # The manifest, beside the package and inside it.
    my $json = read_file("$d/pkg$n.manifest.json");
    is(mode("$d/pkg$n.manifest.json"), 0644, '... FILE.manifest.json 0644');
    my $m = eval { decode_json($json) };
    ok($m, '... FILE.manifest.json is JSON') or diag $@;
    my $csv = ($o{'--format'} // '') eq 'csv';
    my $lines = () = $plain =~ /\n/g;
    is($m->{package}, 'code-router sealed codes', '... what it is');
    is($m->{version}, 1, '... version 1');
    is($m->{printer}, $pkhex, '... the printer\'s public key');
    is($m->{kid}, $o{'--kid'}, '... key id');
    is($m->{from}, $o{'--from'}, '... from');
    is($m->{to}, $o{'--from'} + $o{'--count'} - 1, '... to');
    is($m->{count}, $o{'--count'}, '... count');
    is($m->{format}, $csv ? 'csv' : 'codes', '... format');
    is($m->{pin_digits}, (grep { $_ eq '--pin' } @opts)
                         ? $o{'--pin-digits'} // 8 : 0, '... PIN digits');
    is($m->{lines}, $lines, "... lines ($lines)");
    is($m->{lines}, $o{'--count'} + ($csv ? 1 : 0), '... the count and a CSV header');
    is($m->{bytes}, length $plain, '... bytes');
    is($m->{sha256}, sha256_hex($plain), '... SHA-256 (Digest::SHA) of the text');
    my ($prefix) = $plain =~ m{,?(https?://[^,\n]*/)[0-9A-Z]{18}}i;
    is($m->{url_prefix}, $prefix // '', '... the URL prefix');

    ($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/pkg$n",
                           '--manifest');
    is($rc, 0, '... unseal --manifest');
    ok($out eq $json, '... prints FILE.manifest.json byte for byte');

    # The document's reader agrees: the text, and the manifest's JSON.
    ($rc, $out, $err) = ref_unseal($sealed, "$d/p.key");
    ok($rc == 0 && $out eq $plain, '... t/ref/unseal.py reads the same text')
        or diag $err;
    ($rc, $out, $err) = ref_unseal($sealed, "$d/p.key", '--manifest');
    ok($rc == 0 && $out eq $json, '... and the same manifest JSON') or diag $err;

    # The size the layout gives: header, manifest record, text records.
    my $recs = int((length($plain) + 65535) / 65536);
    is(length $sealed, 144 + (4 + 62 + length($m->{url_prefix}) + 17)
                       + 4 * $recs + length($plain) + 17 * $recs,
       "... $recs text records of 64 KiB, as the layout says");

    $pkg{$n} = [$sealed, $plain, $name];
}

# Sealed to stdout; a fresh key every package.
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 1000,
                       '--count', 3000, '--url-prefix', 'HTTPS://C.BRAND.CN/',
                       '--seal-to', "$d/p.pub");
is($rc, 0, 'mint --seal-to to stdout');
is(length $out, length $pkg{1}[0], '... the same size as with --out');
isnt(substr($out, 40, 80), substr($pkg{1}[0], 40, 80), '... another stream key');
ok($out ne $pkg{1}[0], '... another package');
my ($urc, $uout) = cr_in($out, 'unseal', '--key', "$d/p.key");
ok($urc == 0 && $uout eq $pkg{1}[1], '... the same text');

# unseal --out: whole, 0600, never over a file.
($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/pkg3",
                       '--out', "$d/plain3");
is($rc, 0, 'unseal --out');
is($out, '', '... nothing on stdout');
is(mode("$d/plain3"), 0600, '... FILE 0600');
ok(read_file("$d/plain3") eq $pkg{3}[1], '... holds the text');
($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/pkg1",
                       '--out', "$d/plain3");
is($rc, 3, '... refuses an existing FILE (exit 3)');
like($err, qr/exists: refusing to overwrite it/, '... and says so');
ok(read_file("$d/plain3") eq $pkg{3}[1], '... which is unchanged');

# mint --out never overwrites, the package nor its manifest.
my $before = read_file("$d/pkg1");
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 0,
                       '--count', 5, '--seal-to', "$d/p.pub", '--out', "$d/pkg1");
is($rc, 3, 'mint --out over a package: refused (exit 3)');
like($err, qr/"\Q$d\E\/pkg1" exists: refusing to overwrite it/, '... said');
is(read_file("$d/pkg1"), $before, '... the package unchanged');
write_file("$d/lone.manifest.json", "{}\n");
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 0,
                       '--count', 5, '--seal-to', "$d/p.pub", '--out', "$d/lone");
is($rc, 3, 'mint --out where FILE.manifest.json exists: refused');
ok(!-e "$d/lone", '... no package written');
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 0,
                       '--count', 5, '--out', "$d/plain-out");
is($rc, 0, 'mint --out, plain');
is(mode("$d/plain-out"), 0600, '... mode 0600 (the text is worth the key)');
ok(!-e "$d/plain-out.manifest.json", '... no manifest for plain text');
is(read_file("$d/plain-out"), (cr('mint', '--key', $master, '--kid', 1,
                                  '--from', 0, '--count', 5))[1],
   '... the text mint prints');

# ---- wrong kinds of key file ------------------------------------------

my $pkgfile = "$d/pkg1";
write_file("$d/pkg-as-key", $pkg{2}[0], 0600);
my @kinds = (
    ['a master key to --seal-to',
     ['mint', '--key', $master, '--kid', 1, '--from', 0, '--count', 1,
      '--seal-to', $master, '--out', "$d/never"],
     qr/is 32 bytes without a printer key's first line: a master key .*not a printer's public key/],
    ['a printer\'s secret key to --seal-to',
     ['mint', '--key', $master, '--kid', 1, '--from', 0, '--count', 1,
      '--seal-to', "$d/p.key", '--out', "$d/never"],
     qr/is a printer's secret key: seal to its public key, the \.pub file/],
    ['a package to --seal-to',
     ['mint', '--key', $master, '--kid', 1, '--from', 0, '--count', 1,
      '--seal-to', $pkgfile, '--out', "$d/never"],
     qr/is a sealed code package .*not a printer's public key/],
    ['a master key to unseal --key',
     ['unseal', '--key', $master, '--in', $pkgfile],
     qr/is 32 bytes without a printer key's first line: a master key .*not a printer's secret key/],
    ['a public key to unseal --key',
     ['unseal', '--key', "$d/p.pub", '--in', $pkgfile],
     qr/is a printer's public key: opening a package needs the secret key/],
    ['a package to unseal --key',
     ['unseal', '--key', "$d/pkg-as-key", '--in', $pkgfile],
     qr/is a sealed code package .*not a printer's secret key/],
    ['a printer\'s secret key to mint --key',
     ['mint', '--key', "$d/p.key", '--kid', 1, '--from', 0, '--count', 1],
     qr/p\.key" is a printer's secret key \(code-router keygen --printer\), not a master key/],
    ['a printer\'s public key to mint --key',
     ['mint', '--key', "$d/p.pub", '--kid', 1, '--from', 0, '--count', 1],
     qr/is a printer's public key \(code-router keygen --printer\), not a master key/],
    ['a printer\'s secret key to inspect --key',
     ['inspect', '--key', "$d/p.key", '81GXV8ACBPGA6JRE9N'],
     qr/is a printer's secret key .*not a master key/],
    ['a package to mint --key',
     ['mint', '--key', "$d/pkg-as-key", '--kid', 1, '--from', 0, '--count', 1],
     qr/is a sealed code package .*not a master key/],
);
for my $k (@kinds) {
    my ($name, $cmd, $re) = @$k;
    ($rc, $out, $err) = cr(@$cmd);
    is($rc, 3, "$name: refused (exit 3)");
    like($err, $re, '... saying what the file is') or diag $err;
    is($out, '', '... nothing on stdout');
}
ok(!-e "$d/never", 'no package written by a refused --seal-to');

# The secret key is kept as a master key is.
write_file("$d/loose.key", $sec, 0644);
($rc, $out, $err) = cr('unseal', '--key', "$d/loose.key", '--in', $pkgfile);
is($rc, 3, 'a printer\'s secret key of mode 0644: refused');
like($err, qr/has mode 0644: group and others must have no access/, '... why');
mkdir "$d/open";
chmod 0777, "$d/open";
write_file("$d/open/p.key", $sec, 0600);
($rc, $out, $err) = cr('unseal', '--key', "$d/open/p.key", '--in', $pkgfile);
is($rc, 3, '... one in a directory others can write: refused');
like($err, qr/group and others must not be able to write where a key is kept/, '... why');
(my $damaged = $sec) =~ s/ ([0-9a-f])([0-9a-f]{63})\n\z/" " . ($1 eq '0' ? '1' : '0') . "$2\n"/e;
write_file("$d/damaged.key", $damaged, 0600);
($rc, $out, $err) = cr('unseal', '--key', "$d/damaged.key", '--in', $pkgfile);
is($rc, 3, 'a secret key with one digit changed: refused');
like($err, qr/is damaged: its public key is not its secret key's/, '... why');
write_file("$d/short.key", substr($sec, 0, 100) . "\n", 0600);
($rc, $out, $err) = cr('unseal', '--key', "$d/short.key", '--in', $pkgfile);
is($rc, 3, 'a cut secret key: refused');
like($err, qr/is damaged: a printer's secret key is one line of 164 bytes/, '... why');
(my $v2 = $pub) =~ s/ v1 / v2 /;
write_file("$d/v2.pub", $v2);
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 0,
                       '--count', 1, '--seal-to', "$d/v2.pub", '--out', "$d/never");
is($rc, 3, 'a public key of version 2: refused');
like($err, qr/of a version this code-router does not read/, '... why');
write_file("$d/zero.pub", "code-router printer public key v1 " . ('0' x 64) . "\n");
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 0,
                       '--count', 1, '--seal-to', "$d/zero.pub", '--out', "$d/never");
is($rc, 3, 'an all-zero public key: refused');
like($err, qr/not a usable public key/, '... why');
is(scalar(() = glob("$d/never*")), 0, '... nothing left behind');

# ---- packages that are not sound for this key -------------------------

# Refused, exit 1, with a message; what reached stdout is never the whole
# text (a prefix of it at most); with --out no file appears.
sub refused {
    my ($name, $bytes, $plain, $re, $key) = @_;
    my ($rc, $out, $err) = cr_in($bytes, 'unseal', '--key', $key // "$d/p.key");
    is($rc, 1, "$name: exit 1");
    like($err, $re // qr/^code-router unseal: \S/, '... with the reason');
    ok(length($out) < length($plain) && $out eq substr($plain, 0, length $out),
       '... stdout a part of the text at most, never all of it');
}

my ($sealed, $plain) = @{ $pkg{5} };     # ten text records
refused('another printer\'s key', $sealed, $plain,
        qr/sealed to another printer's key \(public key \Q${\ substr($pkhex, 0, 16)}\E\.\.\.\)/,
        "$d/q.key");
refused('empty input', '', $plain, qr/empty input: not a sealed code package/);
refused('garbage', "hello\n", $plain, qr/not a sealed code package \(it does not start with "CRSEAL"\)/);
refused('the plain text', $plain, $plain, qr/not a sealed code package/);
refused('the manifest', read_file("$d/pkg5.manifest.json"), $plain, qr/not a sealed code package/);
refused('a master key', read_file($master) . ('x' x 200), $plain, qr/not a sealed code package/);
refused('random bytes after the magic', 'CRSEAL' . join('', map { chr int rand 256 } 1 .. 5000),
        $plain, qr/sealed code package of version|another printer/);

# The records' offsets, as docs/code-format.md lays them out.
my @rec;
for (my $off = 144; $off < length $sealed; ) {
    my $len = unpack 'N', substr($sealed, $off, 4);
    push @rec, [$off, 4 + $len + 17];
    $off += 4 + $len + 17;
}
my $last = $#rec;
is($last, int((length($plain) + 65535) / 65536),
   "the package: a manifest record and $last text records");
is($rec[-1][0] + $rec[-1][1], length $sealed, '... ending at the end of the file');

# A flipped bit in every header byte, every record's length, tag and
# first and last bytes, and 100 random places.
srand(33);
my @at = (0 .. 143);
for my $r (@rec) {
    my ($o, $l) = @$r;
    push @at, $o .. $o + 4, $o + 5, $o + int($l / 2), $o + $l - 17, $o + $l - 1;
}
push @at, map { int rand length $sealed } 1 .. 100;
my %seen;
@at = grep { !$seen{$_}++ } sort { $a <=> $b } @at;
my $bad = 0;
for my $i (@at) {
    my $b = $sealed;
    substr($b, $i, 1) = chr(ord(substr($b, $i, 1)) ^ (1 << ($i % 8)));
    my ($rc, $out, $err) = cr_in($b, 'unseal', '--key', "$d/p.key");
    unless ($rc == 1 && $err =~ /^code-router unseal: \S/
            && length($out) < length($plain)
            && $out eq substr($plain, 0, length $out))
    {
        $bad++;
        diag "byte $i: exit $rc, " . length($out) . " bytes out, $err";
    }
}
is($bad, 0, scalar(@at) . ' flipped bytes (every header byte, each record\'s '
            . 'length, ends and middle, 100 random): each refused, exit 1');
$bad = 0;
for my $i (grep { $_ % 7 == 0 } @at) {
    my $b = $sealed;
    substr($b, $i, 1) = chr(ord(substr($b, $i, 1)) ^ (1 << ($i % 8)));
    my ($rc, $out, $err) = ref_unseal($b, "$d/p.key");
    $bad++, diag "t/ref/unseal.py, byte $i: exit $rc, $err" if $rc != 1 || $out ne '';
}
is($bad, 0, '... and by t/ref/unseal.py too (every seventh)');

# The messages by place.
my %where = (
    0 => qr/not a sealed code package/,
    6 => qr/a sealed code package of version 257: this code-router reads version 1/,
    8 => qr/sealed to another printer's key/,
    40 => qr/the package key \(bytes 40\.\.119\) does not open with this printer key/,
    120 => qr/record 0 \(at byte 144\) fails authentication/,
    146 => qr/record 0 \(at byte 144\) fails authentication/,
    $rec[3][0] + 100 =>
        qr/record 3 \(at byte $rec[3][0]\) fails authentication: the package is damaged/,
    $rec[3][0] =>
        qr/record 3 \(at byte $rec[3][0]\) says it holds \d+ bytes, more than a record may/,
);
for my $i (sort { $a <=> $b } keys %where) {
    my $b = $sealed;
    substr($b, $i, 1) = chr(ord(substr($b, $i, 1)) ^ 1);
    refused("byte $i flipped", $b, $plain, $where{$i});
}

# Truncated anywhere: in the header, at and inside every record.
my @cut = (1, 5, 6, 100, 143, 144, 146);
push @cut, $_->[0], $_->[0] + 2, $_->[0] + 4, $_->[0] + int($_->[1] / 2),
           $_->[0] + $_->[1] - 1 for @rec;
$bad = 0;
for my $c (@cut) {
    my ($rc, $out, $err) = cr_in(substr($sealed, 0, $c), 'unseal', '--key', "$d/p.key");
    unless ($rc == 1 && $err =~ /truncated: it ends /
            && length($out) < length($plain)
            && $out eq substr($plain, 0, length $out))
    {
        $bad++;
        diag "cut at $c: exit $rc, " . length($out) . " bytes out, $err";
    }
}
is($bad, 0, scalar(@cut) . ' truncations (header, at and inside each record): '
            . 'each refused as truncated, exit 1');
$bad = 0;
for my $c (@cut) {
    my ($rc, $out, $err) = ref_unseal(substr($sealed, 0, $c), "$d/p.key");
    $bad++, diag "t/ref/unseal.py, cut at $c: exit $rc, $err" if $rc != 1 || $out ne '';
}
is($bad, 0, '... and by t/ref/unseal.py too');
refused('cut inside the header', substr($sealed, 0, 100), $plain,
        qr/truncated: it ends inside the header, after 100 of its 144 bytes/);
refused('cut after the header', substr($sealed, 0, 144), $plain,
        qr/truncated: it ends after the header, before the manifest/);
refused('cut before the final record', substr($sealed, 0, $rec[-1][0]), $plain,
        qr/it ends after record ${\ ($last - 1)} \(at byte $rec[-1][0]\), before the final/);
refused('cut inside the final record', substr($sealed, 0, length($sealed) - 1), $plain,
        qr/truncated: it ends inside record $last \(at byte $rec[-1][0]\)/);

# Records dropped, swapped, repeated: the stream's order is authenticated.
my @r = map { substr($sealed, $_->[0], $_->[1]) } @rec;
my $head = substr($sealed, 0, 144);
refused('a text record dropped', join('', $head, @r[0, 1, 2, 4 .. $last]), $plain,
        qr/record 3 .* fails authentication/);
refused('two text records swapped', join('', $head, @r[0, 2, 1, 3 .. $last]), $plain,
        qr/record 1 .* fails authentication/);
refused('a text record repeated', join('', $head, @r[0, 1, 1, 2 .. $last]), $plain,
        qr/record 2 .* fails authentication/);
refused('the final record dropped', join('', $head, @r[0 .. $last - 1]),
        $plain, qr/truncated: it ends after record ${\ ($last - 1)}/);
refused('the manifest of another package',
        join('', substr($pkg{1}[0], 0, 144 + 4 + 62 + 19 + 17), @r[1 .. $last]),
        $plain, qr/record 1 .* fails authentication/);

# Bytes after the end: the whole text may be out, but exit 1 says no.
for my $t (['a byte', "\n"], ['a second package', $sealed]) {
    my ($rc, $out, $err) = cr_in($sealed . $t->[1], 'unseal', '--key', "$d/p.key");
    is($rc, 1, "$t->[0] after the final record: exit 1");
    like($err, qr/after the final record \(at byte ${\ length $sealed}\): not part of a/,
         '... says so');
    like($err, qr/; discard the text written before it$/, '... and to discard the text');
}

# --out: an error leaves no file, nor a partial one.
my $cutpkg = substr($sealed, 0, $rec[4][0] + 10);
write_file("$d/cut.pkg", $cutpkg);
($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/cut.pkg",
                       '--out', "$d/cut.txt");
is($rc, 1, 'unseal --out of a truncated package: exit 1');
like($err, qr/truncated/, '... truncated');
unlike($err, qr/discard/, '... nothing to discard: nothing was written');
ok(!-e "$d/cut.txt", '... no FILE');
is(scalar(() = glob("$d/cut.txt*")), 0, '... nor a partial one');
($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/cut.pkg",
                       '--manifest');
is($rc, 1, 'unseal --manifest of a truncated package: exit 1');
is($out, '', '... no manifest printed: it is printed only once all is verified');

# ---- usage -----------------------------------------------------------

($rc, $out, $err) = cr_in($sealed, 'unseal');
is($rc, 2, 'unseal without --key: usage');
like($err, qr/--key PRINTER\.key is required/, '... said');
($rc, $out, $err) = cr_in($sealed, 'unseal', '--key', "$d/p.key", "$d/pkg1");
is($rc, 2, 'unseal with a file argument: usage (--in FILE)');
like($err, qr/unexpected argument .* --in FILE/, '... said');
($rc, $out, $err) = cr('unseal', '--key', "$d/p.key", '--in', "$d/nowhere");
is($rc, 3, 'unseal --in a missing file: exit 3');
like($err, qr/cannot open "\Q$d\E\/nowhere"/, '... said');
($rc, $out, $err) = cr('unseal', '--key', "$d/nokey", '--in', "$d/pkg1");
is($rc, 3, 'unseal --key a missing file: exit 3');
($rc, $out, $err) = cr('mint', '--key', $master, '--kid', 1, '--from', 0,
                       '--count', 1, '--seal-to', "$d/nowhere.pub");
is($rc, 3, 'mint --seal-to a missing file: exit 3');
like($err, qr/--seal-to: printer key file "\Q$d\E\/nowhere\.pub": cannot open/, '... said');

done_testing;
