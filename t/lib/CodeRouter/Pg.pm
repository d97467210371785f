package CodeRouter::Pg;
# A real PostgreSQL for the ledger's tests, started like nginx is: initdb
# in a temporary directory (as the postgres user when the tests run as
# root: PostgreSQL refuses to run as root), the server on a free loopback
# port with its socket in that directory, stopped by pid at the end.
#
#   my $pg = CodeRouter::Pg->new;       # initdb + start; dies with the log
#   $pg->conninfo;                      # for code_router_ledger and the CLI
#   $pg->psql('SELECT 1');              # stdout of psql -At
#   $pg->signal('STOP'); $pg->signal('CONT');   # every server process
#   $pg->stop;                          # also done when $pg goes away
#
# Debian's postgresql package (PostgreSQL 15 on Debian 12) puts the
# binaries in /usr/lib/postgresql/VERSION/bin; the newest is used.
use strict;
use warnings;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use CodeRouter::Test qw(tmpdir run_cmd free_port);

sub bindir {
    my ($dir) = sort { ($b =~ /(\d+)\/bin$/)[0] <=> ($a =~ /(\d+)\/bin$/)[0] }
                glob('/usr/lib/postgresql/*/bin');
    return $dir;
}

# Whether the tests can have a PostgreSQL here (make deps installs it).
sub available { my $b = bindir(); return $b && -x "$b/initdb" && -x "$b/postgres" }

sub new {
    my ($class, %o) = @_;
    my $self = bless { port => free_port(), bin => bindir() }, $class;
    my $d = $self->{dir} = tmpdir();
    $self->{data} = "$d/data";
    my @user;
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres')
            or die "no postgres user (apt-get install postgresql)";
        @{$self}{qw(uid gid)} = ($uid, $gid);
        chown $uid, $gid, $d or die "chown $d: $!";
        @user = ('setpriv', "--reuid=$uid", "--regid=$gid", '--clear-groups');
    }
    $self->{as} = \@user;
    my ($rc, $out, $err) = run_cmd([@user, "$self->{bin}/initdb", '-D', $self->{data},
                                    '-U', 'postgres', '--auth=trust',
                                    '--no-sync', '-E', 'UTF8', '--locale=C']);
    die "initdb failed ($rc): $err$out" if $rc;
    $self->start;
    return $self;
}

sub port { $_[0]{port} }
sub conninfo { "host=127.0.0.1 port=$_[0]{port} dbname=postgres user=postgres" }
sub log { CodeRouter::Test::read_file("$_[0]{dir}/pg.log") }

sub start {
    my ($self) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{dir}/pg.log";
        open STDERR, '>&', \*STDOUT;
        exec @{ $self->{as} }, "$self->{bin}/postgres", '-D', $self->{data},
             '-p', $self->{port}, '-c', 'listen_addresses=127.0.0.1',
             '-c', "unix_socket_directories=$self->{dir}",
             '-c', 'max_connections=100', '-c', 'shared_buffers=16MB',
             '-c', 'log_min_messages=warning';
        exit 127;
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;
    my $deadline = time + 30;
    while (time < $deadline) {
        die "postgres exited at start:\n" . $self->log if waitpid($pid, WNOHANG) == $pid;
        my ($rc) = run_cmd(["$self->{bin}/pg_isready", '-q', '-h', '127.0.0.1',
                            '-p', $self->{port}, '-U', 'postgres']);
        return $self if $rc == 0;
        sleep 0.1;
    }
    die "postgres did not answer on port $self->{port}:\n" . $self->log;
}

# psql -At -c SQL: its stdout; dies on an error.
sub psql {
    my ($self, $sql) = @_;
    my ($rc, $out, $err) = run_cmd(["$self->{bin}/psql", '-X', '-At', '-v',
                                    'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p',
                                    $self->{port}, '-U', 'postgres', '-d',
                                    'postgres', '-c', $sql]);
    die "psql: $err" if $rc;
    return $out;
}

# The server and its children (backends, checkpointer, ...).
sub pids {
    my ($self) = @_;
    return () unless $self->{pid};
    return ($self->{pid}, split ' ', `pgrep -P $self->{pid}`);
}

# SIGSTOP / SIGCONT to every process of the server at once: a server that
# stops answering without closing a connection (a partition, a stall).
sub signal {
    my ($self, $sig) = @_;
    my @p = $self->pids;
    kill $sig, @p;
    return scalar @p;
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'CONT', $pid, split ' ', `pgrep -P $pid`;
    kill 'INT', $pid;                   # fast shutdown
    my $deadline = time + 20;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid, split ' ', `pgrep -P $pid`;
    waitpid($pid, 0);
}

sub DESTROY { $_[0]->stop if ($_[0]{owner} // 0) == $$ }

1;
