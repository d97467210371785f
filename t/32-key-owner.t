#!/usr/bin/perl
# A key file's owner and directory.
#
# nginx -t (and the CLI, which reads keys through the same cr_keyfile_read)
# refuses a key file owned by anybody but root or the user reading it, and
# one in a directory that group or others can write (they could rename
# another key into place).  Through a symbolic link, the directory of the
# file actually read is checked, and so is the link's own directory.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(cli run_cmd tmpdir make_key write_file read_file
                        load_store);

plan skip_all => 'needs root (chown to nobody)' if $> != 0;

my $d = tmpdir();
my $db = "$d/brand.mdb";
load_store($db, ['c.csv', "campaign,name,type,url\nh5,H5,h5,https://s.example/\n"]);

my $good = make_key("$d/1.key");
my $bytes = read_file($good);
my (undef, undef, $nobody, $nogroup) = getpwnam('nobody');

sub key_in {
    my ($dir, $mode, $name) = @_;
    mkdir $dir unless -d $dir;
    chmod $mode, $dir;
    return write_file("$dir/" . ($name // 'k.key'), $bytes, 0600);
}

sub nginx_t {
    my ($file) = @_;
    my $n = CodeRouter::Test::Nginx->new(
        http => "    code_router_db $db;\n    code_router_key 1 $file;\n");
    return $n->test_conf;
}

sub mint_with {
    my ($file) = @_;
    return run_cmd([cli(), 'mint', '--key', $file, '--kid', 1,
                    '--from', 1, '--count', 1]);
}

# The control: root's key, 0600, in a 0755 directory.
my ($rc, $log) = nginx_t($good);
is($rc, 0, 'a root-owned 0600 key in a 0755 directory passes nginx -t')
    or diag $log;

# Owned by nobody, mode 0600: nobody could rewrite it.
my $theirs = write_file("$d/nobody.key", $bytes, 0600);
chown $nobody, $nogroup, $theirs or die "chown: $!";
($rc, $log) = nginx_t($theirs);
isnt($rc, 0, 'a key owned by nobody (0600) fails nginx -t');
like($log, qr/key file "\Q$theirs\E" is owned by uid $nobody: a key must be owned by root or by the user reading it \(uid 0\)/,
     '... naming the owner and who may own it');
my ($crc, $out, $err) = mint_with($theirs);
is($crc, 3, 'the CLI refuses it too (exit 3)');
like($err, qr/is owned by uid $nobody/, '... with the same message');
is($out, '', '... and mints nothing');

# The reading user may own it: nobody reads nobody's key.
my $ndir = "$d/nobody-dir";
mkdir $ndir, 0755;
my $own = write_file("$ndir/own.key", $bytes, 0600);
chown $nobody, $nogroup, $own or die "chown: $!";
($crc, $out, $err) = run_cmd(['setpriv', "--reuid=$nobody",
                              "--regid=$nogroup", '--clear-groups',
                              cli(), 'mint', '--key', $own, '--kid', 1,
                              '--from', 1, '--count', 1]);
is($crc, 0, 'a key owned by the user reading it is accepted (nobody reads its own)')
    or diag $err;
($crc, $out, $err) = mint_with($good);
my $want = $out;
($crc, $out, $err) = run_cmd(['setpriv', "--reuid=$nobody",
                              "--regid=$nogroup", '--clear-groups',
                              cli(), 'mint', '--key', $own, '--kid', 1,
                              '--from', 1, '--count', 1]);
is($out, $want, '... and mints the same code as root with the same key');

# Directories others could write.
for my $c (['group-writable', 0775], ['world-writable', 0757],
           ['sticky and world-writable, like /tmp', 01777])
{
    my ($what, $mode) = @$c;
    my $dir = "$d/dir-" . sprintf('%o', $mode);
    my $k = key_in($dir, $mode);
    ($rc, $log) = nginx_t($k);
    isnt($rc, 0, "a key in a $what directory fails nginx -t");
    like($log, qr/key file "\Q$k\E" is in directory "\Q$dir\E" of mode @{[sprintf '%04o', $mode]}: group and others must not be able to write where a key is kept/,
         '... naming the directory and its mode');
    ($crc, $out, $err) = mint_with($k);
    is($crc, 3, '... and the CLI refuses it (exit 3)');
}

# Symbolic links: the directory of the file actually read counts.
my $safe = "$d/safe";
mkdir $safe, 0755;
my $open = "$d/open";
my $hidden = key_in($open, 0777, 'real.key');
symlink $hidden, "$safe/via-link.key" or die;
($rc, $log) = nginx_t("$safe/via-link.key");
isnt($rc, 0, 'a link in a safe directory to a key in a 0777 one fails');
like($log, qr/key file "\Q$safe\E\/via-link\.key" is in directory "\Q$open\E" of mode 0777/,
     '... naming the directory of the file actually read');

symlink $good, "$open/link-to-good.key" or die;
($rc, $log) = nginx_t("$open/link-to-good.key");
isnt($rc, 0, 'a link in a 0777 directory to a safe key fails (it could be re-pointed)');
like($log, qr/key file "\Q$open\E\/link-to-good\.key" is a symbolic link in directory "\Q$open\E" of mode 0777/,
     '... naming the link\'s directory');

symlink $good, "$safe/good-link.key" or die;
($rc, $log) = nginx_t("$safe/good-link.key");
is($rc, 0, 'a link in a safe directory to a safe key passes') or diag $log;

# A relative path in the CLI resolves against the working directory.
($crc, $out, $err) = run_cmd(['sh', '-c', 'cd "$1" && exec "$2" mint --key 1.key --kid 1 --from 1 --count 1',
                              'sh', $d, cli()]);
is($crc, 0, 'the CLI reads a relative key path') or diag $err;
is($out, $want, '... the same key');

done_testing;
