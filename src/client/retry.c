/* retry.c — the client's retry policy: which outcomes are retried, the
 * backoff with full jitter, and Retry-After.  Pure functions (no I/O, no
 * clock but what the caller passes), so tests/unit/test_client_retry.c
 * checks them exhaustively.  Why full jitter: many ERP connectors that lost
 * the server together come back together; a delay drawn evenly from
 * [0, base * 2^n] spreads them, where "base * 2^n + small jitter" keeps them
 * in step (docs/client.md). */
#include "fapiao-client/client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Problem codes a 409 carries that no wait can change. */
static const char *const final_conflicts[] = {"RED_FORM_STATE", "JOB_STATE", NULL};

static int is_final_conflict(const char *problem)
{
    for (int i = 0; problem && final_conflicts[i]; i++)
        if (strcmp(problem, final_conflicts[i]) == 0)
            return 1;
    return 0;
}

fpc_verdict fpc_classify(fpc_kind kind, int status, int sent, const char *problem, int refreshed)
{
    if (status == 0) /* connection level: nothing, or no answer, came back */
        return kind != FPC_KIND_UNKEYED || !sent ? FPC_RETRY : FPC_FAIL;
    if (status >= 200 && status < 300)
        return status == 202 && kind == FPC_KIND_GET ? FPC_RETRY : FPC_DONE;
    if (status == 401)
        return refreshed ? FPC_FAIL : FPC_REFRESH;
    if (status == 429)
        return FPC_RETRY; /* refused before acting, whatever the kind */
    if (status == 409)
        return kind != FPC_KIND_UNKEYED && !is_final_conflict(problem) ? FPC_RETRY : FPC_FAIL;
    if (status == 503)
        return FPC_RETRY; /* degraded, shutting down, outcome unknown: the key makes it safe */
    if (status >= 500)
        return kind != FPC_KIND_UNKEYED ? FPC_RETRY : FPC_FAIL;
    return FPC_FAIL; /* every other 4xx (and 1xx/3xx, which we never ask for) */
}

/* xorshift64*: small, seedable, good enough to spread retries. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* uniform in [0, hi] */
static int64_t uniform(uint64_t *rng, int64_t hi)
{
    if (hi <= 0)
        return 0;
    return (int64_t)(next_rand(rng) % ((uint64_t)hi + 1));
}

int64_t fpc_backoff_ms(int n, int base_ms, int cap_ms, uint64_t *rng)
{
    if (base_ms < 1)
        base_ms = 1;
    if (cap_ms < base_ms)
        cap_ms = base_ms;
    int64_t ceiling = base_ms;
    for (int i = 0; i < n && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    return uniform(rng, ceiling);
}

int64_t fpc_retry_wait_ms(int n, int retry_after_s, int base_ms, int cap_ms, uint64_t *rng)
{
    if (retry_after_s >= 0) /* the server's wait is a floor; a little jitter spreads the herd */
        return (int64_t)retry_after_s * 1000 + uniform(rng, base_ms > 0 ? base_ms : 1);
    return fpc_backoff_ms(n, base_ms, cap_ms, rng);
}

int fpc_parse_retry_after(const char *v, int64_t now_s)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        char *end;
        long long s = strtoll(v, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            return -1;
        return s > 86400 ? 86400 : (int)s;
    }
    struct tm tm = {0}; /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    int64_t at = (int64_t)timegm(&tm), d = at - now_s;
    return d < 0 ? 0 : d > 86400 ? 86400 : (int)d;
}
