/* webhook.c — event bodies and signatures (webhook.h). */
#include "fapiao/webhook.h"
#include "fapiao/crypto.h"

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
    time_t t = (time_t)(j->first_at / 1000) + 8 * 3600;
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
