/* invoice_doc.c — the stored invoice document read back, once, for the PDF,
 * the XML and red forms (include/fapiao/invoice_doc.h says what is
 * checked and why).  Reads in a fixed order and stops at the first
 * failure, whose message names the field. */
#include "fapiao/invoice_doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/red.h"

static const fp_doc_type types[] = {
    {"01", "增值税专用发票", "电子发票（增值税专用发票）", "31"},
    {"02", "普通发票", "电子发票（普通发票）", "32"},
};

/* Lines whose policy replaces the rate and tax cells (docs/domain.md §10). */
static const struct {
    const char *policy, *rate, *tax;
} displays[] = {
    {"exempt", "免税", "***"},
    {"non_taxable", "不征税", ""},
};

typedef struct rd {
    fp_err *err;
    int rc;         /* first failure, 0 while all is well */
    char where[40]; /* object being read, for messages: "seller", "items[2]" */
} rd;

__attribute__((format(printf, 3, 4))) static void fail(rd *x, int code, const char *fmt, ...)
{
    if (x->rc)
        return;
    x->rc = code;
    if (x->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err->msg, sizeof x->err->msg, fmt, ap);
        va_end(ap);
        x->err->code = code;
    }
}

/* The string member key of obj: NULL when absent or null (a failure when
 * required), a failure when it is not a string. */
static const char *field(rd *x, const cJSON *obj, const char *key, int required)
{
    const char *dot = x->where[0] ? "." : "";
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            fail(x, FP_EINVAL, "invoice document lacks %s%s%s", x->where, dot, key);
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        fail(x, FP_EINVAL, "invoice document: %s%s%s is not a string", x->where, dot, key);
        return NULL;
    }
    return v->valuestring;
}

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int is_number20(const char *s)
{
    return strlen(s) == FP_NUMBER_LEN && is_digits(s, FP_NUMBER_LEN);
}

/* "yyyy-MM-dd…" (the consumers check what they need of the rest) */
static int is_date(const char *s)
{
    return strlen(s) >= 10 && is_digits(s, 4) && s[4] == '-' && is_digits(s + 5, 2) &&
           s[7] == '-' && is_digits(s + 8, 2);
}

static void read_party(rd *x, const cJSON *root, const char *key, fp_doc_party *p, int seller)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsObject(o)) {
        fail(x, FP_EINVAL, "invoice document: %s is missing or not an object", key);
        return;
    }
    snprintf(x->where, sizeof x->where, "%s", key);
    p->tax_id = field(x, o, "tax_id", seller);
    p->name = field(x, o, "name", 1);
    p->address = field(x, o, "address", 0);
    p->phone = field(x, o, "phone", 0);
    p->bank = field(x, o, "bank", 0);
    p->account = field(x, o, "account", 0);
    p->email = field(x, o, "email", 0);
    p->natural_person = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "natural_person"));
    x->where[0] = 0;
}

static void read_item(rd *x, const cJSON *it, fp_doc_item *t)
{
    const char *kind = field(x, it, "line_kind", 0);
    t->kind = kind && !strcmp(kind, "discount")     ? FP_LINE_DISCOUNT
              : kind && !strcmp(kind, "discounted") ? FP_LINE_DISCOUNTED
                                                    : FP_LINE_NORMAL;
    t->policy = field(x, it, "policy", 0);
    t->name = field(x, it, "name", 1);
    t->spec = field(x, it, "spec", 0);
    t->unit = field(x, it, "unit", 0);
    t->quantity = field(x, it, "quantity", 0);
    /* the net unit price, also on tax-inclusive lines (docs/domain.md §3);
     * the caller's gross unit_price_with_tax is shown nowhere */
    t->unit_price = field(x, it, "unit_price", 0);
    field(x, it, "unit_price_with_tax", 0);
    t->amount = field(x, it, "amount", 1);
    t->tax_rate = field(x, it, "tax_rate", 1);
    t->tax = field(x, it, "tax", 1);
    t->amount_with_tax = field(x, it, "amount_with_tax", 1);
    t->tax_code = field(x, it, "tax_code", 1);
    for (size_t d = 0; t->policy && d < sizeof displays / sizeof displays[0]; d++)
        if (strcmp(t->policy, displays[d].policy) == 0) {
            t->shown_rate = displays[d].rate;
            t->shown_tax = displays[d].tax;
        }
}

static void read_items(rd *x, const cJSON *root, fp_invoice_doc *d)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!cJSON_IsArray(arr) || !arr->child) {
        fail(x, FP_EINVAL, "invoice document: items is missing, empty or not an array");
        return;
    }
    int n = cJSON_GetArraySize(arr);
    d->items = calloc((size_t)n, sizeof *d->items);
    if (!d->items) {
        fail(x, FP_ENOMEM, "out of memory");
        return;
    }
    int i = 0;
    for (const cJSON *it = arr->child; it && !x->rc; it = it->next, i++) {
        snprintf(x->where, sizeof x->where, "items[%d]", i);
        if (!cJSON_IsObject(it)) {
            fail(x, FP_EINVAL, "invoice document: %s is not an object", x->where);
            break;
        }
        read_item(x, it, &d->items[i]);
    }
    d->nitems = i;
    x->where[0] = 0;
}

static void read_red(rd *x, const cJSON *root, fp_invoice_doc *d)
{
    d->original_number = field(x, root, "original_number", 1);
    d->red_form_id = field(x, root, "red_form_id", 1);
    d->red_reason = field(x, root, "red_reason", 1);
    if (x->rc)
        return;
    fp_red_reason r;
    if (!is_number20(d->original_number))
        fail(x, FP_EINVAL, "invoice document: original_number is not 20 digits");
    else if (fp_red_reason_parse(d->red_reason, &r) < 0)
        fail(x, FP_EINVAL, "invoice document: unknown red_reason");
    else
        d->red_reason_words = fp_red_reason_words(r);
}

static void read_doc(rd *x, const cJSON *root, fp_invoice_doc *d)
{
    if (!cJSON_IsObject(root)) {
        fail(x, FP_EINVAL, "invoice document is not a JSON object");
        return;
    }
    d->number = field(x, root, "number", 1);
    d->issued_at = field(x, root, "issued_at", 1);
    const char *type = field(x, root, "invoice_type", 1);
    d->color = field(x, root, "color", 1);
    if (x->rc)
        return;
    if (!is_number20(d->number))
        fail(x, FP_EINVAL, "invoice document: number is not 20 digits");
    else if (!is_date(d->issued_at))
        fail(x, FP_EINVAL, "invoice document: issued_at is not yyyy-MM-dd…");
    else if (strcmp(d->color, "blue") != 0 && strcmp(d->color, "red") != 0)
        fail(x, FP_EINVAL, "invoice document: color must be blue or red");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (strcmp(types[k].code, type) == 0)
            d->type = &types[k];
    if (!d->type)
        fail(x, FP_EINVAL, "invoice document: invoice_type must be 01 or 02");
    if (x->rc)
        return;
    d->red = strcmp(d->color, "red") == 0;
    if (d->red)
        read_red(x, root, d);
    read_party(x, root, "seller", &d->seller, 1);
    read_party(x, root, "buyer", &d->buyer, 0);
    d->total_amount = field(x, root, "total_amount", 1);
    d->total_tax = field(x, root, "total_tax", 1);
    d->total_with_tax = field(x, root, "total_with_tax", 1);
    d->total_with_tax_words = field(x, root, "total_with_tax_words", 1);
    d->drawer = field(x, root, "drawer", 1);
    d->remark = field(x, root, "remark", 0);
    if (!x->rc)
        read_items(x, root, d);
}

void fp_invoice_doc_clear(fp_invoice_doc *d)
{
    if (!d)
        return;
    free(d->items);
    cJSON_Delete(d->root);
    memset(d, 0, sizeof *d);
}

int fp_invoice_doc_read(const char *doc, size_t len, fp_invoice_doc *d, fp_err *err)
{
    memset(d, 0, sizeof *d);
    fp_code code = FPC_NONE;
    char detail[128];
    d->root = fp_json_parse(doc ? doc : "", doc ? len : 0, FP_DOC_MAX_DEPTH, &code, detail,
                            sizeof detail);
    if (!d->root)
        return fp_fail(err, FP_EINVAL, "invoice document is not valid JSON (%s)", detail);
    rd x = {.err = err};
    read_doc(&x, d->root, d);
    if (x.rc)
        fp_invoice_doc_clear(d);
    return x.rc;
}
