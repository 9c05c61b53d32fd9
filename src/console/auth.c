/* auth.c — console login (console.h; docs/console.md).  In order, so that
 * the expensive part comes last:
 *   1. the growing delays of the address and of the user (throttle.c):
 *      429 before anything is hashed;
 *   2. a slot among max_hashes Argon2id hashes: 429 when none is free;
 *   3. the password, hashed against the user's hash (a dummy hash for an
 *      unknown user, so both take as long);
 *   4. the second factor: before enrolment the one-time enrolment token
 *      (then the TOTP seed is made, sealed and stored, and shown once with
 *      its QR code and recovery codes), after it a TOTP code of a time
 *      step later than the last one accepted (a code is good once).
 * A failure at 3 or 4 counts for the address and the user alike. */
#include "internal.h"

#include "fapiao/crypto.h"
#include "fapiao/password.h"
#include "fapiao/totp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the per-address and per-user delays: free failures, then doubling from
 * 1 s to the cap */
#define IP_FREE    3
#define IP_CAP_S   900
#define USER_FREE  5
#define USER_CAP_S 60

int fp_console_new(const fp_console_opts *o, fp_console **out, fp_err *err)
{
    fp_console *c = calloc(1, sizeof *c);
    if (!c || !(c->sessions = calloc(FP_SESSIONS_MAX, sizeof *c->sessions))) {
        free(c);
        return fp_fail(err, FP_ENOMEM, "console: out of memory");
    }
    c->store = o->store;
    memcpy(c->key, o->seal_key, sizeof c->key);
    c->idle_s = o->idle_s > 0 ? o->idle_s : 900;
    c->max_s = o->max_s > 0 ? o->max_s : 12 * 3600;
    c->max_hashes = o->max_hashes > 0 ? o->max_hashes : 1;
    snprintf(c->issuer, sizeof c->issuer, "%s", o->issuer ? o->issuer : "fapiao");
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void fp_console_free(fp_console *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    memset(c->key, 0, sizeof c->key);
    free(c->sessions);
    free(c);
}

void fp_login_res_clear(fp_login_res *r)
{
    free(r->qr_png);
    memset(r, 0, sizeof *r);
}

static void sha_hex(const char *s, char out[65])
{
    unsigned char h[32];
    fp_sha256(s, strlen(s), h);
    fp_hex(h, sizeof h, out);
}

/* The first login: a TOTP seed and recovery codes for u, stored (audited
 * as users.enrol_2fa), shown once in out. */
static void enrol(fp_console *c, fp_user *u, const fp_login_req *q, fp_login_res *out)
{
    unsigned char seed[FP_TOTP_SEED_LEN];
    char b32[FP_TOTP_B32_MAX], aad[FP_USER_NAME_MAX + 8];
    fp_err err = {0};
    out->st = FP_LOGIN_ERROR;
    out->why = "store";
    if (fp_random(seed, sizeof seed) < 0)
        return;
    fp_base32_encode(seed, sizeof seed, b32);
    snprintf(aad, sizeof aad, "user:%s", u->name);
    if (fp_seal(c->key, aad, b32, u->totp_seed, sizeof u->totp_seed, &err) < 0)
        return;
    u->recovery[0] = 0;
    for (int i = 0; i < FP_RECOVERY_CODES; i++) {
        unsigned char r[6];
        char h[65];
        fp_random(r, sizeof r);
        fp_hex(r, sizeof r, out->recovery[i]);
        sha_hex(out->recovery[i], h);
        snprintf(u->recovery + strlen(u->recovery), sizeof u->recovery - strlen(u->recovery),
                 "%s%s", i ? "," : "", h);
    }
    u->enrolled = 1;
    u->enrol_hash[0] = 0;
    fp_audit_rec a = {.actor = aad,
                      .action = "users.enrol_2fa",
                      .client_ip = q->ip,
                      .outcome = "ok",
                      .seller_id = u->seller_id};
    if (fp_store_user_update(c->store, u, &a, &err) < 0)
        return;
    snprintf(out->otpauth, sizeof out->otpauth,
             "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=6&period=30",
             c->issuer, u->name, b32, c->issuer);
    if (fp_qr_png(out->otpauth, &out->qr_png, &out->qr_len) < 0)
        out->qr_png = NULL;
    memset(b32, 0, sizeof b32);
    out->st = FP_LOGIN_ENROLLED;
    out->why = "enrolled";
}

/* A recovery code instead of the TOTP code: good once (its hash leaves
 * the user's list, audited as users.recovery_code_used).  0 when used. */
static int use_recovery(fp_console *c, fp_user *u, const fp_login_req *q)
{
    char h[65], aad[FP_USER_NAME_MAX + 8];
    sha_hex(q->recovery, h);
    char *hit = NULL;
    for (char *p = u->recovery; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strlen(p) >= 64 && fp_ct_equal(p, h, 64) && (p[64] == ',' || !p[64]))
            hit = p;
    if (!hit)
        return -1;
    size_t rest = strlen(hit + 64);
    memmove(hit, hit + 64 + (rest ? 1 : 0), rest ? rest : 1); /* drop it and its comma */
    size_t n = strlen(u->recovery);
    if (n && u->recovery[n - 1] == ',')
        u->recovery[n - 1] = 0;
    snprintf(aad, sizeof aad, "user:%s", u->name);
    fp_audit_rec a = {.actor = aad,
                      .action = "users.recovery_code_used",
                      .client_ip = q->ip,
                      .outcome = "ok",
                      .seller_id = u->seller_id};
    return fp_store_user_update(c->store, u, &a, NULL);
}

/* Step 4 for an enrolled user: the TOTP code, once. */
static void second_factor(fp_console *c, const fp_user *u, const fp_login_req *q, fp_login_res *out)
{
    char b32[FP_TOTP_B32_MAX], aad[FP_USER_NAME_MAX + 8];
    unsigned char seed[FP_TOTP_SEED_MAX];
    snprintf(aad, sizeof aad, "user:%s", u->name);
    int n;
    if (fp_unseal(c->key, aad, u->totp_seed, b32, sizeof b32, NULL) < 0 ||
        (n = fp_base32_decode(b32, seed, sizeof seed)) <= 0) {
        out->st = FP_LOGIN_ERROR;
        out->why = "seed_unreadable";
        return;
    }
    int64_t step = fp_totp_verify(seed, (size_t)n, q->now, 1, q->totp);
    memset(seed, 0, sizeof seed);
    memset(b32, 0, sizeof b32);
    out->st = FP_LOGIN_BAD;
    if (step < 0) {
        out->why = "bad_totp";
        return;
    }
    int rc = fp_store_user_take_step(c->store, u->name, step, NULL);
    if (rc == FP_ECONFLICT) {
        out->why = "totp_replayed";
        return;
    }
    if (rc < 0) {
        out->st = FP_LOGIN_ERROR;
        out->why = "store";
        return;
    }
    fp_session_create(c, u, q->now, out->sid, &out->who);
    out->st = FP_LOGIN_OK;
    out->why = "ok";
}

/* A hash of a password nobody has, verified for an unknown user. */
static const char dummy_hash[] =
    "$argon2id$v=19$m=65536,t=3,p=1$"
    "AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void check(fp_console *c, const fp_login_req *q, fp_login_res *out)
{
    fp_user u;
    int rc = fp_store_user_get(c->store, q->user, &u);
    if (rc < 0 && rc != FP_ENOTFOUND) {
        out->st = FP_LOGIN_ERROR;
        out->why = "store";
        return;
    }
    int pw_ok = fp_password_verify(rc == 0 ? u.pw_hash : dummy_hash, q->password);
    out->st = FP_LOGIN_BAD;
    if (rc == FP_ENOTFOUND)
        out->why = "no_user";
    else if (!pw_ok)
        out->why = "bad_password";
    else if (u.disabled)
        out->why = "disabled";
    else if (q->enrol_token && q->enrol_token[0]) {
        char h[65];
        sha_hex(q->enrol_token, h);
        if (u.enrolled || !u.enrol_hash[0] || !fp_ct_equal(h, u.enrol_hash, 64))
            out->why = "bad_enrol_token";
        else
            enrol(c, &u, q, out);
    } else if (!u.enrolled)
        out->why = "not_enrolled";
    else if (q->recovery && q->recovery[0]) {
        out->why = "bad_recovery_code";
        if (use_recovery(c, &u, q) == 0) {
            fp_session_create(c, &u, q->now, out->sid, &out->who);
            out->st = FP_LOGIN_OK;
            out->why = "ok_recovery_code";
        }
    } else
        second_factor(c, &u, q, out);
}

void fp_console_login(fp_console *c, const fp_login_req *q, fp_login_res *out)
{
    memset(out, 0, sizeof *out);
    char ipk[80], userk[80];
    snprintf(ipk, sizeof ipk, "ip:%s", q->ip);
    snprintf(userk, sizeof userk, "user:%s", q->user);
    int wi = fp_throttle_wait(c, ipk, q->now), wu = fp_throttle_wait(c, userk, q->now);
    if (wi || wu) {
        out->st = FP_LOGIN_THROTTLED;
        out->why = "throttled";
        out->retry_after = wi > wu ? wi : wu;
        return;
    }
    if (atomic_fetch_add(&c->hashing, 1) >= c->max_hashes) {
        atomic_fetch_sub(&c->hashing, 1);
        out->st = FP_LOGIN_BUSY;
        out->why = "busy";
        out->retry_after = 1;
        return;
    }
    check(c, q, out);
    atomic_fetch_sub(&c->hashing, 1);
    if (out->st == FP_LOGIN_BAD) {
        fp_throttle_fail(c, ipk, q->now, IP_FREE, IP_CAP_S);
        fp_throttle_fail(c, userk, q->now, USER_FREE, USER_CAP_S);
    } else if (out->st == FP_LOGIN_OK) {
        fp_throttle_ok(c, ipk);
        fp_throttle_ok(c, userk);
    }
}
