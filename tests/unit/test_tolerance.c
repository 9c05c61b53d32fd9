/* test_tolerance.c — docs/domain.md's arithmetic at its edges, through
 * fp_invoice_parse: each tolerance exactly at its limit (accepted) and just
 * past it (refused with TOLERANCE_EXCEEDED at the right field), half-fen
 * rounding both ways and for negative (discount) amounts, tax-inclusive
 * conversions, 13-decimal prices, the (18,2) ceiling, and refusal variants
 * that test_invoice.c does not reach (it already has one case per code).
 *
 * Each row is a body built from an items array (optionally a line repeated
 * n times, then more lines), or a whole body. */
#include "check.h"

#include "fapiao/invoice.h"
#include "fapiao/json.h"
#include "fapiao/taxcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

/* codes of the sample table: 信息技术服务 0.06;0.03;0.01;0, 计算机配套产品
 * 0.13;0.03;0.01, 谷物 0.09;0.03;0.01;0 */
#define SVC   "\"name\":\"服务\",\"tax_code\":\"3040201000000000000\""
#define GOODS "\"name\":\"电脑\",\"tax_code\":\"1090511030000000000\""
#define GRAIN "\"name\":\"大米\",\"tax_code\":\"1010101010000000000\""
#define DISC  ",\"line_kind\":\"discount\""

static fp_taxcode_table *codes;

typedef struct tcase {
    const char *name;
    int incl;        /* price_includes_tax */
    const char *rep; /* a line repeated nrep times first */
    int nrep;
    const char *items;            /* further lines, comma-separated, or NULL */
    fp_code code;                 /* FPC_NONE: accepted */
    const char *field;            /* the one refusal's field */
    long long amount, tax, gross; /* totals (fen) when accepted */
    long long l0_amount, l0_tax;  /* items[0] when l0_set */
    int l0_set;
    int no_table;     /* parse without the code table */
    const char *body; /* a whole body instead */
    size_t len;       /* its length when it holds a NUL */
} tcase;

static char *build(const tcase *c)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    if (c->body) {
        fp_buf_append(&b, c->body, c->len ? c->len : strlen(c->body));
        return fp_buf_take(&b, NULL);
    }
    fp_buf_printf(
        &b,
        "{\"invoice_type\":\"02\",\"price_includes_tax\":%s,\"buyer\":{\"name\":\"某公司\"},"
        "\"drawer\":\"张三\",\"items\":[",
        c->incl ? "true" : "false");
    for (int i = 0; i < c->nrep; i++) {
        if (i)
            fp_buf_puts(&b, ",");
        fp_buf_printf(&b, "{%s}", c->rep);
    }
    if (c->items) {
        if (c->nrep)
            fp_buf_puts(&b, ",");
        fp_buf_puts(&b, c->items);
    }
    fp_buf_puts(&b, "]}");
    return fp_buf_take(&b, NULL);
}

static void run(const tcase *cs, size_t n, const char *table_name)
{
    for (size_t i = 0; i < n; i++) {
        const tcase *c = &cs[i];
        check_ctx("%s[%zu] %s", table_name, i, c->name);
        int failed_before = check_state.failed;
        char *body = build(c);
        size_t len = c->body && c->len ? c->len : strlen(body);
        fp_invoice inv;
        fp_errors es;
        int rc = fp_invoice_parse(body, len, c->no_table ? NULL : codes, &inv, &es);
        if (c->code == FPC_NONE) {
            if (CHECK_MSG(rc == 0, "refused: %d errors", es.n)) {
                CHECK_EQ_INT(inv.total_amount, c->amount);
                CHECK_EQ_INT(inv.total_tax, c->tax);
                CHECK_EQ_INT(inv.total_with_tax, c->gross);
                if (c->l0_set && CHECK(inv.nitems > 0)) {
                    CHECK_EQ_INT(inv.items[0].amount, c->l0_amount);
                    CHECK_EQ_INT(inv.items[0].tax, c->l0_tax);
                    CHECK_EQ_INT(inv.items[0].amount_with_tax, c->l0_amount + c->l0_tax);
                }
            }
        } else {
            CHECK_EQ_INT(rc, FP_EINVAL);
            if (CHECK_EQ_INT(es.n, 1)) {
                CHECK_MSG(es.e[0].code == c->code, "code %s, want %s",
                          fp_code_get(es.e[0].code)->name, fp_code_get(c->code)->name);
                CHECK_EQ_STR(es.e[0].field, c->field);
                CHECK(es.e[0].zh[0] && es.e[0].en[0]);
                CHECK_EQ_INT(fp_errors_top(&es), c->code);
            }
        }
        if (check_state.failed > failed_before) {
            for (int k = 0; rc != 0 && k < es.n; k++)
                fprintf(stderr, "    got %s at \"%s\": %s\n", fp_code_get(es.e[k].code)->name,
                        es.e[k].field, es.e[k].en);
            if (rc == 0)
                fprintf(stderr, "    accepted: %lld / %lld / %lld\n", (long long)inv.total_amount,
                        (long long)inv.total_tax, (long long)inv.total_with_tax);
        }
        fp_invoice_clear(&inv);
        free(body);
    }
    check_ctx("%s", "");
}

#define OK(a, t, g)     FPC_NONE, NULL, a, t, g
#define NO(code, field) code, field, 0, 0, 0

/* |单价 × 数量 − 金额| <= 0.01, compared on the exact product */
static const tcase qty_price[] = {
    {"product 100.01 (4 x 25.0025), amount 100.00: exactly 0.01", 0, NULL, 0,
     "{" SVC
     ",\"quantity\":\"4\",\"unit_price\":\"25.0025\",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"}",
     OK(10000, 600, 10600)},
    {"product 100.0100000000004, amount 100.00: just past", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"4\",\"unit_price\":\"25.0025000000001\",\"amount\":\"100.00\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount")},
    {"product 99.99 (4 x 24.9975), amount 100.00: exactly 0.01 below", 0, NULL, 0,
     "{" SVC
     ",\"quantity\":\"4\",\"unit_price\":\"24.9975\",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"}",
     OK(10000, 600, 10600)},
    {"product 99.9899999999996, amount 100.00: just past below", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"4\",\"unit_price\":\"24.9974999999999\",\"amount\":\"100.00\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount")},
    {"product 99.9999999999999, amount 99.99: 0.0099999999999", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"3\",\"unit_price\":\"33.3333333333333\",\"amount\":\"99.99\","
     "\"tax_rate\":\"0.06\"}",
     OK(9999, 600, 10599)},
    {"product 99.9999999999999, amount 100.01: 0.0100000000001", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"3\",\"unit_price\":\"33.3333333333333\",\"amount\":\"100.01\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount")},
    /* tax-inclusive: quantity x price is the gross */
    {"incl: product 100.01, amount_with_tax 100.00: exactly 0.01", 1, NULL, 0,
     "{" SVC ",\"quantity\":\"4\",\"unit_price\":\"25.0025\",\"amount_with_tax\":\"100.00\","
     "\"tax_rate\":\"0.06\"}",
     OK(9434, 566, 10000)},
    {"incl: product 100.0100000000004, amount_with_tax 100.00: just past", 1, NULL, 0,
     "{" SVC
     ",\"quantity\":\"4\",\"unit_price\":\"25.0025000000001\",\"amount_with_tax\":\"100.00\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount_with_tax")},
};

/* per line |金额 × 税率 − 税额| <= 0.06, exact */
static const tcase line_tax[] = {
    {"1.00 at 13%, tax 0.19: exactly +0.06", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"1.00\",\"tax_rate\":\"0.13\",\"tax\":\"0.19\"}", OK(100, 19, 119)},
    {"1.00 at 13%, tax 0.20: +0.07", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"1.00\",\"tax_rate\":\"0.13\",\"tax\":\"0.20\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax")},
    {"1.00 at 13%, tax 0.07: exactly -0.06", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"1.00\",\"tax_rate\":\"0.13\",\"tax\":\"0.07\"}", OK(100, 7, 107)},
    {"1.00 at 13%, tax 0.06: -0.07", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"1.00\",\"tax_rate\":\"0.13\",\"tax\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax")},
    {"33.34 at 6% (2.0004), tax 2.06: 0.0596", 0, NULL, 0,
     "{" SVC ",\"amount\":\"33.34\",\"tax_rate\":\"0.06\",\"tax\":\"2.06\"}", OK(3334, 206, 3540)},
    {"33.33 at 6% (1.9998), tax 2.06: 0.0602, just past", 0, NULL, 0,
     "{" SVC ",\"amount\":\"33.33\",\"tax_rate\":\"0.06\",\"tax\":\"2.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax")},
    {"33.33 at 6% (1.9998), tax 1.94: 0.0598", 0, NULL, 0,
     "{" SVC ",\"amount\":\"33.33\",\"tax_rate\":\"0.06\",\"tax\":\"1.94\"}", OK(3333, 194, 3527)},
    {"33.34 at 6% (2.0004), tax 1.94: 0.0604, just past", 0, NULL, 0,
     "{" SVC ",\"amount\":\"33.34\",\"tax_rate\":\"0.06\",\"tax\":\"1.94\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax")},
    {"discount -33.33 at 6%, tax -2.05: 0.0502", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount\":\"-33.33\",\"tax_rate\":\"0.06\",\"tax\":\"-2.05\"" DISC "}",
     OK(6667, 395, 7062)},
    {"discount -33.33 at 6%, tax -2.06: 0.0602, just past", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount\":\"-33.33\",\"tax_rate\":\"0.06\",\"tax\":\"-2.06\"" DISC "}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[1].tax")},
    /* 1.5% exists only with reduced_1_5, and no sample code allows it: no table */
    {"3.33 at 1.5% (0.04995), tax 0.10: 0.05005", 0, NULL, 0,
     "{" SVC
     ",\"amount\":\"3.33\",\"tax_rate\":\"0.015\",\"policy\":\"reduced_1_5\",\"tax\":\"0.10\"}",
     OK(333, 10, 343), 0, 0, 0, 1},
    {"3.33 at 1.5% (0.04995), tax 0.11: 0.06005, just past", 0, NULL, 0,
     "{" SVC
     ",\"amount\":\"3.33\",\"tax_rate\":\"0.015\",\"policy\":\"reduced_1_5\",\"tax\":\"0.11\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax"), 0, 0, 0, 1},
    {"exempt line, tax 0.00", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0\",\"policy\":\"exempt\",\"tax\":\"0.00\"}",
     OK(10000, 0, 10000)},
    {"not-taxable line, tax -0.01", 0, NULL, 0,
     "{\"name\":\"预付卡销售\",\"tax_code\":\"6010000000000000000\""
     ",\"amount\":\"100.00\",\"tax_rate\":\"0\",\"policy\":\"non_taxable\",\"tax\":\"-0.01\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax")},
};

/* |Σ(金额 × 税率) − 合计税额| <= 1.27: 21 lines at +0.06 (1.26) plus one */
#define L606 SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"6.06\""
#define L594 SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"5.94\""
static const tcase total_tax[] = {
    {"Σ deviation exactly +1.27", 0, L606, 21,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"6.01\"}",
     OK(220000, 13327, 233327)},
    {"Σ deviation +1.28", 0, L606, 21,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"6.02\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items")},
    {"Σ deviation +1.2696", 0, L606, 21,
     "{" SVC ",\"amount\":\"33.34\",\"tax_rate\":\"0.06\",\"tax\":\"2.01\"}",
     OK(213334, 12927, 226261)},
    {"Σ deviation +1.2702, just past", 0, L606, 21,
     "{" SVC ",\"amount\":\"33.33\",\"tax_rate\":\"0.06\",\"tax\":\"2.01\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items")},
    {"Σ deviation exactly -1.27", 0, L594, 21,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"5.99\"}",
     OK(220000, 13073, 233073)},
    {"Σ deviation -1.28", 0, L594, 21,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"5.98\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items")},
    /* only the final sum counts: 25 x +0.06 = 1.50 midway, 1.20 at the end */
    {"Σ deviation back under 1.27 after later lines", 0, L606, 25,
     "{" L594 "},{" L594 "},{" L594 "},{" L594 "},{" L594 "}", OK(300000, 18120, 318120)},
};

/* 含税金额 = 金额 + 税额, exactly */
static const tcase gross_exact[] = {
    {"amount_with_tax 106.00 = 100.00 + 6.00", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"amount_with_tax\":\"106.00\"}",
     OK(10000, 600, 10600)},
    {"amount_with_tax 105.99", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"amount_with_tax\":\"105.99\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount_with_tax")},
    {"amount_with_tax 106.06 = 100.00 + given 6.06", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"6.06\",\"amount_with_tax\":"
     "\"106.06\"}",
     OK(10000, 606, 10606)},
    {"amount_with_tax 106.05 with given tax 6.06", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\",\"tax\":\"6.06\",\"amount_with_tax\":"
     "\"106.05\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount_with_tax")},
    {"discount: amount_with_tax -10.60 = -10.00 - 0.60", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount\":\"-10.00\",\"tax_rate\":\"0.06\",\"amount_with_tax\":\"-10.60\"" DISC "}",
     OK(9000, 540, 9540)},
    {"discount: amount_with_tax -10.59", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount\":\"-10.00\",\"tax_rate\":\"0.06\",\"amount_with_tax\":\"-10.59\"" DISC "}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[1].amount_with_tax")},
    /* tax-inclusive: the tax must be exactly gross - net, even inside 0.06 */
    {"incl: 100.00 at 13%, tax 11.50 = 100.00 - 88.50", 1, NULL, 0,
     "{" GOODS ",\"amount_with_tax\":\"100.00\",\"tax_rate\":\"0.13\",\"tax\":\"11.50\"}",
     OK(8850, 1150, 10000)},
    {"incl: 100.00 at 13%, tax 11.51", 1, NULL, 0,
     "{" GOODS ",\"amount_with_tax\":\"100.00\",\"tax_rate\":\"0.13\",\"tax\":\"11.51\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].tax")},
    {"incl: 100.00 at 13%, amount 88.50", 1, NULL, 0,
     "{" GOODS ",\"amount_with_tax\":\"100.00\",\"tax_rate\":\"0.13\",\"amount\":\"88.50\"}",
     OK(8850, 1150, 10000)},
    {"incl: 100.00 at 13%, amount 88.49", 1, NULL, 0,
     "{" GOODS ",\"amount_with_tax\":\"100.00\",\"tax_rate\":\"0.13\",\"amount\":\"88.49\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount")},
};

/* half a fen rounds up (away from zero); just below half rounds down */
static const tcase rounding[] = {
    {"1 x 0.005 -> 0.01", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"0.005\",\"tax_rate\":\"0.06\"}", OK(1, 0, 1)},
    {"1 x 0.0049999 -> 0.00: no positive amount", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"0.0049999\",\"tax_rate\":\"0.06\"}",
     NO(FPC_INVALID_FIELD, "items[0].amount")},
    {"1 x 0.0049999999999 -> 0.00", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"0.0049999999999\",\"tax_rate\":\"0.06\"}",
     NO(FPC_INVALID_FIELD, "items[0].amount")},
    {"1 x 1.005 -> 1.01", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"1.005\",\"tax_rate\":\"0.06\"}",
     OK(101, 6, 107)},
    {"1 x 1.0049999 -> 1.00", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"1.0049999\",\"tax_rate\":\"0.06\"}",
     OK(100, 6, 106)},
    {"3 x 0.335 = 1.005 -> 1.01", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"3\",\"unit_price\":\"0.335\",\"tax_rate\":\"0.06\"}",
     OK(101, 6, 107)},
    {"0.5 x 0.01 = 0.005 -> 0.01", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"0.5\",\"unit_price\":\"0.01\",\"tax_rate\":\"0.06\"}", OK(1, 0, 1)},
    {"2 x 0.0025 = 0.005 -> 0.01", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"2\",\"unit_price\":\"0.0025\",\"tax_rate\":\"0.06\"}", OK(1, 0, 1)},
    {"tax 0.50 at 9% = 0.045 -> 0.05", 0, NULL, 0,
     "{" GRAIN ",\"amount\":\"0.50\",\"tax_rate\":\"0.09\"}", OK(50, 5, 55)},
    {"tax 2.50 at 9% = 0.225 -> 0.23", 0, NULL, 0,
     "{" GRAIN ",\"amount\":\"2.50\",\"tax_rate\":\"0.09\"}", OK(250, 23, 273)},
    {"tax 0.49 at 9% = 0.0441 -> 0.04", 0, NULL, 0,
     "{" GRAIN ",\"amount\":\"0.49\",\"tax_rate\":\"0.09\"}", OK(49, 4, 53)},
    {"tax 0.50 at 13% = 0.065 -> 0.07", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"0.50\",\"tax_rate\":\"0.13\"}", OK(50, 7, 57)},
    {"tax 19.99 at 13% = 2.5987 -> 2.60", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"19.99\",\"tax_rate\":\"0.13\"}", OK(1999, 260, 2259)},
    /* negative halves: a discount's tax rounds away from zero */
    {"discount -0.50 at 9%: tax -0.045 -> -0.05", 0, NULL, 0,
     "{" GRAIN ",\"amount\":\"10.00\",\"tax_rate\":\"0.09\"},"
     "{" GRAIN ",\"amount\":\"-0.50\",\"tax_rate\":\"0.09\"" DISC "}",
     OK(950, 85, 1035)},
    {"discount -2.50 at 9%: tax -0.225 -> -0.23", 0, NULL, 0,
     "{" GRAIN ",\"amount\":\"10.00\",\"tax_rate\":\"0.09\"},"
     "{" GRAIN ",\"amount\":\"-2.50\",\"tax_rate\":\"0.09\"" DISC "}",
     OK(750, 67, 817)},
    {"discount -0.49 at 9%: tax -0.0441 -> -0.04", 0, NULL, 0,
     "{" GRAIN ",\"amount\":\"10.00\",\"tax_rate\":\"0.09\"},"
     "{" GRAIN ",\"amount\":\"-0.49\",\"tax_rate\":\"0.09\"" DISC "}",
     OK(951, 86, 1037)},
    {"discount -0.50 at 13%: tax -0.065 -> -0.07", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"10.00\",\"tax_rate\":\"0.13\"},"
     "{" GOODS ",\"amount\":\"-0.50\",\"tax_rate\":\"0.13\"" DISC "}",
     OK(950, 123, 1073)},
    {"incl discount -1.00 at 6%: net -0.9434 -> -0.94, tax -0.06", 1, NULL, 0,
     "{" SVC ",\"amount_with_tax\":\"10.60\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount_with_tax\":\"-1.00\",\"tax_rate\":\"0.06\"" DISC "}",
     OK(906, 54, 960)},
};

/* 金额 = round(含税 / (1 + 税率)), 税额 = 含税 − 金额 */
#define INCL(code, gross, rate)                                                                    \
    "{" code ",\"amount_with_tax\":\"" gross "\",\"tax_rate\":\"" rate "\"}"
static const tcase inclusive[] = {
    {"100.00 at 13% -> 88.50 + 11.50", 1, NULL, 0, INCL(GOODS, "100.00", "0.13"),
     OK(8850, 1150, 10000), 8850, 1150, 1},
    {"1.00 at 6% -> 0.94 + 0.06", 1, NULL, 0, INCL(SVC, "1.00", "0.06"), OK(94, 6, 100), 94, 6, 1},
    {"0.01 at 13% -> 0.01 + 0.00", 1, NULL, 0, INCL(GOODS, "0.01", "0.13"), OK(1, 0, 1), 1, 0, 1},
    {"0.01 at 6% -> 0.01 + 0.00", 1, NULL, 0, INCL(SVC, "0.01", "0.06"), OK(1, 0, 1), 1, 0, 1},
    {"0.02 at 13% -> 0.02 + 0.00", 1, NULL, 0, INCL(GOODS, "0.02", "0.13"), OK(2, 0, 2), 2, 0, 1},
    {"1.00 at 3% -> 0.97 + 0.03", 1, NULL, 0, INCL(SVC, "1.00", "0.03"), OK(97, 3, 100), 97, 3, 1},
    {"1.00 at 1% -> 0.99 + 0.01", 1, NULL, 0, INCL(SVC, "1.00", "0.01"), OK(99, 1, 100), 99, 1, 1},
    {"19.99 at 13% -> 17.69 + 2.30", 1, NULL, 0, INCL(GOODS, "19.99", "0.13"), OK(1769, 230, 1999),
     1769, 230, 1},
    {"109.00 at 9% -> 100.00 + 9.00", 1, NULL, 0, INCL(GRAIN, "109.00", "0.09"),
     OK(10000, 900, 10900), 10000, 900, 1},
    {"100.00 at 0% -> 100.00 + 0.00", 1, NULL, 0, INCL(GRAIN, "100.00", "0"), OK(10000, 0, 10000),
     10000, 0, 1},
    {"exempt 100.00 -> 100.00 + 0.00", 1, NULL, 0,
     "{" SVC ",\"amount_with_tax\":\"100.00\",\"tax_rate\":\"0\",\"policy\":\"exempt\"}",
     OK(10000, 0, 10000), 10000, 0, 1},
    {"3 x 33.3333333333333 = 99.9999999999999 -> 100.00 -> 88.50", 1, NULL, 0,
     "{" GOODS ",\"quantity\":\"3\",\"unit_price\":\"33.3333333333333\",\"tax_rate\":\"0.13\"}",
     OK(8850, 1150, 10000), 8850, 1150, 1},
    {"1 x 0.0149999999999 -> 0.01 -> 0.01 + 0.00", 1, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"0.0149999999999\",\"tax_rate\":\"0.06\"}",
     OK(1, 0, 1), 1, 0, 1},
    {"discount gross -11.30 at 13% -> -10.00 - 1.30", 1, NULL, 0,
     INCL(GOODS, "100.00", "0.13") ",{" GOODS
                                   ",\"amount_with_tax\":\"-11.30\",\"tax_rate\":\"0.13\"" DISC "}",
     OK(7850, 1020, 8870), 8850, 1150, 1},
    {"9999999999999999.99 at 13%", 1, NULL, 0, INCL(GOODS, "9999999999999999.99", "0.13"),
     OK(884955752212389380LL, 115044247787610619LL, 999999999999999999LL)},
};

/* quantities and prices with 13 decimals */
#define QP(q, p) "{" SVC ",\"quantity\":\"" q "\",\"unit_price\":\"" p "\",\"tax_rate\":\"0.06\"}"
static const tcase thirteen[] = {
    {"7 x 0.1428571428571 = 0.9999999999997 -> 1.00", 0, NULL, 0, QP("7", "0.1428571428571"),
     OK(100, 6, 106)},
    {"1000000000000 x 0.0000000000001 = 0.1", 0, NULL, 0, QP("1000000000000", "0.0000000000001"),
     OK(10, 1, 11)},
    {"0.0000000000001 x 99999999999.99 -> 0.01", 0, NULL, 0,
     QP("0.0000000000001", "99999999999.99"), OK(1, 0, 1)},
    {"1234567.1234567 x 0.0000000000001 -> 0.00", 0, NULL, 0,
     QP("1234567.1234567", "0.0000000000001"), NO(FPC_INVALID_FIELD, "items[0].amount")},
    {"9999999999.9999999999999 x 1 -> 10000000000.00", 0, NULL, 0,
     QP("9999999999.9999999999999", "1"), OK(1000000000000LL, 60000000000LL, 1060000000000LL)},
    {"0.0000000000001 x 0.0000000000001 -> 0.00", 0, NULL, 0,
     QP("0.0000000000001", "0.0000000000001"), NO(FPC_INVALID_FIELD, "items[0].amount")},
    {"3 x 0.3333333333333 with amount 1.00", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"3\",\"unit_price\":\"0.3333333333333\",\"amount\":\"1.00\","
     "\"tax_rate\":\"0.06\"}",
     OK(100, 6, 106)},
    {"1.0000000000001 x 1.0000000000001 with amount 0.99", 0, NULL, 0,
     "{" SVC
     ",\"quantity\":\"1.0000000000001\",\"unit_price\":\"1.0000000000001\",\"amount\":\"0.99\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED,
        "items[0].amount")}, /* 1.00000000000020000000000001: 0.0100000000002 off */
    {"0.9999999999999 x 1.0000000000001 with amount 1.01", 0, NULL, 0,
     "{" SVC
     ",\"quantity\":\"0.9999999999999\",\"unit_price\":\"1.0000000000001\",\"amount\":\"1.01\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_TOLERANCE_EXCEEDED, "items[0].amount")}, /* 0.01 + 10^-26 off */
    {"0.9999999999999 x 1.0000000000001 with amount 0.99", 0, NULL, 0,
     "{" SVC
     ",\"quantity\":\"0.9999999999999\",\"unit_price\":\"1.0000000000001\",\"amount\":\"0.99\","
     "\"tax_rate\":\"0.06\"}",
     OK(99, 6, 105)}, /* 0.99999999999999999999999999: within 0.01 of 0.99 */
};

/* refusal variants beyond test_invoice.c's one-per-code rows, and the
 * boundaries of the (18,2) range, the depth limit and the discount limit */
static char deep_ok[400], deep_bad[400];
#define AMT1 "{" SVC ",\"amount\":\"1.00\",\"tax_rate\":\"0.06\"}"
#define MAXL "{" GOODS ",\"amount\":\"8849557522123893.80\",\"tax_rate\":\"0.13\"}"
static const tcase refusals[] = {
    {"total exactly 9999999999999999.99", 0, NULL, 0, MAXL,
     OK(884955752212389380LL, 115044247787610619LL, 999999999999999999LL)},
    {"total 10000000000000000.01", 0, NULL, 0,
     "{" GOODS ",\"amount\":\"8849557522123893.81\",\"tax_rate\":\"0.13\"}",
     NO(FPC_AMOUNT_OUT_OF_RANGE, "items")},
    {"total one fen past the maximum over two lines", 0, NULL, 0,
     "{" SVC ",\"amount\":\"9999999999999999.99\",\"tax_rate\":\"0\",\"policy\":\"exempt\"},"
     "{" SVC ",\"amount\":\"0.01\",\"tax_rate\":\"0\",\"policy\":\"exempt\"}",
     NO(FPC_AMOUNT_OUT_OF_RANGE, "items")},
    {"fully discounted: total 0", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount\":\"-100.00\",\"tax_rate\":\"0.06\"" DISC "}",
     NO(FPC_AMOUNT_OUT_OF_RANGE, "items")},
    {"discount equal to its line is allowed", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"},"
     "{" SVC ",\"amount\":\"-100.00\",\"tax_rate\":\"0.06\"" DISC "},"
     "{" GOODS ",\"amount\":\"1.00\",\"tax_rate\":\"0.13\"}",
     OK(100, 13, 113)},
    {"incl: discount gross -106.00 equal to the line", 1, NULL, 0,
     INCL(SVC, "106.00", "0.06") ",{" SVC
                                 ",\"amount_with_tax\":\"-106.00\",\"tax_rate\":\"0.06\"" DISC
                                 "}," INCL(GOODS, "1.13", "0.13"),
     OK(100, 13, 113)},
    {"incl: discount gross -106.01 nets -100.01 > 100.00", 1, NULL, 0,
     INCL(SVC, "106.00", "0.06") ",{" SVC
                                 ",\"amount_with_tax\":\"-106.01\",\"tax_rate\":\"0.06\"" DISC
                                 "}," INCL(GOODS, "1.13", "0.13"),
     NO(FPC_INVALID_DISCOUNT, "items[1].amount")},
    {"amount with 17 integer digits", 0, NULL, 0,
     "{" SVC ",\"amount\":\"10000000000000000.00\",\"tax_rate\":\"0.06\"}",
     NO(FPC_INVALID_FIELD, "items[0].amount")},
    {"incl without amount_with_tax or quantity", 1, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.06\"}",
     NO(FPC_FIELD_REQUIRED, "items[0].amount_with_tax")},
    {"missing tax_rate", 0, NULL, 0, "{" SVC ",\"amount\":\"100.00\"}",
     NO(FPC_FIELD_REQUIRED, "items[0].tax_rate")},
    {"item name is a number", 0, NULL, 0,
     "{\"name\":7,\"tax_code\":\"3040201000000000000\",\"amount\":\"1.00\",\"tax_rate\":\"0.06\"}",
     NO(FPC_FIELD_TYPE, "items[0].name")},
    {"natural_person is a string", 0, NULL, 0, NULL, NO(FPC_FIELD_TYPE, "buyer.natural_person"), 0,
     0, 0, 0,
     "{\"invoice_type\":\"02\",\"buyer\":{\"name\":\"王五\",\"natural_person\":\"yes\"},"
     "\"drawer\":\"张三\",\"items\":[" AMT1 "]}"},
    {"key case matters: Amount", 0, NULL, 0,
     "{" SVC ",\"quantity\":\"1\",\"unit_price\":\"1\",\"Amount\":\"1.00\",\"tax_rate\":\"0.06\"}",
     NO(FPC_UNKNOWN_FIELD, "items[0].Amount")},
    {"duplicate key inside an item", 0, NULL, 0,
     "{" SVC ",\"amount\":\"1.00\",\"amount\":\"2.00\",\"tax_rate\":\"0.06\"}",
     NO(FPC_DUPLICATE_FIELD, "")},
    {"depth 32: parsed, remark has the wrong type", 0, NULL, 0, NULL, NO(FPC_FIELD_TYPE, "remark"),
     0, 0, 0, 0, deep_ok},
    {"depth 33: too deep", 0, NULL, 0, NULL, NO(FPC_TOO_DEEP, ""), 0, 0, 0, 0, deep_bad},
    {"trailing data after the object", 0, NULL, 0, NULL, NO(FPC_MALFORMED_JSON, ""), 0, 0, 0, 0,
     "{\"drawer\":\"张三\"} x"},
    {"NUL byte inside the body", 0, NULL, 0, NULL, NO(FPC_MALFORMED_JSON, ""), 0, 0, 0, 0,
     "{\"drawer\":\"a\"}\0 ", 16},
    {"number with a leading zero", 0, NULL, 0, NULL, NO(FPC_MALFORMED_JSON, ""), 0, 0, 0, 0,
     "{\"remark\":01}"},
    {"escaped NUL in a string", 0, NULL, 0, NULL, NO(FPC_MALFORMED_JSON, ""), 0, 0, 0, 0,
     "{\"drawer\":\"a\\u0000b\"}"},
    {"empty body", 0, NULL, 0, NULL, NO(FPC_MALFORMED_JSON, ""), 0, 0, 0, 0, ""},
    {"UTF-8 surrogate (ED A0 80) in an item name", 0, NULL, 0,
     "{\"name\":\"\xED\xA0\x80\",\"tax_code\":\"3040201000000000000\",\"amount\":\"1.00\","
     "\"tax_rate\":\"0.06\"}",
     NO(FPC_INVALID_UTF8, "")},
    {"truncated UTF-8 sequence", 0, NULL, 0, NULL, NO(FPC_INVALID_UTF8, ""), 0, 0, 0, 0,
     "{\"drawer\":\"\xE5\xBC\"}"},
    {"USCC with a letter in the region code", 0, NULL, 0, NULL,
     NO(FPC_INVALID_TAX_ID, "buyer.tax_id"), 0, 0, 0, 0,
     "{\"invoice_type\":\"02\",\"buyer\":{\"name\":\"某公司\",\"tax_id\":\"913502A0MA2YJ1XR9G\"},"
     "\"drawer\":\"张三\",\"items\":[" AMT1 "]}"},
    {"legacy id of 17 characters with a lowercase letter", 0, NULL, 0, NULL,
     NO(FPC_INVALID_TAX_ID, "buyer.tax_id"), 0, 0, 0, 0,
     "{\"invoice_type\":\"02\",\"buyer\":{\"name\":\"某公司\",\"tax_id\":\"1101080000000000a\"},"
     "\"drawer\":\"张三\",\"items\":[" AMT1 "]}"},
    {"tax code starting with 7", 0, NULL, 0,
     "{\"name\":\"x\",\"tax_code\":\"7040201000000000000\",\"amount\":\"1.00\",\"tax_rate\":\"0."
     "06\"}",
     NO(FPC_INVALID_TAX_CODE, "items[0].tax_code")},
    {"tax code with a level after a 00 level", 0, NULL, 0,
     "{\"name\":\"x\",\"tax_code\":\"3040001000000000000\",\"amount\":\"1.00\",\"tax_rate\":\"0."
     "06\"}",
     NO(FPC_INVALID_TAX_CODE, "items[0].tax_code")},
    {"tax code of 18 digits", 0, NULL, 0,
     "{\"name\":\"x\",\"tax_code\":\"304020100000000000\",\"amount\":\"1.00\",\"tax_rate\":\"0."
     "06\"}",
     NO(FPC_INVALID_TAX_CODE, "items[0].tax_code")},
    {"simplified policy at 6%", 0, NULL, 0,
     "{" SVC ",\"amount\":\"1.00\",\"tax_rate\":\"0.06\",\"policy\":\"simplified\"}",
     NO(FPC_RATE_NOT_ALLOWED, "items[0].tax_rate")},
    {"reduced_1_5 on a code without 1.5%", 0, NULL, 0,
     "{" SVC ",\"amount\":\"1.00\",\"tax_rate\":\"0.015\",\"policy\":\"reduced_1_5\"}",
     NO(FPC_RATE_NOT_ALLOWED, "items[0].tax_rate")},
    {"rate written as 1 (100%)", 0, NULL, 0, "{" SVC ",\"amount\":\"1.00\",\"tax_rate\":\"1\"}",
     NO(FPC_RATE_NOT_ALLOWED, "items[0].tax_rate")},
    {"rate written as 6 (percent)", 0, NULL, 0, "{" SVC ",\"amount\":\"1.00\",\"tax_rate\":\"6\"}",
     NO(FPC_RATE_NOT_ALLOWED, "items[0].tax_rate")},
    {"simplified 3% accepted", 0, NULL, 0,
     "{" SVC ",\"amount\":\"100.00\",\"tax_rate\":\"0.03\",\"policy\":\"simplified\"}",
     OK(10000, 300, 10300)},
};

int main(void)
{
    fp_err err = {0};
    if (fp_taxcode_load(FP_SOURCE_DIR "/data/taxcodes-sample.csv", &codes, &err) < 0) {
        fprintf(stderr, "cannot load the sample code table: %s\n", err.msg);
        return 2;
    }
    /* the root object is depth 1; remark adds 31 or 32 arrays */
    static const char head[] =
        "{\"invoice_type\":\"02\",\"buyer\":{\"name\":\"x\"},\"drawer\":\"张三\","
        "\"items\":[" AMT1 "],\"remark\":";
    char *p = deep_ok;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < 31; i++)
        *p++ = '[';
    for (int i = 0; i < 31; i++)
        *p++ = ']';
    strcpy(p, "}");
    p = deep_bad;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < 32; i++)
        *p++ = '[';
    for (int i = 0; i < 32; i++)
        *p++ = ']';
    strcpy(p, "}");

    run(qty_price, NCASES(qty_price), "qty_price");
    run(line_tax, NCASES(line_tax), "line_tax");
    run(total_tax, NCASES(total_tax), "total_tax");
    run(gross_exact, NCASES(gross_exact), "gross_exact");
    run(rounding, NCASES(rounding), "rounding");
    run(inclusive, NCASES(inclusive), "inclusive");
    run(thirteen, NCASES(thirteen), "thirteen");
    run(refusals, NCASES(refusals), "refusals");
    fp_taxcode_free(codes);
    return check_summary();
}
