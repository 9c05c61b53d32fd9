/* red.c — red forms checked against their blue invoice, per-line caps, and
 * the red invoice document.  Works on the stored blue document (JSON), so a
 * red form never depends on anything but what the blue invoice said.
 *
 * Red lines are reversed at net value and the last part takes the rest;
 * docs/domain.md explains the rules and why. */
#include "fapiao/red.h"
#include "fapiao/money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the red form's life: one table (red.h draws it) ---- */

static const struct {
    const char *name;
    unsigned open : 1;     /* may still move */
    unsigned issuable : 1; /* a red invoice may consume it */
    unsigned awaiting : 1; /* waits for the other side, 72 h deadline */
} states[FP_RED_ST_COUNT] = {
    [FP_RED_ST_NO_CONFIRMATION_NEEDED] = {"no_confirmation_needed", 1, 1, 0},
    [FP_RED_ST_AWAITING_BUYER] = {"awaiting_buyer", 1, 0, 1},
    [FP_RED_ST_AWAITING_SELLER] = {"awaiting_seller", 1, 0, 1},
    [FP_RED_ST_CONFIRMED] = {"confirmed", 1, 1, 0},
    [FP_RED_ST_REJECTED] = {"rejected", 0, 0, 0},
    [FP_RED_ST_WITHDRAWN] = {"withdrawn", 0, 0, 0},
    [FP_RED_ST_LAPSED] = {"lapsed", 0, 0, 0},
    [FP_RED_ST_ISSUED] = {"issued", 0, 0, 0},
};

static const char *const actions[FP_RED_ACT_COUNT] = {
    [FP_RED_ACT_CONFIRM] = "confirm",   [FP_RED_ACT_REJECT] = "reject",
    [FP_RED_ACT_WITHDRAW] = "withdraw", [FP_RED_ACT_ISSUE] = "issue",
    [FP_RED_ACT_LAPSE] = "lapse",
};

/* moves[action][from] = to + 1; 0: no such move */
#define TO(s) ((s) + 1)
static const unsigned char moves[FP_RED_ACT_COUNT][FP_RED_ST_COUNT] = {
    [FP_RED_ACT_CONFIRM] = {[FP_RED_ST_AWAITING_BUYER] = TO(FP_RED_ST_CONFIRMED),
                            [FP_RED_ST_AWAITING_SELLER] = TO(FP_RED_ST_CONFIRMED)},
    [FP_RED_ACT_REJECT] = {[FP_RED_ST_AWAITING_BUYER] = TO(FP_RED_ST_REJECTED),
                           [FP_RED_ST_AWAITING_SELLER] = TO(FP_RED_ST_REJECTED)},
    [FP_RED_ACT_WITHDRAW] = {[FP_RED_ST_NO_CONFIRMATION_NEEDED] = TO(FP_RED_ST_WITHDRAWN),
                             [FP_RED_ST_AWAITING_BUYER] = TO(FP_RED_ST_WITHDRAWN),
                             [FP_RED_ST_AWAITING_SELLER] = TO(FP_RED_ST_WITHDRAWN),
                             [FP_RED_ST_CONFIRMED] = TO(FP_RED_ST_WITHDRAWN)},
    [FP_RED_ACT_ISSUE] = {[FP_RED_ST_NO_CONFIRMATION_NEEDED] = TO(FP_RED_ST_ISSUED),
                          [FP_RED_ST_CONFIRMED] = TO(FP_RED_ST_ISSUED)},
    [FP_RED_ACT_LAPSE] = {[FP_RED_ST_AWAITING_BUYER] = TO(FP_RED_ST_LAPSED),
                          [FP_RED_ST_AWAITING_SELLER] = TO(FP_RED_ST_LAPSED)},
};
#undef TO

static int valid_state(fp_red_state s)
{
    return (unsigned)s < FP_RED_ST_COUNT;
}

const char *fp_red_state_name(fp_red_state s)
{
    return valid_state(s) ? states[s].name : "?";
}

int fp_red_state_parse(const char *s, fp_red_state *out)
{
    for (int i = 0; s && i < FP_RED_ST_COUNT; i++)
        if (strcmp(s, states[i].name) == 0) {
            *out = (fp_red_state)i;
            return 0;
        }
    return FP_EINVAL;
}

const char *fp_red_action_name(fp_red_action a)
{
    return (unsigned)a < FP_RED_ACT_COUNT ? actions[a] : "?";
}

int fp_red_action_parse(const char *s, fp_red_action *out)
{
    for (int i = 0; s && i < FP_RED_ACT_COUNT; i++)
        if (strcmp(s, actions[i]) == 0) {
            *out = (fp_red_action)i;
            return 0;
        }
    return FP_EINVAL;
}

int fp_red_transition(fp_red_state from, fp_red_action action)
{
    if (!valid_state(from) || (unsigned)action >= FP_RED_ACT_COUNT)
        return FP_EINVAL;
    int to = moves[action][from];
    return to ? to - 1 : FP_ECONFLICT;
}

int fp_red_issuable(fp_red_state s)
{
    return valid_state(s) && states[s].issuable;
}

int fp_red_open(fp_red_state s)
{
    return valid_state(s) && states[s].open;
}

int fp_red_holds_blue(fp_red_state s)
{
    return s == FP_RED_ST_ISSUED || fp_red_open(s);
}

fp_red_state fp_red_initial(int initiated_by_buyer, int buyer_has_deducted)
{
    return initiated_by_buyer   ? FP_RED_ST_AWAITING_SELLER
           : buyer_has_deducted ? FP_RED_ST_AWAITING_BUYER
                                : FP_RED_ST_NO_CONFIRMATION_NEEDED;
}

int64_t fp_red_deadline(fp_red_state s, int64_t created_at)
{
    return valid_state(s) && states[s].awaiting ? created_at + FP_RED_CONFIRM_WINDOW_S : 0;
}

int fp_red_lapsed(int64_t created_at, int64_t now)
{
    return now >= created_at + FP_RED_CONFIRM_WINDOW_S;
}

fp_red_state fp_red_state_at(fp_red_state stored, int64_t expires_at, int64_t now)
{
    if (valid_state(stored) && states[stored].awaiting && expires_at && now >= expires_at)
        return FP_RED_ST_LAPSED;
    return stored;
}

/* ---- quantities in 1e-13 units ---- */

int fp_qty_parse(const char *s, fp_qty *q)
{
    fp_dec d;
    int rc = fp_dec_parse(s, &d);
    if (rc < 0)
        return rc;
    fp_qty v = 0;
    for (int i = 0; i < d.ndigits; i++)
        v = v * 10 + (d.digits[i] - '0');
    for (int i = d.scale; i < FP_DEC_MAXSCALE; i++)
        v *= 10;
    *q = d.neg ? -v : v;
    return 0;
}

void fp_qty_format(fp_qty q, char *buf, size_t n)
{
    char tmp[64];
    int len = 0, neg = q < 0;
    unsigned __int128 m = neg ? (unsigned __int128)(-q) : (unsigned __int128)q;
    do {
        tmp[len++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m || len <= FP_DEC_MAXSCALE);
    /* tmp holds digits least significant first; the last 13 are decimals */
    int first_dec = 0; /* drop trailing zeros of the fraction */
    while (first_dec < FP_DEC_MAXSCALE && tmp[first_dec] == '0')
        first_dec++;
    size_t o = 0;
    if (neg && o + 1 < n)
        buf[o++] = '-';
    for (int i = len - 1; i >= FP_DEC_MAXSCALE && o + 1 < n; i--)
        buf[o++] = tmp[i];
    if (first_dec < FP_DEC_MAXSCALE && o + 1 < n) {
        buf[o++] = '.';
        for (int i = FP_DEC_MAXSCALE - 1; i >= first_dec && o + 1 < n; i--)
            buf[o++] = tmp[i];
    }
    buf[o] = 0;
}

/* ---- the blue document (read by invoice_doc.c) ---- */

static int64_t money(const char *s)
{
    int64_t v = 0;
    fp_money_parse(s, &v);
    return v;
}

/* Fills display fields and caps of line ln (1-based) from the blue items;
 * a discounted line's cap is net of the discount line after it. */
static int fill_from_blue(const fp_invoice_doc *d, int ln, fp_red_line *l)
{
    if (ln < 1 || ln > d->nitems)
        return FP_ENOTFOUND;
    const fp_doc_item *it = &d->items[ln - 1];
    l->line = ln;
    l->name = it->name;
    l->tax_code = it->tax_code;
    l->spec = it->spec;
    l->unit = it->unit;
    l->unit_price = l->blue_unit_price = it->unit_price;
    l->rate = it->tax_rate;
    l->policy = it->policy;
    if (fp_rate_parse(l->rate, &l->rate_bp) < 0)
        return FP_EINVAL;
    l->blue_amount = l->cap_amount = money(it->amount);
    l->blue_tax = l->cap_tax = money(it->tax);
    l->kind = it->kind;
    l->cap_qty = 0;
    if (it->quantity && fp_qty_parse(it->quantity, &l->cap_qty) < 0)
        return FP_EINVAL;
    if (it->kind == FP_LINE_DISCOUNTED && ln < d->nitems) {
        l->cap_amount += money(d->items[ln].amount);
        l->cap_tax += money(d->items[ln].tax);
    }
    return it->kind == FP_LINE_DISCOUNT ? FP_ERANGE : 0;
}

static int zero_tax(const fp_red_line *l)
{
    return l->policy && (strcmp(l->policy, "exempt") == 0 || strcmp(l->policy, "non_taxable") == 0);
}

void fp_red_form_clear(fp_red_form *f)
{
    if (!f)
        return;
    fp_invoice_doc_clear(&f->doc);
    free(f->lines);
    memset(f, 0, sizeof *f);
}

/* Reads the blue document into f; FP_EINVAL when it is unreadable or not
 * a blue invoice. */
static int load_blue(const char *doc, size_t len, fp_red_form *f)
{
    if (fp_invoice_doc_read(doc, len, &f->doc, NULL) < 0)
        return FP_EINVAL;
    f->blue = f->doc.root;
    snprintf(f->blue_number, sizeof f->blue_number, "%s", f->doc.number);
    snprintf(f->invoice_type, sizeof f->invoice_type, "%s", f->doc.type->code);
    return f->doc.red ? FP_EINVAL : 0;
}

static void line_err(fp_errors *es, fp_code c, int k, const char *key, const char *zh,
                     const char *en)
{
    char p[64];
    if (key)
        snprintf(p, sizeof p, "items[%d].%s", k, key);
    else
        snprintf(p, sizeof p, "items[%d]", k);
    fp_errors_add(es, c, p, zh, en);
}

/* round(a × b / c), half up, for a, b >= 0 and b <= c, c > 0: the 256-bit
 * product is divided bit by bit (quantities in 1e-13 units reach 10^38,
 * amounts 10^18, so neither the product nor the quotient fits 128 bits in
 * general; the quotient is <= a here). */
static int64_t muldiv_round(uint64_t a, unsigned __int128 b, unsigned __int128 c)
{
    uint64_t b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
    unsigned __int128 lo = (unsigned __int128)a * b0;
    unsigned __int128 hi = (unsigned __int128)a * b1 + (lo >> 64);
    /* product = hi * 2^64 + (uint64_t)lo, at most 192 bits */
    unsigned __int128 r = 0, q = 0;
    for (int bit = 191; bit >= 0; bit--) {
        unsigned __int128 top = r >> 127;
        int next = bit >= 64 ? (int)((hi >> (bit - 64)) & 1) : (int)((lo >> bit) & 1);
        r = (r << 1) | (unsigned)next;
        q <<= 1;
        if (top || r >= c) {
            r -= c;
            q |= 1;
        }
    }
    /* half up: 2r >= c, without overflowing 2r */
    if (r >= c - r)
        q++;
    return (int64_t)q;
}

/* Sets the red line's amount and tax for its quantity from what is left of
 * the blue line (rq units, ra net, rt tax; docs/domain.md "red at net
 * value"): the part that uses up the quantity takes exactly the rest, a
 * smaller part its share, rounded half up. */
static void share_of(fp_red_line *l, fp_qty rq, int64_t ra, int64_t rt)
{
    fp_qty q = -l->qty;
    if (ra < 0)
        ra = 0;
    if (rt < 0)
        rt = 0;
    if (rq <= 0 || q >= rq) { /* the rest; more than the rest fails the caps */
        l->amount = -ra;
        l->tax = -rt;
        return;
    }
    l->amount = -muldiv_round((uint64_t)ra, (unsigned __int128)q, (unsigned __int128)rq);
    l->tax = -muldiv_round((uint64_t)rt, (unsigned __int128)q, (unsigned __int128)rq);
}

/* The unit price the red line shows: the blue one while it fits the red
 * amount within 0.01, else the red line's own net unit price. */
static void set_price(fp_red_line *l)
{
    l->unit_price = l->blue_unit_price;
    if (!l->has_qty || !l->blue_unit_price)
        return;
    char qs[64];
    fp_dec dq, dp;
    fp_qty_format(l->qty, qs, sizeof qs);
    if (fp_dec_parse(qs, &dq) < 0)
        return;
    if (fp_dec_parse(l->blue_unit_price, &dp) == 0 && fp_dec_mul_within(&dq, &dp, l->amount, 1))
        return;
    if (fp_unit_price(l->amount, &dq, l->price_buf, sizeof l->price_buf) == 0)
        l->unit_price = l->price_buf;
}

/* Computes one requested line per the reason's rules. */
static void compute_line(fp_red_form *f, const cJSON *req, int k, fp_red_line *l, fp_errors *es)
{
    static const char *const allowed[] = {"line", "quantity", "amount", NULL};
    for (const cJSON *c = req->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, c->string) == 0;
        if (!ok) {
            char p[64];
            snprintf(p, sizeof p, "items[%d].%s", k, c->string);
            fp_errors_add(es, FPC_UNKNOWN_FIELD, p, NULL, NULL);
        }
    }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(req, "quantity");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, "amount");
    if ((q && !cJSON_IsString(q)) || (a && !cJSON_IsString(a))) {
        line_err(es, FPC_FIELD_TYPE, k, q && !cJSON_IsString(q) ? "quantity" : "amount",
                 "数量和金额须为字符串", "quantity and amount must be strings");
        return;
    }
    int need_qty = f->reason == FP_RED_SALES_RETURN;
    int no_qty = f->reason == FP_RED_ALLOWANCE;
    int need_amount = f->reason == FP_RED_SERVICE_STOP || f->reason == FP_RED_ALLOWANCE;
    if (need_qty && !q) {
        line_err(es, FPC_FIELD_REQUIRED, k, "quantity", "销货退回须给出退回数量",
                 "sales_return needs the returned quantity");
        return;
    }
    if (no_qty && q) {
        line_err(es, FPC_INVALID_FIELD, k, "quantity", "销售折让不填数量和单价",
                 "allowance has no quantity or unit price");
        return;
    }
    if (need_amount && !a) {
        line_err(es, FPC_FIELD_REQUIRED, k, "amount", "须给出红字金额",
                 "the red amount is required");
        return;
    }
    if (q) {
        if (fp_qty_parse(q->valuestring, &l->qty) < 0 || l->qty >= 0) {
            line_err(es, FPC_INVALID_FIELD, k, "quantity", "红字数量须为负数",
                     "The red quantity must be negative");
            return;
        }
        if (!l->unit_price || l->cap_qty == 0) {
            line_err(es, FPC_INVALID_FIELD, k, "quantity", "蓝字发票该行没有数量和单价",
                     "The blue line has no quantity and unit price");
            return;
        }
        l->has_qty = 1;
        /* at net value: the quantity's share of the blue line's net amount
         * and tax (fp_red_settle redoes it against earlier forms) */
        share_of(l, l->cap_qty, l->cap_amount, l->cap_tax);
        if (a) {
            int64_t given;
            if (fp_money_parse(a->valuestring, &given) < 0) {
                line_err(es, FPC_INVALID_FIELD, k, "amount", "金额格式无效",
                         "The amount is not a valid decimal");
                return;
            }
            if (given < l->amount - 1 || given > l->amount + 1) {
                char zh[192], en[192], want[FP_MONEY_STRLEN];
                fp_money_format(l->amount, want);
                snprintf(zh, sizeof zh,
                         "单价不可变：该数量按蓝字净额应红冲金额 %s，误差须在 0.01 内", want);
                snprintf(en, sizeof en,
                         "The unit price may not change: this quantity reverses %s of the blue "
                         "line's net amount (within 0.01)",
                         want);
                line_err(es, FPC_TOLERANCE_EXCEEDED, k, "amount", zh, en);
                return;
            }
        }
        return; /* amount and tax set; a tiny share may round to 0.00 */
    } else if (a) {
        if (fp_money_parse(a->valuestring, &l->amount) < 0) {
            line_err(es, FPC_INVALID_FIELD, k, "amount", "金额格式无效",
                     "The amount is not a valid decimal");
            return;
        }
    }
    if (l->amount >= 0) {
        line_err(es, FPC_INVALID_FIELD, k, "amount", "红字金额须为负数",
                 "The red amount must be negative");
        return;
    }
    l->tax = zero_tax(l) ? 0 : fp_tax_of(l->amount, l->rate_bp);
}

/* 1 if a JSON number is exactly its integer value (1.5 and 1e300 are not
 * line numbers), decided on cJSON's printed form: no floating point here. */
static int is_whole(const cJSON *n)
{
    char *text = cJSON_PrintUnformatted(n), want[24];
    snprintf(want, sizeof want, "%d", n->valueint);
    int ok = text && strcmp(text, want) == 0;
    cJSON_free(text);
    return ok;
}

int fp_red_form_parse(const char *body, size_t len, const char *blue_doc, size_t blue_len,
                      fp_red_form *f, fp_errors *es)
{
    memset(f, 0, sizeof *f);
    es->n = es->dropped = 0;
    if (load_blue(blue_doc, blue_len, f) < 0) {
        fp_errors_add(es, FPC_INVALID_FIELD, "", "只能对蓝字发票开具红字确认单",
                      "A red form can only reverse a blue invoice");
        return FP_EINVAL;
    }
    fp_code code;
    char detail[128];
    cJSON *req = fp_json_parse(body, len, 8, &code, detail, sizeof detail);
    if (!req) {
        fp_errors_add(es, code, "", NULL, detail);
        return FP_EINVAL;
    }
    int rc = FP_EINVAL;
    static const char *const allowed[] = {"reason", "items", "buyer_has_deducted", "initiated_by",
                                          NULL};
    if (!cJSON_IsObject(req)) {
        fp_errors_add(es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象",
                      "The body must be a JSON object");
        goto out;
    }
    for (const cJSON *c = req->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, c->string) == 0;
        if (!ok)
            fp_errors_add(es, FPC_UNKNOWN_FIELD, c->string, NULL, NULL);
    }
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(req, "reason");
    const cJSON *ritems = cJSON_GetObjectItemCaseSensitive(req, "items");
    const cJSON *deducted = cJSON_GetObjectItemCaseSensitive(req, "buyer_has_deducted");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(req, "initiated_by");
    if (!reason)
        fp_errors_add(es, FPC_FIELD_REQUIRED, "reason", NULL, NULL);
    else if (!cJSON_IsString(reason) || fp_red_reason_parse(reason->valuestring, &f->reason) < 0)
        fp_errors_add(es, FPC_INVALID_FIELD, "reason",
                      "reason 须为 issue_error、sales_return、service_stop 或 allowance",
                      "reason must be issue_error, sales_return, service_stop or allowance");
    if (deducted && !cJSON_IsBool(deducted))
        fp_errors_add(es, FPC_FIELD_TYPE, "buyer_has_deducted", NULL, NULL);
    f->buyer_has_deducted = cJSON_IsTrue(deducted);
    if (by && (!cJSON_IsString(by) ||
               (strcmp(by->valuestring, "seller") && strcmp(by->valuestring, "buyer"))))
        fp_errors_add(es, FPC_INVALID_FIELD, "initiated_by", "initiated_by 须为 seller 或 buyer",
                      "initiated_by must be seller or buyer");
    f->initiated_by_buyer = by && cJSON_IsString(by) && strcmp(by->valuestring, "buyer") == 0;
    if (ritems && !cJSON_IsArray(ritems))
        fp_errors_add(es, FPC_FIELD_TYPE, "items", NULL, NULL);
    if (es->n > 0)
        goto out;

    int nblue = f->doc.nitems;
    if (f->reason == FP_RED_ISSUE_ERROR) {
        /* full reversal: every line, identical, negated; items must be absent */
        if (ritems && cJSON_GetArraySize(ritems) > 0) {
            fp_errors_add(es, FPC_INVALID_FIELD, "items", "开票有误须全额红冲，不填明细",
                          "issue_error reverses the whole invoice: give no items");
            goto out;
        }
        f->lines = calloc((size_t)nblue, sizeof *f->lines);
        if (!f->lines)
            goto out;
        for (int i = 0; i < nblue; i++) {
            fp_red_line *l = &f->lines[f->nlines];
            /* every line negated as it is, discount lines included (their
             * red amount is positive), so the red lines are the blue ones */
            if (fill_from_blue(&f->doc, i + 1, l) == FP_EINVAL) {
                fp_errors_add(es, FPC_INTERNAL, "items", NULL, "The blue document is unreadable");
                goto out;
            }
            l->has_qty = l->cap_qty != 0;
            l->qty = -l->cap_qty;
            l->amount = -l->blue_amount;
            l->tax = -l->blue_tax;
            f->nlines++;
        }
    } else {
        int n = ritems ? cJSON_GetArraySize(ritems) : 0;
        if (n == 0) {
            fp_errors_add(es, FPC_FIELD_REQUIRED, "items", "须给出红冲的明细行",
                          "Give the lines to reverse");
            goto out;
        }
        f->lines = calloc((size_t)n, sizeof *f->lines);
        if (!f->lines)
            goto out;
        int k = 0;
        for (const cJSON *r = ritems->child; r; r = r->next, k++) {
            fp_red_line *l = &f->lines[k];
            const cJSON *ln = cJSON_GetObjectItemCaseSensitive(r, "line");
            if (!cJSON_IsObject(r) || !cJSON_IsNumber(ln) || ln->valueint < 1 ||
                ln->valueint > nblue || !is_whole(ln)) {
                line_err(es, FPC_INVALID_FIELD, k, "line",
                         "line 须为蓝字发票的行号（整数，从 1 开始）",
                         "line must be a line number of the blue invoice (integer from 1)");
                continue;
            }
            for (int j = 0; j < k; j++)
                if (f->lines[j].line == ln->valueint)
                    line_err(es, FPC_INVALID_FIELD, k, "line", "同一行只能出现一次",
                             "A line may appear once");
            int frc = fill_from_blue(&f->doc, ln->valueint, l);
            if (frc == FP_ERANGE) {
                line_err(es, FPC_INVALID_FIELD, k, "line", "折扣行随被折扣行一起红冲，不能单独指定",
                         "A discount line is reversed with the line it discounts, not on its own");
                continue;
            }
            if (frc < 0) {
                line_err(es, FPC_INTERNAL, k, "line", NULL, "The blue document is unreadable");
                continue;
            }
            compute_line(f, r, k, l, es);
        }
        f->nlines = k;
    }
    if (es->n > 0)
        goto out;
    for (int i = 0; i < f->nlines; i++) {
        set_price(&f->lines[i]);
        f->total_amount += f->lines[i].amount;
        f->total_tax += f->lines[i].tax;
    }
    rc = 0;
out:
    cJSON_Delete(req);
    return rc;
}

int fp_red_form_load(const char *blue_doc, size_t blue_len, fp_red_reason reason,
                     fp_red_line *lines, int nlines, fp_red_form *f, fp_err *err)
{
    memset(f, 0, sizeof *f);
    if (load_blue(blue_doc, blue_len, f) < 0)
        return fp_fail(err, FP_EINVAL, "blue invoice document unreadable");
    f->reason = reason;
    f->lines = calloc((size_t)(nlines > 0 ? nlines : 1), sizeof *f->lines);
    if (!f->lines)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    for (int i = 0; i < nlines; i++) {
        fp_red_line *l = &f->lines[i];
        int frc = fill_from_blue(&f->doc, lines[i].line, l);
        if (frc == FP_EINVAL || frc == FP_ENOTFOUND)
            return fp_fail(err, FP_EINVAL, "red line %d does not match the blue invoice",
                           lines[i].line);
        l->has_qty = lines[i].has_qty;
        l->qty = lines[i].qty;
        l->amount = lines[i].amount;
        l->tax = lines[i].tax;
        set_price(l);
        f->total_amount += l->amount;
        f->total_tax += l->tax;
    }
    f->nlines = nlines;
    return 0;
}

/* The red figures of line k's group: the line plus its discount line when
 * the form reverses that too (the next red line, of kind discount). */
static void group_of(const fp_red_form *f, int k, int64_t *amount, int64_t *tax)
{
    const fp_red_line *l = &f->lines[k];
    *amount = l->amount;
    *tax = l->tax;
    if (l->kind == FP_LINE_DISCOUNTED && k + 1 < f->nlines &&
        f->lines[k + 1].kind == FP_LINE_DISCOUNT && f->lines[k + 1].line == l->line + 1) {
        *amount += f->lines[k + 1].amount;
        *tax += f->lines[k + 1].tax;
    }
}

/* What earlier forms took from line l's group. */
static fp_red_used used_of(const fp_red_line *l, const fp_red_used *used, int nused)
{
    fp_red_used u = {0};
    if (l->line >= 1 && l->line <= nused)
        u = used[l->line - 1];
    if (l->kind == FP_LINE_DISCOUNTED && l->line + 1 <= nused) {
        u.amount += used[l->line].amount;
        u.tax += used[l->line].tax;
    }
    return u;
}

void fp_red_settle(fp_red_form *f, const fp_red_used *used, int nused)
{
    f->total_amount = f->total_tax = 0;
    for (int k = 0; k < f->nlines; k++) {
        fp_red_line *l = &f->lines[k];
        int64_t amount, tax;
        group_of(f, k, &amount, &tax);
        fp_red_used u = used_of(l, used, nused);
        int64_t ra = l->cap_amount + u.amount, rt = l->cap_tax + u.tax; /* what is left */
        if (f->reason == FP_RED_ISSUE_ERROR || l->kind == FP_LINE_DISCOUNT) {
            /* lines identical to the blue: nothing to settle */
        } else if (l->has_qty) {
            share_of(l, l->cap_qty + u.qty, ra, rt);
            set_price(l);
        } else if (-amount == ra) {
            l->tax = -rt; /* the whole rest of the amount: the whole rest of the tax */
        } else if (-amount < ra && rt >= 0 && -tax > rt) {
            l->tax = -rt; /* never more tax than is left */
        }
        f->total_amount += l->amount;
        f->total_tax += l->tax;
    }
}

int fp_red_check_caps(const fp_red_form *f, const fp_red_used *used, int nused, fp_errors *es)
{
    int bad = 0;
    for (int k = 0; k < f->nlines; k++) {
        const fp_red_line *l = &f->lines[k];
        if (l->kind == FP_LINE_DISCOUNT)
            continue; /* counted with its discounted line */
        int64_t amount, tax;
        group_of(f, k, &amount, &tax);
        fp_red_used u = used_of(l, used, nused);
        /* magnitudes: what was reversed before plus now, against the blue */
        int q_over = l->has_qty && (-(u.qty + l->qty) > l->cap_qty);
        int a_over = -(u.amount + amount) > l->cap_amount;
        int t_over = -(u.tax + tax) > l->cap_tax;
        if (q_over || a_over || t_over) {
            char zh[192], en[192];
            snprintf(zh, sizeof zh, "蓝字发票第 %d 行累计红冲的%s将超过蓝字", l->line,
                     q_over   ? "数量"
                     : a_over ? "金额"
                              : "税额");
            snprintf(
                en, sizeof en,
                "Together with earlier red forms, line %d's red %s would exceed the blue invoice",
                l->line,
                q_over   ? "quantity"
                : a_over ? "amount"
                         : "tax");
            line_err(es, FPC_RED_EXCEEDS_BLUE, k, NULL, zh, en);
            bad = 1;
        }
    }
    return bad ? FP_ERANGE : 0;
}

int fp_red_render(const fp_red_form *f, const fp_seller *seller, const char *serial,
                  const char *form_no, const char *issued_at, fp_doc *out)
{
    fp_invoice inv;
    memset(&inv, 0, sizeof inv);
    const fp_doc_party *b = &f->doc.buyer;
    memcpy(inv.invoice_type, f->invoice_type, sizeof inv.invoice_type);
    /* the buyer exactly as on the blue, natural-person flag included (the
     * blue name already carries （个人） where it applies) */
    inv.buyer.name = b->name;
    inv.buyer.tax_id = b->tax_id;
    inv.buyer.address = b->address;
    inv.buyer.phone = b->phone;
    inv.buyer.bank = b->bank;
    inv.buyer.account = b->account;
    inv.buyer.email = b->email;
    inv.buyer.natural_person = b->natural_person;
    inv.drawer = f->doc.drawer;
    inv.original_number = f->blue_number;
    inv.red_form_no = form_no;
    inv.red_reason = fp_red_reason_name(f->reason);
    char remark[160];
    snprintf(remark, sizeof remark, "被红冲蓝字数电票号码：%s 红字发票信息确认单编号：%s",
             f->blue_number, form_no);
    inv.remark = remark;
    inv.items = calloc((size_t)(f->nlines > 0 ? f->nlines : 1), sizeof *inv.items);
    char(*qty)[48] = calloc((size_t)(f->nlines > 0 ? f->nlines : 1), sizeof *qty);
    if (!inv.items || !qty) {
        free(inv.items);
        free(qty);
        return FP_ENOMEM;
    }
    inv.nitems = f->nlines;
    for (int i = 0; i < f->nlines; i++) {
        const fp_red_line *l = &f->lines[i];
        fp_item *it = &inv.items[i];
        it->name = l->name;
        it->short_name = ""; /* the blue name is already *简称*名称 */
        it->tax_code = l->tax_code;
        it->spec = l->spec;
        it->unit = l->unit;
        if (l->has_qty) {
            fp_qty_format(l->qty, qty[i], sizeof qty[i]);
            it->quantity = qty[i];
            it->unit_price = l->unit_price;
        }
        it->kind = l->kind == FP_LINE_DISCOUNT ? FP_LINE_DISCOUNT : FP_LINE_NORMAL;
        if (l->kind == FP_LINE_DISCOUNTED && i + 1 < f->nlines &&
            f->lines[i + 1].kind == FP_LINE_DISCOUNT)
            it->kind = FP_LINE_DISCOUNTED;
        it->policy = fp_policy_from_name(l->policy);
        it->rate_bp = l->rate_bp;
        it->amount = l->amount;
        it->tax = l->tax;
        it->amount_with_tax = l->amount + l->tax;
        inv.total_amount += l->amount;
        inv.total_tax += l->tax;
    }
    inv.total_with_tax = inv.total_amount + inv.total_tax;
    int rc = fp_invoice_render(&inv, seller, serial, issued_at, out);
    free(inv.items);
    free(qty);
    return rc;
}
