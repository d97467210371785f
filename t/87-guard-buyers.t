#!/usr/bin/perl
# Who the PIN guard counts, through a real
# nginx with two workers.  The API takes the backend's buyer id
# (buyer=, e.g. the openid hashed) as the guard's address: one wrong PIN
# typed in the mini-program plus 120 wrong PINs on the public page from
# 24 addresses no longer lock the buyer's right PIN out of the API, and
# one buyer's lock is not another's.  The public page ignores buyer=.
# Behind NAT64 (64:ff9b::/96) each IPv4 client is its own address.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use CodeRouter::Test qw(mint);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();
my $t = CodeRouter::Test::Nginx->new(workers => 2,
    http => verify_conf(dir => $d, key => $key));
$t->start;

my $json = { Accept => 'application/json' };
my $backend = '10.0.0.5';

sub post_form {
    my ($path, $body, $addr) = @_;
    my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0, timeout => 10);
    return $http->request('POST', $t->url($path), {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     'X-Forwarded-For' => $addr, %$json },
        content => $body });
}

sub code_pin { my ($s) = @_; return (mint($key, 1, $s), pin_of($key, 1, $s)) }
sub wrong { sprintf '%08d', ($_[0] + 1) % 100000000 }

my $u1 = 'a3f1' x 16;               # the backend's hash of a user's openid
my $u2 = '77c0' x 16;

# 1. The issue's scenario: one typo in the mini-program, then 120 wrong
# PINs on the public page from 24 addresses; the buyer's right PIN.
my ($c, $pin) = code_pin(60);
my $r = post_form("/v1/codes/$c/verify", "pin=" . wrong($pin) . "&buyer=$u1", $backend);
is(json_of($r)->{verification}, 'wrong_pin', 'the buyer\'s typo in the mini-program: wrong_pin');
my $bad = 0;
for my $i (0 .. 119) {
    $r = post_pin($t, "/verify?code=$c", wrong($pin), '10.44.0.' . (1 + $i % 24), %$json);
    $bad++ unless ($r->{status} // 0) == 403;
}
is($bad, 0, '120 wrong PINs on the page from 24 addresses: all checked (403)');
$r = post_form("/v1/codes/$c/verify", "pin=$pin&buyer=$u1", $backend);
is($r->{status}, 200, 'the buyer\'s right PIN through the API: 200 (it was 429 locked)');
is(json_of($r)->{verification}, 'genuine', '... genuine');

# 2. One buyer's lock is not another's behind the same backend.
my ($c2, $pin2) = code_pin(61);
for (1 .. 5) {
    post_form("/v1/codes/$c2/verify", "buyer=$u1&pin=" . wrong($pin2), $backend);
}
$r = post_form("/v1/codes/$c2/verify", "pin=$pin2&buyer=$u1", $backend);
is(json_of($r)->{verification}, 'locked', 'buyer 1: 5 wrong PINs, then locked');
$r = post_form("/v1/codes/$c2/verify", "pin=$pin2&buyer=$u2", $backend);
is(json_of($r)->{verification}, 'genuine', 'buyer 2, same backend address: checked (genuine)');
$r = post_form("/v1/codes/$c2/verify", "pin=$pin2", $backend);
is(json_of($r)->{verification}, 'verified_before',
   'without buyer=, the backend\'s own address (not locked): checked');

# 3. Bad buyer ids: a clear 400.
for my $case (['pin=12345678&buyer=', qr/buyer field is empty/, 'empty'],
              ['pin=12345678&buyer=a&buyer=b', qr/buyer field is repeated/, 'repeated'],
              ['pin=12345678&buyer=' . ('x' x 129), qr/over 128 bytes/, '129 bytes']) {
    $r = post_form("/v1/codes/$c2/verify", $case->[0], $backend);
    is($r->{status}, 400, "buyer $case->[2]: 400");
    like(json_of($r)->{error} // '', $case->[1], '... says why');
}
$r = post_form("/v1/codes/$c2/verify", 'pin=' . wrong($pin2) . '&buyer=' . ('x' x 128), $backend);
is(json_of($r)->{verification}, 'wrong_pin', 'a 128-byte buyer id: checked');

# 4. The public page ignores buyer=: a stranger cannot pick fresh ids.
my ($c3, $pin3) = code_pin(62);
for my $i (1 .. 5) {
    $r = post_form("/verify?code=$c3", 'pin=' . wrong($pin3) . "&buyer=x$i", '198.51.100.40');
}
$r = post_form("/verify?code=$c3", "pin=$pin3&buyer=fresh", '198.51.100.40');
is(json_of($r)->{verification}, 'locked', 'the page: buyer= ignored, the address is locked');

# 5. NAT64: 64:ff9b::c000:201 is IPv4 192.0.2.1, not one /64 for all.
my ($c4, $pin4) = code_pin(63);
for (1 .. 5) {
    post_pin($t, "/verify?code=$c4", wrong($pin4), '64:ff9b::c000:201', %$json);
}
$r = post_pin($t, "/verify?code=$c4", $pin4, '64:ff9b::c000:201', %$json);
is(json_of($r)->{verification}, 'locked', 'NAT64 client 192.0.2.1: 5 wrong PINs, locked');
$r = post_pin($t, "/verify?code=$c4", wrong($pin4), '64:ff9b::c000:202', %$json);
is(json_of($r)->{verification}, 'wrong_pin', 'NAT64 client 192.0.2.2: its own record, checked');
$r = post_pin($t, "/verify?code=$c4", $pin4, '192.0.2.1', %$json);
is(json_of($r)->{verification}, 'locked', '192.0.2.1 over IPv4: the same client, locked');
$r = post_pin($t, "/verify?code=$c4", wrong($pin4), '2001:db8:1:2::5', %$json);
for (1 .. 4) { post_pin($t, "/verify?code=$c4", wrong($pin4), '2001:db8:1:2::5', %$json) }
$r = post_pin($t, "/verify?code=$c4", $pin4, '2001:db8:1:2:ffff::9', %$json);
is(json_of($r)->{verification}, 'locked', 'other IPv6: still one record per /64');

$t->stop;
done_testing;
