/* handlers_red.c — red forms (红字确认单): create, read, confirm / reject /
 * withdraw, and the red invoice (issued through handlers_invoices.c's
 * path; rules: docs/domain.md). */
#include "internal.h"
#include "fapiao/crypto.h"
#include "fapiao/money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum MHD_Result form_response(fp_req *r, int status, const fp_red_form_rec *rec)
{
    char *blue = NULL;
    size_t blen = 0;
    fp_red_form f;
    fp_err err = {0};
    memset(&f, 0, sizeof f);
    if (fp_store_get_invoice(r->srv->o.store, r->claims.seller_id, rec->blue_number, &blue, &blen) <
            0 ||
        fp_red_form_load(blue, blen, rec->reason, rec->lines, rec->nlines, &f, &err) < 0) {
        free(blue);
        fp_red_form_clear(&f);
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    }
    free(blue);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 16u << 20);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "form_id", rec->form_no);
    fp_jw_kstr(&w, "state", rec->state);
    fp_jw_kstr(&w, "blue_number", rec->blue_number);
    fp_jw_kstr(&w, "invoice_type", f.invoice_type);
    fp_jw_kstr(&w, "reason", fp_red_reason_name(rec->reason));
    fp_jw_kstr(&w, "initiated_by", rec->initiated_by);
    fp_jw_kint(&w, "created_at", rec->created_at);
    if (rec->expires_at)
        fp_jw_kint(&w, "expires_at", rec->expires_at);
    if (rec->red_number[0])
        fp_jw_kstr(&w, "red_number", rec->red_number);
    if (rec->up_uuid[0]) { /* filed with the tax platform (docs/upstream.md "Red forms") */
        fp_jw_key(&w, "upstream");
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "uuid", rec->up_uuid);
        fp_jw_kstr(&w, "number", rec->up_number);
        fp_jw_kstr(&w, "state", rec->up_state);
        if (rec->up_answer[0]) /* ours, not yet taken by the platform */
            fp_jw_kstr(&w, "answer", rec->up_answer);
        fp_jw_obj_close(&w);
    }
    fp_jw_key(&w, "items");
    fp_jw_arr_open(&w);
    for (int i = 0; i < f.nlines; i++) {
        const fp_red_line *l = &f.lines[i];
        char q[64], rate[16];
        fp_jw_obj_open(&w);
        fp_jw_kint(&w, "line", l->line);
        fp_jw_kstr(&w, "name", l->name);
        if (l->has_qty) {
            fp_qty_format(l->qty, q, sizeof q);
            fp_jw_kstr(&w, "quantity", q);
            fp_jw_kstr(&w, "unit_price", l->unit_price);
        }
        fp_jw_kmoney(&w, "amount", l->amount);
        fp_rate_format(l->rate_bp, rate, sizeof rate);
        fp_jw_kstr(&w, "tax_rate", rate);
        fp_jw_kmoney(&w, "tax", l->tax);
        fp_jw_kmoney(&w, "amount_with_tax", l->amount + l->tax);
        fp_jw_obj_close(&w);
    }
    fp_jw_arr_close(&w);
    fp_jw_kmoney(&w, "total_amount", rec->total_amount);
    fp_jw_kmoney(&w, "total_tax", rec->total_tax);
    fp_jw_kmoney(&w, "total_with_tax", rec->total_amount + rec->total_tax);
    fp_jw_obj_close(&w);
    fp_red_form_clear(&f);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    if (status == 201) {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/red-forms/%s", rec->form_no);
        const char *hdrs[] = {"Location", loc, NULL};
        return fp_respond(r, 201, "application/json", body, len, hdrs);
    }
    return fp_respond_json(r, status, body, len);
}

/* POST /v1/invoices/{number}/red-forms */
enum MHD_Result fp_h_red_form_create(fp_req *r)
{
    fp_server *s = r->srv;
    if (!fp_req_is_json(fp_req_header(r, "Content-Type")))
        return fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
    char *blue = NULL;
    size_t blen = 0;
    enum MHD_Result res;
    if (fp_load_invoice(r, r->param, &blue, &blen, &res))
        return res;
    fp_red_form f;
    fp_errors *es = calloc(1, sizeof *es);
    if (!es) {
        free(blue);
        return MHD_NO;
    }
    int rc;
    if (fp_red_form_parse(r->body.p ? r->body.p : "", r->body.len, blue, blen, &f, es) < 0) {
        res = fp_problem_errors(r, es);
    } else {
        /* the first state and the 72 h the other side has to confirm:
         * red.h's table (docs/domain.md §8) */
        fp_red_state st0 = fp_red_initial(f.initiated_by_buyer, f.buyer_has_deducted);
        const char *state = fp_red_state_name(st0);
        int64_t expires = fp_red_deadline(st0, (int64_t)time(NULL));
        fp_red_form_rec rec;
        fp_err err = {0};
        fp_audit_rec a = fp_req_audit(r, "red_form.create");
        rc = fp_store_red_form_create(s->o.store, r->claims.seller_id, &f, state, expires, &rec, es,
                                      &a, &err);
        if (rc == FP_ERANGE)
            res = fp_problem(r, FPC_RED_EXCEEDS_BLUE, NULL, NULL, es);
        else if (rc < 0)
            res = fp_problem(r, FPC_DEGRADED, "红字确认单未能保存", err.msg, NULL);
        else
            res = form_response(r, 201, &rec);
        fp_red_form_rec_clear(&rec);
    }
    fp_red_form_clear(&f);
    free(es);
    free(blue);
    return res;
}

/* GET /v1/red-forms/{id} */
enum MHD_Result fp_h_red_form_get(fp_req *r)
{
    fp_red_form_rec rec;
    int rc = fp_store_red_form_get(r->srv->o.store, r->claims.seller_id, r->param, &rec);
    enum MHD_Result res = rc == FP_ENOTFOUND ? fp_problem(r, FPC_NOT_FOUND, "红字确认单不存在",
                                                          "No such red form", NULL)
                          : rc < 0           ? fp_problem(r, FPC_DEGRADED, NULL, NULL, NULL)
                                             : form_response(r, 200, &rec);
    fp_red_form_rec_clear(&rec);
    return res;
}

/* POST /v1/red-forms/{id}/confirm|reject|withdraw: the action is the last
 * path segment of the route. */
enum MHD_Result fp_h_red_form_act(fp_req *r)
{
    const char *action = strrchr(r->route->pattern, '/') + 1;
    fp_red_form_rec rec;
    fp_err err = {0};
    char what[32];
    snprintf(what, sizeof what, "red_form.%s", action);
    fp_audit_rec a = fp_req_audit(r, what);
    /* a filed form is answered on the platform: the red keeper sends it
     * (202), the state follows the platform's (docs/upstream.md) */
    int rc = r->srv->o.upstream ? fp_store_red_form_answer(r->srv->o.store, r->claims.seller_id,
                                                           r->param, action, &rec, &a, &err)
                                : 1;
    int queued = rc == 0;
    if (rc == 1) {
        fp_red_form_rec_clear(&rec);
        rc = fp_store_red_form_act(r->srv->o.store, r->claims.seller_id, r->param, action, &rec, &a,
                                   &err);
    }
    enum MHD_Result res;
    if (rc == FP_ENOTFOUND) {
        res = fp_problem(r, FPC_NOT_FOUND, "红字确认单不存在", "No such red form", NULL);
    } else if (rc == FP_ECONFLICT) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "红字确认单当前状态为 %s，不能执行 %s", rec.state, action);
        snprintf(en, sizeof en, "The red form is %s; %s is not possible", rec.state, action);
        res = fp_problem(r, FPC_RED_FORM_STATE, zh, en, NULL);
    } else if (rc < 0) {
        res = fp_problem(r, FPC_DEGRADED, NULL, err.msg, NULL);
    } else {
        res = form_response(r, queued ? 202 : 200, &rec);
    }
    fp_red_form_rec_clear(&rec);
    return res;
}

static int prepare_red(fp_req *r, const char *key, const char *issued_at, const fp_seller *seller,
                       fp_issue_req *ir, enum MHD_Result *res)
{
    fp_red_form_rec rec;
    int rc = fp_store_red_form_get(r->srv->o.store, r->claims.seller_id, r->param, &rec);
    if (rc < 0) {
        *res = rc == FP_ENOTFOUND
                   ? fp_problem(r, FPC_NOT_FOUND, "红字确认单不存在", "No such red form", NULL)
                   : fp_problem(r, FPC_DEGRADED, NULL, NULL, NULL);
        return 1;
    }
    /* issuable forms go on, and issued ones: a retry with the same key is
     * a replay (red.h's table) */
    fp_red_state st;
    /* with the platform configured, a form it has not got yet (no uuid)
     * cannot be issued on: the red invoice's upload names the form */
    int unfiled = r->srv->o.upstream && !rec.up_uuid[0];
    if (fp_red_state_parse(rec.state, &st) < 0 ||
        (!fp_red_issuable(st) && st != FP_RED_ST_ISSUED) || (unfiled && st != FP_RED_ST_ISSUED)) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "红字确认单当前状态为 %s%s，不能开具红字发票", rec.state,
                 unfiled ? "（尚未提交至税务平台）" : "");
        snprintf(en, sizeof en, "The red form is %s%s; no red invoice can be issued", rec.state,
                 unfiled ? " (not yet filed with the tax platform)" : "");
        *res = fp_problem(r, FPC_RED_FORM_STATE, zh, en, NULL);
        fp_red_form_rec_clear(&rec);
        return 1;
    }
    char *blue = NULL;
    size_t blen = 0;
    fp_red_form f;
    fp_err err = {0};
    memset(&f, 0, sizeof f);
    int bad = fp_store_get_invoice(r->srv->o.store, r->claims.seller_id, rec.blue_number, &blue,
                                   &blen) < 0 ||
              fp_red_form_load(blue, blen, rec.reason, rec.lines, rec.nlines, &f, &err) < 0 ||
              fp_red_render(&f, seller, key, rec.form_no, issued_at, &ir->doc) < 0;
    if (bad) {
        *res = fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    } else {
        /* the request is the form: same key + same form replays */
        char what[64];
        snprintf(what, sizeof what, "red-form:%s", rec.form_no);
        fp_sha256(what, strlen(what), ir->request_hash);
        memcpy(ir->invoice_type, f.invoice_type, 3);
        const cJSON *buyer = cJSON_GetObjectItemCaseSensitive(f.blue, "buyer");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(buyer, "tax_id");
        snprintf(ir->buyer_tax_id, sizeof ir->buyer_tax_id, "%s",
                 cJSON_IsString(tid) ? tid->valuestring : "");
        ir->total_with_tax = f.total_amount + f.total_tax;
        /* the credit line (credit.h): a red gives back within its blue's month */
        ir->total_amount = f.total_amount;
        const cJSON *bat = cJSON_GetObjectItemCaseSensitive(f.blue, "issued_at");
        if (cJSON_IsString(bat) && strlen(bat->valuestring) >= 7)
            snprintf(ir->blue_month, sizeof ir->blue_month, "%.4s%.2s", bat->valuestring,
                     bat->valuestring + 5);
        ir->lines = f.nlines;
        ir->red_form_id = rec.id;
        snprintf(ir->original_number, sizeof ir->original_number, "%s", rec.blue_number);
    }
    free(blue);
    fp_red_form_clear(&f);
    fp_red_form_rec_clear(&rec);
    return bad;
}

/* POST /v1/red-forms/{id}/invoice (Idempotency-Key): the red invoice. */
enum MHD_Result fp_h_red_invoice(fp_req *r)
{
    return fp_issue_common(r, prepare_red);
}
