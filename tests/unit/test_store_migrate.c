/* test_store_migrate.c — fapiao migrate-store cannot forget a table
 * (src/store/migrate.c; docs/ha.md "Moving from one node on SQLite").
 *
 * A SQLite store made by this build (every migration applied) is listed
 * table by table: each must be one migrate-store copies or one it leaves
 * out on purpose (fp_mig_known).  The next migration that adds a table
 * fails here until the table is named there; at run time the same check
 * makes migrate-store refuse such a source (tests/e2e/test_pg_migrate.py). */
#include "check.h"

#include "../../src/store/internal.h" /* fp_mig_known, fp_mig_tables */
#include "fapiao/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char dir[] = "/tmp/fapiao-test-migrate-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/fapiao.db", dir);
    fp_store_opts o = {.path = path};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "open: %s", err.msg))
        return check_summary();
    fp_store_close(s);

    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT name FROM sqlite_master WHERE type = 'table' "
                             "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                             -1, &st, NULL) == SQLITE_OK);
    int tables = 0, copied = 0;
    while (st && sqlite3_step(st) == SQLITE_ROW && tables < 1000) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int k = fp_mig_known(name);
        CHECK_MSG(k != 0,
                  "table %s is in the SQLite schema but migrate-store does not name it "
                  "(add it to fp_mig_tables or mig_not_copied in src/store/migrate.c)",
                  name);
        tables++;
        copied += k == 1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* every table copied exists in the schema, and some are left out */
    CHECK_MSG(copied == fp_mig_ntables, "%d of the %d copied tables exist", copied, fp_mig_ntables);
    CHECK(tables > copied);
    /* the upstream tables (issue 20) are among the copied */
    static const char *const upstream[] = {"uploads", "upstream_credit", "red_forms"};
    for (size_t i = 0; i < NCASES(upstream); i++)
        CHECK_MSG(fp_mig_known(upstream[i]) == 1, "%s not copied", upstream[i]);
    CHECK(fp_mig_known("no_such_table") == 0);

    /* the store made its file, its WAL and the audit key pair beside it */
    static const char *const made[] = {"fapiao.db", "fapiao.db-wal", "fapiao.db-shm", "audit.key",
                                       "audit.pub"};
    for (size_t i = 0; i < NCASES(made); i++) {
        char f[96];
        snprintf(f, sizeof f, "%s/%s", dir, made[i]);
        unlink(f);
    }
    CHECK_MSG(rmdir(dir) == 0, "%s left behind", dir);
    return check_summary();
}
