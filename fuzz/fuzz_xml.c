/* fuzz_xml.c — fp_xml_from_doc on arbitrary bytes.
 *
 * Invariants, each an abort() when broken:
 *  - a refusal is FP_EINVAL (or FP_ERANGE / FP_ENOMEM) with a message, and
 *    leaves the output buffer as it was;
 *  - an accepted document gives XML that libxml2 parses again, with root
 *    <EInvoice>, and the same bytes a second time (determinism).
 * Leaks show up under ASan (the replay ctest and the libFuzzer build). */
#include "fapiao/xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data;
    fp_buf out;
    fp_err err = {0};
    fp_buf_init(&out, 0);
    int rc = fp_xml_from_doc(doc, size, &out, &err);
    if (rc < 0) {
        if (rc != FP_EINVAL && rc != FP_ERANGE && rc != FP_ENOMEM)
            abort();
        if (err.code != rc || !err.msg[0] || !memchr(err.msg, 0, sizeof err.msg))
            abort();
        if (out.len != 0 || out.p != NULL)
            abort();
        return 0;
    }
    if (rc != 0 || !out.p || strlen(out.p) != out.len)
        abort();
    xmlDocPtr d = xmlReadMemory(out.p, (int)out.len, "fuzz.xml", NULL, XML_PARSE_NONET);
    if (!d) {
        fprintf(stderr, "output does not parse:\n%s\n", out.p);
        abort();
    }
    xmlNodePtr root = xmlDocGetRootElement(d);
    if (!root || xmlStrcmp(root->name, BAD_CAST "EInvoice") != 0)
        abort();
    xmlFreeDoc(d);

    fp_buf again;
    fp_buf_init(&again, 0);
    if (fp_xml_from_doc(doc, size, &again, &err) != 0 || again.len != out.len ||
        memcmp(again.p, out.p, out.len) != 0)
        abort();
    fp_buf_free(&again);
    fp_buf_free(&out);
    return 0;
}
