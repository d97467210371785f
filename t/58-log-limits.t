#!/usr/bin/perl
# Per-request error-log lines have a limit: a campaign whose
# target is unusable, scanned again and again, and a zone full of unstored
# scans log at most once a second per worker, while every request still
# gets its answer and the metrics count every one.  Two campaigns logged
# in the same second each get their line: the limit is per subject.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(time sleep);
use CodeRouter::Test qw(tmpdir make_key load_store mint);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $sdir = "$d/scans";
mkdir $sdir;
chmod 0777, $sdir;

# Two mini-program campaigns: without code_router_interstitial their
# target cannot be answered outside WeChat (503, logged).
load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,appid,path
mp1,MP1,miniprogram,wx0123456789abcdef,pages/a
mp2,MP2,miniprogram,wx0123456789abcdef,pages/b
CSV
batch,kid,serial_from,serial_to,scene,campaign
b1,1,1,5000,marketing,mp1
b2,1,5001,9000,marketing,mp2
CSV

my $WORKERS = 2;
my $t = CodeRouter::Test::Nginx->new(workers => $WORKERS, http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=tiny:32k store=$sdir/tiny.mdb flush=60s wait=0;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            code_router \$uri;
        }
        location = /status { code_router_status; }
    }
CONF
$t->start;
my $http = HTTP::Tiny->new(max_redirect => 0);

sub lines {
    my ($re, $from) = @_;
    return scalar grep { /$re/ } split /\n/, substr($t->error_log, $from);
}

# Lines allowed for $n requests over $secs seconds: one a second (and one
# for the second it started in) per worker.
sub allowed { my ($secs) = @_; return $WORKERS * (int($secs) + 2) }

# 1. One campaign, an unusable target, 400 scans.
my $from = length $t->error_log;
my $t0 = time;
my %st;
for my $i (1 .. 200) {
    $st{ $http->get($t->url('/' . mint($key, 1, 1 + $i % 50)))->{status} }++;
}
my $secs = time - $t0;
is_deeply(\%st, { 503 => 200 }, '200 scans of a campaign with an unusable target: 503 each');
my $n = lines(qr/campaign "mp1" has an unusable target/, $from);
cmp_ok($n, '>=', 1, "logged ($n lines)");
cmp_ok($n, '<=', allowed($secs),
       sprintf('... at most once a second per worker (%d lines in %.1f s)', $n, $secs));
my $m = $t->get('/status')->{content};
my ($unavail) = $m =~ /^code_router_requests_total\{status="unavailable"\} (\d+)/m;
is($unavail, 200, 'the metrics count every one');
like($m, qr/^code_router_unusable_targets_total 200$/m,
     '... as scans of an unusable target (the alert CodeRouterUnusableTarget)');

# 2. Two campaigns in turn: each gets its line (the limit is per subject).
# mp1 may have been logged in part 1's last second: wait that out.
sleep 1.1;
$from = length $t->error_log;
for my $i (1 .. 20) {
    $http->get($t->url('/' . mint($key, 1, $i % 2 ? 100 : 6000)));
}
cmp_ok(lines(qr/campaign "mp1" has an unusable target/, $from), '>=', 1,
       'two campaigns in turn: the first logged');
cmp_ok(lines(qr/campaign "mp2" has an unusable target/, $from), '>=', 1,
       '... and the second');
$t->stop;

# 3. A zone full of unstored scans (32k, flush=60s: nothing can go;
# wait=0: a scan never waits for room).
load_store($db, ['h.csv', "campaign,type,url\nh5,h5,https://shop.example/\n"],
           ['hb.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
                      . "b3,1,10001,20000,verify,h5\n"]);
$t->start;
$from = length $t->error_log;
$t0 = time;
%st = ();
for my $i (10001 .. 10800) {
    $st{ $http->get($t->url('/' . mint($key, 1, $i)))->{status} }++;
}
$secs = time - $t0;
is_deeply(\%st, { 302 => 800 }, '800 codes into a 32k zone: every scan answered');
$m = $t->get('/status')->{content};
my ($unc) = $m =~ /^code_router_scans_uncounted_total\{zone="tiny"\} (\d+)/m;
cmp_ok($unc // 0, '>', 2 * allowed($secs), "many scans not counted (" . ($unc // 0) . ')');
$n = lines(qr/zone "tiny" is full of scans not yet stored/, $from);
cmp_ok($n, '>=', 1, "the full zone logged ($n lines)");
cmp_ok($n, '<=', allowed($secs),
       sprintf('... at most once a second per worker (%d lines in %.1f s)', $n, $secs));
$t->stop;

done_testing;
