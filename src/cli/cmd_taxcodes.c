/* cmd_taxcodes.c — `fapiao taxcodes import|show`: the tax classification
 * code table (税收分类编码表) in DIR/taxcodes.csv, the file `fapiao serve`
 * reads at start (docs/taxcodes.md: the layout, and where the official
 * table comes from).
 *
 * import checks the whole new file first (the same reader the server
 * uses: a malformed line is refused by its number and nothing changes),
 * reports the rows added, changed and removed against the table in place,
 * and replaces the file atomically: a copy beside it, fsync, the audit
 * record (taxcodes.import), rename over the old one, fsync of the
 * directory.  A crash leaves the old table or the new one, never a mix;
 * a refused audit record leaves the old one. */
#include "cli.h"
#include "datadir.h"
#include "fapiao/json.h"
#include "fapiao/money.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao taxcodes import --data-dir DIR --file CSV [--json]\n"
    "       fapiao taxcodes show   --data-dir DIR CODE [--json]\n"
    "  CSV: code,short_name,rates,summary per line (docs/taxcodes.md); lines starting\n"
    "  with # and a header line starting with \"code,\" are skipped.  import reports the\n"
    "  rows added, changed and removed; a malformed line is refused by its number and\n"
    "  nothing changes.  A running server uses the new table after a restart.\n"
    "  导入或查看税收分类编码表。格式有误的行按行号报告，且不做任何更改。\n"
    "  正在运行的服务重启后使用新表。\n";

typedef struct diff {
    int added, changed, removed, total;
} diff;

static int same_row(const fp_taxcode *a, const fp_taxcode *b)
{
    if (strcmp(a->short_name, b->short_name) || a->summary != b->summary || a->nrates != b->nrates)
        return 0;
    for (int i = 0; i < a->nrates; i++)
        if (a->rates_bp[i] != b->rates_bp[i])
            return 0;
    return 1;
}

/* Both tables are in code order: one merge pass. */
static diff compare(const fp_taxcode_table *old, const fp_taxcode_table *neu)
{
    diff d = {0, 0, 0, fp_taxcode_count(neu)};
    int i = 0, j = 0, n = fp_taxcode_count(old), m = fp_taxcode_count(neu);
    while (i < n || j < m) {
        const fp_taxcode *a = fp_taxcode_at(old, i), *b = fp_taxcode_at(neu, j);
        int c = !a ? 1 : !b ? -1 : strcmp(a->code, b->code);
        if (c < 0) {
            d.removed++;
            i++;
        } else if (c > 0) {
            d.added++;
            j++;
        } else {
            d.changed += !same_row(a, b);
            i++;
            j++;
        }
    }
    return d;
}

/* from's bytes into a new file at to (0600), fsynced. */
static int copy_synced(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int ok = 1;
    while (ok && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            ok = errno == EINTR;
            continue;
        }
        for (ssize_t off = 0; ok && off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            ok = w > 0 || (w < 0 && errno == EINTR);
            off += w > 0 ? w : 0;
        }
    }
    close(in);
    ok = ok && fsync(out) == 0;
    return close(out) == 0 && ok ? 0 : -1;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int import(const char *dir, const char *file, int json)
{
    char zh[PATH_MAX + 256], en[PATH_MAX + 256];
    fp_err err = {0};
    fp_taxcode_table *neu = NULL, *old = NULL;
    int line = 0;
    if (fp_taxcode_load_at(file, &neu, &line, &err) < 0) {
        if (line) {
            snprintf(zh, sizeof zh, "%s 第 %d 行格式有误，未导入任何内容", file, line);
            snprintf(en, sizeof en, "%s line %d is malformed; nothing was imported", file, line);
        } else {
            snprintf(zh, sizeof zh, "无法导入 %s，未做任何更改", file);
            snprintf(en, sizeof en, "cannot import %s; nothing was changed", file);
        }
        cli_error(zh, en);
        fprintf(stderr, "fapiao: %s\n", err.msg); /* the reader's detail */
        return 1;
    }
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    cli_dd_path(path, sizeof path, dir, CLI_DD_TAXCODES);
    /* the table in place, if any and readable: what the counts are against */
    if (access(path, F_OK) == 0 && fp_taxcode_load(path, &old, &err) < 0) {
        fprintf(stderr, "fapiao: %s: %s\n",
                cli_zh() ? "现有编码表无法读取，按空表比较"
                         : "the table in place does not load; "
                           "compared with an empty table",
                err.msg);
        old = NULL;
    }
    diff d = compare(old, neu);
    fp_taxcode_free(old);
    fp_taxcode_free(neu);

    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    snprintf(tmp, sizeof tmp, "%s.import-%ld", path, (long)getpid());
    unlink(tmp); /* a leftover of a crashed import by a process of the same pid */
    int rc = 1;
    if (copy_synced(file, tmp) < 0) {
        snprintf(zh, sizeof zh, "无法写入 %s：%s（未做任何更改）", tmp, strerror(errno));
        snprintf(en, sizeof en, "cannot write %s: %s (nothing was changed)", tmp, strerror(errno));
        cli_error(zh, en);
        goto out;
    }
    char actor[80], outcome[96];
    snprintf(outcome, sizeof outcome, "rows=%d added=%d changed=%d removed=%d", d.total, d.added,
             d.changed, d.removed);
    fp_audit_rec rec = cli_audit_rec(actor, "taxcodes.import", "taxcodes.csv", outcome);
    if (fp_store_audit(s, &rec, &err) < 0) {
        cli_fail("无法写入审计记录，未做任何更改",
                 "cannot write the audit record; nothing was changed", err.msg);
        goto out;
    }
    if (rename(tmp, path) < 0 || fsync_dir(dir) < 0) {
        snprintf(zh, sizeof zh, "无法替换 %s：%s", path, strerror(errno));
        snprintf(en, sizeof en, "cannot replace %s: %s", path, strerror(errno));
        cli_error(zh, en);
        goto out;
    }
    rc = 0;
    if (json)
        printf("{\"rows\":%d,\"added\":%d,\"changed\":%d,\"removed\":%d}\n", d.total, d.added,
               d.changed, d.removed);
    else
        printf(cli_zh() ? "已导入 %d 行：新增 %d，变更 %d，删除 %d\n"
                        : "imported %d rows: %d added, %d changed, %d removed\n",
               d.total, d.added, d.changed, d.removed);
    fprintf(stderr, "%s\n",
            cli_zh() ? "正在运行的服务重启后使用新表。"
                     : "A running server uses the new table after a restart.");
out:
    unlink(tmp);
    fp_store_close(s);
    return rc;
}

static int show(const char *dir, const char *code, int json)
{
    char path[PATH_MAX];
    cli_dd_path(path, sizeof path, dir, CLI_DD_TAXCODES);
    fp_taxcode_table *t = NULL;
    fp_err err = {0};
    if (fp_taxcode_load(path, &t, &err) < 0) {
        cli_fail("无法读取税收分类编码表", "cannot read the tax code table", err.msg);
        return 1;
    }
    const fp_taxcode *c = fp_taxcode_find(t, code);
    int rc = 0;
    if (!c) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "编码表中没有 %s（共 %d 行）", code, fp_taxcode_count(t));
        snprintf(en, sizeof en, "%s is not in the table (%d rows)", code, fp_taxcode_count(t));
        cli_error(zh, en);
        rc = 1;
    } else {
        char rates[8 * 12] = "", one[12];
        for (int i = 0; i < c->nrates; i++) {
            fp_rate_format(c->rates_bp[i], one, sizeof one);
            snprintf(rates + strlen(rates), sizeof rates - strlen(rates), "%s%s", i ? ";" : "",
                     one);
        }
        if (json) {
            fp_buf b;
            fp_jw w;
            fp_buf_init(&b, 4096);
            fp_jw_init(&w, &b);
            fp_jw_obj_open(&w);
            fp_jw_kstr(&w, "code", c->code);
            fp_jw_kstr(&w, "short_name", c->short_name);
            fp_jw_kstr(&w, "rates", rates);
            fp_jw_kbool(&w, "summary", c->summary);
            fp_jw_obj_close(&w);
            printf("%.*s\n", (int)b.len, b.p);
            fp_buf_free(&b);
        } else {
            int zh = cli_zh();
            printf("%-12s %s\n", zh ? "编码" : "code", c->code);
            printf("%-12s %s\n", zh ? "简称" : "short name", c->short_name);
            printf("%-12s %s\n", zh ? "税率" : "rates", rates);
            printf("%-12s %s\n", zh ? "汇总项" : "summary",
                   c->summary ? (zh ? "是（不可开票）" : "yes (not for invoices)")
                              : (zh ? "否" : "no"));
        }
    }
    fp_taxcode_free(t);
    return rc;
}

int cmd_taxcodes(int argc, char **argv)
{
    static const char *const subs[] = {"import", "show"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "taxcodes", subs, usage, &rc);
    if (sub < 0)
        return rc;
    int importing = sub == 0;
    /* show's CODE is the one argument that is neither a flag nor a flag's
     * value: taken out before the flags are parsed */
    const char *dir = NULL, *file = NULL, *code = NULL;
    int json = 0;
    char *rest[64];
    int nrest = 0;
    for (int i = 1; i < argc && nrest < 63; i++) {
        int is_value =
            i > 2 && (!strcmp(argv[i - 1], "--data-dir") || !strcmp(argv[i - 1], "--file") ||
                      !strcmp(argv[i - 1], "--audit-key"));
        if (!importing && i > 1 && argv[i][0] != '-' && !is_value && !code)
            code = argv[i];
        else
            rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    const cli_flag import_flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--file", 0, &file, NULL},
        {"--json", 1, NULL, &json},
        {NULL, 0, NULL, NULL},
    };
    const cli_flag show_flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--json", 1, NULL, &json},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(nrest, rest, importing ? import_flags : show_flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    if (importing) {
        if (cli_require(file, "--file", usage) < 0)
            return 2;
        return import(dir, file, json);
    }
    if (!code) {
        cli_error("需要税收分类编码（19 位数字）", "need a tax classification code (19 digits)");
        fputs(usage, stderr);
        return 2;
    }
    if (cli_check_data_dir(dir, 0, NULL, NULL) < 0)
        return 1;
    return show(dir, code, json);
}
