/* red.h — red invoices (红字发票): the 红字确认单 (red form) request checked
 * against its blue invoice, the per-line caps, and the red invoice document.
 *
 * Rules (docs/domain.md): 开票有误 issue_error reverses the whole invoice,
 * lines identical; 销货退回 sales_return changes the quantity; 服务中止
 * service_stop changes the amount (and quantity); 销售折让 allowance changes
 * the amount only.  A red line with a quantity is reversed at net value: its
 * share of what is left of the blue line's net amount and tax (a discounted
 * line counts net of its discount, a tax-inclusive line as split on the
 * blue), and the part that uses up the quantity takes exactly the rest.  Per
 * blue line the red quantity, amount and tax of all red forms together never
 * exceed the blue ones.  Red amounts are negative. */
#ifndef FAPIAO_RED_H
#define FAPIAO_RED_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "fapiao/invoice.h"
#include "fapiao/invoice_doc.h"

typedef enum fp_red_reason {
    FP_RED_ISSUE_ERROR = 0,
    FP_RED_SALES_RETURN,
    FP_RED_SERVICE_STOP,
    FP_RED_ALLOWANCE,
} fp_red_reason;

const char *fp_red_reason_name(fp_red_reason r);  /* "issue_error" */
const char *fp_red_reason_words(fp_red_reason r); /* "开票有误" */
int fp_red_reason_parse(const char *s, fp_red_reason *r);

/* ---- the red form's life (docs/domain.md §8 "红字确认单的状态") ----
 *
 * One table in red.c holds every state, every move and the 72 h rule; the
 * store and the handlers ask it instead of comparing state strings.  The
 * names are what the API shows and the store keeps (red_forms.state).
 *
 *   no_confirmation_needed --issue--> issued
 *   awaiting_buyer/_seller --confirm--> confirmed --issue--> issued
 *   awaiting_buyer/_seller --reject--> rejected
 *   awaiting_buyer/_seller --lapse--> lapsed       (72 h after creation)
 *   no_confirmation_needed, awaiting_*, confirmed --withdraw--> withdrawn
 *
 * rejected, withdrawn, lapsed and issued are final. */
typedef enum fp_red_state {
    FP_RED_ST_NO_CONFIRMATION_NEEDED = 0,
    FP_RED_ST_AWAITING_BUYER,
    FP_RED_ST_AWAITING_SELLER,
    FP_RED_ST_CONFIRMED,
    FP_RED_ST_REJECTED,
    FP_RED_ST_WITHDRAWN,
    FP_RED_ST_LAPSED,
    FP_RED_ST_ISSUED,
    FP_RED_ST_COUNT
} fp_red_state;

typedef enum fp_red_action {
    FP_RED_ACT_CONFIRM = 0, /* POST /v1/red-forms/{id}/confirm */
    FP_RED_ACT_REJECT,      /* .../reject */
    FP_RED_ACT_WITHDRAW,    /* .../withdraw */
    FP_RED_ACT_ISSUE,       /* .../invoice: the red invoice consumes the form */
    FP_RED_ACT_LAPSE,       /* the deadline passed (stored when next acted on) */
    FP_RED_ACT_COUNT
} fp_red_action;

/* The other side has 72 hours to confirm (docs/domain.md §8). */
#define FP_RED_CONFIRM_WINDOW_S (72 * 3600)

const char *fp_red_state_name(fp_red_state s);            /* "?" outside the enum */
int fp_red_state_parse(const char *s, fp_red_state *out); /* 0 or FP_EINVAL */
const char *fp_red_action_name(fp_red_action a);
int fp_red_action_parse(const char *s, fp_red_action *out);

/* The state `action` moves a form in `from` to (>= 0), FP_ECONFLICT when
 * the table has no such move, FP_EINVAL for a value outside the enums. */
int fp_red_transition(fp_red_state from, fp_red_action action);

/* 1 when a red invoice may be issued on a form in state s
 * (no_confirmation_needed or confirmed).  An issued form is not issuable;
 * a retry of its issuing is a replay, answered before this question. */
int fp_red_issuable(fp_red_state s);
/* 1 for the states that may still move (not final). */
int fp_red_open(fp_red_state s);
/* 1 when the form's lines count against its blue invoice's caps: issued,
 * or open and not lapsed (pass the state from fp_red_state_at). */
int fp_red_holds_blue(fp_red_state s);

/* The state a new form starts in: awaiting_seller when the buyer opened
 * it, awaiting_buyer when the buyer has used the blue invoice for
 * deduction, else no_confirmation_needed. */
fp_red_state fp_red_initial(int initiated_by_buyer, int buyer_has_deducted);
/* The confirmation deadline of a form created at created_at (unix
 * seconds) in state s: created_at + 72 h for awaiting_*, 0 (none) else. */
int64_t fp_red_deadline(fp_red_state s, int64_t created_at);
/* 1 when a form created at created_at has passed the 72 h deadline at now. */
int fp_red_lapsed(int64_t created_at, int64_t now);
/* The state as of now: awaiting_* at or past its stored deadline
 * (expires_at, 0 = none) reads as lapsed; anything else as stored. */
fp_red_state fp_red_state_at(fp_red_state stored, int64_t expires_at, int64_t now);

/* Quantities as integers of 1e-13 (the most decimals a quantity has). */
typedef __int128 fp_qty;
int fp_qty_parse(const char *s, fp_qty *q);        /* "-1.5" -> -15e12 */
void fp_qty_format(fp_qty q, char *buf, size_t n); /* shortest decimal */

typedef struct fp_red_line {
    int line; /* 1-based line of the blue invoice */
    int has_qty;
    fp_qty qty;          /* <= 0 */
    int64_t amount, tax; /* <= 0 */
    /* the blue line, for caps and display (pointers into the blue doc) */
    fp_qty cap_qty;                /* >= 0; 0 when the line has no quantity */
    int64_t cap_amount, cap_tax;   /* net of the line's discount line, if any */
    int64_t blue_amount, blue_tax; /* the line's own figures */
    fp_line_kind kind;             /* of the blue line; discount lines only in
                                      full reversals, right after their line */
    const char *name, *tax_code, *spec, *unit, *unit_price, *rate, *policy;
    int rate_bp;
    /* unit_price is what the red line shows: the blue unit price when
     * |quantity × price − amount| <= 0.01 holds for the red line, else its
     * net unit price (amount ÷ quantity) in price_buf. */
    const char *blue_unit_price;
    char price_buf[32];
} fp_red_line;

typedef struct fp_red_form {
    fp_invoice_doc doc; /* the blue document (invoice_doc.h); owns the pointers above */
    cJSON *blue;        /* doc.root, for callers still reading the JSON itself */
    fp_red_reason reason;
    int buyer_has_deducted; /* the buyer used the blue invoice for deduction */
    int initiated_by_buyer;
    fp_red_line *lines;
    int nlines;
    int64_t total_amount, total_tax;
    char blue_number[FP_NUMBER_LEN + 1];
    char invoice_type[3];
} fp_red_form;

/* Parses a red-form request (docs/api.md) against the blue document.  Fills f
 * (free with fp_red_form_clear, also on failure) or reports every refusal. */
int fp_red_form_parse(const char *body, size_t len, const char *blue_doc, size_t blue_len,
                      fp_red_form *f, fp_errors *es);
/* Rebuilds a stored form: lines[] hold line/has_qty/qty/amount/tax; the
 * display fields and caps are filled from the blue document. */
int fp_red_form_load(const char *blue_doc, size_t blue_len, fp_red_reason reason,
                     fp_red_line *lines, int nlines, fp_red_form *f, fp_err *err);
void fp_red_form_clear(fp_red_form *f);

/* Checks used + f against the caps; used[i] holds what earlier forms took
 * from blue line i+1 (negative values, as stored).  A discounted line and
 * its discount line count together (net).  0 or FP_ERANGE with the
 * refusal in es (RED_EXCEEDS_BLUE, field items[k]). */
typedef struct fp_red_used {
    fp_qty qty;
    int64_t amount, tax;
} fp_red_used;
int fp_red_check_caps(const fp_red_form *f, const fp_red_used *used, int nused, fp_errors *es);

/* Settles the red figures against what earlier forms took (`used`, as for
 * fp_red_check_caps): a line with a quantity q gets round(rest × q / rest
 * quantity) of the blue line's remaining net amount and tax, and the part
 * that uses up the quantity gets exactly the rest.  An amount-only line
 * that takes all that is left of the amount takes all that is left of the
 * tax, and its tax never exceeds what is left.  So returns within the
 * quantity left always pass the caps and nothing is stranded (0.50 at 6%
 * reversed as 0.25 + 0.25; 3 × 0.335 unit by unit).  Call before
 * fp_red_check_caps with the same `used`. */
void fp_red_settle(fp_red_form *f, const fp_red_used *used, int nused);

/* The red invoice document (number placeholders as fp_invoice_render). */
int fp_red_render(const fp_red_form *f, const fp_seller *seller, const char *serial,
                  const char *form_no, const char *issued_at, fp_doc *out);

#endif
