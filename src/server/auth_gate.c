/* auth_gate.c — the authentication-failure budget (docs/security.md,
 * "Authentication failures").
 *
 * A failed authentication or authorization (401, 403) costs the server an
 * audit record and an access-log line; unauthenticated, that is an
 * invitation to fill the disk.  So every failure first passes two budgets:
 *  - per client address (an IPv6 address counts by its /64, which one
 *    host usually owns whole): beyond --auth-fail-rate/--auth-fail-burst the
 *    answer is 429 AUTH_FAILURES_LIMITED, and POST /v1/token from that
 *    address is refused before its secret is even hashed;
 *  - over all addresses: beyond --auth-record-rate/--auth-record-burst a
 *    failure still gets its usual answer but no record and no log line of
 *    its own.
 * Failures past either budget are counted (audit_queue.h: one
 * "<action>.repeated" record per address, action and outcome per window;
 * access_log.h: one line saying how many lines were left out).  Valid
 * credentials never touch these budgets. */
#include "internal.h"

#include "audit_queue.h"
#include "fapiao/metrics.h"
#include "fapiao/ratelimit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* The budget's key for an address: IPv4 whole, IPv6 by its /64. */
static void gate_key(const char *ip, char *out, size_t n)
{
    unsigned char a[16];
    if (strchr(ip, ':') && inet_pton(AF_INET6, ip, a) == 1) {
        memset(a + 8, 0, 8);
        char net[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, net, sizeof net);
        snprintf(out, n, "%s/64", net);
        return;
    }
    snprintf(out, n, "%s", ip);
}

static int wait_seconds(int64_t ns)
{
    return (int)fp_ratelimit_retry_after_s(ns);
}

fp_auth_gate fp_auth_gate_failure(fp_req *r, int *retry_after_s)
{
    fp_server *s = r->srv;
    int64_t now = fp_now_ns(), wait = 0;
    fp_auth_gate g = FP_AUTH_GATE_RECORD;
    fp_limits *l = fp_limits_hold(s);
    if (l->authrl) {
        char key[80];
        gate_key(r->client_ip, key, sizeof key);
        if (!fp_ratelimit_check(l->authrl, key, now, &wait, NULL)) {
            *retry_after_s = wait_seconds(wait);
            g = FP_AUTH_GATE_LIMITED;
        }
    }
    if (g == FP_AUTH_GATE_RECORD && !fp_bucket_take(&l->auth_record, now, NULL))
        g = FP_AUTH_GATE_COUNT;
    fp_limits_release(s);
    fp_counter_inc(s->m_authfail[g]);
    return g;
}

int fp_auth_gate_blocked(fp_req *r, int *retry_after_s)
{
    fp_server *s = r->srv;
    char key[80];
    gate_key(r->client_ip, key, sizeof key);
    int64_t wait = 0;
    fp_limits *l = fp_limits_hold(s);
    int ok = !l->authrl || fp_ratelimit_peek(l->authrl, key, fp_now_ns(), &wait);
    fp_limits_release(s);
    if (ok)
        return 0;
    *retry_after_s = wait_seconds(wait);
    fp_counter_inc(s->m_authfail[FP_AUTH_GATE_LIMITED]);
    return 1;
}
