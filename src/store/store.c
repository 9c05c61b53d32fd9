/* store.c — the store's seam (internal.h): the backend chosen at open by
 * the database setting, every public function a thin call through its
 * table of operations, and what is the same whatever the backend (freeing
 * an issue request and a red-form record, the listing in one page, a
 * single audit record). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int fp_store_open_ops(const fp_store_ops *ops, const fp_store_opts *o, fp_store **out, fp_err *err)
{
    fp_store *s = calloc(1, sizeof *s);
    if (!s)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    s->ops = ops;
    int rc = ops->open(o, &s->be, err);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* libpq's keyword form ("host=db1,db2 port=5432,5432 dbname=fapiao
 * target_session_attrs=read-write"): it starts with one of these. */
static int pg_keywords(const char *p)
{
    static const char *const kw[] = {"host=", "hostaddr=", "port=", "dbname=", "user=", "service="};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (!strncmp(p, kw[i], strlen(kw[i])))
            return 1;
    return 0;
}

/* The database setting names the backend: a URL with a scheme, or libpq's
 * keyword form, is a server database; anything else a file path for
 * SQLite. */
int fp_store_is_url(const char *path)
{
    return path && (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11) ||
                    pg_keywords(path));
}

int fp_store_open(const fp_store_opts *o, fp_store **out, fp_err *err)
{
    if (fp_store_is_url(o->path))
        return fp_store_open_ops(&fp_store_pg_ops, o, out, err);
    return fp_store_open_ops(&fp_store_sqlite_ops, o, out, err);
}

void fp_store_close(fp_store *s)
{
    if (!s)
        return;
    s->ops->close(s->be);
    free(s);
}

#define FP_RET_int return
#define FP_RET_void
#define FP_STORE_DISPATCH(ret, op, params, args)                                                   \
    ret fp_##op(fp_store *s, FP_UNPAREN params)                                                    \
    {                                                                                              \
        FP_RET_##ret s->ops->op(s->be, FP_UNPAREN args);                                           \
    }
FP_STORE_OPS(FP_STORE_DISPATCH)

int fp_store_red_form_create(fp_store *s, int64_t seller_id, fp_red_form *f, const char *state,
                             int64_t expires_at, fp_red_form_rec *out, fp_errors *es,
                             const fp_audit_rec *audit, fp_err *err)
{
    return fp_store_red_form_adopt(s, seller_id, f, state, expires_at, NULL, out, es, audit, err);
}

int fp_store_audit(fp_store *s, const fp_audit_rec *rec, fp_err *err)
{
    return fp_store_audit_batch(s, rec, 1, err);
}

int fp_store_list_invoices(fp_store *s, int64_t seller_id, const fp_list_query *q, fp_buf *out,
                           char next_cursor[FP_NUMBER_LEN + 1])
{
    int rows = 0, more = 0;
    char last[FP_NUMBER_LEN + 1] = "";
    int rc = fp_store_list_invoices_part(s, seller_id, q, 0, out, &rows, last, &more);
    snprintf(next_cursor, FP_NUMBER_LEN + 1, "%s", rc == 0 && more ? last : "");
    return rc;
}

void fp_issue_req_release(fp_issue_req *r)
{
    if (!r)
        return;
    if (atomic_load(&r->refs) > 0 && atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->response);
    free(r->doc.json);
    free(r);
}

void fp_red_form_rec_clear(fp_red_form_rec *r)
{
    if (!r)
        return;
    free(r->lines);
    memset(r, 0, sizeof *r);
}
