/* bridge.c — Alertmanager's webhook to the Chinese robots
 * (docs/alerting.md "Alertmanager bridge").  Alertmanager has no DingTalk
 * or Feishu integration and cannot sign their requests; with
 * `bridge-listen = 127.0.0.1:PORT` in [notify], fapiao listens there for
 * Alertmanager's webhook (POST, its JSON payload, version 4) and forwards
 * each notification, signed, to every robot receiver (dingtalk, feishu,
 * wecom) whose severities take the alerts' severity label.
 *
 * Why its own listener, loopback only and plain HTTP: the API port's
 * routes are for invoicing clients with credentials, which Alertmanager
 * does not have; a listener only this host reaches needs none (run
 * Alertmanager on the same host, or put a tunnel in front).  The answer is
 * 200 when every robot took the message, else 502, so Alertmanager retries.
 * A body is at most 1 MiB. */
#include "notify.h"

#include "fapiao/json.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (1u << 20)

struct fp_abridge {
    const fp_notify_conf *c;
    struct MHD_Daemon *d;
    int port;
};

typedef struct upload {
    fp_buf b;
} upload;

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The notification as one message: the first alert's severity, a line
 * pair (zh, en) per alert. */
static int render(const fp_notify_conf *c, const cJSON *doc, fp_amsg *m)
{
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(doc, "alerts");
    const cJSON *first = cJSON_IsArray(alerts) ? cJSON_GetArrayItem(alerts, 0) : NULL;
    if (!first)
        return -1;
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(first, "labels");
    const char *status = jstr(doc, "status"), *sev = jstr(fl, "severity");
    int resolved = !strcmp(status, "resolved");
    memset(m, 0, sizeof *m);
    snprintf(m->alertname, sizeof m->alertname, "%s", jstr(fl, "alertname"));
    snprintf(m->severity, sizeof m->severity, "%s", sev[0] ? sev : "P3");
    m->resolved = resolved;
    snprintf(m->title, sizeof m->title, "【%s %s / %s】%s（%d）", m->severity,
             resolved ? "已恢复" : "告警", resolved ? "RESOLVED" : "FIRING", m->alertname,
             cJSON_GetArraySize(alerts));
    size_t o = (size_t)snprintf(m->text, sizeof m->text, "### %s\n\n", m->title);
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
    {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(a, "labels");
        const cJSON *an = cJSON_GetObjectItemCaseSensitive(a, "annotations");
        if (o >= sizeof m->text)
            break;
        o += (size_t)snprintf(m->text + o, sizeof m->text - o,
                              "- **%s** %s\n  %s\n  实例 / instance: %s；状态 / status: %s；"
                              "处置手册 / runbook: %s%s\n",
                              jstr(l, "alertname"), jstr(an, "summary_zh"), jstr(an, "summary_en"),
                              jstr(l, "instance"), jstr(a, "status"), c->runbook_base,
                              jstr(an, "runbook"));
    }
    return 0;
}

/* Forwards to every robot that takes the severity: the number that failed
 * (or -1 when none takes it). */
static int forward(const fp_notify_conf *c, const fp_amsg *m)
{
    int robots = 0, failed = 0;
    for (int i = 0; i < c->nrcv; i++) {
        const fp_receiver *r = &c->rcv[i];
        if (r->kind > FP_RCV_WECOM || (r->severities[0] && !strstr(r->severities, m->severity)))
            continue;
        robots++;
        fp_err err = {0};
        if (fp_amsg_send(c, r, m, &err) < 0) {
            failed++;
            fprintf(stderr, "fapiao: 桥接转发失败 / bridge forward failed: receiver %s: %s\n",
                    r->name, err.msg);
        }
    }
    return robots ? failed : -1;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    (void)url;
    (void)version;
    fp_abridge *b = cls;
    if (strcmp(method, "POST") != 0)
        return answer(conn, 405, "POST Alertmanager's webhook payload here\n");
    upload *u = *ctx;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        fp_buf_init(&u->b, MAX_BODY);
        *ctx = u;
        return MHD_YES;
    }
    if (*size) {
        fp_buf_append(&u->b, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (u->b.overflow)
        return answer(conn, 413, "body over 1 MiB\n");
    cJSON *doc = cJSON_ParseWithLength(u->b.p ? u->b.p : "", u->b.len);
    fp_amsg *m = calloc(1, sizeof *m);
    int rc = doc && m ? render(b->c, doc, m) : -1;
    enum MHD_Result res;
    if (rc < 0) {
        res = answer(conn, 400, "not an Alertmanager webhook payload\n");
    } else {
        int failed = forward(b->c, m);
        res = failed == 0  ? answer(conn, 200, "forwarded\n")
              : failed < 0 ? answer(conn, 200, "no robot takes this severity\n")
                           : answer(conn, 502, "a robot did not take it\n");
    }
    free(m);
    cJSON_Delete(doc);
    return res;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **ctx,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)conn;
    (void)why;
    upload *u = *ctx;
    if (u) {
        fp_buf_free(&u->b);
        free(u);
    }
    *ctx = NULL;
}

int fp_abridge_start(const fp_notify_conf *c, fp_abridge **out, fp_err *err)
{
    char host[64];
    int port = 0;
    *out = NULL;
    const char *colon = strrchr(c->bridge_listen, ':');
    struct sockaddr_in sin = {.sin_family = AF_INET};
    if (!colon || (size_t)(colon - c->bridge_listen) >= sizeof host ||
        sscanf(colon + 1, "%d", &port) != 1 || port < 0 || port > 65535)
        return fp_fail(err, FP_EINVAL,
                       "bridge-listen 须为 127.x.x.x:PORT / bridge-listen must be "
                       "127.x.x.x:PORT");
    snprintf(host, sizeof host, "%.*s", (int)(colon - c->bridge_listen), c->bridge_listen);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || (ntohl(sin.sin_addr.s_addr) >> 24) != 127)
        return fp_fail(err, FP_EINVAL,
                       "桥接只监听回环地址 / the bridge listens on loopback only "
                       "(127.0.0.0/8), not '%s'",
                       host);
    sin.sin_port = htons((uint16_t)port);
    fp_abridge *b = calloc(1, sizeof *b);
    if (!b)
        return fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
    b->c = c;
    b->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, on_request,
        b, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_NOTIFY_COMPLETED, on_done, b,
        MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!b->d) {
        free(b);
        return fp_fail(err, FP_EIO, "无法监听 / cannot listen on %s", c->bridge_listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(b->d, MHD_DAEMON_INFO_BIND_PORT);
    b->port = di ? di->port : port;
    *out = b;
    return 0;
}

int fp_abridge_port(const fp_abridge *b)
{
    return b ? b->port : 0;
}

void fp_abridge_stop(fp_abridge *b)
{
    if (!b)
        return;
    MHD_stop_daemon(b->d);
    free(b);
}
