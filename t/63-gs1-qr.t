#!/usr/bin/perl
# A printed GS1 Digital Link, end to end: code-router mint --gtin makes
# the URL, Debian's qrencode draws the QR code, zbarimg (zbar-tools) reads
# it back from the image, code-router inspect verifies what was read (the
# same URL, the code genuine, the GTIN and lot the ones minted), and a
# real nginx with code_router_gs1 answers it (the campaign's target).  The
# upper-case URL fits a smaller symbol than the same URL in lower case
# (QR alphanumeric mode; docs/gs1.md has the sizes).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli run_cmd tmpdir make_key load_store);

for my $tool (qw(qrencode zbarimg)) {
    plan skip_all => "$tool is not installed (make deps)"
        unless grep { -x "$_/$tool" } split /:/, $ENV{PATH};
}

my $d = tmpdir();
my $key = make_key("$d/brand.key");
my $db = "$d/brand.mdb";
load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
verify,Verify,h5,https://c.brand.cn/verify,,,,,,,,
CSV
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b1,3,40,40,verify,verify,,6901234567892,,,
b2,3,41,41,verify,verify,,6901234567892,L2612,,
b3,3,42,42,verify,verify,,95011011,B/7,,
CSV
my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 3 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /01/ { code_router_gs1; }
    }
CONF
$t->start;

# Modules a side (version = (modules - 17) / 4) at error correction level.
sub modules {
    my ($text, $level) = @_;
    my ($rc, $out) = run_cmd(['qrencode', '-l', $level, '-t', 'ASCII', '-m',
                              '0', $text]);
    return scalar(() = $out =~ /\n/g);
}

my @cases = (
    [ 'GTIN and serial', ['--gtin', '6901234567892'], undef ],
    [ 'GTIN, lot and serial', ['--gtin', '6901234567892', '--lot', 'L2612'],
      'L2612' ],
    [ 'a lot with escapes', ['--gtin', '95011011', '--lot', 'B/7'], 'B/7' ],
);
my $serial = 40;
for my $c (@cases) {
    my ($name, $opts, $lot) = @$c;
    my ($rc, $url, $err) = run_cmd([cli(), 'mint', '--key', $key, '--kid', 3,
                                    '--from', $serial, '--count', 1,
                                    '--url-prefix', 'https://c.brand.cn',
                                    @$opts]);
    is($rc, 0, "$name: minted") or diag $err;
    chomp $url;
    ($rc) = run_cmd(['qrencode', '-l', 'M', '-o', "$d/qr.png", $url]);
    is($rc, 0, "$name: qrencode drew it");
    my ($zrc, $read, $zerr) = run_cmd(['zbarimg', '--raw', '-q', "$d/qr.png"]);
    is($zrc, 0, "$name: zbarimg read it") or diag $zerr;
    chomp $read;
    is($read, $url, "$name: the QR code carries the URL exactly");
    my ($irc, $out) = run_cmd([cli(), 'inspect', '--key', $key, $read]);
    is($irc, 0, "$name: inspect accepts what was read");
    my $gtin = $opts->[1] eq '95011011' ? '00000095011011' : '06901234567892';
    like($out, qr/^[0-9A-Z]{18}\tok\tkid=3\tserial=$serial\tgtin=$gtin/,
         "$name: genuine, serial $serial, GTIN $gtin");
    if (defined $lot) {
        like($out, qr/\tlot=\Q$lot\E\n\z/, "$name: lot $lot");
    }
    # The resolver sees the path of what was read, as sent.
    my ($path) = $read =~ m{^HTTPS://C\.BRAND\.CN(/.*)\z};
    my $r = $t->get($path // '/');
    is($r->{status}, 302, "$name: the resolver answers 302");
    like($r->{headers}{location} // '', qr{^https://c\.brand\.cn/verify\?code=[0-9A-Z]{18}&batch=b\d},
         "$name: ... to the campaign, GTIN and lot checked");
    my $up = modules($url, 'M');
    cmp_ok($up, '<=', 33, "$name: " . length($url) . " characters, $up modules a side (version "
           . ($up - 17) / 4 . ', level M)');
    cmp_ok($up, '<=', modules(lc $url, 'M'), "$name: no larger than in lower case");
    my ($q, $lq) = (modules($url, 'Q'), modules(lc $url, 'Q'));
    cmp_ok($q, '<', $lq, "$name: level Q: $q modules, $lq in lower case");
    $serial++;
}

$t->stop;
done_testing;
