#!/usr/bin/perl
# The marketer's loader: one run shows all that is wrong (every
# error of a row, not only its first; still nothing half-applied); Excel's
# dates for production_date; a GTIN Excel wrote as 6.90123E+12 is told to
# format the column as text; a UTF-8 byte order mark makes a file UTF-8
# whatever --encoding says, with one hint for GBK bytes behind it; a code
# column takes the printed URL, as inspect does.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Encode ();
use CodeRouter::Test qw(cli run_cmd tmpdir write_file make_key mint);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $d = tmpdir();
my $db = "$d/brand.mdb";
my $key = make_key("$d/1.key");

sub cr { return run_cmd([cli(), @_]) }
sub load { return cr('load', '--db', $db, @_) }
sub u8 { Encode::encode('UTF-8', $_[0]) }
sub gbk { Encode::encode('gbk', $_[0]) }
sub file { write_file("$d/$_[0]", $_[1]) }
sub dump_db { my (undef, $out) = cr('dump', '--db', $db); Encode::decode('UTF-8', $out) }
sub generation {
    my (undef, $out) = cr('stat', '--db', $db);
    return $out =~ /^generation\s+(\d+)/m ? $1 : -1;
}
# The messages of one line of a file.
sub of_line {
    my ($err, $f, $l) = @_;
    return grep { /^\Q$f\E:$l: / } split /\n/, $err;
}

my ($rc, $out, $err) = load(file('base.csv',
    "campaign,type,url\nbase,h5,https://shop.example/\n"
    . "\nbatch,kid,serial_from,serial_to,scene,campaign\n"
    . "held,1,100,199,verify,base\n"));
is($rc, 0, 'a first load') or diag $err;
my $g0 = generation();

# ---- every error of a row ---------------------------------------------

my $camp = file('camp.csv', "campaign,name,type,url,appid,starts_at,ends_at,tz,delete\n"
    . "bad id!,Name,h5,https://shop.example/a,,,,,\n"
    . "c1,\"a\x01b\",web,ftp://x,wx12,2026/12/1 25:00,2026-13-01T00:00:00Z,+25:00,maybe\n"
    . "c2,Fine,h5,https://shop.example/2,,2026-12-02T00:00:00Z,2026-12-01T00:00:00Z,,\n"
    . "c3,Good,h5,https://shop.example/3,,,,,\n");
($rc, $out, $err) = load($camp);
is($rc, 1, 'a campaign file with many errors: exit 1');
my @l2 = of_line($err, $camp, 2);
is(scalar @l2, 1, 'a bad id is reported...') or diag $err;
my @l3 = of_line($err, $camp, 3);
my @want3 = ('delete: "maybe" must be empty or "yes"', 'type: "web" must be miniprogram',
             'name: ".*" holds a control character', 'tz: "\+25:00" must be a zone',
             'starts_at: "2026/12/1 25:00" is not a real time of day', 'ends_at: "2026-13-01T00:00:00Z"');
for my $w (@want3) {
    ok((grep { /: $w/ } @l3), "line 3 reports $w") or diag $err;
}
ok(@l3 >= @want3, '... every error of line 3 in one run (' . scalar(@l3) . ' messages)');
like($err, qr/^\Q$camp\E:4: ends_at must be later than starts_at$/m, 'line 4: ends before it starts');
is(scalar of_line($err, $camp, 5), 0, '... the good row has no error');
is(generation(), $g0, '... nothing committed, not even the good row');
unlike(dump_db(), qr/^c3,/m, '... c3 is not in the store');

my $bat = file('bat.csv', "batch,kid,serial_from,serial_to,scene,campaign,gtin,production_date,region,dealer\n"
    . "b1,1,150,250,verify,nowhere,6901234567891,2026/2/30,\"a b\",\"d 1\"\n"
    . "b2,x,5,1,nope,base,12345,2026-11-20,CN,\n"
    . "b3,1,10,1,trace,base,,,,\n");
($rc, $out, $err) = load($bat);
is($rc, 1, 'a batch file with many errors: exit 1');
my @b2 = of_line($err, $bat, 2);
for my $w ('gtin: "6901234567891" has a wrong check digit', 'production_date: "2026/2/30" is not a real date',
           'region: "a b" may not hold spaces', 'dealer: "d 1" may not hold spaces',
           'batch "b1" \(key id 1, serials 150 to 250\) overlaps batch "held"',
           'campaign: unknown campaign "nowhere"') {
    ok((grep { /: $w/ } @b2), "line 2 reports $w") or diag $err;
}
is(scalar @b2, 6, '... six errors on line 2, one run') or diag $err;
my @b3 = of_line($err, $bat, 3);
for my $w ('kid: "x" must be a whole number', 'scene: "nope" must be', 'gtin: "12345" must be 8, 12, 13 or 14 digits') {
    ok((grep { /: $w/ } @b3), "line 3 reports $w") or diag $err;
}
like($err, qr/^\Q$bat\E:4: serial_to 1 is below serial_from 10$/m, 'line 4: a reversed range');
is(generation(), $g0, '... nothing committed');

my $codes = file('codes.csv', "kid,serial,state,campaign,delete\n"
    . "1,x,gone,base,perhaps\n" . "300,5,revoked,base,\n");
($rc, $out, $err) = load($codes);
my @c2 = of_line($err, $codes, 2);
for my $w ('serial: "x" must be a whole number', 'delete: "perhaps"', 'state: "gone" must be revoked or campaign') {
    ok((grep { /: $w/ } @c2), "a code row reports $w") or diag $err;
}
ok((grep { /kid: "300"/ } of_line($err, $codes, 3)) && (grep { /campaign: must be empty when state is revoked/ } of_line($err, $codes, 3)),
   '... and a second row both of its errors') or diag $err;

my $links = file('links.csv', "gtin,link_type,href,lang,title\n"
    . "6901234567892,gs1:pip,http://x,xx-!!,\"t\x02\"\n");
($rc, $out, $err) = load($links);
my @k2 = of_line($err, $links, 2);
ok((grep { /href: / } @k2) && (grep { /lang: / } @k2) && (grep { /title: / } @k2),
   'a link row: lang, href and title reported together') or diag $err;

# GBK bytes and other errors in one row: both reported, the field once.
my $mixed = file('mixed.csv', "campaign,name,type,url\n" . 'm1,' . gbk('专业') . ",web,https://shop.example/m\n");
($rc, $out, $err) = load($mixed);
my @m2 = of_line($err, $mixed, 2);
ok((grep { /name: ".*" holds U\+05E8/ } @m2) && (grep { /type: "web"/ } @m2),
   'a GBK name and a bad type: both in one run') or diag $err;
is(scalar @m2, 2, '... the name reported once') or diag $err;
is(generation(), $g0, 'none of these committed');

# The issue's four runs (encoding, then times, then dates, then an
# overlap), now one: a GBK name, Excel times, Excel dates, an overlap.
my $sc = file('spring.csv', "campaign,name,type,url,starts_at,ends_at\n"
    . 'spring,' . gbk('专业') . ",h5,https://shop.example/s,2026/12/1 10:00,2026/12/31 23:59\n");
my $sb = file('spring-b.csv', "batch,kid,serial_from,serial_to,scene,campaign,production_date\n"
    . "roll-a,5,1,1000,marketing,spring,2026/11/20\nroll-b,5,900,2000,marketing,spring,2026/11/21\n");
($rc, $out, $err) = load($sc, $sb);
$err = Encode::decode('UTF-8', $err);
like($err, qr/^\Q$sc\E:2: name: "רҵ" holds U\+05E8/m, "the issue's files, one run: the encoding");
like($err, qr/^\Q$sc\E:2: starts_at: .* has no zone/m, '... the times in the same run');
like($err, qr/^\Q$sb\E:3: batch "roll-b" .* overlaps batch "roll-a"/m, '... and the overlap');
unlike($err, qr/production_date/, '... the Excel dates are fine');
unlike($err, qr/unknown campaign/, '... and the batches are not blamed for the campaign row\'s errors');
is(scalar(() = $err =~ /^\//mg), 4, '... four messages in all') or diag $err;
write_file($sb, "batch,kid,serial_from,serial_to,scene,campaign,production_date\n"
    . "roll-a,5,1,1000,marketing,spring,2026/11/20\nroll-b,5,1001,2000,marketing,spring,2026/11/21\n");
($rc, $out, $err) = load('--encoding', 'gbk', '--tz', '+08:00', '--dry-run', $sc, $sb);
is($rc, 0, '... all fixed after one run: the second is clean') or diag $err;

# ---- Excel's dates, Excel's GTINs -------------------------------------

my $dates = file('dates.csv', "batch,kid,serial_from,serial_to,scene,campaign,production_date\n"
    . "d1,3,1,10,trace,base,2026/11/20\nd2,3,11,20,trace,base,2026/1/5\n"
    . "d3,3,21,30,trace,base,2026-11-20\n");
($rc, $out, $err) = load($dates);
is($rc, 0, 'production dates as Excel shows them (2026/11/20, 2026/1/5) load') or diag $err;
my $dump = dump_db();
like($dump, qr/^d1,3,1,10,trace,base,,,,2026-11-20,$/m, '... stored as 2026-11-20');
like($dump, qr/^d2,3,11,20,trace,base,,,,2026-01-05,$/m, '... 2026/1/5 as 2026-01-05');
like($dump, qr/^d3,3,21,30,trace,base,,,,2026-11-20,$/m, '... YYYY-MM-DD as before');
my $g1 = generation();
my @bad_dates = (['2026/2/29', 'is not a real date'], ['2026/11/20 10:00', 'must be a date as YYYY-MM-DD \(or 2026/11/20, as Excel shows it\), without a time'],
                 ['2026/13/1', 'is not a real date'], ['20/11/2026', 'must be a date as'], ['2026/1/', 'must be a date as'],
                 ['2026/001/5', 'must be a date as'], ['1969/12/31', 'is not a real date']);
my $csv = "batch,kid,serial_from,serial_to,scene,campaign,production_date\n"
          . join('', map { "x$_,4,$_,$_,trace,base,$bad_dates[$_][0]\n" } 0 .. $#bad_dates);
my $bd = file('baddates.csv', $csv);
($rc, $out, $err) = load($bd);
is($rc, 1, 'dates that are not dates: exit 1');
for my $k (0 .. $#bad_dates) {
    like($err, qr/^\Q$bd\E:@{[$k + 2]}: production_date: "\Q$bad_dates[$k][0]\E" $bad_dates[$k][1]/m,
         "... $bad_dates[$k][0]: $bad_dates[$k][1]");
}

my $HINT = "is a number in Excel's scientific notation, its last digits lost: format the column as text in Excel "
           . '\(Format Cells, Text\), type the GTINs again, and save';
my $sci = file('sci.csv', "batch,kid,serial_from,serial_to,scene,campaign,gtin\n"
    . "e1,4,1,10,trace,base,6.90123E+12\ne2,4,11,20,trace,base,6.9E12\ne3,4,21,30,trace,base,6,90123E+12\n");
($rc, $out, $err) = load($sci);
like($err, qr/^\Q$sci\E:2: gtin: "6\.90123E\+12" $HINT$/m, 'a GTIN as 6.90123E+12: the hint to format the column as text');
like($err, qr/^\Q$sci\E:3: gtin: "6\.9E12" $HINT$/m, '... 6.9E12 too');
like($err, qr/^\Q$sci\E:4: /m, '... 6,90123E+12 (a comma splits it: two fields)');
my $lsci = file('lsci.csv', "gtin,link_type,href\n6.90123E+12,gs1:pip,https://shop.example/p\n");
($rc, $out, $err) = load($lsci);
like($err, qr/^\Q$lsci\E:2: gtin: "6\.90123E\+12" $HINT$/m, '... and in a links file');
is(generation(), $g1, 'none of these committed');

# ---- a byte order mark ------------------------------------------------

my $bomf = file('bom-u8.csv', "\xef\xbb\xbfcampaign,name,type,url\nu1," . u8('春季抽奖') . ",h5,https://shop.example/u1\n");
my $gbkf = file('plain-gbk.csv', "campaign,name,type,url\ng1," . gbk('专业') . ",h5,https://shop.example/g1\n");
($rc, $out, $err) = load('--encoding', 'gbk', $bomf, $gbkf);
is($rc, 0, 'one run: Excel "CSV UTF-8" (with a BOM) and a GBK file, --encoding gbk') or diag $err;
$dump = dump_db();
like($dump, qr/^u1,春季抽奖,h5,/m, '... the BOM file read as UTF-8');
like($dump, qr/^g1,专业,h5,/m, '... the GBK file converted');

# GBK bytes behind a BOM: one hint, the same with or without --encoding.
my $ONE = 'and the file starts with a UTF-8 byte order mark, so it is read as UTF-8 whatever --encoding says: '
          . 'save it from Excel again as "CSV UTF-8"';
my $bg = file('bom-gbk.csv', "\xef\xbb\xbfcampaign,name,type,url\nh1," . gbk('专业') . ",h5,https://shop.example/h\n"
              . "h2," . gbk('浙江') . ",h5,https://shop.example/h\n");
for my $opt ([], ['--encoding', 'gbk']) {
    my $g = generation();
    ($rc, $out, $err) = load(@$opt, $bg);
    my $how = @$opt ? 'with --encoding gbk' : 'without --encoding';
    my $e = Encode::decode('UTF-8', $err);
    is($rc, 1, "GBK bytes behind a BOM $how: exit 1");
    like($e, qr/^\Q$bg\E:2: name: "רҵ" holds U\+05E8, \Q$ONE\E$/m, '... 专业 (valid UTF-8 as bytes): the BOM hint');
    like($e, qr/^\Q$bg\E:3: name: ".*" is not UTF-8, \Q$ONE\E$/m, '... 浙江 (not UTF-8): the same hint');
    unlike($e, qr/load it with --encoding|without --encoding/, '... and no hint that contradicts it');
    is(scalar(() = $e =~ /^\Q$bg\E:/mg), 2, '... one message a line');
    is(generation(), $g, '... nothing committed');
}

# ---- a code column takes the printed URL ------------------------------

my @c = map { mint($key, 1, $_) } 500 .. 503;
my $urls = file('urls.csv', "code,state\n"
    . "HTTPS://C.BRAND.CN/$c[0],revoked\n" . 'https://c.brand.cn/' . lc($c[1]) . ",revoked\n"
    . "HTTPS://C.BRAND.CN/01/06901234567892/21/$c[2],revoked\n" . "$c[3],revoked\n");
($rc, $out, $err) = load('--key', $key, $urls);
is($rc, 0, 'a code column of printed URLs (upper, lower case, a GS1 Digital Link) and a bare code loads') or diag $err;
$dump = dump_db();
like($dump, qr/^1,$_,revoked,$/m, "... serial $_ revoked") for 500 .. 503;
my $badu = file('badurls.csv', "code,state\n"
    . "HTTPS://C.BRAND.CN/NOTACODE,revoked\n"
    . "HTTPS://C.BRAND.CN/01/06901234567893/21/$c[0],revoked\n"
    . "HTTPS://C.BRAND.CN/01/06901234567892,revoked\n");
($rc, $out, $err) = load('--key', $key, $badu);
is($rc, 1, 'URLs that hold no genuine code: exit 1');
like($err, qr/^\Q$badu\E:2: code: "HTTPS:\/\/C.BRAND.CN\/NOTACODE" is malformed \(not an 18-character code, nor a URL ending in one\)$/m,
     '... a URL without a code: malformed');
like($err, qr/^\Q$badu\E:3: code: ".*" .*check digit/m, '... a Digital Link with a bad GTIN: says why');
like($err, qr/^\Q$badu\E:4: code: ".*" is a GS1 Digital Link without a serial \(AI 21\)$/m, '... one without AI 21');
($rc, $out) = cr('inspect', '--key', $key, "HTTPS://C.BRAND.CN/$c[0]");
like($out, qr/^\Q$c[0]\E\tok\tkid=1\tserial=500$/m, 'inspect reads the same URL the same way');

done_testing;
