#!/usr/bin/perl
# Hostile input through a real nginx, each case with its asserted outcome:
#
#  1. codes of every wrong length, wrong alphabet, percent-encoded, with
#     NUL, Unicode look-alikes, lower case and Crockford aliases;
#  2. CR_HOSTILE_N (default 1,000,000) random well-formed codes and as many
#     single-character changes of valid codes: none accepted (a pipelining
#     C client, build/t/http-pipeline, checks every response);
#  3. URIs up to and past nginx's limit, every method, absurd headers;
#  4. campaign targets written behind the loader's back (build/t/raw-put):
#     header injection, open redirects, javascript:, markup; the fallback
#     and interstitial pages never echo them unescaped;
#  5. a truncated or garbage store and garbage key files: nginx -t fails
#     clearly; a store swapped for garbage under a running nginx answers
#     503, and no worker crashes.
#
# Malformed and forged codes always end in the 404 fallback: never a 5xx,
# never a redirect.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(cli root run_cmd tmpdir make_key write_file read_file
                        load_store mint);

my $ROOT = root();
my $RAW_PUT = "$ROOT/build/t/raw-put";
my $PIPELINE = "$ROOT/build/t/http-pipeline";
for my $bin ($RAW_PUT, $PIPELINE) {
    plan skip_all => "$bin not built (make unit)" unless -x $bin;
}

my $N = $ENV{CR_HOSTILE_N} // 1_000_000;
my @ALPHABET = split //, '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
my %VALUE = map { $ALPHABET[$_] => $_ } 0 .. 31;
my $WX = 'Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0.50';
my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = "$ROOT/conf/html";

# Serials 0..999,999 of key id 1 go to a plain H5 campaign: a code that
# were wrongly accepted would answer 302 (or unbound beyond the range).
load_store($db, ['c.csv', "campaign,type,url\nh5,h5,https://shop.example/landing\n"],
           ['b.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
                     . "main,1,0,999999,verify,h5\n"]);

# The documented location (regex capture), the prefix form with $uri, and
# a lean location for the volume run (no fallback page, no log).  Every
# answer carries $code_router_status in X-CR-Status so that each response
# can be checked, not only the totals.
my $conf = <<"EOF";
    log_format hostile escape=json '\$code_router_status \$status "\$request_uri"';
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log hostile;
        keepalive_requests 100000000;
        add_header X-CR-Status "\$code_router_status" always;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            code_router_interstitial /.cr/open.html;
            error_page 404 410 503 /.cr/fallback.html;
        }
        location /any/ {
            code_router \$uri;
            code_router_interstitial /.cr/open.html;
            error_page 404 410 503 /.cr/fallback.html;
        }
        location ~ "^/v/(?<code>[0-9A-Za-z]{16,20})\$" {
            access_log off;
            code_router \$code;
        }
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
        }
        location = /status { code_router_status; }
    }
EOF

my $t = CodeRouter::Test::Nginx->new(http => $conf, workers => 2);
my ($rc, $out) = $t->test_conf;
is($rc, 0, 'nginx -t passes') or diag $out;
$t->start;


# ---- helpers ---------------------------------------------------------

# Bytes as given on a new connection, then our end shut down for writing
# (so nginx's lingering close does not wait): the whole response.
sub raw {
    my ($text) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
                                  Timeout => 10) or die "connect: $!";
    print $s $text;
    shutdown $s, 1;
    local $/;
    my $resp = <$s>;
    close $s;
    return $resp // '';
}

# One raw request; the response parsed.
sub raw_req {
    my ($text) = @_;
    my $resp = raw($text);
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($line, @lines) = split /\r\n/, $head // '';
    my (%h, @names);
    for (@lines) {
        next unless /^([^:]+):\s*(.*)$/;
        push @names, lc $1;
        $h{lc $1} = $2;
    }
    my $status = ($line // '') =~ m{^HTTP/\d\.\d (\d{3})} ? $1 : 0;
    return { status => $status, headers => \%h, names => \@names,
             content => $body // '', raw => $resp,
             cr => $h{'x-cr-status'} // '' };
}

sub get_raw {
    my ($path, @headers) = @_;
    return raw_req("GET $path HTTP/1.1\r\nHost: hostile.test\r\n"
                   . join('', map { "$_\r\n" } @headers)
                   . "Connection: close\r\n\r\n");
}

sub page_status { $_[0]{content} =~ /data-status="([^"]*)"/ ? $1 : '' }

sub printable {
    my ($s) = @_;
    $s = substr($s, 0, 60) . '...(' . length($s) . ' bytes)' if length $s > 72;
    $s =~ s/([^\x21-\x7e])/sprintf '\\x%02X', ord $1/ge;
    return $s;
}

sub metrics {
    my %m = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
            split /\n/, $t->get('/status')->{content};
    return \%m;
}
sub outcome { $_[0]{qq{code_router_requests_total{status="$_[1]"}}} // 0 }

# Asserts the fallback: status, $code_router_status, no Location, no 5xx.
sub is_fallback {
    my ($r, $status, $cr, $what) = @_;
    my $ok = $r->{status} == $status && $r->{cr} eq $cr
             && !exists $r->{headers}{location}
             && ($cr eq '' || page_status($r) eq $cr);
    ok($ok, "$what: $status, $cr")
        or diag "got $r->{status} X-CR-Status '$r->{cr}' page '"
                . page_status($r) . "' Location '"
                . ($r->{headers}{location} // '') . "'";
}

my $code = mint($key, 1, 7);
my $LOCATION = "https://shop.example/landing?code=$code&batch=main&scene=verify&campaign=h5";
my $master = $t->pid;
my @workers0 = sort grep { chomp; $_ } `pgrep -P $master`;
is(scalar @workers0, 2, 'two workers');


# ---- 1. malformed codes ------------------------------------------------

my $r = get_raw("/$code");
is($r->{status}, 302, 'a valid code: 302');
is($r->{headers}{location}, $LOCATION, '... to its campaign');

# Every length from 0 to 40, made of alphabet characters (each a prefix or
# an extension of the valid code): only 18 is well formed.  Lengths 16-20
# reach the regex location; the others the prefix location.
my %lens;
for my $len (0 .. 40) {
    next if $len == 18;
    my $c = substr($code x 3, 0, $len);
    my $r = get_raw("/any/$c");
    $lens{ $r->{status} == 404 && $r->{cr} eq 'malformed'
           && !exists $r->{headers}{location} ? 'ok' : "$len: $r->{status} $r->{cr}" }++;
    if ($len >= 16 && $len <= 20) {
        $r = get_raw("/$c");
        $lens{ $r->{status} == 404 && $r->{cr} eq 'malformed' ? 'ok' : "$len (regex): $r->{status} $r->{cr}" }++;
    }
}
is_deeply(\%lens, { ok => 44 }, 'every length 0..40 but 18: 404 malformed (44 requests)');
is_fallback(get_raw('/any/' . ($code x 200)), 404, 'malformed', 'a 3,600-character code');
is_fallback(get_raw('/any/'), 404, 'malformed', 'an empty last segment (/any/)');

# The wrong alphabet: each non-alphabet ASCII byte that may stand in a
# path, put in place of the code's last character.
my %alpha;
my @bad = (grep { !/[0-9A-Za-z]/ && !/[\/?#%]/ } map { chr } 0x21 .. 0x7e);
for my $ch ('U', 'u', @bad) {
    my $c = substr($code, 0, 17) . $ch;
    my $r = get_raw('/any/' . $c);
    $alpha{ $r->{status} == 404 && $r->{cr} eq 'malformed' ? 'ok' : "'$ch': $r->{status} $r->{cr}" }++;
}
is_deeply(\%alpha, { ok => 2 + @bad },
          'U, u and every ASCII punctuation character in a code: 404 malformed ('
          . (2 + @bad) . ' characters)');
is_fallback(get_raw('/' . substr($code, 0, 17) . 'U'), 404, 'malformed',
            'U through the regex location');

# Percent-encoding: nginx decodes the path before code_router sees $uri or
# the capture, so an encoded valid code is the same code.
(my $enc = $code) =~ s/(.)/sprintf '%%%02X', ord $1/ge;
$r = get_raw("/$enc");
is($r->{status}, 302, 'a fully percent-encoded valid code decodes to the code: 302');
is($r->{headers}{location}, $LOCATION, '... the same Location');
$r = get_raw('/any/%' . sprintf('%02x', ord substr($code, 0, 1)) . substr($code, 1));
is($r->{status}, 302, '... also with lower-case hex, in the prefix location');
is_fallback(get_raw('/any/' . substr($code, 0, 17) . '%55'), 404, 'malformed',
            'an encoded U (%55)');
is_fallback(get_raw('/any/' . substr($code, 0, 17) . '%0A'), 404, 'malformed',
            'an encoded LF (%0A)');
is_fallback(get_raw('/any/' . substr($code, 0, 17) . '%C0'), 404, 'malformed',
            'an encoded lone byte 0xC0');
is_fallback(get_raw('/any/' . substr($code, 0, 17) . '%20'), 404, 'malformed',
            'an encoded space');
is_fallback(get_raw('/any/' . substr($code, 0, 17) . '%'), 400, '',
            'a bare %: nginx answers 400 itself');
is_fallback(get_raw('/any/' . substr($code, 0, 17) . '%G1'), 400, '',
            'a % with non-hex digits: nginx 400');
# NUL: nginx refuses %00 and a raw NUL in the request line itself.
is_fallback(get_raw('/' . substr($code, 0, 17) . '%00'), 400, '',
            '%00 in the code: nginx 400, the router never runs');
is_fallback(get_raw("/any/$code%00"), 400, '', '... also after a valid code');
is_fallback(raw_req('GET /' . substr($code, 0, 17) . "\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            400, '', 'a raw NUL in the request line: nginx 400');
is_fallback(raw_req("GET /$code\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            400, '', '... also after a valid code');
# An encoded slash is decoded into a path separator.  The regex location
# no longer matches (nginx's own 404, no router); code_router $uri takes
# the last segment, which is the valid code: by design the path before
# the code is not the router's business (GS1 Digital Link paths).
is_fallback(get_raw("/x%2F$code"), 404, '', 'an encoded slash before a code, regex location: nginx 404');
$r = get_raw("/any/x%2F$code");
is($r->{status}, 302, '... prefix location: the last segment is the valid code (302)');
is_fallback(get_raw('/any/' . substr($code, 0, 9) . '%2F' . substr($code, 9)), 404, 'malformed',
            'an encoded slash inside a code: malformed (9-character last segment)');
# Path tricks nginx resolves before any location is chosen.
$r = get_raw("/any/../$code");
is($r->{status}, 302, '/any/../CODE: nginx normalises to /CODE: 302');
is_fallback(get_raw("/any/$code/"), 404, 'malformed', 'a trailing slash: empty last segment');
is_fallback(get_raw("/any/$code;x=1"), 404, 'malformed', 'a ;parameter after the code');
$r = get_raw("/$code?code=" . mint($key, 1, 8));
is($r->{headers}{location}, $LOCATION, 'a query string is ignored: the path decides');

# Unicode look-alikes, raw UTF-8 and percent-encoded.
my %look = (
    'fullwidth digit one (U+FF11)'      => "\xEF\xBC\x91",
    'fullwidth capital A (U+FF21)'      => "\xEF\xBC\xA1",
    'Cyrillic capital A (U+0410)'       => "\xD0\x90",
    'Cyrillic capital ES (U+0421)'      => "\xD0\xA1",
    'Greek capital omicron (U+039F)'    => "\xCE\x9F",
    'mathematical bold digit 8 (U+1D7D6)' => "\xF0\x9D\x9F\x96",
    'zero width space (U+200B)'         => "\xE2\x80\x8B",
);
for my $name (sort keys %look) {
    my $u = $look{$name};
    is_fallback(get_raw('/any/' . substr($code, 0, 17) . $u), 404, 'malformed', "$name in place of a character (raw UTF-8)");
    (my $pe = $u) =~ s/(.)/sprintf '%%%02X', ord $1/ges;
    is_fallback(get_raw('/any/' . substr($code, 0, 17) . $pe), 404, 'malformed', "... percent-encoded");
}
(my $cyr = $code) =~ s/A/\xD0\x90/g;
(my $full = $code) =~ s/([0-9])/"\xEF\xBC" . chr(0x90 + $1)/ge;
is_fallback(get_raw("/any/$full"), 404, 'malformed', 'every digit in fullwidth: malformed');
is_fallback(get_raw("/any/$cyr"), 404, 'malformed', 'every A in Cyrillic: malformed')
    if $cyr ne $code;

# Lower case and Crockford's aliases (docs/code-format.md): the same code.
$r = get_raw('/' . lc $code);
is($r->{status}, 302, 'lower case: the same code, 302');
is($r->{headers}{location}, $LOCATION, '... the canonical code is forwarded');
my (undef, $some) = run_cmd([cli(), 'mint', '--key', $key, '--kid', 1, '--from', 10, '--count', 400]);
my ($c1) = grep { index($_, '1', 2) > 0 && substr($_, 2) =~ /0/ } split /\n/, $some;
my $loc1 = get_raw("/$c1")->{headers}{location};
for my $alias (['I', '1'], ['i', '1'], ['L', '1'], ['l', '1'], ['O', '0'], ['o', '0']) {
    my ($a, $v) = @$alias;
    (my $c = $c1) =~ s/$v/$a/g;
    $c = substr($c1, 0, 2) . substr($c, 2);     # keep "81", the header
    $r = get_raw("/$c");
    ok($r->{status} == 302 && $r->{headers}{location} eq $loc1,
       "the alias $a for $v ($c): the same code, the same Location");
}
(my $c1u = $c1) =~ s/^8/B/;
$r = get_raw("/$c1u");
ok($r->{status} == 404 && $r->{cr} eq 'forged', 'changing the key-id field: forged');
is($r->{headers}{location}, undef, '... no Location');

# Version field: first characters 0-7 and G-Z are other versions.
my %ver;
for my $ch (@ALPHABET) {
    my $r = get_raw('/' . $ch . substr($code, 1));
    my $want = ($VALUE{$ch} >> 3) == 1 ? ($ch eq '8' ? 'ok' : 'forged') : 'malformed';
    $ver{ $r->{cr} eq $want && $r->{status} == ($want eq 'ok' ? 302 : 404) ? 'ok' : "$ch: $r->{status} $r->{cr}" }++;
}
is_deeply(\%ver, { ok => 32 }, 'every first character: versions 0, 2, 3 malformed; other key ids forged');


# ---- 2. a million random and a million mutated codes --------------------

# Each request file line: "EXPECTED PATH".  The client checks each response
# (404, X-CR-Status = EXPECTED, no Location) and counts.
sub run_pipeline {
    my ($file) = @_;
    my $t0 = time;
    my ($rc, $out, $err) = run_cmd([$PIPELINE, $t->port, $file, 4, 64]);
    my %c = (rc => $rc, err => $err, wall => time - $t0);
    for (split /\n/, $out) {
        my @f = split / /;
        $c{ join ' ', @f[0 .. $#f - 1] } = $f[-1];
    }
    return \%c;
}

my %expected;
my $before = metrics();

# Random: "81" (version 1, key id 1: live) and 16 random characters, so
# each one reaches the tag check; any other start is malformed before.
srand($ENV{CR_HOSTILE_SEED} // 53);
open my $fh, '>', "$d/random.txt" or die;
for (1 .. $N) {
    my $c = '81';
    $c .= $ALPHABET[int rand 32] for 1 .. 16;
    $c = lc $c if rand() < 0.1;
    print $fh "forged /v/$c\n";
}
close $fh;
my $res = run_pipeline("$d/random.txt");
is($res->{rc}, 0, "$N random well-formed codes: every request answered") or diag $res->{err};
is($res->{requests}, $N, '... ' . ($res->{requests} // 0) . ' responses');
is($res->{'status 404'}, $N, '... every one 404');
is($res->{'cr forged'}, $N, '... every one forged (0 accepted)');
is($res->{location}, 0, '... no Location header');
is($res->{mismatch}, 0, '... no response other than expected') or diag $res->{err};
my $t_random = $res->{seconds} // 0;
diag sprintf "random: %d requests in %.1f s (%.0f/s)", $N, $t_random, $N / ($t_random || 1);

# Mutated: every single-character change of valid codes to another
# alphabet character (never an alias, so never the same code), code after
# code until N.  A change of the first character changes the version
# (malformed) or the key id (forged: not live); any other is forged.
my $per_code = 18 * 31;
my $ncodes = int(($N + $per_code - 1) / $per_code);
my ($mrc, $minted) = run_cmd([cli(), 'mint', '--key', $key, '--kid', 1, '--from', 0, '--count', $ncodes]);
my @valid = split /\n/, $minted;
is(scalar @valid, $ncodes, "minted $ncodes valid codes to mutate");
my ($n, $nmal) = (0, 0);
open $fh, '>', "$d/mutated.txt" or die;
MUTATE: for my $c (@valid) {
    for my $pos (0 .. 17) {
        my $orig = substr($c, $pos, 1);
        for my $ch (@ALPHABET) {
            next if $ch eq $orig;
            last MUTATE if $n == $N;
            my $m = $c;
            substr($m, $pos, 1) = $ch;
            my $want = $pos == 0 && ($VALUE{$ch} >> 3) != 1 ? 'malformed' : 'forged';
            $nmal++ if $want eq 'malformed';
            print $fh "$want /v/$m\n";
            $n++;
        }
    }
}
close $fh;
$res = run_pipeline("$d/mutated.txt");
is($res->{rc}, 0, "$N single-character changes of $ncodes valid codes: every request answered") or diag $res->{err};
is($res->{'status 404'}, $N, '... every one 404');
is($res->{'cr forged'} // 0, $N - $nmal, '... ' . ($N - $nmal) . ' forged');
is($res->{'cr malformed'} // 0, $nmal, "... $nmal malformed (a first character of another version)");
is($res->{'cr ok'} // 0, 0, '... 0 accepted');
is($res->{location}, 0, '... no Location header');
is($res->{mismatch}, 0, '... each one as expected') or diag $res->{err};
my $t_mutated = $res->{seconds} // 0;
diag sprintf "mutated: %d requests in %.1f s (%.0f/s)", $N, $t_mutated, $N / ($t_mutated || 1);

my $after = metrics();
is(outcome($after, 'forged') - outcome($before, 'forged'), 2 * $N - $nmal,
   'the counters agree: ' . (2 * $N - $nmal) . ' more forged');
is(outcome($after, 'malformed') - outcome($before, 'malformed'), $nmal, "... $nmal more malformed");
is(outcome($after, 'ok') - outcome($before, 'ok'), 0, '... and not one more ok');
for my $s (qw(unbound revoked not_started ended unavailable)) {
    is(outcome($after, $s), outcome($before, $s), "... nor $s");
}


# ---- 3. long URIs, methods, absurd headers -----------------------------

# large_client_header_buffers (default 4 8k): the request line must fit in
# 8 kB.  Below that the router answers; above it nginx answers 414.
my $long = 'Z' x (8000 - length '/any/');
is_fallback(get_raw("/any/$long"), 404, 'malformed', 'an 8,000-byte URI: 404 malformed from the router');
is_fallback(get_raw('/any/' . ('Z' x 8200)), 414, '', 'an 8,205-byte URI: 414 from nginx');
is_fallback(get_raw('/any/' . ('Z' x 100_000)), 414, '', 'a 100 kB URI: 414 from nginx');
is_fallback(get_raw('/' . ('A' x 8000)), 404, '', 'an 8 kB path the regex does not match: nginx 404, no router');
is_fallback(get_raw('/any/' . ('%5A' x 2600)), 404, 'malformed', 'a 7,805-byte percent-encoded URI: malformed');

# Methods.  GET and HEAD are served; nginx refuses TRACE, CONNECT and
# malformed method names itself; the router answers 405 to the rest.
$r = raw_req("HEAD /$code HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
ok($r->{status} == 302 && $r->{headers}{location} eq $LOCATION && $r->{content} eq '',
   'HEAD: 302, the same Location, no body');
$r = raw_req("HEAD /any/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
ok($r->{status} == 404 && $r->{cr} eq 'malformed' && $r->{content} eq '',
   'HEAD of a malformed code: 404, no body');
my %m405;
for my $m (qw(POST PUT DELETE PATCH OPTIONS PROPFIND PROPPATCH MKCOL COPY MOVE
              LOCK UNLOCK SEARCH PURGE BREW FOO X_CUSTOM-METHOD),
           'A' x 200) {
    my $r = raw_req("$m /$code HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    $m405{ $r->{status} == 405 && ($r->{headers}{allow} // '') eq 'GET, HEAD'
           && !exists $r->{headers}{location} ? 'ok' : printable($m) . ": $r->{status}" }++;
}
is_deeply(\%m405, { ok => 18 }, 'POST, PUT, DELETE, PATCH, OPTIONS, WebDAV, made-up and a 200-letter method: 405, Allow: GET, HEAD, body not read');
is_fallback(raw_req("TRACE /$code HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405, '', 'TRACE: nginx 405 itself');
is_fallback(raw_req("CONNECT /$code HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405, '', 'CONNECT /CODE: nginx 405 itself');
is_fallback(raw_req("CONNECT shop.example:443 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, '', 'CONNECT host:port: nginx 400');
for my $m ('get', 'G3T', 'GE T', "GET\x01", '') {
    is_fallback(raw_req("$m /$code HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, '',
                'method "' . printable($m) . '": nginx 400');
}
is_fallback(raw_req("GET /$code HTTP/2.0\r\nHost: x\r\n\r\n"), 505, '', 'HTTP/2.0 in an HTTP/1 request line: 505');
is_fallback(raw_req("GET /$code HTTP/1.1\r\nConnection: close\r\n\r\n"), 400, '', 'HTTP/1.1 without Host: 400');
$r = raw_req("GET /$code\r\n");
like($r->{raw}, qr/^<html>.*302 Found/s, 'HTTP/0.9 (no version): nginx sends the 302 body alone');
$r = raw_req("GET http://evil.example/$code HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
is($r->{headers}{location}, $LOCATION, 'an absolute URI of another host: the Location is the campaign\'s');
$r = get_raw("/$code", 'X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: javascript');
is($r->{headers}{location}, $LOCATION, 'X-Forwarded-Host/Proto change nothing');

# Headers.
my @absurd = (
    ['a 7,000-byte User-Agent', 302, ['User-Agent: ' . ('A' x 7000)]],
    ['a 7,000-byte WeChat User-Agent', 302, ['User-Agent: ' . ('MicroMessenger/' x 466)]],
    ['a User-Agent of invalid UTF-8 bytes', 302, ["User-Agent: MicroMessenger \xFF\xFE\xC0\x80"]],
    ['100 headers', 302, [map { "X-H$_: v" } 1 .. 100]],
    ['a header name with an underscore (ignored)', 302, ['X_Under: 1']],
    ['a 9,000-byte User-Agent', 400, ['User-Agent: ' . ('A' x 9000)]],
    ['4,000 headers (more than 32 kB)', 400, [map { "X-Header-$_: value-$_" } 1 .. 4000]],
    ['a duplicate Host', 400, ['Host: second.test']],
    ['a Host with a slash', 400, 'Host' => 'a/b'],
    ['a Host of 300 dots', 400, 'Host' => '.' x 300],
    ['a NUL in a header value', 400, ["X-A: a\0b"]],
    ['a CR in a header value', 400, ["X-A: a\rb"]],
    ['a control byte in a header name', 400, ["X\x01Y: z"]],
    ['an empty header name', 400, [': empty']],
    ['an obsolete folded line', 400, [' folded']],
    ['Content-Length and Transfer-Encoding', 400, ['Content-Length: 5', 'Transfer-Encoding: chunked']],
    ['two different Content-Length', 400, ['Content-Length: 1', 'Content-Length: 2']],
    ['a negative Content-Length', 400, ['Content-Length: -1']],
    ['an unknown Transfer-Encoding', 501, ['Transfer-Encoding: gzip, chunked']],
);
for my $a (@absurd) {
    my ($what, $want, @h) = @$a;
    my $r;
    if ($h[0] eq 'Host') {
        $r = raw_req("GET /$code HTTP/1.1\r\nHost: $h[1]\r\nConnection: close\r\n\r\n");
    } else {
        $r = get_raw("/$code", @{ $h[0] });
    }
    if ($want == 302) {
        ok($r->{status} == 302 && $r->{headers}{location} eq $LOCATION, "$what: our normal answer (302)")
            or diag "got $r->{status}";
    } else {
        is_fallback($r, $want, '', "$what: nginx $want");
    }
}
$r = raw_req("GET /$code HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
             . "5\r\nhello\r\n0\r\n\r\n");
is($r->{status}, 302, 'a GET with a chunked body: 302, body discarded');
$r = raw("GET /$code HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n");
like($r, qr/^HTTP\/1\.1 302 .*HTTP\/1\.1 400 /s, 'a valid request pipelined with garbage: 302, then nginx 400');


# ---- 4. targets written behind the loader's back -----------------------

# The loader creates harmless campaigns e0, e1, ... each with a batch of
# ten serials; build/t/raw-put then overwrites each campaign with values
# the loader refuses (\xHH in raw-put's arguments is a byte).  The router
# re-checks every target with the loader's rules: 503 unavailable.
my $FUT = int(time) + 86400;
my $PAST = int(time) - 86400;
my $SCRIPT = '"><script>alert(1)</script>';
my $EVIL_HDR = '\x0d\x0aX-Injected: 1';
my @targets = (
    # [what, raw-put fields, User-Agent, status, $code_router_status]
    ['h5 url with CRLF + Set-Cookie', ['type=h5', 'url=https://ok.example/\x0d\x0aSet-Cookie: evil=1']],
    ['h5 url with LF + header', ['type=h5', 'url=https://ok.example/\x0aX-Injected: 1']],
    ['h5 url with CR + header', ['type=h5', 'url=https://ok.example/\x0dX-Injected: 1']],
    ['h5 url with NUL + header', ['type=h5', 'url=https://ok.example/\x00' . $EVIL_HDR]],
    ['h5 url with quote and <script>', ['type=h5', "url=https://ok.example/$SCRIPT"]],
    ['h5 url javascript:', ['type=h5', 'url=javascript:alert(document.cookie)']],
    ['h5 url JaVaScRiPt:', ['type=h5', 'url=JaVaScRiPt:alert(1)//https://']],
    ['h5 url data:', ['type=h5', 'url=data:text/html,<script>alert(1)</script>']],
    ['h5 url //evil.example (protocol-relative)', ['type=h5', 'url=//evil.example/']],
    ['h5 url /\\evil.example', ['type=h5', 'url=/\\\\evil.example/']],
    ['h5 url https:\\\\evil.example', ['type=h5', 'url=https:\\\\\\\\evil.example/']],
    ['h5 url https://a@evil', ['type=h5', 'url=https://a@evil.example/']],
    ['h5 url https://shop.example@evil', ['type=h5', 'url=https://shop.example@evil.example/']],
    ['h5 url https://user:pw@evil', ['type=h5', 'url=https://shop.example:pw@evil.example/x']],
    ['h5 url with a backslash before @', ['type=h5', 'url=https://evil.example\\\\@shop.example/']],
    ['h5 url http:// (not https)', ['type=h5', 'url=http://evil.example/']],
    ['h5 url https:/// (no host)', ['type=h5', 'url=https:///evil.example/']],
    ['h5 url with a space', ['type=h5', 'url=https://ok.example/ evil']],
    ['h5 url with a tab', ['type=h5', 'url=https://ok.example/\x09evil']],
    ['h5 url with raw UTF-8', ['type=h5', 'url=https://ok.example/\xe4\xb8\xad']],
    ['h5 url with a Cyrillic host', ['type=h5', 'url=https://shop.\xd0\xb5xample/']],
    ['h5 url with a bad %', ['type=h5', 'url=https://ok.example/%zz']],
    ['h5 url of 3,000 bytes', ['type=h5', 'url=https://ok.example/' . ('a' x 3000)]],
    ['h5 without a url', ['type=h5']],
    ['official account url with CRLF + Location', ['type=official_account',
        'url=https://mp.weixin.qq.com/s/x\x0d\x0aLocation: https://evil.example/']],
    ['unknown type 99 with a good url', ['type=99', 'url=https://ok.example/']],
    ['before_url with CRLF (not started)', ['type=h5', 'url=https://ok.example/', "starts_at=$FUT",
        'before_url=https://ok.example/soon' . $EVIL_HDR]],
    ['before_url javascript: (not started)', ['type=h5', 'url=https://ok.example/', "starts_at=$FUT",
        'before_url=javascript:alert(1)']],
    ['after_url //evil.example (ended)', ['type=h5', 'url=https://ok.example/', "ends_at=$PAST",
        'after_url=//evil.example/']],
    ['after_url https://a@evil (ended)', ['type=h5', 'url=https://ok.example/', "ends_at=$PAST",
        'after_url=https://a@evil.example/']],
    ['url_link javascript: (WeChat)', ['type=miniprogram', 'appid=wx0123456789abcdef',
        'url_link=javascript:alert(1)'], $WX],
    ['url_link with CRLF (WeChat)', ['type=miniprogram', 'appid=wx0123456789abcdef',
        'url_link=https://wxaurl.cn/x' . $EVIL_HDR], $WX],
    ['url_link //evil.example (WeChat)', ['type=miniprogram', 'appid=wx0123456789abcdef',
        'url_link=//evil.example/'], $WX],
    ['appid with a quote and <script>', ['type=miniprogram', "appid=wx$SCRIPT"]],
    ['appid of 18 characters with a quote', ['type=miniprogram', 'appid=wx0123456789abcde"']],
    ['path with <script>', ['type=miniprogram', 'appid=wx0123456789abcdef', "path=pages/a$SCRIPT"]],
    ['path with a leading /', ['type=miniprogram', 'appid=wx0123456789abcdef', 'path=/pages/a']],
    ['path with ?', ['type=miniprogram', 'appid=wx0123456789abcdef', 'path=pages/a?x=1']],
    ['path with CRLF', ['type=miniprogram', 'appid=wx0123456789abcdef', 'path=pages/a' . $EVIL_HDR]],
    ['query with CRLF', ['type=miniprogram', 'appid=wx0123456789abcdef', 'query=a=1' . $EVIL_HDR]],
    ['query with a space', ['type=miniprogram', 'appid=wx0123456789abcdef', 'query=a=1 b']],
    ['query of 600 bytes', ['type=miniprogram', 'appid=wx0123456789abcdef', 'query=a=' . ('x' x 600)]],
    ['weixin:// url with <script>', ['type=miniprogram', 'appid=wx0123456789abcdef',
        "url=weixin://dl/business/?t=$SCRIPT"]],
    ['weixin:// url with CRLF', ['type=miniprogram', 'appid=wx0123456789abcdef',
        'url=weixin://dl/business/?t=x' . $EVIL_HDR]],
    ['mini-program url javascript:', ['type=miniprogram', 'appid=wx0123456789abcdef',
        'url=javascript:alert(1)']],
    ['mini-program url https:// (not weixin://)', ['type=miniprogram', 'appid=wx0123456789abcdef',
        'url=https://evil.example/']],
);
my $nt = @targets;
load_store($db, ['ec.csv', "campaign,type,url\n"
                           . join('', map { "e$_,h5,https://placeholder.example/\n" } 0 .. $nt + 9)],
           ['eb.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
                      . join('', map { "eb$_,1," . (2_000_000 + 10 * $_) . ','
                                       . (2_000_000 + 10 * $_ + 9) . ",marketing,e$_\n" } 0 .. $nt + 9)]);
my (undef, $ecodes) = run_cmd([cli(), 'mint', '--key', $key, '--kid', 1, '--from', 2_000_000,
                              '--count', 10 * ($nt + 10)]);
my @ecodes = split /\n/, $ecodes;
sub ecode { $ecodes[10 * $_[0]] }

sub raw_put {
    my ($rc, $out, $err) = run_cmd([$RAW_PUT, $db, @_]);
    die "raw-put: $err" if $rc;
}
raw_put(map { ('campaign', "id=e$_", @{ $targets[$_][1] }) } 0 .. $#targets);

# No header but nginx's and ours; nothing of the bad value in the head;
# no markup of it in the body.
my %HEADERS = map { $_ => 1 } qw(server date content-type content-length
    transfer-encoding connection x-cr-status location cache-control allow);
sub clean {
    my ($r) = @_;
    my ($head) = split /\r\n\r\n/, $r->{raw}, 2;
    my @odd = grep { !$HEADERS{$_} } @{ $r->{names} };
    return "headers @odd" if @odd;
    return 'evil in the head' if $head =~ /evil|inject|script|cookie/i;
    return 'markup in the body' if $r->{content} =~ /<script>alert|<img|javascript:|evil\.example/i;
    return '';
}

my $err_before = length $t->error_log;
for my $i (0 .. $#targets) {
    my ($what, $fields, $ua) = @{ $targets[$i] };
    my $r = get_raw('/' . ecode($i), $ua ? "User-Agent: $ua" : ());
    my $bad = clean($r);
    # A record that does not decode is unreadable: the code is genuine
    # ("issued"); a record that decodes to a bad target is "unavailable".
    my $want = $what =~ /^unknown type/ ? 'issued' : 'unavailable';
    ok($r->{status} == 503 && $r->{cr} eq $want && page_status($r) eq $want
       && !exists $r->{headers}{location} && !$bad,
       "$what: 503 $want, no Location, nothing injected")
        or diag "got $r->{status} '$r->{cr}' $bad\n" . printable(substr $r->{raw}, 0, 400);
}
my @logged = grep { /has an unusable target|is unreadable/ } split /\n/, substr($t->error_log, $err_before);
cmp_ok(scalar @logged, '>=', $nt, "each one logged in the error log ($nt)");

# What the rules allow is emitted safely.  A mini-program query may hold
# quotes and markup: it is percent-encoded into the weixin:// URL, which the
# interstitial writes entity-escaped into its href.  A campaign name full of
# markup and SSI commands is escaped by SSI's echo.  A single quote is a
# legal URL character: kept, harmless in a header and in a double-quoted
# attribute.
my $k = $nt;
raw_put('campaign', "id=e$k", 'type=miniprogram', 'appid=wx0123456789abcdef',
        "query=a=$SCRIPT&b=<img>",
        "name=<script>alert(2)</script><img src=x onerror=alert(3)><!--# echo var=\"code_router_target\" -->");
$r = get_raw('/' . ecode($k));
is($r->{status}, 200, 'a mini-program query with quotes and markup: the interstitial (200)');
unlike($r->{content}, qr/<script>alert|<img|<!--#/, '... neither the query nor the name appears as markup');
like($r->{content}, qr/<h1>&lt;script&gt;alert\(2\)&lt;\/script&gt;&lt;img src=x onerror=alert\(3\)&gt;&lt;!--# echo var=&quot;code_router_target&quot; --&gt;<\/h1>/,
     '... the name entity-escaped, its SSI command not run');
like($r->{content}, qr/href="weixin:\/\/dl\/business\/\?appid=wx0123456789abcdef&amp;path=&amp;query=a%3D%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E%26b%3D%3Cimg%3E%26code%3D/,
     '... the query percent-encoded in the href');
is(clean({ %$r, content => '' }), '', '... and no odd header');

$k++;
raw_put('campaign', "id=e$k", 'type=miniprogram', 'appid=wx0123456789abcdef',
        "url=weixin://dl/business/?t=a'onmouseover='alert(1)");
$r = get_raw('/' . ecode($k));
like($r->{content}, qr/href="weixin:\/\/dl\/business\/\?t=a'onmouseover='alert\(1\)"/,
     "a weixin:// URL with single quotes: inside the double-quoted href, inert");

$k++;
raw_put('campaign', "id=e$k", 'type=h5', "url=https://ok.example/a'b");
$r = get_raw('/' . ecode($k));
is($r->{status}, 302, "an https URL with a single quote: 302");
like($r->{headers}{location}, qr{^https://ok\.example/a'b\?code=}, '... kept verbatim in Location');

# Good window URLs still redirect, and say why in $code_router_status.
$k++;
raw_put('campaign', "id=e$k", 'type=h5', 'url=https://ok.example/', "starts_at=$FUT",
        'before_url=https://ok.example/soon',
        'campaign', 'id=e' . ($k + 1), 'type=h5', 'url=https://ok.example/', "ends_at=$PAST",
        'after_url=https://ok.example/ended');
$r = get_raw('/' . ecode($k));
ok($r->{status} == 302 && $r->{headers}{location} eq 'https://ok.example/soon'
   && $r->{cr} eq 'not_started', 'a good before_url: 302 there, $code_router_status not_started')
    or diag "$r->{status} '$r->{cr}'";
$r = get_raw('/' . ecode($k + 1));
ok($r->{status} == 302 && $r->{headers}{location} eq 'https://ok.example/ended'
   && $r->{cr} eq 'ended', 'a good after_url: 302 there, $code_router_status ended')
    or diag "$r->{status} '$r->{cr}'";

# Hostile ids and batch facts: percent-encoded into the Location, escaped
# in the scan log; an id with CR/LF cannot add a line to the error log.
my $base = 3_000_000;
raw_put('campaign', 'id=ev\x0d\x0aX-Injected: 1', 'type=h5', 'url=https://ok.example/',
        'batch', 'id=b\x0d\x0aSet-Cookie: x=1', 'kid=1', "from=$base", 'to=' . ($base + 9),
        'scene=marketing', 'campaign=ev\x0d\x0aX-Injected: 1', 'sku=<script>alert(1)</script>',
        'lot=\x0d\x0a', 'region="><img>',
        'campaign', 'id=ev2\x0aINJECTED LOG LINE', 'type=h5', 'url=javascript:alert(1)',
        'batch', 'id=b2', 'kid=1', 'from=' . ($base + 10), 'to=' . ($base + 19), 'scene=trace',
        'campaign=ev2\x0aINJECTED LOG LINE',
        'override', 'kid=1', 'serial=' . ($base + 20), 'state=campaign', 'campaign=ghost',
        'override', 'kid=1', 'serial=' . ($base + 21), 'state=9', 'campaign=e0');
$r = get_raw('/' . mint($key, 1, $base));
is($r->{status}, 302, 'a campaign and batch id with CR/LF, markup in sku/lot/region: 302');
is($r->{headers}{location},
   'https://ok.example/?code=' . mint($key, 1, $base)
   . '&batch=b%0D%0ASet-Cookie%3A%20x%3D1&scene=marketing&campaign=ev%0D%0AX-Injected%3A%201',
   '... the ids percent-encoded in the Location');
is(clean({ %$r, content => '' }) =~ s/evil in the head//r, '', '... no injected header');
ok(!grep({ /^(x-injected|set-cookie)$/ } @{ $r->{names} }), '... no X-Injected, no Set-Cookie');
$err_before = length $t->error_log;
is_fallback(get_raw('/' . mint($key, 1, $base + 10)), 503, 'unavailable', 'an id with LF and a bad target');
is_fallback(get_raw('/' . mint($key, 1, $base + 20)), 503, 'issued', 'an override to a missing campaign');
is_fallback(get_raw('/' . mint($key, 1, $base + 21)), 503, 'issued', 'an override of an unknown state');
my @new = split /\n/, substr($t->error_log, $err_before);
is_deeply([grep { !m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[} } @new], [],
          '... every error log line is a whole nginx line (the LF did not start a new one)')
    or diag join "\n", @new;


# ---- 5. a truncated or garbage store, garbage key files ----------------

# A store big enough that half of it cuts off pages in use (20,000
# overrides), and its broken copies.
my $big = "$d/big.mdb";
write_file("$d/big.csv", "kid,serial,state,campaign\n"
                         . join('', map { "1,$_,revoked,\n" } 1 .. 20_000));
load_store($big, ['bc.csv', "campaign,type,url\nh5,h5,https://shop.example/landing\n"], "$d/big.csv");
my $bigsize = -s $big;
sub copy_file { write_file($_[1], read_file($_[0])) }
my %broken = (
    'truncated to half' => sub { copy_file($big, $_[0]); truncate $_[0], int($bigsize / 2) or die },
    'truncated to one page short' => sub { copy_file($big, $_[0]); truncate $_[0], $bigsize - 4096 or die },
    'truncated to 0 bytes' => sub { write_file($_[0], '') },
    'its header overwritten with random bytes' => sub {
        my $g = read_file($big);
        substr($g, 0, 8192) = join '', map { chr int rand 256 } 1 .. 8192;
        write_file($_[0], $g);
    },
    'a text file' => sub { write_file($_[0], "campaign,type,url\nh5,h5,https://shop.example/\n" x 100) },
    'an LMDB file of someone else' => sub {
        my ($rc, $out, $err) = run_cmd(['mdb_load', '-n', '-f', "$d/foreign.txt", $_[0]]);
        die "mdb_load: $err" if $rc;
    },
    'a directory' => sub { mkdir $_[0] or die },
);
write_file("$d/foreign.txt", "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 6b6579\n 76616c\nDATA=END\n");
my %broken_msg = (
    'truncated to half' => qr/is truncated: \d+ bytes, but its pages need $bigsize/,
    'truncated to one page short' => qr/is truncated: \d+ bytes, but its pages need $bigsize/,
    'truncated to 0 bytes' => qr/is empty \(0 bytes\): not a code-router store/,
    'its header overwritten with random bytes' => qr/cannot open: MDB_INVALID/,
    'a text file' => qr/cannot open: MDB_INVALID/,
    'an LMDB file of someone else' => qr/not a code-router store/,
    'a directory' => qr/is not a regular file/,
);

my $n_broken = 0;
for my $what (sort keys %broken) {
    my $f = "$d/broken-" . $n_broken++ . '.mdb';
    $broken{$what}->($f);
    my $bt = CodeRouter::Test::Nginx->new(http => "    code_router_db $f;\n    code_router_key 1 $key;\n");
    my ($rc, $out) = $bt->test_conf;
    ok($rc > 0 && $rc < 128, "nginx -t with a store $what: fails, no signal (exit $rc)");
    like($out, qr/store "\Q$f\E"?.*$broken_msg{$what}.* in \S+nginx\.conf:\d+/, '... clearly: ' . ($out =~ /(store "[^\n]*?)(?: in \/|\n|$)/ ? $1 : $out));
    ok(!-e "$f-lock", '... and leaves no lock file') unless $what eq 'an LMDB file of someone else';
}

# Under a running nginx: each broken file renamed over the store in use.
# Workers notice within a second, answer 503, never crash; a good copy
# renamed back is served again.
sub workers_of { my $m = $_[0]; return sort grep { chomp; $_ } `pgrep -P $m` }
copy_file($db, "$d/good.mdb");
$err_before = length $t->error_log;
my $vcode = "/$code";
for my $what (grep { $_ ne 'a directory' } sort keys %broken) {    # rename(2) cannot
    my $f = "$d/swap.mdb";
    system('rm', '-rf', $f);
    $broken{$what}->($f);
    rename $f, $db or die "rename: $!";
    sleep 1.2;
    my %seen;
    $seen{ get_raw($vcode)->{status} . ' ' . get_raw($vcode)->{cr} }++ for 1 .. 4;
    is_deeply(\%seen, { '503 issued' => 4 }, "store replaced by a file $what: 503 issued")
        or diag explain \%seen;
    is_fallback(get_raw($vcode), 503, 'issued', '... the fallback page');
    copy_file("$d/good.mdb", "$d/good-copy.mdb");
    rename "$d/good-copy.mdb", $db or die "rename: $!";
    system('rm', '-rf', "$d/swap.mdb-lock");
    my $back = 0;
    for (1 .. 50) {
        sleep 0.1;
        my $r = get_raw($vcode);
        $back = $r->{status} == 302 && get_raw($vcode)->{status} == 302 and last;
    }
    ok($back, '... a good copy renamed back: served again');
}
ok(kill(0, $master), 'the master is still up');
is_deeply([workers_of($master)], \@workers0, 'the same two workers: none crashed or was respawned');
my @err = split /\n/, substr($t->error_log, $err_before);
is_deeply([grep { /\[(alert|crit|emerg)\]|signal|core dumped/ } @err], [],
          'no [alert], [crit], [emerg] or signal in the error log');
like(join("\n", @err), qr/is truncated: .*answering 503 until it opens/, '... which says a store was truncated');

# Key files that are not keys: nginx -t fails, naming file and reason.
my $kdir = "$d/keys";
mkdir $kdir or die;
my $mkkey = sub { my ($name, $bytes, $mode) = @_; write_file("$kdir/$name", $bytes, $mode // 0600); "$kdir/$name" };
my $good = read_file($key);
my @badkeys = (
    ['31 bytes', $mkkey->('short', substr($good, 0, 31)), qr/is 31 bytes: a master key is exactly 32 bytes/],
    ['33 bytes', $mkkey->('long', "$good\n"), qr/is 33 bytes: a master key is exactly 32 bytes/],
    ['0 bytes', $mkkey->('empty', ''), qr/is 0 bytes: a master key is exactly 32 bytes/],
    ['32 bytes but mode 0644', $mkkey->('loose', $good, 0644), qr/has mode 0644: group and others must have no access/],
    ['32 bytes but mode 0604', $mkkey->('other', $good, 0604), qr/has mode 0604/],
    ['a directory', do { mkdir "$kdir/dir", 0700; "$kdir/dir" }, qr/is not a regular file/],
    ['missing', "$kdir/missing", qr/cannot open: No such file or directory/],
    ['a dangling symlink', do { symlink "$kdir/nothing", "$kdir/dangling"; "$kdir/dangling" },
     qr/cannot open: No such file or directory/],
    ['a symlink to /dev/zero', do { symlink '/dev/zero', "$kdir/zero"; "$kdir/zero" }, qr/is not a regular file/],
    ['a FIFO', do { system('mkfifo', '-m', '600', "$kdir/fifo") == 0 or die; "$kdir/fifo" },
     qr/is not a regular file/],
);
for my $b (@badkeys) {
    my ($what, $file, $re) = @$b;
    my $bt = CodeRouter::Test::Nginx->new(http => "    code_router_db $db;\n    code_router_key 1 $file;\n");
    my ($rc, $out);
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 20;
        ($rc, $out) = $bt->test_conf;
        alarm 0;
    };
    is($@, '', "nginx -t with a key file $what: returns (no hang)");
    ok(($rc // 0) > 0 && $rc < 128, '... fails, no signal');
    like($out // '', qr/key file "\Q$file\E"?.*$re.* in \S+nginx\.conf:\d+/, "... clearly: $re");
}

$t->stop;
is(scalar $t->bad_log_lines, 0, 'nginx logged no alert and no sanitizer report');

done_testing;
