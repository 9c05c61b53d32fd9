/* fuzz_pdf.c — fp_pdf_render on arbitrary bytes (the invoice document).
 *
 * Invariants, each an abort() when broken:
 *  - a refusal is FP_EINVAL (or FP_ERANGE / FP_ENOMEM) with a message, and
 *    leaves the output buffer as it was;
 *  - an accepted document gives a PDF (%PDF- … %%EOF, startxref pointing at
 *    the xref table) whose every FlateDecode stream inflates completely with
 *    a correct Adler-32 — the document's font program is concatenated from
 *    pieces kept across documents (src/render/pdf_font.c), so this checks
 *    the concatenation for whatever glyphs the input brings — and the same
 *    bytes a second time (determinism, whatever was rendered in between).
 * One renderer serves every input, as a warm render worker does.  Leaks
 * show up under ASan (the replay ctest and the libFuzzer build). */
#include "fapiao/pdf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fp_pdf_renderer *R;

/* Inflates every "/Length N /Filter /FlateDecode … stream" of the PDF;
 * 0 when all decode to their end. */
static int streams_inflate(const char *p, size_t n)
{
    static const char key[] = "<< /Length ";
    unsigned char sink[65536];
    for (const char *at = p; (at = memmem(at, n - (size_t)(at - p), key, sizeof key - 1));) {
        at += sizeof key - 1;
        char *end = NULL;
        unsigned long len = strtoul(at, &end, 10);
        const char *s = memmem(end, n - (size_t)(end - p), ">>\nstream\n", 10);
        if (!s || (size_t)(s - end) > 200)
            return -1;
        if (!memmem(end, (size_t)(s - end), "/FlateDecode", 12))
            continue;
        s += 10;
        if (len > n - (size_t)(s - p))
            return -1;
        z_stream z = {0};
        if (inflateInit(&z) != Z_OK)
            return -1;
        z.next_in = (unsigned char *)s;
        z.avail_in = (uInt)len;
        int rc;
        do {
            z.next_out = sink;
            z.avail_out = sizeof sink;
            rc = inflate(&z, Z_NO_FLUSH);
        } while (rc == Z_OK);
        inflateEnd(&z);
        if (rc != Z_STREAM_END || z.avail_in != 0)
            return -1;
        at = s + len;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fp_err err = {0};
    if (!R && fp_pdf_renderer_new(NULL, &R, &err) < 0) {
        fprintf(stderr, "cannot load the default font: %s\n", err.msg);
        abort();
    }
    const char *doc = (const char *)data;
    fp_buf out;
    fp_buf_init(&out, FP_PDF_MAX_PDF);
    int pages = 0;
    int rc = fp_pdf_render(R, doc, size, &out, &pages, &err);
    if (rc < 0) {
        if (rc != FP_EINVAL && rc != FP_ERANGE && rc != FP_ENOMEM)
            abort();
        if (err.code != rc || !err.msg[0] || !memchr(err.msg, 0, sizeof err.msg))
            abort();
        if (out.len != 0 || out.p != NULL)
            abort();
        return 0;
    }
    if (rc != 0 || pages < 1 || out.len < 64 || memcmp(out.p, "%PDF-", 5) != 0 ||
        memcmp(out.p + out.len - 6, "%%EOF\n", 6) != 0)
        abort();
    const char *sx = memmem(out.p, out.len, "startxref\n", 10);
    if (!sx || strtoul(sx + 10, NULL, 10) >= out.len ||
        memcmp(out.p + strtoul(sx + 10, NULL, 10), "xref\n", 5) != 0)
        abort();
    if (streams_inflate(out.p, out.len) != 0) {
        fprintf(stderr, "a stream does not inflate\n");
        abort();
    }
    fp_buf again;
    fp_buf_init(&again, FP_PDF_MAX_PDF);
    if (fp_pdf_render(R, doc, size, &again, NULL, &err) != 0 || again.len != out.len ||
        memcmp(again.p, out.p, out.len) != 0)
        abort();
    fp_buf_free(&again);
    fp_buf_free(&out);
    return 0;
}
