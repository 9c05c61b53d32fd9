/* xml_handler.c — GET /v1/invoices/{number}/xml.
 *
 * Reads the invoice document of the caller's seller (like GET
 * /v1/invoices/{number}) and converts it on every request: the XML is a pure
 * function of the stored document, so nothing else needs storing and the
 * bytes are the same on every download. */
#include "xml_handler.h"
#include "fapiao/store.h"
#include "fapiao/xml.h"

#include <stdio.h>
#include <stdlib.h>

/* Largest XML we answer: 5,000 lines of about 1 KiB each fit easily. */
#define XML_MAX_BYTES (32u << 20)

enum MHD_Result fp_h_get_invoice_xml(fp_req *r)
{
    char *doc = NULL;
    size_t len = 0;
    enum MHD_Result res;
    if (fp_load_invoice(r, r->param, &doc, &len, &res))
        return res;

    fp_buf b;
    fp_err err = {0};
    fp_buf_init(&b, XML_MAX_BYTES);
    int rc = fp_xml_from_doc(doc, len, &b, &err);
    free(doc);
    if (rc < 0) {
        /* the stored document is ours: a refusal here is a server fault */
        fp_buf_free(&b);
        char en[320];
        snprintf(en, sizeof en, "The invoice could not be rendered as XML: %s", err.msg);
        return fp_problem(r, FPC_INTERNAL, "发票无法转换为 XML", en, NULL);
    }
    size_t n = 0;
    char *body = fp_buf_take(&b, &n);
    if (!body)
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    return fp_respond(r, 200, "application/xml; charset=utf-8", body, n, NULL);
}
