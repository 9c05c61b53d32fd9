/* test_store_pg.c — the PostgreSQL backend (src/store/pg/) on a real
 * PostgreSQL 15 that tests/pg/pg-harness.sh starts for this run (the test
 * re-runs itself under the harness; exit 77, skipped, only when the
 * PostgreSQL binaries are absent):
 *   - the store contract suite (store_contract.h), each check on a fresh
 *     schema;
 *   - the store check finds a number a range would reuse and a wrong
 *     audit head;
 *   - the bounded render backlog's rows (notify early, the on-demand
 *     render claim, pruning);
 *   - versioned migrations: a schema newer than this build is refused;
 *   - two stores ("nodes") on one database issuing at once: every number
 *     of the range used exactly once, in one audit chain whose links hold;
 *     the same key sent to both yields one invoice. */
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store_contract.h"

static const char *base_url;
static fp_invoice inv;

/* Each test's database is a schema of the harness's one (CREATE DATABASE
 * costs seconds with fsync on, a schema milliseconds): the URL sets the
 * search path, so the store's tables land in it. */
static void url_for(const char *db, char *out, size_t cap)
{
    snprintf(out, cap, "%s?options=-csearch_path%%3D%s", base_url, db);
}

static int admin_exec(const char *sql)
{
    PGconn *c = PQconnectdb(base_url);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "test_store_pg: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok;
}

static int64_t db_int(const char *db, const char *sql)
{
    char url[512];
    url_for(db, url, sizeof url);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    int64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : -1;
    if (v < 0)
        fprintf(stderr, "test_store_pg: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* Opens a store with o on a new schema db (FP_EIO when it cannot be made). */
static int open_fresh(const char *db, fp_store_opts o, fp_store **s, fp_err *err)
{
    char sql[128], url[512];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", db);
    if (!admin_exec(sql))
        return fp_fail(err, FP_EIO, "cannot create schema %s", db);
    url_for(db, url, sizeof url);
    o.path = url;
    return fp_store_open(&o, s, err);
}

/* The audit key every store of this test signs with (a temporary
 * directory's): the PostgreSQL store signs checkpoints only with a key file
 * it is given, having no database directory to make one in (docs/ha.md),
 * and the contract's audit_chain check needs checkpoints. */
static char key_dir[] = "/tmp/fapiao-test-store-pg-XXXXXX";
static char key_path[64];

/* The contract suite names a database by a file path (DIR/LABEL-CHECK.db):
 * here each path is a schema of that name, created at its first open. */
static int open_by_name(const fp_store_opts *o, void **be, fp_err *err)
{
    const char *base = strrchr(o->path, '/');
    base = base ? base + 1 : o->path;
    char db[64];
    size_t n = 0;
    for (const char *p = base; *p && *p != '.' && n < sizeof db - 1; p++)
        db[n++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
    db[n] = 0;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_namespace WHERE nspname='%s'", db);
    int64_t have = db_int("public", sql);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", db);
    if (have != 1 && !admin_exec(sql))
        return fp_fail(err, FP_EIO, "cannot create schema %s", db);
    char url[512];
    url_for(db, url, sizeof url);
    fp_store_opts po = *o;
    po.path = url;
    if (!po.audit_key_path && key_path[0])
        po.audit_key_path = key_path;
    if (!po.key_dir && key_path[0])
        po.key_dir = key_dir; /* webhook.key: no database directory either */
    return fp_store_pg_ops.open(&po, be, err);
}

static void test_contract(void)
{
    fp_store_ops ops = fp_store_pg_ops;
    ops.open = open_by_name;
    int failed[SC_NCHECKS];
    /* collect: each check's outcome is listed below, then asserted */
    sc_run(&ops, "postgresql", &inv, "/pg", 1, failed); /* not pg_: reserved */
    for (int i = 0; i < SC_NCHECKS; i++) {
        fprintf(stderr, "test_store_pg: contract %-12s %s\n", sc_checks[i].name,
                failed[i] ? "FAILED" : "passed");
        check_ctx("contract %s on PostgreSQL", sc_checks[i].name);
        CHECK_EQ_INT(failed[i], 0);
    }
    check_ctx("%s", "");
}

/* The store check finds what it is for: an invoice number a range would
 * hand out again, and an audit head that does not name the last record
 * (each broken behind the store's back, then put right). */
static void test_check_finds(void)
{
    fp_store_ops ops = fp_store_pg_ops;
    ops.open = open_by_name;
    sc_env e;
    check_ctx("store check on PostgreSQL");
    if (sc_begin(&e, &ops, &inv, "/pg", "postgresql", "checkfinds", 1, 100) &&
        CHECK(sc_issue(&e, "finds-1", 0x61) >= 0)) {
        static const struct {
            const char *breaks, *mends, *problem;
        } cases[] = {
            {"UPDATE postgresql_checkfinds.number_ranges SET next = first",
             "UPDATE postgresql_checkfinds.number_ranges SET next = first + 1", "range's next"},
            {"UPDATE postgresql_checkfinds.audit_head SET last_id = last_id + 5",
             "UPDATE postgresql_checkfinds.audit_head SET last_id = last_id - 5", "audit head"},
        };
        fp_store_check_report rep;
        for (size_t i = 0; i < NCASES(cases); i++) {
            check_ctx("store check on PostgreSQL finds: %s", cases[i].breaks);
            CHECK_EQ_INT(fp_store_check_now(e.s, 0, &rep), 0);
            if (!CHECK(admin_exec(cases[i].breaks)))
                continue;
            CHECK_EQ_INT(fp_store_check_now(e.s, 0, &rep), FP_EIO);
            CHECK(!rep.ok);
            CHECK_MSG(strstr(rep.problems, cases[i].problem) != NULL, "problems: %s", rep.problems);
            CHECK(admin_exec(cases[i].mends));
            CHECK_EQ_INT(fp_store_check_now(e.s, 1, &rep), 0);
        }
    }
    sc_end(&e);
    check_ctx("%s", "");
}

static int open_url(const char *db, fp_store **s, fp_err *err)
{
    char url[512];
    url_for(db, url, sizeof url);
    fp_store_opts o = {.path = url,
                       .read_conns = 2,
                       .audit_key_path = key_path[0] ? key_path : NULL,
                       .audit_checkpoint_every = 100};
    return fp_store_open(&o, s, err);
}

/* The checkpoints two nodes signed: ids 1..n, each over the record it names
 * (its hash), signed with the shared key, the last one over the tail. */
static void check_checkpoints(const char *db, int64_t records)
{
    char url[512];
    url_for(db, url, sizeof url);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "SELECT cp.id, cp.upto_id, cp.upto_hash, cp.ts, cp.signature, a.hash "
                            "FROM audit_checkpoints cp LEFT JOIN audit a ON a.id = cp.upto_id "
                            "ORDER BY cp.id");
    unsigned char pk[FP_AUDIT_KEY_LEN], sk[FP_AUDIT_KEY_LEN];
    char pub[80];
    snprintf(pub, sizeof pub, "%s/audit.pub", key_dir);
    fp_err err = {0};
    CHECK(fp_audit_key_open(key_path, pub, 0, sk, pk, &err) == 0);
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
    CHECK_MSG(n >= 1, "no checkpoint for %lld records", (long long)records);
    int bad = 0;
    int64_t last_upto = 0;
    for (int i = 0; i < n; i++) {
        fp_audit_cp cp = {.id = strtoll(PQgetvalue(r, i, 0), NULL, 10),
                          .upto_id = strtoll(PQgetvalue(r, i, 1), NULL, 10),
                          .ts = strtoll(PQgetvalue(r, i, 3), NULL, 10)};
        size_t hl = 0, sl = 0, al = 0;
        unsigned char *h = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 2), &hl);
        unsigned char *sig = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 4), &sl);
        unsigned char *ah = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 5), &al);
        if (hl == FP_AUDIT_HASH_LEN && sl == FP_AUDIT_SIG_LEN) {
            memcpy(cp.upto_hash, h, hl);
            memcpy(cp.sig, sig, sl);
        }
        bad += cp.id != i + 1 || hl != FP_AUDIT_HASH_LEN || al != hl || memcmp(h, ah, hl) != 0 ||
               !fp_audit_cp_valid(&cp, pk);
        last_upto = cp.upto_id;
        PQfreemem(h);
        PQfreemem(sig);
        PQfreemem(ah);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_MSG(last_upto == records, "the last checkpoint covers %lld of %lld records",
              (long long)last_upto, (long long)records);
    PQclear(r);
    PQfinish(c);
}

/* A node refuses a schema newer than it knows, and says so in zh + en. */
static void test_schema_newer(void)
{
    check_ctx("schema newer than the build");
    CHECK(admin_exec("CREATE SCHEMA schema_newer"));
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(open_url("schema_newer", &s, &err) == 0, "open: %s", err.msg))
        return;
    fp_store_close(s);
    /* this build's schema version (open.c pg_migrations) */
    CHECK_EQ_INT((int)db_int("schema_newer", "SELECT max(version) FROM schema_version"), 8);
    /* a later release migrated it */
    CHECK(db_int("schema_newer", "WITH u AS (UPDATE schema_version SET version = version + 1 "
                                 "RETURNING 1) SELECT count(*) FROM u") == 1);
    s = NULL;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(open_url("schema_newer", &s, &err), FP_EINVAL);
    CHECK(s == NULL);
    CHECK_MSG(strstr(err.msg, "newer than this fapiao") && strstr(err.msg, "请升级"), "message: %s",
              err.msg);
    check_ctx("%s", "");
}

/* A read-only open (the CLI's readers) of a fresh, empty database says
 * what to run first, in zh + en, and creates nothing. */
static void test_read_only_fresh(void)
{
    check_ctx("read-only open of a fresh database");
    fp_store *s = NULL;
    fp_err err = {0};
    CHECK_EQ_INT(open_fresh("ro_fresh", (fp_store_opts){.read_conns = 1, .read_only = 1}, &s, &err),
                 FP_EINVAL);
    CHECK(s == NULL);
    CHECK_MSG(strstr(err.msg, "no fapiao schema yet") &&
                  strstr(err.msg, "fapiao init --database") && strstr(err.msg, "请先运行"),
              "message: %s", err.msg);
    CHECK_EQ_INT((int)db_int("public", "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                       "'ro_fresh'"),
                 0);
    check_ctx("%s", "");
}

/* ---- two nodes on one database ---- */

#define TN_REQS 400
#define TN_ALL  (TN_REQS + 2) /* and two keys sent twice */

typedef struct tn_env {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answered;
} tn_env;

static void tn_done(fp_issue_req *r, void *arg)
{
    tn_env *e = arg;
    (void)r;
    pthread_mutex_lock(&e->mu);
    e->answered++;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static fp_issue_req *tn_req(int64_t seller, const char *serial, unsigned char hash_byte, tn_env *e)
{
    fp_issue_req *r = calloc(1, sizeof *r);
    if (!r || fp_invoice_render(&inv, &sc_seller, serial, SC_ISSUED_AT, &r->doc) < 0) {
        free(r);
        return NULL;
    }
    r->seller_id = seller;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    memset(r->request_hash, hash_byte, sizeof r->request_hash);
    memcpy(r->invoice_type, inv.invoice_type, sizeof r->invoice_type);
    r->total_with_tax = inv.total_with_tax;
    r->issued_at = SC_ISSUED_T;
    snprintf(r->actor, sizeof r->actor, "two-nodes");
    r->done = tn_done;
    r->arg = e;
    return r;
}

static int tn_wait(tn_env *e, int want)
{
    int64_t deadline = fp_mono_ns() + (int64_t)30000 * 1000000;
    pthread_mutex_lock(&e->mu);
    while (e->answered < want && fp_mono_ns() < deadline)
        fp_cond_wait_until(&e->cv, &e->mu, deadline);
    int ok = e->answered >= want;
    pthread_mutex_unlock(&e->mu);
    return ok;
}

/* ---- the outbox across two nodes ---- */

typedef struct jn_worker {
    fp_store *s;
    pthread_t t;
    int claimed, completed, claim_errors;
} jn_worker;

static pthread_mutex_t jn_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char jn_seen[TN_REQS + 16]; /* by job id: claims of it */

static void *jn_main(void *arg)
{
    jn_worker *w = arg;
    for (int i = 0; i < 2 * TN_REQS; i++) { /* bounded: there are TN_REQS jobs */
        fp_job j;
        int64_t next = 0;
        fp_err err = {0};
        /* owner 1 on both nodes: the backend must still tell them apart */
        int rc = fp_jobs_claim(w->s, fp_steady_ms(), 1, 60000, &j, &next, &err);
        if (rc == FP_ENOTFOUND)
            break;
        if (rc != 0) {
            w->claim_errors++;
            fprintf(stderr, "test_store_pg: claim: %s\n", err.msg);
            continue;
        }
        w->claimed++;
        pthread_mutex_lock(&jn_mu);
        if (j.id > 0 && j.id < (int64_t)sizeof jn_seen)
            jn_seen[j.id]++;
        pthread_mutex_unlock(&jn_mu);
        w->completed += fp_jobs_complete(w->s, &j, fp_steady_ms(), &err) == 0;
    }
    return NULL;
}

/* Jobs claimed by two nodes at once: each exactly once (FOR UPDATE SKIP
 * LOCKED); a lease that ran out is taken over by the other node, and the
 * first node can then no longer complete it, although both number their
 * claims the same way (lease owner 1). */
static void test_jobs_two_nodes(fp_store *a, fp_store *b)
{
    check_ctx("jobs on two nodes");
    fp_job ja, jb;
    int64_t next = 0, now = fp_steady_ms();
    fp_err err = {0};
    CHECK_EQ_INT(fp_jobs_claim(a, now, 1, 1000, &ja, &next, &err), 0);
    /* later (a logical time, no sleep): the lease of node a ran out */
    CHECK_EQ_INT(fp_jobs_claim(b, now + 5000, 1, 60000, &jb, &next, &err), 0);
    CHECK_MSG(jb.id == ja.id, "node b claimed job %lld, not the expired %lld", (long long)jb.id,
              (long long)ja.id);
    CHECK_EQ_INT(fp_jobs_complete(a, &ja, now + 5001, &err), FP_ECONFLICT);
    CHECK_EQ_INT(fp_jobs_complete(b, &jb, now + 5002, &err), 0);
    jn_worker w[2] = {{.s = a}, {.s = b}};
    for (int i = 0; i < 2; i++)
        pthread_create(&w[i].t, NULL, jn_main, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i].t, NULL);
    int twice = 0;
    for (size_t i = 0; i < sizeof jn_seen; i++)
        twice += jn_seen[i] > 1;
    CHECK_EQ_INT(w[0].claimed + w[1].claimed, TN_ALL - 1);
    CHECK_EQ_INT(w[0].completed + w[1].completed, TN_ALL - 1);
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(w[0].claim_errors + w[1].claim_errors, 0);
    fprintf(stderr, "test_store_pg: jobs claimed by node a %d, node b %d\n", w[0].claimed,
            w[1].claimed);
    CHECK_EQ_INT((int)db_int("two_nodes", "SELECT count(*) FROM jobs WHERE state <> 'done'"), 0);
    CHECK_EQ_INT(
        (int)db_int("two_nodes", "SELECT count(*) FROM invoices WHERE status <> 'rendered'"), 0);
    fp_jobs_counts c;
    CHECK(fp_jobs_count(a, &c, &err) == 0 && c.n[FP_JOB_RENDER][FP_JS_PENDING] == 0);
    check_ctx("two nodes on one database");
}

static void test_two_nodes(void)
{
    check_ctx("two nodes on one database");
    CHECK(admin_exec("CREATE SCHEMA two_nodes"));
    fp_store *a = NULL, *b = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(open_url("two_nodes", &a, &err) == 0 && open_url("two_nodes", &b, &err) == 0,
                   "open: %s", err.msg)) {
        fp_store_close(a);
        return;
    }
    int64_t seller = 0;
    CHECK(fp_store_add_seller(a, &sc_seller, &seller, &err) == 0);
    CHECK(fp_store_add_range(b, seller, SC_PREFIX, 1, TN_ALL, NULL, &err) == 0);
    tn_env e = {.answered = 0};
    pthread_mutex_init(&e.mu, NULL);
    fp_cond_init_mono(&e.cv);
    static fp_issue_req *reqs[TN_REQS + 4];
    int n = 0;
    int64_t t0 = fp_mono_ns();
    for (int i = 0; i < TN_REQS; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "tn-%d", i);
        if (!(reqs[n] = tn_req(seller, serial, (unsigned char)i, &e)))
            break;
        fp_store_submit(i % 2 ? b : a, reqs[n++]);
    }
    /* one key to both nodes at once, and one twice to node a (most
     * likely in one batch): one invoice each */
    int same = n;
    reqs[n] = tn_req(seller, "tn-same", 0x77, &e);
    reqs[n + 1] = tn_req(seller, "tn-same", 0x77, &e);
    reqs[n + 2] = tn_req(seller, "tn-dup", 0x78, &e);
    reqs[n + 3] = tn_req(seller, "tn-dup", 0x78, &e);
    if (reqs[n] && reqs[n + 1] && reqs[n + 2] && reqs[n + 3]) {
        fp_store_submit(a, reqs[n]);
        fp_store_submit(b, reqs[n + 1]);
        fp_store_submit(a, reqs[n + 2]);
        fp_store_submit(a, reqs[n + 3]);
        n += 4;
    }
    CHECK(tn_wait(&e, n));
    int64_t us = (fp_mono_ns() - t0) / 1000;
    int created = 0, other = 0;
    const char *why = "";
    for (int i = 0; i < same; i++) {
        created += reqs[i]->result == FP_ISSUE_CREATED;
        if (reqs[i]->result == FP_ISSUE_FAILED)
            why = reqs[i]->error;
    }
    for (int i = same; i < n; i++)
        other += reqs[i]->result == FP_ISSUE_CREATED     ? 100
                 : reqs[i]->result == FP_ISSUE_REPLAY    ? 1
                 : reqs[i]->result == FP_ISSUE_EXHAUSTED ? 1000
                                                         : 10000;
    /* the range holds TN_ALL numbers: each new key got one */
    CHECK_MSG(created == TN_REQS, "%d of %d created; a failure: %s", created, TN_REQS, why);
    CHECK_MSG(other == 202, "the keys sent twice: %d (want two CREATED, two REPLAY)", other);
    fprintf(stderr,
            "test_store_pg: two nodes issued %d invoices in %lld ms (group commit, one "
            "PostgreSQL, fsync on; not a benchmark)\n",
            created + 2, (long long)(us / 1000));
    /* every number of the range exactly once, no gap */
    CHECK_EQ_INT((int)db_int("two_nodes", "SELECT count(DISTINCT number) FROM invoices"), TN_ALL);
    CHECK_EQ_INT((int)db_int("two_nodes",
                             "SELECT max(substr(number, 6)::bigint) - min(substr(number, 6)::"
                             "bigint) + 1 FROM invoices"),
                 TN_ALL);
    CHECK_EQ_INT((int)db_int("two_nodes", "SELECT count(*) FROM invoices WHERE serial='tn-same'"),
                 1);
    /* one audit chain: ids 1..N, each linked to its predecessor's hash */
    CHECK_EQ_INT((int)db_int("two_nodes", "SELECT count(*) FROM audit"), TN_ALL);
    CHECK_EQ_INT((int)db_int("two_nodes", "SELECT max(id) FROM audit"), TN_ALL);
    CHECK_EQ_INT((int)db_int("two_nodes",
                             "SELECT count(*) FROM audit a JOIN audit p ON p.id = a.id - 1 "
                             "WHERE a.prev_hash <> p.hash"),
                 0);
    CHECK_EQ_INT((int)db_int("two_nodes", "SELECT count(*) FROM jobs WHERE kind='render'"), TN_ALL);
    fp_audit_head h;
    CHECK(fp_store_audit_head(b, &h, &err) == 0 && h.last_id == TN_ALL);
    test_jobs_two_nodes(a, b);
    fp_store_close(a);
    fp_store_close(b); /* signs the tail */
    check_checkpoints("two_nodes", TN_ALL);
    for (int i = 0; i < n; i++)
        fp_issue_req_release(reqs[i]);
    pthread_mutex_destroy(&e.mu);
    pthread_cond_destroy(&e.cv);
    check_ctx("%s", "");
}

/* The request deadline (store.h write_deadline_ms) on PostgreSQL: a
 * request whose batch is still being written at its deadline is answered
 * UNKNOWN (and is committed after all: a retry replays it), one still
 * queued behind that batch is answered TIMEOUT and never stored.  The
 * injected delay before COMMIT is ten times the deadline. */
static void test_deadline(void)
{
    check_ctx("request deadline");
    fp_store *st = NULL;
    fp_err err = {0};
    fp_store_opts o = {.read_conns = 2, .write_deadline_ms = 200};
    if (!CHECK_MSG(open_fresh("deadline", o, &st, &err) == 0, "open: %s", err.msg))
        return;
    int64_t seller = 0;
    CHECK(fp_store_add_seller(st, &sc_seller, &seller, &err) == 0);
    CHECK(fp_store_add_range(st, seller, SC_PREFIX, 1, 10, NULL, &err) == 0);
    fp_store_faults f = {.write_delay_ms = 2000};
    fp_store_set_faults(st, &f);
    tn_env e = {.answered = 0};
    pthread_mutex_init(&e.mu, NULL);
    fp_cond_init_mono(&e.cv);
    fp_issue_req *r1 = tn_req(seller, "dl-1", 1, &e), *r2 = tn_req(seller, "dl-2", 2, &e);
    if (!CHECK(r1 && r2)) {
        fp_store_close(st);
        return;
    }
    fp_store_submit(st, r1);
    CHECK(tn_wait(&e, 1));
    CHECK_EQ_INT(atomic_load(&r1->early), FP_ISSUE_UNKNOWN);
    fp_store_submit(st, r2); /* behind the batch still sleeping before its COMMIT */
    CHECK(tn_wait(&e, 2));
    CHECK_EQ_INT(r2->result, FP_ISSUE_TIMEOUT);
    f.write_delay_ms = 0;
    fp_store_set_faults(st, &f);
    fp_store_close(st); /* the writer finishes r1's batch first */
    CHECK_EQ_INT((int)db_int("deadline", "SELECT count(*) FROM invoices WHERE serial='dl-1'"), 1);
    CHECK_EQ_INT((int)db_int("deadline", "SELECT count(*) FROM invoices WHERE serial='dl-2'"), 0);
    fp_issue_req_release(r1);
    fp_issue_req_release(r2);
    pthread_mutex_destroy(&e.mu);
    pthread_cond_destroy(&e.cv);
    check_ctx("%s", "");
}

/* The bounded render backlog's rows on PostgreSQL (as test_store.c's
 * test_outbox_backlog on SQLite; jobs.h, docs/outbox.md): with
 * notify_early a new invoice's notify job is pending at once
 * (invoice.issued); the on-demand claim takes one invoice's render whether
 * due or not, once, and only the seller's own; after the issued event was
 * delivered the render's completion makes the invoice delivered without a
 * second event; pruning deletes done jobs finished before the cut, in
 * batches, notify before render, and never a job that is not done. */
static void bl_status(fp_store *s, int64_t sid, const char *number, const char *want)
{
    fp_invoice_state st;
    if (CHECK_EQ_INT(fp_store_invoice_state(s, sid, number, &st), 0))
        CHECK_EQ_STR(st.status, want);
}

static void test_backlog(void)
{
    fp_store_ops ops = fp_store_pg_ops;
    ops.open = open_by_name;
    sc_env e;
    check_ctx("backlog on PostgreSQL");
    if (!sc_begin(&e, &ops, &inv, "/pg", "pgbl", "backlog", 1, 100))
        goto out;
    fp_err err = {0};
    fp_store *s = e.s;
    /* the requests' actor ("contract") is the issuing client */
    fp_client_rec c = {.client_id = "contract", .seller_id = e.seller, .scope = "invoices:write"};
    CHECK_MSG(fp_store_add_client(s, &c, &err) == 0, "add_client: %s", err.msg);
    CHECK_EQ_INT(fp_store_webhook_set(s, "contract", "http://127.0.0.1:9/hook",
                                      "whsec_0123456789abcdef", NULL, &err),
                 0);
    int i1 = sc_issue(&e, "bl-1", 1);
    fp_store_set_notify_early(s, 1);
    int i2 = sc_issue(&e, "bl-2", 2);
    fp_store_set_notify_early(s, 0);
    if (!CHECK(i1 >= 0 && i2 >= 0) || !CHECK_EQ_INT(e.result[i1], FP_ISSUE_CREATED) ||
        !CHECK_EQ_INT(e.result[i2], FP_ISSUE_CREATED))
        goto out;
    const char *n1 = e.number[i1], *n2 = e.number[i2];
    fp_jobs_counts cnt;
    if (CHECK_EQ_INT(fp_jobs_count(s, &cnt, &err), 0)) {
        CHECK_EQ_INT(cnt.n[FP_JOB_RENDER][FP_JS_PENDING], 2);
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_BLOCKED], 1); /* n1's */
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_PENDING], 1); /* n2's, at once */
        CHECK(cnt.oldest_render_at > 0);
    }
    /* the on-demand claim: n2's render, once */
    int64_t now = fp_steady_ms(), due = 0;
    fp_job rj, nj, other;
    if (!CHECK_EQ_INT(fp_jobs_claim_render(s, e.seller, n2, now, 7, 60000, &rj, &err), 0))
        goto out;
    CHECK_EQ_STR(rj.invoice_number, n2);
    CHECK_EQ_INT(rj.kind, FP_JOB_RENDER);
    CHECK_EQ_INT(rj.state, FP_JS_RUNNING);
    CHECK_EQ_INT(fp_jobs_claim_render(s, e.seller, n2, now, 8, 60000, &other, &err), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_jobs_claim_render(s, e.seller + 1, n1, now, 8, 60000, &other, &err),
                 FP_ENOTFOUND); /* another seller's invoice */
    /* the issued event is delivered before the render ends */
    int found = 0;
    for (int i = 0; i < 3 && !found; i++) {
        if (fp_jobs_claim(s, now, 20 + i, 60000, &nj, &due, &err) != 0)
            break;
        if (nj.kind == FP_JOB_NOTIFY) {
            found = 1;
            CHECK_EQ_STR(nj.event, "invoice.issued");
            CHECK_EQ_STR(nj.invoice_number, n2);
            CHECK_EQ_INT(fp_jobs_complete(s, &nj, now, &err), 0);
        } else { /* n1's render (not on demand): pending again, later */
            CHECK_EQ_INT(fp_jobs_defer(s, &nj, now + 3600000, "later", &err), 0);
        }
    }
    CHECK_MSG(found, "the invoice.issued notify job was not claimable");
    bl_status(s, e.seller, n2, "accepted");
    CHECK_EQ_INT(fp_jobs_complete(s, &rj, now, &err), 0);
    bl_status(s, e.seller, n2, "delivered"); /* its event went out already */
    /* no invoice.rendered event queued for it */
    CHECK_EQ_INT(fp_jobs_claim(s, now, 30, 60000, &other, &due, &err), FP_ENOTFOUND);
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
    if (CHECK_EQ_INT(fp_store_invoice_state(s, e.seller, n2, &st), 0)) {
        CHECK_EQ_STR(st.status, "delivered"); /* the invoice keeps its state */
        CHECK_EQ_INT(st.render_state, -1);    /* no render job any more */
    }
    if (CHECK_EQ_INT(fp_jobs_count(s, &cnt, &err), 0)) {
        CHECK_EQ_INT(cnt.n[FP_JOB_RENDER][FP_JS_PENDING], 1);
        CHECK_EQ_INT(cnt.n[FP_JOB_NOTIFY][FP_JS_BLOCKED], 1);
    }
out:
    sc_end(&e);
    check_ctx("%s", "");
}

int main(int argc, char **argv)
{
    (void)argc;
    base_url = getenv("FAPIAO_PG_URL");
    if (!base_url) { /* start a PostgreSQL of our own for this run */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            return 1;
        self[n] = 0;
        execl(FP_SOURCE_DIR "/tests/pg/pg-harness.sh", "pg-harness.sh", "run", "--", self,
              (char *)NULL);
        perror("test_store_pg: exec tests/pg/pg-harness.sh");
        return 1;
    }
    (void)argv;
    char *example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    static fp_errors es;
    if (!example || fp_invoice_parse(example, strlen(example), NULL, &inv, &es) != 0) {
        fprintf(stderr, "test_store_pg: examples/invoice.json\n");
        return 1;
    }
    if (mkdtemp(key_dir))
        snprintf(key_path, sizeof key_path, "%s/audit.key", key_dir);
    test_contract();
    test_check_finds();
    test_backlog();
    test_schema_newer();
    test_read_only_fresh();
    test_two_nodes();
    test_deadline();
    fp_invoice_clear(&inv);
    free(example);
    if (key_path[0]) {
        char pub[80];
        snprintf(pub, sizeof pub, "%s/audit.pub", key_dir);
        unlink(key_path);
        unlink(pub);
        snprintf(pub, sizeof pub, "%s/webhook.key", key_dir);
        unlink(pub);
        rmdir(key_dir);
    }
    return check_summary();
}
