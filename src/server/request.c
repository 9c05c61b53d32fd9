/* request.c — small readers of a request the handlers share: a header, the
 * JSON content type, the audit record of the change it makes. */
#include "internal.h"

#include <string.h>

const char *fp_req_header(fp_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int fp_req_is_json(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

cJSON *fp_req_json_body(fp_req *r, int depth, enum MHD_Result *answered)
{
    if (!fp_req_is_json(fp_req_header(r, "Content-Type"))) {
        *answered = fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
        return NULL;
    }
    fp_code code = FPC_NONE;
    char detail[128];
    cJSON *doc =
        fp_json_parse(r->body.p ? r->body.p : "", r->body.len, depth, &code, detail, sizeof detail);
    if (!doc)
        *answered = fp_problem(r, code, NULL, detail, NULL);
    return doc;
}

/* The audit record of a change this request makes (target and outcome
 * left to the store), written in the change's transaction. */
fp_audit_rec fp_req_audit(const fp_req *r, const char *action)
{
    fp_audit_rec a = {.actor = r->claims.client_id,
                      .action = action,
                      .request_id = r->rid,
                      .client_ip = r->client_ip};
    return a;
}
