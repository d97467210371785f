#!/usr/bin/perl
# code_router_fast_user_agent: nginx's User-Agent sniffing (the msie,
# msie6, opera, gecko, chrome, safari and konqueror flags) done with
# memchr and memcmp sets the same flags as nginx's own for every value
# of a corpus of thousands (t/bin/ua-corpus.pl: real browsers old and new,
# bots, and values made to catch a different search), one header and
# two; nginx's own behaviours that read the flags (msie_refresh,
# msie_padding, keepalive_disable msie6 and safari) answer the same; and
# both agree with the rules written out here.  Reloads off, on and off;
# the arguments and context of both code_router_fast_* directives.  Runs against 1.22 and (make test NGINX=1.26) 1.26,
# whose handling of a second User-Agent header differs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use CodeRouter::Test qw(run_cmd nginx_version);

my ($rc, $out) = run_cmd(["$FindBin::Bin/bin/ua-corpus.pl"]);
die "ua-corpus.pl failed\n" if $rc;
my @corpus = split /\n/, $out;
cmp_ok(scalar @corpus, '>', 3000, scalar(@corpus) . ' User-Agents in the corpus');

my $server = <<'CONF';
    server {
        listen 127.0.0.1:%%PORT%%;
        location /f {
            return 200 "$code_router_user_agent_flags\n";
        }
        location /b {
            msie_refresh on;
            keepalive_disable msie6 safari;
            return 302 /elsewhere;
        }
        location /e {
            msie_padding on;
            return 404;
        }
    }
CONF
my $fast = CodeRouter::Test::Nginx->new(
    http => "    code_router_fast_user_agent on;\n$server")->start;
my $plain = CodeRouter::Test::Nginx->new(http => $server)->start;

# One keep-alive connection per server, opened again when nginx closes it
# (keepalive_disable).  Returns (status, headers, body) of one request
# with the given User-Agent headers.
my %conn;
sub ask {
    my ($t, $path, @uas) = @_;
    my $method = $path =~ s/^POST // ? 'POST' : 'GET';
    my $req = "$method $path HTTP/1.1\r\nHost: x\r\n"
            . ($method eq 'POST' ? "Content-Length: 0\r\n" : '')
            . join('', map { "User-Agent: $_\r\n" } @uas) . "\r\n";
    for my $try (1, 2) {
        my $s = $conn{$t->port} //= IO::Socket::INET->new(
            PeerAddr => '127.0.0.1', PeerPort => $t->port, Timeout => 10)
            or die "connect: $!";
        print $s $req;
        my $head = '';
        while ($head !~ /\r\n\r\n/) {
            my $n = sysread($s, $head, 4096, length $head);
            last unless $n;
        }
        if ($head !~ /\r\n\r\n/) {
            delete $conn{$t->port};
            next;
        }
        my ($h, $body) = split /\r\n\r\n/, $head, 2;
        my ($len) = $h =~ /^Content-Length: (\d+)/mi;
        while (length $body < ($len // 0)) {
            sysread($s, $body, $len - length $body, length $body) or last;
        }
        delete $conn{$t->port} if $h =~ /^Connection: close/mi;
        my ($status) = $h =~ /^HTTP\/1\.1 (\d+)/;
        $h =~ s/^Date: .*\r\n//mi;
        $h =~ s/^Server: .*\r\n//mi;
        $h =~ s/^(Location: http:\/\/x):\d+/$1/mi;
        $body =~ s/(URL=http:\/\/x):\d+/$1/i;
        return ($status, $h, $body);
    }
    die "no answer from port " . $t->port . "\n";
}

# nginx's rules (ngx_http_process_user_agent), written out, for one value.
sub rules {
    my ($ua, $f) = @_;
    my $m = index($ua, 'MSIE ');
    if ($m >= 0 && $m + 7 < length $ua) {
        $f->{msie} = 1;
        if (substr($ua, $m + 6, 1) eq '.') {
            my $d = substr($ua, $m + 5, 1);
            $f->{msie6} = 1 if $d eq '4' || $d eq '5'
                || ($d eq '6' && index(substr($ua, $m + 8), 'SV1') < 0);
        }
    }
    if (index($ua, 'Opera') >= 0) {
        $f->{opera} = 1;
        delete @$f{qw(msie msie6)};
    }
    if (!$f->{msie} && !$f->{opera}) {
        if (index($ua, 'Gecko/') >= 0) { $f->{gecko} = 1 }
        elsif (index($ua, 'Chrome/') >= 0) { $f->{chrome} = 1 }
        elsif (index($ua, 'Safari/') >= 0 && index($ua, 'Mac OS X') >= 0) {
            $f->{safari} = 1;
        }
        elsif (index($ua, 'Konqueror') >= 0) { $f->{konqueror} = 1 }
    }
    return $f;
}
sub expect {
    my $f = {};
    rules($_, $f) for @_;
    return join ',', grep { $f->{$_} }
        qw(msie msie6 opera gecko chrome safari konqueror);
}

# 1. One header: the flags, and what nginx does with them.
my (%bad, %count);
for my $ua (@corpus) {
    my (undef, undef, $ff) = ask($fast, '/f', $ua);
    my (undef, undef, $pf) = ask($plain, '/f', $ua);
    chomp($ff, $pf);
    $count{$pf}++;
    push @{ $bad{flags} }, [$ua, $ff, $pf] if $ff ne $pf;
    push @{ $bad{rules} }, [$ua, expect($ua), $pf] if expect($ua) ne $pf;
    for my $path ('/b', 'POST /b', '/e') {
        my @fb = ask($fast, $path, $ua);
        my @pb = ask($plain, $path, $ua);
        push @{ $bad{behaviour} }, [$ua, "@fb", "@pb"] if "@fb" ne "@pb";
    }
}
for my $what (qw(flags rules behaviour)) {
    my $b = $bad{$what} // [];
    is(scalar @$b, 0, "one header: the same $what with and without the directive"
                      . " over " . scalar(@corpus) . ' values');
    diag(sprintf "%.80s: fast '%.200s', nginx '%.200s'", @$_)
        for @$b[0 .. ($#$b < 4 ? $#$b : 4)];
}
diag(join ', ', map { "'$_' $count{$_}" } sort keys %count);
# The corpus reaches every flag and every combination nginx can set
# (msie with msie6 or without; each of the other five alone; none).
is_deeply([sort keys %count],
          [sort '', 'msie,msie6', qw(msie opera gecko chrome safari konqueror)],
          'the corpus sets every flag nginx has');
cmp_ok($count{$_}, '>=', 20, "'$_': $count{$_} values")
    for sort keys %count;

my $iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';
my %known = (
    'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)' => 'msie,msie6',
    'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)' => 'msie',
    'Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.229 Version/11.62' => 'opera',
    $iphone => 'safari',
    'Mozilla/5.0 (X11; Linux x86_64) KHTML/5.20.0 (like Gecko) Konqueror/5' => 'konqueror',
);
for my $ua (sort keys %known) {
    my (undef, undef, $f) = ask($fast, '/f', $ua);
    chomp $f;
    is($f, $known{$ua}, "'$known{$ua}': " . substr($ua, 0, 50));
}
# What nginx does with them, with the directive: MSIE gets the refresh
# page, MSIE 6 a closed connection after a POST, Chrome the padded 404,
# Safari a closed connection.
my $msie6 = 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)';
my ($s, $h, $b) = ask($fast, '/b', $msie6);
ok($s == 200 && $b =~ /http-equiv="Refresh"/ && $h !~ /^Connection: close/mi,
   'msie: msie_refresh\'s page') or diag("$s $h $b");
($s, $h, $b) = ask($fast, 'POST /b', $msie6);
like($h, qr/^Connection: close/mi, 'msie6: keepalive_disable msie6 after a POST');
($s, $h, $b) = ask($fast, '/e', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36');
ok($s == 404 && $b =~ /a padding to disable MSIE and Chrome friendly error page/,
   'chrome: msie_padding\'s padding') or diag("$s $h $b");
($s, $h) = ask($fast, '/b', $iphone);
like($h, qr/^Connection: close/mi, 'safari: keepalive_disable safari');

# 2. Two headers (pairs from the corpus): 1.22 keeps and sniffs the first
# alone, 1.23+ sniffs both in turn (Opera in the second clears MSIE of the
# first); $http_user_agent's value is checked too.
my $two = nginx_version() >= 1023000 ? 1 : 0;
my @pairs;
for my $i (0 .. $#corpus) {
    push @pairs, [$corpus[$i], $corpus[($i * 7 + 13) % @corpus]] if $i % 3 == 0;
}
push @pairs, ['MSIE 6.0 x', 'Opera'], ['Opera', 'MSIE 6.0 x'],
             ['MSIE 6.0 x', 'Gecko/'], ['Gecko/', 'Chrome/'], ['Safari/', 'Mac OS X'];
my @badtwo;
for my $p (@pairs) {
    my (undef, undef, $ff) = ask($fast, '/f', @$p);
    my (undef, undef, $pf) = ask($plain, '/f', @$p);
    chomp($ff, $pf);
    my $want = $two ? expect(@$p) : expect($p->[0]);
    push @badtwo, [$p->[0], $ff, $pf, $want] if $ff ne $pf || $pf ne $want;
}
is(scalar @badtwo, 0, 'two headers: the same flags over ' . scalar(@pairs) . ' pairs'
   . ($two ? ' (both sniffed)' : ' (the first alone)'));
diag(sprintf "%.60s: fast '%s', nginx '%s', rules '%s'", @$_)
    for @badtwo[0 .. ($#badtwo < 4 ? $#badtwo : 4)];

# 3. Reloads that turn the directive off, on and off again: each cycle
# has its own header hash (nginx's handler, or the swapped one), and
# every one answers the same flags.
for my $on (0, 1, 0) {
    $fast->{http} = ($on ? "    code_router_fast_user_agent on;\n" : '') . $server;
    $fast->reload;
    %conn = ();
    my @b;
    for my $ua (@corpus[0 .. 299]) {
        my (undef, undef, $f) = ask($fast, '/f', $ua);
        chomp $f;
        push @b, $ua if $f ne expect($ua);
    }
    is(scalar @b, 0, 'after a reload ' . ($on ? 'with' : 'without')
                     . ' the directive: the same flags for 300 values');
}

# 4. The arguments and context of both code_router_fast_* flags (this one
# and code_router_fast_request_id, t/99).
for my $d (qw(code_router_fast_user_agent code_router_fast_request_id)) {
    for my $c (["$d maybe;", qr/invalid value "maybe"/],
               ["$d;", qr/invalid number of arguments/],
               ["$d on off;", qr/invalid number of arguments/],
               ["$d on; $d off;", qr/is duplicate/],
               ["server { listen 127.0.0.1:%%PORT%%; $d on; }",
                qr/"$d" directive is not allowed here/],
               ["server { listen 127.0.0.1:%%PORT%%; location / { $d on; } }",
                qr/"$d" directive is not allowed here/]) {
        my $t = CodeRouter::Test::Nginx->new(http => "    $c->[0]\n");
        my ($rc, $out) = $t->test_conf;
        ok($rc != 0 && $out =~ $c->[1], "nginx -t refuses: $c->[0]")
            or diag($out);
    }
}

done_testing();
