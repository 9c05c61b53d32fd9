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
 * the overhead in % are printed.  bench/client-overhead.sh starts a server. */
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

int main(int argc, char **argv)
{
    if (argc < 5)
        return fprintf(stderr, "usage: %s URL ID SECRET CACERT [CALLS] [ROUNDS]\n", argv[0]), 2;
    int calls = argc > 5 ? atoi(argv[5]) : 2000, rounds = argc > 6 ? atoi(argv[6]) : 5;
    fpc_client *c;
    fpc_error err;
    fpc_result res;
    fpc_opts o = {
        .servers = argv[1], .client_id = argv[2], .client_secret = argv[3], .cacert = argv[4]};
    if (fpc_client_new(&o, &c, &err) < 0 || fpc_get(c, "/healthz", &res, &err) < 0)
        return fprintf(stderr, "client: %s\n", err.message), 1;
    fpc_result_free(&res);
    /* the raw side uses a token of its own, fetched once */
    char url[512], tok[2200] = "Authorization: Bearer ";
    CURL *h = curl_easy_init();
    snprintf(url, sizeof url, "%s/v1/token", argv[1]);
    char body[512], buf[4096] = "";
    snprintf(body, sizeof body, "{\"client_id\":\"%s\",\"client_secret\":\"%s\"}", argv[2],
             argv[3]);
    FILE *mem = fmemopen(buf, sizeof buf - 1, "w");
    struct curl_slist *ct = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, argv[4]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, ct);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    if (curl_easy_perform(h) != CURLE_OK)
        return fprintf(stderr, "raw token failed\n"), 1;
    fclose(mem);
    char *t = strstr(buf, "\"access_token\":\"");
    if (!t)
        return fprintf(stderr, "no token in %s\n", buf), 1;
    t += 16;
    strncat(tok, t, strcspn(t, "\""));
    struct curl_slist *auth = curl_slist_append(NULL, tok);
    snprintf(url, sizeof url, "%s/healthz", argv[1]);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, argv[4]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, auth);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
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
    curl_slist_free_all(auth), curl_slist_free_all(ct);
    curl_easy_cleanup(h);
    fpc_client_free(c);
    free(raw), free(lib), free(rawc), free(libc);
    return 0;
}
