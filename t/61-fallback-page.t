#!/usr/bin/perl
# code_router_fallback_page through a real nginx: the module answers its
# own fallbacks with conf/html/fallback-page.html, rendered per outcome
# at configuration time.  Every outcome a scan and a GS1 link can fall
# back to, with the status and the messages the SSI page (fallback.html
# through error_page, still there for brands' own pages) gives the same
# code, side by side; the headers; HEAD; the overscanned count and first
# times spliced in; a template's placeholders anywhere, twice; off;
# code_router_fallback for limit_req's 429; and nginx -t on every bad
# template.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Encode ();
use JSON::PP ();
use Time::Local ();
use CodeRouter::Test qw(root tmpdir make_key write_file load_store mint);

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $key2 = make_key("$d/2.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
my $page = "$html/fallback-page.html";

load_store($db, ['c.csv', <<'EOF'], ['b.csv', <<'EOF'], ['o.csv', <<'EOF'],
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
h5,H5,h5,https://shop.example/,,,,,,,,
fut,Soon,h5,https://x.example/,,,,,2099-01-01T00:00:00Z,,,
past,Over,h5,https://x.example/,,,,,,2020-01-01T00:00:00Z,,
EOF
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b-h5,1,1,100,verify,h5,SKU-1,6901234567892,L1,2026-11-02,CN-ZJ
b-tr,1,101,200,trace,h5,,,,,
b-fut,1,201,300,verify,fut,,,,,
b-past,1,301,400,verify,past,,,,,
EOF
kid,serial,state,campaign
1,50,revoked,
EOF
           root() . '/conf/examples/links.csv');

# Two servers of one configuration but the fallback: the module's page
# ($t), and error_page with the SSI page ($s).  /t/: a template of our own.
my $own = "$d/own.html";
write_file($own, "A{{status}}B{{scans}}C{{status}}D{{first_scan_en}}E\n");
sub conf_with {
    my ($fallback, $more, $busy) = @_;
    return <<"EOF";
    limit_req_zone \$binary_remote_addr zone=one:1m rate=1r/m;
    limit_req_status 429;
    code_router_db $db;
    code_router_key 1 $key;
    code_router_key 2 $key2 retired;
    code_router_scans zone=fb:1m;
    code_router_max_scans trace 1;
    code_router_time_zone +08:00;
    code_router_region \$http_x_region;
    code_router_diverted_action fallback;
    server {
        listen 127.0.0.1:%%PORT%%;
        $fallback
        location /p/ {
            code_router \$uri;
        }
        location /01/ {
            code_router_gs1;
        }
        location /busy/ {
            limit_req zone=one;
            code_router \$uri;
            error_page 429 $busy;
        }
        $more
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
        }
        location /v1/codes/ { code_router_api; }
    }
EOF
}
my $t = CodeRouter::Test::Nginx->new(http => conf_with("code_router_fallback_page $page;", <<"EOF", '@busy'));
        location \@busy {
            code_router_fallback;
        }
        location = /.busy {
            code_router_fallback;
        }
        location /both/ {
            code_router \$uri;
            error_page 404 /.cr/fallback.html;
        }
        location /t/ {
            code_router \$uri;
            code_router_fallback_page $own;
        }
        location /none/ {
            code_router_fallback_page off;
            code_router \$uri;
        }
EOF
my $s = CodeRouter::Test::Nginx->new(http => conf_with('error_page 400 403 404 410 503 /.cr/fallback.html;', '',
                                                      '/.cr/fallback.html'));
for ($t, $s) {
    my ($rc, $log) = $_->test_conf;
    is($rc, 0, 'nginx -t passes') or diag $log;
    $_->start;
}

sub code { mint($key, 1, $_[0]) }
my $forged = code(7);
substr($forged, 17, 1) = substr($forged, 17, 1) eq 'A' ? 'B' : 'A';

# What a page says: data-status, the h1, the English line, the last line.
sub said {
    my $c = Encode::decode('UTF-8', $_[0]{content});
    my @m = ($c =~ /data-status="([^"]*)"/, $c =~ m{<h1>(.*?)</h1>}s,
             $c =~ m{<p class="en">(.*?)</p>}s, $c =~ m{<p class="why">(.*?)</p>}s);
    s/\s+/ /g for @m;
    return join ' | ', @m;
}

# Each outcome: [name, status, path, request headers].
my @cases = (
    ['malformed', 404, '/p/0123456789ABCDEFGH'],
    ['forged', 404, "/p/$forged"],
    ['unbound', 404, '/p/' . code(9999)],
    ['revoked', 410, '/p/' . code(50)],
    ['not_started', 404, '/p/' . code(250)],
    ['ended', 410, '/p/' . code(350)],
    ['retired', 410, '/p/' . mint($key2, 2, 7)],
    ['diverted', 403, '/p/' . code(8), { 'X-Region' => 'CN-GD' }],
    ['bad_uri', 400, '/01/6901234567892/21/' . code(9)],
    ['mismatch', 404, '/01/06901234567892/10/OTHER/21/' . code(10)],
);
for my $c (@cases) {
    my ($name, $status, $path, $h) = @$c;
    my ($p, $q) = map { $_->get($path, $h) } $t, $s;
    is($p->{status}, $status, "$name: $status from the module's page");
    is($q->{status}, $status, "... and through error_page and SSI");
    like(said($p), qr/^\Q$name\E \| \S.* \| \S.* \| \Q$name\E$/, "... it says $name");
    is(said($p), said($q), '... the same messages as the SSI page: ' . said($p));
}

# The headers the SSI location sets, none of the static file's.
my $r = $t->get("/p/$forged");
is($r->{headers}{'content-type'}, 'text/html; charset=utf-8', 'Content-Type: text/html; charset=utf-8');
is($r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
is($r->{headers}{'x-content-type-options'}, 'nosniff', 'X-Content-Type-Options: nosniff');
ok(!exists $r->{headers}{etag} && !exists $r->{headers}{'last-modified'},
   '... no ETag, no Last-Modified');
is($r->{headers}{'content-length'}, length $r->{content}, '... Content-Length: the body');
like(Encode::decode('UTF-8', $r->{content}), qr/此码未能通过验证/, '... 此码未能通过验证');
unlike($r->{content}, qr/\{\{|<!--#/, '... no placeholder or SSI command left');

# HEAD: the status and length of the GET, no body.
my $head = $t->_request_raw('HEAD', "/p/$forged", {});
is($head->{status}, 404, 'HEAD: 404');
is($head->{content}, '', '... no body');
is($head->{headers}{'content-length'}, length $r->{content}, '... the GET\'s Content-Length');
is($head->{headers}{'cache-control'}, 'no-store', '... no-store');

# limit_req's 429 never reaches the router: code_router_fallback answers
# it with the same page, "busy" (what the SSI page says of $status 429).
my @busy = map { $_->get('/busy/' . code(9)); $_->get('/busy/' . code(9)) } $t, $s;
is($busy[0]{status}, 429, 'code_router_fallback: limit_req\'s 429');
is($busy[1]{status}, 429, '... through error_page and SSI too');
like(Encode::decode('UTF-8', $busy[0]{content}), qr{<h1>系统繁忙，请稍后再试</h1>\s*<p class="en">Busy right now\. Please try again in a moment\.</p>},
     '... "busy, please try again"');
sub messages { (said($_[0]) =~ /^[^|]*\| (.*?) ?\|[^|]*$/)[0] }
is(messages($busy[0]), messages($busy[1]), '... the SSI page\'s messages: ' . messages($busy[0]));
is($busy[0]{headers}{'cache-control'}, 'no-store', '... no-store');
is($busy[0]{headers}{'x-content-type-options'}, 'nosniff', '... nosniff');
$head = $t->_request_raw('HEAD', '/busy/' . code(9), {});
is($head->{status}, 429, '... HEAD: 429');
is($head->{content}, '', '... no body');
is($head->{headers}{'content-length'}, length $busy[0]{content}, '... the GET\'s length');
$r = $t->get('/.busy');
is($r->{status}, 404, 'code_router_fallback reached without an error status: 404');
like(Encode::decode('UTF-8', $r->{content}), qr{<h1>页面不存在</h1>\s*<p class="en">Page not found\.</p>}, '... page not found');

# The module's answer is final: error_page is not consulted.
$r = $t->get("/both/$forged");
is($r->{status}, 404, 'a page and error_page 404 in one location: 404');
like($r->{content}, qr/The fallback page of code_router_fallback_page/, '... the module\'s page, not error_page\'s');

# Without a page the status is error_page's (nginx's own 404 page here).
$r = $t->get("/none/$forged");
is($r->{status}, 404, 'code_router_fallback_page off: 404');
unlike($r->{content}, qr/data-status/, '... nginx\'s own page');

# overscanned: the count and first times spliced in, in +08:00.
sub first_times {
    my ($n, $c) = @_;
    my ($iso) = JSON::PP::decode_json($n->get("/v1/codes/$c")->{content})->{first_scan} =~ /^(.{16})/;
    my ($y, $mo, $dd, $h, $mi) = $iso =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+)/;
    my @lt = gmtime(Time::Local::timegm(0, $mi, $h, $dd, $mo - 1, $y) + 8 * 3600);
    return (sprintf('%d年%d月%d日 %02d:%02d', $lt[5] + 1900, $lt[4] + 1, $lt[3], $lt[2], $lt[1]),
            sprintf('%d %s %d, %02d:%02d', $lt[3],
                    (qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec))[$lt[4]], $lt[5] + 1900,
                    $lt[2], $lt[1]));
}
for my $n ($t, $s) {
    my $tc = code(101);
    is($n->get("/p/$tc")->{status}, 302, ($n == $t ? 'module' : 'SSI') . ": a trace code's first scan: 302");
    $n->get("/p/$tc");
    $r = $n->get("/p/$tc");
    is($r->{status}, 410, '... the third is overscanned: 410');
    my ($zh, $en) = first_times($n, $tc);
    my $c = Encode::decode('UTF-8', $r->{content});
    like($c, qr/此码已被查询 3 次，首次查询时间 \Q$zh\E，商品可能是仿冒品/, "... 3 次, $zh");
    like($c, qr/checked 3 times\s+since \Q$en\E: the item may be a copy/, "... 3 times, $en");
    is($r->{headers}{'content-length'}, length $r->{content}, '... Content-Length: the spliced body')
        if $n == $t;
}

# A template of our own: placeholders anywhere, twice; nothing else
# touched; the values spliced HTML-escaped (digits and times: as they are).
$r = $t->get("/t/$forged");
is($r->{content}, "AforgedBCforgedDE\n", 'an own template: every placeholder, exactly');
my $tc = code(103);
$t->get("/t/$tc") for 1 .. 2;
$r = $t->get("/t/$tc");
my (undef, $en) = first_times($t, $tc);
is($r->{content}, "AoverscannedB3CoverscannedD${en}E\n", '... overscanned: the count and the time spliced');
is($t->request('HEAD', "/t/$tc")->{headers}{'content-length'}, length("AoverscannedB3CoverscannedD${en}E\n"),
   '... HEAD: the length of the page a GET would send (a HEAD reads the count: 3)');

$_->stop for $t, $s;

# nginx -t on bad templates: each names the file and what is wrong.
sub bad {
    my ($what, $text, $want, $file) = @_;
    $file //= "$d/bad.html";
    write_file($file, $text) if defined $text;
    my $b = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { code_router \$uri; code_router_fallback_page $file; }
    }
EOF
    my ($brc, $blog) = $b->test_conf;
    isnt($brc, 0, "nginx -t fails: $what");
    like($blog, $want, "... $want");
}
bad('a missing file', undef, qr/code_router_fallback_page: open\(\) "\Q$d\E\/missing\.html" failed \(2: No such file/,
    "$d/missing.html");
bad('a directory', undef, qr/"\Q$d\E": not a regular file/, $d);
bad('an empty file', '', qr/bad\.html": empty/);
bad('over 64 KB', 'x' x 65537, qr/bad\.html": larger than 64 KB/);
bad('a NUL byte', "<p>\0</p>", qr/bad\.html": a NUL byte/);
bad('an unknown placeholder', "<p>\n\n{{code}}</p>",
    qr/bad\.html": an unknown placeholder "\{\{code\}\}" in line 3 \(known: \{\{status\}\}/);
bad('an unclosed placeholder', "<p>{{status</p>", qr/bad\.html": an unclosed "\{\{" in line 1/);
bad('a half-closed placeholder', "<p>{{status}</p>", qr/an unclosed "\{\{" in line 1/);
{
    my $b = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { code_router \$uri; code_router_fallback_page $page; code_router_fallback_page $page; }
    }
EOF
    my ($brc, $blog) = $b->test_conf;
    isnt($brc, 0, 'nginx -t fails: the directive twice');
    like($blog, qr/"code_router_fallback_page" directive is duplicate/, '... is duplicate');
}
{
    my $b = CodeRouter::Test::Nginx->new(http => <<"EOF");
    server {
        listen 127.0.0.1:%%PORT%%;
        location \@busy { code_router_fallback; }
    }
EOF
    my ($brc, $blog) = $b->test_conf;
    isnt($brc, 0, 'nginx -t fails: code_router_fallback without a page');
    like($blog, qr/"code_router_fallback" needs "code_router_fallback_page"/, '... needs code_router_fallback_page');
}
# A relative name is read from the configuration's directory.
{
    my $b = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { code_router \$uri; code_router_fallback_page rel.html; }
    }
EOF
    write_file($b->prefix . '/rel.html', "relative {{status}}");
    my ($brc, $blog) = $b->test_conf;
    is($brc, 0, 'a relative name: nginx -t passes') or diag $blog;
    $b->start;
    is($b->get("/$forged")->{content}, 'relative forged', '... read from the configuration\'s directory');
    $b->stop;
}
# One brace, or braces in CSS, are text.
write_file("$d/css.html", "<style>p { color: red; }</style>{ {status}} {{status}}");
my $c2 = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { code_router \$uri; code_router_fallback_page $d/css.html; }
    }
EOF
my ($rc, $log) = $c2->test_conf;
is($rc, 0, 'single braces are text: nginx -t passes') or diag $log;
$c2->start;
is($c2->get("/$forged")->{content}, '<style>p { color: red; }</style>{ {status}} forged', '... and stay as they are');
$c2->stop;

done_testing;
