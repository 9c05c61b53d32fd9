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
