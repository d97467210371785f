#!/usr/bin/perl
# The verify page and its answers after the second security review,
# through a real nginx with two workers: a wrong or locked PIN is told
# no count and no first time (page JSON, page HTML, API); the PIN form
# posts to a path of the configuration and the canonical code, never the
# echoed request URI (GET //verify?code=C); cross-site form posts to the
# page are refused before any PIN is looked at, the API's are not; the
# HTML page keeps the verdict's status (403, 429 with Retry-After, 404,
# 400); and PIN checks are not counted in code_router_scans_ignored_total.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);
use Encode ();
use CodeRouter::Test qw(mint);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();

# The page's location also shows the variables a wrong PIN must not set.
my $conf = verify_conf(dir => $d, key => $key);
my $told = '[$code_router_verifications|$code_router_first_verified]';
$conf =~ s{(add_header Cache-Control "no-store" always;)}
          {$1\n            add_header X-Told "$told" always;}
    or die 'no page location in verify_conf';
# The same server over HTTP/2 (cleartext, prior knowledge): its requests
# have an :authority, and no Host header unless the client sends one.
my $hport = CodeRouter::Test::free_port();
my ($srv) = $conf =~ /(\n    server \{.*?\n    \}\n)/s or die 'no server';
my $h2listen = CodeRouter::Test::nginx_version() >= 1025001
             ? "listen 127.0.0.1:$hport;\n        http2 on;"
             : "listen 127.0.0.1:$hport http2;";
$conf .= $srv =~ s/listen 127\.0\.0\.1:%%PORT%%;/$h2listen/r;
my $t = CodeRouter::Test::Nginx->new(workers => 2, http => $conf);
$t->start;

my $json = { Accept => 'application/json' };
my $port = $t->port;

sub wrong_of { sprintf '%08d', ($_[0] + 1) % 100000000 }

sub ignored {
    my ($m) = $t->get('/status')->{content}
        =~ /^code_router_scans_ignored_total\{zone="scans"\} (\d+)$/m;
    return $m;
}

sub pin_checks {
    my %pm = $t->get('/status')->{content}
        =~ /^code_router_pin_checks_total\{verification="(\w+)"\} (\d+)$/mg;
    my $n = 0;
    $n += $_ for values %pm;
    return $n;
}

# 14. PIN checks are not "ignored scans": the counter stays, the PIN
# checks are counted where they belong.
my $c14 = mint($key, 1, 60);
my $p14 = pin_of($key, 1, 60);
my ($ig, $pc) = (ignored(), pin_checks());
post_pin($t, "/verify?code=$c14", $p14, '192.0.2.140', %$json);
post_pin($t, "/verify?code=$c14", wrong_of($p14), '192.0.2.141', %$json);
post_pin($t, "/v1/codes/$c14/verify", $p14, '192.0.2.142');
post_pin($t, "/verify?code=$c14", '12', '192.0.2.143', %$json);
is(ignored(), $ig, "4 PIN checks: code_router_scans_ignored_total stays $ig");
is(pin_checks(), $pc + 4, '... and code_router_pin_checks_total counts them (+4)');
$t->get("/verify?code=$c14");
is(ignored(), $ig + 1, 'the page without a PIN is a read: ignored + 1');

# 3. A code verified 4 times; then strangers' wrong and locked PINs.
my $code = mint($key, 1, 50);
my $pin = pin_of($key, 1, 50);
my $wrong = wrong_of($pin);
my $first;
for my $i (1 .. 4) {
    my $j = json_of(post_pin($t, "/verify?code=$code", $pin, "192.0.2.$i", %$json));
    $first //= $j->{first_verified};
    is($j->{verifications}, $i, "right PIN $i: verifications $i") if $i == 4;
}
my $r = post_pin($t, "/verify?code=$code", $wrong, '198.51.100.1', %$json);
my $j = json_of($r);
is($j->{verification}, 'wrong_pin', 'a wrong PIN (page JSON): wrong_pin');
ok(!exists $j->{verifications}, '... no verifications') or diag $r->{content};
ok(!exists $j->{first_verified}, '... no first_verified');
$r = post_pin($t, "/v1/codes/$code/verify", $wrong, '198.51.100.2');
$j = json_of($r);
is($j->{verification}, 'wrong_pin', 'a wrong PIN (API): wrong_pin');
ok(!exists $j->{verifications} && !exists $j->{first_verified},
   '... neither a count nor a first time') or diag $r->{content};
$r = post_pin($t, "/verify?code=$code", $wrong, '198.51.100.3');
like($r->{headers}{'content-type'}, qr{^text/html}, 'a wrong PIN (page HTML)');
is($r->{headers}{'x-told'}, '[|]', '... its variables hold no count and no first time');
my $html = Encode::decode('UTF-8', $r->{content});
unlike($html, qr/4 次|4 times/, '... and the page says no count');
for (1 .. 5) {
    post_pin($t, "/verify?code=$code", $wrong, '198.51.100.4', %$json);
}
$r = post_pin($t, "/verify?code=$code", $pin, '198.51.100.4', %$json);
$j = json_of($r);
is($j->{verification}, 'locked', 'locked (page JSON), even for the right PIN');
ok(!exists $j->{verifications} && !exists $j->{first_verified},
   '... neither a count nor a first time') or diag $r->{content};
like($j->{retry_at} // '', qr/Z$/, '... but when to try again');
$r = post_pin($t, "/verify?code=$code", $pin, '198.51.100.4');
is($r->{headers}{'x-told'}, '[|]', 'locked (page HTML): no count, no first time');
$j = json_of(post_pin($t, "/verify?code=$code", $pin, '192.0.2.5', %$json));
is($j->{verifications}, 5, 'the right PIN is told: verifications 5');
is($j->{first_verified}, $first, '... and the first time');

# 9. The form's target: the location's path and the canonical code.
my $resp = $t->raw("GET //verify?code=\L$code\E HTTP/1.0\r\nHost: x\r\n\r\n");
like($resp, qr/^HTTP\/1\.\d 200/, 'GET //verify?code=c (lower case): the page');
unlike($resp, qr/action="\/\//, '... the form never posts to //...');
like($resp, qr/<form method="post" action="\/verify\?code=$code">/,
     '... but to /verify?code= and the canonical code');
$resp = $t->raw("GET /verify?code=$code&x=%22%3E HTTP/1.0\r\nHost: x\r\n\r\n");
like($resp, qr/action="\/verify\?code=$code">/, '... whatever else the query holds');

# 11. Cross-site form posts to the page: refused before any PIN check.
my $c11 = mint($key, 1, 61);
my $p11 = pin_of($key, 1, 61);
my $w11 = wrong_of($p11);
my $here = "http://127.0.0.1:$port";
for my $h (
    [{ Origin => 'https://evil.example' }, 'Origin: another site'],
    [{ Origin => 'https://evil.example', 'Sec-Fetch-Site' => 'cross-site' },
     'Origin and Sec-Fetch-Site: cross-site'],
    [{ 'Sec-Fetch-Site' => 'cross-site' }, 'Sec-Fetch-Site: cross-site'],
    [{ 'Sec-Fetch-Site' => 'same-site', Origin => "http://www.127.0.0.1:$port" },
     'Sec-Fetch-Site: same-site (another host of the site)'],
    [{ Origin => 'null' }, 'Origin: null (an opaque origin)'],
    [{ Origin => "http://127.0.0.1:1" }, 'Origin: this host, another port'],
    )
{
    my ($hd, $what) = @$h;
    my @v;
    for (1 .. 6) {
        my $rr = post_pin($t, "/verify?code=$c11", $w11, '203.0.113.11', %$json, %$hd);
        push @v, $rr->{status} . ' ' . (json_of($rr)->{verification} // json_of($rr)->{status});
    }
    is_deeply(\@v, [('403 error') x 6], "$what: 403, refused, six times");
}
$r = post_pin($t, "/verify?code=$c11", $p11, '203.0.113.11', Origin => 'https://evil.example');
like(json_of($r)->{error} // '', qr/another site/, '... the error says why (also for the page)');
$j = json_of(post_pin($t, "/verify?code=$c11", $w11, '203.0.113.11', %$json));
is($j->{verification}, 'wrong_pin',
   '... none of the 37 was a guess: the address is not locked');
for my $h (
    [{}, 'no Origin, no Sec-Fetch-Site (an old browser, a program)'],
    [{ 'Sec-Fetch-Site' => 'same-origin', Origin => $here }, 'Sec-Fetch-Site: same-origin'],
    [{ 'Sec-Fetch-Site' => 'none' }, 'Sec-Fetch-Site: none (the user\'s own action)'],
    [{ Origin => $here }, 'Origin: this host and port'],
    [{ Origin => "HTTP://127.0.0.1:$port" }, 'Origin in upper case'],
    )
{
    my ($hd, $what) = @$h;
    $j = json_of(post_pin($t, "/verify?code=$c11", $w11, '203.0.113.12', %$json, %$hd));
    is($j->{verification}, 'wrong_pin', "$what: checked");
}
# HTTP/2: the Origin against the :authority.
sub h2_post {
    my ($origin) = @_;
    my (undef, $out) = CodeRouter::Test::run_cmd(['curl', '-s',
        '--http2-prior-knowledge', '-o', '-',
        '-w', '\n%{http_version} %{http_code}', '-H', "Origin: $origin",
        '-H', 'Accept: application/json', '-H', 'X-Forwarded-For: 203.0.113.14',
        '--data', "pin=$w11", "http://127.0.0.1:$hport/verify?code=$c11"]);
    my ($body, $ver, $status) = $out =~ /\A(.*)\n(\S+) (\d+)\z/s
        or return ('', '', {});
    return ($ver, $status, json_of({ content => $body }));
}
my ($hv, $hs, $hj) = h2_post("http://127.0.0.1:$hport");
is("$hv $hs " . ($hj->{verification} // ''), '2 403 wrong_pin',
   'HTTP/2, Origin of this :authority: checked');
($hv, $hs, $hj) = h2_post('https://evil.example');
is("$hv $hs " . ($hj->{status} // ''), '2 403 error', 'HTTP/2, another Origin: refused');
# HTTP/2: a wrong Content-Type (415) and a body over 1,024 bytes (413) are
# answered once the body is read (answered before, curl dropped 65 of 100:
# the stream was reset for its unread body).  Over HTTP/1.1 the answer is
# early, the body discarded, the connection kept.
my $bodyf = "$d/h2-body";
for my $case (['text/plain', "pin=$w11", 415],
              ['application/x-www-form-urlencoded', 'pin=' . ('1' x 2000), 413],
              ['text/plain', 'x' x 3000, 413])
{
    my ($ct, $body, $want) = @$case;
    open my $fh, '>', $bodyf or die "$bodyf: $!";
    print $fh $body;
    close $fh;
    my $got = 0;
    for (1 .. 100) {
        my (undef, $out) = CodeRouter::Test::run_cmd(['curl', '-s',
            '--http2-prior-knowledge', '-o', '/dev/null',
            '-w', '%{http_version} %{http_code}', '-H', "Content-Type: $ct",
            '-H', 'X-Forwarded-For: 203.0.113.15', '--data-binary', "\@$bodyf",
            "http://127.0.0.1:$hport/verify?code=$c11"]);
        $got++ if ($out // '') eq "2 $want";
    }
    is($got, 100, "HTTP/2, $ct, " . length($body) . " bytes: $got of 100 "
                  . "answers $want arrive");
    my (undef, $out) = CodeRouter::Test::run_cmd(['curl', '-s', '--http1.1',
        '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n',
        '-H', "Content-Type: $ct", '-H', 'X-Forwarded-For: 203.0.113.15',
        '--data-binary', "\@$bodyf", "http://127.0.0.1:$port/verify?code=$c11",
        '--next', '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\n',
        "http://127.0.0.1:$port/status"]);
    is($out, "$want 1\n200 0\n",
       "HTTP/1.1: $want early, then the next request on the same connection");
}

$r = post_pin($t, "/v1/codes/$c11/verify", $p11, '203.0.113.13',
              Origin => 'https://evil.example', 'Sec-Fetch-Site' => 'cross-site');
is(json_of($r)->{verification}, 'genuine', 'the API (for backends) checks whatever Origin says');

# 12. The HTML page keeps the verdict's status.
my $c12 = mint($key, 1, 62);
my $p12 = pin_of($key, 1, 62);
$r = post_pin($t, "/verify?code=$c12", wrong_of($p12), '203.0.113.20');
is($r->{status}, 403, 'the page, wrong PIN: 403');
like($r->{headers}{'content-type'}, qr{^text/html}, '... HTML');
like(Encode::decode('UTF-8', $r->{content}), qr/防伪码错误/, '... saying wrong PIN');
is($r->{headers}{'cache-control'}, 'no-store', '... no-store');
post_pin($t, "/verify?code=$c12", wrong_of($p12), '203.0.113.20') for 1 .. 4;
$r = post_pin($t, "/verify?code=$c12", wrong_of($p12), '203.0.113.20');
is($r->{status}, 429, 'the page, locked: 429');
like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After');
like(Encode::decode('UTF-8', $r->{content}), qr/输入错误次数过多/, '... saying locked');
$r = post_pin($t, "/verify?code=$c12", '1234', '203.0.113.21');
is($r->{status}, 400, 'the page, malformed PIN: 400');
like(Encode::decode('UTF-8', $r->{content}), qr/请输入刮开涂层后的 8 位数字/,
     '... asking for 8 digits');
$r = post_pin($t, "/verify?code=$c12", $p12, '203.0.113.21');
is($r->{status}, 200, 'the page, genuine: 200');
my $forged = $c12;
substr($forged, -1, 1) = substr($forged, -1) eq '0' ? '1' : '0';
$r = $t->get("/verify?code=$forged");
is($r->{status}, 404, 'the page, a forged code: 404');
like(Encode::decode('UTF-8', $r->{content}), qr/此码未能通过验证/, '... saying so');
$r = $t->get('/verify?code=NOTACODE');
is($r->{status}, 400, 'the page, a malformed code: 400');
$r = $t->request('HEAD', "/verify?code=$forged");
is($r->{status}, 404, 'HEAD of the page, a forged code: 404');
is($t->get("/verify?code=$c12")->{status}, 200, 'the page for a genuine code: 200');

$t->stop;
done_testing;
