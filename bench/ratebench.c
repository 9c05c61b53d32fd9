/* ratebench.c — open-loop, constant-rate HTTPS load for POST /v1/invoices.
 *
 * Request i is due at t0 + i/rate.  Its latency is measured from that due
 * time to the moment its response is complete, so when the server (or the
 * connection pool, or this client) falls behind, the waiting counts: no
 * coordinated omission.  A bounded pool of keep-alive HTTP/1.1 connections
 * (libcurl multi, one easy handle per connection, --cacert verified) carries
 * the requests; when every connection is busy a due request waits for one.
 *
 * Every request carries a unique Idempotency-Key: <key-prefix>-<i>.
 *
 * Hard bounds: at most rate*duration requests; everything stops at
 * t0 + duration + grace (default 10 s) — requests still unanswered then
 * are reported as "unfinished"; requests not sent by then as "unsent".
 *
 * The last line is machine-readable:
 *   ratebench rate=<achieved> target=<rate> sent=.. completed=.. ok=..
 *   p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=.. errors=..
 *   ok_p50_ms=.. ok_p90_ms=.. ok_p99_ms=.. ok_p999_ms=.. ok_max_ms=..
 *   shed=.. other=.. transport=.. unfinished=.. unsent=.. span_s=..
 * where errors = answers other than --expect-status (default 201), transport
 * errors, unfinished and unsent requests.  The p*_ms figures cover every
 * completed request (whatever its answer); ok_p*_ms only the requests
 * answered with --expect-status (under overload: the admitted ones, whose
 * latency is what a shedding server protects).  shed = 429 answers, other =
 * answers neither expected nor 429; span_s = t0 to the last completion (the
 * denominator of rate=).  Fields are only ever appended, so parsers that
 * look fields up by name keep working.
 *
 * --timeline FILE writes one line per second of the run (by completion
 * time): second, ok, shed, other, transport errors, ok p50 / p99 / max ms,
 * connections opened (a reconnect: the server or the network closed one);
 * a comment line before them gives t0 on CLOCK_MONOTONIC.
 *
 * The warm-up opens --warmup-batch connections at a time (default 64): a
 * client-side TLS handshake costs this libcurl/OpenSSL 3 build about 20 ms
 * of CPU, and a few hundred handshakes started at once progress together
 * and all miss the 5 s connect timeout.
 *
 * Exit status 1 if no request succeeded, 2 on bad usage or setup failure. */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS        512 /* keeps every socket below FD_SETSIZE for pselect */
#define ERRBODY_MAX      300
#define MAX_SHOWN_ERRORS 5
#define TIMELINE_MAX     3700 /* seconds: duration (<= 3600) + grace */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ratebench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

typedef struct opts {
    const char *url, *token, *cacert, *body_path, *key_prefix, *warmup_url;
    const char *timeline_path;
    double rate, duration, grace, timeout;
    int conns, warmup, insecure, expect_status, warmup_batch;
} opts;

typedef struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    int64_t req; /* request index in flight, -1 if idle */
    char errbody[ERRBODY_MAX + 1];
    size_t errlen;
    char curl_err[CURL_ERROR_SIZE];
} slot;

typedef struct state {
    opts o;
    char *body;
    size_t body_len;
    CURLM *multi;
    slot slots[MAX_CONNS];
    int free_list[MAX_CONNS];
    int nfree;
    double t0;
    int64_t total, next, completed, ok;
    double *lat_ms; /* per completed request */
    int64_t nlat;
    double *ok_lat_ms; /* per request answered with expect_status */
    int64_t nok_lat;
    float *done_s;       /* per completed request: completion time - t0 (timeline) */
    unsigned char *kind; /* per completed request: 0 ok, 1 shed (429), 2 other, 3 transport */
    unsigned char *conn; /* per completed request: connections it opened (timeline) */
    int64_t status_count[600];
    int64_t transport_errors;
    int64_t curl_codes[CURL_LAST + 1];
    int64_t max_backlog;
    long connects;
    int shown_errors;
    double last_done;
} state;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    slot *s = arg;
    size_t n = size * nmemb;
    size_t room = ERRBODY_MAX - s->errlen;
    size_t take = n < room ? n : room;
    memcpy(s->errbody + s->errlen, ptr, take);
    s->errlen += take;
    s->errbody[s->errlen] = 0;
    return n;
}

static void common_setup(state *st, slot *s)
{
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(st->o.timeout * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->curl_err);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    if (st->o.cacert) {
        /* only this CA: Debian's libcurl (GnuTLS) would otherwise also read
         * every certificate of its default CA directory, for each connection
         * (about 50 ms of CPU a handshake: docs/performance.md §5c) */
        curl_easy_setopt(e, CURLOPT_CAINFO, st->o.cacert);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (st->o.insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static double due_time(const state *st, int64_t i)
{
    return st->t0 + (double)i / st->o.rate;
}

static void start_request(state *st, int64_t i)
{
    int idx = st->free_list[--st->nfree];
    slot *s = &st->slots[idx];
    CURL *e = s->easy;
    s->req = i;
    s->errlen = 0;
    s->errbody[0] = 0;
    s->curl_err[0] = 0;

    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    char h[512];
    snprintf(h, sizeof h, "Authorization: Bearer %s", st->o.token);
    s->hdrs = curl_slist_append(s->hdrs, h);
    snprintf(h, sizeof h, "Idempotency-Key: %s-%" PRId64, st->o.key_prefix, i);
    s->hdrs = curl_slist_append(s->hdrs, h);
    s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/json");
    s->hdrs = curl_slist_append(s->hdrs, "Expect:");
    if (!s->hdrs)
        die("out of memory");

    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->hdrs);
    CURLMcode mc = curl_multi_add_handle(st->multi, e);
    if (mc != CURLM_OK)
        die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
}

/* The options every issue request shares, set once per handle (a reset and
 * full setup per request costs client CPU the server then does not get). */
static void prepare_posts(state *st)
{
    for (int k = 0; k < st->o.conns; k++) {
        slot *s = &st->slots[k];
        CURL *e = s->easy;
        curl_easy_reset(e);
        common_setup(st, s);
        curl_easy_setopt(e, CURLOPT_URL, st->o.url);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, st->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st->body_len);
        curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    }
}

static void finish(state *st, CURLMsg *m, double t)
{
    CURL *e = m->easy_handle;
    slot *s = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
    long code = 0, nconn = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconn);
    st->connects += nconn;
    CURLcode res = m->data.result;
    curl_multi_remove_handle(st->multi, e);

    int64_t i = s->req;
    st->completed++;
    double lat = (t - due_time(st, i)) * 1e3;
    int kind = 3;
    if (res == CURLE_OK)
        kind = code == st->o.expect_status ? 0 : code == 429 ? 1 : 2;
    if (st->done_s) {
        st->done_s[st->nlat] = (float)(t - st->t0);
        st->kind[st->nlat] = (unsigned char)kind;
        st->conn[st->nlat] = (unsigned char)(nconn > 255 ? 255 : nconn);
    }
    st->lat_ms[st->nlat++] = lat;
    if (kind == 0)
        st->ok_lat_ms[st->nok_lat++] = lat;
    st->last_done = t;
    if (res != CURLE_OK) {
        st->transport_errors++;
        st->curl_codes[res]++;
        if (st->shown_errors++ < MAX_SHOWN_ERRORS)
            fprintf(stderr, "ratebench: request %" PRId64 ": %s: %s\n", i, curl_easy_strerror(res),
                    s->curl_err);
    } else {
        if (code >= 0 && code < 600)
            st->status_count[code]++;
        if (code == st->o.expect_status)
            st->ok++;
        else if (st->shown_errors++ < MAX_SHOWN_ERRORS)
            fprintf(stderr, "ratebench: request %" PRId64 ": HTTP %ld: %s\n", i, code, s->errbody);
    }
    s->req = -1;
    st->free_list[st->nfree++] = (int)(s - st->slots);
}

/* Opens the connections before the clock starts: one GET per connection to
 * warmup_url (any HTTP answer counts), all at once so each gets its own
 * connection; they stay in the multi handle's connection cache. */
static void warm_up(state *st)
{
    int n = st->o.conns, batch = st->o.warmup_batch;
    /* 15 s for the first batch of connections, as before, plus 15 s for each
     * further batch */
    double deadline = now_s() + 15.0 * ((n + batch - 1) / batch);
    for (int k = 0; k < n; k++) {
        slot *s = &st->slots[k];
        curl_easy_reset(s->easy);
        common_setup(st, s);
        curl_easy_setopt(s->easy, CURLOPT_URL, st->o.warmup_url);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        /* a handle added after another finished would reuse that one's idle
         * connection: each warm-up GET opens its own (prepare_posts resets
         * the handles, so the run reuses the cache as usual) */
        curl_easy_setopt(s->easy, CURLOPT_FRESH_CONNECT, 1L);
    }
    int running = n, done = 0, failed = 0, added = 0;
    while (done < n && now_s() < deadline) {
        /* at most `batch` handshakes at a time: each finished one makes room */
        while (added < n && added - done < batch)
            curl_multi_add_handle(st->multi, st->slots[added++].easy);
        curl_multi_perform(st->multi, &running);
        CURLMsg *m;
        int q;
        while ((m = curl_multi_info_read(st->multi, &q)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            long nconn = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_NUM_CONNECTS, &nconn);
            st->connects += nconn;
            if (m->data.result != CURLE_OK) {
                slot *s = NULL;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
                if (failed++ == 0)
                    fprintf(stderr, "ratebench: warm-up: %s: %s\n",
                            curl_easy_strerror(m->data.result), s ? s->curl_err : "");
            }
            curl_multi_remove_handle(st->multi, m->easy_handle);
            done++;
        }
        if (done < n)
            curl_multi_poll(st->multi, NULL, 0, 100, NULL);
    }
    if (done < n) {
        for (int k = 0; k < added; k++)
            curl_multi_remove_handle(st->multi, st->slots[k].easy);
        die("warm-up did not finish in 15 s (%d of %d)", done, n);
    }
    if (failed == n)
        die("warm-up: every connection failed; is the server up?");
    fprintf(stderr, "ratebench: warm-up: %d connections opened (%d failed)\n", n - failed, failed);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile on a sorted array */
static double pct(const double *v, int64_t n, double p)
{
    if (n == 0)
        return NAN;
    int64_t rank = (int64_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* One line per second of completions: second ok shed other transport
 * ok_p50_ms ok_p99_ms ok_max_ms.  Called before lat_ms is sorted (the
 * arrays are in completion order). */
static void write_timeline(const state *st, double t_end)
{
    FILE *f = fopen(st->o.timeline_path, "w");
    if (!f) {
        fprintf(stderr, "ratebench: %s: %s\n", st->o.timeline_path, strerror(errno));
        return;
    }
    int secs = (int)ceil(t_end - st->t0);
    if (secs > TIMELINE_MAX)
        secs = TIMELINE_MAX;
    double *v = malloc(sizeof(double) * (size_t)(st->nlat ? st->nlat : 1));
    if (!v)
        die("out of memory");
    /* t0 on CLOCK_MONOTONIC (a soak's sampler joins its own series on it) */
    fprintf(f, "# t0_monotonic_s %.6f\n", st->t0);
    fprintf(f, "# second ok shed other transport ok_p50_ms ok_p99_ms ok_max_ms connects\n");
    int64_t k = 0;
    for (int sec = 0; sec < secs; sec++) {
        int64_t c[4] = {0, 0, 0, 0}, nv = 0, conns = 0;
        /* completions are in time order */
        while (k < st->nlat && st->done_s[k] < (float)(sec + 1)) {
            c[st->kind[k]]++;
            conns += st->conn[k];
            if (st->kind[k] == 0)
                v[nv++] = st->lat_ms[k];
            k++;
        }
        qsort(v, (size_t)nv, sizeof(double), cmp_double);
        fprintf(f,
                "%d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %.3f %.3f %.3f %" PRId64 "\n",
                sec, c[0], c[1], c[2], c[3], pct(v, nv, 50), pct(v, nv, 99), nv ? v[nv - 1] : NAN,
                conns);
    }
    free(v);
    fclose(f);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            die("out of memory");
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            if (cap > (64u << 20))
                die("%s: too large", path);
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ratebench --url https://127.0.0.1:PORT/v1/invoices --token T\n"
            "         --body FILE [--cacert FILE | --insecure] [--rate 2000] [--duration 20]\n"
            "         [--connections 64] [--key-prefix P] [--grace 10] [--timeout 10]\n"
            "         [--warmup-url URL | --no-warmup] [--warmup-batch 64] [--expect-status 201]\n"
            "         [--timeline FILE]\n");
    exit(2);
}

static double parse_num(const char *s, const char *opt, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi))
        die("%s: expected a number in %g..%g, got \"%s\"", opt, lo, hi, s);
    return v;
}

static int key_prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 40)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("_.:-", *p)))
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    static state st;
    opts *o = &st.o;
    *o = (opts){.rate = 2000,
                .duration = 20,
                .grace = 10,
                .timeout = 10,
                .conns = 64,
                .warmup = 1,
                .warmup_batch = 64,
                .expect_status = 201};
    char prefix_buf[64];
    snprintf(prefix_buf, sizeof prefix_buf, "rb%lx-%lx", (long)time(NULL), (long)getpid());
    o->key_prefix = prefix_buf;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-warmup")) {
            o->warmup = 0;
            continue;
        }
        if (!strcmp(a, "--insecure") || !strcmp(a, "-k")) {
            o->insecure = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--url"))
            o->url = v;
        else if (!strcmp(a, "--token"))
            o->token = v;
        else if (!strcmp(a, "--cacert"))
            o->cacert = v;
        else if (!strcmp(a, "--body"))
            o->body_path = v;
        else if (!strcmp(a, "--key-prefix"))
            o->key_prefix = v;
        else if (!strcmp(a, "--warmup-url"))
            o->warmup_url = v;
        else if (!strcmp(a, "--rate"))
            o->rate = parse_num(v, a, 0.1, 1e6);
        else if (!strcmp(a, "--duration"))
            o->duration = parse_num(v, a, 0.1, 3600);
        else if (!strcmp(a, "--grace"))
            o->grace = parse_num(v, a, 0, 600);
        else if (!strcmp(a, "--timeout"))
            o->timeout = parse_num(v, a, 0.01, 600);
        else if (!strcmp(a, "--connections"))
            o->conns = (int)parse_num(v, a, 1, MAX_CONNS);
        else if (!strcmp(a, "--expect-status"))
            o->expect_status = (int)parse_num(v, a, 100, 599);
        else if (!strcmp(a, "--warmup-batch"))
            o->warmup_batch = (int)parse_num(v, a, 1, MAX_CONNS);
        else if (!strcmp(a, "--timeline"))
            o->timeline_path = v;
        else
            usage();
    }
    if (!o->url || !o->token || !o->body_path)
        usage();
    if (!key_prefix_ok(o->key_prefix))
        die("--key-prefix: 1-40 of [A-Za-z0-9_.:-]");
    if (strlen(o->token) > 400)
        die("--token too long");

    char warm_buf[2048];
    if (o->warmup && !o->warmup_url) {
        /* scheme://host:port + /healthz */
        const char *p = strstr(o->url, "://");
        p = p ? strchr(p + 3, '/') : NULL;
        size_t n = p ? (size_t)(p - o->url) : strlen(o->url);
        if (n + 10 > sizeof warm_buf)
            die("--url too long");
        memcpy(warm_buf, o->url, n);
        strcpy(warm_buf + n, "/healthz");
        o->warmup_url = warm_buf;
    }

    st.body = read_file(o->body_path, &st.body_len);
    double total_d = floor(o->rate * o->duration);
    if (total_d < 1 || total_d > 50e6)
        die("rate*duration must be 1..50e6");
    st.total = (int64_t)total_d;
    st.lat_ms = malloc(sizeof(double) * (size_t)st.total);
    st.ok_lat_ms = malloc(sizeof(double) * (size_t)st.total);
    if (!st.lat_ms || !st.ok_lat_ms)
        die("out of memory");
    if (o->timeline_path) {
        st.done_s = malloc(sizeof(float) * (size_t)st.total);
        st.kind = malloc((size_t)st.total);
        st.conn = malloc((size_t)st.total);
        if (!st.done_s || !st.kind || !st.conn)
            die("out of memory");
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init failed");
    st.multi = curl_multi_init();
    curl_multi_setopt(st.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(st.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->conns);
    curl_multi_setopt(st.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->conns);
    curl_multi_setopt(st.multi, CURLMOPT_MAXCONNECTS, (long)o->conns);
    for (int k = 0; k < o->conns; k++) {
        st.slots[k].easy = curl_easy_init();
        st.slots[k].req = -1;
        if (!st.slots[k].easy)
            die("curl_easy_init failed");
        st.free_list[st.nfree++] = o->conns - 1 - k;
    }

    if (o->warmup)
        warm_up(&st);
    prepare_posts(&st);
    long warm_connects = st.connects;
    st.connects = 0;

    fprintf(stderr,
            "ratebench: %s rate=%.0f/s duration=%.0fs connections=%d requests=%" PRId64
            " key-prefix=%s\n",
            o->url, o->rate, o->duration, o->conns, st.total, o->key_prefix);

    double cpu0 = cpu_seconds();
    st.t0 = now_s() + 0.01;
    double hard_stop = st.t0 + o->duration + o->grace;
    int64_t in_flight = 0;
    for (;;) {
        double t = now_s();
        if (t >= hard_stop)
            break;
        /* start every due request that has a free connection */
        while (st.next < st.total && due_time(&st, st.next) <= t && st.nfree > 0) {
            start_request(&st, st.next++);
            in_flight++;
        }
        /* due but waiting for a connection */
        int64_t backlog = 0;
        if (st.next < st.total && due_time(&st, st.next) <= t) {
            backlog = (int64_t)floor((t - st.t0) * o->rate) + 1 - st.next;
            if (backlog > st.total - st.next)
                backlog = st.total - st.next;
        }
        if (backlog > st.max_backlog)
            st.max_backlog = backlog;
        if (st.next >= st.total && in_flight == 0)
            break;

        int running = 0;
        CURLMcode mc = curl_multi_perform(st.multi, &running);
        if (mc != CURLM_OK)
            die("curl_multi_perform: %s", curl_multi_strerror(mc));
        CURLMsg *m;
        int q;
        double tdone = now_s();
        while ((m = curl_multi_info_read(st.multi, &q)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                finish(&st, m, tdone);
                in_flight--;
            }
        }
        /* Sleep until the next request is due (if it could start), curl
         * needs attention, or a socket is ready.  Requests are 0.5 ms apart
         * at 2000/s, so the wait is computed in nanoseconds (pselect), not
         * in curl_multi_poll's milliseconds, which would round to 0 and
         * spin. */
        double wait_s = 0.05;
        if (st.next < st.total && st.nfree > 0) {
            double dt = due_time(&st, st.next) - now_s();
            if (dt < wait_s)
                wait_s = dt;
        }
        long curl_ms = -1;
        curl_multi_timeout(st.multi, &curl_ms);
        if (curl_ms >= 0 && (double)curl_ms / 1e3 < wait_s)
            wait_s = (double)curl_ms / 1e3;
        double left = hard_stop - now_s();
        if (left < wait_s)
            wait_s = left;
        if (wait_s > 0) {
            fd_set rd, wr, ex;
            int maxfd = -1;
            FD_ZERO(&rd);
            FD_ZERO(&wr);
            FD_ZERO(&ex);
            curl_multi_fdset(st.multi, &rd, &wr, &ex, &maxfd);
            struct timespec ts = {(time_t)wait_s, (long)((wait_s - floor(wait_s)) * 1e9)};
            if (maxfd < 0)
                nanosleep(&ts, NULL);
            else if (pselect(maxfd + 1, &rd, &wr, &ex, &ts, NULL) < 0 && errno != EINTR)
                die("pselect: %s", strerror(errno));
        }
    }
    double t_end = now_s();

    int64_t unfinished = in_flight, unsent = st.total - st.next;
    for (int k = 0; k < o->conns; k++) {
        if (st.slots[k].req >= 0)
            curl_multi_remove_handle(st.multi, st.slots[k].easy);
        curl_easy_cleanup(st.slots[k].easy);
        curl_slist_free_all(st.slots[k].hdrs);
    }
    curl_multi_cleanup(st.multi);
    curl_global_cleanup();

    if (o->timeline_path)
        write_timeline(&st, t_end);
    qsort(st.lat_ms, (size_t)st.nlat, sizeof(double), cmp_double);
    qsort(st.ok_lat_ms, (size_t)st.nok_lat, sizeof(double), cmp_double);
    double span = (st.last_done > st.t0 ? st.last_done : t_end) - st.t0;
    double achieved = span > 0 ? (double)st.ok / span : 0;
    int64_t errors = st.completed - st.ok + unfinished + unsent;
    double p50 = pct(st.lat_ms, st.nlat, 50), p90 = pct(st.lat_ms, st.nlat, 90),
           p99 = pct(st.lat_ms, st.nlat, 99), p999 = pct(st.lat_ms, st.nlat, 99.9),
           mx = st.nlat ? st.lat_ms[st.nlat - 1] : NAN;
    double mean = 0;
    for (int64_t k = 0; k < st.nlat; k++)
        mean += st.lat_ms[k];
    mean = st.nlat ? mean / (double)st.nlat : NAN;

    printf("ratebench: open-loop constant rate, latency from scheduled time "
           "(coordinated-omission free)\n");
    printf("  target        %.0f req/s for %.1f s = %" PRId64 " requests, %d connections\n",
           o->rate, o->duration, st.total, o->conns);
    printf("  sent          %" PRId64 "  (unsent at hard stop: %" PRId64 ")\n", st.next, unsent);
    printf("  completed     %" PRId64 "  (unfinished at hard stop: %" PRId64 ")\n", st.completed,
           unfinished);
    printf("  ok (%d)       %" PRId64 "\n", o->expect_status, st.ok);
    printf("  achieved      %.1f ok/s over %.2f s\n", achieved, span);
    printf("  connections   %ld opened in warm-up, %ld opened during the run\n", warm_connects,
           st.connects);
    double cpu = cpu_seconds() - cpu0;
    printf("  client CPU    %.2f s (%.0f%% of one core over the run)\n", cpu,
           t_end > st.t0 ? 100 * cpu / (t_end - st.t0) : 0);
    printf("  max backlog   %" PRId64 " requests due but waiting for a connection\n",
           st.max_backlog);
    printf("  status");
    for (int c = 0; c < 600; c++)
        if (st.status_count[c])
            printf("  %d:%" PRId64, c, st.status_count[c]);
    if (st.transport_errors)
        printf("  transport-errors:%" PRId64, st.transport_errors);
    printf("\n");
    for (int c = 0; c <= CURL_LAST; c++)
        if (st.curl_codes[c])
            printf("    curl error %d (%s): %" PRId64 "\n", c, curl_easy_strerror((CURLcode)c),
                   st.curl_codes[c]);
    printf("  latency ms    mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", mean,
           p50, p90, p99, p999, mx);
    const double *ol = st.ok_lat_ms;
    int64_t on = st.nok_lat;
    double ok_p50 = pct(ol, on, 50), ok_p90 = pct(ol, on, 90), ok_p99 = pct(ol, on, 99),
           ok_p999 = pct(ol, on, 99.9), ok_mx = on ? ol[on - 1] : NAN;
    int64_t shed = st.status_count[429];
    int64_t other = st.completed - st.transport_errors - st.ok - shed;
    printf(
        "  ok latency ms p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%d answers only)\n",
        ok_p50, ok_p90, ok_p99, ok_p999, ok_mx, o->expect_status);
    printf("ratebench rate=%.1f target=%.0f sent=%" PRId64 " completed=%" PRId64 " ok=%" PRId64
           " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%" PRId64
           " ok_p50_ms=%.3f ok_p90_ms=%.3f ok_p99_ms=%.3f ok_p999_ms=%.3f ok_max_ms=%.3f"
           " shed=%" PRId64 " other=%" PRId64 " transport=%" PRId64 " unfinished=%" PRId64
           " unsent=%" PRId64 " span_s=%.3f\n",
           achieved, o->rate, st.next, st.completed, st.ok, p50, p90, p99, p999, mx, errors, ok_p50,
           ok_p90, ok_p99, ok_p999, ok_mx, shed, other, st.transport_errors, unfinished, unsent,
           span);
    free(st.lat_ms);
    free(st.ok_lat_ms);
    free(st.done_s);
    free(st.kind);
    free(st.conn);
    free(st.body);
    return st.ok > 0 ? 0 : 1; /* nothing succeeded: the run itself failed */
}
