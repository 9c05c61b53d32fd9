/* test_client_retry.c — libfapiao-client's retry policy (src/client/retry.c),
 * through the shared library's exported functions: the backoff's bounds,
 * that its jitter is full (even over [0, ceiling]), Retry-After as a floor
 * that wins over the backoff, Retry-After parsing, and the table of which
 * answers are retried (include/fapiao-client/client.h). */
#include "check.h"
#include "fapiao-client/client.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

static void backoff_bounds(void)
{
    uint64_t rng = 42;
    for (int n = 0; n <= 20; n++) {
        int64_t ceiling = 100;
        for (int i = 0; i < n && ceiling < 10000; i++)
            ceiling *= 2;
        if (ceiling > 10000)
            ceiling = 10000;
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 20000; i++) {
            int64_t d = fpc_backoff_ms(n, 100, 10000, &rng);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        check_ctx("n=%d ceiling=%lld lo=%lld hi=%lld", n, (long long)ceiling, (long long)lo,
                  (long long)hi);
        CHECK(lo >= 0);
        CHECK(hi <= ceiling); /* the cap holds */
        /* full jitter: the whole range is used, from near 0 to near the ceiling */
        CHECK(lo <= ceiling / 20);
        CHECK(hi >= ceiling - ceiling / 20);
    }
    check_ctx("%s", "");
    /* nonsense options do not break it */
    CHECK(fpc_backoff_ms(3, 0, 0, &rng) <= 1);
    CHECK(fpc_backoff_ms(1000, 100, 10000, &rng) <= 10000);
}

static void jitter_distribution(void)
{
    /* 200,000 draws of the 6th backoff (ceiling 3,200 ms) into 10 bins: each
     * within 3 % of the even share (the seed is fixed: no flakiness) */
    enum { DRAWS = 200000, BINS = 10 };
    int bins[BINS] = {0};
    uint64_t rng = 7;
    for (int i = 0; i < DRAWS; i++) {
        int64_t d = fpc_backoff_ms(5, 100, 10000, &rng);
        int b = (int)(d * BINS / 3201);
        bins[b < BINS ? b : BINS - 1]++;
    }
    for (int b = 0; b < BINS; b++) {
        check_ctx("bin %d holds %d", b, bins[b]);
        CHECK(bins[b] > DRAWS / BINS * 97 / 100 && bins[b] < DRAWS / BINS * 103 / 100);
    }
    /* two seeds give two sequences: connectors do not retry in step */
    uint64_t a = 1, c = 2;
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += fpc_backoff_ms(8, 100, 10000, &a) == fpc_backoff_ms(8, 100, 10000, &c);
    check_ctx("%d of 100 equal", same);
    CHECK(same < 10);
    check_ctx("%s", "");
}

static void retry_after_precedence(void)
{
    uint64_t rng = 99;
    for (int i = 0; i < 5000; i++) {
        /* Retry-After is a floor, whatever the attempt number */
        int64_t w = fpc_retry_wait_ms(i % 12, 7, 100, 10000, &rng);
        CHECK(w >= 7000 && w <= 7100);
        /* and is not cut by the cap: the server knows how long it needs */
        w = fpc_retry_wait_ms(i % 12, 30, 100, 10000, &rng);
        CHECK(w >= 30000 && w <= 30100);
        /* Retry-After: 0 retries at once, give or take the jitter */
        w = fpc_retry_wait_ms(9, 0, 100, 10000, &rng);
        CHECK(w >= 0 && w <= 100);
        /* absent: the backoff */
        w = fpc_retry_wait_ms(2, -1, 100, 10000, &rng);
        CHECK(w >= 0 && w <= 400);
    }
}

static void retry_after_parsing(void)
{
    int64_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    static const struct {
        const char *v;
        int want;
    } cases[] = {
        {"5", 5},
        {" 12 ", 12},
        {"0", 0},
        {"999999", 86400},
        {"", -1},
        {"abc", -1},
        {"5x", -1},
        {"-3", -1},
        {"Tue, 14 Nov 2023 22:13:50 GMT", 30},
        {"Tue, 14 Nov 2023 22:00:00 GMT", 0}, /* past */
        {"Tue, 14 Nov 2023 22:13:50", -1},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("Retry-After: %s", cases[i].v);
        CHECK_EQ_INT(fpc_parse_retry_after(cases[i].v, now), cases[i].want);
    }
    CHECK_EQ_INT(fpc_parse_retry_after(NULL, now), -1);
    check_ctx("%s", "");
}

static void which_answers_are_retried(void)
{
    enum { G = FPC_KIND_GET, K = FPC_KIND_KEYED, U = FPC_KIND_UNKEYED };
    static const struct {
        int kind, status, sent;
        const char *problem;
        int refreshed;
        fpc_verdict want;
    } cases[] = {
        /* connection level */
        {K, 0, 0, NULL, 0, FPC_RETRY},
        {K, 0, 1, NULL, 0, FPC_RETRY}, /* reset mid-answer: the key makes it safe */
        {G, 0, 1, NULL, 0, FPC_RETRY},
        {U, 0, 0, NULL, 0, FPC_RETRY}, /* never sent */
        {U, 0, 1, NULL, 0, FPC_FAIL},  /* may have acted */
        /* success */
        {K, 201, 1, NULL, 0, FPC_DONE},
        {G, 200, 1, NULL, 0, FPC_DONE},
        {G, 202, 1, NULL, 0, FPC_RETRY}, /* a PDF not rendered yet */
        {K, 202, 1, NULL, 0, FPC_DONE},
        /* 429 and 503: refused before acting */
        {K, 429, 1, "RATE_LIMITED", 0, FPC_RETRY},
        {U, 429, 1, "RATE_LIMITED", 0, FPC_RETRY},
        {K, 503, 1, "DEGRADED", 0, FPC_RETRY},
        {K, 503, 1, "OUTCOME_UNKNOWN", 0, FPC_RETRY},
        {U, 503, 1, "SHUTTING_DOWN", 0, FPC_RETRY},
        /* other 5xx: for keyed POSTs and reads only */
        {K, 500, 1, "INTERNAL", 0, FPC_RETRY},
        {K, 502, 1, NULL, 0, FPC_RETRY},
        {G, 504, 1, NULL, 0, FPC_RETRY},
        {U, 500, 1, "INTERNAL", 0, FPC_FAIL},
        /* 409: in progress is retried; a state conflict is not */
        {K, 409, 1, "IDEMPOTENCY_IN_PROGRESS", 0, FPC_RETRY},
        {K, 409, 1, "RED_FORM_STATE", 0, FPC_FAIL},
        {U, 409, 1, "JOB_STATE", 0, FPC_FAIL},
        /* 401: one refresh, then final */
        {K, 401, 1, "TOKEN_EXPIRED", 0, FPC_REFRESH},
        {K, 401, 1, "UNAUTHENTICATED", 0, FPC_REFRESH},
        {K, 401, 1, "TOKEN_EXPIRED", 1, FPC_FAIL},
        /* every other 4xx: never */
        {K, 400, 1, "INVALID_FIELD", 0, FPC_FAIL},
        {K, 403, 1, "IP_NOT_ALLOWED", 0, FPC_FAIL},
        {G, 404, 1, "NOT_FOUND", 0, FPC_FAIL},
        {K, 413, 1, "BODY_TOO_LARGE", 0, FPC_FAIL},
        {K, 415, 1, "UNSUPPORTED_MEDIA_TYPE", 0, FPC_FAIL},
        {K, 422, 1, "IDEMPOTENCY_KEY_REUSED", 0, FPC_FAIL},
        {G, 405, 1, "METHOD_NOT_ALLOWED", 0, FPC_FAIL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("row %zu: kind %d status %d sent %d %s refreshed %d", i, cases[i].kind,
                  cases[i].status, cases[i].sent, cases[i].problem ? cases[i].problem : "-",
                  cases[i].refreshed);
        CHECK_EQ_INT(fpc_classify((fpc_kind)cases[i].kind, cases[i].status, cases[i].sent,
                                  cases[i].problem, cases[i].refreshed),
                     cases[i].want);
    }
    check_ctx("%s", "");
}

static void bad_arguments(void)
{
    fpc_client *c = NULL;
    fpc_error err;
    CHECK_EQ_INT(
        fpc_client_new(&(fpc_opts){.servers = "ftp://x", .client_id = "a", .client_secret = "b"},
                       &c, &err),
        FPC_EINVAL);
    CHECK(c == NULL);
    CHECK_EQ_STR(err.code, "INVALID_ARGUMENT");
    CHECK_EQ_INT(
        fpc_client_new(
            &(fpc_opts){.servers = "https://127.0.0.1:1", .client_id = "a", .client_secret = "b"},
            &c, &err),
        0);
    fpc_result res;
    /* a serial that cannot be an Idempotency-Key: refused before anything is sent */
    CHECK_EQ_INT(fpc_issue(c, "no spaces", "{}", 2, &res, &err), FPC_EINVAL);
    CHECK_EQ_INT(err.attempts, 0);
    CHECK_EQ_INT(fpc_issue(c, "", "{}", 2, &res, &err), FPC_EINVAL);
    fpc_client_free(c);
    fpc_client_free(NULL);
}

int main(void)
{
    backoff_bounds();
    jitter_distribution();
    retry_after_precedence();
    retry_after_parsing();
    which_answers_are_retried();
    bad_arguments();
    return check_summary();
}
