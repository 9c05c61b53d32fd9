/* cmd_init.c — `fapiao init --data-dir DIR [--demo | --self-signed] [--json]`.
 *
 * Without --demo: a production data directory (docs/sellers.md): the
 * schema, the token signing key, the audit key and a first audit record,
 * and an empty tax code table (`fapiao taxcodes import` fills it) — no
 * seller, credential, number range or certificate: the operator adds
 * their own (`fapiao sellers add`, `ranges import`, `keys create`, the
 * company's certificate in DIR/tls/).  --self-signed adds a self-signed
 * certificate for testing.
 *
 * --demo: ready to serve at once, as `make run` wants: a self-signed
 * certificate, the sample tax code table, a demo seller, a demo number
 * range and a demo client credential (whose secret is printed once and
 * stored only as a hash). */
#include "cli.h"
#include "datadir.h"
#include "fapiao/audit.h"
#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"
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
    "usage: fapiao init --data-dir DIR [--self-signed] [--tax-codes FILE] [--json]\n"
    "       fapiao init --data-dir DIR --demo [--tax-codes FILE] [--base-url URL]\n"
    "                   [--demo-range-size N] [--json]\n"
    "  Creates DIR (mode 0700; files in it 0600) for production: database, token and\n"
    "  audit keys, an empty tax code table (or --tax-codes FILE); no seller, credential,\n"
    "  number range or certificate.  Next: fapiao sellers add, taxcodes import,\n"
    "  ranges import, keys create, and the certificate in DIR/tls/server.crt + .key\n"
    "  (--self-signed: a self-signed one for 127.0.0.1, ::1, localhost, for testing).\n"
    "  --demo: also a self-signed certificate, the sample tax code table, a demo seller,\n"
    "  a demo number range and a demo client credential (what `make run` uses).\n"
    "  创建数据目录（权限 0700，其中文件 0600）。不加 --demo 时为生产用目录：数据库、令牌\n"
    "  与审计密钥、空的税收分类编码表；不含销售方、凭据、号码段和证书（--self-signed\n"
    "  生成测试用自签名证书）。--demo：另含自签名证书、示例编码表、演示销售方、演示号码段\n"
    "  和演示客户端凭据（make run 使用）。\n";

/* The table a production directory starts with: the header only. */
static const char empty_taxcodes[] =
    "# 税收分类编码表：请用 fapiao taxcodes import --file FILE 导入税务平台发布的正式表\n"
    "# The tax classification code table: import the tax platform's official table with\n"
    "# fapiao taxcodes import --file FILE (docs/taxcodes.md)\n"
    "code,short_name,rates,summary\n";

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

/* The demo seller, range and credential; 0 or a store error in err. */
static int add_demo_data(fp_store *st, long long nrange, fp_client_rec *c,
                         char secret[FP_SECRET_LEN + 1], fp_err *err)
{
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
    int rc = fp_store_add_seller(st, &seller, &seller_id, err);

    /* Demo number range: this year, province 44, channel 0. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char prefix[6];
    snprintf(prefix, sizeof prefix, "%02u440", (unsigned)(tm.tm_year + 1900) % 100u);
    if (rc == 0)
        rc = fp_store_add_range(st, seller_id, prefix, 1, (int64_t)nrange, NULL, err);

    unsigned char idr[4];
    char idhex[9];
    fp_random(idr, sizeof idr);
    fp_hex(idr, sizeof idr, idhex);
    snprintf(c->client_id, sizeof c->client_id, "demo-%s", idhex);
    c->seller_id = seller_id;
    snprintf(c->scope, sizeof c->scope, "invoices:issue invoices:read");
    if (rc == 0 && (fp_secret_generate(secret) < 0 || fp_random(c->salt, sizeof c->salt) < 0))
        rc = fp_fail(err, FP_ECRYPTO, "no randomness");
    if (rc == 0) {
        fp_secret_hash(c->salt, secret, c->hash);
        rc = fp_store_add_client(st, c, err);
    }
    return rc;
}

/* The tax code table: FILE (checked as the server will read it) or, for
 * production without one, the header-only table. */
static int write_taxcodes(const char *codes, const char *tc)
{
    if (!codes)
        return write_secret_file(tc, empty_taxcodes, sizeof empty_taxcodes - 1);
    fp_taxcode_table *t = NULL;
    fp_err err = {0};
    if (fp_taxcode_load(codes, &t, &err) < 0) {
        cli_fail("税收分类编码表有误", "the tax code table is malformed", err.msg);
        return -1;
    }
    fp_taxcode_free(t);
    if (copy_file(codes, tc) < 0) {
        char zh[4200], en[4200];
        snprintf(zh, sizeof zh, "无法复制税收分类编码表 %s", codes);
        snprintf(en, sizeof en, "cannot copy the tax code table %s", codes);
        cli_error(zh, en);
        return -1;
    }
    return 0;
}

static void print_result(const char *dir, const char *crt, const char *base_url, int demo, int cert,
                         const fp_client_rec *c, const char *secret, int as_json)
{
    if (as_json) {
        printf("{");
        if (demo) {
            printf("\"client_id\":");
            json_str(stdout, c->client_id);
            printf(",\"client_secret\":");
            json_str(stdout, secret);
            printf(",");
        }
        printf("\"data_dir\":");
        json_str(stdout, dir);
        printf(",\"demo\":%s,\"ca_cert\":", demo ? "true" : "false");
        if (cert)
            json_str(stdout, crt);
        else
            printf("null");
        printf(",\"base_url\":");
        json_str(stdout, base_url);
        printf("}\n");
        return;
    }
    int zh = cli_zh();
    printf("初始化完成 / initialised: %s\n", dir);
    if (demo) {
        printf("  client_id:     %s\n", c->client_id);
        printf("  client_secret: %s\n", secret);
        printf("  %s\n", zh ? "密钥只显示这一次，请妥善保存。"
                            : "The secret is shown only once; keep it safe.");
        printf("  TLS certificate: %s\n", crt);
        return;
    }
    if (cert)
        printf("  %s: %s\n",
               zh ? "自签名证书（仅供测试）" : "self-signed certificate (testing only)", crt);
    printf("%s\n", zh ? "生产用数据目录，尚无销售方、号码段、凭据。接下来："
                      : "A production data directory: no seller, range or credential yet. Next:");
    printf("  fapiao sellers add --data-dir %s --name NAME --uscc USCC ...\n", dir);
    printf("  fapiao taxcodes import --data-dir %s --file TAXCODES.csv\n", dir);
    printf("  fapiao ranges import --data-dir %s --seller-id N --prefix YYPPC --first N --last N\n",
           dir);
    printf("  fapiao keys create --data-dir %s --roles issuer --seller-id N\n", dir);
    if (!cert)
        printf("  %s %s/tls/server.crt + server.key\n",
               zh ? "放入公司的 TLS 证书与私钥：" : "put the company's TLS certificate and key in",
               dir);
}

void cli_tls_missing_hint(const char *crt, const char *key)
{
    if (access(crt, F_OK) == 0 && access(key, F_OK) == 0)
        return;
    char zh[8400], en[8400];
    snprintf(zh, sizeof zh,
             "缺少 TLS 证书或私钥：请把公司的证书链放到 %s、私钥放到 %s（或用 --cert/--key "
             "指定），测试时可用 fapiao init --data-dir DIR --self-signed 生成自签名证书",
             crt, key);
    snprintf(en, sizeof en,
             "the TLS certificate or key is missing: put the company's certificate chain at %s "
             "and its key at %s (or name them with --cert/--key); for testing, "
             "fapiao init --data-dir DIR --self-signed makes a self-signed one",
             crt, key);
    cli_error(zh, en);
}

/* `init --self-signed` on a directory initialised without a certificate:
 * adds one (nothing else is touched).  -1: not that case. */
static int add_self_signed(const char *crt, const char *key)
{
    if (access(crt, F_OK) == 0 || access(key, F_OK) == 0)
        return -1;
    fp_err err = {0};
    if (fp_tls_selfsigned(crt, key, 825, &err) < 0) {
        cli_fail("无法生成 TLS 证书", "cannot create the TLS certificate", err.msg);
        return 1;
    }
    printf("%s: %s\n",
           cli_zh() ? "已生成自签名证书（仅供测试）"
                    : "made a self-signed certificate (testing only)",
           crt);
    return 0;
}

int cmd_init(int argc, char **argv)
{
    const char *dir = NULL, *codes = NULL;
    const char *base_url = "https://127.0.0.1:8443", *range_size = NULL;
    int as_json = 0, demo = 0, self_signed = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--tax-codes", 0, &codes, NULL},
        {"--base-url", 0, &base_url, NULL},
        {"--demo-range-size", 0, &range_size, NULL},
        {"--json", 1, NULL, &as_json},
        {"--demo", 1, NULL, &demo},
        {"--self-signed", 1, NULL, &self_signed},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    if (!demo && range_size) {
        cli_error("--demo-range-size 只能与 --demo 一起使用",
                  "--demo-range-size goes only with --demo");
        return 2;
    }
    if (demo) {
        self_signed = 1; /* the demo serves at once */
        /* the source tree's sample, or the installed package's */
        if (!codes)
            codes = access(FP_SOURCE_DIR "/data/taxcodes-sample.csv", F_OK) == 0
                        ? FP_SOURCE_DIR "/data/taxcodes-sample.csv"
                        : "/usr/share/fapiao/taxcodes-sample.csv";
    }
    /* everything made here (database, keys, certificate) is the service
     * user's only; docs/tls.md "Key file permissions" */
    umask(077);
    long long nrange = 99999999;
    if (cli_number(range_size, "--demo-range-size", 1, 999999999999999LL, &nrange, usage) < 0)
        return 2;
    char db[4096], tls[4096], crt[4096], key[4096], tkey[4096], tc[4096];
    /* --database / FAPIAO_DATABASE / the config key, as serve resolves it:
     * a PostgreSQL URL gets the schema and the demo data there, the keys
     * and certificate here (docs/ha.md) */
    if (cli_db_path(db, sizeof db, dir) < 0) {
        cli_error("--database 过长", "--database is too long");
        return 2;
    }
    int on_url = fp_store_is_url(db);
    cli_dd_path(tls, sizeof tls, dir, CLI_DD_TLS_DIR);
    cli_dd_path(crt, sizeof crt, dir, CLI_DD_TLS_CERT);
    cli_dd_path(key, sizeof key, dir, CLI_DD_TLS_KEY);
    cli_dd_path(tkey, sizeof tkey, dir, CLI_DD_TOKEN_KEY);
    cli_dd_path(tc, sizeof tc, dir, CLI_DD_TAXCODES);
    if (cli_database_lost(dir))
        return 1;
    /* initialised already: the database file, or (on a server database)
     * this directory's token key */
    if (access(on_url ? tkey : db, F_OK) == 0) {
        int rc = self_signed && !demo && mkdir_p(tls, 0700) == 0 ? add_self_signed(crt, key) : -1;
        if (rc >= 0)
            return rc;
        char zh[4200], en[4200];
        const char *what = on_url ? "token.key" : "fapiao.db";
        snprintf(zh, sizeof zh, "%s 已经初始化过（存在 %s），不会覆盖", dir, what);
        snprintf(en, sizeof en, "%s is already initialised (%s exists); not overwriting", dir,
                 what);
        cli_error(zh, en);
        return 1;
    }
    /* a directory that existed already (e.g. made by a package with 0755)
     * is tightened too; tls/ is made for the operator's certificate */
    if (mkdir_p(dir, 0700) < 0 || chmod(dir, 0700) < 0 || mkdir_p(tls, 0700) < 0 ||
        chmod(tls, 0700) < 0) {
        char zh[4200], en[4200];
        snprintf(zh, sizeof zh, "无法创建目录 %s：%s", dir, strerror(errno));
        snprintf(en, sizeof en, "cannot create %s: %s", dir, strerror(errno));
        cli_error(zh, en);
        return 1;
    }
    fp_err err = {0};
    if (self_signed && fp_tls_selfsigned(crt, key, 825, &err) < 0) {
        cli_fail("无法生成 TLS 证书", "cannot create the TLS certificate", err.msg);
        return 1;
    }
    unsigned char tk[FP_TOKEN_KEY_LEN];
    if (fp_random(tk, sizeof tk) < 0 || write_secret_file(tkey, tk, sizeof tk) < 0) {
        cli_error("无法写入令牌签名密钥", "cannot write the token signing key");
        return 1;
    }
    if (write_taxcodes(codes, tc) < 0)
        return 1;

    fp_store *st = NULL;
    /* a server database signs with DIR/audit.key by default, as serve
     * derives it (docs/ha.md) */
    char base[4096], akey[4096], apub[4096];
    const char *audit_key = cli_audit_key();
    cli_dd_path(base, sizeof base, dir, CLI_DD_DB);
    if (on_url && !audit_key && fp_audit_key_paths(base, NULL, akey, apub, sizeof akey) == 0)
        audit_key = akey;
    fp_store_opts so = {
        .path = db, .read_conns = 1, .audit_key_path = audit_key, .key_dir = on_url ? dir : NULL};
    if (fp_store_open(&so, &st, &err) < 0) {
        cli_fail("无法创建数据库", "cannot create the database", err.msg);
        return 1;
    }
    fp_client_rec c = {0};
    char secret[FP_SECRET_LEN + 1] = "";
    int rc;
    if (demo) {
        rc = add_demo_data(st, nrange, &c, secret, &err);
    } else {
        /* the audit chain starts with the directory's creation */
        char actor[80];
        fp_audit_rec a = cli_audit_rec(actor, "init", "production", "ok");
        rc = fp_store_audit(st, &a, &err);
    }
    fp_store_close(st);
    if (rc < 0) {
        cli_fail(demo ? "无法写入演示数据" : "无法写入首条审计记录",
                 demo ? "cannot store the demo data" : "cannot write the first audit record",
                 err.msg);
        return 1;
    }
    print_result(dir, crt, base_url, demo, self_signed, &c, secret, as_json);
    return 0;
}
