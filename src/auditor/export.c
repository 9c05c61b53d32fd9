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

int fp_audit_export(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN], int64_t from,
                    int64_t to, const char *out_path, int64_t *first, int64_t *last, fp_err *err)
{
    *first = *last = 0;
    sqlite3 *db = NULL;
    int rc = fp_av_open_ro(db_path, &db, err);
    if (rc < 0)
        return rc;
    char tmp[4200];
    FILE *f = NULL;
    sqlite3_stmt *rs = NULL, *cs = NULL;
    fp_buf b;
    fp_buf_init(&b, 0);
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        goto out;
    }
    int64_t min_id = 0, max_id = 0;
    int none = 1;
    if ((rc = fp_av_int_query(db, "SELECT min(id) FROM audit", &min_id, &none, err)) < 0 ||
        (!none && (rc = fp_av_int_query(db, "SELECT max(id) FROM audit", &max_id, &none, err)) < 0))
        goto out;
    if (none) {
        rc = fp_fail(err, FP_ENOTFOUND, "the audit log is empty: nothing to export");
        goto out;
    }
    int to_given = to > 0;
    if (from <= 0 || from < min_id)
        from = min_id;
    if (!to_given || to > max_id)
        to = max_id;
    if (from > to) {
        rc = fp_fail(err, FP_EINVAL, "no records in %lld..%lld (the log holds %lld..%lld)",
                     (long long)from, (long long)to, (long long)min_id, (long long)max_id);
        goto out;
    }
    /* widen to checkpoints: start after the last one before `from`, end at
     * the first one at or after `to` */
    fp_audit_cp anchor, cp;
    int have_anchor = 0;
    int64_t start = min_id, end = to;
    if ((rc = fp_av_cp_query(db, "WHERE upto_id < ?1 ORDER BY upto_id DESC LIMIT 1", from, &anchor,
                             err)) < 0)
        goto out;
    if (rc == 1 && anchor.upto_id >= min_id - 1) {
        have_anchor = 1;
        start = anchor.upto_id + 1;
    }
    if (to_given) {
        if ((rc = fp_av_cp_query(db, "WHERE upto_id >= ?1 ORDER BY upto_id LIMIT 1", to, &cp,
                                 err)) < 0)
            goto out;
        if (rc == 1 && cp.upto_id <= max_id)
            end = cp.upto_id;
    }
    rs = fp_av_prep(
        db,
        "SELECT id, ts, actor, action, target, request_id, client_ip, outcome, seller_id, "
        "client_request_id, prev_hash, hash FROM audit WHERE id >= ?1 AND id <= ?2 "
        "ORDER BY id",
        err);
    /* every later checkpoint when the bundle runs to the end of the log, so
     * that a checkpoint beyond it (a truncated log) shows */
    cs =
        rs ? fp_av_prep(db,
                        "SELECT id, upto_id, upto_hash, ts, signature FROM audit_checkpoints "
                        "WHERE id > ?1 AND upto_id >= ?2 AND (?3 = 0 OR upto_id <= ?4) ORDER BY id",
                        err)
           : NULL;
    if (!cs) {
        rc = FP_EIO;
        goto out;
    }
    sqlite3_bind_int64(rs, 1, start);
    sqlite3_bind_int64(rs, 2, end);
    sqlite3_bind_int64(cs, 1, have_anchor ? anchor.id : 0);
    sqlite3_bind_int64(cs, 2, start);
    sqlite3_bind_int(cs, 3, to_given);
    sqlite3_bind_int64(cs, 4, end);

    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    if (!(f = fopen(tmp, "w"))) {
        rc = fp_fail(err, FP_EIO, "create %s: %s", tmp, strerror(errno));
        goto out;
    }
    write_header(&b, pk, start, end);
    if (have_anchor)
        fp_av_write_cp_line(&b, &anchor);
    int ok = flush_buf(f, &b) == 0;
    int64_t nrec = 0, ncp = 0;
    int cstep = sqlite3_step(cs), rstep = SQLITE_DONE;
    if (cstep == SQLITE_ROW)
        fp_av_cp_from_stmt(cs, &cp);
    fp_audit_row row;
    while (ok && (rstep = sqlite3_step(rs)) == SQLITE_ROW) {
        fp_av_row_from_stmt(rs, &row);
        while (cstep == SQLITE_ROW && cp.upto_id < row.id) {
            fp_av_write_cp_line(&b, &cp);
            ncp++;
            if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
                fp_av_cp_from_stmt(cs, &cp);
        }
        write_rec_line(&b, &row);
        if (!nrec++)
            *first = row.id;
        *last = row.id;
        ok = flush_buf(f, &b) == 0;
    }
    while (ok && cstep == SQLITE_ROW) {
        fp_av_write_cp_line(&b, &cp);
        ncp++;
        if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
            fp_av_cp_from_stmt(cs, &cp);
    }
    if (ok && (rstep != SQLITE_DONE || cstep != SQLITE_DONE)) {
        rc = fp_fail(err, FP_EIO, "reading the audit log: %s", sqlite3_errmsg(db));
        goto out;
    }
    fp_buf_printf(&b, "{\"type\":\"end\",\"records\":%lld,\"checkpoints\":%lld}\n", (long long)nrec,
                  (long long)ncp);
    ok = ok && flush_buf(f, &b) == 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    f = NULL;
    if (!ok || rename(tmp, out_path) != 0) {
        rc = fp_fail(err, FP_EIO, "write %s: %s", out_path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    fp_buf_free(&b);
    sqlite3_finalize(rs);
    sqlite3_finalize(cs);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* ---- listing ---- */

int fp_audit_list(const char *db_path, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                  void *arg, fp_err *err)
{
    sqlite3 *db = NULL;
    int rc = fp_av_open_ro(db_path, &db, err);
    if (rc < 0)
        return rc;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM audit ORDER BY id DESC LIMIT ?1", fp_av_rec_cols);
    sqlite3_stmt *st = fp_av_prep(db, sql, err);
    if (st) {
        sqlite3_bind_int(st, 1, limit);
        int step;
        fp_audit_row r;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_av_row_from_stmt(st, &r);
            fn(&r, arg);
        }
        rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    } else {
        rc = FP_EIO;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
