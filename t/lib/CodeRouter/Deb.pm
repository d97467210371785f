package CodeRouter::Deb;
# The packages in a Debian chroot (scripts/chroot): t/80 (Debian 12) and
# t/90 (Debian 13) install them there and run the steps of a packaged
# configuration's header as written (t/lib/deb-site).
use strict;
use warnings;
use Exporter 'import';
use Test::More;
use CodeRouter::Test qw(root run_cmd);

our @EXPORT_OK = qw(header_steps chroot_with site_check);

# The commands of a header: the lines after "... test runs them as
# written):", each "#   COMMAND", up to the first line that is not one.
sub header_steps {
    my ($text) = @_;
    my ($block) = $text =~ /test runs them as written\):\n((?:#   .*\n)+)/
        or return ();
    return map { s/^#   //r } split /\n/, $block;
}

# A fresh chroot ROOT of DIST (KIND: build or site) with the .deb files
# given installed by dpkg (their dependencies are in the chroot already:
# no network).  Returns ROOT, or dies saying why.
sub chroot_with {
    my ($dist, $kind, $name, @debs) = @_;
    my $r = root();
    my ($rc, $tarball, $err) = run_cmd(["$r/scripts/chroot", 'base', $dist,
                                        $kind]);
    die "scripts/chroot base $dist $kind:\n$err" if $rc;
    chomp $tarball;
    my $root = "$r/build/chroot/$name";
    ($rc, undef, $err) = run_cmd(["$r/scripts/chroot", 'unpack',
                                  "$r/$tarball", $root]);
    die "scripts/chroot unpack: $err" if $rc;
    mkdir "$root/tmp/debs";
    system('cp', @debs, "$root/tmp/debs/") == 0 or die "cp @debs";
    my $out;
    ($rc, $out, $err) = run_cmd(['chroot', $root, 'env', '-i',
        'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'DEBIAN_FRONTEND=noninteractive',
        'sh', '-c', 'dpkg -i /tmp/debs/*.deb']);
    die "dpkg -i in the $dist chroot:\n$out$err" if $rc;
    return $root;
}

# t/lib/deb-site in ROOT's namespaces; its results become this test's.
sub site_check {
    my ($root, $form, $version) = @_;
    my $r = root();
    my ($rc, $out, $err) = run_cmd(["$r/scripts/chroot", 'ns', $root, $^X,
                                    "$r/t/lib/deb-site", $root, $form,
                                    $version]);
    my $n = 0;
    for (split /\n/, $out) {
        if (/^(not )?ok \d+ - (.*)$/) {
            ok(!$1, $2);
            $n++;
        } elsif (/^#\s?(.*)$/) {
            diag($1);
        }
    }
    ok($n > 0 && $rc == 0, "the $form site's checks ran and passed ($n)")
        or diag("$out$err");
}

1;
