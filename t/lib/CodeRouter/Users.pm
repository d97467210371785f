package CodeRouter::Users;

# The loader and nginx's workers as two users, as docs/loading.md tells
# ops to run them: the loader (and code-router publish) as daemon, the
# workers as nobody:nogroup, store directories 2755 owned by the loader
# with the workers' group.  Root only: tests call need_users() first.

use strict;
use warnings;

use Exporter qw(import);
use Test::More ();
use CodeRouter::Test qw(run_cmd);

our @EXPORT_OK = qw(need_users as_user as_loader store_dir
                    $LOADER $WORKER $WGROUP);

our ($LOADER, $WORKER, $WGROUP) = ('daemon', 'nobody', 'nogroup');

# Skips the whole test unless it can switch users.
sub need_users {
    Test::More::plan(skip_all => 'needs root (runs the loader and the '
                                 . 'workers as other users)') if $> != 0;
    for my $u ($LOADER, $WORKER) {
        Test::More::plan(skip_all => "no user $u") unless defined getpwnam($u);
    }
    Test::More::plan(skip_all => "no group $WGROUP")
        unless defined getgrnam($WGROUP);
}

# A command as another user, with umask 022 (the lock file's mode must not
# depend on it); returns run_cmd's (exit code, stdout, stderr).
sub as_user {
    my ($user, $group, @cmd) = @_;
    return run_cmd(['setpriv', "--reuid=$user", "--regid=$group",
                    '--init-groups', 'sh', '-c', 'umask 022; exec "$@"', 'sh',
                    @cmd]);
}

sub as_loader { return as_user($LOADER, $LOADER, @_) }

# A store directory: owned by the loader, the workers' group, 2755.
sub store_dir {
    my ($path) = @_;
    mkdir $path or die "mkdir $path: $!";
    chown scalar getpwnam($LOADER), scalar getgrnam($WGROUP), $path
        or die "chown $path: $!";
    chmod 02755, $path or die "chmod $path: $!";
    return $path;
}

1;
