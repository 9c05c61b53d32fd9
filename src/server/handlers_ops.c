/* handlers_ops.c — for operators and tools: /healthz, /readyz,
 * /openapi.json, /v1/admin/tls-failures (/metrics: metrics_endpoint.c). */
#include "internal.h"
#include "fapiao/health.h"
#include "fapiao/tls.h"
#include "tls_failures.h"

#include <stdlib.h>
#include <string.h>

enum MHD_Result fp_h_healthz(fp_req *r)
{
    return fp_respond_json(r, 200, strdup("{\"status\":\"ok\"}"), strlen("{\"status\":\"ok\"}"));
}

enum MHD_Result fp_h_readyz(fp_req *r)
{
    fp_err err = {0};
    int db_ok = fp_store_ping(r->srv->o.store, &err) == 0;
    int stopping = atomic_load(&r->srv->stopping);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 16384);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_key(&w, "checks");
    fp_jw_arr_open(&w);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "name", "database");
    fp_jw_kbool(&w, "ok", db_ok);
    if (!db_ok)
        fp_jw_kstr(&w, "reason", err.msg);
    fp_jw_obj_close(&w);
    int ready = db_ok && !stopping, degraded = 0;
    if (r->srv->o.health) {
        ready &= fp_health_report(r->srv->o.health, &w, &degraded);
    } else {
        int64_t remaining = 0;
        int range_ok = db_ok && fp_store_numbers_remaining(r->srv->o.store, 0, &remaining) == 0 &&
                       remaining > 0;
        ready &= range_ok;
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "name", "number_range");
        fp_jw_kbool(&w, "ok", range_ok);
        fp_jw_kint(&w, "remaining", remaining);
        /* still ready, but time to import the next range (fapiao ranges import) */
        fp_jw_kbool(&w, "warning", db_ok && remaining < r->srv->o.range_warn);
        fp_jw_kint(&w, "warn_below", r->srv->o.range_warn);
        fp_jw_obj_close(&w);
    }
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "name", "accepting");
    fp_jw_kbool(&w, "ok", !stopping);
    fp_jw_obj_close(&w);
    fp_jw_arr_close(&w);
    char fs_why[320];
    int fs = fp_store_failstop(r->srv->o.store, fs_why, sizeof fs_why);
    if (fs != FP_FAILSTOP_NONE) { /* named at the top too: it needs an operator */
        ready = 0;
        fp_jw_kstr(&w, "failstop", fp_store_failstop_name(fs));
        fp_jw_kstr(&w, "failstop_reason", fs_why);
    }
    fp_jw_kstr(&w, "status",
               ready                    ? "ready"
               : fs != FP_FAILSTOP_NONE ? "failstop"
               : degraded               ? "degraded"
                                        : "not_ready");
    fp_jw_obj_close(&w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    if (ready)
        return fp_respond_json(r, 200, body, len);
    const char *hdrs[] = {"Retry-After", "5", NULL};
    return fp_respond(r, 503, "application/json", body, len, hdrs);
}

enum MHD_Result fp_h_openapi(fp_req *r)
{
    const char *doc = fp_openapi_json();
    return fp_respond_json(r, 200, strdup(doc), strlen(doc));
}

/* GET /v1/admin/tls-failures: which clients fail their TLS handshake, and
 * why (tls_failures.h; docs/security.md "Failed handshakes"). */
enum MHD_Result fp_h_tls_failures(fp_req *r)
{
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 256 * 1024);
    fp_jw_init(&w, &b);
    fp_tls_failures_json(fp_tls_failures_of(r->srv->o.tls), &w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    return body ? fp_respond_json(r, 200, body, len) : MHD_NO;
}
