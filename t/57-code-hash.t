#!/usr/bin/perl
# $code_router_code, the canonical spelling of a code,
# so a front nginx can hold one code on one edge node.  A code is accepted
# in very many spellings (case, I/L for 1, O for 0, percent-encoding, any
# query string, any path before it); every one of them gives one
# $code_router_code, and "hash $code_router_code consistent;" in the front
# nginx's upstream (docs/scaling.md, which needs no key and no store)
# sends them all to one node, where "hash $request_uri consistent;" spread
# them.  In the router itself the variable is set for every code that
# decodes (forged ones too) and kept through error_page.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(tmpdir make_key load_store mint read_file);

my $d = tmpdir();
my $key = make_key("$d/1.key");

# A code with a 1 and a 0 in it, so the aliases are tried too.
my $c;
for my $serial (1 .. 200) {
    $c = mint($key, 1, $serial);
    last if $c =~ /1/ && $c =~ /0/;
}
like($c, qr/^[0-9A-HJKMNP-TV-Z]{18}$/, "the code $c");

# Every spelling nginx and the router accept for $c.
my @spell;
{
    my $n = 0;
    my $mixed = sub {
        my ($s) = @_;
        return join '', map { $n++ % 2 ? lc $_ : uc $_ } split //, $s;
    };
    my $alias = sub {
        my ($s, $one, $zero) = @_;
        $s =~ s/1/$one/g;
        $s =~ s/0/$zero/g;
        return $s;
    };
    my @bodies = ($c, lc $c, $mixed->($c), $mixed->(lc $c));
    for my $one (qw(I i L l)) {
        for my $zero (qw(O o)) {
            push @bodies, $alias->($c, $one, $zero),
                          $mixed->($alias->(lc $c, $one, $zero));
        }
    }
    my @enc = (join('', map { sprintf '%%%02X', ord } split //, $c),
               join('', map { sprintf '%%%02x', ord } split //, lc $c),
               substr($c, 0, 5) . sprintf('%%%02X', ord substr($c, 5, 1))
               . substr($c, 6));
    for my $b (@bodies, @enc) {
        push @spell, "/$b", "/$b?x=1", "/$b?utm_source=wechat&from=timeline",
                     "/$b?", "/01/06901234567892/21/$b";
    }
}
cmp_ok(scalar(@spell), '>=', 100, scalar(@spell) . ' spellings');

# A front nginx: four edge nodes (servers of its own here), one upstream
# hashed on $code_router_code, one on $request_uri for comparison.
my @ports = map { CodeRouter::Test::free_port() } 1 .. 4;
my $servers = join '', map { "        server 127.0.0.1:$_;\n" } @ports;
my $edges = join '', map { <<"EDGE" } @ports;
    server {
        listen 127.0.0.1:$_;
        location / { return 200 "node $_\\n"; }
    }
EDGE

my $front = CodeRouter::Test::Nginx->new(http => <<"CONF");
    upstream by_code {
        hash \$code_router_code consistent;
$servers    }
    upstream by_uri {
        hash \$request_uri consistent;
$servers    }
    server {
        listen 127.0.0.1:%%PORT%%;
        location / {
            proxy_pass http://by_code;
            add_header X-Code \$code_router_code always;
        }
        location /by-uri/ {
            proxy_pass http://by_uri/;
        }
    }
$edges
CONF
$front->start;

my (%codes, %nodes, %uri_nodes);
for my $p (@spell) {
    my $r = $front->get($p);
    $codes{ $r->{headers}{'x-code'} // '(none)' }++;
    $nodes{ $r->{content} // '(none)' }++;
    $uri_nodes{ $front->get("/by-uri$p")->{content} // '(none)' }++;
}
is_deeply([keys %codes], [$c],
          'every spelling: one $code_router_code, the canonical one')
    or diag explain \%codes;
is(scalar(keys %nodes), 1, 'hash $code_router_code: every spelling on one '
   . 'node') or diag explain \%nodes;
cmp_ok(scalar(keys %uri_nodes), '>', 1, 'hash $request_uri: the spellings '
       . 'spread over ' . scalar(keys %uri_nodes) . ' nodes');

# Different codes still spread over the nodes.
my %spread;
for my $serial (1000 .. 1039) {
    $spread{ $front->get('/' . mint($key, 1, $serial))->{content} }++;
}
cmp_ok(scalar(keys %spread), '>=', 3, '40 codes on ' . scalar(keys %spread)
       . ' of 4 nodes');

# Not a code: no value (and nginx's hash then falls back to round robin).
for my $p ('/', '/index.html', '/' . substr($c, 1), '/' . $c . 'Q',
           '/' . substr($c, 0, 17) . 'U')
{
    my $r = $front->get($p);
    ok(!defined $r->{headers}{'x-code'}, "\"$p\": no \$code_router_code");
    is($r->{status}, 200, "\"$p\": still proxied");
}
$front->stop;

# The router: set for every code that decodes, kept through error_page.
my $db = "$d/brand.mdb";
load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url,appid,path,query,starts_at,ends_at
h5,H5,h5,https://shop.example/p,,,,2020-01-01T00:00+08:00,
CSV
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
b-h5,1,1,100,verify,h5,,,,,
CSV
my $other = make_key("$d/2.key");
my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    log_format codes '\$code_router_status \$code_router_code';
    server {
        listen 127.0.0.1:%%PORT%%;
        access_log %%PREFIX%%/logs/codes.log codes;
        location ~ "^/(?<code>[^/]+)\$" {
            code_router \$code;
            add_header X-Code \$code_router_code always;
            error_page 404 410 503 /fallback;
        }
        location = /fallback {
            internal;
            return 404 "\$code_router_status \$code_router_code\\n";
        }
    }
CONF
$t->start;
my $r = $t->get('/' . lc $c);
is($r->{status}, 302, 'router: a genuine code in lower case, 302');
is($r->{headers}{'x-code'}, $c, '... $code_router_code canonical');
my $forged = mint($other, 1, 5);
(my $forged_lc = lc $forged) =~ tr/0/o/;
$r = $t->get("/$forged_lc");
is($r->{content}, "forged $forged\n",
   'router: a forged code, through error_page: status and canonical code');
$r = $t->get('/0000');
is($r->{content}, "malformed \n", 'router: malformed: no code');
$t->stop;
my @log = split /\n/, read_file($t->prefix . '/logs/codes.log');
is_deeply(\@log, ["ok $c", "forged $forged", 'malformed -'],
          'the access log sees the canonical code');

done_testing;
