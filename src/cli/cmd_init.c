/* cmd_init.c — `fapiao init --data-dir DIR [--json]`: a ready-to-serve data
 * directory with a self-signed certificate, a token signing key, the sample
 * tax code table, a demo seller, a demo number range and a demo client
 * credential (whose secret is printed once and stored only as a hash). */
#include "cli.h"
#include "datadir.h"
#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/store.h"
#include "fapiao/taxid.h"
#include "fapiao/tlsgen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#define FP_SOURCE_DIR "."
#endif

static const char usage[] =
    "usage: fapiao init --data-dir DIR [--json] [--tax-codes FILE] [--base-url URL]\n"
    "                   [--demo-range-size N]\n"
    "  Creates DIR (mode 0700; files in it 0600) with a self-signed TLS certificate\n"
    "  (127.0.0.1, ::1, localhost), a demo seller, a demo number range and a demo\n"
    "  client credential.\n"
    "  创建数据目录（权限 0700，其中文件 0600）：自签名 TLS 证书、演示销售方、演示号码段\n"
    "  和演示客户端凭据。\n";

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int write_secret_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int ok = write(fd, data, n) == (ssize_t)n && fsync(fd) == 0;
    return close(fd) == 0 && ok ? 0 : -1;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return -1;
    FILE *out = fopen(to, "wbx");
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[8192];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ok &= fwrite(buf, 1, n, out) == n;
    fclose(in);
    ok &= fflush(out) == 0 && fsync(fileno(out)) == 0;
    return fclose(out) == 0 && ok ? 0 : -1;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int cmd_init(int argc, char **argv)
{
    const char *dir = NULL, *codes = FP_SOURCE_DIR "/data/taxcodes-sample.csv";
    const char *base_url = "https://127.0.0.1:8443", *range_size = NULL;
    int as_json = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},      {"--tax-codes", 0, &codes, NULL},
        {"--base-url", 0, &base_url, NULL}, {"--demo-range-size", 0, &range_size, NULL},
        {"--json", 1, NULL, &as_json},      {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    /* everything made here (database, keys, certificate) is the service
     * user's only; docs/tls.md "Key file permissions" */
    umask(077);
    long long nrange = 99999999;
    if (range_size) {
        char *end;
        nrange = strtoll(range_size, &end, 10);
        if (*end || nrange < 1 || nrange > 999999999999999LL) {
            cli_error("--demo-range-size 须为 1 到 999999999999999",
                      "--demo-range-size must be 1 to 999999999999999");
            return 2;
        }
    }
    char db[4096], tls[4096], crt[4096], key[4096], tkey[4096], tc[4096];
    cli_dd_path(db, sizeof db, dir, CLI_DD_DB);
    cli_dd_path(tls, sizeof tls, dir, CLI_DD_TLS_DIR);
    cli_dd_path(crt, sizeof crt, dir, CLI_DD_TLS_CERT);
    cli_dd_path(key, sizeof key, dir, CLI_DD_TLS_KEY);
    cli_dd_path(tkey, sizeof tkey, dir, CLI_DD_TOKEN_KEY);
    cli_dd_path(tc, sizeof tc, dir, CLI_DD_TAXCODES);
    if (cli_database_lost(dir))
        return 1;
    if (access(db, F_OK) == 0) {
        char zh[4200], en[4200];
        snprintf(zh, sizeof zh, "%s 已经初始化过（存在 fapiao.db），不会覆盖", dir);
        snprintf(en, sizeof en, "%s is already initialised (fapiao.db exists); not overwriting",
                 dir);
        cli_error(zh, en);
        return 1;
    }
    /* a directory that existed already (e.g. made by a package with 0755)
     * is tightened too */
    if (mkdir_p(dir, 0700) < 0 || chmod(dir, 0700) < 0 || mkdir_p(tls, 0700) < 0 ||
        chmod(tls, 0700) < 0) {
        char zh[4200], en[4200];
        snprintf(zh, sizeof zh, "无法创建目录 %s：%s", dir, strerror(errno));
        snprintf(en, sizeof en, "cannot create %s: %s", dir, strerror(errno));
        cli_error(zh, en);
        return 1;
    }
    fp_err err = {0};
    if (fp_tls_selfsigned(crt, key, 825, &err) < 0) {
        cli_fail("无法生成 TLS 证书", "cannot create the TLS certificate", err.msg);
        return 1;
    }
    unsigned char tk[FP_TOKEN_KEY_LEN];
    if (fp_random(tk, sizeof tk) < 0 || write_secret_file(tkey, tk, sizeof tk) < 0) {
        cli_error("无法写入令牌签名密钥", "cannot write the token signing key");
        return 1;
    }
    if (copy_file(codes, tc) < 0) {
        char zh[4200], en[4200];
        snprintf(zh, sizeof zh, "无法复制税收分类编码表 %s", codes);
        snprintf(en, sizeof en, "cannot copy the tax code table %s", codes);
        cli_error(zh, en);
        return 1;
    }

    fp_store *st = NULL;
    fp_store_opts so = {.path = db, .read_conns = 1, .audit_key_path = cli_audit_key()};
    if (fp_store_open(&so, &st, &err) < 0) {
        cli_fail("无法创建数据库", "cannot create the database", err.msg);
        return 1;
    }
    /* Demo seller: a well-formed USCC made for the demo, not a real company. */
    fp_seller seller = {0};
    snprintf(seller.name, sizeof seller.name, "演示销售方有限公司（示例数据）");
    char uscc[19] = "91440300MA5FDEMX1";
    uscc[17] = fp_uscc_check_char(uscc);
    uscc[18] = 0;
    snprintf(seller.tax_id, sizeof seller.tax_id, "%s", uscc);
    snprintf(seller.address, sizeof seller.address, "深圳市南山区示例路1号");
    snprintf(seller.phone, sizeof seller.phone, "0755-00000000");
    int64_t seller_id = 0;
    int rc = fp_store_add_seller(st, &seller, &seller_id, &err);

    /* Demo number range: this year, province 44, channel 0. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char prefix[6];
    snprintf(prefix, sizeof prefix, "%02u440", (unsigned)(tm.tm_year + 1900) % 100u);
    if (rc == 0)
        rc = fp_store_add_range(st, seller_id, prefix, 1, (int64_t)nrange, NULL, &err);

    fp_client_rec c = {0};
    unsigned char idr[4];
    char idhex[9], secret[FP_SECRET_LEN + 1];
    fp_random(idr, sizeof idr);
    fp_hex(idr, sizeof idr, idhex);
    snprintf(c.client_id, sizeof c.client_id, "demo-%s", idhex);
    c.seller_id = seller_id;
    snprintf(c.scope, sizeof c.scope, "invoices:issue invoices:read");
    if (rc == 0 && (fp_secret_generate(secret) < 0 || fp_random(c.salt, sizeof c.salt) < 0))
        rc = fp_fail(&err, FP_ECRYPTO, "no randomness");
    if (rc == 0) {
        fp_secret_hash(c.salt, secret, c.hash);
        rc = fp_store_add_client(st, &c, &err);
    }
    fp_store_close(st);
    if (rc < 0) {
        cli_fail("无法写入演示数据", "cannot store the demo data", err.msg);
        return 1;
    }
    if (as_json) {
        printf("{\"client_id\":");
        json_str(stdout, c.client_id);
        printf(",\"client_secret\":");
        json_str(stdout, secret);
        printf(",\"data_dir\":");
        json_str(stdout, dir);
        printf(",\"ca_cert\":");
        json_str(stdout, crt);
        printf(",\"base_url\":");
        json_str(stdout, base_url);
        printf("}\n");
    } else {
        printf("初始化完成 / initialised: %s\n", dir);
        printf("  client_id:     %s\n", c.client_id);
        printf("  client_secret: %s\n", secret);
        printf("  %s\n", cli_zh() ? "密钥只显示这一次，请妥善保存。"
                                  : "The secret is shown only once; keep it safe.");
        printf("  TLS certificate: %s\n", crt);
    }
    return 0;
}
