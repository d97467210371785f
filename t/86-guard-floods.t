#!/usr/bin/perl
# The PIN guard cannot be emptied, through a real nginx
# with two workers and a 1 MB zone shared by two brands: X is
# locked out of A's code T and T's budget is spent; then brand B, on its
# own server with its own key, floods 5,000 wrong PINs for its own codes
# from one address, and 4,500 IPv6 /64s each send a wrong PIN at T and
# at a second code U, twice over.  X stays locked, and once its own lock
# has run out it is still held by T's spent budget; no /64 gets a fresh
# budget on a second pass.  Sharing the zone, B's flood can fill it
# (nginx -t warns); a guard zone per server: B's own small zone, filled,
# leaves A's zone untouched.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(time sleep);
use CodeRouter::Test qw(make_key run_cmd cli tmpdir);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
my $keyb = make_key("$d/2.key");
CodeRouter::Verify::verify_store("$d/b.mdb");

# [code, pin] of serials $from .. $from + $n - 1.
sub codes {
    my ($k, $from, $n) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $k, '--kid', 1,
        '--from', $from, '--count', $n, '--format', 'csv', '--pin']);
    die "mint: $err" if $rc;
    my @l = split /\n/, $out;
    shift @l;
    return map { my @f = split /,/; [$f[1], $f[-1]] } @l;
}

sub wrong { sprintf '%08d', ($_[0] + 1) % 100000000 }

# Brand B: its own server (Host b.example), key and store; $guard: its
# own code_router_pin_guard, or none (the http level's).
sub conf {
    my ($guard) = @_;
    return verify_conf(dir => $d, key => $key, extra => <<"CONF");
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name b.example;
        code_router_db $d/b.mdb;
        code_router_key 1 $keyb;
        $guard
        location = /verify {
            code_router_verify \$arg_code;
        }
    }
CONF
}

# POSTs every [host, code, pin, address] in @$reqs from two clients, a
# connection each (keep-alive waits for delayed ACKs: 40 a second);
# returns each one's verification, in order.
sub flood {
    my ($t, $reqs) = @_;
    my $dir = tmpdir();
    my @kids;
    for my $k (0, 1) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $http = HTTP::Tiny->new(max_redirect => 0, timeout => 30,
                                       keep_alive => 0);
            open my $out, '>', "$dir/$k" or POSIX::_exit(1);
            for (my $i = $k; $i < @$reqs; $i += 2) {
                my ($host, $code, $pin, $addr) = @{$reqs->[$i]};
                my $url = "http://$host:" . $t->port . "/verify?code=$code";
                my $r = $http->request('POST', $url, { peer => '127.0.0.1',
                    headers => { Accept => 'application/json',
                                 'Content-Type' => 'application/x-www-form-urlencoded',
                                 'X-Forwarded-For' => $addr },
                    content => "pin=$pin" });
                print $out "$i ", (json_of($r)->{verification} // "http-$r->{status}"), "\n";
            }
            close $out;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid $_, 0 for @kids;
    my @v;
    for my $k (0, 1) {
        open my $in, '<', "$dir/$k" or die "$dir/$k: $!";
        while (<$in>) { my ($i, $w) = split; $v[$i] = $w }
    }
    return @v;
}

sub count { my ($w, @v) = @_; return scalar grep { defined && $_ eq $w } @v }

sub metric {
    my ($t, $name) = @_;
    my ($v) = $t->get('/status')->{content} =~ /^\Q$name\E (\d+)$/m;
    return $v;
}

my $json = { Accept => 'application/json' };
my ($T, $U) = codes($key, 42, 2);
my $X = '203.0.113.9';

# 1. A shared zone, 1 MB: X locked on T, T's budget spent.
my $t = CodeRouter::Test::Nginx->new(workers => 2, http => conf(''));
$t->start;
cmp_ok(metric($t, 'code_router_pin_guard_room{kind="address"}'), '>', 5000,
       '1 MB: room for over 5,000 address records');

my @v = flood($t, [map { my $a = "10.1.0." . (1 + $_ % 20);
                         ['localhost', $T->[0], wrong($T->[1]), $a] } 0 .. 99]);
is(count('wrong_pin', @v), 100, "T's budget spent: 100 wrong PINs from 20 addresses");
my $locked_at = time;
for (1 .. 5) { post_pin($t, "/verify?code=$T->[0]", wrong($T->[1]), $X, %$json) }
my $r = post_pin($t, "/verify?code=$T->[0]", $T->[1], $X, %$json);
is(json_of($r)->{verification}, 'locked', 'X: 5 wrong PINs, then locked on T');

# 2. Brand B floods its own codes from one address.
my @b = codes($keyb, 1, 5000);
@v = flood($t, [map { ['b.example', $_->[0], wrong($_->[1]), '198.51.100.66'] } @b]);
is(count('wrong_pin', @v) + count('locked', @v), 5000,
   "B's 5,000 wrong PINs answered: " . count('wrong_pin', @v) . ' wrong_pin, '
   . count('locked', @v) . ' locked (the codes\' share full)');
$r = post_pin($t, "/verify?code=$T->[0]", $T->[1], $X, %$json);
is(json_of($r)->{verification}, 'locked', "after B's flood X is still locked on T");
ok(!exists json_of($r)->{verifications},
   '... a locked answer tells no count (its right PIN not checked)');
# Nothing dropped, so a brand that shares a zone can fill it: B's
# codes' budgets (spent, kept 15 min) hold the codes' share, and A's
# fresh code is locked too.  nginx -t warned; part 5 is the remedy.
my ($V) = codes($key, 44, 1);
$r = post_pin($t, "/verify?code=$V->[0]", $V->[1], '192.0.2.77', %$json);
is(json_of($r)->{verification}, 'locked',
   "a shared zone: B's flood holds the codes' share, A's fresh code is locked");
like($t->error_log, qr/PIN guard zone "pins" is shared by servers with other keys/,
     '... nginx -t warned: give each brand its own zone');

# 3. 4,500 /64s, a wrong PIN at T and at U each, twice.
my @six = map { sprintf '2001:db8:%x:%x::1', $_ >> 16, $_ & 0xffff } 1 .. 4500;
my @reqs = map { (['localhost', $T->[0], wrong($T->[1]), $_],
                  ['localhost', $U->[0], wrong($U->[1]), $_]) } @six;
my @v1 = flood($t, \@reqs);
my @v2 = flood($t, \@reqs);
my (%t1, %t2);
for my $i (0 .. $#six) {
    $t1{$six[$i]} = $v1[2 * $i];
    $t2{$six[$i]} = $v2[2 * $i];
}
my $c1 = grep { $_ eq 'wrong_pin' } values %t1;
my $c2 = grep { $_ eq 'wrong_pin' } values %t2;
my $fresh = grep { $t1{$_} ne 'wrong_pin' && $t2{$_} eq 'wrong_pin' } @six;
cmp_ok($c1, '<', 4500, "pass 1: T checked for $c1 of 4,500 /64s (the rest: no room, locked)");
cmp_ok(metric($t, 'code_router_pin_guard_full_total'), '>', 0,
       '... counted in code_router_pin_guard_full_total');
is($fresh, 0, "pass 2: no /64 refused in pass 1 checked now (no fresh budget; $c2 checked, within their 5)");
is(count('http-500', @v1, @v2) + count('http-503', @v1, @v2), 0, '... every check answered');
$r = post_pin($t, "/verify?code=$T->[0]", $T->[1], $X, %$json);
is(json_of($r)->{verification}, 'locked', 'after the /64 flood X is still locked on T');

# 4. X's own lock (60 s) runs out: T's budget still holds it.
my $wait = $locked_at + 62 - time;
sleep $wait if $wait > 0;
$r = post_pin($t, "/verify?code=$T->[0]", $T->[1], $X, %$json);
is(json_of($r)->{verification}, 'locked',
   "past X's own lock, T's spent budget still holds it (the budget was kept)");
cmp_ok($r->{headers}{'retry-after'} // 0, '>', 0, '... until the next token');
is(metric($t, 'code_router_pin_guard_room{kind="address"}'), 0,
   'the address records\' share is full');
$r = post_pin($t, "/verify?code=$T->[0]", $T->[1], '192.0.2.77', %$json);
is(json_of($r)->{verification}, 'locked',
   '... so a new address on T, under pressure, is locked: never a fresh budget');
$t->stop;

# 5. A zone per server: B's own 64 KB zone, flooded full (5,000 codes:
# more than A's 1 MB zone has room for), and A's zone.
$t = CodeRouter::Test::Nginx->new(workers => 2,
    http => conf('code_router_pin_guard zone=brand_b:64k;'));
$t->start;
my $room = metric($t, 'code_router_pin_guard_room{kind="code"}');
@v = flood($t, [map { ['b.example', $_->[0], wrong($_->[1]), '198.51.100.66'] } @b]);
cmp_ok(count('locked', @v), '>', 4000, "B's own zone full: " . count('locked', @v)
       . ' of 5,000 locked');
is(metric($t, 'code_router_pin_guard_room{kind="code"}'), $room
   - count('wrong_pin', @v), "... its records made in its own zone only");
my @a = codes($key, 100, 20);
@v = flood($t, [map { ['localhost', $_->[0], wrong($_->[1]), '198.51.100.67'] } @a]);
is(count('wrong_pin', @v), 20, "A's new codes, at once: all checked (A's zone untouched)");
unlike($t->error_log, qr/is shared by servers with other keys/, '... no warning');
$r = post_pin($t, "/verify?code=$a[0][0]", $a[0][1], '198.51.100.67', %$json);
is(json_of($r)->{verification}, 'genuine', "... A's buyer: genuine");
$t->stop;

done_testing;
