/* issue_path.c — the CPU of the issue path's own steps, in process, per call.
 *
 * What a POST /v1/invoices costs on an HTTP worker besides TLS, libmicrohttpd
 * and the syscalls (those are in the perf profile of bench/issue.sh, see
 * docs/performance.md): the token check, the parse and validation of the
 * body, the canonical re-print hashed for the idempotency check, and the
 * response document the writer stores.  Each step runs N times on one thread
 * and is timed with the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID), so
 * other work on the machine changes the figures little.
 *
 * Usage: bench_issue_path [--body FILE] [--taxcodes CSV] [--n N] [--only STEP]
 * (defaults: examples/invoice.json, data/taxcodes-sample.csv, 20000; --only
 * runs one step, for `perf stat -e instructions:u`, which a busy machine
 * does not change).
 * Output: one line per step, "step=<name> ns_per_call=<ns>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/invoice.h"
#include "fapiao/taxcode.h"

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(1 << 20);
    size_t n = p ? fread(p, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!p)
        return NULL;
    p[n] = 0;
    *len = n;
    return p;
}

static void report(const char *step, double t0, long n)
{
    printf("step=%-22s ns_per_call=%.0f\n", step, (cpu_ns() - t0) / (double)n);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *body_path = "examples/invoice.json", *codes_path = "data/taxcodes-sample.csv";
    long n = 20000;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--body"))
            body_path = argv[i + 1];
        else if (!strcmp(argv[i], "--taxcodes"))
            codes_path = argv[i + 1];
        else if (!strcmp(argv[i], "--n"))
            n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_issue_path [--body FILE] [--taxcodes CSV] [--n N]"
                            " [--only STEP]\n");
            return 2;
        }
    }
    if (n < 1)
        n = 1;
    size_t blen = 0;
    char *body = slurp(body_path, &blen);
    if (!body) {
        fprintf(stderr, "bench_issue_path: cannot read %s\n", body_path);
        return 1;
    }
    fp_taxcode_table *codes = NULL;
    fp_err err = {0};
    if (fp_taxcode_load(codes_path, &codes, &err) < 0) {
        fprintf(stderr, "bench_issue_path: cannot load %s\n", codes_path);
        return 1;
    }
    fp_seller seller;
    memset(&seller, 0, sizeof seller);
    seller.id = 1;
    snprintf(seller.name, sizeof seller.name, "深圳市某某信息技术有限公司");
    snprintf(seller.tax_id, sizeof seller.tax_id, "91440300MA5G0XXXXX");
    snprintf(seller.address, sizeof seller.address, "深圳市南山区科技园某某大厦18楼");
    snprintf(seller.bank, sizeof seller.bank, "招商银行深圳分行科技园支行");
    snprintf(seller.account, sizeof seller.account, "755912345678901");
    snprintf(seller.drawer, sizeof seller.drawer, "张三");
    fp_invoice_defaults def = {seller.drawer, seller.remark};

    unsigned char key[FP_TOKEN_KEY_LEN];
    memset(key, 7, sizeof key);
    fp_token_claims c = {.seller_id = 1, .expires = (int64_t)time(NULL) + 3600, .secret_id = 1};
    snprintf(c.client_id, sizeof c.client_id, "cli_0123456789abcdef");
    char token[FP_TOKEN_MAX];
    if (fp_token_issue(key, &c, token) < 0) {
        fprintf(stderr, "bench_issue_path: token issue failed\n");
        return 1;
    }

    printf("# bench_issue_path: %ld calls per step, body %s (%zu bytes)\n", n, body_path, blen);
    volatile int sink = 0;
#define RUN(step) (!only || !strcmp(only, step))
    long nt = RUN("token_verify") ? n : 0, np = RUN("parse_validate") ? n : 0,
         nc = RUN("canonical_sha256") ? n : 0, nr = RUN("render_document") ? n : 0;
    double t0 = cpu_ns();
    for (long i = 0; i < nt; i++) {
        fp_token_claims out;
        sink += fp_token_verify(key, token, (int64_t)time(NULL), &out);
    }
    if (nt)
        report("token_verify", t0, nt);

    fp_errors *es = malloc(sizeof *es);
    t0 = cpu_ns();
    for (long i = 0; i < np; i++) {
        fp_invoice inv;
        sink += fp_invoice_parse_with(body, blen, codes, &def, &inv, es);
        fp_invoice_clear(&inv);
    }
    if (np)
        report("parse_validate", t0, np);

    fp_invoice inv;
    if (fp_invoice_parse_with(body, blen, codes, &def, &inv, es) < 0) {
        fprintf(stderr, "bench_issue_path: the body does not validate\n");
        return 1;
    }
    t0 = cpu_ns();
    for (long i = 0; i < nc; i++) {
        char *canon = fp_invoice_canonical(&inv);
        unsigned char h[32];
        fp_sha256(canon, strlen(canon), h);
        sink += h[0];
        free(canon);
    }
    if (nc)
        report("canonical_sha256", t0, nc);

    t0 = cpu_ns();
    for (long i = 0; i < nr; i++) {
        fp_doc d = {0};
        sink +=
            fp_invoice_render(&inv, &seller, "bench-key-0000001", "2026-12-07T10:00:00+08:00", &d);
        free(d.json);
    }
    if (nr)
        report("render_document", t0, nr);
    fp_invoice_clear(&inv);
    free(es);
    fp_taxcode_free(codes);
    free(body);
    return sink == 42 ? 1 : 0;
}
