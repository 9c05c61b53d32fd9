/* red_forms.c — red forms (红字确认单) in the SQLite backend: a form is
 * created after its caps are checked against every other issued or open
 * form of the same blue invoice, in one transaction; moves between states
 * are audited in theirs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "../red_upstream_sql.h"

/* A stored state as of now (the table of red.h: an awaiting_* form past
 * its deadline reads as lapsed); -1 for a name the table does not know. */
static int state_now(const char *stored, int64_t expires_at, int64_t now)
{
    fp_red_state st;
    if (!stored || fp_red_state_parse(stored, &st) < 0)
        return -1;
    return (int)fp_red_state_at(st, expires_at, now);
}

/* Reads a form with its lines on connection db (writer or reader). */
static int form_read(sqlite3 *db, int64_t seller_id, const char *form_no, int64_t id,
                     fp_red_form_rec *out)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    memset(out, 0, sizeof *out);
    const char *sql = "SELECT id, form_no, blue_number, reason, initiated_by, state, created_at, "
                      "COALESCE(expires_at, 0), COALESCE(red_number, ''), total_amount, total_tax, "
                      "COALESCE(up_uuid, ''), COALESCE(up_number, ''), COALESCE(up_state, ''), "
                      "COALESCE(up_answer, '') "
                      "FROM red_forms WHERE seller_id=?1 AND (form_no=?2 OR id=?3)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, form_no ? form_no : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = FP_ENOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW)
        goto out;
    out->id = sqlite3_column_int64(st, 0);
    fp_sq_col(st, 1, out->form_no, sizeof out->form_no);
    fp_sq_col(st, 2, out->blue_number, sizeof out->blue_number);
    fp_red_reason_parse((const char *)sqlite3_column_text(st, 3), &out->reason);
    fp_sq_col(st, 4, out->initiated_by, sizeof out->initiated_by);
    fp_sq_col(st, 5, out->state, sizeof out->state);
    out->created_at = sqlite3_column_int64(st, 6);
    out->expires_at = sqlite3_column_int64(st, 7);
    fp_sq_col(st, 8, out->red_number, sizeof out->red_number);
    out->total_amount = sqlite3_column_int64(st, 9);
    out->total_tax = sqlite3_column_int64(st, 10);
    fp_sq_col(st, 11, out->up_uuid, sizeof out->up_uuid);
    fp_sq_col(st, 12, out->up_number, sizeof out->up_number);
    fp_sq_col(st, 13, out->up_state, sizeof out->up_state);
    fp_sq_col(st, 14, out->up_answer, sizeof out->up_answer);
    /* a form awaiting the other side lapses after its deadline */
    int now_st = state_now(out->state, out->expires_at, (int64_t)time(NULL));
    if (now_st >= 0)
        snprintf(out->state, sizeof out->state, "%s", fp_red_state_name((fp_red_state)now_st));
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT line, quantity, amount, tax FROM red_form_lines WHERE form_id=?1 "
            "ORDER BY line",
            -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, out->id);
    int cap = 8;
    out->lines = calloc((size_t)cap, sizeof *out->lines);
    while (out->lines && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->nlines == cap) {
            fp_red_line *nl = realloc(out->lines, sizeof *nl * (size_t)(cap *= 2));
            if (!nl)
                goto out;
            out->lines = nl;
        }
        fp_red_line *l = &out->lines[out->nlines++];
        memset(l, 0, sizeof *l);
        l->line = sqlite3_column_int(st, 0);
        const char *q = (const char *)sqlite3_column_text(st, 1);
        l->has_qty = q && *q;
        if (l->has_qty)
            fp_qty_parse(q, &l->qty);
        l->amount = sqlite3_column_int64(st, 2);
        l->tax = sqlite3_column_int64(st, 3);
    }
    rc = out->lines && step == SQLITE_DONE ? 0 : FP_EIO;
out:
    sqlite3_finalize(st);
    return rc;
}

int sq_store_red_form_get(void *be, int64_t seller_id, const char *form_no, fp_red_form_rec *out)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    int rc = form_read(r->db, seller_id, form_no, -1, out);
    fp_sq_release(s, r, NULL);
    return rc;
}

/* What the forms of blue invoice `blue` that are issued or still open took
 * from each line (1-based index into used). */
static int used_by_forms(sqlite3 *db, const char *blue, fp_red_used *used, int nused)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT f.state, COALESCE(f.expires_at, 0), l.line, l.quantity, l.amount, "
            "l.tax FROM red_forms f JOIN red_form_lines l ON l.form_id = f.id "
            "WHERE f.blue_number=?1",
            -1, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    sqlite3_bind_text(st, 1, blue, -1, SQLITE_STATIC);
    int step;
    int64_t now = (int64_t)time(NULL);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        int64_t exp = sqlite3_column_int64(st, 1);
        int line = sqlite3_column_int(st, 2);
        if (!state || line < 1 || line > nused)
            continue;
        int st_now = state_now(state, exp, now);
        if (st_now < 0 || !fp_red_holds_blue((fp_red_state)st_now))
            continue;
        fp_qty q = 0;
        const char *qs = (const char *)sqlite3_column_text(st, 3);
        if (qs && *qs)
            fp_qty_parse(qs, &q);
        used[line - 1].qty += q;
        used[line - 1].amount += sqlite3_column_int64(st, 4);
        used[line - 1].tax += sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : FP_EIO;
}

int fp_sq_red_form_insert(fp_sqlite *s, int64_t seller_id, const fp_red_form *f, const char *state,
                          int64_t expires_at, int64_t *id, char form_no[24], fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(s->wdb,
                                  "INSERT INTO red_forms(form_no, seller_id, blue_number, reason, "
                                  "initiated_by, state, created_at, expires_at, total_amount, "
                                  "total_tax) VALUES('', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                  err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, f->blue_number, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, fp_red_reason_name(f->reason), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->initiated_by_buyer ? "buyer" : "seller", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
    if (expires_at)
        sqlite3_bind_int64(st, 7, expires_at);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, f->total_amount);
    sqlite3_bind_int64(st, 9, f->total_tax);
    int rc = fp_sq_run(s->wdb, st, err);
    if (rc < 0)
        return rc;
    *id = sqlite3_last_insert_rowid(s->wdb);
    /* form numbers: RF + 18 digits of the row id (unique, never reused) */
    char sql[128];
    snprintf(form_no, 24, "RF%018lld", (long long)*id);
    snprintf(sql, sizeof sql, "UPDATE red_forms SET form_no='%s' WHERE id=%lld", form_no,
             (long long)*id);
    if ((rc = fp_sq_exec(s->wdb, sql, err)) < 0)
        return rc;
    st = fp_sq_prep(s->wdb,
                    "INSERT INTO red_form_lines(form_id, line, quantity, amount, tax) "
                    "VALUES(?1, ?2, ?3, ?4, ?5)",
                    err);
    if (!st)
        return FP_EIO;
    for (int i = 0; i < f->nlines && rc == 0; i++) {
        char q[64] = "";
        if (f->lines[i].has_qty)
            fp_qty_format(f->lines[i].qty, q, sizeof q);
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int(st, 2, f->lines[i].line);
        sqlite3_bind_text(st, 3, q, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, f->lines[i].amount);
        sqlite3_bind_int64(st, 5, f->lines[i].tax);
        if (fp_sq_step_done(st) < 0)
            rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
    }
    sqlite3_finalize(st);
    return rc;
}

/* Whether a form with the platform's uuid is here: 0 no, FP_ECONFLICT yes. */
static int uuid_taken(fp_sqlite *s, const char *uuid, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(s->wdb, "SELECT 1 FROM red_forms WHERE up_uuid=?1", err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_text(st, 1, uuid, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_ROW    ? FP_ECONFLICT
           : step == SQLITE_DONE ? 0
                                 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
}

/* The platform's uuid, number and state on form id. */
static int set_up(fp_sqlite *s, int64_t id, const fp_red_form_up *up, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(
        s->wdb, "UPDATE red_forms SET up_uuid=?1, up_number=?2, up_state=?3 WHERE id=?4", err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_text(st, 1, up->uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, up->number, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, up->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, id);
    return fp_sq_run(s->wdb, st, err);
}

/* A new form of ours (up NULL: fp_store_red_form_create), or one the
 * buyer filed on the platform (refused when its uuid is already here). */
int sq_store_red_form_adopt(void *be, int64_t seller_id, fp_red_form *f, const char *state,
                            int64_t expires_at, const fp_red_form_up *up, fp_red_form_rec *out,
                            fp_errors *es, const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    memset(out, 0, sizeof *out);
    int maxline;
    fp_red_used *used = fp_red_used_new(f, &maxline);
    if (!used)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int64_t id = 0;
    char form_no[24];
    pthread_mutex_lock(&s->wlock);
    /* the caps are checked against the other forms in the transaction
     * that stores this one: two forms of one blue cannot both pass */
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    if (up && (rc = uuid_taken(s, up->uuid, err)) < 0)
        goto rollback;
    if (used_by_forms(s->wdb, f->blue_number, used, maxline) < 0) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
        goto rollback;
    }
    if ((rc = fp_red_form_fits(f, used, maxline, es)) < 0)
        goto rollback;
    rc = fp_sq_red_form_insert(s, seller_id, f, state, expires_at, &id, form_no, err);
    if (rc == 0 && up)
        rc = set_up(s, id, up, err);
    if ((rc = fp_sq_end_audited(s, audit, form_no, state, rc, err)) == 0)
        rc = form_read(s->wdb, seller_id, NULL, id, out);
    goto unlock;
rollback:
    fp_sq_end_audited(s, NULL, NULL, NULL, rc, NULL);
unlock:
    pthread_mutex_unlock(&s->wlock);
    free(used);
    return rc;
}

int sq_store_red_form_answer(void *be, int64_t seller_id, const char *form_no, const char *action,
                             fp_red_form_rec *out, const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    char qrlx = 0;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        rc = form_read(s->wdb, seller_id, form_no, -1, out);
    int verdict = rc == 0 ? fp_red_answer_check(out, action, &qrlx) : rc;
    if (verdict == 0) {
        char sql[96];
        snprintf(sql, sizeof sql, "UPDATE red_forms SET up_answer='%c' WHERE id=%lld", qrlx,
                 (long long)out->id);
        if ((rc = fp_sq_exec(s->wdb, sql, err)) == 0 &&
            (rc = fp_sq_audit_change(s, audit, out->form_no, "pending_upstream", err)) == 0)
            snprintf(out->up_answer, sizeof out->up_answer, "%c", qrlx);
    }
    rc = fp_sq_end_audited(s, NULL, NULL, NULL, rc, err);
    pthread_mutex_unlock(&s->wlock);
    return rc == 0 ? verdict : rc;
}

int sq_store_red_form_act(void *be, int64_t seller_id, const char *form_no, const char *action,
                          fp_red_form_rec *out, const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    /* the moves are red.h's table; a form is issued by the writer, and a
     * lapse is only stored on the way to refusing another move */
    fp_red_action act;
    memset(out, 0, sizeof *out);
    if (fp_red_action_parse(action, &act) < 0 || act == FP_RED_ACT_ISSUE || act == FP_RED_ACT_LAPSE)
        return fp_fail(err, FP_EINVAL, "unknown action %s", action);
    /* the move and its audit record: one transaction */
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        rc = form_read(s->wdb, seller_id, form_no, -1, out);
    int refused = 0;
    if (rc == 0) {
        fp_red_state from;
        int next =
            fp_red_state_parse(out->state, &from) < 0 ? FP_EINVAL : fp_red_transition(from, act);
        int allowed = next >= 0;
        /* a lapse that was only computed on read is stored (and audited)
         * on the way to refusing; anything else refused changes nothing */
        const char *to = allowed                         ? fp_red_state_name((fp_red_state)next)
                         : !strcmp(out->state, "lapsed") ? "lapsed"
                                                         : NULL;
        refused = !allowed;
        if (to) {
            char sql[128];
            snprintf(sql, sizeof sql, "UPDATE red_forms SET state='%s' WHERE id=%lld", to,
                     (long long)out->id);
            fp_audit_rec lapse;
            const fp_audit_rec *a = audit;
            if (audit && !allowed) {
                lapse = *audit;
                lapse.action = "red_form.lapse";
                lapse.outcome = "lapsed";
                a = &lapse;
            }
            if ((rc = fp_sq_exec(s->wdb, sql, err)) == 0 &&
                (rc = fp_sq_audit_change(s, a, out->form_no, to, err)) == 0 && allowed)
                snprintf(out->state, sizeof out->state, "%s", to);
        }
    }
    rc = fp_sq_end_audited(s, NULL, NULL, NULL, rc, err); /* the record: above, when any */
    if (rc == 0 && refused)
        rc = FP_ECONFLICT;
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_store_red_forms_upstream(void *be, void (*fn)(const fp_red_form_due *d, void *arg),
                                void *arg)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = NULL;
    int step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(r->db, FP_RED_UPSTREAM_DUE, -1, &st, NULL) == SQLITE_OK)
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_red_form_due d;
            memset(&d, 0, sizeof d);
            d.seller_id = sqlite3_column_int64(st, 0);
            fp_sq_col(st, 1, d.form_no, sizeof d.form_no);
            fp_sq_col(st, 2, d.up_uuid, sizeof d.up_uuid);
            fp_sq_col(st, 3, d.state, sizeof d.state);
            fp_sq_col(st, 4, d.answer, sizeof d.answer);
            fn(&d, arg);
        }
    sqlite3_finalize(st);
    fp_sq_release(s, r, NULL);
    return step == SQLITE_DONE ? 0 : FP_EIO;
}

int sq_store_red_form_upstream(void *be, int64_t seller_id, const char *form_no,
                               const fp_red_form_up *u, const char *from, const char *to,
                               const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    if (rc == 0 &&
        !(st = fp_sq_prep(s->wdb,
                          "UPDATE red_forms SET up_uuid=?1, up_number=?2, up_state=?3, "
                          "state=COALESCE(?4, state), up_answer=CASE WHEN ?4 IS NULL THEN "
                          "up_answer END WHERE seller_id=?5 AND form_no=?6 AND state=?7",
                          err)))
        rc = FP_EIO;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, u->uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->number, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, u->state, -1, SQLITE_STATIC);
        if (to)
            sqlite3_bind_text(st, 4, to, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, seller_id);
        sqlite3_bind_text(st, 6, form_no, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, from, -1, SQLITE_STATIC);
        if ((rc = fp_sq_run(s->wdb, st, err)) == 0 && sqlite3_changes(s->wdb) == 0)
            rc = FP_ECONFLICT; /* moved meanwhile, or gone: the keeper looks again */
    }
    rc = fp_sq_end_audited(s, audit, form_no, to ? to : from, rc, err);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
