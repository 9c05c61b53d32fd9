/* cmd_pdf.c — `fapiao pdf DOC.json -o OUT.pdf [--font PATH]` renders a
 * stored invoice document in this process, and the hidden `fapiao
 * render-worker`, the body of a render worker process of the server's
 * fp_pdf_pool (include/fapiao/pdf.h; it speaks a binary protocol on stdin
 * and stdout, so it is not listed in the help). */
#include "cli.h"
#include "fapiao/pdf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao pdf DOC.json -o OUT.pdf [--font PATH]\n"
    "  Render an invoice document (the JSON GET /v1/invoices/{number} returns) as\n"
    "  the 数电票 PDF.  OUT.pdf may be - for standard output.\n"
    "  把发票文档（GET /v1/invoices/{number} 返回的 JSON）渲染为数电票 PDF。\n"
    "  PATH: a TrueType font, default " FP_PDF_DEFAULT_FONT "\n";

/* The whole file, at most max bytes; NULL with a message printed. */
static char *read_doc(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_fail("无法打开文档", "cannot open the document", strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                buf = NULL;
                char d[64];
                snprintf(d, sizeof d, "%s > %zu bytes", path, max);
                cli_fail("文档过大", "document too large", d);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                cli_fail("无法读取文档", "cannot read the document", "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                cli_fail("无法读取文档", "cannot read the document", strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf && n > max) {
        cli_fail("文档过大", "document too large", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Writes data to path via a temporary file and rename, or to stdout for
 * "-".  0, or -1 with a message printed. */
static int write_out(const char *path, const char *data, size_t n)
{
    if (strcmp(path, "-") == 0) {
        if (fwrite(data, 1, n, stdout) != n || fflush(stdout) != 0) {
            cli_fail("无法写出 PDF", "cannot write the PDF", strerror(errno));
            return -1;
        }
        return 0;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        cli_fail("无法写出 PDF", "cannot write the PDF", "path too long");
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    int e = errno;
    if (f && fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        if (f)
            unlink(tmp);
        char d[4200];
        snprintf(d, sizeof d, "%s: %s", path, strerror(e));
        cli_fail("无法写出 PDF", "cannot write the PDF", d);
        return -1;
    }
    return 0;
}

int cmd_pdf(int argc, char **argv)
{
    const char *out_path = NULL, *font = NULL, *doc_path = NULL;
    const cli_flag flags[] = {{"-o", 0, &out_path, NULL},
                              {"--output", 0, &out_path, NULL},
                              {"--font", 0, &font, NULL},
                              {NULL}};
    /* the document is the one positional argument; flags may come around it */
    char *rest[64];
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] != 0) {
            if (nrest >= 62)
                break;
            rest[nrest++] = argv[i];
            int takes_value =
                (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0 || strcmp(a, "--font") == 0);
            if (takes_value && i + 1 < argc)
                rest[nrest++] = argv[++i];
        } else if (!doc_path) {
            doc_path = a;
        } else {
            cli_error("只能给一个文档", "give one document");
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (cli_parse(nrest, rest, flags, usage) < 0)
        return 2;
    if (cli_require(doc_path, "DOC.json", usage) < 0 || cli_require(out_path, "-o", usage) < 0)
        return 2;

    size_t len = 0;
    char *doc = read_doc(doc_path, FP_PDF_MAX_DOC, &len);
    if (!doc)
        return 1;
    fp_err err = {0};
    fp_pdf_renderer *r = NULL;
    if (fp_pdf_renderer_new(font, &r, &err) < 0) {
        cli_fail("无法加载字体", "cannot load the font", err.msg);
        free(doc);
        return 1;
    }
    fp_buf pdf;
    fp_buf_init(&pdf, FP_PDF_MAX_PDF);
    int pages = 0;
    int rc = fp_pdf_render(r, doc, len, &pdf, &pages, &err);
    fp_pdf_renderer_free(r);
    free(doc);
    if (rc < 0) {
        cli_fail("无法生成 PDF", "cannot render the PDF", err.msg);
        fp_buf_free(&pdf);
        return 1;
    }
    rc = write_out(out_path, pdf.p, pdf.len);
    if (rc == 0 && strcmp(out_path, "-") != 0) {
        if (cli_zh())
            printf("已写出 %s：%d 页，%zu 字节\n", out_path, pages, pdf.len);
        else
            printf("wrote %s: %d page%s, %zu bytes\n", out_path, pages, pages == 1 ? "" : "s",
                   pdf.len);
    }
    fp_buf_free(&pdf);
    return rc == 0 ? 0 : 1;
}

static const char worker_usage[] =
    "usage: fapiao render-worker [--font PATH] [--mem-limit BYTES] [--timeout-ms MS]\n"
    "                            [--foreground]\n"
    "  A render worker of the server's PDF pool: framed requests on stdin,\n"
    "  replies on stdout (include/fapiao/pdf.h).  Not for interactive use.\n";

int cmd_render_worker(int argc, char **argv)
{
    const char *font = NULL, *mem = NULL, *timeout = NULL;
    int foreground = 0;
    const cli_flag flags[] = {{"--font", 0, &font, NULL},
                              {"--mem-limit", 0, &mem, NULL},
                              {"--timeout-ms", 0, &timeout, NULL},
                              {"--foreground", 1, NULL, &foreground},
                              {NULL}};
    if (cli_parse(argc, argv, flags, worker_usage) < 0)
        return 2;
    long long limit = 0, ms = 0;
    if (cli_count(mem, "--mem-limit", LLONG_MAX, &limit, worker_usage) < 0 ||
        cli_count(timeout, "--timeout-ms", 86400000, &ms, worker_usage) < 0)
        return 2;
    fp_err err = {0};
    if (fp_pdf_worker_limits((size_t)limit, (int)ms, foreground, &err) < 0) {
        cli_fail("无法限制内存", "cannot limit memory", err.msg);
        return 1;
    }
    return fp_pdf_worker_main(font);
}
