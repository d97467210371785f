#!/usr/bin/perl
# code-router mint --gtin [--lot] prints GS1 Digital Link URLs (upper case,
# GTIN-14, lot encoded, the code as AI 21) and inspect reads them back:
# GTIN, lot, the code's verdict; a bad link and a link without AI 21 are
# named.  Every option error has its message and exit code 2.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli run_cmd tmpdir make_key mint);

my $d = tmpdir();
my $key = make_key("$d/brand.key");
sub cr { return run_cmd([cli(), @_]) }
my @base = ('mint', '--key', $key, '--kid', 1, '--from', 1000);

my ($rc, $out, $err) = cr(@base, '--count', 2, '--url-prefix',
                          'https://c.brand.cn/', '--gtin', '6901234567892',
                          '--lot', 'L2612');
is($rc, 0, 'mint --gtin --lot') or diag $err;
my @codes = (mint($key, 1, 1000), mint($key, 1, 1001));
is($out, join('', map { "HTTPS://C.BRAND.CN/01/06901234567892/10/L2612/21/$_\n" }
                  @codes),
   'URL/01/GTIN-14/10/LOT/21/CODE, scheme and host upper-cased, one /');
is($err, '', 'all in QR alphanumeric mode: no note');

($rc, $out, $err) = cr(@base, '--count', 1, '--url-prefix', 'http://x.cn',
                       '--gtin', '95011011');
is($out, "HTTP://X.CN/01/00000095011011/21/$codes[0]\n",
   'a GTIN-8 zero-padded, no lot');

($rc, $out, $err) = cr(@base, '--count', 1, '--url-prefix',
                       'https://c.brand.cn/p', '--gtin', '06901234567892',
                       '--lot', 'a/1!', '--format', 'csv', '--pin');
is($rc, 0, 'csv with --pin');
like($out, qr{^serial,code,url,pin\n1000,$codes[0],HTTPS://C\.BRAND\.CN/p/01/06901234567892/10/a%2F1%21/21/$codes[0],\d{8}\n\z},
     'a stem and a lot keep their case; the lot percent-encoded, upper-case hex');
like($err, qr/note: 'p' .* outside QR alphanumeric mode/,
     'a note names the first character outside QR alphanumeric mode');

for my $case (
    [ ['--url-prefix', 'https://x.cn', '--gtin', '6901234567893'],
      qr/--gtin "6901234567893": not a GTIN-8, -12, -13 or -14 with a correct check digit/ ],
    [ ['--url-prefix', 'https://x.cn', '--gtin', '690123456789'],
      qr/--gtin "690123456789": not a GTIN/ ],
    [ ['--url-prefix', 'https://x.cn', '--gtin', '6901234567892',
       '--lot', '123456789012345678901'], qr/--lot "1234.*": 1\.\.20 characters of GS1's set/ ],
    [ ['--url-prefix', 'https://x.cn', '--gtin', '6901234567892',
       '--lot', 'A B'], qr/--lot "A B": 1\.\.20/ ],
    [ ['--url-prefix', 'https://x.cn', '--gtin', '6901234567892',
       '--lot', ''], qr/--lot "": 1\.\.20/ ],
    [ ['--url-prefix', 'https://x.cn/a b', '--gtin', '6901234567892'],
      qr/does not make a GS1 Digital Link.*RFC 3986/ ],
    [ ['--url-prefix', 'ftp://x.cn', '--gtin', '6901234567892'],
      qr/does not make a GS1 Digital Link.*http/ ],
    [ ['--url-prefix', 'https://x.cn?a=b', '--gtin', '6901234567892'],
      qr/does not make a GS1 Digital Link/ ],
    [ ['--gtin', '6901234567892'], qr/--gtin needs --url-prefix/ ],
    [ ['--url-prefix', 'https://x.cn', '--lot', 'L1'], qr/--lot needs --gtin/ ],
) {
    ($rc, $out, $err) = cr(@base, '--count', 1, @{ $case->[0] });
    is($rc, 2, "@{ $case->[0] }: exit 2");
    like($err, $case->[1], '... says why');
    is($out, '', '... prints no URL');
}

# inspect
my $url = "HTTPS://C.BRAND.CN/01/06901234567892/10/L2612/21/$codes[0]";
($rc, $out, $err) = cr('inspect', '--key', $key, $url, "$url?linkType=gs1:pip",
                       lc $url);
is($rc, 0, 'inspect a Digital Link');
my @lines = split /\n/, $out;
is($lines[0], "$codes[0]\tok\tkid=1\tserial=1000\tgtin=06901234567892\tlot=L2612",
   'the code is AI 21; GTIN and lot follow the verdict');
is($lines[1], $lines[0], 'a query is no part of the code');
is($lines[2], lc("$codes[0]") . "\tok\tkid=1\tserial=1000\tgtin=06901234567892\tlot=l2612",
   'lower case: the code still verifies, the lot is case-sensitive');

($rc, $out, $err) = cr('inspect', '--key', $key,
                       'https://c.brand.cn/01/06901234567892/10/L2612');
is($rc, 1, 'a Digital Link without AI 21: exit 1');
is($out, "https://c.brand.cn/01/06901234567892/10/L2612\tno_serial\tgtin=06901234567892\n",
   '... no_serial');
($rc, $out, $err) = cr('inspect', '--key', $key,
                       "https://c.brand.cn/01/6901234567892/21/$codes[0]");
is($rc, 1, 'a 13-digit GTIN: exit 1');
like($out, qr/\tbad_uri\tgtin_digits\n\z/, '... bad_uri gtin_digits');
like($err, qr/not a valid GS1 Digital Link: the GTIN is not 14 digits/,
     '... and says why');
($rc, $out, $err) = cr('inspect', '--key', $key,
                       "https://c.brand.cn/01/06901234567892/21/X/10/L1");
like($out, qr/\tbad_uri\tqualifier_order\n\z/, 'qualifiers out of order');
my $forged = $codes[0];
substr($forged, -1, 1) = substr($forged, -1) eq '0' ? '1' : '0';
($rc, $out, $err) = cr('inspect', '--key', $key,
                       "https://c.brand.cn/01/06901234567892/21/$forged");
is($out, "$forged\tforged\tkid=1\tgtin=06901234567892\n",
   'a forged serial: forged, with the GTIN');
($rc, $out, $err) = cr('inspect', '--key', $key, "https://c.brand.cn/$codes[1]");
is($out, "$codes[1]\tok\tkid=1\tserial=1001\n",
   'a plain URL: its last segment, as before');
($rc, $out, $err) = cr('inspect', '--key', $key, '--pin', '00000000', $url);
like($out, qr/^$codes[0]\twrong_pin\tkid=1\tserial=1000\tgtin=06901234567892\tlot=L2612\n\z/,
     '--pin with a Digital Link');

done_testing;
