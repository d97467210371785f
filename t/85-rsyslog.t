#!/usr/bin/perl
# The scan log shipped to a central place with Debian's rsyslog, as
# conf/rsyslog/ configures it: an edge rsyslog (code-router-ship.conf:
# imfile on the scan log, RELP through a disk-assisted queue) and a
# collector (code-router-collector.conf: imrelp, one JSON line a record),
# both on loopback.  Under a loop of scans the collector is killed
# (SIGKILL, no goodbye), the scan log is rotated meanwhile with the
# package's logrotate rule (nginx reopens on USR1), and the collector
# comes back: every record written reaches it, and after de-duplicating by
# request_id the central file holds exactly the edge's records, each once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(scan_dir root tmpdir make_key read_file write_file
                        load_store mint free_port run_cmd);

my $RSYSLOGD = '/usr/sbin/rsyslogd';
my $RELP = '/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so';
plan skip_all => 'needs rsyslog and rsyslog-relp (make deps)'
    unless -x $RSYSLOGD && (glob '/usr/lib/*/rsyslog/omrelp.so');
plan skip_all => 'needs logrotate (make deps)' unless -x '/usr/sbin/logrotate';
plan skip_all => 'needs root (logrotate wants its rule owned by root)'
    if $> != 0;

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $sdir = scan_dir($d);
mkdir "$d/$_" for qw(log central ship-spool collector-spool);
load_store("$d/brand.mdb", root() . '/conf/examples/campaigns.csv',
           root() . '/conf/examples/batches.csv');
my ($format) = read_file(root() . '/conf/nginx.conf')
    =~ /^\s*(log_format scan escape=none .*?;)$/m or die 'no scan log format';

my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    $format
    code_router_db $d/brand.mdb;
    code_router_key 1 $key;
    code_router_scans zone=scans:1m store=$sdir/scans.mdb;
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log $d/log/scan.log scan;
        location / {
            code_router \$uri;
        }
    }
CONF
$t->start;

# --- the two rsyslogs, from conf/rsyslog/ --------------------------------

my $port = free_port();
my $ship = read_file(root() . '/conf/rsyslog/code-router-ship.conf');
my $n = 0;
$n += $ship =~ s{/var/log/code-router/}{$d/log/}g;
$n += $ship =~ s{target="collector\.example" port="2514"}
                {target="127.0.0.1" port="$port"};
is($n, 3, 'the shipper: the two logs and the collector, replaced');
# Its own work directory (imfile's positions, the queue's files) and no
# messages of its own to anywhere.
write_file("$d/ship.conf",
           qq{global(workDirectory="$d/ship-spool")\n$ship});

my $coll = read_file(root() . '/conf/rsyslog/code-router-collector.conf');
$n = 0;
$n += $coll =~ s{port="2514"}{port="$port"};
$n += $coll =~ s{/var/log/code-router-central/}{$d/central/}g;
is($n, 4, 'the collector: its port and two files (and its header), replaced');
write_file("$d/collector.conf",
           qq{global(workDirectory="$d/collector-spool")\n$coll});

for my $c (qw(ship collector)) {
    my ($rc, $out, $err) = run_cmd([$RSYSLOGD, '-N1', '-f', "$d/$c.conf"]);
    is($rc, 0, "rsyslogd -N1 accepts the $c configuration") or diag "$out$err";
}

# rsyslogd in the foreground (-n), as a child of this test; -i its pid
# file, -C no pid file check.
sub rsyslog {
    my ($name) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$d/$name.out";
        open STDERR, '>&', \*STDOUT;
        exec $RSYSLOGD, '-n', '-f', "$d/$name.conf", '-i', "$d/$name.pid";
        exit 127;
    }
    return $pid;
}
my %pid;
END {
    for (grep { defined } values %pid) {
        kill 'TERM', $_;
        waitpid $_, 0;
    }
}
sub stop_rsyslog {
    my ($name, $sig) = @_;
    my $pid = delete $pid{$name} or return;
    kill $sig, $pid;
    waitpid $pid, 0;
}
sub listening {
    IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                          Timeout => 1);
}
sub start_collector {
    $pid{collector} = rsyslog('collector');
    my $deadline = time + 10;
    sleep 0.1 until listening() || time > $deadline;
    ok(listening(), 'the collector listens (RELP)');
}
start_collector();
$pid{ship} = rsyslog('ship');

# --- scans, an outage, a rotation ------------------------------------------

my @codes = map { mint($key, 1, $_) } 1000001 .. 1000020;
my $sent = 0;
sub scan_for {
    my ($seconds) = @_;
    my $until = time + $seconds;
    while (time < $until) {
        my $r = $t->get('/' . $codes[$sent % @codes]);
        $sent++ if $r->{status};
        sleep 0.01;
    }
}

my $rule = read_file(root() . '/debian/code-router.logrotate');
$n = 0;
$n += $rule =~ s{^/var/log/code-router/\*\.log }{$d/log/*.log }m;
$n += $rule =~ s{/run/nginx\.pid}{$t->prefix . '/nginx.pid'}ge;
$rule =~ s{^\s*create .*\n}{\tcreate 0644 root root\n}m;
is($n, 3, "the package's logrotate rule, its paths replaced");
write_file("$d/logrotate.conf", $rule, 0644);

my $t0 = time;
scan_for(4);
stop_rsyslog('collector', 'KILL');
note("collector killed after $sent scans");
scan_for(3);
my ($rc, $out, $err) = run_cmd(['/usr/sbin/logrotate', '-f', '-s',
                                "$d/logrotate.state", "$d/logrotate.conf"]);
is($rc, 0, 'logrotate rotates the scan log during the outage')
    or diag "$out$err";
ok(-f "$d/log/scan.log.1", '... to scan.log.1 (delaycompress: plain)');
scan_for(3);
ok(-s "$d/log/scan.log", '... and nginx writes a new scan.log (USR1)');
start_collector();
note("collector back after an outage of 6 s, $sent scans so far");
scan_for(4);
diag(sprintf '%d scans in %.0f s, the collector away for 6 s', $sent,
             time - $t0);

# --- every record there, once after de-duplication -----------------------

my $j = JSON::PP->new;
sub records {
    my @files = @_;
    my @r;
    for my $f (@files) {
        next unless -f $f;
        for my $line (split /\n/, read_file($f)) {
            my $rec = eval { $j->decode($line) };
            push @r, $rec // { bad => $line };
        }
    }
    return @r;
}
my @local;
for (1 .. 100) {
    @local = records("$d/log/scan.log.1", "$d/log/scan.log");
    last if @local >= $sent;
    sleep 0.05;
}
is(scalar @local, $sent, 'the edge logged every scan (both files)');
my %want = map { $_->{request_id} => 1 } @local;
is(scalar keys %want, scalar @local, '... each with its own request_id');

# Caught up: every request id there (a cheap look, then the real one).
my $wait0 = time;
while (time < $wait0 + 60) {
    my %seen = map { $_ => 1 }
               read_file("$d/central/scan.log") =~ /"request_id":"(\w+)"/g;
    last if !grep { !$seen{$_} } keys %want;
    sleep 0.5;
}
my @central = records("$d/central/scan.log");
my %got;
$got{$_->{request_id} // ''}++ for @central;
my @bad = grep { $_->{bad} } @central;
is_deeply(\@bad, [], 'every central line is a JSON record')
    or diag explain [@bad[0 .. ($#bad < 2 ? $#bad : 2)]];
my @missing = grep { !$got{$_} } sort keys %want;
is_deeply(\@missing, [], 'every record reached the collector')
    or diag(scalar(@missing) . ' missing');
my @extra = grep { !$want{$_} } sort keys %got;
is_deeply(\@extra, [], '... and nothing else');
my $dups = grep { $_ > 1 } values %got;
diag(sprintf '%d central lines, %d records, %d sent twice; caught up %.1f s '
             . 'after the scans ended', scalar @central, scalar keys %want,
             $dups, time - $wait0);
# After de-duplication, the central records are the edge's, byte for byte.
my %by_id = map { $_->{request_id} => $_ } @central;
is_deeply([map { $by_id{$_->{request_id}} } @local], \@local,
          'de-duplicated by request_id: the same records as the edge wrote');

stop_rsyslog($_, 'TERM') for qw(ship collector);
$t->stop;
done_testing();
