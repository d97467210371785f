#!/usr/bin/perl
# Faults while nginx serves, each under client loops that record every
# response (loopback only, bounded in time): the loader SIGKILLed during a
# big load and during its commit; the disk filling up during a load; a
# worker SIGKILLed; the map growing; 100 graceful reloads; the store file
# swapped by rename.  Each fault prints one line to quote:
#
#   FAULT <name>: sent=N correct=N errors=N retries=N (details)
#
# sent: responses recorded by the clients; correct: the expected answer;
# errors: anything else (a failed connection counts); retries: GETs sent
# again once on a reused keep-alive connection that was closed under them
# (the harness's hammer, as browsers do), also in correct.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(cli root run_cmd tmpdir make_key write_file read_file
                        load_store mint under_valgrind);

plan skip_all => 'client loops of a few seconds measure nothing under valgrind '
               . '(nginx is some 30 times slower); t/50 and t/51 cover it'
    if under_valgrind();

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";

load_store($db, ['c.csv', <<'EOF'], ['b.csv', <<'EOF']);
campaign,type,url
old,h5,https://old.example/
new,h5,https://new.example/
EOF
batch,kid,serial_from,serial_to,scene,campaign
roll,1,1,1000000,marketing,old
EOF

# Each scan's generation goes to gen.log: the store nginx answered from.
sub server_conf {
    my ($db) = @_;
    return <<"EOF";
    log_format gen '\$code_router_generation \$status';
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/gen.log gen;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
        }
    }
EOF
}

my $t = CodeRouter::Test::Nginx->new(http => server_conf($db), workers => 2);
$t->start;

# Codes spread over the range the big load re-binds (1 .. 800,000).
my @paths = map { '/' . mint($key, 1, $_) } 1, 250_000, 500_000, 799_999;

sub cr { return run_cmd([cli(), @_]) }
sub stat_of {
    my ($path) = @_;
    my (undef, $out) = cr('stat', '--db', $path // $db);
    return { map { /^(\w+)\s+(.*)$/ ? ($1 => $2) : () } split /\n/, $out };
}
sub target {
    my ($tt, $path) = @_;
    my $r = $tt->get($path);
    return $r->{headers}{location} // $r->{status};
}

# Counts a fault's responses; prints its FAULT line; returns the counts.
# $ok: the expected answers; $also: answers counted apart (documented).
sub count {
    my ($name, $lines, $ok, $details, $also) = @_;
    my %c = (sent => scalar @$lines, correct => 0, errors => 0,
             retries => scalar grep { / retried$/ } @$lines, apart => 0);
    my %bad;
    for (@$lines) {
        if ($ok->($_)) { $c{correct}++ }
        elsif ($also && $also->($_)) { $c{apart}++ }
        else { $c{errors}++; $bad{$_}++ }
    }
    $details = $details->(\%c) if ref $details;
    diag sprintf 'FAULT %s: sent=%d correct=%d errors=%d retries=%d (%s)',
        $name, @c{qw(sent correct errors retries)}, $details;
    my @worst = sort { $bad{$b} <=> $bad{$a} || $a cmp $b } keys %bad;
    diag "  wrong: $bad{$_} x $_" for @worst[0 .. ($#worst < 4 ? $#worst : 4)];
    return \%c;
}
sub is_old { $_[0] =~ m{^302 https://old\.example/\?code=\w+&batch=roll\S*( retried)?$} }
sub is_new { $_[0] =~ m{^302 https://new\.example/\?code=\w+\S*( retried)?$} }

# The generations nginx answered from since the last call, and how often.
my $gen_off = 0;
sub gens_served {
    my $log = read_file($t->prefix . '/logs/gen.log');
    my $new = substr($log, $gen_off);
    $gen_off = length $log;
    my %g;
    $g{(split / /)[0]}++ for split /\n/, $new;
    return \%g;
}

like(target($t, $paths[0]), qr{^https://old\.example/}, 'bound to old');
my $gen0 = stat_of()->{generation};
gens_served();

###########################################################################
# 1. The loader SIGKILLed during a big load, at several moments.

# 800,000 overrides re-binding every code of the paths above to "new".
my $big = "$d/rebind.csv";
system("awk 'BEGIN { print \"kid,serial,state,campaign\";"
       . " for (i = 1; i <= 800000; i++) print \"1,\" i \",campaign,new\" }'"
       . " > $big") == 0 or die "awk: $?";

# How long reading and checking it takes (the loader's phase before the
# commit): a dry run.  Kills are placed at fractions of it.
my $t0 = time;
my ($rc, $out, $err) = cr('load', '--db', $db, '--dry-run', $big);
my $dry = time - $t0;
is($rc, 0, sprintf('dry run of 800,000 rows: %.2f s', $dry)) or diag $err;

# Starts the loader on $file; kills it at $when: a delay in seconds, or
# 'commit' (the moment its commit first writes the store file), or
# 'commit-frozen' (frozen with SIGSTOP at that moment, left so while nginx
# serves for 0.5 s, then killed).  Returns (how it ended, what it saw).
sub kill_loader {
    my ($file, $when) = @_;
    my @st0 = Time::HiRes::stat($db);
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec(cli(), 'load', '--db', $db, $file) or POSIX::_exit(127);
    }
    my $note = '';
    my $status;
    if ($when =~ /^commit/) {
        my $deadline = time + 20 * ($dry + 1);
        while (time < $deadline) {
            if (waitpid($pid, WNOHANG) == $pid) {
                $status = $?;
                last;
            }
            my @st = Time::HiRes::stat($db);
            if ($st[7] != $st0[7] || $st[9] != $st0[9]) {
                if ($when eq 'commit-frozen') {
                    kill 'STOP', $pid;
                    my $size = (stat $db)[7];
                    sleep 0.5;
                    $note = sprintf 'frozen by SIGSTOP for 0.5 s at the commit\'s '
                                    . 'first write (file %d bytes before, %d at the freeze)',
                                    $st0[7], $size;
                } else {
                    kill 'KILL', $pid;
                    $note = sprintf 'store file %d -> %d bytes',
                                    $st0[7], (stat $db)[7];
                }
                last;
            }
            sleep 0.0005;
        }
    } else {
        sleep $when;
    }
    unless (defined $status) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        $status = $?;
    }
    return ($status & 127 ? 'killed' : 'exited ' . ($status >> 8), $note);
}

my @points = (map({ sprintf '%.2f', $_ * $dry } 0.1, 0.4, 0.8),
              'commit', 'commit-frozen');
my (%k, @killed);
my $committed = 0;
for my $when (@points) {
    my $h = $t->hammer(paths => \@paths, seconds => $dry + 1.2, clients => 2);
    sleep 0.2;
    my ($how, $note) = kill_loader($big, $when);
    my $lines = $t->hammer_results($h);
    my $gen = stat_of()->{generation};
    my $served = gens_served();
    if ($how eq 'killed' && $gen == $gen0) {
        push @killed, $when;
        my $c = count("loader-kill-9\@$when", $lines, \&is_old,
                      "SIGKILL at $when" . ($when =~ /^\d/ ? ' s' : '')
                      . ($note ? ", $note" : '')
                      . "; generation stays $gen0; nginx answered from generation(s) "
                      . join(',', sort keys %$served));
        $k{$_} += $c->{$_} for keys %$c;
        is($c->{errors}, 0, "loader killed at $when: every answer is the old binding");
        is_deeply([keys %$served], [$gen0], "... all from generation $gen0");
    } else {
        # The kill came after the commit (or it exited): then it committed
        # whole, and the answers are old, then new.
        $committed = 1;
        my $c = count("loader-kill-9\@$when", $lines, sub { is_old($_[0]) || is_new($_[0]) },
                      "$how before the kill: committed generation $gen");
        $k{$_} += $c->{$_} for keys %$c;
        is($gen, $gen0 + 1, "loader at $when was not killed in time ($how): it committed, whole");
        is($c->{errors}, 0, '... every answer the old or the new binding');
        last;
    }
}
cmp_ok(scalar @killed, '>=', 3, 'at least three loads killed before committing ('
       . join(', ', @killed) . ')');
ok(grep({ /^commit/ } @killed), '... at least one during its commit') unless $committed;
is(stat_of()->{codes}, 0, 'no override from the killed loads') unless $committed;

# Then a whole load succeeds, under the client loop, and answers switch.
my $h = $t->hammer(paths => \@paths, seconds => $dry + 2, clients => 2);
sleep 0.3;
($rc, $out, $err) = cr('load', '--db', $db, $big) unless $committed;
$rc //= 0;
my $lines = $t->hammer_results($h);
is($rc, 0, 'then the whole load commits') or diag $err;
my $c = count('loader-full-load-after-kills', $lines,
              sub { is_old($_[0]) || is_new($_[0]) },
              sub { my $n = grep { is_new($_) } @$lines;
                    "generation $gen0 -> " . stat_of()->{generation}
                    . ", $n answers already new" });
is($c->{errors}, 0, '... under load, every answer the old or the new binding');
is(stat_of()->{generation}, $gen0 + 1, '... generation ' . ($gen0 + 1));
is(stat_of()->{codes}, 800_000, '... with all 800,000 overrides');
like(target($t, $_), qr{^https://new\.example/}, "... $_ now answers new") for @paths;
diag sprintf 'FAULT loader-kill-9 (total): sent=%d correct=%d errors=%d retries=%d '
    . '(%d loads killed: %s; then one full load)', @k{qw(sent correct errors retries)},
    scalar @killed, join(', ', @killed);
gens_served();

###########################################################################
# 2. The disk fills up during a load.

my $mnt = "$d/small-fs";
my $mounted;
my $tf;
END {
    # Before File::Temp removes $d: nginx must let go of the file first.
    if ($mounted) {
        $tf->stop if $tf;
        system('umount', $mnt) == 0 or system('umount', '-l', $mnt);
    }
}
SKIP: {
    mkdir $mnt or die "mkdir $mnt: $!";
    my $why = $> != 0 ? 'not root'
            : system("mount -t tmpfs -o size=4m tmpfs $mnt 2>$d/mount.err") != 0
            ? 'mount -t tmpfs not permitted here: ' . read_file("$d/mount.err")
            : '';
    skip "disk full: $why", 9 if $why;
    $mounted = 1;
    chmod 0755, $mnt;
    my $fdb = "$mnt/brand.mdb";
    load_store($fdb, "$d/c.csv", "$d/b.csv");
    my $fgen = stat_of($fdb)->{generation};
    $tf = CodeRouter::Test::Nginx->new(http => server_conf($fdb), workers => 2);
    $tf->start;
    like(target($tf, $paths[0]), qr{^https://old\.example/}, 'store on a 4 MiB tmpfs: bound to old');

    $h = $tf->hammer(paths => \@paths, seconds => $dry + 2, clients => 2);
    sleep 0.3;
    ($rc, $out, $err) = run_cmd([root() . '/scripts/code-router-load', '--db', $fdb, $big]);
    my $lines = $tf->hammer_results($h);
    is($rc, 3, 'a load that does not fit: exit status 3 (the store cannot be written)');
    like($err, qr/^code-router load: store "\Q$fdb\E": cannot commit: .+: the file system holding it is full \(\d+ bytes free\); no change made$/m,
         '... and the message says the file system is full') or diag $err;
    (my $msg = $err) =~ s/\s+$//;
    is(stat_of($fdb)->{generation}, $fgen, "... the store stays at generation $fgen");
    is(stat_of($fdb)->{codes}, 0, '... without any of its rows');
    my @df = split ' ', (split /\n/, `df -k $mnt`)[1];
    my $c = count('disk-full-during-load', $lines, \&is_old,
                  "4 MiB tmpfs, $df[2] KiB used after; loader exit $rc: $msg");
    is($c->{errors}, 0, '... and nginx answered the old binding throughout');
    like(target($tf, $_), qr{^https://old\.example/}, '... and still does') for $paths[0];
    is_deeply([map { $tf->get($_)->{status} } @paths], [(302) x @paths], '... for every code');
    $tf->stop;
    undef $tf;
    is(system('umount', $mnt), 0, 'the tmpfs is unmounted');
    $mounted = 0;
}

###########################################################################
# 3. A worker SIGKILLed under load.

# Reader slots as LMDB's own tool lists them (pids), without clearing any.
sub reader_pids {
    my @p = map { /^\s*(\d+)\s+\w+\s+\S+\s*$/ ? $1 : () } `mdb_stat -n -r $db 2>/dev/null`;
    return \@p;
}
sub workers { my $pid = $t->pid; my @w = grep { chomp; $_ } `pgrep -P $pid`; return @w }

SKIP: {
    skip 'mdb_stat (lmdb-utils) is not installed', 9 unless `which mdb_stat`;
    my $clients = 4;
    my @victims;
    my ($readers0) = stat_of()->{readers} =~ /^(\d+)/;
    $h = $t->hammer(paths => \@paths, seconds => 4.5, clients => $clients, keep_alive => 0);
    my ($slots_before, @held);
    for my $i (1 .. 3) {
        sleep 1;
        my @w = workers();
        my $victim = $w[$i % @w];
        $slots_before //= reader_pids();
        # The connections it holds, just before (ss; a snapshot).
        my $port = $t->port;
        push @held, scalar grep { /pid=$victim,/ }
            `ss -tnpH state established '( sport = :$port )' 2>/dev/null`;
        push @victims, $victim;
        kill 'KILL', $victim;
    }
    my $lines = $t->hammer_results($h);
    my $failed = grep { /^599 / } @$lines;
    my $c = count('worker-kill-9', $lines, \&is_new,
                  "3 workers SIGKILLed 1 s apart; $clients clients, a new connection per request; "
                  . "connections held by the victims just before each kill (ss): @held; "
                  . "$failed request(s) failed; allowed: at most $clients per kill");
    ok(grep({ $_ == $victims[0] } @$slots_before),
       "the first killed worker held a reader slot (mdb_stat -r: @$slots_before)");
    cmp_ok($c->{errors}, '<=', $clients * @victims,
           "only connections the killed workers held failed ($c->{errors} of "
           . scalar(@$lines) . ')');
    is(scalar(grep { !/^599 / && !is_new($_) } @$lines), 0, '... every other answer is right');

    # The master respawned them: two workers again, and they answer.
    sleep 0.5;
    my @w = workers();
    is(scalar @w, 2, 'the master respawned them: two workers (' . join(' ', @w) . ')');
    like(target($t, $paths[0]), qr{^https://new\.example/}, '... which answer');

    # Their reader slots are reclaimed (at the latest at a worker's reader
    # check, within a second of its start).
    my $deadline = time + 5;
    my @left;
    while (time < $deadline) {
        my %now = map { $_ => 1 } @{ reader_pids() };
        @left = grep { $now{$_} } @victims;
        last unless @left;
        sleep 0.2;
    }
    is("@left", '', "the killed workers' reader slots are cleared (mdb_stat -r: @{ reader_pids() })");
    like($t->error_log, qr/code router: cleared \d+ stale reader slot\(s\) of "\Q$db\E"/,
         '... by the module\'s reader check, which logged it');
    diag sprintf '  reader slots (LMDB high-water mark) %d before, %d after',
        $readers0, stat_of()->{readers} =~ /^(\d+)/;

    # The master's alert for each killed worker is expected, and the only
    # alert: stop() must not fail the test over them.
    my $victims = join '|', @victims;
    my @alerts = $t->bad_log_lines;
    my @expected = grep { /\[alert\] \d+#\d+: worker process ($victims) exited on signal 9/ } @alerts;
    is(scalar @expected, scalar @victims, 'the master logged one alert per killed worker');
    is_deeply([grep { !/\[alert\] \d+#\d+: worker process ($victims) exited on signal 9/ } @alerts], [],
              '... and no other alert');
    $t->allow_log(qr/\[alert\] \d+#\d+: worker process ($victims) exited on signal 9/);
}

###########################################################################
# 4. The map grows while nginx serves.

my $map0 = stat_of()->{map_size};
# 3,000,000 revoked codes (serials from 2,000,000: none of the paths'):
# the map must grow.
system("awk 'BEGIN { print \"kid,serial,state,campaign\";"
       . " for (i = 0; i < 3000000; i++) print \"1,\" i + 2000000 \",revoked,\" }' > $d/grow.csv") == 0 or die;
# The clients run until a second after both loads (a 3M-row load under
# ASan on a loaded machine took longer than a fixed 6 s).
$h = $t->hammer(paths => \@paths, seconds => 120, clients => 2,
                stop_file => "$d/grow.done");
sleep 0.3;
load_store($db, "$d/grow.csv");
my $map1 = stat_of()->{map_size};
load_store($db, ['back-to-old.csv', "kid,serial,state,campaign,delete\n"
                 . join('', map { "1,$_,campaign,,yes\n" } 1, 250_000, 500_000, 799_999)]);
write_file("$d/grow.done", '');
$lines = $t->hammer_results($h);
cmp_ok($map1, '>', $map0, "the map grew ($map0 -> $map1 bytes)");
my $nnew = grep { is_new($_) } @$lines;
my $nold = grep { is_old($_) } @$lines;
$c = count('map-growth', $lines, sub { is_old($_[0]) || is_new($_[0]) },
           "3,000,000 rows loaded, map $map0 -> $map1 bytes, then 4 codes re-bound: "
           . "$nnew answers new, $nold old after it; generations "
           . join(',', sort keys %{ gens_served() }));
is($c->{errors}, 0, 'map growth under load: no error');
ok($nold > 0, '... and the commit after the growth was served');
is($t->get('/' . mint($key, 1, 4_001_234))->{status}, 410, 'a code revoked by the big load: 410 (the grown map is read)');

###########################################################################
# 5. 100 graceful reloads under load.

sub reloads_logged { my @n = $t->error_log =~ /signal 1 \(SIGHUP\) received/g; return scalar @n }
# A reload takes the master about 115 ms here (the same before and after
# the integrity fixes, measured side by side), 170 ms under ASan: 100 of
# them need 12-17 s: the HUPs may take 30 s, the clients run 31.
my $hka = $t->hammer(paths => \@paths, seconds => 31, clients => 2, keep_alive => 1);
my $hnew = $t->hammer(paths => \@paths, seconds => 31, clients => 1, keep_alive => 0);
$t0 = time;
my $r0 = reloads_logged();
my $done = 0;
while ($done < 100 && time < $t0 + 30) {
    kill 'HUP', $t->pid;
    $done++;
    # The next signal only once the master has taken this one.
    my $until = time + 2;
    sleep 0.02 while reloads_logged() < $r0 + $done && time < $until;
    sleep 0.05;
}
my $took = time - $t0;
my $lka = $t->hammer_results($hka);
my $lnew = $t->hammer_results($hnew);
is(reloads_logged() - $r0, 100, sprintf '100 reloads taken by the master in %.1f s', $took);
my $ck = count('100-reloads(keep-alive clients)', $lka, \&is_old,
               sprintf '100 HUPs in %.1f s, 2 clients reusing connections', $took);
my $cn = count('100-reloads(new connection per request)', $lnew, \&is_old,
               sprintf '100 HUPs in %.1f s, 1 client, a new connection per request', $took);
is($ck->{errors}, 0, "100 reloads, keep-alive clients: none failed ($ck->{retries} retried once)");
is($cn->{errors}, 0, '100 reloads, a new connection per request: none failed');
is($cn->{retries}, 0, '... none needed a retry');
sleep 1;
cmp_ok(scalar(workers()), '<=', 4, 'old workers have exited (' . scalar(workers()) . ' children)');

###########################################################################
# 6. The store file swapped by rename (mv) under load.

# Builds a store elsewhere (same file system: mv is a rename) whose
# campaign "fresh$n" binds the roll; $parity: make its last transaction id
# odd or even (LMDB readers of the old lock file go by that parity).
sub txnid { my ($p) = @_; my ($id) = `mdb_stat -n -e $p` =~ /Last transaction ID: (\d+)/; return $id }
sub stage {
    my ($n, $parity) = @_;
    my $s = "$d/stage$n";
    mkdir $s;
    load_store("$s/new.mdb", ["c$n.csv", "campaign,type,url\nfresh$n,h5,https://fresh$n.example/\n"],
               ["b$n.csv", "batch,kid,serial_from,serial_to,scene,campaign\nroll,1,1,1000000,trace,fresh$n\n"]);
    load_store("$s/new.mdb", ["x$n.csv", "campaign,type,url\npad,h5,https://pad.example/\n"])
        if txnid("$s/new.mdb") % 2 != $parity;
    return "$s/new.mdb";
}

my $prev = 'old';
for my $case (['same', 0], ['other', 1]) {
    my ($name, $flip) = @$case;
    my $n = $name eq 'same' ? 1 : 2;
    my $lock_txnid = txnid($db);
    my $new = stage($n, ($lock_txnid + $flip) % 2);
    my $ntx = txnid($new);
    $h = $t->hammer(paths => \@paths, seconds => 4, clients => 2);
    sleep 0.5;
    system('mv', $new, $db) == 0 or die "mv: $?";
    my $lines = $t->hammer_results($h);
    my $is = sub { $_[0] =~ m{^302 https://(\Q$prev\E|fresh$n)\.example/\S+( retried)?$} };
    my $unavail = grep { /^503 / } @$lines;
    my $c = count("rename-swap(txnid parity $name)", $lines, $is,
                  sprintf('mv of a store built elsewhere over the one in use; last txnid: '
                          . 'old file %d, new file %d; 503 unavailable=%d, about %.1f s '
                          . 'at the run\'s rate (documented: README, "Renaming a file over")',
                          $lock_txnid, $ntx, $unavail, $unavail / (@$lines / 4)),
                  sub { $_[0] =~ /^503 / });
    is($c->{errors}, 0, "mv over the store (txnid parity $name): no wrong answer, no failed request");
    is($unavail, 0, '... and no 503: the lock file agrees with the new file') if $name eq 'same';
    like($lines->[-1], qr{^302 https://fresh$n\.example/}, '... answers switched to the new file within the run');
    like(target($t, $paths[0]), qr{^https://fresh$n\.example/\?code=\w+&batch=roll&scene=trace},
         '... and stay so');
    $prev = "fresh$n";
}

# The documented way: flip a symlink to a new file (mv -T), under load.
my $v1 = stage(3, 0);
my $v2 = stage(4, 1);
symlink $v1, "$d/current.mdb" or die;
my $ts = CodeRouter::Test::Nginx->new(http => server_conf("$d/current.mdb"), workers => 2);
$ts->start;
$h = $ts->hammer(paths => \@paths, seconds => 3, clients => 2);
sleep 0.5;
symlink $v2, "$d/next.mdb" or die;
system('mv', '-T', "$d/next.mdb", "$d/current.mdb") == 0 or die "mv -T: $?";
$lines = $ts->hammer_results($h);
$c = count('symlink-flip', $lines, sub { $_[0] =~ m{^302 https://fresh[34]\.example/\S+( retried)?$} },
           'ln -s v2 next && mv -T next current under load (the documented way)');
is($c->{errors}, 0, 'a symlink flip under load: no error');
like($lines->[-1], qr{^302 https://fresh4\.example/}, '... the new file is served');
$ts->stop;

is(scalar $t->bad_log_lines, 0, 'no other alert or crit in the error log')
    or diag join "\n", $t->bad_log_lines;
$t->stop;

done_testing;
