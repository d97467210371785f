#!/usr/bin/perl
# cr_gs1 against an independent judge: digital-link.js (npm, locked in
# t/oracle/package-lock.json, installed by make unit) decides valid or
# invalid for the transcribed corpus t/oracle/gs1-corpus.txt and for
# about a thousand URIs generated here (valid links and each way to break
# one); cr_gs1 (build/t/gs1-parse) must agree on every one, except the
# deliberate differences below (docs/gs1.md, "Deliberate differences"),
# each of which the corpus shows at least once.  Then a real nginx with
# code_router_gs1 gets each URI's path and query: it answers 400 (bad_uri)
# exactly when cr_gs1 refuses (one trailing '/' tolerated), so the
# resolver agrees with the oracle too.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use CodeRouter::Test qw(root gs1_oracle run_cmd read_file tmpdir make_key load_store);

my ($oracle, $parse) = gs1_oracle();

# Each difference: a name, which URIs it covers, and who says valid.
my @differences = (
    [ 'a double quote: percent-encoded (%22) here, raw in the grammar',
      sub { $_[0] =~ /"|%22/i } ],
    [ 'an upper-case scheme (RFC 3986: case-insensitive; QR alphanumeric)',
      sub { $_[0] =~ m{^https?://}i && $_[0] !~ m{^https?://} } ],
    [ 'AI data attributes in the query are passed on, not validated',
      sub { $_[0] =~ /[?&;]\d+=/ } ],
    [ 'only the GTIN (01) and SSCC (00) keys: other primary keys are not resolved',
      sub { $_[0] !~ m{^[a-z]+://[^/]*(?:/[^/?]+)*?/0[01]/}i } ],
);

# The generated URIs: valid links, then each mutation; srand fixes them.
srand(20261130);
my @ai82 = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z', '-', '.', '_',
            split //, q{!%&'()*+,/:;<=>?});
sub pick { $_[int rand @_] }
sub enc_char {
    my ($c) = @_;
    return $c if $c =~ /[0-9A-Za-z._-]/;
    my $h = sprintf '%%%02X', ord $c;
    return rand() < 0.2 ? lc $h : $h;
}
sub value {
    my ($len) = @_;
    return join '', map { enc_char(pick(@ai82)) } 1 .. $len;
}
sub gtin14 {
    my @d = map { int rand 10 } 1 .. 13;
    $d[0] = 0 if rand() < 0.7;                   # mostly GTIN-13 padded
    my $s = 0;
    for my $i (0 .. 12) { $s += $d[12 - $i] * ($i % 2 ? 1 : 3) }
    return join('', @d) . ((10 - $s % 10) % 10);
}
sub link_parts {
    my @stem = map { join '', map { pick('a' .. 'z') } 1 .. 1 + int rand 5 }
               1 .. (rand() < 0.3 ? 1 + int rand 2 : 0);
    my @q;
    for my $ai (qw(22 10 21)) {
        push @q, [$ai, value(1 + int rand 20)] if rand() < 0.5;
    }
    my $query = pick('', '', '?linkType=gs1:pip', '?linkType=gs1%3Apip',
                     '?utm_source=qr&linkType=linkset', '?a=b;c=d');
    return (\@stem, gtin14(), \@q, $query);
}
sub join_uri {
    my ($stem, $gtin, $q, $query) = @_;
    return 'https://example.com' . join('', map { "/$_" } @$stem)
         . "/01/$gtin" . join('', map { "/$_->[0]/$_->[1]" } @$q) . $query;
}
my @mutations = (
    sub { $_[1] =~ s/(\d)$/($1 + 1 + int rand 9) % 10/e },        # check
    sub { $_[1] =~ s/^0// },                                      # GTIN-13
    sub { @{$_[2]} = reverse @{$_[2]} if @{$_[2]} > 1 },          # order
    sub { push @{$_[2]}, [$_[2][0][0], 'X'] if @{$_[2]} },        # repeat
    sub { push @{$_[2]}, ['10', value(21)]; @{$_[2]} = grep { $_->[0] ne '21' } @{$_[2]} },
    sub { $_[2][-1][1] = '' if @{$_[2]} },                        # empty
    sub { $_[2][-1][1] .= pick(split //, q{!$&'()*+,;=:@~}) if @{$_[2]} },
    sub { $_[2][-1][1] .= pick('%41', '%2D', '%5F', '%7E', '%30') if @{$_[2]} },
    sub { $_[2][-1][1] .= pick('%G1', '%2', '%') if @{$_[2]} },
    sub { $_[3] = '/' . $_[3] },                                  # trailing /
    sub { unshift @{$_[0]}, '' },                                 # //
    sub { push @{$_[2]}, [pick('11', '17', '235', '99', '8003'), 'X'] },
    sub { $_[3] = pick('?', '?linkType', '?=x', '?a=%zz', '?a=b#c') },
    sub { $_[2][-1][1] = value(20) if @{$_[2]} },                 # 20: fine
);
my @generated;
for my $i (1 .. 1000) {
    my @p = link_parts();
    $mutations[int rand @mutations]->(@p) if rand() < 0.65;
    push @generated, join_uri(@p);
}

my @corpus = grep { /\S/ && !/^#/ } split /\n/,
             read_file("$oracle/gs1-corpus.txt");
my @uris = (@corpus, @generated);
my $in = join('', map { "$_\n" } @uris);

my ($rc, $out, $err) = run_cmd(['node', "$oracle/gs1-oracle.js"], $in);
is($rc, 0, 'the oracle ran') or diag $err;
my @theirs = split /\n/, $out;
($rc, $out, $err) = run_cmd([$parse], $in);
is($rc, 0, 'gs1-parse ran') or diag $err;
my @ours = map { (split /\t/)[0] } split /\n/, $out;
is(scalar @theirs, scalar @uris, 'the oracle judged every URI');
is(scalar @ours, scalar @uris, 'cr_gs1 judged every URI');

my (%seen, @unexplained, %valid);
for my $i (0 .. $#uris) {
    my $they = $theirs[$i] eq 'valid';
    my $we = $ours[$i] eq 'ok';
    $valid{ ($we ? 'valid' : 'invalid') }++;
    next if $they == $we;
    my ($d) = grep { $_->[1]->($uris[$i]) } @differences;
    if ($d) {
        $seen{ $d->[0] }++;
    } else {
        push @unexplained, "$uris[$i]: oracle $theirs[$i], cr_gs1 $ours[$i]";
    }
}
is_deeply(\@unexplained, [], 'cr_gs1 agrees with the oracle on '
          . scalar(@uris) . ' URIs but for the deliberate differences')
    or diag join "\n", @unexplained;
for my $d (@differences) {
    ok($seen{ $d->[0] }, "deliberate difference shown: $d->[0]");
}
cmp_ok($valid{valid} // 0, '>', 300, ($valid{valid} // 0) . ' valid');
cmp_ok($valid{invalid} // 0, '>', 300, ($valid{invalid} // 0) . ' invalid');

# The resolver: each URI's path and query as a request (a fragment is
# never sent; a URL whose scheme or host is wrong has no request).
my $d = tmpdir();
my $db = "$d/brand.mdb";
load_store($db, ['l.csv', "gtin,link_type,href\n09506000134352,gs1:defaultLink,https://x.example/\n"]);
my $t = CodeRouter::Test::Nginx->new(http => <<"CONF");
    code_router_db $db;
    code_router_key 1 @{[ make_key("$d/1.key") ]};
    server {
        listen 127.0.0.1:%%PORT%%;
        location / { code_router_gs1; }
    }
CONF
$t->start;
# The resolver reads a request as cr_gs1_parse_request does: as cr_gs1
# but for one trailing '/', which it tolerates (and a compressed link).
my (@paths, @idx);
for my $i (0 .. $#uris) {
    my ($path) = $uris[$i] =~ m{^https?://[^/?#]+(/[^#\s]*)\z}i;
    next if !defined $path || $ours[$i] eq 'bad_url';
    push @paths, $path;
    push @idx, $i;
}
($rc, $out, $err) = run_cmd([$parse, '--request'], join('', map { "$_\n" } @paths));
is($rc, 0, 'gs1-parse --request ran') or diag $err;
my @req = map { (split /\t/)[0] } split /\n/, $out;
my (@wrong, @tolerated, $asked);
for my $j (0 .. $#paths) {
    my ($path, $we) = ($paths[$j], $ours[$idx[$j]]);
    $asked++;
    push @tolerated, $path if ($req[$j] eq 'ok') != ($we eq 'ok');
    my $status = $t->raw("GET $path HTTP/1.0\r\n\r\n") =~ m{^HTTP/1\.\d (\d+)} ? $1 : 0;
    push @wrong, "$path: $status, cr_gs1 $we, as a request $req[$j]"
        if ($status == 400) != ($req[$j] ne 'ok');
}
$t->stop;
is_deeply(\@wrong, [], "the resolver answers 400 exactly for the requests cr_gs1 refuses ($asked asked)")
    or diag join "\n", @wrong[0 .. ($#wrong < 20 ? $#wrong : 20)];
is_deeply([ grep { !m{[^/]/(?:\?|\z)} } @tolerated ], [],
          scalar(@tolerated) . ' requests the resolver takes and cr_gs1 refuses, or the other way: each has a trailing /')
    or diag join "\n", @tolerated;
cmp_ok(scalar @tolerated, '>', 10, '... and there are some');
cmp_ok($asked, '>', 1000, 'nearly every URI was asked');

done_testing;
