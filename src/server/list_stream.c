/* list_stream.c — GET /v1/invoices answered as it is read from the store.
 *
 * A page holds up to 200 whole invoice documents; built in memory it can
 * be tens of MB, pinned for as long as the client does not read it (a
 * client that never reads held ~41 MB per connection).  Instead the page
 * is read in parts of about PART_BYTES (at least one invoice each), each
 * part with its own short read transaction continuing after the last
 * number sent, and sent with chunked transfer encoding: a connection holds
 * one part at most.  The part in memory counts against the response-memory
 * budget (http_limits.h); docs/security.md "Response memory". */
#include "http_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PART_BYTES (128u << 10)
#define PART_MAX   (64u << 20) /* one document never exceeds this */

typedef struct list_stream {
    fp_server *srv;
    fp_req *r; /* for the bytes logged; valid while MHD reads */
    int64_t seller_id;
    fp_list_query q;
    char *serial, *buyer_tax_id;
    char cursor[FP_NUMBER_LEN + 1];
    int rows, left, finished;
    fp_buf part;
    size_t off, held;
} list_stream;

static void account(list_stream *ls)
{
    if (ls->part.cap > ls->held)
        fp_resp_budget_add(ls->srv, ls->part.cap - ls->held);
    else
        fp_resp_budget_release(ls->srv, ls->held - ls->part.cap);
    ls->held = ls->part.cap;
}

/* The next part into ls->part; 0 or an FP_E… code. */
static int fill(list_stream *ls)
{
    if (ls->part.cap > 2 * PART_BYTES) /* a large document's part: give it back */
        fp_buf_free(&ls->part);
    ls->part.len = 0;
    ls->part.overflow = 0;
    ls->off = 0;
    int first = ls->part.max == 0;
    if (first) {
        fp_buf_init(&ls->part, PART_MAX);
        fp_buf_puts(&ls->part, "{\"invoices\":[");
    }
    char last[FP_NUMBER_LEN + 1] = "";
    int more = 0, before = ls->rows;
    fp_list_query q = ls->q;
    q.limit = ls->left;
    q.cursor = ls->cursor[0] ? ls->cursor : NULL;
    int rc = fp_store_list_invoices_part(ls->srv->o.store, ls->seller_id, &q, PART_BYTES, &ls->part,
                                         &ls->rows, last, &more);
    if (rc < 0)
        return rc;
    ls->left -= ls->rows - before;
    if (ls->rows > before)
        memcpy(ls->cursor, last, sizeof ls->cursor);
    if (!more || ls->left == 0) {
        ls->finished = 1;
        fp_buf_puts(&ls->part, "],\"next_cursor\":");
        if (more)
            fp_buf_printf(&ls->part, "\"%s\"}", ls->cursor);
        else
            fp_buf_puts(&ls->part, "null}");
    }
    if (ls->part.overflow)
        return FP_ENOMEM;
    account(ls);
    return 0;
}

static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    list_stream *ls = cls;
    while (ls->off == ls->part.len) {
        if (ls->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (fill(ls) < 0) /* the status line is gone: cut the answer short */
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = ls->part.len - ls->off;
    if (n > max)
        n = max;
    memcpy(buf, ls->part.p + ls->off, n);
    ls->off += n;
    ls->r->resp_len += n;
    return (ssize_t)n;
}

static void on_free(void *cls)
{
    list_stream *ls = cls;
    fp_resp_budget_release(ls->srv, ls->held);
    fp_buf_free(&ls->part);
    free(ls->serial);
    free(ls->buyer_tax_id);
    free(ls);
}

enum MHD_Result fp_list_invoices_send(fp_req *r, const fp_list_query *q)
{
    list_stream *ls = calloc(1, sizeof *ls);
    if (!ls)
        return MHD_NO;
    ls->srv = r->srv;
    ls->r = r;
    ls->seller_id = r->claims.seller_id;
    ls->q = *q;
    ls->left = q->limit;
    ls->serial = q->serial ? strdup(q->serial) : NULL;
    ls->buyer_tax_id = q->buyer_tax_id ? strdup(q->buyer_tax_id) : NULL;
    ls->q.serial = ls->serial;
    ls->q.buyer_tax_id = ls->buyer_tax_id;
    if (q->cursor)
        snprintf(ls->cursor, sizeof ls->cursor, "%s", q->cursor);
    if ((q->serial && !ls->serial) || (q->buyer_tax_id && !ls->buyer_tax_id)) {
        on_free(ls);
        return MHD_NO;
    }
    /* the first part now: a store failure is still a proper 503 */
    int rc = fill(ls);
    size_t first = ls->held;
    ls->held = 0;
    fp_resp_budget_release(r->srv, first);
    if (rc == FP_ECORRUPT) { /* a stored document no longer parses (docs/storage.md) */
        on_free(ls);
        return fp_corrupt_row(r, "an invoice of this page");
    }
    if (rc < 0) {
        on_free(ls);
        return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
    }
    if (fp_resp_budget_take(r->srv, first) < 0) {
        on_free(ls);
        return fp_resp_budget_refuse(r);
    }
    ls->held = first;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, on_read, ls, on_free);
    if (!resp) {
        on_free(ls);
        return MHD_NO;
    }
    return fp_respond_response(r, 200, "application/json", resp);
}
