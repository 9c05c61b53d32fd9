/* client.c — libfapiao-client's calls: the address list with its health
 * memory and breakers, the token, and the retry loop that drives one call
 * through attempts (transport.c) under the policy of retry.c.  The contract
 * is in include/fapiao-client/client.h; docs/client.md says how to use it. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void breaker_quiet(const fp_breaker *b, fp_breaker_state from, fp_breaker_state to,
                          void *arg)
{
    (void)b, (void)from, (void)to, (void)arg; /* a library prints nothing */
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void defaults(fpc_opts *o)
{
    static const struct {
        size_t off;
        int def;
    } ints[] = {
        {offsetof(fpc_opts, connect_timeout_ms), 3000},
        {offsetof(fpc_opts, tls_timeout_ms), 5000},
        {offsetof(fpc_opts, first_byte_timeout_ms), 15000},
        {offsetof(fpc_opts, total_timeout_ms), 30000},
        {offsetof(fpc_opts, deadline_ms), 120000},
        {offsetof(fpc_opts, backoff_base_ms), 100},
        {offsetof(fpc_opts, backoff_cap_ms), 10000},
        {offsetof(fpc_opts, skip_ms), 30000},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int *v = (int *)((char *)o + ints[i].off);
        if (*v <= 0)
            *v = ints[i].def;
    }
}

static int parse_servers(fpc_client *c, fpc_error *err)
{
    char *save = NULL;
    for (char *s = strtok_r(c->servers, ", ", &save); s; s = strtok_r(NULL, ", ", &save)) {
        size_t len = strlen(s);
        while (len && s[len - 1] == '/')
            s[--len] = '\0';
        if (c->n == FPC_MAX_ADDRS || len == 0 || len >= sizeof c->a[0].base ||
            (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
            fpc_error_set(err, FPC_EINVAL, "INVALID_ARGUMENT",
                          "服务器地址须为 1 到 8 个 https://主机:端口，以逗号分隔",
                          "servers must be 1 to 8 https://host:port, comma-separated");
            return FPC_EINVAL;
        }
        fpc_addr *a = &c->a[c->n++];
        memcpy(a->base, s, len + 1);
        fp_breaker_init(&a->br, a->base,
                        &(fp_breaker_opts){.consecutive = 3,
                                           .open_ms = 1000,
                                           .max_open_ms = 30000,
                                           .on_change = breaker_quiet});
    }
    if (c->n == 0) {
        fpc_error_set(err, FPC_EINVAL, "INVALID_ARGUMENT", "缺少服务器地址", "no server given");
        return FPC_EINVAL;
    }
    return 0;
}

int fpc_client_new(const fpc_opts *opts, fpc_client **out, fpc_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    if (!opts || !opts->servers || !opts->client_id || !opts->client_secret) {
        fpc_error_set(err, FPC_EINVAL, "INVALID_ARGUMENT", "须给出服务器地址与客户端凭据",
                      "servers and the client credential are required");
        return FPC_EINVAL;
    }
    fpc_client *c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    c->o = *opts;
    defaults(&c->o);
    c->servers = strdup(opts->servers);
    c->client_id = strdup(opts->client_id);
    c->client_secret = strdup(opts->client_secret);
    c->cacert = dup_or_null(opts->cacert);
    c->pin = dup_or_null(opts->pinned_pubkey);
    c->ua = strdup(opts->user_agent ? opts->user_agent : "");
    if (!c->servers || !c->client_id || !c->client_secret || !c->ua ||
        (opts->cacert && !c->cacert) || (opts->pinned_pubkey && !c->pin))
        goto nomem;
    c->o.servers = c->servers, c->o.client_id = c->client_id;
    c->o.client_secret = c->client_secret, c->o.cacert = c->cacert;
    c->o.pinned_pubkey = c->pin, c->o.user_agent = c->ua;
    c->rng = opts->seed
                 ? opts->seed
                 : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)fpc_now_ms();
    int rc = parse_servers(c, err);
    if (rc < 0) {
        fpc_client_free(c);
        return rc;
    }
    if (!(c->h = curl_easy_init()))
        goto nomem;
    if (fpc_transport_init(c) < 0) {
        fpc_client_free(c);
        fpc_error_set(err, FPC_EINVAL, "INVALID_ARGUMENT", "libcurl 不支持所给选项（如证书锁定）",
                      "libcurl refuses an option given (certificate pinning, …)");
        return FPC_EINVAL;
    }
    *out = c;
    return 0;
nomem:
    fpc_client_free(c);
    fpc_error_set(err, FPC_ENOMEM, "NO_MEMORY", "内存不足", "out of memory");
    return FPC_ENOMEM;
}

void fpc_client_free(fpc_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        fp_breaker_destroy(&c->a[i].br);
    if (c->h)
        curl_easy_cleanup(c->h);
    fpc_transport_free(c);
    free(c->servers), free(c->client_id), free(c->client_secret);
    free(c->cacert), free(c->pin), free(c->ua);
    free(c);
}

void fpc_result_free(fpc_result *r)
{
    if (r) {
        free(r->body);
        memset(r, 0, sizeof *r);
    }
}

/* When address i's breaker lets a call through (now or later); no side
 * effect. */
static int64_t breaker_at(fpc_client *c, int i, int64_t now)
{
    int64_t at = 0;
    fp_breaker_state st;
    fp_breaker_snapshot(&c->a[i].br, now, &st, &at, NULL);
    return st == FP_BREAKER_OPEN && at > now ? at : now;
}

/* The address for the next attempt: the preferred one, then the others in
 * order, first those not remembered as failed (health memory), then the
 * remembered ones, the one that failed longest ago first; never one whose
 * breaker is open.  When every breaker is open, -1 with *wait_ms until the
 * first lets a probe through. */
static int pick_address(fpc_client *c, int64_t now, int64_t *wait_ms)
{
    int64_t soonest = INT64_MAX;
    int order[FPC_MAX_ADDRS], n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < c->n; k++) {
            int i = (c->preferred + k) % c->n;
            if ((c->a[i].skip_until_ms > now) == pass)
                order[n++] = i;
        }
    for (int x = c->n; x-- > 0;) /* the remembered ones: soonest back first (insertion sort) */
        for (int y = x + 1; y < n && c->a[order[y]].skip_until_ms > now &&
                            c->a[order[y]].skip_until_ms < c->a[order[y - 1]].skip_until_ms;
             y++) {
            int t = order[y];
            order[y] = order[y - 1], order[y - 1] = t;
        }
    for (int k = 0; k < n; k++) {
        int i = order[k];
        int64_t at = breaker_at(c, i, now);
        if (at <= now && fp_breaker_allow(&c->a[i].br, now, NULL))
            return i;
        if (at <= now) /* half-open, its probe out: soon */
            at = now + c->o.backoff_base_ms;
        if (at < soonest)
            soonest = at;
    }
    *wait_ms = soonest - now > 0 ? soonest - now : 1;
    return -1;
}

/* 1 when an address other than ai is neither remembered as failed nor
 * behind an open breaker: try it at once */
static int other_available(fpc_client *c, int ai, int64_t now)
{
    for (int i = 0; i < c->n; i++)
        if (i != ai && c->a[i].skip_until_ms <= now && breaker_at(c, i, now) <= now)
            return 1;
    return 0;
}

/* After an attempt on address i (its breaker allowed it): its health.  A
 * connection failure and a 5xx count against it (it is skipped for
 * skip_ms); any other answer shows it alive. */
static void record_health(fpc_client *c, int i, const fpc_attempt *at)
{
    int64_t now = fpc_now_ms();
    int bad = at->status == 0 || at->status >= 500;
    fp_breaker_record(&c->a[i].br, now, !bad);
    if (bad)
        c->a[i].skip_until_ms = now + c->o.skip_ms;
    else {
        c->a[i].skip_until_ms = 0;
        c->preferred = i;
    }
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

typedef struct call {
    fpc_kind kind;
    fpc_attempt at;
    int64_t deadline;
    int refreshed, backoffs;
    unsigned tls_bad; /* addresses whose certificate or key was refused in this call */
} call;

static int run(fpc_client *c, call *k, fpc_error *err);

/* POST /v1/token: a fresh token, refreshed at 90 % of its life (at most
 * 60 s before it ends). */
static int fetch_token(fpc_client *c, int64_t deadline, fpc_error *err)
{
    cJSON *req = cJSON_CreateObject();
    if (!req || !cJSON_AddStringToObject(req, "client_id", c->client_id) ||
        !cJSON_AddStringToObject(req, "client_secret", c->client_secret)) {
        cJSON_Delete(req);
        fpc_error_set(err, FPC_ENOMEM, "NO_MEMORY", "内存不足", "out of memory");
        return FPC_ENOMEM;
    }
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!body) {
        fpc_error_set(err, FPC_ENOMEM, "NO_MEMORY", "内存不足", "out of memory");
        return FPC_ENOMEM;
    }
    /* the exchange creates nothing: as safe to repeat as a read */
    call k = {.kind = FPC_KIND_GET, .deadline = deadline, .refreshed = 1};
    k.at.method = "POST", k.at.path = "/v1/token", k.at.body = body, k.at.len = strlen(body);
    int rc = run(c, &k, err);
    free(body);
    if (rc == 0) {
        cJSON *doc = cJSON_Parse(k.at.buf);
        cJSON *tok = cJSON_GetObjectItemCaseSensitive(doc, "access_token");
        cJSON *ttl = cJSON_GetObjectItemCaseSensitive(doc, "expires_in");
        if (cJSON_IsString(tok) && strlen(tok->valuestring) < sizeof c->token) {
            int64_t life = cJSON_IsNumber(ttl) && ttl->valuedouble > 0
                               ? (int64_t)ttl->valuedouble * 1000
                               : 300000;
            int64_t margin = life / 10 < 60000 ? life / 10 : 60000, now = fpc_now_ms();
            snprintf(c->token, sizeof c->token, "%s", tok->valuestring);
            c->token_expiry_ms = now + life;
            c->token_refresh_ms = now + life - margin;
        } else {
            fpc_error_set(err, FPC_EREJECTED, "BAD_TOKEN_ANSWER", "令牌应答无法解析",
                          "the token answer cannot be read");
            rc = FPC_EREJECTED;
        }
        cJSON_Delete(doc);
    }
    fpc_attempt_reset(&k.at);
    return rc;
}

static int give_up(fpc_client *c, call *k, int ai, const char *code, const char *zh, const char *en,
                   fpc_error *err)
{
    if (k->at.status || k->at.code[0]) /* the last real outcome says most */
        fpc_error_from_attempt(err, FPC_EUNAVAILABLE, &k->at, ai >= 0 ? c->a[ai].base : "");
    else
        fpc_error_set(err, FPC_EUNAVAILABLE, code, zh, en);
    if (k->at.status || k->at.code[0]) {
        char why[96];
        snprintf(why, sizeof why, " (%s)", en);
        strncat(err->message, why, sizeof err->message - strlen(err->message) - 1);
    }
    if (k->at.status == 0 && ai >= 0 && c->o.diagnose)
        c->o.diagnose(c->a[ai].base, c->o.cacert, err, c->o.diagnose_arg);
    return FPC_EUNAVAILABLE;
}

/* The loop of one call: token, address, attempt, verdict, wait. */
static int run(fpc_client *c, call *k, fpc_error *err)
{
    int ai = -1;
    for (;;) {
        int64_t now = fpc_now_ms(), wait = 0;
        if (c->o.max_attempts > 0 && err->attempts >= c->o.max_attempts)
            return give_up(c, k, ai, "ATTEMPTS", "重试次数已用完", "attempts used up", err);
        if (now >= k->deadline)
            return give_up(c, k, ai, "DEADLINE", "已到截止时间", "deadline passed", err);
        if (k->at.auth && (!c->token[0] || now >= c->token_refresh_ms)) {
            int rc = fetch_token(c, k->deadline, err);
            if (rc < 0)
                return rc;
            continue;
        }
        int next = pick_address(c, now, &wait);
        if (next < 0) {
            if (now + wait >= k->deadline)
                return give_up(c, k, ai, "BREAKER_OPEN", "所有服务器地址暂不可用",
                               "every server address is out for now", err);
            sleep_ms(wait);
            continue;
        }
        ai = next;
        err->attempts++;
        fpc_attempt_run(c, ai, &k->at);
        record_health(c, ai, &k->at);
        if (k->at.tls_verify)
            k->tls_bad |= 1u << ai;
        fpc_verdict v =
            fpc_classify(k->kind, k->at.status, k->at.sent, k->at.problem, k->refreshed);
        if (k->at.tls_verify && k->tls_bad == (1u << c->n) - 1)
            v = FPC_FAIL; /* every address's certificate was refused: no wait fixes that */
        if (v == FPC_DONE)
            return 0;
        if (v == FPC_FAIL) {
            /* a key that does not match the pin is no outage: only a new pin
             * (or the right server) fixes it, and the doctor cannot tell more */
            int pin = strcmp(k->at.code, "PIN_MISMATCH") == 0;
            fpc_error_from_attempt(err, k->at.status || pin ? FPC_EREJECTED : FPC_EUNAVAILABLE,
                                   &k->at, c->a[ai].base);
            if (k->at.status == 0 && !pin && c->o.diagnose)
                c->o.diagnose(c->a[ai].base, c->o.cacert, err, c->o.diagnose_arg);
            return err->rc;
        }
        if (v == FPC_REFRESH) {
            k->refreshed = 1;
            c->token[0] = '\0';
            continue;
        }
        /* FPC_RETRY: another healthy address is tried at once after a
         * connection failure; otherwise back off */
        now = fpc_now_ms();
        if (k->at.status == 0 && other_available(c, ai, now))
            continue;
        wait = fpc_retry_wait_ms(k->backoffs++, k->at.retry_after, c->o.backoff_base_ms,
                                 c->o.backoff_cap_ms, &c->rng);
        if (now + wait >= k->deadline)
            return give_up(c, k, ai, "DEADLINE", "重试等待将超过截止时间",
                           "the next wait would pass the deadline", err);
        sleep_ms(wait);
    }
}

static int valid_serial(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("_.:-", s[i])))
            return 0;
    return 1;
}

/* A call from the public entry points: err always set, the result filled. */
static int do_call(fpc_client *c, call *k, fpc_result *res, fpc_error *err)
{
    fpc_error local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    if (res)
        memset(res, 0, sizeof *res);
    k->deadline = fpc_now_ms() + c->o.deadline_ms;
    int rc = run(c, k, err);
    if (rc == 0 && res) {
        res->status = k->at.status;
        res->body = k->at.buf; /* handed over */
        res->len = k->at.blen;
        k->at.buf = NULL;
        res->replayed = k->at.replayed;
        size_t n = strnlen(k->at.ctype, sizeof res->content_type - 1);
        memcpy(res->content_type, k->at.ctype, n); /* res was zeroed */
        cJSON *doc = res->body && k->kind == FPC_KIND_KEYED ? cJSON_Parse(res->body) : NULL;
        cJSON *num = cJSON_GetObjectItemCaseSensitive(doc, "number");
        if (cJSON_IsString(num))
            snprintf(res->number, sizeof res->number, "%s", num->valuestring);
        cJSON_Delete(doc);
    }
    fpc_attempt_reset(&k->at);
    return rc;
}

int fpc_issue(fpc_client *c, const char *serial, const char *json, size_t len, fpc_result *res,
              fpc_error *err)
{
    if (!c || !json || !valid_serial(serial)) {
        fpc_error_set(err, FPC_EINVAL, "INVALID_ARGUMENT",
                      "流水号须为 1 到 64 个字母、数字或 _.:- 字符",
                      "the serial must be 1 to 64 letters, digits or _.:-");
        return FPC_EINVAL;
    }
    call k = {.kind = FPC_KIND_KEYED};
    k.at.method = "POST", k.at.path = "/v1/invoices", k.at.body = json, k.at.len = len;
    k.at.key = serial, k.at.auth = 1;
    return do_call(c, &k, res, err);
}

int fpc_get(fpc_client *c, const char *path, fpc_result *res, fpc_error *err)
{
    if (!c || !path || path[0] != '/') {
        fpc_error_set(err, FPC_EINVAL, "INVALID_ARGUMENT", "路径须以 / 开头",
                      "the path must start with /");
        return FPC_EINVAL;
    }
    call k = {.kind = FPC_KIND_GET};
    k.at.method = "GET", k.at.path = path, k.at.auth = 1;
    return do_call(c, &k, res, err);
}
