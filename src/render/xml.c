/* xml.c — the stored invoice document (JSON) as 数电票 XML, written with
 * libxml2's xmlTextWriter.  The layout and the choices docs/domain.md leaves open
 * are described in include/fapiao/xml.h.
 *
 * Why it reads the document strictly: the document comes from our own store,
 * so anything unexpected means corruption or a format change we have not
 * followed, and a download must never silently drop a field.  Every value
 * is also checked against XML 1.0's character set before it is written:
 * JSON can carry \u0001 or U+FFFF, which no XML parser accepts, and the
 * writer would pass them through. */
#include "fapiao/xml.h"

#include <libxml/parser.h>
#include <libxml/xmlwriter.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_MAX_DEPTH 16

/* ---- lookup tables (wire value -> XML value) ---- */

static const struct {
    const char *color, *code, *name;
} colors[] = {
    {"blue", "Y", "蓝字发票"},
    {"red", "N", "红字发票"},
};

static const struct {
    const char *type, *name;
} kinds[] = {
    {"01", "增值税专用发票"},
    {"02", "普通发票"},
};

static const struct {
    const char *reason, *name;
} reasons[] = {
    {"issue_error", "开票有误"},
    {"sales_return", "销货退回"},
    {"service_stop", "服务中止"},
    {"allowance", "销售折让"},
};

/* Lines whose policy changes what the rate and tax cells show. */
static const struct {
    const char *policy, *rate, *tax;
} displays[] = {
    {"exempt", "免税", "***"},
    {"non_taxable", "不征税", ""},
};

typedef struct col {
    const char *key; /* in the JSON object */
    const char *el;  /* XML element */
    int required;
} col;

static const struct {
    const char *key, *seller_el, *buyer_el;
    int seller_required, buyer_required;
} party_cols[] = {
    {"tax_id", "SellerIdNum", "BuyerIdNum", 1, 0},
    {"name", "SellerName", "BuyerName", 1, 1},
    {"address", "SellerAddr", "BuyerAddr", 0, 0},
    {"phone", "SellerTelNum", "BuyerTelNum", 0, 0},
    {"bank", "SellerBankName", "BuyerBankName", 0, 0},
    {"account", "SellerBankAccNum", "BuyerBankAccNum", 0, 0},
};

static const col basic_cols[] = {
    {"total_amount", "TotalAmWithoutTax", 1},
    {"total_tax", "TotalTaxAm", 1},
    {"total_with_tax", "TotalTax-includedAmount", 1},
    {"total_with_tax_words", "TotalTax-includedAmountInChinese", 1},
    {"drawer", "Drawer", 1},
};

/* TaxRate and ComTaxAm are subject to displays[]. */
static const col item_cols[] = {
    {"name", "ItemName", 1},
    {"spec", "SpecMod", 0},
    {"unit", "MeaUnits", 0},
    {"quantity", "Quantity", 0},
    {"unit_price", "UnPrice", 0},
    {"amount", "Amount", 1},
    {"tax_rate", "TaxRate", 1},
    {"tax", "ComTaxAm", 1},
    {"amount_with_tax", "TotaltaxIncludedAmount", 1},
    {"tax_code", "TaxClassificationCode", 1},
};

/* ---- the conversion context ---- */

typedef struct xctx {
    xmlTextWriterPtr w;
    fp_err *err;
    int rc;         /* first failure, 0 while all is well */
    char where[40]; /* object being read, for messages: "seller", "items[2]" */
} xctx;

__attribute__((format(printf, 3, 4))) static void fail(xctx *x, int code, const char *fmt, ...)
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

static void writer_rc(xctx *x, int rc)
{
    if (rc < 0)
        fail(x, FP_ENOMEM, "libxml2 writer failed");
}

/* 1 if s is UTF-8 made only of XML 1.0 Chars (no C0 controls but tab, LF,
 * CR; no surrogates, U+FFFE or U+FFFF). */
static int xml_text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp;
        int n;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return 0;
            p++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F;
            n = 1;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F;
            n = 2;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07;
            n = 3;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) { /* stops at the NUL: 0 is no continuation */
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        static const unsigned min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
            cp == 0xFFFF)
            return 0;
        p += n + 1;
    }
    return 1;
}

/* The string member key of obj: NULL when absent (a failure if required),
 * a failure when it is not a string or holds a character XML forbids. */
static const char *field(xctx *x, const cJSON *obj, const char *key, int required)
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
    if (!xml_text_ok(v->valuestring)) {
        fail(x, FP_EINVAL, "invoice document: %s%s%s has a character XML cannot carry", x->where,
             dot, key);
        return NULL;
    }
    return v->valuestring;
}

static const cJSON *object(xctx *x, const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsObject(v)) {
        fail(x, FP_EINVAL, "invoice document: %s is missing or not an object", key);
        return NULL;
    }
    return v;
}

static int is_number20(const char *s)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    return i == 20 && s[i] == 0;
}

/* "2026-11-25T10:11:12+08:00" (China Standard Time, as fp_h_issue writes
 * it) -> "2026-11-25 10:11:12".  The wall clock is taken as written. */
static int request_time(const char *iso, char out[20])
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (int i = 0; i < 19; i++) {
        char c = iso[i];
        if (shape[i] == 'd' ? !(c >= '0' && c <= '9') : c != shape[i])
            return -1; /* also stops at a short string's NUL */
    }
    memcpy(out, iso, 19);
    out[10] = ' ';
    out[19] = 0;
    return 0;
}

/* ---- writing ---- */

static void open_el(xctx *x, const char *name)
{
    if (!x->rc)
        writer_rc(x, xmlTextWriterStartElement(x->w, BAD_CAST name));
}

static void close_el(xctx *x)
{
    if (!x->rc)
        writer_rc(x, xmlTextWriterEndElement(x->w));
}

/* Text content escaped by us, not by xmlTextWriterWriteString: libxml2 2.9
 * drops the text silently (and reports success) when its escaping buffer
 * cannot be allocated, and its choice of escapes differs between versions.
 * & < > must be escaped; CR is written as &#13; so that a parser's
 * end-of-line normalisation does not turn it into LF. */
static void text(xctx *x, const char *s)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    for (const char *run = s;; s++) {
        static const char *const esc[] = {
            ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['\r'] = "&#13;"};
        unsigned char c = (unsigned char)*s;
        const char *e = c < sizeof esc / sizeof esc[0] ? esc[c] : NULL;
        if (c == 0 || e) {
            fp_buf_append(&b, run, (size_t)(s - run));
            if (c == 0)
                break;
            fp_buf_puts(&b, e);
            run = s + 1;
        }
    }
    char *t = fp_buf_take(&b, NULL);
    if (!t)
        fail(x, FP_ENOMEM, "out of memory");
    else
        writer_rc(x, xmlTextWriterWriteRaw(x->w, BAD_CAST t));
    free(t);
}

/* <name>value</name>, or <name/> when value is NULL or empty. */
static void leaf(xctx *x, const char *name, const char *value)
{
    open_el(x, name);
    if (!x->rc && value && *value)
        text(x, value);
    close_el(x);
}

static void label(xctx *x, const char *name, const char *code, const char *text)
{
    open_el(x, name);
    leaf(x, "LabelCode", code);
    leaf(x, "LabelName", text);
    close_el(x);
}

static void header(xctx *x, const cJSON *doc, const char *number)
{
    const char *color = field(x, doc, "color", 1);
    const char *type = field(x, doc, "invoice_type", 1);
    if (x->rc)
        return;
    size_t ci = 0, ki = 0;
    while (ci < sizeof colors / sizeof colors[0] && strcmp(colors[ci].color, color))
        ci++;
    while (ki < sizeof kinds / sizeof kinds[0] && strcmp(kinds[ki].type, type))
        ki++;
    if (ci == sizeof colors / sizeof colors[0]) {
        fail(x, FP_EINVAL, "invoice document: color must be blue or red");
        return;
    }
    if (ki == sizeof kinds / sizeof kinds[0]) {
        fail(x, FP_EINVAL, "invoice document: invoice_type must be 01 or 02");
        return;
    }
    char tag[9];
    snprintf(tag, sizeof tag, "SWEI%.2s00", number + 2);
    open_el(x, "Header");
    leaf(x, "EIid", number);
    leaf(x, "EInvoiceTag", tag);
    open_el(x, "InherentLabel");
    label(x, "InIssuType", colors[ci].code, colors[ci].name);
    label(x, "EInvoiceType", kinds[ki].type, kinds[ki].name);
    close_el(x);
    close_el(x);
}

static void party(xctx *x, const cJSON *doc, const char *key, int seller)
{
    const cJSON *p = object(x, doc, key);
    snprintf(x->where, sizeof x->where, "%s", key);
    open_el(x, seller ? "SellerInformation" : "BuyerInformation");
    for (size_t i = 0; p && i < sizeof party_cols / sizeof party_cols[0]; i++) {
        int req = seller ? party_cols[i].seller_required : party_cols[i].buyer_required;
        leaf(x, seller ? party_cols[i].seller_el : party_cols[i].buyer_el,
             field(x, p, party_cols[i].key, req));
    }
    close_el(x);
    x->where[0] = 0;
}

/* rt: RequestTime, already derived from issued_at */
static void basic(xctx *x, const cJSON *doc, const char *rt)
{
    open_el(x, "BasicInformation");
    for (size_t i = 0; i < sizeof basic_cols / sizeof basic_cols[0]; i++)
        leaf(x, basic_cols[i].el, field(x, doc, basic_cols[i].key, basic_cols[i].required));
    leaf(x, "RequestTime", rt);
    close_el(x);
}

static void items(xctx *x, const cJSON *doc)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (!cJSON_IsArray(arr) || !arr->child) {
        fail(x, FP_EINVAL, "invoice document: items is missing, empty or not an array");
        return;
    }
    int n = 0;
    for (const cJSON *it = arr->child; it && !x->rc; it = it->next) {
        snprintf(x->where, sizeof x->where, "items[%d]", n++);
        if (!cJSON_IsObject(it)) {
            fail(x, FP_EINVAL, "invoice document: %s is not an object", x->where);
            return;
        }
        const char *policy = field(x, it, "policy", 0);
        size_t di = 0;
        while (policy && di < sizeof displays / sizeof displays[0] &&
               strcmp(displays[di].policy, policy))
            di++;
        int shown = policy && di < sizeof displays / sizeof displays[0];
        open_el(x, "IssuItemInformation");
        for (size_t c = 0; c < sizeof item_cols / sizeof item_cols[0]; c++) {
            const char *v = field(x, it, item_cols[c].key, item_cols[c].required);
            if (shown && strcmp(item_cols[c].key, "tax_rate") == 0)
                v = displays[di].rate;
            else if (shown && strcmp(item_cols[c].key, "tax") == 0)
                v = displays[di].tax;
            leaf(x, item_cols[c].el, v);
        }
        close_el(x);
    }
    x->where[0] = 0;
}

static void red(xctx *x, const cJSON *doc)
{
    const char *orig = field(x, doc, "original_number", 1);
    const char *form = field(x, doc, "red_form_id", 1);
    const char *reason = field(x, doc, "red_reason", 1);
    if (x->rc)
        return;
    if (!is_number20(orig)) {
        fail(x, FP_EINVAL, "invoice document: original_number is not 20 digits");
        return;
    }
    size_t ri = 0;
    while (ri < sizeof reasons / sizeof reasons[0] && strcmp(reasons[ri].reason, reason))
        ri++;
    if (ri == sizeof reasons / sizeof reasons[0]) {
        fail(x, FP_EINVAL, "invoice document: unknown red_reason");
        return;
    }
    open_el(x, "SpecificInformation");
    open_el(x, "RedEInvoice");
    leaf(x, "OriginalInvoiceNumber", orig);
    leaf(x, "RedFormNumber", form);
    leaf(x, "RedReason", reasons[ri].name);
    close_el(x);
    close_el(x);
}

static void supervision(xctx *x, const char *number, const char *issued)
{
    char date[11], bureau[12];
    memcpy(date, issued, 10); /* shape checked by request_time */
    date[10] = 0;
    snprintf(bureau, sizeof bureau, "1%.2s00000000", number + 2);
    open_el(x, "TaxSupervisionInfo");
    leaf(x, "InvoiceNumber", number);
    leaf(x, "IssueTime", date);
    leaf(x, "TaxBureauCode", bureau);
    close_el(x);
}

static void convert(xctx *x, const cJSON *doc)
{
    if (!cJSON_IsObject(doc)) {
        fail(x, FP_EINVAL, "invoice document is not a JSON object");
        return;
    }
    const char *number = field(x, doc, "number", 1);
    const char *issued = field(x, doc, "issued_at", 1);
    if (x->rc)
        return;
    if (!is_number20(number)) {
        fail(x, FP_EINVAL, "invoice document: number is not 20 digits");
        return;
    }
    char rt[20];
    if (request_time(issued, rt) < 0) {
        fail(x, FP_EINVAL, "invoice document: issued_at is not yyyy-MM-ddTHH:mm:ss…");
        return;
    }
    const cJSON *color = cJSON_GetObjectItemCaseSensitive(doc, "color");
    int is_red = cJSON_IsString(color) && strcmp(color->valuestring, "red") == 0;

    writer_rc(x, xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL));
    open_el(x, "EInvoice");
    header(x, doc, number);
    open_el(x, "EInvoiceData");
    party(x, doc, "seller", 1);
    party(x, doc, "buyer", 0);
    basic(x, doc, rt);
    items(x, doc);
    if (is_red)
        red(x, doc);
    open_el(x, "AdditionalInformation");
    leaf(x, "Remark", field(x, doc, "remark", 0));
    close_el(x);
    close_el(x); /* EInvoiceData */
    supervision(x, number, issued);
    close_el(x); /* EInvoice */
    if (!x->rc)
        writer_rc(x, xmlTextWriterEndDocument(x->w));
}

/* libxml2 2.9 initialises its encoding tables lazily and not thread-safely;
 * requests run on several threads, so initialise once up front. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

int fp_xml_from_doc(const char *doc, size_t len, fp_buf *out, fp_err *err)
{
    fp_code code = FPC_NONE;
    char detail[128];
    cJSON *root =
        fp_json_parse(doc ? doc : "", doc ? len : 0, XML_MAX_DEPTH, &code, detail, sizeof detail);
    if (!root)
        return fp_fail(err, FP_EINVAL, "invoice document is not valid JSON (%s)", detail);
    pthread_once(&xml_once, xml_init);

    xctx x = {.err = err};
    xmlBufferPtr buf = xmlBufferCreate();
    if (!buf) {
        cJSON_Delete(root);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    x.w = xmlNewTextWriterMemory(buf, 0);
    if (!x.w) {
        xmlBufferFree(buf);
        cJSON_Delete(root);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    writer_rc(&x, xmlTextWriterSetIndent(x.w, 1));
    writer_rc(&x, xmlTextWriterSetIndentString(x.w, BAD_CAST "  "));
    convert(&x, root);
    xmlFreeTextWriter(x.w); /* flushes into buf */
    cJSON_Delete(root);

    if (!x.rc) {
        size_t n = (size_t)xmlBufferLength(buf);
        if (out->overflow || out->len + n > out->max) {
            fail(&x, FP_ERANGE, "XML document (%zu bytes) exceeds the output limit", n);
        } else {
            fp_buf_append(out, xmlBufferContent(buf), n);
            if (out->overflow)
                fail(&x, FP_ENOMEM, "out of memory");
        }
    }
    xmlBufferFree(buf);
    return x.rc;
}
