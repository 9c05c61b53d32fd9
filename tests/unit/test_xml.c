/* test_xml.c — fp_xml_from_doc: stored invoice documents to 数电票 XML.
 *
 * - golden files: tests/data/xml/<name>-doc.json must become exactly
 *   <name>.expected.xml (blue from examples/invoice.json, a red invoice, an
 *   exempt / non-taxable / escaping case), twice the same bytes, and the
 *   output must parse again with libxml2;
 * - refusals: the blue document with one field removed or broken (table of
 *   mutations) gives FP_EINVAL naming the field, and leaves the output alone;
 * - amounts are copied as strings (a value no double can hold survives);
 * - the output limit gives FP_ERANGE, and every libxml2 allocation failure
 *   in turn gives FP_ENOMEM without leaks (ASan build). */
#include "check.h"
#include "fapiao/xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA FP_SOURCE_DIR "/tests/data/xml/"

/* 1 if xml parses as a document whose root is <EInvoice>. */
static int reparses(const char *xml, size_t len)
{
    xmlDocPtr d = xmlReadMemory(xml, (int)len, "invoice.xml", NULL, XML_PARSE_NONET);
    if (!d)
        return 0;
    xmlNodePtr root = xmlDocGetRootElement(d);
    int ok = root && xmlStrcmp(root->name, BAD_CAST "EInvoice") == 0;
    xmlFreeDoc(d);
    return ok;
}

/* ---- golden files ---- */

static void test_golden(void)
{
    static const char *const names[] = {"blue", "red", "exempt"};
    for (size_t i = 0; i < NCASES(names); i++) {
        char p[512];
        size_t dlen = 0, elen = 0;
        check_ctx("golden %s", names[i]);
        snprintf(p, sizeof p, DATA "%s-doc.json", names[i]);
        char *doc = check_read_file(p, &dlen);
        snprintf(p, sizeof p, DATA "%s.expected.xml", names[i]);
        char *want = check_read_file(p, &elen);
        if (!CHECK(doc && want)) {
            free(doc);
            free(want);
            continue;
        }
        fp_buf a, b;
        fp_err err = {0};
        fp_buf_init(&a, 0);
        fp_buf_init(&b, 0);
        int rc = fp_xml_from_doc(doc, dlen, &a, &err);
        CHECK_MSG(rc == 0, "rc %d: %s", rc, err.msg);
        CHECK_EQ_INT(fp_xml_from_doc(doc, dlen, &b, &err), 0);
        if (rc == 0) {
            CHECK_MSG(a.len == elen && memcmp(a.p, want, elen) == 0,
                      "output differs from %s.expected.xml:\n%s", names[i], a.p);
            CHECK(b.len == a.len && memcmp(a.p, b.p, a.len) == 0);
            CHECK(reparses(a.p, a.len));
        }
        fp_buf_free(&a);
        fp_buf_free(&b);
        free(doc);
        free(want);
    }
    check_ctx("%s", "");
}

/* ---- refusals: the blue (or red) document with one change ---- */

typedef struct mutation {
    const char *base;   /* "blue" or "red" */
    const char *object; /* "" root, "seller", "buyer", "items[N]" */
    const char *key;
    const char *json; /* new value; NULL deletes the key */
    int rc;
    const char *msg; /* part of err.msg */
} mutation;

static const mutation refusals[] = {
    {"blue", "", "number", NULL, FP_EINVAL, "number"},
    {"blue", "", "number", "\"2644000000000001234\"", FP_EINVAL, "20 digits"},
    {"blue", "", "number", "\"2644000000000001234x\"", FP_EINVAL, "20 digits"},
    {"blue", "", "number", "26440000000000012345", FP_EINVAL, "not a string"},
    {"blue", "", "issued_at", NULL, FP_EINVAL, "issued_at"},
    {"blue", "", "issued_at", "\"2026-11-25 09:08:07\"", FP_EINVAL, "issued_at"},
    {"blue", "", "issued_at", "\"2026-11-25\"", FP_EINVAL, "issued_at"},
    {"blue", "", "color", NULL, FP_EINVAL, "color"},
    {"blue", "", "color", "\"green\"", FP_EINVAL, "color"},
    {"blue", "", "invoice_type", "\"03\"", FP_EINVAL, "invoice_type"},
    {"blue", "", "seller", NULL, FP_EINVAL, "seller"},
    {"blue", "", "buyer", "[]", FP_EINVAL, "buyer"},
    {"blue", "seller", "tax_id", NULL, FP_EINVAL, "seller.tax_id"},
    {"blue", "buyer", "name", NULL, FP_EINVAL, "buyer.name"},
    {"blue", "buyer", "phone", "12345678", FP_EINVAL, "buyer.phone"},
    {"blue", "", "items", NULL, FP_EINVAL, "items"},
    {"blue", "", "items", "[]", FP_EINVAL, "items"},
    {"blue", "", "items", "{}", FP_EINVAL, "items"},
    {"blue", "", "items", "[1]", FP_EINVAL, "items[0]"},
    {"blue", "items[1]", "amount", NULL, FP_EINVAL, "items[1].amount"},
    {"blue", "items[0]", "tax", "60", FP_EINVAL, "items[0].tax"},
    {"blue", "items[0]", "policy", "true", FP_EINVAL, "items[0].policy"},
    {"blue", "items[0]", "name", "\"a\\u0001b\"", FP_EINVAL, "items[0].name"},
    {"blue", "items[0]", "spec", "\"\\uffff\"", FP_EINVAL, "items[0].spec"},
    {"blue", "", "total_with_tax_words", NULL, FP_EINVAL, "total_with_tax_words"},
    {"blue", "", "drawer", NULL, FP_EINVAL, "drawer"},
    {"blue", "", "remark", "[\"x\"]", FP_EINVAL, "remark"},
    {"red", "", "red_form_id", NULL, FP_EINVAL, "red_form_id"},
    {"red", "", "original_number", NULL, FP_EINVAL, "original_number"},
    {"red", "", "original_number", "\"123\"", FP_EINVAL, "original_number"},
    {"red", "", "red_reason", "\"whim\"", FP_EINVAL, "red_reason"},
};

/* Accepted changes and a string the output must then contain. */
static const struct {
    const char *base, *object, *key, *json, *want;
} accepted[] = {
    /* beyond a double's 15-17 digits: copied, never converted */
    {"blue", "", "total_with_tax", "\"123456789012345678.91\"",
     "<TotalTax-includedAmount>123456789012345678.91</TotalTax-includedAmount>"},
    {"blue", "", "remark", NULL, "<Remark/>"},
    {"blue", "", "remark", "null", "<Remark/>"},
    {"blue", "", "remark", "\"a\\tb\\r\\nc <&>\"", "<Remark>a\tb&#13;\nc &lt;&amp;&gt;</Remark>"},
    {"blue", "seller", "bank", "\"某银行\"", "<SellerBankName>某银行</SellerBankName>"},
    {"blue", "items[0]", "policy", "\"simplified\"", "<TaxRate>0.06</TaxRate>"},
    {"blue", "items[0]", "policy", "\"exempt\"", "<ComTaxAm>***</ComTaxAm>"},
    {"blue", "", "number", "\"25110000000000000001\"", "<EInvoiceTag>SWEI1100</EInvoiceTag>"},
    {"blue", "", "number", "\"25110000000000000001\"",
     "<TaxBureauCode>11100000000</TaxBureauCode>"},
    {"red", "", "red_reason", "\"allowance\"", "<RedReason>销售折让</RedReason>"},
    {"red", "", "red_reason", "\"issue_error\"", "<RedReason>开票有误</RedReason>"},
    {"red", "", "red_reason", "\"service_stop\"", "<RedReason>服务中止</RedReason>"},
    {"red", "", "invoice_type", "\"01\"", "<LabelName>增值税专用发票</LabelName>"},
};

/* The base document with obj.key set to json (or deleted), printed. */
static char *mutate(const char *base, const char *object, const char *key, const char *json)
{
    char p[512];
    size_t len = 0;
    snprintf(p, sizeof p, DATA "%s-doc.json", base);
    char *text = check_read_file(p, &len);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!doc)
        return NULL;
    cJSON *o = doc;
    int idx;
    if (sscanf(object, "items[%d]", &idx) == 1)
        o = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), idx);
    else if (*object)
        o = cJSON_GetObjectItem(doc, object);
    char *out = NULL;
    if (o) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
        cJSON *v = json ? cJSON_Parse(json) : NULL;
        if (!json || (v && cJSON_AddItemToObject(o, key, v)))
            out = cJSON_PrintUnformatted(doc);
        else
            cJSON_Delete(v);
    }
    cJSON_Delete(doc);
    return out;
}

static void test_refusals(void)
{
    for (size_t i = 0; i < NCASES(refusals); i++) {
        const mutation *m = &refusals[i];
        check_ctx("refusal[%zu] %s %s.%s = %s", i, m->base, m->object, m->key,
                  m->json ? m->json : "(deleted)");
        char *doc = mutate(m->base, m->object, m->key, m->json);
        if (!CHECK(doc != NULL))
            continue;
        fp_buf b;
        fp_err err = {0};
        fp_buf_init(&b, 0);
        fp_buf_puts(&b, "kept");
        CHECK_EQ_INT(fp_xml_from_doc(doc, strlen(doc), &b, &err), m->rc);
        CHECK_EQ_INT(err.code, m->rc);
        CHECK_CONTAINS(err.msg, m->msg);
        CHECK_EQ_STR(b.p, "kept");
        fp_buf_free(&b);
        free(doc);
    }
    for (size_t i = 0; i < NCASES(accepted); i++) {
        check_ctx("accepted[%zu] %s %s.%s = %s", i, accepted[i].base, accepted[i].object,
                  accepted[i].key, accepted[i].json ? accepted[i].json : "(deleted)");
        char *doc = mutate(accepted[i].base, accepted[i].object, accepted[i].key, accepted[i].json);
        if (!CHECK(doc != NULL))
            continue;
        fp_buf b;
        fp_err err = {0};
        fp_buf_init(&b, 0);
        int rc = fp_xml_from_doc(doc, strlen(doc), &b, &err);
        CHECK_MSG(rc == 0, "rc %d: %s", rc, err.msg);
        if (rc == 0) {
            CHECK_CONTAINS(b.p, accepted[i].want);
            CHECK(reparses(b.p, b.len));
        }
        fp_buf_free(&b);
        free(doc);
    }
    check_ctx("%s", "");
}

/* Inputs that are not invoice documents at all. */
static void test_not_documents(void)
{
    static const struct {
        const char *in;
        size_t len;
    } cases[] = {
#define S(lit) {lit, sizeof lit - 1}
        S(""),
        S("not json"),
        S("{\"number\":"),
        S("[]"),
        S("\"26440000000000012345\""),
        S("{}"),
        S("{\"number\":\"26440000000000012345\"}"),
        S("{\"a\":1,\"a\":2}"),
        S("{\"number\":\"\xff\"}"),
        S("{\"x\":1}\0garbage"),
#undef S
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("not a document [%zu] \"%s\"", i, cases[i].in);
        fp_buf b;
        fp_err err = {0};
        fp_buf_init(&b, 0);
        CHECK_EQ_INT(fp_xml_from_doc(cases[i].in, cases[i].len, &b, &err), FP_EINVAL);
        CHECK(err.msg[0] != 0);
        CHECK_EQ_INT(b.len, 0);
        fp_buf_free(&b);
    }
    check_ctx("NULL document");
    fp_buf b;
    fp_buf_init(&b, 0);
    CHECK_EQ_INT(fp_xml_from_doc(NULL, 0, &b, NULL), FP_EINVAL); /* err may be NULL */
    fp_buf_free(&b);
    check_ctx("%s", "");
}

/* ---- limits and injected failures ---- */

static void test_output_limit(void)
{
    size_t len = 0;
    char *doc = check_read_file(DATA "blue-doc.json", &len);
    if (!CHECK(doc != NULL))
        return;
    fp_buf b;
    fp_err err = {0};
    fp_buf_init(&b, 1000); /* the blue XML is ~2.7 KB */
    CHECK_EQ_INT(fp_xml_from_doc(doc, len, &b, &err), FP_ERANGE);
    CHECK_CONTAINS(err.msg, "limit");
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(b.overflow, 0);
    fp_buf_free(&b);

    /* appends to what the buffer holds */
    fp_buf_init(&b, 0);
    fp_buf_puts(&b, "head:");
    CHECK_EQ_INT(fp_xml_from_doc(doc, len, &b, &err), 0);
    CHECK(b.p && strncmp(b.p, "head:<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 44) == 0);
    fp_buf_free(&b);
    free(doc);
}

static long alloc_countdown = -1; /* fail when it reaches 0; -1: never */
static long alloc_calls;

static void *failing_malloc(size_t n)
{
    alloc_calls++;
    if (alloc_countdown >= 0 && alloc_countdown-- == 0)
        return NULL;
    return malloc(n);
}

static void *failing_realloc(void *p, size_t n)
{
    alloc_calls++;
    if (alloc_countdown >= 0 && alloc_countdown-- == 0)
        return NULL;
    return realloc(p, n);
}

static char *failing_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = failing_malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

/* Every libxml2 allocation of one conversion fails in turn: the result is
 * FP_ENOMEM (or success when libxml2 recovers) and never a crash or leak. */
static void test_alloc_failures(void)
{
    size_t len = 0;
    char *doc = check_read_file(DATA "red-doc.json", &len);
    if (!CHECK(doc != NULL))
        return;
    fp_buf b;
    fp_err err = {0};
    fp_buf_init(&b, 0);
    CHECK_EQ_INT(fp_xml_from_doc(doc, len, &b, &err), 0); /* libxml2 initialised */
    size_t full_len = b.len;
    char *full = fp_buf_take(&b, NULL);

    xmlMemSetup(free, failing_malloc, failing_realloc, failing_strdup);
    alloc_calls = 0;
    alloc_countdown = -1;
    fp_buf_init(&b, 0);
    CHECK_EQ_INT(fp_xml_from_doc(doc, len, &b, &err), 0);
    fp_buf_free(&b);
    long total = alloc_calls;
    CHECK_MSG(total > 0, "libxml2 made no allocations through xmlMemSetup");
    int failed = 0;
    for (long k = 0; k < total; k++) {
        check_ctx("allocation %ld of %ld fails", k + 1, total);
        alloc_countdown = k;
        fp_buf_init(&b, 0);
        int rc = fp_xml_from_doc(doc, len, &b, &err);
        CHECK_MSG(rc == 0 || rc == FP_ENOMEM, "rc %d: %s", rc, err.msg);
        if (rc == 0) /* libxml2 recovered: nothing may be missing */
            CHECK_MSG(b.len == full_len && memcmp(b.p, full, full_len) == 0,
                      "output after a failed allocation differs:\n%s", b.p);
        else
            failed++;
        fp_buf_free(&b);
    }
    alloc_countdown = -1;
    xmlMemSetup(free, malloc, realloc, strdup);
    check_ctx("%s", "");
    CHECK_MSG(failed > 0, "no injected failure reached fp_xml_from_doc's result");
    free(full);
    free(doc);
}

/* libxml2 reports each injected failure on stderr; the checks say enough. */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

int main(void)
{
    xmlSetGenericErrorFunc(NULL, quiet);
    test_golden();
    test_refusals();
    test_not_documents();
    test_output_limit();
    test_alloc_failures();
    return check_summary();
}
