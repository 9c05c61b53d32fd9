/* cmd_ranges.c — `fapiao ranges import|list`: the invoice number ranges
 * (预赋码) downloaded from the tax bureau's platform, stored so that numbers
 * are assigned locally in the issuing transaction.  Works while a server
 * runs on the same data directory: the server picks up a new range when its
 * current one is used up, and overlapping ranges are refused. */
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
    "  prefix: 2-digit year, 2-digit province, 1-digit channel (5 digits); first/last: the\n"
    "  15-digit sequence part.  CSV lines: prefix,first,last (a header line is skipped).\n"
    "  导入或列出发票号码段（预赋码）。号码段不得重叠。\n";

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

int cmd_ranges(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "import") && strcmp(argv[1], "list"))) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    int importing = !strcmp(argv[1], "import");
    const char *dir = NULL, *prefix = NULL, *first = NULL, *last = NULL, *file = NULL,
               *seller = "1";
    int json = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL}, {"--prefix", 0, &prefix, NULL},
        {"--first", 0, &first, NULL},  {"--last", 0, &last, NULL},
        {"--file", 0, &file, NULL},    {"--seller-id", 0, &seller, NULL},
        {"--json", 1, NULL, &json},    {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    int64_t seller_id, a = 0, b = 0;
    if (parse_i64(seller, &seller_id) < 0 ||
        (importing && !file &&
         (!prefix || !first || !last || parse_i64(first, &a) < 0 || parse_i64(last, &b) < 0))) {
        cli_error("需要 --prefix --first --last（或 --file）",
                  "need --prefix --first --last (or --file)");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    fp_store *s = importing ? cli_open_store(dir) : cli_open_store_ro(dir);
    if (!s)
        return 1;
    int rc;
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
