#!/usr/bin/perl
# The PIN at the edge, through a real nginx with two workers: a
# stranger sends 1,000 wrong PINs and 1,000 scans for a code from other
# addresses; the buyer's right PIN then answers "genuine" with count 1, a
# second right PIN "verified_before" with the first time; wrong PINs lock
# one address, not another; the per-code ceiling stops an address that
# used its free wrong PINs, never one within them; the page (HTML-escaped,
# the brand's zone) and JSON (Accept, and POST .../CODE/verify) say the same.
use strict;
use warnings;
use utf8;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);
use HTTP::Tiny;
use POSIX ();
use Encode ();
use Time::Local ();
use CodeRouter::Test qw(mint);
use CodeRouter::Verify qw(verify_setup verify_conf pin_of post_pin json_of);

my ($d, $key) = verify_setup();

my $t = CodeRouter::Test::Nginx->new(workers => 2,
    http => verify_conf(dir => $d, key => $key));
$t->start;

my $code = mint($key, 1, 42);
my $pin = pin_of($key, 1, 42);
my $code2 = mint($key, 1, 43);
my $pin2 = pin_of($key, 1, 43);
like($pin, qr/^\d{8}$/, "the PIN of serial 42: $pin");
my $wrong = sprintf '%08d', ($pin + 1) % 100000000;
my $json = { Accept => 'application/json' };

# 1. The stranger: 1,000 scans of the public code, and 1,000 wrong PINs
# from 1,000 addresses (all of them checked: a clean address always is),
# in two parallel clients, a connection each (both workers answer).
my @kids;
for my $half (0, 1) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0);
        my $bad = 0;
        for my $i (0 .. 499) {
            my $n = $half * 500 + $i;
            my $addr = sprintf '10.66.%d.%d', $n / 250, $n % 250 + 1;
            my $s = $http->get($t->url("/$code"),
                               { headers => { 'X-Forwarded-For' => "10.77.0.$i" } });
            $bad++ unless $s->{status} == 302;
            my $r = $http->request('POST', $t->url("/verify?code=$code"), {
                headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                             'X-Forwarded-For' => $addr, %$json },
                content => "pin=$wrong" });
            $bad++ unless $r->{status} == 403
                          && json_of($r)->{verification} eq 'wrong_pin';
        }
        POSIX::_exit($bad > 255 ? 255 : $bad);
    }
    push @kids, $pid;
}
my $bad = 0;
for (@kids) { waitpid $_, 0; $bad += $? >> 8 }
is($bad, 0, '1,000 scans (302) and 1,000 wrong PINs (403 wrong_pin), all answered');

my $api = json_of($t->get("/v1/codes/$code"));
is($api->{scans}, 1000, 'the scans are counted: 1,000');

# 2. The buyer, at a clean address: genuine, count 1.
my $r = post_pin($t, "/verify?code=$code", $pin, '192.0.2.10', %$json);
is($r->{status}, 200, "the buyer's right PIN: 200");
my $j = json_of($r);
is($j->{verification}, 'genuine', '... genuine');
is($j->{verifications}, 1, '... verifications 1: the stranger counted for nothing');
like($j->{first_verified} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     '... first_verified in ISO 8601');
is($r->{headers}{'cache-control'}, 'no-store', '... no-store');
my $first = $j->{first_verified};

# 3. A second right PIN (the copy's buyer, elsewhere): verified_before.
sleep 1.1;
$r = post_pin($t, "/v1/codes/$code/verify", $pin, '198.51.100.7');
$j = json_of($r);
is($r->{status}, 200, 'a second right PIN (API): 200');
is($j->{verification}, 'verified_before', '... verified_before');
is($j->{verifications}, 2, '... verifications 2');
is($j->{first_verified}, $first, '... with the first time');

# 4. The page says the same, in the brand's zone (+08:00), escaped.
$r = post_pin($t, "/verify?code=$code", $pin, '198.51.100.8');
is($r->{status}, 200, 'the page: 200');
like($r->{headers}{'content-type'}, qr{^text/html}, '... HTML');
is($r->{headers}{'cache-control'}, 'no-store', '... no-store');
my ($y, $mo, $dd, $h, $mi) = $first =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+)/;
my @lt = gmtime(Time::Local::timegm(0, $mi, $h, $dd, $mo - 1, $y) + 8 * 3600);
my $zh = sprintf '%d年%d月%d日 %02d:%02d', $lt[5] + 1900, $lt[4] + 1, $lt[3], $lt[2], $lt[1];
my $content = Encode::decode('UTF-8', $r->{content});
like($content, qr/此防伪码已被查询 3 次，首次查询时间 \Q$zh\E，如非本人查询，谨防假冒/,
     "the page: 此防伪码已被查询 3 次, first at $zh (+08:00)");
like($content, qr/checked 3 times,\s+first on \d+ \w{3} \d{4}, \d\d:\d\d\./,
     '... and in English');
unlike($content, qr/<script>alert/, '... no stored value unescaped');
# SSI's entity encoding escapes < > & " (the page quotes every attribute
# with "): a ' stays, harmless in text.
like($content, qr/正品 &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; 'q'/,
     '... the product name HTML-escaped');
unlike($content, qr/an error occurred/, '... every SSI command ran');
unlike($content, qr/<form/, '... no PIN form after a right PIN');

# 5. Lockout per address, on a code nobody else guesses: 5 wrong PINs
# answered at once, the 6th locked (with Retry-After), and then even the
# right PIN is "locked" there; another address is still checked.  New
# connections: both workers keep one count.
my @v;
for (1 .. 5) {
    push @v, json_of(post_pin($t, "/verify?code=$code2", $wrong, '203.0.113.5', %$json))->{verification};
}
is_deeply(\@v, [('wrong_pin') x 5], 'one address: 5 wrong PINs answered');
$r = post_pin($t, "/verify?code=$code2", $wrong, '203.0.113.5', %$json);
is($r->{status}, 429, 'the 6th: 429');
is(json_of($r)->{verification}, 'locked', '... locked');
is($r->{headers}{'retry-after'}, 60, '... Retry-After: 60 (the first lock)');
like(json_of($r)->{retry_at} // '', qr/Z$/, '... retry_at in ISO 8601');
$r = post_pin($t, "/verify?code=$code2", $pin2, '203.0.113.5', %$json);
is(json_of($r)->{verification}, 'locked', '... then the right PIN too is locked there, unchecked');
ok(!exists json_of($r)->{verifications} && !exists json_of($r)->{first_verified},
   '... and told neither a count nor a first time (issue 21)');
$r = post_pin($t, "/verify?code=$code2", $pin2, '203.0.113.6', %$json);
is(json_of($r)->{verification}, 'genuine', 'another address: checked (genuine)');
is(json_of($r)->{verifications}, 1, '... count 1');
$r = post_pin($t, "/verify?code=$code", $pin, '203.0.113.5', %$json);
is(json_of($r)->{verification}, 'verified_before',
   'the locked address, on another code: checked (a lock is per code)');

# 6. The ceiling: the stranger's 1,000 wrong PINs emptied the code's
# bucket (100 tokens).  An address within its free wrong PINs is still
# checked (a buyer's typo never lets strangers keep the buyer out, issue
# 21); one past them waits for the next token, longer than its own lock.
$r = post_pin($t, "/verify?code=$code", $wrong, '10.66.0.1', %$json);
is(json_of($r)->{verification}, 'wrong_pin',
   'under pressure, an address with 1 wrong PIN (the stranger\'s) is still checked');
for (1 .. 2) { post_pin($t, "/verify?code=$code", $wrong, '10.66.0.1', %$json) }
$r = post_pin($t, "/verify?code=$code", $wrong, '10.66.0.1', %$json);
is(json_of($r)->{verification}, 'wrong_pin', '... and its 5th');
$r = post_pin($t, "/verify?code=$code", $pin, '10.66.0.1', %$json);
is(json_of($r)->{verification}, 'locked', '... then it waits');
cmp_ok($r->{headers}{'retry-after'}, '>', 60,
       "... for the code's next token (Retry-After $r->{headers}{'retry-after'}), not its 60 s");
$r = post_pin($t, "/verify?code=$code", $pin, '10.99.0.1', %$json);
is(json_of($r)->{verification}, 'verified_before',
   'a buyer at a clean address is never locked out by strangers');
is(json_of($r)->{verifications}, 5, '... count 5');

# 7. The page shows the lock in the brand's zone; GET shows the form.
$r = post_pin($t, "/verify?code=$code2", $wrong, '203.0.113.5');
$content = Encode::decode('UTF-8', $r->{content});
like($content, qr/输入错误次数过多，请于 \d{4}年\d+月\d+日 \d\d:\d\d 后再试/, 'the page: locked, try again at (zh)');
like($content, qr/try again at \d+ \w{3} \d{4}, \d\d:\d\d\./, '... (en)');
$r = $t->get("/verify?code=$code");
$content = Encode::decode('UTF-8', $r->{content});
is($r->{status}, 200, 'GET: the page');
like($content, qr/<form method="post" action="\/verify\?code=$code">/, '... with the PIN form');
like($content, qr/maxlength="8"/, '... for 8 digits');
like($content, qr/SERUM-30ML.*L2612.*2026-11-05/s, '... and the product facts');
is(json_of($t->get("/verify?code=$code", $json))->{verification}, undef,
   'GET as JSON: verification null');
is(json_of($t->get("/v1/codes/$code"))->{scans}, 1000, 'no verify request counted a scan');

# 8. Strangers' guesses never made a verdict: the scan answer is unchanged.
$r = $t->get("/$code", { 'X-Forwarded-For' => '10.77.1.1' });
is($r->{status}, 302, 'the 1,001st scan still redirects: scans make no verdict');

# 9. /status counts what the PINs said, and the guard's records.
my $m = $t->get('/status')->{content};
my %pm = $m =~ /^code_router_pin_checks_total\{verification="(\w+)"\} (\d+)$/mg;
is($pm{genuine}, 2, '/status: 2 genuine (one per code)');
cmp_ok($pm{wrong_pin}, '>=', 1000, "/status: $pm{wrong_pin} wrong PINs");
cmp_ok($pm{locked}, '>=', 3, "/status: $pm{locked} locked");
like($m, qr/^code_router_pin_guard_records (\d{4,})$/m, '/status: the guard holds over 1,000 records');
my ($vt) = $m =~ /^code_router_scans_verified_total\{zone="scans"\} (\d+)$/m;
is($vt, $pm{genuine} + ($pm{verified_before} // 0),
   "/status: the ledger's $pm{genuine} genuine and "
   . ($pm{verified_before} // 0) . " verified_before committed to the "
   . "zone's store");

$t->stop;
done_testing;
