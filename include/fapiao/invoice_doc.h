/* invoice_doc.h — the one reader of the stored invoice document: the JSON
 * fp_invoice_render wrote (number patched in) and the store keeps, read
 * back for the PDF (src/render/pdf.c), the XML (src/render/xml.c) and red
 * forms (src/core/red.c).
 *
 * Why it reads strictly: the document comes from our own store, so anything
 * unexpected is corruption or a format change we have not followed, and a
 * rendering must never silently drop a field.  Every member the document
 * format has is type-checked (a string, or absent / null where optional);
 * the fields every stored document carries are required.  The first
 * failure is reported, naming the field ("invoice document lacks
 * buyer.name", "invoice document: items[0].tax is not a string").
 *
 * The document's vocabulary is here too, once: invoice types (01 专票, 02
 * 普票, with the titles and QR kinds of the 数电票), colours, and the cells
 * an exempt or non-taxable line shows instead of its rate and tax
 * (docs/domain.md §10).  Amounts stay the document's decimal strings:
 * copied, never converted. */
#ifndef FAPIAO_INVOICE_DOC_H
#define FAPIAO_INVOICE_DOC_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "fapiao/err.h"
#include "fapiao/invoice.h"

/* Nesting depth a stored document may have. */
#define FP_DOC_MAX_DEPTH 16

typedef struct fp_doc_type {
    const char *code;  /* "01", "02" */
    const char *name;  /* 增值税专用发票, 普通发票 */
    const char *title; /* 电子发票（增值税专用发票）, 电子发票（普通发票） */
    const char *qr;    /* the kind field of the QR code: 31, 32 */
} fp_doc_type;

typedef struct fp_doc_party {
    const char *name, *tax_id, *address, *phone, *bank, *account, *email; /* NULL: absent */
    const char *tax_bureau_code; /* seller only: 主管税务机关代码 (NULL: absent) */
    int natural_person;
} fp_doc_party;

typedef struct fp_doc_item {
    fp_line_kind kind; /* line_kind; normal when absent */
    const char *name, *tax_code, *spec, *unit, *quantity, *amount, *tax_rate, *tax,
        *amount_with_tax, *policy;
    /* the net unit price, also on tax-inclusive lines (docs/domain.md §3);
     * the caller's gross price beside it is shown nowhere */
    const char *unit_price, *unit_price_with_tax;
    /* What the rate and tax cells show instead of tax_rate and tax on an
     * exempt (免税, ***) or non-taxable (不征税, empty) line; NULL else. */
    const char *shown_rate, *shown_tax;
} fp_doc_item;

typedef struct fp_invoice_doc {
    cJSON *root;           /* owns every string below */
    const char *number;    /* 20 digits */
    const char *issued_at; /* starts yyyy-MM-dd (the API writes yyyy-MM-ddTHH:mm:ss+08:00) */
    const char *color;     /* "blue" or "red" */
    int red;
    const fp_doc_type *type;
    fp_doc_party seller, buyer; /* seller: name and tax_id required; buyer: name */
    fp_doc_item *items;         /* at least one */
    int nitems;
    const char *total_amount, *total_tax, *total_with_tax, *total_with_tax_words, *drawer;
    const char *remark; /* optional */
    /* red invoices only (NULL on blue): the blue number (20 digits), the red
     * form's number, the reason (a fp_red_reason name) and its words
     * (开票有误, 销货退回, 服务中止, 销售折让) */
    const char *original_number, *red_form_id, *red_reason, *red_reason_words;
} fp_invoice_doc;

/* Parses doc[0..len) (strict JSON, fp_json_parse) and reads it into d.
 * 0, FP_EINVAL when it is not JSON or not a document as above (err names
 * the field), FP_ENOMEM.  d is cleared on failure; else free it with
 * fp_invoice_doc_clear. */
int fp_invoice_doc_read(const char *doc, size_t len, fp_invoice_doc *d, fp_err *err);
void fp_invoice_doc_clear(fp_invoice_doc *d);

#endif
