/* invoice_doc.c — the stored invoice document, its one writer and its one
 * reader, so its format lives in one file:
 *  - fp_invoice_render (invoice.h) writes it for an issued invoice (number
 *    placeholders the store patches), fp_doc_append_status adds the status
 *    when it is served;
 *  - fp_invoice_doc_read (invoice_doc.h, which says what is checked and
 *    why) reads it back for the PDF, the XML and red forms, in a fixed order,
 *    stopping at the first failure, whose message names the field. */
#include "fapiao/invoice_doc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/money.h"
#include "fapiao/red.h"

/* The red invoice's reasons (red.h): the API's name and the 数电票's words
 * (XML RedReason).  Here, with the document they are read from, so that the
 * reader needs nothing of red.c (which reads documents through it). */
static const struct {
    const char *name, *words;
} reasons[] = {
    [FP_RED_ISSUE_ERROR] = {"issue_error", "开票有误"},
    [FP_RED_SALES_RETURN] = {"sales_return", "销货退回"},
    [FP_RED_SERVICE_STOP] = {"service_stop", "服务中止"},
    [FP_RED_ALLOWANCE] = {"allowance", "销售折让"},
};

const char *fp_red_reason_name(fp_red_reason r)
{
    return (unsigned)r < sizeof reasons / sizeof reasons[0] ? reasons[r].name : "?";
}

const char *fp_red_reason_words(fp_red_reason r)
{
    return (unsigned)r < sizeof reasons / sizeof reasons[0] ? reasons[r].words : "?";
}

int fp_red_reason_parse(const char *s, fp_red_reason *r)
{
    for (size_t i = 0; s && i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcmp(s, reasons[i].name) == 0) {
            *r = (fp_red_reason)i;
            return 0;
        }
    return FP_EINVAL;
}

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

typedef fp_first_err rd; /* err.h */

/* The string member key of obj: NULL when absent or null (a failure when
 * required), a failure when it is not a string. */
static const char *field(rd *x, const cJSON *obj, const char *key, int required)
{
    const char *dot = x->where[0] ? "." : "";
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            fp_first_fail(x, FP_EINVAL, "invoice document lacks %s%s%s", x->where, dot, key);
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        fp_first_fail(x, FP_EINVAL, "invoice document: %s%s%s is not a string", x->where, dot, key);
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

/* Members read by a table: the key, where its string goes, whether it is
 * required (2: on the seller only). */
typedef struct fld {
    const char *key;
    size_t off;
    int required;
} fld;

#define PARTY(f) offsetof(fp_doc_party, f)
static const fld party_fields[] = {
    {"tax_id", PARTY(tax_id), 2},   {"name", PARTY(name), 1},
    {"address", PARTY(address), 0}, {"phone", PARTY(phone), 0},
    {"bank", PARTY(bank), 0},       {"account", PARTY(account), 0},
    {"email", PARTY(email), 0},     {"tax_bureau_code", PARTY(tax_bureau_code), 0},
};

#define ITEM(f) offsetof(fp_doc_item, f)
static const fld item_fields[] = {
    {"policy", ITEM(policy), 0},
    {"name", ITEM(name), 1},
    {"spec", ITEM(spec), 0},
    {"unit", ITEM(unit), 0},
    {"quantity", ITEM(quantity), 0},
    {"unit_price", ITEM(unit_price), 0},
    {"unit_price_with_tax", ITEM(unit_price_with_tax), 0},
    {"amount", ITEM(amount), 1},
    {"tax_rate", ITEM(tax_rate), 1},
    {"tax", ITEM(tax), 1},
    {"amount_with_tax", ITEM(amount_with_tax), 1},
    {"tax_code", ITEM(tax_code), 1},
};

#define DOC(f) offsetof(fp_invoice_doc, f)
static const fld total_fields[] = {
    {"total_amount", DOC(total_amount), 1},
    {"total_tax", DOC(total_tax), 1},
    {"total_with_tax", DOC(total_with_tax), 1},
    {"total_with_tax_words", DOC(total_with_tax_words), 1},
    {"drawer", DOC(drawer), 1},
    {"remark", DOC(remark), 0},
};
static const fld red_fields[] = {
    {"original_number", DOC(original_number), 1},
    {"red_form_id", DOC(red_form_id), 1},
    {"red_reason", DOC(red_reason), 1},
};

static void read_fields(rd *x, const cJSON *obj, void *dst, const fld *f, size_t n, int seller)
{
    for (size_t i = 0; i < n; i++) {
        int req = f[i].required == 1 || (f[i].required == 2 && seller);
        *(const char **)((char *)dst + f[i].off) = field(x, obj, f[i].key, req);
    }
}

static void read_party(rd *x, const cJSON *root, const char *key, fp_doc_party *p, int seller)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsObject(o)) {
        fp_first_fail(x, FP_EINVAL, "invoice document: %s is missing or not an object", key);
        return;
    }
    snprintf(x->where, sizeof x->where, "%s", key);
    read_fields(x, o, p, party_fields, sizeof party_fields / sizeof party_fields[0], seller);
    p->natural_person = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "natural_person"));
    x->where[0] = 0;
}

static void read_item(rd *x, const cJSON *it, fp_doc_item *t)
{
    const char *kind = field(x, it, "line_kind", 0);
    t->kind = kind && !strcmp(kind, "discount")     ? FP_LINE_DISCOUNT
              : kind && !strcmp(kind, "discounted") ? FP_LINE_DISCOUNTED
                                                    : FP_LINE_NORMAL;
    read_fields(x, it, t, item_fields, sizeof item_fields / sizeof item_fields[0], 0);
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
        fp_first_fail(x, FP_EINVAL, "invoice document: items is missing, empty or not an array");
        return;
    }
    int n = cJSON_GetArraySize(arr);
    d->items = calloc((size_t)n, sizeof *d->items);
    if (!d->items) {
        fp_first_fail(x, FP_ENOMEM, "out of memory");
        return;
    }
    int i = 0;
    for (const cJSON *it = arr->child; it && !x->rc; it = it->next, i++) {
        snprintf(x->where, sizeof x->where, "items[%d]", i);
        if (!cJSON_IsObject(it)) {
            fp_first_fail(x, FP_EINVAL, "invoice document: %s is not an object", x->where);
            break;
        }
        read_item(x, it, &d->items[i]);
    }
    d->nitems = i;
    x->where[0] = 0;
}

static void read_red(rd *x, const cJSON *root, fp_invoice_doc *d)
{
    read_fields(x, root, d, red_fields, sizeof red_fields / sizeof red_fields[0], 0);
    if (x->rc)
        return;
    fp_red_reason r;
    if (!is_number20(d->original_number))
        fp_first_fail(x, FP_EINVAL, "invoice document: original_number is not 20 digits");
    else if (fp_red_reason_parse(d->red_reason, &r) < 0)
        fp_first_fail(x, FP_EINVAL, "invoice document: unknown red_reason");
    else
        d->red_reason_words = fp_red_reason_words(r);
}

static void read_doc(rd *x, const cJSON *root, fp_invoice_doc *d)
{
    if (!cJSON_IsObject(root)) {
        fp_first_fail(x, FP_EINVAL, "invoice document is not a JSON object");
        return;
    }
    d->number = field(x, root, "number", 1);
    d->issued_at = field(x, root, "issued_at", 1);
    const char *type = field(x, root, "invoice_type", 1);
    d->color = field(x, root, "color", 1);
    if (x->rc)
        return;
    if (!is_number20(d->number))
        fp_first_fail(x, FP_EINVAL, "invoice document: number is not 20 digits");
    else if (!is_date(d->issued_at))
        fp_first_fail(x, FP_EINVAL, "invoice document: issued_at is not yyyy-MM-dd…");
    else if (strcmp(d->color, "blue") != 0 && strcmp(d->color, "red") != 0)
        fp_first_fail(x, FP_EINVAL, "invoice document: color must be blue or red");
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (strcmp(types[k].code, type) == 0)
            d->type = &types[k];
    if (!d->type)
        fp_first_fail(x, FP_EINVAL, "invoice document: invoice_type must be 01 or 02");
    if (x->rc)
        return;
    d->red = strcmp(d->color, "red") == 0;
    if (d->red)
        read_red(x, root, d);
    read_party(x, root, "seller", &d->seller, 1);
    read_party(x, root, "buyer", &d->buyer, 0);
    read_fields(x, root, d, total_fields, sizeof total_fields / sizeof total_fields[0], 0);
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

/* ---- the writer ---- */

static const char placeholder[FP_NUMBER_LEN + 1] = "00000000000000000000";

/* Remembers where the placeholder digits about to be written start. */
static void mark_number(fp_doc *d, size_t off)
{
    if (d->nnum < FP_NUM_SLOTS)
        d->num_off[d->nnum++] = off;
}

static void kstr_opt(fp_jw *w, const char *k, const char *v)
{
    if (v && *v)
        fp_jw_kstr(w, k, v);
}

int fp_invoice_render(const fp_invoice *inv, const fp_seller *seller, const char *serial,
                      const char *issued_at, fp_doc *out)
{
    fp_buf b;
    fp_jw w;
    memset(out, 0, sizeof *out);
    fp_buf_init(&b, 64u << 20);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_key(&w, "number");
    mark_number(out, b.len + 1);
    fp_jw_str(&w, placeholder);
    fp_jw_kstr(&w, "serial", serial);
    fp_jw_kstr(&w, "status", "accepted");
    fp_jw_kstr(&w, "invoice_type", inv->invoice_type);
    fp_jw_kstr(&w, "color", inv->original_number ? "red" : "blue");
    if (inv->original_number) {
        fp_jw_kstr(&w, "original_number", inv->original_number);
        fp_jw_kstr(&w, "red_form_id", inv->red_form_no);
        fp_jw_kstr(&w, "red_reason", inv->red_reason);
    }
    fp_jw_kstr(&w, "issued_at", issued_at);
    fp_jw_kbool(&w, "price_includes_tax", inv->price_includes_tax);

    fp_jw_key(&w, "seller");
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "name", seller->name);
    fp_jw_kstr(&w, "tax_id", seller->tax_id);
    kstr_opt(&w, "address", seller->address);
    kstr_opt(&w, "phone", seller->phone);
    kstr_opt(&w, "bank", seller->bank);
    kstr_opt(&w, "account", seller->account);
    kstr_opt(&w, "tax_bureau_code", seller->tax_bureau);
    fp_jw_obj_close(&w);

    const fp_party *p = &inv->buyer;
    fp_jw_key(&w, "buyer");
    fp_jw_obj_open(&w);
    static const char personal[] = "（个人）";
    size_t nlen = p->name ? strlen(p->name) : 0;
    if (p->natural_person && !(nlen >= sizeof personal - 1 &&
                               !strcmp(p->name + nlen - (sizeof personal - 1), personal))) {
        /* 自然人: the name is shown with （个人）, once (a red invoice copies
         * the blue name, which has it already) */
        fp_buf nb;
        fp_buf_init(&nb, 4096);
        fp_buf_puts(&nb, p->name);
        fp_buf_puts(&nb, personal);
        char *name = fp_buf_take(&nb, NULL);
        fp_jw_kstr(&w, "name", name);
        free(name);
    } else {
        fp_jw_kstr(&w, "name", p->name);
    }
    kstr_opt(&w, "tax_id", p->tax_id);
    kstr_opt(&w, "address", p->address);
    kstr_opt(&w, "phone", p->phone);
    kstr_opt(&w, "bank", p->bank);
    kstr_opt(&w, "account", p->account);
    kstr_opt(&w, "email", p->email);
    fp_jw_kbool(&w, "natural_person", p->natural_person);
    fp_jw_obj_close(&w);

    fp_jw_key(&w, "items");
    fp_jw_arr_open(&w);
    for (int i = 0; i < inv->nitems; i++) {
        const fp_item *it = &inv->items[i];
        static const char *const kinds[] = {"normal", "discount", "discounted"};
        char rate[16];
        fp_jw_obj_open(&w);
        fp_jw_kint(&w, "line", i + 1);
        fp_jw_kstr(&w, "line_kind", kinds[it->kind]);
        fp_buf nb;
        fp_buf_init(&nb, 8192);
        if (it->short_name && *it->short_name)
            fp_buf_printf(&nb, "*%s*", it->short_name);
        fp_buf_puts(&nb, it->name);
        char *name = fp_buf_take(&nb, NULL);
        fp_jw_kstr(&w, "name", name);
        free(name);
        fp_jw_kstr(&w, "tax_code", it->tax_code);
        kstr_opt(&w, "spec", it->spec);
        kstr_opt(&w, "unit", it->unit);
        kstr_opt(&w, "quantity", it->quantity);
        kstr_opt(&w, "unit_price", it->unit_price);
        kstr_opt(&w, "unit_price_with_tax", it->unit_price_with_tax);
        fp_jw_kmoney(&w, "amount", it->amount);
        fp_rate_format(it->rate_bp, rate, sizeof rate);
        fp_jw_kstr(&w, "tax_rate", rate);
        fp_jw_kmoney(&w, "tax", it->tax);
        fp_jw_kmoney(&w, "amount_with_tax", it->amount_with_tax);
        if (it->policy != FP_POLICY_NONE)
            fp_jw_kstr(&w, "policy", fp_policy_name(it->policy));
        fp_jw_obj_close(&w);
    }
    fp_jw_arr_close(&w);

    char words[160];
    fp_capital(inv->total_with_tax, words, sizeof words);
    fp_jw_kmoney(&w, "total_amount", inv->total_amount);
    fp_jw_kmoney(&w, "total_tax", inv->total_tax);
    fp_jw_kmoney(&w, "total_with_tax", inv->total_with_tax);
    fp_jw_kstr(&w, "total_with_tax_words", words);
    kstr_opt(&w, "remark", inv->remark);
    fp_jw_kstr(&w, "drawer", inv->drawer);
    if (inv->nwarnings > 0) {
        fp_jw_key(&w, "warnings");
        fp_jw_arr_open(&w);
        for (int i = 0; i < inv->nwarnings; i++)
            fp_jw_str(&w, inv->warnings[i]);
        fp_jw_arr_close(&w);
    }
    fp_jw_key(&w, "links");
    fp_jw_obj_open(&w);
    static const char *const links[][2] = {{"self", ""}, {"pdf", "/pdf"}, {"xml", "/xml"}};
    for (int i = 0; i < 3; i++) {
        fp_jw_key(&w, links[i][0]);
        fp_buf_puts(&b, "\"/v1/invoices/");
        mark_number(out, b.len);
        fp_buf_puts(&b, placeholder);
        fp_buf_puts(&b, links[i][1]);
        fp_buf_puts(&b, "\"");
        w.need_comma[w.depth] = 1;
    }
    fp_jw_obj_close(&w);
    fp_jw_obj_close(&w);
    out->json = fp_buf_take(&b, &out->len);
    return out->json ? 0 : FP_ENOMEM;
}

void fp_doc_patch_number(fp_doc *d, const char number[FP_NUMBER_LEN])
{
    for (int i = 0; i < d->nnum; i++)
        memcpy(d->json + d->num_off[i], number, FP_NUMBER_LEN);
}

void fp_doc_append_status(fp_buf *out, const char *doc, size_t len, const char *status,
                          const char *failure)
{
    /* The first "status":"accepted" is the top-level one: it follows the
     * number and the serial, and a string value cannot contain an unescaped
     * quote. */
    static const char pat[] = "\"status\":\"accepted\"";
    const char *at = status && (strcmp(status, "accepted") || (failure && *failure))
                         ? memmem(doc, len, pat, sizeof pat - 1)
                         : NULL;
    if (!at) {
        fp_buf_append(out, doc, len);
        return;
    }
    size_t head = (size_t)(at - doc) + 9; /* through "status": */
    fp_buf_append(out, doc, head);
    fp_buf_append(out, "\"", 1);
    fp_json_escape(out, status);
    fp_buf_append(out, "\"", 1);
    if (failure && *failure) {
        fp_buf_puts(out, ",\"failure\":\"");
        fp_json_escape(out, failure);
        fp_buf_append(out, "\"", 1);
    }
    size_t tail = (size_t)(at - doc) + sizeof pat - 1;
    fp_buf_append(out, doc + tail, len - tail);
}
