#!/usr/bin/perl
# The Debian 13 (trixie) packages: `make deb DIST=trixie` builds both in a
# trixie chroot against trixie's nginx-dev (scripts/chroot: debootstrap
# from Debian's archive, cached under build/chroot/) into
# build/deb/trixie/, lintian clean; the module depends on the nginx ABI
# of trixie's nginx (1.26).  Then in a fresh chroot from the same tarball
# the packages are installed into trixie's own nginx and the steps of the
# drop-in form's header (/usr/share/code-router/debian/code-router.conf:
# Debian's nginx.conf kept, conf.d and sites-enabled used) are run as
# written; the site serves scans over IPv4 and IPv6 (t/lib/deb-site).
#
# Root only; slow on a cold cache (a debootstrap), so it runs when asked:
# CR_DEB_DIST=trixie (.ci/run does).  CR_DEB_PREBUILT=1 uses the packages
# in build/deb/trixie/ instead of building them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Basename qw(basename);
use Time::HiRes qw(time);
use CodeRouter::Test qw(root run_cmd read_file);
use CodeRouter::Deb qw(chroot_with site_check);

plan skip_all => 'set CR_DEB_DIST=trixie to build and test the Debian 13 '
               . 'packages (a chroot: minutes on a cold cache)'
    unless ($ENV{CR_DEB_DIST} // '') eq 'trixie';
plan skip_all => 'needs root (debootstrap, chroot)' if $> != 0;
plan skip_all => 'needs debootstrap (make deps)' unless -x '/usr/sbin/debootstrap';

my $root = root();
my $out_dir = "$root/build/deb/trixie";

unless ($ENV{CR_DEB_PREBUILT}) {
    my $t0 = time;
    my ($rc, $out, $err) = run_cmd(['make', '-C', $root, 'deb', 'DIST=trixie']);
    is($rc, 0, 'make deb DIST=trixie builds the packages')
        or BAIL_OUT("make deb DIST=trixie failed:\n$out$err");
    diag(sprintf 'make deb DIST=trixie: %.0f s', time - $t0);
    diag($_) for grep { /made in|built for/ } split /\n/, "$out$err";
    like($out, qr/^make deb: lintian: no errors$/m, '... and lintian reports no error');
}

my (undef, $version) = run_cmd(['dpkg-parsechangelog', '-l',
                                "$root/debian/changelog", '-S', 'Version']);
chomp $version;
my (undef, $arch) = run_cmd(['dpkg', '--print-architecture']);
chomp $arch;
my @pkgs = qw(libnginx-mod-http-code-router code-router);
my %deb = map { $_ => "$out_dir/${_}_$version+deb13_$arch.deb" } @pkgs;
is_deeply([sort map { basename $_ } glob("$out_dir/*.deb")],
          [sort map { basename $_ } values %deb],
          "build/deb/trixie/ holds the two packages of version $version+deb13");

my (undef, $depends) = run_cmd(['dpkg-deb', '-f', $deb{'libnginx-mod-http-code-router'},
                                'Depends']);
chomp $depends;
like($depends, qr/(^|, )nginx-abi-1\.26[\w.+~-]*(,|$)/m,
     "the module depends on trixie's nginx ABI ($depends)");

my $t0 = time;
my $site = eval { chroot_with('trixie', 'build', 'trixie-site', values %deb) };
ok($site, 'both packages install into a trixie chroot with its nginx')
    or BAIL_OUT($@);
my (undef, $nginx_v) = run_cmd(['chroot', $site, 'dpkg-query', '-W', '-f',
                                '${Version}', 'nginx']);
like($nginx_v, qr/^1\.26\./, "... trixie's nginx $nginx_v");
like(read_file("$site/etc/nginx/nginx.conf"), qr{include /etc/nginx/sites-enabled/\*;},
     "... whose own nginx.conf (sites-enabled) stays");
site_check($site, 'drop-in', $version);
diag(sprintf 'install and site check: %.0f s', time - $t0);
system('rm', '-rf', $site);

done_testing();
