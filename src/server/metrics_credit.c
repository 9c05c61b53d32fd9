/* metrics_credit.c — fapiao_upstream_credit_remaining_fen{seller}: the
 * current month's credit line (credit.h) left per seller, and
 * fapiao_upstream_credit_limit_fen{seller}, the line itself (the share left
 * is what FapiaoUpstreamCreditLow reads, docs/alerting.md), read from the
 * store at scrape time (docs/upstream.md, "Credit").  One series per seller
 * id with a known credit this month: bounded by the sellers table. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fapiao/clock.h"
#include "fapiao/credit.h"
#include "fapiao/metrics.h"
#include "fapiao/upstream.h"
#include "internal.h"

typedef struct credit_scrape {
    fp_buf *b;
    fp_metrics_scrape f;
    char month[7];
    int begun, limit; /* limit: the second family, the line itself */
} credit_scrape;

static void one(const fp_credit_row *c, void *arg)
{
    credit_scrape *cs = arg;
    if (strcmp(c->month, cs->month))
        return;
    if (!cs->begun++ &&
        fp_metrics_family_begin(
            cs->b, &cs->f,
            &(fp_metrics_opts){
                .name = cs->limit ? "fapiao_upstream_credit_limit_fen"
                                  : "fapiao_upstream_credit_remaining_fen",
                .help = cs->limit ? "The month's credit line (授信额度), per seller (fen)."
                                  : "The month's credit line (授信额度) left, per seller (fen).",
                .type = FP_METRICS_GAUGE,
                .labels = {"seller"}}) < 0)
        return;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, c->seller_id);
    fp_metrics_family_sample(cs->b, &cs->f, (const char *[]){id},
                             cs->limit ? c->limit_fen : c->limit_fen - c->used_fen);
}

void fp_credit_metrics(fp_server *s, fp_buf *b)
{
    credit_scrape cs = {.b = b};
    fp_up_credit_month(fp_wall_ms() / 1000, cs.month);
    fp_store_credit_list(s->o.store, one, &cs, NULL);
    cs.begun = 0;
    cs.limit = 1;
    fp_store_credit_list(s->o.store, one, &cs, NULL);
}
