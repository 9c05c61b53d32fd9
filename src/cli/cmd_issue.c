/* cmd_issue.c — the client commands on libfapiao-client
 * (include/fapiao-client/client.h, docs/client.md):
 *   fapiao issue --server URL[,URL…] --credential FILE --serial S FILE.json [--json]
 *   fapiao issue … --batch FILE.jsonl [--json]     (a progress bar, a summary)
 *   fapiao get NUMBER …
 *   fapiao pdf-download NUMBER -o FILE …
 * The library retries, fails over and diagnoses; these commands read the
 * credential, call it, and print what came back.  Exit: 0 done, 2 usage,
 * 3 refused for good (fix the request), 4 unavailable (the outcome is
 * unknown: run the same command again, with the same serial). */
#include "cli.h"
#include "client_cli.h"
#include "fapiao-client/client.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One issue's outcome as a JSON object (the batch's lines, --json). */
static cJSON *issue_json(const char *serial, int rc, const fpc_result *res, const fpc_error *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "serial", serial);
    if (rc == 0) {
        cJSON_AddStringToObject(o, "number", res->number);
        cJSON_AddBoolToObject(o, "replayed", res->replayed);
        cJSON_AddNumberToObject(o, "attempts", e->attempts);
    } else {
        cJSON_AddItemToObject(o, "error", cli_client_error_json(e));
    }
    return o;
}

/* The batch's counts, for the progress bar and the summary. */
typedef struct batch_counts {
    long total, done, issued, replayed, rejected, unavailable, bad_lines;
} batch_counts;

static long count_lines(FILE *f)
{
    long n = 0;
    int ch, last = '\n';
    while ((ch = getc(f)) != EOF) {
        n += ch == '\n';
        last = ch;
    }
    rewind(f);
    return n + (last != '\n');
}

/* One line {"serial": S, "invoice": {…}}: issued through c; its outcome
 * counted and, with json, printed. */
static void batch_line(fpc_client *c, char *line, batch_counts *b, int json)
{
    cJSON *doc = cJSON_Parse(line);
    const cJSON *serial = cJSON_GetObjectItemCaseSensitive(doc, "serial");
    const cJSON *inv = cJSON_GetObjectItemCaseSensitive(doc, "invoice");
    char *body = cJSON_IsObject(inv) ? cJSON_PrintUnformatted(inv) : NULL;
    if (!cJSON_IsString(serial) || !body) {
        b->bad_lines++;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "line", (double)b->done + 1);
            cJSON_AddStringToObject(o, "error", "BAD_LINE");
            cli_client_print_json(o);
        }
        free(body);
        cJSON_Delete(doc);
        return;
    }
    fpc_result res;
    fpc_error e;
    int rc = fpc_issue(c, serial->valuestring, body, strlen(body), &res, &e);
    if (rc == 0)
        (*(res.replayed ? &b->replayed : &b->issued))++;
    else
        (*(rc == FPC_EREJECTED ? &b->rejected : &b->unavailable))++;
    if (json)
        cli_client_print_json(issue_json(serial->valuestring, rc, &res, &e));
    else if (rc < 0)
        fprintf(stderr, "%s%s: %s %s\n", isatty(STDERR_FILENO) ? "\r" : "", serial->valuestring,
                e.code, e.finding);
    fpc_result_free(&res);
    free(body);
    cJSON_Delete(doc);
}

/* Issues every line of path in order; the exit code: 0 all done, 3 some
 * refused, 4 some unavailable (run the batch again: done lines replay). */
static int cmd_batch(fpc_client *c, const char *path, int json)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_fail("无法读取批量文件", "cannot read the batch file", strerror(errno));
        return 2;
    }
    batch_counts b = {.total = count_lines(f)};
    int tty = isatty(STDERR_FILENO);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if ((size_t)n > MAX_DOC)
            b.bad_lines++;
        else if (strspn(line, " \t\r\n") != (size_t)n)
            batch_line(c, line, &b, json);
        b.done++;
        cli_client_progress(b.done, b.total, b.issued + b.replayed,
                            b.rejected + b.unavailable + b.bad_lines);
    }
    free(line);
    fclose(f);
    if (tty)
        fputc('\n', stderr);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *s = cJSON_AddObjectToObject(o, "summary");
        cJSON_AddNumberToObject(s, "lines", (double)b.done);
        cJSON_AddNumberToObject(s, "issued", (double)b.issued);
        cJSON_AddNumberToObject(s, "replayed", (double)b.replayed);
        cJSON_AddNumberToObject(s, "rejected", (double)b.rejected);
        cJSON_AddNumberToObject(s, "unavailable", (double)b.unavailable);
        cJSON_AddNumberToObject(s, "bad_lines", (double)b.bad_lines);
        cli_client_print_json(o);
    } else if (cli_zh()) {
        printf("共 %ld 行：新开具 %ld，此前已开具 %ld，被拒绝 %ld，不可用 %ld，无效行 %ld\n",
               b.done, b.issued, b.replayed, b.rejected, b.unavailable, b.bad_lines);
    } else {
        printf("%ld lines: issued %ld, issued before %ld, refused %ld, unavailable %ld, bad lines "
               "%ld\n",
               b.done, b.issued, b.replayed, b.rejected, b.unavailable, b.bad_lines);
    }
    return b.unavailable ? CMD_EXIT_UNAVAILABLE : b.rejected || b.bad_lines ? CMD_EXIT_REJECTED : 0;
}

static const char issue_usage[] =
    "usage: fapiao issue --server URL[,URL…] --credential FILE --serial S FILE.json [--json]\n"
    "       fapiao issue --server URL[,URL…] --credential FILE --batch FILE.jsonl [--json]\n"
    "       … --spool DIR: store first (\"queued\"), then deliver; without --server only\n"
    "       stored, for `fapiao spool drain` (fapiao spool --help)\n"
    "  Issues an invoice (FILE.json: the POST /v1/invoices body; - reads stdin) with the\n"
    "  serial as its Idempotency-Key, retrying and failing over until the deadline: running\n"
    "  it again with the same serial never issues a second invoice.  --batch: one\n"
    "  {\"serial\": S, \"invoice\": {…}} per line, a progress bar and a summary.\n"
    "  开具发票：流水号即幂等键，重试与切换地址直至截止时间；同一流水号重复执行不会重复开票。\n";

int cmd_issue(int argc, char **argv)
{
    client_args a;
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s", issue_usage, cli_client_usage);
    if (cli_client_args(argc, argv, &a, usage, 0) < 0)
        return 2;
    if (!a.spool && (cli_require(a.server, "--server", usage) < 0 ||
                     cli_require(a.credential, "--credential", usage) < 0))
        return 2;
    if (!a.batch == !(a.serial && a.npos == 1)) {
        cli_error("须给出 --serial S FILE.json 或 --batch FILE.jsonl（二选一）",
                  "give either --serial S FILE.json or --batch FILE.jsonl");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    if (a.spool)
        return cli_spool_issue(&a); /* cmd_spool.c */
    cJSON *cred = NULL;
    fpc_client *c = cli_client_open(&a, &cred);
    if (!c)
        return 2;
    int code = 0;
    if (a.batch) {
        code = cmd_batch(c, a.batch, a.json);
    } else {
        size_t len = 0;
        char *doc = cli_client_read(a.pos[0], &len);
        if (!doc) {
            cli_fail("无法读取发票文件", "cannot read the invoice file", strerror(errno));
            code = 2;
        } else {
            fpc_result res;
            fpc_error e;
            int rc = fpc_issue(c, a.serial, doc, len, &res, &e);
            if (a.json)
                cli_client_print_json(issue_json(a.serial, rc, &res, &e));
            else if (rc == 0)
                printf("%s %s (serial %s%s)\n", cli_zh() ? "已开具" : "issued", res.number,
                       a.serial,
                       res.replayed ? (cli_zh() ? "，此前已开具" : ", issued before") : "");
            if (rc < 0 && !a.json)
                cli_client_print_error(&e);
            code = rc < 0 ? cli_client_exit(rc) : 0;
            fpc_result_free(&res);
            free(doc);
        }
    }
    fpc_client_free(c);
    cJSON_Delete(cred);
    return code;
}

/* 20 decimal digits: a number can go into a path as it is */
static int valid_number(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n == 20;
}

static int get_common(int argc, char **argv, const char *usage, const char *suffix, int pdf)
{
    client_args a;
    if (cli_client_args(argc, argv, &a, usage, 1) < 0)
        return 2;
    if (a.npos != 1 || !valid_number(a.pos[0]) || (pdf && !a.out)) {
        cli_error(pdf ? "须给出 20 位发票号码与 -o FILE" : "须给出 20 位发票号码",
                  pdf ? "a 20-digit invoice number and -o FILE are required"
                      : "a 20-digit invoice number is required");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    char path[96];
    snprintf(path, sizeof path, "/v1/invoices/%s%s", a.pos[0], suffix);
    fpc_result res;
    int code = cli_client_get(&a, path, &res);
    if (code != 0)
        return code;
    if (!pdf) {
        fwrite(res.body, 1, res.len, stdout);
        putchar('\n');
    } else { /* all or nothing: a temporary file renamed into place */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.part", a.out);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ssize_t w = fd >= 0 ? write(fd, res.body, res.len) : -1;
        if (fd < 0 || w != (ssize_t)res.len || fsync(fd) < 0 || close(fd) < 0 ||
            rename(tmp, a.out) < 0) {
            cli_fail("无法写入 PDF", "cannot write the PDF", strerror(errno));
            unlink(tmp);
            code = 1;
        } else if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "number", a.pos[0]);
            cJSON_AddStringToObject(o, "file", a.out);
            cJSON_AddNumberToObject(o, "bytes", (double)res.len);
            cli_client_print_json(o);
        }
    }
    fpc_result_free(&res);
    return code;
}

int cmd_get(int argc, char **argv)
{
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s",
             "usage: fapiao get NUMBER --server URL[,URL…] --credential FILE\n"
             "  Prints the invoice (GET /v1/invoices/NUMBER) as JSON.  按号码查询发票。\n",
             cli_client_usage);
    return get_common(argc, argv, usage, "", 0);
}

int cmd_pdf_download(int argc, char **argv)
{
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s",
             "usage: fapiao pdf-download NUMBER -o FILE --server URL[,URL…] --credential FILE\n"
             "  Saves the invoice's PDF, waiting (within the deadline) while it is rendered.\n"
             "  下载发票 PDF；尚未生成时在截止时间内等待。\n",
             cli_client_usage);
    return get_common(argc, argv, usage, "/pdf", 1);
}
