#!/usr/bin/perl
# The Debian packages, on this machine: `make deb` builds them (lintian
# finds no error), apt-get installs both (the package makes its system
# user and directories), and a purge leaves nothing of them behind.  The
# machine ends as it was: same packages, same modules-enabled, Debian's
# nginx installed, no code-router user unless there was one; an END block
# purges even when a check dies half-way.  Then the packaged nginx.conf's
# header: in a Debian 12 chroot (scripts/chroot, cached under
# build/chroot/) with the packages installed, its steps are run as written
# and the site they give answers scans over IPv4 and IPv6, logs and says
# why in its error log (t/lib/deb-site; t/90 does the same for Debian 13
# with the drop-in form).
#
# Root only (it installs packages).  Skipped when a code-router package is
# installed already: the purge would remove it.  CR_DEB_PREBUILT=1 uses
# the packages in build/deb/ instead of running make deb (a few minutes).
# Debian's nginx service, if running, is reloaded by dpkg's nginx-reload
# trigger at install and purge, as for any libnginx-mod package; the
# header's steps touch only the chroot's nginx (its own network).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Basename qw(basename);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(root run_cmd read_file);
use CodeRouter::Deb qw(chroot_with site_check);

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

# The package makes a system user; Debian keeps it after a purge (files
# elsewhere may be its own): this test removes it if it made it.
my $had_user = getpwnam('code-router');
my $installed = 0;
sub purge {
    my ($r, $o, $e) = run_cmd([@APT, 'purge', @PKGS]);
    $installed = 0 if $r == 0;
    return ($r, $o, $e);
}
sub remove_user {
    return if $had_user || !getpwnam('code-router');
    # (deluser's note that cron is missing is no failure.)
    my ($rc, $out, $err) = run_cmd(['deluser', '--system', '--quiet',
                                    'code-router']);
    diag("deluser code-router: $out$err") if $rc;
    run_cmd(['delgroup', '--system', '--quiet', 'code-router'])
        if getgrnam('code-router');
}
END {
    my $keep = $?;
    if ($installed) {
        diag('purging the packages after a failed check');
        purge();
    }
    remove_user();
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
    for qw(nginx.conf api.conf html/fallback.html html/fallback-page.html html/open.html
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

# --- what postinst made -------------------------------------------------

my @pw = getpwnam('code-router');
ok(@pw, 'postinst made the code-router user');
like($pw[8] // '', qr{^/usr/sbin/nologin$|^/bin/false$}, '... a system user without a shell');
ok(getgrnam('code-router'), '... and its group');
sub owner_mode {
    my @st = stat $_[0] or return 'missing';
    return sprintf '%s:%s %04o', scalar getpwuid($st[4]),
                   scalar getgrgid($st[5]), $st[2] & 07777;
}
is(owner_mode('/var/lib/code-router'), 'code-router:www-data 2755',
   '/var/lib/code-router: the loader writes, the workers read');
is(owner_mode('/var/lib/code-router/scans'), 'www-data:www-data 0750',
   '/var/lib/code-router/scans: the workers write the counts');
is(owner_mode('/var/log/code-router'), 'root:adm 0750',
   '/var/log/code-router: the scan and PIN logs');
ok(-f '/etc/logrotate.d/code-router', '/etc/logrotate.d/code-router rotates them');
($rc, $out, $err) = run_cmd(['logrotate', '-d', '/etc/logrotate.d/code-router']);
is($rc, 0, '... and logrotate -d accepts it') or diag "$out$err";
ok(-f "/usr/share/code-router/debian/$_", "/usr/share/code-router/debian/$_")
    for qw(code-router.conf code-router-site threads.conf);
ok(-f "/usr/share/code-router/rsyslog/$_", "/usr/share/code-router/rsyslog/$_")
    for qw(code-router-ship.conf code-router-collector.conf);

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
remove_user();
is(scalar getpwnam('code-router'), $had_user,
   $had_user ? 'the code-router user, there before, stays'
             : 'the code-router user is gone again');

# --- the packaged nginx.conf's steps, in a Debian 12 chroot ---------------

# The sanitized suite's run (packages of the plain build, reused) has
# nothing new to learn from the chroot.
if ($ENV{CR_NGINX_PRELOAD}) {
    note('CR_NGINX_PRELOAD: the chroot part ran in the plain suite');
    done_testing();
    exit 0;
}
my $t0 = time;
my $site = eval { chroot_with('bookworm', 'site', 'bookworm-site',
                              map { $deb{$_} } @PKGS) };
ok($site, 'both packages install into a Debian 12 chroot with its nginx')
    or diag($@);
if ($site) {
    site_check($site, 'standalone', $version);
    system('rm', '-rf', $site);
}
diag(sprintf 'the chroot and its site: %.0f s', time - $t0);

done_testing;


