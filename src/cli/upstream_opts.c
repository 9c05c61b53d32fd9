/* upstream_opts.c — the [upstream] keys: name, kind, field, range, default
 * and meaning in one table (config.h reads the file; this checks the
 * values).  Adding a key is adding a row. */
#include "upstream_opts.h"
#include "cli.h"
#include "fapiao/keyfile.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_STR, K_BOOL, K_INT } kind;

typedef struct key {
    const char *name;
    kind kind;
    size_t field; /* offsetof(upstream_conf, …) */
    long min, max;
    const char *def; /* NULL: required (strings) or none */
    const char *en, *zh;
} key;

#define U(x)  offsetof(upstream_conf, x)
#define UC(x) (offsetof(upstream_conf, c) + offsetof(fp_upstream_conf, x))

static const key keys[] = {
    {"url", K_STR, UC(url), 0, 0, NULL,
     "the platform's base URL (https://lqpt.chinatax.gov.cn:8443)",
     "乐企平台地址（https://lqpt.chinatax.gov.cn:8443）"},
    {"ability", K_STR, UC(nlbm), 0, 0, "202007", "the ability code (能力编码)", "能力编码"},
    {"jrdwptbh", K_STR, UC(jrdwptbh), 0, 0, NULL, "the connecting unit's platform number",
     "接入单位平台编号"},
    {"sydwptbh", K_STR, UC(sydwptbh), 0, 0, "jrdwptbh", "the using unit's platform number",
     "使用单位平台编号"},
    {"ptbh", K_STR, UC(ptbh), 0, 0, "jrdwptbh", "the platform number uploads carry (ptbh)",
     "上传发票所带的平台编号（ptbh）"},
    {"key-file", K_STR, U(key_file), 0, 0, NULL,
     "file holding the SM4 key (32 hex digits), mode 0600; never printed",
     "SM4 密钥文件（32 位十六进制），权限 0600；从不打印"},
    {"tax-id", K_STR, U(tax_id), 0, 0, "", "the seller's tax id the CLI queries for (nsrsbh)",
     "命令行查询所用的销售方纳税人识别号"},
    {"sandbox", K_BOOL, UC(sandbox), 0, 1, "false", "use the sandbox paths and flag",
     "使用沙箱地址与沙箱标志"},
    {"case", K_STR, UC(ylbm), 0, 0, "", "the sandbox test case (ylbm)", "沙箱用例编号（ylbm）"},
    {"ca-file", K_STR, UC(ca_file), 0, 0, "", "trust this CA file instead of the system's",
     "信任此 CA 文件（代替系统 CA）"},
    {"connect-timeout-ms", K_INT, UC(connect_timeout_ms), 100, 60000, "5000",
     "time to connect (TCP and TLS)", "建立连接（TCP 与 TLS）的时限"},
    {"timeout-ms", K_INT, UC(timeout_ms), 500, 600000, "30000", "time for a whole call",
     "一次调用的总时限"},
    {"upload-batch", K_INT, U(upload_batch), 1, 1000, "100", "invoices per upload (QDFPSC)",
     "每次上传（QDFPSC）的发票数"},
    {"upload-poll-ms", K_INT, U(upload_poll_ms), 10, 600000, "1000",
     "how often the upload worker looks for new invoices", "上传任务查找新发票的间隔"},
    {"upload-backoff-ms", K_INT, U(upload_backoff_ms), 10, 3600000, "2000",
     "first retry and first result query after an upload", "上传后首次查询结果及首次重试的间隔"},
    {"upload-backoff-max-ms", K_INT, U(upload_backoff_max_ms), 10, 86400000, "300000",
     "longest wait between upload retries", "上传重试的最长间隔"},
    {"numbers-batch", K_INT, U(numbers_batch), 1, FP_UP_MAX_NUMBERS, "1000",
     "numbers per download (QDFPPLFM, at most 5000)", "每次下载的号码数（QDFPPLFM，最多 5000）"},
    {"numbers-low", K_INT, U(numbers_low), 0, 2000000000L, "5000",
     "download more numbers when fewer are left", "剩余号码少于此数时下载新号段"},
    {"numbers-check-ms", K_INT, U(numbers_check_ms), 50, 3600000L, "1000",
     "how often serve compares each seller's numbers left with numbers-low",
     "serve 检查各销售方剩余号码的间隔"},
    {"red-forms-check-ms", K_INT, U(red_check_ms), 50, 3600000L, "1000",
     "how often serve files new red forms and looks up those awaiting the other side",
     "serve 提交新红字确认单并查询待对方确认的确认单的间隔"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

void upstream_conf_help(void)
{
    int zh = cli_zh();
    printf("%s\n", zh ? "配置文件 [upstream] 节的键：" : "[upstream] keys of the config file:");
    for (size_t i = 0; i < NKEYS; i++)
        printf("  %-20s %s%s%s\n", keys[i].name, zh ? keys[i].zh : keys[i].en,
               keys[i].def && *keys[i].def ? zh ? "；默认 " : "; default " : "",
               keys[i].def && *keys[i].def ? keys[i].def : "");
}

static int bad(const char *path, int line, const char *name, const char *zh, const char *en)
{
    char where[4200], z[300], e[300];
    snprintf(where, sizeof where, "%s:%d", path, line);
    snprintf(z, sizeof z, "[upstream] %s：%s", name, zh);
    snprintf(e, sizeof e, "[upstream] %s: %s", name, en);
    cfg_error(line ? where : path, z, e);
    return 1;
}

static int set(upstream_conf *u, const key *k, const char *v, const char *path, int line)
{
    char *p = (char *)u + k->field;
    if (k->kind == K_STR) {
        *(const char **)p = *v ? v : NULL;
        return 0;
    }
    if (k->kind == K_BOOL) {
        int b = cfg_bool(v);
        if (b < 0)
            return bad(path, line, k->name, "须为 true 或 false", "must be true or false");
        *(int *)p = b;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || errno || n < k->min || n > k->max) {
        char zh[96], en[96];
        snprintf(zh, sizeof zh, "须为 %ld 到 %ld 之间的整数", k->min, k->max);
        snprintf(en, sizeof en, "must be a whole number from %ld to %ld", k->min, k->max);
        return bad(path, line, k->name, zh, en);
    }
    if (k->field == UC(connect_timeout_ms) || k->field == UC(timeout_ms))
        *(int *)p = (int)n;
    else
        *(long *)p = n;
    return 0;
}

static int read_key(upstream_conf *u, const char *path)
{
    unsigned char *data = NULL;
    size_t len = 0;
    fp_err err = {0};
    if (fp_keyfile_read(u->key_file, "SM4 密钥", "SM4 key", 256, &data, &len, &err)) {
        cli_fail("无法读取 SM4 密钥文件", "cannot read the SM4 key file", err.msg);
        return 1;
    }
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        data[--len] = 0;
    int rc = fp_sm4_key_parse((const char *)data, u->c.key);
    fp_keyfile_wipe(data, len);
    if (rc)
        return bad(path, 0, "key-file", "内容须为 32 位十六进制数字",
                   "must hold 32 hexadecimal digits");
    return 0;
}

int upstream_conf_read(const char *explicit_path, upstream_conf *u)
{
    memset(u, 0, sizeof *u);
    const char *names[NKEYS];
    cfg_val vals[NKEYS];
    for (size_t i = 0; i < NKEYS; i++)
        names[i] = keys[i].name;
    int required, exists;
    const char *path = cfg_path(explicit_path, &required);
    int problems = cfg_file_read(path, required, "upstream", names, NKEYS, vals, &exists, &u->file);
    if (problems)
        return problems;
    for (size_t i = 0; i < NKEYS; i++) {
        const char *v = vals[i].raw;
        if (!v && keys[i].def && !strcmp(keys[i].def, "jrdwptbh"))
            continue; /* filled in below */
        if (!v)
            v = keys[i].def;
        if (v)
            problems += set(u, &keys[i], v, path, vals[i].line);
    }
    if (problems || !vals[0].raw)
        return problems; /* no url: the upstream is not configured */
    u->configured = 1;
    if (!u->c.sydwptbh)
        u->c.sydwptbh = u->c.jrdwptbh;
    if (!u->c.ptbh)
        u->c.ptbh = u->c.jrdwptbh;
    if (!u->c.jrdwptbh)
        problems += bad(path, 0, "jrdwptbh", "必填", "is required");
    if (!u->key_file)
        problems += bad(path, 0, "key-file", "必填", "is required");
    else
        problems += read_key(u, path);
    return problems;
}

void upstream_conf_free(upstream_conf *u)
{
    memset(u->c.key, 0, sizeof u->c.key);
    cfg_file_free(u->file);
    u->file = NULL;
}
