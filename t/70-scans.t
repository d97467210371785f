#!/usr/bin/perl
# Scan counting through a real nginx with two workers: exact counts across
# workers, $code_router_scans and $code_router_first_scan in the scan log,
# HEAD, bots and prefetches not counted, thresholds (overscanned) by scene
# and by campaign, counts kept across reload, graceful restart and a
# SIGKILL of every process (the store is written each second), a full
# zone, eviction, and nginx -t on every bad directive.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(root tmpdir make_key read_file load_store mint run_cmd);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $sdir = "$d/scans";
mkdir $sdir;
chmod 0777, $sdir;     # the workers (nobody) create the scan store

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url
h5,H5,h5,https://shop.example/
prize,One prize per code,h5,https://prize.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign
verify,1,1,1000,verify,h5
lottery,1,1001,2000,marketing,prize
trace,1,2001,9000,trace,h5
CSV

sub conf {
    my (%o) = @_;
    my $zone = $o{zone} // "zone=scans:1m store=$sdir/scans.mdb";
    return <<"CONF";
    log_format scan '\$code_router_status \$code_router_scans '
                    '\$code_router_first_scan \$code_router_scan_counted \$status';
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans $zone;
    code_router_max_scans verify 3;
    code_router_max_scans campaign=prize 1;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scan.log scan;
        location / {
            code_router \$uri;
        }
        location /v1/codes/ {
            code_router_api;
        }
        location = /status { code_router_status; }
    }
CONF
}

my $t = CodeRouter::Test::Nginx->new(http => conf(), workers => 2);
$t->start;

sub api {
    my ($code) = @_;
    my $r = $t->get("/v1/codes/$code");
    return JSON::PP::decode_json($r->{content});
}

# The log's lines once it has $n of them (or more): nginx logs after it
# has sent the response, so the client may read before the line is there.
sub log_lines {
    my ($n) = @_;
    my @l;
    for (1 .. 100) {
        @l = split /\n/, read_file($t->prefix . '/logs/scan.log');
        last if @l >= ($n // 0);
        sleep 0.05;
    }
    return \@l;
}

# 1. Exact counts with two workers: fresh connections spread over both.
my $c = mint($key, 1, 2001);
my %status;
for my $i (1 .. 40) {
    my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0);
    $status{ $http->get($t->url("/$c"))->{status} }++;
}
is_deeply(\%status, { 302 => 40 }, '40 scans of a trace code: all redirected');
# Sorted: a worker writes its line after sending, so the next request's
# line (the other worker's) may come first; each count once is the check.
my @n = sort { $a <=> $b } map { (split / /)[1] } @{ log_lines(40) };
is_deeply(\@n, [1 .. 40], '$code_router_scans counts 1..40 across two workers');
my $j = api($c);
is($j->{scans}, 40, 'the API reads 40 scans');
like($j->{first_scan}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     'first_scan is ISO 8601 UTC');
is($j->{counted}, JSON::PP::false, 'an API GET does not count');
is(api($c)->{scans}, 40, '... so reading twice still says 40');

# 2. Not scans: HEAD, bots, link previews, prefetches.
my $bots = mint($key, 1, 2002);
is($t->request('HEAD', "/$bots")->{status}, 302, 'HEAD is routed');
for my $ua ('Googlebot/2.1 (+http://www.google.com/bot.html)',
            'facebookexternalhit/1.1', 'WhatsApp/2.23',
            'TelegramBot (like TwitterBot)',
            'Mozilla/5.0 (compatible; bingbot/2.0)',
            'Slackbot-LinkExpanding 1.0')
{
    is($t->get("/$bots", { 'User-Agent' => $ua })->{status}, 302,
       "routed: $ua");
}
$t->get("/$bots", { 'Sec-Purpose' => 'prefetch;prerender' });
$t->get("/$bots", { 'Purpose' => 'prefetch' });
is(api($bots)->{scans}, 0, 'HEAD, 6 bots and 2 prefetches: 0 scans');
# 40 scans + 2 API reads + 1 HEAD + 6 bots + 2 prefetches + 1 API read
like(log_lines(52)->[51], qr/^ok 0 +0 200$/,
     'the API read is logged as not counted') or diag log_lines(52)->[51];
$t->get("/$bots",
        { 'User-Agent' => 'Mozilla/5.0 (iPhone) MicroMessenger/8.0' });
is(api($bots)->{scans}, 1, 'a phone counts');
$t->stop;

# ... a regex of one's own replaces the built-in list; off counts all.
for my $case (['"(?i)uptime-monitor"', 'Uptime-Monitor/1.0', 'Googlebot/2.1', 1],
              ['off', 'x', 'Googlebot/2.1', 2]) {
    my ($re, $ignored, $counted, $want) = @$case;
    my $o = CodeRouter::Test::Nginx->new(
        http => conf(zone => "zone=own:1m") . "    code_router_scans_ignore $re;\n");
    $o->start;
    my $code = mint($key, 1, 2003);
    $o->get("/$code", { 'User-Agent' => $ignored });
    $o->get("/$code", { 'User-Agent' => $counted });
    my $n = JSON::PP::decode_json($o->get("/v1/codes/$code")->{content})->{scans};
    is($n, $want, "code_router_scans_ignore $re: $want counted");
    $o->stop;
}
$t->start;

# 3. Thresholds: verify scene 3, campaign "prize" 1.
my $v = mint($key, 1, 7);
my @s = map { $t->get("/$v")->{status} } 1 .. 5;
is_deeply(\@s, [302, 302, 302, 410, 410],
          'verify: scans 4 and 5 are overscanned (410)');
# ... + 1 phone + 1 API read + 5 verify scans
like(log_lines(59)->[58], qr/^overscanned 5 \S+ 1 410$/,
     'logged: overscanned, 5th scan, counted');
is(api($v)->{status}, 'overscanned', 'the API says overscanned');
my $p = mint($key, 1, 1500);
is($t->get("/$p")->{status}, 302, 'prize: the first scan wins');
is($t->get("/$p")->{status}, 410, 'prize: the second is overscanned');
my $r = $t->request('POST', "/v1/codes/$p/scans");
is($r->{status}, 200, 'POST .../scans: 200');
my $pj = JSON::PP::decode_json($r->{content});
is($pj->{scans}, 3, '... and counts (3)');
is($pj->{status}, 'overscanned', '... over the threshold');

# 4. Reload keeps the zone; a graceful stop writes the store.
$t->reload;
is(api($c)->{scans}, 40, 'after a reload: 40');
$t->get("/$c");
$t->stop;
ok(-s "$sdir/scans.mdb", 'the scan store exists');
$t->start;
is(api($c)->{scans}, 41, 'after a restart: read back from the store (41)');

# 5. SIGKILL of every process loses at most the last second.
$t->get("/$c") for 1 .. 9;
sleep 2.5;
my $m = $t->get('/status')->{content};
like($m, qr/^code_router_scans_loaded_total\{zone="scans"\} 1$/m,
     'metrics: one code read back from the store');
like($m, qr/^code_router_scans_flushes_total\{zone="scans"\} [1-9]/m,
     'metrics: flushes');
my $master = $t->pid;
my @kids = split ' ', `pgrep -P $master`;
kill 'KILL', $master;      # first: no master left to log its workers' deaths
waitpid($master, 0);
kill 'KILL', @kids;
sleep 0.05 while kill 0, @kids;
delete $t->{pid};
$t->start;
is(api($c)->{scans}, 50,
   'after SIGKILL of master and workers: 50 (stored within a second)');

$t->stop;

# 7. A full zone: with flush=60s nothing is stored before it fills, so
# nothing can go; with wait=0 a scan never waits for room (uncounted).
my $full = CodeRouter::Test::Nginx->new(
    http => conf(zone => "zone=tiny:32k store=$sdir/tiny.mdb flush=60s "
                         . 'wait=0'));
$full->start;
my $http = HTTP::Tiny->new(max_redirect => 0);
my %st;
for my $i (3001 .. 3600) {
    $st{ $http->get($full->url('/' . mint($key, 1, $i)))->{status} }++;
}
is_deeply(\%st, { 302 => 600 }, '600 codes in a 32k zone: every scan answered');
$m = $full->get('/status')->{content};
my ($unc) = $m =~ /^code_router_scans_uncounted_total\{zone="tiny"\} (\d+)/m;
my ($codes) = $m =~ /^code_router_scans_total\{zone="tiny"\} (\d+)/m;
cmp_ok($unc // 0, '>', 0,
       "zone full of unstored scans: " . ($unc // 0) . " not counted, "
       . ($codes // 0) . " counted");
is(($unc // 0) + ($codes // 0), 600, 'counted + uncounted = 600');
like($full->error_log, qr/zone "tiny" is full of scans not yet stored/,
     'logged');
$full->stop;

# ... by default a scan that finds no room waits while some are written
# (back-pressure): every one counted, none lost.
my $wait = CodeRouter::Test::Nginx->new(
    http => conf(zone => "zone=wait:32k store=$sdir/wait.mdb flush=60s"));
$wait->start;
%st = ();
for my $i (3001 .. 3600) {
    $st{ $http->get($wait->url('/' . mint($key, 1, $i)))->{status} }++;
}
is_deeply(\%st, { 302 => 600 }, '600 codes in a 32k zone that waits: answered');
$m = $wait->get('/status')->{content};
($unc) = $m =~ /^code_router_scans_uncounted_total\{zone="wait"\} (\d+)/m;
($codes) = $m =~ /^code_router_scans_total\{zone="wait"\} (\d+)/m;
my ($waits) = $m =~ /^code_router_scans_waits_total\{zone="wait"\} (\d+)/m;
is($unc, 0, 'none uncounted');
is($codes, 600, '600 counted');
cmp_ok($waits // 0, '>', 0, 'scans waited for room: ' . ($waits // 0));
unlike($wait->error_log, qr/is full of scans/, 'nothing logged as lost');
$wait->stop;
my ($src, $sout) = run_cmd([CodeRouter::Test::cli(), 'scans', '--store',
                            "$sdir/wait.mdb"]);
is(scalar(grep { /^[0-9a-f]+,1,3\d\d\d,1,/ } split /\n/, $sout), 600,
   'the store holds the 600 codes, one scan each') or diag $sout;

# ... once stored, old codes make room (evicted, read back later).
my $ev = CodeRouter::Test::Nginx->new(
    http => conf(zone => "zone=tiny:32k store=$sdir/tiny.mdb"));
$ev->start;
my $first = mint($key, 1, 4001);
$http->get($ev->url("/$first")) for 1 .. 2;
for my $i (4002 .. 4400) {
    $http->get($ev->url('/' . mint($key, 1, $i)));
    sleep 1.2 if $i % 100 == 0;    # let a flush store them
}
sleep 1.2;
$m = $ev->get('/status')->{content};
my ($evicted) = $m =~ /^code_router_scans_evicted_total\{zone="tiny"\} (\d+)/m;
cmp_ok($evicted // 0, '>', 0, 'stored codes evicted: ' . ($evicted // 0));
$http->get($ev->url("/$first"));
my $fj = JSON::PP::decode_json(
    $http->get($ev->url("/v1/codes/$first"))->{content});
is($fj->{scans}, 3, 'an evicted code is read back from the store: 3 scans');
$ev->stop;

# 7b. Written by a thread pool: the event loop never waits for the disk.
my $tp = CodeRouter::Test::Nginx->new(
    main => 'thread_pool cr_scans threads=1;', workers => 2,
    http => conf(zone => "zone=tp:1m store=$sdir/tp.mdb thread_pool=cr_scans"));
$tp->start;
my $tc = mint($key, 1, 5001);
$http->get($tp->url("/$tc")) for 1 .. 20;
sleep 2.5;
$tp->kill_all;
$tp->start;
is(JSON::PP::decode_json($http->get($tp->url("/v1/codes/$tc"))->{content})->{scans},
   20, 'thread_pool=: 20 scans stored by the pool survive a SIGKILL of all');
unlike($tp->error_log, qr/no thread pool task/, '... the pool did the writing');
$http->get($tp->url("/$tc"));
$tp->stop;
$tp->start;
is(JSON::PP::decode_json($http->get($tp->url("/v1/codes/$tc"))->{content})->{scans},
   21, '... and a graceful stop writes the last one');
$tp->stop;

# 8. nginx -t.
my %bad = (
    'zone=a:1k'                => qr/zone "zone=a:1k" is too small/,
    'zone=:1m'                 => qr/needs a zone name/,
    'store=/x'                 => qr/needs "zone=NAME:SIZE"/,
    'zone=a:1m flush=0s'       => qr/invalid "flush=0s": from 1s to 60s/,
    "zone=a:1m store=$d/w.mdb wait=11s" => qr/invalid "wait=11s": from 0 to 10s/,
    "zone=a:1m store=$d/w.mdb wait=x"   => qr/invalid "wait=x"/,
    'zone=a:1m wait=1s'        => qr/wait= only with store=/,
    'zone=a:1m store_size=1k'  => qr/invalid "store_size=1k"/,
    'zone=a:1m bogus=1'        => qr/invalid parameter "bogus=1"/,
    'zone=nosuch'              => qr/unknown zone "nosuch"/,
    "zone=a:1m store=$db"      => qr/another LMDB database \(a binding store\?\)/,
    "zone=a:1m store=$d/no/such.mdb" => qr/No such file or directory/,
    'zone=a:1m thread_pool=nosuch'    => qr/unknown thread pool "nosuch"/,
    'zone=a:1m thread_pool='          => qr/needs a name: "thread_pool=NAME"/,
);
for my $z (sort keys %bad) {
    my $n = CodeRouter::Test::Nginx->new(http => conf(zone => $z));
    $n->write_conf;
    my ($rc, $out) = $n->test_conf;
    isnt($rc, 0, "nginx -t fails: code_router_scans $z");
    like($out, $bad{$z}, '... saying why') or diag $out;
}
for my $case (['code_router_max_scans verify 0;',
               qr/invalid number of scans "0"/],
              ['code_router_max_scans somewhere 3;',
               qr/unknown scene "somewhere"/],
              ['code_router_max_scans campaign=a/b 3;',
               qr/invalid campaign id/],
              ['code_router_scans zone=scans:1m;',
               qr/is duplicate|zone "scans" is already defined/],
              ['code_router_scans_ignore "(";',
               qr/pcre2_compile\(\) failed|missing closing parenthesis/])
{
    my $n = CodeRouter::Test::Nginx->new(http => conf() . "    $case->[0]\n");
    $n->write_conf;
    my ($rc, $out) = $n->test_conf;
    isnt($rc, 0, "nginx -t fails: $case->[0]");
    like($out, $case->[1], '... saying why') or diag $out;
}

done_testing;
