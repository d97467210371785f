#!/usr/bin/perl
# Store directories nginx's workers can read but not write, and
# `code-router publish`: the loader and publish run as
# one user (daemon), nginx's workers as another (nobody:nogroup), in
# directories mode 2755 owned by the first with the group of the second.
# The workers serve and follow re-bindings; they cannot create or rename a
# file there.  Then publish's rules: versions, pruning, refusals.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep time);
use CodeRouter::Users qw(need_users as_user as_loader store_dir $LOADER
                         $WORKER $WGROUP);
use CodeRouter::Test qw(cli root run_cmd tmpdir make_key write_file mint);

need_users();

my $d = tmpdir();
my $key = make_key("$d/1.key");

# What nobody:nogroup gets trying to create a file in $dir and to rename
# one over $target: the two errno strings.
sub worker_tries {
    my ($dir, $target) = @_;
    my (undef, $out) = as_user($WORKER, $WGROUP, 'perl', '-e', <<'EOF', $dir, $target);
my ($dir, $target) = @ARGV;
my $c = open(my $fh, '>', "$dir/evil.mdb") ? 'created' : "$!";
my $r = rename($target, "$dir/moved") ? 'renamed' : "$!";
print "$c|$r\n";
EOF
    chomp $out;
    return $out;
}

sub csv {
    my ($name, $campaign_b) = @_;
    my $f = write_file("$d/$name", <<"EOF", 0644);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
ca,A,h5,https://a.example/,,,,,,,,
cb,B,h5,https://b.example/,,,,,,,,
EOF
    write_file("$d/b-$name", <<"EOF", 0644);
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b1,1,1,100,verify,$campaign_b,,,,,
EOF
    return ($f, "$d/b-$name");
}

sub server_conf {
    my ($db) = @_;
    return <<"EOF";
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /status { code_router_status; }
        location / { code_router \$uri; }
    }
EOF
}

my $code = mint($key, 1, 7);

# Waits (up to 3 s: nginx looks at the store once a second) for the code
# to be sent to $want.
sub served {
    my ($t, $want) = @_;
    my $end = time + 3;
    my $r;
    while (1) {
        $r = $t->get("/$code");
        my $loc = $r->{headers}{location} // '';
        return "$r->{status} $loc" if $loc =~ /^\Q$want\E/ || time > $end;
        sleep 0.1;
    }
}

sub mode { return sprintf '%04o', (stat $_[0])[2] & 07777 }
sub group_of { return scalar getgrgid((stat $_[0])[5]) }

# --- Item 12: the loader writes in place in a 2755 directory. ---

my $dir = store_dir("$d/store");
my $db = "$dir/brand.mdb";
my ($rc, $out, $err) = as_loader(cli(), 'load', '--db', $db, csv('1.csv', 'ca'));
is($rc, 0, "the loader, as $LOADER with umask 022, creates the store in a "
           . '2755 directory') or diag $err;
is(mode($dir), '2755', 'the directory stays 2755');
is(mode("$db-lock"), '0664', 'the lock file is created 0664 despite the umask');
is(group_of("$db-lock"), $WGROUP, "... in the workers' group (setgid directory)");

my $t = CodeRouter::Test::Nginx->new(main => "user $WORKER $WGROUP;",
                                     http => server_conf($db));
$t->start;
is(served($t, 'https://a.example/'), '302 https://a.example/?code=' . $code
   . '&batch=b1&scene=verify&campaign=ca',
   "workers running as $WORKER:$WGROUP read the store");

($rc, undef, $err) = as_loader(cli(), 'load', '--db', $db, csv('2.csv', 'cb'));
is($rc, 0, 'the loader re-binds the batch') or diag $err;
like(served($t, 'https://b.example/'), qr{^302 https://b\.example/},
     "... and the workers follow the re-binding") or diag $t->error_log;

is(worker_tries($dir, $db), 'Permission denied|Permission denied',
   "$WORKER can neither create a file in the directory nor rename the store "
   . '(EACCES)');
ok(-f $db && !-e "$dir/evil.mdb" && !-e "$dir/moved", '... nothing changed');

# The lock file made 0644 (as LMDB left it under umask 022 before): the
# loader, which owns it, puts it back; it tells whoever cannot.
chmod 0644, "$db-lock";
($rc, undef, $err) = as_loader(cli(), 'load', '--db', $db, csv('3.csv', 'ca'));
is($rc, 0, 'a load with a 0644 lock file works') or diag $err;
is(mode("$db-lock"), '0664', '... and makes it 0664 again');
like(served($t, 'https://a.example/'), qr{^302 https://a\.example/},
     '... the workers follow');
chown 0, 0, "$db-lock";
chmod 0646, "$db-lock";
($rc, undef, $err) = as_loader(cli(), 'load', '--db', $db, csv('4.csv', 'cb'));
isnt($rc, 0, 'a lock file of another owner its group cannot write: the '
             . 'loader refuses');
like($err, qr/lock file "\Q$db\E-lock" is mode 0646 and this user cannot make it 0664/,
     '... saying why') or diag $err;
chown scalar getpwnam($LOADER), scalar getgrnam($WGROUP), "$db-lock";
($rc, undef, $err) = as_loader(cli(), 'load', '--db', $db, csv('4.csv', 'cb'));
is($rc, 0, '... and loads once it is the loader\'s again') or diag $err;
is(mode("$db-lock"), '0664', '... 0664');
$t->stop;

# --- Publish: versions in a 2755 edge directory. ---

my $edir = store_dir("$d/edge");
my $edge = "$edir/brand.mdb";

sub publish { return as_loader(cli(), 'publish', @_) }

($rc, $out, $err) = publish('--db', $db, '--to', $edge);
is($rc, 0, 'the first publish (no EDGE_PATH yet) works') or diag $err;
like($out, qr{^published\s+\Q$edge\E -> brand\.mdb\.v1\nschema\s+2\ngeneration\s+4\n}m,
     '... says what it published, as stat does');
is(readlink($edge), 'brand.mdb.v1', '... EDGE_PATH is a relative symlink to v1');
is(mode("$edge.v1-lock"), '0664', "... the version's lock file is 0664");
is(mode("$edge.v1"), '0644', '... the version itself 0644');
is(group_of("$edge.v1-lock"), $WGROUP, "... in the workers' group");
my @junk = grep { !/brand\.mdb(\.v\d+(-lock)?)?$/ } glob("$edir/* $edir/.*[!.]");
is("@junk", '', '... and nothing else is left in the directory');

my ($orc, $mdump) = run_cmd([cli(), 'dump', '--db', $db]);
my (undef, $edump) = run_cmd([cli(), 'dump', '--db', $edge]);
is($edump, $mdump, 'the edge copy dumps the same as the master');
ok(-s "$edge.v1" <= -s $db, 'the copy is compacted (not bigger than the master)');

$t = CodeRouter::Test::Nginx->new(main => "user $WORKER $WGROUP;",
                                  http => server_conf($edge));
$t->start;
like(served($t, 'https://b.example/'), qr{^302 https://b\.example/},
     "workers as $WORKER read a published version they could not create");

($rc, undef, $err) = as_loader(cli(), 'load', '--db', $db, csv('5.csv', 'ca'));
is($rc, 0, 're-bind on the master') or diag $err;
like(served($t, 'https://b.example/'), qr{^302 https://b\.example/},
     '... the edge does not see it before a publish');
($rc, $out, $err) = publish('--db', $db, '--to', $edge);
like($out, qr{-> brand\.mdb\.v2\n.*^generation\s+5$}ms, 'publish v2, generation 5')
    or diag $err;
like(served($t, 'https://a.example/'), qr{^302 https://a\.example/},
     '... the workers follow the flipped symlink');
is(worker_tries($edir, $edge), 'Permission denied|Permission denied',
   "$WORKER can neither create a file in the edge directory nor rename the "
   . 'symlink');

for my $n (3 .. 5) {
    ($rc, $out, $err) = publish('--db', $db, '--to', $edge);
    is($rc, 0, "publish v$n") or diag $err;
}
like($out, qr/^removed\s+1 old version$/m, 'the default --keep 3 removes one at v5');
is(join(' ', map { s{.*/}{}r } sort glob("$edir/brand.mdb*")),
   'brand.mdb brand.mdb.v3 brand.mdb.v3-lock brand.mdb.v4 brand.mdb.v4-lock '
   . 'brand.mdb.v5 brand.mdb.v5-lock', '... versions 3 to 5 and their lock files stay');
($rc, $out) = publish('--db', $db, '--to', $edge, '--keep', 2);
like($out, qr/-> brand\.mdb\.v6\n.*^removed\s+2 old versions$/ms, '--keep 2');
is(join(' ', map { s{.*/}{}r } sort glob("$edir/brand.mdb.v*[0-9]")),
   'brand.mdb.v5 brand.mdb.v6', '... keeps the newest two');
like(served($t, 'https://a.example/'), qr{^302 https://a\.example/},
     'nginx still serves');
$t->stop;

# A hand-made symlink to another file is flipped; the version it points
# at is never removed, whatever its number.
symlink 'brand.mdb.v5', "$edir/hand" or die;
rename "$edir/hand", $edge or die;
($rc, $out) = publish('--db', $db, '--to', $edge, '--keep', 2);
($rc, $out) = publish('--db', $db, '--to', $edge, '--keep', 2);
is(readlink($edge), 'brand.mdb.v8', 'later publishes flip to v8');
ok(!-e "$edge.v5" && !-e "$edge.v5-lock" && !-e "$edge.v6",
   '... and prune v5, v6 with their lock files');

# Refusals: each leaves EDGE_PATH as it was.
my $before = readlink($edge);
write_file("$d/plain.mdb", "not a store\n" x 100, 0644);
($rc, undef, $err) = run_cmd([cli(), 'publish', '--db', "$d/plain.mdb", '--to', $edge]);
is($rc, 3, 'a master that is not an LMDB file: exit 3');
like($err, qr/^code-router publish: store "\Q$d\E\/plain\.mdb": cannot open: MDB_INVALID/,
     '... saying so') or diag $err;
is(readlink($edge), $before, '... EDGE_PATH unchanged');
($rc, undef, $err) = publish('--db', "$d/none.mdb", '--to', $edge);
is($rc, 3, 'a missing master: exit 3');
like($err, qr/none\.mdb": No such file or directory/, '... saying so');
write_file("$edir/../plain-edge", '', 0644);
($rc, undef, $err) = run_cmd([cli(), 'publish', '--db', $db, '--to', "$d/plain-edge"]);
is($rc, 3, 'an EDGE_PATH that is a regular file: exit 3');
like($err, qr/"\Q$d\E\/plain-edge" exists and is not a symlink: publish points a symlink at versions beside it and never replaces a file/,
     '... saying why') or diag $err;
is(-s "$d/plain-edge", 0, '... and the file is untouched');
($rc, undef, $err) = run_cmd([cli(), 'publish', '--db', $db, '--to', "$d/nodir/x.mdb"]);
is($rc, 3, 'an EDGE_PATH in a missing directory: exit 3');
like($err, qr/cannot create a file in "\Q$d\E\/nodir": No such file/, '... saying so');
($rc, undef, $err) = as_user($WORKER, $WGROUP, cli(), 'publish', '--db', $db,
                             '--to', $edge);
is($rc, 3, "$WORKER cannot publish into the edge directory");
like($err, qr/cannot create a file in "\Q$edir\E": Permission denied/, '... EACCES');
is(readlink($edge), $before, '... EDGE_PATH unchanged');
for my $bad (['--keep', 1], ['--keep', 'x'], ['--keep', 1001], ['--keep', '-3']) {
    ($rc, undef, $err) = publish('--db', $db, '--to', $edge, @$bad);
    is($rc, 2, "--keep $bad->[1]: usage error");
}
like($err, qr/--keep must be 2 to 1000/, '... saying the range');
($rc, undef, $err) = publish('--db', $db);
is($rc, 2, 'no --to: usage error');
like($err, qr/--db MASTER and --to EDGE_PATH are required/, '... saying so');
($rc, undef, $err) = publish('--db', $db, '--to', "$edir/");
is($rc, 2, 'an EDGE_PATH that names a directory: usage error');
($rc, $out) = run_cmd([cli(), 'publish', '--help']);
like($out, qr/^usage: code-router publish --db MASTER --to EDGE_PATH \[--keep N\]/,
     'publish --help');
is(readlink($edge), $before, 'EDGE_PATH never changed by a refusal');

done_testing;
