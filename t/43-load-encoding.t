#!/usr/bin/perl
# Marketers' spreadsheets.  Chinese Excel saves CSV as
# GBK; GBK text that happens to be valid UTF-8 was committed as mojibake
# (专业 as רҵ).  The loader now refuses a field with a character no
# product name uses, with the hint --encoding gbk; --encoding gbk and
# gb18030 convert.  Excel's zone-less times load with --tz or a tz column,
# and are an error naming --tz without one.  Every error is FILE:LINE:
# reason and nothing is committed when any row is bad.  The name a buyer
# is shown is checked through a real nginx (the API).
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Encode ();
use JSON::PP ();
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file make_key mint);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $d = tmpdir();
my $db = "$d/brand.mdb";
my $key = make_key("$d/1.key");
my $loader = root() . '/scripts/code-router-load';

sub cr { return run_cmd([cli(), @_]) }
sub load { return cr('load', '--db', $db, @_) }
sub u8 { Encode::encode('UTF-8', $_[0]) }
sub gbk { Encode::encode('gbk', $_[0]) }
sub dump_db { my (undef, $out) = cr('dump', '--db', $db); Encode::decode('UTF-8', $out) }
sub generation {
    my (undef, $out) = cr('stat', '--db', $db);
    return $out =~ /^generation\s+(\d+)/m ? $1 : -1;
}
sub file { write_file("$d/$_[0]", $_[1]) }

my $HEAD = "campaign,name,type,url\n";
my $HINT = 'which no product name uses: if Excel saved the file as GBK '
           . '\(its default for Chinese\), load it with --encoding gbk';

# A start: one campaign, so "nothing committed" can be checked.
my ($rc, $out, $err) = load(file('base.csv', "${HEAD}base,Base,h5,https://shop.example/\n"));
is($rc, 0, 'a first load') or diag $err;
my $g0 = generation();

# ---- GBK read as UTF-8 ------------------------------------------------

is(gbk('专业'), "\xd7\xa8\xd2\xb5", '专业 in GBK is D7 A8 D2 B5 (valid UTF-8: רҵ)');
my $gbk = file('gbk.csv', $HEAD . 'c1,' . gbk('专业') . ",h5,https://shop.example/1\n"
                          . 'c2,' . gbk('春季抽奖') . ",h5,https://shop.example/2\n");
($rc, $out, $err) = load($gbk);
$err = Encode::decode('UTF-8', $err);
is($rc, 1, 'GBK 专业 without --encoding: exit 1');
like($err, qr/^\Q$gbk\E:2: name: "רҵ" holds U\+05E8, $HINT$/m,
     '... FILE:2: name: "רҵ" holds U+05E8 ... --encoding gbk');
like($err, qr/^\Q$gbk\E:3: name: /m, '... line 3 (春季抽奖 in GBK) too');
is(generation(), $g0, '... nothing committed');
unlike(dump_db(), qr/רҵ/, '... no mojibake in the store');

($rc, $out, $err) = load('--encoding', 'gbk', $gbk);
is($rc, 0, 'with --encoding gbk: loads') or diag $err;
like(dump_db(), qr/^c1,专业,h5,/m, '... as 专业');
like(dump_db(), qr/^c2,春季抽奖,h5,/m, '... and 春季抽奖');

# The same bytes in other fields, and other kinds of file.
my $bat = file('gbk-b.csv', "batch,kid,serial_from,serial_to,scene,campaign,sku,lot,region\n"
                            . "b1,1,1,100,verify,c1,SKU-1,L1," . gbk('浙江') . "\n");
($rc, $out, $err) = load($bat);
is($rc, 1, 'a GBK region in a batch file (浙江: not UTF-8 at all): exit 1');
like(Encode::decode('UTF-8', $err), qr/^\Q$bat\E:2: region: ".*" is not UTF-8 \(save the file as "CSV UTF-8", or load it with --encoding gbk\)$/m,
     '... names the region column, with the hint');
($rc, $out, $err) = load('--encoding', 'GBK', $bat);
is($rc, 0, '... --encoding GBK (any case) loads it') or diag $err;
like(dump_db(), qr/^b1,1,1,100,verify,c1,SKU-1,,L1,,浙江$/m, '... region 浙江');

# GB18030: four-byte characters GBK lacks.
my $gb18030 = file('gb18030.csv', $HEAD . "c3,\x95\x32\x82\x36" . gbk('茶') . ",h5,https://shop.example/3\n");
($rc, $out, $err) = load('--encoding', 'gbk', $gb18030);
is($rc, 1, 'a four-byte GB18030 character with --encoding gbk: exit 1');
like($err, qr/^\Q$gb18030\E:2: byte 4 \(0x95\) is not gbk text/m, '... names the byte');
($rc, $out, $err) = load('--encoding', 'gb18030', $gb18030);
is($rc, 0, '... with --encoding gb18030: loads') or diag $err;
like(dump_db(), qr/^c3,\x{20000}茶,h5,/m, '... as U+20000 茶');

# One GBK byte can be three of UTF-8 (0x80 is the euro sign): a line of
# 50,000 of them fits the 64 KiB limit and converts whole.
my $euro = file('euro.csv', $HEAD . 'c9,' . ("\x80" x 50_000) . ",h5,https://shop.example/9\n");
($rc, $out, $err) = load('--encoding', 'gbk', $euro);
ok($rc == 1 && $err =~ /^\Q$euro\E:2: name: "\x{e2}\x{82}\x{ac}.*" is too long$/m && $err !~ /not gbk/,
   '50,000 euro signs in GBK: converted, then "name: ... is too long"') or diag substr($err, 0, 300);

# Not GBK at all; a UTF-8 file given --encoding gbk.
my $bad = file('bad-gbk.csv', $HEAD . "c4,a\xff\xffb,h5,https://shop.example/4\n");
($rc, $out, $err) = load('--encoding', 'gbk', $bad);
ok($rc == 1 && $err =~ /^\Q$bad\E:2: byte 5 \(0xFF\) is not gbk text/m,
   'bytes that are not GBK: FILE:2: byte 5 (0xFF) is not gbk text') or diag $err;
my $u8 = file('utf8.csv', $HEAD . 'c5,' . u8('春季') . ",h5,https://shop.example/5\n");
($rc, $out, $err) = load('--encoding', 'gbk', $u8);
ok($rc == 1 && $err =~ /^\Q$u8\E:2: byte \d+ \(0x[0-9A-F]{2}\) is not gbk text \(if the file is UTF-8, load it without --encoding\)/m,
   'a UTF-8 file with --encoding gbk: refused, with the hint') or diag $err;
is(generation(), $g0 + 3, '... none of these committed');
# A byte order mark makes a file UTF-8 whatever --encoding says (issue 24):
# Excel's "CSV UTF-8" and a GBK file in one run.  More in t/49.
my $bom = file('bom.csv', "\xef\xbb\xbf" . $HEAD . 'c5,' . u8('春季') . ",h5,https://shop.example/5\n");
($rc, $out, $err) = load('--encoding', 'gbk', $bom);
is($rc, 0, 'a UTF-8 BOM with --encoding gbk: read as UTF-8, loads') or diag $err;
like(dump_db(), qr/^c5,春季,h5,/m, '... as 春季');

# ---- what a product name may hold -------------------------------------

my @good = ('春季抽奖 限量版', '（限量版）·《茶》、“好”—…', 'Crème Brûlée, Łódź, Ærø', 'Zhōngguó Lǜchá Chǎnpǐn',
            'Phở Việt', 'β-胡萝卜素 Ω-3 µg', 'No.1 ① ™ ℃ ★ ✓ → ￥12.5 €3 №5 Ⅱ',
            'ＡＢＣ１２３', 'おいしい お茶', '김치', '𠀀 ext B', '🎁 礼盒 ❤️ 🍵', 'x²', '50%OFF #1 @shop & co. (new!) [a] {b} ~ ^ _ |');
my @bad = (['Молоко', 'U+041C', 'Cyrillic'], ['שלום', 'U+05E9', 'Hebrew'], ['مرحبا', 'U+0645', 'Arabic'],
           ["a\x{200B}b", 'U+200B', 'a zero-width space'], ["a\x{202E}b", 'U+202E', 'a right-to-left override'],
           ['👨‍👩‍👧', 'U+200D', 'an emoji joined by ZWJ'], ["e\x{301}", 'U+0301', 'a combining accent'],
           ["\x{E000}", 'U+E000', 'a private-use character'], ['ก', 'U+0E01', 'Thai']);
my $i = 0;
my $csv = $HEAD . join('', map { $i++; "g$i,\"" . u8($_) . "\",h5,https://shop.example/g\n" } @good);
($rc, $out, $err) = load(file('good.csv', $csv));
is($rc, 0, 'UTF-8 names of CJK, Latin with accents, pinyin, digits, punctuation, symbols, Greek letters, emoji: load')
    or diag $err;
my $dump = dump_db();
$i = 0;
for my $n (@good) {
    $i++;
    ok(index($dump, "g$i,$n,") >= 0 || index($dump, "g$i,\"$n\",") >= 0, "... \"$n\" kept");
}
$i = 0;
for my $b (@bad) {
    my ($n, $cp, $what) = @$b;
    $i++;
    my $f = file("bad$i.csv", $HEAD . "x$i," . u8($n) . ",h5,https://shop.example/x\n");
    ($rc, $out, $err) = load($f);
    ok($rc == 1 && $err =~ /^\Q$f\E:2: name: ".*" holds \Q$cp\E, $HINT$/m, "$what ($cp): refused with the hint")
        or diag $err;
}

# ---- Excel's times ----------------------------------------------------

my $g2 = generation();
my $T = "campaign,type,url,starts_at,ends_at\n";
my $times = file('times.csv', $T . "t1,h5,https://shop.example/t,2026/12/1 10:00,2026/12/31 23:59:59\n"
                                 . "t2,h5,https://shop.example/t,2026-12-01 10:00,2026-12-01 10:00:30\n"
                                 . "t3,h5,https://shop.example/t,2026-12-01T10:00,2026-12-02T10:00:00Z\n");
($rc, $out, $err) = load($times);
is($rc, 1, 'Excel times without a zone: exit 1');
for my $l (2 .. 3) {
    like($err, qr/^\Q$times\E:$l: starts_at: ".*" has no zone: add Z or \+08:00, or load with --tz \+08:00 \(or give a tz column\)$/m,
         "... line $l: the error names --tz");
}
like($err, qr/^\Q$times\E:2: ends_at: "2026\/12\/31 23:59:59" has no zone/m, '... for ends_at too');
is(generation(), $g2, '... nothing committed');

($rc, $out, $err) = load('--tz', '+08:00', $times);
is($rc, 0, 'with --tz +08:00: loads') or diag $err;
$dump = dump_db();
like($dump, qr/^t1,,h5,https:\/\/shop.example\/t,,,,,2026-12-01T10:00:00\+08:00,2026-12-31T23:59:59\+08:00,/m,
     '... 2026/12/1 10:00 and 2026/12/31 23:59:59 at +08:00');
like($dump, qr/^t2,,h5,.*,2026-12-01T10:00:00\+08:00,2026-12-01T10:00:30\+08:00,/m,
     '... 2026-12-01 10:00[:30] at +08:00');
like($dump, qr/^t3,,h5,.*,2026-12-01T10:00:00\+08:00,2026-12-02T10:00:00Z,/m,
     '... a zone in the value wins');

my $tzcol = file('tzcol.csv', "campaign,type,url,starts_at,tz\n"
                               . "t4,h5,https://shop.example/t,2026/7/4 9:30,-05:00\n"
                               . "t5,h5,https://shop.example/t,2026/7/4 9:30,\n"
                               . "t6,h5,https://shop.example/t,2026/7/4 9:30,Z\n");
($rc, $out, $err) = load($tzcol);
ok($rc == 1 && $err =~ /^\Q$tzcol\E:3: starts_at: ".*" has no zone/m && $err !~ /:[24]: /,
   'a tz column: its rows load; a row with it empty needs --tz') or diag $err;
($rc, $out, $err) = load('--tz', '+08:00', $tzcol);
is($rc, 0, 'a tz column with --tz +08:00') or diag $err;
$dump = dump_db();
like($dump, qr/^t4,.*,2026-07-04T09:30:00-05:00,,/m, '... the row\'s tz wins (-05:00)');
like($dump, qr/^t5,.*,2026-07-04T09:30:00\+08:00,,/m, '... an empty tz takes --tz');
like($dump, qr/^t6,.*,2026-07-04T09:30:00Z,,/m, '... tz Z');

my $g1 = generation();
my @tz_rows = (
    ['2026/2/30 10:00', '+08:00', 'starts_at: "2026/2/30 10:00" is not a real date'],
    ['2026/12/1 24:00', '+08:00', 'starts_at: "2026/12/1 24:00" is not a real time of day'],
    ['2026/12/1 10:60', '+08:00', 'starts_at: "2026/12/1 10:60" is not a real time of day'],
    ['2026/12/1', '+08:00', 'starts_at: "2026/12/1" must be a date and time with a zone'],
    ['2026/12/1 10:00 PM', '+08:00', 'starts_at: "2026/12/1 10:00 PM" must be a date and time with a zone'],
    ['2026/12/1 10:00+08:00', '+08:00', 'starts_at: "2026/12/1 10:00\+08:00" must be a date and time with a zone'],
    ['2026-12-1 10:00', '+08:00', 'starts_at: "2026-12-1 10:00" must be a date and time with a zone'],
    ['2026/12/1 10:00', '8', 'tz: "8" must be a zone as \+08:00, -05:00 or Z'],
    ['2026/12/1 10:00', '+8:00', 'tz: "\+8:00" must be a zone'],
    ['2026/12/1 10:00', '+15:00', 'tz: "\+15:00" must be a zone'],
    ['2026/12/1 10:00', 'UTC', 'tz: "UTC" must be a zone'],
);
$csv = "campaign,type,url,starts_at,tz\n" . join('', map { "z$_,h5,https://shop.example/z,$tz_rows[$_][0],$tz_rows[$_][1]\n" } 0 .. $#tz_rows)
       . "zok,h5,https://shop.example/z,2026/12/1 10:00,+08:00\n";
my $zf = file('tzbad.csv', $csv);
($rc, $out, $err) = load($zf);
is($rc, 1, 'bad Excel times and tz values: exit 1');
for my $k (0 .. $#tz_rows) {
    like($err, qr/^\Q$zf\E:@{[$k + 2]}: $tz_rows[$k][2]/m, "... line @{[$k + 2]}: $tz_rows[$k][2]");
}
unlike($err, qr/:@{[@tz_rows + 2]}: /, '... the good row has no error');
is(generation(), $g1, '... and nothing is committed');

for my $v ('8', '+8:00', '+15:00', '-14:60', 'UTC', '', '+08:00x', 'z') {
    ($rc, $out, $err) = load('--tz', $v, $times);
    ok($rc == 2 && $err =~ /^code-router load: --tz "\Q$v\E": must be a zone as \+08:00, -05:00 or Z$/m,
       "--tz '$v': exit 2, says the form") or diag "$rc $err";
}
for my $v ('latin1', 'utf8x', '') {
    ($rc, $out, $err) = load('--encoding', $v, $times);
    ok($rc == 2 && $err =~ /^code-router load: --encoding "\Q$v\E": gbk, gb18030 or utf-8$/m,
       "--encoding '$v': exit 2") or diag "$rc $err";
}
($rc, $out, $err) = load('--encoding', 'utf-8', '--tz', '-14:59', $u8);
is($rc, 0, '--encoding utf-8 is the default form; --tz -14:59 is taken') or diag $err;

($rc, $out) = run_cmd([$loader, '--help']);
like($out, qr/--encoding gbk\|gb18030\|utf-8/, 'code-router-load --help shows --encoding');
like($out, qr/--tz \+HH:MM/, '... and --tz');

# ---- what a buyer is told: the API through nginx ----------------------

($rc, $out, $err) = load(file('b.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
                                      . "bn,1,1000,1009,verify,c1\nbt,1,1010,1019,verify,t1\n"));
is($rc, 0, 'batches for the API') or diag $err;
chmod 0666, "$db-lock";    # nginx's workers read it (as load_store does)
chmod 0644, $db;
my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/codes/ { code_router_api; }
    }
CONF
$t->start;
my $r = $t->get('/v1/codes/' . mint($key, 1, 1000));
my $j = eval { JSON::PP->new->utf8->decode($r->{content}) } // {};
diag "$r->{status} $r->{content}\n" . $t->error_log unless $j->{campaign};
is($j->{campaign}{name}, '专业', 'the API tells the buyer 专业 (loaded with --encoding gbk)');
$j = JSON::PP->new->utf8->decode($t->get('/v1/codes/' . mint($key, 1, 1010))->{content});
is($j->{campaign}{starts_at}, '2026-12-01T10:00:00+08:00', '... and the Excel time as loaded with --tz');
$t->stop;

done_testing;
