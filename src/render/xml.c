/* xml.c — the stored invoice document (JSON) as 数电票 XML, written with
 * libxml2's xmlTextWriter.  The layout and the choices docs/domain.md leaves open
 * are described in include/fapiao/xml.h.
 *
 * The document is read strictly by the one reader, invoice_doc.c (a stored
 * document with anything unexpected is corruption, and a download must
 * never silently drop a field).  Every value is also checked against XML
 * 1.0's character set before it is written: JSON can carry \u0001 or
 * U+FFFF, which no XML parser accepts, and the writer would pass them
 * through. */
#include "fapiao/xml.h"

#include <libxml/parser.h>
#include <libxml/xmlwriter.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/invoice_doc.h"

/* ---- the document's fields and their elements ---- */

/* InIssuType: the XML's code and words for blue (0) and red (1). */
static const struct {
    const char *code, *name;
} colors[2] = {{"Y", "蓝字发票"}, {"N", "红字发票"}};

#define PARTY(f) offsetof(fp_doc_party, f)
static const struct {
    const char *key, *seller_el, *buyer_el;
    size_t off;
} party_cols[] = {
    {"tax_id", "SellerIdNum", "BuyerIdNum", PARTY(tax_id)},
    {"name", "SellerName", "BuyerName", PARTY(name)},
    {"address", "SellerAddr", "BuyerAddr", PARTY(address)},
    {"phone", "SellerTelNum", "BuyerTelNum", PARTY(phone)},
    {"bank", "SellerBankName", "BuyerBankName", PARTY(bank)},
    {"account", "SellerBankAccNum", "BuyerBankAccNum", PARTY(account)},
};

typedef struct col {
    const char *key; /* in the JSON object, for messages */
    const char *el;  /* XML element */
    size_t off;      /* of the const char * in the read document */
} col;

#define DOC(f) offsetof(fp_invoice_doc, f)
static const col basic_cols[] = {
    {"total_amount", "TotalAmWithoutTax", DOC(total_amount)},
    {"total_tax", "TotalTaxAm", DOC(total_tax)},
    {"total_with_tax", "TotalTax-includedAmount", DOC(total_with_tax)},
    {"total_with_tax_words", "TotalTax-includedAmountInChinese", DOC(total_with_tax_words)},
    {"drawer", "Drawer", DOC(drawer)},
};

/* TaxRate and ComTaxAm show shown_rate / shown_tax where the line has them. */
#define ITEM(f) offsetof(fp_doc_item, f)
static const col item_cols[] = {
    {"name", "ItemName", ITEM(name)},
    {"spec", "SpecMod", ITEM(spec)},
    {"unit", "MeaUnits", ITEM(unit)},
    {"quantity", "Quantity", ITEM(quantity)},
    {"unit_price", "UnPrice", ITEM(unit_price)},
    {"amount", "Amount", ITEM(amount)},
    {"tax_rate", "TaxRate", ITEM(tax_rate)},
    {"tax", "ComTaxAm", ITEM(tax)},
    {"amount_with_tax", "TotaltaxIncludedAmount", ITEM(amount_with_tax)},
    {"tax_code", "TaxClassificationCode", ITEM(tax_code)},
};

static const char *member(const void *base, size_t off)
{
    return *(const char *const *)((const char *)base + off);
}

/* ---- the conversion context ---- */

typedef struct xctx {
    fp_first_err f; /* err.h: the first failure, and where */
    xmlTextWriterPtr w;
} xctx;

static void writer_rc(xctx *x, int rc)
{
    if (rc < 0)
        fp_first_fail(&x->f, FP_ENOMEM, "libxml2 writer failed");
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
    if (!x->f.rc)
        writer_rc(x, xmlTextWriterStartElement(x->w, BAD_CAST name));
}

static void close_el(xctx *x)
{
    if (!x->f.rc)
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
        fp_first_fail(&x->f, FP_ENOMEM, "out of memory");
    else
        writer_rc(x, xmlTextWriterWriteRaw(x->w, BAD_CAST t));
    free(t);
}

/* <name>value</name>, or <name/> when value is NULL or empty. */
static void leaf(xctx *x, const char *name, const char *value)
{
    open_el(x, name);
    if (!x->f.rc && value && *value)
        text(x, value);
    close_el(x);
}

/* leaf() for a value from the document, which may hold a character XML
 * cannot carry (JSON can: \u0001, U+FFFF): refused, naming key. */
static void doc_leaf(xctx *x, const char *name, const char *key, const char *value)
{
    if (!x->f.rc && value && !xml_text_ok(value))
        fp_first_fail(&x->f, FP_EINVAL, "invoice document: %s%s%s has a character XML cannot carry",
                      x->f.where, x->f.where[0] ? "." : "", key);
    leaf(x, name, value);
}

static void label(xctx *x, const char *name, const char *code, const char *text)
{
    open_el(x, name);
    leaf(x, "LabelCode", code);
    leaf(x, "LabelName", text);
    close_el(x);
}

static void header(xctx *x, const fp_invoice_doc *d)
{
    char tag[9];
    snprintf(tag, sizeof tag, "SWEI%.2s00", d->number + 2);
    open_el(x, "Header");
    leaf(x, "EIid", d->number);
    leaf(x, "EInvoiceTag", tag);
    open_el(x, "InherentLabel");
    label(x, "InIssuType", colors[d->red].code, colors[d->red].name);
    label(x, "EInvoiceType", d->type->code, d->type->name);
    close_el(x);
    close_el(x);
}

static void party(xctx *x, const fp_doc_party *p, const char *key, int seller)
{
    snprintf(x->f.where, sizeof x->f.where, "%s", key);
    open_el(x, seller ? "SellerInformation" : "BuyerInformation");
    for (size_t i = 0; i < sizeof party_cols / sizeof party_cols[0]; i++)
        doc_leaf(x, seller ? party_cols[i].seller_el : party_cols[i].buyer_el, party_cols[i].key,
                 member(p, party_cols[i].off));
    close_el(x);
    x->f.where[0] = 0;
}

/* rt: RequestTime, already derived from issued_at */
static void basic(xctx *x, const fp_invoice_doc *d, const char *rt)
{
    open_el(x, "BasicInformation");
    for (size_t i = 0; i < sizeof basic_cols / sizeof basic_cols[0]; i++)
        doc_leaf(x, basic_cols[i].el, basic_cols[i].key, member(d, basic_cols[i].off));
    leaf(x, "RequestTime", rt);
    close_el(x);
}

static void items(xctx *x, const fp_invoice_doc *d)
{
    for (int n = 0; n < d->nitems && !x->f.rc; n++) {
        const fp_doc_item *it = &d->items[n];
        snprintf(x->f.where, sizeof x->f.where, "items[%d]", n);
        open_el(x, "IssuItemInformation");
        for (size_t c = 0; c < sizeof item_cols / sizeof item_cols[0]; c++) {
            const char *v = member(it, item_cols[c].off);
            if (it->shown_rate && item_cols[c].off == ITEM(tax_rate))
                v = it->shown_rate;
            else if (it->shown_rate && item_cols[c].off == ITEM(tax))
                v = it->shown_tax;
            doc_leaf(x, item_cols[c].el, item_cols[c].key, v);
        }
        close_el(x);
    }
    x->f.where[0] = 0;
}

static void red(xctx *x, const fp_invoice_doc *d)
{
    open_el(x, "SpecificInformation");
    open_el(x, "RedEInvoice");
    leaf(x, "OriginalInvoiceNumber", d->original_number);
    doc_leaf(x, "RedFormNumber", "red_form_id", d->red_form_id);
    leaf(x, "RedReason", d->red_reason_words);
    close_el(x);
    close_el(x);
}

/* TaxBureauCode: the seller's 主管税务机关代码 when the document has it
 * (`fapiao sellers --tax-bureau`), else the province's bureau from the
 * number's province digits. */
static void supervision(xctx *x, const char *number, const char *issued, const char *bureau_code)
{
    char date[11], bureau[12];
    memcpy(date, issued, 10); /* shape checked by request_time */
    date[10] = 0;
    if (bureau_code && *bureau_code)
        snprintf(bureau, sizeof bureau, "%.11s", bureau_code);
    else
        snprintf(bureau, sizeof bureau, "1%.2s00000000", number + 2);
    open_el(x, "TaxSupervisionInfo");
    leaf(x, "InvoiceNumber", number);
    leaf(x, "IssueTime", date);
    leaf(x, "TaxBureauCode", bureau);
    close_el(x);
}

static void convert(xctx *x, const fp_invoice_doc *d)
{
    char rt[20];
    if (request_time(d->issued_at, rt) < 0) {
        fp_first_fail(&x->f, FP_EINVAL, "invoice document: issued_at is not yyyy-MM-ddTHH:mm:ss…");
        return;
    }
    writer_rc(x, xmlTextWriterStartDocument(x->w, NULL, "UTF-8", NULL));
    open_el(x, "EInvoice");
    header(x, d);
    open_el(x, "EInvoiceData");
    party(x, &d->seller, "seller", 1);
    party(x, &d->buyer, "buyer", 0);
    basic(x, d, rt);
    items(x, d);
    if (d->red)
        red(x, d);
    open_el(x, "AdditionalInformation");
    doc_leaf(x, "Remark", "remark", d->remark);
    close_el(x);
    close_el(x); /* EInvoiceData */
    supervision(x, d->number, d->issued_at, d->seller.tax_bureau_code);
    close_el(x); /* EInvoice */
    if (!x->f.rc)
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
    fp_invoice_doc d;
    int rc = fp_invoice_doc_read(doc, len, &d, err);
    if (rc < 0)
        return rc;
    pthread_once(&xml_once, xml_init);

    xctx x = {.f = {.err = err}};
    xmlBufferPtr buf = xmlBufferCreate();
    if (!buf) {
        fp_invoice_doc_clear(&d);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    x.w = xmlNewTextWriterMemory(buf, 0);
    if (!x.w) {
        xmlBufferFree(buf);
        fp_invoice_doc_clear(&d);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    writer_rc(&x, xmlTextWriterSetIndent(x.w, 1));
    writer_rc(&x, xmlTextWriterSetIndentString(x.w, BAD_CAST "  "));
    convert(&x, &d);
    xmlFreeTextWriter(x.w); /* flushes into buf */
    fp_invoice_doc_clear(&d);

    if (!x.f.rc) {
        size_t n = (size_t)xmlBufferLength(buf);
        if (out->overflow || out->len + n > out->max) {
            fp_first_fail(&x.f, FP_ERANGE, "XML document (%zu bytes) exceeds the output limit", n);
        } else {
            fp_buf_append(out, xmlBufferContent(buf), n);
            if (out->overflow)
                fp_first_fail(&x.f, FP_ENOMEM, "out of memory");
        }
    }
    xmlBufferFree(buf);
    return x.f.rc;
}
