/*
 * A small load generator for netproto's benchmarks (benchmarks/loadgen.py
 * builds and runs it). Linux, epoll, non-blocking sockets, one thread: it
 * costs far less CPU per request than the servers it drives, so on a machine
 * whose cores it shares with them it disturbs their figures less than a
 * Python generator does.
 *
 *   _loadgen MODE HOST PORT [--duration S] [--warmup S] [--setup S]
 *            [--conns C] [--size B] [--parallel P] [--sockets N]
 *            [--window K] [--timeout-ms T] [--sources N]
 *
 * MODE
 *   echo     TCP ping-pong: C connections, each sends B bytes and waits for
 *            all of them back before sending the next B (closed loop).
 *   stream   TCP streaming: C connections write B-byte blocks while reading
 *            the echo, at most 4 MiB in flight on each.
 *   daytime  TCP connect, read to EOF, close: P connections at a time.
 *   udp      UDP request/answer (echo or daytime): N sockets, K datagrams of
 *            B bytes outstanding on each; every answer sends the next; a
 *            socket that hears nothing for T ms forgets what it has in
 *            flight and sends K again (lost datagrams do not stall it).
 *
 * HOST is a literal loopback address (127.0.0.0/8 or ::1): names are never
 * resolved and any other address is refused (exit 2). With --sources N
 * (IPv4 only), the daytime connections and the UDP sockets are bound to N
 * distinct source addresses 127.1.x.y, so per-peer state in the server sees
 * many peers.
 *
 * The load runs --warmup seconds uncounted, then (once every echo
 * connection has completed an exchange) the timed window of --duration
 * seconds. The window's start and end are announced on stdout as the lines
 * "start" and "end" as they happen (so a caller can sample the server's CPU
 * at the same moments), then one JSON object with the window's figures:
 * requests (echo exchanges, daytime connections that returned data, UDP
 * answers), bytes received, seconds, the generator's own CPU seconds (cpu,
 * user, system), errors, resends, epoll wake-ups and events, and its context
 * switches. An alarm ends the process (exit 3) if it outlives warm-up,
 * set-up and window by 10 seconds. Exit 1: the target failed (refused, no
 * answer during set-up).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_EVENTS 512
#define UDP_BATCH 64
#define STREAM_INFLIGHT (4L << 20)

enum mode { ECHO, STREAM, DAYTIME, UDP };

static struct {
    enum mode mode;
    double duration, warmup, setup, timeout_ms;
    long conns, size, parallel, sockets, window, sources;
} opt = {ECHO, 2.0, 0.5, 10.0, 50.0, 10, 1024, 16, 16, 8, 0};

static struct sockaddr_storage target;
static socklen_t target_len;
static int family;
static int ep;

/* 0: warm-up, 1: timed window. */
static int phase;
static long long requests, nbytes, errors, resends, wakeups, nevents;
static char *payload;
static char *rbuf;
#define RBUF (1 << 20)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(int code, const char *what)
{
    fprintf(stderr, "_loadgen: %s\n", what);
    exit(code);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char text[] = "_loadgen: overran its time limit\n";
    (void)!write(2, text, sizeof text - 1);
    _exit(3);
}

/* Parse HOST as a literal; refuse anything but loopback. */
static void parse_target(const char *host, const char *port_text)
{
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*end || port < 1 || port > 65535)
        die(2, "PORT must be 1-65535");
    memset(&target, 0, sizeof target);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&target;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&target;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
            die(2, "refused: HOST must be a loopback address (127.0.0.0/8 or ::1)");
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        family = AF_INET;
        target_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            die(2, "refused: HOST must be a loopback address (127.0.0.0/8 or ::1)");
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        family = AF_INET6;
        target_len = sizeof *v6;
    } else {
        die(2, "refused: HOST must be a literal loopback address (names are not resolved)");
    }
}

/* Bind *fd* to source address number *index* (127.1.x.y) when --sources asks. */
static void bind_source(int fd, long index, int tcp)
{
    if (opt.sources <= 0 || family != AF_INET)
        return;
    long i = index % opt.sources + 1;
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | (uint32_t)((i >> 8) & 255) << 8 |
                                (uint32_t)((i & 255) ? (i & 255) : 1));
    int one = 1;
    if (tcp)
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
        die(1, "cannot bind a 127.1.x.y source address");
}

static void watch(int fd, uint32_t events, void *ptr, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    if (epoll_ctl(ep, op, fd, &ev) < 0)
        die(1, "epoll_ctl failed");
}

/* --- TCP connections (echo, stream, daytime) ------------------------------ */

struct conn {
    int fd;
    int connecting;
    int out_on;         /* EPOLLOUT is watched */
    long pending;       /* echo: bytes still expected back */
    long unsent;        /* echo: bytes of the current message not yet written */
    long long sent, got; /* stream */
    long long exchanges;
    long got_now;       /* daytime: bytes on this connection */
    long index;
};

static struct conn *conns;
static long nconns;
static long counter;

static int tcp_open(struct conn *c)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.mode == DAYTIME)
        bind_source(fd, counter++, 1);
    c->fd = fd;
    c->connecting = 1;
    c->pending = c->unsent = 0;
    c->sent = c->got = 0;
    c->got_now = 0;
    if (connect(fd, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS) {
        close(fd);
        c->fd = -1;
        return -1;
    }
    /* Daytime: EPOLLIN reports the answer, the EOF and a refusal alike. */
    c->out_on = opt.mode != DAYTIME;
    watch(fd, c->out_on ? EPOLLIN | EPOLLOUT : EPOLLIN, c, EPOLL_CTL_ADD);
    return 0;
}

static void tcp_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
}

static void set_out(struct conn *c, int on)
{
    if (c->out_on == on)
        return;
    c->out_on = on;
    watch(c->fd, on ? EPOLLIN | EPOLLOUT : EPOLLIN, c, EPOLL_CTL_MOD);
}

/* Echo: write what is left of the current message. */
static void echo_flush(struct conn *c)
{
    while (c->unsent > 0) {
        ssize_t n = send(c->fd, payload, (size_t)c->unsent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return;
        }
        c->unsent -= n;
    }
    set_out(c, c->unsent > 0);
}

static void echo_send(struct conn *c)
{
    c->pending += opt.size;
    c->unsent = opt.size;
    echo_flush(c);
}

static int connect_error;

static int connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    c->connecting = 0;
    connect_error = err;
    return err == 0;
}

static void refused(const char *what)
{
    fprintf(stderr, "_loadgen: %s: %s\n", what, strerror(connect_error));
    exit(1);
}

static void echo_event(struct conn *c, uint32_t ev)
{
    if (c->connecting) {
        if (!connected(c))
            refused("an echo connection failed");
        echo_send(c);
        return;
    }
    if (ev & EPOLLOUT)
        echo_flush(c);
    if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = recv(c->fd, rbuf, RBUF, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        /* The server closed or reset it: count it, open another. */
        errors++;
        tcp_close(c);
        if (tcp_open(c) < 0)
            die(1, "an echo connection could not be reopened");
        return;
    }
    if (phase == 1)
        nbytes += n;
    c->pending -= n;
    while (c->pending <= 0 && c->unsent == 0) {
        c->exchanges++;
        if (phase == 1)
            requests++;
        echo_send(c);
    }
}

static void stream_event(struct conn *c, uint32_t ev)
{
    if (c->connecting) {
        if (!connected(c))
            refused("a stream connection failed");
        return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            ssize_t n = recv(c->fd, rbuf, RBUF, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n <= 0) {
                errors++;
                tcp_close(c);
                if (tcp_open(c) < 0)
                    die(1, "a stream connection could not be reopened");
                return;
            }
            c->got += n;
            if (phase == 1)
                nbytes += n;
        }
    }
    while (c->sent - c->got < STREAM_INFLIGHT) {
        ssize_t n = send(c->fd, payload, (size_t)opt.size, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        c->sent += n;
    }
    /* Write again when the socket drains, unless the window is full (then a read does). */
    set_out(c, c->sent - c->got < STREAM_INFLIGHT);
}

static void daytime_reopen(struct conn *c)
{
    tcp_close(c);
    if (tcp_open(c) < 0)
        errors++; /* retried by the main loop */
}

static void daytime_event(struct conn *c, uint32_t ev)
{
    (void)ev;
    for (;;) {
        ssize_t n = recv(c->fd, rbuf, RBUF, 0);
        if (n > 0) {
            c->got_now += n;
            if (phase == 1)
                nbytes += n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or an error (refused, reset): one connection done. */
        if (n == 0 && c->got_now > 0) {
            if (phase == 1)
                requests++;
        } else if (phase == 1) {
            errors++;
        }
        daytime_reopen(c);
        return;
    }
}

/* --- UDP ---------------------------------------------------------------- */

struct dgram {
    int fd;
    long outstanding;
    double last;
};

static struct dgram *dgrams;
static struct mmsghdr rmsgs[UDP_BATCH], smsgs[UDP_BATCH];
static struct iovec riov[UDP_BATCH], siov[UDP_BATCH];
#define DGRAM_MAX 65536

static void udp_fill(struct dgram *d)
{
    while (d->outstanding < opt.window) {
        long want = opt.window - d->outstanding;
        if (want > UDP_BATCH)
            want = UDP_BATCH;
        int n = sendmmsg(d->fd, smsgs, (unsigned)want, 0);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
                errors++;
            break;
        }
        d->outstanding += n;
    }
}

static void udp_event(struct dgram *d, double t)
{
    for (;;) {
        int n = recvmmsg(d->fd, rmsgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            /* ECONNREFUSED: a port unreachable came back for one of ours. */
            errors++;
            d->outstanding = 0;
            break;
        }
        if (phase == 1) {
            requests += n;
            for (int i = 0; i < n; i++)
                nbytes += rmsgs[i].msg_len;
        }
        d->outstanding = d->outstanding > n ? d->outstanding - n : 0;
        d->last = t;
        if (n < UDP_BATCH)
            break;
    }
    udp_fill(d);
}

static void udp_sweep(double t)
{
    for (long i = 0; i < opt.sockets; i++) {
        struct dgram *d = &dgrams[i];
        if (t - d->last > opt.timeout_ms / 1e3) {
            if (d->outstanding > 0)
                resends++;
            d->outstanding = 0;
            d->last = t;
            udp_fill(d);
        }
    }
}

/* --- the run ----------------------------------------------------------------- */

static double cpu_of(const struct rusage *r, int user)
{
    const struct timeval *t = user ? &r->ru_utime : &r->ru_stime;
    return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

static long number(const char *text, const char *name, long low, long high)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v < low || v > high) {
        fprintf(stderr, "_loadgen: --%s must be %ld-%ld\n", name, low, high);
        exit(2);
    }
    return v;
}

static double seconds(const char *text, const char *name)
{
    char *end;
    double v = strtod(text, &end);
    if (*end || !(v >= 0 && v <= 3600)) {
        fprintf(stderr, "_loadgen: --%s must be 0-3600 seconds\n", name);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'},  {"setup", 1, 0, 'u'},
        {"conns", 1, 0, 'c'},    {"size", 1, 0, 's'},    {"parallel", 1, 0, 'p'},
        {"sockets", 1, 0, 'n'},  {"window", 1, 0, 'k'},  {"timeout-ms", 1, 0, 't'},
        {"sources", 1, 0, 'S'},  {0, 0, 0, 0},
    };
    int ch;
    int size_given = 0;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'd': opt.duration = seconds(optarg, "duration"); break;
        case 'w': opt.warmup = seconds(optarg, "warmup"); break;
        case 'u': opt.setup = seconds(optarg, "setup"); break;
        case 'c': opt.conns = number(optarg, "conns", 1, 50000); break;
        case 's': opt.size = number(optarg, "size", 0, 16 << 20); size_given = 1; break;
        case 'p': opt.parallel = number(optarg, "parallel", 1, 50000); break;
        case 'n': opt.sockets = number(optarg, "sockets", 1, 10000); break;
        case 'k': opt.window = number(optarg, "window", 1, 100000); break;
        case 't': opt.timeout_ms = (double)number(optarg, "timeout-ms", 1, 60000); break;
        case 'S': opt.sources = number(optarg, "sources", 0, 65000); break;
        default: return 2;
        }
    }
    if (argc - optind != 3)
        die(2, "usage: _loadgen echo|stream|daytime|udp HOST PORT [options]");
    const char *m = argv[optind];
    if (!strcmp(m, "echo"))
        opt.mode = ECHO;
    else if (!strcmp(m, "stream"))
        opt.mode = STREAM;
    else if (!strcmp(m, "daytime"))
        opt.mode = DAYTIME;
    else if (!strcmp(m, "udp"))
        opt.mode = UDP;
    else
        die(2, "MODE must be echo, stream, daytime or udp");
    parse_target(argv[optind + 1], argv[optind + 2]);
    if (opt.mode == STREAM && !size_given)
        opt.size = 256 * 1024;
    if ((opt.mode == ECHO || opt.mode == STREAM) && opt.size < 1)
        die(2, "--size must be at least 1 for echo and stream");
    if (opt.mode == UDP && opt.size > DGRAM_MAX - 1)
        die(2, "--size must be at most 65535 for udp");

    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)(opt.warmup + opt.setup + opt.duration + 10.0));

    payload = malloc((size_t)opt.size + 1);
    rbuf = malloc(RBUF);
    if (!payload || !rbuf)
        die(1, "out of memory");
    memset(payload, 'x', (size_t)opt.size + 1);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die(1, "epoll_create1 failed");

    double began = now();
    if (opt.mode == UDP) {
        dgrams = calloc((size_t)opt.sockets, sizeof *dgrams);
        for (int i = 0; i < UDP_BATCH; i++) {
            riov[i].iov_base = rbuf + (size_t)i * (RBUF / UDP_BATCH);
            riov[i].iov_len = RBUF / UDP_BATCH;
            rmsgs[i].msg_hdr.msg_iov = &riov[i];
            rmsgs[i].msg_hdr.msg_iovlen = 1;
            siov[i].iov_base = payload;
            siov[i].iov_len = (size_t)opt.size;
            smsgs[i].msg_hdr.msg_iov = &siov[i];
            smsgs[i].msg_hdr.msg_iovlen = 1;
        }
        for (long i = 0; i < opt.sockets; i++) {
            int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            if (fd < 0)
                die(1, "cannot open a UDP socket");
            bind_source(fd, i, 0);
            if (connect(fd, (struct sockaddr *)&target, target_len) < 0)
                die(1, "cannot connect a UDP socket");
            dgrams[i].fd = fd;
            dgrams[i].last = began;
            watch(fd, EPOLLIN, &dgrams[i], EPOLL_CTL_ADD);
            udp_fill(&dgrams[i]);
        }
    } else {
        nconns = opt.mode == DAYTIME ? opt.parallel : opt.conns;
        conns = calloc((size_t)nconns, sizeof *conns);
        for (long i = 0; i < nconns; i++) {
            conns[i].index = i;
            if (tcp_open(&conns[i]) < 0) {
                if (opt.mode != DAYTIME)
                    die(1, "cannot connect");
                errors++;
            }
        }
    }

    struct epoll_event events[MAX_EVENTS];
    struct rusage r0, r1;
    double t0 = 0, t1 = 0, warm_end = began + opt.warmup, end = 0;
    double setup_end = warm_end + opt.setup, next_sweep = began;
    long long csw0 = 0, icsw0 = 0;
    for (;;) {
        double t = now();
        double until = phase == 0 ? warm_end - t : end - t;
        int wait_ms = until > 0 ? (int)(until * 1e3) + 1 : 0;
        if (opt.mode == UDP || opt.mode == DAYTIME) {
            int cap = opt.mode == UDP ? (int)(opt.timeout_ms / 4) + 1 : 10;
            if (wait_ms > cap)
                wait_ms = cap;
        } else if (wait_ms > 100) {
            wait_ms = 100;
        }
        int n = epoll_wait(ep, events, MAX_EVENTS, wait_ms);
        if (n < 0 && errno != EINTR)
            die(1, "epoll_wait failed");
        t = now();
        if (phase == 1 && n > 0) {
            wakeups++;
            nevents += n;
        }
        for (int i = 0; i < n; i++) {
            uint32_t ev = events[i].events;
            if (opt.mode == UDP)
                udp_event(events[i].data.ptr, t);
            else if (opt.mode == ECHO)
                echo_event(events[i].data.ptr, ev);
            else if (opt.mode == STREAM)
                stream_event(events[i].data.ptr, ev);
            else
                daytime_event(events[i].data.ptr, ev);
        }
        if (opt.mode == UDP && t >= next_sweep) {
            udp_sweep(t);
            next_sweep = t + opt.timeout_ms / 4e3;
        }
        if (opt.mode == DAYTIME) {
            for (long i = 0; i < nconns; i++)
                if (conns[i].fd < 0 && tcp_open(&conns[i]) < 0)
                    errors++;
        }
        if (phase == 0 && t >= warm_end) {
            int ready = 1;
            if (opt.mode == ECHO || opt.mode == STREAM) {
                for (long i = 0; i < nconns && ready; i++)
                    ready = opt.mode == ECHO ? conns[i].exchanges > 0 : !conns[i].connecting;
            }
            if (ready) {
                phase = 1;
                requests = nbytes = errors = resends = 0;
                printf("start\n");
                fflush(stdout);
                getrusage(RUSAGE_SELF, &r0);
                csw0 = r0.ru_nvcsw;
                icsw0 = r0.ru_nivcsw;
                t0 = now();
                end = t0 + opt.duration;
            } else if (t >= setup_end) {
                die(1, "not every connection was answered during set-up");
            }
        } else if (phase == 1 && t >= end) {
            t1 = now();
            getrusage(RUSAGE_SELF, &r1);
            printf("end\n");
            fflush(stdout);
            break;
        }
    }
    double user = cpu_of(&r1, 1) - cpu_of(&r0, 1);
    double sys = cpu_of(&r1, 0) - cpu_of(&r0, 0);
    printf("{\"mode\": \"%s\", \"requests\": %lld, \"bytes\": %lld, \"seconds\": %.6f, "
           "\"cpu\": %.6f, \"user\": %.6f, \"system\": %.6f, \"errors\": %lld, "
           "\"resends\": %lld, \"wakeups\": %lld, \"events\": %lld, "
           "\"voluntary_switches\": %lld, \"involuntary_switches\": %lld}\n",
           m, requests, nbytes, t1 - t0, user + sys, user, sys, errors, resends, wakeups,
           nevents, (long long)r1.ru_nvcsw - csw0, (long long)r1.ru_nivcsw - icsw0);
    fflush(stdout);
    return 0;
}
