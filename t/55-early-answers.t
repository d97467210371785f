#!/usr/bin/perl
# An early answer (405...) of the router, the API and the
# status page reads and drops the request body first, so a body that is a
# whole request is never answered, nor counted, as a second request on a
# keep-alive connection.  Raw HTTP over one socket: bodies with
# Content-Length, chunked bodies, Expect: 100-continue; each connection
# ends with a GET of the API that says how often the code was counted.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use JSON::PP ();
use CodeRouter::Test qw(tmpdir make_key load_store mint);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url,appid,path,query,starts_at,ends_at
h5,H5,h5,https://shop.example/p,,,,2020-01-01T00:00+08:00,
CSV
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b-h5,1,1,100,verify,h5,,,,,
CSV

my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/codes/ {
            code_router_api;
        }
        location = /status {
            code_router_status;
        }
        location / {
            code_router \$uri;
        }
    }
CONF
$t->start;

my $c = mint($key, 1, 7);

# Sends $text on one connection, reads until nginx closes it; returns the
# final responses' status codes (a "100 Continue" is not one) and the
# last response's body.
sub talk {
    my ($text, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port // $t->port,
                                  Timeout => 10)
        or die "connect: $!";
    print $s $text;
    local $/;
    my $resp = <$s> // '';
    close $s;
    my @codes = grep { $_ != 100 } $resp =~ m{^HTTP/1\.1 (\d{3}) }mg;
    my ($body) = $resp =~ /\r\n\r\n([^\r\n]*)\s*\z/;
    return (\@codes, $body // '');
}

# The API's count of scans of $c, asked on a connection of its own.
sub scans {
    my ($codes, $body) = talk("GET /v1/codes/$c HTTP/1.1\r\nHost: t\r\n"
                              . "Connection: close\r\n\r\n");
    my $j = eval { JSON::PP::decode_json($body) } // {};
    return $j->{scans} // -1;
}

sub chunked {
    my ($data) = @_;
    my $out = '';
    for my $part ($data =~ /(.{1,17})/sg) {
        $out .= sprintf("%x\r\n%s\r\n", length $part, $part);
    }
    return $out . "0\r\n\r\n";
}

my $scan = "POST /v1/codes/$c/scans HTTP/1.1\r\nHost: t\r\n"
         . "Content-Length: 0\r\n\r\n";
my $last = "GET /v1/codes/$c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

# [what, method and path, the status of the early answer]
my @early = (
    ['API PUT .../CODE', "PUT /v1/codes/$c", 405],
    ['API GET .../CODE/scans', "GET /v1/codes/$c/scans", 405],
    ['API POST .../CODE', "POST /v1/codes/$c", 405],
    ['API DELETE .../CODE/scans', "DELETE /v1/codes/$c/scans", 405],
    ['router POST /CODE', "POST /$c", 405],
    ['router PUT /CODE', "PUT /$c", 405],
    ['status POST', "POST /status", 405],
);

is(scans(), 0, 'no scan yet');

for my $e (@early) {
    my ($what, $req, $status) = @$e;

    my ($codes) = talk("$req HTTP/1.1\r\nHost: t\r\nContent-Length: "
                       . length($scan) . "\r\n\r\n$scan$last");
    is_deeply($codes, [$status, 200],
              "$what, a whole request as its body: two answers");

    ($codes) = talk("$req HTTP/1.1\r\nHost: t\r\n"
                    . "Transfer-Encoding: chunked\r\n\r\n" . chunked($scan)
                    . $last);
    is_deeply($codes, [$status, 200],
              "$what, the same body chunked: two answers");

    ($codes) = talk("$req HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                    . "Content-Length: " . length($scan) . "\r\n\r\n"
                    . "$scan$last");
    is_deeply($codes, [$status, 200],
              "$what, with Expect: 100-continue: two answers");

    # Requests one after the other, no body: each answered once.
    ($codes) = talk("$req HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                    . $scan . $last);
    is_deeply($codes, [$status, 200, 200],
              "$what, then a real scan: three answers");
}

# Each connection above had exactly one real POST .../scans: the four of
# each early answer, and no smuggled one.
is(scans(), scalar(@early), 'only the real scans were counted, none smuggled '
   . 'in a body');

# A GET that carries a body is answered once, and its body is not a scan.
my ($codes) = talk("GET /$c HTTP/1.1\r\nHost: t\r\nContent-Length: "
                   . length($scan) . "\r\n\r\n$scan$last");
is_deeply($codes, [302, 200], 'router GET with a request as its body: two '
          . 'answers');
is(scans(), scalar(@early) + 1, '... the GET counted, its body not');

$t->stop;

# conf/api.conf as shipped: its own early answers (401 without a valid
# key, 404 off the API's path) are nginx's "return", which discards the
# body too.  The smuggled scan carries the key, so it would count.
my $port = CodeRouter::Test::free_port();
my $api = CodeRouter::Test::example_api_conf($port);
my $a = CodeRouter::Test::Nginx->new(http => <<"CONF" . $api);
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m;
    server { listen 127.0.0.1:%%PORT%%; }
CONF
$a->start;

my $k = "X-Api-Key: replace-with-a-long-random-key-for-mp1\r\n";
my $c2 = mint($key, 1, 8);
my $scan2 = "POST /v1/codes/$c2/scans HTTP/1.1\r\nHost: t\r\n$k"
          . "Content-Length: 0\r\n\r\n";
my $last2 = "GET /v1/codes/$c2 HTTP/1.1\r\nHost: t\r\n$k"
          . "Connection: close\r\n\r\n";
for my $e (['no key', "POST /v1/codes/$c2/scans", '', 401],
           ['a wrong key', "PUT /v1/codes/$c2", "X-Api-Key: x\r\n", 401],
           ['off the path', 'POST /other', '', 404],
           ['the key, PUT', "PUT /v1/codes/$c2", $k, 405])
{
    my ($what, $req, $hdr, $status) = @$e;
    my ($codes) = talk("$req HTTP/1.1\r\nHost: t\r\n${hdr}Content-Length: "
                       . length($scan2) . "\r\n\r\n$scan2$last2", $port);
    is_deeply($codes, [$status, 200],
              "conf/api.conf, $what, a whole request as its body: two answers");
    ($codes) = talk("$req HTTP/1.1\r\nHost: t\r\n$hdr"
                    . "Transfer-Encoding: chunked\r\n\r\n" . chunked($scan2)
                    . $last2, $port);
    is_deeply($codes, [$status, 200],
              "conf/api.conf, $what, chunked: two answers");
}
my (undef, $body) = talk($last2, $port);
is((eval { JSON::PP::decode_json($body) } // {})->{scans}, 0,
   'conf/api.conf: no smuggled scan counted');
$a->stop;

done_testing;
