#!/usr/bin/perl
# Reading counts.  `code-router scans --store FILE`
# lists the scan store nginx's workers wrote (scans and right PINs, one
# row a code); `--key FILE --kid N CODE...` looks codes (or their printed
# URLs) up; `stat` of a scan store says what it is, where it said "not a
# code-router store".  The store is written by a real nginx.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(cli run_cmd make_key mint write_file);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
my $store = "$d/scans/scans.mdb";
sub cr { return run_cmd([cli(), @_]) }

my $t = CodeRouter::Test::Nginx->new(http => verify_conf(dir => $d, key => $key));
$t->start;
my @code = map { mint($key, 1, $_) } 5, 6, 7;
is($t->get("/$code[0]")->{status}, 302, 'a scan of serial 5') for 1 .. 3;
$t->get("/$code[1]");
is(json_of(post_pin($t, "/v1/codes/$code[0]/verify", pin_of($key, 1, 5), '192.0.2.1'))->{verification},
   'genuine', 'a right PIN of serial 5');
json_of(post_pin($t, "/v1/codes/$code[0]/verify", pin_of($key, 1, 5), '192.0.2.2'));
# Counts reach the store within a flush (1 s): wait for them.
my ($rc, $out, $err);
for (1 .. 50) {
    ($rc, $out, $err) = cr('scans', '--store', $store);
    last if $rc == 0 && $out =~ /,5,3,.*,2,/ && $out =~ /,6,1,/;
    sleep 0.2;
}
is($rc, 0, 'scans --store lists the store beside a running nginx') or diag $err;
my @rows = split /\n/, $out;
is($rows[0], 'key,kid,serial,scans,first_scan,verified,first_verified', '... a CSV header');
is(scalar @rows, 3, '... a row a code (5 and 6), the PINs beside the scans') or diag $out;
like($rows[1], qr/^[0-9a-f]{16},1,5,3,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,2,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     '... serial 5: 3 scans, 2 right PINs, first times in UTC') or diag $out;
like($rows[2], qr/^[0-9a-f]{16},1,6,1,\S+Z,0,$/, '... serial 6: 1 scan, never verified') or diag $out;
my ($fp) = $rows[1] =~ /^([0-9a-f]{16}),/;

($rc, $out, $err) = cr('scans', '--store', $store, '--key', $key, '--kid', 1,
                       $code[0], lc "https://c.brand.cn/$code[1]", $code[2]);
is($rc, 0, 'scans --key --kid CODE...: exit 0') or diag $err;
@rows = split /\n/, $out;
is($rows[0], 'code,key,kid,serial,scans,first_scan,verified,first_verified', '... its header');
like($rows[1], qr/^\Q$code[0]\E,$fp,1,5,3,\S+Z,2,\S+Z$/, '... serial 5 by its code');
like($rows[2], qr/^\Q$code[1]\E,$fp,1,6,1,\S+Z,0,$/, '... serial 6 by its printed URL (lower case too), the code canonical');
is($rows[3], "$code[2],$fp,1,7,0,,0,", '... serial 7, never scanned: zeros');

my $forged = substr($code[0], 0, 17) . (substr($code[0], 17) eq 'A' ? 'B' : 'A');
($rc, $out, $err) = cr('scans', '--store', $store, '--key', $key, '--kid', 1, $forged, $code[0]);
is($rc, 1, 'a forged code among them: exit 1');
like($err, qr/^code-router scans: "\Q$forged\E": forged$/m, '... named on stderr');
like($out, qr/^\Q$code[0]\E,/m, '... the genuine one still printed');
my $k2 = make_key("$d/2.key");
($rc, $out, $err) = cr('scans', '--store', $store, '--key', $k2, '--kid', 1, $code[0]);
is($rc, 1, 'a code looked up under another brand\'s key: exit 1 (forged)');

for my $bad ([], ['--store'], ['--store', $store, $code[0]], ['--store', $store, '--key', $key, $code[0]],
             ['--store', $store, '--key', $key, '--kid', 1], ['--store', $store, '--kid', 300, '--key', $key, $code[0]]) {
    ($rc, $out, $err) = cr('scans', @$bad);
    is($rc, 2, "scans @$bad: usage, exit 2") or diag $err;
}
($rc, $out, $err) = cr('scans', '--store', "$d/brand.mdb");
ok($rc == 3 && $err =~ /is another LMDB database \(a binding store\?\), not a scan store/,
   'scans of a binding store: exit 3, says what it is') or diag $err;
($rc, $out, $err) = cr('scans', '--store', "$d/none.mdb");
ok($rc == 3 && $err =~ /No such file/ && !-e "$d/none.mdb", '... of a missing file: exit 3, nothing created') or diag $err;

# ---- stat of a scan store ----------------------------------------------

($rc, $out, $err) = cr('stat', '--db', $store);
is($rc, 0, 'stat of a scan store: exit 0') or diag $err;
unlike($err, qr/not a code-router store/, '... no longer "not a code-router store"');
like($out, qr/^kind +scan store \(code_router_scans; its records: code-router scans --store \Q$store\E\)$/m,
     '... says it is a scan store, and how to read it');
like($out, qr/^version +2$/m, '... its version');
like($out, qr/^scanned +2 codes$/m, '... 2 codes scanned');
like($out, qr/^verified +1 codes$/m, '... 1 verified');
like($out, qr/^readers +\d+ of \d+$/m, '... reader slots');
($rc, $out) = cr('stat', '--db', "$d/brand.mdb");
like($out, qr/^schema /m, 'stat of the binding store is as before');
write_file("$d/junk.mdb", "x" x 10000);
($rc, $out, $err) = cr('stat', '--db', "$d/junk.mdb");
ok($rc == 3 && $err =~ /not a code-router store|not an LMDB file/, 'stat of junk: still an error') or diag $err;

$t->stop;
done_testing;
