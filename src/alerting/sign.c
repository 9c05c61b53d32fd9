/* sign.c — the robots' request signatures (docs/alerting.md "Receivers").
 *
 * DingTalk (custom robot, 加签): the string "TIMESTAMP\nSECRET" (timestamp
 * in ms) is signed with HMAC-SHA256 keyed by the secret, base64-encoded,
 * URL-encoded and appended to the robot URL as &timestamp=…&sign=….
 * Feishu (custom bot, 签名校验): the key is "TIMESTAMP\nSECRET" (timestamp
 * in s) and the message empty; the base64 signature and the timestamp go
 * into the JSON body.  Both use standard base64 with padding. */
#include "fapiao/alerting.h"
#include "fapiao/crypto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Standard base64 with '=' padding (out: 4*ceil(n/3)+1 bytes). */
static void b64(const unsigned char *in, size_t n, char *out)
{
    fp_b64url_encode(in, n, out);
    size_t k = strlen(out);
    for (size_t i = 0; i < k; i++)
        out[i] = out[i] == '-' ? '+' : out[i] == '_' ? '/' : out[i];
    while (k % 4)
        out[k++] = '=';
    out[k] = 0;
}

void fp_dingtalk_sign(const char *secret, int64_t ts_ms, char *out, size_t cap)
{
    char msg[320], sig[48];
    unsigned char mac[32];
    int n = snprintf(msg, sizeof msg, "%" PRId64 "\n%s", ts_ms, secret);
    fp_hmac_sha256(secret, strlen(secret), msg, (size_t)n, mac);
    b64(mac, sizeof mac, sig);
    char enc[3 * sizeof sig];
    size_t o = 0;
    for (const char *p = sig; *p; p++) {
        if (*p == '+' || *p == '/' || *p == '=')
            o += (size_t)snprintf(enc + o, sizeof enc - o, "%%%02X", (unsigned char)*p);
        else
            enc[o++] = *p;
    }
    enc[o] = 0;
    snprintf(out, cap, "&timestamp=%" PRId64 "&sign=%s", ts_ms, enc);
}

void fp_feishu_sign(const char *secret, int64_t ts_s, char *out, size_t cap)
{
    char key[320];
    unsigned char mac[32];
    char sig[48];
    int n = snprintf(key, sizeof key, "%" PRId64 "\n%s", ts_s, secret);
    fp_hmac_sha256(key, (size_t)n, "", 0, mac);
    b64(mac, sizeof mac, sig);
    snprintf(out, cap, "%s", sig);
}
