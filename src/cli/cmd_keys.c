/* cmd_keys.c — `fapiao keys create|list|rotate|revoke|set`: API credentials
 * on the data directory, also while a server runs (it sees every change
 * within a second).  A secret is printed once, when it is made; only its
 * salted hash and its first characters are stored. */
#include "cli.h"
#include "fapiao/clock.h"
#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/rbac.h"
#include "fapiao/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: fapiao keys create --data-dir DIR --roles ROLES [--client-id ID] [--seller-id N]\n"
    "                          [--allow-ip CIDR[,CIDR...]] [--cert-sha256 HEX] [--json]\n"
    "       fapiao keys list   --data-dir DIR [--json]\n"
    "       fapiao keys rotate --data-dir DIR --client-id ID [--overlap SECONDS] [--json]\n"
    "       fapiao keys revoke --data-dir DIR --client-id ID\n"
    "       fapiao keys set    --data-dir DIR --client-id ID [--roles ROLES]\n"
    "                          [--allow-ip CIDR,...|any] [--cert-sha256 HEX|none]\n"
    "  ROLES: comma-separated seller roles issuer, reviewer, auditor, admin, or the\n"
    "  instance-wide operator, operator-auditor (never both kinds).  ID: 1-64 characters\n"
    "  of A-Z a-z 0-9 . _ -.  rotate prints a new secret; the newest old one stays valid\n"
    "  for --overlap (default 86400 s), older ones end now, and tokens die with the\n"
    "  secret they were issued for.  revoke takes effect on a running server within\n"
    "  about a second, also for tokens already issued.\n"
    "  管理 API 凭据：创建、列出、轮换、吊销、修改角色/IP 白名单/客户端证书绑定。\n"
    "  密钥只在生成时显示一次。\n";

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int check_cert(const char *hex)
{
    if (strlen(hex) != 64)
        return -1;
    for (const char *p = hex; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return -1;
    return 0;
}

static void time_text(int64_t t, char *out, size_t cap)
{
    if (!t) {
        snprintf(out, cap, "-");
        return;
    }
    time_t x = (time_t)t + FP_CST_OFFSET_S;
    struct tm tm;
    gmtime_r(&x, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M", &tm);
}

typedef struct list_ctx {
    int json, n;
} list_ctx;

static void print_client(const fp_client_info *c, void *arg)
{
    list_ctx *l = arg;
    char roles[64], created[32], newest[32], ends[32];
    fp_roles_format(c->roles, roles, sizeof roles);
    if (l->json) {
        printf("%s{\"client_id\":", l->n ? "," : "");
        json_str(c->client_id);
        printf(",\"seller_id\":%lld,\"roles\":", (long long)c->seller_id);
        json_str(roles);
        printf(",\"allowed_ips\":");
        json_str(c->allowed_ips);
        printf(",\"cert_sha256\":");
        json_str(c->cert_sha256);
        printf(",\"created_at\":%lld,\"revoked_at\":%lld,\"active_secrets\":%d,"
               "\"newest_secret_at\":%lld,\"old_secrets_expire_at\":%lld,\"secret_prefixes\":",
               (long long)c->created_at, (long long)c->revoked_at, c->active_secrets,
               (long long)c->newest_secret_at, (long long)c->old_secrets_expire_at);
        json_str(c->secret_prefixes);
        putchar('}');
    } else {
        time_text(c->created_at, created, sizeof created);
        time_text(c->newest_secret_at, newest, sizeof newest);
        time_text(c->old_secrets_expire_at, ends, sizeof ends);
        /* a secret older than 72 h is due for rotation */
        int due = !c->revoked_at && c->newest_secret_at &&
                  (int64_t)time(NULL) - c->newest_secret_at > 72 * 3600;
        printf("%-24s %-6lld %-32s %-8s %d  %-16s %-16s %s%s%s\n", c->client_id,
               (long long)c->seller_id, roles, c->revoked_at ? "revoked" : "active",
               c->active_secrets, newest, ends, c->allowed_ips[0] ? c->allowed_ips : "any",
               c->cert_sha256[0] ? " mTLS" : "",
               due ? (cli_zh() ? " 需轮换" : " rotation-due") : "");
    }
    l->n++;
}

static int print_secret(const char *id, const char *secret, int64_t valid_until, int json)
{
    if (json) {
        printf("{\"client_id\":");
        json_str(id);
        printf(",\"client_secret\":");
        json_str(secret);
        if (valid_until)
            printf(",\"previous_secrets_valid_until\":%lld", (long long)valid_until);
        printf("}\n");
    } else {
        printf("client_id: %s\nclient_secret: %s\n", id, secret);
        if (valid_until) {
            char t[32];
            time_text(valid_until, t, sizeof t);
            printf("%s %s\n",
                   cli_zh() ? "旧密钥有效至（北京时间）" : "old secrets valid until (CST)", t);
        }
        printf("%s\n", cli_zh() ? "（密钥只显示这一次，请妥善保存）"
                                : "(the secret is shown only now: store it safely)");
    }
    return 0;
}

/* What `keys SUB` was given, after the checks. */
typedef struct keys_args {
    const char *dir, *roles_s, *id, *seller_s, *ips, *cert, *overlap_s;
    int json;
    unsigned roles;
    long long overlap, seller;
} keys_args;

/* The values' checks: 0, or 2 after a usage error. */
static int keys_check(int sub, keys_args *k)
{
    if (sub == 0 && cli_require(k->roles_s, "--roles", usage) < 0)
        return 2;
    if (sub >= 2 && cli_require(k->id, "--client-id", usage) < 0)
        return 2;
    if (k->roles_s && fp_roles_parse(k->roles_s, &k->roles) < 0) {
        cli_error("--roles 须为 issuer、reviewer、auditor、admin 中的一个或多个，或 operator、"
                  "operator-auditor 中的一个或多个（逗号分隔，两类不可混用）",
                  "--roles must be one or more of issuer, reviewer, auditor, admin, or of "
                  "operator, operator-auditor (comma-separated; not both kinds)");
        return 2;
    }
    /* only for new ids: one from before the rule must stay revocable */
    if (sub == 0 && k->id && !fp_client_id_valid(k->id)) {
        cli_error("--client-id 须为 1–64 个字符（A-Z a-z 0-9 . _ -）",
                  "--client-id must be 1-64 characters of A-Z a-z 0-9 . _ -");
        return 2;
    }
    if (k->ips && strcmp(k->ips, "any")) {
        fp_allowlist al;
        char bad[64] = "";
        if (fp_allowlist_parse(k->ips, &al, bad, sizeof bad) < 0) {
            char zh[160], en[160];
            snprintf(zh, sizeof zh, "--allow-ip 中的 %s 不是 IPv4/IPv6 地址或 CIDR", bad);
            snprintf(en, sizeof en, "--allow-ip: %s is not an IPv4/IPv6 address or CIDR", bad);
            cli_error(zh, en);
            return 2;
        }
    }
    if (k->cert && strcmp(k->cert, "none") && check_cert(k->cert) < 0) {
        cli_error("--cert-sha256 须为 64 位小写十六进制（证书 DER 的 SHA-256）",
                  "--cert-sha256 must be 64 lowercase hex digits (SHA-256 of the certificate DER)");
        return 2;
    }
    long long overlap = 86400, seller = 1; /* seconds: at most 30 days */
    if (cli_number(k->overlap_s, "--overlap", 0, 30LL * 86400, &overlap, usage) < 0 ||
        cli_number(k->seller_s, "--seller-id", 1, INT64_MAX, &seller, usage) < 0)
        return 2;
    k->overlap = overlap;
    k->seller = seller;
    return 0;
}

static int keys_create(fp_store *s, const keys_args *k)
{
    fp_err err = {0};
    char secret[FP_SECRET_LEN + 1], actor[80];
    fp_client_info c;
    memset(&c, 0, sizeof c);
    fp_seller sel;
    if (fp_store_get_seller(s, k->seller, &sel) < 0) {
        char zh[96], en[96];
        snprintf(zh, sizeof zh, "销售方 %lld 不存在", k->seller);
        snprintf(en, sizeof en, "no seller %lld", k->seller);
        cli_error(zh, en);
        return 1;
    }
    if (k->id) {
        snprintf(c.client_id, sizeof c.client_id, "%s", k->id);
    } else {
        unsigned char r[6];
        char hex[13];
        fp_random(r, sizeof r);
        fp_hex(r, sizeof r, hex);
        snprintf(c.client_id, sizeof c.client_id, "cli-%s", hex);
    }
    c.seller_id = k->seller;
    c.roles = k->roles;
    snprintf(c.allowed_ips, sizeof c.allowed_ips, "%s",
             k->ips && strcmp(k->ips, "any") ? k->ips : "");
    snprintf(c.cert_sha256, sizeof c.cert_sha256, "%s",
             k->cert && strcmp(k->cert, "none") ? k->cert : "");
    char roles_txt[64];
    fp_roles_format(k->roles, roles_txt, sizeof roles_txt);
    fp_audit_rec a = cli_audit_rec(actor, "keys.create", NULL, roles_txt);
    if (fp_secret_generate(secret) < 0) {
        cli_error("无法生成随机密钥", "cannot generate a random secret");
        return 1;
    }
    if (fp_store_client_create(s, &c, secret, &a, &err) < 0) {
        cli_fail("无法创建凭据", "cannot create the credential", err.msg);
        return 1;
    }
    return print_secret(c.client_id, secret, 0, k->json);
}

static int keys_list(fp_store *s, const keys_args *k)
{
    int rc = 0;
    list_ctx l = {k->json, 0};
    if (k->json)
        putchar('[');
    else
        printf("%-24s %-6s %-32s %-8s %s  %-16s %-16s %s\n", "CLIENT", "SELLER", "ROLES", "STATE",
               "S", cli_zh() ? "最新密钥" : "NEWEST SECRET",
               cli_zh() ? "旧密钥截止" : "OLD SECRETS END", cli_zh() ? "允许地址" : "ALLOWED IPS");
    if (fp_store_clients(s, 1, print_client, &l) < 0) {
        cli_error("无法读取凭据", "cannot read the credentials");
        rc = 1;
    }
    if (k->json)
        printf("]\n");
    return rc;
}

static int keys_rotate(fp_store *s, const keys_args *k)
{
    fp_err err = {0};
    char secret[FP_SECRET_LEN + 1], actor[80];
    int64_t now = (int64_t)time(NULL);
    fp_audit_rec a = cli_audit_rec(actor, "keys.rotate", NULL, "ok");
    if (fp_secret_generate(secret) < 0) {
        cli_error("无法生成随机密钥", "cannot generate a random secret");
        return 1;
    }
    if (fp_store_client_rotate(s, k->id, secret, now, k->overlap, &a, &err) < 0) {
        cli_fail("无法轮换密钥", "cannot rotate the secret", err.msg);
        return 1;
    }
    return print_secret(k->id, secret, now + k->overlap, k->json);
}

static int keys_revoke(fp_store *s, const keys_args *k)
{
    fp_err err = {0};
    char actor[80];
    fp_audit_rec a = cli_audit_rec(actor, "keys.revoke", NULL, "ok");
    if (fp_store_client_revoke(s, k->id, (int64_t)time(NULL), &a, &err) < 0) {
        cli_fail("无法吊销凭据", "cannot revoke the credential", err.msg);
        return 1;
    }
    printf("%s %s\n", cli_zh() ? "已吊销" : "revoked", k->id);
    return 0;
}

static int keys_set(fp_store *s, const keys_args *k)
{
    fp_err err = {0};
    char actor[80];
    fp_audit_rec a = cli_audit_rec(actor, "keys.set", NULL, "ok");
    if (!k->roles_s && !k->ips && !k->cert) {
        cli_error("set 至少需要 --roles、--allow-ip、--cert-sha256 之一",
                  "set needs at least one of --roles, --allow-ip, --cert-sha256");
        return 2;
    }
    const char *ips = k->ips ? (strcmp(k->ips, "any") ? k->ips : "") : NULL;
    const char *cert = k->cert ? (strcmp(k->cert, "none") ? k->cert : "") : NULL;
    if (fp_store_client_update(s, k->id, k->roles_s ? &k->roles : NULL, ips, cert, &a, &err) < 0) {
        cli_fail("无法修改凭据", "cannot change the credential", err.msg);
        return 1;
    }
    printf("%s %s\n", cli_zh() ? "已修改" : "changed", k->id);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(fp_store *s, const keys_args *k);
    } subs[] = {{"create", keys_create},
                {"list", keys_list},
                {"rotate", keys_rotate},
                {"revoke", keys_revoke},
                {"set", keys_set}};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "keys", subs, usage, &rc);
    if (sub < 0)
        return rc;
    keys_args k = {0};
    const char *dir = NULL;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--roles", 0, &k.roles_s, NULL},
        {"--client-id", 0, &k.id, NULL},
        {"--seller-id", 0, &k.seller_s, NULL},
        {"--allow-ip", 0, &k.ips, NULL},
        {"--cert-sha256", 0, &k.cert, NULL},
        {"--overlap", 0, &k.overlap_s, NULL},
        {"--json", 1, NULL, &k.json},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    rc = keys_check(sub, &k);
    if (rc)
        return rc;
    /* list only reads: the store opened read-only (no migration, no
     * writer, no checkpoint signed) */
    fp_store *s = subs[sub].run == keys_list ? cli_open_store_ro(dir) : cli_open_store(dir);
    if (!s)
        return 1;
    rc = subs[sub].run(s, &k);
    fp_store_close(s);
    return rc;
}
