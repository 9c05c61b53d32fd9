/* cmd_ranges.c — `fapiao ranges import|list|advance`: the invoice number
 * ranges (预赋码) downloaded from the tax bureau's platform, stored so that
 * numbers are assigned locally in the issuing transaction.  import and list
 * work while a server runs on the same data directory: the server picks up
 * a new range when its current one is used up, and overlapping ranges are
 * refused.  advance (docs/recovery.md: numbers given out after a restored
 * point) moves a range's next forward only, audited; on SQLite it refuses
 * while a server holds the data directory, because the server's writer
 * keeps each range's next in memory across transactions and would write it
 * back over the move.  On PostgreSQL every node's writer re-reads the range
 * FOR UPDATE in each batch, so the row lock orders the move with issuing. */
#include "cli.h"
#include "fapiao/store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao ranges import --data-dir DIR (--prefix YYPPC --first N --last N | --file CSV)\n"
    "                            [--seller-id ID]\n"
    "       fapiao ranges list --data-dir DIR [--json]\n"
    "       fapiao ranges advance --data-dir DIR --range-id ID (--past NUMBER | --to NEXT)\n"
    "  prefix: 2-digit year, 2-digit province, 1-digit channel (5 digits); first/last: the\n"
    "  15-digit sequence part.  CSV lines: prefix,first,last (a header line is skipped).\n"
    "  advance: move a range's next forward only (after a restore: past the highest number\n"
    "  given out; NUMBER is the 20-digit invoice number or its 15-digit sequence part).\n"
    "  导入或列出发票号码段（预赋码）。号码段不得重叠。advance 只能把号码段的 next 向前推进\n"
    "  （恢复后推进到已开出的最大号码之后）。\n";

#define SEQ_MAX 999999999999999LL /* the largest 15-digit sequence part */

/* a CSV line's number (the flags': cli_number) */
static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || *end || end == s)
        return -1;
    *v = n;
    return 0;
}

static int add_one(fp_store *s, int64_t seller, const char *prefix, int64_t first, int64_t last,
                   const char *where)
{
    char p[6] = {0};
    if (strlen(prefix) != 5) {
        fprintf(stderr, "fapiao: %s: %s\n", where,
                cli_zh() ? "前缀须为 5 位数字（年 2 位、省 2 位、渠道 1 位）"
                         : "the prefix must be 5 digits (year 2, province 2, channel 1)");
        return -1;
    }
    memcpy(p, prefix, 5);
    fp_err err = {0};
    char actor[80];
    fp_audit_rec a = cli_audit_rec(actor, "ranges.import", NULL, "ok");
    if (fp_store_add_range(s, seller, p, first, last, &a, &err) < 0) {
        fprintf(stderr, "fapiao: %s: %s\n", where, err.msg);
        return -1;
    }
    printf("%s %s %lld..%lld (%lld)\n", cli_zh() ? "已导入" : "imported", p, (long long)first,
           (long long)last, (long long)(last - first + 1));
    return 0;
}

static int import_file(fp_store *s, int64_t seller, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fapiao: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[256], where[PATH_MAX + 32];
    int lineno = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#' || !strncmp(line, "prefix", 6))
            continue;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        char *first = strchr(line, ','), *last = first ? strchr(first + 1, ',') : NULL;
        int64_t a, b;
        if (!first || !last || (*first++ = 0, *last++ = 0, parse_i64(first, &a) < 0) ||
            parse_i64(last, &b) < 0) {
            fprintf(stderr, "fapiao: %s: %s\n", where,
                    cli_zh() ? "格式应为 prefix,first,last" : "expected prefix,first,last");
            bad = 1;
            continue;
        }
        bad |= add_one(s, seller, line, a, b, where) < 0;
    }
    fclose(f);
    return bad ? -1 : 0;
}

static void print_range(const fp_range_rec *r, void *arg)
{
    int json = *(int *)arg;
    long long remaining = r->next <= r->last ? (long long)(r->last - r->next + 1) : 0;
    if (json)
        printf("{\"id\":%lld,\"seller_id\":%lld,\"prefix\":\"%s\",\"first\":%lld,\"last\":%lld,"
               "\"next\":%lld,\"remaining\":%lld}\n",
               (long long)r->id, (long long)r->seller_id, r->prefix, (long long)r->first,
               (long long)r->last, (long long)r->next, remaining);
    else
        printf("%-4lld seller %-3lld %s %15lld..%-15lld next %-15lld remaining %lld\n",
               (long long)r->id, (long long)r->seller_id, r->prefix, (long long)r->first,
               (long long)r->last, (long long)r->next, remaining);
}

/* --past NUMBER: the 20-digit invoice number (its prefix must be the
 * range's) or the 15-digit sequence part; the next is one after it */
static int parse_past(const char *s, const char **prefix, int64_t *next)
{
    size_t n = strlen(s);
    *prefix = n == 20 ? s : NULL;
    int64_t v;
    if ((n != 20 && n > 15) || parse_i64(n == 20 ? s + 5 : s, &v) < 0 || v < 0)
        return -1;
    *next = v + 1;
    return 0;
}

typedef struct find_range {
    int64_t id;
    char prefix[6];
} find_range;

static void find_one(const fp_range_rec *r, void *arg)
{
    find_range *f = arg;
    if (r->id == f->id)
        memcpy(f->prefix, r->prefix, sizeof f->prefix);
}

static int advance(const char *dir, const char *id_s, const char *past, const char *to)
{
    int64_t id = 0, next = 0;
    const char *prefix = NULL;
    if (!id_s || (!past) == (!to)) {
        cli_error("需要 --range-id 与 --past 或 --to 之一（整数）",
                  "need --range-id and one of --past or --to (whole numbers)");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    /* --to: at most one past the largest sequence part (a used-up range) */
    long long lid = 0, lto = 0;
    if (cli_number(id_s, "--range-id", 1, INT64_MAX, &lid, usage) < 0 ||
        cli_number(to, "--to", 1, SEQ_MAX + 1, &lto, usage) < 0)
        return 2;
    id = lid;
    next = lto;
    if (past && parse_past(past, &prefix, &next) < 0) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "--past 须为 20 位发票号码或其 15 位序号部分：%.40s", past);
        snprintf(en, sizeof en,
                 "--past must be a 20-digit invoice number or its 15-digit sequence part: %.40s",
                 past);
        cli_error(zh, en);
        fprintf(stderr, "%s", usage);
        return 2;
    }
    if (!cli_on_server_db() && cli_lock_serve(dir) < 0)
        return 1;
    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    find_range f = {.id = id};
    if (prefix && (fp_store_ranges(s, find_one, &f) < 0 || strncmp(prefix, f.prefix, 5) != 0)) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "号码 %s 不属于号码段 %lld（前缀 %s）", past, (long long)id,
                 f.prefix[0] ? f.prefix : "？");
        snprintf(en, sizeof en, "number %s is not of range %lld (prefix %s)", past, (long long)id,
                 f.prefix[0] ? f.prefix : "?");
        cli_error(zh, en);
        fp_store_close(s);
        return 1;
    }
    fp_err err = {0};
    char actor[80];
    fp_range_rec was;
    fp_audit_rec a = cli_audit_rec(actor, "ranges.advance", NULL, "ok");
    int rc = fp_store_advance_range(s, id, next, &a, &was, &err);
    fp_store_close(s);
    if (rc < 0) {
        cli_fail("无法推进号码段", "cannot advance the range", err.msg);
        return 1;
    }
    if (next <= was.next)
        printf(cli_zh() ? "号码段 %lld（%s）的 next 已是 %lld，无需推进\n"
                        : "range %lld (%s): next is %lld already, nothing to move\n",
               (long long)id, was.prefix, (long long)was.next);
    else
        printf(cli_zh() ? "号码段 %lld（%s）：next %lld → %lld，跳过 %lld 个号码\n"
                        : "range %lld (%s): next %lld -> %lld, %lld numbers skipped\n",
               (long long)id, was.prefix, (long long)was.next, (long long)next,
               (long long)(next - was.next));
    return 0;
}

int cmd_ranges(int argc, char **argv)
{
    static const char *const subs[] = {"import", "list", "advance"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "ranges", subs, usage, &rc);
    if (sub < 0)
        return rc;
    int importing = sub == 0;
    const char *dir = NULL, *prefix = NULL, *first = NULL, *last = NULL, *file = NULL,
               *seller = "1", *range_id = NULL, *past = NULL, *to = NULL;
    int json = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL}, {"--prefix", 0, &prefix, NULL},
        {"--first", 0, &first, NULL},  {"--last", 0, &last, NULL},
        {"--file", 0, &file, NULL},    {"--seller-id", 0, &seller, NULL},
        {"--json", 1, NULL, &json},    {"--range-id", 0, &range_id, NULL},
        {"--past", 0, &past, NULL},    {"--to", 0, &to, NULL},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    if (sub == 2)
        return advance(dir, range_id, past, to);
    long long seller_id = 0, a = 0, b = 0;
    if (cli_number(seller, "--seller-id", 1, INT64_MAX, &seller_id, usage) < 0 ||
        cli_number(first, "--first", 1, SEQ_MAX, &a, usage) < 0 ||
        cli_number(last, "--last", 1, SEQ_MAX, &b, usage) < 0)
        return 2;
    if (importing && !file && (!prefix || !first || !last)) {
        cli_error("需要 --prefix --first --last（或 --file）",
                  "need --prefix --first --last (or --file)");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    fp_store *s = importing ? cli_open_store(dir) : cli_open_store_ro(dir);
    if (!s)
        return 1;
    fp_seller *sel = importing ? malloc(sizeof *sel) : NULL;
    if (importing && (!sel || fp_store_get_seller(s, seller_id, sel) < 0)) {
        char zh[128], en[128];
        snprintf(zh, sizeof zh, "销售方 %lld 不存在（fapiao sellers list 查看，--seller-id 指定）",
                 (long long)seller_id);
        snprintf(en, sizeof en,
                 "no seller %lld (fapiao sellers list shows them; --seller-id names one)",
                 (long long)seller_id);
        cli_error(zh, en);
        free(sel);
        fp_store_close(s);
        return 1;
    }
    free(sel);
    if (!importing)
        rc = fp_store_ranges(s, print_range, &json);
    else if (file)
        rc = import_file(s, seller_id, file);
    else
        rc = add_one(s, seller_id, prefix, a, b, "--prefix");
    fp_store_close(s);
    return rc < 0 ? 1 : 0;
}
