#!/usr/bin/perl
# Monitoring: /status (code_router_status) passes
# `promtool check metrics` with two stores and two scan zones (one with
# code_router_receipts), and every
# metric the alerting rules use is in it; conf/prometheus/code-router.rules.yml
# passes `promtool check rules` and its unit tests (`promtool test rules`),
# and the unit tests catch a rule that is broken on purpose.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(root run_cmd tmpdir make_key load_store mint
                        write_file read_file);

my $promtool = '/usr/bin/promtool';
plan skip_all => "Debian's prometheus (promtool) is needed (make deps "
               . 'installs it)' unless -x $promtool;

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $camp = "campaign,name,type,url,appid,path,query,url_link,starts_at,"
         . "ends_at,before_url,after_url\nca,A,h5,https://a.example/,,,,,,,,\n";
my $batch = "batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,"
          . "production_date,region\nb1,1,1,100,verify,ca,,,,,\n";
for my $db ('one', 'two') {
    load_store("$d/$db.mdb", ["c-$db.csv", $camp], ["b-$db.csv", $batch],
               ["o-$db.csv", "kid,serial,state,campaign\n1,9,revoked,\n"]);
}
mkdir "$d/scans" or die;
chmod 0777, "$d/scans";

my $t = CodeRouter::Test::Nginx->new(http => <<"EOF");
    code_router_key 1 $key;
    code_router_pin_guard zone=pins:1m;
    code_router_scans zone=one:1m store=$d/scans/one.mdb;
    code_router_receipts one max=10;
    server {
        listen 127.0.0.1:%%PORT%%;
        code_router_db $d/one.mdb;
        code_router_scans zone=one;
        location /status { code_router_status; }
        location / { code_router \$uri; }
    }
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name two;
        code_router_db $d/two.mdb;
        code_router_scans zone=two:1m store=$d/scans/two.mdb;
        location / { code_router \$uri; }
    }
EOF
$t->start;

my $ok = mint($key, 1, 5);
(my $forged = $ok) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
for my $path ("/$ok", "/$ok", '/' . mint($key, 1, 9), '/' . mint($key, 1, 500),
              "/$forged", '/short') {
    $t->get($path);
    $t->get($path, { Host => 'two' });
}
my $status = $t->get('/status')->{content};
$t->stop;

like($status, qr/^code_router_requests_total\{status="forged"\} 2$/m,
     '/status counts the forged scans of both servers');
like($status, qr/^code_router_db_up\{db="\Q$d\E\/two\.mdb"\} 1$/m,
     '... shows the second store');
like($status, qr/^code_router_scans_total\{zone="two"\} 4$/m,
     '... and the second scan zone');
like($status, qr/^code_router_pin_checks_total\{verification="genuine"\} 0$/m,
     '... and the PIN checks');
like($status, qr/^code_router_build_info\{version="[0-9][^"]*",nginx="[0-9.]+"\} 1$/m,
     '... the version this worker runs (build_info)');
like($status, qr/^code_router_unusable_targets_total 0$/m,
     '... and no scan of an unusable target');

write_file("$d/status.txt", $status);
my ($rc, $out, $err) = run_cmd([$promtool, 'check', 'metrics'], $status);
is($rc, 0, 'promtool check metrics accepts /status');
is($out . $err, '', '... without a lint remark');

# The text format wants each metric's samples in one group after its
# HELP and TYPE; promtool does not check it.  With two stores:
sub groups_split {
    my ($text, $prefix) = @_;
    my (%seen, $cur, @split);
    for (split /\n/, $text) {
        my ($name) = /^(?:# (?:HELP|TYPE) )?(\w+)/ or next;
        next if index($name, $prefix) != 0;
        if (!defined $cur || $name ne $cur) {
            push @split, $name if $seen{$name}++;
            $cur = $name;
        }
    }
    return join ' ', @split;
}
is(groups_split($status, 'code_router_db_'), '',
   "each store metric's samples form one group");
is(groups_split($status, 'code_router_scans_'), '',
   "each scan zone metric's samples form one group");

# The check can fail: a counter without _total and without help, and a
# broken label value.
($rc, $out, $err) = run_cmd([$promtool, 'check', 'metrics'],
                            $status . "# TYPE code_router_x counter\ncode_router_x 1\n");
isnt($rc, 0, 'promtool check metrics rejects a counter without _total');
like($out . $err, qr/counter metrics should have "_total" suffix/, '... saying so');
($rc) = run_cmd([$promtool, 'check', 'metrics'],
                $status . "code_router_db_up{db=\"x} 1\n");
isnt($rc, 0, '... and a broken label value');

# Every metric a rule uses is one /status exposes.
my $dir = root() . '/conf/prometheus';
my $rules = read_file("$dir/code-router.rules.yml");
my %used = map { $_ => 1 } map { /\b(code_router_\w+)/g }
           $rules =~ /\bexpr: (.*?)\n\s+(?:for|labels):/gs;
ok(scalar keys %used >= 4, 'the rules use ' . join(', ', sort keys %used));
for my $m (sort keys %used) {
    like($status, qr/^\Q$m\E[{ ]/m, "/status exposes $m");
}

($rc, $out, $err) = run_cmd([$promtool, 'check', 'rules',
                             "$dir/code-router.rules.yml"]);
is($rc, 0, 'promtool check rules accepts the rules') or diag $out . $err;
like($out, qr/SUCCESS: 15 rules found/, '... fifteen alerts');

($rc, $out, $err) = run_cmd(['sh', '-c', "cd '$dir' && exec $promtool check "
                             . 'config prometheus.yml']);
is($rc, 0, 'promtool check config accepts the scrape example, with the '
           . 'rules') or diag $out . $err;
like($out, qr/SUCCESS: 15 rules found/, '... which it loads');

($rc, $out, $err) = run_cmd(['sh', '-c', "cd '$dir' && exec $promtool test "
                             . 'rules code-router.rules.test.yml']);
is($rc, 0, 'promtool test rules: the unit tests pass') or diag $out . $err;

# Each rule broken on purpose: its unit test must notice.
my %broken = (
    'store down without its "for"'
        => [qr/\n        for: 1m\n/, "\n"],
    'generations compared at once'
        => [qr/for: 10m/, 'for: 0m'],
    'a full zone only past 100 lost scans'
        => [qr/increase\(code_router_scans_uncounted_total\[5m\]\) > 0/,
            'increase(code_router_scans_uncounted_total[5m]) > 100'],
    'a scan store near its limit never alerts'
        => [qr/code_router_scans_store_alert == 1/,
            'code_router_scans_store_alert == 2'],
    'forged codes at a share of 0.1 % of all scans'
        => [qr/> 0\.1 \*/, '> 0.001 *'],
    'an unavailable scan store only past 10 lost scans'
        => [qr/increase\(code_router_scans_unavailable_total\[5m\]\) > 0/,
            'increase(code_router_scans_unavailable_total[5m]) > 10'],
    'back-pressure alerting at its first wait'
        => [qr/(waits_total\[5m\]\) > 0\n)        for: 10m\n/, '$1'],
    'flush errors without their "for"'
        => [qr/(flush_errors_total\[5m\]\) > 0\n)        for: 10m\n/, '$1'],
    'unusable targets only past 5 scans'
        => [qr/unusable_targets_total\[5m\]\) > 0/,
            'unusable_targets_total[5m]) > 5'],
    'versions compared at once'
        => [qr/for: 30m/, 'for: 0m'],
    'overruns: a block first seen not alerting'
        => [qr/\n +or \(code_router_overrun_scans_total\n +unless [^\n]*\n/,
            "\n"],
    'overruns only past 5 scans'
        => [qr/increase\(code_router_overrun_scans_total\[10m\]\) > 0/,
            'increase(code_router_overrun_scans_total[10m]) > 5'],
    'the scans\' ledger failing without its "for"'
        => [qr/(ledger_errors_total\[5m\]\) > 0\n)        for: 5m\n/, '$1'],
    'a diverted receipt only past 5'
        => [qr/increase\(code_router_receipts_total\{result="diverted"\}\[10m\]\) > 0/,
            'increase(code_router_receipts_total{result="diverted"}[10m]) > 5'],
    'a diverted receipt first seen not alerting'
        => [qr/\n +or \(code_router_receipts_total\{result="diverted"\} > 0\n +unless [^\n]*\n/,
            "\n"],
    'a full receipts table only past 10 refused'
        => [qr/increase\(code_router_receipts_total\{result="full"\}\[5m\]\) > 0/,
            'increase(code_router_receipts_total{result="full"}[5m]) > 10'],
    'the ledger only past 10 unavailable right PINs'
        => [qr/increase\(code_router_ledger_unavailable_total\[5m\]\) > 0/,
            'increase(code_router_ledger_unavailable_total[5m]) > 10'],
);
mkdir "$d/broken" or die;
write_file("$d/broken/code-router.rules.test.yml",
           read_file("$dir/code-router.rules.test.yml"));
for my $name (sort keys %broken) {
    my ($re, $with) = @{ $broken{$name} };
    my $text = $rules;
    ok($text =~ s/$re/my $w = $with; my $k = $1 \/\/ ''; $w =~ s{\$1}{$k}; $w/e,
       "break: $name");
    write_file("$d/broken/code-router.rules.yml", $text);
    ($rc, $out, $err) = run_cmd(['sh', '-c', "cd '$d/broken' && exec "
                                 . "$promtool test rules code-router.rules.test.yml"]);
    isnt($rc, 0, "... the unit tests fail") or diag $text;
    like($out . $err, qr/FAILED/, '... saying FAILED');
}

done_testing;
