#!/usr/bin/perl
# The marketers' loader, scripts/code-router-load: the worked example,
# round trip through dump, upsert and delete, dry runs, and every
# validation rule with its exact FILE:LINE message (and the store left as
# it was).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file read_file make_key);

my $d = tmpdir();
my $db = "$d/brand.mdb";
my $loader = root() . '/scripts/code-router-load';
my $ex = root() . '/conf/examples';

sub load { return run_cmd([$loader, @_]) }
sub cr { return run_cmd([cli(), @_]) }
sub dump_db { my (undef, $out) = cr('dump', '--db', $_[0] // $db, @_[1 .. $#_]); $out }
sub generation {
    my (undef, $out) = cr('stat', '--db', $_[0] // $db);
    return $out =~ /^generation\s+(\d+)/m ? $1 : -1;
}

# The worked example of docs/loading.md.
my ($rc, $out, $err) = load('--db', $db, "$ex/campaigns.csv",
                            "$ex/batches.csv", "$ex/revoked.csv");
is($rc, 0, 'the worked example loads') or diag $err;
like($out, qr/^campaigns\s+3 added, 0 changed, 0 unchanged, 0 removed$/m,
     'three campaigns added');
like($out, qr/^batches\s+3 added/m, 'three batches added');
like($out, qr/^codes\s+3 added/m, 'three overrides added');
like($out, qr/^committed generation 1 at \d{4}-\d\d-\d\dT[\d:]+Z: 9 rows/m,
     'generation 1 committed');
($rc, $out) = cr('stat', '--db', $db);
like($out, qr/^campaigns\s+3\nbatches\s+3\ncodes\s+3$/m, 'stat counts');

# Round trip: dump, load into a new store, dump again: identical.
my $dump = dump_db();
like($dump, qr/^spring-lottery,春季扫码抽奖 Spring lottery,miniprogram,/m,
     'Chinese names survive');
like($dump, qr/^trace-page,"溯源: 产地, 批次 Traceability",/m,
     'a name with commas is quoted');
like($dump, qr/2026-03-01T00:00:00\+08:00,2027-05-31T23:59:59\+08:00/,
     'times keep their zone');
write_file("$d/dump.csv", $dump);
($rc, $out, $err) = load('--db', "$d/copy.mdb", "$d/dump.csv");
is($rc, 0, 'a full dump (three sections) loads into a new store') or diag $err;
is(dump_db("$d/copy.mdb"), $dump, 'and dumps back identical');
for my $kind (qw(campaigns batches codes)) {
    my $one = dump_db($db, '--kind', $kind);
    write_file("$d/$kind.csv", $one);
    ($rc) = load('--db', "$d/copy-$kind.mdb", ($kind eq 'campaigns' ? () : ("$d/campaigns.csv")), "$d/$kind.csv");
    is($rc, 0, "dump --kind $kind loads");
    is(dump_db("$d/copy-$kind.mdb", '--kind', $kind), $one, "... and round-trips");
}
($rc, $out) = load('--db', $db, "$d/dump.csv");
like($out, qr/^no change: generation stays 1$/m,
     'loading what is already there changes nothing, not even the generation');

# Upsert and delete.
write_file("$d/up.csv", <<'EOF');
campaign,name,type,url
verify-page,正品验证 v2,h5,https://c.brand.cn/verify2
new-one,New,h5,https://c.brand.cn/new
EOF
($rc, $out, $err) = load('--db', $db, "$d/up.csv");
like($out, qr/^campaigns\s+1 added, 1 changed, 0 unchanged, 0 removed$/m,
     'upsert by id: one added, one changed') or diag $err;
like(dump_db($db, '--kind', 'campaigns'),
     qr{^verify-page,正品验证 v2,h5,https://c.brand.cn/verify2,}m,
     'the changed campaign is replaced whole');

write_file("$d/del-used.csv", "campaign,type,delete\nverify-page,,yes\n");
($rc, $out, $err) = load('--db', $db, "$d/del-used.csv");
is($rc, 1, 'deleting a campaign still in use fails');
like($err, qr/^\Q$d\E\/del-used.csv:2: campaign "verify-page" cannot be deleted: (batch "roll-2026-B"|the override of key id 1 serial 5555555) still uses it/m,
     '... naming what uses it');

write_file("$d/del-ok.csv", <<'EOF');
batch,kid,serial_from,serial_to,scene,campaign,delete
roll-2026-B,,,,,,yes

kid,serial,state,delete
1,5555555,,yes

campaign,type,delete
verify-page,,yes
EOF
($rc, $out, $err) = load('--db', $db, "$d/del-ok.csv");
is($rc, 0, 'deleting the users and the campaign in one run works') or diag $err;
like($out, qr/^campaigns.* 1 removed$/m, 'campaign removed');
like($out, qr/^batches.* 1 removed$/m, 'batch removed');
like($out, qr/^codes.* 1 removed$/m, 'override removed');
unlike(dump_db(), qr/verify-page|roll-2026-B|5555555/, 'all gone');

# Move a batch to other serials and another campaign.
write_file("$d/move.csv", <<'EOF');
batch,kid,serial_from,serial_to,scene,campaign
roll-2026-A,1,1000000,1499999,marketing,new-one
EOF
($rc, $out) = load('--db', $db, "$d/move.csv");
like($out, qr/^batches\s+0 added, 1 changed/m, 'a batch moved and rebound');
like(dump_db($db, '--kind', 'batches'),
     qr/^roll-2026-A,1,1000000,1499999,marketing,new-one,,,,,$/m,
     '... replaced whole');

# Dealers: an optional column; the dump has it only when a batch has one,
# and round-trips with it.
unlike(dump_db($db, '--kind', 'batches'), qr/dealer/,
       'no dealer in the store: the dump has no dealer column');
write_file("$d/dealer.csv", <<'EOF');
batch,kid,serial_from,serial_to,scene,campaign,dealer
roll-2026-A,1,1000000,1499999,marketing,new-one,浙江经销商-07
EOF
($rc, $out, $err) = load('--db', $db, "$d/dealer.csv");
like($out, qr/^batches\s+0 added, 1 changed/m, 'a dealer given to a batch')
    or diag $err;
my $dealers = dump_db($db, '--kind', 'batches');
like($dealers, qr/^batch,.*,region,dealer\n/, '... the dump has the column');
like($dealers, qr/^roll-2026-A,1,1000000,1499999,marketing,new-one,,,,,,浙江经销商-07$/m,
     '... and the dealer');
write_file("$d/dealers.csv", dump_db($db, '--kind', 'campaigns') . "\n" . $dealers);
($rc, $out, $err) = load('--db', "$d/dealers.mdb", "$d/dealers.csv");
is($rc, 0, '... which loads into a new store') or diag $err;
is(dump_db("$d/dealers.mdb", '--kind', 'batches'), $dealers,
   '... and dumps back the same');

# Dry run: counts, but nothing committed.
my $gen = generation();
my $before = dump_db();
write_file("$d/dry.csv", "campaign,type,url\nnew-two,h5,https://x.cn/\n");
($rc, $out) = load('--db', $db, '--dry-run', "$d/dry.csv");
is($rc, 0, 'dry run succeeds');
like($out, qr/^campaigns\s+1 added/m, '... counts what would change');
like($out, qr/^dry run: 1 rows valid; nothing committed$/m, '... says so');
is(generation(), $gen, '... generation unchanged');
is(dump_db(), $before, '... store unchanged');
($rc, $out) = load('--db', "$d/never.mdb", '--dry-run', "$ex/campaigns.csv");
is($rc, 0, 'dry run against a store that does not exist yet');
ok(!-e "$d/never.mdb" && !-e "$d/never.mdb-lock", '... creates nothing');

# Excel: a byte order mark and CRLF line ends.
write_file("$d/excel.csv", "\xef\xbb\xbfcampaign,name,type,url\r\nxl,表格,h5,https://x.cn/a\r\n");
($rc, $out, $err) = load('--db', $db, "$d/excel.csv");
is($rc, 0, 'a BOM and CRLF line ends are accepted') or diag $err;
like(dump_db($db, '--kind', 'campaigns'), qr/^xl,表格,h5,https:\/\/x\.cn\/a,/m,
     '... and read right');

# A batch may name a campaign defined in a later file of the same run, and
# empty rows (",,,," from a spreadsheet) inside a section are skipped.
write_file("$d/later-b.csv", "batch,kid,serial_from,serial_to,scene,campaign\n"
         . "late-b,8,1,10,verify,late-c\n,,,,,\n\nlate-b2,8,11,20,verify,late-c\n");
write_file("$d/later-c.csv", "campaign,type,url\nlate-c,h5,https://x.cn/late\n");
($rc, $out, $err) = load('--db', $db, "$d/later-b.csv", "$d/later-c.csv");
is($rc, 0, 'a campaign defined in a later file of the run') or diag $err;
like($out, qr/^batches\s+2 added/m, '... both batches, empty rows skipped');

# Codes pasted as printed need --key.
my $key = make_key("$d/1.key");
my (undef, $codes) = cr('mint', '--key', $key, '--kid', 1, '--from', 7000, '--count', 2);
my @c = split /\n/, $codes;
write_file("$d/bycode.csv", "code,state\n$c[0],revoked\n" . lc($c[1]) . ",revoked\n");
($rc, $out, $err) = load('--db', $db, '--key', $key, "$d/bycode.csv");
is($rc, 0, 'overrides by code, with --key') or diag $err;
like(dump_db($db, '--kind', 'codes'), qr/^1,7000,revoked,\n1,7001,revoked,$/m,
     '... decoded to key id and serial (lower case too)');

# Every validation rule: a file whose line 3 is bad, and the message.
$gen = generation();
$before = dump_db();
my $long = 'x' x 65;
my $url2049 = 'https://x.cn/' . ('a' x 2036);
my $q = 'k=' . ('v' x 483);
my @cases = (
    # campaigns
    ['campaign,type,url', 'bad id,h5,https://x.cn/', 'campaign: "bad id" may hold only letters, digits'],
    ['campaign,type,url', "$long,h5,https://x.cn/", 'campaign: "x{60}\.\.\." is longer than 64 bytes'],
    ['campaign,type,url', ',h5,https://x.cn/', 'campaign: "" is empty'],
    ['campaign,type,url', 'c1,web,https://x.cn/', 'type: "web" must be miniprogram, official_account or h5'],
    ['campaign,type,url', 'c1,h5,', 'url: "" is required for this type'],
    ['campaign,type,url', 'c1,h5,http://x.cn/', 'url: "http://x.cn/" must start with https://'],
    ['campaign,type,url', 'c1,h5,https://x.cn/a b', 'url: "https://x.cn/a b" holds a space or a control character'],
    ['campaign,type,url', "c1,h5,https://x.cn/\x01", 'url: ".*" holds a space or a control character'],
    ['campaign,type,url', 'c1,h5,https://x.cn/页', 'url: ".*" holds a non-ASCII character \(percent-encode it\)'],
    ['campaign,type,url', 'c1,h5,https://brand.cn@evil.example/', 'url: ".*" has user info before the host'],
    ['campaign,type,url', 'c1,h5,"https://x.cn/""><script>"', 'url: ".*" holds a character not allowed in a URL'],
    ['campaign,type,url', 'c1,h5,https://x.cn/<b>', 'url: ".*" holds a character not allowed in a URL'],
    ['campaign,type,url', 'c1,h5,https://x.cn/%zz', "url: \".*\" holds a '%' that is not followed by two hex digits"],
    ['campaign,type,url', 'c1,h5,https:///path', 'url: "https:///path" has no host'],
    ['campaign,type,url', "c1,h5,$url2049", 'url: ".*" is longer than 2048 bytes'],
    ['campaign,type,url', 'c1,h5,javascript:alert(1)', 'url: "javascript:alert\(1\)" must start with https://'],
    ['campaign,type,appid', 'c1,miniprogram,', 'appid: "" is required for a miniprogram campaign'],
    ['campaign,type,appid', 'c1,miniprogram,wx123', 'appid: "wx123" must be "wx" and 16 hex digits'],
    ['campaign,type,appid', 'c1,miniprogram,wx1234567890ABCDEF', 'appid: ".*" must be "wx" and 16 lower-case hex digits'],
    ['campaign,type,appid,path', 'c1,miniprogram,wx1234567890abcdef,/pages/a', "path: \"/pages/a\" must not start with '/'"],
    ['campaign,type,appid,path', 'c1,miniprogram,wx1234567890abcdef,pages/a?x=1', "path: \".*\" must not hold '\\?' or '#'"],
    ['campaign,type,appid,query', "c1,miniprogram,wx1234567890abcdef,$q", 'query: ".*" is too long: URL-encoded, with "&code=CODE" appended, it must stay within 512 bytes'],
    ['campaign,type,appid,query', "c1,miniprogram,wx1234567890abcdef,a b", "query: \"a b\" must not hold spaces or '#'"],
    ['campaign,type,appid,url_link', 'c1,miniprogram,wx1234567890abcdef,http://wxaurl.cn/x', 'url_link: ".*" must start with https://'],
    ['campaign,type,appid,url', 'c1,miniprogram,wx1234567890abcdef,https://x.cn/', 'url: ".*" must start with weixin://'],
    ['campaign,type,url,appid', 'c1,h5,https://x.cn/,wx1234567890abcdef', 'appid: must be empty unless type is miniprogram'],
    ['campaign,type,url,starts_at', 'c1,h5,https://x.cn/,2026-11-02T08:00:00', 'starts_at: ".*" has no zone: add Z or \+08:00'],
    ['campaign,type,url,starts_at', 'c1,h5,https://x.cn/,2026-13-02T08:00:00Z', 'starts_at: ".*" must be a date and time with a zone'],
    ['campaign,type,url,starts_at', 'c1,h5,https://x.cn/,2026-11-02 08:00:00Z', "starts_at: \".*\" must separate date and time with 'T'"],
    ['campaign,type,url,ends_at', 'c1,h5,https://x.cn/,2026-11-02T25:00:00Z', 'ends_at: ".*" is not a real time of day'],
    ['campaign,type,url,starts_at,ends_at', 'c1,h5,https://x.cn/,2026-11-02T08:00:00+08:00,2026-11-02T00:00:00Z', 'ends_at must be later than starts_at'],
    ['campaign,type,url,name', "c1,h5,https://x.cn/,a\x07b", 'name: ".*" holds a control character'],
    ['campaign,type,url,name', "c1,h5,https://x.cn/,\xd5\xfd\xc6\xb7", 'name: ".*" is not UTF-8 \(save the file as "CSV UTF-8", or load it with --encoding gbk\)'],
    ['campaign,type,url,name', 'c1,h5,https://x.cn/,' . ('名' x 86), 'name: ".*" is too long'],
    ['campaign,type,url,after_url', 'c1,h5,https://x.cn/,http://x.cn/end', 'after_url: ".*" must start with https://'],
    ['campaign,type,url,delete', 'c1,h5,https://x.cn/,no', 'delete: "no" must be empty or "yes"'],
    ['campaign,type,delete', 'ghost,,yes', 'campaign "ghost" cannot be deleted: it does not exist'],
    # batches
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,256,1,2,verify,new-one', 'kid: "256" must be a whole number from 0 to 255'],
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,-1,1,2,verify,new-one', 'kid: "-1" must be a whole number from 0 to 255'],
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,1,9,8,verify,new-one', 'serial_to 8 is below serial_from 9'],
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,1,1,1099511627776,verify,new-one', 'serial_to: "1099511627776" must be a whole number from 0 to 1099511627775'],
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,1,1,2,lottery,new-one', 'scene: "lottery" must be verify, marketing, trace or channel'],
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,1,1,2,verify,nobody', 'campaign: unknown campaign "nobody"'],
    ['batch,kid,serial_from,serial_to,scene,campaign,gtin', 'b1,1,1,2,verify,new-one,06901234567891', 'gtin: "06901234567891" has a wrong check digit'],
    ['batch,kid,serial_from,serial_to,scene,campaign,gtin', 'b1,1,1,2,verify,new-one,690123456789A', 'gtin: ".*" must be digits only'],
    ['batch,kid,serial_from,serial_to,scene,campaign,gtin', 'b1,1,1,2,verify,new-one,6901234567', 'gtin: ".*" must be 8, 12, 13 or 14 digits'],
    ['batch,kid,serial_from,serial_to,scene,campaign,production_date', 'b1,1,1,2,verify,new-one,2026-02-29', 'production_date: "2026-02-29" is not a real date'],
    ['batch,kid,serial_from,serial_to,scene,campaign,production_date', 'b1,1,1,2,verify,new-one,2026-2-1', 'production_date: ".*" must be a date as YYYY-MM-DD'],
    ['batch,kid,serial_from,serial_to,scene,campaign,region', 'b1,1,1,2,verify,new-one,CN ZJ', "region: \"CN ZJ\" may not hold spaces"],
    ['batch,kid,serial_from,serial_to,scene,campaign,lot', 'b1,1,1,2,verify,new-one,"L""1"', "lot: \"L\"1\" may not hold spaces, quotes"],
    ['batch,kid,serial_from,serial_to,scene,campaign', 'b1,1,1200000,1200000,verify,new-one', 'batch "b1" \(key id 1, serials 1200000 to 1200000\) overlaps batch "roll-2026-A" \(serials 1000000 to 1499999, already in the store\)'],
    ['batch,kid,serial_from,serial_to,scene,campaign,delete', 'nope,,,,,,yes', 'batch "nope" cannot be deleted: it does not exist'],
    # overrides
    ['kid,serial,state', '1,1099511627776,revoked', 'serial: ".*" must be a whole number from 0 to 1099511627775'],
    ['kid,serial,state', '1,5,stolen', 'state: "stolen" must be revoked or campaign'],
    ['kid,serial,state,campaign', '1,5,campaign,', 'campaign: required when state is campaign'],
    ['kid,serial,state,campaign', '1,5,revoked,new-one', 'campaign: must be empty when state is revoked'],
    ['kid,serial,state,campaign', '1,5,campaign,nobody', 'campaign: unknown campaign "nobody"'],
    ['kid,serial,state,delete', '1,424242,,yes', 'no override for key id 1 serial 424242 to delete'],
    ['code,state', "$c[0],revoked", 'code: decoding codes needs the key: run with --key FILE'],
    # whole rows
    ['campaign,type,url', 'c1,h5', '2 fields, but the header has 3'],
    ['campaign,type,url', 'c1,h5,"https://x.cn/', 'a quoted field is not closed on its line'],
    ['campaign,type,url', 'c1,h5,https://x.cn/"a"', 'a quote inside an unquoted field'],
    ['campaign,type,url', 'c1,h5,"https://x.cn/"x', 'text after the closing quote of a field'],
);
# A valid row for a header: each column's value by name (and kind).
sub good_row {
    my ($header, $n) = @_;
    my @cols = split /,/, $header;
    my %has = map { $_ => 1 } @cols;
    return undef if $cols[0] eq 'campaign' && !$has{url} && !$has{appid};
    return undef if $cols[0] eq 'code';     # no row is good without --key
    my %v = $cols[0] eq 'campaign' && !$has{url}
          ? (campaign => "fine-$n", type => 'miniprogram',
             appid => 'wx1234567890abcdef')
          : $cols[0] eq 'campaign'
          ? (campaign => "fine-$n", type => 'h5', url => 'https://ok.cn/')
          : $cols[0] eq 'batch'
          ? (batch => "fine-$n", kid => 9, serial_from => $n, serial_to => $n,
             scene => 'trace', campaign => 'new-one')
          : (code => $c[1], kid => 9, serial => $n, state => 'revoked');
    return join ',', map { $v{$_} // '' } @cols;
}

my $i = 0;
for my $case (@cases) {
    my ($header, $row, $msg) = @$case;
    $i++;
    my $f = "$d/bad$i.csv";
    # line 2: a good row of the same kind, so the bad one is line 3
    my $goodrow = good_row($header, $i);
    my $line = defined $goodrow ? 3 : 2;
    write_file($f, "$header\n" . (defined $goodrow ? "$goodrow\n" : '')
                 . "$row\n");
    ($rc, $out, $err) = load('--db', $db, $f);
    is($rc, 1, "bad $i: exit 1 for: $row") or diag "$out$err";
    like($err, qr/^\Q$f\E:$line: $msg/m, "bad $i: $msg") or diag $err;
    is(scalar(() = $err =~ /^\Q$f\E:/mg), 1,
       "bad $i: exactly one message (the good row is not blamed)")
        or diag $err;
    like($err, qr/no change made/, "bad $i: nothing committed");
}
is(generation(), $gen, 'after all the bad files the generation is unchanged');
is(dump_db(), $before, '... and so is every record');

# Overlap and duplicate ids within one run: both rows named.
write_file("$d/twice.csv", <<'EOF');
batch,kid,serial_from,serial_to,scene,campaign
p1,5,100,200,verify,new-one
p2,5,150,300,verify,new-one
p1,5,400,500,verify,new-one
EOF
($rc, $out, $err) = load('--db', $db, "$d/twice.csv");
like($err, qr/^\Q$d\E\/twice.csv:3: batch "p2" \(key id 5, serials 150 to 300\) overlaps batch "p1" \(serials 100 to 200, defined at \Q$d\E\/twice.csv:2\)$/m,
     'an overlap within the run names both rows');
like($err, qr/^\Q$d\E\/twice.csv:4: batch "p1" is also defined at \Q$d\E\/twice.csv:2/m,
     'a batch defined twice in one run');

# Headers.
my @headers = (
    ["serial,kid\n1,2\n", 'unknown kind of file: the header row must start with campaign, batch, code, kid or gtin \(found "serial"\)', 1],
    ["campaign,type,colour\nc,h5,red\n", 'unknown column "colour"', 1],
    ["campaign,type,type\nc,h5,h5\n", 'column "type" appears twice', 1],
    ["campaign,url\nc,https://x.cn/\n", 'the header lacks the column "type"', 1],
    ["batch,kid,serial_from,serial_to,scene\nb,1,1,1,verify\n", 'the header lacks the column "campaign"', 1],
    ["kid,state\n1,revoked\n", 'the header needs a "code" column, or "kid" and "serial" columns', 1],
    ["code,kid,serial,state\nx,1,1,revoked\n", 'give either a "code" column or "kid" and "serial" columns, not both', 1],
    ["", 'the file is empty \(a header row is required\)', 0],
);
for my $h (@headers) {
    my $f = write_file("$d/header.csv", $h->[0]);
    ($rc, $out, $err) = load('--db', $db, $f);
    is($rc, 1, "header: exit 1 for " . ($h->[0] =~ /^(.*)/ ? "'$1'" : 'empty'));
    like($err, qr/^\Q$f\E:$h->[2]: $h->[1]/m, "... $h->[1]");
}

# --max-errors, and the count of the rest.
write_file("$d/many.csv", "campaign,type,url\n" . join('', map { "c$_,h5,http://x/\n" } 1 .. 30));
($rc, $out, $err) = load('--db', $db, '--max-errors', 5, "$d/many.csv");
is(scalar(() = $err =~ /^\Q$d\E\/many.csv:\d+: url/mg), 5, '--max-errors 5 prints five');
like($err, qr/^\.\.\. and 25 more errors$/m, '... and counts the rest');
like($err, qr/30 errors in 30 rows; no change made/, '... and the total');

# Usage and environment errors.
($rc, $out, $err) = load('--db', $db, "$d/missing.csv");
is($rc, 3, 'a missing input file: exit 3');
like($err, qr/missing.csv: No such file/, '... named');
($rc, $out, $err) = load("$ex/campaigns.csv");
is($rc, 2, 'no --db: exit 2');
($rc, $out, $err) = load('--db', $db, '--max-errors', 0, "$ex/campaigns.csv");
is($rc, 2, '--max-errors 0: exit 2');
($rc, $out, $err) = cr('stat', '--db', "$d/nope.mdb");
is($rc, 3, 'stat of a missing store: exit 3');
like($err, qr/store "\Q$d\E\/nope.mdb": No such file or directory/, '... says so');
($rc, $out, $err) = cr('dump', '--db', $db, '--kind', 'users');
is($rc, 2, 'dump --kind users: exit 2');
write_file("$d/garbage.mdb", "not a database " x 100);
($rc, $out, $err) = cr('stat', '--db', "$d/garbage.mdb");
is($rc, 3, 'stat of a garbage file: exit 3');
like($err, qr/cannot open: MDB_INVALID|not a code-router store/, '... says why');

# Issue 12, item 11: the 64 KiB line limit bounds the read itself.  A
# one-line file of 64 MiB used as much memory (getline held it whole);
# now the loader keeps 64 KiB of it, reports the line, reads on (line 3's
# error is reported too) and commits nothing.  Max RSS from /usr/bin/time.
SKIP: {
    skip '/usr/bin/time missing (Debian package time)', 5 unless -x '/usr/bin/time';
    my $big = "$d/one-line.csv";
    open my $fh, '>', $big or die "$big: $!";
    print $fh "campaign,name,type,url
", "big,", 'a' x (1 << 20) for 1;
    print $fh 'a' x (1 << 20) for 1 .. 63;
    print $fh ",h5,https://shop.example/
c3,n,h5,http://x/
";
    close $fh;
    my $g = generation();
    ($rc, $out, $err) = run_cmd(['/usr/bin/time', '-f', 'maxrss %M', cli(), 'load', '--db', $db, $big]);
    is($rc, 1, 'a 64 MiB line: exit 1');
    like($err, qr/^\Q$big\E:2: line is longer than 65536 bytes$/m, '... FILE:2: line is longer than 65536 bytes');
    like($err, qr/^\Q$big\E:3: url/m, '... and the line after it is still read');
    is(generation(), $g, '... nothing committed');
    my ($kb) = $err =~ /^maxrss (\d+)$/m;
    cmp_ok($kb // 1e9, '<', 32 * 1024, "... in at most 32 MiB of memory (max RSS ${\($kb // '?')} KiB)");
    unlink $big;
}

done_testing;
