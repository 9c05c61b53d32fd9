/* audit_verify.c — fills a data directory with N chained audit records for
 * the verification benchmark (bench/audit_verify.sh times `fapiao audit
 * verify` on it).
 *
 * The records go through the store's own append API (fp_store_audit_batch),
 * BATCH records per transaction, with the default checkpoint every 1000
 * records, so the log is exactly what a server writes: consecutive ids,
 * hash-linked, signed checkpoints.  Field sizes are those of an issued
 * invoice's record (client id, action, 20-digit number, request id, IP).
 *
 * Usage: bench_audit_verify DIR [N (default 1000000)] [BATCH (default 10000)]
 * DIR must not exist yet (it is created with DIR/fapiao.db and the keys).
 * Prints one line: records=N append_s=S records_per_s=R */
#include "fapiao/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: bench_audit_verify DIR [N] [BATCH]\n");
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 1000000, batch = argc > 3 ? atol(argv[3]) : 10000;
    if (n < 1 || batch < 1 || batch > 1000000) {
        fprintf(stderr, "bench_audit_verify: N and BATCH must be positive\n");
        return 2;
    }
    if (mkdir(argv[1], 0700) != 0) {
        perror(argv[1]);
        return 1;
    }
    char db[4096];
    snprintf(db, sizeof db, "%s/fapiao.db", argv[1]);
    fp_store_opts o = {.path = db, .read_conns = 1};
    fp_store *s = NULL;
    fp_err err = {0};
    if (fp_store_open(&o, &s, &err) < 0) {
        fprintf(stderr, "bench_audit_verify: %s\n", err.msg);
        return 1;
    }
    fp_audit_rec *recs = calloc((size_t)batch, sizeof *recs);
    char(*txt)[3][40] = calloc((size_t)batch, sizeof *txt);
    if (!recs || !txt)
        return 1;
    double t0 = now_s();
    int64_t ts = (int64_t)time(NULL);
    for (long done = 0; done < n;) {
        long k = n - done < batch ? n - done : batch;
        for (long i = 0; i < k; i++) {
            long id = done + i + 1;
            snprintf(txt[i][0], 40, "26440%015ld", id);
            snprintf(txt[i][1], 40, "req-%016lx", (unsigned long)id * 2654435761u);
            snprintf(txt[i][2], 40, "10.%ld.%ld.%ld", id >> 16 & 255, id >> 8 & 255, id & 255);
            recs[i] = (fp_audit_rec){.ts = ts + id / 1000,
                                     .actor = "demo-client-0001",
                                     .action = "invoice.issue",
                                     .target = txt[i][0],
                                     .request_id = txt[i][1],
                                     .client_ip = txt[i][2],
                                     .outcome = "created"};
        }
        if (fp_store_audit_batch(s, recs, (int)k, &err) < 0) {
            fprintf(stderr, "bench_audit_verify: append: %s\n", err.msg);
            return 1;
        }
        done += k;
    }
    fp_store_close(s);
    double secs = now_s() - t0;
    printf("records=%ld append_s=%.2f records_per_s=%.0f\n", n, secs, (double)n / secs);
    free(recs);
    free(txt);
    return 0;
}
