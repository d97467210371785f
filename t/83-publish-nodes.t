#!/usr/bin/perl
# Many edges: three nginx instances on loopback, each
# with its own edge directory (2755, workers as nobody:nogroup), under a
# client loop, while a master store (written by the loader as daemon) is
# re-bound, revoked and un-revoked and published to all three 20 times
# (`code-router publish`, as daemon).  Every response must be right for
# the generation it says it was routed by (X-Generation), no request may
# fail, and every node must serve each new generation (/status,
# code_router_db_generation) within 1 s of its publish.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use HTTP::Tiny;
use Time::HiRes qw(sleep time);
use CodeRouter::Users qw(need_users as_loader store_dir $LOADER
                         $WORKER $WGROUP);
use CodeRouter::Test qw(cli run_cmd tmpdir make_key write_file mint slow);

need_users();

my $ROUNDS = 20;
my $NODES = 3;
my $d = tmpdir();
my $key = make_key("$d/1.key");

my $master = store_dir("$d/master") . '/brand.mdb';

# The codes the clients scan: batch b1 (re-bound each round), b2 (fixed),
# 10..13 (one revoked per round), 20 (an override re-bound each round),
# 250 (unbound).
my @serials = (5, 150, 10, 11, 12, 13, 20, 250);
my %code = map { $_ => mint($key, 1, $_) } @serials;
my %serial_of = reverse %code;

# The model: what each serial answers in the state a load leaves.
my %state = (b1 => 'ca', revoked => {}, o20 => 'cb');
my %expect;                             # generation -> serial -> answer

sub answer {
    my ($s) = @_;
    return '410' if $state{revoked}{$s};
    return "302 $state{o20}" if $s == 20;
    return "302 $state{b1}" if $s >= 1 && $s <= 100;
    return '302 cb' if $s >= 101 && $s <= 200;
    return '404';
}

sub load_round {
    my ($k) = @_;
    my $f = "$d/round$k";
    my @files;
    if ($k == 0) {
        push @files, write_file("$f-c.csv", <<'EOF', 0644);
campaign,name,type,url,appid,path,query,url_link,starts_at,ends_at,before_url,after_url
ca,A,h5,https://a.example/,,,,,,,,
cb,B,h5,https://b.example/,,,,,,,,
EOF
    }
    $state{b1} = $k % 2 ? 'cb' : 'ca';
    $state{o20} = $k % 3 ? 'ca' : 'cb';
    my $rev = 10 + $k % 4;
    my $unrev = 10 + ($k + 3) % 4;
    push @files, write_file("$f-b.csv", <<"EOF", 0644);
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b1,1,1,100,verify,$state{b1},,,,,
b2,1,101,200,verify,cb,,,,,
EOF
    my $codes = "kid,serial,state,campaign,delete\n1,$rev,revoked,,\n"
              . "1,20,campaign,$state{o20},\n";
    $codes .= "1,$unrev,revoked,,yes\n" if $k > 0;
    push @files, write_file("$f-o.csv", $codes, 0644);
    $state{revoked} = { $rev => 1 };
    my ($rc, $out, $err) = as_loader(cli(), 'load', '--db', $master, @files);
    die "load round $k: $err" if $rc;
    my ($gen) = $out =~ /^committed generation (\d+) /m or die "load: $out";
    $expect{$gen} = { map { $_ => answer($_) } @serials };
    return $gen;
}

my @edges = map { store_dir("$d/edge$_") . '/brand.mdb' } 1 .. $NODES;

sub publish {
    my ($i) = @_;
    my ($rc, $out, $err) = as_loader(cli(), 'publish', '--db', $master,
                                     '--to', $edges[$i]);
    die "publish to node $i: $err" if $rc;
    return time;
}

my $gen = load_round(0);
publish($_) for 0 .. $NODES - 1;

my @nodes;
for my $i (0 .. $NODES - 1) {
    my $t = CodeRouter::Test::Nginx->new(main => "user $WORKER $WGROUP;",
                                         http => <<"EOF");
    code_router_db $edges[$i];
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /status { code_router_status; }
        location / {
            code_router \$uri;
            add_header X-Generation \$code_router_generation always;
        }
    }
EOF
    $t->start;
    push @nodes, $t;
}

# The node's generation as its /status says.
my $http = HTTP::Tiny->new(timeout => 5 * slow(), keep_alive => 1);
sub node_generation {
    my ($i) = @_;
    my $r = $http->get($nodes[$i]->url('/status'));
    return $r->{content} =~ /^code_router_db_generation\{db="[^"]*"\} (\d+)$/m
        ? $1 : -1;
}
is(node_generation($_), $gen, "node $_ serves generation $gen at start")
    for 0 .. $NODES - 1;

# The client loop: one process, every code on every node in turn, on
# keep-alive connections; a line per response.
my $log = "$d/clients.log";
my $stop = "$d/stop";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    my @ua = map { HTTP::Tiny->new(max_redirect => 0, keep_alive => 1,
                                   timeout => 5 * slow()) } @nodes;
    open my $fh, '>', $log or POSIX::_exit(1);
    my $i = 0;
    my $end = time + 120 * slow();
    while (!-e $stop && time < $end) {
        my $n = $i % $NODES;
        my $s = $serials[int($i / $NODES) % @serials];
        $i++;
        my $r = $ua[$n]->get($nodes[$n]->url("/$code{$s}"));
        my $g = $r->{headers}{'x-generation'} // '-';
        my ($camp) = ($r->{headers}{location} // '') =~ /[?&]campaign=(\w+)/;
        my $extra = $r->{status} == 599 ? " $r->{content}" : '';
        $extra =~ s/\s+/ /g;
        print $fh "$n $g $s $r->{status}", ($camp ? " $camp" : ''), "$extra\n";
    }
    close $fh;
    POSIX::_exit(0);
}

my @lag;                                # seconds from publish to serving
my $t0 = time;
for my $k (1 .. $ROUNDS) {
    $gen = load_round($k);
    for my $i (0 .. $NODES - 1) {
        my $published = publish($i);
        my $deadline = $published + 5 * slow();
        while (node_generation($i) != $gen && time < $deadline) {
            sleep 0.005;
        }
        my $seen = time;
        if ($seen >= $deadline) {
            fail("round $k: node $i never served generation $gen");
            next;
        }
        push @lag, $seen - $published;
    }
    sleep 0.05;                         # requests on the new generation
}
my $elapsed = time - $t0;

write_file($stop, '');
waitpid $pid, 0;

my ($sent, $failed, $wrong, %per_gen, @bad) = (0, 0, 0);
for my $line (split /\n/, CodeRouter::Test::read_file($log)) {
    $sent++;
    my ($n, $g, $s, $status, $camp) = split / /, $line;
    if ($status !~ /^(302|404|410)$/) {
        $failed++;
        push @bad, $line;
        next;
    }
    my $got = $status . ($status eq '302' ? ' ' . ($camp // '?') : '');
    if (!exists $expect{$g} || $expect{$g}{$s} ne $got) {
        $wrong++;
        push @bad, "$line (expected " . ($expect{$g}{$s} // 'no such generation') . ')';
        next;
    }
    $per_gen{$g}++;
}
my ($worst) = sort { $b <=> $a } @lag;

my $mean = 0;
$mean += $_ / @lag for @lag;
diag sprintf('%d nodes, %d publishes each, %.1f s: %d requests, %d failed, '
             . '%d wrong, %d generations seen by clients; publish to '
             . 'serving: worst %.3f s, mean %.3f s (%d measured)', $NODES,
             $ROUNDS, $elapsed, $sent, $failed, $wrong, scalar keys %per_gen,
             $worst // -1, $mean, scalar @lag);
cmp_ok($sent, '>', 1000, 'the clients sent requests all along');
is($failed, 0, 'no request failed') or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
is($wrong, 0, 'no wrong answer for the generation a response was routed by')
    or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
is(scalar @lag, $NODES * $ROUNDS, 'every publish was served by its node');
cmp_ok($worst, '<=', 1.0 * slow(), 'each node served the new generation '
       . 'within 1 s of its publish');
cmp_ok(scalar keys %per_gen, '>=', $ROUNDS, 'clients were answered from '
       . 'the new generations');

for my $i (0 .. $NODES - 1) {
    my @v = map { s{.*/}{}r } glob("$edges[$i].v*");
    is(scalar @v, 6, "node $i keeps 3 versions and their lock files (--keep "
                     . 'default)') or diag "@v";
    $nodes[$i]->stop;
}

done_testing;
