#!/usr/bin/perl
# Parents (五码合一, 箱码关联): items packed into cases, cases into
# pallets.  docs/loading.md's example (a pallet of 2 cases of 6 items,
# conf/examples/packaging.csv) loads; dump --kind parents writes it back,
# and load -> dump -> load into a new store -> dump is identical; a
# parent changed, a range deleted; every bad row of a parents file with
# its FILE:LINE message (bad numbers, serial_to below serial_from, a code
# given two parents in the store and in the run, a child or parent in no
# batch, a batch later in the run, a parent inside its own range, cycles,
# a fourth level, delete rows), and a bad run commits nothing; the API and
# $code_router_parents show the chain through a real nginx; a store made
# before parents reads as having none until a load adds them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(cli root run_cmd tmpdir write_file make_key mint
                        load_store);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $loader = root() . '/scripts/code-router-load';
my $ex = root() . '/conf/examples';

sub load { return run_cmd([$loader, @_]) }
sub cr { return run_cmd([cli(), @_]) }
sub dump_db {
    my (undef, $out) = cr('dump', '--db', $_[0] // $db, @_[1 .. $#_]);
    return $out;
}
sub generation {
    my (undef, $out) = cr('stat', '--db', $_[0] // $db);
    return $out =~ /^generation\s+(\d+)/m ? $1 : -1;
}

# 1. The example: campaigns, batches (the items' roll), the packaging
# line's file (the cases' and pallets' batches, then the parents).
# load_store dies if it fails, and lets nginx's workers read the store.
my $out = load_store($db, "$ex/campaigns.csv", "$ex/batches.csv",
                     "$ex/packaging.csv");
my ($rc, $err);
like($out, qr/^parents\s+3 added, 0 changed, 0 unchanged, 0 removed$/m,
     'parents: 3 added');
my $want = <<'CSV';
kid,serial_from,serial_to,parent_kid,parent_serial
1,2000001,2000006,1,8000001
1,2000007,2000012,1,8000002
1,8000001,8000002,1,8100001
CSV
is(dump_db($db, '--kind', 'parents'), $want, 'dump --kind parents');

# Round trip: the whole dump into a new store, dumped again.
my $all = dump_db();
like($all, qr/\n\nkid,serial_from,serial_to,parent_kid,parent_serial\n/,
     'a full dump ends with the parents section');
write_file("$d/dump.csv", $all);
($rc, undef, $err) = load('--db', "$d/copy.mdb", "$d/dump.csv");
is($rc, 0, 'the dump loads into a new store') or diag $err;
is(dump_db("$d/copy.mdb"), $all, '... and dumps identically');
write_file("$d/parents.csv", dump_db($db, '--kind', 'parents'));
($rc, $out, $err) = load('--db', $db, "$d/parents.csv");
is($rc, 0, 'dump --kind parents loads back') or diag $err;
like($out, qr/^parents\s+0 added, 0 changed, 3 unchanged, 0 removed$/m,
     '... unchanged');
like($out, qr/no change/, '... no change');

# 2. Bad rows: every error with its place; nothing committed.
my $gen = generation();
write_file("$d/bad.csv", <<'CSV');
kid,serial_from,serial_to,parent_kid,parent_serial,delete
x,2000100,2000105,1,8000010,
1,2000110,2000103,1,8000010,
1,2000003,2000003,1,8000011,
1,3500000,3500005,1,8000012,
1,2000200,2000205,1,7777777,
1,2000300,2000310,1,2000305,
1,8100001,8100001,1,2000050,
1,8100009,8100009,1,8100008,
1,8100008,8100008,1,8100009,
1,2000400,,1,8000013,
1,2000400,2000400,1,8000014,
1,2000500,2000501,1,8000020,
1,8000020,8000020,1,8100020,
1,8100020,8100020,1,8100021,
1,2000600,2000601,,,yes
1,2000001,2000006,,,maybe
1,2000701,2000702,1,8000030,
1,2000702,2000703,1,8000031,
1,2000800,2000800,256,8000040,
1,2000801,2000801,1,x,
1,9000005,9000005,1,8000041,
CSV
write_file("$d/later.csv", <<'CSV');
batch,kid,serial_from,serial_to,scene,campaign
later,1,9000000,9000999,trace,trace-page
CSV
($rc, undef, $err) = load('--db', $db, "$d/bad.csv", "$d/later.csv");
is($rc, 1, 'a bad parents file: exit 1');
my $f = "$d/bad.csv";
my @want = (
    qq{$f:2: kid: "x" must be a whole number from 0 to 255},
    "$f:3: serial_to 2000103 is below serial_from 2000110",
    "$f:4: key id 1 serials 2000003 to 2000003 overlap serials 2000001 to "
    . "2000006, packed into 1:8000001 (already in the store): a code has "
    . "one parent",
    "$f:5: key id 1 serials 3500000 to 3500005 are not all in one batch "
    . "(bind them in a batch file of this run or an earlier one)",
    "$f:6: parent 1:7777777 is in no batch (bind it in a batch file of "
    . "this run or an earlier one)",
    "$f:7: parent_serial 2000305 is inside the range it is the parent of "
    . "(a code cannot hold itself)",
    "$f:8: key id 1 serials 8100001 to 8100001 into 1:2000050 make a chain "
    . "of more than 3 levels (item, case, pallet)",
    "$f:9: a cycle: parent 1:8100008 is itself packed (1 level up) into "
    . "1:8100009, a code of this range",
    "$f:10: a cycle: parent 1:8100009 is itself packed (1 level up) into "
    . "1:8100008, a code of this range",
    "$f:12: key id 1 serials 2000400 to 2000400 are also given at $f:11 "
    . "(one row per range and run)",
    "$f:13: key id 1 serials 2000500 to 2000501 into 1:8000020 make a "
    . "chain of more than 3 levels (item, case, pallet)",
    "$f:14: key id 1 serials 8000020 to 8000020 into 1:8100020 make a "
    . "chain of more than 3 levels (item, case, pallet)",
    "$f:15: key id 1 serials 8100020 to 8100020 into 1:8100021 make a "
    . "chain of more than 3 levels (item, case, pallet)",
    "$f:16: key id 1 serials 2000600 to 2000601 have no parent to delete "
    . "(give the range as loaded)",
    qq{$f:17: delete: "maybe" must be empty or "yes"},
    "$f:19: key id 1 serials 2000702 to 2000703 overlap serials 2000701 to "
    . "2000702, packed into 1:8000030 (defined at $f:18): a code has one "
    . "parent",
    qq{$f:20: parent_kid: "256" must be a whole number from 0 to 255},
    qq{$f:21: parent_serial: "x" must be a whole number from 0 to }
    . "1099511627775",
);
is_deeply([grep { /^\Q$f\E:/ } split /\n/, $err], \@want,
          'every bad row, in order, with its message')
    or diag $err;
unlike($err, qr/:22:/, 'a child bound by a batch later in the run is fine');
like($err, qr/^code-router load: 18 errors in 22 rows; no change made$/m,
     'the count');
is(generation(), $gen, 'nothing committed');
is(dump_db($db, '--kind', 'parents'), $want, 'the parents are unchanged');

# A header without a needed column.
write_file("$d/nocol.csv", "kid,serial_from,parent_kid\n1,2000001,1\n");
($rc, undef, $err) = load('--db', $db, "$d/nocol.csv");
like($err, qr/^\Q$d\E\/nocol\.csv:1: the header lacks the column "parent_serial"$/m,
     'a header without parent_serial');

# 3. Changes: a case moved to another pallet, a range deleted, a single
# item (serial_to empty) packed, a deleted range given again.
write_file("$d/change.csv", <<'CSV');
kid,serial_from,serial_to,parent_kid,parent_serial,delete
1,8000001,8000002,1,8100002,
1,2000007,2000012,,,yes
1,2000013,,1,8000002,
CSV
($rc, $out, $err) = load('--db', $db, "$d/change.csv");
is($rc, 0, 'a change, a delete and a single code') or diag $err;
like($out, qr/^parents\s+1 added, 1 changed, 0 unchanged, 1 removed$/m,
     '... counted');
is(dump_db($db, '--kind', 'parents'), <<'CSV', '... dumped');
kid,serial_from,serial_to,parent_kid,parent_serial
1,2000001,2000006,1,8000001
1,2000013,2000013,1,8000002
1,8000001,8000002,1,8100002
CSV
# The moved case's old pallet index is gone: 8100001 may now be packed
# under two levels (a case under it would be refused were it still
# holding 8000001-2 in its index).
write_file("$d/reuse.csv", <<'CSV');
kid,serial_from,serial_to,parent_kid,parent_serial
1,8100001,8100001,1,8000003
CSV
($rc, undef, $err) = load('--db', $db, "$d/reuse.csv");
is($rc, 0, 'the old pallet holds nothing now: it may go into a case')
    or diag $err;
write_file("$d/undo.csv", <<'CSV');
kid,serial_from,serial_to,parent_kid,parent_serial,delete
1,8100001,8100001,,,yes
1,2000007,2000012,1,8000002,
CSV
($rc, undef, $err) = load('--db', $db, "$d/undo.csv");
is($rc, 0, 'deleted again; the second case refilled') or diag $err;

# 4. Through nginx: the API's "parents" and $code_router_parents.
my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/codes/ {
            code_router_api;
        }
        location /p/ {
            code_router \$uri;
            add_header X-Parents "[\$code_router_parents]" always;
        }
    }
CONF
$t->start;

my $item = mint($key, 1, 2000008);
my $r = $t->get("/v1/codes/$item");
is($r->{status}, 200, 'an item in a case: 200');
my $j = JSON::PP::decode_json($r->{content});
is_deeply($j->{parents}, [{ kid => 1, serial => 8000002 },
                          { kid => 1, serial => 8100002 }],
          'the API: its case, then the pallet') or diag $r->{content};
unlike($r->{content}, qr/\Q${\ mint($key, 1, 8000002)}\E/,
       "the case's code is not shown");
$j = JSON::PP::decode_json($t->get('/v1/codes/' . mint($key, 1, 8000002))
                           ->{content});
is_deeply($j->{parents}, [{ kid => 1, serial => 8100002 }],
          'a case: its pallet');
$j = JSON::PP::decode_json($t->get('/v1/codes/' . mint($key, 1, 8100002))
                           ->{content});
is_deeply($j->{parents}, [], 'a pallet: none');
$j = JSON::PP::decode_json($t->get('/v1/codes/' . mint($key, 1, 2000050))
                           ->{content});
is_deeply($j->{parents}, [], 'an item in no case: none');

$r = $t->get("/p/$item");
is($r->{status}, 302, 'the router sends the item on');
is($r->{headers}{'x-parents'}, '[1:8000002 1:8100002]',
   '$code_router_parents: nearest first');
$r = $t->get('/p/' . mint($key, 1, 2000050));
is($r->{headers}{'x-parents'}, '[]', '... empty for a code in no case');

# A live load: the next request sees the new chain.
write_file("$d/live.csv", <<'CSV');
kid,serial_from,serial_to,parent_kid,parent_serial
1,2000050,2000055,1,8000009
CSV
($rc, undef, $err) = load('--db', $db, "$d/live.csv");
is($rc, 0, 'a live load') or diag $err;
$j = JSON::PP::decode_json($t->get('/v1/codes/' . mint($key, 1, 2000050))
                           ->{content});
is_deeply($j->{parents}, [{ kid => 1, serial => 8000009 }],
          '... seen at the next request');

$t->stop;

# 5. A store made before parents (no parents tables: the example's store
# copied without them by lmdb-utils): nginx answers with no chain; a load
# adds the tables, and nginx sees the chain once it opens the store again.
SKIP: {
    skip 'lmdb-utils (mdb_dump, mdb_load) not installed', 7
        unless -x '/usr/bin/mdb_dump' && -x '/usr/bin/mdb_load';
    my $new = "$d/new.mdb";
    ($rc, undef, $err) = load('--db', $new, "$ex/campaigns.csv",
                              "$ex/batches.csv");
    is($rc, 0, 'a store without parents') or diag $err;
    my (undef, $all) = run_cmd(['mdb_dump', '-n', '-a', $new]);
    my @dbs = grep { !/^database=(?:parents|children)$/m }
              split /(?=^VERSION=)/m, $all;
    write_file("$d/old.dump", join '', @dbs);
    my $old = "$d/old.mdb";
    ($rc, undef, $err) = run_cmd(['mdb_load', '-n', '-f', "$d/old.dump",
                                  $old]);
    is($rc, 0, 'copied without the parents tables') or diag $err;
    my (undef, $stat) = run_cmd(['mdb_stat', '-n', '-a', $old]);
    unlike($stat, qr/Status of (?:parents|children)/, '... none there')
        or diag $stat;
    chmod 0666, "$old-lock";
    chmod 0644, $old;
    my $o = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $old;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /v1/codes/ {
            code_router_api;
        }
    }
CONF
    $o->start;
    $r = $o->get("/v1/codes/$item");
    $j = eval { JSON::PP::decode_json($r->{content}) } // {};
    is_deeply([$r->{status}, $j->{status}, $j->{parents}], [200, 'ok', []],
              'nginx reads the old store: ok, no chain');
    ($rc, undef, $err) = load('--db', $old, "$ex/packaging.csv");
    is($rc, 0, 'the loader adds the tables and the parents') or diag $err;
    $o->reload;
    $j = JSON::PP::decode_json($o->get("/v1/codes/$item")->{content});
    is_deeply($j->{parents}, [{ kid => 1, serial => 8000002 },
                              { kid => 1, serial => 8100001 }],
              '... seen after a reload');
    is(dump_db($old, '--kind', 'parents'), $want, '... and dumped');
    $o->stop;
}

done_testing();
