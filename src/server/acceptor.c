/* acceptor.c — the accept layer in front of libmicrohttpd (acceptor.h).
 *
 * libmicrohttpd accepts everything up to its connection limit and then
 * refuses; a few addresses holding idle sockets locked everyone else out.
 * Here one thread owns the listening socket and, with epoll:
 *
 *   accept         at the cap: close the oldest connection still waiting
 *                  here (then, through `evict`, the oldest handed-over one
 *                  that has not sent a request); over the per-address cap:
 *                  refuse the new one
 *   trusted proxy  read exactly its PROXY v2 header (proxy.h); the address
 *                  in it is the client's from then on
 *   wait           peek (MSG_PEEK, nothing consumed) until the whole first
 *                  TLS record (the ClientHello) is in, within handshake_ms
 *                  of the accept; a PROXY header from anyone else, or bytes
 *                  that are no TLS handshake, are refused.  While the same
 *                  client address keeps sending ClientHellos on its other
 *                  connections, its waiting ones get handshake_ms more, up
 *                  to EXTEND_MAX times (see `extend`)
 *   hand over      MHD_add_connection with the client's address, so that
 *                  libmicrohttpd, allowlists, audit and the access log see it
 *
 * Counts: `total` = waiting + open in libmicrohttpd, and per client address
 * the same, under one mutex; libmicrohttpd's start and close notifications
 * (fp_acceptor_opened/closed) count the connections it holds.  Refused
 * sockets are closed with a reset (SO_LINGER 0) so that they leave nothing
 * behind, but for bytes that are no TLS (an orderly close, see drop).
 * docs/security.md "Connections" has the operator's view. */
#include "acceptor.h"
#include "fapiao/clock.h"
#include "fapiao/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TLS_HANDSHAKE_RECORD 0x16
#define TLS_ALERT_RECORD     0x15
#define TLS_RECORD_MAX       16384
/* a waiting connection lives at most this many handshake_ms (extend) */
#define EXTEND_MAX 10

typedef struct ipkey {
    unsigned char fam; /* 4 or 6; an IPv4-mapped IPv6 address is 4 */
    unsigned char a[16];
} ipkey;

typedef struct ipcount {
    ipkey k;
    int n;
    int64_t hello_ms; /* a connection from k last sent its ClientHello (0: never) */
    struct ipcount *next;
} ipcount;

typedef struct waiting {
    int fd;
    int64_t accepted_ms, deadline_ms;
    int proxy;   /* from a trusted proxy, its header not read yet */
    int proxied; /* the address came from a PROXY header */
    int has_key; /* holds a slot of key */
    ipkey key;
    struct sockaddr_storage peer, client;
    socklen_t peer_len, client_len;
    struct waiting *prev, *next; /* oldest first */
} waiting;

struct fp_acceptor {
    fp_acceptor_opts o;
    fp_allowlist trusted;
    int has_trusted;
    int hard_cap; /* total never goes above, even while evicting */
    int lfd, epfd, evfd, port;
    int started, stopped;
    pthread_t th;
    int64_t paused_until; /* out of descriptors: accepting again at */
    waiting head;         /* sentinel; only the thread touches the list */
    atomic_int nwaiting;
    pthread_mutex_t mu; /* total and the per-address table */
    int total;
    ipcount **buckets;
    size_t nbuckets;
    atomic_uint_fast64_t why[FP_ACC__N];
};

static int key_of(const struct sockaddr *sa, socklen_t len, ipkey *k)
{
    memset(k, 0, sizeof *k);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        k->fam = 4;
        memcpy(k->a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            k->fam = 4;
            memcpy(k->a, a6->s6_addr + 12, 4);
        } else {
            k->fam = 6;
            memcpy(k->a, a6->s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

static size_t bucket(const fp_acceptor *a, const ipkey *k)
{
    uint32_t h = 2166136261u;
    const unsigned char *p = (const unsigned char *)k;
    for (size_t i = 0; i < sizeof *k; i++)
        h = (h ^ p[i]) * 16777619u;
    return h & (a->nbuckets - 1);
}

/* Under mu. */
static ipcount *ip_find(fp_acceptor *a, const ipkey *k)
{
    for (ipcount *c = a->buckets[bucket(a, k)]; c; c = c->next)
        if (memcmp(&c->k, k, sizeof *k) == 0)
            return c;
    return NULL;
}

/* Under mu: one more connection for k, unless k is at cap (> 0): -1. */
static int ip_take(fp_acceptor *a, const ipkey *k, int cap)
{
    ipcount **b = &a->buckets[bucket(a, k)], *c = ip_find(a, k);
    if (c && cap > 0 && c->n >= cap)
        return -1;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return -1;
        c->k = *k;
        c->next = *b;
        *b = c;
    }
    c->n++;
    return 0;
}

/* Under mu. */
static void ip_release(fp_acceptor *a, const ipkey *k)
{
    for (ipcount **p = &a->buckets[bucket(a, k)]; *p; p = &(*p)->next)
        if (memcmp(&(*p)->k, k, sizeof *k) == 0) {
            ipcount *c = *p;
            if (--c->n <= 0) {
                *p = c->next;
                free(c);
            }
            return;
        }
}

static void reset_close(int fd)
{
    struct linger l = {1, 0}; /* RST: no TIME_WAIT left for a refused socket */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static void unlink_waiting(fp_acceptor *a, waiting *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    atomic_fetch_sub(&a->nwaiting, 1);
}

/* Closes a waiting connection; why < 0: the client went away itself. */
static void drop(fp_acceptor *a, waiting *w, int why)
{
    unlink_waiting(a, w);
    if (why >= 0)
        atomic_fetch_add(&a->why[why], 1);
    if (why == FP_ACC_NOT_TLS) {
        /* plain HTTP on the HTTPS port, most likely: an orderly close, as
         * a TLS library would (curl says "empty reply"), after reading
         * what was sent (unread bytes would turn close into a reset) */
        char sink[4096];
        for (int i = 0; i < 16 && recv(w->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
            ;
        close(w->fd);
    } else if (why >= 0) {
        reset_close(w->fd);
    } else {
        close(w->fd);
    }
    pthread_mutex_lock(&a->mu);
    a->total--;
    if (w->has_key)
        ip_release(a, &w->key);
    pthread_mutex_unlock(&a->mu);
    free(w);
}

/* The acceptor lets go of its counts here; libmicrohttpd's notifications
 * take them again (fp_acceptor_opened/closed), which pair exactly. */
static void hand_over(fp_acceptor *a, waiting *w)
{
    epoll_ctl(a->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    unlink_waiting(a, w);
    pthread_mutex_lock(&a->mu);
    a->total--;
    ipcount *c = w->has_key ? ip_find(a, &w->key) : NULL;
    if (c) /* progress: the address's other waiting connections may wait on */
        c->hello_ms = fp_mono_ms();
    if (w->has_key)
        ip_release(a, &w->key);
    pthread_mutex_unlock(&a->mu);
    a->o.hand_over(a->o.cls, w->fd, (const struct sockaddr *)&w->client, w->client_len);
    free(w);
}

/* Reads a trusted proxy's header: 1 done, 0 wait, -1 dropped. */
static int read_proxy_header(fp_acceptor *a, waiting *w)
{
    unsigned char buf[FP_PROXY_V2_MAX];
    ssize_t n = recv(w->fd, buf, sizeof buf, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        drop(a, w, -1);
        return -1;
    }
    fp_proxy_v2 h;
    int r = fp_proxy_v2_parse(buf, (size_t)n, &h, NULL);
    if (r == 0)
        return 0;
    if (r < 0 || recv(w->fd, buf, (size_t)r, 0) != r) {
        drop(a, w, FP_ACC_PROXY_INVALID);
        return -1;
    }
    if (!h.local) { /* LOCAL: the proxy's own connection keeps its address */
        memcpy(&w->client, &h.src, h.src_len);
        w->client_len = h.src_len;
    }
    w->proxy = 0;
    w->proxied = 1;
    pthread_mutex_lock(&a->mu);
    int ok = key_of((struct sockaddr *)&w->client, w->client_len, &w->key) < 0 ||
             ip_take(a, &w->key, a->o.max_per_ip) == 0;
    w->has_key = ok && w->key.fam != 0;
    pthread_mutex_unlock(&a->mu);
    if (!ok) {
        drop(a, w, FP_ACC_PER_IP);
        return -1;
    }
    return 1;
}

/* A waiting connection became readable (or hung up). */
static void step(fp_acceptor *a, waiting *w, int hup)
{
    if (w->proxy) {
        int r = read_proxy_header(a, w);
        if (r < 0)
            return;
        if (r == 0) {
            if (hup)
                drop(a, w, -1);
            return;
        }
    }
    unsigned char hdr[5];
    ssize_t n = recv(w->fd, hdr, sizeof hdr, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (hup)
            drop(a, w, -1);
        return;
    }
    if (n <= 0) {
        drop(a, w, -1);
        return;
    }
    if (hdr[0] == TLS_ALERT_RECORD) {
        drop(a, w, -1); /* a client giving up before its ClientHello (close_notify) */
        return;
    }
    if (hdr[0] != TLS_HANDSHAKE_RECORD) {
        int proxy = fp_proxy_looks_like(hdr, (size_t)n);
        drop(a, w,
             !proxy       ? FP_ACC_NOT_TLS
             : w->proxied ? FP_ACC_PROXY_INVALID
                          : FP_ACC_PROXY_UNTRUSTED);
        return;
    }
    if (n < (ssize_t)sizeof hdr) {
        if (hup)
            drop(a, w, -1);
        return;
    }
    size_t rec = (size_t)hdr[3] << 8 | hdr[4];
    if (hdr[1] != 3 || rec == 0 || rec > TLS_RECORD_MAX) {
        drop(a, w, FP_ACC_NOT_TLS);
        return;
    }
    int avail = 0;
    if (ioctl(w->fd, FIONREAD, &avail) < 0 || (size_t)avail < sizeof hdr + rec) {
        if (hup)
            drop(a, w, -1);
        return;
    }
    hand_over(a, w);
}

static void admit(fp_acceptor *a, int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
    int proxy = a->has_trusted && fp_allowlist_match(&a->trusted, ip);
    waiting *w = calloc(1, sizeof *w);
    if (!w) {
        atomic_fetch_add(&a->why[FP_ACC_GLOBAL], 1);
        reset_close(fd);
        return;
    }
    w->fd = fd;
    w->proxy = proxy;
    memcpy(&w->peer, ss, sl);
    memcpy(&w->client, ss, sl);
    w->peer_len = w->client_len = sl;

    /* the address's own cap first: over it, nobody else is evicted for it
     * (a proxy's connections are counted under their client's address,
     * once its header is read) */
    int why = -1, full;
    pthread_mutex_lock(&a->mu);
    if (!proxy && key_of((struct sockaddr *)ss, sl, &w->key) == 0) {
        if (ip_take(a, &w->key, a->o.max_per_ip) < 0)
            why = FP_ACC_PER_IP;
        else
            w->has_key = 1;
    }
    full = a->total >= a->o.max_conns;
    pthread_mutex_unlock(&a->mu);
    if (why < 0 && full) {
        /* the oldest connection that has not even started its handshake
         * makes room; else the oldest handed over that sent no request
         * (its close comes back through fp_acceptor_closed, so the new one
         * is let in above the cap, up to hard_cap, meanwhile) */
        if (a->head.next != &a->head)
            drop(a, a->head.next, FP_ACC_EVICTED);
        else if (!a->o.evict || !a->o.evict(a->o.cls))
            why = FP_ACC_GLOBAL;
    }
    pthread_mutex_lock(&a->mu);
    if (why < 0 && a->total >= a->hard_cap)
        why = FP_ACC_GLOBAL;
    if (why < 0)
        a->total++;
    else if (w->has_key)
        ip_release(a, &w->key);
    pthread_mutex_unlock(&a->mu);
    if (why >= 0) {
        atomic_fetch_add(&a->why[why], 1);
        reset_close(fd);
        free(w);
        return;
    }
    w->accepted_ms = fp_mono_ms();
    w->deadline_ms = w->accepted_ms + a->o.handshake_ms;
    w->prev = a->head.prev;
    w->next = &a->head;
    a->head.prev->next = w;
    a->head.prev = w;
    atomic_fetch_add(&a->nwaiting, 1);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = w};
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        drop(a, w, FP_ACC_GLOBAL);
}

static void pause_accepting(fp_acceptor *a, int ms)
{
    struct epoll_event ev = {.events = 0, .data.ptr = NULL};
    epoll_ctl(a->epfd, EPOLL_CTL_MOD, a->lfd, &ev);
    a->paused_until = fp_mono_ms() + ms;
}

static void accept_some(fp_acceptor *a)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(a->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(a, fd, &ss, sl);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* out of descriptors: the oldest waiting one gives its own */
            if (a->head.next != &a->head) {
                drop(a, a->head.next, FP_ACC_EVICTED);
                continue;
            }
            pause_accepting(a, 100);
        }
        return; /* EAGAIN or a hard error */
    }
}

/* w is due.  A client that opens many connections at once and then runs
 * their TLS handshakes one after another (libcurl's multi interface in one
 * thread: about 20 ms of CPU each, far more on a busy machine) sends its
 * later ClientHellos long after their accept; 64 such connections through
 * HAProxy missed the 2 s deadline (docs/ha.md §5.5).  So while the same
 * address has sent a ClientHello on another connection within the last
 * handshake_ms, w gets handshake_ms more, up to EXTEND_MAX handshake_ms
 * after its accept; an address that sends nothing (idle sockets) gets
 * none.  w moves to keep the list in deadline order: 1 extended. */
static int extend(fp_acceptor *a, waiting *w, int64_t now)
{
    int64_t last = a->o.handshake_ms * (int64_t)EXTEND_MAX + w->accepted_ms;
    if (!w->has_key || now >= last)
        return 0;
    pthread_mutex_lock(&a->mu);
    ipcount *c = ip_find(a, &w->key);
    int alive = c && c->hello_ms > 0 && now - c->hello_ms < a->o.handshake_ms;
    pthread_mutex_unlock(&a->mu);
    if (!alive)
        return 0;
    w->deadline_ms = now + a->o.handshake_ms < last ? now + a->o.handshake_ms : last;
    waiting *at = a->head.prev; /* the new place: after the last one due before */
    while (at != &a->head && at->deadline_ms > w->deadline_ms)
        at = at->prev;
    if (at != w) {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        w->prev = at;
        w->next = at->next;
        at->next->prev = w;
        at->next = w;
    }
    return 1;
}

static void *run(void *arg)
{
    fp_acceptor *a = arg;
    struct epoll_event evs[64];
    for (;;) {
        int64_t now = fp_mono_ms();
        int timeout = 1000;
        if (a->head.next != &a->head) {
            int64_t d = a->head.next->deadline_ms - now; /* the oldest is due first */
            timeout = d < 0 ? 0 : d < timeout ? (int)d : timeout;
        }
        if (a->paused_until) {
            int64_t d = a->paused_until - now;
            timeout = d < 0 ? 0 : d < timeout ? (int)d : timeout;
        }
        int n = epoll_wait(a->epfd, evs, 64, timeout);
        int listen_ready = 0;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == a)
                return NULL; /* stop */
            if (!p) {
                listen_ready = 1;
                continue;
            }
            step(a, p, (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
        }
        /* after the waiting ones: admitting may evict (free) one of them */
        if (listen_ready)
            accept_some(a);
        now = fp_mono_ms();
        if (a->paused_until && now >= a->paused_until) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
            epoll_ctl(a->epfd, EPOLL_CTL_MOD, a->lfd, &ev);
            a->paused_until = 0;
        }
        while (a->head.next != &a->head && a->head.next->deadline_ms <= now)
            if (!extend(a, a->head.next, now))
                drop(a, a->head.next, FP_ACC_HANDSHAKE_TIMEOUT);
    }
}

int fp_acceptor_start(const fp_acceptor_opts *o, fp_acceptor **out, fp_err *err)
{
    fp_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    a->o = *o;
    if (a->o.max_conns < 1)
        a->o.max_conns = 1;
    if (a->o.handshake_ms < 1)
        a->o.handshake_ms = 1;
    a->hard_cap = a->o.max_conns + a->o.max_conns / 4 + 4;
    if (o->trusted && o->trusted->n > 0) {
        a->trusted = *o->trusted;
        a->has_trusted = 1;
    }
    a->o.trusted = NULL;
    a->lfd = a->epfd = a->evfd = -1;
    a->head.next = a->head.prev = &a->head;
    pthread_mutex_init(&a->mu, NULL);
    for (a->nbuckets = 64; a->nbuckets < (size_t)a->o.max_conns && a->nbuckets < 65536;)
        a->nbuckets <<= 1;
    int rc = 0, one = 1;
    struct epoll_event ev = {.events = EPOLLIN};
    if (!(a->buckets = calloc(a->nbuckets, sizeof *a->buckets))) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    a->lfd = socket(o->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (a->lfd < 0 || setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (o->addr->sa_family == AF_INET6 &&
         setsockopt(a->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
        bind(a->lfd, o->addr, o->addrlen) < 0 || listen(a->lfd, SOMAXCONN) < 0) {
        rc = fp_fail(err, FP_EIO, "%s", strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(a->lfd, (struct sockaddr *)&ss, &sl) == 0)
        a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    if ((a->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->lfd, &(struct epoll_event){EPOLLIN, {.ptr = NULL}}) <
            0) {
        rc = fp_fail(err, FP_EIO, "epoll: %s", strerror(errno));
        goto fail;
    }
    ev.data.ptr = a;
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->evfd, &ev) < 0 ||
        pthread_create(&a->th, NULL, run, a) != 0) {
        rc = fp_fail(err, FP_EIO, "cannot start the accept thread");
        goto fail;
    }
    a->started = 1;
    *out = a;
    return 0;
fail:
    fp_acceptor_free(a);
    return rc;
}

int fp_acceptor_port(const fp_acceptor *a)
{
    return a->port;
}

void fp_acceptor_stop(fp_acceptor *a)
{
    if (!a || a->stopped)
        return;
    a->stopped = 1;
    if (a->started) {
        uint64_t one = 1;
        ssize_t wr = write(a->evfd, &one, sizeof one);
        (void)wr;
        pthread_join(a->th, NULL);
    }
    while (a->head.next != &a->head)
        drop(a, a->head.next, -1);
    if (a->lfd >= 0)
        close(a->lfd);
    if (a->epfd >= 0)
        close(a->epfd);
    if (a->evfd >= 0)
        close(a->evfd);
    a->lfd = a->epfd = a->evfd = -1;
}

void fp_acceptor_opened(fp_acceptor *a, const struct sockaddr *sa, socklen_t len)
{
    if (!a)
        return;
    ipkey k;
    int keyed = sa && key_of(sa, len, &k) == 0;
    pthread_mutex_lock(&a->mu);
    a->total++;
    if (keyed) /* no cap: it was checked at the accept */
        ip_take(a, &k, 0);
    pthread_mutex_unlock(&a->mu);
}

void fp_acceptor_closed(fp_acceptor *a, const struct sockaddr *sa, socklen_t len)
{
    if (!a)
        return;
    ipkey k;
    int keyed = sa && key_of(sa, len, &k) == 0;
    pthread_mutex_lock(&a->mu);
    a->total--;
    if (keyed)
        ip_release(a, &k);
    pthread_mutex_unlock(&a->mu);
}

void fp_acceptor_free(fp_acceptor *a)
{
    if (!a)
        return;
    fp_acceptor_stop(a);
    for (size_t i = 0; a->buckets && i < a->nbuckets; i++)
        for (ipcount *c = a->buckets[i], *n; c; c = n) {
            n = c->next;
            free(c);
        }
    free(a->buckets);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

uint64_t fp_acceptor_count(fp_acceptor *a, int why)
{
    return a ? atomic_load(&a->why[why]) : 0;
}

int fp_acceptor_waiting(fp_acceptor *a)
{
    return a ? atomic_load(&a->nwaiting) : 0;
}
