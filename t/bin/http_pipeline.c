/*
 * http-pipeline: a fast HTTP/1.1 client for the hostile-input tests
 * (t/53-hostile.t): millions of GETs on loopback, pipelined in batches over
 * a few keep-alive connections, every response parsed and checked.
 *
 * usage: http-pipeline PORT FILE CONNECTIONS DEPTH
 *
 * FILE has one request a line: "EXPECT PATH".  Every response must be a
 * 404 whose X-CR-Status header (add_header ... $code_router_status) equals
 * EXPECT, without a Location header; anything else is a mismatch, the first
 * ten of which are printed on stderr.  On stdout, one count a line:
 *
 *   requests N / status CODE N / cr VALUE N / location N / mismatch N /
 *   seconds S
 *
 * Exit status 0 when every request got a response (mismatches or not),
 * 1 otherwise.  No connection is ever reopened: the server must keep them
 * alive (keepalive_requests) for the whole run.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>


#define MAX_CONNS   64
#define MAX_DEPTH   1024
#define RBUF        (1 << 20)
#define MAX_STATUS  600
#define MAX_CR      32


typedef struct {
    char   *expect;
    char   *path;
} line_t;

typedef struct {
    int      fd;
    size_t   lines[MAX_DEPTH];         /* the requests in flight, in order */
    size_t   nout;                     /* how many of them are answered */
    size_t   nreq;
    char    *wbuf;
    size_t   wpos, wlen;
    char    *rbuf;
    size_t   rpos, rlen;               /* parsed up to rpos */
} conn_t;


static line_t   *lines;
static size_t    nlines, next_line;
static size_t    answered, mismatches, locations;
static size_t    by_status[MAX_STATUS];
static char      cr_names[MAX_CR][32];
static size_t    cr_counts[MAX_CR];
static size_t    ncr;


static void
die(const char *what)
{
    fprintf(stderr, "http-pipeline: %s: %s\n", what, strerror(errno));
    exit(1);
}


static void
count_cr(const char *v, size_t len)
{
    size_t  i;

    if (len >= sizeof(cr_names[0])) {
        len = sizeof(cr_names[0]) - 1;
    }

    for (i = 0; i < ncr; i++) {
        if (strlen(cr_names[i]) == len && memcmp(cr_names[i], v, len) == 0) {
            cr_counts[i]++;
            return;
        }
    }

    if (ncr < MAX_CR) {
        memcpy(cr_names[ncr], v, len);
        cr_names[ncr][len] = '\0';
        cr_counts[ncr++] = 1;
    }
}


static void
load(const char *file)
{
    int           fd;
    char         *buf, *p, *end, *nl, *sp;
    size_t        cap;
    struct stat   sb;

    fd = open(file, O_RDONLY);
    if (fd == -1 || fstat(fd, &sb) == -1) {
        die(file);
    }

    buf = malloc((size_t) sb.st_size + 1);
    if (buf == NULL || read(fd, buf, (size_t) sb.st_size) != sb.st_size) {
        die("read");
    }

    close(fd);
    buf[sb.st_size] = '\0';

    cap = 1024;
    lines = malloc(cap * sizeof(line_t));

    for (p = buf, end = buf + sb.st_size; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL) {
            nl = end;
        }
        *nl = '\0';

        sp = strchr(p, ' ');
        if (sp == NULL) {
            continue;
        }
        *sp = '\0';

        if (nlines == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof(line_t));
            if (lines == NULL) {
                die("realloc");
            }
        }

        lines[nlines].expect = p;
        lines[nlines].path = sp + 1;
        nlines++;
    }
}


/* Queues the next batch of requests on c; 0 if none is left. */
static int
fill(conn_t *c, size_t depth)
{
    size_t  n, len;

    c->wlen = 0;
    c->wpos = 0;
    c->nreq = 0;
    c->nout = 0;

    for (n = 0; n < depth && next_line < nlines; n++) {
        len = (size_t) snprintf(c->wbuf + c->wlen, 4096 + 64,
                                "GET %s HTTP/1.1\r\nHost: hostile\r\n\r\n",
                                lines[next_line].path);
        c->wlen += len;
        c->lines[c->nreq++] = next_line++;
    }

    return c->nreq != 0;
}


/*
 * Parses one whole response at c->rbuf + c->rpos; returns its length, or
 * 0 if more bytes are needed.
 */
static size_t
parse(conn_t *c)
{
    int          status;
    char        *p, *start, *end, *eoh, *eol, *cr_val, *body;
    size_t       cr_len, clen, have, chunk;
    line_t      *l;
    unsigned     chunked, loc;

    start = c->rbuf + c->rpos;
    end = c->rbuf + c->rlen;

    eoh = strstr(start, "\r\n\r\n");
    if (eoh == NULL) {
        return 0;
    }

    if (sscanf(start, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "http-pipeline: not a response: %.60s\n", start);
        exit(1);
    }

    cr_val = NULL;
    cr_len = 0;
    clen = 0;
    chunked = 0;
    loc = 0;

    for (p = strstr(start, "\r\n") + 2; p < eoh; p = eol + 2) {
        eol = strstr(p, "\r\n");

        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            clen = strtoul(p + 15, NULL, 10);
        } else if (strncasecmp(p, "Transfer-Encoding: chunked", 26) == 0) {
            chunked = 1;
        } else if (strncasecmp(p, "Location:", 9) == 0) {
            loc = 1;
        } else if (strncasecmp(p, "X-CR-Status: ", 13) == 0) {
            cr_val = p + 13;
            cr_len = (size_t) (eol - cr_val);
        }
    }

    body = eoh + 4;

    if (chunked) {
        p = body;
        for ( ;; ) {
            eol = strstr(p, "\r\n");
            if (eol == NULL) {
                return 0;
            }
            chunk = strtoul(p, NULL, 16);
            p = eol + 2;
            if ((size_t) (end - p) < chunk + 2) {
                return 0;
            }
            p += chunk + 2;
            if (chunk == 0) {
                break;
            }
        }
        have = (size_t) (p - start);

    } else {
        if ((size_t) (end - body) < clen) {
            return 0;
        }
        have = (size_t) (body - start) + clen;
    }

    l = &lines[c->lines[c->nout++]];
    answered++;
    by_status[status > 0 && status < MAX_STATUS ? status : 0]++;
    locations += loc;
    count_cr(cr_val ? cr_val : "(none)", cr_val ? cr_len : 6);

    if (status != 404 || loc || cr_val == NULL
        || strlen(l->expect) != cr_len
        || memcmp(l->expect, cr_val, cr_len) != 0)
    {
        if (mismatches++ < 10) {
            fprintf(stderr, "MISMATCH %s expected %s got %d %.*s%s\n",
                    l->path, l->expect, status, (int) cr_len,
                    cr_val ? cr_val : "", loc ? " with a Location" : "");
        }
    }

    return have;
}


int
main(int argc, char **argv)
{
    int                  port, one;
    size_t               nconns, depth, i, n, active;
    ssize_t              r;
    conn_t               conns[MAX_CONNS];
    struct pollfd        pfd[MAX_CONNS];
    struct timespec      t0, t1;
    struct sockaddr_in   sa;

    if (argc != 5) {
        fprintf(stderr, "usage: http-pipeline PORT FILE CONNECTIONS DEPTH\n");
        return 2;
    }

    port = atoi(argv[1]);
    load(argv[2]);
    nconns = strtoul(argv[3], NULL, 10);
    depth = strtoul(argv[4], NULL, 10);

    if (nconns < 1 || nconns > MAX_CONNS || depth < 1 || depth > MAX_DEPTH) {
        fprintf(stderr, "http-pipeline: 1..%d connections, depth 1..%d\n",
                MAX_CONNS, MAX_DEPTH);
        return 2;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    active = 0;

    for (i = 0; i < nconns; i++) {
        conn_t  *c = &conns[i];

        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd == -1 || connect(c->fd, (struct sockaddr *) &sa,
                                   sizeof(sa)) == -1)
        {
            die("connect");
        }

        one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(c->fd, F_SETFL, O_NONBLOCK);

        c->wbuf = malloc(depth * (4096 + 64) + 1);
        c->rbuf = malloc(RBUF + 1);
        c->rlen = 0;
        c->rpos = 0;
        if (c->wbuf == NULL || c->rbuf == NULL) {
            die("malloc");
        }

        if (fill(c, depth)) {
            active++;
        } else {
            close(c->fd);
            c->fd = -1;
        }
    }

    while (active) {
        for (i = 0; i < nconns; i++) {
            pfd[i].fd = conns[i].fd;
            pfd[i].events = conns[i].fd == -1 ? 0
                            : POLLIN | (conns[i].wpos < conns[i].wlen
                                        ? POLLOUT : 0);
            pfd[i].revents = 0;
        }

        if (poll(pfd, nconns, 10000) <= 0) {
            fprintf(stderr, "http-pipeline: no progress for 10 s "
                    "(%zu of %zu answered)\n", answered, nlines);
            return 1;
        }

        for (i = 0; i < nconns; i++) {
            conn_t  *c = &conns[i];

            if (c->fd == -1) {
                continue;
            }

            if ((pfd[i].revents & POLLOUT) && c->wpos < c->wlen) {
                r = write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);
                if (r == -1 && errno != EAGAIN) {
                    die("write");
                }
                if (r > 0) {
                    c->wpos += (size_t) r;
                }
            }

            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }

            r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
            if (r == -1 && errno == EAGAIN) {
                continue;
            }
            if (r <= 0) {
                fprintf(stderr, "http-pipeline: connection closed with "
                        "%zu requests unanswered (%zu of %zu answered)\n",
                        c->nreq - c->nout, answered, nlines);
                return 1;
            }
            c->rlen += (size_t) r;
            c->rbuf[c->rlen] = '\0';

            while (c->nout < c->nreq && (n = parse(c)) != 0) {
                c->rpos += n;
            }

            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;

            if (c->rlen == RBUF) {
                fprintf(stderr, "http-pipeline: a response over %d bytes\n",
                        RBUF);
                return 1;
            }

            if (c->nout == c->nreq && !fill(c, depth)) {
                close(c->fd);
                c->fd = -1;
                active--;
            }
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);

    printf("requests %zu\n", answered);
    for (i = 0; i < MAX_STATUS; i++) {
        if (by_status[i]) {
            printf("status %zu %zu\n", i, by_status[i]);
        }
    }
    for (i = 0; i < ncr; i++) {
        printf("cr %s %zu\n", cr_names[i], cr_counts[i]);
    }
    printf("location %zu\nmismatch %zu\nseconds %.2f\n", locations,
           mismatches, (double) (t1.tv_sec - t0.tv_sec)
                       + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);

    return answered == nlines ? 0 : 1;
}
