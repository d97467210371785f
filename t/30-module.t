#!/usr/bin/perl
# The module in Debian's nginx: it loads, "nginx -t" checks its directives
# (with file and line), and the code_router handler decodes and verifies.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli run_cmd tmpdir make_key write_file load_store
                        root scan_dir);
use CodeRouter::Verify qw(pin_of post_pin json_of);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $key2 = make_key("$d/2.key");
my $key3 = make_key("$d/3.key");        # one master key per key id
my $db = "$d/empty.mdb";
load_store($db, ['c.csv', "campaign,type,url\nc,h5,https://x.example/\n"]);

sub mint {
    my ($k, $kid, $serial) = @_;
    my ($rc, $out) = run_cmd([cli(), 'mint', '--key', $k, '--kid', $kid,
                              '--from', $serial, '--count', 1]);
    chomp $out;
    return $out;
}

my $server = <<"EOF2";
    code_router_db $db;
EOF2
$server .= <<'EOF2';
    log_format scan '$code_router_status|$code_router_kid|$code_router_serial|$code_router_client';
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})$" {
            code_router $code;
        }
    }
EOF2

my $t = CodeRouter::Test::Nginx->new(http => <<"EOF2");
    code_router_key 1 $key;
$server
EOF2
my ($rc, $log) = $t->test_conf;
is($rc, 0, 'nginx -t passes with the module loaded') or diag $log;

$t->start;
my $valid = mint($key, 1, 4242);
my $other = mint($key2, 1, 4242);
my $r = $t->get("/$valid");
is($r->{status}, 404, 'a genuine code bound to nothing: 404');
$r = $t->get("/$other", { 'User-Agent' => 'Mozilla/5.0 MicroMessenger/8.0.50' });
is($r->{status}, 404, 'a code of another key: 404');
$r = $t->get('/0123456789ABCDEFG');
is($r->{status}, 404, 'a malformed code: 404');
$r = $t->request('POST', "/$valid");
is($r->{status}, 405, 'POST: 405');
$r = $t->request('HEAD', "/$valid");
is($r->{status}, 404, 'HEAD is served like GET');
$t->stop;

my @lines = split /\n/, CodeRouter::Test::read_file($t->prefix . '/logs/scan.log');
is($lines[0], 'unbound|1|4242|other', 'variables of a genuine code');
is($lines[1], 'forged|1|-|wechat', 'a forged code: kid, no serial; WeChat UA');
is($lines[2], 'malformed|-|-|other', 'a malformed code');
is(scalar $t->bad_log_lines, 0, 'no alert in the error log');

# Several key ids, and a server with keys of its own.
$t = CodeRouter::Test::Nginx->new(http => <<"EOF2");
    code_router_key 1 $key;
    code_router_key 2 $key2;
    code_router_wechat_ua "(?i)wechat-test";
$server
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name other.test;
        code_router_key 2 $key3;
        access_log %%PREFIX%%/logs/scan.log scan;
        location ~ "^/(?<code>.+)\$" { code_router \$code; }
    }
EOF2
$t->start;
$t->get('/' . mint($key, 1, 1));
$t->get('/' . mint($key2, 2, 2), { 'User-Agent' => 'x WECHAT-TEST y' });
$t->get('/' . mint($key3, 2, 3), { Host => 'other.test' });
$t->get('/' . mint($key, 1, 4), { Host => 'other.test' });
$t->stop;
@lines = split /\n/, CodeRouter::Test::read_file($t->prefix . '/logs/scan.log');
is($lines[0], 'unbound|1|1|other', 'key id 1 of two');
is($lines[1], 'unbound|2|2|wechat', 'key id 2 of two; custom WeChat regex');
is($lines[2], 'unbound|2|3|other', "a server's own key serves its key id");
is($lines[3], 'forged|1|-|other', "... and only its own: the http-level key 1 is not inherited");

# Directive errors: nginx -t fails and names file and line.
my @bad = (
    ["code_router_key abc $key;", qr/invalid key id "abc": a key id is 0\.\.255/],
    ["code_router_key 256 $key;", qr/invalid key id "256"/],
    ["code_router_key 1 $d/nope.key;", qr/key file "\Q$d\E\/nope.key": cannot open/],
    ["code_router_key 1 $key; code_router_key 1 $key2;", qr/duplicate key id 1/],
    ["code_router_key 1;", qr/invalid number of arguments in "code_router_key"/],
    ['code_router_wechat_ua "(";', qr/pcre2?_compile\(\) failed|missing \)|missing closing/],
    ['code_router $uri;', qr/"code_router" directive is not allowed here/],
);
my $loose = write_file("$d/loose.key", 'k' x 32, 0644);
push @bad, ["code_router_key 1 $loose;", qr/has mode 0644: group and others/];
for my $b (@bad) {
    my $bt = CodeRouter::Test::Nginx->new(http => "    $b->[0]\n$server");
    my ($rc, $out) = $bt->test_conf;
    isnt($rc, 0, "nginx -t fails: $b->[0]");
    like($out, $b->[1], '... with a clear message');
    like($out, qr/in \S+nginx\.conf:\d+/, '... naming file and line');
}

for my $loc ('code_router;', 'code_router $code; code_router $code;') {
    my $bt = CodeRouter::Test::Nginx->new(http => <<"EOF2");
    code_router_db $db;
    code_router_key 1 $key;
    server { listen 127.0.0.1:%%PORT%%; location / { $loc } }
EOF2
    my ($rc, $out) = $bt->test_conf;
    isnt($rc, 0, "nginx -t fails: $loc");
    like($out, qr/invalid number of arguments|is duplicate/, '... clearly');
}

# A code_router location needs a store and keys, from its server or http.
for my $case (["code_router_key 1 $key;", 'code_router_db'],
              ["code_router_db $db;", 'code_router_key']) {
    my $bt = CodeRouter::Test::Nginx->new(http => <<"EOF2");
    $case->[0]
    server { listen 127.0.0.1:%%PORT%%; location / { code_router \$uri; } }
EOF2
    my ($rc, $out) = $bt->test_conf;
    isnt($rc, 0, "nginx -t fails without $case->[1]");
    like($out, qr/"code_router" needs "$case->[1]" in its server or at the http level/,
         '... and says what is missing');
}

# The README's synopsis, as written (the paths made this test's): nginx -t
# takes it, and it answers a scan, a PIN and the API.
{
    open my $fh, '<', root() . '/README.md' or die "README.md: $!";
    my $readme = do { local $/; <$fh> };
    my ($block) = $readme =~ /^## Synopsis\n\n((?: {4}.*\n|\n)+)/m;
    ok($block, 'the README has a synopsis');
    $block =~ s/^ {4}//mg;
    my ($http) = $block =~ /^http \{\n(.*)^\}\s*\z/ms;
    ok($http && $block =~ /^load_module /m,
       '... a load_module line and an http block');
    my $sdb = "$d/brand.mdb";
    load_store($sdb, ['sc.csv', "campaign,type,url\nspring,h5,https://shop.example/\n"],
               ['sb.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
                          . "b1,1,1,100,verify,spring\n"]);
    my $scans = scan_dir($d);
    my %path = ('/var/lib/code-router/brand.mdb' => $sdb,
                '/etc/nginx/code-router/1.key' => $key,
                '/var/lib/code-router/scans/scans.mdb' => "$scans/scans.mdb",
                '/usr/share/code-router/html' => root() . '/conf/html');
    my $n = 0;
    for my $from (sort keys %path) {
        $n += ($http =~ s/\Q$from\E/$path{$from}/g);
    }
    $n += ($http =~ s/listen +80;/listen 127.0.0.1:%%PORT%%;/);
    is($n, 6, '... its paths and port are those this test replaces');
    my $st = CodeRouter::Test::Nginx->new(http => $http);
    my ($src, $sout) = $st->test_conf;
    is($src, 0, '... nginx -t takes it') or diag $sout;
    $st->start;
    my $c = mint($key, 1, 7);
    my $r = $st->get("/$c");
    is($r->{status}, 302, '... a scan of a bound code: 302');
    like($r->{headers}{location} // '', qr{^https://shop\.example/},
         '... to its campaign');
    $r = post_pin($st, "/verify?code=$c", pin_of($key, 1, 7), '192.0.2.1');
    is(json_of($r)->{verification} // '', 'genuine',
       '... its right PIN: genuine') or diag $r->{content};
    $r = $st->get('/' . mint($key, 1, 500));
    is($r->{status}, 404, '... a genuine code bound to nothing: 404');
    like($r->{content}, qr/data-status="unbound"/, '... the fallback page');
    $r = $st->get("/v1/codes/$c");
    is(json_of($r)->{status} // '', 'ok', '... the API: ok');
    $r = $st->get('/.code-router/status');
    like($r->{content}, qr/^code_router_pin_checks_total\{verification="genuine"\} 1$/m,
         '... the status page counts the PIN');
    $st->stop;
}

done_testing;
