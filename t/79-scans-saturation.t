#!/usr/bin/perl
# Scans at full speed into a zone that holds a small share of them: wrk
# (16 keep-alive connections, the worker's core saturated) walks 40,000
# distinct codes in order, round and round, into a zone of about 1,900,
# so that every scan but the zone's few is a code the zone must make room
# for, and the flush's idle-priority thread gets no time of its own.  The
# zone's room comes only from codes already stored: what it does when
# none is stored is what this test is about.  Every answered scan must be
# counted: the store's counts after a graceful stop add up to the 302s in
# the access log, and code_router_scans_uncounted_total is 0.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(tmpdir counting_store run_cmd cli write_file
                        read_file);

my ($wrk) = grep { -x } map { "$_/wrk" } split /:/, $ENV{PATH};
plan skip_all => 'wrk is not installed (apt-get install wrk)' unless $wrk;
plan skip_all => 'under valgrind: no full speed' if CodeRouter::Test::under_valgrind();

my $N = 40000;
my $SECONDS = $ENV{CR_SATURATION_SECONDS} // 6;
my $d = tmpdir();
my ($key, $db, $sdir, $codes) = counting_store($d, $N);
my @codes = @$codes;
my ($rc, $out, $err);
is(scalar @codes, $N, "$N codes");
write_file("$d/paths", join '', map { "/$_\n" } @codes);

# Each request the next code: a code comes back only after 40,000 others.
write_file("$d/walk.lua", <<'LUA');
local reqs, i = {}, 0
function init(args)
    for line in io.lines(os.getenv("CR_PATHS")) do
        reqs[#reqs + 1] = wrk.format("GET", line)
    end
end
function request()
    i = i % #reqs + 1
    return reqs[i]
end
LUA

my $t = CodeRouter::Test::Nginx->new(
    main => "thread_pool tp threads=1;\nworker_cpu_affinity 01;",
    http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans zone=sat:256k store=$sdir/scans.mdb thread_pool=tp;
    log_format st '\$status';
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/scans.log st buffer=64k flush=1s;
        location / { code_router \$uri; }
        location = /status { access_log off; code_router_status; }
    }
CONF
$t->start;

sub metric {
    my ($name) = @_;
    my ($m) = ($t->get('/status')->{content} // '')
        =~ /^code_router_scans_\Q$name\E\{zone="sat"\} (\d+)/m;
    return $m;
}

my $zone = metric('codes');
ok(defined $zone, 'the zone reports its codes');

# wrk on the other core (if taskset is there): the worker's is its own.
my @pin = -x '/usr/bin/taskset' ? ('/usr/bin/taskset', '-c', '1') : ();
{
    local $ENV{CR_PATHS} = "$d/paths";
    ($rc, $out, $err) = run_cmd([@pin, $wrk, '-t1', '-c16', "-d${SECONDS}s",
                                 '-s', "$d/walk.lua", $t->url('/')]);
}
is($rc, 0, "wrk ran") or diag "rc $rc: $err $out";
my ($sent) = $out =~ /(\d+) requests in/;
note($out);
cmp_ok($sent // 0, '>', 10000, 'far more scans than the zone holds')
    or diag $out;

my $codes_max = 0;
my ($counted, $uncounted, $waits) = map { metric($_) }
    qw(total uncounted_total waits_total);
is($uncounted, 0, 'no scan uncounted (code_router_scans_uncounted_total)');
cmp_ok($waits // 0, '>', 0, 'the zone filled: scans waited for room');
note("counted $counted, waits for room " . ($waits // 'n/a'));

$t->stop;

my $answered = () = read_file($t->prefix . '/logs/scans.log') =~ /^302$/mg;
cmp_ok($answered, '>', 10000, "$answered scans answered 302");
is($counted, $answered, 'code_router_scans_total: every answered scan');

($rc, $out, $err) = run_cmd([cli(), 'scans', '--store', "$sdir/scans.mdb"]);
is($rc, 0, 'the store reads') or diag $err;
my ($stored, $rows) = (0, 0);
for (split /\n/, $out) {
    my @f = split /,/;
    next unless @f > 3 && $f[3] =~ /^\d+$/;
    $stored += $f[3];
    $rows++;
}
is($rows, $answered < $N ? $answered : $N, 'every code scanned in the store');
is($stored, $answered, 'the store counted every answered scan');

done_testing();
