#!/usr/bin/perl
# code_router_gs1 through a real nginx: a GS1 Digital Link resolver.  Every
# outcome: bad_uri (400, through error_page), a serialised link decided as
# code_router decides it (ok, forged, revoked...), mismatch (GTIN or lot
# not the batch's: 404), product and lot links from the store (default
# link, ?linkType=, no_link 404), the RFC 9264 linkset (by linkType and by
# Accept), the Link header, the query passed on, the resolver description,
# HEAD, OPTIONS and CORS, 405, the metrics, and nginx -t.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(root tmpdir make_key load_store mint);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
my $G = '06901234567892';

load_store($db, ['c.csv', <<'EOF'], ['b.csv', <<'EOF'], ['o.csv', <<'EOF'],
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
verify,Verify,h5,https://c.brand.cn/verify,,,,,,,,
EOF
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b1,1,1,100,verify,verify,SKU-1,6901234567892,L2612,2026-11-02,
b2,1,101,200,verify,verify,SKU-2,,,,
b3,1,201,300,verify,verify,SKU-3,95011011,,,
EOF
kid,serial,state,campaign
1,50,revoked,
EOF
           root() . '/conf/examples/links.csv');

my $conf = <<"EOF";
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /01/ {
            code_router_gs1;
            error_page 400 404 410 503 /.cr/fallback.html;
        }
        location /p/ {
            code_router_gs1;
        }
        location = /.well-known/gs1resolver { code_router_gs1; }
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
        }
        location = /status { code_router_status; }
    }
EOF

my $t = CodeRouter::Test::Nginx->new(http => $conf);
my ($rc, $log) = $t->test_conf;
is($rc, 0, 'nginx -t passes') or diag $log;
$t->start;

sub page_status { $_[0]{content} =~ /data-status="([^"]*)"/ ? $1 : '' }
sub code { mint($key, 1, $_[0]) }
my $c7 = code(7);

# bad_uri: 400 through error_page, never 200.
for my $bad ("/01/6901234567892/21/$c7", "/01/06901234567893/21/$c7",
             "/01/$G/21/$c7/10/L2612", "/01/$G/10/A/10/B",
             "/01/$G/21/$c7//", "/01/$G/10/A%41", "/01/$G/10/123456789012345678901",
             "/01/$G/17/261231", "/01/$G?", "/01/$G//21/$c7") {
    my $r = $t->get($bad);
    is($r->{status}, 400, "$bad: 400");
    is(page_status($r), 'bad_uri', '... the fallback page says bad_uri');
}

# A serialised link: the code as code_router decides it, GTIN and lot checked.
my $r = $t->get("/01/$G/10/L2612/21/$c7");
is($r->{status}, 302, 'GTIN and lot match: 302');
like($r->{headers}{location}, qr{^https://c\.brand\.cn/verify\?code=$c7&batch=b1&scene=verify&campaign=verify$},
     '... to the campaign target, as code_router answers');
is($r->{headers}{link}, qq{</01/$G/10/L2612/21/$c7?linkType=linkset>; rel="linkset"; type="application/linkset+json"},
   '... Link: the linkset of the item');
is($r->{headers}{'access-control-allow-origin'}, '*', '... CORS: any origin');
is($t->get("/01/$G/21/$c7")->{status}, 302, 'without a lot: the GTIN alone is checked');
is($t->get("/01/$G/10/L2612/21/" . lc $c7)->{status}, 302, 'a lower-case code');

$r = $t->get("/01/09506000134352/10/L2612/21/$c7");
is($r->{status}, 404, 'another GTIN: 404');
is(page_status($r), 'mismatch', '... mismatch');
$r = $t->get("/01/$G/10/L2613/21/$c7");
is(page_status($r), 'mismatch', 'another lot: mismatch');
is(page_status($t->get("/01/$G/10/l2612/21/$c7")), 'mismatch', 'a lot is case-sensitive');
$r = $t->get("/01/$G/21/" . code(150));
is(page_status($r), 'mismatch', 'a batch without a GTIN: mismatch (nothing to check against)');
$r = $t->get("/01/00000095011011/21/" . code(250));
is($r->{status}, 302, 'a batch with a GTIN-8: compared as GTIN-14');

my $forged = $c7;
substr($forged, -1, 1) = substr($forged, -1) eq '0' ? '1' : '0';
$r = $t->get("/01/$G/21/$forged");
is($r->{status}, 404, 'a forged code: 404');
is(page_status($r), 'forged', '... forged, before any GTIN check');
$r = $t->get("/01/$G/10/L2612/21/" . code(50));
is($r->{status}, 410, 'a revoked code: 410');
is(page_status($r), 'revoked', '... revoked');
is(page_status($t->get("/01/$G/21/" . code(5000))), 'unbound', 'an unbound code: unbound');

# A link type for a serialised link: the batch's lot and GTIN links.
$r = $t->get("/01/$G/21/$c7?linkType=gs1:certificationInfo");
is($r->{status}, 302, 'a code with ?linkType: 302');
is($r->{headers}{location}, 'https://c.brand.cn/cert/L2612.pdf', '... the link of its batch\'s lot');
$r = $t->get("/01/$G/21/$c7?linkType=gs1:recall");
is($r->{status}, 404, 'a type the item lacks: 404');
is(page_status($r), 'no_link', '... no_link');

# Product and lot links, without AI 21.
$r = $t->get("/01/$G");
is($r->{status}, 302, '/01/GTIN: 302');
is($r->{headers}{location}, 'https://c.brand.cn/p/6901234567892', '... to the default link');
is($r->{headers}{link}, qq{</01/$G?linkType=linkset>; rel="linkset"; type="application/linkset+json"},
   '... with the Link header');
$r = $t->get("/01/$G?utm_source=qr&linkType=gs1:pip;x=1");
is($r->{headers}{location}, 'https://c.brand.cn/p/6901234567892/en?utm_source=qr&x=1',
   'linkType=gs1:pip: the first pip link, the query passed on without linkType');
$r = $t->get("/01/$G?linkType=gs1%3Apip", { 'Accept-Language' => 'zh-CN,zh;q=0.9,en;q=0.5' });
is($r->{headers}{location}, 'https://c.brand.cn/p/6901234567892/zh',
   'a percent-encoded linkType; Accept-Language picks the Chinese link');
$r = $t->get("/01/$G/10/L2612?linkType=gs1:traceability");
is($r->{headers}{location}, 'https://c.brand.cn/trace/L2612', 'a lot\'s own link');
$r = $t->get("/01/$G/10/L2612");
is($r->{headers}{location}, 'https://c.brand.cn/p/6901234567892',
   'a lot without a default link: the GTIN\'s');
$r = $t->get("/01/$G?linkType=gs1:traceability");
is($r->{status}, 404, 'the GTIN has no traceability link (only its lot has): 404');
is(page_status($r), 'no_link', '... no_link');
$r = $t->get('/01/09506000134352');
is($r->{status}, 404, 'a GTIN with no links: 404');
is(page_status($r), 'no_link', '... no_link');
$r = $t->get("/p/01/$G?linkType=gs1:pip");
is($r->{status}, 302, 'a stem before /01/');
like($r->{headers}{location}, qr{/p/6901234567892/en$}, '... resolved the same');

# The linkset: by linkType and by Accept; checked against RFC 9264's shape.
for my $how (['?linkType=linkset', {}], ['', { Accept => 'application/linkset+json' }]) {
    $r = $t->get("/01/$G/10/L2612$how->[0]", $how->[1]);
    my $name = "linkset by " . ($how->[0] || 'Accept');
    is($r->{status}, 200, "$name: 200");
    like($r->{headers}{'content-type'}, qr{^application/linkset\+json}, '... application/linkset+json');
    is($r->{headers}{'access-control-allow-origin'}, '*', '... CORS');
    my $j = eval { JSON::PP->new->utf8->decode($r->{content}) };
    ok($j, '... parses as JSON') or diag $@;
    is(ref $j->{linkset}, 'ARRAY', '... {"linkset": [...]}');
    my $ctx = $j->{linkset}[0];
    like($ctx->{anchor}, qr{^http://127\.0\.0\.1:\d+/01/$G/10/L2612$}, '... anchored at the URI, no query');
    my @rels = grep { $_ ne 'anchor' } sort keys %$ctx;
    is_deeply(\@rels, [map { "https://gs1.org/voc/$_" } qw(certificationInfo defaultLink pip traceability)],
              '... one relation per link type, as absolute URIs');
    ok(!(grep { ref $ctx->{$_} ne 'ARRAY' || grep { !defined $_->{href} } @{ $ctx->{$_} } } @rels),
       '... each an array of target objects with an href');
    is(scalar @{ $ctx->{'https://gs1.org/voc/pip'} }, 2, '... pip: English and Chinese');
    is_deeply($ctx->{'https://gs1.org/voc/pip'}[1]{hreflang}, ['zh-CN'], '... hreflang an array');
    is($ctx->{'https://gs1.org/voc/pip'}[1]{title}, "\x{4ea7}\x{54c1}\x{4fe1}\x{606f}", '... titles in UTF-8');
}
$r = $t->get('/01/09506000134352?linkType=linkset');
is($r->{status}, 404, 'the linkset of a GTIN with no links: 404');
$r = $t->get("/01/$G/21/$c7?linkType=linkset");
is($r->{status}, 200, 'the linkset of a serialised link');
like($r->{content}, qr{"anchor":"http://127\.0\.0\.1:\d+/01/$G/21/$c7".*certificationInfo}s,
     '... anchored at its URI, with its batch\'s lot links');

# The resolver description.
$r = $t->get('/.well-known/gs1resolver');
is($r->{status}, 200, '/.well-known/gs1resolver: 200');
like($r->{headers}{'content-type'}, qr{^application/json}, '... JSON');
my $j = eval { JSON::PP->new->utf8->decode($r->{content}) };
like($j->{resolverRoot} // '', qr{^http://127\.0\.0\.1:\d+$}, '... its resolverRoot');
is_deeply($j->{supportedPrimaryKeys}, ['01', '00'], '... the GTIN and SSCC keys');
my $raw = $t->raw("GET /.well-known/gs1resolver HTTP/1.0\r\n\r\n");
my $port = $t->port;
like($raw, qr{^HTTP/1\.1 200 .*"resolverRoot":"http://127\.0\.0\.1:$port"}s,
     'HTTP/1.0 without Host: the description still, its root the address '
     . 'the request came in on (the server has no name; never the Host: t/48)');
$raw = $t->raw("GET /01/$G?linkType=linkset HTTP/1.0\r\n\r\n");
like($raw, qr{^HTTP/1\.1 200 .*"anchor":"http://127\.0\.0\.1:$port/01/$G"}s,
     '... and a linkset');

# Methods.
$r = $t->request('HEAD', "/01/$G");
is($r->{status}, 302, 'HEAD: 302');
$r = $t->request('HEAD', "/01/$G?linkType=linkset");
is($r->{status}, 200, 'HEAD of the linkset: 200');
is($r->{content} // '', '', '... no body');
$r = $t->request('OPTIONS', "/01/$G");
is($r->{status}, 204, 'OPTIONS: 204, a CORS preflight');
is($r->{headers}{'access-control-allow-origin'}, '*', '... any origin');
like($r->{headers}{'access-control-allow-methods'} // '', qr/GET, HEAD, OPTIONS/, '... the methods');
like($r->{headers}{'access-control-allow-headers'} // '', qr/Accept-Language/, '... the headers');
$r = $t->request('POST', "/01/$G");
is($r->{status}, 405, 'POST: 405');
is($r->{headers}{allow}, 'GET, HEAD, OPTIONS', '... Allow');

# Metrics: each outcome its own counter.
my %m = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $t->get('/status')->{content};
for my $s (qw(bad_uri mismatch no_link)) {
    cmp_ok($m{qq{code_router_requests_total{status="$s"}}} // 0, '>=', 1, "metrics count $s");
}
cmp_ok($m{'code_router_answers_total{answer="linkset"}'} // 0, '>=', 2, 'metrics count linkset answers');
$t->stop;

# nginx -t: a resolver needs a store and keys.
my $t2 = CodeRouter::Test::Nginx->new(http => <<'EOF');
    server {
        listen 127.0.0.1:%%PORT%%;
        location /01/ { code_router_gs1; }
    }
EOF
($rc, $log) = $t2->test_conf;
isnt($rc, 0, 'code_router_gs1 without a store: nginx -t fails');
like($log, qr/"code_router_gs1" needs "code_router_db"/, '... and says what it needs');

done_testing;
