/* notify.h — what notify.c (groups, queue) and notify_send.c (the
 * receivers' wire formats) share: a rendered message. */
#ifndef FAPIAO_ALERTING_NOTIFY_H
#define FAPIAO_ALERTING_NOTIFY_H

#include "fapiao/alerting.h"

#include <stdint.h>

typedef struct fp_amsg {
    char alertname[96], severity[4];
    int resolved, repeat, test;
    int64_t at_ms;
    char title[256];
    char text[4096]; /* markdown: Chinese first, then English */
    char json[4096]; /* the plain webhook's body */
} fp_amsg;

/* Fills m's title, text and json from the rule (NULL: the test message)
 * and its first instance (labels, value, since) of count. */
void fp_amsg_render(const fp_notify_conf *c, const fp_alert_rule *r, fp_amsg *m, const char *labels,
                    double value, int64_t since_ms, int count);

/* One delivery attempt: 0, or an FP_E… code with the reason (never the
 * URL: it holds the robot's token). */
int fp_amsg_send(const fp_notify_conf *c, const fp_receiver *r, const fp_amsg *m, fp_err *err);

#endif
