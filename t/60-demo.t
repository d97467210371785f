#!/usr/bin/perl
# What the README promises a newcomer: `make run` (scripts/demo-run) starts
# nginx and prints sample URLs, and each behaves as described; every scan
# reaches the JSON scan log.  And the ops example conf/nginx.conf passes
# nginx -t once its paths exist.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP ();
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(root run_cmd tmpdir free_port read_file write_file
                        make_key load_store ops_conf run_nginx);

my $d = tmpdir();
my $port = free_port();
my $out = "$d/demo.out";

my $pid = fork // die;
if (!$pid) {
    $ENV{DEMO} = "$d/demo";
    $ENV{PORT} = $port;
    open STDOUT, '>', $out;
    open STDERR, '>&', \*STDOUT;
    exec root() . '/scripts/demo-run';
    exit 127;
}

my %url;
my $deadline = time + 30;
while (time < $deadline) {
    my $text = read_file($out);
    if ($text =~ /metrics:\s+curl (\S+)/) {
        %url = $text =~ /^\s+([a-z][A-Za-z0-9 ,-]+?):\s+curl -i (\S+)/mg;
        last;
    }
    last if waitpid($pid, WNOHANG) == $pid;
    sleep 0.1;
}
ok(scalar keys %url >= 8, 'the demo prints a URL for each outcome')
    or diag read_file($out);
like(read_file($out), qr/committed generation 1/, '... after loading the demo data with the loader');

my $http = HTTP::Tiny->new(max_redirect => 0, timeout => 5);
for (1 .. 50) {
    last if $http->get("http://127.0.0.1:$port/status")->{status} == 200;
    sleep 0.1;
}
my %want = (
    'marketing, mini-program' => [200, qr/weixin:\/\/dl\/business\//],
    'verify, H5 page'         => [302, qr{^https://c\.brand\.cn/verify\?code=\w{18}&batch=roll-2026-B&scene=verify}],
    'trace, official account' => [302, qr{^https://mp\.weixin\.qq\.com/s/Tr4c3Pag3\?code=}],
    'forged'                  => [404, qr/此码未能通过验证/],
    'revoked'                 => [410, qr/此码已作废/],
    'campaign ended'          => [410, qr/活动已结束/],
    'campaign not started'    => [404, qr/活动尚未开始/],
    'genuine but unbound'     => [404, qr/此码尚未激活/],
    'retired print run'       => [410, qr/此码为正品码，但所属批次的印刷码已停用/],
);
for my $what (sort keys %want) {
    my $u = $url{$what};
    ok($u, "a URL for: $what") or next;
    my $r = $http->get($u);
    is($r->{status}, $want{$what}[0], "$what: $want{$what}[0]");
    like($r->{status} == 302 ? $r->{headers}{location} : $r->{content},
         $want{$what}[1], '... as described');
}
my $r = $http->get($url{'marketing, mini-program'}, { headers => { 'User-Agent' => 'MicroMessenger/8.0' } });
is($r->{headers}{location}, 'https://wxaurl.cn/AbCdEfGhIjK', 'the mini-program inside WeChat: its URL Link');
like($http->get("http://127.0.0.1:$port/status")->{content}, qr/^code_router_requests_total\{status="ok"\} \d+$/m,
     'the metrics URL answers');
my ($api_url) = read_file($out) =~ /verification API \(JSON\):\s+curl -s (\S+)/;
ok($api_url, 'the demo prints an API URL');
my $aj = JSON::PP::decode_json($http->get($api_url)->{content} || '{}');
is($aj->{status}, 'ok', '... which answers the decision as JSON');
is($aj->{scans}, 1, '... with the scan counted once (by the verify URL above)');

# The PIN: the curl lines, in order, as a newcomer would run them.
my @pins = read_file($out) =~ /^\s+([a-z][A-Za-z0-9 ,-]+?):\s+curl -s -d pin=(\d+) '?([^'\s]+)'?$/mg;
is(scalar @pins, 3 * 4, 'the demo prints curl lines for a right, a second right and a wrong PIN, and the API');
my @said;
while (my ($what, $p, $u) = splice @pins, 0, 3) {
    my $r = $http->request('POST', $u, { content => "pin=$p", headers => {
        'Content-Type' => 'application/x-www-form-urlencoded', Accept => 'application/json' } });
    push @said, JSON::PP::decode_json($r->{content} || '{}')->{verification} // $r->{status};
}
is_deeply(\@said, [qw(genuine verified_before wrong_pin verified_before)],
          '... and they answer genuine, verified_before, wrong_pin, verified_before');
my ($page) = read_file($out) =~ m{Here, open\s+(\S+)}m;
like($http->get($page)->{content}, qr/<form method="post"/, 'the verify page shows the PIN form');

sleep 0.5;
my @scans = map { JSON::PP::decode_json($_) } grep { /^\{"time"/ && !/"verification"/ } split /\n/, read_file($out);
my @checks = grep { /^\{"time"/ && /"verification"/ } split /\n/, read_file($out);
is(scalar @checks, 4, 'every PIN check on the verify page is in the PIN log (and the API\'s is not)')
    or diag join "\n", @checks;
is(scalar @scans, 10, 'every scan is in the JSON scan log, fallbacks included');
is_deeply([sort map { $_->{status} } @scans],
          [sort qw(ok ok ok ok forged revoked ended not_started unbound retired)],
          '... with its outcome');

kill 'TERM', $pid;
waitpid $pid, 0;

# conf/nginx.conf, with its paths pointed into a temporary directory
# (t/81-tls.t runs it).
make_key("$d/1.key");
load_store("$d/brand.mdb", root() . '/conf/examples/campaigns.csv');
ops_conf($d, http => $port, https => free_port(), api => free_port());
my ($rc, $o, $e) = run_nginx('-t', '-p', $d, '-c', "$d/nginx.conf", '-e', "$d/error.log");
is($rc, 0, 'conf/nginx.conf passes nginx -t') or diag "$o$e";

done_testing;
