/* test_invoice.c — invoice.h: parsing and validating an issue request
 * against docs/domain.md's rules, totals in fen, collected refusals with their
 * field paths, and the response document with its number slots.
 *
 * Most cases are mutations of examples/invoice.json (set, replace or delete
 * a value at a path such as items[1].name), so each row says only what it
 * changes and what must be refused.  Cases that a broken invoice.c could
 * crash on (or trip UBSan with) run in a child process, so one bad case
 * is reported as a failure instead of killing the whole test. */
#include "check.h"

#include "fapiao/invoice.h"
#include "fapiao/json.h"
#include "fapiao/money.h"
#include "fapiao/taxcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

static fp_taxcode_table *codes;
static char *example; /* examples/invoice.json */

/* ---- mutations: path syntax key(.key|[n])* ---- */

typedef struct mut {
    const char *path;
    const char *json; /* the new value as JSON text; NULL deletes */
} mut;

/* Splits the next component of *p: a key or an [index]. */
static int next_component(const char **p, char *key, size_t n, int *index)
{
    const char *s = *p;
    if (*s == '.')
        s++;
    if (*s == 0)
        return 0;
    if (*s == '[') {
        *index = atoi(s + 1);
        key[0] = 0;
        s = strchr(s, ']') + 1;
    } else {
        size_t k = 0;
        while (*s && *s != '.' && *s != '[' && k + 1 < n)
            key[k++] = *s++;
        key[k] = 0;
        *index = -1;
    }
    *p = s;
    return 1;
}

static int apply(cJSON *root, const mut *m)
{
    const char *p = m->path;
    char key[64];
    int index;
    cJSON *cur = root;
    if (!next_component(&p, key, sizeof key, &index))
        return -1;
    for (;;) {
        char nkey[64];
        int nindex;
        const char *q = p;
        int more = next_component(&q, nkey, sizeof nkey, &nindex);
        if (!more) { /* key/index is the last component: act on it */
            cJSON *v = m->json ? cJSON_Parse(m->json) : NULL;
            if (m->json && !v)
                return -1;
            if (index >= 0) {
                if (!v)
                    cJSON_DeleteItemFromArray(cur, index);
                else if (index >= cJSON_GetArraySize(cur))
                    cJSON_AddItemToArray(cur, v);
                else
                    cJSON_ReplaceItemInArray(cur, index, v);
            } else if (!v) {
                cJSON_DeleteItemFromObjectCaseSensitive(cur, key);
            } else if (cJSON_GetObjectItemCaseSensitive(cur, key)) {
                cJSON_ReplaceItemInObjectCaseSensitive(cur, key, v);
            } else {
                cJSON_AddItemToObject(cur, key, v);
            }
            return 0;
        }
        cur = index >= 0 ? cJSON_GetArrayItem(cur, index)
                         : cJSON_GetObjectItemCaseSensitive(cur, key);
        if (!cur)
            return -1;
        memcpy(key, nkey, sizeof key);
        index = nindex;
        p = q;
    }
}

/* The example with the mutations applied, printed compactly (caller frees). */
static char *mutated(const mut *ms, int n)
{
    cJSON *root = cJSON_Parse(example);
    for (int i = 0; i < n && ms[i].path; i++)
        if (apply(root, &ms[i]) < 0) {
            fprintf(stderr, "test bug: cannot apply %s\n", ms[i].path);
            exit(2);
        }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ---- the example ---- */

static void test_example(void)
{
    check_ctx("example");
    fp_invoice inv;
    fp_errors es;
    int rc = fp_invoice_parse(example, strlen(example), codes, &inv, &es);
    if (!CHECK_MSG(rc == 0, "rc %d, %d errors, first %s: %s", rc, es.n, es.n ? es.e[0].field : "",
                   es.n ? es.e[0].en : ""))
        goto out;
    CHECK_EQ_INT(inv.total_amount, 90000);
    CHECK_EQ_INT(inv.total_tax, 5400);
    CHECK_EQ_INT(inv.total_with_tax, 95400);
    CHECK_EQ_STR(inv.invoice_type, "02");
    CHECK_EQ_INT(inv.price_includes_tax, 0);
    CHECK_EQ_STR(inv.drawer, "张三");
    CHECK_EQ_STR(inv.buyer.tax_id, "91350200MA2YJ1XR9G");
    CHECK_EQ_INT(inv.nwarnings, 0);
    if (CHECK_EQ_INT(inv.nitems, 2)) {
        CHECK_EQ_INT(inv.items[0].kind, FP_LINE_DISCOUNTED);
        CHECK_EQ_INT(inv.items[1].kind, FP_LINE_DISCOUNT);
        CHECK_EQ_INT(inv.items[0].amount, 100000);
        CHECK_EQ_INT(inv.items[0].tax, 6000);
        CHECK_EQ_INT(inv.items[0].amount_with_tax, 106000);
        CHECK_EQ_INT(inv.items[1].amount, -10000);
        CHECK_EQ_INT(inv.items[1].tax, -600);
        CHECK_EQ_INT(inv.items[1].amount_with_tax, -10600);
        CHECK_EQ_INT(inv.items[0].rate_bp, 600);
        CHECK_EQ_STR(inv.items[0].short_name, "信息技术服务");
    }
    char *canon = fp_invoice_canonical(&inv);
    CHECK(canon && strchr(canon, '\n') == NULL);
    free(canon);
out:
    fp_invoice_clear(&inv);
    fp_invoice_clear(&inv); /* idempotent */

    /* without a code table: shape only, empty short name */
    check_ctx("example without a code table");
    rc = fp_invoice_parse(example, strlen(example), NULL, &inv, &es);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(inv.total_with_tax, 95400);
        CHECK_EQ_STR(inv.items[0].short_name, "");
    }
    fp_invoice_clear(&inv);
    check_ctx("%s", "");
}

/* ---- accepted variants ---- */

#define MAXM 6

static void test_accepted(void)
{
    static const struct {
        const char *name;
        mut m[MAXM];
        int64_t amount, tax, gross;
        const char *warning; /* expected warnings[0] or NULL */
    } cases[] = {
        {"unchanged", {{NULL}}, 90000, 5400, 95400, NULL},
        {"tax given exactly",
         {{"items[0].tax", "\"60.00\""}, {"items[1].tax", "\"-6.00\""}},
         90000,
         5400,
         95400,
         NULL},
        {"tax off by 0.06 is within tolerance",
         {{"items[0].tax", "\"60.06\""}},
         90000,
         5406,
         95406,
         NULL},
        {"tax off by -0.06", {{"items[0].tax", "\"59.94\""}}, 90000, 5394, 95394, NULL},
        {"amount off by 0.01 from quantity x price",
         {{"items[0].amount", "\"1000.01\""}},
         90001,
         5400,
         95401,
         NULL},
        {"amount_with_tax = amount + tax",
         {{"items[0].amount_with_tax", "\"1060.00\""}, {"items[1].amount_with_tax", "\"-106.00\""}},
         90000,
         5400,
         95400,
         NULL},
        {"tax-inclusive prices",
         {{"price_includes_tax", "true"},
          {"items[0].unit_price", "\"1060.00\""},
          {"items[1].amount", NULL},
          {"items[1].amount_with_tax", "\"-106.00\""}},
         90000,
         5400,
         95400,
         NULL},
        {"exact decimal product",
         {{"items[0].quantity", "\"3\""}, {"items[0].unit_price", "\"352.7314285714\""}},
         95819,
         5749,
         101568,
         NULL}, /* 1058.19 + 63.49 - 100.00 - 6.00 */
        {"rate 0.03 allowed for the code",
         {{"items[0].tax_rate", "\"0.03\""}, {"items[1].tax_rate", "\"0.03\""}},
         90000,
         2700,
         92700,
         NULL},
        {"exempt at rate 0",
         {{"items[0].tax_rate", "\"0\""},
          {"items[0].policy", "\"exempt\""},
          {"items[1].tax_rate", "\"0\""},
          {"items[1].policy", "\"exempt\""}},
         90000,
         0,
         90000,
         NULL},
        {"no discount line", {{"items[1]", NULL}}, 100000, 6000, 106000, NULL},
        {"legacy 15-character buyer id",
         {{"buyer.tax_id", "\"110108000000000\""}},
         90000,
         5400,
         95400,
         "LEGACY_TAX_ID"},
        {"natural person",
         {{"buyer.natural_person", "true"}, {"buyer.tax_id", NULL}},
         90000,
         5400,
         95400,
         NULL},
        {"special invoice with buyer id", {{"invoice_type", "\"01\""}}, 90000, 5400, 95400, NULL},
        {"natural person with a resident id (X)",
         {{"buyer.natural_person", "true"}, {"buyer.tax_id", "\"11010519491231002X\""}},
         90000,
         5400,
         95400,
         NULL},
        {"natural person with a resident id (digit)",
         {{"buyer.natural_person", "true"}, {"buyer.tax_id", "\"440524188001010014\""}},
         90000,
         5400,
         95400,
         NULL},
        {"not-taxable code with the flag at rate 0",
         {{"items[1]", NULL},
          {"items[0].tax_code", "\"6010000000000000000\""},
          {"items[0].tax_rate", "\"0\""},
          {"items[0].policy", "\"non_taxable\""}},
         100000,
         0,
         100000,
         NULL},
        {"names padded with spaces are kept",
         {{"drawer", "\" 张三\""}, {"buyer.name", "\"\xe3\x80\x80王五\""}},
         90000,
         5400,
         95400,
         NULL},
        {"whole discount with the whole tax",
         {{"items[1].amount", "\"-1000.00\""},
          {"items[1].tax", "\"-60.00\""},
          {"items[2]", "{\"name\":\"咨询\",\"tax_code\":\"3040502000000000000\",\"amount\":\"1."
                       "00\",\"tax_rate\":\"0.06\"}"}},
         100,
         6,
         106,
         NULL},
        {"optional fields null",
         {{"remark", "null"}, {"buyer.address", "null"}},
         90000,
         5400,
         95400,
         NULL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("accepted[%zu] %s", i, cases[i].name);
        char *body = mutated(cases[i].m, MAXM);
        fp_invoice inv;
        fp_errors es;
        int rc = fp_invoice_parse(body, strlen(body), codes, &inv, &es);
        if (CHECK_MSG(rc == 0, "rc %d, %d errors, first %s: %s", rc, es.n,
                      es.n ? es.e[0].field : "", es.n ? es.e[0].en : "")) {
            CHECK_EQ_INT(inv.total_amount, cases[i].amount);
            CHECK_EQ_INT(inv.total_tax, cases[i].tax);
            CHECK_EQ_INT(inv.total_with_tax, cases[i].gross);
            if (cases[i].warning) {
                CHECK_EQ_INT(inv.nwarnings, 1);
                CHECK_EQ_STR(inv.warnings[0], cases[i].warning);
            } else {
                CHECK_EQ_INT(inv.nwarnings, 0);
            }
        }
        fp_invoice_clear(&inv);
        free(body);
    }
    check_ctx("%s", "");
}

/* ---- refusals ---- */

typedef struct want {
    fp_code code;
    const char *field;
} want;

#define MAXW 6

typedef struct refusal {
    const char *name;
    mut m[MAXM];
    want w[MAXW];
    int exact;        /* 1: exactly these errors, nothing else */
    const char *body; /* a whole body instead of mutations */
} refusal;

static const refusal refusals[] = {
    {"unknown top-level field", {{"colour", "\"red\""}}, {{FPC_UNKNOWN_FIELD, "colour"}}, 1},
    {"unknown buyer field", {{"buyer.fax", "\"021\""}}, {{FPC_UNKNOWN_FIELD, "buyer.fax"}}, 1},
    {"unknown item field",
     {{"items[0].discount", "\"1\""}},
     {{FPC_UNKNOWN_FIELD, "items[0].discount"}},
     1}, /* and no follow-on error for the discount line */
    {"number instead of string: unit_price",
     {{"items[0].unit_price", "1000"}},
     {{FPC_FIELD_TYPE, "items[0].unit_price"}},
     0},
    {"number instead of string: amount",
     {{"items[1].amount", "-100"}},
     {{FPC_FIELD_TYPE, "items[1].amount"}},
     1},
    {"number instead of string: tax_rate",
     {{"items[0].tax_rate", "0.06"}},
     {{FPC_FIELD_TYPE, "items[0].tax_rate"}},
     0},
    {"number instead of string: buyer.tax_id",
     {{"buyer.tax_id", "913502"}},
     {{FPC_FIELD_TYPE, "buyer.tax_id"}},
     1},
    {"string instead of bool",
     {{"price_includes_tax", "\"false\""}},
     {{FPC_FIELD_TYPE, "price_includes_tax"}},
     1},
    {"missing drawer", {{"drawer", NULL}}, {{FPC_FIELD_REQUIRED, "drawer"}}, 1},
    {"empty drawer", {{"drawer", "\"\""}}, {{FPC_FIELD_REQUIRED, "drawer"}}, 1},
    {"null drawer", {{"drawer", "null"}}, {{FPC_FIELD_REQUIRED, "drawer"}}, 1},
    {"missing invoice_type", {{"invoice_type", NULL}}, {{FPC_FIELD_REQUIRED, "invoice_type"}}, 1},
    {"invoice_type 03", {{"invoice_type", "\"03\""}}, {{FPC_INVALID_FIELD, "invoice_type"}}, 1},
    {"missing buyer", {{"buyer", NULL}}, {{FPC_FIELD_REQUIRED, "buyer"}}, 1},
    {"buyer not an object", {{"buyer", "\"someone\""}}, {{FPC_FIELD_TYPE, "buyer"}}, 1},
    {"missing buyer name", {{"buyer.name", NULL}}, {{FPC_FIELD_REQUIRED, "buyer.name"}}, 1},
    {"bad buyer tax id (check character)",
     {{"buyer.tax_id", "\"91350200MA2YJ1XR9H\""}},
     {{FPC_INVALID_TAX_ID, "buyer.tax_id"}},
     1},
    {"bad buyer tax id (lowercase)",
     {{"buyer.tax_id", "\"91350200ma2yj1xr9g\""}},
     {{FPC_INVALID_TAX_ID, "buyer.tax_id"}},
     1},
    {"bad buyer tax id (length 16)",
     {{"buyer.tax_id", "\"1234567890123456\""}},
     {{FPC_INVALID_TAX_ID, "buyer.tax_id"}},
     1},
    {"special invoice without buyer tax id",
     {{"invoice_type", "\"01\""}, {"buyer.tax_id", NULL}},
     {{FPC_FIELD_REQUIRED, "buyer.tax_id"}},
     1},
    {"bad e-mail", {{"buyer.email", "\"nobody\""}}, {{FPC_INVALID_FIELD, "buyer.email"}}, 1},
    {"drawer longer than 300 characters",
     {{"drawer",
       "\"张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三张三"
       "张\""}},
     {{FPC_INVALID_FIELD, "drawer"}},
     1},
    {"control character in remark",
     {{"remark", "\"a\\u0007b\""}},
     {{FPC_INVALID_FIELD, "remark"}},
     1},
    {"rate not allowed for the code",
     {{"items[0].tax_rate", "\"0.13\""}, {"items[1].tax_rate", "\"0.13\""}},
     {{FPC_RATE_NOT_ALLOWED, "items[0].tax_rate"}, {FPC_RATE_NOT_ALLOWED, "items[1].tax_rate"}},
     1},
    {"rate not a legal rate",
     {{"items[0].tax_rate", "\"0.07\""}, {"items[1].tax_rate", "\"0.07\""}},
     {{FPC_RATE_NOT_ALLOWED, "items[0].tax_rate"}, {FPC_RATE_NOT_ALLOWED, "items[1].tax_rate"}},
     1},
    {"rate 1.5% without the reduced policy",
     {{"items[0].tax_rate", "\"0.015\""}, {"items[1].tax_rate", "\"0.015\""}},
     {{FPC_RATE_NOT_ALLOWED, "items[0].tax_rate"}, {FPC_RATE_NOT_ALLOWED, "items[1].tax_rate"}},
     0},
    {"exempt policy with a non-zero rate",
     {{"items[0].policy", "\"exempt\""}},
     {{FPC_RATE_NOT_ALLOWED, "items[0].tax_rate"}},
     0},
    {"unknown policy",
     {{"items[0].policy", "\"free\""}},
     {{FPC_INVALID_FIELD, "items[0].policy"}},
     0},
    {"unknown line_kind",
     {{"items[1].line_kind", "\"rebate\""}},
     {{FPC_INVALID_FIELD, "items[1].line_kind"}},
     0},
    {"discount line with a different name",
     {{"items[1].name", "\"其他服务费\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].line_kind"}},
     1},
    {"discount line with a different rate",
     {{"items[1].tax_rate", "\"0.03\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].line_kind"}},
     1},
    {"discount line with a different code",
     {{"items[1].tax_code", "\"3040502000000000000\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].line_kind"}},
     1},
    {"discount line with quantity",
     {{"items[1].quantity", "\"1\""}, {"items[1].unit_price", "\"100\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].line_kind"}},
     0},
    {"discount line first",
     {{"items[0]", NULL}},
     {{FPC_INVALID_DISCOUNT, "items[0].line_kind"}},
     0},
    {"discount after a discount",
     {{"items[2]", "{\"name\":\"软件维护服务费\",\"tax_code\":\"3040201000000000000\","
                   "\"amount\":\"-1.00\",\"tax_rate\":\"0.06\",\"line_kind\":\"discount\"}"}},
     {{FPC_INVALID_DISCOUNT, "items[2].line_kind"}},
     0},
    {"discount positive",
     {{"items[1].amount", "\"100.00\""}},
     {{FPC_INVALID_FIELD, "items[1].amount"}},
     1},
    {"discount larger than the line",
     {{"items[1].amount", "\"-1000.01\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].amount"}},
     1},
    {"tolerance exceeded for a given tax",
     {{"items[0].tax", "\"60.07\""}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].tax"}},
     1},
    {"tolerance exceeded for a given tax, below",
     {{"items[0].tax", "\"59.93\""}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].tax"}},
     1},
    {"tax on an exempt line",
     {{"items[0].tax_rate", "\"0\""},
      {"items[0].policy", "\"exempt\""},
      {"items[0].tax", "\"0.01\""},
      {"items[1]", NULL}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].tax"}},
     1},
    {"amount_with_tax != amount + tax",
     {{"items[0].amount_with_tax", "\"1060.01\""}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].amount_with_tax"}},
     1},
    {"amount_with_tax != amount + given tax",
     {{"items[0].tax", "\"60.05\""}, {"items[0].amount_with_tax", "\"1060.00\""}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].amount_with_tax"}},
     1},
    {"amount off quantity x price by 0.02",
     {{"items[0].amount", "\"1000.02\""}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].amount"}},
     1},
    {"tax-inclusive: amount does not match gross / 1.06",
     {{"price_includes_tax", "true"},
      {"items[0].unit_price", "\"1060.00\""},
      {"items[0].amount", "\"1000.01\""},
      {"items[1].amount", NULL},
      {"items[1].amount_with_tax", "\"-106.00\""}},
     {{FPC_TOLERANCE_EXCEEDED, "items[0].amount"}},
     1},
    {"quantity without unit_price",
     {{"items[0].unit_price", NULL}},
     {{FPC_FIELD_REQUIRED, "items[0].unit_price"}},
     0},
    {"no amount and no quantity",
     {{"items[0].unit_price", NULL}, {"items[0].quantity", NULL}},
     {{FPC_FIELD_REQUIRED, "items[0].amount"}},
     0},
    {"quantity with 14 decimals",
     {{"items[0].quantity", "\"1.00000000000000\""}},
     {{FPC_INVALID_FIELD, "items[0].quantity"}},
     0},
    {"zero quantity",
     {{"items[0].quantity", "\"0\""}},
     {{FPC_INVALID_FIELD, "items[0].quantity"}},
     0},
    {"negative unit price",
     {{"items[0].unit_price", "\"-1000.00\""}},
     {{FPC_INVALID_FIELD, "items[0].unit_price"}},
     0},
    {"amount with three decimals",
     {{"items[1].amount", "\"-100.001\""}},
     {{FPC_INVALID_FIELD, "items[1].amount"}},
     1},
    {"amount 1e2", {{"items[1].amount", "\"-1e2\""}}, {{FPC_INVALID_FIELD, "items[1].amount"}}, 1},
    {"quantity x price out of range",
     {{"items[0].quantity", "\"99999999999\""}, {"items[0].unit_price", "\"99999999999\""}},
     {{FPC_AMOUNT_OUT_OF_RANGE, "items[0].quantity"}},
     0},
    {"summary tax code",
     {{"items[0].tax_code", "\"3040200000000000000\""},
      {"items[1].tax_code", "\"3040200000000000000\""}},
     {{FPC_INVALID_TAX_CODE, "items[0].tax_code"}, {FPC_INVALID_TAX_CODE, "items[1].tax_code"}},
     1},
    {"tax code not in the table",
     {{"items[0].tax_code", "\"3040203000000000000\""},
      {"items[1].tax_code", "\"3040203000000000000\""}},
     {{FPC_INVALID_TAX_CODE, "items[0].tax_code"}, {FPC_INVALID_TAX_CODE, "items[1].tax_code"}},
     1},
    {"tax code of a bad shape",
     {{"items[0].tax_code", "\"304020100000000000X\""},
      {"items[1].tax_code", "\"304020100000000000X\""}},
     {{FPC_INVALID_TAX_CODE, "items[0].tax_code"}, {FPC_INVALID_TAX_CODE, "items[1].tax_code"}},
     1},
    {"missing items", {{"items", NULL}}, {{FPC_FIELD_REQUIRED, "items"}}, 1},
    {"empty items", {{"items", "[]"}}, {{FPC_INVALID_FIELD, "items"}}, 1},
    {"items not an array", {{"items", "{}"}}, {{FPC_FIELD_TYPE, "items"}}, 1},
    {"item not an object", {{"items[1]", "42"}}, {{FPC_FIELD_TYPE, "items[1]"}}, 1},
    {"several refusals in one request",
     {{"colour", "\"red\""},
      {"drawer", NULL},
      {"buyer.tax_id", "\"91350200MA2YJ1XR9H\""},
      {"items[1].name", "\"其他\""},
      {"items[0].tax", "\"61.00\""}},
     {{FPC_UNKNOWN_FIELD, "colour"},
      {FPC_FIELD_REQUIRED, "drawer"},
      {FPC_INVALID_TAX_ID, "buyer.tax_id"},
      {FPC_INVALID_DISCOUNT, "items[1].line_kind"},
      {FPC_TOLERANCE_EXCEEDED, "items[0].tax"}},
     1},
    /* whole bodies */
    {"malformed JSON", {{NULL}}, {{FPC_MALFORMED_JSON, ""}}, 1, "{\"invoice_type\":"},
    {"duplicate key",
     {{NULL}},
     {{FPC_DUPLICATE_FIELD, ""}},
     1,
     "{\"drawer\":\"a\",\"drawer\":\"b\"}"},
    {"invalid UTF-8", {{NULL}}, {{FPC_INVALID_UTF8, ""}}, 1, "{\"drawer\":\"\xC0\x80\"}"},
    {"too deep",
     {{NULL}},
     {{FPC_TOO_DEEP, ""}},
     1,
     "{\"remark\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"},
    {"body is an array", {{NULL}}, {{FPC_FIELD_TYPE, ""}}, 1, "[]"},

    /* ---- docs/domain.md rules (issue 12) ---- */
    /* signs: 0.50 at 6% is 0.03 exactly, so -0.01 is within 0.06 */
    {"positive amount with a negative tax",
     {{"items[1]", NULL}, {"items[0].unit_price", "\"0.50\""}, {"items[0].tax", "\"-0.01\""}},
     {{FPC_INVALID_FIELD, "items[0].tax"}},
     1},
    {"discount line with a positive tax",
     {{"items[1].amount", "\"-0.50\""}, {"items[1].tax", "\"0.01\""}},
     {{FPC_INVALID_FIELD, "items[1].tax"}},
     1},
    {"discount taking more tax than its line has",
     {{"items[0].unit_price", "\"0.50\""},
      {"items[0].tax", "\"0.00\""},
      {"items[1].amount", "\"-0.40\""},
      {"items[1].tax", "\"-0.02\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].tax"}},
     1},
    /* the audit's case: total amount 0 but total with tax 0.01 */
    {"whole discount leaving tax behind",
     {{"items[0].unit_price", "\"1.00\""},
      {"items[0].tax", "\"0.06\""},
      {"items[1].amount", "\"-1.00\""},
      {"items[1].tax", "\"-0.05\""}},
     {{FPC_INVALID_DISCOUNT, "items[1].tax"}},
     1},
    /* blank text: ASCII and full-width (U+3000) spaces */
    {"blank drawer", {{"drawer", "\"   \""}}, {{FPC_FIELD_REQUIRED, "drawer"}}, 1},
    {"full-width blank drawer",
     {{"drawer", "\"\xe3\x80\x80\xe3\x80\x80\""}},
     {{FPC_FIELD_REQUIRED, "drawer"}},
     1},
    {"blank buyer name",
     {{"buyer.name", "\" \xe3\x80\x80 \""}},
     {{FPC_FIELD_REQUIRED, "buyer.name"}},
     1},
    {"blank item name",
     {{"items[1]", NULL}, {"items[0].name", "\"\xe3\x80\x80 \""}},
     {{FPC_FIELD_REQUIRED, "items[0].name"}},
     1},
    /* natural persons */
    {"resident id with a wrong check character",
     {{"buyer.natural_person", "true"}, {"buyer.tax_id", "\"110105194912310020\""}},
     {{FPC_INVALID_TAX_ID, "buyer.tax_id"}},
     1},
    {"resident id of a company buyer (not a USCC)",
     {{"buyer.tax_id", "\"11010519491231002X\""}},
     {{FPC_INVALID_TAX_ID, "buyer.tax_id"}},
     1},
    /* practice refusals */
    {"专票 to a natural person",
     {{"invoice_type", "\"01\""},
      {"buyer.natural_person", "true"},
      {"buyer.tax_id", "\"11010519491231002X\""}},
     {{FPC_SPECIAL_INVOICE_NOT_ALLOWED, "buyer.natural_person"}},
     1},
    {"专票 with an exempt line",
     {{"invoice_type", "\"01\""},
      {"items[1]", NULL},
      {"items[0].tax_rate", "\"0\""},
      {"items[0].policy", "\"exempt\""}},
     {{FPC_SPECIAL_INVOICE_NOT_ALLOWED, "items[0].policy"}},
     1},
    {"专票 with a not-taxable line",
     {{"invoice_type", "\"01\""},
      {"items[1]", NULL},
      {"items[0].tax_code", "\"6010000000000000000\""},
      {"items[0].tax_rate", "\"0\""},
      {"items[0].policy", "\"non_taxable\""}},
     {{FPC_SPECIAL_INVOICE_NOT_ALLOWED, "items[0].policy"}},
     1},
    {"not-taxable code without the flag",
     {{"items[1]", NULL},
      {"items[0].tax_code", "\"6010000000000000000\""},
      {"items[0].tax_rate", "\"0\""}},
     {{FPC_NON_TAXABLE_MISMATCH, "items[0].policy"}},
     1},
    {"not-taxable flag on a taxable code",
     {{"items[1]", NULL}, {"items[0].tax_rate", "\"0\""}, {"items[0].policy", "\"non_taxable\""}},
     {{FPC_NON_TAXABLE_MISMATCH, "items[0].policy"}},
     1},
    {"not-taxable code and flag at a non-zero rate",
     {{"items[1]", NULL},
      {"items[0].tax_code", "\"6010000000000000000\""},
      {"items[0].policy", "\"non_taxable\""}},
     {{FPC_RATE_NOT_ALLOWED, "items[0].tax_rate"}},
     1},
};

/* Runs one refusal case; on a failed check lists what was reported. */
static void check_refusal(const refusal *r)
{
    int failed_before = check_state.failed;
    char *body = r->body ? strdup(r->body) : mutated(r->m, MAXM);
    fp_invoice inv;
    fp_errors es;
    int rc = fp_invoice_parse(body, strlen(body), codes, &inv, &es);
    CHECK_EQ_INT(rc, FP_EINVAL);
    int nw = 0;
    for (; nw < MAXW && r->w[nw].code; nw++) {
        int found = 0;
        for (int k = 0; k < es.n && !found; k++)
            found = es.e[k].code == r->w[nw].code && strcmp(es.e[k].field, r->w[nw].field) == 0;
        CHECK_MSG(found, "want %s at \"%s\"", fp_code_get(r->w[nw].code)->name, r->w[nw].field);
    }
    if (r->exact)
        CHECK_EQ_INT(es.n, nw);
    if (r->exact && nw > 0 && es.n == nw) {
        int same = 1;
        for (int k = 1; k < nw; k++)
            same &= r->w[k].code == r->w[0].code;
        CHECK_EQ_INT(fp_errors_top(&es), same ? r->w[0].code : FPC_INVALID_FIELD);
    }
    for (int k = 0; k < es.n; k++) { /* every refusal has both messages */
        CHECK(es.e[k].zh[0] != 0);
        CHECK(es.e[k].en[0] != 0);
    }
    if (check_state.failed > failed_before)
        for (int k = 0; k < es.n; k++)
            fprintf(stderr, "    got %s at \"%s\": %s\n", fp_code_get(es.e[k].code)->name,
                    es.e[k].field, es.e[k].en);
    fp_invoice_clear(&inv);
    free(body);
}

static void test_refusals(void)
{
    for (size_t i = 0; i < NCASES(refusals); i++) {
        check_ctx("refusal[%zu] %s", i, refusals[i].name);
        check_refusal(&refusals[i]);
    }
    check_ctx("%s", "");
}

/* ---- cases run in a child process ---- */

/* A body with n copies of an item (JSON text) followed by extra items. */
static char *body_with_items(const char *item, int n, const char *tail)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_buf_puts(&b, "{\"invoice_type\":\"02\",\"buyer\":{\"name\":\"某公司\"},\"drawer\":\"张三\","
                    "\"items\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            fp_buf_puts(&b, ",");
        fp_buf_puts(&b, item);
    }
    if (tail)
        fp_buf_puts(&b, tail);
    fp_buf_puts(&b, "]}");
    return fp_buf_take(&b, NULL);
}

typedef struct isolated {
    const char *name;
    char *body;
    fp_code code;      /* wanted somewhere in the errors */
    const char *field; /* NULL: any field */
} isolated;

/* In the child: 0 if the body is refused with code at field, 1 if it was
 * accepted, 2 if refused for other reasons only. */
static int child_parse(const isolated *c)
{
    fp_invoice inv;
    fp_errors es;
    int rc = fp_invoice_parse(c->body, strlen(c->body), codes, &inv, &es);
    int result = rc == 0 ? 1 : 2;
    if (rc == 0)
        fprintf(stderr, "    accepted: totals %lld / %lld / %lld\n", (long long)inv.total_amount,
                (long long)inv.total_tax, (long long)inv.total_with_tax);
    for (int k = 0; rc != 0 && k < es.n; k++) {
        if (es.e[k].code == c->code && (!c->field || strcmp(es.e[k].field, c->field) == 0))
            result = 0;
        else
            fprintf(stderr, "    got %s at \"%s\": %s\n", fp_code_get(es.e[k].code)->name,
                    es.e[k].field, es.e[k].en);
    }
    fp_invoice_clear(&inv);
    return result;
}

/* A seller's defaults (fp_invoice_parse_with): an absent drawer or remark
 * takes the default; a blank or null drawer is still refused; the request
 * hash is of the body as sent, whatever the defaults. */
static void test_seller_defaults(void)
{
    check_ctx("%s", "seller defaults");
    cJSON *root = cJSON_Parse(example);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "drawer");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "remark");
    char *body = cJSON_PrintUnformatted(root);
    static fp_errors es;
    fp_invoice inv, inv2;
    fp_invoice_defaults def = {"李会计", "默认备注"};
    CHECK_EQ_INT(fp_invoice_parse_with(body, strlen(body), codes, &def, &inv, &es), 0);
    CHECK_EQ_STR(inv.drawer, "李会计");
    CHECK_EQ_STR(inv.remark, "默认备注");
    char *c1 = fp_invoice_canonical(&inv);
    fp_invoice_defaults other = {"王五", ""};
    CHECK_EQ_INT(fp_invoice_parse_with(body, strlen(body), codes, &other, &inv2, &es), 0);
    CHECK_EQ_STR(inv2.drawer, "王五");
    CHECK(inv2.remark == NULL || !*inv2.remark);
    char *c2 = fp_invoice_canonical(&inv2);
    CHECK(c1 && c2 && !strcmp(c1, c2));
    free(c1);
    free(c2);
    fp_invoice_clear(&inv);
    fp_invoice_clear(&inv2);
    /* without a default the drawer is required, as before */
    CHECK_EQ_INT(fp_invoice_parse_with(body, strlen(body), codes, NULL, &inv, &es), FP_EINVAL);
    CHECK(es.n >= 1 && es.e[0].code == FPC_FIELD_REQUIRED && !strcmp(es.e[0].field, "drawer"));
    fp_invoice_clear(&inv);
    free(body);
    /* the request's own drawer wins; a blank one is refused, default or not */
    static const char *const given[] = {"\"张三\"", "\"  \"", "null"};
    for (int i = 0; i < 3; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "drawer");
        cJSON_AddItemToObject(root, "drawer", cJSON_Parse(given[i]));
        body = cJSON_PrintUnformatted(root);
        int rc = fp_invoice_parse_with(body, strlen(body), codes, &def, &inv, &es);
        if (i == 0) {
            CHECK_EQ_INT(rc, 0);
            CHECK_EQ_STR(inv.drawer, "张三");
        } else {
            CHECK_EQ_INT(rc, FP_EINVAL);
        }
        fp_invoice_clear(&inv);
        free(body);
    }
    cJSON_Delete(root);
    check_ctx("%s", "");
}

static void test_isolated(void)
{
    static const char max_item[] = "{\"name\":\"服务\",\"tax_code\":\"3040201000000000000\","
                                   "\"amount\":\"9999999999999999.99\","
                                   "\"tax_rate\":\"0\"}";
    static const char tax_plus_6[] =
        "{\"name\":\"服务\",\"tax_code\":\"3040201000000000000\",\"amount\":\"100.00\","
        "\"tax_rate\":\"0.06\",\"tax\":\"6.06\"}";
    isolated cases[] = {
        /* a discount line after a line whose tax_code is missing: crashed
         * (strcmp(NULL)) before the "previous line refused" check */
        {"discount after a line without tax_code",
         mutated((const mut[]){{"items[0].tax_code", NULL}, {NULL}}, 2), FPC_FIELD_REQUIRED,
         "items[0].tax_code"},
        {"discount after a line whose tax_code is a number",
         mutated((const mut[]){{"items[0].tax_code", "3040201000000000000"}, {NULL}}, 2),
         FPC_FIELD_TYPE, "items[0].tax_code"},
        /* 19 x 9999999999999999.99 overflows int64 in the totals */
        {"total beyond (18,2) from many maximal lines", body_with_items(max_item, 19, NULL),
         FPC_AMOUNT_OUT_OF_RANGE, NULL},
        {"total beyond (18,2) from two maximal lines", body_with_items(max_item, 2, NULL),
         FPC_AMOUNT_OUT_OF_RANGE, NULL},
        /* each line within 0.06, the sum of differences 22 x 0.06 = 1.32 > 1.27 */
        {"total tax off by more than 1.27", body_with_items(tax_plus_6, 22, NULL),
         FPC_TOLERANCE_EXCEEDED, NULL},
        /* |1 x 1.0149 - 1.00| = 0.0149 > 0.01, though the product rounds to 1.01 */
        {"unit price x quantity - amount exactly 0.0149",
         body_with_items(
             "{\"name\":\"服务\",\"tax_code\":\"3040201000000000000\",\"quantity\":\"1\","
             "\"unit_price\":\"1.0149\",\"amount\":\"1.00\",\"tax_rate\":\"0.06\"}",
             1, NULL),
         FPC_TOLERANCE_EXCEEDED, "items[0].amount"},
        {"too many items", body_with_items("{}", FP_MAX_ITEMS + 1, NULL), FPC_INVALID_FIELD,
         "items"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("isolated[%zu] %s", i, cases[i].name);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_parse(&cases[i]));
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st))
            CHECK_MSG(0, "fp_invoice_parse crashed with signal %d", WTERMSIG(st));
        else if (WEXITSTATUS(st) == 1)
            CHECK_MSG(0, "accepted; want %s at \"%s\"", fp_code_get(cases[i].code)->name,
                      cases[i].field ? cases[i].field : "*");
        else
            CHECK_MSG(WEXITSTATUS(st) == 0, "refused (exit %d), but not with %s at \"%s\"",
                      WEXITSTATUS(st), fp_code_get(cases[i].code)->name,
                      cases[i].field ? cases[i].field : "*");
        free(cases[i].body);
    }
    check_ctx("%s", "");
}

/* ---- fp_errors ---- */

static void test_errors(void)
{
    check_ctx("errors cap");
    fp_errors es;
    memset(&es, 0, sizeof es);
    CHECK_EQ_INT(fp_errors_top(&es), FPC_NONE);
    for (int i = 0; i < FP_MAX_FIELD_ERRORS + 10; i++)
        fp_errors_add(&es, FPC_FIELD_REQUIRED, "drawer", NULL, NULL);
    CHECK_EQ_INT(es.n, FP_MAX_FIELD_ERRORS);
    CHECK_EQ_INT(es.dropped, 10);
    CHECK_EQ_INT(fp_errors_top(&es), FPC_FIELD_REQUIRED);
    CHECK_EQ_STR(es.e[0].zh, fp_code_get(FPC_FIELD_REQUIRED)->zh); /* default messages */
    CHECK_EQ_STR(es.e[0].en, fp_code_get(FPC_FIELD_REQUIRED)->en);

    check_ctx("errors mixed");
    memset(&es, 0, sizeof es);
    fp_errors_add(&es, FPC_FIELD_REQUIRED, "drawer", "缺", "missing");
    fp_errors_add(&es, FPC_INVALID_TAX_ID, "buyer.tax_id", NULL, NULL);
    CHECK_EQ_INT(fp_errors_top(&es), FPC_INVALID_FIELD);
    CHECK_EQ_STR(es.e[0].en, "missing");

    check_ctx("errors long field path is truncated, not overflowed");
    memset(&es, 0, sizeof es);
    char longf[200];
    memset(longf, 'f', sizeof longf - 1);
    longf[sizeof longf - 1] = 0;
    fp_errors_add(&es, FPC_UNKNOWN_FIELD, longf, NULL, NULL);
    CHECK_EQ_INT(strlen(es.e[0].field), sizeof es.e[0].field - 1);
    check_ctx("%s", "");
}

/* ---- rendering ---- */

static const char *jstr(const cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void check_render(const char *name, const char *body, const char *buyer_name)
{
    check_ctx("render %s", name);
    fp_invoice inv;
    fp_errors es;
    if (!CHECK_EQ_INT(fp_invoice_parse(body, strlen(body), codes, &inv, &es), 0)) {
        fp_invoice_clear(&inv);
        return;
    }
    fp_seller seller;
    memset(&seller, 0, sizeof seller);
    snprintf(seller.name, sizeof seller.name, "厦门某某软件有限公司 \"quoted\"");
    snprintf(seller.tax_id, sizeof seller.tax_id, "91350200MA2YJ1XR9G");
    snprintf(seller.address, sizeof seller.address, "厦门市思明区某路\\1号");
    fp_doc doc;
    int rc = fp_invoice_render(&inv, &seller, "order-0001", "2026-01-02 03:04:05", &doc);
    if (!CHECK_EQ_INT(rc, 0) || !CHECK(doc.json != NULL)) {
        fp_invoice_clear(&inv);
        return;
    }
    CHECK_EQ_INT(doc.len, strlen(doc.json));
    fp_code code;
    char detail[128];
    cJSON *j = fp_json_parse(doc.json, doc.len, 32, &code, detail, sizeof detail);
    CHECK_MSG(j != NULL, "render output is not strict JSON: %s", detail);
    cJSON_Delete(j);

    /* placeholders at every slot, and the number itself is one of them */
    CHECK_EQ_INT(doc.nnum, FP_NUM_SLOTS);
    for (int k = 0; k < doc.nnum; k++) {
        CHECK(doc.num_off[k] + FP_NUMBER_LEN <= doc.len);
        CHECK_MSG(strncmp(doc.json + doc.num_off[k], "00000000000000000000", FP_NUMBER_LEN) == 0,
                  "slot %d at %zu is not the placeholder", k, doc.num_off[k]);
    }
    static const char number[FP_NUMBER_LEN + 1] = "26350000000000012345";
    fp_doc_patch_number(&doc, number);
    for (int k = 0; k < doc.nnum; k++)
        CHECK_MSG(memcmp(doc.json + doc.num_off[k], number, FP_NUMBER_LEN) == 0,
                  "slot %d at %zu not patched", k, doc.num_off[k]);
    CHECK(strstr(doc.json, "00000000000000000000") == NULL);
    CHECK_EQ_INT(strlen(doc.json), doc.len);

    j = fp_json_parse(doc.json, doc.len, 32, &code, detail, sizeof detail);
    if (CHECK_MSG(j != NULL, "patched output is not strict JSON: %s", detail)) {
        CHECK_EQ_STR(jstr(j, "number"), number);
        CHECK_EQ_STR(jstr(j, "serial"), "order-0001");
        CHECK_EQ_STR(jstr(j, "issued_at"), "2026-01-02 03:04:05");
        CHECK_EQ_STR(jstr(j, "total_amount"), "900.00");
        CHECK_EQ_STR(jstr(j, "total_tax"), "54.00");
        CHECK_EQ_STR(jstr(j, "total_with_tax"), "954.00");
        CHECK_EQ_STR(jstr(j, "total_with_tax_words"), "玖佰伍拾肆圆整");
        const cJSON *links = cJSON_GetObjectItemCaseSensitive(j, "links");
        CHECK_EQ_STR(jstr(links, "self"), "/v1/invoices/26350000000000012345");
        CHECK_EQ_STR(jstr(links, "pdf"), "/v1/invoices/26350000000000012345/pdf");
        CHECK_EQ_STR(jstr(links, "xml"), "/v1/invoices/26350000000000012345/xml");
        const cJSON *sel = cJSON_GetObjectItemCaseSensitive(j, "seller");
        CHECK_EQ_STR(jstr(sel, "name"), seller.name);
        CHECK_EQ_STR(jstr(sel, "address"), seller.address);
        const cJSON *buy = cJSON_GetObjectItemCaseSensitive(j, "buyer");
        CHECK_EQ_STR(jstr(buy, "name"), buyer_name);
        const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
        if (CHECK_EQ_INT(cJSON_GetArraySize(items), 2)) {
            const cJSON *i0 = cJSON_GetArrayItem(items, 0), *i1 = cJSON_GetArrayItem(items, 1);
            CHECK_EQ_STR(jstr(i0, "name"), "*信息技术服务*软件维护服务费");
            CHECK_EQ_STR(jstr(i0, "line_kind"), "discounted");
            CHECK_EQ_STR(jstr(i0, "amount"), "1000.00");
            CHECK_EQ_STR(jstr(i0, "tax_rate"), "0.06");
            CHECK_EQ_STR(jstr(i0, "tax"), "60.00");
            CHECK_EQ_STR(jstr(i0, "amount_with_tax"), "1060.00");
            CHECK_EQ_STR(jstr(i1, "line_kind"), "discount");
            CHECK_EQ_STR(jstr(i1, "amount"), "-100.00");
            CHECK_EQ_STR(jstr(i1, "tax"), "-6.00");
        }
    }
    cJSON_Delete(j);
    free(doc.json);
    fp_invoice_clear(&inv);
}

/* ---- tax-inclusive lines show the net unit price (docs/domain.md) ---- */

static void test_net_price(void)
{
    static const struct {
        const char *name;
        mut m[MAXM];
        const char *price, *gross_price; /* items[0] as rendered; NULL: absent */
        int64_t amount, tax;
    } cases[] = {
        {"3 × 33.33 gross at 6%: 94.33 net",
         {{"price_includes_tax", "true"},
          {"items[1]", NULL},
          {"items[0].quantity", "\"3\""},
          {"items[0].unit_price", "\"33.33\""}},
         "31.4433333333333",
         "33.33",
         9433,
         566},
        {"the audit's case: 3 × 33.3333333333333 with amount 94.34",
         {{"price_includes_tax", "true"},
          {"items[1]", NULL},
          {"items[0].quantity", "\"3\""},
          {"items[0].unit_price", "\"33.3333333333333\""}},
         "31.4466666666667",
         "33.3333333333333",
         9434,
         566},
        {"one unit: the net amount",
         {{"price_includes_tax", "true"},
          {"items[1]", NULL},
          {"items[0].unit_price", "\"1060.00\""}},
         "1000",
         "1060.00",
         100000,
         6000},
        {"discounted tax-inclusive line",
         {{"price_includes_tax", "true"},
          {"items[0].quantity", "\"2\""},
          {"items[0].unit_price", "\"565.00\""},
          {"items[1].amount", NULL},
          {"items[1].amount_with_tax", "\"-113.00\""}},
         "533.02",
         "565.00",
         106604 - 10660,
         6396 - 640},
        {"no tax on the line: the caller's price is the net price",
         {{"price_includes_tax", "true"},
          {"items[1]", NULL},
          {"items[0].quantity", "\"3\""},
          {"items[0].unit_price", "\"33.3333333333333\""},
          {"items[0].tax_rate", "\"0\""},
          {"items[0].policy", "\"exempt\""}},
         "33.3333333333333",
         "33.3333333333333",
         10000,
         0},
        {"tax-exclusive: no gross price", {{"items[1]", NULL}}, "1000.00", NULL, 100000, 6000},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("net_price[%zu] %s", i, cases[i].name);
        char *body = mutated(cases[i].m, MAXM);
        fp_invoice inv;
        fp_errors es;
        fp_doc doc = {0};
        fp_seller seller;
        memset(&seller, 0, sizeof seller);
        snprintf(seller.name, sizeof seller.name, "厦门某某软件有限公司");
        snprintf(seller.tax_id, sizeof seller.tax_id, "91350200MA2YJ1XR9G");
        if (CHECK_MSG(fp_invoice_parse(body, strlen(body), codes, &inv, &es) == 0, "refused: %s %s",
                      es.n ? es.e[0].field : "", es.n ? es.e[0].en : "") &&
            CHECK_EQ_INT(fp_invoice_render(&inv, &seller, "s", "2026-01-02 03:04:05", &doc), 0)) {
            cJSON *j = cJSON_ParseWithLength(doc.json, doc.len);
            const cJSON *i0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "items"), 0);
            CHECK_EQ_STR(jstr(i0, "unit_price"), cases[i].price);
            if (cases[i].gross_price)
                CHECK_EQ_STR(jstr(i0, "unit_price_with_tax"), cases[i].gross_price);
            else
                CHECK(jstr(i0, "unit_price_with_tax") == NULL);
            CHECK_EQ_INT(inv.items[0].amount + (inv.nitems > 1 ? inv.items[1].amount : 0),
                         cases[i].amount);
            CHECK_EQ_INT(inv.items[0].tax + (inv.nitems > 1 ? inv.items[1].tax : 0), cases[i].tax);
            /* |quantity × unit_price − amount| <= 0.01 as printed */
            fp_dec q, p;
            CHECK(fp_dec_parse(jstr(i0, "quantity"), &q) == 0 &&
                  fp_dec_parse(jstr(i0, "unit_price"), &p) == 0 &&
                  fp_dec_mul_within(&q, &p, inv.items[0].amount, 1));
            cJSON_Delete(j);
        }
        free(doc.json);
        fp_invoice_clear(&inv);
        free(body);
    }
    check_ctx("%s", "");
}

/* ---- refusals of the totals name the figure that is wrong ---- */

static void test_total_messages(void)
{
    static const struct {
        const char *name;
        mut m[MAXM];
        const char *zh, *en; /* in the message */
        const char *not_zh;  /* not in the message */
    } cases[] = {
        {"total amount 0",
         {{"items[1].amount", "\"-1000.00\""}},
         "合计金额（不含税）为 0.00",
         "total amount before tax is 0.00",
         "价税合计"},
        {"total with tax past (18,2)",
         {{"items[1]", NULL},
          {"items[0].unit_price", "\"9999999999999999.00\""},
          {"items[0].tax_rate", "\"0\""},
          {"items[2]", "{\"name\":\"咨询\",\"tax_code\":\"3040201000000000000\",\"amount\":"
                       "\"9999999999999999.00\",\"tax_rate\":\"0\"}"}},
         "价税合计超过",
         "total with tax exceeds",
         "须大于 0"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("total_message[%zu] %s", i, cases[i].name);
        char *body = mutated(cases[i].m, MAXM);
        fp_invoice inv;
        fp_errors es;
        CHECK_EQ_INT(fp_invoice_parse(body, strlen(body), codes, &inv, &es), FP_EINVAL);
        if (CHECK_EQ_INT(es.n, 1)) {
            CHECK_EQ_INT(es.e[0].code, FPC_AMOUNT_OUT_OF_RANGE);
            CHECK_CONTAINS(es.e[0].zh, cases[i].zh);
            CHECK_CONTAINS(es.e[0].en, cases[i].en);
            CHECK(strstr(es.e[0].zh, cases[i].not_zh) == NULL);
        }
        fp_invoice_clear(&inv);
        free(body);
    }
    check_ctx("%s", "");
}

static void test_render(void)
{
    check_render("example", example, "上海某某科技有限公司");
    char *b = mutated((const mut[]){{"remark", "\"quote \\\" backslash \\\\ slash / 中文\""},
                                    {"buyer.name", "\"王五\""},
                                    {"buyer.natural_person", "true"},
                                    {NULL}},
                      4);
    check_render("escapes and natural person", b, "王五（个人）");
    free(b);
    /* a name that already ends in （个人） gets no second one */
    b = mutated(
        (const mut[]){{"buyer.name", "\"王五（个人）\""}, {"buyer.natural_person", "true"}, {NULL}},
        3);
    check_render("natural person named with （个人）", b, "王五（个人）");
    free(b);
    b = mutated((const mut[]){{"buyer.tax_id", "\"110108000000000\""}, {NULL}}, 2);
    check_render("with a warning", b, "上海某某科技有限公司");
    free(b);
}

int main(void)
{
    fp_err err = {0};
    if (fp_taxcode_load(FP_SOURCE_DIR "/data/taxcodes-sample.csv", &codes, &err) < 0) {
        fprintf(stderr, "cannot load the sample code table: %s\n", err.msg);
        return 2;
    }
    example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    if (!example) {
        perror(FP_SOURCE_DIR "/examples/invoice.json");
        return 2;
    }
    test_example();
    test_accepted();
    test_refusals();
    test_errors();
    test_net_price();
    test_total_messages();
    test_render();
    test_seller_defaults();
    test_isolated();
    free(example);
    fp_taxcode_free(codes);
    return check_summary();
}
