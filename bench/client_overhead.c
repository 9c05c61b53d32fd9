/* client_overhead.c — what libfapiao-client costs over raw libcurl for a
 * successful call (issue 21, Done-when 6: goal <= 5 % at 2,000 calls/s).
 *
 *   bench_client_overhead URL CLIENT_ID SECRET CACERT [CALLS] [ROUNDS]
 *
 * Both sides make the same authenticated GET /healthz over one kept-alive
 * TLS connection, paced at 2,000 calls/s (a call that is late starts at
 * once): raw libcurl with a bearer header set by hand, and fpc_get (token,
 * address choice, breaker, phase timeouts, retry policy, result copy).
 * Rounds alternate raw and library; the median per-call time of each and
 * the overhead in % are printed.  bench/client.sh overhead starts a server.
 *
 *   bench_client_overhead URL CLIENT_ID SECRET CACERT CALLS 1 instr
 *
 * The count mode for callgrind (bench/client.sh instr): wall and CPU time on
 * a shared machine are noise next to a 5 % goal, the instructions a call
 * executes are not.  After a warm-up, raw_calls, lib_calls and
 * lib_calls_ua each make CALLS calls, unpaced (pacing changes no
 * instruction a call executes, and under valgrind a call is slower than
 * 500 us anyway); callgrind collects inside these functions only
 * (--toggle-collect).  lib_calls_ua is the library with a User-Agent set
 * (user_agent "libfapiao-client/1"), to show what that line costs.  It also checks that the sides
 * keep their connections: raw by CURLINFO_NUM_CONNECTS, the library by the
 * server's fapiao_http_connections_total around its calls. */
#include "fapiao-client/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static size_t sink(char *p, size_t s, size_t n, void *a)
{
    (void)p, (void)a;
    return s * n;
}

static void pace(double start, int i)
{
    double due = start + i * 500.0; /* 2,000/s */
    double wait = due - now_us();
    if (wait > 0) {
        struct timespec ts = {0, (long)(wait * 1000)};
        nanosleep(&ts, NULL);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* The raw side: its own token, fetched once, and a handle set up as a
 * careful hand-written caller would (bearer header, CA file, a sink). */
static CURL *raw_handle(const char *base, const char *id, const char *secret, const char *cacert,
                        struct curl_slist **auth)
{
    char url[512], tok[2200] = "Authorization: Bearer ";
    CURL *h = curl_easy_init();
    snprintf(url, sizeof url, "%s/v1/token", base);
    char body[512], buf[4096] = "";
    snprintf(body, sizeof body, "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}", id, secret);
    FILE *mem = fmemopen(buf, sizeof buf - 1, "w");
    struct curl_slist *ct = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, ct);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    CURLcode cc = curl_easy_perform(h);
    fclose(mem);
    curl_slist_free_all(ct);
    char *t = cc == CURLE_OK ? strstr(buf, "\"access_token\":\"") : NULL;
    if (!t) {
        fprintf(stderr, "raw token failed: %s\n", buf);
        curl_easy_cleanup(h);
        return NULL;
    }
    t += 16;
    strncat(tok, t, strcspn(t, "\""));
    *auth = curl_slist_append(NULL, tok);
    snprintf(url, sizeof url, "%s/healthz", base);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *auth);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    return h;
}

/* n raw calls; the new connections they opened, or -1 when one failed */
static __attribute__((noinline)) long raw_calls(CURL *h, int n)
{
    long conns = 0;
    for (int i = 0; i < n; i++) {
        long k = 0;
        if (curl_easy_perform(h) != CURLE_OK)
            return -1;
        curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &k);
        conns += k;
    }
    return conns;
}

/* n library calls; 0, or -1 when one failed */
static inline __attribute__((always_inline)) int lib_loop(fpc_client *c, int n)
{
    fpc_result res;
    fpc_error err;
    for (int i = 0; i < n; i++) {
        if (fpc_get(c, "/healthz", &res, &err) < 0) {
            fprintf(stderr, "library call failed: %s\n", err.message);
            return -1;
        }
        fpc_result_free(&res);
    }
    return 0;
}

/* two copies, so that callgrind counts each alone: the library as it
 * comes (no User-Agent, the raw side's header lines), and with one set;
 * the store to "which" keeps the compiler from folding them into one */
static volatile int which;

static __attribute__((noinline)) int lib_calls(fpc_client *c, int n)
{
    which = 1;
    return lib_loop(c, n);
}

static __attribute__((noinline)) int lib_calls_ua(fpc_client *c, int n)
{
    which = 2;
    return lib_loop(c, n);
}

static size_t keep(char *p, size_t s, size_t n, void *a)
{
    size_t len = strlen(a), k = s * n;
    if (len + k < (1 << 20)) {
        memcpy((char *)a + len, p, k);
        ((char *)a)[len + k] = '\0';
    }
    return s * n;
}

/* the server's fapiao_http_connections_total, read over h's connection
 * (so reading it opens none); -1 when it cannot be read */
static long server_conns(CURL *h, const char *base)
{
    static char page[1 << 20];
    char url[512];
    page[0] = '\0';
    snprintf(url, sizeof url, "%s/metrics", base);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, page);
    CURLcode cc = curl_easy_perform(h);
    snprintf(url, sizeof url, "%s/healthz", base);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    const char *m = strstr(page, "\nfapiao_http_connections_total ");
    return cc == CURLE_OK && m ? atol(m + 31) : -1;
}

/* The count mode: warm the sides up, then raw_calls, lib_calls and
 * lib_calls_ua once each (callgrind counts inside them; bench/client.sh
 * instr reads it).  1 when a side opened a connection during its calls. */
static int count_mode(CURL *h, fpc_client *c, fpc_client *c2, const char *base, int calls)
{
    fpc_result res;
    fpc_error err;
    for (int i = 0; i < 50; i++) { /* outside the counted functions */
        if (curl_easy_perform(h) != CURLE_OK || fpc_get(c, "/healthz", &res, &err) < 0)
            return fprintf(stderr, "warm-up failed\n"), 1;
        fpc_result_free(&res);
        if (fpc_get(c2, "/healthz", &res, &err) < 0)
            return fprintf(stderr, "warm-up failed\n"), 1;
        fpc_result_free(&res);
    }
    long before = server_conns(h, base);
    long raw_new = raw_calls(h, calls);
    if (raw_new < 0 || lib_calls(c, calls) < 0 || lib_calls_ua(c2, calls) < 0)
        return fprintf(stderr, "a call failed\n"), 1;
    long after = server_conns(h, base);
    printf("calls %d each; new connections during them: raw %ld, library %ld\n", calls, raw_new,
           before < 0 || after < 0 ? -1 : after - before);
    return raw_new != 0 || after != before;
}

static int time_mode(CURL *h, fpc_client *c, int calls, int rounds)
{
    fpc_result res;
    fpc_error err;
    double *raw = calloc((size_t)rounds, sizeof *raw), *lib = calloc((size_t)rounds, sizeof *lib);
    double *rawc = calloc((size_t)rounds, sizeof *raw), *libc = calloc((size_t)rounds, sizeof *lib);
    for (int r = 0; r < rounds; r++) {
        double start = now_us(), busy = 0, cpu = 0;
        for (int i = 0; i < calls; i++) {
            pace(start, i);
            double t0 = now_us(), c0 = cpu_us();
            if (curl_easy_perform(h) != CURLE_OK)
                return fprintf(stderr, "raw call failed\n"), 1;
            busy += now_us() - t0, cpu += cpu_us() - c0;
        }
        raw[r] = busy / calls, rawc[r] = cpu / calls;
        start = now_us(), busy = 0, cpu = 0;
        for (int i = 0; i < calls; i++) {
            pace(start, i);
            double t0 = now_us(), c0 = cpu_us();
            if (fpc_get(c, "/healthz", &res, &err) < 0)
                return fprintf(stderr, "library call failed: %s\n", err.message), 1;
            busy += now_us() - t0, cpu += cpu_us() - c0;
            fpc_result_free(&res);
        }
        lib[r] = busy / calls, libc[r] = cpu / calls;
        printf("round %d: wall raw %.1f / library %.1f us/call; client CPU raw %.1f / library "
               "%.1f us/call\n",
               r + 1, raw[r], lib[r], rawc[r], libc[r]);
    }
    double mr = median(raw, rounds), ml = median(lib, rounds);
    double cr = median(rawc, rounds), cl = median(libc, rounds);
    printf("median wall: raw %.1f, library %.1f us/call, overhead %+.1f %% (goal <= 5 %%)\n", mr,
           ml, (ml - mr) / mr * 100);
    printf("median client CPU: raw %.1f, library %.1f us/call, overhead %+.1f %%\n", cr, cl,
           (cl - cr) / cr * 100);
    free(raw), free(lib), free(rawc), free(libc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5)
        return fprintf(stderr, "usage: %s URL ID SECRET CACERT [CALLS] [ROUNDS] [instr]\n",
                       argv[0]),
               2;
    int calls = argc > 5 ? atoi(argv[5]) : 2000, rounds = argc > 6 ? atoi(argv[6]) : 5;
    if (calls < 1 || rounds < 1)
        return fprintf(stderr, "CALLS and ROUNDS must be positive\n"), 2;
    fpc_client *c;
    fpc_error err;
    fpc_result res;
    int instr = argc > 7 && strcmp(argv[7], "instr") == 0;
    fpc_opts o = {
        .servers = argv[1], .client_id = argv[2], .client_secret = argv[3], .cacert = argv[4]};
    if (instr) /* under valgrind the first handshake takes seconds */
        o.connect_timeout_ms = o.tls_timeout_ms = o.first_byte_timeout_ms = 60000;
    if (fpc_client_new(&o, &c, &err) < 0 || fpc_get(c, "/healthz", &res, &err) < 0)
        return fprintf(stderr, "client: %s\n", err.message), 1;
    fpc_result_free(&res);
    struct curl_slist *auth = NULL;
    CURL *h = raw_handle(argv[1], argv[2], argv[3], argv[4], &auth);
    if (!h)
        return 1;
    fpc_client *c2 = NULL;
    o.user_agent = "libfapiao-client/1";
    if (instr && fpc_client_new(&o, &c2, &err) < 0)
        return fprintf(stderr, "client: %s\n", err.message), 1;
    int rc = instr ? count_mode(h, c, c2, argv[1], calls) : time_mode(h, c, calls, rounds);
    fpc_client_free(c2);
    curl_slist_free_all(auth);
    curl_easy_cleanup(h);
    fpc_client_free(c);
    return rc;
}
