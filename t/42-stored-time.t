#!/usr/bin/perl
# A campaign time written past the loader (build/t/raw-put)
# that the loader could never have stored -- ends_at INT64_MAX at +14:00,
# which overflowed in cr_format_time -- is a bad record when decoded: the
# API and the router answer 503 issued as for any unreadable record,
# and `code-router dump` refuses it; nothing formats it.  A time at the
# edge of the loader's range still shows as loaded.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(root run_cmd tmpdir make_key load_store mint cli);

my $RAW_PUT = root() . '/build/t/raw-put';
plan skip_all => "$RAW_PUT not built (make unit)" unless -x $RAW_PUT;

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';

load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url,starts_at,ends_at
edge,Edge,h5,https://shop.example/e,1970-01-01T00:00:00+14:59,9999-12-31T23:59:59-14:59
past,Past,h5,https://shop.example/p,,
CSV
batch,kid,serial_from,serial_to,scene,campaign
b-edge,1,1,10,verify,edge
b-past,1,11,20,verify,past
CSV

my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        add_header X-CR-Status "\$code_router_status" always;
        location /v1/codes/ {
            code_router_api;
        }
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            error_page 404 410 503 /.cr/fallback.html;
        }
        location /.cr/ {
            internal;
            alias $html/;
            ssi on;
        }
    }
CONF
$t->start;

sub api {
    my ($code) = @_;
    my $r = $t->get("/v1/codes/$code");
    my $j = eval { JSON::PP->new->utf8->decode($r->{content}) } // {};
    return ($r, $j);
}

my $edge = mint($key, 1, 1);
my $past = mint($key, 1, 11);

my ($r, $j) = api($edge);
is($r->{status}, 200, 'the edges of the loader\'s range: 200');
is($j->{campaign}{starts_at}, '1970-01-01T00:00:00+14:59', '... starts_at as loaded');
is($j->{campaign}{ends_at}, '9999-12-31T23:59:59-14:59', '... ends_at as loaded');

# Written past the loader: ends_at INT64_MAX at +14:00, and variants.
my @bad = (
    ['ends_at INT64_MAX at +14:00', 'ends_at=9223372036854775807', 'ends_tz=840'],
    ['starts_at INT64_MIN+1 at -14:00', 'starts_at=-9223372036854775807', 'starts_tz=-840'],
    ['ends_at one second past 9999-12-31T23:59:59-14:59', 'ends_at=253402354740', 'ends_tz=-899'],
    ['a zone of +15:00', 'ends_at=1780272000', 'ends_tz=900'],
);
for my $b (@bad) {
    my ($what, @fields) = @$b;
    my ($rc, undef, $err) = run_cmd([$RAW_PUT, $db, 'campaign', 'id=past', 'name=Past',
                                     'type=h5', 'url=https://shop.example/p', @fields]);
    is($rc, 0, "raw-put $what") or diag $err;

    ($r, $j) = api($past);
    is($r->{status}, 503, "API, $what: 503");
    is($j->{status}, 'issued', '... status issued (genuine, details unreadable)')
        or diag $r->{content};
    unlike($r->{content}, qr/92233720368547758|ends_at|starts_at/, '... no time in the body');

    $r = $t->get("/$past");
    ok($r->{status} == 503 && ($r->{headers}{'x-cr-status'} // '') eq 'issued',
       "router, $what: 503 issued")
        or diag "$r->{status} " . ($r->{headers}{'x-cr-status'} // '');

    ($rc, my $out, $err) = run_cmd([cli(), 'dump', '--db', $db]);
    isnt($rc, 0, "dump, $what: refused");
    like($err, qr/a record cannot be read/, '... "a record cannot be read"') or diag $err;
    unlike($out, qr/92233720368547758/, '... nothing formatted');
}

# The other campaign is unaffected.
($r, $j) = api($edge);
is($r->{status}, 200, 'the good campaign still answers 200');
like($t->error_log, qr/campaign "past" of key id 1 serial 11 is unreadable/,
     'the error log names the unreadable campaign');

# The loader repairs it: a good row overwrites the bad record.
my ($rc, undef, $err) = run_cmd([cli(), 'load', '--db', $db,
    CodeRouter::Test::write_file("$d/fix.csv", "campaign,type,url,ends_at\n"
                                 . "past,h5,https://shop.example/p,2030-01-01T00:00:00+08:00\n")]);
is($rc, 0, 'the loader overwrites the bad record') or diag $err;
($r, $j) = api($past);
is($j->{campaign}{ends_at}, '2030-01-01T00:00:00+08:00', '... which then shows as loaded');

$t->stop;
done_testing;
