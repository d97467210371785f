#!/usr/bin/perl
# code_router_fast_request_id: nginx's $request_id from the worker's own
# ChaCha20 stream (cr_rand) instead of OpenSSL's RAND_bytes.  The same
# value everywhere in a request (the response's header and body, the scan
# record), 32 lower-case hexadecimal digits, none repeated over thousands
# of requests to two workers, the digits evenly spread; after a reload
# without the directive (nginx's generator again) and with it.
# Its arguments and context: t/98, with code_router_fast_user_agent's.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP ();
use Time::HiRes qw(sleep);
use CodeRouter::Test qw(tmpdir make_key load_store mint read_file);

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,type,url
h5,h5,https://shop.example/p
CSV
batch,kid,serial_from,serial_to,scene,campaign
b1,1,1,5000,marketing,h5
CSV

my $server = <<"CONF";
    log_format scan escape=none '{\$code_router_scan}';
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location /id {
            add_header X-Id \$request_id;
            return 200 "\$request_id\\n";
        }
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            access_log %%PREFIX%%/logs/scan.log scan;
            add_header X-Id \$request_id;
            code_router \$code;
        }
    }
CONF
my $t = CodeRouter::Test::Nginx->new(
    workers => 2, http => "    code_router_fast_request_id on;\n$server")->start;

# $n requests on new connections (both workers answer): the ids, each
# checked against its header.
sub ids {
    my ($n) = @_;
    my (@ids, $bad);
    for (1 .. $n) {
        my $r = HTTP::Tiny->new(keep_alive => 0)->get($t->url('/id'));
        my $id = $r->{content} // '';
        chomp $id;
        $bad++ unless $r->{status} == 200 && $id =~ /^[0-9a-f]{32}$/
                      && ($r->{headers}{'x-id'} // '') eq $id;
        push @ids, $id;
    }
    return ($bad // 0, @ids);
}

# $even: the digits evenly spread, for ours; not for nginx's own, which
# without OpenSSL (the static test build) prints four 31-bit random()s:
# every eighth digit below 8.
sub check {
    my ($what, $n, $even) = @_;
    my ($bad, @ids) = ids($n);
    is($bad, 0, "$what: $n ids of 32 lower-case hexadecimal digits, the header's the same");
    my %seen;
    is(scalar(grep { $seen{$_}++ } @ids), 0, "$what: none repeated");
    my %digit;
    $digit{$_}++ for map { split // } @ids;
    my $each = 32 * $n / 16;
    my @off = grep { abs(($digit{$_} // 0) - $each) > 0.1 * $each } 0 .. 9, 'a' .. 'f';
    is("@off", '', "$what: each digit $each times within 10 %") if $even;
}

check('with the directive', 2000, 1);

# The scan record carries the same id as the response.
my $http = HTTP::Tiny->new(max_redirect => 0);
my %sent;
for my $serial (1 .. 20) {
    my $r = $http->get($t->url('/' . mint($key, 1, $serial)));
    $sent{ $r->{headers}{'x-id'} // '' } = $r->{status};
}
sleep 0.3;
my @rec = map { JSON::PP->new->decode($_) } split /\n/, read_file($t->prefix . '/logs/scan.log');
is(scalar(grep { exists $sent{ $_->{request_id} } } @rec), 20,
   'the scan record\'s request_id is the response\'s, 20 of 20');
is(scalar(grep { $_ == 302 } values %sent), 20, '... and the scans were answered (302)');

# Reloads: without the directive (nginx's RAND_bytes), with it again.
$t->{http} = $server;
$t->reload;
check('after a reload without it', 500, 0);
$t->{http} = "    code_router_fast_request_id on;\n$server";
$t->reload;
check('after a reload with it', 500, 1);
$t->stop;

done_testing();
