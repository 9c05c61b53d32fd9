/* store.c — what the store does the same whatever the backend: freeing an
 * issue request and a red form record. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/store.h"

void fp_issue_req_release(fp_issue_req *r)
{
    if (!r)
        return;
    if (atomic_load(&r->refs) > 0 && atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->response);
    free(r->doc.json);
    free(r);
}

void fp_red_form_rec_clear(fp_red_form_rec *r)
{
    if (!r)
        return;
    free(r->lines);
    memset(r, 0, sizeof *r);
}
