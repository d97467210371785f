#!/usr/bin/perl
# The Debian packages, on this machine: `make deb` builds them (lintian
# finds no error), apt-get installs both, Debian's own nginx loads the
# module through /etc/nginx/modules-enabled with the packaged example
# configuration and pages and answers scans, and a purge leaves nothing of
# them behind.  The machine ends as it was: same packages, same
# modules-enabled, Debian's nginx installed; an END block purges even when
# a check dies half-way.
#
# Root only (it installs packages).  Skipped when a code-router package is
# installed already: the purge would remove it.  CR_DEB_PREBUILT=1 uses
# the packages in build/deb/ instead of running make deb (a few minutes).
# Debian's nginx service, if running, is reloaded by dpkg's nginx-reload
# trigger at install and purge, as for any libnginx-mod package; the
# nginx of this test is its own (a temporary prefix, a free port).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Basename qw(basename);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(root run_cmd tmpdir free_port read_file write_file);

my $MOD = 'libnginx-mod-http-code-router';
my $CLI = 'code-router';
my @PKGS = ($MOD, $CLI);
my $LINK = '/etc/nginx/modules-enabled/50-mod-http-code-router.conf';
my $AVAIL = '/usr/share/nginx/modules-available/mod-http-code-router.conf';
my @APT = ('apt-get', '-o', 'DPkg::Lock::Timeout=600', '-y', '-q');

# dpkg's status of a package: '' when dpkg knows nothing of it.
sub status {
    my ($rc, $out) = run_cmd(['dpkg-query', '-W', '-f', '${Status}', $_[0]]);
    return $rc == 0 && $out !~ /not-installed/ ? $out : '';
}

plan skip_all => 'installs Debian packages: run as root' if $> != 0;
plan skip_all => 'CR_VALGRIND: the packages are tested in the plain run'
    if $ENV{CR_VALGRIND};
# The packages are built against Debian's nginx and run by it: another
# nginx (make test NGINX=1.26) would refuse their module by its version.
plan skip_all => "CR_NGINX: the packages are for Debian's own nginx, tested "
               . 'in the default run'
    if ($ENV{CR_NGINX} // '/usr/sbin/nginx') ne '/usr/sbin/nginx';
plan skip_all => 'needs dpkg-query and apt-get'
    unless -x '/usr/bin/dpkg-query' && -x '/usr/bin/apt-get';
plan skip_all => "Debian's nginx is not installed"
    unless status('nginx') eq 'install ok installed';
for my $p (@PKGS) {
    plan skip_all => "$p is on this machine already (" . status($p)
                     . '): the test would purge it'
        if status($p);
}

$ENV{DEBIAN_FRONTEND} = 'noninteractive';
my $root = root();

# --- make deb -------------------------------------------------------------

unless ($ENV{CR_DEB_PREBUILT}) {
    my $t0 = time;
    my ($rc, $out, $err) = run_cmd(['make', '-C', $root, 'deb']);
    is($rc, 0, 'make deb builds the packages')
        or BAIL_OUT("make deb failed:\n$out$err");
    diag(sprintf 'make deb: %.0f s', time - $t0);
    like($out, qr/^make deb: lintian: no errors$/m,
         '... and lintian reports no error');
}

my ($rc, $version) = run_cmd(['dpkg-parsechangelog', '-l',
                              "$root/debian/changelog", '-S', 'Version']);
chomp $version;
my (undef, $arch) = run_cmd(['dpkg', '--print-architecture']);
chomp $arch;
my %deb = map { $_ => "$root/build/deb/${_}_${version}_$arch.deb" } @PKGS;
is_deeply([sort map { basename $_ } glob("$root/build/deb/*.deb")],
          [sort map { basename $_ } values %deb],
          "build/deb/ holds the two packages of version $version");

my ($abi) = read_file('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
            =~ /^nginx:abi=(\S+)$/m;
my (undef, $depends) = run_cmd(['dpkg-deb', '-f', $deb{$MOD}, 'Depends']);
like($depends, qr/(^|, )\Q$abi\E(,|$)/m,
     "$MOD depends on $abi, the nginx ABI it was built against");
my (undef, $provides) = run_cmd(['dpkg-query', '-W', '-f', '${Provides}',
                                 'nginx']);
like($provides, qr/\Q$abi\E/, '... which the installed nginx provides');

# What is on the machine before: every package and its state, the
# modules-enabled links, and which of the packages' paths exist already
# (directories such as /usr/bin stay after the purge).
sub machine {
    my (undef, $pkgs) = run_cmd(['dpkg-query', '-W', '-f',
                                 '${Package}:${Architecture} ${Version} ${Status}\n']);
    opendir my $dh, '/etc/nginx/modules-enabled' or die $!;
    my $links = join ' ', sort map {
        "$_->" . (readlink("/etc/nginx/modules-enabled/$_") // '')
    } grep { !/^\.\.?$/ } readdir $dh;
    return { packages => $pkgs, 'modules-enabled' => $links };
}
my $before = machine();
my %existed;
for my $p (@PKGS) {
    my (undef, $names) = run_cmd(['sh', '-c',
                                  "dpkg-deb --fsys-tarfile '$deb{$p}' | tar -t"]);
    for (split /\n/, $names) {
        s{^\./}{/};
        s{/$}{} unless $_ eq '/';
        $existed{$_} = -e $_ || -l $_ ? 1 : 0;
    }
}

# --- install --------------------------------------------------------------

my $installed = 0;
sub purge {
    my ($r, $o, $e) = run_cmd([@APT, 'purge', @PKGS]);
    $installed = 0 if $r == 0;
    return ($r, $o, $e);
}
END {
    my $keep = $?;
    if ($installed) {
        diag('purging the packages after a failed check');
        purge();
    }
    $? = $keep;
}

$installed = 1;
($rc, my $out, my $err) = run_cmd([@APT, 'install', '--no-install-recommends',
                                   map { $deb{$_} } @PKGS]);
is($rc, 0, 'apt-get install ./build/deb/*.deb') or diag "$out$err";
for my $p (@PKGS) {
    is(status($p), 'install ok installed', "$p is installed");
}

ok(-f '/usr/lib/nginx/modules/ngx_http_code_router_module.so',
   'the module is in /usr/lib/nginx/modules/');
is(read_file($AVAIL), "load_module modules/ngx_http_code_router_module.so;\n",
   "$AVAIL loads it");
is(readlink($LINK), $AVAIL, "dh_nginx's postinst enabled it: $LINK");
ok(-x '/usr/bin/code-router' && -x '/usr/bin/code-router-load',
   'code-router and code-router-load are in /usr/bin');
ok(-f "/usr/share/code-router/$_", "/usr/share/code-router/$_")
    for qw(nginx.conf api.conf html/fallback.html html/open.html
           html/verify.html examples/campaigns.csv examples/batches.csv examples/revoked.csv);
ok(-f "/usr/share/doc/code-router/$_", "/usr/share/doc/code-router/$_")
    for qw(README.md.gz loading.md.gz code-format.md.gz verify.md.gz copyright);

# code-router(1) has a section for every command the CLI lists, and
# every exit status it names.
(undef, my $help) = run_cmd(['/usr/bin/code-router', '--help']);
my ($cmds) = $help =~ /^commands: (.+)$/m;
my @cmds = split ' ', $cmds // '';
ok(@cmds >= 6, "code-router --help lists its commands (@cmds)");
(undef, my $man) = run_cmd(['sh', '-c',
                            'gzip -dc /usr/share/man/man1/code-router.1.gz']);
for my $c (@cmds) {
    like($man, qr/^\.SS \Q$c\E$/m, "code-router(1) describes $c");
}
my ($statuses) = $help =~ /^exit status: (.+)$/m;
my @st = ($statuses // '') =~ /(\d+) /g;
ok(@st >= 4, "code-router --help names its exit statuses (@st)");
like($man, qr/^\.SH "EXIT STATUS"\n(?:.*\n)*?\.B \Q$_\E\n/m,
     "code-router(1) explains exit status $_") for @st;
ok(-f '/usr/share/man/man1/code-router-load.1.gz', 'code-router-load(1)');

# --- the packaged tools, the packaged nginx.conf, Debian's nginx ----------

my $d = tmpdir();
mkdir "$d/$_" for qw(logs tmp scans);
chmod 0777, "$d/scans";
($rc, $out, $err) = run_cmd(['/usr/bin/code-router', 'keygen', '--out',
                             "$d/1.key"]);
is($rc, 0, 'the packaged code-router makes a key') or diag $err;

# The loader finds /usr/bin/code-router beside it, whatever PATH says.
my @csv = map { "/usr/share/code-router/examples/$_.csv" }
              qw(campaigns batches revoked);
($rc, $out, $err) = run_cmd(['env', '-i', 'PATH=/nonexistent',
                             '/usr/bin/code-router-load', '--db',
                             "$d/brand.mdb", @csv]);
is($rc, 0, 'the packaged loader loads the packaged examples, PATH empty')
    or diag "$out$err";
like($out, qr/committed generation 1/, '... in one commit');
chmod 0666, "$d/brand.mdb-lock";
chmod 0644, "$d/brand.mdb";

sub mint {
    my (undef, $c) = run_cmd(['/usr/bin/code-router', 'mint', '--key',
                              "$d/1.key", '--kid', 1, '--from', $_[0],
                              '--count', 1]);
    chomp $c;
    return $c;
}
my $verify = mint(2000002);          # roll-2026-B: verify-page, h5
my $revoked = mint(1000042);         # revoked.csv
my $forged = substr($verify, 0, 17)
           . (substr($verify, 17) eq 'A' ? 'B' : 'A');

# The packaged example, its paths pointed into the temporary directory;
# the module comes from its include of /etc/nginx/modules-enabled/*.conf.
my $conf = read_file('/usr/share/code-router/nginx.conf');
like($conf, qr{^include /etc/nginx/modules-enabled/\*\.conf;$}m,
     'the packaged nginx.conf loads the modules of modules-enabled');
unlike($conf, qr/^\s*load_module/m, '... and no module by path');
my %sub = (
    'worker_processes auto;'                => 'worker_processes 1;',
    'include mime.types;'                   => 'include /etc/nginx/mime.types;',
    '/var/lib/code-router/brand.mdb'        => "$d/brand.mdb",
    '/var/lib/code-router/scans/scans.mdb'  => "$d/scans/scans.mdb",
    '/etc/nginx/code-router/1.key'          => "$d/1.key",
    '/var/log/nginx/scan.log'               => "$d/scan.log",
    '/etc/nginx/code-router/api.conf'       => "$d/api.conf",
    'listen 443 ssl http2;'                 => 'listen 127.0.0.1:%%PORT%%;',
);
for my $from (sort keys %sub) {
    ok($conf =~ s/\Q$from\E/$sub{$from}/g, "the example has $from");
}
# The scan server without its TLS (t/81-tls.t tests TLS with this file);
# the port-80 server only redirects to it.
ok($conf =~ s{^    server \{\n        listen 80;\n.*?^    \}\n}{}ms,
   'the example has a port-80 server (left out here)');
$conf =~ s{^\s*(?:ssl_\w+|resolver\w*)\s[^;]*;\n}{}mg;
my $temp = join '', map { "    ${_}_temp_path %%PREFIX%%/tmp/$_;\n" }
                   qw(client_body proxy fastcgi uwsgi scgi);
$conf =~ s/^http \{\n/http {\n$temp/m or die 'no http block';
my $api = read_file('/usr/share/code-router/api.conf');
my $api_port = free_port();
$api =~ s{listen 127\.0\.0\.1:8081;}{listen 127.0.0.1:$api_port;} or die;
$api =~ s{/var/log/nginx/code-router-api\.log}{$d/api.log} or die;
write_file("$d/api.conf", $api);

my $t = CodeRouter::Test::DebNginx->new(conf => $conf);
$t->start;
my $r = $t->get("/$verify");
is($r->{status}, 302, 'Debian nginx with the packaged module: a genuine verify code is 302');
like($r->{headers}{location},
     qr{^https://c\.brand\.cn/verify\?code=\Q$verify\E&batch=roll-2026-B&scene=verify},
     '... to the campaign of the packaged example bindings');
$r = $t->get("/$forged");
is($r->{status}, 404, 'a forged code: 404');
like($r->{content}, qr/此码未能通过验证/, '... with the packaged fallback page (SSI)');
$r = $t->get("/$revoked");
is($r->{status}, 410, 'a revoked code: 410');
like($r->{content}, qr/此码已作废/, '... with the packaged fallback page');
$r = $t->get('/status');
like($r->{content}, qr/^code_router_requests_total\{status="ok"\} 1$/m,
     'the metrics count the one ok scan');
$t->stop;
like(read_file("$d/scan.log"), qr/"status":"ok".*"code":"\Q$verify\E"/,
     'the scan log has the scan');

# --- purge ----------------------------------------------------------------

my @paths;
for my $p (@PKGS) {
    (undef, my $list) = run_cmd(['dpkg', '-L', $p]);
    push @paths, grep { m{^/} && $_ ne '/.' } split /\n/, $list;
}
ok(@paths > 20, sprintf 'dpkg -L lists %d paths of the two packages',
                        scalar @paths);
($rc, $out, $err) = purge();
is($rc, 0, 'apt-get purge both packages') or diag "$out$err";
my @left = grep { !$existed{$_} && (-e $_ || -l $_) } @paths;
is_deeply(\@left, [], 'nothing of theirs is left') or diag "@left";
my @lost = grep { $existed{$_} && !(-e $_ || -l $_) } @paths;
is_deeply(\@lost, [], '... and nothing that was there before is gone');
ok(!-e $LINK && !-l $LINK && !-l "$LINK.removed",
   'the modules-enabled link is gone');
for my $p (@PKGS) {
    is(status($p), '', "dpkg knows nothing of $p");
}
is(status('nginx'), 'install ok installed', "Debian's nginx stays installed");
is_deeply(machine(), $before,
          'every package and modules-enabled are as before the test');

done_testing;


# The harness's nginx with a whole configuration of the test's own: no
# load_module of build/ (the module comes from modules-enabled).  Its
# prefix is temporary, so it gets the modules/ of Debian's prefix
# (/usr/share/nginx/modules), against which modules-enabled's
# "load_module modules/..." lines are resolved.
package CodeRouter::Test::DebNginx;
use parent -norequire, 'CodeRouter::Test::Nginx';

sub write_conf {
    my ($self) = @_;
    my $p = $self->{prefix};
    symlink '/usr/share/nginx/modules', "$p/modules"
        or die "symlink $p/modules: $!" unless -l "$p/modules";
    my $conf = "error_log $p/logs/error.log info;\npid $p/nginx.pid;\n"
             . $self->subst($self->{conf});
    CodeRouter::Test::write_file($self->conf_path, $conf);
    return $conf;
}
