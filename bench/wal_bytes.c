/* wal_bytes.c — WAL bytes, pages and fsyncs per durable invoice, by b-tree.
 *
 * Drives the store's own issue path (fp_store_submit: the writer thread,
 * its statements, the audit chain, the outbox's job rows) on a fresh
 * database for each batch size, with every request queued up front and
 * max_batch set to the batch size, so each transaction holds that many
 * invoices.  Automatic checkpoints are kept off for the measured part (a
 * checkpoint_frames the run never reaches), so the WAL holds every frame
 * the run wrote; each frame is one page written by one commit.  The frames
 * are read from the -wal file and attributed to the b-tree that owns their
 * page (SQLite's dbstat table), so the figures count, independently of the
 * machine's speed and load: frames (pages) per invoice, WAL bytes per
 * invoice, commits (= WAL fsyncs with synchronous=FULL) per invoice, and
 * the pages of each table and index (docs/performance.md §5d).
 *
 * Before the measured part the store is filled with --warm invoices in
 * batches of 512 and reopened, so the b-trees have their steady depth.
 * The issuing client has a webhook (two job rows per invoice, as in
 * bench_commit_ceiling's default).
 *
 * Usage: bench_wal_bytes [--n N] [--warm N] [--batches 1,8,64] [--dir DIR]
 *                        [--body FILE] [--taxcodes CSV] [--keep]
 * Output: one table row per batch size, then the frames per invoice of
 * every b-tree that was written. */
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/invoice.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"

#define MAX_TREES 64
#define WAIT_S    600 /* every wait is bounded */

typedef struct run_ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long answered, created;
} run_ctx;

typedef struct tree_count {
    char name[64];
    long frames;
} tree_count;

static const fp_seller seller = {.name = "深圳市某某信息技术有限公司",
                                 .tax_id = "91440300MA5G0XXXX1",
                                 .address = "深圳市南山区科技园某某大厦18楼",
                                 .bank = "招商银行深圳分行科技园支行",
                                 .account = "755912345678901",
                                 .drawer = "张三"};

static void on_done(fp_issue_req *r, void *arg)
{
    run_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    c->answered++;
    c->created += r->result == FP_ISSUE_CREATED;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = malloc(1 << 20);
    size_t n = p ? fread(p, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (p)
        p[n] = 0;
    *len = n;
    return p;
}

/* Issues n invoices (serials from *serial on), all queued at once, and
 * waits for their answers.  Returns how many were CREATED. */
static long issue_n(fp_store *s, int64_t seller_id, const fp_invoice *inv, long n, long *serial)
{
    run_ctx c = {.answered = 0};
    pthread_mutex_init(&c.mu, NULL);
    fp_cond_init_mono(&c.cv);
    fp_issue_req **rs = calloc((size_t)n, sizeof *rs);
    char issued[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(issued, sizeof issued, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    for (long i = 0; i < n; i++) {
        fp_issue_req *r = calloc(1, sizeof *r);
        char key[48];
        snprintf(key, sizeof key, "wal-%08ld-%s", (*serial)++, "0123456789abcdef0123");
        if (!r || fp_invoice_render(inv, &seller, key, issued, &r->doc) < 0) {
            fprintf(stderr, "wal_bytes: render failed\n");
            exit(1);
        }
        r->seller_id = seller_id;
        snprintf(r->serial, sizeof r->serial, "%s", key);
        for (int b = 0; b < 32; b++)
            r->request_hash[b] = (unsigned char)(rand() & 0xff);
        memcpy(r->invoice_type, inv->invoice_type, sizeof r->invoice_type);
        r->total_with_tax = inv->total_with_tax;
        r->total_amount = inv->total_amount;
        r->lines = inv->nitems;
        r->issued_at = (int64_t)now;
        snprintf(r->actor, sizeof r->actor, "cli_walbench0000001");
        snprintf(r->request_id, sizeof r->request_id, "req_%016lx", (unsigned long)*serial);
        snprintf(r->client_ip, sizeof r->client_ip, "127.0.0.1");
        r->done = on_done;
        r->arg = &c;
        rs[i] = r;
    }
    for (long i = 0; i < n; i++)
        fp_store_submit(s, rs[i]);
    int64_t deadline = fp_mono_ns() + (int64_t)WAIT_S * 1000000000;
    pthread_mutex_lock(&c.mu);
    while (c.answered < n && fp_mono_ns() < deadline)
        fp_cond_wait_until(&c.cv, &c.mu, deadline);
    long created = c.answered < n ? -1 : c.created;
    pthread_mutex_unlock(&c.mu);
    if (created >= 0)
        for (long i = 0; i < n; i++)
            fp_issue_req_release(rs[i]);
    free(rs);
    return created;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The b-tree owning each page (by dbstat), as an index into trees. */
static int page_owners(const char *db_path, tree_count *trees, int *ntrees, int **owner,
                       int64_t *npages)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT name, pageno FROM dbstat", -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "wal_bytes: dbstat: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    int64_t cap = 1 << 16;
    int *own = malloc((size_t)cap * sizeof *own);
    for (int64_t i = 0; i < cap; i++)
        own[i] = -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int64_t pg = sqlite3_column_int64(st, 1);
        while (pg >= cap) {
            own = realloc(own, (size_t)cap * 2 * sizeof *own);
            for (int64_t i = cap; i < cap * 2; i++)
                own[i] = -1;
            cap *= 2;
        }
        int t = 0;
        while (t < *ntrees && strcmp(trees[t].name, name))
            t++;
        if (t == *ntrees && *ntrees < MAX_TREES)
            snprintf(trees[(*ntrees)++].name, sizeof trees[0].name, "%s", name);
        own[pg] = t < *ntrees ? t : -1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    *owner = own;
    *npages = cap;
    return 0;
}

/* Counts the frames of the WAL from frame `from` on, by owner. */
static long count_frames(const char *db_path, long from, tree_count *trees, int *ntrees,
                         long *other, int *page_size)
{
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    FILE *f = fopen(wal, "rb");
    unsigned char hdr[32], fh[24];
    if (!f || fread(hdr, 1, 32, f) != 32) {
        if (f)
            fclose(f);
        return -1;
    }
    int *owner = NULL;
    int64_t npages = 0;
    if (page_owners(db_path, trees, ntrees, &owner, &npages) < 0) {
        fclose(f);
        return -1;
    }
    *page_size = (int)be32(hdr + 8);
    long frames = 0;
    for (long i = 0;; i++) {
        if (fseek(f, 32 + i * (24L + *page_size), SEEK_SET) != 0 || fread(fh, 1, 24, f) != 24)
            break;
        if (memcmp(fh + 8, hdr + 16, 8) != 0) /* a stale frame of an earlier cycle */
            break;
        if (i < from)
            continue;
        uint32_t pg = be32(fh);
        frames++;
        if (pg < npages && owner[pg] >= 0)
            trees[owner[pg]].frames++;
        else
            (*other)++;
    }
    free(owner);
    fclose(f);
    return frames;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int open_store(const char *path, int max_batch, fp_store **s)
{
    fp_store_opts o = {.path = path,
                       .max_batch = max_batch,
                       .checkpoint_frames = 1 << 30,
                       .wal_keep_bytes = (int64_t)1 << 40};
    fp_err err = {0};
    if (fp_store_open(&o, s, &err) < 0) {
        fprintf(stderr, "wal_bytes: open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* A fresh store with a seller, a range, a client with a webhook and warm
 * invoices, closed again.  *seller_id: the seller. */
static int prepare(const char *path, const fp_invoice *inv, long warm, long *serial,
                   int64_t *seller_id)
{
    fp_store *s = NULL;
    fp_err err = {0};
    if (open_store(path, 512, &s) < 0)
        return -1;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char prefix[16];
    snprintf(prefix, 6, "%02d440", (tm.tm_year % 100 + 100) % 100);
    fp_client_rec c = {.client_id = "cli_walbench0000001", .scope = "invoices:write"};
    if (fp_store_add_seller(s, &seller, seller_id, &err) < 0 ||
        fp_store_add_range(s, *seller_id, prefix, 1, 999999999999, NULL, &err) < 0 ||
        (c.seller_id = *seller_id, fp_store_add_client(s, &c, &err)) < 0) {
        fprintf(stderr, "wal_bytes: setup: %s\n", err.msg);
        fp_store_close(s);
        return -1;
    }
    long made = warm > 0 ? issue_n(s, *seller_id, inv, warm, serial) : 0;
    fp_store_close(s);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db) == SQLITE_OK &&
                     sqlite3_exec(db,
                                  "UPDATE clients SET webhook_url='https://127.0.0.1/hook' "
                                  "WHERE client_id='cli_walbench0000001'",
                                  NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : -1;
    sqlite3_close(db);
    return made == warm ? rc : -1;
}

int main(int argc, char **argv)
{
    const char *body_path = "examples/invoice.json", *codes_path = "data/taxcodes-sample.csv";
    const char *batches = "1,8,64", *dir_arg = NULL;
    long n = 2048, warm = 20000;
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--n"))
            n = atol(v), i++;
        else if (!strcmp(argv[i], "--warm"))
            warm = atol(v), i++;
        else if (!strcmp(argv[i], "--batches"))
            batches = v, i++;
        else if (!strcmp(argv[i], "--dir"))
            dir_arg = v, i++;
        else if (!strcmp(argv[i], "--body"))
            body_path = v, i++;
        else if (!strcmp(argv[i], "--taxcodes"))
            codes_path = v, i++;
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr, "usage: bench_wal_bytes [--n N] [--warm N] [--batches 1,8,64] "
                            "[--dir DIR] [--body FILE] [--taxcodes CSV] [--keep]\n");
            return 2;
        }
    }
    if (n < 1 || n > 1000000 || warm < 0 || warm > 10000000)
        return 2;
    size_t blen = 0;
    char *body = slurp(body_path, &blen);
    fp_taxcode_table *codes = NULL;
    fp_err err = {0};
    fp_invoice inv;
    fp_errors *es = calloc(1, sizeof *es);
    fp_invoice_defaults def = {seller.drawer, seller.remark};
    if (!body || fp_taxcode_load(codes_path, &codes, &err) < 0 ||
        fp_invoice_parse_with(body, blen, codes, &def, &inv, es) < 0) {
        fprintf(stderr, "wal_bytes: cannot read or validate %s / %s\n", body_path, codes_path);
        return 1;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s", dir_arg ? dir_arg : "/tmp/fp-walbytes-XXXXXX");
    if (!dir_arg && !mkdtemp(dir))
        return 1;
    printf("# bench_wal_bytes: %ld invoices per batch size after %ld warm ones; body %s\n", n, warm,
           body_path);
    printf("%-6s %8s %8s %10s %12s %12s %12s\n", "batch", "invoices", "commits", "fsync/inv",
           "pages/inv", "WAL_B/inv", "page_size");
    int rc = 0;
    for (const char *p = batches; *p && rc == 0;) {
        int b = atoi(p);
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
        if (b < 1)
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/b%d.db", dir, b);
        long serial = 0, other = 0;
        int64_t seller_id = 0;
        fp_store *s = NULL;
        if (prepare(path, &inv, warm, &serial, &seller_id) < 0 || open_store(path, b, &s) < 0) {
            rc = 1;
            break;
        }
        fp_store_stats st0, st1;
        fp_store_get_stats(s, &st0);
        int ps = 4096;
        tree_count none[1];
        int nnone = 0;
        long before = count_frames(path, 0, none, &nnone, &other, &ps);
        if (before < 0)
            before = 0;
        long made = issue_n(s, seller_id, &inv, n, &serial);
        fp_store_get_stats(s, &st1);
        tree_count trees[MAX_TREES];
        memset(trees, 0, sizeof trees);
        int ntrees = 0;
        other = 0;
        long frames = count_frames(path, before, trees, &ntrees, &other, &ps);
        fp_store_close(s);
        if (made != n || frames < 0) {
            fprintf(stderr, "wal_bytes: batch %d: %ld of %ld created, %ld frames\n", b, made, n,
                    frames);
            rc = 1;
            break;
        }
        double commits = (double)(st1.commits - st0.commits);
        printf("%-6d %8ld %8.0f %10.3f %12.2f %12.0f %12d\n", b, made, commits, commits / n,
               (double)frames / n, (double)frames * (24 + ps) / n, ps);
        printf("  frames/invoice by b-tree:");
        for (int t = 0; t < ntrees; t++)
            if (trees[t].frames)
                printf(" %s=%.3f", trees[t].name, (double)trees[t].frames / n);
        if (other)
            printf(" (free/new)=%.3f", (double)other / n);
        printf("\n");
        fflush(stdout);
    }
    fp_invoice_clear(&inv);
    if (!keep && !dir_arg)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
