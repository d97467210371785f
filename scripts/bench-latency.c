/*
 * bench-latency: a keep-alive HTTP load like wrk's (N connections, each
 * sends its next request as soon as the answer is in), which writes every
 * request's start time and latency, so that make bench can see *when* the
 * slow requests happen (a flush, a timer), not only how many there are.
 *
 *   bench-latency PORT PATHS USER_AGENT CONNECTIONS SECONDS OUT [walk]
 *
 * PATHS: one request path a line, drawn at random; with "walk", each
 * request the next one, in order, until the last is answered (SECONDS at
 * most: make bench ONLY=saturation's distinct codes).  OUT: one line a
 * request, "start_us latency_us status", start_us from the first request.
 * Only what make bench needs: 127.0.0.1, answers with Content-Length.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BL_MAX_CONNS  256
#define BL_BUF        16384

typedef struct {
    int       fd;
    size_t    have;
    uint64_t  start;
    char      buf[BL_BUF];
} bl_conn_t;

typedef struct {
    uint32_t  start_us;
    uint32_t  latency_us;
    uint16_t  status;
} bl_rec_t;

static char      **bl_reqs;
static size_t     *bl_lens;
static size_t      bl_nreqs;
static uint64_t    bl_rand = 88172645463325252ULL;
static int         bl_walk;             /* in order, each path once */
static size_t      bl_next;             /* the next path to walk */
static int                 bl_ep;
static struct sockaddr_in  bl_sin;

static int bl_connect(bl_conn_t *c);


static uint64_t
bl_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}


/* The requests, formatted once (the client shares the machine). */
static void
bl_load(const char *paths, const char *ua)
{
    FILE    *f;
    char     line[1024];
    size_t   cap, n;

    f = fopen(paths, "r");
    if (f == NULL) {
        perror(paths);
        exit(1);
    }

    cap = 0;

    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }

        if (bl_nreqs == cap) {
            cap = cap ? cap * 2 : 1024;
            bl_reqs = realloc(bl_reqs, cap * sizeof(char *));
            bl_lens = realloc(bl_lens, cap * sizeof(size_t));
            if (bl_reqs == NULL || bl_lens == NULL) {
                exit(1);
            }
        }

        n = strlen(line) + strlen(ua) + 64;
        bl_reqs[bl_nreqs] = malloc(n);
        if (bl_reqs[bl_nreqs] == NULL) {
            exit(1);
        }

        bl_lens[bl_nreqs] = (size_t) snprintf(bl_reqs[bl_nreqs], n,
                                "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "User-Agent: %s\r\n\r\n", line, ua);
        bl_nreqs++;
    }

    fclose(f);

    if (bl_nreqs == 0) {
        fprintf(stderr, "bench-latency: no paths in %s\n", paths);
        exit(1);
    }
}


/* The next request on c: 1, or 0 if a walk has none left. */
static int
bl_send(bl_conn_t *c)
{
    size_t   i;
    ssize_t  n;

    if (bl_walk) {
        if (bl_next == bl_nreqs) {
            return 0;
        }

        i = bl_next++;

    } else {
        bl_rand ^= bl_rand << 13;
        bl_rand ^= bl_rand >> 7;
        bl_rand ^= bl_rand << 17;
        i = bl_rand % bl_nreqs;
    }

    c->have = 0;
    c->start = bl_now_ns();

    /* A request is far smaller than the socket's buffer; a connection
     * the server closed after its last answer is made anew. */
    n = write(c->fd, bl_reqs[i], bl_lens[i]);

    if (n == -1 && (errno == EPIPE || errno == ECONNRESET)) {
        close(c->fd);
        if (bl_connect(c)) {
            exit(1);
        }

        c->start = bl_now_ns();
        n = write(c->fd, bl_reqs[i], bl_lens[i]);
    }

    if (n != (ssize_t) bl_lens[i]) {
        perror("bench-latency: write");
        exit(1);
    }

    return 1;
}


static int
bl_connect(bl_conn_t *c)
{
    int                 one;
    struct epoll_event  ev;

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    one = 1;

    if (c->fd == -1
        || setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one))
        || connect(c->fd, (struct sockaddr *) &bl_sin, sizeof(bl_sin)))
    {
        perror("bench-latency: connect");
        return -1;
    }

    ev.events = EPOLLIN;
    ev.data.ptr = c;

    if (epoll_ctl(bl_ep, EPOLL_CTL_ADD, c->fd, &ev)) {
        perror("bench-latency: epoll_ctl");
        return -1;
    }

    return 0;
}


/* The status if c->buf holds a whole answer, else 0. */
static int
bl_complete(bl_conn_t *c)
{
    char    *end, *p;
    size_t   hlen, clen;

    c->buf[c->have] = '\0';
    end = strstr(c->buf, "\r\n\r\n");
    if (end == NULL) {
        return 0;
    }

    hlen = (size_t) (end - c->buf) + 4;
    clen = 0;

    for (p = strstr(c->buf, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
            clen = strtoul(p + 17, NULL, 10);
            break;
        }
    }

    if (c->have < hlen + clen) {
        return 0;
    }

    return atoi(c->buf + 9);
}


int
main(int argc, char **argv)
{
    int                  i, n, status, conns, inflight;
    FILE                *out;
    ssize_t              got;
    uint64_t             t0, until, now;
    bl_rec_t            *recs;
    bl_conn_t           *conn, *c;
    size_t               nrecs, cap;
    struct epoll_event   evs[BL_MAX_CONNS];

    if (argc != 7 && (argc != 8 || strcmp(argv[7], "walk") != 0)) {
        fprintf(stderr, "usage: bench-latency PORT PATHS USER_AGENT "
                        "CONNECTIONS SECONDS OUT [walk]\n");
        return 2;
    }

    bl_walk = (argc == 8);

    bl_load(argv[2], argv[3]);
    conns = atoi(argv[4]);
    if (conns < 1 || conns > BL_MAX_CONNS) {
        fprintf(stderr, "bench-latency: 1 to %d connections\n", BL_MAX_CONNS);
        return 2;
    }

    conn = calloc((size_t) conns, sizeof(bl_conn_t));
    cap = 1 << 20;
    recs = malloc(cap * sizeof(bl_rec_t));
    bl_ep = epoll_create1(0);
    signal(SIGPIPE, SIG_IGN);
    if (conn == NULL || recs == NULL || bl_ep == -1) {
        perror("bench-latency");
        return 1;
    }

    bl_sin.sin_family = AF_INET;
    bl_sin.sin_port = htons((uint16_t) atoi(argv[1]));
    bl_sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    for (i = 0; i < conns; i++) {
        if (bl_connect(&conn[i])) {
            return 1;
        }
    }

    t0 = bl_now_ns();
    until = t0 + (uint64_t) (atof(argv[5]) * 1e9);
    nrecs = 0;

    inflight = 0;

    for (i = 0; i < conns; i++) {
        inflight += bl_send(&conn[i]);
    }

    while (inflight) {
        n = epoll_wait(bl_ep, evs, BL_MAX_CONNS, 100);
        if (n == -1 && errno != EINTR) {
            perror("bench-latency: epoll_wait");
            return 1;
        }

        now = bl_now_ns();
        if (now >= until) {
            break;
        }

        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            got = read(c->fd, c->buf + c->have, BL_BUF - 1 - c->have);

            if (got <= 0 && c->have == 0) {
                /* keepalive_requests reached (the close, or the reset of
                 * a request sent after it): as wrk, a new connection. */
                close(c->fd);
                if (bl_connect(c)) {
                    return 1;
                }

                inflight += bl_send(c) - 1;
                continue;
            }

            if (got <= 0) {
                fprintf(stderr, "bench-latency: the server closed a "
                                "connection in an answer\n");
                return 1;
            }

            c->have += (size_t) got;
            status = bl_complete(c);
            if (status == 0) {
                continue;
            }

            if (nrecs == cap) {
                cap *= 2;
                recs = realloc(recs, cap * sizeof(bl_rec_t));
                if (recs == NULL) {
                    return 1;
                }
            }

            recs[nrecs].start_us = (uint32_t) ((c->start - t0) / 1000);
            recs[nrecs].latency_us = (uint32_t) ((now - c->start) / 1000);
            recs[nrecs].status = (uint16_t) status;
            nrecs++;

            inflight += bl_send(c) - 1;
        }
    }

    out = fopen(argv[6], "w");
    if (out == NULL) {
        perror(argv[6]);
        return 1;
    }

    for (size_t k = 0; k < nrecs; k++) {
        fprintf(out, "%u %u %u\n", recs[k].start_us, recs[k].latency_us,
                recs[k].status);
    }

    return fclose(out) ? 1 : 0;
}
