/* envelope.c — the tax platform's envelope (docs/upstream.md §1): the
 * request body is base64(SM4-ECB(JSON)), the answer is nested twice.
 *
 *   {"body": "<JSON text>", "httpStatusCode": "200"}
 *     body = {"Response": {"RequestId": "…", "Data": "<base64 SM4>"}}
 *          | {"Response": {"RequestId": "…", "Error": {"code": …, "Message": …}}}
 *     Data decrypts to {"returncode": "00", "returnmsg": "…", …}
 *
 * Every way an answer can fail ends as one fp_up_kind, so callers decide
 * on kinds (retry, dead letter, doctor finding), never on text.  The
 * platform's error codes are not public: an Error is classified by the
 * words of its Message (table `words`), checked against the official manual
 * before production; HTTP statuses say the rest (403 not registered, 429
 * rate limited, 5xx server).  The parser is a fuzz target
 * (fuzz/fuzz_upstream.c). */
#include "fapiao/json.h"
#include "fapiao/upstream.h"

#include <nettle/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

static const fp_up_kind_info kinds[FP_UP__COUNT] = {
    [FP_UP_OK] = {"OK", "成功", "OK", 1, 0},
    [FP_UP_CONNECT] = {"CONNECT", "无法连接税务平台（请求未发出）",
                       "cannot reach the tax platform (nothing was sent)", 0, 1},
    [FP_UP_IP_NOT_REGISTERED] = {"IP_NOT_REGISTERED", "本机出口 IP 未在乐企平台备案",
                                 "this host's outgoing IP address is not registered with the "
                                 "platform",
                                 0, 0},
    [FP_UP_KEY_WRONG] = {"KEY_WRONG", "SM4 密钥错误：报文无法解密",
                         "the SM4 key is wrong: messages do not decrypt", 0, 0},
    [FP_UP_UNIT_WRONG] = {"UNIT_WRONG", "平台编号（接入单位 / 使用单位）或能力编码不正确",
                          "the unit numbers (jrdwptbh / sydwptbh) or the ability code are wrong", 0,
                          0},
    [FP_UP_MAINTENANCE] = {"MAINTENANCE", "税务平台维护中", "the tax platform is under maintenance",
                           0, 1},
    [FP_UP_RATE_LIMITED] = {"RATE_LIMITED", "请求过于频繁，被平台限流",
                            "rate limited by the platform", 0, 1},
    [FP_UP_SERVER] = {"SERVER", "税务平台内部错误（5xx）", "the tax platform failed (5xx)", 1, 1},
    [FP_UP_TIMEOUT_UNKNOWN] = {"TIMEOUT_UNKNOWN", "请求已发出但未在时限内得到答复，结果未知",
                               "the request was sent but not answered in time: its outcome is "
                               "unknown",
                               1, 1},
    [FP_UP_PROTOCOL] = {"PROTOCOL", "税务平台的答复格式无法识别",
                        "the platform's answer is not shaped as expected", 1, 1},
    [FP_UP_REFUSED] = {"REFUSED", "税务平台拒绝了请求", "the platform refused the request", 0, 0},
    [FP_UP_NOT_FOUND] = {"NOT_FOUND", "税务平台未查到数据", "the platform found nothing", 0, 0},
    [FP_UP_LOCAL] = {"LOCAL", "本地错误（配置或内存）", "a local error (configuration or memory)",
                     0, 0},
};

const fp_up_kind_info *fp_up_kind_get(fp_up_kind k)
{
    if ((int)k < 0 || k >= FP_UP__COUNT)
        return &kinds[FP_UP_PROTOCOL];
    return &kinds[k];
}

/* An Error's Message → kind, first match wins (the codes are not public:
 * docs/upstream.md §2 lists the words to check against the manual). */
static const struct {
    const char *word;
    fp_up_kind kind;
} words[] = {
    {"备案", FP_UP_IP_NOT_REGISTERED}, {"白名单", FP_UP_IP_NOT_REGISTERED},
    {"解密", FP_UP_KEY_WRONG},         {"密钥", FP_UP_KEY_WRONG},
    {"平台编号", FP_UP_UNIT_WRONG},    {"接入单位", FP_UP_UNIT_WRONG},
    {"使用单位", FP_UP_UNIT_WRONG},    {"能力", FP_UP_UNIT_WRONG},
    {"维护", FP_UP_MAINTENANCE},       {"限流", FP_UP_RATE_LIMITED},
    {"频繁", FP_UP_RATE_LIMITED},
};

int fp_up_url(const fp_upstream_conf *c, const char *fwbm, char *out, size_t cap)
{
    size_t n = strlen(c->url);
    while (n && c->url[n - 1] == '/')
        n--;
    int w = snprintf(out, cap, "%.*s/access/%s/invoke/%s/%s", (int)n, c->url,
                     c->sandbox ? "newsandbox/v2" : "v2", c->nlbm ? c->nlbm : "202007", fwbm);
    return w < 0 || (size_t)w >= cap ? FP_ERANGE : 0;
}

int fp_up_seal(const uint8_t key[FP_SM4_KEY_LEN], const char *json, size_t len, char **b64,
               fp_err *err)
{
    uint8_t *ct;
    size_t ctlen;
    *b64 = NULL;
    int rc = fp_sm4_encrypt(key, json, len, &ct, &ctlen, err);
    if (rc)
        return rc;
    char *out = malloc(BASE64_ENCODE_RAW_LENGTH(ctlen) + 1);
    if (!out) {
        free(ct);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    base64_encode_raw(out, ctlen, ct);
    out[BASE64_ENCODE_RAW_LENGTH(ctlen)] = 0;
    free(ct);
    *b64 = out;
    return 0;
}

static fp_up_kind set(fp_up_result *res, fp_up_kind k, const char *msg)
{
    res->kind = k;
    if (msg && !res->message[0])
        snprintf(res->message, sizeof res->message, "%s", msg);
    return k;
}

/* A string or a number as text (the platform writes both). */
static const char *text_of(const cJSON *v, char *tmp, size_t cap)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v)) { /* a code or a status: a whole number */
        snprintf(tmp, cap, "%d", v->valueint);
        return tmp;
    }
    return NULL;
}

static fp_up_kind open_error(const cJSON *e, fp_up_result *res)
{
    char tmp[32];
    const char *code = text_of(cJSON_GetObjectItemCaseSensitive(e, "code"), tmp, sizeof tmp);
    if (!code)
        code = text_of(cJSON_GetObjectItemCaseSensitive(e, "Code"), tmp, sizeof tmp);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "Message");
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(e, "message");
    const char *msg = cJSON_IsString(m) ? m->valuestring : "";
    snprintf(res->code, sizeof res->code, "%s", code ? code : "");
    snprintf(res->message, sizeof res->message, "%s", msg);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(msg, words[i].word))
            return set(res, words[i].kind, NULL);
    return set(res, FP_UP_REFUSED, NULL);
}

/* Data: base64 SM4 → the data object with its returncode. */
static fp_up_kind open_data(const uint8_t *key, const char *b64, cJSON **data, fp_up_result *res)
{
    size_t n = strlen(b64);
    if (n > 2 * (size_t)FP_UP_MAX_BODY)
        return set(res, FP_UP_PROTOCOL, "Data is too large");
    uint8_t *ct = malloc(BASE64_DECODE_LENGTH(n) + 1);
    if (!ct)
        return set(res, FP_UP_LOCAL, "out of memory");
    struct base64_decode_ctx b;
    size_t ctlen = BASE64_DECODE_LENGTH(n);
    base64_decode_init(&b);
    if (!base64_decode_update(&b, &ctlen, ct, n, b64) || !base64_decode_final(&b)) {
        free(ct);
        return set(res, FP_UP_PROTOCOL, "Data is not base64");
    }
    uint8_t *pt;
    size_t ptlen;
    fp_err err = {0};
    int rc = fp_sm4_decrypt(key, ct, ctlen, &pt, &ptlen, &err);
    free(ct);
    if (rc)
        return set(res, rc == FP_ENOMEM ? FP_UP_LOCAL : FP_UP_KEY_WRONG, err.msg);
    fp_code jc;
    char detail[64];
    cJSON *d = fp_json_parse((const char *)pt, ptlen, MAX_DEPTH, &jc, detail, sizeof detail);
    free(pt);
    if (!d || !cJSON_IsObject(d)) {
        cJSON_Delete(d);
        /* a wrong key that happens to leave a valid padding byte */
        return set(res, FP_UP_KEY_WRONG, "Data decrypts to no JSON object (wrong key?)");
    }
    char tmp[32];
    const char *rcode = text_of(cJSON_GetObjectItemCaseSensitive(d, "returncode"), tmp, sizeof tmp);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "returnmsg");
    snprintf(res->code, sizeof res->code, "%s", rcode ? rcode : "");
    if (cJSON_IsString(m))
        snprintf(res->message, sizeof res->message, "%s", m->valuestring);
    *data = d;
    if (!rcode || !strcmp(rcode, "00"))
        return set(res, FP_UP_OK, NULL); /* some answers carry no returncode */
    if (!strcmp(rcode, "01"))
        return set(res, FP_UP_NOT_FOUND, NULL);
    return set(res, FP_UP_REFUSED, NULL);
}

/* An HTTP status other than 200, with no envelope to say more. */
static fp_up_kind by_status(int status, fp_up_result *res)
{
    char msg[64];
    snprintf(msg, sizeof msg, "HTTP %d", status);
    if (status == 403)
        return set(res, FP_UP_IP_NOT_REGISTERED, msg);
    if (status == 429)
        return set(res, FP_UP_RATE_LIMITED, msg);
    if (status >= 500)
        return set(res, FP_UP_SERVER, msg);
    return set(res, FP_UP_PROTOCOL, msg);
}

fp_up_kind fp_up_open(const uint8_t key[FP_SM4_KEY_LEN], int http_status, const char *body,
                      size_t len, cJSON **data, fp_up_result *res)
{
    *data = NULL;
    memset(res, 0, sizeof *res);
    res->http_status = http_status;
    if (len > 2 * (size_t)FP_UP_MAX_BODY)
        return set(res, FP_UP_PROTOCOL, "answer too large");
    fp_code jc;
    char detail[64];
    cJSON *outer = len ? fp_json_parse(body, len, MAX_DEPTH, &jc, detail, sizeof detail) : NULL;
    cJSON *inner = NULL;
    const cJSON *resp = NULL;
    if (cJSON_IsObject(outer)) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(outer, "body");
        char tmp[32];
        const char *hs =
            text_of(cJSON_GetObjectItemCaseSensitive(outer, "httpStatusCode"), tmp, sizeof tmp);
        char *end = NULL;
        long st = hs ? strtol(hs, &end, 10) : 0;
        if (hs && end != hs && *end == '\0' && st > 0 && st < 1000 && http_status == 200)
            res->http_status = http_status = (int)st;
        if (cJSON_IsString(b))
            inner = fp_json_parse(b->valuestring, strlen(b->valuestring), MAX_DEPTH, &jc, detail,
                                  sizeof detail);
        resp = cJSON_GetObjectItemCaseSensitive(inner ? inner : outer, "Response");
    }
    fp_up_kind k;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "Error");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(resp, "Data");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(resp, "RequestId");
    if (cJSON_IsString(rid))
        snprintf(res->request_id, sizeof res->request_id, "%s", rid->valuestring);
    if (cJSON_IsObject(e))
        k = open_error(e, res);
    else if (http_status != 200)
        k = by_status(http_status, res);
    else if (cJSON_IsString(d))
        k = open_data(key, d->valuestring, data, res);
    else
        k = set(res, FP_UP_PROTOCOL,
                resp ? "Response has neither Data nor Error"
                     : "the answer is not the platform's envelope");
    /* a 403 / 429 / 5xx is what it says even when an Error came with it */
    if (k == FP_UP_REFUSED && http_status != 200 && by_status(http_status, res) != FP_UP_PROTOCOL)
        k = res->kind;
    else
        res->kind = k;
    cJSON_Delete(inner);
    cJSON_Delete(outer);
    return k;
}
