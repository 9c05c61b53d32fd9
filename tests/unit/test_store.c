/* test_store.c — store.h against every backend the build has (today
 * SQLite): first the contract suite (store_contract.h: what any backend
 * must do; test_store_wrong.c shows it catches backends that break it),
 * then the tests below, opened on the same backend, then SQLite's own
 * (the fail-stop under its VFS).  The tests below: number assignment
 * from ranges (rollover, exhaustion, continuation across reopen), group
 * commit under a burst from several threads, idempotency by serial (replay,
 * key reuse, in one batch and across batches and reopens), draining on
 * close, and a batch whose transaction fails.
 *
 * Every case works on its own database file in one fresh mkdtemp directory
 * under /tmp, removed at the end.  Requests carry a real response document
 * (examples/invoice.json parsed and rendered with number placeholders).  The
 * done callback counts answers under a mutex; the test waits for them with a
 * deadline (WAIT_SECONDS) and fails instead of hanging.
 *
 * To put chosen requests into one transaction deterministically, the test
 * holds SQLite's write lock from a side connection (BEGIN IMMEDIATE), submits
 * a throw-away request that the writer takes and then blocks with in its own
 * BEGIN IMMEDIATE, queues the requests of interest, and releases the lock:
 * the writer's next batch is exactly the queued requests. */
#include "check.h"

#include "fapiao/invoice.h"
#include "fapiao/jobs.h"
#include "fapiao/outbox.h"
#include "fapiao/json.h"
#include "fapiao/rbac.h"
#include "fapiao/store.h"

#include "../../src/store/sqlite/failstop.h" /* fp_failstop_classify */
#include "store_contract.h"
#include "fake_clock.h"

#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define WAIT_SECONDS 10
#define ISSUED_AT    "2026-01-05T10:00:00+08:00"
#define NO_SELLER    424242 /* no seller, no range: answered EXHAUSTED, stores nothing */

static char tmpdir[] = "/tmp/fapiao-test-store-XXXXXX";
static char *example;
static fp_invoice inv; /* examples/invoice.json, parsed once */
static const fp_seller seller_a = {.name = "演示销售方A有限公司",
                                   .tax_id = "91310000MA1FL00001",
                                   .address = "上海市某某路2号",
                                   .phone = "021-87654321"};
static const fp_seller seller_b = {.name = "Seller B Ltd", .tax_id = "91310000MA1FL00002"};

/* ---- helpers ---- */

static void fatal(const char *what)
{
    fprintf(stderr, "test_store: fatal: %s (databases left in %s)\n", what, tmpdir);
    check_record(0, __FILE__, __LINE__, "fatal: %s", what);
    check_summary();
    fflush(NULL);
    _exit(1); /* the writer may still hold requests: do not run exit handlers */
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answered;
} waiter;

static void waiter_init(waiter *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->answered = 0;
}

static void waiter_destroy(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_done(fp_issue_req *r, void *arg)
{
    waiter *w = arg;
    if (r->result == FP_ISSUE_PENDING)
        fprintf(stderr, "done called with result PENDING for %s\n", r->serial);
    pthread_mutex_lock(&w->mu);
    w->answered++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits until n requests of w are answered; fails the test (and exits) after
 * WAIT_SECONDS rather than hanging. */
static void wait_answers(waiter *w, int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&w->mu);
    while (w->answered < n)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0 && w->answered < n) {
            int got = w->answered;
            pthread_mutex_unlock(&w->mu);
            char msg[128];
            snprintf(msg, sizeof msg, "only %d of %d requests answered within %d s", got, n,
                     WAIT_SECONDS);
            fatal(msg);
        }
    pthread_mutex_unlock(&w->mu);
}

/* A request with a rendered document (number placeholders in place). */
static fp_issue_req *mkreq_at(int64_t seller_id, const char *serial, unsigned char hash_byte,
                              const char *issued_at)
{
    fp_issue_req *r = calloc(1, sizeof *r);
    if (!r || fp_invoice_render(&inv, &seller_a, serial, issued_at, &r->doc) < 0)
        fatal("cannot render a request document");
    r->seller_id = seller_id;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    memset(r->request_hash, hash_byte, sizeof r->request_hash);
    memcpy(r->invoice_type, inv.invoice_type, sizeof r->invoice_type);
    snprintf(r->buyer_tax_id, sizeof r->buyer_tax_id, "%s", inv.buyer.tax_id);
    r->total_with_tax = inv.total_with_tax;
    r->issued_at = 1767578400;
    snprintf(r->actor, sizeof r->actor, "test-client");
    snprintf(r->request_id, sizeof r->request_id, "rid-%.60s", serial);
    snprintf(r->client_ip, sizeof r->client_ip, "127.0.0.1");
    r->result = FP_ISSUE_PENDING;
    return r;
}

static fp_issue_req *mkreq(int64_t seller_id, const char *serial, unsigned char hash_byte)
{
    return mkreq_at(seller_id, serial, hash_byte, ISSUED_AT);
}

static void req_free(fp_issue_req *r)
{
    if (!r)
        return;
    free(r->response);
    free(r->doc.json);
    free(r);
}

/* Submits n requests and waits for all answers. */
static void submit_wait(fp_store *s, fp_issue_req **rs, int n)
{
    waiter w;
    waiter_init(&w);
    for (int i = 0; i < n; i++) {
        rs[i]->done = on_done;
        rs[i]->arg = &w;
        fp_store_submit(s, rs[i]);
    }
    wait_answers(&w, n);
    waiter_destroy(&w);
}

static fp_issue_req *issue1(fp_store *s, int64_t seller_id, const char *serial,
                            unsigned char hash_byte)
{
    fp_issue_req *r = mkreq(seller_id, serial, hash_byte);
    submit_wait(s, &r, 1);
    return r;
}

static sqlite3 *side_conn(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fatal("cannot open a side connection");
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int side_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "side connection: %s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    return rc;
}

/* Puts rs[0..n) into one transaction of the writer (see the file comment).
 * Returns 1 when the stats confirm it (at most two commits: the throw-away
 * request's and this batch's). */
static int submit_one_batch(fp_store *s, const char *path, fp_issue_req **rs, int n)
{
    fp_store_stats before, after;
    fp_store_get_stats(s, &before);
    sqlite3 *lk = side_conn(path);
    if (side_exec(lk, "BEGIN IMMEDIATE") != SQLITE_OK)
        fatal("cannot take the write lock");
    waiter w;
    waiter_init(&w);
    fp_issue_req *dummy = mkreq(NO_SELLER, "throw-away", 0x01);
    dummy->done = on_done;
    dummy->arg = &w;
    fp_store_submit(s, dummy);
    sleep_ms(150); /* the writer takes it and blocks in BEGIN IMMEDIATE */
    for (int i = 0; i < n; i++) {
        rs[i]->done = on_done;
        rs[i]->arg = &w;
        fp_store_submit(s, rs[i]);
    }
    side_exec(lk, "COMMIT");
    sqlite3_close(lk);
    wait_answers(&w, n + 1);
    waiter_destroy(&w);
    CHECK_EQ_INT(dummy->result, FP_ISSUE_EXHAUSTED);
    req_free(dummy);
    fp_store_get_stats(s, &after);
    CHECK_EQ_INT(after.requests - before.requests, n + 1);
    return CHECK_MSG(after.commits - before.commits <= 2 && after.max_batch >= (uint64_t)n,
                     "not one batch: %llu commits for %d requests, max batch %llu",
                     (unsigned long long)(after.commits - before.commits), n + 1,
                     (unsigned long long)after.max_batch);
}

/* The backend the tests run against (main runs them for each). */
static const fp_store_ops *backend = &fp_store_sqlite_ops;

static fp_store *open_store_opts(const char *path, int max_batch)
{
    fp_store_opts o = {.path = path, .max_batch = max_batch};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open_ops(backend, &o, &s, &err) == 0, "fp_store_open(%s): %s", path,
                   err.msg))
        fatal("cannot open the store");
    return s;
}

static fp_store *open_store(const char *path)
{
    return open_store_opts(path, 0);
}

static void db_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s.db", tmpdir, name);
}

static int64_t add_seller(fp_store *s, const fp_seller *x)
{
    int64_t id = 0;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_add_seller(s, x, &id, &err) == 0, "add_seller: %s", err.msg))
        fatal("cannot add a seller");
    return id;
}

static void add_range(fp_store *s, int64_t seller_id, const char *prefix, int64_t first,
                      int64_t last)
{
    fp_err err = {0};
    CHECK_MSG(fp_store_add_range(s, seller_id, prefix, first, last, NULL, &err) == 0,
              "add_range(%s, %" PRId64 "..%" PRId64 "): %s", prefix, first, last, err.msg);
}

static int64_t remaining(fp_store *s, int64_t seller_id)
{
    int64_t n = -1;
    CHECK_EQ_INT(fp_store_numbers_remaining(s, seller_id, &n), 0);
    return n;
}

static void number_of(char out[FP_NUMBER_LEN + 1], const char *prefix, int64_t seq)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%015" PRId64, seq);
    snprintf(out, FP_NUMBER_LEN + 1, "%.5s%.15s", prefix, digits);
}

/* An integer from a read-only connection (the store closed or not). */
static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "db_int(%s): %s\n", sql, db ? sqlite3_errmsg(db) : "?");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A text value (first column of the first row) into out; "" when none. */
static void db_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* CREATED with the expected number, which sits at every placeholder of the
 * response; the response is the request's document and nothing else. */
static void check_created(const fp_issue_req *r, const char *want_number)
{
    if (!CHECK_EQ_INT(r->result, FP_ISSUE_CREATED)) {
        fprintf(stderr, "  (%s: result %d, error \"%s\")\n", r->serial, r->result, r->error);
        return;
    }
    CHECK_EQ_STR(r->number, want_number);
    if (!CHECK(r->response != NULL))
        return;
    CHECK_EQ_INT(r->response_len, strlen(r->response));
    CHECK(r->doc.nnum >= 1);
    for (int i = 0; i < r->doc.nnum; i++)
        CHECK_MSG(r->doc.num_off[i] + FP_NUMBER_LEN <= r->response_len &&
                      memcmp(r->response + r->doc.num_off[i], want_number, FP_NUMBER_LEN) == 0,
                  "placeholder %d (offset %zu) does not hold %s", i, r->doc.num_off[i],
                  want_number);
    CHECK_MSG(strstr(r->response, "00000000000000000000") == NULL, "a placeholder is left: %s",
              r->response);
    char key[64];
    snprintf(key, sizeof key, "\"number\":\"%s\"", want_number);
    CHECK_CONTAINS(r->response, key);
    char ser[96];
    snprintf(ser, sizeof ser, "\"serial\":\"%s\"", r->serial);
    CHECK_CONTAINS(r->response, ser);
}

/* REPLAY with exactly the bytes of the original response. */
static void check_replay(const fp_issue_req *r, const char *orig, size_t orig_len)
{
    if (!CHECK_EQ_INT(r->result, FP_ISSUE_REPLAY)) {
        fprintf(stderr, "  (%s: result %d, error \"%s\")\n", r->serial, r->result, r->error);
        return;
    }
    if (!CHECK(r->response != NULL) || !CHECK(orig != NULL))
        return;
    CHECK_EQ_INT(r->response_len, orig_len);
    CHECK_MSG(r->response_len == orig_len && memcmp(r->response, orig, orig_len) == 0,
              "replay differs from the original:\n  got  %s\n  want %s", r->response, orig);
    CHECK_MSG(r->number[0] == 0 || strncmp(r->number, orig + 11, FP_NUMBER_LEN) == 0,
              "replay number %s is not the original's", r->number);
}

static void check_stored(fp_store *s, int64_t seller_id, const fp_issue_req *r)
{
    char *doc = NULL;
    size_t len = 0;
    unsigned char hash[32];
    int rc = fp_store_get_invoice(s, seller_id, r->number, &doc, &len);
    if (CHECK_EQ_INT(rc, 0) && r->response)
        CHECK_MSG(len == r->response_len && memcmp(doc, r->response, len) == 0,
                  "get_invoice(%s) is not the 201 body", r->number);
    free(doc);
    doc = NULL;
    char num[FP_NUMBER_LEN + 1] = "";
    rc = fp_store_find_serial(s, seller_id, r->serial, hash, num, &doc, &len);
    if (CHECK_EQ_INT(rc, 0) && r->response) {
        CHECK_MSG(len == r->response_len && memcmp(doc, r->response, len) == 0,
                  "find_serial(%s) is not the 201 body", r->serial);
        CHECK(memcmp(hash, r->request_hash, 32) == 0);
        CHECK_EQ_STR(num, r->number);
    }
    free(doc);
}

static void check_not_stored(fp_store *s, int64_t seller_id, const char *serial)
{
    char *doc = NULL;
    size_t len = 0;
    unsigned char hash[32];
    char num[FP_NUMBER_LEN + 1];
    CHECK_MSG(fp_store_find_serial(s, seller_id, serial, hash, num, &doc, &len) == FP_ENOTFOUND,
              "serial %s is stored: %s", serial, doc ? doc : "");
    free(doc);
}

static int64_t seq_of(const char *number)
{
    return strlen(number) == FP_NUMBER_LEN ? strtoll(number + 5, NULL, 10) : -1;
}

/* ---- cases ---- */

/* One request: CREATED, the range's first number, read back identically;
 * the rows in the database (invoice, audit, range) say the same. */
static void test_single(void)
{
    char path[512];
    db_path(path, sizeof path, "single");
    check_ctx("single");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 7, 100);

    /* setup reads: seller and client round trip */
    fp_seller got;
    memset(&got, 0, sizeof got);
    if (CHECK_EQ_INT(fp_store_get_seller(s, sid, &got), 0)) {
        CHECK_EQ_STR(got.name, seller_a.name);
        CHECK_EQ_STR(got.tax_id, seller_a.tax_id);
        CHECK_EQ_STR(got.address, seller_a.address);
    }
    CHECK_EQ_INT(fp_store_get_seller(s, sid + 1000, &got), FP_ENOTFOUND);
    fp_client_rec c = {.client_id = "client-1", .seller_id = sid, .scope = "invoices:write"};
    memset(c.salt, 0x5a, sizeof c.salt);
    memset(c.hash, 0xa5, sizeof c.hash);
    fp_err err = {0};
    CHECK_MSG(fp_store_add_client(s, &c, &err) == 0, "add_client: %s", err.msg);
    fp_client_rec gc;
    if (CHECK_EQ_INT(fp_store_get_client(s, "client-1", &gc), 0)) {
        CHECK_EQ_INT(gc.seller_id, sid);
        CHECK(memcmp(gc.salt, c.salt, 16) == 0 && memcmp(gc.hash, c.hash, 32) == 0);
        CHECK_EQ_STR(gc.scope, "invoices:write");
        CHECK_EQ_INT(gc.disabled, 0);
    }
    CHECK_EQ_INT(fp_store_get_client(s, "client-2", &gc), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_store_add_client(s, &c, NULL) < 0, 1); /* duplicate client_id */
    CHECK_EQ_INT(fp_store_ping(s, NULL), 0);

    CHECK_EQ_INT(remaining(s, sid), 94);
    CHECK_EQ_INT(remaining(s, 0), 94);
    CHECK_EQ_INT(remaining(s, sid + 1000), 0);

    fp_issue_req *r = issue1(s, sid, "single-1", 0x11);
    check_created(r, "26440000000000000007");
    if (r->result == FP_ISSUE_CREATED)
        check_stored(s, sid, r);
    char *doc = NULL;
    size_t len = 0;
    unsigned char hash[32];
    CHECK_EQ_INT(fp_store_get_invoice(s, sid, "26440000000000000008", &doc, &len), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_store_get_invoice(s, sid + 1, r->number, &doc, &len), FP_ENOTFOUND);
    char num[FP_NUMBER_LEN + 1];
    CHECK_EQ_INT(fp_store_find_serial(s, sid, "single-2", hash, num, &doc, &len), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_store_find_serial(s, sid + 1, "single-1", hash, num, &doc, &len), FP_ENOTFOUND);
    CHECK_EQ_INT(remaining(s, sid), 93);
    fp_store_stats st;
    fp_store_get_stats(s, &st);
    CHECK_EQ_INT(st.requests, 1);
    CHECK_EQ_INT(st.commits, 1);
    CHECK_EQ_INT(st.max_batch, 1);
    fp_store_close(s);

    char t[256];
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 1);
    CHECK_EQ_INT(db_int(path, "SELECT next FROM number_ranges"), 8);
    db_text(path,
            "SELECT number || '|' || serial || '|' || status || '|' || invoice_type || '|' "
            "|| buyer_tax_id || '|' || total_with_tax || '|' || length(request_hash) FROM invoices",
            t, sizeof t);
    CHECK_EQ_STR(t, "26440000000000000007|single-1|accepted|02|91350200MA2YJ1XR9G|95400|32");
    db_text(path,
            "SELECT action || '|' || target || '|' || outcome || '|' || actor || '|' || "
            "request_id || '|' || client_ip FROM audit",
            t, sizeof t);
    CHECK_EQ_STR(t,
                 "invoice.issue|26440000000000000007|created|test-client|rid-single-1|127.0.0.1");
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit"), 1);
    req_free(r);
    check_ctx("%s", "");
}

/* A burst from several threads: every request CREATED, numbers unique and
 * consecutive, fewer commits than requests, the range's next written back. */
#define BURST         500
#define BURST_THREADS 5

typedef struct submitter {
    fp_store *s;
    fp_issue_req **rs;
    int n;
} submitter;

static void *submit_main(void *arg)
{
    submitter *sb = arg;
    for (int i = 0; i < sb->n; i++)
        fp_store_submit(sb->s, sb->rs[i]);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_burst(void)
{
    static const struct {
        const char *name;
        int max_batch; /* 0: the default (512) */
    } cases[] = {
        {"burst, default max_batch", 0},
        {"burst, max_batch 16", 16},
    };
    for (size_t ci = 0; ci < NCASES(cases); ci++) {
        check_ctx("%s", cases[ci].name);
        char path[512], name[32];
        snprintf(name, sizeof name, "burst-%zu", ci);
        db_path(path, sizeof path, name);
        fp_store *s = open_store_opts(path, cases[ci].max_batch);
        int64_t sid = add_seller(s, &seller_a);
        const int64_t first = 1000;
        add_range(s, sid, "26440", first, 999999);

        static fp_issue_req *rs[BURST];
        waiter w;
        waiter_init(&w);
        for (int i = 0; i < BURST; i++) {
            char serial[32];
            snprintf(serial, sizeof serial, "burst-%d", i);
            rs[i] = mkreq(sid, serial, (unsigned char)i);
            rs[i]->done = on_done;
            rs[i]->arg = &w;
        }
        pthread_t th[BURST_THREADS];
        submitter sb[BURST_THREADS];
        for (int t = 0; t < BURST_THREADS; t++) {
            sb[t] = (submitter){s, rs + t * (BURST / BURST_THREADS), BURST / BURST_THREADS};
            if (pthread_create(&th[t], NULL, submit_main, &sb[t]) != 0)
                fatal("pthread_create");
        }
        for (int t = 0; t < BURST_THREADS; t++)
            pthread_join(th[t], NULL);
        wait_answers(&w, BURST);
        waiter_destroy(&w);

        static int64_t seqs[BURST];
        int created = 0;
        for (int i = 0; i < BURST; i++) {
            if (rs[i]->result != FP_ISSUE_CREATED) {
                CHECK_MSG(0, "%s: result %d (%s)", rs[i]->serial, rs[i]->result, rs[i]->error);
                continue;
            }
            check_created(rs[i], rs[i]->number);
            CHECK_MSG(strncmp(rs[i]->number, "26440", 5) == 0, "prefix of %s", rs[i]->number);
            seqs[created++] = seq_of(rs[i]->number);
        }
        CHECK_EQ_INT(created, BURST);
        qsort(seqs, (size_t)created, sizeof seqs[0], cmp_i64);
        int gaps = 0;
        for (int i = 0; i < created; i++)
            gaps += seqs[i] != first + i;
        CHECK_MSG(gaps == 0, "numbers are not exactly %" PRId64 "..%" PRId64 " (%d misplaced)",
                  first, first + BURST - 1, gaps);
        for (int i = 0; i < BURST; i += 97)
            check_stored(s, sid, rs[i]);
        CHECK_EQ_INT(remaining(s, sid), 999999 - first + 1 - BURST);

        fp_store_stats st;
        fp_store_get_stats(s, &st);
        printf("%s: %d requests in %llu commits, largest batch %llu, %.1f ms in COMMIT\n",
               cases[ci].name, BURST, (unsigned long long)st.commits,
               (unsigned long long)st.max_batch, (double)st.fsync_us_total / 1000.0);
        CHECK_EQ_INT(st.requests, BURST);
        CHECK_MSG(st.commits < BURST && st.max_batch > 1,
                  "no group commit: %llu commits for %d requests, largest batch %llu",
                  (unsigned long long)st.commits, BURST, (unsigned long long)st.max_batch);
        if (cases[ci].max_batch)
            CHECK_MSG(st.max_batch <= (uint64_t)cases[ci].max_batch,
                      "batch of %llu exceeds max_batch %d", (unsigned long long)st.max_batch,
                      cases[ci].max_batch);
        fp_store_close(s);

        CHECK_EQ_INT(db_int(path, "SELECT next FROM number_ranges"), first + BURST);
        CHECK_EQ_INT(db_int(path, "SELECT count(DISTINCT number) FROM invoices"), BURST);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit WHERE action='invoice.issue'"),
                     BURST);
        CHECK_EQ_INT(db_int(path, "SELECT min(number) = '26440000000000001000' AND "
                                  "max(number) = '26440000000000001499' FROM invoices"),
                     1);
        for (int i = 0; i < BURST; i++)
            req_free(rs[i]);
    }
    check_ctx("%s", "");
}

/* One serial twice: in one batch or in later batches, with the same body
 * (REPLAY of the stored bytes) or another (KEY_REUSED); one number per
 * serial; the same after a reopen; serials are per seller. */
static void test_duplicates(void)
{
    static const struct {
        const char *name;
        int one_batch;
        unsigned char hash2;
        fp_issue_result want2;
    } cases[] = {
        {"one batch, same body", 1, 0x21, FP_ISSUE_REPLAY},
        {"one batch, other body", 1, 0x22, FP_ISSUE_KEY_REUSED},
        {"later batch, same body", 0, 0x21, FP_ISSUE_REPLAY},
        {"later batch, other body", 0, 0x22, FP_ISSUE_KEY_REUSED},
    };
    enum { N = NCASES(cases) };
    char path[512];
    db_path(path, sizeof path, "duplicates");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a), sid_b = add_seller(s, &seller_b);
    add_range(s, sid, "26440", 1, 1000);
    add_range(s, sid_b, "26441", 1, 10);
    char *orig[N] = {0};
    size_t orig_len[N] = {0};

    for (size_t ci = 0; ci < N; ci++) {
        check_ctx("dup: %s", cases[ci].name);
        char serial[32], want[FP_NUMBER_LEN + 1];
        snprintf(serial, sizeof serial, "dup-%zu", ci);
        number_of(want, "26440", (int64_t)ci + 1);
        fp_issue_req *a = mkreq(sid, serial, 0x21);
        /* a different rendering: a replay must return the stored bytes */
        fp_issue_req *b = mkreq_at(sid, serial, cases[ci].hash2, "2026-02-02T02:02:02+08:00");
        if (cases[ci].one_batch) {
            fp_issue_req *both[2] = {a, b};
            submit_one_batch(s, path, both, 2);
        } else {
            submit_wait(s, &a, 1);
            submit_wait(s, &b, 1);
        }
        check_created(a, want);
        if (a->response) {
            orig[ci] = strdup(a->response);
            orig_len[ci] = a->response_len;
        }
        if (cases[ci].want2 == FP_ISSUE_REPLAY) {
            check_replay(b, a->response, a->response_len);
        } else {
            CHECK_EQ_INT(b->result, cases[ci].want2);
            CHECK(b->response == NULL);
        }
        check_stored(s, sid, a);
        CHECK_EQ_INT(remaining(s, sid), 1000 - ((int64_t)ci + 1));
        req_free(a);
        req_free(b);
    }

    check_ctx("dup: same serial, other seller");
    fp_issue_req *ob = issue1(s, sid_b, "dup-0", 0x21);
    check_created(ob, "26441000000000000001");
    req_free(ob);
    CHECK_EQ_INT(remaining(s, sid), 1000 - N);
    fp_store_close(s);

    check_ctx("dup: after reopen");
    s = open_store(path);
    for (size_t ci = 0; ci < N; ci++) {
        char serial[32];
        snprintf(serial, sizeof serial, "dup-%zu", ci);
        fp_issue_req *same = issue1(s, sid, serial, 0x21);
        check_replay(same, orig[ci], orig_len[ci]);
        fp_issue_req *other = issue1(s, sid, serial, 0x23);
        CHECK_EQ_INT(other->result, FP_ISSUE_KEY_REUSED);
        CHECK(other->response == NULL);
        req_free(same);
        req_free(other);
    }
    CHECK_EQ_INT(remaining(s, sid), 1000 - N);
    fp_issue_req *fresh = issue1(s, sid, "dup-fresh", 0x21);
    char want[FP_NUMBER_LEN + 1];
    number_of(want, "26440", N + 1);
    check_created(fresh, want);
    req_free(fresh);
    fp_store_close(s);

    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices WHERE seller_id=1"), N + 1);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices WHERE serial='dup-0'"), 2);
    CHECK_EQ_INT(db_int(path, "SELECT next FROM number_ranges WHERE seller_id=1"), N + 2);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit"), N + 2);
    for (size_t ci = 0; ci < N; ci++)
        free(orig[ci]);
    check_ctx("%s", "");
}

/* Two small ranges: 1..3 then 10..12; the 7th request is EXHAUSTED, a key
 * used before still replays (or is refused as reused), nothing is invented
 * after a reopen, and a range added later is used at once. */
static void test_rollover(void)
{
    static const struct {
        const char *name;
        const char *p1, *p2;
        int one_batch;
    } cases[] = {
        {"rollover in one batch, two prefixes", "26440", "26441", 1},
        {"rollover one by one, same prefix", "26440", "26440", 0},
    };
    for (size_t ci = 0; ci < NCASES(cases); ci++) {
        check_ctx("%s", cases[ci].name);
        char path[512], name[32];
        snprintf(name, sizeof name, "rollover-%zu", ci);
        db_path(path, sizeof path, name);
        fp_store *s = open_store(path);
        int64_t sid = add_seller(s, &seller_a);
        add_range(s, sid, cases[ci].p1, 1, 3);
        add_range(s, sid, cases[ci].p2, 10, 12);
        CHECK_EQ_INT(remaining(s, sid), 6);

        /* 6 fresh, a 7th fresh, a replay of #1, a reuse of #2's key */
        enum { NR = 9 };
        fp_issue_req *rs[NR];
        for (int i = 0; i < 7; i++) {
            char serial[32];
            snprintf(serial, sizeof serial, "roll-%d", i);
            rs[i] = mkreq(sid, serial, 0x30);
        }
        rs[7] = mkreq_at(sid, "roll-1", 0x30, "2026-03-03T03:03:03+08:00");
        rs[8] = mkreq(sid, "roll-2", 0x31);
        if (cases[ci].one_batch)
            submit_one_batch(s, path, rs, NR);
        else
            for (int i = 0; i < NR; i++)
                submit_wait(s, &rs[i], 1);

        static const int64_t seqs[6] = {1, 2, 3, 10, 11, 12};
        for (int i = 0; i < 6; i++) {
            char want[FP_NUMBER_LEN + 1];
            number_of(want, i < 3 ? cases[ci].p1 : cases[ci].p2, seqs[i]);
            check_created(rs[i], want);
        }
        CHECK_EQ_INT(rs[6]->result, FP_ISSUE_EXHAUSTED);
        CHECK(rs[6]->response == NULL);
        CHECK_EQ_STR(rs[6]->number, "");
        check_replay(rs[7], rs[1]->response, rs[1]->response_len);
        CHECK_EQ_INT(rs[8]->result, FP_ISSUE_KEY_REUSED);
        check_not_stored(s, sid, "roll-6");
        CHECK_EQ_INT(remaining(s, sid), 0);
        CHECK_EQ_INT(remaining(s, 0), 0);

        /* exhausted, later batches */
        fp_issue_req *x = issue1(s, sid, "roll-7", 0x30);
        CHECK_EQ_INT(x->result, FP_ISSUE_EXHAUSTED);
        req_free(x);
        x = issue1(s, sid, "roll-3", 0x30);
        check_replay(x, rs[3]->response, rs[3]->response_len);
        req_free(x);
        fp_store_close(s);

        char t[64];
        db_text(path,
                "SELECT group_concat(next, ',') FROM (SELECT next FROM number_ranges ORDER BY id)",
                t, sizeof t);
        CHECK_EQ_STR(t, "4,13");
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 6);

        /* after a reopen: still exhausted, still replays */
        s = open_store(path);
        CHECK_EQ_INT(remaining(s, sid), 0);
        x = issue1(s, sid, "roll-8", 0x30);
        CHECK_EQ_INT(x->result, FP_ISSUE_EXHAUSTED);
        req_free(x);
        x = issue1(s, sid, "roll-0", 0x30);
        check_replay(x, rs[0]->response, rs[0]->response_len);
        req_free(x);

        /* a new range is used without a restart */
        add_range(s, sid, cases[ci].p2, 20, 21);
        CHECK_EQ_INT(remaining(s, sid), 2);
        x = issue1(s, sid, "roll-6", 0x30); /* the key refused as exhausted before */
        char want[FP_NUMBER_LEN + 1];
        number_of(want, cases[ci].p2, 20);
        check_created(x, want);
        req_free(x);
        CHECK_EQ_INT(remaining(s, sid), 1);
        fp_store_close(s);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 7);
        for (int i = 0; i < NR; i++)
            req_free(rs[i]);
    }
    check_ctx("%s", "");
}

/* Numbers continue across reopens without reuse or gaps, and close drains
 * the queue: every request queued before close is answered (and durable)
 * when close returns. */
static void test_reopen(void)
{
    char path[512];
    db_path(path, sizeof path, "reopen");
    check_ctx("reopen");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 1000);
    int64_t next = 1;
    for (int cycle = 0; cycle < 4; cycle++) {
        check_ctx("reopen: cycle %d", cycle);
        if (cycle > 0)
            s = open_store(path);
        int n = cycle + 2;
        fp_issue_req *rs[8];
        for (int i = 0; i < n; i++) {
            char serial[32];
            snprintf(serial, sizeof serial, "reopen-%d-%d", cycle, i);
            rs[i] = mkreq(sid, serial, 0x40);
        }
        submit_wait(s, rs, n);
        for (int i = 0; i < n; i++) {
            char want[FP_NUMBER_LEN + 1];
            number_of(want, "26440", next++);
            check_created(rs[i], want);
            req_free(rs[i]);
        }
        CHECK_EQ_INT(remaining(s, sid), 1000 - (next - 1));
        fp_store_close(s);
        CHECK_EQ_INT(db_int(path, "SELECT next FROM number_ranges"), next);
    }

    check_ctx("reopen: close drains the queue");
    enum { ND = 50 };
    static fp_issue_req *rs[ND];
    waiter w;
    waiter_init(&w);
    s = open_store(path);
    for (int i = 0; i < ND; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "drain-%d", i);
        rs[i] = mkreq(sid, serial, 0x41);
        rs[i]->done = on_done;
        rs[i]->arg = &w;
    }
    for (int i = 0; i < ND; i++)
        fp_store_submit(s, rs[i]);
    fp_store_close(s);
    pthread_mutex_lock(&w.mu);
    int answered = w.answered;
    pthread_mutex_unlock(&w.mu);
    CHECK_EQ_INT(answered, ND);
    if (answered != ND)
        fatal("close returned before every queued request was answered");
    for (int i = 0; i < ND; i++) {
        char want[FP_NUMBER_LEN + 1];
        number_of(want, "26440", next++);
        check_created(rs[i], want);
    }
    waiter_destroy(&w);
    CHECK_EQ_INT(db_int(path, "SELECT next FROM number_ranges"), next);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), next - 1);

    s = open_store(path);
    for (int i = 0; i < ND; i += 7)
        check_stored(s, sid, rs[i]);
    fp_issue_req *r = issue1(s, sid, "reopen-last", 0x40);
    char want[FP_NUMBER_LEN + 1];
    number_of(want, "26440", next++);
    check_created(r, want);
    req_free(r);
    fp_store_close(s);
    for (int i = 0; i < ND; i++)
        req_free(rs[i]);
    check_ctx("%s", "");
}

/* A transaction that fails: seller 999 has a range (inserted behind the
 * store's back with foreign keys off) but no sellers row, so inserting its
 * invoice violates the FOREIGN KEY and the writer rolls the batch back.
 * Whatever the policy for the other requests of the batch (whole-batch
 * rollback today), each answer must match the database: FAILED means
 * nothing stored and no number used, CREATED means stored; afterwards the
 * writer must hand out numbers from the database's state, not from its
 * rolled-back cache, so retries get the numbers without a gap. */
static void test_failing_batch(void)
{
    static const struct {
        const char *name;
        int64_t r1_first, r1_last, r2_first, r2_last; /* seller A's ranges; r2 0: none */
        int bad_at;                                   /* index of the bad one in the batch */
        int64_t want[2];                              /* numbers of the two good ones */
    } cases[] = {
        {"bad one between two good ones", 1, 100, 0, 0, 1, {1, 2}},
        {"bad one after a rollover", 1, 1, 5, 9, 2, {1, 5}},
        {"bad one first", 1, 100, 0, 0, 0, {1, 2}},
    };
    for (size_t ci = 0; ci < NCASES(cases); ci++) {
        check_ctx("failing batch: %s", cases[ci].name);
        char path[512], name[32];
        snprintf(name, sizeof name, "failing-%zu", ci);
        db_path(path, sizeof path, name);
        fp_store *s = open_store(path);
        int64_t sid = add_seller(s, &seller_a);
        add_range(s, sid, "26440", cases[ci].r1_first, cases[ci].r1_last);
        if (cases[ci].r2_first)
            add_range(s, sid, "26440", cases[ci].r2_first, cases[ci].r2_last);
        int64_t total = cases[ci].r1_last - cases[ci].r1_first + 1 +
                        (cases[ci].r2_first ? cases[ci].r2_last - cases[ci].r2_first + 1 : 0);
        sqlite3 *side = side_conn(path);
        CHECK_EQ_INT(side_exec(side, "PRAGMA foreign_keys=OFF; INSERT INTO number_ranges("
                                     "seller_id, prefix, first, last, next, created_at) "
                                     "VALUES(999, '26449', 1, 10, 1, 0)"),
                     SQLITE_OK);
        sqlite3_close(side);
        CHECK_EQ_INT(remaining(s, 999), 10);

        fp_issue_req *rs[3];
        const char *good_serial[2] = {"fail-good-1", "fail-good-2"};
        for (int i = 0, g = 0; i < 3; i++)
            rs[i] = i == cases[ci].bad_at ? mkreq(999, "fail-bad", 0x50)
                                          : mkreq(sid, good_serial[g++], 0x51);
        submit_one_batch(s, path, rs, 3);

        fp_issue_req *bad = rs[cases[ci].bad_at];
        CHECK_EQ_INT(bad->result, FP_ISSUE_FAILED);
        CHECK(bad->response == NULL);
        CHECK_MSG(bad->error[0] != 0, "FAILED without an error text");
        check_not_stored(s, 999, "fail-bad");
        int ncreated = 0, nfailed = 0;
        for (int i = 0; i < 3; i++) {
            if (i == cases[ci].bad_at)
                continue;
            fp_issue_req *r = rs[i];
            if (r->result == FP_ISSUE_CREATED) {
                ncreated++;
                check_stored(s, sid, r);
            } else if (CHECK_EQ_INT(r->result, FP_ISSUE_FAILED)) {
                nfailed++;
                CHECK(r->response == NULL);
                CHECK(r->error[0] != 0);
                check_not_stored(s, sid, r->serial);
            }
        }
        printf("%s: good requests of the failed batch: %d CREATED, %d FAILED (\"%s\")\n",
               cases[ci].name, ncreated, nfailed, bad->error);
        CHECK_EQ_INT(remaining(s, sid), total - ncreated);
        CHECK_EQ_INT(remaining(s, 999), 10);

        /* retry: the bad one fails again, the good ones get their numbers */
        fp_issue_req *again = issue1(s, 999, "fail-bad", 0x50);
        CHECK_EQ_INT(again->result, FP_ISSUE_FAILED);
        req_free(again);
        for (int g = 0; g < 2; g++) {
            char want[FP_NUMBER_LEN + 1];
            number_of(want, "26440", cases[ci].want[g]);
            fp_issue_req *r = issue1(s, sid, good_serial[g], 0x51);
            const fp_issue_req *before = NULL;
            for (int i = 0; i < 3; i++)
                if (strcmp(rs[i]->serial, good_serial[g]) == 0)
                    before = rs[i];
            if (before && before->result == FP_ISSUE_CREATED)
                check_replay(r, before->response, before->response_len);
            else
                check_created(r, want);
            req_free(r);
        }
        CHECK_EQ_INT(remaining(s, sid), total - 2);
        fp_store_close(s);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 2);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit"), 2);
        CHECK_EQ_INT(db_int(path, "SELECT next FROM number_ranges WHERE seller_id=999"), 1);
        CHECK_EQ_INT(db_int(path, "SELECT sum(next - first) FROM number_ranges WHERE seller_id=1"),
                     2);
        for (int i = 0; i < 3; i++)
            req_free(rs[i]);
    }
    check_ctx("%s", "");
}

/* ---- fail-stop (docs/storage.md) ---- */

static fp_store *open_checked(const char *path, int start_check)
{
    fp_store_opts o = {.path = path, .start_check = start_check};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "fp_store_open(%s): %s", path, err.msg))
        fatal("cannot open the store");
    return s;
}

/* Which SQLite results stop writes: I/O errors and corruption do, disk
 * full does not (it is retryable), nor anything else. */
static void test_failstop_classify(void)
{
    static const struct {
        int rc, cause;
    } cases[] = {
        {SQLITE_IOERR, FP_FAILSTOP_IO},
        {SQLITE_IOERR_FSYNC, FP_FAILSTOP_IO},
        {SQLITE_IOERR_WRITE, FP_FAILSTOP_IO},
        {SQLITE_IOERR_READ, FP_FAILSTOP_IO},
        {SQLITE_IOERR_TRUNCATE, FP_FAILSTOP_IO},
        {SQLITE_IOERR_SHMMAP, FP_FAILSTOP_IO},
        {SQLITE_IOERR_NOMEM, FP_FAILSTOP_NONE},
        {SQLITE_IOERR_SHORT_READ, FP_FAILSTOP_NONE},
        {SQLITE_CORRUPT, FP_FAILSTOP_CORRUPT},
        {SQLITE_CORRUPT_INDEX, FP_FAILSTOP_CORRUPT},
        {SQLITE_NOTADB, FP_FAILSTOP_CORRUPT},
        {SQLITE_READONLY_DBMOVED, FP_FAILSTOP_FILE_GONE},
        {SQLITE_FULL, FP_FAILSTOP_NONE},
        {SQLITE_BUSY, FP_FAILSTOP_NONE},
        {SQLITE_CONSTRAINT_UNIQUE, FP_FAILSTOP_NONE},
        {SQLITE_READONLY, FP_FAILSTOP_NONE},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("classify %s (%d)", sqlite3_errstr(cases[i].rc), cases[i].rc);
        CHECK_EQ_INT(fp_failstop_classify(cases[i].rc), cases[i].cause);
    }
    check_ctx("%s", "");
}

/* The database file renamed under an open store: the fstat/stat check
 * stops writes (issues, probes, audit records), reads go on; the marker
 * survives a close and makes a CLI open read-only; the check from the disk
 * passes once the file is back, clears it, and issuing continues with the
 * next number. */
static void test_failstop_file_gone(void)
{
    check_ctx("fail-stop: file renamed");
    char path[512], moved[600], marker[600];
    db_path(path, sizeof path, "failstop-gone");
    snprintf(moved, sizeof moved, "%s.moved", path);
    snprintf(marker, sizeof marker, "%s-failstop", path);
    fp_store *s = open_checked(path, 1);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    fp_issue_req *r = issue1(s, sid, "gone-1", 0x61);
    check_created(r, "26440000000000000001");
    req_free(r);
    fp_err err = {0};
    CHECK_EQ_INT(fp_store_check_files(s, &err), 0);
    CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_NONE);
    CHECK(rename(path, moved) == 0);
    CHECK_EQ_INT(fp_store_check_files(s, &err), FP_EIO);
    char why[320] = "";
    CHECK_EQ_INT(fp_store_failstop(s, why, sizeof why), FP_FAILSTOP_FILE_GONE);
    CHECK_MSG(strstr(why, "renamed") != NULL, "reason: %s", why);
    r = issue1(s, sid, "gone-2", 0x62);
    CHECK_EQ_INT(r->result, FP_ISSUE_FAILED);
    CHECK_MSG(strstr(r->error, "fail-stopped") != NULL, "error: %s", r->error);
    req_free(r);
    CHECK_EQ_INT(fp_store_probe_write(s, &err), FP_EIO);
    fp_audit_rec a = {0, "test", "test.action", "x", NULL, NULL, "ok"};
    CHECK_EQ_INT(fp_store_audit(s, &a, &err), FP_EIO);
    char *doc = NULL;
    size_t len = 0;
    CHECK_EQ_INT(fp_store_get_invoice(s, sid, "26440000000000000001", &doc, &len), 0);
    free(doc);
    CHECK(rename(moved, path) == 0);
    /* still stopped: nothing clears it inside the process */
    CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_FILE_GONE);
    fp_store_close(s);
    CHECK_MSG(access(marker, F_OK) == 0, "no marker %s", marker);

    s = open_checked(path, 0); /* a CLI command: read-only until checked */
    CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_CHECK);
    fp_store_close(s);
    fp_store_check_report rep;
    CHECK_EQ_INT(fp_store_check_path(path, 0, &rep), 0);
    CHECK(rep.ok && rep.from_disk && rep.after_failstop && rep.audit_checked);
    CHECK_EQ_INT(rep.acked_checked, 1);
    CHECK_EQ_INT(rep.acked_missing, 0);
    CHECK_EQ_STR(rep.integrity, "ok");
    CHECK_EQ_INT(fp_store_failstop_clear_marker(path), 0);
    s = open_checked(path, 1);
    CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_NONE);
    r = issue1(s, sid, "gone-2", 0x62);
    check_created(r, "26440000000000000002");
    req_free(r);
    fp_store_close(s);
    check_ctx("%s", "");
}

/* A marker naming an acknowledged invoice that is not there (a disk that
 * lost an fsynced write): the start-up check fails and the store stays
 * read-only. */
static void test_failstop_lost_ack(void)
{
    check_ctx("fail-stop: lost acknowledgement");
    char path[512], marker[600];
    db_path(path, sizeof path, "failstop-lost");
    snprintf(marker, sizeof marker, "%s-failstop", path);
    fp_store *s = open_checked(path, 1);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    fp_issue_req *r = issue1(s, sid, "lost-1", 0x71);
    check_created(r, "26440000000000000001");
    req_free(r);
    fp_store_close(s);
    FILE *f = fopen(marker, "w");
    if (!f)
        fatal("cannot write the marker");
    fprintf(f, "fapiao-failstop 1\ncause io_error\nat 1\nreason test\nacked 26440000000000000001\n"
               "acked 26440000000000000002\n");
    fclose(f);
    s = open_checked(path, 1);
    char why[320] = "";
    CHECK_EQ_INT(fp_store_failstop(s, why, sizeof why), FP_FAILSTOP_CHECK);
    CHECK_MSG(strstr(why, "26440000000000000002 is missing") && strstr(why, "backup"), "reason: %s",
              why);
    r = issue1(s, sid, "lost-2", 0x72);
    CHECK_EQ_INT(r->result, FP_ISSUE_FAILED);
    req_free(r);
    fp_store_close(s);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 1);
    /* a damaged marker cannot vouch for anything */
    f = fopen(marker, "w");
    if (f) {
        fputs("\0\0\0garbage", f);
        fclose(f);
    }
    fp_store_check_report rep;
    CHECK_EQ_INT(fp_store_check_path(path, 0, &rep), FP_EIO);
    CHECK_MSG(strstr(rep.problems, "unreadable") != NULL, "problems: %s", rep.problems);
    unlink(marker);
    check_ctx("%s", "");
}

/* Damaged pages of the jobs and ranges tables: not seen without the check,
 * found by the quick_check at open (read-only), and by fapiao check; the
 * invoices stay readable.  A damaged stored document is refused, never
 * served, and stops writes. */
static void test_failstop_corruption(void)
{
    static const char *const tables[] = {"jobs", "number_ranges"};
    for (size_t t = 0; t < NCASES(tables); t++) {
        check_ctx("fail-stop: damaged %s page", tables[t]);
        char path[512], name[48];
        snprintf(name, sizeof name, "failstop-page-%zu", t);
        db_path(path, sizeof path, name);
        fp_store *s = open_checked(path, 1);
        int64_t sid = add_seller(s, &seller_a);
        add_range(s, sid, "26440", 1, 100);
        for (int i = 0; i < 3; i++) {
            char serial[32];
            snprintf(serial, sizeof serial, "page-%d", i);
            req_free(issue1(s, sid, serial, (unsigned char)(0x80 + i)));
        }
        fp_store_close(s); /* checkpointed: every page in the database file */
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT rootpage FROM sqlite_master WHERE name='%s'", tables[t]);
        int64_t root = db_int(path, sql), psize = db_int(path, "PRAGMA page_size");
        FILE *f = fopen(path, "r+b");
        if (!f || root < 2)
            fatal("cannot open the database file");
        static const unsigned char junk[16] = {0x0d, 0xff, 0xff, 0x7f, 0xff, 0x00, 0x03, 0xee,
                                               0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
        fseek(f, (long)((root - 1) * psize), SEEK_SET);
        fwrite(junk, 1, sizeof junk, f);
        fclose(f);
        s = open_checked(path, 0); /* no check: nothing noticed at open */
        CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_NONE);
        fp_store_close(s);
        s = open_checked(path, 1);
        char why[320] = "";
        CHECK_EQ_INT(fp_store_failstop(s, why, sizeof why), FP_FAILSTOP_CORRUPT);
        CHECK_MSG(strstr(why, "quick_check") != NULL, "reason: %s", why);
        char *doc = NULL;
        size_t len = 0;
        CHECK_EQ_INT(fp_store_get_invoice(s, sid, "26440000000000000001", &doc, &len), 0);
        free(doc);
        fp_issue_req *r = issue1(s, sid, "page-new", 0x90);
        CHECK_EQ_INT(r->result, FP_ISSUE_FAILED);
        req_free(r);
        fp_store_close(s);
        fp_store_check_report rep;
        CHECK_EQ_INT(fp_store_check_path(path, 1, &rep), FP_EIO);
        CHECK_MSG(strcmp(rep.integrity, "ok") != 0, "integrity_check said ok");
    }

    check_ctx("fail-stop: damaged document");
    char path[512];
    db_path(path, sizeof path, "failstop-doc");
    fp_store *s = open_checked(path, 1);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    req_free(issue1(s, sid, "doc-1", 0xa1));
    fp_store_close(s);
    size_t n = 0;
    char *bytes = check_read_file(path, &n);
    static const char needle[] = "\"number\":\"26440000000000000001\"";
    char *at = bytes ? memmem(bytes, n, needle, sizeof needle - 1) : NULL;
    if (!CHECK(at != NULL))
        fatal("the document is not in the database file");
    FILE *f = fopen(path, "r+b");
    fseek(f, (long)(at - bytes), SEEK_SET);
    fputc(0x01, f);
    fclose(f);
    free(bytes);
    s = open_checked(path, 1);
    CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_NONE); /* pages are fine */
    char *doc = NULL;
    size_t len = 0;
    CHECK_EQ_INT(fp_store_get_invoice(s, sid, "26440000000000000001", &doc, &len), FP_ECORRUPT);
    CHECK(doc == NULL);
    CHECK_EQ_INT(fp_store_failstop(s, NULL, 0), FP_FAILSTOP_CORRUPT);
    fp_store_close(s);
    check_ctx("%s", "");
}

/* More sellers in one batch than the writer caches ranges for (64): the
 * cache writes its entries back and evicts one instead of failing the
 * batch.  Two batches of 200 sellers (one request each), in one
 * transaction each: every request CREATED with its seller's next number,
 * and the ranges in the database say the same. */
static void test_many_sellers(void)
{
    enum { SELLERS = 200, PER = 10 };
    char path[512];
    db_path(path, sizeof path, "many-sellers");
    check_ctx("many sellers in one batch");
    fp_store *s = open_store(path);
    int64_t sid[SELLERS];
    for (int i = 0; i < SELLERS; i++) {
        fp_seller x = seller_b;
        snprintf(x.tax_id, sizeof x.tax_id, "91310000MA1F%06d", i);
        sid[i] = add_seller(s, &x);
        add_range(s, sid[i], "26440", (int64_t)i * PER + 1, (int64_t)(i + 1) * PER);
    }
    for (int round = 0; round < 2; round++) {
        check_ctx("many sellers, batch %d", round + 1);
        fp_issue_req *rs[SELLERS];
        for (int i = 0; i < SELLERS; i++) {
            char serial[32];
            snprintf(serial, sizeof serial, "many-%d-%d", round, i);
            rs[i] = mkreq(sid[i], serial, (unsigned char)(0x60 + round));
        }
        submit_one_batch(s, path, rs, SELLERS);
        for (int i = 0; i < SELLERS; i++) {
            char want[FP_NUMBER_LEN + 1];
            number_of(want, "26440", (int64_t)i * PER + 1 + round);
            check_created(rs[i], want);
            req_free(rs[i]);
        }
        for (int i = 0; i < SELLERS; i += 37)
            CHECK_EQ_INT(remaining(s, sid[i]), PER - 1 - round);
    }
    fp_store_close(s);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 2 * SELLERS);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM number_ranges WHERE next = first + 2"),
                 SELLERS);
    check_ctx("%s", "");
}

/* ---- admin changes and their audit records ---- */

/* Each change, attempt 0 (recorded) and attempt 1 (its audit insert fails):
 * different arguments, so that attempt 1 would change something again. */
static int chg_client_create(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err)
{
    fp_client_info c;
    memset(&c, 0, sizeof c);
    snprintf(c.client_id, sizeof c.client_id, "made-%d", attempt);
    c.seller_id = 1;
    c.roles = FP_ROLE_ISSUER;
    return fp_store_client_create(s, &c, "fps_not_a_real_secret_but_long_enough_x", a, err);
}

static int chg_client_rotate(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err)
{
    return fp_store_client_rotate(s, "c1", attempt ? "fps_second" : "fps_first", 1767578400, 3600,
                                  a, err);
}

static int chg_client_update(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err)
{
    unsigned roles = attempt ? FP_ROLE_ADMIN : FP_ROLE_REVIEWER;
    return fp_store_client_update(s, "c1", &roles, NULL, NULL, a, err);
}

static int chg_client_revoke(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err)
{
    return fp_store_client_revoke(s, attempt ? "c3" : "c2", 1767578400, a, err);
}

static int chg_add_range(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err)
{
    return fp_store_add_range(s, 1, "26440", 1000 + attempt * 100, 1099 + attempt * 100, a, err);
}

static int chg_webhook(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err)
{
    return fp_store_webhook_set(s, "c1", attempt ? "https://b.example/h" : "https://a.example/h",
                                "whsec_0123456789abcdef", a, err);
}

/* Every admin change of the store writes its audit record in its own
 * transaction: one record with the caller's actor and action and the
 * store's target; and when that record cannot be written (a trigger on the
 * audit table refuses it: a real SQLite failure, not an injected one) the
 * change is rolled back and refused.  The store goes on working after. */
static void test_admin_changes_audited(void)
{
    static const struct {
        const char *name;
        int (*change)(fp_store *s, int attempt, const fp_audit_rec *a, fp_err *err);
        const char *action, *target, *outcome; /* of the recorded attempt 0 */
        const char *probe;                     /* the changed state, as an integer */
        int64_t before, after;                 /* probe before and after attempt 0 */
    } cases[] = {
        {"client create", chg_client_create, "keys.create", "made-0", "issuer",
         "SELECT count(*) FROM clients WHERE client_id LIKE 'made-%'", 0, 1},
        {"client rotate", chg_client_rotate, "credentials.rotate", "c1", "ok",
         "SELECT count(*) FROM client_secrets WHERE client_id='c1'", 1, 2},
        {"client update", chg_client_update, "keys.set", "c1", "ok",
         "SELECT count(*) FROM clients WHERE roles <> 'issuer'", 0, 1},
        {"client revoke", chg_client_revoke, "keys.revoke", "c2", "ok",
         "SELECT count(*) FROM clients WHERE revoked_at IS NOT NULL", 0, 1},
        {"range import", chg_add_range, "ranges.import", "26440:1000..1099", "ok",
         "SELECT count(*) FROM number_ranges", 1, 2},
        {"webhook set", chg_webhook, "webhook.set", "c1", "ok",
         "SELECT count(*) FROM clients WHERE webhook_url IS NOT NULL", 0, 1},
    };
    char path[512];
    db_path(path, sizeof path, "admin-audit");
    check_ctx("admin changes audited");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    const char *ids[] = {"c1", "c2", "c3"};
    for (int i = 0; i < 3; i++) {
        fp_client_info c;
        memset(&c, 0, sizeof c);
        snprintf(c.client_id, sizeof c.client_id, "%s", ids[i]);
        c.seller_id = sid;
        c.roles = FP_ROLE_ISSUER;
        fp_err err = {0};
        CHECK_MSG(fp_store_client_create(s, &c, "fps_setup_secret", NULL, &err) == 0,
                  "client_create %s: %s", ids[i], err.msg);
    }
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit"), 0); /* setup: NULL records nothing */
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("%s", cases[i].name);
        char sql[256];
        fp_audit_rec a = {.actor = "cli:tester",
                          .action = cases[i].action,
                          .request_id = "rid-admin",
                          .client_ip = "192.0.2.7",
                          .outcome = strcmp(cases[i].outcome, "ok") ? cases[i].outcome : NULL};
        CHECK_EQ_INT(db_int(path, cases[i].probe), cases[i].before);
        int64_t n0 = db_int(path, "SELECT count(*) FROM audit");
        fp_err err = {0};
        CHECK_MSG(cases[i].change(s, 0, &a, &err) == 0, "change: %s", err.msg);
        CHECK_EQ_INT(db_int(path, cases[i].probe), cases[i].after);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit"), n0 + 1);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM audit WHERE id = (SELECT max(id) FROM audit) AND "
                 "actor='cli:tester' AND action='%s' AND target='%s' AND outcome='%s' AND "
                 "request_id='rid-admin' AND client_ip='192.0.2.7' AND length(hash) = 32",
                 cases[i].action, cases[i].target, cases[i].outcome);
        CHECK_MSG(db_int(path, sql) == 1, "the last record is not %s %s %s", cases[i].action,
                  cases[i].target, cases[i].outcome);

        /* the audit insert fails: the change is undone and refused */
        sqlite3 *side = side_conn(path);
        CHECK_EQ_INT(side_exec(side, "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN "
                                     "SELECT RAISE(ABORT, 'audit refused by the test'); END"),
                     SQLITE_OK);
        memset(&err, 0, sizeof err);
        CHECK_MSG(cases[i].change(s, 1, &a, &err) < 0, "a change without its record succeeded");
        CHECK_MSG(strstr(err.msg, "audit") != NULL, "the refusal does not name the audit: %s",
                  err.msg);
        CHECK_EQ_INT(db_int(path, cases[i].probe), cases[i].after);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit"), n0 + 1);
        CHECK_EQ_INT(side_exec(side, "DROP TRIGGER refuse_audit"), SQLITE_OK);
        sqlite3_close(side);
    }
    check_ctx("admin changes audited: after the refusals");
    /* the chain goes on from the last committed record */
    fp_issue_req *r = issue1(s, sid, "after-refusals", 0x70);
    CHECK_EQ_INT(r->result, FP_ISSUE_CREATED);
    req_free(r);
    fp_store_close(s);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit a JOIN audit b ON b.id = a.id + 1 "
                              "WHERE b.prev_hash <> a.hash"),
                 0);
    CHECK_EQ_INT(db_int(path, "SELECT max(id) - count(*) FROM audit"), 0);
    check_ctx("%s", "");
}

/* ---- setup and teardown ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* Ranges are checked when added: numbers are unique across sellers, so a
 * range may not overlap another of the same prefix. */
static void test_range_validation(void)
{
    char path[512];
    db_path(path, sizeof path, "ranges");
    check_ctx("range validation");
    fp_store *s = open_store(path);
    int64_t a = add_seller(s, &seller_a), b = add_seller(s, &seller_b);
    add_range(s, a, "26440", 100, 199);
    static const struct {
        const char *name;
        int seller; /* 0: a, 1: b */
        const char *prefix;
        int64_t first, last;
        int want;
    } cases[] = {
        {"overlap inside", 0, "26440", 120, 130, FP_ECONFLICT},
        {"overlap start", 0, "26440", 50, 100, FP_ECONFLICT},
        {"overlap end", 0, "26440", 199, 300, FP_ECONFLICT},
        {"covering", 0, "26440", 1, 1000, FP_ECONFLICT},
        {"other seller, same numbers", 1, "26440", 150, 160, FP_ECONFLICT},
        {"adjacent after", 0, "26440", 200, 299, 0},
        {"adjacent before", 0, "26440", 1, 99, 0},
        {"other prefix", 1, "26441", 100, 199, 0},
        {"letters in prefix", 0, "2644A", 1, 5, FP_EINVAL},
        {"short prefix", 0, "2644", 1, 5, FP_EINVAL},
        {"first > last", 0, "26442", 5, 1, FP_EINVAL},
        {"zero first", 0, "26442", 0, 5, FP_EINVAL},
        {"too many digits", 0, "26442", 1, 1000000000000000LL, FP_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_ctx("%s", cases[i].name);
        fp_err err = {0};
        char prefix[6] = {0};
        snprintf(prefix, sizeof prefix, "%s", cases[i].prefix);
        int rc = fp_store_add_range(s, cases[i].seller ? b : a, prefix, cases[i].first,
                                    cases[i].last, NULL, &err);
        CHECK_EQ_INT(rc, cases[i].want);
        if (cases[i].want)
            CHECK_MSG(err.msg[0] != 0, "refusal without a message");
    }
    check_ctx("range validation");
    /* 100 + 100 + 99 from the accepted rows of seller a */
    CHECK_EQ_INT(remaining(s, a), 299);
    CHECK_EQ_INT(remaining(s, b), 100);
    fp_store_close(s);
}

/* ---- the outbox (jobs.h) ---- */

static int claim(fp_store *s, int64_t now, int64_t owner, int64_t lease, fp_job *j, int64_t *due)
{
    fp_err err = {0};
    int64_t d = 0;
    int rc = fp_jobs_claim(s, now, owner, lease, j, &d, &err);
    if (due)
        *due = d;
    return rc;
}

static void check_status(fp_store *s, int64_t sid, const char *number, const char *want)
{
    fp_invoice_state st;
    if (CHECK_EQ_INT(fp_store_invoice_state(s, sid, number, &st), 0))
        CHECK_EQ_STR(st.status, want);
    char *doc = NULL;
    size_t len = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\"status\":\"%s\"", want);
    if (CHECK_EQ_INT(fp_store_get_invoice(s, sid, number, &doc, &len), 0))
        CHECK_MSG(strstr(doc, pat) != NULL, "document of %s lacks %s", number, pat);
    free(doc);
}

static void test_outbox_jobs(void)
{
    char path[512];
    db_path(path, sizeof path, "outbox");
    check_ctx("outbox");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    fp_client_rec c = {.client_id = "test-client", .seller_id = sid, .scope = "invoices:write"};
    fp_err err = {0};
    CHECK_MSG(fp_store_add_client(s, &c, &err) == 0, "add_client: %s", err.msg);
    CHECK_EQ_INT(fp_store_webhook_set(s, "no-such-client", "http://x/", "k", NULL, &err),
                 FP_ENOTFOUND);
    CHECK_EQ_INT(fp_store_webhook_set(s, "test-client", "http://127.0.0.1:9/hook",
                                      "whsec_0123456789abcdef", NULL, &err),
                 0);
    char url[256], secret[64];
    if (CHECK_EQ_INT(fp_store_webhook_get(s, "test-client", url, sizeof url, secret, sizeof secret),
                     0)) {
        CHECK_EQ_STR(url, "http://127.0.0.1:9/hook");
        CHECK_EQ_STR(secret, "whsec_0123456789abcdef");
    }

    /* the issuing transaction queued a render job and a blocked notify job */
    fp_issue_req *r = issue1(s, sid, "ob-1", 1);
    CHECK_EQ_INT(r->result, FP_ISSUE_CREATED);
    char number[FP_NUMBER_LEN + 1];
    snprintf(number, sizeof number, "%s", r->number);
    fp_jobs_counts cnt;
    if (CHECK_EQ_INT(fp_jobs_count(s, &cnt, &err), 0)) {
        CHECK_EQ_INT(cnt.n[FP_JOB_RENDER][FP_JS_PENDING], 1);
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_BLOCKED], 1);
        CHECK(cnt.oldest_pending_at > 0);
    }
    check_status(s, sid, number, "accepted");

    int64_t now = fp_steady_ms(), due = -1;
    fp_job j, j2;
    if (!CHECK_EQ_INT(claim(s, now, 1, 60000, &j, NULL), 0))
        fatal("no render job to claim");
    CHECK_EQ_INT(j.kind, FP_JOB_RENDER);
    CHECK_EQ_STR(j.invoice_number, number);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_EQ_INT(j.state, FP_JS_RUNNING);
    /* the notify job waits for the render: nothing else is due */
    CHECK_EQ_INT(claim(s, now, 2, 60000, &j2, &due), FP_ENOTFOUND);
    CHECK_EQ_INT(due, 0);

    /* only the lease holder completes it */
    fp_job wrong = j;
    wrong.lease_owner = 99;
    CHECK_EQ_INT(fp_jobs_complete(s, &wrong, now, &err), FP_ECONFLICT);
    CHECK_EQ_INT(fp_jobs_complete(s, &j, now, &err), 0);
    check_status(s, sid, number, "rendered");

    /* the notify job is pending now, with its event */
    if (!CHECK_EQ_INT(claim(s, now, 3, 60000, &j, NULL), 0))
        fatal("no notify job");
    CHECK_EQ_INT(j.kind, FP_JOB_NOTIFY);
    CHECK_EQ_STR(j.event, "invoice.rendered");
    char want_id[64];
    snprintf(want_id, sizeof want_id, "evt_%s_rendered", number);
    CHECK_EQ_STR(j.event_id, want_id);
    /* a failed attempt: due again at now + 1000, not before */
    CHECK_EQ_INT(fp_jobs_fail(s, &j, now, now + 1000, 0, "HTTP 500", &err), 0);
    CHECK_EQ_INT(claim(s, now + 999, 4, 60000, &j2, &due), FP_ENOTFOUND);
    CHECK_EQ_INT(due, now + 1000);
    if (CHECK_EQ_INT(claim(s, now + 1000, 5, 60000, &j2, NULL), 0)) {
        CHECK_EQ_INT(j2.id, j.id);
        CHECK_EQ_INT(j2.attempts, 2);
        CHECK_EQ_STR(j2.last_error, "HTTP 500");
    }
    /* a deferral (breaker open) does not use up an attempt */
    CHECK_EQ_INT(fp_jobs_defer(s, &j2, now + 2000, "circuit open", &err), 0);
    if (CHECK_EQ_INT(claim(s, now + 2000, 6, 10, &j2, NULL), 0))
        CHECK_EQ_INT(j2.attempts, 2);
    /* its lease (10 ms) runs out: another worker takes it over, and the
     * first one can no longer record an outcome */
    fp_job j3;
    if (CHECK_EQ_INT(claim(s, now + 2011, 7, 60000, &j3, NULL), 0)) {
        CHECK_EQ_INT(j3.id, j2.id);
        CHECK_EQ_INT(fp_jobs_complete(s, &j2, now + 2012, &err), FP_ECONFLICT);
        /* a crash: recovery puts the running job back */
        int64_t n = 0;
        CHECK_EQ_INT(fp_jobs_recover(s, &n, &err), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_EQ_INT(fp_jobs_complete(s, &j3, now + 2012, &err), FP_ECONFLICT);
    }
    if (CHECK_EQ_INT(claim(s, now + 2013, 8, 60000, &j3, NULL), 0)) {
        /* the last attempt fails for good: a dead letter */
        CHECK_EQ_INT(fp_jobs_fail(s, &j3, now + 2014, now + 5000, 1, "HTTP 410", &err), 0);
        fp_job got;
        if (CHECK_EQ_INT(fp_jobs_get(s, sid, j3.id, &got), 0))
            CHECK_EQ_INT(got.state, FP_JS_DEAD);
        CHECK_EQ_INT(fp_jobs_get(s, sid + 1, j3.id, &got), FP_ENOTFOUND);
        check_status(s, sid, number, "rendered");
        /* re-drive: pending again, attempts start over; only a dead job */
        CHECK_EQ_INT(fp_jobs_redrive(s, sid, j3.id, "admin", "rid", NULL, "127.0.0.1", &err), 0);
        CHECK_EQ_INT(fp_jobs_redrive(s, sid, j3.id, "admin", "rid", NULL, "127.0.0.1", &err),
                     FP_ECONFLICT);
        CHECK_EQ_INT(fp_jobs_redrive(s, sid, 424242, "admin", "rid", NULL, "127.0.0.1", &err),
                     FP_ENOTFOUND);
        CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit WHERE action='job.redrive'"), 1);
    }
    if (CHECK_EQ_INT(claim(s, fp_steady_ms(), 9, 60000, &j3, NULL), 0)) {
        CHECK_EQ_INT(j3.attempts, 1);
        CHECK_EQ_INT(fp_jobs_complete(s, &j3, fp_steady_ms(), &err), 0);
    }
    check_status(s, sid, number, "delivered");
    CHECK_EQ_INT(
        fp_store_invoice_ack(s, sid, number, "test-client", "rid", NULL, "127.0.0.1", &err), 0);
    CHECK_EQ_INT(fp_store_invoice_ack(s, sid + 1, number, "x", "rid", NULL, "127.0.0.1", &err),
                 FP_ENOTFOUND);
    check_status(s, sid, number, "confirmed");

    /* a render that dies: the invoice is failed with the reason, and the
     * client is told so */
    fp_issue_req *r2 = issue1(s, sid, "ob-2", 2);
    CHECK_EQ_INT(r2->result, FP_ISSUE_CREATED);
    now = fp_steady_ms();
    if (CHECK_EQ_INT(claim(s, now, 10, 60000, &j, NULL), 0)) {
        CHECK_EQ_STR(j.invoice_number, r2->number);
        CHECK_EQ_INT(fp_jobs_fail(s, &j, now, now, 1, "render timed out", &err), 0);
        fp_invoice_state st;
        if (CHECK_EQ_INT(fp_store_invoice_state(s, sid, r2->number, &st), 0)) {
            CHECK_EQ_STR(st.status, "failed");
            CHECK_EQ_STR(st.failure, "render timed out");
            CHECK_EQ_INT(st.render_state, FP_JS_DEAD);
        }
        char *doc = NULL;
        size_t len;
        if (CHECK_EQ_INT(fp_store_get_invoice(s, sid, r2->number, &doc, &len), 0)) {
            CHECK(strstr(doc, "\"status\":\"failed\",\"failure\":\"render timed out\"") != NULL);
            CHECK_EQ_INT(strlen(doc), len);
        }
        free(doc);
    }
    if (CHECK_EQ_INT(claim(s, now, 11, 60000, &j2, NULL), 0)) {
        CHECK_EQ_STR(j2.event, "invoice.failed");
        CHECK_EQ_INT(fp_jobs_complete(s, &j2, now, &err), 0);
    }
    /* re-driven, the render succeeds: failed -> rendered, announced once */
    CHECK_EQ_INT(fp_jobs_redrive(s, sid, j.id, "admin", "rid", NULL, "127.0.0.1", &err), 0);
    if (CHECK_EQ_INT(claim(s, fp_steady_ms(), 12, 60000, &j, NULL), 0))
        CHECK_EQ_INT(fp_jobs_complete(s, &j, fp_steady_ms(), &err), 0);
    check_status(s, sid, r2->number, "rendered");
    if (CHECK_EQ_INT(claim(s, fp_steady_ms(), 13, 60000, &j2, NULL), 0))
        CHECK_EQ_STR(j2.event, "invoice.rendered");

    /* a client without a webhook gets no notify job */
    CHECK_EQ_INT(fp_store_webhook_set(s, "test-client", NULL, NULL, NULL, &err), 0);
    fp_issue_req *r3 = issue1(s, sid, "ob-3", 3);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE invoice_number='%s'", r3->number);
    CHECK_EQ_INT(db_int(path, sql), 1);

    req_free(r);
    req_free(r2);
    req_free(r3);
    fp_store_close(s);
}

/* A stalled commit (the injected delay before COMMIT stands in for a slow
 * disk; tests/e2e/test_storage_space.py throttles a real one): the request
 * inside the committing batch is answered FP_ISSUE_UNKNOWN at its deadline
 * while the writer still holds it, the ones queued behind it
 * FP_ISSUE_TIMEOUT; the slow commit and the answers count as failures. */
static atomic_int hook_fail, hook_ok;
static void count_outcome(int ok, void *arg)
{
    (void)arg;
    atomic_fetch_add(ok ? &hook_ok : &hook_fail, 1);
}

static void on_done_any(fp_issue_req *r, void *arg)
{
    (void)r;
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->answered++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_deadlines(void)
{
    char path[512];
    db_path(path, sizeof path, "deadlines");
    check_ctx("deadlines");
    fp_store_opts o = {.path = path, .write_deadline_ms = 300, .slow_write_ms = 100};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "fp_store_open: %s", err.msg))
        return;
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    fp_store_set_outcome_hook(s, count_outcome, NULL);
    fp_store_faults f = {.write_delay_ms = 1500};
    fp_store_set_faults(s, &f);

    waiter w;
    waiter_init(&w);
    fp_issue_req *rs[3];
    for (int i = 0; i < 3; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "deadline-%d", i);
        rs[i] = mkreq(sid, serial, (unsigned char)(0x40 + i));
        rs[i]->done = on_done_any;
        rs[i]->arg = &w;
        fp_store_submit(s, rs[i]);
        if (i == 0) { /* let the writer take it alone into a batch */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    wait_answers(&w, 3); /* long before the 1.5 s commit ends */
    CHECK_EQ_INT(atomic_load(&rs[0]->early), FP_ISSUE_UNKNOWN);
    for (int i = 1; i < 3; i++) {
        CHECK_EQ_INT(atomic_load(&rs[i]->early), 0);
        CHECK_EQ_INT(rs[i]->result, FP_ISSUE_TIMEOUT);
    }
    for (int i = 0; i < 3; i++)
        fp_issue_req_release(rs[i]); /* the caller's part; the writer frees rs[0] */
    waiter_destroy(&w);
    f.write_delay_ms = 0;
    fp_store_set_faults(s, &f);
    fp_store_stats st;
    for (int i = 0; i < 100; i++) { /* the stalled batch ends (1.5 s) */
        fp_store_get_stats(s, &st);
        if (st.slow_writes >= 1)
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* the unknown one was stored after all, the others not */
    fp_issue_req *probe = issue1(s, sid, "deadline-after", 0x50);
    CHECK_EQ_INT(probe->result, FP_ISSUE_CREATED);
    req_free(probe);
    unsigned char h[32];
    char num[FP_NUMBER_LEN + 1];
    char *doc = NULL;
    size_t len = 0;
    CHECK_EQ_INT(fp_store_find_serial(s, sid, "deadline-0", h, num, &doc, &len), 0);
    free(doc);
    doc = NULL;
    CHECK_EQ_INT(fp_store_find_serial(s, sid, "deadline-1", h, num, &doc, &len), FP_ENOTFOUND);
    fp_store_get_stats(s, &st);
    CHECK_EQ_INT((int)st.unknown, 1);
    CHECK_EQ_INT((int)st.timed_out, 2);
    CHECK(st.slow_writes >= 1);
    CHECK(st.last_commit_us >= 0);
    /* two timeouts, one unknown, one slow commit */
    CHECK_MSG(atomic_load(&hook_fail) >= 4, "%d failures reported", atomic_load(&hook_fail));
    /* a probe slower than the limit fails */
    f.write_delay_ms = 300;
    fp_store_set_faults(s, &f);
    CHECK_EQ_INT(fp_store_probe_write(s, &err), FP_ETIMEDOUT);
    CHECK(strstr(err.msg, "stalled") != NULL);
    f.write_delay_ms = 0;
    fp_store_set_faults(s, &f);
    /* the disk is fast again: a probe passes.  Within a few tries: on a
     * loaded machine one real commit can take over the 100 ms limit, and
     * the probe measures real time */
    int probe_rc = FP_ETIMEDOUT;
    for (int i = 0; i < 20 && probe_rc == FP_ETIMEDOUT; i++)
        probe_rc = fp_store_probe_write(s, &err);
    CHECK_MSG(probe_rc == 0, "no write probe passed once the delay was lifted: %s", err.msg);
    fp_store_set_outcome_hook(s, NULL, NULL);
    fp_store_close(s);
}

/* ---- fair order of first runs (issue 13; docs/webhooks.md "Order of
 * service") ---- */

/* n invoices of lines lines each for seller sid, queued in one batch in
 * this order. */
static void issue_lines(fp_store *s, int64_t sid, const char *tag, int n, int lines)
{
    fp_issue_req *rs[64];
    if (n > 64)
        fatal("issue_lines: at most 64");
    for (int i = 0; i < n; i++) {
        char serial[64];
        snprintf(serial, sizeof serial, "fair-%s-%d", tag, i);
        rs[i] = mkreq(sid, serial, (unsigned char)(0x40 + i));
        rs[i]->lines = lines;
    }
    submit_wait(s, rs, n);
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(rs[i]->result, FP_ISSUE_CREATED);
        req_free(rs[i]);
    }
}

/* Claims the next job and completes it; 0 when none was due. */
static int serve_next(fp_store *s, int64_t now, fp_job *j)
{
    static int64_t owner = 1000;
    fp_err err = {0};
    if (claim(s, now, ++owner, 60000, j, NULL) != 0)
        return 0;
    CHECK_EQ_INT(fp_jobs_complete(s, j, now, &err), 0);
    return 1;
}

/* Waits (real time, bounded) until the invoice's render job is in state
 * want (with a failed attempt's error when failed); 1 when it got there,
 * with its state in *out. */
static int wait_render(fp_store *s, int64_t sid, const char *number, int want, int failed,
                       fp_invoice_state *out)
{
    for (int i = 0; i < 300; i++) {
        if (fp_store_invoice_state(s, sid, number, out) == 0 && out->render_state == want &&
            (!failed || out->render_error[0]))
            return 1;
        usleep(100 * 1000);
    }
    return 0;
}

/* The bounded backlog's rows (jobs.h, docs/outbox.md): with notify_early
 * a new invoice's notify job is pending at once (invoice.issued); the
 * on-demand claim takes one invoice's render whether due or not, once;
 * after the issued event was delivered the render's completion makes the
 * invoice delivered without a second event; pruning deletes done jobs
 * finished before the cut, in batches, notify before render, and never a
 * job that is not done. */
static void test_outbox_backlog(void)
{
    char path[512];
    db_path(path, sizeof path, "backlog");
    check_ctx("outbox backlog");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    fp_client_rec c = {.client_id = "bl-client", .seller_id = sid, .scope = "invoices:write"};
    fp_err err = {0};
    CHECK_MSG(fp_store_add_client(s, &c, &err) == 0, "add_client: %s", err.msg);
    CHECK_EQ_INT(fp_store_webhook_set(s, "bl-client", "http://127.0.0.1:9/hook",
                                      "whsec_0123456789abcdef", NULL, &err),
                 0);
    /* the issuing client of issue1 is its actor: make it this client */
    fp_issue_req *r1 = mkreq(sid, "bl-1", 1);
    snprintf(r1->actor, sizeof r1->actor, "bl-client");
    submit_wait(s, &r1, 1);
    CHECK_EQ_INT(r1->result, FP_ISSUE_CREATED);
    fp_store_set_notify_early(s, 1);
    fp_issue_req *r2 = mkreq(sid, "bl-2", 2);
    snprintf(r2->actor, sizeof r2->actor, "bl-client");
    submit_wait(s, &r2, 1);
    CHECK_EQ_INT(r2->result, FP_ISSUE_CREATED);
    fp_store_set_notify_early(s, 0);
    char n1[FP_NUMBER_LEN + 1], n2[FP_NUMBER_LEN + 1];
    snprintf(n1, sizeof n1, "%s", r1->number);
    snprintf(n2, sizeof n2, "%s", r2->number);
    req_free(r1);
    req_free(r2);
    fp_jobs_counts cnt;
    if (CHECK_EQ_INT(fp_jobs_count(s, &cnt, &err), 0)) {
        CHECK_EQ_INT(cnt.n[FP_JOB_RENDER][FP_JS_PENDING], 2);
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_BLOCKED], 1); /* n1's */
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_PENDING], 1); /* n2's, at once */
        CHECK(cnt.oldest_render_at > 0);
    }

    /* the on-demand claim: n2's render, once */
    int64_t now = fp_steady_ms();
    fp_job rj, nj, other;
    if (!CHECK_EQ_INT(fp_jobs_claim_render(s, sid, n2, now, 7, 60000, &rj, &err), 0))
        fatal("no render to claim on demand");
    CHECK_EQ_STR(rj.invoice_number, n2);
    CHECK_EQ_INT(rj.kind, FP_JOB_RENDER);
    CHECK_EQ_INT(rj.state, FP_JS_RUNNING);
    CHECK_EQ_INT(fp_jobs_claim_render(s, sid, n2, now, 8, 60000, &other, &err), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_jobs_claim_render(s, sid + 1, n1, now, 8, 60000, &other, &err),
                 FP_ENOTFOUND); /* another seller's invoice */

    /* the issued event is delivered before the render ends */
    int found = 0;
    for (int i = 0; i < 3 && !found; i++) {
        if (claim(s, now, 20 + i, 60000, &nj, NULL) != 0)
            break;
        if (nj.kind == FP_JOB_NOTIFY) {
            found = 1;
            CHECK_EQ_STR(nj.event, "invoice.issued");
            CHECK_EQ_STR(nj.invoice_number, n2);
            CHECK_EQ_INT(fp_jobs_complete(s, &nj, now, &err), 0);
        } else { /* n1's render (not on demand): leave it pending again */
            CHECK_EQ_INT(fp_jobs_defer(s, &nj, now + 3600000, "later", &err), 0);
        }
    }
    CHECK_MSG(found, "the invoice.issued notify job was not claimable");
    check_status(s, sid, n2, "accepted");
    CHECK_EQ_INT(fp_jobs_complete(s, &rj, now, &err), 0);
    check_status(s, sid, n2, "delivered"); /* its event went out already */
    /* no invoice.rendered event queued for it */
    CHECK_EQ_INT(claim(s, now, 30, 60000, &other, NULL), FP_ENOTFOUND);

    /* pruning: n2's two done jobs; n1's pending render and blocked notify
     * stay; a cut before they finished deletes nothing */
    int64_t pruned = -1;
    CHECK_EQ_INT(fp_jobs_prune(s, now, 500, &pruned, &err), 0);
    CHECK_EQ_INT(pruned, 0);
    CHECK_EQ_INT(fp_jobs_prune(s, now + 1, 1, &pruned, &err), 0);
    CHECK_EQ_INT(pruned, 1); /* the batch limit: the notify job */
    CHECK_EQ_INT(fp_jobs_prune(s, now + 1, 500, &pruned, &err), 0);
    CHECK_EQ_INT(pruned, 1); /* then the render no job refers to any more */
    CHECK_EQ_INT(fp_jobs_prune(s, now + 1, 500, &pruned, &err), 0);
    CHECK_EQ_INT(pruned, 0);
    fp_invoice_state st;
    if (CHECK_EQ_INT(fp_store_invoice_state(s, sid, n2, &st), 0)) {
        CHECK_EQ_STR(st.status, "delivered"); /* the invoice keeps its state */
        CHECK_EQ_INT(st.render_state, -1);    /* no render job any more */
    }
    if (CHECK_EQ_INT(fp_jobs_count(s, &cnt, &err), 0)) {
        CHECK_EQ_INT(cnt.n[FP_JOB_RENDER][FP_JS_PENDING], 1);
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_BLOCKED], 1);
    }
    fp_store_close(s);
    check_ctx("%s", "");
}

/* The outbox's job deadlines run on the steady wall clock (jobs.h): after
 * the wall clock was stepped an hour back, a render queued now is due now
 * (not in an hour), and a failed render is retried when its backoff has
 * passed on the monotonic clock, whatever the wall clock does meanwhile. */
static void test_outbox_wall_step(void)
{
    char path[512], pdf_dir[600];
    db_path(path, sizeof path, "wallstep");
    snprintf(pdf_dir, sizeof pdf_dir, "%s-pdf", path);
    check_ctx("outbox across a wall-clock step");
    fp_store *s = open_store(path);
    int64_t sid = add_seller(s, &seller_a);
    add_range(s, sid, "26440", 1, 100);
    fp_issue_req *r = issue1(s, sid, "ws-1", 1);
    CHECK_EQ_INT(r->result, FP_ISSUE_CREATED);

    /* the outbox sees this process's steady clock, and a wall clock an
     * hour behind it (stepped back since the process started) */
    fake f;
    fake_init(&f);
    f.mono_ns = fp_mono_ns();
    f.c.steady_base_ms = fp_steady_ms() - f.mono_ns / 1000000;
    f.wall_ms = fp_wall_ms() - 3600LL * 1000;
    fp_outbox_opts o = {.store = s,
                        .pdf_dir = pdf_dir,
                        .render_exe = FP_BIN,
                        .workers = 1,
                        .render_workers = 1,
                        .render_attempts = 5,
                        .clock = &f.c};
    f.threads = 3; /* the job thread, the foreground thread, the keeper */
    fp_outbox *ob = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_outbox_start(&o, &ob, &err) == 0, "fp_outbox_start: %s", err.msg)) {
        req_free(r);
        fp_store_close(s);
        return;
    }
    fp_invoice_state st;
    CHECK_MSG(wait_render(s, sid, r->number, FP_JS_DONE, 0, &st),
              "the render queued before the step did not run");

    /* a render that fails: retried when its backoff has passed */
    fp_outbox_set_render_fault(ob, 1);
    fp_issue_req *r2 = issue1(s, sid, "ws-2", 2);
    CHECK_EQ_INT(r2->result, FP_ISSUE_CREATED);
    /* the store stamped the job on the real steady clock: the fake catches
     * up with it (on both clocks) so that the job is due */
    int64_t catch_up = fp_mono_ns() / 1000000 - fp_clock_mono_ms(&f.c);
    fake_move(&f, catch_up > 0 ? catch_up : 0, 0);
    fp_outbox_kick(ob);
    int failed = wait_render(s, sid, r2->number, FP_JS_PENDING, 1, &st);
    fp_outbox_set_render_fault(ob, 0);
    if (CHECK_MSG(failed, "the faulty render did not fail")) {
        int64_t left = st.render_next_at - fp_clock_steady_ms(&f.c);
        CHECK(left > 0);
        /* a millisecond short, with the wall clock another hour back */
        fake_move(&f, left - 1, -3600LL * 1000);
        fp_outbox_kick(ob);
        /* every thread has gone round its loop at the new time (a claim
         * would have run the render before its thread waited again) */
        CHECK_MSG(settle(&f), "the outbox's threads did not go round their loops");
        fp_invoice_state st2;
        if (CHECK_EQ_INT(fp_store_invoice_state(s, sid, r2->number, &st2), 0))
            CHECK_EQ_INT(st2.render_state, FP_JS_PENDING);
        /* due: it runs now, although the wall clock is two hours behind */
        fake_move(&f, 1, 0);
        fp_outbox_kick(ob);
        CHECK_MSG(wait_render(s, sid, r2->number, FP_JS_DONE, 0, &st2),
                  "the retry due on the monotonic clock did not run");
    }
    fp_outbox_stop(ob);
    req_free(r);
    req_free(r2);
    fp_store_close(s);
    check_ctx("%s", "");
}

static void test_outbox_fairness(void)
{
    char path[512];
    db_path(path, sizeof path, "fairness");
    check_ctx("outbox fairness");
    fp_store *s = open_store(path);
    int64_t a = add_seller(s, &seller_a), b = add_seller(s, &seller_b);
    add_range(s, a, "26440", 1, 1000);
    add_range(s, b, "26440", 1001, 2000);
    fp_client_rec c = {.client_id = "test-client", .seller_id = a, .scope = "invoices:write"};
    fp_err err = {0};
    CHECK_MSG(fp_store_add_client(s, &c, &err) == 0, "add_client: %s", err.msg);
    CHECK_EQ_INT(fp_store_webhook_set(s, "test-client", "http://127.0.0.1:9/hook",
                                      "whsec_0123456789abcdef", NULL, &err),
                 0);

    /* A queues 20 large invoices, then B one small one: B's render is one
     * of the first two served (FIFO: the 21st) */
    issue_lines(s, a, "a-big", 20, 5000);
    issue_lines(s, b, "b-small", 1, 1);
    int64_t now = fp_steady_ms();
    fp_job j, first = {0};
    int b_at = 0;
    for (int k = 1; k <= 2 && !b_at; k++) {
        if (!CHECK_EQ_INT(claim(s, now, 100 + k, 60000, &j, NULL), 0))
            break;
        CHECK_EQ_INT(j.kind, FP_JOB_RENDER);
        if (j.seller_id == b)
            b_at = k;
        else if (k == 1)
            first = j; /* A's first: kept running, failed below */
        if (k > 1 || j.seller_id == b)
            CHECK_EQ_INT(fp_jobs_complete(s, &j, now, &err), 0);
    }
    CHECK_MSG(b_at == 1 || b_at == 2,
              "B's 1-line render served at position %d (0: not among the first two)", b_at);
    /* B's webhook event waits behind at most one of A's renders, not all
     * of them: its notify job is tagged like a render */
    int notify_at = 0;
    for (int k = 1; k <= 3 && !notify_at; k++)
        if (CHECK(serve_next(s, now, &j)) && j.kind == FP_JOB_NOTIFY && j.seller_id == b)
            notify_at = k;
    CHECK_MSG(notify_at >= 1 && notify_at <= 2,
              "B's notify served at %d (0: not among the first two)", notify_at);
    /* a retried job is served when due, before first runs, without losing
     * its place to the fair order: A's first render fails once */
    if (first.seller_id == a && first.state == FP_JS_RUNNING) {
        CHECK_EQ_INT(fp_jobs_fail(s, &first, now, now + 1000, 0, "render timed out", &err), 0);
        if (CHECK(serve_next(s, now + 999, &j)))
            CHECK_MSG(j.id != first.id, "job %lld served before it was due", (long long)j.id);
        if (CHECK(serve_next(s, now + 1000, &j))) {
            CHECK_EQ_INT(j.id, first.id);
            CHECK_EQ_INT(j.attempts, 2);
        }
    }
    /* a tag only on jobs waiting for their first run */
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM jobs WHERE fair_tag IS NOT NULL "
                              "AND state <> 'pending'"),
                 0);
    int left = 0;
    while (left < 200 && serve_next(s, now + 1000, &j))
        left++;
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM jobs WHERE state <> 'done'"), 0);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM jobs WHERE fair_tag IS NOT NULL"), 0);

    /* A long run, both sellers backlogged: A 60 renders of cost 70, B 200
     * of cost 21 (A's queued first).  While both have work, each seller's
     * served cost stays within one job's cost (the largest, 70) of half of
     * all that was served. */
    CHECK_EQ_INT(fp_store_webhook_set(s, "test-client", NULL, NULL, NULL, &err), 0);
    for (int i = 0; i < 60; i += 30) {
        char t[16];
        snprintf(t, sizeof t, "a-%d", i);
        issue_lines(s, a, t, 30, 50);
    }
    for (int i = 0; i < 200; i += 50) {
        char t[16];
        snprintf(t, sizeof t, "b-%d", i);
        issue_lines(s, b, t, 50, 1);
    }
    const int64_t cost_a = FP_JOB_BASE_COST + 50, cost_b = FP_JOB_BASE_COST + 1;
    int64_t served_a = 0, served_b = 0, worst = 0;
    int na = 0, nb = 0;
    for (int k = 0; k < 260 && na < 60 && nb < 200; k++) {
        if (!CHECK(serve_next(s, now + 2000, &j)))
            break;
        if (j.seller_id == a)
            served_a += cost_a, na++;
        else
            served_b += cost_b, nb++;
        int64_t off = served_a - (served_a + served_b) / 2;
        if (off < 0)
            off = -off;
        if (off > worst)
            worst = off;
    }
    CHECK_MSG(worst <= cost_a,
              "a seller's served cost strayed %lld from its fair share (bound %lld)",
              (long long)worst, (long long)cost_a);
    /* and the rest is served too */
    while (left < 1000 && serve_next(s, now + 2000, &j))
        left++;
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM jobs WHERE state <> 'done'"), 0);
    fp_store_close(s);
}

/* A postgresql:// database setting opens the PostgreSQL backend
 * (src/store/pg/; its contract run: test_store_pg.c): a server that does
 * not answer is FP_EIO with the reason in zh + en, and the URL, which may
 * hold a password, is not repeated.  Port 1 on loopback: refused at once,
 * no network. */
static void test_open_postgres(void)
{
    static const char *const urls[] = {"postgresql://fapiao:secret@127.0.0.1:1/fapiao",
                                       "postgres://fapiao:secret@127.0.0.1:1/fapiao"};
    for (size_t i = 0; i < NCASES(urls); i++) {
        check_ctx("open %s", urls[i]);
        fp_store_opts o = {.path = urls[i]};
        fp_store *s = NULL;
        fp_err err = {0};
        CHECK_EQ_INT(fp_store_open(&o, &s, &err), FP_EIO);
        CHECK(s == NULL);
        CHECK_MSG(strstr(err.msg, "cannot connect to PostgreSQL") &&
                      strstr(err.msg, "无法连接 PostgreSQL"),
                  "message: %s", err.msg);
        CHECK_MSG(!strstr(err.msg, "secret"), "the URL's password is repeated: %s", err.msg);
    }
    check_ctx("%s", "");
}

int main(void)
{
    example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    if (!example)
        fatal("cannot read examples/invoice.json");
    static fp_errors es;
    if (fp_invoice_parse(example, strlen(example), NULL, &inv, &es) != 0)
        fatal("examples/invoice.json does not parse");
    if (!mkdtemp(tmpdir))
        fatal("mkdtemp");

    /* every backend this build has: the contract suite, then the tests
     * written against store.h (they open the store on `backend`) */
    static const fp_store_ops *const backends[] = {&fp_store_sqlite_ops};
    for (size_t b = 0; b < NCASES(backends); b++) {
        backend = backends[b];
        int failed[SC_NCHECKS];
        sc_run(backend, backend->name, &inv, tmpdir, 0, failed);
        test_single();
        test_burst();
        test_duplicates();
        test_rollover();
        test_reopen();
        test_failing_batch();
        test_many_sellers();
        test_admin_changes_audited();
        test_range_validation();
        test_outbox_jobs();
        test_outbox_fairness();
        test_outbox_backlog();
        test_outbox_wall_step();
        test_deadlines();
    }
    test_open_postgres();
    /* SQLite's own: the fail-stop under its VFS */
    test_failstop_classify();
    test_failstop_file_gone();
    test_failstop_lost_ack();
    test_failstop_corruption();

    CHECK_MSG(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", tmpdir);
    fp_invoice_clear(&inv);
    free(example);
    return check_summary();
}
