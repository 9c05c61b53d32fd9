/* webhook.c — event bodies and signatures (webhook.h). */
#include "fapiao/clock.h"
#include "fapiao/webhook.h"
#include "fapiao/crypto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int fp_webhook_secret_generate(char out[64])
{
    unsigned char raw[32];
    if (fp_random(raw, sizeof raw) < 0)
        return FP_ECRYPTO;
    memcpy(out, FP_WEBHOOK_SECRET_PREFIX, sizeof FP_WEBHOOK_SECRET_PREFIX - 1);
    fp_b64url_encode(raw, sizeof raw, out + sizeof FP_WEBHOOK_SECRET_PREFIX - 1);
    return 0;
}

void fp_webhook_sign(const char *secret, const char *timestamp, const char *nonce, const char *body,
                     size_t len, char out[68])
{
    fp_buf m;
    fp_buf_init(&m, 0);
    fp_buf_printf(&m, "%s.%s.", timestamp, nonce);
    fp_buf_append(&m, body, len);
    unsigned char mac[32];
    fp_hmac_sha256(secret, strlen(secret), m.p ? m.p : "", m.len, mac);
    fp_buf_free(&m);
    memcpy(out, "v1=", 3);
    fp_hex(mac, sizeof mac, out + 3);
}

void fp_webhook_body(const fp_job *j, const char *serial, const char *failure, fp_buf *out)
{
    /* created_at: the job's first_at as China Standard Time */
    time_t t = (time_t)(j->first_at / 1000) + FP_CST_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    const char *status = strncmp(j->event, "invoice.", 8) == 0 ? j->event + 8 : j->event;
    char link[64];
    fp_jw w;
    fp_jw_init(&w, out);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "id", j->event_id);
    fp_jw_kstr(&w, "type", j->event);
    fp_jw_kstr(&w, "created_at", when);
    fp_jw_key(&w, "data");
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "number", j->invoice_number);
    fp_jw_kstr(&w, "serial", serial);
    fp_jw_kstr(&w, "status", status);
    if (failure && failure[0])
        fp_jw_kstr(&w, "failure", failure);
    fp_jw_key(&w, "links");
    fp_jw_obj_open(&w);
    snprintf(link, sizeof link, "/v1/invoices/%s", j->invoice_number);
    fp_jw_kstr(&w, "self", link);
    snprintf(link, sizeof link, "/v1/invoices/%s/pdf", j->invoice_number);
    fp_jw_kstr(&w, "pdf", link);
    fp_jw_obj_close(&w);
    fp_jw_obj_close(&w);
    fp_jw_obj_close(&w);
}

int fp_webhook_url_ok(const char *url)
{
    const char *host;
    if (!strncmp(url, "https://", 8))
        host = url + 8;
    else if (!strncmp(url, "http://", 7))
        host = url + 7;
    else
        return 0;
    if (!*host || *host == '/' || *host == ':' || strlen(url) > 2000)
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* ---- target policy (docs/security.md "Webhook targets") ---- */

typedef struct net {
    unsigned char a[16];
    int bits;
    const char *cls;
} net;

/* First match wins: the narrow metadata addresses before their ranges. */
static const net v4_nets[] = {
    {{169, 254, 169, 254}, 32, "metadata"}, /* most clouds */
    {{100, 100, 100, 200}, 32, "metadata"}, /* Alibaba Cloud */
    {{192, 0, 0, 192}, 32, "metadata"},     /* Oracle Cloud */
    {{0}, 8, "unspecified"},
    {{10}, 8, "private"},
    {{100, 64}, 10, "shared (carrier-grade NAT)"},
    {{127}, 8, "loopback"},
    {{169, 254}, 16, "link-local"},
    {{172, 16}, 12, "private"},
    {{192, 0, 0}, 24, "reserved"},
    {{192, 168}, 16, "private"},
    {{198, 18}, 15, "reserved"},
    {{224}, 4, "multicast"},
    {{240}, 4, "reserved"},
};

static const net v6_nets[] = {
    {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54}, 128, "metadata"}, /* fd00:ec2::254 */
    {{0}, 128, "unspecified"},
    {{[15] = 1}, 128, "loopback"},
    {{0}, 96, "reserved"}, /* IPv4-compatible (deprecated) */
    {{0xfc}, 7, "private"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xfe, 0xc0}, 10, "private"}, /* site-local (deprecated) */
    {{0xff}, 8, "multicast"},
};

static int in_net(const unsigned char *a, const net *n)
{
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(a, n->a, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (n->a[full] & mask);
}

static const char *v4_class(const unsigned char a[4])
{
    for (size_t i = 0; i < sizeof v4_nets / sizeof v4_nets[0]; i++)
        if (in_net(a, &v4_nets[i]))
            return v4_nets[i].cls;
    return NULL;
}

static const char *v6_class(const unsigned char a[16])
{
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12)) /* an IPv4 address inside */
        return v4_class(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4: 2002:AABB:CCDD::/48 */
        return v4_class(a + 2);
    for (size_t i = 0; i < sizeof v6_nets / sizeof v6_nets[0]; i++)
        if (in_net(a, &v6_nets[i]))
            return v6_nets[i].cls;
    return NULL;
}

const char *fp_webhook_addr_class(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_class((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return v6_class((const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return "not an IP address";
}

const char *fp_webhook_url_class(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h)
        return NULL;
    h += 3;
    size_t n = strcspn(h, "/?#");
    const char *at = memchr(h, '@', n); /* user:password@host */
    while (at) {
        n -= (size_t)(at + 1 - h);
        h = at + 1;
        at = memchr(h, '@', n);
    }
    char host[256];
    if (h[0] == '[') {
        const char *end = memchr(h, ']', n);
        if (!end || (size_t)(end - h - 1) >= sizeof host)
            return NULL;
        snprintf(host, sizeof host, "%.*s", (int)(end - h - 1), h + 1);
        char *zone = strchr(host, '%');
        if (zone)
            *zone = 0;
        struct in6_addr a6;
        return inet_pton(AF_INET6, host, &a6) == 1 ? v6_class(a6.s6_addr) : NULL;
    }
    size_t hl = strcspn(h, ":/?#");
    if (hl > n)
        hl = n;
    if (hl == 0 || hl >= sizeof host)
        return NULL;
    snprintf(host, sizeof host, "%.*s", (int)hl, h);
    if (host[hl - 1] == '.') /* "127.0.0.1." */
        host[hl - 1] = 0;
    /* inet_aton takes the forms libcurl does too: 127.1, 2130706433, 0x7f.1 */
    struct in_addr a4;
    return inet_aton(host, &a4) ? v4_class((const unsigned char *)&a4) : NULL;
}

const char *fp_webhook_class_zh(const char *cls)
{
    static const char *const names[][2] = {
        {"loopback", "回环"},       {"private", "内网"},
        {"link-local", "链路本地"}, {"metadata", "云元数据"},
        {"unspecified", "未指定"},  {"shared (carrier-grade NAT)", "运营商级 NAT 共享"},
        {"multicast", "组播"},      {"reserved", "保留"},
    };
    for (size_t i = 0; cls && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(cls, names[i][0]))
            return names[i][1];
    return cls ? cls : "";
}
