/* test_topn.c — counters per key with a cardinality cap (topn.h): the top
 * N by volume get a series each and the rest add up in "other"; the first
 * scrape hands whole counts over, later slots count from when they were
 * given, so no series ever goes back; at most FP_TOPN_KEYS keys. */
#include "check.h"
#include "fapiao/json.h"
#include "fapiao/topn.h"

/* The family's value for key (-1: no such series) and its series count. */
static long long value(fp_topn *t, const char *key, int *nseries)
{
    fp_buf b;
    fp_buf_init(&b, 1u << 20);
    fp_topn_metrics(t, &b, "fapiao_x_total", "x.", "k");
    char want[160];
    snprintf(want, sizeof want, "fapiao_x_total{k=\"%s\"} ", key);
    long long v = -1;
    int n = 0;
    for (char *line = b.p; line && line < b.p + b.len;) {
        char *nl = memchr(line, '\n', (size_t)(b.p + b.len - line));
        if (!strncmp(line, "fapiao_x_total{", 15))
            n++;
        if (!strncmp(line, want, strlen(want)))
            v = strtoll(line + strlen(want), NULL, 10);
        line = nl ? nl + 1 : NULL;
    }
    fp_buf_free(&b);
    if (nseries)
        *nseries = n;
    return v;
}

static void incs(fp_topn *t, const char *key, int n)
{
    for (int i = 0; i < n; i++)
        fp_topn_inc(t, key);
}

static void test_first_scrape_and_sticky_slots(void)
{
    check_ctx("first scrape");
    fp_topn *t = fp_topn_new(2);
    incs(t, "a", 3);
    incs(t, "b", 2);
    incs(t, "c", 1);
    int n = 0;
    CHECK_EQ_INT((int)value(t, "a", &n), 3);
    CHECK_EQ_INT(n, 3); /* a, b, other */
    CHECK_EQ_INT((int)value(t, "b", NULL), 2);
    CHECK_EQ_INT((int)value(t, "other", NULL), 1);
    CHECK_EQ_INT((int)value(t, "c", NULL), -1);
    check_ctx("c overtakes: no slot is free, it stays in other");
    incs(t, "c", 5);
    CHECK_EQ_INT((int)value(t, "c", &n), -1);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT((int)value(t, "other", NULL), 6);
    CHECK_EQ_INT((int)value(t, "a", NULL), 3);
    fp_topn_free(t);
}

static void test_late_slot_counts_from_then(void)
{
    check_ctx("a slot given after a scrape");
    fp_topn *t = fp_topn_new(3);
    int n = 0;
    CHECK_EQ_INT((int)value(t, "other", &n), 0);
    CHECK_EQ_INT(n, 1); /* other alone, always there */
    incs(t, "x", 2);
    CHECK_EQ_INT((int)value(t, "x", NULL), 0);     /* its 2 were shown... */
    CHECK_EQ_INT((int)value(t, "other", NULL), 2); /* ...in other, and stay */
    incs(t, "x", 1);
    CHECK_EQ_INT((int)value(t, "x", NULL), 1);
    CHECK_EQ_INT((int)value(t, "other", NULL), 2);
    check_ctx("\"other\" and \"\" as keys");
    incs(t, "other", 4);
    incs(t, "", 1);
    CHECK_EQ_INT((int)value(t, "other", &n), 7);
    CHECK_EQ_INT(n, 2);
    fp_topn_free(t);
}

static void test_key_limit(void)
{
    check_ctx("more keys than FP_TOPN_KEYS");
    fp_topn *t = fp_topn_new(20);
    char k[32];
    for (int i = 0; i < FP_TOPN_KEYS + 100; i++) {
        snprintf(k, sizeof k, "client-%d", i);
        fp_topn_inc(t, k);
    }
    incs(t, "client-7", 10);
    int n = 0;
    CHECK_EQ_INT((int)value(t, "client-7", &n), 11);
    CHECK_EQ_INT(n, 21);
    CHECK_EQ_INT((int)value(t, "other", NULL), FP_TOPN_KEYS + 100 - 20);
    fp_topn_free(t);
}

int main(void)
{
    test_first_scrape_and_sticky_slots();
    test_late_slot_counts_from_then();
    test_key_limit();
    return check_summary();
}
