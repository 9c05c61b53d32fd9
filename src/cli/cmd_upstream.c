/* cmd_upstream.c — `fapiao upstream SERVICE`: one call to the tax platform
 * (乐企) with the [upstream] settings of the config file, for operators
 * (is the connection up, how much credit is left) and for tests (the
 * simulator in tests/upstream-sim/).  Each subcommand is a row: a name, the
 * service it calls and a function that makes the call.
 *
 * Output: one JSON object on stdout — the outcome's kind (docs/upstream.md
 * §2), HTTP status, the platform's code, message and request id, and what
 * the service answered.  Exit status: 0 OK, 1 the call failed (the kind
 * says why), 2 usage or configuration. */
#include "cli.h"
#include "fapiao/clock.h"
#include "fapiao/store.h"
#include "fapiao/upload.h"
#include "fapiao/upstream.h"
#include "upstream_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fapiao upstream COMMAND [--config FILE] [--tax-id NSRSBH] [options]\n"
    "  ping                         CXKYSL, a harmless query: envelope, key and unit\n"
    "  credit [--download YUAN | --return YUAN [--serial S] | --adjust yyyy-MM]\n"
    "                               CXSXED (XZTHSXED, TZSXEDYXQ)\n"
    "  credit refresh|show --data-dir DIR   the credit kept in the store (credit.h)\n"
    "  numbers --count N --serial S QDFPPLFM: download pre-assigned numbers (<= 5000)\n"
    "  taxcodes [--since yyyyMMddHHmmss]  CXSSFLBM\n"
    "  upload --doc FILE [--red-uuid U]   QDFPSC: upload a stored invoice document\n"
    "  result --sllsh S             CXQDFPSCJG: the upload's per-invoice results\n"
    "  red-apply --blue FILE --red FILE   QDHZQRDSQ: file a red form\n"
    "  red-answer --uuid U --number N --answer Y|N|C   QDHZQRDQR\n"
    "  red-list [--state NN]        CXQDHZQRDLB\n"
    "  red-detail --uuid U          CXQDHZQRDMX\n"
    "  redrive --data-dir DIR (--number N | --all-rejected)\n"
    "                               rejected uploads (dead letters) back to pending: the\n"
    "                               server's upload worker sends them again (each\n"
    "                               audited: upload.redrive, upload:N from rejected)\n"
    "  Prints one JSON object: kind, http_status, code, message, and the answer.\n"
    "  Exit status 0 OK, 1 the call failed (kind says why), 2 usage or configuration.\n"
    "  向税务平台（乐企）发起一次调用；设置见配置文件的 [upstream] 节（docs/upstream.md）。\n";

typedef struct args {
    const char *config, *tax_id, *count, *serial, *since, *doc, *red_uuid, *sllsh, *blue, *red,
        *uuid, *number, *answer, *state, *download, *give_back, *adjust;
} args;

typedef struct call {
    const upstream_conf *u;
    const args *a;
    const char *nsrsbh;
    cJSON *out;  /* what is printed */
    cJSON *data; /* the decrypted answer, when the service hands it out */
    fp_up_result res;
} call;

static int need(const char *v, const char *flag)
{
    return cli_require(v, flag, usage);
}

static int read_doc(const char *path, fp_invoice_doc *d)
{
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f) {
        buf = malloc(FP_UP_MAX_BODY + 1);
        len = buf ? fread(buf, 1, FP_UP_MAX_BODY, f) : 0;
        fclose(f);
    }
    fp_err err = {0};
    int rc = buf && len ? fp_invoice_doc_read(buf, len, d, &err) : FP_EIO;
    free(buf);
    if (rc)
        cli_fail("无法读取发票文档", "cannot read the invoice document",
                 err.msg[0] ? err.msg : path);
    return rc;
}

static fp_up_kind do_ping(call *c)
{
    return fp_up_rates(&c->u->c, &c->data, &c->res);
}

static fp_up_kind do_credit(call *c)
{
    const args *a = c->a;
    const char *svc = a->adjust ? "TZSXEDYXQ" : a->download || a->give_back ? "XZTHSXED" : NULL;
    if (svc)
        cJSON_ReplaceItemInObject(c->out, "service", cJSON_CreateString(svc));
    if (a->adjust)
        return fp_up_credit_adjust(&c->u->c, c->nsrsbh, a->adjust, &c->res);
    if (a->download || a->give_back) {
        fp_up_window w;
        if (need(a->serial, "--serial"))
            return FP_UP__COUNT;
        fp_up_kind k =
            fp_up_credit_transfer(&c->u->c, c->nsrsbh, a->give_back != NULL,
                                  a->download ? a->download : a->give_back, a->serial, &w, &c->res);
        cJSON_AddStringToObject(c->out, "from", w.from);
        cJSON_AddStringToObject(c->out, "to", w.to);
        return k;
    }
    fp_up_credit cr;
    fp_up_kind k = fp_up_credit_query(&c->u->c, c->nsrsbh, &cr, &c->res);
    if (k == FP_UP_OK) {
        cJSON_AddStringToObject(c->out, "granted", cr.granted);
        cJSON_AddStringToObject(c->out, "usable", cr.usable);
        cJSON_AddStringToObject(c->out, "downloaded", cr.downloaded);
        cJSON_AddStringToObject(c->out, "downloaded_unused", cr.downloaded_unused);
        cJSON_AddStringToObject(c->out, "period", cr.period);
    }
    return k;
}

static fp_up_kind do_numbers(call *c)
{
    long long n;
    if (need(c->a->count, "--count") || need(c->a->serial, "--serial") ||
        cli_count(c->a->count, "--count", FP_UP_MAX_NUMBERS, &n, usage))
        return FP_UP__COUNT;
    fp_up_numbers r;
    fp_up_kind k = fp_up_numbers_download(&c->u->c, c->nsrsbh, (long)n, c->a->serial, &r, &c->res);
    if (k == FP_UP_OK) {
        cJSON_AddStringToObject(c->out, "first", r.first);
        cJSON_AddStringToObject(c->out, "last", r.last);
        cJSON_AddNumberToObject(c->out, "count", (double)r.count);
    }
    return k;
}

static fp_up_kind do_taxcodes(call *c)
{
    return fp_up_taxcodes(&c->u->c, c->nsrsbh, c->a->since, &c->data, &c->res);
}

static fp_up_kind do_upload(call *c)
{
    fp_invoice_doc d;
    if (need(c->a->doc, "--doc") || read_doc(c->a->doc, &d))
        return FP_UP__COUNT;
    const fp_invoice_doc *docs[1] = {&d};
    /* as given: a red document's red_form_id stands for the platform's number */
    const fp_up_red_ref forms[1] = {{c->a->red_uuid, d.red_form_id}};
    char sllsh[64];
    fp_up_kind k = fp_up_upload(&c->u->c, docs, 1, forms, sllsh, &c->res);
    if (k == FP_UP_OK)
        cJSON_AddStringToObject(c->out, "sllsh", sllsh);
    fp_invoice_doc_clear(&d);
    return k;
}

static fp_up_kind do_result(call *c)
{
    fp_up_upload_item items[64];
    int n = 0;
    if (need(c->a->sllsh, "--sllsh"))
        return FP_UP__COUNT;
    fp_up_kind k = fp_up_upload_result(&c->u->c, c->nsrsbh, c->a->sllsh, items, 64, &n, &c->res);
    cJSON *list = cJSON_AddArrayToObject(c->out, "invoices");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "fphm", items[i].number);
        cJSON_AddStringToObject(e, "status", items[i].status);
        cJSON_AddStringToObject(e, "message", items[i].message);
        cJSON_AddItemToArray(list, e);
    }
    return k;
}

static void add_form(call *c, const fp_up_red_form *f)
{
    cJSON_AddStringToObject(c->out, "uuid", f->uuid);
    cJSON_AddStringToObject(c->out, "number", f->number);
    cJSON_AddStringToObject(c->out, "state", f->state);
}

static fp_up_kind do_red_apply(call *c)
{
    fp_invoice_doc blue, red;
    if (need(c->a->blue, "--blue") || need(c->a->red, "--red") || read_doc(c->a->blue, &blue))
        return FP_UP__COUNT;
    if (read_doc(c->a->red, &red)) {
        fp_invoice_doc_clear(&blue);
        return FP_UP__COUNT;
    }
    fp_up_red_form f;
    fp_up_kind k = fp_up_red_apply(&c->u->c, &blue, &red, NULL, &f, &c->res);
    if (k == FP_UP_OK)
        add_form(c, &f);
    fp_invoice_doc_clear(&blue);
    fp_invoice_doc_clear(&red);
    return k;
}

static fp_up_kind do_red_answer(call *c)
{
    const args *a = c->a;
    if (need(a->uuid, "--uuid") || need(a->number, "--number") || need(a->answer, "--answer"))
        return FP_UP__COUNT;
    return fp_up_red_answer(&c->u->c, c->nsrsbh, a->uuid, a->number, a->answer[0], &c->res);
}

static fp_up_kind do_red_list(call *c)
{
    return fp_up_red_list(&c->u->c, c->nsrsbh, c->a->state, 1, 100, &c->data, &c->res);
}

static fp_up_kind do_red_detail(call *c)
{
    fp_up_red_form f;
    if (need(c->a->uuid, "--uuid"))
        return FP_UP__COUNT;
    fp_up_kind k = fp_up_red_detail(&c->u->c, c->nsrsbh, c->a->uuid, &f, NULL, &c->res);
    if (k == FP_UP_OK)
        add_form(c, &f);
    return k;
}

static const struct {
    const char *name, *service;
    fp_up_kind (*fn)(call *c);
} subs[] = {
    {"ping", "CXKYSL", do_ping},
    {"credit", "CXSXED", do_credit},
    {"numbers", "QDFPPLFM", do_numbers},
    {"taxcodes", "CXSSFLBM", do_taxcodes},
    {"upload", "QDFPSC", do_upload},
    {"result", "CXQDFPSCJG", do_result},
    {"red-apply", "QDHZQRDSQ", do_red_apply},
    {"red-answer", "QDHZQRDQR", do_red_answer},
    {"red-list", "CXQDHZQRDLB", do_red_list},
    {"red-detail", "CXQDHZQRDMX", do_red_detail},
};

static void print(call *c, fp_up_kind k)
{
    const fp_up_kind_info *ki = fp_up_kind_get(k);
    cJSON_AddStringToObject(c->out, "kind", ki->name);
    cJSON_AddStringToObject(c->out, "explain", cli_zh() ? ki->zh : ki->en);
    cJSON_AddNumberToObject(c->out, "http_status", c->res.http_status);
    cJSON_AddStringToObject(c->out, "code", c->res.code);
    cJSON_AddStringToObject(c->out, "message", c->res.message);
    cJSON_AddStringToObject(c->out, "request_id", c->res.request_id);
    if (c->data)
        cJSON_AddItemToObject(c->out, "data", c->data);
    c->data = NULL;
    char *s = cJSON_PrintUnformatted(c->out);
    if (s)
        puts(s);
    free(s);
}

/* Rejected uploads back to pending (docs/upstream.md §9): after fixing
 * what the platform refused (registration, key, seller data, credit), the
 * running server's worker sends them at its next look at the table. */
static int redrive(int argc, char **argv)
{
    const char *dir = NULL, *number = NULL;
    int all = 0;
    const cli_flag flags[] = {{"--data-dir", 0, &dir, NULL},
                              {"--number", 0, &number, NULL},
                              {"--all-rejected", 1, NULL, &all},
                              {NULL, 0, NULL, NULL}};
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    if (!number == !all) {
        cli_error("redrive 需要 --number N 或 --all-rejected 之一",
                  "redrive needs one of --number N or --all-rejected");
        return 2;
    }
    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    int64_t n = 0;
    fp_err err = {0};
    char actor[80];
    /* one record per row, in the transaction that moves it (the store's) */
    fp_audit_rec audit = cli_audit_rec(actor, "upload.redrive", NULL, NULL);
    int rc = fp_store_upload_redrive(s, number, fp_steady_ms(), &audit, &n, &err);
    if (rc == FP_ENOTFOUND)
        cli_error("该发票没有被拒绝的上传", "this invoice has no rejected upload");
    else if (rc < 0)
        cli_fail("无法重新上传", "cannot re-drive the uploads", err.msg);
    else
        printf(cli_zh() ? "已重新排队上传 %lld 张发票\n" : "re-driven %lld uploads\n",
               (long long)n);
    fp_store_close(s);
    return rc < 0;
}

int cmd_upstream(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("%s\n", usage);
        upstream_conf_help();
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "credit") && argc > 2 &&
        (!strcmp(argv[2], "refresh") || !strcmp(argv[2], "show")))
        return cmd_upstream_credit(argc - 1, argv + 1); /* the stored credit (cmd_upcredit.c) */
    if (!strcmp(argv[1], "redrive"))
        return redrive(argc, argv);
    size_t s = 0;
    while (s < sizeof subs / sizeof subs[0] && strcmp(subs[s].name, argv[1]))
        s++;
    if (s == sizeof subs / sizeof subs[0]) {
        cli_error("未知的子命令（见 fapiao upstream --help）",
                  "unknown subcommand (see fapiao upstream --help)");
        return 2;
    }
    args a = {0};
    const cli_flag flags[] = {
        {"--config", 0, &a.config, NULL},     {"--tax-id", 0, &a.tax_id, NULL},
        {"--count", 0, &a.count, NULL},       {"--serial", 0, &a.serial, NULL},
        {"--since", 0, &a.since, NULL},       {"--doc", 0, &a.doc, NULL},
        {"--red-uuid", 0, &a.red_uuid, NULL}, {"--sllsh", 0, &a.sllsh, NULL},
        {"--blue", 0, &a.blue, NULL},         {"--red", 0, &a.red, NULL},
        {"--uuid", 0, &a.uuid, NULL},         {"--number", 0, &a.number, NULL},
        {"--answer", 0, &a.answer, NULL},     {"--state", 0, &a.state, NULL},
        {"--download", 0, &a.download, NULL}, {"--return", 0, &a.give_back, NULL},
        {"--adjust", 0, &a.adjust, NULL},     {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0)
        return 2;
    upstream_conf u;
    if (upstream_conf_read(a.config, &u)) {
        upstream_conf_free(&u);
        return 2;
    }
    if (!u.configured) {
        cli_error("配置文件中没有 [upstream] 节的 url（见 docs/upstream.md）",
                  "the config file has no [upstream] url (see docs/upstream.md)");
        upstream_conf_free(&u);
        return 2;
    }
    call c = {.u = &u, .a = &a, .nsrsbh = a.tax_id ? a.tax_id : u.tax_id ? u.tax_id : ""};
    c.out = cJSON_CreateObject();
    cJSON_AddStringToObject(c.out, "service", subs[s].service);
    fp_up_kind k = c.out ? subs[s].fn(&c) : FP_UP__COUNT;
    if (k != FP_UP__COUNT)
        print(&c, k);
    cJSON_Delete(c.data);
    cJSON_Delete(c.out);
    upstream_conf_free(&u);
    return k == FP_UP__COUNT ? 2 : k == FP_UP_OK ? 0 : 1;
}
