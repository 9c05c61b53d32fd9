/* findings.c — the table of finding codes.  Adding a finding is adding a
 * row here and an article kb/<CODE>.md. */
#include "fapiao/findings.h"

#include <stddef.h>
#include <string.h>

static const fp_finding table[] = {
    {"OK", FP_LAYER_NONE, 0, FP_SEV_INFO, "连接正常", "The connection works"},
    /* 1 local setup */
    {"PROXY_ENV_SET", FP_LAYER_LOCAL, 10, FP_SEV_INFO, "设置了代理环境变量",
     "A proxy environment variable is set"},
    {"PROXY_UNREACHABLE", FP_LAYER_LOCAL, 10, FP_SEV_ERROR, "代理服务器无法连接",
     "The proxy does not answer"},
    {"CLOCK_SKEW", FP_LAYER_LOCAL, 10, FP_SEV_ERROR, "本机时间与服务器相差过大",
     "The local clock is far from the server's"},
    /* 2 DNS */
    {"DNS_NXDOMAIN", FP_LAYER_DNS, 20, FP_SEV_ERROR, "域名不存在",
     "The name does not exist (NXDOMAIN)"},
    {"DNS_SERVFAIL", FP_LAYER_DNS, 20, FP_SEV_ERROR, "DNS 服务器解析失败",
     "The DNS server failed (SERVFAIL)"},
    {"DNS_REFUSED", FP_LAYER_DNS, 20, FP_SEV_ERROR, "DNS 服务器拒绝查询",
     "The DNS server refused the query"},
    {"DNS_TIMEOUT", FP_LAYER_DNS, 20, FP_SEV_ERROR, "DNS 查询超时", "The DNS query timed out"},
    {"DNS_NO_ADDRESS", FP_LAYER_DNS, 20, FP_SEV_ERROR, "域名没有所需类型的地址",
     "The name has no address of the wanted family"},
    /* 3 TCP */
    {"TCP_REFUSED", FP_LAYER_TCP, 30, FP_SEV_ERROR, "连接被拒绝（端口未监听）",
     "Connection refused (nothing listens on the port)"},
    {"TCP_TIMEOUT", FP_LAYER_TCP, 30, FP_SEV_ERROR, "连接超时（可能被防火墙过滤）",
     "Connection timed out (filtered by a firewall?)"},
    {"TCP_UNREACHABLE", FP_LAYER_TCP, 30, FP_SEV_ERROR, "网络或主机不可达",
     "Network or host unreachable"},
    {"TCP_RESET", FP_LAYER_TCP, 30, FP_SEV_ERROR, "连接被重置", "The connection was reset"},
    /* 4 TLS */
    {"TLS_HANDSHAKE_FAILED", FP_LAYER_TLS, 40, FP_SEV_ERROR, "TLS 握手失败",
     "The TLS handshake failed"},
    {"TLS_PROTOCOL_MISMATCH", FP_LAYER_TLS, 40, FP_SEV_ERROR, "双方没有共同的 TLS 版本或密码套件",
     "No common TLS version or cipher suite"},
    {"TLS_TIMEOUT", FP_LAYER_TLS, 40, FP_SEV_ERROR, "已连接，但服务器不响应 TLS 握手",
     "Connected, but the server does not answer the TLS handshake"},
    {"TLS_PLAIN_HTTP", FP_LAYER_TLS, 40, FP_SEV_ERROR, "服务器在该端口说的是明文 HTTP",
     "The server speaks plain HTTP on this port"},
    {"TLS_CERT_EXPIRED", FP_LAYER_TLS, 40, FP_SEV_ERROR, "服务器证书已过期",
     "The server certificate has expired"},
    {"TLS_CERT_NOT_YET_VALID", FP_LAYER_TLS, 40, FP_SEV_ERROR, "服务器证书尚未生效",
     "The server certificate is not valid yet"},
    {"TLS_CERT_EXPIRING_SOON", FP_LAYER_TLS, 40, FP_SEV_WARN, "服务器证书 30 天内到期",
     "The server certificate expires within 30 days"},
    {"TLS_HOSTNAME_MISMATCH", FP_LAYER_TLS, 40, FP_SEV_ERROR, "证书与访问的主机名不符",
     "The certificate does not match the host name"},
    {"TLS_SELF_SIGNED", FP_LAYER_TLS, 40, FP_SEV_ERROR, "服务器使用自签名证书且未被信任",
     "The server's certificate is self-signed and not trusted"},
    {"TLS_UNTRUSTED_ISSUER", FP_LAYER_TLS, 40, FP_SEV_ERROR, "证书签发机构不受信任",
     "The certificate's issuer is not trusted"},
    {"TLS_CHAIN_INCOMPLETE", FP_LAYER_TLS, 40, FP_SEV_ERROR,
     "服务器未发送完整的证书链（缺少中间证书）",
     "The server does not send its intermediate certificate"},
    {"TLS_WEAK_KEY", FP_LAYER_TLS, 40, FP_SEV_ERROR, "证书密钥或签名算法过弱",
     "The certificate's key or signature is too weak"},
    {"TLS_CERT_REVOKED", FP_LAYER_TLS, 40, FP_SEV_ERROR, "证书已被吊销（OCSP）",
     "The certificate is revoked (OCSP)"},
    {"TLS_PIN_MISMATCH", FP_LAYER_TLS, 40, FP_SEV_ERROR, "服务器公钥与客户端锁定的公钥不符",
     "The server's key does not match the client's pin"},
    /* 5 HTTP */
    {"HTTP_TLS_REQUIRED", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "该端口需要 HTTPS，却用了 http://",
     "The port wants HTTPS but http:// was used"},
    {"HTTP_WRONG_SERVICE", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "该地址上不是 fapiao 服务",
     "Something other than fapiao answers at this address"},
    {"HTTP_TIMEOUT", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "连接已建立，但服务器不返回 HTTP 应答",
     "Connected, but the server sends no HTTP answer"},
    {"HTTP_REDIRECT", FP_LAYER_HTTP, 50, FP_SEV_WARN, "服务器返回重定向",
     "The server redirects elsewhere"},
    {"HTTP_RATE_LIMITED", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "请求过于频繁被限流（429）",
     "Requests are rate limited (429)"},
    {"HTTP_DEGRADED", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "服务处于降级模式（503）",
     "The service is degraded (503)"},
    {"HTTP_NOT_READY", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "服务未就绪（/readyz 失败）",
     "The service is not ready (/readyz fails)"},
    {"STORE_FAILSTOP", FP_LAYER_HTTP, 50, FP_SEV_ERROR,
     "服务端存储已停写（fail-stop），需运维检查后重启",
     "The server's store stopped writes (fail-stop): an operator must check it and restart"},
    {"HTTP_SERVER_ERROR", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "服务器内部错误（5xx）",
     "The server fails with 5xx"},
    /* 6 API */
    {"AUTH_BAD_CREDENTIALS", FP_LAYER_API, 60, FP_SEV_ERROR, "client_id 或 client_secret 错误",
     "Wrong client_id or client_secret"},
    {"AUTH_TOKEN_EXPIRED", FP_LAYER_API, 60, FP_SEV_ERROR, "访问令牌已过期",
     "The access token has expired"},
    {"AUTH_IP_NOT_ALLOWED", FP_LAYER_API, 60, FP_SEV_ERROR, "来源 IP 不在白名单",
     "The client IP is not on the allowlist"},
    {"AUTH_SCOPE_MISSING", FP_LAYER_API, 60, FP_SEV_ERROR, "凭据缺少所需权限",
     "The credential lacks the needed permission"},
    /* server alerts */
    {"NUMBER_RANGE_LOW", FP_LAYER_SERVER, 70, FP_SEV_WARN, "发票号码段即将用尽",
     "The invoice number range is running out"},
    {"NUMBER_RANGE_EXHAUSTED", FP_LAYER_SERVER, 70, FP_SEV_ERROR, "发票号码段已用尽",
     "The invoice number range is exhausted"},
    /* the tax platform (fapiao doctor --upstream, docs/upstream.md) */
    {"UPSTREAM_IP_NOT_REGISTERED", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "本机出口 IP 未在乐企平台备案",
     "This host's IP address is not registered with the tax platform"},
    {"UPSTREAM_RATE_LIMITED", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "税务平台限流",
     "The tax platform rate-limits this client"},
    {"UPSTREAM_KEY_WRONG", FP_LAYER_API, 60, FP_SEV_ERROR, "SM4 密钥错误，报文无法解密",
     "The SM4 key is wrong: messages do not decrypt"},
    {"UPSTREAM_UNIT_WRONG", FP_LAYER_API, 60, FP_SEV_ERROR, "平台编号或能力编码不正确",
     "The unit numbers or the ability code are wrong"},
    {"UPSTREAM_MAINTENANCE", FP_LAYER_API, 60, FP_SEV_ERROR, "税务平台维护中",
     "The tax platform is under maintenance"},
    /* 4 TLS, seen from the client's side (docs/doctor.md) */
    {"TLS_INTERCEPTED", FP_LAYER_TLS, 40, FP_SEV_ERROR,
     "TLS 连接被中间设备或安全软件拦截并重新签发证书",
     "The TLS connection is intercepted and re-signed on the way"},
    {"TLS_ROOT_MISSING", FP_LAYER_TLS, 40, FP_SEV_ERROR, "客户端信任库缺少证书链所需的根证书",
     "The client's trust store lacks the root the chain needs"},
    {"TLS_CLIENT_TOO_OLD", FP_LAYER_TLS, 40, FP_SEV_ERROR,
     "客户端 TLS 版本或密码套件过旧，服务器不接受",
     "The client's TLS stack is too old for the server"},
    /* the client's network (issue 23; docs/doctor.md) */
    {"PROXY_AUTH_REQUIRED", FP_LAYER_LOCAL, 10, FP_SEV_ERROR, "代理要求认证（407）",
     "The proxy requires authentication (407)"},
    {"PROXY_BLOCKED", FP_LAYER_LOCAL, 10, FP_SEV_ERROR,
     "代理拒绝连接开票服务器（403 或 CONNECT 被拒）",
     "The proxy refuses the tunnel to the server (403 or CONNECT refused)"},
    {"HTTP_CAPTIVE_PORTAL", FP_LAYER_HTTP, 50, FP_SEV_ERROR, "登录页面（强制门户）代替服务器作答",
     "A login page (captive portal) answers instead of the server"},
    {"DNS_WRONG_ADDRESS", FP_LAYER_DNS, 20, FP_SEV_ERROR, "DNS 返回了错误的地址",
     "DNS answers a wrong address"},
    {"IPV6_BROKEN", FP_LAYER_TCP, 30, FP_SEV_ERROR, "IPv6 不通而 IPv4 正常",
     "The IPv6 path fails while IPv4 works"},
    {"TCP_MTU_BLACKHOLE", FP_LAYER_TCP, 30, FP_SEV_ERROR, "MTU 黑洞：小包能通，大包丢失",
     "Path MTU black hole: small packets pass, large ones vanish"},
    {"PROXY_PAC", FP_LAYER_LOCAL, 10, FP_SEV_WARN,
     "PAC 自动配置脚本为服务器选了代理（不运行 PAC 的程序会直连）",
     "The PAC file picks a proxy for the server (programs that do not run PAC connect directly)"},
};

const fp_finding *fp_findings(int *n)
{
    *n = (int)(sizeof table / sizeof table[0]);
    return table;
}

const fp_finding *fp_finding_get(const char *code)
{
    for (size_t i = 0; code && i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].code, code) == 0)
            return &table[i];
    return NULL;
}

const char *fp_layer_name(fp_layer l)
{
    static const char *const names[] = {"none", "local", "dns", "tcp",
                                        "tls",  "http",  "api", "server"};
    return (unsigned)l < sizeof names / sizeof names[0] ? names[l] : "?";
}
