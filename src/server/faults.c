/* faults.c — GET/POST /v1/_faults: test-only fault injection, answered
 * only when the server was started with --fault-injection (404 otherwise,
 * as if the route did not exist).  Body (every field optional):
 *   {"store_write": "fail"|"ok", "store_write_delay_ms": N,
 *    "fsync_delay_ms": N, "render": "fail"|"hold"|"ok"}
 * ("hold": the outbox claims no job until "ok"; include/fapiao/outbox.h)
 * The answer is the faults now in force. */
#include "internal.h"
#include "fapiao/outbox.h"
#include "fapiao/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *render_name(int fault)
{
    return fault == FP_RENDER_FAULT_FAIL ? "fail" : fault == FP_RENDER_FAULT_HOLD ? "hold" : "ok";
}

static enum MHD_Result current(fp_req *r)
{
    fp_store_faults f;
    fp_store_get_faults(r->srv->o.store, &f);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 4096);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "store_write", f.write_fail ? "fail" : "ok");
    fp_jw_kint(&w, "store_write_delay_ms", f.write_delay_ms);
    fp_jw_kint(&w, "fsync_delay_ms", f.fsync_delay_ms);
    fp_jw_kstr(&w, "render",
               render_name(r->srv->o.outbox ? fp_outbox_render_fault(r->srv->o.outbox) : 0));
    fp_jw_obj_close(&w);
    return fp_respond_buf(r, 200, &b);
}

static int ok_or_fail(const cJSON *v, int *out, fp_errors *es, const char *field)
{
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || (strcmp(v->valuestring, "ok") && strcmp(v->valuestring, "fail"))) {
        fp_errors_add(es, FPC_INVALID_FIELD, field, "取值须为 ok 或 fail", "must be ok or fail");
        return -1;
    }
    *out = !strcmp(v->valuestring, "fail");
    return 0;
}

static int render_mode(const cJSON *v, int *out, fp_errors *es)
{
    if (!v)
        return 0;
    static const int modes[] = {FP_RENDER_FAULT_NONE, FP_RENDER_FAULT_FAIL, FP_RENDER_FAULT_HOLD};
    for (size_t i = 0; cJSON_IsString(v) && i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(v->valuestring, render_name(modes[i]))) {
            *out = modes[i];
            return 0;
        }
    fp_errors_add(es, FPC_INVALID_FIELD, "render", "取值须为 ok、fail 或 hold",
                  "must be ok, fail or hold");
    return -1;
}

static int delay(const cJSON *v, int *out, fp_errors *es, const char *field)
{
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 60000) {
        fp_errors_add(es, FPC_INVALID_FIELD, field, "须为 0–60000 的毫秒数",
                      "must be 0-60000 milliseconds");
        return -1;
    }
    *out = v->valueint;
    return 0;
}

enum MHD_Result fp_h_faults(fp_req *r)
{
    if (!r->srv->o.fault_injection)
        return fp_problem(r, FPC_NOT_FOUND, "路径不存在", "No such path", NULL);
    if (strcmp(r->method, "GET") == 0)
        return current(r);
    fp_code code = FPC_NONE;
    char detail[160] = "";
    cJSON *j =
        fp_json_parse(r->body.p ? r->body.p : "", r->body.len, 8, &code, detail, sizeof detail);
    if (!j)
        return fp_problem(r, code, NULL, NULL, NULL);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fp_problem(r, FPC_FIELD_TYPE, "请求体须为 JSON 对象",
                          "The body must be a JSON object", NULL);
    }
    fp_errors es = {0};
    fp_store_faults f;
    fp_store_get_faults(r->srv->o.store, &f);
    int render = r->srv->o.outbox ? fp_outbox_render_fault(r->srv->o.outbox) : 0;
    static const char *const known[] = {"store_write", "store_write_delay_ms", "fsync_delay_ms",
                                        "render", NULL};
    for (const cJSON *c = j->child; c; c = c->next) {
        int k = 0;
        while (known[k] && strcmp(known[k], c->string))
            k++;
        if (!known[k])
            fp_errors_add(&es, FPC_UNKNOWN_FIELD, c->string, "未定义的字段", "Unknown field");
    }
    ok_or_fail(cJSON_GetObjectItemCaseSensitive(j, "store_write"), &f.write_fail, &es,
               "store_write");
    delay(cJSON_GetObjectItemCaseSensitive(j, "store_write_delay_ms"), &f.write_delay_ms, &es,
          "store_write_delay_ms");
    delay(cJSON_GetObjectItemCaseSensitive(j, "fsync_delay_ms"), &f.fsync_delay_ms, &es,
          "fsync_delay_ms");
    render_mode(cJSON_GetObjectItemCaseSensitive(j, "render"), &render, &es);
    cJSON_Delete(j);
    if (es.n)
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    fp_store_set_faults(r->srv->o.store, &f);
    if (r->srv->o.outbox)
        fp_outbox_set_render_fault(r->srv->o.outbox, render);
    fprintf(stderr,
            "{\"event\":\"faults\",\"store_write\":\"%s\",\"store_write_delay_ms\":%d,"
            "\"fsync_delay_ms\":%d,\"render\":\"%s\"}\n",
            f.write_fail ? "fail" : "ok", f.write_delay_ms, f.fsync_delay_ms, render_name(render));
    return current(r);
}
