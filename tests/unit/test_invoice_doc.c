/* test_invoice_doc.c — the one reader of the stored invoice document
 * (src/core/invoice_doc.c), which the PDF, the XML and red forms share:
 *
 *   - the three fixtures read back with every field the consumers use, the
 *     type's names, the display cells of exempt / non-taxable lines, the red
 *     fields and the reason's words;
 *   - a table of one-field changes: refusals name the field (FP_EINVAL) and
 *     leave the struct cleared; accepted changes (optional fields absent or
 *     null) read;
 *   - the PDF, the XML and a red form refuse exactly the documents the
 *     reader refuses (they no longer have readers of their own). */
#include "check.h"

#include "fapiao/invoice_doc.h"
#include "fapiao/pdf.h"
#include "fapiao/red.h"
#include "fapiao/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA FP_SOURCE_DIR "/tests/data/xml/"

static char *fixture(const char *name, size_t *len)
{
    char p[512];
    snprintf(p, sizeof p, DATA "%s-doc.json", name);
    return check_read_file(p, len);
}

static void test_fixtures(void)
{
    size_t len;
    fp_invoice_doc d;
    fp_err err = {0};

    check_ctx("blue");
    char *doc = fixture("blue", &len);
    if (CHECK(doc) && CHECK_EQ_INT(fp_invoice_doc_read(doc, len, &d, &err), 0)) {
        CHECK_EQ_STR(d.number, "26440000000000012345");
        CHECK_EQ_INT(d.red, 0);
        CHECK_EQ_STR(d.color, "blue");
        CHECK_EQ_STR(d.type->code, "02");
        CHECK_EQ_STR(d.type->name, "普通发票");
        CHECK_EQ_STR(d.type->title, "电子发票（普通发票）");
        CHECK_EQ_STR(d.type->qr, "32");
        CHECK(d.seller.name && d.seller.tax_id && d.buyer.name);
        CHECK(d.total_amount && d.total_tax && d.total_with_tax && d.total_with_tax_words &&
              d.drawer);
        CHECK(d.original_number == NULL && d.red_form_id == NULL && d.red_reason == NULL);
        CHECK(d.nitems >= 1);
        for (int i = 0; i < d.nitems; i++) {
            check_ctx("blue items[%d]", i);
            CHECK(d.items[i].name && d.items[i].amount && d.items[i].tax_rate && d.items[i].tax &&
                  d.items[i].amount_with_tax && d.items[i].tax_code);
        }
        fp_invoice_doc_clear(&d);
        CHECK(d.root == NULL && d.items == NULL);
    }
    free(doc);

    check_ctx("red");
    doc = fixture("red", &len);
    if (CHECK(doc) && CHECK_EQ_INT(fp_invoice_doc_read(doc, len, &d, &err), 0)) {
        CHECK_EQ_INT(d.red, 1);
        CHECK_EQ_STR(d.original_number, "26440000000000012345");
        CHECK_EQ_STR(d.red_form_id, "44030026112600000001");
        CHECK_EQ_STR(d.red_reason, "sales_return");
        CHECK_EQ_STR(d.red_reason_words, "销货退回");
        CHECK_EQ_STR(d.items[0].quantity, "-1");
        CHECK_EQ_INT(d.items[0].kind, FP_LINE_NORMAL);
        CHECK(d.items[0].shown_rate == NULL);
        fp_invoice_doc_clear(&d);
    }
    free(doc);

    check_ctx("exempt");
    doc = fixture("exempt", &len);
    if (CHECK(doc) && CHECK_EQ_INT(fp_invoice_doc_read(doc, len, &d, &err), 0)) {
        int exempt = 0, non_taxable = 0;
        for (int i = 0; i < d.nitems; i++) {
            const fp_doc_item *it = &d.items[i];
            check_ctx("exempt items[%d] policy %s", i, it->policy ? it->policy : "-");
            if (it->policy && !strcmp(it->policy, "exempt")) {
                exempt++;
                CHECK_EQ_STR(it->shown_rate, "免税");
                CHECK_EQ_STR(it->shown_tax, "***");
            } else if (it->policy && !strcmp(it->policy, "non_taxable")) {
                non_taxable++;
                CHECK_EQ_STR(it->shown_rate, "不征税");
                CHECK_EQ_STR(it->shown_tax, "");
            } else {
                CHECK(it->shown_rate == NULL && it->shown_tax == NULL);
            }
        }
        check_ctx("exempt");
        CHECK(exempt > 0 && non_taxable > 0);
        fp_invoice_doc_clear(&d);
    }
    free(doc);
    fp_invoice_doc_clear(NULL); /* a no-op */
    check_ctx("%s", "");
}

/* One member of a fixture changed: obj "" (root), "seller", "buyer" or
 * "items[N]"; json NULL deletes it.  msg "" means the reader accepts. */
static const struct {
    const char *base, *obj, *key, *json, *msg;
} cases[] = {
    {"blue", "", "number", NULL, "lacks number"},
    {"blue", "", "number", "\"123\"", "number is not 20 digits"},
    {"blue", "", "number", "1", "number is not a string"},
    {"blue", "", "issued_at", "\"25/11/2026\"", "issued_at is not yyyy-MM-dd"},
    {"blue", "", "invoice_type", "\"03\"", "invoice_type must be 01 or 02"},
    {"blue", "", "color", "\"green\"", "color must be blue or red"},
    {"blue", "", "seller", "\"x\"", "seller is missing or not an object"},
    {"blue", "seller", "tax_id", NULL, "lacks seller.tax_id"},
    {"blue", "buyer", "name", NULL, "lacks buyer.name"},
    {"blue", "buyer", "email", "1", "buyer.email is not a string"},
    {"blue", "", "drawer", "42", "drawer is not a string"},
    {"blue", "", "total_with_tax_words", NULL, "lacks total_with_tax_words"},
    {"blue", "", "items", "[]", "items is missing, empty or not an array"},
    {"blue", "", "items", "[1]", "items[0] is not an object"},
    {"blue", "items[1]", "amount", NULL, "lacks items[1].amount"},
    {"blue", "items[0]", "tax_code", NULL, "lacks items[0].tax_code"},
    {"blue", "items[0]", "line_kind", "7", "items[0].line_kind is not a string"},
    {"red", "", "original_number", "\"123\"", "original_number is not 20 digits"},
    {"red", "", "red_form_id", NULL, "lacks red_form_id"},
    {"red", "", "red_reason", "\"whim\"", "unknown red_reason"},
    /* accepted: optional members absent or null */
    {"blue", "", "remark", NULL, ""},
    {"blue", "", "remark", "null", ""},
    {"blue", "buyer", "tax_id", NULL, ""},
    {"blue", "buyer", "address", "null", ""},
    {"blue", "items[0]", "spec", NULL, ""},
    {"blue", "items[0]", "policy", "\"simplified\"", ""},
    {"blue", "", "issued_at", "\"2026-11-25\"", ""}, /* the PDF takes a date alone */
    {"red", "", "remark", NULL, ""},
};

static char *mutate(const char *base, const char *obj, const char *key, const char *json)
{
    char *text = fixture(base, NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!doc)
        return NULL;
    cJSON *o = doc;
    int idx;
    if (sscanf(obj, "items[%d]", &idx) == 1)
        o = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), idx);
    else if (*obj)
        o = cJSON_GetObjectItem(doc, obj);
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (json)
        cJSON_AddItemToObject(o, key, cJSON_Parse(json));
    char *out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return out;
}

static void test_cases(void)
{
    fp_pdf_renderer *r = NULL;
    fp_err rerr = {0};
    int have_font = fp_pdf_renderer_new(NULL, &r, &rerr) == 0;
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("case[%zu] %s %s.%s = %s", i, cases[i].base, cases[i].obj, cases[i].key,
                  cases[i].json ? cases[i].json : "(deleted)");
        char *doc = mutate(cases[i].base, cases[i].obj, cases[i].key, cases[i].json);
        if (!CHECK(doc != NULL))
            continue;
        size_t len = strlen(doc);
        int refused = cases[i].msg[0] != 0;
        fp_invoice_doc d;
        fp_err err = {0};
        int rc = fp_invoice_doc_read(doc, len, &d, &err);
        CHECK_EQ_INT(rc, refused ? FP_EINVAL : 0);
        if (refused) {
            CHECK_CONTAINS(err.msg, cases[i].msg);
            CHECK(d.root == NULL && d.items == NULL && d.nitems == 0);
        }
        fp_invoice_doc_clear(&d);

        /* the PDF refuses with the reader's words; so does the XML (which
         * wants a full issue time, so not the date-only case) */
        char qr[128];
        fp_err perr = {0};
        CHECK_EQ_INT(fp_pdf_qr_text(doc, len, qr, sizeof qr, &perr), rc);
        if (refused)
            CHECK_EQ_STR(perr.msg, err.msg);
        if (have_font && !refused) {
            fp_buf b;
            fp_buf_init(&b, 0);
            CHECK_EQ_INT(fp_pdf_render(r, doc, len, &b, NULL, &perr), 0);
            fp_buf_free(&b);
        }
        fp_buf x;
        fp_buf_init(&x, 0);
        fp_err xerr = {0};
        int xrc = fp_xml_from_doc(doc, len, &x, &xerr);
        if (strcmp(cases[i].key, "issued_at") != 0) {
            CHECK_EQ_INT(xrc, rc);
            if (refused)
                CHECK_EQ_STR(xerr.msg, err.msg);
        }
        fp_buf_free(&x);

        /* a red form reads its blue invoice with the same reader */
        if (!strcmp(cases[i].base, "blue")) {
            fp_red_form f;
            fp_errors *es = calloc(1, sizeof *es);
            if (CHECK(es != NULL)) {
                int frc = fp_red_form_parse("{\"reason\":\"issue_error\"}", 24, doc, len, &f, es);
                CHECK_EQ_INT(frc, rc);
                if (refused && es->n > 0)
                    CHECK_EQ_STR(es->e[0].en, "A red form can only reverse a blue invoice");
                fp_red_form_clear(&f);
                free(es);
            }
        }
        free(doc);
    }
    fp_pdf_renderer_free(r);
    check_ctx("%s", "");
}

int main(void)
{
    test_fixtures();
    test_cases();
    return check_summary();
}
