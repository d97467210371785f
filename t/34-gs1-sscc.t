#!/usr/bin/perl
# GS1 Digital Link for cases and pallets: the SSCC key (/00/{SSCC-18})
# through the loader and a real nginx with code_router_gs1.  A links row
# whose gtin column holds an SSCC gives the case's or pallet's links; the
# resolver redirects to its default link or the link of ?linkType=, serves
# its linkset (a title on every link), 404 no_link for an SSCC without
# links, 400 bad_uri for a wrong length, check digit, letters or a key
# qualifier after the SSCC; a trailing '/' answers as without it.  The
# loader refuses an SSCC with a wrong check digit or with a lot.  Then the
# label end to end: qrencode draws the SSCC's URL, zbarimg reads it back,
# code-router inspect names its key, the resolver answers it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(cli run_cmd root tmpdir make_key load_store
                        write_file);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
my $S = '369012345000000012';           # a pallet's SSCC
my $S2 = '069012345000000028';          # a case without links

load_store($db, ['links.csv', <<"EOF"]);
gtin,lot,link_type,href,title,lang,type
$S,,gs1:defaultLink,https://c.brand.cn/pallet/$S,Pallet contents,,text/html
$S,,gs1:traceability,https://c.brand.cn/trace/$S,,,
$S,,gs1:pip,https://c.brand.cn/pallet/$S/zh,托盘,zh-CN,
6901234567892,,gs1:defaultLink,https://c.brand.cn/p/6901234567892,Product,,
EOF

my $t = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /00/ {
            code_router_gs1;
            error_page 400 404 410 503 /.cr/fallback.html;
        }
        location /01/ { code_router_gs1; }
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
        }
    }
EOF
$t->start;

sub page_status { $_[0]{content} =~ /data-status="([^"]*)"/ ? $1 : '' }

my $r = $t->get("/00/$S");
is($r->{status}, 302, '/00/SSCC: 302');
is($r->{headers}{location}, "https://c.brand.cn/pallet/$S", '... to its default link');
is($r->{headers}{link}, qq{</00/$S?linkType=linkset>; rel="linkset"; type="application/linkset+json"},
   '... Link: the linkset of the pallet');
is($r->{headers}{'access-control-allow-origin'}, '*', '... CORS');

$r = $t->get("/00/$S?linkType=gs1:traceability&utm_source=label");
is($r->{headers}{location}, "https://c.brand.cn/trace/$S?utm_source=label",
   '?linkType=gs1:traceability: its link, the query passed on');
$r = $t->get("/00/$S/");
is($r->{status}, 302, 'a trailing /: tolerated');
is($r->{headers}{location}, "https://c.brand.cn/pallet/$S", '... the same answer');
is($r->{headers}{link}, qq{</00/$S?linkType=linkset>; rel="linkset"; type="application/linkset+json"},
   '... and the Link header without the /');
$r = $t->get("/00/$S?linkType=gs1:recall");
is($r->{status}, 404, 'a type the pallet lacks: 404');
is(page_status($r), 'no_link', '... no_link');

$r = $t->get("/00/$S?linkType=linkset");
is($r->{status}, 200, 'the linkset: 200');
like($r->{headers}{'content-type'}, qr{^application/linkset\+json}, '... application/linkset+json');
my $j = eval { JSON::PP->new->utf8->decode($r->{content}) };
my $ctx = $j->{linkset}[0] // {};
like($ctx->{anchor} // '', qr{^http://127\.0\.0\.1:\d+/00/$S$}, '... anchored at the SSCC');
my @targets = map { @{ $ctx->{$_} } } grep { $_ ne 'anchor' } keys %$ctx;
is(scalar @targets, 3, '... its three links, not the GTIN\'s');
is(scalar(grep { defined $_->{title} && length $_->{title} } @targets), 3,
   '... every link with a title');
is($ctx->{'https://gs1.org/voc/traceability'}[0]{title}, 'gs1:traceability',
   '... one loaded without a title titled with its link type');
is($t->get("/00/$S", { Accept => 'application/linkset+json' })->{status}, 200,
   'Accept: application/linkset+json: the linkset');

$r = $t->get("/00/$S2");
is($r->{status}, 404, 'an SSCC without links: 404');
is(page_status($r), 'no_link', '... no_link');

# Hostile SSCC links: 400, bad_uri, never a redirect.
for my $bad ("/00/" . substr($S, 0, 17), "/00/${S}0", "/00/" . substr($S, 0, 17) . '3',
             "/00/36901234500000001A", "/00/$S/21/ABC", "/00/$S/10/L1",
             "/00/$S//", "/00/%33" . substr($S, 1),
             "/00/$S?", "/00/+$S") {
    $r = $t->get($bad);
    is($r->{status}, 400, "$bad: 400");
    is(page_status($r), 'bad_uri', '... bad_uri');
}
# An SSCC before a GTIN key is a stem: the GTIN answers.
is($t->get("/00/$S/01/06901234567892")->{headers}{location},
   'https://c.brand.cn/p/6901234567892', '/00/SSCC/01/GTIN: the rightmost key, the GTIN');

# The loader: an SSCC's check digit, and no lot.
for my $row ([ "3690123450000000X2,,gs1:pip,https://x.example/", qr/gtin: "3690123450000000X2" must be digits only/ ],
             [ "369012345000000013,,gs1:pip,https://x.example/", qr/gtin: "369012345000000013" has a wrong check digit/ ],
             [ "$S,L1,gs1:pip,https://x.example/", qr/is an SSCC \(18 digits\): a case's or pallet's links have no lot/ ]) {
    my $f = write_file("$d/bad.csv", "gtin,lot,link_type,href\n$row->[0]\n");
    my ($rc, $out, $err) = run_cmd([root() . '/scripts/code-router-load', '--db', "$d/other.mdb", $f]);
    isnt($rc, 0, "load refuses $row->[0]");
    like($err, $row->[1], '... and says why');
}

# The label: qrencode -> zbarimg -> inspect -> the resolver.
SKIP: {
    skip 'qrencode or zbarimg is not installed (make deps)', 7
        unless !grep { my $x = $_; !grep { -x "$_/$x" } split /:/, $ENV{PATH} } qw(qrencode zbarimg);
    my $url = "HTTPS://C.BRAND.CN/00/$S";
    my ($rc) = run_cmd(['qrencode', '-l', 'M', '-o', "$d/qr.png", $url]);
    is($rc, 0, 'qrencode drew the pallet label');
    my ($zrc, $read, $zerr) = run_cmd(['zbarimg', '--raw', '-q', "$d/qr.png"]);
    is($zrc, 0, 'zbarimg read it') or diag $zerr;
    chomp $read;
    is($read, $url, '... the URL exactly');
    my ($irc, $out) = run_cmd([cli(), 'inspect', '--key', $key, $read]);
    is($irc, 1, 'inspect: a Digital Link without a serial (exit 1)');
    is($out, "$url\tno_serial\tsscc=$S\n", '... names the SSCC');
    my ($path) = $read =~ m{^HTTPS://C\.BRAND\.CN(/.*)\z};
    $r = $t->get($path // '/');
    is($r->{status}, 302, 'the resolver answers what was read: 302');
    is($r->{headers}{location}, "https://c.brand.cn/pallet/$S", '... to the pallet\'s page');
}

$t->stop;
done_testing;
