#!/usr/bin/perl
# Overrun and leak signals: a genuine code that no bound batch holds (a
# printer that printed past its range, a leaked code package) is counted
# on /status by store, key id and block of 2^20 serials
# (code_router_overrun_scans_total), unlike a forged code, a bound one or
# a code of the batch; one tenant's blocks cannot crowd out another's (16
# a store, then the store's other_scans); a tenant's page shows its own
# store alone; the counts survive a reload; promtool accepts the page.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(tmpdir make_key load_store mint run_cmd);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $camp = "campaign,type,url\nca,h5,https://a.example/\n";
my $batch = "batch,kid,serial_from,serial_to,scene,campaign\n"
          . "b1,1,1,100,verify,ca\n";
for my $db ('one', 'two') {
    load_store("$d/$db.mdb", ["c-$db.csv", $camp], ["b-$db.csv", $batch]);
}

my $t = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $d/one.mdb;
        location = /status { code_router_status; }
        location / { code_router \$uri; }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name two;
        code_router_db $d/two.mdb;
        location = /status { code_router_status scope=server; }
        location / { code_router \$uri; }
    }
EOF
$t->start;

my $block = 1 << 20;
my $in = mint($key, 1, 50);
(my $forged = $in) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;

is($t->get("/$in")->{status}, 302, 'a code of the batch: routed');
is($t->get("/$forged")->{status}, 404, 'a forged code: 404');
for my $s (101, 102, 102) {
    is($t->get('/' . mint($key, 1, $s))->{status}, 404,
       "serial $s, past the batch's 100: 404 (unbound)");
}
$t->get('/' . mint($key, 1, 3 * $block + 7));
$t->get('/' . mint($key, 1, 500), { Host => 'two' });

my $status = $t->get('/status')->{content};
my $one = qr/db="\Q$d\E\/one\.mdb"/;
like($status, qr/^code_router_overrun_scans_total\{$one,kid="1",serials="0-1048575"\} 3$/m,
     'the 3 scans past the batch, in block 0 of key id 1');
like($status, qr/^code_router_overrun_scans_total\{$one,kid="1",serials="3145728-4194303"\} 1$/m,
     '... a scan of block 3 apart');
like($status, qr/^code_router_overrun_scans_total\{db="\Q$d\E\/two\.mdb",kid="1",serials="0-1048575"\} 1$/m,
     "... the other store's apart");
is(scalar(() = $status =~ /^code_router_overrun_scans_total\{/mg), 3,
   '... and nothing else (not the forged code, not the code of the batch)');
like($status, qr/^code_router_overrun_other_scans_total\{$one\} 0$/m,
     '... no scan past the 16 blocks of a store');

my $two = $t->get('/status', { Host => 'two' })->{content};
like($two, qr/^code_router_overrun_scans_total\{db="\Q$d\E\/two\.mdb",kid="1",serials="0-1048575"\} 1$/m,
     "a tenant's page (scope=server) shows its store's");
unlike($two, qr/one\.mdb|overrun_lost/, "... and not the other store's");

# One store's leaks in 20 blocks: 16 counted, the rest in its other;
# the second store still gets a block of its own.
for my $b (10 .. 29) {
    $t->get('/' . mint($key, 1, $b * $block));
}
$t->get('/' . mint($key, 1, 5 * $block), { Host => 'two' });
$status = $t->get('/status')->{content};
is(scalar(() = $status =~ /^code_router_overrun_scans_total\{$one,/mg), 16,
   'store one: 16 blocks counted');
like($status, qr/^code_router_overrun_other_scans_total\{$one\} 6$/m,
     '... its scans of 6 blocks more as its other');
like($status, qr/^code_router_overrun_scans_total\{db="\Q$d\E\/two\.mdb",kid="1",serials="5242880-6291455"\} 1$/m,
     "... store two's new block still counted");
like($status, qr/^code_router_overrun_lost_total 0$/m, '... none lost');

SKIP: {
    skip "Debian's prometheus (promtool) is needed", 1
        unless -x '/usr/bin/promtool';
    my ($rc, $out, $err) = run_cmd(['/usr/bin/promtool', 'check', 'metrics'],
                                   $status);
    is($rc . $out . $err, '0', 'promtool check metrics accepts the page');
}

$t->reload;
like($t->get('/status')->{content},
     qr/^code_router_overrun_scans_total\{$one,kid="1",serials="0-1048575"\} 3$/m,
     'a reload keeps the counts');
$t->stop;

done_testing();
