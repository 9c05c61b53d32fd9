/* test_acceptor.c — acceptor.h on loopback with a recording hand-over in
 * place of libmicrohttpd: the first TLS record is what hands a connection
 * over (with the peer's address, or the one of a trusted proxy's PROXY v2
 * header), the per-address cap counts waiting and handed-over connections
 * until their close is reported, the oldest waiting connection is evicted at
 * the global cap, the pre-handshake deadline closes idle ones, and PROXY
 * headers from untrusted addresses, trusted ones without a header, and
 * bytes that are no TLS record are refused. */
#include "check.h"

#include "../../src/server/acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int fd;
    struct sockaddr_storage sa;
    socklen_t len;
} handed[16];
static int nhanded;

static void record(void *cls, int fd, const struct sockaddr *sa, socklen_t len)
{
    (void)cls;
    pthread_mutex_lock(&mu);
    if (nhanded < 16) {
        handed[nhanded].fd = fd;
        memcpy(&handed[nhanded].sa, sa, len);
        handed[nhanded].len = len;
        nhanded++;
    } else {
        close(fd);
    }
    pthread_mutex_unlock(&mu);
}

static int handed_count(void)
{
    pthread_mutex_lock(&mu);
    int n = nhanded;
    pthread_mutex_unlock(&mu);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 when the server closed fd within ms. */
static int closed_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static const unsigned char tls_record[] = {0x16, 0x03, 0x01, 0x00, 0x04, 1, 2, 3, 4};

static size_t proxy_v2(unsigned char *h, const char *src)
{
    static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                          0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(h, sig, 12);
    h[12] = 0x21, h[13] = 0x11, h[14] = 0, h[15] = 12;
    inet_pton(AF_INET, src, h + 16);
    inet_pton(AF_INET, "127.0.0.1", h + 20);
    h[24] = 0x9C, h[25] = 0x40, h[26] = 0x01, h[27] = 0xBB;
    return 28;
}

static const char *ip_of(int i, char *buf)
{
    inet_ntop(AF_INET, &((struct sockaddr_in *)&handed[i].sa)->sin_addr, buf, 64);
    return buf;
}

static int wait_handed(int n)
{
    for (int i = 0; i < 200 && handed_count() < n; i++)
        sleep_ms(10);
    return handed_count();
}

int main(void)
{
    struct sockaddr_in la = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
    fp_allowlist trusted;
    CHECK(fp_allowlist_parse("127.0.0.2", &trusted, NULL, 0) == 0);
    fp_acceptor_opts o = {.addr = (struct sockaddr *)&la,
                          .addrlen = sizeof la,
                          .max_conns = 4,
                          .max_per_ip = 2,
                          .handshake_ms = 800,
                          .trusted = &trusted,
                          .hand_over = record};
    fp_acceptor *a = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_acceptor_start(&o, &a, &err) == 0, "start: %s", err.msg))
        return check_summary();
    int port = fp_acceptor_port(a);
    char ip[64];

    check_ctx("first TLS record hands over with the peer's address");
    int c1 = connect_from("127.0.0.3", port);
    CHECK(send(c1, tls_record, 5, 0) == 5); /* the header alone: not yet */
    sleep_ms(100);
    CHECK_EQ_INT(handed_count(), 0);
    CHECK(send(c1, tls_record + 5, sizeof tls_record - 5, 0) == 4);
    CHECK_EQ_INT(wait_handed(1), 1);
    CHECK_EQ_STR(ip_of(0, ip), "127.0.0.3");
    fp_acceptor_opened(a, (struct sockaddr *)&handed[0].sa, handed[0].len); /* as MHD would */

    check_ctx("per-address cap counts handed-over connections");
    int c2 = connect_from("127.0.0.3", port), c3 = connect_from("127.0.0.3", port);
    CHECK(!closed_within(c2, 200));
    CHECK(closed_within(c3, 1000));
    CHECK_EQ_INT((int)fp_acceptor_count(a, FP_ACC_PER_IP), 1);
    close(c3);
    fp_acceptor_closed(a, (struct sockaddr *)&handed[0].sa, handed[0].len);
    c3 = connect_from("127.0.0.3", port);
    CHECK(!closed_within(c3, 200)); /* room again after the close */

    check_ctx("pre-handshake deadline");
    CHECK(closed_within(c2, 3000));
    CHECK(closed_within(c3, 3000));
    CHECK((int)fp_acceptor_count(a, FP_ACC_HANDSHAKE_TIMEOUT) >= 2);
    close(c2);
    close(c3);

    check_ctx("trusted proxy: the header's source is the client");
    unsigned char buf[64];
    int p1 = connect_from("127.0.0.2", port);
    size_t n = proxy_v2(buf, "203.0.113.5");
    memcpy(buf + n, tls_record, sizeof tls_record);
    CHECK(send(p1, buf, n + sizeof tls_record, 0) == (ssize_t)(n + sizeof tls_record));
    CHECK_EQ_INT(wait_handed(2), 2);
    CHECK_EQ_STR(ip_of(1, ip), "203.0.113.5");
    /* the header was consumed, the TLS record was not */
    unsigned char got[16];
    CHECK_EQ_INT((int)recv(handed[1].fd, got, sizeof got, MSG_DONTWAIT), (int)sizeof tls_record);
    CHECK(memcmp(got, tls_record, sizeof tls_record) == 0);

    check_ctx("trusted proxy without a header");
    int p2 = connect_from("127.0.0.2", port);
    CHECK(send(p2, tls_record, sizeof tls_record, 0) == (ssize_t)sizeof tls_record);
    CHECK(closed_within(p2, 1000));
    CHECK_EQ_INT((int)fp_acceptor_count(a, FP_ACC_PROXY_INVALID), 1);
    close(p2);

    check_ctx("PROXY header from an untrusted address");
    int u = connect_from("127.0.0.4", port);
    CHECK(send(u, buf, n + sizeof tls_record, 0) == (ssize_t)(n + sizeof tls_record));
    CHECK(closed_within(u, 1000));
    CHECK_EQ_INT((int)fp_acceptor_count(a, FP_ACC_PROXY_UNTRUSTED), 1);
    close(u);

    check_ctx("not TLS");
    int h = connect_from("127.0.0.4", port);
    CHECK(send(h, "GET / HTTP/1.1\r\n", 16, 0) == 16);
    CHECK(closed_within(h, 1000));
    CHECK_EQ_INT((int)fp_acceptor_count(a, FP_ACC_NOT_TLS), 1);
    close(h);

    fp_acceptor_free(a);

    check_ctx("at the global cap the oldest waiting one is evicted");
    o.max_conns = 3;
    o.handshake_ms = 30000;
    if (!CHECK_MSG(fp_acceptor_start(&o, &a, &err) == 0, "start: %s", err.msg))
        return check_summary();
    port = fp_acceptor_port(a);
    int w[4];
    for (int i = 0; i < 3; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 5 + i);
        w[i] = connect_from(src, port);
        sleep_ms(30); /* accepted in this order */
    }
    sleep_ms(100);
    CHECK_EQ_INT(fp_acceptor_waiting(a), 3);
    CHECK(!closed_within(w[0], 0));
    w[3] = connect_from("127.0.0.8", port);
    CHECK(closed_within(w[0], 1000));
    CHECK(!closed_within(w[1], 100) && !closed_within(w[2], 0) && !closed_within(w[3], 0));
    CHECK_EQ_INT((int)fp_acceptor_count(a, FP_ACC_EVICTED), 1);
    CHECK_EQ_INT(fp_acceptor_waiting(a), 3);

    check_ctx("stop closes the waiting ones");
    fp_acceptor_stop(a);
    CHECK_EQ_INT(fp_acceptor_waiting(a), 0);
    for (int i = 1; i < 4; i++) {
        CHECK(closed_within(w[i], 1000));
        close(w[i]);
    }
    close(w[0]);
    fp_acceptor_free(a);
    for (int i = 0; i < nhanded; i++)
        close(handed[i].fd);
    close(c1);
    close(p1);
    return check_summary();
}
