/* outbox_jobs.c — the CPU of the outbox's job SQL: claim and complete N
 * render jobs through the store (fp_jobs_claim, fp_jobs_complete), on one
 * thread, with no renderer.  For instruction counts, which a busy machine
 * does not change (docs/performance.md):
 *
 *   perf stat -e instructions:u bench_outbox_jobs --n 2000
 *   perf stat -e instructions:u bench_outbox_jobs --n 4000
 *
 * the difference over 2,000 is one claim + complete without the set-up.
 * The jobs are inserted with raw SQL (pending, due, no fair tag) in a
 * fresh database in a temporary directory, removed at the end. */
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fapiao/jobs.h"
#include "fapiao/store.h"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    long n = 2000;
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--n"))
            n = strtol(argv[i + 1], NULL, 10);
    char dir[] = "/tmp/bench_outbox_jobs.XXXXXX", path[300];
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(path, sizeof path, "%s/fapiao.db", dir);
    fp_store_opts o = {.path = path};
    fp_store *s = NULL;
    fp_err err = {0};
    int rc = 1;
    if (fp_store_open(&o, &s, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        goto out;
    }
    fp_store_close(s);
    s = NULL;
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db,
                       "INSERT INTO jobs(invoice_number, seller_id, client_id, kind, state, "
                       "next_at, first_at, updated_at) VALUES(printf('N%08d', ?1), 1, 'c', "
                       "'render', 'pending', 0, 0, 0)",
                       -1, &st, NULL);
    for (long i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, i);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    if (fp_store_open(&o, &s, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        goto out;
    }
    long done = 0;
    for (long i = 0; i < n; i++) {
        fp_job j;
        int64_t due = 0;
        if (fp_jobs_claim(s, 1000 + i, i + 1, 60000, &j, &due, &err) < 0 ||
            fp_jobs_complete(s, &j, 1000 + i, &err) < 0) {
            fprintf(stderr, "job %ld: %s\n", i, err.msg);
            goto out;
        }
        done++;
    }
    printf("jobs=%ld\n", done);
    rc = 0;
out:
    fp_store_close(s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
