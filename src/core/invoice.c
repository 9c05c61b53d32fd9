/* invoice.c — parse, validate and compute an issue request.
 *
 * Validation collects every refusal (field path + code + zh/en message)
 * instead of stopping at the first, so a caller fixes a request in one round
 * trip.  All arithmetic is integer fen (money.c); the caller's amounts, when
 * given, are checked against the official tolerances, otherwise computed.
 * The rules and where they come from: docs/domain.md.  The response
 * document (fp_invoice_render) is written in invoice_doc.c, beside its
 * reader. */
#include "fapiao/invoice.h"
#include "fapiao/money.h"
#include "fapiao/taxid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

void fp_errors_add(fp_errors *es, fp_code code, const char *field, const char *zh, const char *en)
{
    if (es->n >= FP_MAX_FIELD_ERRORS) {
        es->dropped++;
        return;
    }
    fp_field_error *e = &es->e[es->n++];
    const fp_code_info *ci = fp_code_get(code);
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    snprintf(e->zh, sizeof e->zh, "%s", zh ? zh : ci->zh);
    snprintf(e->en, sizeof e->en, "%s", en ? en : ci->en);
}

fp_code fp_errors_top(const fp_errors *es)
{
    if (es->n == 0)
        return FPC_NONE;
    for (int i = 1; i < es->n; i++)
        if (es->e[i].code != es->e[0].code)
            return FPC_INVALID_FIELD;
    return es->e[0].code;
}

/* ---- field access with type, presence and length checks ---- */

typedef struct ctx {
    fp_errors *es;
    char path[64];
} ctx;

static const char *fpath(char *buf, size_t n, const char *base, const char *key)
{
    if (base && *base)
        snprintf(buf, n, "%s.%s", base, key);
    else
        snprintf(buf, n, "%s", key);
    return buf;
}

static void add(fp_errors *es, fp_code c, const char *field, const char *zh, const char *en)
{
    fp_errors_add(es, c, field, zh, en);
}

/* Unknown keys of obj not in allowed[] (NULL-terminated). */
static void check_unknown(const cJSON *obj, const char *base, const char *const *allowed,
                          fp_errors *es)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, c->string) == 0;
        if (!ok) {
            char p[64], zh[192], en[192];
            snprintf(zh, sizeof zh, "未定义的字段“%.60s”", c->string);
            snprintf(en, sizeof en, "Unknown field '%.60s'", c->string);
            add(es, FPC_UNKNOWN_FIELD, fpath(p, sizeof p, base, c->string), zh, en);
        }
    }
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* 1 if s is empty after trimming ASCII whitespace and the full-width space
 * U+3000 (E3 80 80): such a required field counts as missing. */
static int is_blank(const char *s)
{
    for (;;) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f')
            s++;
        else if ((unsigned char)s[0] == 0xE3 && (unsigned char)s[1] == 0x80 &&
                 (unsigned char)s[2] == 0x80)
            s += 3;
        else
            return *s == 0;
    }
}

/* A string field: NULL when absent (reported if required) or invalid. */
static const char *get_str(const cJSON *obj, const char *key, const char *base, int required,
                           size_t maxchars, fp_errors *es)
{
    char p[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            char zh[192], en[192];
            snprintf(zh, sizeof zh, "缺少必填字段 %s", fpath(p, sizeof p, base, key));
            snprintf(en, sizeof en, "Missing required field %s", p);
            add(es, FPC_FIELD_REQUIRED, p, zh, en);
        }
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        char zh[192], en[192];
        snprintf(zh, sizeof zh, "字段 %s 必须是字符串", fpath(p, sizeof p, base, key));
        snprintf(en, sizeof en, "Field %s must be a string", p);
        add(es, FPC_FIELD_TYPE, p, zh, en);
        return NULL;
    }
    const char *s = v->valuestring;
    if (required && is_blank(s)) {
        char zh[192], en[192];
        snprintf(zh, sizeof zh, "字段 %s 不能为空或只含空格", fpath(p, sizeof p, base, key));
        snprintf(en, sizeof en, "Field %s must not be empty or blank", p);
        add(es, FPC_FIELD_REQUIRED, p, zh, en);
        return NULL;
    }
    if (fp_utf8_len(s) > maxchars) {
        char zh[192], en[192];
        snprintf(zh, sizeof zh, "字段 %s 超过 %zu 个字符", fpath(p, sizeof p, base, key), maxchars);
        snprintf(en, sizeof en, "Field %s is longer than %zu characters", p, maxchars);
        add(es, FPC_INVALID_FIELD, p, zh, en);
        return NULL;
    }
    if (has_control(s)) {
        char zh[192], en[192];
        snprintf(zh, sizeof zh, "字段 %s 含有控制字符", fpath(p, sizeof p, base, key));
        snprintf(en, sizeof en, "Field %s contains control characters", p);
        add(es, FPC_INVALID_FIELD, p, zh, en);
        return NULL;
    }
    return s;
}

/* A boolean field; returns def when absent, -1 on a type error. */
static int get_bool(const cJSON *obj, const char *key, const char *base, int def, fp_errors *es)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return def;
    if (!cJSON_IsBool(v)) {
        char p[64], zh[192], en[192];
        snprintf(zh, sizeof zh, "字段 %s 必须是布尔值", fpath(p, sizeof p, base, key));
        snprintf(en, sizeof en, "Field %s must be true or false", p);
        add(es, FPC_FIELD_TYPE, p, zh, en);
        return -1;
    }
    return cJSON_IsTrue(v);
}

/* Money field: 1 when present and valid (value in *fen), 0 when absent,
 * -1 when invalid (reported). */
static int get_money(const cJSON *obj, const char *key, const char *base, int64_t *fen,
                     fp_errors *es)
{
    char p[64];
    const char *s = get_str(obj, key, base, 0, 40, es);
    if (!s)
        return cJSON_GetObjectItemCaseSensitive(obj, key) &&
                       !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key))
                   ? -1
                   : 0;
    int rc = fp_money_parse(s, fen);
    if (rc < 0) {
        char zh[192], en[192];
        fpath(p, sizeof p, base, key);
        if (rc == FP_ERANGE) {
            snprintf(zh, sizeof zh, "金额 %s 最多两位小数、16 位整数", p);
            snprintf(en, sizeof en, "Amount %s allows at most 2 decimals and 16 integer digits", p);
        } else {
            snprintf(zh, sizeof zh, "金额 %s 不是有效的十进制数字符串", p);
            snprintf(en, sizeof en, "Amount %s is not a valid decimal string", p);
        }
        add(es, FPC_INVALID_FIELD, p, zh, en);
        return -1;
    }
    return 1;
}

/* ---- rules ---- */

static const int allowed_rates[] = {1300, 900, 600, 500, 300, 150, 100, 0};

static int rate_allowed(int bp)
{
    for (size_t i = 0; i < sizeof allowed_rates / sizeof allowed_rates[0]; i++)
        if (allowed_rates[i] == bp)
            return 1;
    return 0;
}

static const struct {
    const char *name;
    fp_policy policy;
} policies[] = {
    {"exempt", FP_POLICY_EXEMPT},
    {"non_taxable", FP_POLICY_NON_TAXABLE},
    {"simplified", FP_POLICY_SIMPLIFIED},
    {"reduced_1_5", FP_POLICY_REDUCED},
};

const char *fp_policy_name(fp_policy p)
{
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (policies[i].policy == p)
            return policies[i].name;
    return NULL;
}

fp_policy fp_policy_from_name(const char *s)
{
    for (size_t i = 0; s && i < sizeof policies / sizeof policies[0]; i++)
        if (strcmp(policies[i].name, s) == 0)
            return policies[i].policy;
    return FP_POLICY_NONE;
}

static void parse_party(const cJSON *b, fp_party *pt, int tax_id_required, fp_invoice *inv,
                        fp_errors *es)
{
    static const char *const allowed[] = {"name",    "tax_id",         "address", "phone", "bank",
                                          "account", "natural_person", "email",   NULL};
    const char *base = "buyer";
    check_unknown(b, base, allowed, es);
    pt->name = get_str(b, "name", base, 1, 300, es);
    pt->tax_id = get_str(b, "tax_id", base, tax_id_required, 20, es);
    pt->address = get_str(b, "address", base, 0, 300, es);
    pt->phone = get_str(b, "phone", base, 0, 60, es);
    pt->bank = get_str(b, "bank", base, 0, 120, es);
    pt->account = get_str(b, "account", base, 0, 100, es);
    pt->email = get_str(b, "email", base, 0, 254, es);
    pt->natural_person = get_bool(b, "natural_person", base, 0, es);
    if (pt->tax_id && *pt->tax_id) {
        /* a natural person's id may be a resident id number (GB 11643) */
        fp_taxid_kind k = pt->natural_person > 0 ? fp_taxid_classify_person(pt->tax_id)
                                                 : fp_taxid_classify(pt->tax_id);
        if (k == FP_TAXID_INVALID && pt->natural_person > 0 && fp_resident_id_shape(pt->tax_id))
            add(es, FPC_INVALID_TAX_ID, "buyer.tax_id",
                "购买方（自然人）身份证号码校验码不符（GB 11643）",
                "The natural-person buyer's resident id number has a wrong check character (GB "
                "11643)");
        else if (k == FP_TAXID_INVALID)
            add(es, FPC_INVALID_TAX_ID, "buyer.tax_id",
                "购买方纳税人识别号无效（18 位统一社会信用代码校验位不符，或长度不是 15/17/18/20 "
                "位）",
                "The buyer's taxpayer id is invalid (USCC check character wrong, or length not "
                "15/17/18/20)");
        else if (k == FP_TAXID_LEGACY && inv->nwarnings < 4)
            snprintf(inv->warnings[inv->nwarnings++], sizeof inv->warnings[0], "LEGACY_TAX_ID");
    }
    if (pt->email && *pt->email && !strchr(pt->email, '@'))
        add(es, FPC_INVALID_FIELD, "buyer.email", "电子邮箱格式无效",
            "The e-mail address is invalid");
}

static void item_err(fp_errors *es, fp_code c, int i, const char *key, const char *zh,
                     const char *en)
{
    char p[64];
    snprintf(p, sizeof p, "items[%d].%s", i, key);
    add(es, c, p, zh, en);
}

/* One item line on its way through parse_item's steps: what was read and
 * what the steps so far decided.  A step returns 1 when parse_item stops
 * at it (the line is refused, or further checks would only add noise). */
typedef struct line {
    const cJSON *it;
    int i;
    char base[32];
    int nerr; /* es->n before this line */
    const char *rate;
    int64_t amount, tax, gross;
    int has_amount, has_tax, has_gross; /* 1 valid, 0 absent, -1 refused */
    const fp_taxcode *tc;
    int rate_ok;
    fp_dec q, up;
    int has_qp;
    int incl, zero_tax;
} line;

/* The members, their types and lengths, line_kind and policy. */
static void item_fields(line *L, fp_item *item, fp_errors *es)
{
    static const char *const allowed[] = {"name",     "tax_code",        "spec",      "unit",
                                          "quantity", "unit_price",      "amount",    "tax_rate",
                                          "tax",      "amount_with_tax", "line_kind", "policy",
                                          NULL};
    const cJSON *it = L->it;
    const char *base = L->base;
    check_unknown(it, base, allowed, es);
    item->name = get_str(it, "name", base, 1, 600, es);
    item->tax_code = get_str(it, "tax_code", base, 1, 19, es);
    item->spec = get_str(it, "spec", base, 0, 150, es);
    item->unit = get_str(it, "unit", base, 0, 300, es);
    item->quantity = get_str(it, "quantity", base, 0, FP_DEC_MAXLEN, es);
    item->unit_price = get_str(it, "unit_price", base, 0, FP_DEC_MAXLEN, es);
    L->rate = get_str(it, "tax_rate", base, 1, 8, es);
    const char *kind = get_str(it, "line_kind", base, 0, 16, es);
    const char *policy = get_str(it, "policy", base, 0, 32, es);
    L->has_amount = get_money(it, "amount", base, &L->amount, es);
    L->has_tax = get_money(it, "tax", base, &L->tax, es);
    L->has_gross = get_money(it, "amount_with_tax", base, &L->gross, es);

    item->kind = FP_LINE_NORMAL;
    if (kind && strcmp(kind, "normal") != 0) {
        if (strcmp(kind, "discount") == 0)
            item->kind = FP_LINE_DISCOUNT;
        else
            item_err(es, FPC_INVALID_FIELD, L->i, "line_kind",
                     "line_kind 只能是 normal 或 discount", "line_kind must be normal or discount");
    }
    item->policy = FP_POLICY_NONE;
    if (policy && *policy) {
        int found = 0;
        for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++)
            if (strcmp(policy, policies[k].name) == 0) {
                item->policy = policies[k].policy;
                found = 1;
            }
        if (!found)
            item_err(es, FPC_INVALID_FIELD, L->i, "policy",
                     "policy 只能是 exempt、non_taxable、simplified 或 reduced_1_5",
                     "policy must be exempt, non_taxable, simplified or reduced_1_5");
    }
}

/* The tax classification code, and the refusals from practice
 * (docs/domain.md §7): no 免税/不征税 on a 专票; the not-taxable category
 * (codes starting with 6) and the 不征税 flag go together. */
static void item_code(line *L, const fp_invoice *inv, fp_item *item, const fp_taxcode_table *codes,
                      fp_errors *es)
{
    int i = L->i;
    const fp_taxcode *tc = NULL;
    if (item->tax_code) {
        if (!fp_taxcode_valid_shape(item->tax_code))
            item_err(es, FPC_INVALID_TAX_CODE, i, "tax_code",
                     "税收分类编码须为 19 位数字，首位 1–6，层级结构正确",
                     "The tax classification code must be 19 digits, first digit 1-6, with a valid "
                     "level structure");
        else if (codes && !(tc = fp_taxcode_find(codes, item->tax_code)))
            item_err(es, FPC_INVALID_TAX_CODE, i, "tax_code", "税收分类编码不在编码表中",
                     "The tax classification code is not in the code table");
        else if (tc && tc->summary)
            item_err(es, FPC_INVALID_TAX_CODE, i, "tax_code", "汇总项编码不能用于开票",
                     "A summary (汇总) code cannot be used on an invoice");
    }
    item->short_name = tc ? tc->short_name : "";
    L->tc = tc;

    if ((item->policy == FP_POLICY_EXEMPT || item->policy == FP_POLICY_NON_TAXABLE) &&
        strcmp(inv->invoice_type, "01") == 0)
        item_err(es, FPC_SPECIAL_INVOICE_NOT_ALLOWED, i, "policy",
                 "增值税专用发票不能开具免税或不征税项目",
                 "A special VAT invoice (01) cannot carry exempt or not-taxable lines");
    if (item->tax_code && fp_taxcode_valid_shape(item->tax_code)) {
        int cat6 = item->tax_code[0] == '6';
        if (cat6 && item->policy != FP_POLICY_NON_TAXABLE)
            item_err(
                es, FPC_NON_TAXABLE_MISMATCH, i, "policy",
                "不征税类税收分类编码（6 开头）须使用不征税标识 non_taxable，税率为 0",
                "A not-taxable tax code (starting with 6) needs policy non_taxable and rate 0");
        else if (!cat6 && item->policy == FP_POLICY_NON_TAXABLE)
            item_err(es, FPC_NON_TAXABLE_MISMATCH, i, "policy",
                     "不征税标识只能用于不征税类税收分类编码（6 开头）",
                     "policy non_taxable is only for not-taxable tax codes (starting with 6)");
    }
}

/* The rate: one of the allowed, one the tax code allows, and one that fits
 * the policy flag; sets L->rate_ok. */
static void item_rate(line *L, fp_item *item, fp_errors *es)
{
    int i = L->i;
    const fp_taxcode *tc = L->tc;
    L->rate_ok = 0;
    if (!L->rate)
        return;
    if (fp_rate_parse(L->rate, &item->rate_bp) < 0 || !rate_allowed(item->rate_bp)) {
        item_err(es, FPC_RATE_NOT_ALLOWED, i, "tax_rate",
                 "税率须为 0.13、0.09、0.06、0.05、0.03、0.015、0.01 或 0",
                 "The rate must be one of 0.13, 0.09, 0.06, 0.05, 0.03, 0.015, 0.01, 0");
    } else if (tc && tc->nrates > 0) {
        int ok = 0;
        for (int k = 0; k < tc->nrates; k++)
            ok |= tc->rates_bp[k] == item->rate_bp;
        if (!ok)
            item_err(es, FPC_RATE_NOT_ALLOWED, i, "tax_rate", "该税收分类编码不适用此税率",
                     "This rate is not allowed for the tax classification code");
        else
            L->rate_ok = 1;
    } else {
        L->rate_ok = 1;
    }
    if (L->rate_ok) {
        fp_policy pol = item->policy;
        int bad =
            ((pol == FP_POLICY_EXEMPT || pol == FP_POLICY_NON_TAXABLE) && item->rate_bp != 0) ||
            (pol == FP_POLICY_SIMPLIFIED && item->rate_bp != 500 && item->rate_bp != 300 &&
             item->rate_bp != 100) ||
            (pol == FP_POLICY_REDUCED && item->rate_bp != 150) ||
            (pol == FP_POLICY_NONE && item->rate_bp == 150);
        if (bad) {
            item_err(es, FPC_RATE_NOT_ALLOWED, i, "tax_rate", "税率与优惠政策标识不符",
                     "The rate does not match the policy flag");
            L->rate_ok = 0;
        }
    }
}

/* Quantity and unit price come as a pair; sets L->q, L->up, L->has_qp. */
static void item_qty_price(line *L, const fp_item *item, fp_errors *es)
{
    int i = L->i;
    L->has_qp = 0;
    /* present but already refused (e.g. a number): no second error */
    int q_bad = !item->quantity && cJSON_GetObjectItemCaseSensitive(L->it, "quantity");
    int p_bad = !item->unit_price && cJSON_GetObjectItemCaseSensitive(L->it, "unit_price");
    if (!(item->quantity || item->unit_price) || q_bad || p_bad)
        return;
    if (!item->quantity || !item->unit_price) {
        item_err(es, FPC_FIELD_REQUIRED, i, item->quantity ? "unit_price" : "quantity",
                 "数量与单价须同时提供", "quantity and unit_price must be given together");
        return;
    }
    int okq = fp_dec_parse(item->quantity, &L->q) == 0;
    int okp = fp_dec_parse(item->unit_price, &L->up) == 0;
    if (!okq)
        item_err(es, FPC_INVALID_FIELD, i, "quantity",
                 "数量须为最多 13 位小数、25 个字符的十进制数",
                 "quantity must be a decimal of at most 25 characters and 13 decimals");
    if (!okp)
        item_err(es, FPC_INVALID_FIELD, i, "unit_price",
                 "单价须为最多 13 位小数、25 个字符的十进制数",
                 "unit_price must be a decimal of at most 25 characters and 13 decimals");
    if (!okq || !okp)
        return;
    if (L->q.neg || fp_dec_is_zero(&L->q))
        item_err(es, FPC_INVALID_FIELD, i, "quantity", "蓝字发票数量须大于 0",
                 "quantity must be positive on a blue invoice");
    else if (L->up.neg)
        item_err(es, FPC_INVALID_FIELD, i, "unit_price", "单价不能为负",
                 "unit_price must not be negative");
    else
        L->has_qp = 1;
}

/* A discount line's shape: right after a normal line, same name, code,
 * rate and policy, no spec, unit, quantity or price. */
static int item_discount_shape(line *L, const fp_invoice *inv, const fp_item *item, fp_errors *es)
{
    int i = L->i;
    const fp_item *prev = i > 0 ? &inv->items[i - 1] : NULL;
    /* A valid normal line always has a positive amount; zero means the
     * previous line was refused already and comparing would only add
     * false errors. */
    if (prev && prev->kind == FP_LINE_NORMAL && prev->amount == 0)
        return 1;
    if (item->spec || item->unit || item->quantity || item->unit_price)
        item_err(es, FPC_INVALID_DISCOUNT, i, "line_kind", "折扣行不能有规格型号、单位、数量或单价",
                 "A discount line has no spec, unit, quantity or unit price");
    if (!prev || prev->kind != FP_LINE_NORMAL || !prev->name)
        item_err(es, FPC_INVALID_DISCOUNT, i, "line_kind", "折扣行必须紧跟在一个普通商品行之后",
                 "A discount line must directly follow a normal line");
    else if (strcmp(prev->name, item->name) || strcmp(prev->tax_code, item->tax_code) ||
             prev->rate_bp != item->rate_bp || prev->policy != item->policy)
        item_err(es, FPC_INVALID_DISCOUNT, i, "line_kind",
                 "折扣行的名称、税收分类编码、税率和优惠政策须与被折扣行一致",
                 "A discount line must have the name, tax code, rate and policy of the line it "
                 "discounts");
    return es->n > L->nerr;
}

/* The net amount (and, tax-inclusive, the gross): given and checked
 * against quantity × unit price, or computed from them. */
static int item_amount(line *L, const fp_invoice *inv, const fp_item *item, fp_errors *es)
{
    int i = L->i;
    int64_t from_qp = 0;
    if (L->has_qp && fp_dec_mul_fen(&L->q, &L->up, &from_qp) < 0) {
        item_err(es, FPC_AMOUNT_OUT_OF_RANGE, i, "quantity",
                 "数量 × 单价超出金额上限（16 位整数、2 位小数）",
                 "quantity × unit_price exceeds the largest amount (16 integer digits, 2 "
                 "decimals)");
        return 1;
    }
    if (!L->incl) {
        if (L->has_amount == 1) {
            /* |单价 × 数量 − 金额| <= 0.01, on the exact product */
            if (L->has_qp && !fp_dec_mul_within(&L->q, &L->up, L->amount, 1))
                item_err(es, FPC_TOLERANCE_EXCEEDED, i, "amount", "|单价×数量−金额| 超过 0.01",
                         "|unit_price × quantity − amount| exceeds 0.01");
        } else if (L->has_qp) {
            L->amount = from_qp;
        } else {
            item_err(es, FPC_FIELD_REQUIRED, i, "amount", "须提供金额，或数量与单价",
                     "Give amount, or quantity and unit_price");
            return 1;
        }
    } else {
        /* tax-inclusive: quantity × unit_price (or amount_with_tax) is gross */
        if (L->has_gross == 1) {
            if (L->has_qp && !fp_dec_mul_within(&L->q, &L->up, L->gross, 1))
                item_err(es, FPC_TOLERANCE_EXCEEDED, i, "amount_with_tax",
                         "|含税单价×数量−含税金额| 超过 0.01",
                         "|unit_price × quantity − amount_with_tax| exceeds 0.01");
        } else if (L->has_qp) {
            L->gross = from_qp;
        } else {
            item_err(es, FPC_FIELD_REQUIRED, i, "amount_with_tax",
                     "含税开票须提供含税金额，或数量与含税单价",
                     "With price_includes_tax, give amount_with_tax, or quantity and unit_price");
            return 1;
        }
        int64_t net = L->zero_tax ? L->gross : fp_net_of_gross(L->gross, item->rate_bp);
        if (L->has_amount == 1 && L->amount != net)
            item_err(es, FPC_TOLERANCE_EXCEEDED, i, "amount", "金额与含税金额换算结果不符",
                     "amount does not match amount_with_tax / (1 + rate)");
        L->amount = net;
    }
    int64_t amount = L->amount;
    if (item->kind == FP_LINE_DISCOUNT ? amount >= 0 : amount <= 0) {
        item_err(es, FPC_INVALID_FIELD, i, "amount",
                 item->kind == FP_LINE_DISCOUNT ? "折扣行金额须为负数"
                                                : "蓝字发票商品行金额须大于 0",
                 item->kind == FP_LINE_DISCOUNT ? "A discount line's amount must be negative"
                                                : "A normal line's amount must be positive");
        return 1;
    }
    if (item->kind == FP_LINE_DISCOUNT && -amount > inv->items[i - 1].amount) {
        item_err(es, FPC_INVALID_DISCOUNT, i, "amount", "折扣金额不能超过被折扣行金额",
                 "The discount exceeds the amount of the discounted line");
        return 1;
    }
    return 0;
}

/* The tax: given and within 0.06 of amount × rate, or computed; its sign
 * that of the amount, and a discount's no more than its line's. */
static int item_tax(line *L, const fp_invoice *inv, const fp_item *item, fp_errors *es)
{
    int i = L->i;
    int64_t amount = L->amount, tax = L->tax, gross = L->gross;
    int64_t computed_tax = L->zero_tax ? 0
                           : L->incl   ? gross - amount
                                       : fp_tax_of(amount, item->rate_bp);
    if (L->has_tax == 1) {
        /* |金额 × 税率 − 税额| <= 0.06, exact: amount*bp vs tax*10000 */
        __int128 diff = (__int128)amount * item->rate_bp - (__int128)tax * 10000;
        if (diff < 0)
            diff = -diff;
        if (L->zero_tax ? tax != 0 : diff > 6 * 10000)
            item_err(es, FPC_TOLERANCE_EXCEEDED, i, "tax", "|金额×税率−税额| 超过 0.06",
                     "|amount × rate − tax| exceeds 0.06");
    } else {
        tax = L->tax = computed_tax;
    }
    /* 税额 has the sign of 金额 (or is 0): positive on goods lines,
     * negative on discount lines */
    if (es->n == L->nerr && (item->kind == FP_LINE_DISCOUNT ? tax > 0 : tax < 0)) {
        item_err(es, FPC_INVALID_FIELD, i, "tax",
                 item->kind == FP_LINE_DISCOUNT ? "折扣行税额须为负数或 0，与金额同号"
                                                : "税额须为正数或 0，与金额同号",
                 item->kind == FP_LINE_DISCOUNT
                     ? "A discount line's tax must be negative or 0, like its amount"
                     : "The tax must be positive or 0, like the amount");
        return 1;
    }
    /* ... and so has a discounted line's net after its discount: a
     * discount takes no more tax than its line has, and all of it when it
     * takes the whole amount */
    if (es->n == L->nerr && item->kind == FP_LINE_DISCOUNT) {
        const fp_item *prev = &inv->items[i - 1];
        /* compared only with a line whose own tax passed (else that line's
         * refusal already says what is wrong) */
        __int128 pd = (__int128)prev->amount * prev->rate_bp - (__int128)prev->tax * 10000;
        int prev_ok = prev->tax >= 0 && pd <= 6 * 10000 && pd >= -6 * 10000;
        if (prev_ok && (-tax > prev->tax || (-amount == prev->amount && -tax != prev->tax)))
            item_err(es, FPC_INVALID_DISCOUNT, i, "tax",
                     "折扣行税额不能超过被折扣行税额；全额折扣时须等于被折扣行税额",
                     "A discount line's tax may not exceed the tax of its line, and must equal it "
                     "when the whole amount is discounted");
    }
    if (L->has_gross == 1 && !L->incl && gross != amount + tax)
        item_err(es, FPC_TOLERANCE_EXCEEDED, i, "amount_with_tax", "含税金额须等于金额加税额",
                 "amount_with_tax must equal amount + tax");
    if (L->incl && L->has_tax == 1 && gross != amount + tax)
        item_err(es, FPC_TOLERANCE_EXCEEDED, i, "tax", "含税金额须等于金额加税额",
                 "amount_with_tax must equal amount + tax");
    return 0;
}

/* A tax-inclusive line with quantity and price shows the net unit price
 * (docs/domain.md §3). */
static int item_net_price(line *L, fp_item *item, fp_errors *es)
{
    int i = L->i;
    if (!(L->incl && L->has_qp))
        return 0;
    if (item->amount == L->gross) { /* no tax: the caller's price as it is */
        item->unit_price_with_tax = item->unit_price;
        return 0;
    }
    /* The invoice shows the net unit price, amount ÷ quantity at up to 13
     * decimals, and it must meet |单价 × 数量 − 金额| <= 0.01 as printed;
     * the caller's gross price stays beside it. */
    fp_dec np;
    if (fp_unit_price(item->amount, &L->q, item->net_price, sizeof item->net_price) < 0 ||
        fp_dec_parse(item->net_price, &np) < 0) {
        item_err(es, FPC_AMOUNT_OUT_OF_RANGE, i, "quantity",
                 "不含税单价（金额 ÷ 数量）超过 25 个字符",
                 "The net unit price (amount ÷ quantity) needs more than 25 characters");
        return 1;
    }
    if (!fp_dec_mul_within(&L->q, &np, item->amount, 1)) {
        item_err(es, FPC_TOLERANCE_EXCEEDED, i, "quantity",
                 "数量过大：不含税单价保留 13 位小数后 |单价×数量−金额| 超过 0.01",
                 "The quantity is too large: with the net unit price at 13 decimals, "
                 "|unit_price × quantity − amount| exceeds 0.01");
        return 1;
    }
    item->unit_price_with_tax = item->unit_price;
    item->unit_price = item->net_price;
    return 0;
}

/* Line i: each step below in turn; a refused step ends the line. */
static void parse_item(const cJSON *it, int i, fp_invoice *inv, const fp_taxcode_table *codes,
                       fp_errors *es)
{
    fp_item *item = &inv->items[i];
    line L = {.it = it, .i = i};
    snprintf(L.base, sizeof L.base, "items[%d]", i);
    if (!cJSON_IsObject(it)) {
        add(es, FPC_FIELD_TYPE, L.base, "明细行必须是对象", "Each item must be an object");
        return;
    }
    L.nerr = es->n;
    item_fields(&L, item, es);
    item_code(&L, inv, item, codes, es);
    item_rate(&L, item, es);
    item_qty_price(&L, item, es);
    if (es->n > L.nerr || !L.rate_ok)
        return; /* arithmetic on broken input would only add noise */
    if (item->kind == FP_LINE_DISCOUNT && item_discount_shape(&L, inv, item, es))
        return;
    /* amounts: net (amount), tax, gross (amount_with_tax); 免税, 不征税 and
     * a 0% rate all carry tax 0.00 */
    L.incl = inv->price_includes_tax;
    L.zero_tax = item->policy == FP_POLICY_EXEMPT || item->policy == FP_POLICY_NON_TAXABLE ||
                 item->rate_bp == 0;
    if (item_amount(&L, inv, item, es) || item_tax(&L, inv, item, es))
        return;
    item->amount = L.amount;
    item->tax = L.tax;
    item->amount_with_tax = L.amount + L.tax;
    if (item_net_price(&L, item, es))
        return;
    if (item->kind == FP_LINE_DISCOUNT)
        inv->items[i - 1].kind = FP_LINE_DISCOUNTED;
}

int fp_invoice_parse(const char *body, size_t len, const fp_taxcode_table *codes, fp_invoice *inv,
                     fp_errors *es)
{
    return fp_invoice_parse_with(body, len, codes, NULL, inv, es);
}

int fp_invoice_parse_with(const char *body, size_t len, const fp_taxcode_table *codes,
                          const fp_invoice_defaults *def, fp_invoice *inv, fp_errors *es)
{
    static const char *const allowed[] = {
        "invoice_type", "price_includes_tax", "buyer", "items", "remark", "drawer", NULL};
    memset(inv, 0, sizeof *inv);
    es->n = es->dropped = 0;
    fp_code code = FPC_NONE;
    char detail[128];
    inv->doc = fp_json_parse(body, len, MAX_DEPTH, &code, detail, sizeof detail);
    if (!inv->doc) {
        const fp_code_info *ci = fp_code_get(code);
        char zh[192], en[192];
        snprintf(zh, sizeof zh, "%s：%s", ci->zh, detail);
        snprintf(en, sizeof en, "%s: %s", ci->en, detail);
        add(es, code, "", zh, en);
        return FP_EINVAL;
    }
    const cJSON *root = inv->doc;
    if (!cJSON_IsObject(root)) {
        add(es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象", "The body must be a JSON object");
        return FP_EINVAL;
    }
    check_unknown(root, "", allowed, es);
    const char *type = get_str(root, "invoice_type", "", 1, 2, es);
    if (type) {
        if (strcmp(type, "01") && strcmp(type, "02"))
            add(es, FPC_INVALID_FIELD, "invoice_type",
                "invoice_type 只能是 01（专票）或 02（普票）",
                "invoice_type must be 01 (special VAT) or 02 (ordinary)");
        else
            memcpy(inv->invoice_type, type, 3);
    }
    int incl = get_bool(root, "price_includes_tax", "", 0, es);
    inv->price_includes_tax = incl > 0;
    const char *def_drawer = def && def->drawer && *def->drawer ? def->drawer : NULL;
    const char *def_remark = def && def->remark && *def->remark ? def->remark : NULL;
    int has_drawer = cJSON_GetObjectItemCaseSensitive(root, "drawer") != NULL;
    inv->remark = get_str(root, "remark", "", 0, 450, es);
    /* an absent drawer takes the seller's default; a blank one is refused */
    inv->drawer = get_str(root, "drawer", "", !def_drawer || has_drawer, 300, es);
    if (!has_drawer && def_drawer)
        inv->drawer = def_drawer;
    if ((!inv->remark || !*inv->remark) && def_remark)
        inv->remark = def_remark;

    const cJSON *buyer = cJSON_GetObjectItemCaseSensitive(root, "buyer");
    if (!buyer || cJSON_IsNull(buyer))
        add(es, FPC_FIELD_REQUIRED, "buyer", "缺少必填字段 buyer", "Missing required field buyer");
    else if (!cJSON_IsObject(buyer))
        add(es, FPC_FIELD_TYPE, "buyer", "buyer 必须是对象", "buyer must be an object");
    else
        parse_party(buyer, &inv->buyer, type && strcmp(type, "01") == 0, inv, es);
    if (inv->buyer.natural_person > 0 && strcmp(inv->invoice_type, "01") == 0)
        add(es, FPC_SPECIAL_INVOICE_NOT_ALLOWED, "buyer.natural_person",
            "增值税专用发票不能开具给自然人",
            "A special VAT invoice (01) cannot go to a natural person");

    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
    if (!items || cJSON_IsNull(items)) {
        add(es, FPC_FIELD_REQUIRED, "items", "缺少必填字段 items", "Missing required field items");
    } else if (!cJSON_IsArray(items)) {
        add(es, FPC_FIELD_TYPE, "items", "items 必须是数组", "items must be an array");
    } else {
        int n = cJSON_GetArraySize(items);
        if (n == 0 || n > FP_MAX_ITEMS) {
            add(es, FPC_INVALID_FIELD, "items", "明细行须为 1 到 5000 行",
                "items must have 1 to 5000 lines");
        } else {
            inv->items = calloc((size_t)n, sizeof *inv->items);
            if (!inv->items) {
                add(es, FPC_INTERNAL, "items", "内存不足", "Out of memory");
                return FP_EINVAL;
            }
            inv->nitems = n;
            int i = 0;
            for (const cJSON *it = items->child; it; it = it->next, i++)
                parse_item(it, i, inv, codes, es);
        }
    }
    if (es->n > 0)
        return FP_EINVAL;

    /* Totals in 128 bits: 5,000 lines of (18,2) do not fit 64. */
    __int128 amount = 0, tax = 0, exact_tax = 0;
    for (int i = 0; i < inv->nitems; i++) {
        amount += inv->items[i].amount;
        tax += inv->items[i].tax;
        exact_tax += (__int128)inv->items[i].amount * inv->items[i].rate_bp;
    }
    /* Name the figure that is wrong: 合计金额, 合计税额 or 价税合计. */
    if (amount <= 0 || tax < 0 || amount + tax > FP_MONEY_MAX_FEN) {
        char zh[192], en[192], fig[FP_MONEY_STRLEN];
        if (amount <= 0) {
            fp_money_format(amount < -FP_MONEY_MAX_FEN ? -FP_MONEY_MAX_FEN : (int64_t)amount, fig);
            snprintf(zh, sizeof zh, "合计金额（不含税）为 %s，须大于 0", fig);
            snprintf(en, sizeof en, "The total amount before tax is %s; it must be positive", fig);
        } else if (tax < 0) {
            fp_money_format(tax < -FP_MONEY_MAX_FEN ? -FP_MONEY_MAX_FEN : (int64_t)tax, fig);
            snprintf(zh, sizeof zh, "合计税额为 %s，不能为负数", fig);
            snprintf(en, sizeof en, "The total tax is %s; it must not be negative", fig);
        } else {
            snprintf(zh, sizeof zh, "价税合计超过 9999999999999999.99（16 位整数、2 位小数）");
            snprintf(en, sizeof en,
                     "The total with tax exceeds 9999999999999999.99 (16 integer digits, 2 "
                     "decimals)");
        }
        add(es, FPC_AMOUNT_OUT_OF_RANGE, "items", zh, en);
        return FP_EINVAL;
    }
    /* |Σ(金额ᵢ × 税率ᵢ) − 合计税额| <= 1.27, exact in 1/10000 fen */
    __int128 dev = exact_tax - tax * 10000;
    if (dev < 0)
        dev = -dev;
    if (dev > (__int128)127 * 10000) {
        add(es, FPC_TOLERANCE_EXCEEDED, "items", "|Σ(金额×税率) − 合计税额| 超过 1.27",
            "|Σ(amount × rate) − total tax| exceeds 1.27");
        return FP_EINVAL;
    }
    inv->total_amount = (int64_t)amount;
    inv->total_tax = (int64_t)tax;
    inv->total_with_tax = (int64_t)(amount + tax);
    return 0;
}

void fp_invoice_clear(fp_invoice *inv)
{
    if (!inv)
        return;
    cJSON_Delete(inv->doc);
    free(inv->items);
    memset(inv, 0, sizeof *inv);
}

char *fp_invoice_canonical(const fp_invoice *inv)
{
    return inv->doc ? cJSON_PrintUnformatted(inv->doc) : NULL;
}

/* ---- response document ---- */
