/* notify_send.c — a message in each receiver's wire format, over libcurl
 * (docs/alerting.md "Receivers"):
 *
 *   dingtalk  POST {"msgtype":"markdown","markdown":{"title","text"}} to the
 *             robot URL, + &timestamp=…&sign=… when a secret is set
 *   feishu    POST {"timestamp","sign","msg_type":"text","content":{"text"}}
 *   wecom     POST {"msgtype":"markdown","markdown":{"content"}}
 *   webhook   POST the alert as JSON (m->json)
 *   email     SMTP: a text/plain UTF-8 mail, the subject RFC 2047-encoded
 *
 * The robots answer 200 with an error code in the body when they refuse
 * (bad signature, keyword missing): errcode/code other than 0 is a
 * failure.  Text is Chinese first, then English. */
#include "notify.h"

#include "fapiao/clock.h"
#include "fapiao/crypto.h"
#include "fapiao/json.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* s with {{ $labels.NAME }} replaced: instance by the configured name,
 * others from the series labels. */
static void subst(const char *s, const char *instance, const char *labels, char *out, size_t cap)
{
    size_t o = 0;
    while (*s && o + 1 < cap) {
        const char *b = strstr(s, "{{ $labels.");
        if (!b) {
            o += (size_t)snprintf(out + o, cap - o, "%s", s);
            break;
        }
        o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)(b - s), s);
        const char *name = b + 11, *e = strstr(name, " }}");
        if (!e || o >= cap)
            break;
        char lbl[64], val[512] = "";
        snprintf(lbl, sizeof lbl, "%.*s", (int)(e - name), name);
        if (!strcmp(lbl, "instance"))
            snprintf(val, sizeof val, "%s", instance);
        else
            fp_ahist_label(labels, lbl, val, sizeof val);
        o += (size_t)snprintf(out + o, cap - o, "%s", val);
        s = e + 3;
    }
    out[o < cap ? o : cap - 1] = 0;
}

static void cst_time(int64_t ms, char *out, size_t cap)
{
    struct tm tm;
    fp_cst_tm(ms / 1000, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

void fp_amsg_render(const fp_notify_conf *c, const fp_alert_rule *r, fp_amsg *m, const char *labels,
                    double value, int64_t since_ms, int count)
{
    char zh[512], en[512], since[32], at[32];
    cst_time(since_ms, since, sizeof since);
    cst_time(m->at_ms, at, sizeof at);
    if (!r) {
        snprintf(m->title, sizeof m->title, "fapiao 告警测试 / alert test");
        snprintf(m->text, sizeof m->text,
                 "### 【测试】fapiao 告警通知测试\n\n实例 %s 的告警通知可以送达本接收方。\n\n"
                 "fapiao alert test: notifications from %s reach this receiver.\n\n"
                 "- 时间 / at: %s（北京时间 / CST）\n",
                 c->instance, c->instance, at);
        snprintf(m->json, sizeof m->json,
                 "{\"status\":\"test\",\"alertname\":\"FapiaoTestMessage\",\"instance\":\"%s\"}",
                 c->instance);
        return;
    }
    subst(r->summary_zh, c->instance, labels, zh, sizeof zh);
    subst(r->summary_en, c->instance, labels, en, sizeof en);
    const char *st_zh = m->resolved ? "已恢复" : m->repeat ? "仍在告警" : "告警";
    const char *st_en = m->resolved ? "RESOLVED" : m->repeat ? "STILL FIRING" : "FIRING";
    const char *code = strrchr(r->runbook, '/') ? strrchr(r->runbook, '/') + 1 : r->runbook;
    /* `fapiao kb show` knows the articles directly under kb/ only */
    int kb_cmd = strchr(r->runbook + 3, '/') == NULL;
    snprintf(m->title, sizeof m->title, "【%s %s / %s】%s", r->severity, st_zh, st_en, r->name);
    snprintf(m->text, sizeof m->text,
             "### 【%s %s / %s】%s\n\n**%s**\n\n%s\n\n"
             "- 实例 / instance: %s\n- 开始 / since: %s（北京时间 / CST）\n"
             "- 当前值 / value: %g\n- 受影响序列 / series: %d\n"
             "- 处置手册 / runbook: %s%s%s%.*s%s\n",
             r->severity, st_zh, st_en, r->name, zh, en, c->instance, since, value, count,
             c->runbook_base, r->runbook, kb_cmd ? "（`fapiao kb show " : "",
             kb_cmd ? (int)strcspn(code, ".") : 0, code, kb_cmd ? "`）" : "");
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, sizeof m->json);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "status", m->resolved ? "resolved" : "firing");
    fp_jw_kstr(&w, "alertname", r->name);
    fp_jw_kstr(&w, "severity", r->severity);
    fp_jw_kstr(&w, "instance", c->instance);
    fp_jw_kstr(&w, "summary_zh", zh);
    fp_jw_kstr(&w, "summary_en", en);
    fp_jw_kstr(&w, "runbook", r->runbook);
    fp_jw_kstr(&w, "labels", labels);
    fp_jw_kint(&w, "starts_at_ms", since_ms);
    fp_jw_kint(&w, "count", count);
    fp_jw_obj_close(&w);
    size_t n;
    char *json = fp_buf_take(&b, &n);
    snprintf(m->json, sizeof m->json, "%s", json ? json : "{}");
    free(json);
}

/* The robot's body (and the URL suffix a DingTalk signature adds). */
static int robot_body(const fp_receiver *r, const fp_amsg *m, fp_buf *b, char *suffix, size_t cap)
{
    fp_jw w;
    fp_jw_start(&w, b, 16384);
    fp_jw_obj_open(&w);
    suffix[0] = 0;
    switch (r->kind) {
    case FP_RCV_DINGTALK:
        if (r->secret[0])
            fp_dingtalk_sign(r->secret, fp_wall_ms(), suffix, cap);
        fp_jw_kstr(&w, "msgtype", "markdown");
        fp_jw_key(&w, "markdown");
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "title", m->title);
        fp_jw_kstr(&w, "text", m->text);
        fp_jw_obj_close(&w);
        break;
    case FP_RCV_FEISHU: {
        if (r->secret[0]) {
            char sig[64], ts[32];
            int64_t now = fp_wall_ms() / 1000;
            fp_feishu_sign(r->secret, now, sig, sizeof sig);
            snprintf(ts, sizeof ts, "%" PRId64, now);
            fp_jw_kstr(&w, "timestamp", ts);
            fp_jw_kstr(&w, "sign", sig);
        }
        fp_jw_kstr(&w, "msg_type", "text");
        fp_jw_key(&w, "content");
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "text", m->text);
        fp_jw_obj_close(&w);
        break;
    }
    case FP_RCV_WECOM:
        fp_jw_kstr(&w, "msgtype", "markdown");
        fp_jw_key(&w, "markdown");
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "content", m->text);
        fp_jw_obj_close(&w);
        break;
    default:
        break;
    }
    fp_jw_obj_close(&w);
    return 0;
}

typedef struct resp {
    char body[2048];
    size_t n;
} resp;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    resp *r = arg;
    size_t n = size * nmemb, room = sizeof r->body - 1 - r->n;
    memcpy(r->body + r->n, p, n < room ? n : room);
    r->n += n < room ? n : room;
    r->body[r->n] = 0;
    return size * nmemb;
}

/* A robot's answer: errcode (DingTalk, WeCom) or code (Feishu) not 0. */
static int robot_refused(const char *body, long *code)
{
    cJSON *j = cJSON_Parse(body);
    if (!j)
        return 0;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "errcode");
    if (!cJSON_IsNumber(c))
        c = cJSON_GetObjectItemCaseSensitive(j, "code");
    int bad = cJSON_IsNumber(c) && c->valuedouble != 0;
    *code = bad ? (long)c->valuedouble : 0;
    cJSON_Delete(j);
    return bad;
}

static int post_json(const fp_notify_conf *c, const fp_receiver *r, const char *url,
                     const char *body, fp_err *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return fp_fail(err, FP_ENOMEM, "curl_easy_init");
    struct curl_slist *hdr =
        curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
    resp rs = {.n = 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rs);
    CURLcode cc = curl_easy_perform(h);
    long status = 0, code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK)
        return fp_fail(err, FP_EIO, "%s", curl_easy_strerror(cc));
    if (status < 200 || status > 299)
        return fp_fail(err, FP_EIO, "HTTP %ld", status);
    if (r->kind != FP_RCV_WEBHOOK && robot_refused(rs.body, &code))
        return fp_fail(err, FP_EIO, "机器人拒绝 / the robot refused: code %ld", code);
    return 0;
}

typedef struct mail {
    char *data;
    size_t len, off;
} mail;

static size_t mail_read(char *p, size_t size, size_t nmemb, void *arg)
{
    mail *m = arg;
    size_t n = size * nmemb, left = m->len - m->off;
    n = n < left ? n : left;
    memcpy(p, m->data + m->off, n);
    m->off += n;
    return n;
}

static int send_mail(const fp_notify_conf *c, const fp_receiver *r, const fp_amsg *m, fp_err *err)
{
    char subj[512];
    fp_buf b;
    fp_buf_init(&b, 16384);
    fp_b64url_encode((const unsigned char *)m->title, strlen(m->title), subj);
    for (char *p = subj; *p; p++)
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    size_t sl = strlen(subj);
    while (sl % 4)
        subj[sl++] = '=';
    subj[sl] = 0;
    fp_buf_printf(&b,
                  "From: %s\r\nTo: %s\r\nSubject: =?UTF-8?B?%s?=\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n",
                  r->from, r->to, subj);
    for (const char *p = m->text; *p; p++)
        fp_buf_puts(&b, *p == '\n' ? "\r\n" : (char[]){*p, 0});
    fp_buf_puts(&b, "\r\n");
    mail ml = {.off = 0};
    ml.data = fp_buf_take(&b, &ml.len);
    CURL *h = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    char to[sizeof r->to];
    snprintf(to, sizeof to, "%s", r->to);
    for (char *save, *t = strtok_r(to, ",", &save); t; t = strtok_r(NULL, ",", &save))
        rcpt = curl_slist_append(rcpt, t);
    if (!h || !ml.data) {
        free(ml.data);
        curl_slist_free_all(rcpt);
        curl_easy_cleanup(h);
        return fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
    }
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, r->from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    if (r->user[0]) {
        curl_easy_setopt(h, CURLOPT_USERNAME, r->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, r->secret);
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    }
    curl_easy_setopt(h, CURLOPT_READFUNCTION, mail_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &ml);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    free(ml.data);
    return cc == CURLE_OK ? 0 : fp_fail(err, FP_EIO, "SMTP: %s", curl_easy_strerror(cc));
}

int fp_amsg_send(const fp_notify_conf *c, const fp_receiver *r, const fp_amsg *m, fp_err *err)
{
    if (r->kind == FP_RCV_EMAIL)
        return send_mail(c, r, m, err);
    if (r->kind == FP_RCV_WEBHOOK)
        return post_json(c, r, r->url, m->json, err);
    fp_buf b;
    char suffix[256], url[sizeof r->url + sizeof suffix];
    robot_body(r, m, &b, suffix, sizeof suffix);
    if (suffix[0] && !strchr(r->url, '?'))
        suffix[0] = '?';
    snprintf(url, sizeof url, "%s%s", r->url, suffix);
    size_t n;
    char *body = fp_buf_take(&b, &n);
    if (!body)
        return fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
    int rc = post_json(c, r, url, body, err);
    free(body);
    return rc;
}
