#!/usr/bin/perl
# One master key per key id, and a retired key id.
#
#  - "code_router_key N FILE retired;" keeps verifying key id N's codes:
#    a genuine one answers "retired" (410, its own $code_router_status,
#    counter, fallback message and API status), never "forged"; it is not
#    looked up (the store may no longer hold its rows) nor counted.
#  - A forged code under a retired key id still answers "forged".
#  - nginx -t refuses the same master key on two key ids, in one server
#    or across servers, naming both key ids and files; the same key for
#    the same key id in two servers is fine.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(root tmpdir make_key write_file read_file
                        load_store mint);

my $d = tmpdir();
my $key1 = make_key("$d/1.key");
my $key2 = make_key("$d/2.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
mkdir "$d/scans";
chmod 0777, "$d/scans";

# Key id 2's batch is still in the store: a retired code must not be
# redirected even so.
load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url
h5,H5,h5,https://shop.example/p
CSV
batch,kid,serial_from,serial_to,scene,campaign
b-1,1,1,100,verify,h5
b-2,2,1,100,verify,h5
CSV

my $conf = <<"EOF";
    log_format scan '\$code_router_status \$code_router_kid \$code_router_serial \$code_router_batch \$status';
    code_router_db $db;
    code_router_key 1 $key1;
    code_router_key 2 $key2 retired;
    code_router_scans zone=scans:1m store=$d/scans/scans.mdb;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location / {
            code_router \$uri;
            error_page 404 410 503 /.cr/fallback.html;
        }
        location /v1/codes/ { code_router_api; }
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
is($rc, 0, 'nginx -t accepts a retired key id') or diag $log;
$t->start;

sub page_status { $_[0]{content} =~ /data-status="([^"]*)"/ ? $1 : '' }
sub metrics {
    return map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
           split /\n/, $t->get('/status')->{content};
}

my $live = mint($key1, 1, 7);
my $old = mint($key2, 2, 7);
my $forged = substr($old, 0, 17) . (substr($old, 17, 1) eq 'A' ? 'B' : 'A');

my $r = $t->get("/$live");
is($r->{status}, 302, 'a live key id: redirected');

$r = $t->get("/$old");
is($r->{status}, 410, 'a genuine code of a retired key id: 410');
is(page_status($r), 'retired', '... $code_router_status is retired');
like($r->{content}, qr/正品码.*已停用/s, '... the page says genuine, retired (中文)');
like($r->{content}, qr/genuine.*retired print run/s, '... and in English');
unlike($r->{content}, qr/may not be genuine/, '... never "may not be genuine"');
ok(!exists $r->{headers}{location}, '... and no Location');

$r = $t->get("/$forged");
is($r->{status}, 404, 'a forged code under the retired key id: 404');
is(page_status($r), 'forged', '... still forged');

# The API says it too.
$r = $t->get("/v1/codes/$old");
is($r->{status}, 200, 'API: a retired code is a 200 (a fact, not an error)');
my $j = JSON::PP->new->utf8->decode($r->{content});
is($j->{status}, 'retired', 'API: status retired');
is($j->{kid}, 2, 'API: its key id');
is($j->{serial}, 7, 'API: its serial');
ok(!exists $j->{batch}, 'API: not looked up (no batch)');
ok(!exists $j->{error}, 'API: no error text');

$r = $t->request('POST', "/v1/codes/$live/scans");
is(JSON::PP->new->utf8->decode($r->{content})->{scans}, 2,
   'API: a live code counts its scans (the control: router + API)');
$r = $t->request('POST', "/v1/codes/$old/scans");
$j = JSON::PP->new->utf8->decode($r->{content});
is($j->{status}, 'retired', 'API: a scan of a retired code is retired');
ok(!exists $j->{scans}, '... and not counted');

$r = $t->get("/v1/codes/$forged");
is($r->{status}, 404, 'API: a forged code under the retired key id: 404');
is(JSON::PP->new->utf8->decode($r->{content})->{status}, 'forged',
   '... forged');

my %m = metrics();
is($m{'code_router_requests_total{status="retired"}'}, 1,
   'status page: its own counter (one scan through the router)');
cmp_ok($m{'code_router_requests_total{status="forged"}'}, '>=', 1,
       'status page: the forgery counted as forged');

$t->stop;
my @scan = split /\n/, read_file($t->prefix . '/logs/scan.log');
ok((grep { /^retired 2 7 - 410$/ } @scan),
   'access log: retired, kid and serial known, no batch, 410')
    or diag join "\n", @scan;
is(scalar $t->bad_log_lines, 0, 'nginx logged no alert');

# ---- one master key per key id ----------------------------------------
sub nginx_t {
    my ($http) = @_;
    my $n = CodeRouter::Test::Nginx->new(http => $http);
    return $n->test_conf;
}

my $copy = write_file("$d/copy-of-1.key", read_file($key1), 0600);

($rc, $log) = nginx_t("    code_router_db $db;\n"
                      . "    code_router_key 1 $key1;\n"
                      . "    code_router_key 2 $key1;\n");
isnt($rc, 0, 'nginx -t refuses one key file for two key ids');
like($log, qr/key file "\Q$key1\E" for key id 2 holds the same master key as "\Q$key1\E" for key id 1/,
     '... naming both key ids and files');

($rc, $log) = nginx_t("    code_router_db $db;\n"
                      . "    code_router_key 1 $key1;\n"
                      . "    code_router_key 3 $copy retired;\n");
isnt($rc, 0, 'nginx -t refuses a copy of the key for another key id');
like($log, qr/"\Q$copy\E" for key id 3 holds the same master key as "\Q$key1\E" for key id 1/,
     '... found by content, not by name');
unlike($log, qr/\Q@{[unpack 'H*', read_file($key1)]}\E/i,
       '... and the key bytes are not logged');

($rc, $log) = nginx_t(<<"EOF");
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $db;
        code_router_key 1 $key1;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name other;
        code_router_db $db;
        code_router_key 4 $key1;
    }
EOF
isnt($rc, 0, 'nginx -t refuses the same key under two key ids in two servers');
like($log, qr/for key id 4 holds the same master key as .* for key id 1/,
     '... across servers too');

($rc, $log) = nginx_t(<<"EOF");
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $db;
        code_router_key 1 $key1;
        code_router_key 2 $key2;
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name other;
        code_router_db $db;
        code_router_key 1 $copy;
        code_router_key 2 $key2 retired;
    }
EOF
is($rc, 0, 'the same key for the same key id in two servers is fine')
    or diag $log;

($rc, $log) = nginx_t("    code_router_db $db;\n"
                      . "    code_router_key 1 $key1 retire;\n");
isnt($rc, 0, 'a misspelt "retired" is refused');
like($log, qr/invalid parameter "retire": the only one after the file is "retired"/,
     '... clearly');

($rc, $log) = nginx_t("    code_router_db $db;\n"
                      . "    code_router_key 1 $key1 retired extra;\n");
isnt($rc, 0, 'a fourth argument is refused');
like($log, qr/invalid number of arguments in "code_router_key"/, '... clearly');

done_testing;
