#!/usr/bin/perl
# HTTPS.  Every outcome of a scan over TLS, with HTTP/1.1 and HTTP/2, has
# the same status, headers and body as over plain HTTP (one nginx, one
# server, both listeners; a self-signed certificate made by openssl; curl
# as the client, checking the certificate).  And conf/nginx.conf itself,
# run: port 80 answers only WeChat's verification file and a redirect to
# HTTPS; 443 routes scans over HTTP/1.1 and HTTP/2 and resumes sessions.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(strftime :sys_wait_h);
use Time::HiRes qw(sleep time);
use IO::Socket::INET;
use CodeRouter::Test qw(root run_cmd tmpdir make_key write_file read_file
                        load_store mint free_port self_signed_cert ops_conf
                        run_nginx exec_nginx nginx_version);

my $HOST = 'c.brand.cn';
my $WX = 'Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0.50';
my $PHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1';

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
my ($cert, $keyfile) = self_signed_cert($d, $HOST);

sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $_[0])) }
my ($past2, $past1, $fut1, $fut2) = (iso(-172800), iso(-86400), iso(86400), iso(172800));

load_store($db, ['c.csv', <<"EOF"], ['b.csv', <<'EOF'], ['o.csv', <<'EOF']);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
h5,H5,h5,https://shop.example/landing?ref=qr#top,,,,,,,,
oa,OA,official_account,https://mp.weixin.qq.com/s/abc,,,,,,,,
mp,MP,miniprogram,,wx0123456789abcdef,pages/lottery/index,k=a,https://wxaurl.cn/XyZ,,,,
fut,Soon,h5,https://x.example/,,,,,$fut1,$fut2,https://x.example/soon,
futb,Soon bare,h5,https://x.example/,,,,,$fut1,,,
past,Over,h5,https://x.example/,,,,,$past2,$past1,,https://x.example/ended
pastb,Over bare,h5,https://x.example/,,,,,,$past1,,
EOF
batch,kid,serial_from,serial_to,scene,campaign
b-h5,1,1,100,verify,h5
b-oa,1,101,200,trace,oa
b-mp,1,201,300,marketing,mp
b-fut,1,501,600,marketing,fut
b-futb,1,601,700,marketing,futb
b-past,1,701,800,marketing,past
b-pastb,1,801,900,marketing,pastb
EOF
kid,serial,state,campaign
1,50,revoked,
EOF

# One server, listening plain and with TLS: the same configuration
# answers both, so any difference is the transport's.
my $tport = free_port();
my $tls_listen = nginx_version() >= 1025001
               ? "listen 127.0.0.1:$tport ssl;\n        http2 on;"
               : "listen 127.0.0.1:$tport ssl http2;";
my $t = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        $tls_listen
        server_name $HOST;
        ssl_certificate $cert;
        ssl_certificate_key $keyfile;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            code_router_interstitial /.cr/open.html;
            error_page 403 404 410 503 /.cr/fallback.html;
        }
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
            etag off;
            add_header Cache-Control "no-store" always;
            add_header X-Content-Type-Options nosniff always;
        }
    }
EOF
$t->start;

# curl, as a phone would ask: returns { version, status, headers (name =>
# [values], hop-by-hop and Date left out), body }.
sub curl {
    my ($url, %o) = @_;
    my $dd = tmpdir();
    my @cmd = ('curl', '-s', '-S', '--max-time', '10', '-o', "$dd/body",
               '-D', "$dd/head", '-w', '%{http_version}',
               '--cacert', $o{cacert} // $cert,
               '--resolve', "$HOST:$o{port}:127.0.0.1",
               $o{http2} ? '--http2' : '--http1.1',
               '-A', $o{ua} // $PHONE);
    push @cmd, '-X', $o{method} if $o{method} && $o{method} ne 'HEAD';
    push @cmd, '-I' if ($o{method} // '') eq 'HEAD';
    push @cmd, @{ $o{extra} // [] };
    my ($rc, $out, $err) = run_cmd([@cmd, $url]);
    return { error => "curl $rc: $err" } if $rc;
    my $head = read_file("$dd/head");
    # With -I the headers are the body too; the last block counts.
    my ($status, @lines) = split /\r\n/, (split /\r\n\r\n/, $head)[-1];
    my %h;
    for (@lines) {
        next unless /^([^:]+):\s*(.*)$/;
        my $n = lc $1;
        next if $n =~ /^(date|connection|keep-alive|transfer-encoding)$/;
        push @{ $h{$n} }, $2;
    }
    # With -I curl writes the headers as the body.
    my $body = ($o{method} // '') eq 'HEAD' ? '' : read_file("$dd/body");
    return { version => $out, status => ($status =~ m{^HTTP/\S+ (\d+)})[0],
             headers => \%h, body => $body };
}

my $c = mint($key, 1, 7);
my $forged = $c;
substr($forged, 17, 1) = substr($forged, 17, 1) eq 'A' ? 'B' : 'A';
my %cases = (
    'ok, h5'                         => ["/$c"],
    'ok, lower case'                 => ['/' . lc $c],
    'ok, official account'           => ['/' . mint($key, 1, 150)],
    'mini-program in WeChat'         => ['/' . mint($key, 1, 250), ua => $WX],
    'mini-program outside WeChat'    => ['/' . mint($key, 1, 250)],
    'not started, before_url'        => ['/' . mint($key, 1, 550)],
    'not started'                    => ['/' . mint($key, 1, 650)],
    'ended, after_url'               => ['/' . mint($key, 1, 750)],
    'ended'                          => ['/' . mint($key, 1, 850)],
    'revoked'                        => ['/' . mint($key, 1, 50)],
    'unbound'                        => ['/' . mint($key, 1, 5000)],
    'forged'                         => ["/$forged"],
    'malformed'                      => ['/0' . substr($c, 1)],
    'HEAD'                           => ["/$c", method => 'HEAD'],
    'POST: 405'                      => ["/$c", method => 'POST'],
    'no such location'               => ['/nothing-here'],
);

my %want_status = ('ok, h5' => 302, 'mini-program outside WeChat' => 200,
                   'revoked' => 410, 'unbound' => 404, 'POST: 405' => 405);
for my $name (sort keys %cases) {
    my ($path, %o) = @{ $cases{$name} };
    my $plain = curl("http://$HOST:${\ $t->port}$path", port => $t->port, %o);
    my $h1 = curl("https://$HOST:$tport$path", port => $tport, %o);
    my $h2 = curl("https://$HOST:$tport$path", port => $tport, http2 => 1, %o);
    subtest $name => sub {
        for ($plain, $h1, $h2) { ok(!$_->{error}, 'answered') or diag $_->{error} }
        is($plain->{status}, $want_status{$name}, "plain HTTP: $want_status{$name}")
            if $want_status{$name};
        is($h1->{version}, '1.1', 'TLS, HTTP/1.1 spoken');
        is($h2->{version}, '2', 'TLS, HTTP/2 spoken (ALPN)');
        for my $r ([h1 => $h1], [h2 => $h2]) {
            my ($v, $x) = @$r;
            is($x->{status}, $plain->{status}, "$v: the status of plain HTTP ($plain->{status})");
            is_deeply($x->{headers}, $plain->{headers}, "$v: the same headers")
                or diag explain { plain => $plain->{headers}, $v => $x->{headers} };
            is($x->{body}, $plain->{body}, "$v: the same body");
        }
    };
}

# A client that does not trust the certificate is refused: the checks
# above did verify it.
my $bad = curl("https://$HOST:$tport/$c", port => $tport, cacert => '/dev/null');
like($bad->{error} // '', qr/curl (60|77)/, 'curl verified the certificate (refused without it)');
$t->stop;

# ---------------------------------------------------------- conf/nginx.conf
my $od = tmpdir();
mkdir "$od/logs";
make_key("$od/1.key");
load_store("$od/brand.mdb", ['c.csv', "campaign,type,url\nh5,h5,https://shop.example/p\n"],
           ['b.csv', "batch,kid,serial_from,serial_to,scene,campaign\nb,1,1,100,verify,h5\n"]);
my %port = (http => free_port(), https => free_port(), api => free_port());
ops_conf($od, %port);
write_file("$od/wechat/MP_verify_abc123.txt", "abc123\n", 0644);
my $oc = mint("$od/1.key", 1, 7);

my ($rc, $o, $e) = run_nginx('-t', '-p', $od, '-c', "$od/nginx.conf",
                             '-e', "$od/error.log");
is($rc, 0, 'conf/nginx.conf passes nginx -t') or diag "$o$e";
unlike("$o$e", qr/deprecated/, '... in the form this nginx expects (no deprecation warning)');

my $pid = fork // die;
if (!$pid) {
    open STDERR, '>', "$od/stderr.log";
    exec_nginx('-p', $od, '-c', "$od/nginx.conf", '-e', "$od/error.log",
               '-g', 'daemon off;');
}
my $up = 0;
for (1 .. 250) {
    last if waitpid($pid, WNOHANG) == $pid;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port{https});
    if ($s) { $up = 1; close $s; last }
    sleep 0.02;
}
ok($up, 'conf/nginx.conf: nginx starts') or diag read_file("$od/error.log");

my $r = curl("http://$HOST:$port{http}/$oc", port => $port{http});
is($r->{status}, 301, 'port 80: a scan is redirected (301)');
is_deeply($r->{headers}{location}, ["https://$HOST/$oc"], '... to the same path over HTTPS');
$r = curl("http://$HOST:$port{http}/$oc?x=1", port => $port{http},
          extra => ['-H', 'Host: evil.example']);
is_deeply($r->{headers}{location}, ["https://$HOST/$oc?x=1"],
          '... to the scan host whatever Host was sent, query kept');
$r = curl("http://$HOST:$port{http}/status", port => $port{http});
is($r->{status}, 301, '... and so is everything else (/status)');
$r = curl("http://$HOST:$port{http}/MP_verify_abc123.txt", port => $port{http});
is($r->{status}, 200, "port 80: WeChat's verification file is served");
is($r->{body}, "abc123\n", '... as it is');
for my $h2 (0, 1) {
    my $v = $h2 ? 'HTTP/2' : 'HTTP/1.1';
    $r = curl("https://$HOST:$port{https}/$oc", port => $port{https}, http2 => $h2,
              cacert => "$od/tls/fullchain.pem");
    is($r->{version}, $h2 ? '2' : '1.1', "443: $v spoken");
    is($r->{status}, 302, "443, $v: a scan is routed (302)");
    like($r->{headers}{location}[0] // '', qr{^https://shop\.example/p\?code=$oc&}, '... to its target');
    $r = curl("https://$HOST:$port{https}/MP_verify_abc123.txt", port => $port{https},
              http2 => $h2, cacert => "$od/tls/fullchain.pem");
    is($r->{body}, "abc123\n", "443, $v: the verification file too");
}

# Resumption: the session of one connection resumes the next (no full
# handshake), from the shared cache (session tickets are off).  -ign_eof:
# TLS 1.3 gives the session after the handshake; s_client must wait.
my $sess = "$od/tls/session.pem";
my @sc = ('openssl', 's_client', '-connect', "127.0.0.1:$port{https}",
          '-servername', $HOST, '-CAfile', "$od/tls/fullchain.pem", '-ign_eof');
my ($rc1, $o1) = run_cmd([@sc, '-sess_out', $sess], "GET /$oc HTTP/1.1\r\nHost: $HOST\r\nConnection: close\r\n\r\n");
my ($rc2, $o2) = run_cmd([@sc, '-sess_in', $sess], "GET /$oc HTTP/1.1\r\nHost: $HOST\r\nConnection: close\r\n\r\n");
like($o1, qr/^New, TLSv1\.3/m, 'TLS 1.3: a first connection is a new session');
like($o2, qr/^Reused, TLSv1\.3/m, '... and the next one resumes it');
like($o2, qr{^HTTP/1\.1 302}m, '... and is answered');

kill 'TERM', $pid;
waitpid $pid, 0;
my @bad = grep { /\[(alert|crit|emerg)\]|ERROR: AddressSanitizer|runtime error:/ }
          split /\n/, read_file("$od/error.log") . read_file("$od/stderr.log");
ok(!@bad, 'conf/nginx.conf: no alert and no sanitizer report') or diag join "\n", @bad;

done_testing;
