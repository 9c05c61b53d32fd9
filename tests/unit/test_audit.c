/* test_audit.c — the tamper-evident audit log (audit.h, store.h) against
 * real SQLite databases.
 *
 * One base log is written through the store's append API: 35 records with a
 * checkpoint every 10 (records 10, 20, 30) and the one fp_store_close signs
 * (35).  Every tamper case works on its own copy (VACUUM INTO keeps the
 * ids), changes it the way an attacker with write access to the database
 * would (SQL, or C for byte flips and re-hashing), and checks that
 * verification reports the expected kind and names the FIRST bad record or
 * checkpoint.  The untouched copy must verify.  Bundles are exported and
 * checked the same way.  Then: rollbacks (an injected write fault on a
 * batch of records and on an issue batch) leave no rolled-back record in
 * the chain and the next append links to the last committed one; two store
 * instances on one database (a CLI command next to the server) keep one
 * chain; pruning keeps a verifiable rest; a database from before the chain
 * is chained at open; key files.
 *
 * Everything lives in one mkdtemp directory under /tmp, removed at the end. */
#include "check.h"

#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/crypto.h"
#include "fapiao/invoice.h"
#include "fapiao/jobs.h"
#include "fapiao/store.h"

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define BASE_RECORDS 35
#define BASE_EVERY   10
/* SHA-256 of the encoding of the record in test_format, computed by an
 * independent implementation of docs/audit.md (a few lines of Python:
 * b"FPAUDRv1" + id and ts as big-endian int64 + each field as a big-endian
 * uint32 length (0xFFFFFFFF for NULL) and its bytes + prev_hash) */
#define KNOWN_HASH "5b9d245ec6a5bed3e0ae71cb51ccab48d5ebcf1399a09b9eb6947d410cf78068"
/* the same record with seller 3 and client request id "erp-77": version 2
 * (b"FPAUDRv2", the two fields appended after outcome, seller as "3") */
#define KNOWN_HASH_V2 "875502d56592ea35df806724632d8e9e5dc3165f97f47e0e56c1e0b7e1e86346"

static char tmpdir[] = "/tmp/fapiao-test-audit-XXXXXX";

static void fatal(const char *what)
{
    fprintf(stderr, "test_audit: fatal: %s (files left in %s)\n", what, tmpdir);
    check_record(0, __FILE__, __LINE__, "fatal: %s", what);
    check_summary();
    fflush(NULL);
    _exit(1);
}

/* tmpdir/name/ (created) and its fapiao.db, audit.pub and audit.key. */
typedef struct paths {
    char dir[512], db[600], pub[600], key[600];
} paths;

static void mkpaths(paths *p, const char *name)
{
    snprintf(p->dir, sizeof p->dir, "%s/%s", tmpdir, name);
    if (mkdir(p->dir, 0700) != 0)
        fatal("mkdir");
    snprintf(p->db, sizeof p->db, "%s/fapiao.db", p->dir);
    snprintf(p->pub, sizeof p->pub, "%s/audit.pub", p->dir);
    snprintf(p->key, sizeof p->key, "%s/audit.key", p->dir);
}

static fp_store *open_store(const char *db, int every)
{
    fp_store_opts o = {.path = db, .audit_checkpoint_every = every, .audit_checkpoint_secs = -1};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "fp_store_open(%s): %s", db, err.msg))
        fatal("cannot open the store");
    return s;
}

/* n records in one transaction, numbered from `from`; every 7th has a NULL
 * target, so NULL columns are part of the chain too. */
static int append_n(fp_store *s, int from, int n, int64_t ts)
{
    fp_audit_rec *recs = calloc((size_t)n, sizeof *recs);
    char(*txt)[4][32] = calloc((size_t)n, sizeof *txt);
    if (!recs || !txt)
        fatal("out of memory");
    for (int i = 0; i < n; i++) {
        int k = from + i;
        snprintf(txt[i][0], 32, "actor-%d", k);
        snprintf(txt[i][1], 32, "target-%d", k);
        snprintf(txt[i][2], 32, "req-%d", k);
        snprintf(txt[i][3], 32, "10.0.%d.%d", k / 250, k % 250);
        recs[i] = (fp_audit_rec){.ts = ts ? ts + k : 0,
                                 .actor = txt[i][0],
                                 .action = "test.append",
                                 .target = k % 7 ? txt[i][1] : NULL,
                                 .request_id = txt[i][2],
                                 .client_ip = txt[i][3],
                                 .outcome = "ok"};
    }
    fp_err err = {0};
    int rc = fp_store_audit_batch(s, recs, n, &err);
    free(recs);
    free(txt);
    return rc;
}

static sqlite3 *side_conn(const char *db)
{
    sqlite3 *c = NULL;
    if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        fatal("cannot open a side connection");
    sqlite3_busy_timeout(c, 5000);
    return c;
}

static int side_exec(const char *db, const char *sql)
{
    sqlite3 *c = side_conn(db);
    char *msg = NULL;
    int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "side connection: %s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(c);
    return rc;
}

static int64_t db_int(const char *db, const char *sql)
{
    sqlite3 *c = side_conn(db);
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

/* A blob column of one row, or 0 bytes. */
static int db_blob(const char *db, const char *table, const char *col, int64_t id,
                   unsigned char *out, int cap)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE id=%lld", col, table, (long long)id);
    sqlite3 *c = side_conn(db);
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_bytes(st, 0);
        if (n > cap)
            n = cap;
        memcpy(out, sqlite3_column_blob(st, 0), (size_t)n);
    }
    sqlite3_finalize(st);
    sqlite3_close(c);
    return n;
}

static void set_blob(const char *db, const char *table, const char *col, int64_t id,
                     const unsigned char *v, int n)
{
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE %s SET %s=?1 WHERE id=%lld", table, col, (long long)id);
    sqlite3 *c = side_conn(db);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK)
        fatal("prepare set_blob");
    sqlite3_bind_blob(st, 1, v, n, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        fatal("set_blob");
    sqlite3_finalize(st);
    sqlite3_close(c);
}

/* Flips one bit of one byte of a blob column: a one-byte change. */
static void flip(const char *db, const char *table, const char *col, int64_t id, int byte)
{
    unsigned char b[64];
    int n = db_blob(db, table, col, id, b, sizeof b);
    if (n <= byte)
        fatal("flip: blob too short");
    b[byte] ^= 0x01;
    set_blob(db, table, col, id, b, n);
}

/* Recomputes the hash of records from..to over their stored contents
 * (linking each to the re-computed previous one when `chain`): what an
 * attacker who knows the format but not the key does after a change. */
static void rehash(const char *db, int64_t from, int64_t to, int chain)
{
    sqlite3 *c = side_conn(db);
    sqlite3_stmt *sel = NULL, *upd = NULL;
    if (sqlite3_prepare_v2(c,
                           "SELECT id, ts, actor, action, target, request_id, client_ip, outcome, "
                           "seller_id, client_request_id, prev_hash FROM audit WHERE id=?1",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c, "UPDATE audit SET prev_hash=?2, hash=?3 WHERE id=?1", -1, &upd,
                           NULL) != SQLITE_OK)
        fatal("prepare rehash");
    unsigned char prev[32], h[32];
    for (int64_t id = from; id <= to; id++) {
        sqlite3_bind_int64(sel, 1, id);
        if (sqlite3_step(sel) != SQLITE_ROW)
            fatal("rehash: no row");
        fp_audit_row r = {.id = id, .ts = sqlite3_column_int64(sel, 1)};
        for (int i = 0; i < FP_AUDIT__FIELDS; i++)
            if (sqlite3_column_type(sel, 2 + i) != SQLITE_NULL) {
                r.f[i].p = (const char *)sqlite3_column_text(sel, 2 + i);
                r.f[i].n = (size_t)sqlite3_column_bytes(sel, 2 + i);
            }
        if (id == from || !chain)
            memcpy(prev, sqlite3_column_blob(sel, 2 + FP_AUDIT__FIELDS), 32);
        fp_audit_hash(&r, prev, h);
        sqlite3_reset(sel);
        sqlite3_bind_int64(upd, 1, id);
        sqlite3_bind_blob(upd, 2, prev, 32, SQLITE_TRANSIENT);
        sqlite3_bind_blob(upd, 3, h, 32, SQLITE_TRANSIENT);
        if (sqlite3_step(upd) != SQLITE_DONE)
            fatal("rehash update");
        sqlite3_reset(upd);
        memcpy(prev, h, 32);
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sqlite3_close(c);
}

static void load_key(const char *key_path, unsigned char sk[32], unsigned char pk[32])
{
    char *t = check_read_file(key_path, NULL);
    unsigned char both[64];
    if (!t || fp_audit_unhex(t, both, 64) < 0)
        fatal("cannot read the audit key");
    memcpy(sk, both, 32);
    memcpy(pk, both + 32, 32);
    free(t);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *t = check_read_file(from, &n);
    FILE *f = t ? fopen(to, "wb") : NULL;
    if (!f || fwrite(t, 1, n, f) != n || fclose(f) != 0)
        fatal("copy_file");
    free(t);
}

/* dst/ gets a copy of src's database (VACUUM INTO: ids kept) and keys. */
static void copy_log(const paths *src, paths *dst, const char *name)
{
    mkpaths(dst, name);
    char sql[700];
    snprintf(sql, sizeof sql, "VACUUM INTO '%s'", dst->db);
    if (side_exec(src->db, sql) != SQLITE_OK)
        fatal("VACUUM INTO");
    copy_file(src->pub, dst->pub);
    copy_file(src->key, dst->key);
    chmod(dst->key, 0600);
}

static void verify(const paths *p, int64_t from_cp, fp_audit_report *rep)
{
    unsigned char pk[32];
    fp_err err = {0};
    if (fp_audit_pub_load(p->pub, pk, &err) < 0)
        fatal(err.msg);
    int rc = fp_audit_verify_db(p->db, pk, from_cp, rep, &err);
    CHECK_MSG(rc == 0, "fp_audit_verify_db(%s): %d %s", p->db, rc, err.msg);
}

static paths base;

/* ---- the base log ---- */

static void test_base_log(void)
{
    check_ctx("base log");
    mkpaths(&base, "base");
    fp_store *s = open_store(base.db, BASE_EVERY);
    /* three transactions of 12, 13 and 10: checkpoints fall inside them */
    CHECK_EQ_INT(append_n(s, 1, 12, 1767578400), 0);
    CHECK_EQ_INT(append_n(s, 13, 13, 1767578400), 0);
    CHECK_EQ_INT(append_n(s, 26, 10, 1767578400), 0);
    fp_audit_head h;
    CHECK_EQ_INT(fp_store_audit_head(s, &h, NULL), 0);
    CHECK_EQ_INT(h.last_id, BASE_RECORDS);
    CHECK_EQ_INT(h.cp_id, 3);
    CHECK_EQ_INT(h.cp_upto, 30);
    fp_store_close(s); /* signs the tail: checkpoint 4 up to 35 */

    CHECK_EQ_INT(db_int(base.db, "SELECT count(*) FROM audit"), BASE_RECORDS);
    CHECK_EQ_INT(db_int(base.db, "SELECT min(id) FROM audit"), 1);
    CHECK_EQ_INT(db_int(base.db, "SELECT max(id) FROM audit"), BASE_RECORDS);
    CHECK_EQ_INT(db_int(base.db, "SELECT count(*) FROM audit_checkpoints"), 4);
    CHECK_EQ_INT(db_int(base.db, "SELECT sum(upto_id) FROM audit_checkpoints"), 10 + 20 + 30 + 35);
    CHECK_EQ_INT(db_int(base.db, "SELECT count(*) FROM audit WHERE target IS NULL"), 5);
    /* record 1 links to 32 zero bytes, every other to its predecessor */
    CHECK_EQ_INT(
        db_int(base.db, "SELECT count(*) FROM audit WHERE id=1 AND prev_hash=zeroblob(32)"), 1);
    CHECK_EQ_INT(db_int(base.db, "SELECT count(*) FROM audit a JOIN audit b ON b.id = a.id + 1 "
                                 "WHERE b.prev_hash = a.hash"),
                 BASE_RECORDS - 1);

    fp_audit_report rep;
    verify(&base, 0, &rep);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);
    CHECK_EQ_INT(rep.records, BASE_RECORDS);
    CHECK_EQ_INT(rep.first_id, 1);
    CHECK_EQ_INT(rep.last_id, BASE_RECORDS);
    CHECK_EQ_INT(rep.checkpoints, 4);
    CHECK_EQ_INT(rep.cp_id, 4);
    CHECK_EQ_INT(rep.cp_upto, BASE_RECORDS);
    CHECK_EQ_INT(rep.unsigned_tail, 0);

    /* incremental: from checkpoint 2's signed hash on */
    check_ctx("base log --from-checkpoint 2");
    verify(&base, 2, &rep);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);
    CHECK_EQ_INT(rep.records, BASE_RECORDS - 20);
    CHECK_EQ_INT(rep.first_id, 21);
    CHECK_EQ_INT(rep.anchor_cp, 2);
    CHECK_EQ_INT(rep.checkpoints, 3);

    check_ctx("base log --from-checkpoint 99");
    unsigned char pk[32];
    fp_audit_pub_load(base.pub, pk, NULL);
    CHECK_EQ_INT(fp_audit_verify_db(base.db, pk, 99, &rep, NULL), FP_ENOTFOUND);

    check_ctx("base log, another key");
    unsigned char other[32];
    memcpy(other, pk, 32);
    other[0] ^= 1;
    CHECK_EQ_INT(fp_audit_verify_db(base.db, other, 0, &rep, NULL), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_CP_FORGED);
    CHECK_EQ_INT(rep.checkpoint, 1);
    check_ctx("%s", "");
}

/* ---- tampering ---- */

static void t_rehash_one(const paths *p)
{
    side_exec(p->db, "UPDATE audit SET actor='mallory' WHERE id=17");
    rehash(p->db, 17, 17, 0);
}

static void t_rehash_rest(const paths *p)
{
    side_exec(p->db, "UPDATE audit SET actor='mallory' WHERE id=17");
    rehash(p->db, 17, BASE_RECORDS, 1);
}

static void t_flip_actor_byte(const paths *p)
{
    /* "actor-17" -> "actor-07": one byte */
    side_exec(p->db, "UPDATE audit SET actor = substr(actor, 1, 6) || '0' || substr(actor, 8) "
                     "WHERE id=17");
}

static void t_flip_hash(const paths *p)
{
    flip(p->db, "audit", "hash", 17, 5);
}

static void t_flip_prev(const paths *p)
{
    flip(p->db, "audit", "prev_hash", 17, 31);
}

static void t_flip_sig(const paths *p)
{
    flip(p->db, "audit_checkpoints", "signature", 2, 10);
}

static void t_flip_cp_hash(const paths *p)
{
    flip(p->db, "audit_checkpoints", "upto_hash", 2, 0);
}

/* a checkpoint validly signed (with the real key) over a hash that is not
 * the chain's: what a buggy or compromised signer would produce */
static void t_resign_wrong_hash(const paths *p)
{
    unsigned char sk[32], pk[32];
    load_key(p->key, sk, pk);
    fp_audit_cp cp = {.id = 2, .upto_id = 20, .ts = 1767578400};
    if (db_blob(p->db, "audit", "hash", 19, cp.upto_hash, 32) != 32)
        fatal("no hash of record 19");
    fp_audit_cp_sign(&cp, sk, pk);
    set_blob(p->db, "audit_checkpoints", "upto_hash", 2, cp.upto_hash, 32);
    set_blob(p->db, "audit_checkpoints", "signature", 2, cp.sig, 64);
    side_exec(p->db, "UPDATE audit_checkpoints SET ts=1767578400 WHERE id=2");
}

static const char swap_sql_fmt[] =
    "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (%d, %d);"
    "UPDATE audit SET (ts, actor, action, target, request_id, client_ip, outcome, prev_hash, "
    "hash) = (SELECT ts, actor, action, target, request_id, client_ip, outcome, prev_hash, hash "
    "FROM t WHERE t.id = %d - audit.id) WHERE id IN (%d, %d);";

static void swap(const paths *p, int a, int b)
{
    char sql[600];
    snprintf(sql, sizeof sql, swap_sql_fmt, a, b, a + b, a, b);
    if (side_exec(p->db, sql) != SQLITE_OK)
        fatal("swap");
}

static void t_swap_17_23(const paths *p)
{
    swap(p, 17, 23);
}

static void t_swap_17_18(const paths *p)
{
    swap(p, 17, 18);
}

static void t_swap_1_2(const paths *p)
{
    swap(p, 1, 2);
}

static void test_tamper(void)
{
    static const struct {
        const char *name;
        const char *sql;            /* or */
        void (*fn)(const paths *p); /* the change */
        fp_audit_kind kind;
        int64_t record, checkpoint; /* what must be named (0: nothing) */
        const char *says;           /* in the English message */
    } cases[] = {
        {"one byte of actor", NULL, t_flip_actor_byte, FP_AUDIT_ALTERED, 17, 0,
         "hash mismatch at record 17 (altered)"},
        {"outcome", "UPDATE audit SET outcome='denied' WHERE id=17", NULL, FP_AUDIT_ALTERED, 17, 0,
         "hash mismatch at record 17"},
        {"action", "UPDATE audit SET action='test.appenD' WHERE id=3", NULL, FP_AUDIT_ALTERED, 3, 0,
         "record 3"},
        {"ts", "UPDATE audit SET ts=ts+1 WHERE id=17", NULL, FP_AUDIT_ALTERED, 17, 0, "record 17"},
        {"client_ip", "UPDATE audit SET client_ip='10.0.0.99' WHERE id=30", NULL, FP_AUDIT_ALTERED,
         30, 0, "record 30"},
        {"NULL target made empty", "UPDATE audit SET target='' WHERE id=7", NULL, FP_AUDIT_ALTERED,
         7, 0, "record 7"},
        {"empty request_id made NULL", "UPDATE audit SET request_id=NULL WHERE id=8", NULL,
         FP_AUDIT_ALTERED, 8, 0, "record 8"},
        {"one byte of hash", NULL, t_flip_hash, FP_AUDIT_ALTERED, 17, 0, "record 17"},
        {"one byte of prev_hash", NULL, t_flip_prev, FP_AUDIT_ALTERED, 17, 0, "record 17"},
        {"hash cut short", "UPDATE audit SET hash=substr(hash, 1, 31) WHERE id=17", NULL,
         FP_AUDIT_ALTERED, 17, 0, "record 17"},
        {"hashes removed", "UPDATE audit SET hash=NULL, prev_hash=NULL WHERE id=17", NULL,
         FP_AUDIT_UNCHAINED, 17, 0, "record 17 has no hash"},
        {"altered and re-hashed", NULL, t_rehash_one, FP_AUDIT_RELINKED, 18, 0,
         "record 18 does not link to record 17"},
        {"altered, chain re-hashed to the end", NULL, t_rehash_rest, FP_AUDIT_CP_MISMATCH, 11, 2,
         "checkpoint 2 (validly signed, records up to 20) does not match the chain: a record in "
         "11–20"},
        {"one deleted", "DELETE FROM audit WHERE id=17", NULL, FP_AUDIT_MISSING, 17, 0,
         "record 17 missing (gap 16→18)"},
        {"two deleted", "DELETE FROM audit WHERE id IN (17, 18)", NULL, FP_AUDIT_MISSING, 17, 0,
         "records 17–18 missing (gap 16→19)"},
        {"first deleted", "DELETE FROM audit WHERE id=1", NULL, FP_AUDIT_MISSING, 1, 0,
         "record 1 missing"},
        {"head deleted up to a checkpoint, no prune record",
         "DELETE FROM audit WHERE id <= 20; DELETE FROM audit_checkpoints WHERE id < 2", NULL,
         FP_AUDIT_MISSING, 1, 2, "records 1–20 missing"},
        {"two swapped", NULL, t_swap_17_23, FP_AUDIT_REORDERED, 17, 0,
         "record 17 is out of place: it holds record 23 (reordered)"},
        {"neighbours swapped", NULL, t_swap_17_18, FP_AUDIT_REORDERED, 17, 0, "it holds record 18"},
        {"first two swapped", NULL, t_swap_1_2, FP_AUDIT_REORDERED, 1, 0, "it holds record 2"},
        {"tail truncated below a checkpoint", "DELETE FROM audit WHERE id > 25", NULL,
         FP_AUDIT_TRUNCATED, 26, 3,
         "checkpoint 3 covers records up to 30 but the log ends at 25 (truncated)"},
        {"everything deleted", "DELETE FROM audit", NULL, FP_AUDIT_TRUNCATED, 1, 1,
         "checkpoint 1 covers records up to 10 but the log ends at 0"},
        {"record inserted without hash",
         "INSERT INTO audit(id, ts, actor, action, outcome) VALUES(36, 1, 'x', 'y', 'ok')", NULL,
         FP_AUDIT_UNCHAINED, 36, 0, "record 36 has no hash"},
        {"checkpoint signature byte", NULL, t_flip_sig, FP_AUDIT_CP_FORGED, 0, 2,
         "checkpoint 2: signature invalid"},
        {"checkpoint hash byte (not re-signed)", NULL, t_flip_cp_hash, FP_AUDIT_CP_FORGED, 0, 2,
         "checkpoint 2: signature invalid"},
        {"checkpoint ts", "UPDATE audit_checkpoints SET ts=ts+1 WHERE id=3", NULL,
         FP_AUDIT_CP_FORGED, 0, 3, "checkpoint 3"},
        {"checkpoint signed over a wrong hash", NULL, t_resign_wrong_hash, FP_AUDIT_CP_MISMATCH, 11,
         2, "checkpoint 2 (validly signed"},
        {"checkpoint deleted", "DELETE FROM audit_checkpoints WHERE id=2", NULL,
         FP_AUDIT_CP_MISSING, 0, 2, "checkpoint 2 missing (gap 1→3)"},
        /* the first finding wins: record 12 comes before record 17 */
        {"two changes", "UPDATE audit SET actor='x' WHERE id IN (12, 17)", NULL, FP_AUDIT_ALTERED,
         12, 0, "record 12"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("tamper: %s", cases[i].name);
        paths p;
        char name[32];
        snprintf(name, sizeof name, "tamper-%02zu", i);
        copy_log(&base, &p, name);
        if (cases[i].sql)
            CHECK_EQ_INT(side_exec(p.db, cases[i].sql), SQLITE_OK);
        else
            cases[i].fn(&p);
        fp_audit_report rep;
        verify(&p, 0, &rep);
        CHECK_MSG(rep.kind == cases[i].kind, "kind %s, want %s (%s)", fp_audit_kind_name(rep.kind),
                  fp_audit_kind_name(cases[i].kind), rep.en);
        CHECK_EQ_INT(rep.record, cases[i].record);
        CHECK_EQ_INT(rep.checkpoint, cases[i].checkpoint);
        CHECK_CONTAINS(rep.en, cases[i].says);
        CHECK(rep.zh[0] != 0);
    }
    /* the untouched base, after all those copies */
    check_ctx("tamper: untouched copy");
    paths p;
    copy_log(&base, &p, "untouched");
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);
    CHECK_EQ_INT(rep.records, BASE_RECORDS);
    check_ctx("%s", "");
}

/* ---- bundles ---- */

static void export_to(const paths *p, int64_t from, int64_t to, const char *out, int64_t *first,
                      int64_t *last)
{
    unsigned char pk[32];
    fp_err err = {0};
    fp_audit_pub_load(p->pub, pk, NULL);
    CHECK_MSG(fp_audit_export(p->db, pk, from, to, out, first, last, &err) == 0, "export: %s",
              err.msg);
}

/* Rewrites line `n` (1-based) of a file through fn, or drops the lines
 * from n on (fn NULL). */
static void edit_line(const char *path, int n, void (*fn)(char *line))
{
    size_t len;
    char *t = check_read_file(path, &len);
    FILE *f = t ? fopen(path, "wb") : NULL;
    if (!f)
        fatal("edit_line");
    int ln = 1;
    for (char *line = t, *nl; *line; line = nl + 1, ln++) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = 0;
        if (ln == n && !fn)
            break;
        if (ln == n)
            fn(line);
        fprintf(f, "%s\n", line);
    }
    fclose(f);
    free(t);
}

static void change_actor(char *line)
{
    char *a = strstr(line, "\"actor-");
    if (a)
        a[1] = 'A';
}

static void test_bundle(void)
{
    char out[600];
    unsigned char pk[32], got[32];
    fp_audit_pub_load(base.pub, pk, NULL);
    fp_audit_report rep;
    int64_t first, last;

    check_ctx("bundle: whole log");
    snprintf(out, sizeof out, "%s/all.jsonl", tmpdir);
    export_to(&base, 0, 0, out, &first, &last);
    CHECK_EQ_INT(first, 1);
    CHECK_EQ_INT(last, BASE_RECORDS);
    CHECK_EQ_INT(fp_audit_verify_bundle(out, pk, got, &rep, NULL), 0);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.records, BASE_RECORDS);
    CHECK_EQ_INT(rep.checkpoints, 4);
    CHECK(!memcmp(got, pk, 32));
    /* without a trusted key: the one the bundle names */
    CHECK_EQ_INT(fp_audit_verify_bundle(out, NULL, got, &rep, NULL), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);

    check_ctx("bundle: records 15..22 widen to checkpoints 10 and 30");
    snprintf(out, sizeof out, "%s/part.jsonl", tmpdir);
    export_to(&base, 15, 22, out, &first, &last);
    CHECK_EQ_INT(first, 11);
    CHECK_EQ_INT(last, 30);
    CHECK_EQ_INT(fp_audit_verify_bundle(out, pk, got, &rep, NULL), 0);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.first_id, 11);
    CHECK_EQ_INT(rep.last_id, 30);
    CHECK_EQ_INT(rep.anchor_cp, 1);
    CHECK_EQ_INT(rep.cp_upto, 30);
    CHECK_EQ_INT(rep.unsigned_tail, 0);

    check_ctx("bundle: another trusted key");
    unsigned char other[32];
    memcpy(other, pk, 32);
    other[31] ^= 0x80;
    CHECK_EQ_INT(fp_audit_verify_bundle(out, other, got, &rep, NULL), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_BAD_BUNDLE);

    check_ctx("bundle: a record changed");
    snprintf(out, sizeof out, "%s/changed.jsonl", tmpdir);
    export_to(&base, 0, 0, out, &first, &last);
    edit_line(out, 1 + 5, change_actor); /* header, records 1..5 (no checkpoint before 10) */
    CHECK_EQ_INT(fp_audit_verify_bundle(out, pk, got, &rep, NULL), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_ALTERED);
    CHECK_EQ_INT(rep.record, 5);

    check_ctx("bundle: cut short");
    snprintf(out, sizeof out, "%s/short.jsonl", tmpdir);
    export_to(&base, 0, 0, out, &first, &last);
    edit_line(out, 20, NULL);
    CHECK_EQ_INT(fp_audit_verify_bundle(out, pk, got, &rep, NULL), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_BAD_BUNDLE);

    check_ctx("bundle: of a tampered database");
    paths p;
    copy_log(&base, &p, "bundle-tampered");
    side_exec(p.db, "DELETE FROM audit WHERE id=23");
    snprintf(out, sizeof out, "%s/tampered.jsonl", tmpdir);
    export_to(&p, 0, 0, out, &first, &last);
    CHECK_EQ_INT(fp_audit_verify_bundle(out, pk, got, &rep, NULL), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_MISSING);
    CHECK_EQ_INT(rep.record, 23);
    check_ctx("%s", "");
}

/* ---- rollbacks and concurrent writers ---- */

static void check_links(const char *db, int64_t n)
{
    CHECK_EQ_INT(db_int(db, "SELECT count(*) FROM audit"), n);
    CHECK_EQ_INT(db_int(db, "SELECT max(id) FROM audit"), n);
    CHECK_EQ_INT(db_int(db, "SELECT count(*) FROM audit a JOIN audit b ON b.id = a.id + 1 "
                            "WHERE b.prev_hash = a.hash"),
                 n - 1);
}

static void test_rollback_records(void)
{
    check_ctx("rollback of a batch of records");
    paths p;
    mkpaths(&p, "rollback");
    fp_store *s = open_store(p.db, 1000);
    CHECK_EQ_INT(append_n(s, 1, 3, 0), 0);
    fp_audit_head before, after;
    fp_store_audit_head(s, &before, NULL);
    fp_store_faults f = {.write_fail = 1};
    fp_store_set_faults(s, &f);
    CHECK(append_n(s, 100, 4, 0) < 0); /* appended, then rolled back */
    f.write_fail = 0;
    fp_store_set_faults(s, &f);
    fp_store_audit_head(s, &after, NULL);
    CHECK_EQ_INT(after.last_id, 3);
    CHECK(!memcmp(after.last_hash, before.last_hash, 32));
    CHECK_EQ_INT(append_n(s, 4, 1, 0), 0);
    fp_store_close(s);
    check_links(p.db, 4);
    CHECK_EQ_INT(db_int(p.db, "SELECT count(*) FROM audit WHERE actor LIKE 'actor-10_'"), 0);
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.records, 4);
    check_ctx("%s", "");
}

/* issue batches: the per-invoice record is in the chain only if the batch
 * committed */
static char *example;
static fp_invoice inv;
static const fp_seller seller = {.name = "演示销售方有限公司", .tax_id = "91310000MA1FL00001"};

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answered;
} waiter;

static void on_done(fp_issue_req *r, void *arg)
{
    (void)r;
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->answered++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static fp_issue_req *issue(fp_store *s, int64_t seller_id, const char *serial)
{
    fp_issue_req *r = calloc(1, sizeof *r);
    if (!r || fp_invoice_render(&inv, &seller, serial, "2026-01-05T10:00:00+08:00", &r->doc) < 0)
        fatal("cannot render a request document");
    r->seller_id = seller_id;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    fp_sha256(serial, strlen(serial), r->request_hash);
    memcpy(r->invoice_type, inv.invoice_type, sizeof r->invoice_type);
    r->total_with_tax = inv.total_with_tax;
    r->issued_at = 1767578400;
    snprintf(r->actor, sizeof r->actor, "test-client");
    snprintf(r->request_id, sizeof r->request_id, "rid-%s", serial);
    snprintf(r->client_ip, sizeof r->client_ip, "127.0.0.1");
    waiter w = {.answered = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    r->done = on_done;
    r->arg = &w;
    fp_store_submit(s, r);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w.mu);
    while (!w.answered)
        if (pthread_cond_timedwait(&w.cv, &w.mu, &dl) != 0 && !w.answered)
            fatal("no answer within 10 s");
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return r;
}

static void req_free(fp_issue_req *r)
{
    free(r->response);
    free(r->doc.json);
    free(r);
}

static void test_rollback_issue(void)
{
    check_ctx("rollback of an issue batch");
    paths p;
    mkpaths(&p, "issue");
    fp_store *s = open_store(p.db, 1000);
    int64_t sid = 0;
    fp_err err = {0};
    if (fp_store_add_seller(s, &seller, &sid, &err) < 0 ||
        fp_store_add_range(s, sid, "26440", 1, 100, NULL, &err) < 0)
        fatal(err.msg);
    fp_issue_req *a = issue(s, sid, "audit-a");
    CHECK_EQ_INT(a->result, FP_ISSUE_CREATED);
    fp_store_faults f = {.write_fail = 1};
    fp_store_set_faults(s, &f);
    fp_issue_req *b = issue(s, sid, "audit-b"); /* the audit row was in, then rolled back */
    CHECK_EQ_INT(b->result, FP_ISSUE_FAILED);
    f.write_fail = 0;
    fp_store_set_faults(s, &f);
    fp_issue_req *c = issue(s, sid, "audit-c");
    CHECK_EQ_INT(c->result, FP_ISSUE_CREATED);
    /* jobs.c's helper: an acknowledgement in its own transaction */
    CHECK_EQ_INT(fp_store_invoice_ack(s, sid, c->number, "test-client", "rid-ack", "erp-ack",
                                      "127.0.0.1", &err),
                 0);
    /* and one that fails before its audit record: nothing appended */
    CHECK(fp_store_invoice_ack(s, sid, "26440000000000099999", "x", "", NULL, "", &err) < 0);
    fp_store_close(s);
    check_links(p.db, 3);
    CHECK_EQ_INT(db_int(p.db, "SELECT count(*) FROM audit WHERE target IN (SELECT number FROM "
                              "invoices) AND action='invoice.issue'"),
                 2);
    CHECK_EQ_INT(db_int(p.db, "SELECT id FROM audit WHERE action='invoice.ack'"), 3);
    /* migration 7's columns, hashed as version 2 (still verifies below) */
    CHECK_EQ_INT(db_int(p.db, "SELECT seller_id FROM audit WHERE client_request_id='erp-ack' "
                              "AND action='invoice.ack'"),
                 sid);
    CHECK_EQ_INT(db_int(p.db, "SELECT count(*) FROM audit WHERE request_id='rid-audit-b'"), 0);
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.records, 3);
    req_free(a);
    req_free(b);
    req_free(c);
    check_ctx("%s", "");
}

static void test_two_writers(void)
{
    check_ctx("two stores on one database");
    paths p;
    mkpaths(&p, "two");
    fp_store *a = open_store(p.db, 4);
    fp_store *b = open_store(p.db, 4);
    CHECK_EQ_INT(append_n(a, 1, 2, 0), 0);
    CHECK_EQ_INT(append_n(b, 3, 3, 0), 0); /* b's cached head is stale: it re-reads */
    CHECK_EQ_INT(append_n(a, 6, 4, 0), 0); /* and so is a's now (a checkpoint of b's too) */
    CHECK_EQ_INT(append_n(b, 10, 1, 0), 0);
    fp_store_close(a);
    fp_store_close(b);
    check_links(p.db, 10);
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.records, 10);
    CHECK_EQ_INT(rep.unsigned_tail, 0);
    check_ctx("%s", "");
}

/* ---- periodic checkpoints ---- */

static void test_periodic_checkpoint(void)
{
    check_ctx("periodic checkpoint");
    paths p;
    mkpaths(&p, "periodic");
    fp_store_opts o = {.path = p.db, .audit_checkpoint_every = 1000, .audit_checkpoint_secs = 3600};
    fp_store *s = NULL;
    fp_err err = {0};
    if (fp_store_open(&o, &s, &err) < 0)
        fatal(err.msg);
    CHECK_EQ_INT(fp_store_audit_checkpoint(s, &err), 0); /* nothing to sign */
    CHECK_EQ_INT(append_n(s, 1, 3, 0), 0);
    CHECK_EQ_INT(fp_store_audit_checkpoint(s, &err), 1); /* the first one: signed */
    CHECK_EQ_INT(fp_store_audit_checkpoint(s, &err), 0); /* nothing new */
    CHECK_EQ_INT(append_n(s, 4, 2, 0), 0);
    CHECK_EQ_INT(fp_store_audit_checkpoint(s, &err), 0); /* too soon after the last */
    fp_audit_head h;
    fp_store_audit_head(s, &h, NULL);
    CHECK_EQ_INT(h.cp_upto, 3);
    CHECK_EQ_INT(h.last_id, 5);
    fp_store_close(s); /* close signs anyway */
    CHECK_EQ_INT(db_int(p.db, "SELECT max(upto_id) FROM audit_checkpoints"), 5);
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);
    CHECK_EQ_INT(rep.checkpoints, 2);
    check_ctx("%s", "");
}

/* ---- retention ---- */

static void test_prune(void)
{
    check_ctx("prune");
    paths p;
    mkpaths(&p, "prune");
    fp_store *s = open_store(p.db, 10);
    CHECK_EQ_INT(append_n(s, 1, 25, 1000), 0);       /* ts 1001..1025: old */
    CHECK_EQ_INT(append_n(s, 26, 5, 1000000000), 0); /* recent */
    int64_t upto = -1, anchor = -1;
    fp_err err = {0};
    /* nothing before ts 500 */
    CHECK_EQ_INT(fp_store_audit_prune(s, 500, "test", &upto, &anchor, &err), 0);
    CHECK_EQ_INT(upto, 0);
    /* before ts 2000: records 1..25 are old; the newest checkpoint ending
     * before 26 is #2 (20) */
    CHECK_EQ_INT(fp_store_audit_prune(s, 2000, "test", &upto, &anchor, &err), 0);
    CHECK_EQ_INT(upto, 20);
    CHECK_EQ_INT(anchor, 2);
    CHECK_EQ_INT(append_n(s, 32, 3, 0), 0);
    fp_store_close(s);
    CHECK_EQ_INT(db_int(p.db, "SELECT min(id) FROM audit"), 21);
    CHECK_EQ_INT(db_int(p.db, "SELECT min(id) FROM audit_checkpoints"), 2);
    CHECK_EQ_INT(db_int(p.db, "SELECT id FROM audit WHERE action='audit.prune' AND "
                              "target='upto:20'"),
                 31);
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.first_id, 21);
    CHECK_EQ_INT(rep.last_id, 34);
    CHECK_EQ_INT(rep.anchor_cp, 2);

    check_ctx("prune: reopen and append");
    s = open_store(p.db, 10);
    CHECK_EQ_INT(append_n(s, 35, 2, 0), 0);
    fp_store_close(s);
    verify(&p, 0, &rep);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.last_id, 36);

    check_ctx("prune: bundle of a pruned log");
    char out[600];
    int64_t first, last;
    snprintf(out, sizeof out, "%s/pruned.jsonl", tmpdir);
    export_to(&p, 0, 0, out, &first, &last);
    CHECK_EQ_INT(first, 21);
    unsigned char got[32];
    CHECK_EQ_INT(fp_audit_verify_bundle(out, NULL, got, &rep, NULL), 0);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);

    check_ctx("prune: the prune record altered");
    paths q;
    copy_log(&p, &q, "prune-tampered");
    side_exec(q.db, "UPDATE audit SET target='upto:10' WHERE action='audit.prune'");
    verify(&q, 0, &rep);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_ALTERED);
    CHECK_EQ_INT(rep.record, 31);
    check_ctx("%s", "");
}

/* ---- upgrade of a database from before the chain ---- */

static void test_legacy(void)
{
    check_ctx("legacy upgrade");
    paths p;
    mkpaths(&p, "legacy");
    sqlite3 *c = NULL;
    if (sqlite3_open(p.db, &c) != SQLITE_OK)
        fatal("open legacy");
    for (int v = 1; v <= 5; v++)
        if (sqlite3_exec(c, fp_store_migration_sql(v), NULL, NULL, NULL) != SQLITE_OK)
            fatal("legacy migration");
    sqlite3_exec(c,
                 "PRAGMA user_version=5;"
                 "INSERT INTO audit(ts, actor, action, target, request_id, client_ip, outcome) "
                 "VALUES(1, 'a', 'invoice.issue', 'n1', 'r1', '127.0.0.1', 'created'),"
                 "(2, 'b', 'invoice.issue', NULL, 'r2', '127.0.0.1', 'created'),"
                 "(3, 'c', 'job.redrive', 'job:1', '', '', 'ok');",
                 NULL, NULL, NULL);
    sqlite3_close(c);
    fp_store *s = open_store(p.db, 1000);
    CHECK_EQ_INT(append_n(s, 4, 1, 0), 0);
    fp_store_close(s);
    check_links(p.db, 4);
    CHECK_EQ_INT(db_int(p.db, "SELECT upto_id FROM audit_checkpoints WHERE id=1"), 3);
    fp_audit_report rep;
    verify(&p, 0, &rep);
    CHECK_MSG(rep.kind == FP_AUDIT_INTACT, "%s", rep.en);
    CHECK_EQ_INT(rep.records, 4);

    check_ctx("legacy: a record slipped in later without a hash is not chained");
    side_exec(p.db, "INSERT INTO audit(id, ts, actor, action, outcome) VALUES(5, 5, 'm', 'x', "
                    "'ok')");
    fp_store_opts o = {.path = p.db};
    fp_err err = {0};
    s = NULL;
    CHECK(fp_store_open(&o, &s, &err) < 0);
    CHECK_CONTAINS(err.msg, "audit record 5 has no valid hash");
    fp_store_close(s);
    verify(&p, 0, &rep);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_UNCHAINED);
    CHECK_EQ_INT(rep.record, 5);
    check_ctx("%s", "");
}

/* ---- keys and the record format ---- */

static void test_keys(void)
{
    check_ctx("keys");
    struct stat st;
    CHECK(stat(base.key, &st) == 0 && (st.st_mode & 0777) == 0600);
    unsigned char sk[32], pk[32], pub[32];
    load_key(base.key, sk, pk);
    CHECK_EQ_INT(fp_audit_pub_load(base.pub, pub, NULL), 0);
    CHECK(!memcmp(pk, pub, 32));

    paths p;
    copy_log(&base, &p, "keys");
    fp_store_opts o = {.path = p.db};
    fp_store *s = NULL;
    fp_err err = {0};
    chmod(p.key, 0644);
    CHECK(fp_store_open(&o, &s, &err) < 0);
    CHECK_CONTAINS(err.msg, "readable by others");
    chmod(p.key, 0600);
    /* a replaced public key */
    FILE *f = fopen(p.pub, "w");
    fprintf(f, "%064d\n", 0);
    fclose(f);
    CHECK(fp_store_open(&o, &s, &err) < 0);
    CHECK_CONTAINS(err.msg, "is not the public key");
    /* an explicit key path: created there, with its .pub beside it */
    char kp[700], pp[700];
    snprintf(kp, sizeof kp, "%s/elsewhere.key", p.dir);
    snprintf(pp, sizeof pp, "%s/elsewhere.pub", p.dir);
    paths q;
    mkpaths(&q, "keypath");
    fp_store_opts o2 = {.path = q.db, .audit_key_path = kp};
    CHECK_EQ_INT(fp_store_open(&o2, &s, &err), 0);
    fp_store_close(s);
    CHECK(access(kp, F_OK) == 0 && access(pp, F_OK) == 0 && access(q.key, F_OK) != 0);

    /* the key-file rule (keyfile.h): a root-owned key may be 0640 */
    if (geteuid() == 0) {
        chmod(kp, 0640);
        CHECK_EQ_INT(fp_store_open(&o2, &s, &err), 0);
        fp_store_close(s);
        chmod(kp, 0600);
    }
    /* issue 13 item 8: once the log holds a signed checkpoint (closing
     * signs one), a deleted key pair is not made anew */
    CHECK_EQ_INT(fp_store_open(&o2, &s, &err), 0);
    fp_audit_rec rec = {0, "cli:test", "keys.create", "c1", NULL, NULL, "ok"};
    CHECK_EQ_INT(fp_store_audit(s, &rec, &err), 0);
    fp_store_close(s);
    unlink(kp);
    unlink(pp);
    CHECK(fp_store_open(&o2, &s, &err) == FP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "is missing but the audit log already holds signed checkpoints");
    CHECK(access(kp, F_OK) != 0 && access(pp, F_OK) != 0);
    /* a fresh database whose public key is still there: not made anew
     * either */
    paths r;
    mkpaths(&r, "pubonly");
    fp_store_opts o3 = {.path = r.db};
    FILE *pf = fopen(r.pub, "w");
    fprintf(pf, "%064d\n", 0);
    fclose(pf);
    CHECK(fp_store_open(&o3, &s, &err) == FP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "its public key");
    CHECK(access(r.key, F_OK) != 0);
    check_ctx("%s", "");
}

static void test_format(void)
{
    check_ctx("record hash format");
    unsigned char prev[32] = {0}, h1[32], h2[32];
    fp_audit_rec a = {.ts = 1, .actor = "ab", .action = "c", .outcome = "ok"};
    fp_audit_rec b = {.ts = 1, .actor = "a", .action = "bc", .outcome = "ok"};
    fp_audit_row ra, rb;
    fp_audit_row_from_rec(&ra, 1, &a);
    fp_audit_row_from_rec(&rb, 1, &b);
    fp_audit_hash(&ra, prev, h1);
    fp_audit_hash(&rb, prev, h2);
    CHECK_MSG(memcmp(h1, h2, 32) != 0, "(ab, c) and (a, bc) hash alike");
    a.target = "";
    fp_audit_row_from_rec(&rb, 1, &a);
    fp_audit_hash(&rb, prev, h2);
    CHECK_MSG(memcmp(h1, h2, 32) != 0, "NULL and \"\" hash alike");
    fp_audit_row_from_rec(&rb, 2, &b);
    fp_audit_hash(&rb, prev, h2);
    fp_audit_row_from_rec(&rb, 1, &b);
    fp_audit_hash(&rb, prev, h1);
    CHECK_MSG(memcmp(h1, h2, 32) != 0, "the id is not hashed");
    /* the format is frozen: a stored log must verify with every later
     * fapiao (docs/audit.md spells out the encoding) */
    fp_audit_rec k = {.ts = 1767578400,
                      .actor = "client-1",
                      .action = "invoice.issue",
                      .target = "26440000000000000001",
                      .request_id = "req-1",
                      .client_ip = NULL,
                      .outcome = "created"};
    fp_audit_row_from_rec(&ra, 1, &k);
    fp_audit_hash(&ra, prev, h1);
    char hex[65];
    fp_hex(h1, 32, hex);
    CHECK_EQ_STR(hex, KNOWN_HASH);
    k.seller_id = 3;
    k.client_request_id = "erp-77";
    fp_audit_row_from_rec(&ra, 1, &k);
    fp_audit_hash(&ra, prev, h1);
    fp_hex(h1, 32, hex);
    CHECK_EQ_STR(hex, KNOWN_HASH_V2);
    check_ctx("%s", "");
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void)
{
    setenv("FP_TEST_YEAR", "26", 1);
    example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    static fp_errors es;
    if (!example || fp_invoice_parse(example, strlen(example), NULL, &inv, &es) != 0)
        fatal("examples/invoice.json does not parse");
    if (!mkdtemp(tmpdir))
        fatal("mkdtemp");

    test_format();
    test_base_log();
    test_tamper();
    test_bundle();
    test_rollback_records();
    test_rollback_issue();
    test_two_writers();
    test_periodic_checkpoint();
    test_prune();
    test_legacy();
    test_keys();

    if (!check_state.failed)
        CHECK_MSG(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s",
                  tmpdir);
    fp_invoice_clear(&inv);
    free(example);
    return check_summary();
}
