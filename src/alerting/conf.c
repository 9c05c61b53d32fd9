/* conf.c — the alerting file (docs/alerting.md "Configuration"):
 *
 *   [notify]
 *   interval = 5            seconds between samples and evaluations
 *   repeat-p1 = 900         seconds between repeats of a firing P1 (p2, p3)
 *   timeout = 5             seconds per delivery attempt
 *   attempts = 8            before a message is dropped
 *   instance = fapiao-1     names this server in messages
 *   runbook-base = https://wiki.example/fapiao/   prefix of kb/... links
 *   bridge-listen = 127.0.0.1:9097   Alertmanager's webhook in (bridge.c)
 *
 *   [receiver ops]
 *   type = dingtalk | feishu | wecom | webhook | email
 *   url = https://oapi.dingtalk.com/robot/send?access_token=…
 *   secret-file = /etc/fapiao/dingtalk.secret   (0600; first line)
 *   severities = P1,P2
 *   user / from / to        email only (to: a,b)
 *
 * A table of keys, not a chain of ifs.  Values are never printed: a robot
 * URL holds its access token. */
#include "fapiao/alerting.h"
#include "fapiao/keyfile.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_INT, K_STR } ktype;

typedef struct key {
    const char *section, *name;
    ktype type;
    size_t off, cap; /* in fp_notify_conf ([notify]) or fp_receiver */
    long min, max;
} key;

#define NOFF(f) offsetof(fp_notify_conf, f), sizeof(((fp_notify_conf *)0)->f)
#define ROFF(f) offsetof(fp_receiver, f), sizeof(((fp_receiver *)0)->f)
#define NREP(i) offsetof(fp_notify_conf, repeat_s) + (i) * sizeof(int), sizeof(int)

static const key keys[] = {
    {"notify", "interval", K_INT, NOFF(interval_s), 1, 300},
    {"notify", "repeat-p1", K_INT, NREP(0), 10, 7 * 86400},
    {"notify", "repeat-p2", K_INT, NREP(1), 10, 7 * 86400},
    {"notify", "repeat-p3", K_INT, NREP(2), 10, 7 * 86400},
    {"notify", "timeout", K_INT, NOFF(timeout_s), 1, 60},
    {"notify", "attempts", K_INT, NOFF(attempts), 1, 100},
    {"notify", "instance", K_STR, NOFF(instance), 0, 0},
    {"notify", "runbook-base", K_STR, NOFF(runbook_base), 0, 0},
    {"notify", "bridge-listen", K_STR, NOFF(bridge_listen), 0, 0},
    {"receiver", "url", K_STR, ROFF(url), 0, 0},
    {"receiver", "user", K_STR, ROFF(user), 0, 0},
    {"receiver", "from", K_STR, ROFF(from), 0, 0},
    {"receiver", "to", K_STR, ROFF(to), 0, 0},
    {"receiver", "severities", K_STR, ROFF(severities), 0, 0},
};

static const char *const kinds[] = {"dingtalk", "feishu", "wecom", "webhook", "email"};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static int read_secret(const char *path, fp_receiver *r, fp_err *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc =
        fp_keyfile_read(path, "告警接收方密钥文件", "receiver secret file", 4096, &data, &len, err);
    if (rc < 0)
        return rc;
    size_t n = strcspn((char *)data, "\r\n");
    if (n == 0 || n >= sizeof r->secret)
        rc = fp_fail(err, FP_EINVAL,
                     "%s: 密钥须为 1–255 字节的一行 / the secret must be one line "
                     "of 1-255 bytes",
                     path);
    else
        memcpy(r->secret, data, n), r->secret[n] = 0;
    fp_keyfile_wipe(data, len);
    return rc;
}

/* One "name = value" of section sec (r: the current receiver, or NULL). */
static int set_key(fp_notify_conf *c, fp_receiver *r, const char *sec, const char *name,
                   const char *val, fp_err *err)
{
    if (r && !strcmp(name, "type")) {
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            if (!strcmp(val, kinds[i])) {
                r->kind = (fp_rcv_kind)i;
                return 1;
            }
        return fp_fail(err, FP_EINVAL,
                       "type 须为 dingtalk/feishu/wecom/webhook/email / type must "
                       "be dingtalk, feishu, wecom, webhook or email");
    }
    if (r && !strcmp(name, "secret-file"))
        return read_secret(val, r, err) < 0 ? FP_EINVAL : 1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key *k = &keys[i];
        if (strcmp(k->section, sec) || strcmp(k->name, name))
            continue;
        char *base = r ? (char *)r : (char *)c;
        if (k->type == K_STR) {
            if (strlen(val) >= k->cap)
                return fp_fail(err, FP_EINVAL, "%s 过长 / %s is too long", name, name);
            memcpy(base + k->off, val, strlen(val) + 1);
            return 1;
        }
        char *end;
        long v = strtol(val, &end, 10);
        if (!*val || *end || v < k->min || v > k->max)
            return fp_fail(err, FP_EINVAL,
                           "%s 须为 %ld–%ld 的整数 / %s must be a whole number "
                           "%ld-%ld",
                           name, k->min, k->max, name, k->min, k->max);
        *(int *)(base + k->off) = (int)v;
        return 1;
    }
    return fp_fail(err, FP_EINVAL, "未知的键 %s / unknown key %s", name, name);
}

static void defaults(fp_notify_conf *c)
{
    memset(c, 0, sizeof *c);
    c->interval_s = 5;
    c->repeat_s[0] = 900;
    c->repeat_s[1] = 4 * 3600;
    c->repeat_s[2] = 24 * 3600;
    c->timeout_s = 5;
    c->attempts = 8;
    if (gethostname(c->instance, sizeof c->instance - 1) != 0)
        snprintf(c->instance, sizeof c->instance, "fapiao");
}

/* A [section] header: 0, or an error. */
static int section(fp_notify_conf *c, char *line, char *sec, size_t cap, fp_receiver **r,
                   fp_err *err)
{
    char *close = strchr(line, ']');
    if (!close)
        return fp_fail(err, FP_EINVAL, "节名缺少 ] / a section header lacks ]");
    *close = 0;
    char *name = trim(line + 1);
    *r = NULL;
    if (!strcmp(name, "notify")) {
        snprintf(sec, cap, "notify");
        return 0;
    }
    if (strncmp(name, "receiver ", 9) != 0)
        return fp_fail(err, FP_EINVAL,
                       "未知的节 [%s]（只有 [notify] 与 [receiver NAME]）/ unknown "
                       "section [%s] (only [notify] and [receiver NAME])",
                       name, name);
    if (c->nrcv == FP_NOTIFY_MAX_RECEIVERS)
        return fp_fail(err, FP_EINVAL, "接收方过多 / too many receivers");
    *r = &c->rcv[c->nrcv++];
    snprintf((*r)->name, sizeof(*r)->name, "%s", trim(name + 9));
    (*r)->kind = FP_RCV_WEBHOOK;
    snprintf(sec, cap, "receiver");
    return 0;
}

int fp_notify_conf_read(const char *path, fp_notify_conf *c, fp_err *err)
{
    defaults(c);
    FILE *f = fopen(path, "r");
    if (!f)
        return fp_fail(err, FP_EIO, "%s: 无法读取 / cannot read", path);
    char buf[2048], sec[16] = "";
    fp_receiver *r = NULL;
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(buf, sizeof buf, f)) {
        lineno++;
        char *line = trim(buf);
        if (!*line || *line == '#' || *line == ';')
            continue;
        fp_err e = {0};
        if (*line == '[') {
            rc = section(c, line, sec, sizeof sec, &r, &e);
        } else {
            char *eq = strchr(line, '=');
            if (!eq || !sec[0]) {
                rc = fp_fail(&e, FP_EINVAL,
                             "须为节内的 key = value / expected key = value "
                             "inside a section");
            } else {
                *eq = 0;
                rc = set_key(c, r, sec, trim(line), trim(eq + 1), &e);
                rc = rc < 0 ? rc : 0;
            }
        }
        if (rc < 0)
            fp_fail(err, rc, "%s:%d: %s", path, lineno, e.msg);
    }
    fclose(f);
    for (int i = 0; rc == 0 && i < c->nrcv; i++)
        if (!c->rcv[i].url[0])
            rc = fp_fail(err, FP_EINVAL, "%s: [receiver %s] 缺少 url / lacks url", path,
                         c->rcv[i].name);
    return rc;
}
