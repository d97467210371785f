#!/usr/bin/perl
# The binding store's files.  The data file is the loader's alone:
# 0644 whatever the loader's umask.  Under umask 002
# (Debian's default for users with their own group) it was made 0664 in
# the workers' group of the documented 2755 directory, and a process of
# that group rewrote it.  The lock file stays 0664 (readers write it).
# And what publish ships is what the master holds (item 8): a content
# digest checked end to end and, with --digest, against what was shipped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Users qw(store_dir $LOADER $WORKER $WGROUP);
use CodeRouter::Test qw(root cli run_cmd tmpdir make_key write_file mint
                        load_store);

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

SKIP: {
skip 'needs root and the users daemon, nobody, nogroup', 1
    unless $> == 0 && defined getpwnam($LOADER) && defined getpwnam($WORKER)
           && defined getgrnam($WGROUP);

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
}

# ---- publish's content digest (issue 21, item 8) ------------------------
# A master with campaigns, batches, overrides and links; its compacted
# copies damaged as the issue's experiment damaged them (4 random bytes
# in one data page), shipped "by rsync" and published with --digest; and
# copies damaged while publish writes them (build/t/corrupt-write.so).
# Every copy whose records changed is refused, the edge unchanged; one
# published holds the master's records (its dump is the master's).
my $CORRUPT = root() . '/build/t/corrupt-write.so';
SKIP: {
skip "no $CORRUPT (make unit)", 1 unless -e $CORRUPT;

my $g = tmpdir();
my $master = "$g/master.mdb";
load_store($master,
    ['c.csv', "campaign,name,type,url\n"
              . join('', map { "c$_,Campaign $_,h5,https://a.example/c$_\n" } 1 .. 1500)],
    ['b.csv', "batch,kid,serial_from,serial_to,scene,campaign\n"
              . join('', map { "b$_,1," . $_ * 100 . ',' . ($_ * 100 + 99)
                               . ",verify,c" . (1 + $_ % 1500) . "\n" } 1 .. 1500)],
    ['o.csv', "kid,serial,state,campaign\n"
              . join('', map { '1,' . $_ * 7 . ",revoked,\n" } 1 .. 3000)],
    root() . '/conf/examples/links.csv');

sub digest_of {
    my ($out) = @_;
    return $out =~ /^digest +([0-9a-f]{64})$/m ? $1 : '';
}
sub dump_of {
    my ($db) = @_;
    my ($rc, $out) = run_cmd([cli(), 'dump', '--db', $db]);
    return $rc ? "rc $rc" : $out;
}

my ($rc, $out, $err) = run_cmd([cli(), 'stat', '--db', $master, '--digest']);
my $D = digest_of($out);
is($rc, 0, 'stat --digest') or diag $err;
like($D, qr/^[0-9a-f]{64}$/, "... prints the digest $D");
mkdir "$g/edge";
my $edge = "$g/edge/brand.mdb";
($rc, $out, $err) = run_cmd([cli(), 'publish', '--db', $master, '--to', $edge]);
is($rc, 0, 'publish') or diag $err;
is(digest_of($out), $D, '... prints the same digest: the compacted copy holds the same records');
# What would be rsynced: the version, copied aside (publish prunes).
my $v1 = "$g/shipped.mdb";
system('cp', "$g/edge/brand.mdb.v1", $v1) == 0 or die 'cp';
cmp_ok(-s $v1, '<', -s $master, '... in a smaller (compacted) file');
($rc, $out) = run_cmd([cli(), 'stat', '--db', $v1, '--digest']);
is(digest_of($out), $D, '... stat --digest of the version says so too');
my $want = dump_of($master);

($rc, undef, $err) = run_cmd([cli(), 'publish', '--db', $v1, '--to', $edge,
                              '--digest', 'abc']);
is($rc, 2, 'publish --digest abc: a usage error');
like($err, qr/--digest must be the 64 hex digits/, '... saying why');
($rc, undef, $err) = run_cmd([cli(), 'publish', '--db', $v1, '--to', $edge,
                              '--digest', $D]);
is($rc, 0, 'publish --digest of the right digest: published') or diag $err;

# Four random bytes in one random data page (not the two meta pages).
srand($ENV{CR_DIGEST_SEED} // 47);
sub damage {
    my ($file) = @_;
    my $pages = int((-s $file) / 4096);
    my $p = 2 + int(rand($pages - 2));
    open my $fh, '+<:raw', $file or die "$file: $!";
    for (1 .. 4) {
        seek $fh, $p * 4096 + int(rand(4096)), 0;
        print $fh chr(int(rand(256)));
    }
    close $fh;
}

my (%seen, @wrong);
for my $i (1 .. 40) {
    my $rx = "$g/rx-$i.mdb";
    system('cp', $v1, $rx) == 0 or die 'cp';
    damage($rx);
    my $before = readlink $edge;
    my ($rc, $out, $err) = run_cmd([cli(), 'publish', '--db', $rx, '--to',
                                    $edge, '--digest', $D]);
    if ($rc == 0) {
        $seen{published}++;
        my $now = readlink $edge;
        push @wrong, "copy $i published with other records"
            if digest_of($out) ne $D || dump_of("$g/edge/$now") ne $want;
    } elsif ($rc == 3 && readlink($edge) eq $before
             && $err =~ /does not hold what --digest says|is damaged: reading its pages faulted|cannot read every record/)
    {
        $seen{refused}++;
    } else {
        push @wrong, "copy $i: exit $rc, $err";
    }
    unlink $rx, "$rx-lock";
}
is_deeply(\@wrong, [], '40 damaged copies through publish --digest: none '
          . 'published with other records, each refusal a clear error and '
          . 'the edge unchanged (' . ($seen{refused} // 0) . ' refused, '
          . ($seen{published} // 0) . ' unchanged records published)');
cmp_ok($seen{refused} // 0, '>=', 30, '... most refused');

# Damaged while publish writes the copy: the master is sound, the copy is
# not what its snapshot holds.
my $size = -s $v1;
%seen = ();
@wrong = ();
for my $i (1 .. 10) {
    # Near the end of a page, where a page's records lie: a page's first
    # bytes hold its number, which no reader uses (a file of 10 k + 3
    # pages put every probe there).
    my $at = 2 * 4096 + int(($size - 3 * 4096) * $i / 10 / 4096) * 4096
             + 4000;
    my $before = readlink $edge;
    local $ENV{LD_PRELOAD} = $CORRUPT;
    local $ENV{CR_CORRUPT_NAME} = '.brand.mdb.tmp-';
    local $ENV{CR_CORRUPT_AT} = $at;
    local $ENV{ASAN_OPTIONS} = join ':', grep { defined }
        $ENV{ASAN_OPTIONS}, 'verify_asan_link_order=0';
    my ($rc, $out, $err) = run_cmd([cli(), 'publish', '--db', $master,
                                    '--to', $edge]);
    if ($rc == 0) {
        $seen{published}++;
        my $now = readlink $edge;
        local $ENV{LD_PRELOAD};
        push @wrong, "offset $at published with other records"
            if dump_of("$g/edge/$now") ne $want;
    } elsif ($rc == 3 && readlink($edge) eq $before
             && $err =~ /the copy "[^"]+" does not hold the records of the master's generation \d+|"[^"]+\.v\d+" is damaged: reading its pages faulted/)
    {
        $seen{refused}++;
    } else {
        push @wrong, "offset $at: exit $rc, $err";
    }
}
is_deeply(\@wrong, [], '10 copies damaged while written: none published '
          . 'with other records (' . ($seen{refused} // 0) . ' refused)');
cmp_ok($seen{refused} // 0, '>=', 5, '... most refused, the edge unchanged');
opendir my $dh, "$g/edge" or die;
is_deeply([sort grep { /tmp-/ } readdir $dh], [], '... no temporary file left');
}

done_testing();
