/* cmd_kb.c — `fapiao kb search|show|list`: the knowledge base of finding
 * codes (kb/CODE.md), client errors and causes (kb/cases/CASE_*.md) and
 * alert runbooks (kb/alerts/ALERT_*.md).  The directory is --dir, else $FAPIAO_KB_DIR, else the
 * source tree's kb/ when it exists (a build), else the installed
 * /usr/share/fapiao/kb (the Debian package). */
#include "cli.h"
#include "fapiao/kb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#define FP_SOURCE_DIR "."
#endif

static const char usage[] =
    "usage: fapiao kb search \"<question>\" [--dir KB_DIR] [--json] [--limit N]\n"
    "       fapiao kb show CODE [--dir KB_DIR]\n"
    "       fapiao kb list [--dir KB_DIR] [--json]\n"
    "  Search the knowledge base in Chinese or English (questions or pasted error\n"
    "  messages), or print one article: a finding code, CASE_… or ALERT_….\n"
    "  在知识库中用中文或英文搜索（问题或报错原文），或显示一篇文章：故障代码、CASE_… 或 "
    "ALERT_…。\n"
    "  KB_DIR defaults to $FAPIAO_KB_DIR, else kb/ of the source tree, else\n"
    "  /usr/share/fapiao/kb.\n";

const char *cli_kb_dir(void)
{
    const char *dir = getenv("FAPIAO_KB_DIR");
    if (dir && *dir)
        return dir;
    return access(FP_SOURCE_DIR "/kb", F_OK) == 0 ? FP_SOURCE_DIR "/kb" : "/usr/share/fapiao/kb";
}

static fp_kb *open_kb(const char *dir)
{
    if (!dir)
        dir = cli_kb_dir();
    fp_kb *kb = NULL;
    fp_err err = {0};
    if (fp_kb_load_dir(dir, &kb, &err) < 0) {
        cli_fail("无法读取知识库", "cannot load the knowledge base", err.msg);
        return NULL;
    }
    return kb;
}

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static int do_search(int argc, char **argv)
{
    const char *dir = NULL, *limit_s = NULL, *query = NULL;
    int json = 0;
    /* the question is the one positional argument; flags may come around it */
    char *rest[64];
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc && nrest < 63; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            rest[nrest++] = argv[i];
            if (!strchr(argv[i], '=') && strcmp(argv[i], "--json") != 0 && i + 1 < argc &&
                strcmp(argv[i], "--help") != 0)
                rest[nrest++] = argv[++i];
        } else if (!query) {
            query = argv[i];
        } else {
            cli_error("只能给一个问题（请用引号括起来）", "give one question (quote it)");
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    const cli_flag flags[] = {{"--dir", 0, &dir, NULL},
                              {"--limit", 0, &limit_s, NULL},
                              {"--json", 1, NULL, &json},
                              {NULL}};
    if (cli_parse(nrest, rest, flags, usage) < 0)
        return 2;
    if (!query || !*query) {
        cli_error("缺少要搜索的问题", "the question to search for is missing");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    long long v = 5;
    if (cli_number(limit_s, "--limit", 1, 1000, &v, usage) < 0)
        return 2;
    int limit = (int)v;
    fp_kb *kb = open_kb(dir);
    if (!kb)
        return 2;
    fp_kb_hit *hits = calloc((size_t)limit, sizeof *hits);
    fp_err err = {0};
    int n = hits ? fp_kb_search(kb, query, hits, limit, &err) : FP_ENOMEM;
    if (n < 0) {
        cli_fail("搜索失败", "search failed", hits ? err.msg : "out of memory");
        free(hits);
        fp_kb_free(kb);
        return 2;
    }
    int zh = cli_zh();
    if (json) {
        printf("{\"query\":");
        json_str(query);
        printf(",\"results\":[");
        for (int i = 0; i < n; i++) {
            const fp_kb_article *a = fp_kb_get(kb, hits[i].code);
            printf("%s{\"code\":", i ? "," : "");
            json_str(a->code);
            printf(",\"score\":%.4f,\"title_zh\":", hits[i].score);
            json_str(a->title_zh);
            printf(",\"title_en\":");
            json_str(a->title_en);
            printf("}");
        }
        printf("]}\n");
    } else if (n == 0) {
        cli_error("没有找到相关文章（fapiao kb list 查看全部）",
                  "no article matches (fapiao kb list shows them all)");
    } else {
        for (int i = 0; i < n; i++) {
            const fp_kb_article *a = fp_kb_get(kb, hits[i].code);
            printf("%-24s %6.2f  %s\n", a->code, hits[i].score, zh ? a->title_zh : a->title_en);
        }
    }
    free(hits);
    fp_kb_free(kb);
    return n > 0 ? 0 : 1;
}

static int do_show(int argc, char **argv)
{
    const char *dir = NULL, *code = NULL;
    char *rest[64];
    int nrest = 0;
    rest[nrest++] = argv[0];
    for (int i = 1; i < argc && nrest < 63; i++) {
        if (argv[i][0] == '-') {
            rest[nrest++] = argv[i];
            if (!strchr(argv[i], '=') && strcmp(argv[i], "--help") != 0 &&
                strcmp(argv[i], "-h") != 0 && i + 1 < argc)
                rest[nrest++] = argv[++i];
        } else if (!code) {
            code = argv[i];
        } else {
            cli_error("只能给一个代码", "give one code");
            return 2;
        }
    }
    const cli_flag flags[] = {{"--dir", 0, &dir, NULL}, {NULL}};
    if (cli_parse(nrest, rest, flags, usage) < 0)
        return 2;
    if (!code) {
        cli_error("缺少故障代码，例如 TLS_CERT_EXPIRED",
                  "a finding code is missing, e.g. TLS_CERT_EXPIRED");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    fp_kb *kb = open_kb(dir);
    if (!kb)
        return 2;
    /* codes are upper case; accept tls_cert_expired too */
    char up[64];
    size_t i;
    for (i = 0; code[i] && i < sizeof up - 1; i++)
        up[i] = (code[i] >= 'a' && code[i] <= 'z') ? (char)(code[i] - 32) : code[i];
    up[i] = 0;
    const fp_kb_article *a = fp_kb_get(kb, up);
    if (!a) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "没有代码为 %.64s 的文章（fapiao kb list 查看全部）", code);
        snprintf(en, sizeof en, "no article for code %.64s (fapiao kb list shows them all)", code);
        cli_error(zh, en);
        fp_kb_free(kb);
        return 1;
    }
    fwrite(a->text, 1, a->len, stdout);
    if (a->len && a->text[a->len - 1] != '\n')
        putchar('\n');
    fp_kb_free(kb);
    return 0;
}

static int do_list(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    const cli_flag flags[] = {{"--dir", 0, &dir, NULL}, {"--json", 1, NULL, &json}, {NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0)
        return 2;
    fp_kb *kb = open_kb(dir);
    if (!kb)
        return 2;
    int zh = cli_zh(), n = fp_kb_count(kb);
    if (json)
        printf("[");
    for (int i = 0; i < n; i++) {
        const fp_kb_article *a = fp_kb_at(kb, i);
        if (json) {
            printf("%s{\"code\":", i ? "," : "");
            json_str(a->code);
            printf(",\"title_zh\":");
            json_str(a->title_zh);
            printf(",\"title_en\":");
            json_str(a->title_en);
            printf("}");
        } else {
            printf("%-24s %s\n", a->code, zh ? a->title_zh : a->title_en);
        }
    }
    if (json)
        printf("]\n");
    fp_kb_free(kb);
    return 0;
}

int cmd_kb(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } subs[] = {{"search", do_search}, {"show", do_show}, {"list", do_list}};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "kb", subs, usage, &rc);
    return sub < 0 ? rc : subs[sub].fn(argc - 1, argv + 1);
}
