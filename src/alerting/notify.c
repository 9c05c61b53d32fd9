/* notify.c — from alert transitions to messages (docs/alerting.md
 * "Receivers"): grouping, repeats, resolves and the delivery queue with
 * retries.  The wire formats are notify_send.c's.
 *
 * A group is one rule (its alertname and severity): the transitions of
 * one evaluation round become one message per group, listing its firing
 * instances, or a resolve message once none fires.  A firing group is sent
 * again every repeat interval of its severity.  Each message is queued per
 * receiver (those whose severities take it); an attempt that fails is
 * retried after 1 s, 2 s, 4 s … (at most 5 min) until `attempts` ran out,
 * and every attempt is counted in fapiao_alert_notifications_total
 * {receiver,result}; fapiao_alert_receiver_up{receiver} is 0 while the
 * last attempt to it failed.  One thread (the evaluator's) calls all of
 * this: no lock. */
#include "notify.h"
#include "internal.h"

#include "fapiao/clock.h"
#include "fapiao/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_GROUP_INST 16
#define MAX_QUEUE      64
#define MAX_BACKOFF_MS (5 * 60 * 1000)
#define MAX_SILENCES   64

typedef struct ginst {
    char labels[512];
    double value;
    int64_t since_ms;
} ginst;

typedef struct group {
    const fp_alert_rule *rule;
    ginst firing[MAX_GROUP_INST];
    int nfiring;
    ginst resolved[MAX_GROUP_INST];
    int nresolved;
    int dirty;
    int notified; /* its firing was sent (so its resolve will be) */
    int64_t last_sent_ms;
} group;

typedef struct queued {
    int rcv;
    fp_amsg msg;
    int attempts;
    int64_t next_ms;
} queued;

struct fp_notifier {
    fp_notify_conf c;
    group *groups; /* one per built-in rule */
    queued *q[MAX_QUEUE];
    int nq;
    fp_metrics_family *sent_f, *up_f;
    char silences[MAX_SILENCES][512];
    int nsilences;
};

fp_notifier *fp_notifier_new(const fp_notify_conf *c, fp_metrics *m, fp_err *err)
{
    fp_notifier *n = calloc(1, sizeof *n);
    if (!n || !(n->groups = calloc((size_t)fp_alert_nrules, sizeof *n->groups))) {
        free(n);
        fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
        return NULL;
    }
    n->c = *c;
    for (int i = 0; i < fp_alert_nrules; i++)
        n->groups[i].rule = &fp_alert_rules[i];
    if (m) {
        fp_metrics_opts so = {.name = "fapiao_alert_notifications_total",
                              .help = "Alert notification attempts by receiver and result "
                                      "(sent, failed, dropped)",
                              .type = FP_METRICS_COUNTER,
                              .labels = {"receiver", "result"}};
        fp_metrics_opts uo = {.name = "fapiao_alert_receiver_up",
                              .help = "1 when the last notification to the receiver succeeded",
                              .type = FP_METRICS_GAUGE,
                              .labels = {"receiver"}};
        fp_metrics_register(m, &so, &n->sent_f, NULL);
        fp_metrics_register(m, &uo, &n->up_f, NULL);
        for (int i = 0; i < c->nrcv; i++) {
            const char *v[] = {c->rcv[i].name};
            fp_gauge_set(fp_metrics_child(n->up_f, v), 1);
        }
    }
    return n;
}

void fp_notifier_free(fp_notifier *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->nq; i++)
        free(n->q[i]);
    free(n->groups);
    free(n);
}

static group *group_of(fp_notifier *n, const fp_alert_rule *r)
{
    for (int i = 0; i < fp_alert_nrules; i++)
        if (n->groups[i].rule == r)
            return &n->groups[i];
    return NULL;
}

static void inst_remove(ginst *list, int *count, const char *labels, ginst *out)
{
    for (int i = 0; i < *count; i++)
        if (!strcmp(list[i].labels, labels)) {
            if (out)
                *out = list[i];
            list[i] = list[--*count];
            return;
        }
}

void fp_notifier_event(const fp_alert_event *e, void *arg)
{
    fp_notifier *n = arg;
    group *g = group_of(n, e->rule);
    if (!g)
        return;
    ginst gi = {.value = e->value, .since_ms = e->since_ms};
    snprintf(gi.labels, sizeof gi.labels, "%s", e->labels);
    inst_remove(g->firing, &g->nfiring, e->labels, NULL);
    inst_remove(g->resolved, &g->nresolved, e->labels, NULL);
    if (e->resolved && g->nresolved < MAX_GROUP_INST)
        g->resolved[g->nresolved++] = gi;
    else if (!e->resolved && g->nfiring < MAX_GROUP_INST)
        g->firing[g->nfiring++] = gi;
    g->dirty = 1;
}

static int severity_index(const char *sev)
{
    return sev[0] == 'P' && sev[1] >= '1' && sev[1] <= '3' ? sev[1] - '1' : 2;
}

static int takes(const fp_receiver *r, const char *sev)
{
    return !r->severities[0] || strstr(r->severities, sev) != NULL;
}

static void count(fp_notifier *n, int rcv, const char *result)
{
    const char *v[] = {n->c.rcv[rcv].name, result};
    fp_counter_inc(fp_metrics_child(n->sent_f, v));
    const char *u[] = {n->c.rcv[rcv].name};
    if (strcmp(result, "dropped") != 0)
        fp_gauge_set(fp_metrics_child(n->up_f, u), !strcmp(result, "sent"));
}

static void enqueue(fp_notifier *n, const fp_amsg *m, int64_t now_ms)
{
    for (int i = 0; i < n->c.nrcv; i++) {
        if (!takes(&n->c.rcv[i], m->severity))
            continue;
        queued *q = n->nq < MAX_QUEUE ? calloc(1, sizeof *q) : NULL;
        if (!q) {
            count(n, i, "dropped");
            fprintf(stderr,
                    "fapiao: 告警通知队列已满，丢弃发往 %s 的消息 / the notification queue "
                    "is full: a message to %s dropped\n",
                    n->c.rcv[i].name, n->c.rcv[i].name);
            continue;
        }
        q->rcv = i;
        q->msg = *m;
        q->next_ms = now_ms;
        n->q[n->nq++] = q;
    }
}

/* The message of a group: firing (its firing instances) or resolved. */
static void group_msg(fp_notifier *n, group *g, int repeat, fp_amsg *m, int64_t now_ms)
{
    const fp_alert_rule *r = g->rule;
    memset(m, 0, sizeof *m);
    snprintf(m->alertname, sizeof m->alertname, "%s", r->name);
    snprintf(m->severity, sizeof m->severity, "%s", r->severity);
    m->resolved = g->nfiring == 0;
    m->repeat = repeat;
    m->at_ms = now_ms;
    const ginst *list = m->resolved ? g->resolved : g->firing;
    int cnt = m->resolved ? g->nresolved : g->nfiring;
    fp_amsg_render(&n->c, r, m, cnt ? list[0].labels : "", cnt ? list[0].value : 0,
                   cnt ? list[0].since_ms : now_ms, cnt);
}

static void deliver_due(fp_notifier *n, int64_t now_ms)
{
    int k = 0;
    for (int i = 0; i < n->nq; i++) {
        queued *q = n->q[i];
        if (q->next_ms > now_ms) {
            n->q[k++] = q;
            continue;
        }
        fp_err err = {0};
        const fp_receiver *rc = &n->c.rcv[q->rcv];
        if (fp_amsg_send(&n->c, rc, &q->msg, &err) == 0) {
            count(n, q->rcv, "sent");
            free(q);
            continue;
        }
        count(n, q->rcv, "failed");
        q->attempts++;
        fprintf(stderr,
                "fapiao: 告警通知发送失败 / notification failed: receiver %s, %s %s, "
                "attempt %d/%d: %s\n",
                rc->name, q->msg.alertname, q->msg.resolved ? "resolved" : "firing", q->attempts,
                n->c.attempts, err.msg);
        if (q->attempts >= n->c.attempts) {
            count(n, q->rcv, "dropped");
            free(q);
            continue;
        }
        int64_t back = 1000LL << (q->attempts - 1 < 20 ? q->attempts - 1 : 20);
        q->next_ms = now_ms + (back < MAX_BACKOFF_MS ? back : MAX_BACKOFF_MS);
        n->q[k++] = q;
    }
    n->nq = k;
}

/* 1 when an active silence matches the instance's labels: alertname,
 * severity, instance and the series' own. */
static int silenced(const fp_notifier *n, const fp_alert_rule *r, const char *labels)
{
    char key[1024];
    const char *brace = strchr(labels, '{');
    size_t inner = brace ? strcspn(brace + 1, "}") : 0;
    snprintf(key, sizeof key, "ALERTS{alertname=\"%s\",severity=\"%s\",instance=\"%s\"%s%.*s}",
             r->name, r->severity, n->c.instance, inner ? "," : "", (int)inner,
             brace ? brace + 1 : "");
    for (int i = 0; i < n->nsilences; i++) {
        fp_amatch m;
        if (fp_amatch_parse(&m, "ALERTS", n->silences[i], NULL) < 0)
            continue;
        int hit = fp_amatch_key(&m, key, 6);
        fp_amatch_free(&m);
        if (hit)
            return 1;
    }
    return 0;
}

/* Every firing instance of g is silenced. */
static int group_silenced(const fp_notifier *n, const group *g)
{
    for (int i = 0; i < g->nfiring; i++)
        if (!silenced(n, g->rule, g->firing[i].labels))
            return 0;
    return g->nfiring > 0;
}

static void send_group(fp_notifier *n, group *g, int repeat, int64_t now_ms)
{
    fp_amsg *m = malloc(sizeof *m);
    if (!m)
        return;
    group_msg(n, g, repeat, m, now_ms);
    enqueue(n, m, now_ms);
    free(m);
    g->notified = g->nfiring > 0;
    g->last_sent_ms = now_ms;
}

int fp_notifier_flush(fp_notifier *n, int64_t now_ms)
{
    if (n->c.silences) {
        int k = n->c.silences(n->c.silences_arg, now_ms / 1000, n->silences, MAX_SILENCES);
        if (k >= 0)
            n->nsilences = k;
    }
    for (int i = 0; i < fp_alert_nrules; i++) {
        group *g = &n->groups[i];
        int64_t repeat_ms = (int64_t)n->c.repeat_s[severity_index(g->rule->severity)] * 1000;
        if (g->nfiring) {
            /* silenced: nothing goes out, and when the silence ends while it
             * still fires, the firing message does */
            if (group_silenced(n, g))
                g->dirty = 0;
            else if (g->dirty || !g->notified)
                send_group(n, g, 0, now_ms);
            else if (now_ms - g->last_sent_ms >= repeat_ms)
                send_group(n, g, 1, now_ms);
        } else if (g->dirty && g->nresolved && g->notified) {
            send_group(n, g, 0, now_ms); /* the resolve */
        }
        g->nresolved = 0;
        g->dirty = 0;
    }
    deliver_due(n, now_ms);
    return n->nq;
}

int fp_notifier_test(fp_notifier *n)
{
    int failed = 0;
    fp_amsg *m = calloc(1, sizeof *m);
    if (!m)
        return n->c.nrcv;
    snprintf(m->alertname, sizeof m->alertname, "FapiaoTestMessage");
    snprintf(m->severity, sizeof m->severity, "P3");
    m->at_ms = fp_wall_ms();
    m->test = 1;
    fp_amsg_render(&n->c, NULL, m, "", 0, m->at_ms, 0);
    for (int i = 0; i < n->c.nrcv; i++) {
        fp_err err = {0};
        if (fp_amsg_send(&n->c, &n->c.rcv[i], m, &err) == 0) {
            fprintf(stderr, "fapiao: 测试消息已发送 / test message sent: %s\n", n->c.rcv[i].name);
        } else {
            failed++;
            fprintf(stderr, "fapiao: 测试消息发送失败 / test message failed: %s: %s\n",
                    n->c.rcv[i].name, err.msg);
        }
    }
    free(m);
    return failed;
}
