/* fields.c — our stored invoice document (invoice_doc.h) → the tax
 * platform's fields, in ONE table: the upload (QDFPSC, an invoice and its
 * fpmxList lines) and the red form (QDHZQRDSQ, the form and its
 * hzqrdmxList lines).  docs/upstream.md §3 prints this table; checking the
 * mapping against the official manual touches this file only.
 *
 * A row takes a text member of the document (or of a line) by offset, or
 * computes its value (a getter); amounts stay the document's decimal
 * strings, never converted. */
#include "fapiao/red.h"
#include "fapiao/upstream.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* What a getter sees. */
typedef struct ctx {
    const fp_invoice_doc *d;    /* the invoice (the red one for a form line) */
    const fp_invoice_doc *blue; /* a red form's blue invoice */
    const fp_doc_item *it;      /* the line */
    int line;                   /* its number, from 1 */
    const char *ptbh;
    const fp_up_red_ref *form; /* a red invoice's platform form */
    char tmp[320];
} ctx;

typedef const char *(*getter)(ctx *c);

enum level { L_INVOICE, L_LINE, L_FORM, L_FORM_LINE };
static const char *const level_names[] = {"invoice", "line", "red_form", "red_form_line"};

typedef struct row {
    enum level level;
    const char *name, *source;
    size_t off; /* of a const char * in fp_invoice_doc (fp_doc_item for lines); NONE: get */
    getter get;
} row;

#define NONE        ((size_t)-1)
#define DOC(f)      offsetof(fp_invoice_doc, f)
#define ITEM(f)     offsetof(fp_doc_item, f)
#define PARTY(p, f) (offsetof(fp_invoice_doc, p) + offsetof(fp_doc_party, f))

static const char *g_red_flag(ctx *c)
{
    return c->d->red ? "1" : "0";
}
static const char *g_type(ctx *c)
{
    return c->d->type->code;
}
static const char *g_blue_type(ctx *c)
{
    return c->blue->type->code;
}
static const char *g_ptbh(ctx *c)
{
    return c->ptbh ? c->ptbh : "";
}
static const char *g_form_uuid(ctx *c)
{
    return c->d->red ? c->form->uuid : NULL;
}
static const char *g_form_number(ctx *c)
{
    return c->d->red ? c->form->number : NULL;
}
static const char *g_self_built(ctx *c)
{
    (void)c;
    return "5";
}
static const char *g_empty(ctx *c)
{
    (void)c;
    return "";
}
static const char *g_seller_enters(ctx *c)
{
    (void)c;
    return "0";
}
/* "2026-11-25T09:08:07+08:00" → "2026-11-25 09:08:07" (the document's
 * time is already China Standard Time). */
static const char *datetime(const char *iso, char *out, size_t cap)
{
    snprintf(out, cap, "%.10s %.8s", iso, strlen(iso) >= 19 ? iso + 11 : "00:00:00");
    return out;
}
static const char *g_kprq(ctx *c)
{
    return datetime(c->d->issued_at, c->tmp, sizeof c->tmp);
}
static const char *g_blue_kprq(ctx *c)
{
    return datetime(c->blue->issued_at, c->tmp, sizeof c->tmp);
}
static const char *g_natural(ctx *c)
{
    return c->d->buyer.natural_person ? "Y" : "N";
}
static const char *g_reason(ctx *c)
{
    fp_red_reason r;
    if (!c->d->red_reason || fp_red_reason_parse(c->d->red_reason, &r))
        return NULL;
    snprintf(c->tmp, sizeof c->tmp, "%02d", (int)r + 1);
    return c->tmp;
}
static const char *g_red_total(ctx *c)
{
    return c->d->total_amount;
}
static const char *g_red_tax(ctx *c)
{
    return c->d->total_tax;
}
static const char *g_line(ctx *c)
{
    snprintf(c->tmp, sizeof c->tmp, "%d", c->line);
    return c->tmp;
}
/* The blue line a red line reverses: the stored red document does not name
 * it yet (docs/upstream.md §3, "gaps"), so the line's own number stands in,
 * which holds while red lines follow the blue's order one for one. */
static const char *g_blue_line(ctx *c)
{
    return c->d->red || c->blue ? g_line(c) : NULL;
}
/* "*信息技术服务*软件维护服务费": spfwjc is between the stars, xmmc after. */
static const char *g_short(ctx *c)
{
    const char *n = c->it->name, *e = n[0] == '*' ? strchr(n + 1, '*') : NULL;
    snprintf(c->tmp, sizeof c->tmp, "%.*s", e ? (int)(e - n - 1) : 0, n + 1);
    return c->tmp;
}
static const char *g_item_name(ctx *c)
{
    const char *n = c->it->name, *e = n[0] == '*' ? strchr(n + 1, '*') : NULL;
    return e ? e + 1 : n;
}
static const char *g_kind(ctx *c)
{
    static const char *const k[] = {
        [FP_LINE_NORMAL] = "00", [FP_LINE_DISCOUNT] = "01", [FP_LINE_DISCOUNTED] = "02"};
    return k[c->it->kind];
}
/* policy → yhzcbs (01 简易征收, 03 免税, 04 不征税; the reduced rate has no
 * code of its own in the sources) */
static const char *g_policy(ctx *c)
{
    static const struct {
        const char *ours, *theirs;
    } p[] = {{"simplified", "01"}, {"exempt", "03"}, {"non_taxable", "04"}};
    for (size_t i = 0; c->it->policy && i < sizeof p / sizeof p[0]; i++)
        if (!strcmp(c->it->policy, p[i].ours))
            return p[i].theirs;
    return "";
}

static const row rows[] = {
    {L_INVOICE, "fphm", "number", DOC(number), NULL},
    {L_INVOICE, "lzfpbz", "color: blue 0, red 1", NONE, g_red_flag},
    {L_INVOICE, "ptbh", "[upstream] ptbh", NONE, g_ptbh},
    {L_INVOICE, "fppz", "invoice_type (01, 02)", NONE, g_type},
    {L_INVOICE, "fpkjfsDm", "(constant 5: self-built system)", NONE, g_self_built},
    {L_INVOICE, "tdys", "(empty: no special element)", NONE, g_empty},
    {L_INVOICE, "kprq", "issued_at as yyyy-MM-dd HH:mm:ss", NONE, g_kprq},
    {L_INVOICE, "xsfnsrsbh", "seller.tax_id", PARTY(seller, tax_id), NULL},
    {L_INVOICE, "xsfmc", "seller.name", PARTY(seller, name), NULL},
    {L_INVOICE, "xsfdz", "seller.address", PARTY(seller, address), NULL},
    {L_INVOICE, "xsfdh", "seller.phone", PARTY(seller, phone), NULL},
    {L_INVOICE, "xsfkhh", "seller.bank", PARTY(seller, bank), NULL},
    {L_INVOICE, "xsfzh", "seller.account", PARTY(seller, account), NULL},
    {L_INVOICE, "gmfnsrsbh", "buyer.tax_id", PARTY(buyer, tax_id), NULL},
    {L_INVOICE, "gmfmc", "buyer.name", PARTY(buyer, name), NULL},
    {L_INVOICE, "gmfdz", "buyer.address", PARTY(buyer, address), NULL},
    {L_INVOICE, "gmfdh", "buyer.phone", PARTY(buyer, phone), NULL},
    {L_INVOICE, "gmfkhh", "buyer.bank", PARTY(buyer, bank), NULL},
    {L_INVOICE, "gmfzh", "buyer.account", PARTY(buyer, account), NULL},
    {L_INVOICE, "gmfzrrbz", "buyer.natural_person: Y / N", NONE, g_natural},
    {L_INVOICE, "hjje", "total_amount", DOC(total_amount), NULL},
    {L_INVOICE, "hjse", "total_tax", DOC(total_tax), NULL},
    {L_INVOICE, "jshj", "total_with_tax", DOC(total_with_tax), NULL},
    {L_INVOICE, "kpr", "drawer", DOC(drawer), NULL},
    {L_INVOICE, "bz", "remark", DOC(remark), NULL},
    {L_INVOICE, "dylzfphm", "red: original_number", DOC(original_number), NULL},
    {L_INVOICE, "hzqrxxdbh", "red: the form's number (hzfpxxqrdbh) on the platform", NONE,
     g_form_number},
    {L_INVOICE, "hzqrduuid", "red: the form's uuid on the platform", NONE, g_form_uuid},
    {L_LINE, "mxxh", "items[] position, from 1", NONE, g_line},
    {L_LINE, "dylzfpmxxh", "red: the blue line (see gaps)", NONE, g_blue_line},
    {L_LINE, "xmmc", "items[].name after *short name*", NONE, g_item_name},
    {L_LINE, "spfwjc", "items[].name between the stars", NONE, g_short},
    {L_LINE, "hwhyslwfwmc", "items[].name (*spfwjc*xmmc)", ITEM(name), NULL},
    {L_LINE, "sphfwssflhbbm", "items[].tax_code (19 digits)", ITEM(tax_code), NULL},
    {L_LINE, "ggxh", "items[].spec", ITEM(spec), NULL},
    {L_LINE, "dw", "items[].unit", ITEM(unit), NULL},
    {L_LINE, "sl", "items[].quantity", ITEM(quantity), NULL},
    {L_LINE, "dj", "items[].unit_price (net)", ITEM(unit_price), NULL},
    {L_LINE, "je", "items[].amount", ITEM(amount), NULL},
    {L_LINE, "slv", "items[].tax_rate", ITEM(tax_rate), NULL},
    {L_LINE, "se", "items[].tax", ITEM(tax), NULL},
    {L_LINE, "hsje", "items[].amount_with_tax", ITEM(amount_with_tax), NULL},
    {L_LINE, "kce", "(empty: no deduction)", NONE, g_empty},
    {L_LINE, "yhzcbs", "items[].policy: simplified 01, exempt 03, non_taxable 04", NONE, g_policy},
    {L_LINE, "fphxz", "items[].line_kind: normal 00, discount 01, discounted 02", NONE, g_kind},
    {L_FORM, "xsfnsrsbh", "blue seller.tax_id", PARTY(seller, tax_id), NULL},
    {L_FORM, "xsfmc", "blue seller.name", PARTY(seller, name), NULL},
    {L_FORM, "gmfnsrsbh", "blue buyer.tax_id", PARTY(buyer, tax_id), NULL},
    {L_FORM, "gmfmc", "blue buyer.name", PARTY(buyer, name), NULL},
    {L_FORM, "lrfsf", "(constant 0: the seller enters the form)", NONE, g_seller_enters},
    {L_FORM, "lzfphm", "blue number", DOC(number), NULL},
    {L_FORM, "lzfppzDm", "blue invoice_type", NONE, g_blue_type},
    {L_FORM, "lzkprq", "blue issued_at as yyyy-MM-dd HH:mm:ss", NONE, g_blue_kprq},
    {L_FORM, "lzhjje", "blue total_amount", DOC(total_amount), NULL},
    {L_FORM, "lzhjse", "blue total_tax", DOC(total_tax), NULL},
    {L_FORM, "hzcxje", "red total_amount (negative)", NONE, g_red_total},
    {L_FORM, "hzcxse", "red total_tax (negative)", NONE, g_red_tax},
    {L_FORM, "chyyDm",
     "red_reason: issue_error 01, sales_return 02, service_stop 03, "
     "allowance 04",
     NONE, g_reason},
    {L_FORM_LINE, "xh", "red items[] position, from 1", NONE, g_line},
    {L_FORM_LINE, "lzmxxh", "the blue line (see gaps)", NONE, g_blue_line},
    {L_FORM_LINE, "sphfwssflhbbm", "red items[].tax_code", ITEM(tax_code), NULL},
    {L_FORM_LINE, "hwhyslwfwmc", "red items[].name", ITEM(name), NULL},
    {L_FORM_LINE, "xmmc", "red items[].name after *short name*", NONE, g_item_name},
    {L_FORM_LINE, "spfwjc", "red items[].name between the stars", NONE, g_short},
    {L_FORM_LINE, "ggxh", "red items[].spec", ITEM(spec), NULL},
    {L_FORM_LINE, "dw", "red items[].unit", ITEM(unit), NULL},
    {L_FORM_LINE, "fpspsl", "red items[].quantity", ITEM(quantity), NULL},
    {L_FORM_LINE, "fpspdj", "red items[].unit_price", ITEM(unit_price), NULL},
    {L_FORM_LINE, "je", "red items[].amount", ITEM(amount), NULL},
    {L_FORM_LINE, "sl1", "red items[].tax_rate", ITEM(tax_rate), NULL},
    {L_FORM_LINE, "se", "red items[].tax", ITEM(tax), NULL},
};

const fp_up_field *fp_up_field_at(size_t i)
{
    static fp_up_field out[sizeof rows / sizeof rows[0]];
    if (i >= sizeof rows / sizeof rows[0])
        return NULL;
    out[i] = (fp_up_field){level_names[rows[i].level], rows[i].name, rows[i].source};
    return &out[i];
}

/* Adds level's rows to obj; a NULL value (an absent optional member) is
 * left out, an empty one is sent as "". */
static int fill(cJSON *obj, enum level level, ctx *c, const void *base)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].level != level)
            continue;
        const char *v =
            rows[i].get ? rows[i].get(c) : *(const char *const *)((const char *)base + rows[i].off);
        if (v && !cJSON_AddStringToObject(obj, rows[i].name, v))
            return FP_ENOMEM;
    }
    return 0;
}

/* An object of level's rows and, under list_name, one object per line. */
static cJSON *build(enum level level, ctx *c, const fp_invoice_doc *head,
                    const fp_invoice_doc *lines, const char *list_name, fp_err *err)
{
    cJSON *o = cJSON_CreateObject(), *list = NULL;
    if (!o || fill(o, level, c, head) || !(list = cJSON_AddArrayToObject(o, list_name)))
        goto oom;
    for (int i = 0; i < lines->nitems; i++) {
        cJSON *l = cJSON_CreateObject();
        if (!l || !cJSON_AddItemToArray(list, l))
            goto oom;
        c->it = &lines->items[i];
        c->line = i + 1;
        if (fill(l, level + 1, c, c->it))
            goto oom;
    }
    return o;
oom:
    cJSON_Delete(o);
    fp_fail(err, FP_ENOMEM, "out of memory");
    return NULL;
}

cJSON *fp_up_invoice_fields(const fp_invoice_doc *d, const char *ptbh, const fp_up_red_ref *form,
                            fp_err *err)
{
    ctx c = {.d = d, .ptbh = ptbh, .form = form};
    if (d->red && (!form || !form->uuid || !*form->uuid || !form->number || !*form->number)) {
        fp_fail(err, FP_EINVAL,
                "red invoice %s: the red form's platform uuid and number (hzqrduuid, "
                "hzqrxxdbh) are missing",
                d->number);
        return NULL;
    }
    return build(L_INVOICE, &c, d, d, "fpmxList", err);
}

cJSON *fp_up_red_form_fields(const fp_invoice_doc *blue, const fp_invoice_doc *red, fp_err *err)
{
    if (!red->red_reason) {
        fp_fail(err, FP_EINVAL, "the red draft has no reason");
        return NULL;
    }
    ctx c = {.d = red, .blue = blue};
    return build(L_FORM, &c, blue, red, "hzqrdmxList", err);
}
