#!/usr/bin/perl
# GS1 links the loader would refuse, written behind its back
# with build/t/raw-put, as t/53 does for campaigns: a CRLF header
# injection, javascript:, invalid bytes (as a damaged copy served them),
# protocol-relative and http:// targets, a bad title, language and media
# type.  Each one answers 503 unavailable, no Location and nothing of its
# bytes in the head or the linkset, and is logged; sound links beside it
# still answer; so does an SSCC's link, and a compressed URI that expands
# to a bad link, and a compressed key=value pair of CR, LF and a header
# never becomes a header.  And the resolver's root (item 14): the linkset's anchor
# and the description's resolverRoot come from code_router_gs1's root=,
# else the server's name, never the request's Host.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(root run_cmd tmpdir make_key load_store);

my $RAW_PUT = root() . '/build/t/raw-put';
plan skip_all => "no $RAW_PUT (make unit)" unless -x $RAW_PUT;

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
load_store($db, root() . '/conf/examples/links.csv');
my $G = '06901234567892';

# A GTIN-14 with its check digit: 069012345NNNN plus the digit.
sub gtin {
    my ($n) = @_;
    my $body = sprintf '069012345%04d', $n;
    my ($sum, $w) = (0, 3);
    for my $c (reverse split //, $body) {
        $sum += $c * $w;
        $w = 4 - $w;
    }
    return $body . ((10 - $sum % 10) % 10);
}

# [what, the link's fields]
my @cases = (
    ['href with CRLF + Set-Cookie', 'href=https://c.example/x\x0d\x0aSet-Cookie: owned=1'],
    ['href with LF + header', 'href=https://c.example/x\x0aX-Injected: 1'],
    ['href javascript:', 'href=javascript:alert(document.domain)//'],
    ['href with invalid bytes', 'href=https://c.example/\xf8\xa8\x80\xff'],
    ['href protocol-relative', 'href=//evil.example/'],
    ['href http://', 'href=http://evil.example/'],
    ['href with a NUL', 'href=https://c.example/\x00evil'],
    ['title with invalid UTF-8', 'href=https://c.example/ok', 'title=\xff\xfeowned'],
    ['lang with CRLF', 'href=https://c.example/ok', 'lang=en\x0d\x0aX-Injected: 1'],
    ['media type with CRLF', 'href=https://c.example/ok', 'media=text/html\x0d\x0aX-Injected: 1'],
);
my @put;
for my $i (0 .. $#cases) {
    my (undef, @fields) = @{ $cases[$i] };
    push @put, 'link', 'gtin=' . gtin($i), 'type=gs1:defaultLink', @fields;
}
# An SSCC's (a pallet's) link, as bad.
my $S = '369012345000000012';
push @put, 'link', "gtin=$S", 'type=gs1:defaultLink',
           'href=https://c.example/x\x0d\x0aSet-Cookie: owned=1';
# A GTIN whose default link is sound and whose pip link is not.
push @put, 'link', 'gtin=' . gtin(50), 'type=gs1:defaultLink',
           'href=https://c.example/good',
           'link', 'gtin=' . gtin(50), 'type=gs1:pip',
           'href=javascript:alert(1)';
my ($rc, $out, $err) = run_cmd([$RAW_PUT, $db, @put]);
is($rc, 0, 'raw-put writes the links') or diag $err;

my $conf = <<"EOF";
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name c.brand.cn;
        add_header X-CR-Status \$code_router_status always;
        location /01/ { code_router_gs1; }
        location /00/ { code_router_gs1; }
        location /z/ { code_router_gs1; }
        location = /.well-known/gs1resolver { code_router_gs1; }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name rooted.test;
        location /01/ { code_router_gs1 root=https://id.brand.cn; }
        location = /.well-known/gs1resolver {
            code_router_gs1 root=https://id.brand.cn:8443;
        }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name *.wild.test;
        location /01/ { code_router_gs1; }
    }
EOF
my $t = CodeRouter::Test::Nginx->new(http => $conf);
$t->start;

# GET with a Host of our choosing: (status, headers {name => [values]},
# head, body).
sub get {
    my ($path, $host, @h) = @_;
    my $raw = $t->raw("GET $path HTTP/1.1\r\nHost: $host\r\n"
                      . join('', map { "$_\r\n" } @h)
                      . "Connection: close\r\n\r\n");
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my %h;
    for (split /\r\n/, $head) {
        push @{ $h{lc $1} }, $2 if /^([^:]+):\s*(.*)$/;
    }
    return ($status // 0, \%h, $head, $body // '');
}

sub printable {
    my ($s) = @_;
    $s =~ s/([^\x20-\x7e])/sprintf '\\x%02X', ord $1/ge;
    return $s;
}

my %ALLOWED = map { $_ => 1 } qw(server date content-type content-length
    connection x-cr-status cache-control access-control-allow-origin
    access-control-expose-headers);

for my $i (0 .. $#cases) {
    my $what = $cases[$i][0];
    my $g = gtin($i);
    for my $how (['', 'the default link'], ['?linkType=linkset', 'the linkset']) {
        my ($status, $h, $head, $body) = get("/01/$g$how->[0]", 'c.brand.cn');
        my @odd = grep { !$ALLOWED{$_} } sort keys %$h;
        my $bad = @odd ? "headers @odd"
                : $head =~ /owned|inject|evil|javascript|\xf8/i ? 'bytes in the head'
                : $body =~ /owned|javascript|evil|\xf8/i ? 'bytes in the body' : '';
        ok($status == 503 && ($h->{'x-cr-status'}[0] // '') eq 'unavailable' && !$bad,
           "$what, $how->[1]: 503 unavailable, no Location, nothing injected")
            or diag "got $status $bad\n" . printable($head);
    }
}

# The same through an SSCC, and through compressed URIs (the GS1
# compression's bits written here: AI 01, 47 bits of GTIN; a key=value
# pair, F, 7 bits of key length, 6 a character, ASCII encoding 4, 7 bits
# of length, 7 a character).
my $b64 = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_';
sub z {
    my ($bits) = @_;
    $bits .= '0' x ((6 - length($bits) % 6) % 6);
    return join '', map { substr($b64, oct("0b$_"), 1) } $bits =~ /(.{6})/g;
}
sub z_gtin { '00000001' . sprintf('%047b', $_[0]) }
sub z_pair {
    my ($k, $v) = @_;
    return '1111' . sprintf('%07b', length $k)
         . join('', map { sprintf '%06b', index($b64, $_) } split //, $k)
         . '100' . sprintf('%07b', length $v)
         . join('', map { sprintf '%07b', ord } split //, $v);
}
for my $c (["/00/$S", 'an SSCC\'s link with CRLF'],
           ['/z/' . z(z_gtin(gtin(0))), 'a compressed link to the CRLF href'],
           ['/z/' . z(z_gtin(gtin(2))) . '/', 'a compressed link to javascript:, a trailing /']) {
    my ($status, $h, $head, $body) = get($c->[0], 'c.brand.cn');
    ok($status == 503 && ($h->{'x-cr-status'}[0] // '') eq 'unavailable'
       && !$h->{location} && $head !~ /owned|javascript/i && $body !~ /owned|javascript/i,
       "$c->[1]: 503 unavailable, nothing injected")
        or diag "got $status\n" . printable($head);
}
like($t->error_log, qr/the link of SSCC $S, lot "", type "gs1%3AdefaultLink" has an unusable href: /,
     'the SSCC\'s bad link logged, naming the SSCC');
# A compressed pair of CR, LF and a header: percent-encoded in the
# owl:sameAs Link and the Location, never a header of its own.
for my $v ("\x0d\x0aX-Injected: 1", "\x0aSet-Cookie: owned=1", "a>; rel=\"x\"\x00") {
    my $p = '/z/' . z(z_gtin(gtin(50)) . z_pair('utm', $v));
    my ($status, $h, $head) = get($p, 'c.brand.cn');
    ok($status == 302 && !$h->{'x-injected'} && !$h->{'set-cookie'}
       && !grep({ /[\x00-\x1f]|>; rel="x"/ } split /\r\n/, $head)
       && join(' ', @{ $h->{link} // [] }) =~ m{<http://c\.brand\.cn/z/01/${\ gtin(50)}\?utm=[^>]*>; rel="owl:sameAs"},
       'a compressed pair ' . printable($v) . ': 302, percent-encoded, owl:sameAs intact')
        or diag "got $status\n" . printable($head);
}

my @logged = grep { /has an unusable/ } split /\n/, $t->error_log;
cmp_ok(scalar @logged, '>=', scalar @cases, 'each bad link logged');
like($t->error_log, qr/the link of GTIN ${\ gtin(0)}, lot "", type "gs1%3AdefaultLink" has an unusable href: /,
     '... naming the GTIN, the lot, the type and the field');
ok(!grep({ /[\x00-\x08\x0b-\x1f\x7f-\xff]|Set-Cookie: owned/ } @logged),
   '... no control character or raw byte of the link in the log');

# Sound links beside them still answer.
my ($status, $h) = get("/01/$G", 'c.brand.cn');
is("$status " . ($h->{location}[0] // ''), "302 https://c.brand.cn/p/6901234567892",
   'a sound link of another GTIN: 302');
my $g50 = gtin(50);
($status, $h) = get("/01/$g50", 'c.brand.cn');
is("$status " . ($h->{location}[0] // ''), '302 https://c.example/good',
   'a GTIN with a bad pip link: its sound default link still 302');
($status) = get("/01/$g50?linkType=gs1:pip", 'c.brand.cn');
is($status, 503, '... its bad pip link 503');
($status) = get("/01/$g50?linkType=linkset", 'c.brand.cn');
is($status, 503, '... its linkset (which holds it) 503');

# ---- the resolver's root (item 14) --------------------------------------
sub anchor {
    my ($body) = @_;
    my $j = eval { JSON::PP->new->utf8->decode($body) } // {};
    return $j->{linkset} ? $j->{linkset}[0]{anchor} // '' : $j->{resolverRoot} // '';
}

my $port = $t->port;
my $body;
(undef, undef, undef, $body) = get("/01/$G?linkType=linkset", 'evil.example');
is(anchor($body), "http://c.brand.cn/01/$G",
   'Host: evil.example (the default server): the anchor is the server name\'s');
(undef, undef, undef, $body) = get('/.well-known/gs1resolver', 'evil.example');
is(anchor($body), 'http://c.brand.cn', '... and the resolverRoot');
(undef, undef, undef, $body) = get("/01/$G?linkType=linkset", 'c.brand.cn:1"x');
is(anchor($body), "http://c.brand.cn/01/$G", '... a Host with a quote: the same');
(undef, undef, undef, $body) = get("/01/$G?linkType=linkset", 'rooted.test');
is(anchor($body), "https://id.brand.cn/01/$G", 'root=https://id.brand.cn: the anchor');
(undef, undef, undef, $body) = get('/.well-known/gs1resolver', 'rooted.test');
is(anchor($body), 'https://id.brand.cn:8443', '... a resolverRoot with a port');
(undef, undef, undef, $body) = get("/01/$G?linkType=linkset", 'a.wild.test');
is(anchor($body), "http://127.0.0.1:$port/01/$G",
   'a wildcard server_name: the address the request came in on');
my $raw = $t->raw("GET /.well-known/gs1resolver HTTP/1.0\r\n\r\n");
like($raw, qr{"resolverRoot":"http://c\.brand\.cn"}, 'HTTP/1.0 without Host: the server name');
$t->stop;

# nginx -t: root= is a scheme and a host, nothing else.
for my $bad ('root=ftp://id.brand.cn', 'root=https://id.brand.cn/path',
             'root=https://id.brand.cn?x=1', 'root=https://id.brand.cn#x',
             'root=https://', 'root=id.brand.cn', 'other=1',
             "root=https://id.brand.cn\\r\\nX: 1")
{
    my $n = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /01/ { code_router_gs1 "$bad"; }
    }
EOF
    my ($rc, $out) = $n->test_conf;
    isnt($rc, 0, "nginx -t refuses code_router_gs1 $bad");
    like($out, qr/invalid/, '... saying so') or diag $out;
}

done_testing();
