#!/usr/bin/perl
# What an upgrade of the module package does to a running nginx (README,
# "Upgrades and removal"): the module file is replaced the way dpkg does
# (a new file renamed over the old one) by a build whose version differs.
# A reload (HUP, what Debian's nginx-reload trigger and `nginx -s reload`
# do) keeps the old module: /status's code_router_build_info still names
# the old version, and the new workers map the old, deleted file.  A
# binary upgrade (USR2, then QUIT to the old master) loads the new one
# with no failed request under a client loop; so would a restart.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Copy qw(copy);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(tmpdir make_key load_store mint read_file write_file
                        module);

plan skip_all => 'CR_MODULE=static: no module file to replace'
    if CodeRouter::Test::static_module();
plan skip_all => 'CR_VALGRIND: a binary upgrade execs nginx without valgrind'
    if $ENV{CR_VALGRIND};

my $d = tmpdir();
my $key = make_key("$d/1.key");
load_store("$d/brand.mdb", ['c.csv', "campaign,type,url\nh5,h5,https://shop.example/\n"],
           ['b.csv', "batch,kid,serial_from,serial_to,scene,campaign\nb1,1,1,100,verify,h5\n"]);

# The installed module: a copy, as in /usr/lib/nginx/modules/.
mkdir "$d/modules";
my $so = "$d/modules/ngx_http_code_router_module.so";
copy(module(), $so) or die "copy: $!";
my $bytes = read_file($so);
my ($old) = $bytes =~ /code_router_build_info\{version=\\?"([0-9][^"\\]*)\\?"/
    or die 'no build_info version in the module';
# The "new package": the same build with another version in its
# build_info (same length, so the file stays valid).
(my $new = $old) =~ s/(\d)$/$1 == 9 ? 8 : $1 + 1/e;
(my $patched = $bytes) =~ s/(code_router_build_info\{version=\\?")\Q$old\E/$1$new/
    or die 'cannot patch the version';
write_file("$so.dpkg-new", $patched, 0644);

$ENV{CR_MODULE} = $so;
# A new binary gets only the environment nginx passes on: under the
# sanitizers, the runtime it needs preloaded.
my $env = $ENV{CR_NGINX_PRELOAD}
        ? "env LD_PRELOAD;\nenv ASAN_OPTIONS;\nenv UBSAN_OPTIONS;" : '';
my $t = CodeRouter::Test::Nginx->new(workers => 2, main => $env,
                                     http => <<"CONF");
    code_router_db $d/brand.mdb;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /status { code_router_status; }
        location / { code_router \$uri; }
    }
CONF
# Daemonized, as a service runs it: nginx ignores USR2 from a master
# whose parent is still the one that started it (daemon off).
my $p = $t->prefix;
$t->write_conf;
# The master's pid (nginx rewrites the file: wait for a whole one).
sub master {
    my $m = '';
    for (1 .. 100) {
        $m = read_file("$p/nginx.pid");
        last if $m =~ /^\d+\n\z/;
        sleep 0.02;
    }
    chomp $m;
    return $m;
}
my %masters;
END { kill 'TERM', grep { kill 0, $_ } keys %masters }
{
    local $ENV{LD_PRELOAD} = $ENV{CR_NGINX_PRELOAD} if $ENV{CR_NGINX_PRELOAD};
    local $ENV{ASAN_OPTIONS} = $ENV{ASAN_OPTIONS} // 'detect_leaks=0';
    system(CodeRouter::Test::nginx_cmd($p, '-p', $p, '-c', $t->conf_path,
                                       '-e', "$p/logs/error.log")) == 0
        or die "nginx did not start:\n" . $t->error_log;
}
my $deadline = time + 10;
sleep 0.05 until -s "$p/nginx.pid" || time > $deadline;
$masters{master()} = 1;
$deadline = time + 10;
sleep 0.05 until $t->get('/status')->{status} == 200 || time > $deadline;

sub version {
    my ($v) = $t->get('/status')->{content}
              =~ /^code_router_build_info\{version="([^"]+)",nginx="[^"]+"\} 1$/m;
    return $v // '';
}
sub workers_map {
    my ($master, $what) = @_;
    my @w = split ' ', `pgrep -P $master`;
    return grep { read_file("/proc/$_/maps") =~ $what } @w;
}

is(version(), $old, "/status: build_info names the running module ($old)");
my $code = mint($key, 1, 7);
is($t->get("/$code")->{status}, 302, 'a scan: 302');

# dpkg's way: the new file renamed over the old one.
rename "$so.dpkg-new", $so or die "rename: $!";
kill 'HUP', master();
sleep 1;
is(version(), $old, 'after the package replaced the module, a reload still '
                    . "runs $old");
my @stale = workers_map(master(), qr{\Q$so\E \(deleted\)});
ok(@stale, 'the new workers map the old module, deleted ('
           . scalar(@stale) . ' of them)');

# The binary upgrade under a client loop: USR2 starts a new master (a
# fresh exec, which loads the new file), QUIT ends the old one.
my $h = $t->hammer(clients => 2, seconds => 4, paths => ["/$code"],
                   keep_alive => 0);
sleep 0.5;
my $oldmaster = master();
kill 'USR2', $oldmaster;
$deadline = time + 10;
sleep 0.05 until (-e $t->prefix . '/nginx.pid.oldbin' && master() != $oldmaster)
                 || time > $deadline;
my $newmaster = master();
$masters{$newmaster} = 1;
isnt($newmaster, $oldmaster, 'USR2: a new master') or diag($t->error_log);
sleep 0.5;
kill 'QUIT', $oldmaster;
$deadline = time + 10;
sleep 0.05 while kill(0, $oldmaster) && time < $deadline;
ok(!kill(0, $oldmaster), 'QUIT: the old master is gone');
my $lines = $t->hammer_results($h);
my @failed = grep { !/^302 / } @$lines;
ok(@$lines > 20, scalar(@$lines) . ' scans during the binary upgrade');
is_deeply(\@failed, [], '... none failed');
is(version(), $new, "the new master runs the new module ($new)");
is(scalar(workers_map($newmaster, qr{\Q$so\E \(deleted\)})), 0,
   '... and none of its workers maps the deleted one');

kill 'QUIT', $newmaster;
$deadline = time + 10;
sleep 0.05 while kill(0, $newmaster) && time < $deadline;
ok(!kill(0, $newmaster), 'the new master stops');
done_testing();
