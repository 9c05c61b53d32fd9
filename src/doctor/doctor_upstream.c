/* doctor_upstream.c — `fapiao doctor --upstream`: after DNS, TCP and TLS
 * against the tax platform's address, one harmless query (CXKYSL, the
 * usable rates) through the real envelope (src/upstream/), so that the
 * SM4 key, the unit numbers and the registered IP are checked too.  The
 * call's outcome kind names the finding (table `verdicts`): HTTP-level
 * causes on the http phase, envelope-level ones on the api phase. */
#include "doctor_internal.h"
#include "fapiao/upstream.h"

#include <string.h>

static const struct {
    fp_up_kind kind;
    int phase;
    const char *code;
} verdicts[] = {
    {FP_UP_IP_NOT_REGISTERED, FP_DOC_HTTP, "UPSTREAM_IP_NOT_REGISTERED"},
    {FP_UP_RATE_LIMITED, FP_DOC_HTTP, "UPSTREAM_RATE_LIMITED"},
    {FP_UP_SERVER, FP_DOC_HTTP, "HTTP_SERVER_ERROR"},
    {FP_UP_TIMEOUT_UNKNOWN, FP_DOC_HTTP, "HTTP_TIMEOUT"},
    {FP_UP_CONNECT, FP_DOC_HTTP, "TCP_RESET"},
    {FP_UP_PROTOCOL, FP_DOC_HTTP, "HTTP_WRONG_SERVICE"},
    {FP_UP_KEY_WRONG, FP_DOC_API, "UPSTREAM_KEY_WRONG"},
    {FP_UP_UNIT_WRONG, FP_DOC_API, "UPSTREAM_UNIT_WRONG"},
    {FP_UP_MAINTENANCE, FP_DOC_API, "UPSTREAM_MAINTENANCE"},
};

void fp_doc_layer_upstream(dctx *c)
{
    fp_upstream_conf u = *c->o->upstream;
    u.connect_timeout_ms = u.timeout_ms = c->timeout_ms;
    cJSON *data = NULL;
    fp_up_result res;
    double t0 = fp_doc_now_ms();
    fp_up_kind k = fp_up_rates(&u, &data, &res);
    cJSON_Delete(data);
    double ms = fp_doc_r3(fp_doc_now_ms() - t0);
    cJSON *d = fp_doc_det(c, FP_DOC_API);
    cJSON_AddStringToObject(d, "service", "CXKYSL");
    cJSON_AddStringToObject(d, "kind", fp_up_kind_get(k)->name);
    cJSON_AddNumberToObject(d, "http_status", res.http_status);
    cJSON_AddStringToObject(d, "code", res.code);
    cJSON_AddStringToObject(d, "message", res.message);
    c->r->phase[FP_DOC_HTTP].ms = c->r->phase[FP_DOC_API].ms = ms;
    for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++) {
        if (verdicts[i].kind != k)
            continue;
        if (verdicts[i].phase == FP_DOC_API) {
            c->r->phase[FP_DOC_HTTP].status = FP_PHASE_OK;
            fp_doc_note(c, FP_DOC_HTTP, "HTTP %d", res.http_status);
        }
        fp_doc_hit(c, verdicts[i].phase, verdicts[i].code, "CXKYSL: %s (HTTP %d%s%s)", res.message,
                   res.http_status, res.code[0] ? ", code " : "", res.code);
        return;
    }
    c->r->phase[FP_DOC_HTTP].status = FP_PHASE_OK;
    fp_doc_note(c, FP_DOC_HTTP, "HTTP %d", res.http_status);
    c->r->phase[FP_DOC_API].status = FP_PHASE_OK;
    /* REFUSED / NOT_FOUND: the envelope, key and unit work; the query's own
     * answer is no connection problem */
    fp_doc_note(c, FP_DOC_API, "CXKYSL: %s", fp_up_kind_get(k)->name);
}
