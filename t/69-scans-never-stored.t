#!/usr/bin/perl
# A code's first scan does not search the scan store for a record it never
# had: the zone keeps a filter of the codes the store may hold (filled
# from the store when the zone is made, then every code a flush takes).
# It must never say "never" of a code the store holds: after a restart
# (the filter filled from the store), after eviction (codes read back),
# after a reload (the filter kept; another store= empties and refills it),
# every count goes on from the store's.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use HTTP::Tiny;
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(tmpdir counting_store counting_http run_cmd cli);

my $d = tmpdir();
my ($key, $db, $sdir, $codes) = counting_store($d, 3000);
my @codes = @$codes;

sub conf {
    my ($zone) = @_;
    return (main => 'thread_pool tp threads=1;', workers => 2,
            http => counting_http($db, $key, "$zone thread_pool=tp"));
}

my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 1);

sub metric {
    my ($t, $name, $zone) = @_;
    my ($m) = ($http->get($t->url('/status'))->{content} // '')
        =~ /^code_router_scans_\Q$name\E\{zone="\Q$zone\E"\} (\d+)/m;
    return $m;
}

sub ready {
    my ($t, $zone) = @_;
    my $end = time + 20 * CodeRouter::Test::slow();
    while (time < $end) {
        return 1 if (metric($t, 'filter_ready', $zone) // 0) == 1;
        sleep 0.1;
    }
    return 0;
}

# Every code's count as the store has it after a graceful stop.
sub stored {
    my ($store) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'scans', '--store', $store]);
    die "scans: $err" if $rc;
    my %n;
    for (split /\n/, $out) {
        my @f = split /,/;
        $n{ $f[2] } = $f[3] if @f > 3 && $f[2] =~ /^\d+$/;
    }
    return \%n;
}

sub scan_all {
    my ($t, @which) = @_;
    my $bad = 0;
    for my $i (@which) {
        $bad++ if $http->get($t->url("/$codes[$i]"))->{status} != 302;
    }
    return $bad;
}

# 1. A new store: filled at once (nothing in it); serials 1-300 scanned
# twice, every scan of a new code skipping the store.
my $t = CodeRouter::Test::Nginx->new(conf("zone=a:1m store=$sdir/a.mdb"));
$t->start;
ok(ready($t, 'a'), 'an empty store: the filter is ready');
is(scan_all($t, (0 .. 299) x 2), 0, '600 scans of 300 codes answered');
is(metric($t, 'store_skipped_total', 'a'), 300,
   'the 300 first scans did not search the store');
$t->stop;

# 2. A restart: the filter is filled from the store, in slices, by the
# pool.  The 300 stored codes are searched for (3 scans each now), 300
# new ones are not.
$t->start;
ok(ready($t, 'a'), 'after a restart: filled from the store');
like($t->error_log, qr/zone "a": the filter of its scan store's codes is filled/,
     '... and logged');
is(scan_all($t, 0 .. 599), 0, '300 stored and 300 new codes scanned');
my $skipped = metric($t, 'store_skipped_total', 'a');
cmp_ok($skipped, '>=', 295, "new codes skip the store ($skipped)");
cmp_ok($skipped, '<=', 300, '... the stored ones never');
$t->stop;
my $n = stored("$sdir/a.mdb");
is(scalar(grep { ($n->{$_} // 0) == 3 } 1 .. 300), 300,
   'the stored codes went on from the store: 3 scans each');
is(scalar(grep { ($n->{$_} // 0) == 1 } 301 .. 600), 300,
   'the new ones: 1 each');

# 3. A zone too small for the codes (about 200; scans wait for room as
# long as it takes, even in a sanitized build): 3,000 codes scanned,
# most evicted once stored, then all scanned again: each evicted code is
# read back (the flushes put it in the filter before writing it).  A
# reload on the way keeps the filter.
my $s = CodeRouter::Test::Nginx->new(conf("zone=s:48k store=$sdir/s.mdb wait=10s"));
$s->start;
ok(ready($s, 's'), 'a small zone: ready');
is(scan_all($s, 0 .. 1499), 0, '1,500 codes scanned');
$s->reload;
sleep 1;
is(metric($s, 'filter_ready', 's'), 1, 'a reload keeps the filter');
is(scan_all($s, 1500 .. 2999), 0, '1,500 more');
sleep 1.5;
cmp_ok(metric($s, 'evicted_total', 's'), '>', 2000, 'most were evicted');
is(scan_all($s, 0 .. 2999), 0, 'all 3,000 again');
is(metric($s, 'uncounted_total', 's'), 0, '... every scan counted (wait=10s)');
$s->stop;
$n = stored("$sdir/s.mdb");
is(scalar(grep { ($n->{$_} // 0) == 2 } 1 .. 3000), 3000,
   'each code counted twice: the evicted ones were read back');

# 4. A reload onto another store: the filter said what the old one held
# (a's 600 codes); it is emptied and filled from the new one (s's 3,000).
# Serials 1001-1010 are in s only: a filter left as it was would say
# "never", their counts would start again from 0 (and the flush, which
# keeps the larger count, would lose the scan).
$s->{http} = { conf("zone=s:48k store=$sdir/a.mdb wait=10s") }->{http};
$s->start;
ok(ready($s, 's'), 'the zone on a\'s store: ready');
$s->{http} = { conf("zone=s:48k store=$sdir/s.mdb wait=10s") }->{http};
$s->reload;
ok(ready($s, 's'), 'a reload onto another store: filled again');
is(scan_all($s, 1000 .. 1009), 0, '10 codes only that store holds scanned');
$s->stop;
$n = stored("$sdir/s.mdb");
is(scalar(grep { ($n->{$_} // 0) == 3 } 1001 .. 1010), 10,
   '... and counted on from its counts (3)');

done_testing();
