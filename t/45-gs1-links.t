#!/usr/bin/perl
# The loader's GS1 links files (gtin,lot,link_type,href,title,lang,type):
# the example loads, dumps and loads back unchanged, upserts and deletes
# by (gtin, lot, link_type, lang), and every rule of a row has its exact
# FILE:LINE message, with nothing committed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file);

my $d = tmpdir();
my $db = "$d/brand.mdb";
my $ex = root() . '/conf/examples';
sub cr { return run_cmd([cli(), @_]) }
sub dump_links { my (undef, $out) = cr('dump', '--db', $_[0] // $db, '--kind', 'links'); $out }
sub generation {
    my (undef, $out) = cr('stat', '--db', $db);
    return $out =~ /^generation\s+(\d+)/m ? $1 : -1;
}

my ($rc, $out, $err) = cr('load', '--db', $db, "$ex/links.csv");
is($rc, 0, 'conf/examples/links.csv loads') or diag $err;
like($out, qr/^links\s+5 added, 0 changed, 0 unchanged, 0 removed$/m,
     'five links added');
my $dump = dump_links();
is($dump, <<'CSV', 'dump --kind links: GTIN-14, in key order (GTIN, lot, type, lang)');
gtin,lot,link_type,href,title,lang,type
06901234567892,,gs1:defaultLink,https://c.brand.cn/p/6901234567892,Product page,,text/html
06901234567892,,gs1:pip,https://c.brand.cn/p/6901234567892/en,"Product information, English",en,text/html
06901234567892,,gs1:pip,https://c.brand.cn/p/6901234567892/zh,产品信息,zh-CN,text/html
06901234567892,L2612,gs1:certificationInfo,https://c.brand.cn/cert/L2612.pdf,Lot L2612 certificate,,application/pdf
06901234567892,L2612,gs1:traceability,https://c.brand.cn/trace/L2612,溯源 Traceability,,text/html
CSV

# Round trip: the dump into a new store dumps the same; into the same
# store it changes nothing.
my $f = write_file("$d/dump.csv", $dump);
($rc, $out, $err) = cr('load', '--db', "$d/copy.mdb", $f);
is($rc, 0, 'the dump loads into a new store') or diag $err;
is(dump_links("$d/copy.mdb"), $dump, '... and dumps the same');
my $gen = generation();
($rc, $out) = cr('load', '--db', $db, $f);
like($out, qr/^links\s+0 added, 0 changed, 5 unchanged/m, 'loaded again: unchanged');
is(generation(), $gen, '... no new generation');
(undef, $out) = cr('dump', '--db', $db);
like($out, qr/\n\ngtin,lot,link_type,href,title,lang,type\n06901234567892,/,
     'dump of all kinds: links are the last section');
(undef, $out) = cr('dump', '--db', "$d/empty.mdb") if 0;

# Upsert and delete.
$f = write_file("$d/change.csv", <<'CSV');
gtin,lot,link_type,href,title,lang,type,delete
06901234567892,,gs1:pip,https://c.brand.cn/p/new-en,,en,,
6901234567892,L2612,gs1:traceability,,,,,yes
95011011,,gs1:defaultLink,https://c.brand.cn/p/8,,,,
CSV
($rc, $out, $err) = cr('load', '--db', $db, $f);
is($rc, 0, 'upsert and delete') or diag $err;
like($out, qr/^links\s+1 added, 1 changed, 0 unchanged, 1 removed$/m,
     '1 added (a GTIN-8), 1 changed, 1 removed');
$dump = dump_links();
like($dump, qr{^06901234567892,,gs1:pip,https://c\.brand\.cn/p/new-en,,en,$}m,
     'the pip link in English replaced, title and type now empty');
unlike($dump, qr/traceability/, 'the lot\'s traceability link deleted');
like($dump, qr{^00000095011011,,gs1:defaultLink,}m, 'a GTIN-8 stored as GTIN-14');

# Every rule, with its message; nothing committed.
$gen = generation();
$f = write_file("$d/bad.csv", <<'CSV');
gtin,lot,link_type,href,title,lang,type
6901234567893,,gs1:pip,https://x.cn/1,,,
690123456789,,gs1:pip,https://x.cn/2,,,
06901234567892,L 1,gs1:pip,https://x.cn/3,,,
06901234567892,123456789012345678901,gs1:pip,https://x.cn/4,,,
06901234567892,,pip,https://x.cn/5,,,
06901234567892,,linkset,https://x.cn/6,,,
06901234567892,,gs1:pip-x,https://x.cn/7,,,
06901234567892,,gs1:a,http://x.cn/8,,,
06901234567892,,gs1:b,,,,
06901234567892,,gs1:c,https://x.cn/10,,english,
06901234567892,,gs1:d,https://x.cn/11,,en_US,
06901234567892,,gs1:e,https://x.cn/12,,,text
06901234567892,,gs1:f,https://x.cn/13,,,text/html; charset=utf-8
06901234567892,,gs1:g,https://x.cn/14,a
06901234567892,,gs1:h,https://x.cn/15,,zh-CN,
06901234567892,,gs1:h,https://x.cn/16,,zh-CN,
06901234567892,L9,gs1:pip,https://x.cn/17,,,,yes
CSV
($rc, $out, $err) = cr('load', '--db', $db, $f);
is($rc, 1, 'bad rows: exit 1');
my @want = (
    qr/bad\.csv:2: gtin: "6901234567893" has a wrong check digit/,
    qr/bad\.csv:3: gtin: "690123456789" has a wrong check digit/,
    qr/bad\.csv:4: lot: "L 1" must be 1\.\.20 characters of GS1's set/,
    qr/bad\.csv:5: lot: "123456789012345678901" must be 1\.\.20 characters/,
    qr/bad\.csv:6: link_type: "pip" must be gs1:NAME/,
    qr/bad\.csv:7: link_type: "linkset" must be gs1:NAME/,
    qr/bad\.csv:8: link_type: "gs1:pip-x" must be gs1:NAME with letters and digits only/,
    qr/bad\.csv:9: href: "http:\/\/x\.cn\/8" must start with https:\/\//,
    qr/bad\.csv:10: href: "" /,
    qr/bad\.csv:11: lang: "english" must start with 2 or 3 letters/,
    qr/bad\.csv:12: lang: "en_US" must be a language tag/,
    qr/bad\.csv:13: type: "text" must be a media type TYPE\/SUBTYPE/,
    qr/bad\.csv:14: type: "text\/html; charset=utf-8" must be a media type/,
    qr/bad\.csv:15: 5 fields, but the header has 7/,
    qr/bad\.csv:17: link "06901234567892  gs1:h zh-CN" is also defined at .*bad\.csv:16/,
    qr/bad\.csv:18: 8 fields, but the header has 7/,
);
like($err, $_, "message: $_") for @want;
is(generation(), $gen, 'nothing committed');

$f = write_file("$d/del.csv", "gtin,lot,link_type,href,delete\n06901234567892,L9,gs1:pip,,yes\n");
($rc, $out, $err) = cr('load', '--db', $db, $f);
is($rc, 1, 'deleting a link that is not there: exit 1');
like($err, qr/del\.csv:2: no link of GTIN 06901234567892, lot "L9", type gs1:pip, lang "" to delete/,
     '... says which');
$f = write_file("$d/nohref.csv", "gtin,lot,link_type\n06901234567892,,gs1:pip\n");
($rc, $out, $err) = cr('load', '--db', $db, $f);
like($err, qr/nohref\.csv:1: the header lacks the column "href"/, 'href is a required column');
$f = write_file("$d/kind.csv", "sku,x\n1,2\n");
($rc, $out, $err) = cr('load', '--db', $db, $f);
like($err, qr/must start with campaign, batch, code, kid or gtin/, 'the kinds, gtin among them');

done_testing;
