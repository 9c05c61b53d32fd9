/* cmd_upcredit.c — `fapiao upstream credit refresh|show`: the credit line
 * (授信额度) kept in the store per seller and month (credit.h,
 * docs/upstream.md "Credit").
 *
 * refresh, for every seller of the data directory (or --seller-id): asks
 * the platform (CXSXED), downloads what is still usable (XZTHSXED, under a
 * business serial made of the tax id, the month and what was downloaded
 * so far: a refresh repeated after a lost answer finds the download done
 * and asks nothing twice), asks again and stores the month's downloaded
 * credit (yxzed) as the limit; what this store's invoices used is kept.
 * Run it at the start of each month and after the platform grants more
 * (a cron job or a systemd timer beside `fapiao serve`; it works while
 * the server runs).  show prints the rows.  One JSON object per line. */
#include "cli.h"
#include "fapiao/clock.h"
#include "fapiao/credit.h"
#include "fapiao/money.h"
#include "upstream_opts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fapiao upstream credit refresh --data-dir DIR [--config FILE] [--seller-id ID]\n"
    "       fapiao upstream credit show --data-dir DIR\n"
    "  refresh: CXSXED, XZTHSXED (download what is usable), CXSXED; the month's downloaded\n"
    "  credit becomes the limit issuing is checked against (422 CREDIT_EXCEEDED).\n"
    "  show: each seller's limit, used and remaining per month (fen).\n"
    "  刷新或显示各销售方本月的授信额度；开票超出剩余额度时返回 422 CREDIT_EXCEEDED。\n";

#define MAX_SELLERS 4096

typedef struct sellers {
    int64_t id[MAX_SELLERS];
    char tax_id[MAX_SELLERS][21];
    int n;
    int64_t only;
} sellers;

static void collect(const fp_seller *x, void *arg)
{
    sellers *s = arg;
    if (s->n < MAX_SELLERS && x->tax_id[0] && (!s->only || s->only == x->id)) {
        s->id[s->n] = x->id;
        snprintf(s->tax_id[s->n], sizeof s->tax_id[0], "%s", x->tax_id);
        s->n++;
    }
}

static void print_row(const fp_credit_row *c, void *arg)
{
    (void)arg;
    printf("{\"seller_id\":%" PRId64 ",\"month\":\"%s\",\"limit_fen\":%" PRId64
           ",\"used_fen\":%" PRId64 ",\"remaining_fen\":%" PRId64 "}\n",
           c->seller_id, c->month, c->limit_fen, c->used_fen, c->limit_fen - c->used_fen);
}

static void print_failed(const char *tax_id, const char *what, const fp_up_result *res)
{
    printf("{\"tax_id\":\"%s\",\"service\":\"%s\",\"kind\":\"%s\",\"message\":\"%s\"}\n", tax_id,
           what, fp_up_kind_get(res->kind)->name, res->message[0] ? "(see stderr)" : "");
    fprintf(stderr, "fapiao: %s %s: %s\n", tax_id, what, res->message);
}

/* One seller: 0, or 1 when a call failed (printed). */
static int refresh_one(fp_store *st, const upstream_conf *u, int64_t id, const char *tax_id)
{
    fp_up_credit cr;
    fp_up_result res;
    int64_t usable = 0, downloaded = 0;
    if (fp_up_credit_query(&u->c, tax_id, &cr, &res) != FP_UP_OK) {
        print_failed(tax_id, "CXSXED", &res);
        return 1;
    }
    if (fp_money_parse(cr.usable, &usable) == 0 && usable > 0) {
        char serial[64], amount[32];
        fp_money_parse(cr.downloaded, &downloaded);
        snprintf(serial, sizeof serial, "ED%s%s%" PRId64, tax_id, cr.period, downloaded);
        fp_money_format(usable, amount);
        fp_up_window w;
        if (fp_up_credit_transfer(&u->c, tax_id, 0, amount, serial, &w, &res) != FP_UP_OK ||
            fp_up_credit_query(&u->c, tax_id, &cr, &res) != FP_UP_OK) {
            print_failed(tax_id, "XZTHSXED", &res);
            return 1;
        }
    }
    char month[7];
    if (strlen(cr.period) == 6)
        memcpy(month, cr.period, 7);
    else
        fp_up_credit_month(fp_wall_ms() / 1000, month);
    fp_err err = {0};
    int64_t unused = 0; /* the platform's used: downloaded - downloaded unused */
    int bad = fp_money_parse(cr.downloaded, &downloaded) < 0;
    if (fp_money_parse(cr.downloaded_unused, &unused) < 0 || unused > downloaded)
        unused = downloaded;
    if (bad || fp_store_credit_set(st, id, month, downloaded, downloaded - unused, &err) < 0) {
        cli_fail("无法保存授信额度", "cannot store the credit line",
                 err.msg[0] ? err.msg : cr.downloaded);
        return 1;
    }
    return 0;
}

int cmd_upstream_credit(int argc, char **argv)
{
    int refresh = argc > 1 && !strcmp(argv[1], "refresh");
    if (argc < 2 || (!refresh && strcmp(argv[1], "show"))) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    const char *dir = NULL, *config = NULL, *seller = NULL;
    const cli_flag flags[] = {{"--data-dir", 0, &dir, NULL},
                              {"--config", 0, &config, NULL},
                              {"--seller-id", 0, &seller, NULL},
                              {NULL, 0, NULL, NULL}};
    long long only = 0;
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) ||
        cli_number(seller, "--seller-id", 1, INT64_MAX, &only, usage) < 0)
        return 2;
    upstream_conf u;
    int bad = refresh ? upstream_conf_read(config, &u) : 0;
    if (refresh && (bad || !u.configured)) {
        if (!bad)
            cli_error("配置文件中没有 [upstream] 节的 url（见 docs/upstream.md）",
                      "the config file has no [upstream] url (see docs/upstream.md)");
        upstream_conf_free(&u);
        return 2;
    }
    fp_store *st = refresh ? cli_open_store(dir) : cli_open_store_ro(dir);
    int rc = st ? 0 : 1;
    sellers *s = st && refresh ? calloc(1, sizeof *s) : NULL;
    if (s) {
        s->only = only;
        if (fp_store_sellers(st, collect, s) < 0)
            rc = 1;
        for (int i = 0; i < s->n && !rc; i++)
            rc = refresh_one(st, &u, s->id[i], s->tax_id[i]);
    } else if (refresh && st) {
        rc = 1;
    }
    fp_err err = {0};
    if (st && !rc && fp_store_credit_list(st, print_row, NULL, &err) < 0) {
        cli_fail("无法读取授信额度", "cannot read the credit line", err.msg);
        rc = 1;
    }
    free(s);
    if (st)
        fp_store_close(st);
    if (refresh)
        upstream_conf_free(&u);
    return rc;
}
