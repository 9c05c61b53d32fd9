/* commit_ceiling.c — the raw SQLite group-commit ceiling for fapiao's rows.
 *
 * Measures what SQLite + fsync alone can do on this filesystem, with no HTTP,
 * TLS, JSON parsing or threads hand-off in the way: the same schema as the
 * server (fp_store_migration_sql), WAL, synchronous=FULL, automatic
 * checkpoints off and a PASSIVE checkpoint on a separate thread/connection
 * every N WAL frames (as the server's store does), and the same statements
 * the writer runs -- its own SQL text, fp_sq_write_sql[] of
 * src/store/sqlite/writer.c, so the two cannot drift apart: per invoice
 *
 *   INSERT INTO invoices (...)     -- ~1.5 KB response document; its
 *                                     UNIQUE(seller_id, serial) is the
 *                                     idempotency check
 *   INSERT INTO audit (...)        -- with its id, prev_hash and hash
 *                                     (random bytes here: the SHA-256 of
 *                                     the chain is the server's CPU)
 *   INSERT INTO jobs (render)      -- the outbox: a render job and
 *   INSERT INTO jobs (notify) ...  -- a notify job (INSERT ... SELECT FROM
 *                                     clients: a row when the client has a
 *                                     webhook; --job-rows 1 = no webhook)
 *
 * numbers taken from the range in memory, and once per transaction
 *
 *   UPDATE number_ranges SET next=? WHERE id=?
 *
 * committed in one transaction per batch, for several batch sizes.  Every
 * batch size is bounded by a row count and a wall-clock limit.
 *
 * Usage: bench_commit_ceiling [--dir DIR | --db FILE] [--rows N] [--rows1 N] [--job-rows 1|2]
 *                             [--seconds S] [--batches 1,8,32,64,128,512]
 *                             [--checkpoint-frames N] [--keep]
 * The last line of output is `ceiling_rows_per_s=<max over batch sizes>`. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fapiao/jobs.h"
#include "fapiao/store.h"
#include "../src/store/sqlite/internal.h" /* fp_sq_write_sql: the writer's statements */

#define MAX_BATCH_SIZES 16
#define NUMBER_PREFIX   "25440"

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
    fputs("commit_ceiling: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void check_rc(sqlite3 *db, int rc, int want, const char *what)
{
    if (rc != want)
        die("%s: %s (rc=%d)", what, db ? sqlite3_errmsg(db) : "?", rc);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        die("exec \"%.60s\": %s", sql, msg ? msg : "?");
}

/* ---- checkpointer: own thread, own connection, PASSIVE, like the server ---- */

typedef struct ckpt {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, stop;
    const char *path;
    int frames_trigger;
    int base_frames; /* WAL size when the last checkpoint was requested */
    int max_frames;  /* largest WAL seen, in frames */
    uint64_t runs;
    double busy_s;
} ckpt;

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    ckpt *c = arg;
    /* frames is the WAL's size after this commit.  It shrinks when the
     * writer restarts the WAL after a complete checkpoint.  Ask for one
     * checkpoint per frames_trigger new frames, not one per commit. */
    pthread_mutex_lock(&c->mu);
    if (frames > c->max_frames)
        c->max_frames = frames;
    if (frames < c->base_frames)
        c->base_frames = 0;
    if (c->frames_trigger > 0 && frames - c->base_frames >= c->frames_trigger) {
        c->base_frames = frames;
        if (!c->pending) {
            c->pending = 1;
            pthread_cond_signal(&c->cv);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    ckpt *c = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        die("checkpointer open: %s", sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    exec_sql(db, "PRAGMA synchronous=FULL");
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->pending && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->pending = 0;
        pthread_mutex_unlock(&c->mu);
        double t = now_s();
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            die("checkpoint: %s", sqlite3_errmsg(db));
        pthread_mutex_lock(&c->mu);
        c->runs++;
        c->busy_s += now_s() - t;
    }
    pthread_mutex_unlock(&c->mu);
    sqlite3_close(db);
    return NULL;
}

/* ---- a realistic ~1.5 KB 201 response document ---- */

/* The writer only fills in the number; everything else is built by the
 * request thread before the hand-off, so here we copy a template and patch
 * the number (twice: "number" and the links) and the serial. */
typedef struct doc_tmpl {
    char *text;
    size_t len;
    size_t num_off[4];
    int nnum;
    size_t serial_off;
} doc_tmpl;

#define SERIAL_LEN 24

static void build_doc(doc_tmpl *d)
{
    static const char *fmt =
        "{\"number\":\"@@@@@@@@@@@@@@@@@@@@\",\"serial\":\"$$$$$$$$$$$$$$$$$$$$$$$$\","
        "\"status\":\"accepted\",\"invoice_type\":\"02\",\"color\":\"blue\","
        "\"issued_at\":\"2025-05-20T10:00:00+08:00\","
        "\"seller\":{\"name\":\"深圳市某某信息技术有限公司\",\"tax_id\":\"91440300MA5G0XXXXX\","
        "\"address\":\"深圳市南山区科技园某某大厦18楼\",\"phone\":\"0755-88888888\","
        "\"bank\":\"招商银行深圳分行科技园支行\",\"account\":\"755912345678901\"},"
        "\"buyer\":{\"name\":\"上海某某科技有限公司\",\"tax_id\":\"91350200MA2YJ1XR9G\","
        "\"address\":\"上海市浦东新区某某路1号\",\"phone\":\"021-12345678\","
        "\"bank\":\"某某银行上海分行\",\"account\":\"6222000000000000\","
        "\"natural_person\":false,\"email\":\"ap@example.com\"},"
        "\"price_includes_tax\":false,"
        "\"items\":[{\"line\":1,\"name\":\"*信息技术服务*软件维护服务费\","
        "\"tax_code\":\"3040201000000000000\",\"spec\":\"V2\",\"unit\":\"年\","
        "\"quantity\":\"1\",\"unit_price\":\"1000.00\",\"amount\":\"1000.00\","
        "\"tax_rate\":\"0.06\",\"tax\":\"60.00\",\"amount_with_tax\":\"1060.00\","
        "\"line_kind\":\"discounted\"},"
        "{\"line\":2,\"name\":\"*信息技术服务*软件维护服务费\","
        "\"tax_code\":\"3040201000000000000\",\"amount\":\"-100.00\","
        "\"tax_rate\":\"0.06\",\"tax\":\"-6.00\",\"amount_with_tax\":\"-106.00\","
        "\"line_kind\":\"discount\"}],"
        "\"total_amount\":\"900.00\",\"total_tax\":\"54.00\",\"total_with_tax\":\"954.00\","
        "\"total_with_tax_words\":\"玖佰伍拾肆圆整\","
        "\"remark\":\"示例发票（演示数据）\",\"drawer\":\"张三\",\"warnings\":[],"
        "\"links\":{\"self\":\"/v1/invoices/@@@@@@@@@@@@@@@@@@@@\","
        "\"pdf\":\"/v1/invoices/@@@@@@@@@@@@@@@@@@@@/pdf\","
        "\"xml\":\"/v1/invoices/@@@@@@@@@@@@@@@@@@@@/xml\"}}";
    d->text = strdup(fmt);
    if (!d->text)
        die("out of memory");
    d->len = strlen(d->text);
    d->nnum = 0;
    for (char *p = d->text; (p = strstr(p, "@@@@@@@@@@@@@@@@@@@@")) != NULL; p += 20) {
        if (d->nnum == 4)
            die("template has too many numbers");
        d->num_off[d->nnum++] = (size_t)(p - d->text);
    }
    char *s = strstr(d->text, "$$$$");
    if (!s)
        die("template without serial");
    d->serial_off = (size_t)(s - d->text);
}

/* ---- one measurement ---- */

typedef struct stmts {
    sqlite3_stmt *begin, *commit, *set_next, *ins_inv, *ins_audit, *ins_render, *ins_notify;
} stmts;

#define CLIENT_ID "bench-0123456789abcdef"
static int64_t audit_id;

typedef struct result {
    int batch;
    int64_t rows, commits;
    double seconds, rows_per_s, commit_ms_avg, commit_ms_max;
} result;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    check_rc(db, rc, SQLITE_DONE, what);
    sqlite3_reset(st);
}

static result run_batch(sqlite3 *db, stmts *s, doc_tmpl *d, int batch, int64_t max_rows,
                        double max_s, int64_t *serial_seq, int64_t range_id, int64_t *next_seq)
{
    result r = {.batch = batch};
    char *doc = malloc(d->len + 1);
    if (!doc)
        die("out of memory");
    memcpy(doc, d->text, d->len + 1);
    double t0 = now_s(), deadline = t0 + max_s;
    double commit_total = 0;
    while (r.rows < max_rows && now_s() < deadline) {
        int n = batch;
        if (max_rows - r.rows < n)
            n = (int)(max_rows - r.rows);
        step_done(db, s->begin, "BEGIN");
        for (int i = 0; i < n; i++) {
            char serial[SERIAL_LEN + 1];
            snprintf(serial, sizeof serial, "cc-%021" PRId64, ++*serial_seq);
            int64_t seq = (*next_seq)++;
            char number[FP_NUMBER_LEN + 1];
            snprintf(number, sizeof number, "%s%015" PRIu64, NUMBER_PREFIX,
                     (uint64_t)seq % 1000000000000000u);
            unsigned char hash[32];
            for (int k = 0; k < 4; k++) {
                uint64_t v = rng();
                memcpy(hash + 8 * k, &v, 8);
            }
            for (int k = 0; k < d->nnum; k++)
                memcpy(doc + d->num_off[k], number, FP_NUMBER_LEN);
            memcpy(doc + d->serial_off, serial, SERIAL_LEN);

            /* bound as writer.c's issue_one and enqueue_jobs bind them */
            int64_t now = (int64_t)time(NULL);
            sqlite3_stmt *ins = s->ins_inv;
            sqlite3_bind_text(ins, 1, number, FP_NUMBER_LEN, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 2, 1);
            sqlite3_bind_text(ins, 3, serial, -1, SQLITE_TRANSIENT);
            sqlite3_bind_blob(ins, 4, hash, sizeof hash, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 5, "02", -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 6, "91350200MA2YJ1XR9G", -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 7, 95400);
            sqlite3_bind_int64(ins, 8, now);
            sqlite3_bind_text(ins, 9, doc, (int)d->len, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 10, "blue", -1, SQLITE_STATIC);
            sqlite3_bind_null(ins, 11);
            step_done(db, ins, "insert invoice");

            unsigned char h2[32];
            for (int k = 0; k < 4; k++) {
                uint64_t v = rng();
                memcpy(h2 + 8 * k, &v, 8);
            }
            sqlite3_stmt *au = s->ins_audit;
            sqlite3_bind_int64(au, 1, ++audit_id);
            sqlite3_bind_int64(au, 2, now);
            sqlite3_bind_text(au, 3, "client:" CLIENT_ID, -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 4, "invoice.issue", -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 5, number, FP_NUMBER_LEN, SQLITE_TRANSIENT);
            sqlite3_bind_text(au, 6, serial, -1, SQLITE_TRANSIENT); /* request id stand-in */
            sqlite3_bind_text(au, 7, "127.0.0.1", -1, SQLITE_STATIC);
            sqlite3_bind_text(au, 8, "created", -1, SQLITE_STATIC);
            sqlite3_bind_blob(au, 9, hash, sizeof hash, SQLITE_TRANSIENT);
            sqlite3_bind_blob(au, 10, h2, sizeof h2, SQLITE_TRANSIENT);
            sqlite3_bind_int64(au, 11, 1);
            sqlite3_bind_null(au, 12);
            step_done(db, au, "insert audit");

            int64_t ms = now * 1000;
            sqlite3_stmt *j = s->ins_render;
            sqlite3_bind_text(j, 1, number, FP_NUMBER_LEN, SQLITE_TRANSIENT);
            sqlite3_bind_int64(j, 2, 1);
            sqlite3_bind_text(j, 3, CLIENT_ID, -1, SQLITE_STATIC);
            sqlite3_bind_int64(j, 4, ms);
            sqlite3_bind_int64(j, 5, FP_JOB_BASE_COST + 2);
            step_done(db, j, "insert render job");
            int64_t render_id = sqlite3_last_insert_rowid(db);
            j = s->ins_notify;
            sqlite3_bind_text(j, 1, number, FP_NUMBER_LEN, SQLITE_TRANSIENT);
            sqlite3_bind_int64(j, 2, 1);
            sqlite3_bind_text(j, 3, CLIENT_ID, -1, SQLITE_STATIC);
            sqlite3_bind_int64(j, 4, render_id);
            sqlite3_bind_int64(j, 5, ms);
            step_done(db, j, "insert notify job");
        }
        sqlite3_bind_int64(s->set_next, 1, range_id);
        sqlite3_bind_int64(s->set_next, 2, *next_seq);
        step_done(db, s->set_next, "UPDATE number_ranges");
        double tc = now_s();
        step_done(db, s->commit, "COMMIT");
        double dc = now_s() - tc;
        commit_total += dc;
        if (dc > r.commit_ms_max / 1e3)
            r.commit_ms_max = dc * 1e3;
        r.rows += n;
        r.commits++;
    }
    r.seconds = now_s() - t0;
    r.rows_per_s = r.seconds > 0 ? (double)r.rows / r.seconds : 0;
    r.commit_ms_avg = r.commits ? commit_total * 1e3 / (double)r.commits : 0;
    free(doc);
    return r;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die("prepare \"%.60s\": %s", sql, sqlite3_errmsg(db));
    return st;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_commit_ceiling [--dir DIR | --db FILE] [--rows N] [--rows1 N]\n"
                    "         [--seconds S] [--batches 1,8,32,64,128,512] [--checkpoint-frames N]"
                    " [--keep]\n"
                    "  --dir DIR   make the temporary database in DIR (default $TMPDIR or /tmp);\n"
                    "              use a directory on the server's data-dir filesystem\n"
                    "  --db FILE   use exactly FILE (must not exist)\n"
                    "  --rows N    rows per batch size (default 60000); --rows1 for batch 1"
                    " (default 3000)\n"
                    "  --seconds S time limit per batch size (default 5)\n"
                    "  --checkpoint-frames N  PASSIVE checkpoint on a separate thread every N"
                    " WAL frames\n"
                    "              (default 4000 like the server; 0 = never)\n"
                    "  --job-rows N  outbox rows per invoice: 2 = render + notify (the client has"
                    " a webhook,\n"
                    "              the default), 1 = render only (no webhook)\n");
    exit(2);
}

static long parse_long(const char *s, const char *opt, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        die("%s: expected an integer in %ld..%ld, got \"%s\"", opt, lo, hi, s);
    return v;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *dbpath = NULL;
    long rows = 60000, rows1 = 3000, frames = 4000;
    double seconds = 5;
    int keep = 0;
    long job_rows = 2;
    int batches[MAX_BATCH_SIZES] = {1, 8, 32, 64, 128, 512};
    int nbatches = 6;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) {
            keep = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage();
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--dir"))
            dir = v;
        else if (!strcmp(a, "--db"))
            dbpath = v;
        else if (!strcmp(a, "--rows"))
            rows = parse_long(v, a, 1, 10000000);
        else if (!strcmp(a, "--rows1"))
            rows1 = parse_long(v, a, 1, 10000000);
        else if (!strcmp(a, "--seconds"))
            seconds = (double)parse_long(v, a, 1, 600);
        else if (!strcmp(a, "--job-rows"))
            job_rows = parse_long(v, a, 1, 2);
        else if (!strcmp(a, "--checkpoint-frames"))
            frames = parse_long(v, a, 0, 100000000);
        else if (!strcmp(a, "--batches")) {
            nbatches = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (nbatches == MAX_BATCH_SIZES)
                    die("too many batch sizes");
                batches[nbatches++] = (int)parse_long(t, a, 1, 100000);
            }
            free(copy);
            if (!nbatches)
                usage();
        } else
            usage();
    }

    char pathbuf[4096];
    if (!dbpath) {
        snprintf(pathbuf, sizeof pathbuf, "%s/fapiao-ceiling-%ld-XXXXXX", dir, (long)getpid());
        int fd = mkstemp(pathbuf);
        if (fd < 0)
            die("mkstemp in %s: %s", dir, strerror(errno));
        close(fd);
        unlink(pathbuf); /* SQLite creates it; we only wanted a unique name */
        dbpath = pathbuf;
    } else {
        struct stat st;
        if (stat(dbpath, &st) == 0)
            die("%s exists; give a new path", dbpath);
    }

    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    check_rc(db, rc, SQLITE_OK, "open");
    sqlite3_busy_timeout(db, 5000);
    exec_sql(db, "PRAGMA journal_mode=WAL");
    exec_sql(db, "PRAGMA synchronous=FULL");
    exec_sql(db, "PRAGMA wal_autocheckpoint=0");
    exec_sql(db, "PRAGMA foreign_keys=ON");

    int nmig = fp_store_migration_count();
    for (int v = 1; v <= nmig; v++) {
        exec_sql(db, "BEGIN");
        exec_sql(db, fp_store_migration_sql(v));
        char uv[64];
        snprintf(uv, sizeof uv, "PRAGMA user_version=%d", v);
        exec_sql(db, uv);
        exec_sql(db, "COMMIT");
    }
    exec_sql(db, "INSERT INTO sellers(id,name,tax_id) VALUES(1,'深圳市某某信息技术有限公司',"
                 "'91440300MA5G0XXXXX');"
                 "INSERT INTO number_ranges(id,seller_id,prefix,first,last,next,created_at)"
                 " VALUES(1,1,'" NUMBER_PREFIX "',1,999999999999999,1,0);");
    /* the issuing client: with a webhook the notify job is a row (2 job rows
     * per invoice), without one its INSERT ... SELECT finds none (1 row) */
    exec_sql(db, job_rows == 2
                     ? "INSERT INTO clients(client_id,seller_id,secret_salt,secret_hash,scope,"
                       "created_at) VALUES('" CLIENT_ID "',1,x'00',x'00','invoice:write',0);"
                       "UPDATE clients SET webhook_url='https://127.0.0.1:9/hook'"
                     : "INSERT INTO clients(client_id,seller_id,secret_salt,secret_hash,scope,"
                       "created_at) VALUES('" CLIENT_ID "',1,x'00',x'00','invoice:write',0)");

    stmts s = {
        .begin = prep(db, fp_sq_write_sql[WQ_BEGIN]),
        .commit = prep(db, fp_sq_write_sql[WQ_COMMIT]),
        .set_next = prep(db, fp_sq_write_sql[WQ_SET_NEXT]),
        .ins_inv = prep(db, fp_sq_write_sql[WQ_INS_INVOICE]),
        .ins_audit = prep(db, fp_sq_write_sql[WQ_INS_AUDIT]),
        .ins_render = prep(db, fp_sq_write_sql[WQ_INS_RENDER]),
        .ins_notify = prep(db, fp_sq_write_sql[WQ_INS_NOTIFY]),
    };

    ckpt c = {.path = dbpath, .frames_trigger = (int)frames};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    pthread_t ckpt_thread;
    if (pthread_create(&ckpt_thread, NULL, ckpt_main, &c) != 0)
        die("pthread_create failed");
    sqlite3_wal_hook(db, wal_hook, &c);

    doc_tmpl d;
    build_doc(&d);

    printf("# commit_ceiling: SQLite %s, db %s\n", sqlite3_libversion(), dbpath);
    printf("# WAL, synchronous=FULL, wal_autocheckpoint=0, PASSIVE checkpoint thread every %ld"
           " new WAL frames; doc %zu bytes\n# per row: INSERT invoices + INSERT audit + %ld job"
           " row(s); per commit: UPDATE number_ranges\n",
           frames, d.len, job_rows);
    printf("# limits: %ld rows (batch 1: %ld) or %.0f s per batch size\n", rows, rows1, seconds);
    printf("%-6s %9s %8s %8s %12s %14s %14s\n", "batch", "rows", "commits", "seconds", "rows_per_s",
           "commit_ms_avg", "commit_ms_max");

    double best = 0;
    int best_batch = 0;
    int64_t serial_seq = 0, next_seq = 1;
    for (int b = 0; b < nbatches; b++) {
        int64_t limit = batches[b] == 1 ? rows1 : rows;
        result r = run_batch(db, &s, &d, batches[b], limit, seconds, &serial_seq, 1, &next_seq);
        printf("%-6d %9" PRId64 " %8" PRId64 " %8.2f %12.0f %14.3f %14.3f\n", r.batch, r.rows,
               r.commits, r.seconds, r.rows_per_s, r.commit_ms_avg, r.commit_ms_max);
        fflush(stdout);
        if (r.rows_per_s > best) {
            best = r.rows_per_s;
            best_batch = r.batch;
        }
    }

    pthread_mutex_lock(&c.mu);
    c.stop = 1;
    pthread_cond_signal(&c.cv);
    pthread_mutex_unlock(&c.mu);
    pthread_join(ckpt_thread, NULL);

    /* sanity: every row landed */
    sqlite3_stmt *cnt = prep(db, "SELECT count(*) FROM invoices");
    check_rc(db, sqlite3_step(cnt), SQLITE_ROW, "count");
    int64_t total = sqlite3_column_int64(cnt, 0);
    sqlite3_finalize(cnt);
    if (total != serial_seq)
        die("row count %" PRId64 " != inserted %" PRId64, total, serial_seq);
    cnt = prep(db, "SELECT count(*) FROM jobs");
    check_rc(db, sqlite3_step(cnt), SQLITE_ROW, "count jobs");
    int64_t jobs = sqlite3_column_int64(cnt, 0);
    sqlite3_finalize(cnt);
    if (jobs != serial_seq * job_rows)
        die("job rows %" PRId64 " != %ld per invoice", jobs, job_rows);

    sqlite3_finalize(s.begin);
    sqlite3_finalize(s.commit);
    sqlite3_finalize(s.set_next);
    sqlite3_finalize(s.ins_inv);
    sqlite3_finalize(s.ins_audit);
    sqlite3_finalize(s.ins_render);
    sqlite3_finalize(s.ins_notify);
    sqlite3_close(db);
    printf("# checkpoints: %" PRIu64 " (%.2f s on the checkpoint thread), largest WAL %d frames\n",
           c.runs, c.busy_s, c.max_frames);
    if (!keep) {
        char side[4200];
        unlink(dbpath);
        snprintf(side, sizeof side, "%s-wal", dbpath);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", dbpath);
        unlink(side);
    }
    free(d.text);
    printf("ceiling_batch=%d\n", best_batch);
    printf("ceiling_rows_per_s=%.0f\n", best);
    return 0;
}
