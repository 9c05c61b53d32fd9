/* authz.c — authorization: may this client, as it is now, do this?  Used
 * for every bearer request (server.c) and by the token exchange
 * (handlers_token.c). */
#include "internal.h"
#include "client_cache.h"
#include "fapiao/tls.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* 403 IP_NOT_ALLOWED when the client has an allowlist without ip.  Used by
 * the token exchange too.  1 with *res set when refused. */
int fp_check_client_ip(fp_req *r, const fp_cached_client *c, enum MHD_Result *res)
{
    if (!c->has_allowlist || fp_allowlist_match(&c->allow, r->client_ip))
        return 0;
    char zh[160], en[160];
    snprintf(zh, sizeof zh, "客户端 %s 不允许从地址 %s 访问", c->client_id, r->client_ip);
    snprintf(en, sizeof en, "Client %s may not connect from %s", c->client_id, r->client_ip);
    *res = fp_problem(r, FPC_IP_NOT_ALLOWED, zh, en, NULL);
    return 1;
}

/* After the token's signature and expiry: the client as it is now (revoked
 * within a second), the secret the token was minted from (a token dies with
 * it: rotated out, or its overlap over), the seller, its network allowlist,
 * its client-certificate binding, and the route's permission; sets the
 * request's seller scope.  1 with *res set when refused. */
int fp_authorize(fp_req *r, enum MHD_Result *res)
{
    fp_cached_client c;
    int live = 0;
    int rc = fp_client_cache_get_for_token(r->srv->clients, r->claims.client_id,
                                           r->claims.secret_id, (int64_t)time(NULL), &c, &live);
    if (rc == FP_EIO) {
        *res = fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
        return 1;
    }
    if (rc == FP_ENOTFOUND) { /* signed by us, but for no client this store knows */
        *res = fp_problem(r, FPC_UNAUTHENTICATED, "访问令牌所属的客户端不存在（未知客户端）",
                          "The token's client does not exist (unknown client)", NULL);
        return 1;
    }
    if (rc < 0 || c.revoked) {
        *res = fp_problem(r, FPC_UNAUTHENTICATED, "凭据已吊销", "The credential has been revoked",
                          NULL);
        return 1;
    }
    if (c.seller_id != r->claims.seller_id) { /* the client was moved: its tokens are void */
        *res =
            fp_problem(r, FPC_UNAUTHENTICATED, "访问令牌无效", "The access token is invalid", NULL);
        return 1;
    }
    if (!live) {
        *res = fp_problem(r, FPC_UNAUTHENTICATED,
                          "签发此访问令牌的密钥已被轮换或已过期，请用当前密钥重新获取令牌",
                          "The secret this token was issued for was rotated out or has expired; "
                          "get a new token with the current secret",
                          NULL);
        return 1;
    }
    if (fp_check_client_ip(r, &c, res))
        return 1;
    if (c.cert_sha256[0]) {
        char got[65] = "";
        if (fp_tls_peer_sha256(r->conn, got) < 0 || strcmp(got, c.cert_sha256) != 0) {
            *res = fp_problem(r, FPC_FORBIDDEN, "此凭据必须使用绑定的客户端证书（双向 TLS）",
                              "This credential must present its bound client certificate (mTLS)",
                              NULL);
            return 1;
        }
    }
    if (!fp_roles_allow(c.roles, r->route->perm)) {
        char zh[160], en[160], roles[64];
        fp_roles_format(c.roles, roles, sizeof roles);
        snprintf(zh, sizeof zh, "缺少权限 %s（当前角色：%s）", fp_perm_name(r->route->perm),
                 roles[0] ? roles : "无");
        snprintf(en, sizeof en, "Missing permission %s (roles: %s)", fp_perm_name(r->route->perm),
                 roles[0] ? roles : "none");
        *res = fp_problem(r, FPC_FORBIDDEN, zh, en, NULL);
        return 1;
    }
    r->scope_seller = fp_roles_instance_wide(c.roles) ? 0 : r->claims.seller_id;
    return 0;
}
