package CodeRouter::Test;

# The test harness: paths to what `make` built, a CLI runner, and a real
# nginx (Debian's /usr/sbin/nginx with our module loaded) started on a free
# loopback port in a temporary prefix, talked to without following
# redirects, and stopped by pid.
#
#   my $t = CodeRouter::Test::Nginx->new(http => $http_block_text);
#   $t->start;                      # dies with the error log if it fails
#   my $res = $t->get('/CODE', { 'User-Agent' => 'x' });
#   $t->stop;                       # also done when $t goes out of scope
#
# CR_NGINX and CR_MODULE name another nginx and module (make test
# NGINX=1.26; CR_MODULE=static: the module compiled into that nginx).
#
# In http/server text, %%PREFIX%% is the temporary prefix and %%PORT%% the
# port.  Only core Perl modules are used (HTTP::Tiny, IO::Socket::INET).
#
# CR_VALGRIND=1 (make test VALGRIND=1) runs every nginx, master and
# workers, under valgrind (memcheck; one log per process in
# PREFIX/logs/valgrind.PID.log), waits longer for it, and fails a test
# whose nginx reported an invalid access, an uninitialised value or a
# definite leak with a frame of ours (ngx_http_code_router_*, cr_*).

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(root cli gs1_oracle run_cmd tmpdir write_file read_file
                    free_port make_key load_store mint counting_store
                    counting_http
                    under_valgrind slow example_api_conf nginx_bin
                    nginx_version module load_module_line
                    self_signed_cert ops_conf run_nginx exec_nginx
                    scan_dir log_line);

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');

# nginx takes NGINX from its environment as sockets inherited in a binary
# upgrade ("make test NGINX=1.26" is another NGINX): never hand it on.
delete $ENV{NGINX};

sub root { $ROOT }
sub cli { $ENV{CR_CLI} // "$ROOT/build/code-router" }

# The GS1 oracle's directory (t/oracle, digital-link.js installed by make
# unit) and build/t/gs1-parse, for t/25 and t/35: skips the test if
# gs1-parse is not built, bails out if the oracle is not installed.
sub gs1_oracle {
    require Test::More;
    my $oracle = "$ROOT/t/oracle";
    my $parse = "$ROOT/build/t/gs1-parse";
    Test::More::plan(skip_all => "$parse not built (make unit)") unless -x $parse;
    Test::More::ok(-d "$oracle/node_modules/digital-link.js",
                   'digital-link.js is installed (make unit runs npm ci in t/oracle)')
        or Test::More::BAIL_OUT('no oracle: run make unit');
    return ($oracle, $parse);
}
# CR_MODULE: another build of the module (e.g. with sanitizers), or
# "static" for an nginx (CR_NGINX) with the module compiled in: no
# load_module then.  CR_NGINX_PRELOAD: libraries to preload into nginx
# alone (their runtime).
sub module { $ENV{CR_MODULE} // "$ROOT/build/ngx_http_code_router_module.so" }
sub static_module { module() eq 'static' }
sub load_module_line { static_module() ? '' : 'load_module ' . module() . ';' }
sub nginx_bin { $ENV{CR_NGINX} // '/usr/sbin/nginx' }

# The version of the nginx under test as a number, nginx_version's form
# (1.22.1 is 1022001): configurations that differ between versions
# (listen ... http2 before 1.25.1, http2 on after) ask it.
my $NGINX_VERSION;
sub nginx_version {
    return $NGINX_VERSION if defined $NGINX_VERSION;
    my (undef, $out, $err) = run_cmd([nginx_bin(), '-v']);
    my ($a, $b, $c) = "$out$err" =~ m{nginx/(\d+)\.(\d+)\.(\d+)}
        or die 'no version from ' . nginx_bin() . " -v: $out$err";
    return $NGINX_VERSION = $a * 1000000 + $b * 1000 + $c;
}

# CR_VALGRIND: nginx runs under valgrind, some 20-50 times slower; slow()
# is the factor to stretch waits and timeouts by.
sub under_valgrind { $ENV{CR_VALGRIND} ? 1 : 0 }
sub slow { under_valgrind() ? 10 : 1 }

# The command line that starts nginx (under valgrind with CR_VALGRIND).
# Workers are forked, not exec'ed: valgrind follows them by itself, and
# %p gives each process its own log.  No --error-exitcode: nginx itself
# loses a few blocks for good at every exit (a PCRE2 compile context, the
# -t cycle, a worker's environment), which would fail every nginx -t; the
# logs are read instead (check_valgrind).
sub nginx_cmd {
    my ($prefix, @args) = @_;
    my @vg;
    @vg = ('valgrind', '--tool=memcheck', '--leak-check=full',
           '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite',
           '--trace-children=yes', '--num-callers=30',
           # nginx dlclose()s its modules when a process frees its cycle,
           # before the leak check: without this our frames are "???".
           '--keep-debuginfo=yes',
           "--log-file=$prefix/logs/valgrind.%p.log")
        if under_valgrind();
    return (@vg, nginx_bin(), @args);
}

# A temporary directory, removed at exit; readable by nginx's workers.
sub tmpdir {
    my $d = tempdir('cr-test-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $d;
    return $d;
}

# $d/scans, writable by the workers (nobody), who create the scan store.
sub scan_dir {
    my ($d) = @_;
    mkdir "$d/scans";
    chmod 0777, "$d/scans";
    return "$d/scans";
}

sub write_file {
    my ($path, $content, $mode) = @_;
    open my $fh, '>:raw', $path or die "write $path: $!";
    print $fh $content;
    close $fh or die "close $path: $!";
    chmod $mode, $path if defined $mode;
    return $path;
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return '';
    local $/;
    return scalar <$fh>;
}

# Line $n (from 1) of the log file $path, waiting up to 5 s for it: nginx
# logs a request after it has sent the response, so a client may read
# the log before the line is there.  '' if it never comes.
sub log_line {
    my ($path, $n) = @_;
    my @l;
    for (1 .. 100) {
        @l = split /\n/, read_file($path);
        last if @l >= $n;
        sleep 0.05;
    }
    return $l[$n - 1] // '';
}

# Runs a command; returns (exit code, stdout, stderr).  stdin from $in.
sub run_cmd {
    my ($cmd, $in) = @_;
    my $d = tmpdir();
    write_file("$d/in", $in // '');
    my $shell = join(' ', map { _sq($_) } @$cmd)
              . " <$d/in >$d/out 2>$d/err";
    system('/bin/sh', '-c', $shell);
    my $rc = $? == -1 ? -1 : ($? & 127 ? 128 + ($? & 127) : $? >> 8);
    return ($rc, read_file("$d/out"), read_file("$d/err"));
}

sub _sq {
    my ($s) = @_;
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

sub make_key {
    my ($path) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'keygen', '--out', $path]);
    die "keygen: $err" if $rc;
    return $path;
}

# Loads CSV files (paths, or [name => text] pairs) into the store at $db
# with the loader; dies with its errors.  Makes the lock file writable by
# nginx's worker user, as docs/loading.md tells ops to (group www-data).
sub load_store {
    my ($db, @files) = @_;
    my @paths;
    for my $f (@files) {
        if (ref $f) {
            my ($name, $text) = @$f;
            push @paths, write_file(dirname($db) . "/$name", $text);
        } else {
            push @paths, $f;
        }
    }
    my ($rc, $out, $err) = run_cmd(["$ROOT/scripts/code-router-load",
                                    '--db', $db, @paths]);
    die "load failed ($rc): $err" if $rc;
    chmod 0666, "$db-lock";
    chmod 0644, $db;
    return $out;
}

sub mint {
    my ($key, $kid, $serial) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $key, '--kid', $kid,
                                    '--from', $serial, '--count', 1]);
    die "mint: $err" if $rc;
    chomp $out;
    return $out;
}

# Many codes to scan: in $d a key (1.key, key id 1), a store (brand.mdb)
# whose one batch binds serials 1 to 100,000 to one campaign, and the
# scan directory; returns ($key, $db, $scan_dir, [codes of serials 1 to
# $n]).
sub counting_store {
    my ($d, $n) = @_;
    my $key = make_key("$d/1.key");
    my $db = "$d/brand.mdb";
    load_store($db, ['c.csv', "campaign,type,url\nh5,h5,https://shop.example/\n"],
               ['b.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
                         . "trace,1,1,100000,trace,h5\n"]);
    my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $key, '--kid', 1,
                                    '--from', 1, '--count', $n]);
    die "mint: $err" if $rc;
    return ($key, $db, scan_dir($d), [split /\n/, $out]);
}

# An http block counting scans of counting_store()'s codes: the zone's
# parameters, a router at /, the API and /status.
sub counting_http {
    my ($db, $key, $scans) = @_;
    return <<"CONF";
    code_router_db $db;
    code_router_key 1 $key;
    code_router_scans $scans;
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { code_router \$uri; }
        location /v1/codes/ { code_router_api; }
        location = /status { code_router_status; }
    }
CONF
}

# conf/api.conf as shipped, listening on 127.0.0.1:$port and logging into
# the prefix: text for an http block.
sub example_api_conf {
    my ($port) = @_;
    my $api = read_file("$ROOT/conf/api.conf");
    $api =~ s{listen 127\.0\.0\.1:8081;}{listen 127.0.0.1:$port;};
    $api =~ s{/var/log/nginx/code-router-api\.log scan}
             {%%PREFIX%%/logs/api.log};
    return $api;
}

# nginx (nginx_bin) run with @args outside the Nginx class (a whole
# configuration of one's own), with the sanitizer runtime preloaded as
# for the class's: run_nginx returns run_cmd's (code, stdout, stderr);
# exec_nginx replaces the calling (forked) process.
sub _nginx_env {
    return unless $ENV{CR_NGINX_PRELOAD};
    $ENV{LD_PRELOAD} = $ENV{CR_NGINX_PRELOAD};
    $ENV{ASAN_OPTIONS} //= 'detect_leaks=0';
}

sub run_nginx {
    my @args = @_;
    local $ENV{LD_PRELOAD} = $ENV{LD_PRELOAD};
    local $ENV{ASAN_OPTIONS} = $ENV{ASAN_OPTIONS};
    _nginx_env();
    return run_cmd([nginx_bin(), @args]);
}

sub exec_nginx {
    _nginx_env();
    exec nginx_bin(), @_;
    die 'exec ' . nginx_bin() . ": $!";
}

# A self-signed certificate for $cn (and its SAN), made by openssl in
# $dir: returns (certificate path, key path).
sub self_signed_cert {
    my ($dir, $cn) = @_;
    my ($cert, $key) = ("$dir/cert.pem", "$dir/key.pem");
    my ($rc, $out, $err) = run_cmd(['openssl', 'req', '-x509', '-newkey', 'ec',
        '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', "/CN=$cn", '-addext', "subjectAltName=DNS:$cn",
        '-keyout', $key, '-out', $cert]);
    die "openssl req: $err" if $rc;
    return ($cert, $key);
}

# conf/nginx.conf, the example for ops, made runnable here: every path
# pointed into $d (a key in $d/1.key, a store in $d/brand.mdb, the TLS
# files in $d/tls, WeChat's files in $d/wechat, the pages from conf/html)
# and its listeners on loopback ports %port (http, https, api).  On nginx
# 1.25.1+ the HTTPS listener takes the form its comment gives for 1.26.
# Returns the text of $d/nginx.conf (with error_log and pid in $d).
sub ops_conf {
    my ($d, %port) = @_;
    my $conf = read_file("$ROOT/conf/nginx.conf");
    my $load = load_module_line();
    my $n = 0;
    $n += $conf =~ s{^include /etc/nginx/modules-enabled/\*\.conf;}{$load}m;
    $n += $conf =~ s{/var/lib/code-router/brand\.mdb}{$d/brand.mdb}g;
    $n += $conf =~ s{/etc/nginx/code-router/1\.key}{$d/1.key}g;
    $n += $conf =~ s{/var/log/code-router/scan\.log}{$d/scan.log}g;
    $n += $conf =~ s{/var/log/code-router/verify\.log}{$d/verify.log}g;
    # The test's own error log (below), and loopback listeners only.
    $n += $conf =~ s{^error_log /var/log/nginx/error\.log;\n}{}m;
    $n += $conf =~ s{^\s*listen \[::\]:\d+[^;]*;\n}{}mg;
    $n += $conf =~ s{/var/lib/code-router/scans/scans\.mdb}{$d/scans/scans.mdb}g;
    $n += $conf =~ s{include mime.types;}{include /etc/nginx/mime.types;}g;
    $n += $conf =~ s{/etc/nginx/code-router/tls/}{$d/tls/}g;
    $n += $conf =~ s{/usr/share/code-router/html/?}{$ROOT/conf/html/}g;
    $n += $conf =~ s{/usr/share/code-router/wechat}{$d/wechat}g;
    $n += $conf =~ s{^(\s*)listen 80;}{$1listen 127.0.0.1:$port{http};}m;
    my $tls = nginx_version() >= 1025001
            ? "listen 127.0.0.1:$port{https} ssl;\n        http2 on;"
            : "listen 127.0.0.1:$port{https} ssl http2;";
    $n += $conf =~ s{^(\s*)listen 443 ssl http2;}{$1$tls}m;
    $n += $conf =~ s{/etc/nginx/code-router/api\.conf}{$d/api.conf}g;
    # No test nginx may ask a public resolver (OCSP stapling): loopback.
    $conf =~ s{^(\s*)resolver [^;]*;}{$1resolver 127.0.0.1;}m
        or die 'conf/nginx.conf has changed: update ops_conf (resolver)';
    die "conf/nginx.conf has changed: update ops_conf ($n substitutions)"
        unless $n >= 19;
    my $api = read_file("$ROOT/conf/api.conf");
    $api =~ s{listen 127\.0\.0\.1:8081;}{listen 127.0.0.1:$port{api};}g;
    $api =~ s{/var/log/nginx/code-router-api\.log}{$d/api.log}g;
    write_file("$d/api.conf", $api);
    mkdir "$d/$_" for qw(scans tls wechat);
    chmod 0777, "$d/scans";
    my ($cert, $key) = self_signed_cert("$d/tls", 'c.brand.cn');
    rename $cert, "$d/tls/fullchain.pem";
    rename $key, "$d/tls/privkey.pem";
    system('cp', "$d/tls/fullchain.pem", "$d/tls/chain.pem");
    $conf = "error_log $d/error.log;\npid $d/nginx.pid;\n$conf";
    write_file("$d/nginx.conf", $conf);
    return $conf;
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}


package CodeRouter::Test::Nginx;

use strict;
use warnings;

use HTTP::Tiny;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

# new(http => TEXT, main => TEXT, workers => N)
sub new {
    my ($class, %args) = @_;
    my $self = bless { %args }, $class;
    $self->{prefix} = CodeRouter::Test::tmpdir();
    $self->{port} = CodeRouter::Test::free_port();
    mkdir "$self->{prefix}/$_" for qw(logs tmp);
    $self->write_conf;
    return $self;
}

sub prefix { $_[0]{prefix} }
sub port { $_[0]{port} }
sub conf_path { "$_[0]{prefix}/nginx.conf" }
sub error_log { CodeRouter::Test::read_file("$_[0]{prefix}/logs/error.log") }

sub subst {
    my ($self, $text) = @_;
    $text =~ s/%%PREFIX%%/$self->{prefix}/g;
    $text =~ s/%%PORT%%/$self->{port}/g;
    $text =~ s/%%ROOT%%/CodeRouter::Test::root()/ge;
    return $text;
}

sub write_conf {
    my ($self) = @_;
    my $p = $self->{prefix};
    my $load = CodeRouter::Test::load_module_line();
    my $workers = $self->{workers} // 1;
    my $main = $self->subst($self->{main} // '');
    my $http = $self->subst($self->{http} // '');
    my $conf = <<"EOF";
$load
worker_processes $workers;
error_log $p/logs/error.log info;
pid $p/nginx.pid;
$main
events { worker_connections 256; }
http {
    access_log $p/logs/access.log;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
$http
}
EOF
    CodeRouter::Test::write_file($self->conf_path, $conf);
    return $conf;
}

# nginx -t: returns (exit code, output).
sub test_conf {
    my ($self) = @_;
    local $ENV{LD_PRELOAD} = $ENV{CR_NGINX_PRELOAD} if $ENV{CR_NGINX_PRELOAD};
    local $ENV{ASAN_OPTIONS} = $ENV{ASAN_OPTIONS} // 'detect_leaks=0';
    my ($rc, $out, $err) = CodeRouter::Test::run_cmd(
        [CodeRouter::Test::nginx_cmd($self->{prefix}, '-t', '-q',
         '-p', $self->{prefix}, '-c', $self->conf_path,
         '-e', "$self->{prefix}/logs/error.log")]);
    return ($rc, $out . $err . $self->error_log);
}

sub start {
    my ($self) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{prefix}/logs/stdout.log";
        open STDERR, '>>', "$self->{prefix}/logs/stderr.log";
        if ($ENV{CR_NGINX_PRELOAD}) {
            $ENV{LD_PRELOAD} = $ENV{CR_NGINX_PRELOAD};
            # nginx's master keeps its cycle until exit: not a leak.
            $ENV{ASAN_OPTIONS} //= 'detect_leaks=0:abort_on_error=0';
            $ENV{UBSAN_OPTIONS} //= 'print_stacktrace=1';
        }
        exec CodeRouter::Test::nginx_cmd($self->{prefix}, '-p', $self->{prefix},
             '-c', $self->conf_path, '-e', "$self->{prefix}/logs/error.log",
             '-g', 'daemon off;');
        exit 127;
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;
    my $deadline = time + 10 * CodeRouter::Test::slow();
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            die "nginx exited at start:\n" . $self->error_log
                . CodeRouter::Test::read_file("$self->{prefix}/logs/stderr.log");
        }
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port}, Timeout => 1);
        if ($s) {
            close $s;
            return $self;
        }
        sleep 0.02;
    }
    $self->stop;
    die "nginx did not answer on port $self->{port}:\n" . $self->error_log;
}

sub pid { $_[0]{pid} }

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    $self->_stop($pid);
    # Any [alert], [crit] or [emerg], or a sanitizer report, fails the test.
    if (my @bad = $self->bad_log_lines) {
        Test::More::fail('nginx logged no alert and no sanitizer report');
        Test::More::diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    }
    $self->check_valgrind if CodeRouter::Test::under_valgrind();
}

# SIGKILL to the master and its workers, as a power cut would: nothing is
# flushed on the way out.  start() may follow.
sub kill_all {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    my @workers = split ' ', `pgrep -P $pid`;
    kill 'KILL', $pid;
    waitpid($pid, 0);
    kill 'KILL', @workers;
    Time::HiRes::sleep(0.05) while kill 0, @workers;
}

# Lines of the error log that are expected (e.g. the master's alert for a
# worker a test killed): bad_log_lines leaves them out.
sub allow_log {
    my ($self, @re) = @_;
    push @{ $self->{allowed} }, @re;
    return $self;
}

# Valgrind's reports, one hash per report: pid, kind (its first line),
# text, ours (a frame of this module or its C cores).
sub valgrind_reports {
    my ($self) = @_;
    my @reports;
    for my $log (sort glob("$self->{prefix}/logs/valgrind.*.log")) {
        my ($pid) = $log =~ /valgrind\.(\d+)\.log$/;
        my $text = CodeRouter::Test::read_file($log);
        # Reports are separated by an empty "==PID== " line.
        for my $block (split /^==\d+== ?\n/m, $text) {
            my @lines = map { s/^==\d+== ?//r } split /\n/, $block;
            next unless @lines;
            next unless $lines[0] =~ /^(Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Jump to the invalid|Process terminating)|are definitely lost/;
            # Debian's nginx 1.22 loses PCRE2's compile context (72
            # bytes, allocated from the heap by whichever regex of a
            # configuration is compiled first: a location's, or ours
            # when our directive comes first): nginx's, not ours.
            my $nginx_own = grep { /pcre2_compile_context_create/ } @lines;
            push @reports, {
                pid => $pid, kind => $lines[0], text => join("\n", @lines),
                ours => !$nginx_own
                        && (grep { /[:\s](ngx_http_code_router\w*|cr_\w+) \(/ } @lines) ? 1 : 0,
            };
        }
    }
    return @reports;
}

# Fails the test on a report with a frame of ours; reports of nginx or the
# libraries alone are only shown (they are not this module's to fix).
sub check_valgrind {
    my ($self) = @_;
    my @logs = glob("$self->{prefix}/logs/valgrind.*.log");
    my @r = $self->valgrind_reports;
    my @ours = grep { $_->{ours} } @r;
    my %theirs;
    for (grep { !$_->{ours} } @r) {
        my $kind = $_->{kind} =~ /definitely lost/ ? 'definite leak' : $_->{kind};
        my ($where) = $_->{text} =~ /\n\s+by 0x\w+: (?!ngx_alloc|ngx_memalign|posix_memalign|ngx_palloc|ngx_pnalloc|ngx_pcalloc|\?\?\?)(\w+)/;
        $theirs{"$kind in " . ($where // '?')}++;
    }
    Test::More::diag(sprintf 'valgrind: %d process logs, %d reports, %d with a frame of ours%s',
                     scalar @logs, scalar @r, scalar @ours,
                     %theirs ? '; not ours: ' . join(', ', map { "$theirs{$_} x $_" } sort keys %theirs) : '');
    Test::More::ok(!@ours, 'valgrind: no invalid access, uninitialised value or definite leak in our code')
        or Test::More::diag(join "\n\n", map { "pid $_->{pid}:\n$_->{text}" } @ours[0 .. ($#ours < 4 ? $#ours : 4)]);
    # Keep the logs when asked (the prefix is removed at exit).
    if (my $keep = $ENV{CR_VALGRIND_KEEP}) {
        system('mkdir', '-p', $keep);
        system('cp', @logs, $keep) if @logs;
    }
}

sub _stop {
    my ($self, $pid) = @_;
    kill 'TERM', $pid;
    # Under valgrind every process also checks for leaks at exit.
    my $deadline = time + 10 * CodeRouter::Test::slow();
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# Graceful reload: nginx -s reload equivalent, then wait for new workers.
sub reload {
    my ($self) = @_;
    $self->write_conf;
    kill 'HUP', $self->{pid};
    sleep 0.3 * CodeRouter::Test::slow();
}

# Only the process that started nginx stops it (not a forked client).
sub DESTROY { $_[0]->stop if ($_[0]{owner} // 0) == $$ }

sub url { "http://127.0.0.1:$_[0]{port}$_[1]" }

# GET (or another method), no redirects followed.  Returns HTTP::Tiny's
# response hash (status, reason, headers, content).
sub request {
    my ($self, $method, $path, $headers) = @_;
    return $self->_request_raw($method, $path, $headers)
        if $headers && grep { lc $_ eq 'host' } keys %$headers;
    my $http = HTTP::Tiny->new(max_redirect => 0,
                               timeout => 10 * CodeRouter::Test::slow(),
                               agent => 'code-router-test');
    return $http->request($method, $self->url($path),
                          { headers => $headers // {} });
}

sub get { my $self = shift; return $self->request('GET', @_) }

# HTTP::Tiny will not send a Host header of our choosing (virtual
# servers): the same request over a socket, parsed into the same shape.
sub _request_raw {
    my ($self, $method, $path, $headers) = @_;
    my $text = "$method $path HTTP/1.0\r\n"
             . join('', map { "$_: $headers->{$_}\r\n" } sort keys %$headers)
             . "\r\n";
    my $resp = $self->raw($text);
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status, @lines) = split /\r\n/, $head // '';
    my %h;
    for (@lines) {
        $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    return { status => ($status // '') =~ /^HTTP\/\d\.\d (\d+)/ ? $1 : 599,
             headers => \%h, content => $body // '' };
}

# A raw HTTP request: returns the whole response as a string.
sub raw {
    my ($self, $text) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port},
                                  Timeout => 10 * CodeRouter::Test::slow())
        or die "connect: $!";
    print $s $text;
    local $/;
    my $resp = <$s>;
    close $s;
    return $resp // '';
}

# Client processes that request @paths in a loop (no redirects followed)
# for $seconds, writing "STATUS LOCATION" per response.  keep_alive => 1
# (the default) reuses connections and, like a browser (RFC 9112 9.3.1),
# retries a GET once when a reused connection was closed under it (a
# graceful reload closes idle keep-alive connections); such lines end in
# " retried".  stop_file => FILE: they stop a second after FILE appears.
# Loopback only; bounded in time.
sub hammer {
    my ($self, %o) = @_;
    my $n = $o{clients} // 2;
    my $ka = $o{keep_alive} // 1;
    my @pids;
    for my $c (1 .. $n) {
        my $file = "$self->{prefix}/hammer.$c.$$." . time;
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $http = HTTP::Tiny->new(max_redirect => 0,
                                       timeout => 5 * CodeRouter::Test::slow(),
                                       keep_alive => $ka);
            open my $fh, '>', $file or POSIX::_exit(1);
            my $end = time + $o{seconds};
            my $i = 0;
            while (time < $end) {
                # stop_file: the test's work is done; one more second.
                if ($o{stop_file} && $end - time > 1 && -e $o{stop_file}) {
                    $end = time + 1;
                }
                my $path = $o{paths}[$i++ % @{ $o{paths} }];
                my $url = $self->url($path);
                my $opt = { headers => $o{headers} // {} };
                my $r = $http->request('GET', $url, $opt);
                my $retried = '';
                if ($ka && $r->{status} == 599
                    && $r->{content} =~ /reset by peer|closed|Could not read/)
                {
                    $r = $http->request('GET', $url, $opt);
                    $retried = ' retried';
                }
                my $loc = $r->{headers}{location} // '-';
                my $extra = $r->{status} == 599 ? " $r->{content}" : '';
                $extra =~ s/\s+/ /g;
                print $fh "$r->{status} $loc$extra$retried\n";
            }
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, [$pid, $file];
    }
    return \@pids;
}

# Waits for the clients; returns every response line.
sub hammer_results {
    my ($self, $h) = @_;
    my @lines;
    for my $p (@$h) {
        waitpid $p->[0], 0;
        push @lines, split /\n/, CodeRouter::Test::read_file($p->[1]);
    }
    return \@lines;
}

# Lines of the error log at [alert], [crit] or [emerg], or sanitizer
# reports; but not those allow_log said to expect.
sub bad_log_lines {
    my ($self) = @_;
    my $log = $self->error_log
            . CodeRouter::Test::read_file("$self->{prefix}/logs/stderr.log");
    my @allowed = @{ $self->{allowed} // [] };
    return grep {
        my $l = $_;
        /\[(alert|crit|emerg)\]|ERROR: AddressSanitizer|runtime error:/
            && !grep { $l =~ $_ } @allowed
    } split /\n/, $log;
}

1;
