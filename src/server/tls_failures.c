/* tls_failures.c — the record of failed TLS handshakes (tls_failures.h).
 *
 * Filled by tls.c, which watches every handshake (see "watching
 * handshakes" there); read by the metrics and the admin endpoint.  One
 * entry per (address, reason), in a fixed array searched linearly under a
 * mutex: failures are rare next to requests, and the table is small
 * (FP_TLSF_CAP by default), so a scan is cheaper than keeping a hash.  A
 * flood of failures from many addresses evicts the least recently seen
 * entries (counted in `evicted`); the per-reason totals never lose
 * anything. */
#include "tls_failures.h"
#include "fapiao/clock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char addr[INET6_ADDRSTRLEN];
    int reason; /* -1: free */
    uint64_t count;
    int64_t first_ms, last_ms;
} entry;

struct fp_tls_failures {
    pthread_mutex_t mu;
    int cap;
    entry *e;
    uint64_t evicted;
    atomic_uint_fast64_t total[FP_TLSF__N];
};

static const char *const names[FP_TLSF__N] = {
    [FP_TLSF_UNKNOWN_CA] = "unknown_ca",
    [FP_TLSF_BAD_CERTIFICATE] = "bad_certificate",
    [FP_TLSF_CERTIFICATE_UNKNOWN] = "certificate_unknown",
    [FP_TLSF_CERTIFICATE_EXPIRED] = "certificate_expired",
    [FP_TLSF_HANDSHAKE_FAILURE] = "handshake_failure",
    [FP_TLSF_PROTOCOL_VERSION] = "protocol_version",
    [FP_TLSF_OTHER_ALERT] = "other_alert",
    [FP_TLSF_VERSION_TOO_OLD] = "version_too_old",
    [FP_TLSF_CLOSED] = "closed_in_handshake",
    [FP_TLSF_SERVER_REFUSED] = "server_refused",
    [FP_TLSF_CLIENT_CERT_UNTRUSTED] = "client_cert_untrusted",
};

/* TLS alert descriptions (RFC 8446 6.2) with a reason of their own. */
static const struct {
    int alert, reason;
} alerts[] = {
    {48, FP_TLSF_UNKNOWN_CA},
    {42, FP_TLSF_BAD_CERTIFICATE},
    {46, FP_TLSF_CERTIFICATE_UNKNOWN},
    {45, FP_TLSF_CERTIFICATE_EXPIRED},
    {40, FP_TLSF_HANDSHAKE_FAILURE},
    {70, FP_TLSF_PROTOCOL_VERSION},
    /* close_notify, user_canceled: a client giving up (curl at its connect timeout) */
    {0, FP_TLSF_CLOSED},
    {90, FP_TLSF_CLOSED},
};

fp_tls_failures *fp_tls_failures_new(int cap)
{
    fp_tls_failures *f = calloc(1, sizeof *f);
    if (!f || cap < 1 || !(f->e = calloc((size_t)cap, sizeof *f->e))) {
        free(f);
        return NULL;
    }
    f->cap = cap;
    for (int i = 0; i < cap; i++)
        f->e[i].reason = -1;
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void fp_tls_failures_free(fp_tls_failures *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f->e);
    free(f);
}

int fp_tls_failures_reason_of_alert(int alert)
{
    for (size_t i = 0; i < sizeof alerts / sizeof alerts[0]; i++)
        if (alerts[i].alert == alert)
            return alerts[i].reason;
    return FP_TLSF_OTHER_ALERT;
}

const char *fp_tls_failures_reason_name(int reason)
{
    return reason >= 0 && reason < FP_TLSF__N ? names[reason] : "?";
}

static void addr_text(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* the same client as over IPv4 */
            inet_ntop(AF_INET, a->s6_addr + 12, out, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)cap);
    }
}

void fp_tls_failures_add(fp_tls_failures *f, const struct sockaddr *sa, socklen_t len, int reason)
{
    if (!f || reason < 0 || reason >= FP_TLSF__N)
        return;
    atomic_fetch_add(&f->total[reason], 1);
    char addr[INET6_ADDRSTRLEN];
    addr_text(sa, len, addr, sizeof addr);
    int64_t now = fp_wall_ms();
    pthread_mutex_lock(&f->mu);
    entry *hit = NULL, *victim = &f->e[0];
    for (int i = 0; i < f->cap && !hit; i++) {
        entry *e = &f->e[i];
        if (e->reason == reason && strcmp(e->addr, addr) == 0)
            hit = e;
        else if (victim->reason >= 0 && (e->reason < 0 || e->last_ms < victim->last_ms))
            victim = e; /* a free one, else the least recently seen */
    }
    if (!hit) {
        if (victim->reason >= 0)
            f->evicted++;
        hit = victim;
        memset(hit, 0, sizeof *hit);
        snprintf(hit->addr, sizeof hit->addr, "%s", addr);
        hit->reason = reason;
        hit->first_ms = now;
    }
    hit->count++;
    hit->last_ms = now;
    pthread_mutex_unlock(&f->mu);
}

uint64_t fp_tls_failures_total(fp_tls_failures *f, int reason)
{
    return f && reason >= 0 && reason < FP_TLSF__N ? atomic_load(&f->total[reason]) : 0;
}

uint64_t fp_tls_failures_evicted(fp_tls_failures *f)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->evicted;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int by_last_seen_desc(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return (x->last_ms < y->last_ms) - (x->last_ms > y->last_ms);
}

void fp_tls_failures_json(fp_tls_failures *f, fp_jw *w)
{
    fp_jw_obj_open(w);
    if (!f) {
        fp_jw_obj_close(w);
        return;
    }
    pthread_mutex_lock(&f->mu);
    entry *copy = malloc((size_t)f->cap * sizeof *copy);
    int n = 0;
    for (int i = 0; copy && i < f->cap; i++)
        if (f->e[i].reason >= 0)
            copy[n++] = f->e[i];
    uint64_t evicted = f->evicted;
    pthread_mutex_unlock(&f->mu);
    if (copy)
        qsort(copy, (size_t)n, sizeof *copy, by_last_seen_desc);
    fp_jw_kint(w, "capacity", f->cap);
    fp_jw_kint(w, "evicted", (long long)evicted);
    fp_jw_key(w, "totals");
    fp_jw_obj_open(w);
    for (int r = 0; r < FP_TLSF__N; r++)
        fp_jw_kint(w, names[r], (long long)atomic_load(&f->total[r]));
    fp_jw_obj_close(w);
    fp_jw_key(w, "failures");
    fp_jw_arr_open(w);
    for (int i = 0; i < n; i++) {
        fp_jw_obj_open(w);
        fp_jw_kstr(w, "address", copy[i].addr);
        fp_jw_kstr(w, "reason", names[copy[i].reason]);
        fp_jw_kint(w, "count", (long long)copy[i].count);
        fp_jw_kint(w, "first_seen_ms", copy[i].first_ms);
        fp_jw_kint(w, "last_seen_ms", copy[i].last_ms);
        fp_jw_obj_close(w);
    }
    fp_jw_arr_close(w);
    fp_jw_obj_close(w);
    free(copy);
}
