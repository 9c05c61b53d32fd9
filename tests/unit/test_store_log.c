/* test_store_log.c — the SQLite store's change log (store_backup.h,
 * src/store/sqlite/backup.c and log.c; docs/recovery.md): a base copy plus
 * the drained changesets, replayed in order, is the database; a change by
 * another connection (the audit log's head moved behind the store) breaks
 * the log and what was queued is not handed out; a changeset that does not
 * fit the base is refused. */
#include "check.h"

#include "fapiao/store.h"
#include "fapiao/store_backup.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/fapiao-test-store-log-XXXXXX";

typedef struct txns {
    int n;
    size_t bytes[64];
    void *cs[64];
    int64_t ms[64];
} txns;

static int collect(int64_t ms, const void *cs, size_t n, void *arg)
{
    txns *t = arg;
    if (t->n >= 64)
        return -1;
    t->cs[t->n] = malloc(n);
    memcpy(t->cs[t->n], cs, n);
    t->bytes[t->n] = n;
    t->ms[t->n++] = ms;
    return 0;
}

static void txns_free(txns *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->cs[i]);
    t->n = 0;
}

static int64_t count(const char *db, const char *sql)
{
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(d, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(d);
    return v;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    char db[256], base[256], audit_key[256];
    snprintf(db, sizeof db, "%s/fapiao.db", tmpdir);
    snprintf(base, sizeof base, "%s/base.db", tmpdir);
    snprintf(audit_key, sizeof audit_key, "%s/audit.key", tmpdir);
    fp_store_opts o = {.path = db, .audit_key_path = audit_key};
    fp_store *s = NULL;
    fp_err err = {0};
    CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "open: %s", err.msg);
    if (!s)
        return check_summary();
    fp_seller a = {.name = "Seller A", .tax_id = "91310000MA1FL00001"};
    fp_seller b = {.name = "Seller B", .tax_id = "91310000MA1FL00002"};
    int64_t id = 0;
    CHECK_EQ_INT(fp_store_add_seller(s, &a, &id, &err), 0);

    /* the base: the seller above; the log: what follows */
    CHECK_MSG(fp_store_log_start(s, base, NULL, &err) == 0, "log_start: %s", err.msg);
    CHECK_EQ_INT(count(base, "SELECT count(*) FROM sellers"), 1);
    CHECK_EQ_INT(fp_store_add_seller(s, &b, &id, &err), 0);
    CHECK_EQ_INT(fp_store_add_range(s, id, "26440", 1, 1000, NULL, &err), 0);
    txns t = {0};
    CHECK_EQ_INT(fp_store_log_drain(s, collect, &t), 0); /* 0: not broken */
    CHECK(t.n >= 1);
    for (int i = 1; i < t.n; i++)
        CHECK(t.ms[i] >= t.ms[i - 1]);
    /* nothing twice */
    txns again = {0};
    CHECK_EQ_INT(fp_store_log_drain(s, collect, &again), 0);
    CHECK_EQ_INT(again.n, 0);

    /* replayed onto a copy of the base: the database */
    char copy[300];
    snprintf(copy, sizeof copy, "%s/copy.db", tmpdir);
    CHECK_EQ_INT(fp_store_backup_copy(base, copy, NULL, &err), 0);
    fp_store_replay *r = NULL;
    CHECK_EQ_INT(fp_store_replay_open(copy, &r, &err), 0);
    for (int i = 0; r && i < t.n; i++)
        CHECK_EQ_INT(fp_store_replay_apply(r, t.cs[i], t.bytes[i], &err), 0);
    CHECK_MSG(fp_store_replay_close(r, 1, &err) == 0, "replay: %s", err.msg);
    CHECK_EQ_INT(count(copy, "SELECT count(*) FROM sellers"), 2);
    CHECK_EQ_INT(count(copy, "SELECT count(*) FROM number_ranges"), 1);
    CHECK_EQ_INT(count(copy, "SELECT count(*) FROM audit"),
                 count(db, "SELECT count(*) FROM audit"));
    char detail[128];
    CHECK_EQ_INT(fp_store_backup_integrity(copy, detail, sizeof detail, &err), 0);

    /* the same log onto the copy again: every row is there already, a
     * conflict, refused and nothing kept */
    CHECK_EQ_INT(fp_store_replay_open(copy, &r, &err), 0);
    int rc = 0;
    for (int i = 0; r && i < t.n; i++)
        if (rc == 0)
            rc = fp_store_replay_apply(r, t.cs[i], t.bytes[i], &err);
    CHECK_EQ_INT(fp_store_replay_close(r, rc == 0, rc == 0 ? &err : NULL) < 0 || rc < 0, 1);
    CHECK_EQ_INT(count(copy, "SELECT count(*) FROM sellers"), 2);
    txns_free(&t);

    /* another connection writes an audit record: the log is broken and
     * hands out nothing more for this base */
    CHECK_EQ_INT(fp_store_add_seller(s, &(fp_seller){.name = "C", .tax_id = "91310000MA1FL00003"},
                                     &id, &err),
                 0);
    sqlite3 *side = NULL;
    CHECK_EQ_INT(sqlite3_open(db, &side), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(side,
                              "INSERT INTO audit(ts, actor, action, outcome) "
                              "VALUES(1, 'x', 'foreign', 'ok')",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(side);
    CHECK_EQ_INT(fp_store_log_drain(s, collect, &t), 1);
    CHECK_EQ_INT(t.n, 0);
    txns_free(&t);
    fp_store_log_stop(s);
    fp_store_close(s);
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return check_summary();
}
