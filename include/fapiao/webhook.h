/* webhook.h — the event a client's webhook receives, and its signature.
 *
 * POST <webhook_url>, Content-Type: application/json, body:
 *   {"id":"evt_<number>_rendered","type":"invoice.rendered",
 *    "created_at":"2026-11-28T12:00:00+08:00",
 *    "data":{"number":"…","serial":"…","status":"rendered",
 *            "links":{"self":"/v1/invoices/…","pdf":"/v1/invoices/…/pdf"}}}
 * type is invoice.rendered or invoice.failed (data then has "failure").
 * The id is the same on every retry: receivers drop duplicates by it.
 *
 * Headers:
 *   X-Fapiao-Event-Id   the id
 *   X-Fapiao-Timestamp  unix seconds when this attempt was signed
 *   X-Fapiao-Nonce      32 hex characters, new per attempt
 *   X-Fapiao-Signature  v1=<hex HMAC-SHA256(secret, timestamp "." nonce "." body)>
 * A receiver recomputes the HMAC over the raw body, compares in constant
 * time, rejects timestamps more than 5 minutes off, and may remember nonces
 * for that long to refuse replays (docs/webhooks.md). */
#ifndef FAPIAO_WEBHOOK_H
#define FAPIAO_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/jobs.h"
#include "fapiao/json.h"

#define FP_WEBHOOK_SECRET_PREFIX "whsec_"

/* "whsec_" + 43 base64url characters (32 random bytes). */
int fp_webhook_secret_generate(char out[64]);

/* out: "v1=" + 64 hex + NUL. */
void fp_webhook_sign(const char *secret, const char *timestamp, const char *nonce, const char *body,
                     size_t len, char out[68]);

/* The event body of notify job j (fields from the job only, so the bytes
 * are the same on every retry). */
void fp_webhook_body(const fp_job *j, const char *serial, const char *failure, fp_buf *out);

/* 1 when url is an http:// or https:// URL with a host (what a webhook may
 * be), else 0. */
int fp_webhook_url_ok(const char *url);

/* Webhook target policy (docs/security.md "Webhook targets"): the class of
 * an address a webhook may not reach unless the operator allows it
 * (serve --allow-private-webhooks): "loopback", "private", "link-local",
 * "metadata", "shared (carrier-grade NAT)", "unspecified", "multicast",
 * "reserved" (IPv4 inside IPv4-mapped, NAT64 and 6to4 IPv6 addresses is
 * judged as IPv4); NULL for any other (public) address. */
struct sockaddr;
const char *fp_webhook_addr_class(const struct sockaddr *sa);
/* The same for a URL whose host is an IP literal (checked when it is
 * stored); NULL for a host name or a public address: names are judged
 * when connecting, by the addresses they resolve to. */
const char *fp_webhook_url_class(const char *url);
/* The class's name in Chinese. */
const char *fp_webhook_class_zh(const char *cls);

#endif
