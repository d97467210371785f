#!/usr/bin/perl
# Every bad input of code_router_verify has a clear answer: bodies (type,
# size, chunked, form errors: missing, repeated, NUL, bad escapes), PINs
# (length, spaces, signs, full-width digits: malformed, and never counted
# as wrong), methods, codes (malformed, forged), a body that must not be
# read as the next request, 12-digit PINs; and every directive that can
# be wrong stops nginx -t with a message.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);
use HTTP::Tiny;
use Encode ();
use CodeRouter::Test qw(mint);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();

my $t = CodeRouter::Test::Nginx->new(workers => 2,
    http => verify_conf(dir => $d, key => $key, extra => <<'X'));
    server {
        listen 127.0.0.1:%%PORT%% ;
        server_name twelve;
        location / {
            code_router_verify;
            code_router_pin_digits 12;
        }
    }
X
$t->start;

my $code = mint($key, 1, 7);
my $pin = pin_of($key, 1, 7);
my $path = "/verify?code=$code";
my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0);
my $form = 'application/x-www-form-urlencoded';

sub post {
    my ($body, %h) = @_;
    my $r = $http->request('POST', $t->url($path), {
        headers => { 'Content-Type' => $form, Accept => 'application/json',
                     'X-Forwarded-For' => '192.0.2.1', %h },
        content => $body });
    return ($r, json_of($r));
}

# Bodies.
my ($r, $j) = post("pin=$pin", 'Content-Type' => 'text/plain');
is($r->{status}, 415, 'text/plain: 415');
like($j->{error}, qr/x-www-form-urlencoded/, '... saying what to send');
is($r->{headers}{'cache-control'}, 'no-store', '... no-store');
($r) = post("pin=$pin", 'Content-Type' => 'multipart/form-data; boundary=x');
is($r->{status}, 415, 'multipart: 415');
($r) = post("pin=$pin", 'Content-Type' => 'application/x-www-form-urlencodedX');
is($r->{status}, 415, 'a longer type name: 415');
($r, $j) = post("pin=$pin", 'Content-Type' => 'Application/X-WWW-Form-Urlencoded; charset=UTF-8');
is($j->{verification}, 'genuine', 'the type in any case, with a charset: accepted');
my $r0 = $http->request('POST', $t->url($path), { content => "pin=$pin",
    headers => { 'X-Forwarded-For' => '192.0.2.1' } });
is($r0->{status}, 415, 'no Content-Type: 415');

($r, $j) = post('pin=' . $pin . '&x=' . ('a' x (1024 - 7 - length $pin)));
is(length("pin=$pin&x=" . ('a' x (1024 - 7 - length $pin))), 1024, '(a body of 1,024 bytes)');
is($j->{verification}, 'verified_before', 'a body of 1,024 bytes: read');
($r, $j) = post('pin=' . $pin . '&x=' . ('a' x (1025 - 7 - length $pin)));
is($r->{status}, 413, 'a body of 1,025 bytes: 413');
like($j->{error}, qr/1024/, '... saying the limit');

# Chunked: no length announced; counted as it comes.
sub chunked {
    my ($body) = @_;
    my $c = '';
    for (my $i = 0; $i < length $body; $i += 100) {
        my $part = substr $body, $i, 100;
        $c .= sprintf("%x\r\n", length $part) . "$part\r\n";
    }
    return $t->raw("POST $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   . "Content-Type: $form\r\nAccept: application/json\r\n"
                   . "X-Forwarded-For: 192.0.2.1\r\n"
                   . "Transfer-Encoding: chunked\r\n\r\n${c}0\r\n\r\n");
}
like(chunked("pin=$pin"), qr/^HTTP\/1\.1 200 .*"verified_before"/s, 'chunked, small: read');
like(chunked("pin=$pin&x=" . ('a' x 2000)), qr/^HTTP\/1\.1 413 /, 'chunked, 2 KB: 413');

for my $c (['', 'missing', qr/no pin field/],
           ['pin', 'missing', undef],
           ["x=1&PIN=$pin", 'missing', qr/no pin field/],
           ["pin=$pin&pin=$pin", 'repeated', qr/repeated/],
           ["pin=$pin&p%69n=1", 'repeated (escaped name)', qr/repeated/],
           ["pin=$pin%00", 'a %00', qr/NUL/],
           ["pin=$pin\0", 'a raw NUL', qr/NUL/],
           ["pin=$pin%G0", 'a bad escape', qr/escape/],
           ["pin=$pin&x=%", "a bad escape in another field", qr/escape/])
{
    my ($body, $what, $err) = @$c;
    ($r, $j) = post($body);
    if ($err) {
        is($r->{status}, 400, "form, $what: 400");
        like($j->{error}, $err, "... $j->{error}");
    } else {
        is($j->{verification}, 'malformed_pin', "form, $what: an empty PIN, malformed");
    }
}

# PINs: malformed, 400, and never a wrong PIN (no lock after 20).
my %bad = ('7 digits' => substr($pin, 1), '9 digits' => "${pin}0",
           'a space (+)' => "+$pin", 'a trailing %20' => "$pin%20",
           'a sign' => '-' . substr($pin, 1), 'letters' => 'ABCDEFGH',
           'full-width digits' => join('', map { sprintf '%%EF%%BC%%%02X', 0x90 + $_ } split //, $pin),
           'a huge PIN' => '1' x 500);
for my $round (1 .. 3) {
    for my $what (sort keys %bad) {
        ($r, $j) = post("pin=$bad{$what}", 'X-Forwarded-For' => '192.0.2.99');
        next if $round > 1;
        is($r->{status}, 400, "PIN with $what: 400");
        is($j->{verification}, 'malformed_pin', '... malformed_pin');
        is($j->{pin_digits}, 8, '... pin_digits 8');
    }
}
($r, $j) = post("pin=$pin", 'X-Forwarded-For' => '192.0.2.99');
is($j->{verification}, 'verified_before', '24 malformed PINs locked nobody out');
($r, $j) = post('pin=' . join('', map { chr(ord($_) ^ 1) } split //, $pin),
                'X-Forwarded-For' => '192.0.2.98');
is($r->{status}, 403, 'a wrong PIN: 403');
is($j->{verification}, 'wrong_pin', '... wrong_pin');

# The PIN form is read as written: "+" is a space, %3x a digit.
($r, $j) = post('pin=' . join('', map { sprintf '%%%02X', ord } split //, $pin));
is($j->{verification}, 'verified_before', 'a PIN written as %3x escapes: right');

# Codes.
$r = $http->request('POST', $t->url('/verify?code=NOTACODE'),
    { headers => { 'Content-Type' => $form, Accept => 'application/json' },
      content => "pin=$pin" });
is($r->{status}, 400, 'a malformed code: 400');
is(json_of($r)->{status}, 'malformed', '... malformed');
(my $forged = $code) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
$r = $http->request('POST', $t->url("/verify?code=$forged"),
    { headers => { 'Content-Type' => $form, Accept => 'application/json' },
      content => "pin=$pin" });
is($r->{status}, 404, 'a forged code: 404');
is(json_of($r)->{status}, 'forged', '... forged');
ok(!exists json_of($r)->{verification}, '... and no verification');
$r = $http->request('POST', $t->url("/verify?code=$forged"),
    { headers => { 'Content-Type' => $form }, content => "pin=$pin" });
like(Encode::decode('UTF-8', $r->{content}), qr/此码未能通过验证/, '... the page says so');
unlike($r->{content}, qr/<form/, '... with no PIN form');

# Methods.
for my $m (qw(PUT DELETE PATCH)) {
    $r = $http->request($m, $t->url($path), { content => "pin=$pin",
        headers => { 'Content-Type' => $form } });
    is($r->{status}, 405, "$m: 405");
    is($r->{headers}{allow}, 'GET, HEAD, POST', '... Allow: GET, HEAD, POST');
}
$r = $http->request('GET', $t->url("/v1/codes/$code/verify"));
is($r->{status}, 405, 'GET .../CODE/verify (API): 405');
is($r->{headers}{allow}, 'POST', '... Allow: POST');
$r = $http->request('HEAD', $t->url($path));
is($r->{status}, 200, 'HEAD of the page: 200');

# A body refused early is discarded, not read as the next request.
my $smuggle = "GET /v1/codes/$code HTTP/1.1\r\nHost: x\r\n\r\n";
my $resp = $t->raw("POST $path HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
    . "Content-Length: " . length($smuggle) . "\r\n\r\n$smuggle"
    . "GET /v1/codes/$code HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
my @status = $resp =~ /^HTTP\/1\.1 (\d+)/mg;
is_deeply(\@status, [415, 200], 'a refused body is not a request: 415, then the real next one');

# 12 digits, configured: the 12-digit PIN is right, the 8-digit one malformed.
my $pin12 = pin_of($key, 1, 8, 12);
my $code8 = mint($key, 1, 8);
# (raw: HTTP::Tiny cannot set Host)
$resp = $t->raw("POST /$code8 HTTP/1.1\r\nHost: twelve\r\nConnection: close\r\n"
    . "Content-Type: $form\r\nAccept: application/json\r\n"
    . "Content-Length: " . length("pin=$pin12") . "\r\n\r\npin=$pin12");
like($resp, qr/"verification":"genuine".*"pin_digits":12|"pin_digits":12.*"verification":"genuine"/s,
     'code_router_pin_digits 12: the 12-digit PIN is genuine');
my $pin8 = pin_of($key, 1, 8);
$resp = $t->raw("POST /$code8 HTTP/1.1\r\nHost: twelve\r\nConnection: close\r\n"
    . "Content-Type: $form\r\nAccept: application/json\r\n"
    . "Content-Length: " . length("pin=$pin8") . "\r\n\r\npin=$pin8");
like($resp, qr/"verification":"malformed_pin"/, '... an 8-digit PIN is malformed there');

$t->stop;

# nginx -t: each directive that can be wrong.
my $base = verify_conf(dir => $d, key => $key);
for my $c (
    [sub { $_[0] =~ s/code_router_pin_guard zone=pins:1m;//r },
     qr/"code_router_verify" needs "code_router_pin_guard zone=NAME:SIZE"/, 'no pin guard'],
    [sub { $_[0] =~ s/code_router_scans zone=scans:1m store=\S+;//r },
     qr/"code_router_verify" needs "code_router_scans"/, 'no scan zone'],
    [sub { $_[0] =~ s/code_router_time_zone \+08:00/code_router_time_zone Asia\/Shanghai/r },
     qr/takes a fixed offset such as \+08:00/, 'an IANA zone name'],
    [sub { $_[0] =~ s/code_router_time_zone \+08:00/code_router_time_zone +8/r },
     qr/"code_router_time_zone" takes a fixed offset/, 'a zone of +8'],
    [sub { $_[0] . "code_router_pin_digits 5;\n" },
     qr/"code_router_pin_digits" must be 6 to 12/, 'pin digits 5'],
    [sub { $_[0] . "code_router_pin_digits 13;\n" },
     qr/must be 6 to 12/, 'pin digits 13'],
    [sub { $_[0] . "code_router_pin_digits eight;\n" },
     qr/must be 6 to 12/, 'pin digits "eight"'],
    [sub { $_[0] =~ s/zone=pins:1m/pins:1m/r },
     qr/takes zone=NAME:SIZE/, 'pin guard without zone='],
    [sub { $_[0] =~ s/zone=pins:1m/zone=pins:lots/r },
     qr/takes zone=NAME:SIZE/, 'pin guard with a bad size'],
    [sub { $_[0] =~ s/zone=pins:1m/zone=pins:8k/r },
     qr/zone "pins" is too small/, 'pin guard too small'],
    [sub { $_[0] =~ s/(code_router_pin_guard zone=pins:1m;)/$1 $1/r },
     qr/"code_router_pin_guard" directive is duplicate/, 'pin guard twice'],
    [sub { $_[0] =~ s/(code_router_verify \$arg_code;)/$1 $1/r },
     qr/"code_router_verify" directive is duplicate/, 'verify twice'],
    [sub { $_[0] =~ s/code_router_verify_page \/\.code-router/code_router_verify_page .code-router/r },
     qr/needs a URI that starts with "\/"/, 'a relative page'],
   )
{
    my ($edit, $want, $what) = @$c;
    my $bt = CodeRouter::Test::Nginx->new(http => $edit->($base));
    my ($rc, $out) = $bt->test_conf;
    isnt($rc, 0, "nginx -t fails: $what");
    like($out, $want, "... $what: the message says why");
}

done_testing;
