/* cmd_sellers.c — `fapiao sellers add|list|show|set|disable|enable`: the
 * sellers (销售方) one instance issues for, a company or a group of them
 * (docs/sellers.md).  A credential belongs to one seller (`fapiao keys
 * create --seller-id`) and its invoices are that seller's.
 *
 * Works while a server runs on the same data directory, like `keys`: each
 * change is one transaction with its audit record, and the server sees it
 * at its next issue request (the sellers' generation, src/server/sellers.c).
 * Output: what a script needs on stdout (the new id, or JSON with --json),
 * what a person reads on stderr. */
#include "cli.h"
#include "fapiao/json.h"
#include "fapiao/store.h"
#include "fapiao/taxid.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fapiao sellers add     --data-dir DIR --name NAME --uscc USCC [FIELDS] [--json]\n"
    "       fapiao sellers list    --data-dir DIR [--json]\n"
    "       fapiao sellers show    --data-dir DIR --seller-id N [--json]\n"
    "       fapiao sellers set     --data-dir DIR --seller-id N [--name NAME] [--uscc USCC]\n"
    "                              [FIELDS] [--json]\n"
    "       fapiao sellers disable --data-dir DIR --seller-id N\n"
    "       fapiao sellers enable  --data-dir DIR --seller-id N\n"
    "  FIELDS: --address TEXT --phone TEXT --bank TEXT --account TEXT\n"
    "          --tax-bureau CODE (11 digits) --drawer NAME --remark TEXT\n"
    "  USCC: the 18-character unified social credit code, check character verified;\n"
    "  one seller per USCC.  set changes only the fields given (\"\" clears one).\n"
    "  A disabled seller's credentials get 403 SELLER_DISABLED when issuing.\n"
    "  管理销售方：新增、列出、查看、修改、停用、启用。统一社会信用代码须通过校验且不得重复；\n"
    "  停用后该销售方的凭据开票时返回 403 SELLER_DISABLED。\n";

/* The seller's text fields: flag, where, the most characters, the JSON
 * key and the words for `show`. */
#define SF(f) offsetof(fp_seller, f), sizeof(((fp_seller *)0)->f)
static const struct {
    const char *flag;
    size_t off, cap;
    size_t max_chars;
    const char *key, *zh, *en;
} fields[] = {
    {"--name", SF(name), 300, "name", "名称", "name"},
    {"--uscc", SF(tax_id), 18, "tax_id", "统一社会信用代码", "USCC"},
    {"--address", SF(address), 300, "address", "地址", "address"},
    {"--phone", SF(phone), 60, "phone", "电话", "phone"},
    {"--bank", SF(bank), 120, "bank", "开户银行", "bank"},
    {"--account", SF(account), 100, "account", "银行账号", "account"},
    {"--tax-bureau", SF(tax_bureau), 11, "tax_bureau_code", "主管税务机关代码", "tax bureau code"},
    {"--drawer", SF(drawer), 60, "drawer", "默认开票人", "default drawer"},
    {"--remark", SF(remark), 450, "remark", "默认备注", "default remark"},
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

static char *field_of(fp_seller *x, int i)
{
    return (char *)x + fields[i].off;
}

static const char *cfield_of(const fp_seller *x, int i)
{
    return (const char *)x + fields[i].off;
}

/* 0, or a usage error (2) naming the flag. */
static int check_value(int i, const char *v)
{
    char zh[256], en[256];
    size_t n = strlen(v);
    int ok = fp_utf8_valid(v, n) && fp_utf8_len(v) <= fields[i].max_chars && n < fields[i].cap;
    for (size_t k = 0; ok && k < n; k++)
        ok = (unsigned char)v[k] >= 0x20 && v[k] != 0x7f;
    if (!ok) {
        snprintf(zh, sizeof zh, "%s 须为不超过 %zu 个字符的 UTF-8 文本（不含控制字符）",
                 fields[i].flag, fields[i].max_chars);
        snprintf(en, sizeof en, "%s must be UTF-8 text of at most %zu characters (no controls)",
                 fields[i].flag, fields[i].max_chars);
        cli_error(zh, en);
        return 2;
    }
    if (!strcmp(fields[i].flag, "--uscc") && fp_taxid_classify(v) != FP_TAXID_USCC) {
        snprintf(zh, sizeof zh,
                 "统一社会信用代码 %s 无效：须为 18 位（数字与大写字母，不含 I O Z S V），"
                 "且第 18 位校验码正确",
                 v);
        snprintf(en, sizeof en,
                 "USCC %s is not valid: 18 characters (digits and capitals without I O Z S V) "
                 "with a correct check character",
                 v);
        cli_error(zh, en);
        return 2;
    }
    if (!strcmp(fields[i].flag, "--name") && !*v) {
        cli_error("--name 不能为空", "--name must not be empty");
        return 2;
    }
    if (!strcmp(fields[i].flag, "--tax-bureau") && *v) {
        int digits = n == 11;
        for (size_t k = 0; digits && k < n; k++)
            digits = v[k] >= '0' && v[k] <= '9';
        if (!digits) {
            cli_error("--tax-bureau 须为 11 位数字（主管税务机关代码）",
                      "--tax-bureau must be 11 digits (the tax bureau code)");
            return 2;
        }
    }
    return 0;
}

static void json_seller(fp_jw *w, const fp_seller *x)
{
    fp_jw_obj_open(w);
    fp_jw_kint(w, "id", (long long)x->id);
    for (int i = 0; i < NFIELDS; i++)
        fp_jw_kstr(w, fields[i].key, cfield_of(x, i));
    fp_jw_kbool(w, "disabled", x->disabled);
    fp_jw_obj_close(w);
}

static void print_json(const fp_seller *x)
{
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 1u << 20);
    fp_jw_init(&w, &b);
    json_seller(&w, x);
    printf("%.*s\n", (int)b.len, b.p);
    fp_buf_free(&b);
}

static void print_human(const fp_seller *x)
{
    int zh = cli_zh();
    printf("%-18s %lld\n", "id", (long long)x->id);
    for (int i = 0; i < NFIELDS; i++)
        printf("%-18s %s\n", zh ? fields[i].zh : fields[i].en, cfield_of(x, i));
    printf("%-18s %s\n", zh ? "状态" : "state",
           x->disabled ? (zh ? "已停用" : "disabled") : (zh ? "启用" : "enabled"));
}

typedef struct args {
    const char *dir, *id_s;
    const char *val[NFIELDS];
    int json;
    int64_t id;
} args;

/* The store's refusal, in both languages. */
static int store_failed(const char *zh_what, const char *en_what, int rc, const fp_err *err,
                        const fp_seller *x)
{
    char zh[512], en[512];
    if (rc == FP_ECONFLICT) {
        snprintf(zh, sizeof zh, "%s：已有销售方使用统一社会信用代码 %s（%s）", zh_what, x->tax_id,
                 err->msg);
        snprintf(en, sizeof en, "%s: another seller has the USCC %s (%s)", en_what, x->tax_id,
                 err->msg);
        cli_error(zh, en);
    } else if (rc == FP_ENOTFOUND) {
        snprintf(zh, sizeof zh, "%s：销售方 %lld 不存在", zh_what, (long long)x->id);
        snprintf(en, sizeof en, "%s: no seller %lld", en_what, (long long)x->id);
        cli_error(zh, en);
    } else {
        cli_fail(zh_what, en_what, err->msg);
    }
    return 1;
}

static int load(fp_store *s, int64_t id, fp_seller *x)
{
    int rc = fp_store_get_seller(s, id, x);
    if (rc == 0)
        return 0;
    char zh[96], en[96];
    if (rc == FP_ENOTFOUND) {
        snprintf(zh, sizeof zh, "销售方 %lld 不存在（fapiao sellers list 查看全部）",
                 (long long)id);
        snprintf(en, sizeof en, "no seller %lld (fapiao sellers list shows them)", (long long)id);
    } else {
        snprintf(zh, sizeof zh, "无法读取销售方 %lld", (long long)id);
        snprintf(en, sizeof en, "cannot read seller %lld", (long long)id);
    }
    cli_error(zh, en);
    return -1;
}

static int sellers_add(fp_store *s, args *a)
{
    fp_seller *x = calloc(1, sizeof *x);
    if (!x)
        return 1;
    for (int i = 0; i < NFIELDS; i++)
        if (a->val[i])
            snprintf(field_of(x, i), fields[i].cap, "%s", a->val[i]);
    char actor[80];
    fp_audit_rec rec = cli_audit_rec(actor, "sellers.add", NULL, "ok");
    fp_err err = {0};
    int rc = fp_store_seller_create(s, x, &x->id, &rec, &err);
    if (rc < 0) {
        rc = store_failed("无法新增销售方", "cannot add the seller", rc, &err, x);
    } else {
        if (a->json)
            print_json(x);
        else
            printf("%lld\n", (long long)x->id);
        fprintf(stderr, "%s %lld: %s %s\n", cli_zh() ? "已新增销售方" : "added seller",
                (long long)x->id, x->name, x->tax_id);
    }
    free(x);
    return rc;
}

typedef struct list_ctx {
    int json, n;
    fp_jw *w;
} list_ctx;

static void list_one(const fp_seller *x, void *arg)
{
    list_ctx *l = arg;
    if (l->json)
        json_seller(l->w, x);
    else
        printf("%-5lld %-18s %-8s %s\n", (long long)x->id, x->tax_id,
               x->disabled ? (cli_zh() ? "已停用" : "disabled") : (cli_zh() ? "启用" : "enabled"),
               x->name);
    l->n++;
}

static int sellers_list(fp_store *s, args *a)
{
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 64u << 20);
    fp_jw_init(&w, &b);
    list_ctx l = {a->json, 0, &w};
    if (a->json)
        fp_jw_arr_open(&w);
    else
        printf("%-5s %-18s %-8s %s\n", "ID", "USCC", cli_zh() ? "状态" : "STATE",
               cli_zh() ? "名称" : "NAME");
    int rc = fp_store_sellers(s, list_one, &l);
    if (a->json) {
        fp_jw_arr_close(&w);
        printf("%.*s\n", (int)b.len, b.p);
    }
    fp_buf_free(&b);
    if (rc < 0) {
        cli_error("无法读取销售方", "cannot read the sellers");
        return 1;
    }
    if (!a->json && l.n == 0)
        fprintf(stderr, "%s\n",
                cli_zh()
                    ? "尚无销售方：fapiao sellers add --name NAME --uscc USCC 新增"
                    : "no sellers yet: add one with fapiao sellers add --name NAME --uscc USCC");
    return 0;
}

static int sellers_show(fp_store *s, args *a)
{
    fp_seller *x = malloc(sizeof *x);
    int rc = !x || load(s, a->id, x) < 0;
    if (!rc) {
        if (a->json)
            print_json(x);
        else
            print_human(x);
    }
    free(x);
    return rc;
}

/* set, disable, enable: read, change, write back (one transaction with
 * its audit record; the tax id checked again there). */
static int update(fp_store *s, args *a, const char *action, int disabled)
{
    fp_seller *x = malloc(sizeof *x);
    if (!x || load(s, a->id, x) < 0) {
        free(x);
        return 1;
    }
    if (disabled >= 0) {
        x->disabled = disabled;
    } else {
        int any = 0;
        for (int i = 0; i < NFIELDS; i++)
            if (a->val[i]) {
                snprintf(field_of(x, i), fields[i].cap, "%s", a->val[i]);
                any = 1;
            }
        if (!any) {
            free(x);
            cli_error("set 至少需要一个字段参数（见 --help）",
                      "set needs at least one field option (see --help)");
            return 2;
        }
    }
    char actor[80];
    fp_audit_rec rec = cli_audit_rec(actor, action, NULL, "ok");
    fp_err err = {0};
    int rc = fp_store_seller_update(s, x, &rec, &err);
    if (rc < 0) {
        rc = store_failed("无法修改销售方", "cannot change the seller", rc, &err, x);
    } else {
        if (a->json)
            print_json(x);
        const char *zh = disabled > 0    ? "已停用销售方"
                         : disabled == 0 ? "已启用销售方"
                                         : "已修改销售方";
        const char *en = disabled > 0    ? "disabled seller"
                         : disabled == 0 ? "enabled seller"
                                         : "changed seller";
        fprintf(stderr, "%s %lld: %s\n", cli_zh() ? zh : en, (long long)x->id, x->name);
    }
    free(x);
    return rc;
}

static int sellers_set(fp_store *s, args *a)
{
    return update(s, a, "sellers.set", -1);
}

static int sellers_disable(fp_store *s, args *a)
{
    return update(s, a, "sellers.disable", 1);
}

static int sellers_enable(fp_store *s, args *a)
{
    return update(s, a, "sellers.enable", 0);
}

/* What each subcommand takes: fields (1: add's, 2: set's optional ones),
 * whether it needs --seller-id, whether it only reads. */
static const struct {
    const char *name;
    int (*run)(fp_store *s, args *a);
    int fields, needs_id, read_only;
} subs[] = {
    {"add", sellers_add, 1, 0, 0},         {"list", sellers_list, 0, 0, 1},
    {"show", sellers_show, 0, 1, 1},       {"set", sellers_set, 2, 1, 0},
    {"disable", sellers_disable, 0, 1, 0}, {"enable", sellers_enable, 0, 1, 0},
};

int cmd_sellers(int argc, char **argv)
{
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "sellers", subs, usage, &rc);
    if (sub < 0)
        return rc;
    args a;
    memset(&a, 0, sizeof a);
    cli_flag flags[NFIELDS + 4];
    int nf = 0;
    flags[nf++] = (cli_flag){"--data-dir", 0, &a.dir, NULL};
    flags[nf++] = (cli_flag){"--seller-id", 0, &a.id_s, NULL};
    flags[nf++] = (cli_flag){"--json", 1, NULL, &a.json};
    for (int i = 0; i < NFIELDS; i++)
        if (subs[sub].fields)
            flags[nf++] = (cli_flag){fields[i].flag, 0, &a.val[i], NULL};
    flags[nf] = (cli_flag){NULL, 0, NULL, NULL};
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(a.dir, "--data-dir", usage) < 0)
        return 2;
    if (subs[sub].fields == 1 &&
        (cli_require(a.val[0], "--name", usage) < 0 || cli_require(a.val[1], "--uscc", usage) < 0))
        return 2;
    if (subs[sub].needs_id) {
        long long id = 0;
        if (cli_require(a.id_s, "--seller-id", usage) < 0 ||
            cli_number(a.id_s, "--seller-id", 1, INT64_MAX, &id, usage) < 0)
            return 2;
        a.id = id;
    } else if (a.id_s) {
        cli_error("此命令不接受 --seller-id", "this command takes no --seller-id");
        return 2;
    }
    for (int i = 0; i < NFIELDS; i++) {
        rc = a.val[i] ? check_value(i, a.val[i]) : 0;
        if (rc)
            return rc;
    }
    fp_store *s = subs[sub].read_only ? cli_open_store_ro(a.dir) : cli_open_store(a.dir);
    if (!s)
        return 1;
    rc = subs[sub].run(s, &a);
    fp_store_close(s);
    return rc;
}
