/* cmd_users.c — `fapiao users add|list|disable|reset-2fa`: the people who
 * sign in to the console (docs/console.md), not API clients.  Same roles
 * as `fapiao keys`; an Argon2id password; TOTP is mandatory, and a user's
 * second factor is enrolled only with the one-time enrolment token printed
 * here (by add and reset-2fa), so a stolen password alone cannot enrol one.
 * Every change goes to the audit log in the change's transaction. */
#include "cli.h"
#include "fapiao/crypto.h"
#include "fapiao/password.h"
#include "fapiao/rbac.h"
#include "fapiao/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fapiao users add --data-dir DIR --user NAME --roles ROLES [--seller-id N]\n"
    "                        [--password-stdin]\n"
    "       fapiao users list --data-dir DIR [--json]\n"
    "       fapiao users disable --data-dir DIR --user NAME\n"
    "       fapiao users reset-2fa --data-dir DIR --user NAME\n"
    "  Console users (people): ROLES as for `fapiao keys` (issuer, reviewer, auditor, admin with\n"
    "  --seller-id, default 1; or operator, operator-auditor).  add reads the password from stdin\n"
    "  with --password-stdin (12..256 bytes), else makes one and prints it once.  add and\n"
    "  reset-2fa print a one-time enrolment token: the user enrols TOTP with it at first login.\n"
    "  控制台用户（人员，非 API 客户端）：角色同 `fapiao keys`。add 从标准输入读密码\n"
    "  （--password-stdin），否则生成并只显示一次；add 与 reset-2fa 打印一次性注册令牌，\n"
    "  用户首次登录时凭它绑定动态口令（TOTP）。每次变更都记入审计日志。\n";

typedef struct users_args {
    const char *user, *roles_s, *seller_s;
    int json, pw_stdin;
    unsigned roles;
    long long seller;
} users_args;

/* A fresh one-time enrolment token into tok (prints it) and its hash into
 * u->enrol_hash; the second factor is cleared until it is used. */
static int new_enrolment(fp_user *u, char tok[48])
{
    unsigned char r[24], h[32];
    if (fp_random(r, sizeof r) < 0)
        return -1;
    memcpy(tok, "fpe_", 4); /* 4 + base64url of 24 bytes (32) + NUL: 37 of 48 */
    fp_b64url_encode(r, sizeof r, tok + 4);
    fp_sha256(tok, strlen(tok), h);
    fp_hex(h, sizeof h, u->enrol_hash);
    u->totp_seed[0] = u->recovery[0] = 0;
    u->enrolled = 0;
    return 0;
}

static void print_enrolment(const char *name, const char *tok)
{
    printf("%s\n", tok);
    fprintf(stderr,
            "fapiao: 用户 %s 的一次性注册令牌如上（只显示这一次），首次登录控制台时与密码一起使用"
            " / the one-time enrolment token of %s is above (shown once): use it with the "
            "password at the first console login\n",
            name, name);
}

/* The password: stdin's first line, or a new random one (printed). */
static int read_password(const users_args *k, char pw[FP_PW_MAX_LEN + 2])
{
    if (k->pw_stdin) {
        if (!fgets(pw, FP_PW_MAX_LEN + 2, stdin))
            return -1;
        pw[strcspn(pw, "\r\n")] = 0;
        return 0;
    }
    unsigned char r[18];
    if (fp_random(r, sizeof r) < 0)
        return -1;
    fp_b64url_encode(r, sizeof r, pw);
    printf("%s\n", pw);
    return 0;
}

static int users_add(fp_store *s, const users_args *k)
{
    fp_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", k->user);
    u.roles = k->roles;
    u.seller_id = fp_roles_instance_wide(k->roles) ? 0 : k->seller;
    fp_seller sel;
    if (u.seller_id && fp_store_get_seller(s, u.seller_id, &sel) < 0) {
        cli_error("销售方不存在", "no such seller");
        return 1;
    }
    char pw[FP_PW_MAX_LEN + 2], tok[48], actor[80], roles_txt[64];
    fp_err err = {0};
    if (read_password(k, pw) < 0 || fp_password_hash(pw, u.pw_hash, sizeof u.pw_hash, &err) < 0) {
        cli_fail("无法设置密码", "cannot set the password", err.msg);
        return 1;
    }
    if (new_enrolment(&u, tok) < 0) {
        cli_error("无法生成随机令牌", "cannot generate a random token");
        return 1;
    }
    fp_roles_format(k->roles, roles_txt, sizeof roles_txt);
    fp_audit_rec a = cli_audit_rec(actor, "users.add", NULL, roles_txt);
    if (fp_store_user_create(s, &u, &a, &err) < 0) {
        cli_fail("无法创建用户", "cannot create the user", err.msg);
        return 1;
    }
    print_enrolment(u.name, tok);
    return 0;
}

static void print_user(const fp_user *u, void *arg)
{
    char roles[64];
    fp_roles_format(u->roles, roles, sizeof roles);
    const char *state = u->disabled ? "disabled" : u->enrolled ? "active" : "enrolling";
    if (*(int *)arg)
        printf("{\"user\":\"%s\",\"roles\":\"%s\",\"seller_id\":%lld,\"state\":\"%s\"}\n", u->name,
               roles, (long long)u->seller_id, state);
    else if (cli_zh())
        printf("%-24s %-28s 销售方 %-4lld %s\n", u->name, roles, (long long)u->seller_id,
               u->disabled   ? "已停用"
               : u->enrolled ? "正常"
                             : "待绑定动态口令");
    else
        printf("%-24s %-28s seller %-4lld %s\n", u->name, roles, (long long)u->seller_id, state);
}

static int users_list(fp_store *s, const users_args *k)
{
    int json = k->json;
    if (fp_store_users(s, print_user, &json) < 0) {
        cli_error("无法读取用户", "cannot read the users");
        return 1;
    }
    return 0;
}

/* disable (reset 0) or reset-2fa (reset 1) of the user k->user. */
static int users_change(fp_store *s, const users_args *k, int reset)
{
    fp_user u;
    fp_err err = {0};
    char tok[48] = "", actor[80];
    int rc = fp_store_user_get(s, k->user, &u);
    if (rc < 0) {
        cli_fail("无法读取用户", "cannot read the user",
                 rc == FP_ENOTFOUND ? "no such user / 没有此用户" : "store error");
        return 1;
    }
    if (reset ? new_enrolment(&u, tok) < 0 : (u.disabled = 1, 0)) {
        cli_error("无法生成随机令牌", "cannot generate a random token");
        return 1;
    }
    fp_audit_rec a = cli_audit_rec(actor, reset ? "users.reset_2fa" : "users.disable", NULL, "ok");
    if (fp_store_user_update(s, &u, &a, &err) < 0) {
        cli_fail("无法修改用户", "cannot change the user", err.msg);
        return 1;
    }
    if (reset)
        print_enrolment(u.name, tok);
    else
        printf("%s %s\n", cli_zh() ? "已停用" : "disabled", u.name);
    return 0;
}

static int users_disable(fp_store *s, const users_args *k)
{
    return users_change(s, k, 0);
}

static int users_reset(fp_store *s, const users_args *k)
{
    return users_change(s, k, 1);
}

static int users_check(int add, int list, users_args *k)
{
    if (!list && (!k->user || !k->user[0] || strlen(k->user) > FP_USER_NAME_MAX ||
                  strspn(k->user, "abcdefghijklmnopqrstuvwxyz0123456789._-@") != strlen(k->user))) {
        cli_error("--user 须为 1–64 个小写字母、数字或 ._-@",
                  "--user must be 1-64 lowercase letters, digits or ._-@");
        return 2;
    }
    if (add && (!k->roles_s || fp_roles_parse(k->roles_s, &k->roles) < 0)) {
        cli_error("--roles 有误（见 fapiao users --help）",
                  "bad --roles (see fapiao users --help)");
        return 2;
    }
    long long seller = 1;
    if (cli_number(k->seller_s, "--seller-id", 1, INT64_MAX, &seller, usage) < 0)
        return 2;
    k->seller = seller;
    return 0;
}

int cmd_users(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(fp_store *s, const users_args *k);
    } subs[] = {{"add", users_add},
                {"list", users_list},
                {"disable", users_disable},
                {"reset-2fa", users_reset}};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "users", subs, usage, &rc);
    if (sub < 0)
        return rc;
    users_args k = {0};
    const char *dir = NULL;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--user", 0, &k.user, NULL},
        {"--roles", 0, &k.roles_s, NULL},
        {"--seller-id", 0, &k.seller_s, NULL},
        {"--password-stdin", 1, NULL, &k.pw_stdin},
        {"--json", 1, NULL, &k.json},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    rc = users_check(sub == 0, sub == 1, &k);
    if (rc)
        return rc;
    fp_store *s = sub == 1 ? cli_open_store_ro(dir) : cli_open_store(dir);
    if (!s)
        return 1;
    rc = subs[sub].run(s, &k);
    fp_store_close(s);
    return rc;
}
