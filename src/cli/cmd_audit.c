/* cmd_audit.c — `fapiao audit verify|export|list|prune`: the tamper-evident
 * audit log from the command line (docs/audit.md).
 *
 * verify, export and list open the database read-only and never need the
 * private key, so an auditor can run them on a copy of the data directory
 * (or, for a bundle, on nothing but the bundle and a trusted audit.pub).
 * Exit status of verify: 0 intact, 1 tampered (the first finding is
 * printed), 2 usage, 3 the database or bundle could not be read. */
#include "cli.h"
#include "datadir.h"
#include "fapiao/clock.h"
#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/crypto.h"
#include "fapiao/json.h"
#include "fapiao/store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_TAMPERED       1
#define EXIT_USAGE          2
#define EXIT_UNREADABLE     3
#define EXIT_TIME_BACKWARDS 4 /* intact, but timestamps go backwards (docs/audit.md) */
#define RETENTION_YEARS     6

static const char usage[] =
    "usage: fapiao audit verify --data-dir DIR [--from-checkpoint N] [--pubkey FILE]\n"
    "                           [--checkpoints FILE|DIR] [--json]\n"
    "       fapiao audit verify --bundle FILE [--pubkey FILE | --data-dir DIR] [--json]\n"
    "       fapiao audit export --data-dir DIR --out FILE [--from ID] [--to ID]\n"
    "       fapiao audit export --data-dir DIR --checkpoint-sink DIR|cmd:COMMAND\n"
    "       fapiao audit list --data-dir DIR [--limit N] [--json]\n"
    "       fapiao audit prune --data-dir DIR --before YYYY-MM-DD [--retention-years N]\n"
    "  verify recomputes the hash chain and checks every signed checkpoint; it names the\n"
    "  first altered, missing or reordered record.  Exit 0 intact, 1 tampered, 2 usage,\n"
    "  3 unreadable, 4 intact but timestamps go back more than 60 s (a clock stepped back).\n"
    "  The public key is DIR/audit.pub (or the .pub beside --audit-key)\n"
    "  unless --pubkey names a trusted copy: verify against a copy kept off this host.\n"
    "  --checkpoints also checks the log against shipped checkpoints (checkpoints.jsonl).\n"
    "  export --checkpoint-sink appends the checkpoints not shipped yet to\n"
    "  DIR/checkpoints.jsonl (make it append-only) or pipes them to COMMAND.\n"
    "  export writes a bundle (JSON lines) that verify --bundle checks without the database.\n"
    "  prune deletes records older than --before up to a signed checkpoint (records are kept\n"
    "  6 years unless --retention-years says otherwise).\n"
    "  verify 重新计算哈希链并校验每个签名检查点，指出第一条被改动、缺失或调换的记录\n"
    "  （退出码 0 完整，1 被篡改，2 用法错误，3 无法读取，4 完整但时间倒退超过 60 秒）；请用\n"
    "  --pubkey 指向另行保管的\n"
    "  公钥副本，--checkpoints 再对照已送出的检查点；export 导出可独立校验的包，\n"
    "  --checkpoint-sink 把尚未送出的签名检查点追加到只可追加的位置；\n"
    "  list 列出最近的审计记录；prune 按保留期（默认 6 年）删除已签名的旧记录。\n";

static int bad_flag(const char *flag, const char *zh_what, const char *en_what)
{
    char zh[256], en[256];
    snprintf(zh, sizeof zh, "%s 须为%s", flag, zh_what);
    snprintf(en, sizeof en, "%s must be %s", flag, en_what);
    cli_error(zh, en);
    return EXIT_USAGE;
}

/* The database (DIR/fapiao.db, or the database setting: docs/ha.md) and
 * the public key in the data directory (the store's default). */
static int data_paths(const char *dir, char db[PATH_MAX], char pub[PATH_MAX])
{
    char key[PATH_MAX], base[PATH_MAX];
    cli_dd_path(base, PATH_MAX, dir, CLI_DD_DB);
    if (cli_check_data_dir(dir, 0, NULL, NULL) < 0)
        return -1;
    if (cli_db_path(db, PATH_MAX, dir) < 0 ||
        fp_audit_key_paths(base, cli_audit_key(), key, pub, PATH_MAX) < 0) {
        cli_error("路径过长", "path too long");
        return -1;
    }
    return 0;
}

static int load_pub(const char *path, unsigned char pk[FP_AUDIT_KEY_LEN])
{
    fp_err err = {0};
    if (fp_audit_pub_load(path, pk, &err) < 0) {
        cli_fail("无法读取审计公钥", "cannot read the audit public key", err.msg);
        return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_report(const fp_audit_report *r, int json, double secs, const unsigned char *key,
                         int key_from_bundle)
{
    char hex[2 * FP_AUDIT_KEY_LEN + 1];
    fp_hex(key, FP_AUDIT_KEY_LEN, hex);
    int zh = cli_zh();
    if (json) {
        fp_buf b;
        fp_jw w;
        fp_buf_init(&b, 0);
        fp_jw_init(&w, &b);
        fp_jw_obj_open(&w);
        fp_jw_kbool(&w, "intact", r->kind == FP_AUDIT_INTACT);
        fp_jw_kint(&w, "records", r->records);
        fp_jw_kint(&w, "first_id", r->first_id);
        fp_jw_kint(&w, "last_id", r->last_id);
        fp_jw_kint(&w, "checkpoints", r->checkpoints);
        fp_jw_key(&w, "last_checkpoint");
        if (r->cp_id) {
            char h[2 * FP_AUDIT_HASH_LEN + 1];
            fp_hex(r->cp_hash, FP_AUDIT_HASH_LEN, h);
            fp_jw_obj_open(&w);
            fp_jw_kint(&w, "id", r->cp_id);
            fp_jw_kint(&w, "upto_id", r->cp_upto);
            fp_jw_kstr(&w, "upto_hash", h);
            fp_jw_obj_close(&w);
        } else {
            fp_jw_null(&w);
        }
        fp_jw_key(&w, "anchor_checkpoint");
        if (r->anchor_cp)
            fp_jw_int(&w, r->anchor_cp);
        else
            fp_jw_null(&w);
        fp_jw_kint(&w, "unsigned_tail", r->unsigned_tail);
        fp_jw_kstr(&w, "pubkey", hex);
        fp_jw_kbool(&w, "pubkey_from_bundle", key_from_bundle);
        fp_jw_key(&w, "finding");
        if (r->kind == FP_AUDIT_INTACT) {
            fp_jw_null(&w);
        } else {
            fp_jw_obj_open(&w);
            fp_jw_kstr(&w, "kind", fp_audit_kind_name(r->kind));
            fp_jw_key(&w, "record");
            if (r->record)
                fp_jw_int(&w, r->record);
            else
                fp_jw_null(&w);
            fp_jw_key(&w, "checkpoint");
            if (r->checkpoint)
                fp_jw_int(&w, r->checkpoint);
            else
                fp_jw_null(&w);
            fp_jw_kstr(&w, "message", r->en);
            fp_jw_kstr(&w, "message_zh", r->zh);
            fp_jw_obj_close(&w);
        }
        fp_jw_key(&w, "timestamps_backwards");
        fp_jw_obj_open(&w);
        fp_jw_kint(&w, "tolerance_s", FP_AUDIT_TS_TOLERANCE);
        fp_jw_kint(&w, "records", r->ts_back);
        fp_jw_key(&w, "first_record");
        if (r->ts_back_first)
            fp_jw_int(&w, r->ts_back_first);
        else
            fp_jw_null(&w);
        fp_jw_kint(&w, "records_max_step_s", r->ts_back_max);
        fp_jw_kint(&w, "invoices", r->inv_back);
        fp_jw_key(&w, "first_invoice");
        if (r->inv_back_first[0])
            fp_jw_str(&w, r->inv_back_first);
        else
            fp_jw_null(&w);
        fp_jw_kint(&w, "invoices_max_step_s", r->inv_back_max);
        fp_jw_obj_close(&w);
        char num[32];
        snprintf(num, sizeof num, "%.3f", secs);
        fp_jw_key(&w, "seconds");
        fp_jw_raw(&w, num);
        fp_jw_obj_close(&w);
        printf("%s\n", b.p);
        fp_buf_free(&b);
        return;
    }
    if (r->kind != FP_AUDIT_INTACT) {
        printf("%s: %s\n", zh ? "审计日志被篡改" : "audit log TAMPERED", zh ? r->zh : r->en);
    } else if (zh) {
        printf("审计日志完整：%lld 条记录", (long long)r->records);
        if (r->records)
            printf("（第 %lld–%lld 条）", (long long)r->first_id, (long long)r->last_id);
        printf("，%lld 个签名检查点", (long long)r->checkpoints);
        if (r->cp_id)
            printf("，最新的第 %lld 号覆盖到第 %lld 条", (long long)r->cp_id,
                   (long long)r->cp_upto);
        if (r->unsigned_tail)
            printf("；其后 %lld 条尚未签名", (long long)r->unsigned_tail);
        printf("\n");
        if (r->anchor_cp)
            printf("从第 %lld 号检查点的签名哈希开始校验\n", (long long)r->anchor_cp);
    } else {
        printf("audit log intact: %lld records", (long long)r->records);
        if (r->records)
            printf(" (%lld–%lld)", (long long)r->first_id, (long long)r->last_id);
        printf(", %lld signed checkpoints", (long long)r->checkpoints);
        if (r->cp_id)
            printf(", the last (#%lld) covers records up to %lld", (long long)r->cp_id,
                   (long long)r->cp_upto);
        if (r->unsigned_tail)
            printf("; %lld records after it are not signed yet", (long long)r->unsigned_tail);
        printf("\n");
        if (r->anchor_cp)
            printf("verified from the signed hash of checkpoint %lld on\n",
                   (long long)r->anchor_cp);
    }
    if (r->ts_back)
        printf(zh ? "警告：时间倒退：%lld 条审计记录的时间早于之前的记录超过 %d 秒（首个第 %lld "
                    "条，最多倒退 %lld 秒）——系统时钟曾被回拨\n"
                  : "WARNING: time went backwards: %lld audit records are more than %d s older "
                    "than an earlier record (first: record %lld, up to %lld s back) — the clock "
                    "was stepped back\n",
               (long long)r->ts_back, FP_AUDIT_TS_TOLERANCE, (long long)r->ts_back_first,
               (long long)r->ts_back_max);
    if (r->inv_back)
        printf(zh ? "警告：开票时间倒退：%lld 张发票的开票时间早于之前保存的发票超过 %d 秒（首张 "
                    "%s，最多倒退 %lld 秒）\n"
                  : "WARNING: issue times went backwards: %lld invoices were issued more than %d "
                    "s before an earlier stored invoice (first: %s, up to %lld s back)\n",
               (long long)r->inv_back, FP_AUDIT_TS_TOLERANCE, r->inv_back_first,
               (long long)r->inv_back_max);
    if (key_from_bundle)
        printf(zh ? "签名公钥取自包本身：%s（请与可信的 audit.pub 比对）\n"
                  : "signatures checked against the key the bundle names: %s (compare it with "
                    "an audit.pub you trust)\n",
               hex);
    printf(zh ? "用时 %.2f 秒\n" : "verified in %.2f s\n", secs);
}

static int audit_verify(const char *dir, const char *bundle, const char *from_s, const char *pub_s,
                        const char *shipped, int json)
{
    if (shipped && (bundle || !dir))
        return cli_error("--checkpoints 须与 --data-dir 一起使用",
                         "--checkpoints goes with --data-dir"),
               EXIT_USAGE;
    if (!dir && !bundle)
        return cli_require(NULL, "--data-dir", usage), EXIT_USAGE;
    long long from = 0;
    if (from_s && bundle)
        return cli_error("--from-checkpoint 不能与 --bundle 一起使用",
                         "--from-checkpoint does not go with --bundle"),
               EXIT_USAGE;
    if (cli_number(from_s, "--from-checkpoint", 1, INT64_MAX, &from, usage) < 0)
        return EXIT_USAGE;
    char db[PATH_MAX] = "", pub[PATH_MAX] = "";
    if (dir && data_paths(dir, db, pub) < 0)
        return EXIT_USAGE;
    if (pub_s)
        snprintf(pub, sizeof pub, "%s", pub_s);
    unsigned char pk[FP_AUDIT_KEY_LEN], bundle_pk[FP_AUDIT_KEY_LEN];
    int have_pk = pub[0] != 0;
    if (have_pk && load_pub(pub, pk) < 0)
        return EXIT_USAGE;
    fp_audit_report rep;
    fp_err err = {0};
    double t0 = now_s();
    int rc = bundle ? fp_audit_verify_bundle(bundle, have_pk ? pk : NULL, bundle_pk, &rep, &err)
                    : fp_audit_verify_db(db, pk, from, &rep, &err);
    if (rc == 0 && shipped && rep.kind == FP_AUDIT_INTACT) {
        /* the chain holds together; does it still say what was shipped? */
        fp_audit_report srep;
        rc = fp_audit_check_shipped(db, pk, shipped, &srep, &err);
        if (rc == FP_ENOTFOUND) {
            cli_fail("找不到已送出的检查点", "no shipped checkpoints there", err.msg);
            return EXIT_USAGE;
        }
        if (rc == 0 && srep.kind != FP_AUDIT_INTACT) {
            rep.kind = srep.kind;
            rep.record = srep.record;
            rep.checkpoint = srep.checkpoint;
            memcpy(rep.en, srep.en, sizeof rep.en);
            memcpy(rep.zh, srep.zh, sizeof rep.zh);
        }
    }
    double secs = now_s() - t0;
    if (rc == FP_ENOTFOUND && !bundle) {
        cli_fail("找不到该检查点", "no such checkpoint", err.msg);
        return EXIT_USAGE;
    }
    if (rc < 0) {
        cli_fail("无法读取审计日志", "cannot read the audit log", err.msg);
        return rc == FP_ENOTFOUND || rc == FP_EINVAL ? EXIT_USAGE : EXIT_UNREADABLE;
    }
    print_report(&rep, json, secs, have_pk ? pk : bundle_pk, bundle && !have_pk);
    if (rep.kind != FP_AUDIT_INTACT)
        return EXIT_TAMPERED;
    return rep.ts_back || rep.inv_back ? EXIT_TIME_BACKWARDS : 0;
}

/* export --checkpoint-sink: what serve --checkpoint-sink does every few
 * seconds, once (for a cron job or a host that does not run serve). */
static int audit_ship(const char *dir, const char *dest)
{
    char db[PATH_MAX], pub[PATH_MAX];
    if (data_paths(dir, db, pub) < 0)
        return EXIT_USAGE;
    fp_err err = {0};
    int64_t n = 0;
    char state[PATH_MAX + 16]; /* what was shipped: beside DIR/fapiao.db, also for a URL */
    cli_dd_path(state, PATH_MAX, dir, CLI_DD_DB);
    size_t sl = strlen(state);
    snprintf(state + sl, sizeof state - sl, ".cp-shipped");
    if (fp_audit_ship(db, dest, state, &n, &err) < 0) {
        cli_fail("审计检查点无法送出", "cannot ship audit checkpoints", err.msg);
        return EXIT_UNREADABLE;
    }
    printf(cli_zh() ? "已送出 %lld 个签名检查点到 %s\n" : "shipped %lld signed checkpoints to %s\n",
           (long long)n, dest);
    return 0;
}

static int audit_export(const char *dir, const char *out, const char *from_s, const char *to_s,
                        const char *sink)
{
    if (cli_require(dir, "--data-dir", usage) < 0)
        return EXIT_USAGE;
    if (sink && (out || from_s || to_s))
        return cli_error("--checkpoint-sink 不能与 --out/--from/--to 一起使用",
                         "--checkpoint-sink does not go with --out/--from/--to"),
               EXIT_USAGE;
    if (sink)
        return audit_ship(dir, sink);
    if (cli_require(out, "--out", usage) < 0)
        return EXIT_USAGE;
    long long from = 0, to = 0;
    if (cli_number(from_s, "--from", 1, INT64_MAX, &from, usage) < 0 ||
        cli_number(to_s, "--to", 1, INT64_MAX, &to, usage) < 0)
        return EXIT_USAGE;
    char db[PATH_MAX], pub[PATH_MAX];
    unsigned char pk[FP_AUDIT_KEY_LEN];
    if (data_paths(dir, db, pub) < 0 || load_pub(pub, pk) < 0)
        return EXIT_USAGE;
    fp_err err = {0};
    int64_t first = 0, last = 0;
    int rc = fp_audit_export(db, pk, from, to, out, &first, &last, &err);
    if (rc < 0) {
        cli_fail("无法导出审计日志", "cannot export the audit log", err.msg);
        return rc == FP_EINVAL || rc == FP_ENOTFOUND ? EXIT_USAGE : EXIT_UNREADABLE;
    }
    printf(cli_zh() ? "已导出第 %lld–%lld 条审计记录到 %s（fapiao audit verify --bundle 校验）\n"
                    : "exported audit records %lld–%lld to %s (check it with fapiao audit "
                      "verify --bundle)\n",
           (long long)first, (long long)last, out);
    return 0;
}

typedef struct list_out {
    int json;
    fp_jw *w;
} list_out;

static void text_of(const fp_audit_text *t, char *out, size_t cap)
{
    if (!t->p)
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.*s", (int)(t->n < cap ? t->n : cap - 1), t->p);
}

static void print_row(const fp_audit_row *r, void *arg)
{
    list_out *o = arg;
    char f[FP_AUDIT__FIELDS][160];
    for (int i = 0; i < FP_AUDIT__FIELDS; i++)
        text_of(&r->f[i], f[i], sizeof f[i]);
    if (o->json) {
        fp_jw *w = o->w;
        fp_jw_obj_open(w);
        fp_jw_kint(w, "id", r->id);
        fp_jw_kint(w, "ts", r->ts);
        for (int i = 0; i < FP_AUDIT__FIELDS; i++)
            fp_jw_kstr(w, fp_audit_field_names[i], r->f[i].p ? f[i] : NULL);
        char h[2 * FP_AUDIT_HASH_LEN + 1] = "";
        if (r->hash && r->hash_len == FP_AUDIT_HASH_LEN)
            fp_hex(r->hash, FP_AUDIT_HASH_LEN, h);
        fp_jw_kstr(w, "hash", h[0] ? h : NULL);
        fp_jw_obj_close(w);
        return;
    }
    char when[32];
    time_t t = (time_t)r->ts + FP_CST_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    printf("%-8lld %-19s  %-16s %-18s %-22s %-8s %-15s %s\n", (long long)r->id, when,
           f[FP_AUDIT_ACTOR], f[FP_AUDIT_ACTION], f[FP_AUDIT_TARGET], f[FP_AUDIT_OUTCOME],
           f[FP_AUDIT_CLIENT_IP], f[FP_AUDIT_REQUEST_ID]);
}

static int audit_list(const char *dir, const char *limit_s, int json)
{
    if (cli_require(dir, "--data-dir", usage) < 0)
        return EXIT_USAGE;
    long long limit = 20;
    if (cli_number(limit_s, "--limit", 1, 1000000, &limit, usage) < 0)
        return EXIT_USAGE;
    char db[PATH_MAX], pub[PATH_MAX];
    if (data_paths(dir, db, pub) < 0)
        return EXIT_USAGE;
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 256u << 20);
    fp_jw_init(&w, &b);
    list_out o = {json, &w};
    if (json)
        fp_jw_arr_open(&w);
    else
        printf("%-8s %-19s  %-16s %-18s %-22s %-8s %-15s %s\n", "ID",
               cli_zh() ? "时间（北京时间）" : "TIME (CST)", "ACTOR", "ACTION", "TARGET", "OUTCOME",
               "CLIENT IP", "REQUEST ID");
    fp_err err = {0};
    if (fp_audit_list(db, (int)limit, print_row, &o, &err) < 0) {
        fp_buf_free(&b);
        cli_fail("无法读取审计日志", "cannot read the audit log", err.msg);
        return EXIT_UNREADABLE;
    }
    if (json) {
        fp_jw_arr_close(&w);
        printf("%s\n", b.overflow ? "[]" : b.p);
    }
    fp_buf_free(&b);
    return 0;
}

static int audit_prune(const char *dir, const char *before_s, const char *years_s)
{
    if (cli_require(dir, "--data-dir", usage) < 0 || cli_require(before_s, "--before", usage) < 0)
        return EXIT_USAGE;
    int64_t before = 0;
    long long years = RETENTION_YEARS;
    if (fp_cst_day_parse(before_s, &before) < 0)
        return bad_flag("--before", "日期 YYYY-MM-DD", "a date YYYY-MM-DD");
    if (cli_number(years_s, "--retention-years", 0, 100, &years, usage) < 0)
        return EXIT_USAGE;
    /* the oldest --before the retention allows: today (CST) minus N years */
    time_t now = time(NULL) + FP_CST_OFFSET_S;
    struct tm tm;
    gmtime_r(&now, &tm);
    tm.tm_year -= (int)years;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    int64_t limit = (int64_t)timegm(&tm) - FP_CST_OFFSET_S;
    if (before > limit) {
        char day[16], zh[160], en[200];
        time_t l = (time_t)limit + FP_CST_OFFSET_S;
        gmtime_r(&l, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        snprintf(zh, sizeof zh, "审计记录保留 %lld 年：--before 不能晚于 %s", (long long)years,
                 day);
        snprintf(en, sizeof en, "audit records are kept %lld years: --before must be %s or earlier",
                 (long long)years, day);
        cli_error(zh, en);
        return EXIT_USAGE;
    }
    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    fp_err err = {0};
    int64_t upto = 0, anchor = 0;
    int rc = fp_store_audit_prune(s, before, "cli", &upto, &anchor, &err);
    fp_store_close(s);
    if (rc < 0) {
        cli_fail("无法清理审计日志", "cannot prune the audit log", err.msg);
        return 1;
    }
    if (!upto)
        printf("%s\n", cli_zh() ? "没有可清理的记录（须早于该日期且止于一个签名检查点）"
                                : "nothing to prune (records must be older than the date and end "
                                  "at a signed checkpoint)");
    else
        printf(cli_zh() ? "已删除第 1–%lld 条审计记录；第 %lld 号检查点作为新的起点保留\n"
                        : "deleted audit records up to %lld; checkpoint %lld stays as the anchor "
                          "the rest verifies from\n",
               (long long)upto, (long long)anchor);
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    static const char *const subs[] = {"verify", "export", "list", "prune"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "audit", subs, usage, &rc);
    if (sub < 0)
        return rc;
    const char *dir = NULL, *from_cp = NULL, *pub = NULL, *bundle = NULL, *out = NULL, *from = NULL,
               *to = NULL, *limit = NULL, *before = NULL, *years = NULL, *shipped = NULL,
               *sink = NULL;
    int json = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--from-checkpoint", 0, &from_cp, NULL},
        {"--pubkey", 0, &pub, NULL},
        {"--bundle", 0, &bundle, NULL},
        {"--out", 0, &out, NULL},
        {"--from", 0, &from, NULL},
        {"--to", 0, &to, NULL},
        {"--limit", 0, &limit, NULL},
        {"--before", 0, &before, NULL},
        {"--retention-years", 0, &years, NULL},
        {"--checkpoints", 0, &shipped, NULL},
        {"--checkpoint-sink", 0, &sink, NULL},
        {"--json", 1, NULL, &json},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0)
        return EXIT_USAGE;
    switch (sub) {
    case 0:
        return audit_verify(dir, bundle, from_cp, pub, shipped, json);
    case 1:
        return audit_export(dir, out, from, to, sink);
    case 2:
        return audit_list(dir, limit, json);
    default:
        return audit_prune(dir, before, years);
    }
}
