/* authz.c — authorization, in one place: may this client, as it is now,
 * do this?  Both ways in use it: every bearer request (fp_authorize, from
 * server.c) and the token exchange (POST /v1/token, handlers_token.c), so
 * revocation, the network allowlist and the client-certificate binding
 * (mutual TLS) are judged by the same lines and give the same answers.
 *
 * The checks, in order (docs/security.md):
 *   1. revoked                               401 UNAUTHENTICATED
 *   2. a bearer token only: the client's seller is still the token's, and
 *      the secret the token was minted from is live   401 UNAUTHENTICATED
 *   3. the address is in the client's allowlist      403 IP_NOT_ALLOWED
 *   4. a bound client certificate was presented      403 FORBIDDEN
 *   5. a bearer route only: the roles allow its permission  403 FORBIDDEN
 * and a bearer request's seller scope is set.  A console session
 * (handlers_console.c) has no client: only check 5, on the user's roles
 * (fp_authorize_roles). */
#include "internal.h"
#include "client_cache.h"
#include "fapiao/tls.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* 403 IP_NOT_ALLOWED when the client has an allowlist without the
 * request's address.  1 with *res set when refused. */
static int check_client_ip(fp_req *r, const fp_cached_client *c, enum MHD_Result *res)
{
    if (!c->has_allowlist || fp_allowlist_match(&c->allow, r->client_ip))
        return 0;
    char zh[160], en[160];
    snprintf(zh, sizeof zh, "客户端 %s 不允许从地址 %s 访问", c->client_id, r->client_ip);
    snprintf(en, sizeof en, "Client %s may not connect from %s", c->client_id, r->client_ip);
    *res = fp_problem(r, FPC_IP_NOT_ALLOWED, zh, en, NULL);
    return 1;
}

/* 403 FORBIDDEN when the credential is bound to a client certificate and
 * the connection did not present that one (verified). */
static int check_client_cert(fp_req *r, const fp_cached_client *c, enum MHD_Result *res)
{
    if (!c->cert_sha256[0])
        return 0;
    char got[65] = "";
    if (fp_tls_peer_sha256(r->conn, got) == 0 && strcmp(got, c->cert_sha256) == 0)
        return 0;
    *res = fp_problem(r, FPC_FORBIDDEN, "此凭据必须使用绑定的客户端证书（双向 TLS）",
                      "This credential must present its bound client certificate (mTLS)", NULL);
    return 1;
}

/* 403 FORBIDDEN when the caller's roles lack the route's permission. */
static int check_permission(fp_req *r, unsigned held, enum MHD_Result *res)
{
    if (fp_roles_allow(held, r->route->perm))
        return 0;
    char zh[160], en[160], roles[64];
    fp_roles_format(held, roles, sizeof roles);
    snprintf(zh, sizeof zh, "缺少权限 %s（当前角色：%s）", fp_perm_name(r->route->perm),
             roles[0] ? roles : "无");
    snprintf(en, sizeof en, "Missing permission %s (roles: %s)", fp_perm_name(r->route->perm),
             roles[0] ? roles : "none");
    *res = fp_problem(r, FPC_FORBIDDEN, zh, en, NULL);
    return 1;
}

static enum MHD_Result revoked(fp_req *r)
{
    return fp_problem(r, FPC_UNAUTHENTICATED, "凭据已吊销", "The credential has been revoked",
                      NULL);
}

int fp_authorize_client(fp_req *r, const fp_cached_client *c, int secret_live, enum MHD_Result *res)
{
    int bearer = r->route && r->route->auth == AUTH_BEARER;
    if (c->revoked) {
        *res = revoked(r);
        return 1;
    }
    if (bearer && c->seller_id != r->claims.seller_id) { /* moved: its tokens are void */
        *res =
            fp_problem(r, FPC_UNAUTHENTICATED, "访问令牌无效", "The access token is invalid", NULL);
        return 1;
    }
    if (bearer && !secret_live) {
        *res = fp_problem(r, FPC_UNAUTHENTICATED,
                          "签发此访问令牌的密钥已被轮换或已过期，请用当前密钥重新获取令牌",
                          "The secret this token was issued for was rotated out or has expired; "
                          "get a new token with the current secret",
                          NULL);
        return 1;
    }
    if (check_client_ip(r, c, res) || check_client_cert(r, c, res))
        return 1;
    if (bearer)
        return fp_authorize_roles(r, c->roles, c->seller_id, res);
    return 0;
}

int fp_authorize_roles(fp_req *r, unsigned roles, int64_t seller_id, enum MHD_Result *res)
{
    if (check_permission(r, roles, res))
        return 1;
    r->scope_seller = fp_roles_instance_wide(roles) ? 0 : seller_id;
    return 0;
}

/* After the token's signature and expiry: the client as it is now (revoked
 * within a second, client_cache.h) and the secret the token was minted
 * from (a token dies with it: rotated out, or its overlap over). */
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
    if (rc < 0) {
        *res = revoked(r);
        return 1;
    }
    return fp_authorize_client(r, &c, live, res);
}
