/* export.c — exporting the audit log as a bundle, and listing it. */
#include "internal.h"

/* ---- export ---- */

static void jw_hex(fp_jw *w, const char *k, const void *p, size_t n)
{
    if (!p) {
        fp_jw_key(w, k);
        fp_jw_null(w);
        return;
    }
    char hex[2 * 64 + 1];
    if (n > 64) /* never a valid hash: export a recognisably wrong value */
        n = 64;
    fp_hex(p, n, hex);
    fp_jw_kstr(w, k, hex);
}

void fp_av_write_cp_line(fp_buf *b, const fp_audit_cp *cp)
{
    fp_jw w;
    fp_jw_init(&w, b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", "checkpoint");
    fp_jw_kint(&w, "id", cp->id);
    fp_jw_kint(&w, "upto_id", cp->upto_id);
    jw_hex(&w, "upto_hash", cp->upto_hash, FP_AUDIT_HASH_LEN);
    fp_jw_kint(&w, "ts", cp->ts);
    jw_hex(&w, "signature", cp->sig, FP_AUDIT_SIG_LEN);
    fp_jw_obj_close(&w);
    fp_buf_puts(b, "\n");
}

static void write_text(fp_jw *w, const char *k, const fp_audit_text *t)
{
    fp_jw_key(w, k);
    if (!t->p) {
        fp_jw_null(w);
        return;
    }
    /* the column holds n bytes; the writer takes a C string */
    char small[256], *s = t->n < sizeof small ? small : malloc(t->n + 1);
    if (!s) {
        fp_jw_null(w);
        return;
    }
    memcpy(s, t->p, t->n);
    s[t->n] = 0;
    fp_jw_str(w, s);
    if (s != small)
        free(s);
}

static void write_rec_line(fp_buf *b, const fp_audit_row *r)
{
    fp_jw w;
    fp_jw_init(&w, b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", "record");
    fp_jw_kint(&w, "id", r->id);
    fp_jw_kint(&w, "ts", r->ts);
    for (int i = 0; i < FP_AUDIT__FIELDS; i++)
        write_text(&w, fp_audit_field_names[i], &r->f[i]);
    jw_hex(&w, "prev_hash", r->prev_hash, r->prev_len);
    jw_hex(&w, "hash", r->hash, r->hash_len);
    fp_jw_obj_close(&w);
    fp_buf_puts(b, "\n");
}

/* Writes and empties b (bounded: flushed after every line). */
static int flush_buf(FILE *f, fp_buf *b)
{
    int ok = !b->overflow && fwrite(b->p ? b->p : "", 1, b->len, f) == b->len;
    b->len = 0;
    b->overflow = 0;
    return ok ? 0 : -1;
}

/* The bundle's first line (docs/audit.md). */
static void write_header(fp_buf *b, const unsigned char *pk, int64_t start, int64_t end)
{
    fp_jw w;
    fp_jw_init(&w, b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", BUNDLE_FORMAT);
    fp_jw_kint(&w, "version", BUNDLE_VERSION);
    fp_jw_kstr(&w, "hash", "sha256");
    fp_jw_kstr(&w, "signature", "ed25519");
    jw_hex(&w, "pubkey", pk, FP_AUDIT_KEY_LEN);
    fp_jw_kint(&w, "start", start);
    fp_jw_kint(&w, "end", end);
    fp_jw_kint(&w, "exported_at", (long long)time(NULL));
    fp_jw_obj_close(&w);
    fp_buf_puts(b, "\n");
}

typedef struct export_job {
    const unsigned char *pk;
    int64_t from, to;
    const char *out_path;
    int64_t *first, *last;
    fp_err *err;
    FILE *f;
    fp_buf b;
    int ok;
    int64_t nrec, ncp;
} export_job;

static int put_row(const fp_audit_row *r, void *arg)
{
    export_job *x = arg;
    write_rec_line(&x->b, r);
    if (!x->nrec++)
        *x->first = r->id;
    *x->last = r->id;
    x->ok = flush_buf(x->f, &x->b) == 0;
    return !x->ok;
}

static int put_cp(const fp_audit_cp *cp, void *arg)
{
    export_job *x = arg;
    fp_av_write_cp_line(&x->b, cp);
    x->ncp++;
    return 0;
}

/* The records from..to widened to checkpoints: start after the last one
 * before from, end at the first one at or after to.  The scan is filled
 * in; *anchor and *have_anchor say where the bundle starts. */
static int export_range(fp_audit_snap *a, export_job *x, fp_audit_scan *q, fp_audit_cp *anchor,
                        int *have_anchor)
{
    int64_t min_id = 0, max_id = 0;
    int rc = a->bounds(a, &min_id, &max_id, x->err);
    if (rc == FP_ENOTFOUND)
        return fp_fail(x->err, FP_ENOTFOUND, "the audit log is empty: nothing to export");
    if (rc < 0)
        return rc;
    int to_given = x->to > 0;
    int64_t from = x->from <= 0 || x->from < min_id ? min_id : x->from;
    int64_t to = !to_given || x->to > max_id ? max_id : x->to;
    if (from > to)
        return fp_fail(x->err, FP_EINVAL, "no records in %lld..%lld (the log holds %lld..%lld)",
                       (long long)from, (long long)to, (long long)min_id, (long long)max_id);
    fp_audit_cp cp;
    *have_anchor = 0;
    q->from = min_id;
    q->to = to;
    if ((rc = a->cp(a, FP_CP_BEFORE_UPTO, from, anchor, x->err)) < 0)
        return rc;
    if (rc == 1 && anchor->upto_id >= min_id - 1) {
        *have_anchor = 1;
        q->from = anchor->upto_id + 1;
    }
    if (to_given) {
        if ((rc = a->cp(a, FP_CP_FROM_UPTO, to, &cp, x->err)) < 0)
            return rc;
        if (rc == 1 && cp.upto_id <= max_id)
            q->to = cp.upto_id;
    }
    /* every later checkpoint when the bundle runs to the end of the log,
     * so that a checkpoint beyond it (a truncated log) shows */
    q->cp_after = *have_anchor ? anchor->id : 0;
    q->cp_upto_min = q->from;
    q->cp_upto_max = to_given ? q->to : 0;
    return 0;
}

static int export_snap(fp_audit_snap *a, void *arg)
{
    export_job *x = arg;
    fp_audit_scan q = {.on_row = put_row, .on_cp = put_cp, .arg = x};
    fp_audit_cp anchor;
    int have_anchor = 0;
    int rc = export_range(a, x, &q, &anchor, &have_anchor);
    if (rc < 0)
        return rc;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", x->out_path);
    if (!(x->f = fopen(tmp, "w")))
        return fp_fail(x->err, FP_EIO, "create %s: %s", tmp, strerror(errno));
    write_header(&x->b, x->pk, q.from, q.to);
    if (have_anchor)
        fp_av_write_cp_line(&x->b, &anchor);
    x->ok = flush_buf(x->f, &x->b) == 0;
    if (x->ok && (rc = a->scan(a, &q, x->err)) < 0)
        x->ok = 0;
    if (x->ok) {
        fp_buf_printf(&x->b, "{\"type\":\"end\",\"records\":%lld,\"checkpoints\":%lld}\n",
                      (long long)x->nrec, (long long)x->ncp);
        x->ok = flush_buf(x->f, &x->b) == 0 && fflush(x->f) == 0 && fsync(fileno(x->f)) == 0;
    }
    if (fclose(x->f) != 0)
        x->ok = 0;
    x->f = NULL;
    if (!x->ok || rename(tmp, x->out_path) != 0) {
        if (rc == 0)
            rc = fp_fail(x->err, FP_EIO, "write %s: %s", x->out_path, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

int fp_audit_export(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN], int64_t from,
                    int64_t to, const char *out_path, int64_t *first, int64_t *last, fp_err *err)
{
    *first = *last = 0;
    export_job x = {.pk = pk,
                    .from = from,
                    .to = to,
                    .out_path = out_path,
                    .first = first,
                    .last = last,
                    .err = err};
    fp_buf_init(&x.b, 0);
    int rc = fp_av_snapshot(db_path, export_snap, &x, err);
    fp_buf_free(&x.b);
    return rc;
}

/* ---- listing ---- */

typedef struct list_job {
    int limit;
    void (*fn)(const fp_audit_row *r, void *arg);
    void *arg;
    fp_err *err;
} list_job;

static int list_snap(fp_audit_snap *a, void *arg)
{
    list_job *l = arg;
    return a->latest(a, l->limit, l->fn, l->arg, l->err);
}

int fp_audit_list(const char *db_path, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                  void *arg, fp_err *err)
{
    list_job l = {limit, fn, arg, err};
    return fp_av_snapshot(db_path, list_snap, &l, err);
}
