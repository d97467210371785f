package CodeRouter::Verify;
# What the PIN tests (t/58, t/59, t/75) share: a store with a verify
# batch, a configuration with code_router_verify behind realip (so a test
# chooses the client address with X-Forwarded-For), and a POST of a PIN.
use strict;
use warnings;
use Exporter 'import';
use HTTP::Tiny;
use JSON::PP ();
use CodeRouter::Test qw(run_cmd cli load_store tmpdir make_key);

our @EXPORT_OK = qw(verify_setup verify_conf pin_of post_pin json_of
                    ledger_node);

# A directory with a key (1.key), the store below (brand.mdb) and a scans/
# directory the workers can write: returns (dir, key path).
sub verify_setup {
    my $d = tmpdir();
    my $key = make_key("$d/1.key");
    mkdir "$d/scans";
    chmod 0777, "$d/scans";
    verify_store("$d/brand.mdb");
    return ($d, $key);
}

# The brand's store: serials 1..1000 in a verify batch whose campaign
# name holds HTML (the page must escape it).
sub verify_store {
    my ($db) = @_;
    load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,url
verify-page,"正品 <script>alert(""x"")</script> & 'q'",h5,https://c.example/verify
CSV
batch,kid,serial_from,serial_to,scene,campaign,sku,gtin,lot,production_date,region
roll-v,1,1,1000,verify,verify-page,SERUM-30ML,6901234567892,L2612,2026-11-05,
CSV
}

# An http block: the router (scans), the verify page, the API; $extra goes
# at its end (after the default server).
sub verify_conf {
    my (%o) = @_;
    my $d = $o{dir};
    my $extra = $o{extra} // '';
    return <<"CONF";
    code_router_db $d/brand.mdb;
    code_router_key 1 $o{key};
    code_router_scans zone=scans:1m store=$d/scans/scans.mdb;
    code_router_pin_guard zone=pins:1m;
    code_router_time_zone +08:00;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    server {
        listen 127.0.0.1:%%PORT%%;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            error_page 404 410 /.code-router/fallback.html;
        }
        location = /verify {
            code_router_verify \$arg_code;
            code_router_verify_page /.code-router/verify.html;
        }
        location /.code-router/ {
            internal;
            alias %%ROOT%%/conf/html/;
            ssi on;
            add_header Cache-Control "no-store" always;
        }
        location /v1/codes/ {
            code_router_api;
        }
        location = /status {
            code_router_status;
        }
    }
$extra
CONF
}

# Node $n of a cluster on the ledger $ci (t/93, t/96): its own scan
# store (scans$n/) and guard zone, 2 workers, a "ledger" pool of 4
# threads.  Not started.
sub ledger_node {
    my ($d, $key, $ci, $n) = @_;
    mkdir "$d/scans$n";
    chmod 0777, "$d/scans$n";
    my $conf = verify_conf(dir => $d, key => $key);
    $conf =~ s{store=\S+/scans/scans\.mdb;}{store=$d/scans$n/scans.mdb;};
    $conf = qq{    code_router_ledger "$ci" timeout=1s thread_pool=ledger;\n$conf};
    return CodeRouter::Test::Nginx->new(workers => 2, http => $conf,
        main => 'thread_pool ledger threads=4;');
}

# The PIN of (kid, serial) as code-router mint --pin prints it.
sub pin_of {
    my ($key, $kid, $serial, $digits) = @_;
    my ($rc, $out, $err) = run_cmd([cli(), 'mint', '--key', $key, '--kid',
        $kid, '--from', $serial, '--count', 1, '--format', 'csv', '--pin',
        ($digits ? ('--pin-digits', $digits) : ())]);
    die "mint --pin: $err" if $rc;
    my @f = split /,/, (split /\n/, $out)[-1];
    return $f[-1];
}

# POST pin=$pin to $path from client address $addr; a new connection each
# time (two workers share the requests).  %h: more headers.
sub post_pin {
    my ($t, $path, $pin, $addr, %h) = @_;
    my $http = HTTP::Tiny->new(max_redirect => 0, keep_alive => 0,
                               timeout => 10);
    return $http->request('POST', $t->url($path), {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                     'X-Forwarded-For' => $addr, %h },
        content => "pin=$pin" });
}

sub json_of {
    my ($r) = @_;
    return eval { JSON::PP->new->utf8->decode($r->{content}) } // {};
}

1;
