#!/usr/bin/perl
# The store changing under a serving nginx, each under client loops that
# record every response (loopback, bounded in time): a commit is visible to
# the next request; hot re-binding; map growth; the file removed and
# restored; the file swapped by rename; 50 graceful reloads with no failed
# request and no growth of fds or memory; several servers with their own
# keys and stores; a lock file the workers cannot write.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(cli root run_cmd tmpdir make_key write_file read_file
                        load_store mint under_valgrind);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";

load_store($db, ['c.csv', <<'EOF'], ['b.csv', <<'EOF']);
campaign,type,url
old,h5,https://old.example/
new,h5,https://new.example/
EOF
batch,kid,serial_from,serial_to,scene,campaign
roll,1,1,1000,marketing,old
EOF

sub server_conf {
    my ($db, $key, $extra) = @_;
    return <<"EOF";
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        $extra
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
        }
        location = /status { code_router_status; }
    }
EOF
}

my $t = CodeRouter::Test::Nginx->new(http => server_conf($db, $key, ''),
                                     workers => 2);
$t->start;
my @codes = map { mint($key, 1, $_) } 1, 500, 1000;
my @paths = map { "/$_" } @codes;

sub tally {
    my ($lines, $ok) = @_;
    my %n;
    for (@$lines) {
        my $k = $ok->($_) ? 'good' : "bad: $_";
        $n{$k}++;
    }
    return \%n;
}
sub target { my $r = $t->get($paths[0]); return $r->{headers}{location} // $r->{status} }

like(target(), qr{^https://old\.example/}, 'bound to old');

# A commit is visible to the very next request: no reload, no signal.
load_store($db, ['to-new.csv', "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000,marketing,new\n"]);
like(target(), qr{^https://new\.example/}, 'the request right after the commit sees the new binding');
load_store($db, ['to-old.csv', "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000,marketing,old\n"]);
like(target(), qr{^https://old\.example/}, '... and back');

# Hot re-binding under load: every response is the old or the new target.
my $h = $t->hammer(paths => \@paths, seconds => 3, clients => 2);
for my $i (1 .. 10) {
    sleep 0.2;
    load_store($db, ["flip$i.csv", "batch,kid,serial_from,serial_to,scene,campaign\n"
                     . "roll,1,1,1000,marketing," . ($i % 2 ? 'new' : 'old') . "\n"]);
}
my $lines = $t->hammer_results($h);
my $n = tally($lines, sub { $_[0] =~ m{^302 https://(old|new)\.example/\?code=} });
my %seen = map { m{https://(\w+)\.example} ? ($1 => 1) : () } @$lines;
is_deeply($n, { good => scalar @$lines },
          'hot re-binding (10 commits): ' . scalar(@$lines) . ' responses, every one old or new');
ok($seen{old} && $seen{new}, '... and both were seen');

# Map growth under load: the loader grows the map; readers adopt it.
my ($rc, $out) = run_cmd([cli(), 'stat', '--db', $db]);
my ($map0) = $out =~ /^map_size\s+(\d+)/m;
system("awk 'BEGIN { print \"kid,serial,state,campaign\";"
       . " for (i = 0; i < 3000000; i++) print \"1,\" i + 2000 \",revoked,\" }' > $d/grow.csv") == 0 or die;
$h = $t->hammer(paths => \@paths, seconds => 4, clients => 2);
sleep 0.3;
load_store($db, "$d/grow.csv");
load_store($db, ['after-grow.csv', "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000,marketing,new\n"]);
$lines = $t->hammer_results($h);
($rc, $out) = run_cmd([cli(), 'stat', '--db', $db]);
my ($map1) = $out =~ /^map_size\s+(\d+)/m;
cmp_ok($map1, '>', $map0, "the map grew ($map0 -> $map1 bytes)");
$n = tally($lines, sub { $_[0] =~ m{^302 https://(old|new)\.example/} });
is_deeply($n, { good => scalar @$lines }, 'map growth under load: '
          . scalar(@$lines) . ' responses, no error');
like(target(), qr{^https://new\.example/}, 'a binding written after the growth is served');
is($t->get('/' . mint($key, 1, 14345))->{status}, 410,
   'a code revoked by the big load: 410 (the grown map is read)');

# The file removed at run time: 503; restored: served again.
rename $db, "$db.away" or die;
sleep 1.2;
is($t->get($paths[0])->{status}, 503, 'store removed: 503 (unavailable)');
is($t->get($paths[1])->{status}, 503, '... on every request');
rename "$db.away", $db or die;
sleep 1.2;
my @after = map { $t->get($paths[0])->{status} } 1 .. 4;
is_deeply(\@after, [302, 302, 302, 302], 'store restored: served again');
like($t->error_log, qr/store "\Q$db\E" is gone; answering 503/, 'the error log says it is gone');
like($t->error_log, qr/store "\Q$db\E" is open again|was replaced; reopening/, '... and back');

# A fresh copy renamed over the file in use.  Its lock file stays behind
# with the old file's last txnid; force the parity LMDB readers go by to the
# bad case (one more commit), so that a reader trusting the lock would see
# the new file's older, empty meta page and answer 404 for every code.
load_store($db, ['parity.csv', "campaign,type,url\nparity,h5,https://x.example/\n"]);
load_store("$d/fresh.mdb", ['fc.csv', "campaign,type,url\nfresh,h5,https://fresh.example/\n"],
           ['fb.csv', "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000,trace,fresh\n"]);
$h = $t->hammer(paths => \@paths, seconds => 6, clients => 2);
sleep 0.5;
rename "$d/fresh.mdb", $db or die;
$lines = $t->hammer_results($h);
my @wrong = grep { !m{^(302 https://(new|fresh)\.example/|503 )} } @$lines;
is(scalar @wrong, 0, 'a file renamed over the store under load: '
   . scalar(@$lines) . ' responses, never a wrong answer') or diag join "\n", @wrong[0 .. 4];
my $unavailable = grep { /^503 / } @$lines;
like($lines->[-1], qr{^302 https://fresh\.example/}, "... the new file is served within the run ($unavailable answered 503 meanwhile)");
like($t->get($paths[0])->{headers}{location}, qr{^https://fresh\.example/\?code=\w+&batch=roll&scene=trace},
     '... and after it');
like($t->error_log, qr/lock file "\Q$db\E-lock" belongs to a file that was replaced/,
     '... and the error log said why it waited') if $unavailable;

# 50 graceful reloads under load (25 with keep-alive clients, 25 with a new
# connection per request): no failed request, no fd or memory growth.
sub fds { my @f = glob("/proc/$_[0]/fd/*"); return scalar @f }
sub rss { my ($kb) = read_file("/proc/$_[0]/status") =~ /^VmRSS:\s+(\d+)/m; return $kb }
sub workers { my $pid = $t->pid; my @w = grep { chomp; $_ } `pgrep -P $pid`; return @w }
my $mfd0 = fds($t->pid);
my $mrss0 = rss($t->pid);
my @w0 = workers();
my $wfd0 = fds($w0[0]);
for my $ka (1, 0) {
    my $mode = $ka ? 'keep-alive clients' : 'a new connection per request';
    $h = $t->hammer(paths => \@paths, seconds => 6, clients => 2, keep_alive => $ka);
    for (1 .. 25) {
        kill 'HUP', $t->pid;
        sleep 0.2;
    }
    $lines = $t->hammer_results($h);
    my $retried = grep { / retried$/ } @$lines;
    $n = tally($lines, sub { $_[0] =~ m{^302 https://fresh\.example/\S+( retried)?$} });
    is_deeply($n, { good => scalar @$lines }, "25 reloads under load, $mode: "
              . scalar(@$lines) . " responses, none failed ($retried retried once)");
    is($retried, 0, '... none needed a retry') unless $ka;
}
sleep 1;
my @w1 = workers();
cmp_ok(scalar @w1, '<=', 2 + 2, 'old workers have exited (' . scalar(@w1) . ' children)');
is(fds($t->pid), $mfd0, "master fds unchanged ($mfd0)");
SKIP: {
    # AddressSanitizer quarantines freed memory, valgrind has its own
    # allocator and shadow memory: RSS says nothing there.
    skip 'RSS under a sanitizer runtime is not comparable', 1 if $ENV{CR_NGINX_PRELOAD};
    skip 'RSS under valgrind is not comparable', 1 if under_valgrind();
    cmp_ok(rss($t->pid), '<=', $mrss0 + 2048, "master RSS did not grow (${mrss0} kB -> " . rss($t->pid) . ' kB)');
}
cmp_ok(fds($w1[-1]), '<=', $wfd0 + 2, "a new worker has the fds of the first ($wfd0 -> " . fds($w1[-1]) . ')');
($rc, $out) = run_cmd([cli(), 'stat', '--db', $db]);
my ($readers) = $out =~ /^readers\s+(\d+)/m;
# "readers" is LMDB's high-water mark of slots held at once: two workers
# and the two of the previous reload.  Under valgrind workers start and
# exit (leak check) so slowly that several reloads' workers overlap.
my $max_readers = under_valgrind() ? 10 : 4;
cmp_ok($readers, '<=', $max_readers, "reader slots are not leaked by reloads ($readers in use)");
is(scalar $t->bad_log_lines, 0, 'no alert or crit in the error log') or diag join "\n", $t->bad_log_lines;
$t->stop;

# The way to publish a store: a new file, then an atomic symlink flip.
# Each version has its own lock file, so no request fails.
load_store("$d/v1.mdb", ['v1c.csv', "campaign,type,url\nv1,h5,https://v1.example/\n"],
           ['v1b.csv', "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000,trace,v1\n"]);
symlink "$d/v1.mdb", "$d/current.mdb" or die;
my $ts = CodeRouter::Test::Nginx->new(http => server_conf("$d/current.mdb", $key, ''), workers => 2);
$ts->start;
load_store("$d/v2.mdb", ['v2c.csv', "campaign,type,url\nv2,h5,https://v2.example/\n"],
           ['v2b.csv', "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000,trace,v2\n"]);
load_store("$d/v2.mdb", ['v2x.csv', "campaign,type,url\nv2x,h5,https://v2.example/x\n"]);   # any parity
$h = $ts->hammer(paths => \@paths, seconds => 3, clients => 2);
sleep 0.5;
symlink "$d/v2.mdb", "$d/next.mdb" or die;
rename "$d/next.mdb", "$d/current.mdb" or die;
$lines = $ts->hammer_results($h);
$n = tally($lines, sub { $_[0] =~ m{^302 https://v[12]\.example/\S+( retried)?$} });
is_deeply($n, { good => scalar @$lines }, 'a symlink flip under load: '
          . scalar(@$lines) . ' responses, none failed');
like($lines->[-1], qr{^302 https://v2\.example/}, '... and the new version is served');
ok(-e "$d/v2.mdb-lock" && !-e "$d/current.mdb-lock", '... with a lock file of its own');
$ts->stop;

# Several servers, each with its own key and store.
my $key2 = make_key("$d/2.key");
my $db2 = "$d/brand2.mdb";
load_store($db2, ['c2.csv', "campaign,type,url\nb2,h5,https://brand2.example/\n"],
           ['b2.csv', "batch,kid,serial_from,serial_to,scene,campaign\nr2,1,1,1000,verify,b2\n"]);
$t = CodeRouter::Test::Nginx->new(http => <<"EOF");
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name one.test;
        code_router_db $db;
        code_router_key 1 $key;
        location ~ "^/(?<code>.+)\$" { code_router \$code; }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name two.test;
        code_router_db $db2;
        code_router_key 1 $key2;
        location ~ "^/(?<code>.+)\$" { code_router \$code; }
    }
EOF
$t->start;
my $c1 = mint($key, 1, 5);
my $c2 = mint($key2, 1, 5);
like($t->get("/$c1", { Host => 'one.test' })->{headers}{location}, qr{^https://fresh\.example/},
     'server one: its key, its store');
like($t->get("/$c2", { Host => 'two.test' })->{headers}{location}, qr{^https://brand2\.example/},
     'server two: its key, its store');
is($t->get("/$c2", { Host => 'one.test' })->{status}, 404, "server one refuses server two's code");
is($t->get("/$c1", { Host => 'two.test' })->{status}, 404, "server two refuses server one's code");
$t->stop;

# A lock file the workers cannot write: 503, and the log says why.
chmod 0644, "$db2-lock";
$t = CodeRouter::Test::Nginx->new(http => server_conf($db2, $key2, ''));
my ($trc, $tlog) = $t->test_conf;
is($trc, 0, 'nginx -t passes (the check does not need the lock file)') or diag $tlog;
$t->start;
is($t->get("/$c2")->{status}, 503, 'workers that cannot write the lock file: 503');
like($t->error_log, qr/cannot open: Permission denied \(a reader must be able to write "\Q$db2\E-lock"/,
     '... and the error log names the lock file');
$t->stop;

done_testing;
