/* migrate.c — moving a SQLite store to PostgreSQL (store.h
 * fp_store_migrate; fapiao migrate-store, docs/ha.md "Moving from one node
 * on SQLite").  The two schemas match column for column, so the move is a
 * copy of every table in an order their references allow: the SQLite side
 * reads (sqlite/export.c), the PostgreSQL side writes with COPY in one
 * transaction (pg/import.c); nothing of either backend's SQL is here. */
#include <string.h>

#include "internal.h"

typedef struct counting {
    fp_mig_sink *to;
    fp_store_migrate_report *rep;
    int t;
} counting;

static int c_table(void *arg, int t, const char *const *cols, int ncols, fp_err *err)
{
    counting *c = arg;
    c->t = t;
    return c->to->table(c->to->arg, t, cols, ncols, err);
}

static int c_row(void *arg, const fp_mig_val *v, int n, fp_err *err)
{
    counting *c = arg;
    c->rep->t[c->t].copied++;
    return c->to->row(c->to->arg, v, n, err);
}

static int c_end(void *arg, int t, fp_err *err)
{
    counting *c = arg;
    return c->to->end(c->to->arg, t, err);
}

int fp_store_migrate(const char *sqlite_path, const char *url, fp_store_migrate_report *rep,
                     fp_err *err)
{
    memset(rep, 0, sizeof *rep);
    rep->ntables = fp_mig_ntables;
    for (int i = 0; i < fp_mig_ntables; i++)
        rep->t[i].name = fp_mig_tables[i].name;
    if (!fp_store_is_url(url))
        return fp_fail(err, FP_EINVAL, "the target must be a postgresql:// URL");
    /* the target's schema brought to this build's version (a newer one is
     * refused) the way every node does it at open */
    fp_store_opts o = {.path = url, .read_conns = 1};
    fp_store *s = NULL;
    int rc = fp_store_open(&o, &s, err);
    if (rc < 0)
        return rc;
    fp_store_close(s);
    fp_pg_import *im = NULL;
    fp_mig_sink to;
    if ((rc = fp_pg_import_begin(url, &im, &to, err)) < 0)
        return rc;
    counting c = {.to = &to, .rep = rep};
    fp_mig_sink sink = {.table = c_table, .row = c_row, .end = c_end, .arg = &c};
    int64_t mark = 0, confirmed = 0;
    if ((rc = fp_sq_export(sqlite_path, &sink, &mark, &confirmed, err)) == 0)
        rc = fp_pg_import_finish(im, mark, confirmed, err);
    for (int i = 0; rc == 0 && i < fp_mig_ntables; i++)
        rep->t[i].target = fp_pg_import_count(im, i);
    fp_pg_import_free(im);
    return rc;
}
