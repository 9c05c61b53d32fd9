/* store_admin.c — the store's fail-stop as the API shows it
 * (docs/storage.md): the 503 STORE_FAILSTOP refusal of writes, the 500
 * STORE_CORRUPT_ROW of a stored document that no longer parses, and
 * POST /v1/admin/store/check (admin), the check from the disk on the
 * running server. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "fapiao/json.h"

int fp_failstop_refuse(fp_req *r, int outcome_unknown, enum MHD_Result *res)
{
    char why[320];
    int cause = fp_store_failstop(r->srv->o.store, why, sizeof why);
    if (cause == FP_FAILSTOP_NONE)
        return 0;
    char zh[768], en[768];
    const char *name = fp_store_failstop_name(cause);
    if (outcome_unknown) {
        /* the COMMIT itself failed: the disk may or may not have it */
        snprintf(zh, sizeof zh,
                 "提交时存储发生 I/O 错误（%s），已停止写入：本次请求是否已保存无法确定。运维人员"
                 "检查存储（fapiao check）并重启后，请使用相同的 Idempotency-Key 重试：已保存则返回"
                 "原发票，未保存则开具，绝不会重复开票。原因：%.200s",
                 name, why);
        snprintf(en, sizeof en,
                 "The store failed while committing (%s) and stopped writing: whether this request "
                 "was stored is unknown.  After an operator has checked the store (fapiao check) "
                 "and restarted the service, retry with the same Idempotency-Key: you get the "
                 "invoice if it was stored, or it is issued now, never twice.  Cause: %.200s",
                 name, why);
    } else {
        snprintf(zh, sizeof zh,
                 "存储已停止写入（%s），本次请求未保存任何内容。存储可能已损坏，需运维人员检查"
                 "（fapiao check）并重启服务；之后请使用相同的 Idempotency-Key 重试。原因：%.200s",
                 name, why);
        snprintf(en, sizeof en,
                 "The store has stopped writing (%s); nothing of this request was stored.  The "
                 "store is suspect: an operator must check it (fapiao check) and restart the "
                 "service; then retry with the same Idempotency-Key.  Cause: %.200s",
                 name, why);
    }
    r->retry_after = 300; /* an operator has to act: not a matter of seconds */
    *res = fp_problem(r, FPC_STORE_FAILSTOP, zh, en, NULL);
    return 1;
}

enum MHD_Result fp_corrupt_row(fp_req *r, const char *what)
{
    char zh[256], en[256];
    snprintf(zh, sizeof zh,
             "%s 的存储记录已损坏，无法读取；存储已停止写入，需运维人员检查或从备份恢复", what);
    snprintf(en, sizeof en,
             "The stored record of %s is corrupt and cannot be read; the store stopped writing: an "
             "operator must check it or restore it from a backup",
             what);
    return fp_problem(r, FPC_STORE_CORRUPT_ROW, zh, en, NULL);
}

/* POST /v1/admin/store/check {"full": false}: fsync and drop the cached
 * pages of the database and its WAL, then quick_check (integrity_check with
 * full) on a fresh connection, and look for the last acknowledged
 * invoices and the audit head.  A failure stops writes; a pass does not
 * resume them (a restart does, docs/storage.md). */
enum MHD_Result fp_h_store_check(fp_req *r)
{
    int full = 0;
    if (r->body.len) {
        fp_code code = FPC_NONE;
        char detail[128];
        cJSON *doc = fp_json_parse(r->body.p, r->body.len, 4, &code, detail, sizeof detail);
        if (!doc)
            return fp_problem(r, code, NULL, detail, NULL);
        fp_errors es = {0};
        if (!cJSON_IsObject(doc)) {
            fp_errors_add(&es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象",
                          "The body must be a JSON object");
        } else {
            for (const cJSON *c = doc->child; c; c = c->next)
                if (strcmp(c->string, "full"))
                    fp_errors_add(&es, FPC_UNKNOWN_FIELD, c->string, NULL, NULL);
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, "full");
            if (f && !cJSON_IsBool(f))
                fp_errors_add(&es, FPC_FIELD_TYPE, "full", "须为 true 或 false",
                              "must be true or false");
            full = f && cJSON_IsTrue(f);
        }
        cJSON_Delete(doc);
        if (es.n)
            return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    }
    fp_store *st = r->srv->o.store;
    fp_store_check_report rep;
    fp_store_check_now(st, full, &rep);
    char why[320] = "";
    int cause = fp_store_failstop(st, why, sizeof why);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 16384);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kbool(&w, "ok", rep.ok);
    fp_jw_kstr(&w, "check", full ? "integrity_check" : "quick_check");
    fp_jw_kbool(&w, "from_disk", rep.from_disk);
    fp_jw_kstr(&w, "integrity", rep.integrity);
    fp_jw_kint(&w, "acknowledged_checked", rep.acked_checked);
    fp_jw_kint(&w, "acknowledged_missing", rep.acked_missing);
    fp_jw_kbool(&w, "audit_head_checked", rep.audit_checked);
    if (rep.problems[0])
        fp_jw_kstr(&w, "problems", rep.problems);
    fp_jw_kint(&w, "elapsed_ms", rep.elapsed_ms);
    fp_jw_kstr(&w, "writes", cause == FP_FAILSTOP_NONE ? "allowed" : "stopped");
    if (cause != FP_FAILSTOP_NONE) {
        fp_jw_kstr(&w, "failstop_cause", fp_store_failstop_name(cause));
        fp_jw_kstr(&w, "failstop_reason", why);
    }
    fp_jw_kstr(&w, "next_step_zh",
               cause == FP_FAILSTOP_NONE ? "无需操作"
               : rep.ok                  ? "检查通过：排除磁盘故障后重启服务即恢复写入（重启时会再次从磁盘检查）"
                        : "检查未通过：停止服务，从备份恢复数据库");
    fp_jw_kstr(&w, "next_step_en",
               cause == FP_FAILSTOP_NONE ? "nothing to do"
               : rep.ok ? "check passed: fix the disk, then restart the service to resume "
                          "writes (the restart checks from the disk again)"
                        : "check failed: stop the service and restore the database from a "
                          "backup");
    fp_jw_obj_close(&w);
    return fp_respond_buf(r, 200, &b);
}
