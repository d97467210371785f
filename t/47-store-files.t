#!/usr/bin/perl
# The binding store's files.  The data file is the loader's alone (issue 21, item 7):
# 0644 whatever the loader's umask.  Under umask 002 (Debian's default for
# users with their own group) it was made 0664 in the workers' group of the
# documented 2755 directory, and a process of that group rewrote it.  The
# lock file stays 0664 (readers write it).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Users qw(need_users store_dir $LOADER $WORKER $WGROUP);
use CodeRouter::Test qw(cli run_cmd tmpdir make_key write_file mint);

need_users();

my $d = tmpdir();
my $key = make_key("$d/1.key");
chmod 0644, $key;
my $csv = write_file("$d/b.csv", <<'EOF2', 0644);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
ca,A,h5,https://a.example/,,,,,,,,
EOF2

sub mode { return sprintf '%04o', (stat $_[0])[2] & 07777 }

# The loader as $LOADER in the workers' group (so that group ownership
# is what a setgid directory gives), with the given umask.
sub load_with_umask {
    my ($umask, $db) = @_;
    return run_cmd(['setpriv', "--reuid=$LOADER", "--regid=$WGROUP",
                    '--init-groups', 'sh', '-c', "umask $umask; exec \"\$@\"",
                    'sh', cli(), 'load', '--db', $db, $csv]);
}

# What a process of the workers' group gets opening $path for writing.
sub group_write {
    my ($path) = @_;
    my (undef, $out) = run_cmd(['setpriv', "--reuid=$WORKER",
                                "--regid=$WGROUP", '--clear-groups', 'perl',
                                '-e', 'print open(my $f, "+<", $ARGV[0]) '
                                . '? "opened" : "$!"', $path]);
    return $out;
}

for my $umask (qw(002 000 077)) {
    my $dir = store_dir("$d/store-$umask");
    my $db = "$dir/brand.mdb";
    my ($rc, undef, $err) = load_with_umask($umask, $db);
    is($rc, 0, "umask $umask: the loader creates the store") or diag $err;
    is(mode($db), '0644', "umask $umask: the data file is 0644");
    is(mode("$db-lock"), '0664', "umask $umask: the lock file is 0664");
    is(group_write($db), 'Permission denied',
       "umask $umask: $WORKER:$WGROUP cannot open the data file for writing");
}

# A store left 0664 before the fix: the loader that owns it puts it right.
my $dir = store_dir("$d/store-old");
my $db = "$dir/brand.mdb";
my ($rc, undef, $err) = load_with_umask('022', $db);
is($rc, 0, 'a store made under umask 022') or diag $err;
chmod 0664, $db;
is(group_write($db), 'opened', '... made 0664: the group could write it');
($rc, undef, $err) = load_with_umask('002', $db);
is($rc, 0, 'the next load (umask 002)') or diag $err;
is(mode($db), '0644', '... makes the data file 0644 again');
is(group_write($db), 'Permission denied', '... the group cannot write it');

# One the loader cannot fix: it refuses, saying why.
chown 0, 0, $db;
chmod 0666, $db;
($rc, undef, $err) = load_with_umask('022', $db);
isnt($rc, 0, 'a data file of another owner, mode 0666: the loader refuses');
like($err, qr/data file is mode 0666 and this user cannot make it 0644/,
     '... saying why') or diag $err;

done_testing();
