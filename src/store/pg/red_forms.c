/* red_forms.c — red forms (红字确认单) in the PostgreSQL backend (as
 * src/store/sqlite/red_forms.c).  A form is created after its caps are
 * checked against every other issued or open form of the same blue
 * invoice, in one transaction that first locks the blue invoice's row
 * (FOR UPDATE): two nodes creating forms of one blue take turns, so both
 * cannot pass the caps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "../red_upstream_sql.h"

static int state_now(const char *stored, int64_t expires_at, int64_t now)
{
    fp_red_state st;
    if (!stored || fp_red_state_parse(stored, &st) < 0)
        return -1;
    return (int)fp_red_state_at(st, expires_at, now);
}

/* A form with its lines, by number or id, on connection db. */
static int form_read(PGconn *db, int64_t seller_id, const char *form_no, int64_t id,
                     fp_red_form_rec *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, form_no ? form_no : "");
    pg_i64(&p, id);
    int rc;
    PGresult *r =
        pg_q(db,
             "SELECT id, form_no, blue_number, reason, initiated_by, state, created_at, "
             "coalesce(expires_at, 0), coalesce(red_number, ''), total_amount, "
             "total_tax, coalesce(up_uuid, ''), coalesce(up_number, ''), "
             "coalesce(up_state, ''), coalesce(up_answer, '') FROM red_forms WHERE seller_id=$1 "
             "AND (form_no=$2 OR id=$3)",
             &p, &rc, NULL);
    if (!r)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return FP_ENOTFOUND;
    }
    out->id = pg_int(r, 0, 0);
    pg_col(r, 0, 1, out->form_no, sizeof out->form_no);
    pg_col(r, 0, 2, out->blue_number, sizeof out->blue_number);
    fp_red_reason_parse(PQgetvalue(r, 0, 3), &out->reason);
    pg_col(r, 0, 4, out->initiated_by, sizeof out->initiated_by);
    pg_col(r, 0, 5, out->state, sizeof out->state);
    out->created_at = pg_int(r, 0, 6);
    out->expires_at = pg_int(r, 0, 7);
    pg_col(r, 0, 8, out->red_number, sizeof out->red_number);
    out->total_amount = pg_int(r, 0, 9);
    out->total_tax = pg_int(r, 0, 10);
    pg_col(r, 0, 11, out->up_uuid, sizeof out->up_uuid);
    pg_col(r, 0, 12, out->up_number, sizeof out->up_number);
    pg_col(r, 0, 13, out->up_state, sizeof out->up_state);
    pg_col(r, 0, 14, out->up_answer, sizeof out->up_answer);
    PQclear(r);
    int now_st = state_now(out->state, out->expires_at, (int64_t)time(NULL));
    if (now_st >= 0)
        snprintf(out->state, sizeof out->state, "%s", fp_red_state_name((fp_red_state)now_st));
    pg_params l = {0};
    pg_i64(&l, out->id);
    r = pg_q(db,
             "SELECT line, quantity, amount, tax FROM red_form_lines WHERE form_id=$1 "
             "ORDER BY line",
             &l, &rc, NULL);
    if (!r)
        return rc;
    int n = PQntuples(r);
    out->lines = calloc((size_t)(n > 0 ? n : 1), sizeof *out->lines);
    for (int i = 0; out->lines && i < n; i++) {
        fp_red_line *x = &out->lines[out->nlines++];
        x->line = (int)pg_int(r, i, 0);
        const char *q = PQgetvalue(r, i, 1);
        x->has_qty = *q != 0;
        if (x->has_qty)
            fp_qty_parse(q, &x->qty);
        x->amount = pg_int(r, i, 2);
        x->tax = pg_int(r, i, 3);
    }
    PQclear(r);
    return out->lines ? 0 : FP_ENOMEM;
}

int pg_store_red_form_get(void *be, int64_t seller_id, const char *form_no, fp_red_form_rec *out)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc = form_read(c, seller_id, form_no, -1, out);
    pg_rrelease(s, c);
    return rc;
}

/* What the issued or open forms of blue invoice `blue` took per line. */
static int used_by_forms(fp_pg *s, const char *blue, fp_red_used *used, int nused, fp_err *err)
{
    pg_params p = {0};
    pg_text(&p, blue);
    int rc;
    PGresult *r = pg_q(s->w,
                       "SELECT f.state, coalesce(f.expires_at, 0), l.line, l.quantity, l.amount, "
                       "l.tax FROM red_forms f JOIN red_form_lines l ON l.form_id = f.id "
                       "WHERE f.blue_number=$1",
                       &p, &rc, err);
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        int line = (int)pg_int(r, i, 2);
        int st_now = state_now(PQgetvalue(r, i, 0), pg_int(r, i, 1), now);
        if (line < 1 || line > nused || st_now < 0 || !fp_red_holds_blue((fp_red_state)st_now))
            continue;
        fp_qty q = 0;
        const char *qs = PQgetvalue(r, i, 3);
        if (*qs)
            fp_qty_parse(qs, &q);
        used[line - 1].qty += q;
        used[line - 1].amount += pg_int(r, i, 4);
        used[line - 1].tax += pg_int(r, i, 5);
    }
    PQclear(r);
    return rc;
}

static int form_insert(fp_pg *s, int64_t seller_id, const fp_red_form *f, const char *state,
                       int64_t expires_at, int64_t *id, char form_no[24], fp_err *err)
{
    int rc;
    PGresult *r =
        pg_q(s->w, "SELECT nextval(pg_get_serial_sequence('red_forms', 'id'))", NULL, &rc, err);
    if (!r)
        return rc;
    *id = pg_int(r, 0, 0);
    PQclear(r);
    /* form numbers: RF + 18 digits of the row id (unique, never reused) */
    snprintf(form_no, 24, "RF%018lld", (long long)*id);
    pg_params p = {0};
    pg_i64(&p, *id);
    pg_text(&p, form_no);
    pg_i64(&p, seller_id);
    pg_text(&p, f->blue_number);
    pg_text(&p, fp_red_reason_name(f->reason));
    pg_text(&p, f->initiated_by_buyer ? "buyer" : "seller");
    pg_text(&p, state);
    pg_i64(&p, (int64_t)time(NULL));
    if (expires_at)
        pg_i64(&p, expires_at);
    else
        pg_i64_null(&p);
    pg_i64(&p, f->total_amount);
    pg_i64(&p, f->total_tax);
    if ((rc = pg_exec(s->w,
                      "INSERT INTO red_forms(id, form_no, seller_id, blue_number, reason, "
                      "initiated_by, state, created_at, expires_at, total_amount, total_tax) "
                      "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                      &p, err)) < 0)
        return rc;
    for (int i = 0; i < f->nlines && rc == 0; i++) {
        char q[64] = "";
        if (f->lines[i].has_qty)
            fp_qty_format(f->lines[i].qty, q, sizeof q);
        pg_params l = {0};
        pg_i64(&l, *id);
        pg_i64(&l, f->lines[i].line);
        pg_text(&l, q);
        pg_i64(&l, f->lines[i].amount);
        pg_i64(&l, f->lines[i].tax);
        rc = pg_exec(s->w,
                     "INSERT INTO red_form_lines(form_id, line, quantity, amount, tax) "
                     "VALUES($1, $2, $3, $4, $5)",
                     &l, err);
    }
    return rc;
}

/* Whether a form with the platform's uuid is here (0 no, FP_ECONFLICT
 * yes), under the blue invoice's lock taken before. */
static int uuid_taken(fp_pg *s, const char *uuid, fp_err *err)
{
    pg_params p = {0};
    pg_text(&p, uuid);
    int rc;
    PGresult *r = pg_q(s->w, "SELECT 1 FROM red_forms WHERE up_uuid=$1", &p, &rc, err);
    if (r && PQntuples(r) > 0)
        rc = FP_ECONFLICT;
    PQclear(r);
    return rc;
}

/* The platform's uuid, number and state on form id. */
static int set_up(fp_pg *s, int64_t id, const fp_red_form_up *up, fp_err *err)
{
    pg_params p = {0};
    pg_text(&p, up->uuid);
    pg_text(&p, up->number);
    pg_text(&p, up->state);
    pg_i64(&p, id);
    return pg_exec(s->w, "UPDATE red_forms SET up_uuid=$1, up_number=$2, up_state=$3 WHERE id=$4",
                   &p, err);
}

/* A new form of ours (up NULL: fp_store_red_form_create), or one the
 * buyer filed on the platform (refused when its uuid is already here). */
int pg_store_red_form_adopt(void *be, int64_t seller_id, fp_red_form *f, const char *state,
                            int64_t expires_at, const fp_red_form_up *up, fp_red_form_rec *out,
                            fp_errors *es, const fp_audit_rec *audit, fp_err *err)
{
    fp_pg *s = be;
    memset(out, 0, sizeof *out);
    int maxline;
    fp_red_used *used = fp_red_used_new(f, &maxline);
    if (!used)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int64_t id = 0;
    char form_no[24];
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_text(&p, f->blue_number);
        rc = pg_exec(s->w, "SELECT 1 FROM invoices WHERE number=$1 FOR UPDATE", &p, err);
    }
    if (rc == 0 && up)
        rc = uuid_taken(s, up->uuid, err);
    if (rc == 0)
        rc = used_by_forms(s, f->blue_number, used, maxline, err);
    if (rc == 0)
        rc = fp_red_form_fits(f, used, maxline, es);
    if (rc == 0)
        rc = form_insert(s, seller_id, f, state, expires_at, &id, form_no, err);
    if (rc == 0 && up)
        rc = set_up(s, id, up, err);
    rc = pg_end_audited(s, audit, form_no, state, rc, err);
    if (rc == 0)
        rc = form_read(s->w, seller_id, NULL, id, out);
    pthread_mutex_unlock(&s->wlock);
    free(used);
    return rc;
}

/* Opens a transaction (s->wlock held by the caller) with the form's row
 * locked, so a move on another node waits for this one, and reads it. */
static int form_lock(fp_pg *s, int64_t seller_id, const char *form_no, fp_red_form_rec *out,
                     fp_err *err)
{
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_i64(&p, seller_id);
        pg_text(&p, form_no);
        rc = pg_exec(s->w, "SELECT 1 FROM red_forms WHERE seller_id=$1 AND form_no=$2 FOR UPDATE",
                     &p, err);
    }
    if (rc == 0)
        rc = form_read(s->w, seller_id, form_no, -1, out);
    return rc;
}

int pg_store_red_form_answer(void *be, int64_t seller_id, const char *form_no, const char *action,
                             fp_red_form_rec *out, const fp_audit_rec *audit, fp_err *err)
{
    fp_pg *s = be;
    char qrlx = 0;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->wlock);
    int verdict = 0, rc = form_lock(s, seller_id, form_no, out, err);
    if (rc == 0 && (verdict = fp_red_answer_check(out, action, &qrlx)) == 0) {
        char a[2] = {qrlx, 0};
        pg_params u = {0};
        pg_i64(&u, out->id);
        pg_text(&u, a);
        if ((rc = pg_exec(s->w, "UPDATE red_forms SET up_answer=$2 WHERE id=$1", &u, err)) == 0 &&
            (rc = pg_audit_change(s, audit, out->form_no, "pending_upstream", err)) == 0)
            snprintf(out->up_answer, sizeof out->up_answer, "%s", a);
    }
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    pthread_mutex_unlock(&s->wlock);
    return rc == 0 ? verdict : rc;
}

int pg_store_red_form_act(void *be, int64_t seller_id, const char *form_no, const char *action,
                          fp_red_form_rec *out, const fp_audit_rec *audit, fp_err *err)
{
    fp_pg *s = be;
    fp_red_action act;
    memset(out, 0, sizeof *out);
    if (fp_red_action_parse(action, &act) < 0 || act == FP_RED_ACT_ISSUE || act == FP_RED_ACT_LAPSE)
        return fp_fail(err, FP_EINVAL, "unknown action %s", action);
    pthread_mutex_lock(&s->wlock);
    int refused = 0, rc = form_lock(s, seller_id, form_no, out, err);
    if (rc == 0) {
        fp_red_state from;
        int next =
            fp_red_state_parse(out->state, &from) < 0 ? FP_EINVAL : fp_red_transition(from, act);
        int allowed = next >= 0;
        const char *to = allowed                         ? fp_red_state_name((fp_red_state)next)
                         : !strcmp(out->state, "lapsed") ? "lapsed"
                                                         : NULL;
        refused = !allowed;
        if (to) {
            fp_audit_rec lapse;
            const fp_audit_rec *a = audit;
            if (audit && !allowed) {
                lapse = *audit;
                lapse.action = "red_form.lapse";
                lapse.outcome = "lapsed";
                a = &lapse;
            }
            pg_params u = {0};
            pg_i64(&u, out->id);
            pg_text(&u, to);
            if ((rc = pg_exec(s->w, "UPDATE red_forms SET state=$2 WHERE id=$1", &u, err)) == 0 &&
                (rc = pg_audit_change(s, a, out->form_no, to, err)) == 0 && allowed)
                snprintf(out->state, sizeof out->state, "%s", to);
        }
    }
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    if (rc == 0 && refused)
        rc = FP_ECONFLICT;
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_store_red_forms_upstream(void *be, void (*fn)(const fp_red_form_due *d, void *arg),
                                void *arg)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c, FP_RED_UPSTREAM_DUE, NULL, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_red_form_due d;
        memset(&d, 0, sizeof d);
        d.seller_id = pg_int(r, i, 0);
        pg_col(r, i, 1, d.form_no, sizeof d.form_no);
        pg_col(r, i, 2, d.up_uuid, sizeof d.up_uuid);
        pg_col(r, i, 3, d.state, sizeof d.state);
        pg_col(r, i, 4, d.answer, sizeof d.answer);
        fn(&d, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_red_form_upstream(void *be, int64_t seller_id, const char *form_no,
                               const fp_red_form_up *u, const char *from, const char *to,
                               const fp_audit_rec *audit, fp_err *err)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_text(&p, u->uuid);
        pg_text(&p, u->number);
        pg_text(&p, u->state);
        pg_text(&p, to ? to : "");
        pg_i64(&p, seller_id);
        pg_text(&p, form_no);
        pg_text(&p, from);
        PGresult *r = pg_q(s->w,
                           "UPDATE red_forms SET up_uuid=$1, up_number=$2, up_state=$3, "
                           "state=coalesce(nullif($4, ''), state), up_answer=CASE WHEN $4='' "
                           "THEN up_answer END WHERE seller_id=$5 AND "
                           "form_no=$6 AND state=$7 RETURNING id",
                           &p, &rc, err);
        if (r && PQntuples(r) == 0)
            rc = FP_ECONFLICT; /* moved meanwhile, or gone: the keeper looks again */
        PQclear(r);
    }
    rc = pg_end_audited(s, audit, form_no, to ? to : from, rc, err);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
