#!/usr/bin/perl
# A scan store that fills (it grows instead of stopping): brand A (right PINs, code_router_api) and brand B (a plain
# router) share one code_router_scans zone and its store.  B's scans of
# new codes grow the store's map from store_size= up to store_max=; the
# alert is logged and exported before scans reach their share (6/8 of
# store_max=), past which new codes' scans are not stored (counted,
# logged); A's right PINs of fresh codes are still answered and stored.
# Before the fix B's scans filled the map and A's right PINs answered
# 503.  Then the zone: with nothing stored (flush=60s) B's scans fill it,
# and A's right PINs still find room.  store_size= and store_max= take g.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP ();
use CodeRouter::Test qw(root run_cmd cli make_key mint load_store write_file);
use CodeRouter::Verify qw(verify_setup pin_of post_pin json_of);

my $PIPELINE = root() . '/build/t/http-pipeline';
plan skip_all => "no $PIPELINE (make unit)" unless -x $PIPELINE;

my ($d, $key) = verify_setup();
my $bkey = make_key("$d/b.key");
load_store("$d/b.mdb", ['bc.csv', <<'CSV'], ['bb.csv', <<'CSV']);
campaign,name,type,url
bc,B,h5,https://b.example/
CSV
batch,kid,serial_from,serial_to,scene,campaign
bb,1,1,1000000,marketing,bc
CSV

sub conf {
    my ($zone) = @_;
    return <<"CONF";
    code_router_scans $zone;
    code_router_pin_guard zone=pins:1m;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $d/brand.mdb;
        code_router_key 1 $key;
        location /v1/codes/ { code_router_api; }
        location = /status { code_router_status; }
        location = /tenant-status { code_router_status scope=server; }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name hostile;
        code_router_db $d/b.mdb;
        code_router_key 1 $bkey;
        add_header X-CR-Status \$code_router_status;
        location /v1/codes/ { code_router_api; }
        location / { code_router \$uri; }
    }
CONF
}

sub metric {
    my ($t, $name, $zone) = @_;
    my ($v) = $t->get('/status')->{content}
        =~ /^code_router_scans_\Q$name\E\{zone="\Q$zone\E"\} (\d+)$/m;
    return $v // -1;
}

# B's codes $from .. $from + $n - 1, each scanned once, pipelined.
sub scan_b {
    my ($t, $from, $n) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $bkey, '--kid', 1,
                                    '--from', $from, '--count', $n]);
    die "mint: $err" if $rc;
    my $file = write_file("$d/b-$from.txt",
                          join('', map { "ok /$_\n" } split /\n/, $out));
    ($rc, $out, $err) = run_cmd([$PIPELINE, $t->port, $file, 4, 64]);
    my ($n302) = $out =~ /^status 302 (\d+)$/m;
    return $n302 // 0;
}

# B's count of scans of serial $serial, through B's API.
sub scans_b {
    my ($t, $serial) = @_;
    my $code = mint($bkey, 1, $serial);
    my $resp = $t->raw("GET /v1/codes/$code HTTP/1.1\r\nHost: hostile\r\n"
                       . "Connection: close\r\n\r\n");
    my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;
    my $j = eval { JSON::PP->new->decode($body // '') } // {};
    return $j->{scans} // -1;
}

sub verify_a {
    my ($t, $serial, $addr) = @_;
    my $code = mint($key, 1, $serial);
    my $r = post_pin($t, "/v1/codes/$code/verify", pin_of($key, 1, $serial),
                     $addr);
    return "$r->{status} " . (json_of($r)->{verification} // '-') . ' '
           . (json_of($r)->{verifications} // '-');
}

# ---- nginx -t: sizes in g, and their rules ------------------------------
for my $case (['store_size=1g', 0], ['store_size=2g store_max=4g', 0],
              ['store_max=512m', 0], ['store_size=4g store_max=2g', 1],
              ['store_max=1k', 1], ['store_size=1x', 1])
{
    my ($args, $bad) = @$case;
    my $t = CodeRouter::Test::Nginx->new(
        http => conf("zone=g:1m store=$d/scans/g.mdb $args"));
    my ($rc, $out) = $t->test_conf;
    if ($bad) {
        isnt($rc, 0, "nginx -t refuses \"$args\"");
    } else {
        is($rc, 0, "nginx -t takes \"$args\"") or diag $out;
    }
}

# ---- code_router_status scope=server (issue 21, item 14) -----------------
{
    my $t = CodeRouter::Test::Nginx->new(
        http => conf("zone=s:1m store=$d/scans/s.mdb"));
    $t->start;
    my $all = $t->get('/status')->{content};
    my $mine = $t->get('/tenant-status')->{content};
    like($all, qr/^code_router_db_generation\{db="\Q$d\E\/b\.mdb"\} \d+$/m,
         "scope=all (the default): the other brand's store and generation");
    like($mine, qr/^code_router_db_generation\{db="\Q$d\E\/brand\.mdb"\} \d+$/m,
         "scope=server: A's own store");
    unlike($mine, qr/b\.mdb/, '... and not B\'s path');
    like($mine, qr/^code_router_scans_total\{zone="s"\} \d+$/m, '... its zone');
    unlike($mine, qr/^code_router_(requests|scene_requests|client_requests|answers|pin_checks)_total/m,
           '... no totals of every server');
    my ($rc, $out) = CodeRouter::Test::run_cmd(['promtool', 'check', 'metrics'], $mine);
    is($rc, 0, '... and it passes promtool check metrics') or diag $out;
    $t->stop;
    my $bad = conf("zone=s:1m store=$d/scans/s.mdb");
    $bad =~ s/scope=server/scope=tenant/;
    my ($brc, $bout) = CodeRouter::Test::Nginx->new(http => $bad)->test_conf;
    isnt($brc, 0, 'nginx -t refuses scope=tenant');
    like($bout, qr/invalid parameter "scope=tenant": scope=all or scope=server/, '... saying so');
}

# ---- the store fills ----------------------------------------------------
my $t = CodeRouter::Test::Nginx->new(workers => 2, http => conf(
    "zone=shared:1m store=$d/scans/shared.mdb store_size=1m store_max=2m"));
$t->start;

is(verify_a($t, 1, '192.0.2.1'), '200 genuine 1', "A's first right PIN, an empty store");

my ($from, $scanned, $alert_seen_before) = (1, 0, 0);
my $t0 = time;
while (metric($t, 'unstored_total', 'shared') <= 0 && time - $t0 < 120) {
    $scanned += scan_b($t, $from, 5000);
    $from += 5000;
    sleep 1.2;                          # a flush
    $alert_seen_before ||= metric($t, 'store_alert', 'shared') == 1
                           && metric($t, 'unstored_total', 'shared') <= 0;
}
cmp_ok(metric($t, 'unstored_total', 'shared'), '>', 0,
       "B's scans of " . ($from - 1) . " codes reach the scans' share: "
       . metric($t, 'unstored_total', 'shared') . ' codes not stored');
is($scanned, $from - 1, "... every scan answered 302");
is(metric($t, 'store_map_bytes', 'shared'), 2 << 20,
   '... the map grew from store_size=1m to store_max=2m');
is(metric($t, 'store_limit_bytes', 'shared'), 2 << 20, '... the limit exported');
cmp_ok(metric($t, 'store_bytes', 'shared'), '<=', 3 * (2 << 20) / 4 + 65536,
       '... the data stays near 6/8 of store_max= ('
       . metric($t, 'store_bytes', 'shared') . ' bytes)');
ok($alert_seen_before, '... store_alert was 1 before any scan was refused');
my $log = $t->error_log;
like($log, qr/scan store "[^"]+shared\.mdb" of zone "shared" holds \d+ bytes of its store_max=2097152/,
     '... the alert logged');
like($log, qr/zone "shared": scan store: its data would be \d+ bytes, past the 1572864 that scans may fill/,
     '... the refusal logged');
ok(index($log, 'holds ') < index($log, 'past the 1572864'),
   '... the alert before the refusal');
unlike($log, qr/the map is full|stay in memory and are retried/,
       '... and no write failed');

# Stored codes still count: B's first 1,000 codes scanned again.
my $unstored = metric($t, 'unstored_total', 'shared');
is(scan_b($t, 1, 1000), 1000, "B's first 1,000 codes (stored) scanned again");
sleep 1.5;
is(metric($t, 'unstored_total', 'shared'), $unstored,
   '... none refused: raising stored counts does not grow the store');

# A's right PINs are still answered, and stored.
my @v = map { verify_a($t, 100 + $_, "192.0.2.1$_") } 1 .. 3;
is_deeply(\@v, [('200 genuine 1') x 3],
          "A's right PINs of 3 fresh codes: genuine (503 before the fix)");
sleep 1.5;                              # a flush of the PINs
is(metric($t, 'flush_errors_total', 'shared'), 0, '... no flush failed');
$t->stop;
$t->start;
@v = map { verify_a($t, 100 + $_, "192.0.2.2$_") } 1 .. 3;
is_deeply(\@v, [('200 verified_before 2') x 3],
          '... and stored: after a restart, verified_before 2 from the store');
is(verify_a($t, 1, '192.0.2.30'), '200 verified_before 2',
   "... A's first code too");
is(scans_b($t, 500), 2, "B's code 500 (stored, then scanned again): 2 scans");
# The store refuses a flush's chunk (at most 1,024 codes, in the order
# they were scanned) whose new codes would pass the share; which of the
# last batch's chunks that was depends on how the flushes cut it (a slow
# build flushes in the middle of a batch), and a later, smaller chunk may
# still fit.  Every 10th code of the last batch: some refused (0), the
# rest stored (1); every code if the sample finds no refused one.
my %seen;
$seen{ scans_b($t, $_) }++ for grep { $_ % 10 == 0 } $from - 5000 .. $from - 1;
my $which = 'every 10th';
unless ($seen{0}) {
    %seen = ();
    $which = 'all';
    $seen{ scans_b($t, $_) }++ for $from - 5000 .. $from - 1;
}
ok($seen{0} && !grep({ $_ != 0 && $_ != 1 } keys %seen),
   "B's last 5,000 codes, $which: " . ($seen{0} // 0)
   . " not stored (0 scans), " . ($seen{1} // 0) . ' stored (1)')
    or diag explain \%seen;
$t->stop;

# ---- the zone fills -----------------------------------------------------
# Nothing is stored for a minute (and wait=0: no scan waits for room
# while some are written): B's scans of 3,000 codes fill a 64k
# zone with scans not yet stored; A's right PINs still find room.
my $z = CodeRouter::Test::Nginx->new(http => conf(
    "zone=tiny:64k store=$d/scans/tiny.mdb flush=60s wait=0"));
$z->start;
my $n = scan_b($z, 500000, 3000);
is($n, 3000, "B's 3,000 scans answered");
cmp_ok(metric($z, 'uncounted_total', 'tiny'), '>', 0,
       '... the zone is full: ' . metric($z, 'uncounted_total', 'tiny')
       . ' not counted');
@v = map { verify_a($z, 200 + $_, "192.0.2.4$_") } 1 .. 5;
is_deeply(\@v, [('200 genuine 1') x 5],
          "A's right PINs of 5 fresh codes: genuine (503 before the fix)");
$n = scan_b($z, 510000, 1000);
@v = map { verify_a($z, 200 + $_, "192.0.2.5$_") } 1 .. 5;
is_deeply(\@v, [('200 verified_before 2') x 5],
          '... after 1,000 more of B\'s scans, their counts are kept (2)');
$z->stop; print STDERR $t->error_log if $ENV{CR_DEBUG46};

done_testing();
