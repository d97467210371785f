#!/usr/bin/perl
# The mini-program interstitial in a real browser (Debian's headless
# Chromium): its script reads the weixin:// URL back from the DOM (the
# markup holds it only HTML-escaped) and navigates to it, and the tap
# button is there for browsers that block the jump.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(root run_cmd tmpdir make_key load_store mint);

plan skip_all => 'Debian chromium and node are needed (make deps installs them)'
    unless -x '/usr/bin/chromium' && -x '/usr/bin/node';

my $d = tmpdir();
my $key = make_key("$d/1.key");
my $db = "$d/brand.mdb";
my $html = root() . '/conf/html';
load_store($db, ['c.csv', <<'CSV'], ['b.csv', <<'CSV']);
campaign,name,type,appid,path,query
mp,"春季抽奖 <b>&""Spring""</b>",miniprogram,wx0123456789abcdef,pages/lottery/index,a=1&b=中
CSV
batch,kid,serial_from,serial_to,scene,campaign
b,1,1,100,marketing,mp
CSV

my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 $key;
    server {
        listen 127.0.0.1:%%PORT%%;
        location ~ "^/(?<code>[0-9A-Za-z]{16,20})\$" {
            code_router \$code;
            code_router_interstitial /.cr/open.html;
        }
        location /.cr/ { internal; alias $html/; ssi on; }
    }
CONF
$t->start;
my $code = mint($key, 1, 42);
my $want = 'weixin://dl/business/?appid=wx0123456789abcdef&path=pages%2Flottery%2Findex'
         . "&query=a%3D1%26b%3D%E4%B8%AD%26code%3D$code&env_version=release";

my $png = root() . '/build/t/interstitial.png';
mkdir root() . '/build/t';
unlink $png;
my ($rc, $out, $err) = run_cmd(['node', '--experimental-websocket', '--no-warnings',
                                "$FindBin::Bin/lib/cdp-page.js", $t->url("/$code"),
                                $png, "$d/profile"]);
is($rc, 0, 'chromium loaded the interstitial') or diag "$out$err";
# Bytes in, bytes out: the expectations below are UTF-8 bytes too.
my $res = eval { JSON::PP->new->utf8(0)->decode($out) } // {};
my @weixin = grep { $_->{url} =~ /^weixin:/ } @{ $res->{navigations} // [] };
is(scalar @weixin, 1, 'the page tried to navigate to weixin://, once');
is($weixin[0]{url}, $want, '... to the exact URL Scheme, read back from the DOM');
is($weixin[0]{reason}, 'scriptInitiated', '... by its script');
is($res->{page}{href}, $want, 'the tap button links to the same URL');
ok($res->{page}{visible}, '... and is visible');
like($res->{page}{button}, qr/Open WeChat/, '... and says what it does');
is($res->{page}{elementsInH1}, 0, 'the campaign name is text, not markup');
like($res->{page}{h1}, qr/^春季抽奖 &lt;b&gt;&amp;"Spring"&lt;\/b&gt;$/,
     '... shown as written (HTML-escaped by SSI)');
ok(-s $png, "a screenshot to look at: $png");

$t->stop;
done_testing;
