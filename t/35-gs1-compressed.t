#!/usr/bin/perl
# Compressed GS1 Digital Link URIs (GS1 Digital Link: Compression), against
# an independent implementation: GS1's compression prototype as the npm
# package digital-link.js ships it (t/oracle/gs1-compress.js) compresses
# about 300 generated links (GTIN, qualifiers of every encoding, query
# pairs, a stem); cr_gs1_parse_request (build/t/gs1-parse --request) must
# expand each to the link it came from, as the prototype reads it back.
# Then a real nginx: each compressed URI answers exactly as its
# uncompressed one (status, Location), with Link: <uncompressed>;
# rel="owl:sameAs" (a SHALL of the resolver standard) and the linkset
# anchored at the uncompressed URI; mutated compressed URIs answer 400
# exactly when the parser refuses them, never a 5xx.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use CodeRouter::Test qw(root gs1_oracle run_cmd tmpdir make_key load_store);

my ($oracle, $parse) = gs1_oracle();

sub unescape { my $s = shift; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }
# The Link headers of a response, one string (two come as a list).
sub links { my $l = $_[0]{headers}{link} // ''; ref $l ? join(', ', @$l) : $l }

# Generated links.  Values avoid what the prototype cannot write: digits
# only past 15 (it reads numbers through JavaScript doubles) or with a
# leading 0 (it drops them), and : ; < = > ? (its AI 82 pattern lacks
# them); docs/gs1.md, "Compressed links".
srand(20261203);
my @G = qw(09506000134352 06901234567892 00000095011011);
my @ai82 = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z', '-', '.', '_',
            split //, q{!%&'()*+,/});
sub pick { $_[int rand @_] }
sub value {
    my $len = 1 + int rand 20;
    my $set = pick(['0' .. '9'], ['0' .. '9', 'a' .. 'f'], ['0' .. '9', 'A' .. 'F'],
                   ['0' .. '9', 'A' .. 'Z', 'a' .. 'z', '-', '_'], \@ai82);
    my $v = join '', map { pick(@$set) } 1 .. $len;
    $v = '1' . substr($v, 1, 14) if $v =~ /^\d+\z/;
    return join '', map { /[0-9A-Za-z._-]/ ? $_ : sprintf '%%%02X', ord } split //, $v;
}
my @links;
for my $i (1 .. 300) {
    my $uri = 'https://c.brand.cn/dl/01/' . pick(@G);
    for my $ai (qw(22 10 21)) {
        $uri .= "/$ai/" . value() if rand() < 0.5;
    }
    $uri .= pick('', '', '?linkType=gs1:pip', '?linkType=linkset',
                 '?utm_source=qr', '?linkType=gs1:certificationInfo&utm_source=qr');
    push @links, $uri;
}
my $in = join '', map { "$_\n" } @links;
my ($rc, $out, $err) = run_cmd(['node', "$oracle/gs1-compress.js"], $in);
is($rc, 0, 'the prototype ran') or diag $err;
my @z = map { [split /\t/] } split /\n/, $out;
is(scalar @z, scalar @links, 'it compressed every link');
is(scalar(grep { $_->[0] eq 'error' } @z), 0, '... without an error')
    or diag join "\n", map { "$links[$_]: $z[$_][1]" } grep { $z[$_][0] eq 'error' } 0 .. $#z;

my @zpath = map { $_->[0] =~ m{^https://c\.brand\.cn(/.*)\z} ? $1 : '/' } @z;
($rc, $out, $err) = run_cmd([$parse, '--request'], join('', map { "$_\n" } @zpath));
is($rc, 0, 'gs1-parse --request ran') or diag $err;
my @ours = split /\n/, $out;
my @wrong;
for my $i (0 .. $#links) {
    my ($uri) = $ours[$i] =~ /\turi=([^\t]*)/;
    my ($want) = $links[$i] =~ m{^https://c\.brand\.cn(/.*)\z};
    my ($theirs) = ($z[$i][1] // '') =~ m{^https://c\.brand\.cn(/.*)\z};
    push @wrong, "$zpath[$i]: $ours[$i]; want $want"
        unless $ours[$i] =~ /^ok\t.*\tcompressed=1$/ && defined $uri
            && unescape($uri) eq unescape($want)
            && unescape($uri) eq unescape($theirs // '');
}
is_deeply(\@wrong, [], 'cr_gs1 expands each of ' . scalar(@links)
          . ' compressed links to the link it came from, as the prototype reads it back')
    or diag join "\n", @wrong[0 .. ($#wrong < 10 ? $#wrong : 10)];
# The first field's 8 bits: an AI (01) or an optimisation code (0A..0C).
my $b64 = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_';
my %opt;
for (grep { m{^/dl/..} } @zpath) {
    my $bits = (index($b64, substr($_, 4, 1)) << 6) | index($b64, substr($_, 5, 1));
    $opt{ sprintf '%02X', $bits >> 4 }++;
}
is_deeply([ sort keys %opt ], [ qw(01 0A 0B 0C) ], 'the first field: AI 01 and the optimisations '
          . join(', ', map { "$_ x $opt{$_}" } sort keys %opt));

# The resolver.
my $d = tmpdir();
my $db = "$d/brand.mdb";
load_store($db, ['links.csv', <<'EOF']);
gtin,lot,link_type,href,title,lang,type
09506000134352,,gs1:defaultLink,https://x.example/p,Product,,
09506000134352,,gs1:pip,https://x.example/pip,Product information,en,
06901234567892,,gs1:defaultLink,https://x.example/q,Product,,
06901234567892,,gs1:certificationInfo,https://x.example/cert,Certificate,,
EOF
my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 @{[ make_key("$d/1.key") ]};
    server {
        listen 127.0.0.1:%%PORT%%;
        server_name c.brand.cn;
        location /dl/ { code_router_gs1; }
    }
CONF
$t->start;

my (@differ, @same_as, %status);
for my $i (0 .. $#links) {
    my ($plain) = $links[$i] =~ m{^https://c\.brand\.cn(/.*)\z};
    my ($uri) = $ours[$i] =~ /\turi=([^\t]*)/;
    next unless defined $uri;
    my $a = $t->get($plain);
    my $b = $t->get($zpath[$i]);
    $status{ $a->{status} }++;
    push @differ, "$zpath[$i]: $b->{status} " . ($b->{headers}{location} // '')
                  . "; $plain: $a->{status} " . ($a->{headers}{location} // '')
        if $a->{status} != $b->{status}
           || ($a->{headers}{location} // '') ne ($b->{headers}{location} // '');
    push @same_as, $zpath[$i]
        unless links($b) =~ m{<http://c\.brand\.cn\Q$uri\E>; rel="owl:sameAs"}
            && links($a) !~ /owl:sameAs/;
}
is_deeply(\@differ, [], 'each compressed URI answers as its uncompressed one: '
          . join(', ', map { "$status{$_} x $_" } sort keys %status))
    or diag join "\n", @differ[0 .. ($#differ < 10 ? $#differ : 10)];
cmp_ok(scalar(keys %status), '>=', 2, '... more than one kind of answer');
is_deeply(\@same_as, [], '... with Link: <the uncompressed URI>; rel="owl:sameAs" (and only then)')
    or diag join "\n", @same_as[0 .. ($#same_as < 10 ? $#same_as : 10)];

# One by hand: the linkset of a compressed link, and its redirect.
($rc, $out) = run_cmd(['node', "$oracle/gs1-compress.js"],
                      "https://c.brand.cn/dl/01/09506000134352/10/L1\n");
my ($zl) = $out =~ m{^https://c\.brand\.cn(/dl/[A-Za-z0-9_-]+)\t};
my $r = $t->get("$zl?linkType=linkset");
is($r->{status}, 200, "$zl?linkType=linkset: 200");
my $j = eval { JSON::PP->new->utf8->decode($r->{content}) };
is($j->{linkset}[0]{anchor}, 'http://c.brand.cn/dl/01/09506000134352/10/L1',
   '... anchored at the uncompressed URI');
$r = $t->get("$zl/?utm_source=qr");
is($r->{status}, 302, 'with a trailing / and a query: 302');
is($r->{headers}{location}, 'https://x.example/p?utm_source=qr', '... the default link, the query passed on');
like(links($r), qr{</dl/01/09506000134352/10/L1\?linkType=linkset>; rel="linkset"},
     '... Link: the uncompressed linkset');

# Mutated compressed URIs: 400 exactly when refused, never a 5xx.
my @mut;
for my $p (@zpath[0 .. 99]) {
    my $m = $p;
    my $k = int rand 4;
    my $pos = 4 + int rand(length($m) - 4);
    if ($k == 0) { substr($m, $pos, 1) = pick('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_') }
    elsif ($k == 1) { $m = substr($m, 0, $pos) }
    elsif ($k == 2) { $m .= pick('A', 'B', 'g', '_', 'AA') }
    else { substr($m, $pos, 0) = pick('A', '9', '-') }
    push @mut, $m;
}
($rc, $out) = run_cmd([$parse, '--request'], join('', map { "$_\n" } @mut));
my @verdict = map { (split /\t/)[0] } split /\n/, $out;
my (@bad, %v);
for my $i (0 .. $#mut) {
    my $s = $t->get($mut[$i])->{status};
    $v{ $verdict[$i] }++;
    push @bad, "$mut[$i]: $s, $verdict[$i]"
        if $s >= 500 || ($s == 400) != ($verdict[$i] ne 'ok');
}
is_deeply(\@bad, [], '100 mutated compressed URIs: 400 exactly when refused ('
          . join(', ', map { "$v{$_} $_" } sort keys %v) . ')')
    or diag join "\n", @bad;
ok($v{bad_compressed}, '... some refused as bad_compressed');

$t->stop;
done_testing;
