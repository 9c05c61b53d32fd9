/* store_contract.h — the store's contract suite: what any backend behind
 * store.h must do, checked through a table of operations (src/store/
 * internal.h) so the same checks run against every backend the build has
 * (test_store.c) and against deliberately wrong wrappers of one, which the
 * suite must catch (test_store_wrong.c).
 *
 * The guarantees checked, one function each:
 *   numbers       numbers come from the range in order, go on after a
 *                 reopen, and run out with EXHAUSTED;
 *   no_reuse      a request whose commit failed gets no number, and the
 *                 number acknowledged to a later one is new: every number
 *                 acknowledged is stored under the key it was given for;
 *   idempotency   a replayed key gets its first invoice (REPLAY, same
 *                 number and body, also after a reopen), another body under
 *                 the key is KEY_REUSED, and the seller has one invoice;
 *   durable_ack   the answer CREATED comes only once the invoice is
 *                 committed: it is readable when the done callback runs,
 *                 and a request whose write failed is never CREATED and is
 *                 absent after a reopen;
 *   red_caps      red forms of one blue invoice never take more than the
 *                 blue (a second full reversal and a partial one are
 *                 refused ERANGE), and a withdrawn form gives its share
 *                 back;
 *   audit_chain   the audit log read back through a snapshot (what the
 *                 auditor sees): records in id order with no gap, each
 *                 hashing to its stored hash and linked to the one
 *                 before, each checkpoint right after the record it ends
 *                 at and agreeing with it, and the look-ups by id and by
 *                 hash finding the same records;
 *   audit_prune   retention: the records up to the newest checkpoint
 *                 before the cut go, that checkpoint stays as the anchor
 *                 the rest links to, an audit.prune record follows, and a
 *                 second prune with the same cut finds nothing to do;
 *   check         the store check (fp_store_check_now, quick and full)
 *                 passes on a store in use, and says so;
 *   credit        the credit line (credit.h) checked and moved at issuing;
 *   sellers       a seller is created and read back with every field; a
 *                 second seller with the same tax id is refused CONFLICT
 *                 (also by an update) and changes nothing, not even the
 *                 generation; a disable is read back and moves the
 *                 generation; an unknown id is NOTFOUND.
 *
 * Include after check.h.  sc_run() runs every check and says which
 * failed; in collect mode the failures are reported and then taken out of
 * the harness's count, so a test can assert that a wrong backend fails. */
#ifndef FP_TEST_STORE_CONTRACT_H
#define FP_TEST_STORE_CONTRACT_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/store/internal.h"
#include "fapiao/auth.h"
#include "fapiao/clock.h"
#include "fapiao/invoice.h"
#include "fapiao/json.h"
#include "fapiao/rbac.h"
#include "fapiao/red.h"
#include "fapiao/store.h"

#define SC_MAX_REQS  32
#define SC_WAIT_MS   10000
#define SC_ISSUED_AT "2026-01-05T10:00:00+08:00"
#define SC_ISSUED_T  1767578400 /* SC_ISSUED_AT: numbers of year 26 */
#define SC_PREFIX    "26310"

typedef struct sc_env {
    const fp_store_ops *ops;
    const fp_invoice *inv; /* the example invoice, parsed */
    char path[512];
    fp_store *s;
    int64_t seller;
    /* every request submitted (freed only after the store is closed: a
     * wrong backend may still hold one it answered early) */
    fp_issue_req *reqs[SC_MAX_REQS];
    int nreqs;
    /* what each request was told when its done callback ran, and whether
     * an invoice answered CREATED could be read back at that moment */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answered;
    fp_issue_result result[SC_MAX_REQS];
    char number[SC_MAX_REQS][FP_NUMBER_LEN + 1];
    int readable[SC_MAX_REQS];
} sc_env;

static const fp_seller sc_seller = {.name = "契约测试销售方有限公司",
                                    .tax_id = "91310000MA1FL00009"};

static int sc_index(sc_env *e, const fp_issue_req *r)
{
    for (int i = 0; i < e->nreqs; i++)
        if (e->reqs[i] == r)
            return i;
    return -1;
}

static void sc_done(fp_issue_req *r, void *arg)
{
    sc_env *e = arg;
    int i = sc_index(e, r);
    int readable = 0;
    if (r->result == FP_ISSUE_CREATED && r->number[0]) {
        char *doc = NULL;
        size_t len = 0;
        readable = fp_store_get_invoice(e->s, r->seller_id, r->number, &doc, &len) == 0;
        free(doc);
    }
    pthread_mutex_lock(&e->mu);
    if (i >= 0) {
        e->result[i] = r->result;
        snprintf(e->number[i], sizeof e->number[i], "%s", r->number);
        e->readable[i] = readable;
    }
    e->answered++;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static int sc_open(sc_env *e)
{
    fp_store_opts o = {.path = e->path};
    fp_err err = {0};
    e->s = NULL;
    return CHECK_MSG(fp_store_open_ops(e->ops, &o, &e->s, &err) == 0, "open %s: %s", e->path,
                     err.msg);
}

static void sc_close(sc_env *e)
{
    fp_store_close(e->s);
    e->s = NULL;
}

/* A fresh database with one seller and the range first..last. */
static int sc_begin(sc_env *e, const fp_store_ops *ops, const fp_invoice *inv, const char *dir,
                    const char *label, const char *check, int64_t first, int64_t last)
{
    memset(e, 0, sizeof *e);
    e->ops = ops;
    e->inv = inv;
    snprintf(e->path, sizeof e->path, "%s/%s-%s.db", dir, label, check);
    pthread_mutex_init(&e->mu, NULL);
    fp_cond_init_mono(&e->cv);
    if (!sc_open(e))
        return 0;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_add_seller(e->s, &sc_seller, &e->seller, &err) == 0, "seller: %s",
                   err.msg))
        return 0;
    return CHECK_MSG(fp_store_add_range(e->s, e->seller, SC_PREFIX, first, last, NULL, &err) == 0,
                     "range: %s", err.msg);
}

static void sc_end(sc_env *e)
{
    sc_close(e);
    for (int i = 0; i < e->nreqs; i++)
        fp_issue_req_release(e->reqs[i]);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
}

/* Submits one request without waiting: its index in e, or -1.  *want:
 * the count of answers that includes it. */
static int sc_submit(sc_env *e, const char *serial, unsigned char hash_byte, int *want)
{
    if (e->nreqs == SC_MAX_REQS)
        return -1;
    fp_issue_req *r = calloc(1, sizeof *r);
    if (!r || fp_invoice_render(e->inv, &sc_seller, serial, SC_ISSUED_AT, &r->doc) < 0) {
        free(r);
        return -1;
    }
    r->seller_id = e->seller;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    memset(r->request_hash, hash_byte, sizeof r->request_hash);
    memcpy(r->invoice_type, e->inv->invoice_type, sizeof r->invoice_type);
    r->total_with_tax = e->inv->total_with_tax;
    r->total_amount = e->inv->total_amount;
    r->issued_at = SC_ISSUED_T;
    snprintf(r->actor, sizeof r->actor, "contract");
    r->done = sc_done;
    r->arg = e;
    int i = e->nreqs;
    pthread_mutex_lock(&e->mu);
    e->reqs[e->nreqs++] = r;
    e->result[i] = FP_ISSUE_PENDING;
    *want = e->answered + 1;
    pthread_mutex_unlock(&e->mu);
    fp_store_submit(e->s, r);
    return i;
}

/* Waits (bounded) until e has want answers: 1, or 0 after SC_WAIT_MS. */
static int sc_wait(sc_env *e, int want)
{
    int64_t deadline = fp_mono_ns() + (int64_t)SC_WAIT_MS * 1000000;
    pthread_mutex_lock(&e->mu);
    while (e->answered < want && fp_mono_ns() < deadline)
        fp_cond_wait_until(&e->cv, &e->mu, deadline);
    int ok = e->answered >= want;
    pthread_mutex_unlock(&e->mu);
    return ok;
}

/* Issues one request and waits (bounded) for its answer.  Returns its
 * index in e (the answer: e->result[i], e->number[i]), or -1. */
static int sc_issue(sc_env *e, const char *serial, unsigned char hash_byte)
{
    int want = 0, i = sc_submit(e, serial, hash_byte, &want);
    if (i < 0)
        return -1;
    return CHECK_MSG(sc_wait(e, want), "%s: no answer within %d ms", serial, SC_WAIT_MS) ? i : -1;
}

/* For a test file of its own: the example invoice parsed into *inv (its
 * text in *example) and tmpdir (a mkdtemp template) made.  1, or 0 (a
 * failed check).  sc_fixture_end removes both. */
__attribute__((unused)) static int sc_fixture(char *tmpdir, char **example, fp_invoice *inv)
{
    static fp_errors es;
    *example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    return CHECK(*example != NULL) &&
           CHECK(fp_invoice_parse(*example, strlen(*example), NULL, inv, &es) == 0) &&
           CHECK(mkdtemp(tmpdir) != NULL);
}

__attribute__((unused)) static void sc_fixture_end(const char *tmpdir, char *example,
                                                   fp_invoice *inv)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0);
    fp_invoice_clear(inv);
    free(example);
}

static void sc_faults(sc_env *e, int write_fail)
{
    fp_store_faults f = {.write_fail = write_fail};
    fp_store_set_faults(e->s, &f);
}

/* The number stored under serial ("" when none). */
static void sc_stored(sc_env *e, const char *serial, char number[FP_NUMBER_LEN + 1])
{
    unsigned char hash[32];
    char *doc = NULL;
    size_t len = 0;
    number[0] = 0;
    if (fp_store_find_serial(e->s, e->seller, serial, hash, number, &doc, &len) != 0)
        number[0] = 0;
    free(doc);
}

static int sc_rows(sc_env *e)
{
    fp_list_query q = {.limit = 200};
    fp_buf b;
    fp_buf_init(&b, 0);
    int rows = 0, more = 0;
    char last[FP_NUMBER_LEN + 1] = "";
    int rc = fp_store_list_invoices_part(e->s, e->seller, &q, 0, &b, &rows, last, &more);
    fp_buf_free(&b);
    return rc == 0 ? rows : -1;
}

/* ---- the checks ---- */

static void sc_numbers(sc_env *e)
{
    int a = sc_issue(e, "num-a", 1), b = sc_issue(e, "num-b", 2);
    if (!CHECK(a >= 0 && b >= 0))
        return;
    CHECK_EQ_INT(e->result[a], FP_ISSUE_CREATED);
    CHECK_EQ_INT(e->result[b], FP_ISSUE_CREATED);
    CHECK_MSG(!strcmp(e->number[a], SC_PREFIX "000000000000001") &&
                  !strcmp(e->number[b], SC_PREFIX "000000000000002"),
              "numbers %s, %s: want the range's first two in order", e->number[a], e->number[b]);
    sc_close(e);
    if (!sc_open(e))
        return;
    int c = sc_issue(e, "num-c", 3), d = sc_issue(e, "num-d", 4);
    if (!CHECK(c >= 0 && d >= 0))
        return;
    CHECK_MSG(e->result[c] == FP_ISSUE_CREATED &&
                  !strcmp(e->number[c], SC_PREFIX "000000000000003"),
              "after a reopen: %d %s, want the range's third", e->result[c], e->number[c]);
    CHECK_EQ_INT(e->result[d], FP_ISSUE_EXHAUSTED);
    CHECK_MSG(e->number[d][0] == 0, "an exhausted request has number %s", e->number[d]);
}

static void sc_no_reuse(sc_env *e)
{
    int a = sc_issue(e, "reuse-a", 1);
    sc_faults(e, 1);
    int b = sc_issue(e, "reuse-b", 2);
    sc_faults(e, 0);
    int c = sc_issue(e, "reuse-c", 3);
    if (!CHECK(a >= 0 && b >= 0 && c >= 0))
        return;
    CHECK_EQ_INT(e->result[a], FP_ISSUE_CREATED);
    CHECK_MSG(e->result[b] == FP_ISSUE_FAILED && e->number[b][0] == 0,
              "a failed commit answered %d with number \"%s\"", e->result[b], e->number[b]);
    CHECK_EQ_INT(e->result[c], FP_ISSUE_CREATED);
    CHECK_MSG(strcmp(e->number[a], e->number[c]) != 0,
              "number %s acknowledged twice (before and after a failed commit)", e->number[a]);
    char na[FP_NUMBER_LEN + 1], nb[FP_NUMBER_LEN + 1], nc[FP_NUMBER_LEN + 1];
    sc_stored(e, "reuse-a", na);
    sc_stored(e, "reuse-b", nb);
    sc_stored(e, "reuse-c", nc);
    CHECK_MSG(!strcmp(na, e->number[a]) && !strcmp(nc, e->number[c]),
              "acknowledged %s and %s, stored %s and %s", e->number[a], e->number[c], na, nc);
    CHECK_MSG(nb[0] == 0, "the failed request is stored as %s", nb);
}

static void sc_idempotency(sc_env *e)
{
    int a = sc_issue(e, "idem-a", 0x11), r1 = sc_issue(e, "idem-a", 0x11);
    int k = sc_issue(e, "idem-a", 0x22);
    if (!CHECK(a >= 0 && r1 >= 0 && k >= 0))
        return;
    CHECK_EQ_INT(e->result[a], FP_ISSUE_CREATED);
    CHECK_EQ_INT(e->result[r1], FP_ISSUE_REPLAY);
    CHECK_MSG(!strcmp(e->number[a], e->number[r1]), "replay got %s, first %s", e->number[r1],
              e->number[a]);
    const fp_issue_req *ra = e->reqs[a], *rr = e->reqs[r1];
    CHECK_MSG(ra->response && rr->response && ra->response_len == rr->response_len &&
                  !memcmp(ra->response, rr->response, ra->response_len),
              "a replay's body differs from the first answer's");
    CHECK_EQ_INT(e->result[k], FP_ISSUE_KEY_REUSED);
    CHECK_EQ_INT(sc_rows(e), 1);
    sc_close(e);
    if (!sc_open(e))
        return;
    int r2 = sc_issue(e, "idem-a", 0x11);
    if (!CHECK(r2 >= 0))
        return;
    CHECK_MSG(e->result[r2] == FP_ISSUE_REPLAY && !strcmp(e->number[r2], e->number[a]),
              "replay after a reopen: %d %s, first %s", e->result[r2], e->number[r2], e->number[a]);
    CHECK_EQ_INT(sc_rows(e), 1);
}

static void sc_durable_ack(sc_env *e)
{
    sc_faults(e, 1);
    int a = sc_issue(e, "ack-a", 1);
    sc_faults(e, 0);
    int b = sc_issue(e, "ack-b", 2);
    if (!CHECK(a >= 0 && b >= 0))
        return;
    CHECK_MSG(e->result[a] != FP_ISSUE_CREATED, "CREATED although the write failed");
    CHECK_EQ_INT(e->result[b], FP_ISSUE_CREATED);
    CHECK_MSG(e->readable[b], "CREATED (%s) before the invoice could be read back", e->number[b]);
    sc_close(e);
    if (!sc_open(e))
        return;
    char na[FP_NUMBER_LEN + 1], nb[FP_NUMBER_LEN + 1];
    sc_stored(e, "ack-a", na);
    sc_stored(e, "ack-b", nb);
    CHECK_MSG(na[0] == 0, "the failed write is stored after a reopen as %s", na);
    CHECK_MSG(nb[0] && !strcmp(nb, e->number[b]), "acknowledged %s, stored after a reopen: %s",
              e->number[b], nb);
}

/* A red form of the blue invoice (doc) from a request body: 0, or the
 * store's refusal. */
static int sc_red(sc_env *e, const fp_issue_req *blue, const char *body, fp_red_form_rec *out)
{
    fp_red_form f;
    static fp_errors es;
    es.n = 0;
    if (!CHECK_MSG(
            fp_red_form_parse(body, strlen(body), blue->response, blue->response_len, &f, &es) == 0,
            "red form %s does not parse", body))
        return FP_EINVAL;
    fp_err err = {0};
    fp_audit_rec a = {.actor = "contract", .action = "red_form.create"};
    int rc = fp_store_red_form_create(e->s, e->seller, &f, "no_confirmation_needed", 0, out, &es,
                                      &a, &err);
    fp_red_form_clear(&f);
    return rc;
}

static void sc_red_caps(sc_env *e)
{
    int b = sc_issue(e, "blue", 1);
    if (!CHECK(b >= 0) || !CHECK_EQ_INT(e->result[b], FP_ISSUE_CREATED))
        return;
    const fp_issue_req *blue = e->reqs[b];
    fp_red_form_rec f1 = {0}, f2 = {0}, f3 = {0}, f4 = {0};
    CHECK_EQ_INT(sc_red(e, blue, "{\"reason\":\"issue_error\"}", &f1), 0);
    CHECK_MSG(f1.total_amount + f1.total_tax == -e->inv->total_with_tax,
              "a full reversal takes %lld, the blue is %lld",
              (long long)(f1.total_amount + f1.total_tax), (long long)e->inv->total_with_tax);
    CHECK_EQ_INT(sc_red(e, blue, "{\"reason\":\"issue_error\"}", &f2), FP_ERANGE);
    CHECK_EQ_INT(
        sc_red(e, blue,
               "{\"reason\":\"sales_return\",\"items\":[{\"line\":1,\"quantity\":\"-1\"}]}", &f3),
        FP_ERANGE);
    fp_red_form_rec w = {0};
    fp_err err = {0};
    fp_audit_rec a = {.actor = "contract", .action = "red_form.withdraw"};
    CHECK_EQ_INT(fp_store_red_form_act(e->s, e->seller, f1.form_no, "withdraw", &w, &a, &err), 0);
    CHECK_EQ_INT(sc_red(e, blue, "{\"reason\":\"issue_error\"}", &f4), 0);
    fp_red_form_rec_clear(&f1);
    fp_red_form_rec_clear(&f2);
    fp_red_form_rec_clear(&f3);
    fp_red_form_rec_clear(&f4);
    fp_red_form_rec_clear(&w);
}

/* fp_store_red_forms_upstream's rows, by form number: the uuid ("" not
 * filed) of the one asked for, or NULL when it is not due. */
typedef struct sc_due {
    const char *form_no;
    char up_uuid[64];
    int found;
} sc_due;

static void sc_due_row(const fp_red_form_due *d, void *arg)
{
    sc_due *x = arg;
    if (!strcmp(d->form_no, x->form_no)) {
        x->found++;
        snprintf(x->up_uuid, sizeof x->up_uuid, "%s", d->up_uuid);
    }
}

static const char *sc_due_of(sc_env *e, const char *form_no, sc_due *x)
{
    memset(x, 0, sizeof *x);
    x->form_no = form_no;
    CHECK_EQ_INT(fp_store_red_forms_upstream(e->s, sc_due_row, x), 0);
    return x->found == 1 ? x->up_uuid : NULL;
}

/* A red form filed upstream (the red keeper, docs/upstream.md "Red
 * forms"): due until filed, then due while it awaits the buyer; the
 * platform's uuid, number and state stored only while the form is still in
 * the state the keeper saw. */
/* A blue invoice and a full reversal's form of it: the blue's index, or -1. */
static int sc_blue_form(sc_env *e, fp_red_form_rec *f)
{
    int b = sc_issue(e, "blue", 1);
    if (!CHECK(b >= 0) || !CHECK_EQ_INT(e->result[b], FP_ISSUE_CREATED) ||
        !CHECK_EQ_INT(sc_red(e, e->reqs[b], "{\"reason\":\"issue_error\"}", f), 0))
        return -1;
    return b;
}

static void sc_red_upstream(sc_env *e)
{
    fp_red_form_rec f = {0}, g = {0};
    if (sc_blue_form(e, &f) < 0)
        return;
    sc_due x;
    const char *due = sc_due_of(e, f.form_no, &x);
    CHECK_MSG(due && !due[0], "a new form is due for filing");
    fp_red_form_up u = {.uuid = "u-1", .number = "44030026000000000001", .state = "02"};
    fp_err err = {0};
    fp_audit_rec a = {.actor = "upstream", .action = "red_form.file"};
    CHECK_EQ_INT(fp_store_red_form_upstream(e->s, e->seller + 1, f.form_no, &u,
                                            "no_confirmation_needed", "awaiting_buyer", &a, &err),
                 FP_ECONFLICT); /* another seller's number */
    CHECK_EQ_INT(fp_store_red_form_upstream(e->s, e->seller, f.form_no, &u,
                                            "no_confirmation_needed", "awaiting_buyer", &a, &err),
                 0);
    CHECK_EQ_INT(fp_store_red_form_get(e->s, e->seller, f.form_no, &g), 0);
    CHECK_EQ_STR(g.state, "awaiting_buyer");
    CHECK_EQ_STR(g.up_uuid, "u-1");
    CHECK_EQ_STR(g.up_number, "44030026000000000001");
    CHECK_EQ_STR(g.up_state, "02");
    due = sc_due_of(e, f.form_no, &x);
    CHECK_MSG(due && !strcmp(due, "u-1"), "a filed form awaiting the buyer is due");
    /* the keeper's view is stale: nothing stored */
    fp_red_form_up late = {.uuid = "u-2", .number = "x", .state = "01"};
    CHECK_EQ_INT(fp_store_red_form_upstream(e->s, e->seller, f.form_no, &late,
                                            "no_confirmation_needed", NULL, &a, &err),
                 FP_ECONFLICT);
    snprintf(u.state, sizeof u.state, "04");
    a.action = "red_form.sync";
    CHECK_EQ_INT(fp_store_red_form_upstream(e->s, e->seller, f.form_no, &u, "awaiting_buyer",
                                            "confirmed", &a, &err),
                 0);
    fp_red_form_rec_clear(&g);
    CHECK_EQ_INT(fp_store_red_form_get(e->s, e->seller, f.form_no, &g), 0);
    CHECK_EQ_STR(g.state, "confirmed");
    CHECK_EQ_STR(g.up_uuid, "u-1");
    CHECK_EQ_STR(g.up_state, "04");
    CHECK_MSG(!sc_due_of(e, f.form_no, &x), "a filed, confirmed form is not due");
    fp_red_form_rec_clear(&f);
    fp_red_form_rec_clear(&g);
}

/* Answers to filed forms (QDHZQRDQR, sent by the red keeper): stored on
 * the form, its state unchanged, until the platform's state settles them;
 * a form the buyer filed is taken in once, with its uuid. */
static void sc_red_answer(sc_env *e)
{
    fp_red_form_rec f = {0}, g = {0};
    int b = sc_blue_form(e, &f);
    if (b < 0)
        return;
    fp_err err = {0};
    fp_audit_rec a = {.actor = "contract", .action = "red_form.withdraw"};
    CHECK_EQ_INT(fp_store_red_form_answer(e->s, e->seller, f.form_no, "withdraw", &g, &a, &err),
                 1); /* not filed: acted on locally */
    fp_red_form_rec_clear(&g);
    fp_red_form_up u = {.uuid = "u-9", .number = "44030026000000000009", .state = "02"};
    CHECK_EQ_INT(fp_store_red_form_upstream(e->s, e->seller, f.form_no, &u,
                                            "no_confirmation_needed", "awaiting_buyer", &a, &err),
                 0);
    CHECK_EQ_INT(fp_store_red_form_answer(e->s, e->seller, f.form_no, "confirm", &g, &a, &err),
                 FP_ECONFLICT); /* ours: the buyer confirms it */
    fp_red_form_rec_clear(&g);
    CHECK_EQ_INT(fp_store_red_form_answer(e->s, e->seller, f.form_no, "withdraw", &g, &a, &err), 0);
    CHECK_EQ_STR(g.state, "awaiting_buyer");
    CHECK_EQ_STR(g.up_answer, "C");
    fp_red_form_rec_clear(&g);
    CHECK_EQ_INT(fp_store_red_form_answer(e->s, e->seller, f.form_no, "withdraw", &g, &a, &err),
                 FP_ECONFLICT); /* one answer at a time */
    fp_red_form_rec_clear(&g);
    sc_due x;
    CHECK_MSG(sc_due_of(e, f.form_no, &x) != NULL, "a form with an answer to send is due");
    fp_red_form_up w = u;
    snprintf(w.state, sizeof w.state, "08");
    CHECK_EQ_INT(fp_store_red_form_upstream(e->s, e->seller, f.form_no, &w, "awaiting_buyer",
                                            "withdrawn", &a, &err),
                 0);
    CHECK_EQ_INT(fp_store_red_form_get(e->s, e->seller, f.form_no, &g), 0);
    CHECK_EQ_STR(g.state, "withdrawn");
    CHECK_EQ_STR(g.up_answer, ""); /* settled */
    CHECK_MSG(!sc_due_of(e, f.form_no, &x), "a settled, withdrawn form is not due");
    fp_red_form_rec_clear(&g);
    /* the buyer's form, taken in once */
    fp_red_form rf;
    static fp_errors es;
    es.n = 0;
    const char *body = "{\"reason\":\"issue_error\",\"initiated_by\":\"buyer\"}";
    const fp_issue_req *blue = e->reqs[b];
    fp_red_form_up in = {.uuid = "u-10", .number = "44030026000000000010", .state = "03"};
    fp_audit_rec ai = {.actor = "upstream", .action = "red_form.incoming"};
    for (int i = 0; i < 2; i++) {
        if (!CHECK_EQ_INT(
                fp_red_form_parse(body, strlen(body), blue->response, blue->response_len, &rf, &es),
                0))
            return;
        CHECK_EQ_INT(fp_store_red_form_adopt(e->s, e->seller, &rf, "awaiting_seller", 0, &in, &g,
                                             &es, &ai, &err),
                     i == 0 ? 0 : FP_ECONFLICT);
        if (i == 0) {
            CHECK_EQ_STR(g.state, "awaiting_seller");
            CHECK_EQ_STR(g.initiated_by, "buyer");
            CHECK_EQ_STR(g.up_uuid, "u-10");
            CHECK_EQ_STR(g.up_state, "03");
        }
        fp_red_form_clear(&rf);
        fp_red_form_rec_clear(&g);
    }
    fp_red_form_rec_clear(&f);
}

typedef struct sc_chain {
    int64_t rows, cps, last_id, bad_order, bad_hash, bad_link, bad_cp;
    unsigned char last_hash[FP_AUDIT_HASH_LEN];
    int64_t first_id;
} sc_chain;

static int sc_chain_row(const fp_audit_row *r, void *arg)
{
    sc_chain *c = arg;
    if (!c->rows++)
        c->first_id = r->id;
    else if (r->id != c->last_id + 1)
        c->bad_order++;
    unsigned char h[FP_AUDIT_HASH_LEN];
    int linked = r->prev_len == FP_AUDIT_HASH_LEN &&
                 (c->rows == 1 || memcmp(r->prev_hash, c->last_hash, FP_AUDIT_HASH_LEN) == 0);
    if (!linked)
        c->bad_link++;
    if (r->prev_len == FP_AUDIT_HASH_LEN)
        fp_audit_hash(r, r->prev_hash, h);
    if (r->hash_len != FP_AUDIT_HASH_LEN || r->prev_len != FP_AUDIT_HASH_LEN ||
        memcmp(h, r->hash, FP_AUDIT_HASH_LEN) != 0)
        c->bad_hash++;
    else
        memcpy(c->last_hash, r->hash, FP_AUDIT_HASH_LEN);
    c->last_id = r->id;
    return 0;
}

static int sc_chain_cp(const fp_audit_cp *cp, void *arg)
{
    sc_chain *c = arg;
    c->cps++;
    /* right after the record it ends at, and signed over that record's hash */
    if (cp->malformed || cp->upto_id != c->last_id ||
        memcmp(cp->upto_hash, c->last_hash, FP_AUDIT_HASH_LEN) != 0)
        c->bad_cp++;
    return 0;
}

static int sc_chain_snap(fp_audit_snap *a, void *arg)
{
    sc_chain *c = arg;
    fp_err err = {0};
    fp_audit_scan q = {.from = 1, .on_row = sc_chain_row, .on_cp = sc_chain_cp, .arg = c};
    int64_t min_id = 0, max_id = 0;
    CHECK_EQ_INT(a->bounds(a, &min_id, &max_id, &err), 0);
    CHECK_EQ_INT(a->scan(a, &q, &err), 0);
    CHECK_EQ_INT(c->first_id, min_id);
    CHECK_EQ_INT(c->last_id, max_id);
    CHECK_EQ_INT(c->rows, max_id - min_id + 1);
    /* the look-ups agree with the scan */
    unsigned char h[FP_AUDIT_HASH_LEN];
    int64_t id = 0;
    if (CHECK_EQ_INT(a->hash_at(a, max_id, h), 1))
        CHECK(memcmp(h, c->last_hash, FP_AUDIT_HASH_LEN) == 0);
    if (CHECK_EQ_INT(a->find_hash(a, c->last_hash, &id), 1))
        CHECK_EQ_INT(id, max_id);
    fp_audit_cp cp;
    if (CHECK_EQ_INT(a->cp(a, FP_CP_AFTER_ID, 0, &cp, &err), 1)) {
        fp_audit_cp same;
        if (CHECK_EQ_INT(a->cp(a, FP_CP_ID, cp.id, &same, &err), 1))
            CHECK_EQ_INT(same.upto_id, cp.upto_id);
    }
    CHECK_EQ_INT(a->cp(a, FP_CP_FROM_UPTO, max_id + 1, &cp, &err), 0);
    return 0;
}

static void sc_audit_chain(sc_env *e)
{
    fp_err err = {0};
    for (int i = 0; i < 3; i++) {
        char serial[16];
        snprintf(serial, sizeof serial, "audit-%d", i);
        sc_issue(e, serial, (unsigned char)(0x40 + i));
        fp_audit_rec r = {.ts = SC_ISSUED_T,
                          .actor = "contract",
                          .action = "test.event",
                          .target = serial,
                          .request_id = "",
                          .client_ip = "",
                          .outcome = "ok"};
        CHECK_EQ_INT(fp_store_audit(e->s, &r, &err), 0);
        CHECK_MSG(fp_store_audit_checkpoint(e->s, &err) >= 0, "checkpoint: %s", err.msg);
    }
    sc_chain c = {0};
    CHECK_MSG(fp_store_audit_snapshot(e->s, sc_chain_snap, &c, &err) == 0, "snapshot: %s", err.msg);
    CHECK(c.rows >= 3);
    CHECK(c.cps >= 1);
    CHECK_EQ_INT(c.bad_order, 0);
    CHECK_EQ_INT(c.bad_hash, 0);
    CHECK_EQ_INT(c.bad_link, 0);
    CHECK_EQ_INT(c.bad_cp, 0);
}

typedef struct sc_pruned {
    int64_t min_id, anchor_upto;
    unsigned char anchor_hash[FP_AUDIT_HASH_LEN];
    int first_linked, anchor_found;
    int64_t anchor;
} sc_pruned;

static int sc_pruned_row(const fp_audit_row *r, void *arg)
{
    sc_pruned *p = arg;
    if (r->id == p->min_id)
        p->first_linked = r->prev_len == FP_AUDIT_HASH_LEN &&
                          memcmp(r->prev_hash, p->anchor_hash, FP_AUDIT_HASH_LEN) == 0;
    return 0;
}

static int sc_pruned_cp(const fp_audit_cp *cp, void *arg)
{
    (void)cp, (void)arg;
    return 0;
}

static int sc_pruned_snap(fp_audit_snap *a, void *arg)
{
    sc_pruned *p = arg;
    fp_err err = {0};
    int64_t max_id = 0;
    fp_audit_cp cp;
    CHECK_EQ_INT(a->bounds(a, &p->min_id, &max_id, &err), 0);
    p->anchor_found = a->cp(a, FP_CP_ID, p->anchor, &cp, &err) == 1;
    if (p->anchor_found) {
        p->anchor_upto = cp.upto_id;
        memcpy(p->anchor_hash, cp.upto_hash, FP_AUDIT_HASH_LEN);
    }
    fp_audit_scan q = {.from = p->min_id, .on_row = sc_pruned_row, .on_cp = sc_pruned_cp, .arg = p};
    CHECK_EQ_INT(a->scan(a, &q, &err), 0);
    return 0;
}

static void sc_audit_prune(sc_env *e)
{
    fp_err err = {0};
    /* three old records and a checkpoint over them, then two new ones */
    for (int i = 0; i < 5; i++) {
        fp_audit_rec r = {.ts = i < 3 ? 1000 + i : SC_ISSUED_T,
                          .actor = "contract",
                          .action = "test.event",
                          .target = i < 3 ? "old" : "new",
                          .request_id = "",
                          .client_ip = "",
                          .outcome = "ok"};
        CHECK_EQ_INT(fp_store_audit(e->s, &r, &err), 0);
        if (i == 2)
            CHECK_MSG(fp_store_audit_checkpoint(e->s, &err) == 1, "checkpoint: %s", err.msg);
    }
    fp_audit_head h0, h1;
    if (!CHECK_EQ_INT(fp_store_audit_head(e->s, &h0, &err), 0))
        return;
    int64_t upto = -1, anchor = -1;
    if (!CHECK_MSG(fp_store_audit_prune(e->s, 2000, "contract", &upto, &anchor, &err) == 0,
                   "prune: %s", err.msg))
        return;
    CHECK_EQ_INT(upto, h0.cp_upto); /* the three old ones (and any before them) */
    CHECK_EQ_INT(anchor, h0.cp_id);
    /* the anchor stays, the next record links to it, audit.prune follows */
    sc_pruned p = {.anchor = anchor};
    CHECK_MSG(fp_store_audit_snapshot(e->s, sc_pruned_snap, &p, &err) == 0, "snapshot: %s",
              err.msg);
    CHECK_EQ_INT(p.min_id, upto + 1);
    CHECK(p.anchor_found);
    CHECK_EQ_INT(p.anchor_upto, upto);
    CHECK(p.first_linked);
    CHECK_EQ_INT(fp_store_audit_head(e->s, &h1, &err), 0);
    CHECK_EQ_INT(h1.last_id, h0.last_id + 1);
    /* nothing more to prune at the same cut */
    CHECK_EQ_INT(fp_store_audit_prune(e->s, 2000, "contract", &upto, &anchor, &err), 0);
    CHECK_EQ_INT(upto, 0);
}

static void sc_check_now(sc_env *e)
{
    sc_issue(e, "check-1", 0x51);
    for (int full = 0; full <= 1; full++) {
        fp_store_check_report rep;
        CHECK_MSG(fp_store_check_now(e->s, full, &rep) == 0, "check (full %d): %s", full,
                  rep.problems);
        CHECK(rep.ok);
        CHECK_EQ_STR(rep.integrity, "ok");
    }
}

typedef struct sc_count {
    int n;
    int64_t last_id;
} sc_count;

static void sc_count_seller(const fp_seller *x, void *arg)
{
    sc_count *c = arg;
    c->n++;
    c->last_id = x->id;
}

static void sc_sellers(sc_env *e)
{
    fp_seller *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);
    if (!CHECK(x && y))
        goto out;
    snprintf(x->name, sizeof x->name, "契约测试第二销售方有限公司");
    snprintf(x->tax_id, sizeof x->tax_id, "91310000MA1FL0000N");
    snprintf(x->address, sizeof x->address, "上海市浦东新区契约路2号");
    snprintf(x->phone, sizeof x->phone, "021-00000000");
    snprintf(x->bank, sizeof x->bank, "契约银行上海分行");
    snprintf(x->account, sizeof x->account, "6222000000000000");
    snprintf(x->tax_bureau, sizeof x->tax_bureau, "13101150000");
    snprintf(x->drawer, sizeof x->drawer, "王五");
    snprintf(x->remark, sizeof x->remark, "契约备注");
    fp_err err = {0};
    fp_audit_rec a = {.actor = "contract", .action = "sellers.add"};
    int64_t id = 0, g0 = -1, g1 = -1, g2 = -1, g3 = -1;
    CHECK_EQ_INT(fp_store_sellers_generation(e->s, &g0), 0);
    if (!CHECK_EQ_INT(fp_store_seller_create(e->s, x, &id, &a, &err), 0) || !CHECK(id > 0))
        goto out;
    CHECK_EQ_INT(fp_store_sellers_generation(e->s, &g1), 0);
    CHECK_MSG(g1 != g0, "the generation stayed %lld across a create", (long long)g0);
    if (CHECK_EQ_INT(fp_store_get_seller(e->s, id, y), 0)) {
        CHECK_EQ_INT((int)y->id, (int)id);
        CHECK_EQ_STR(y->name, x->name);
        CHECK_EQ_STR(y->tax_id, x->tax_id);
        CHECK_EQ_STR(y->address, x->address);
        CHECK_EQ_STR(y->phone, x->phone);
        CHECK_EQ_STR(y->bank, x->bank);
        CHECK_EQ_STR(y->account, x->account);
        CHECK_EQ_STR(y->tax_bureau, x->tax_bureau);
        CHECK_EQ_STR(y->drawer, x->drawer);
        CHECK_EQ_STR(y->remark, x->remark);
        CHECK_EQ_INT(y->disabled, 0);
    }
    /* the same tax id again: refused, nothing added, generation unmoved */
    sc_count before = {0}, after = {0};
    CHECK_EQ_INT(fp_store_sellers(e->s, sc_count_seller, &before), 0);
    int64_t dup = 0;
    snprintf(x->name, sizeof x->name, "重复的销售方");
    CHECK_EQ_INT(fp_store_seller_create(e->s, x, &dup, &a, &err), FP_ECONFLICT);
    CHECK_EQ_INT(fp_store_sellers(e->s, sc_count_seller, &after), 0);
    CHECK_EQ_INT(after.n, before.n);
    CHECK_EQ_INT(fp_store_sellers_generation(e->s, &g2), 0);
    CHECK_MSG(g2 == g1, "a refused create moved the generation %lld -> %lld", (long long)g1,
              (long long)g2);
    /* the first seller may not take the second's tax id either */
    fp_seller *first = calloc(1, sizeof *first);
    if (CHECK(first) && CHECK_EQ_INT(fp_store_get_seller(e->s, e->seller, first), 0)) {
        snprintf(first->tax_id, sizeof first->tax_id, "%s", x->tax_id);
        CHECK_EQ_INT(fp_store_seller_update(e->s, first, &a, &err), FP_ECONFLICT);
    }
    free(first);
    /* disable: read back, the generation moves */
    y->disabled = 1;
    fp_audit_rec d = {.actor = "contract", .action = "sellers.disable"};
    CHECK_EQ_INT(fp_store_seller_update(e->s, y, &d, &err), 0);
    memset(x, 0, sizeof *x);
    if (CHECK_EQ_INT(fp_store_get_seller(e->s, id, x), 0))
        CHECK_EQ_INT(x->disabled, 1);
    CHECK_EQ_INT(fp_store_sellers_generation(e->s, &g3), 0);
    CHECK_MSG(g3 != g2, "the generation stayed %lld across a disable", (long long)g2);
    y->id = 999999;
    CHECK_EQ_INT(fp_store_seller_update(e->s, y, &d, &err), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_store_get_seller(e->s, 999999, x), FP_ENOTFOUND);
out:
    free(x);
    free(y);
}

static void sc_count_silence(const fp_silence *x, void *arg)
{
    sc_count *c = arg;
    c->n++;
    (void)x;
}

/* alert silences (docs/alerting.md): stored, listed while active, expired
 * once (a second expire finds none), each change audited */
static void sc_silences(sc_env *e)
{
    fp_silence x = {.starts_at = 1000, .ends_at = 8200};
    snprintf(x.matchers, sizeof x.matchers, "alertname=FapiaoDegraded,severity=P1");
    snprintf(x.comment, sizeof x.comment, "维护");
    snprintf(x.created_by, sizeof x.created_by, "contract");
    fp_err err = {0};
    fp_audit_rec a = {.actor = "contract", .action = "alerts.silence"};
    int64_t id = 0;
    if (!CHECK_EQ_INT(fp_store_silence_create(e->s, &x, &id, &a, &err), 0) || !CHECK(id > 0))
        return;
    sc_count at = {0}, after = {0}, all = {0};
    CHECK_EQ_INT(fp_store_silences(e->s, 2000, sc_count_silence, &at), 0);
    CHECK_EQ_INT(at.n, 1);
    CHECK_EQ_INT(fp_store_silences(e->s, 9000, sc_count_silence, &after), 0);
    CHECK_EQ_INT(after.n, 0);
    fp_audit_rec x2 = {.actor = "contract", .action = "alerts.expire"};
    CHECK_EQ_INT(fp_store_silence_expire(e->s, id, 3000, &x2, &err), 0);
    CHECK_EQ_INT(fp_store_silence_expire(e->s, id, 3001, &x2, &err), FP_ENOTFOUND);
    at.n = 0;
    CHECK_EQ_INT(fp_store_silences(e->s, 3500, sc_count_silence, &at), 0);
    CHECK_EQ_INT(at.n, 0);
    CHECK_EQ_INT(fp_store_silences(e->s, 0, sc_count_silence, &all), 0);
    CHECK_EQ_INT(all.n, 1);
    x.ends_at = x.starts_at;
    CHECK_EQ_INT(fp_store_silence_create(e->s, &x, &id, &a, &err), FP_EINVAL);
}

static void sc_count_user(const fp_user *u, void *arg)
{
    sc_count *c = arg;
    c->n++;
    (void)u;
}

/* console users (docs/console.md): a taken name refused, a row read back
 * as written, changes kept, and the TOTP step taken once and only
 * forward (the replay check) */
static void sc_users(sc_env *e)
{
    fp_user u = {.roles = 4, .seller_id = 1, .enrolled = 1};
    snprintf(u.name, sizeof u.name, "li.na");
    snprintf(u.pw_hash, sizeof u.pw_hash, "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA");
    snprintf(u.totp_seed, sizeof u.totp_seed, "fpwk1:00");
    snprintf(u.recovery, sizeof u.recovery, "aa,bb");
    fp_err err = {0};
    fp_audit_rec a = {.actor = "contract", .action = "users.add"};
    if (!CHECK_EQ_INT(fp_store_user_create(e->s, &u, &a, &err), 0))
        return;
    CHECK_EQ_INT(fp_store_user_create(e->s, &u, &a, &err), FP_ECONFLICT);
    fp_user got;
    CHECK_EQ_INT(fp_store_user_get(e->s, "nobody", &got), FP_ENOTFOUND);
    if (!CHECK_EQ_INT(fp_store_user_get(e->s, "li.na", &got), 0))
        return;
    CHECK(got.roles == 4 && got.seller_id == 1 && got.enrolled == 1 && !got.disabled);
    CHECK_EQ_STR(got.pw_hash, u.pw_hash);
    CHECK_EQ_STR(got.recovery, "aa,bb");
    CHECK(got.created_at > 0);
    u.disabled = 1;
    u.recovery[0] = 0;
    CHECK_EQ_INT(fp_store_user_update(e->s, &u, NULL, &err), 0);
    CHECK_EQ_INT(fp_store_user_get(e->s, "li.na", &got), 0);
    CHECK(got.disabled == 1 && got.recovery[0] == 0);
    CHECK_EQ_INT(fp_store_user_take_step(e->s, "li.na", 100, &err), 0);
    CHECK_EQ_INT(fp_store_user_take_step(e->s, "li.na", 100, &err), FP_ECONFLICT);
    CHECK_EQ_INT(fp_store_user_take_step(e->s, "li.na", 99, &err), FP_ECONFLICT);
    CHECK_EQ_INT(fp_store_user_take_step(e->s, "li.na", 101, &err), 0);
    snprintf(u.name, sizeof u.name, "ghost");
    CHECK_EQ_INT(fp_store_user_update(e->s, &u, NULL, &err), FP_ENOTFOUND);
    sc_count all = {0};
    CHECK_EQ_INT(fp_store_users(e->s, sc_count_user, &all), 0);
    CHECK_EQ_INT(all.n, 1);
}

static void sc_credit_row(const fp_credit_row *c, void *arg)
{
    *(fp_credit_row *)arg = *c;
}

/* The credit line (credit.h): while on, an invoice over the month's
 * remaining credit is CREDIT_EXCEEDED (the remaining amount told) with
 * nothing stored, one within it moves used_fen, a stored key still
 * replays; a month without a row is not checked, a new limit keeps what
 * was used; off, nothing is checked. */
static void sc_credit(sc_env *e)
{
    const int64_t amt = e->inv->total_amount;
    fp_err err = {0};
    fp_credit_row row = {0};
    fp_store_set_credit(e->s, 1);
    int u = sc_issue(e, "cr-unknown", 1);
    if (!CHECK(u >= 0) || !CHECK_EQ_INT(e->result[u], FP_ISSUE_CREATED))
        return;
    if (!CHECK_EQ_INT(fp_store_credit_set(e->s, e->seller, "202601", 2 * amt + 1, 0, &err), 0))
        return;
    int a = sc_issue(e, "cr-a", 2), b = sc_issue(e, "cr-b", 3), c = sc_issue(e, "cr-c", 4);
    int r = sc_issue(e, "cr-a", 2);
    if (!CHECK(a >= 0 && b >= 0 && c >= 0 && r >= 0))
        return;
    CHECK_EQ_INT(e->result[a], FP_ISSUE_CREATED);
    CHECK_EQ_INT(e->result[b], FP_ISSUE_CREATED);
    CHECK_EQ_INT(e->result[c], FP_ISSUE_CREDIT_EXCEEDED);
    CHECK(e->reqs[c]->credit_left == 1);
    CHECK_EQ_INT(e->result[r], FP_ISSUE_REPLAY);
    CHECK_EQ_INT(sc_rows(e), 3);
    CHECK_EQ_INT(fp_store_credit_list(e->s, sc_credit_row, &row, &err), 0);
    CHECK(row.seller_id == e->seller && !strcmp(row.month, "202601"));
    CHECK(row.limit_fen == 2 * amt + 1 && row.used_fen == 2 * amt);
    /* more credit: the used amount stays (first_used is for a new row) */
    CHECK_EQ_INT(fp_store_credit_set(e->s, e->seller, "202601", 3 * amt, 999, &err), 0);
    int d = sc_issue(e, "cr-c", 4);
    if (!CHECK(d >= 0))
        return;
    CHECK_EQ_INT(e->result[d], FP_ISSUE_CREATED);
    CHECK_EQ_INT(fp_store_credit_list(e->s, sc_credit_row, &row, &err), 0);
    CHECK(row.limit_fen == 3 * amt && row.used_fen == 3 * amt);
    fp_store_set_credit(e->s, 0);
    int off = sc_issue(e, "cr-off", 5);
    fp_store_set_credit(e->s, 1);
    int on = sc_issue(e, "cr-on", 6);
    if (!CHECK(off >= 0 && on >= 0))
        return;
    CHECK_EQ_INT(e->result[off], FP_ISSUE_CREATED);
    CHECK_EQ_INT(e->result[on], FP_ISSUE_CREDIT_EXCEEDED);
    CHECK(e->reqs[on]->credit_left == 0);
    CHECK_EQ_INT(sc_rows(e), 5);
}

static void sc_client_row(const fp_client_info *c, void *arg)
{
    if (!strcmp(c->client_id, "erp-1"))
        *(fp_client_info *)arg = *c;
}

typedef struct sc_cred_audit {
    int n;
    char actions[4][48];
} sc_cred_audit;

static void sc_cred_audit_row(const fp_audit_view *v, void *arg)
{
    sc_cred_audit *a = arg;
    if (strncmp(v->action, "credentials.", 12) || strcmp(v->target, "erp-1") || a->n >= 4)
        return;
    snprintf(a->actions[a->n++], sizeof a->actions[0], "%s/%s", v->action, v->actor);
}

/* What an admin's credential routes do (handlers_credentials.c): create,
 * rotate with the old secret ended now, revoke; each change is audited in
 * its transaction with the credential's seller, so the seller's auditor
 * sees it; a revoked credential is not rotated (FP_ECONFLICT). */
static void sc_credentials(sc_env *e)
{
    fp_client_info c = {.seller_id = e->seller, .roles = FP_ROLE_ISSUER}, got;
    snprintf(c.client_id, sizeof c.client_id, "erp-1");
    fp_err err = {0};
    fp_audit_rec a = {.actor = "user:wang", .seller_id = e->seller, .target = "erp-1"};
    char s1[FP_SECRET_LEN + 1], s2[FP_SECRET_LEN + 1];
    if (!CHECK(fp_secret_generate(s1) == 0 && fp_secret_generate(s2) == 0))
        return;
    a.action = "credentials.admin_create";
    if (!CHECK_EQ_INT(fp_store_client_create(e->s, &c, s1, &a, &err), 0))
        return;
    CHECK_EQ_INT(fp_store_client_create(e->s, &c, s1, &a, &err), FP_ECONFLICT);
    int64_t now = (int64_t)time(NULL);
    a.action = "credentials.admin_rotate";
    CHECK_EQ_INT(fp_store_client_rotate(e->s, "erp-1", s2, now, 0, &a, &err), 0);
    CHECK_EQ_INT(fp_store_client_check_secret(e->s, "erp-1", s1, now + 1, &got), FP_ECRYPTO);
    CHECK_EQ_INT(fp_store_client_check_secret(e->s, "erp-1", s2, now + 1, &got), 0);
    a.action = "credentials.admin_revoke";
    CHECK_EQ_INT(fp_store_client_revoke(e->s, "erp-1", now, &a, &err), 0);
    a.action = "credentials.admin_rotate";
    CHECK_EQ_INT(fp_store_client_rotate(e->s, "erp-1", s1, now, 0, &a, &err), FP_ECONFLICT);
    memset(&got, 0, sizeof got);
    CHECK_EQ_INT(fp_store_clients(e->s, 1, sc_client_row, &got), 0);
    CHECK(got.seller_id == e->seller && got.roles == FP_ROLE_ISSUER && got.revoked_at == now);
    CHECK(got.created_at > 0 && got.newest_secret_at >= got.created_at);
    sc_cred_audit seen = {0};
    CHECK_EQ_INT(fp_store_audit_rows(e->s, e->seller, 0, 100, sc_cred_audit_row, &seen), 0);
    if (!CHECK_EQ_INT(seen.n, 3)) /* newest first; the refused rotation left none */
        return;
    CHECK_EQ_STR(seen.actions[0], "credentials.admin_revoke/user:wang");
    CHECK_EQ_STR(seen.actions[1], "credentials.admin_rotate/user:wang");
    CHECK_EQ_STR(seen.actions[2], "credentials.admin_create/user:wang");
}

typedef struct {
    const char *name;
    void (*fn)(sc_env *e);
    int64_t first, last; /* the range */
} sc_check;

static const sc_check sc_checks[] = {
    {"numbers", sc_numbers, 1, 3},
    {"no_reuse", sc_no_reuse, 1, 100},
    {"idempotency", sc_idempotency, 1, 100},
    {"durable_ack", sc_durable_ack, 1, 100},
    {"red_caps", sc_red_caps, 1, 100},
    {"audit_chain", sc_audit_chain, 1, 100},
    {"sellers", sc_sellers, 1, 100},
    {"audit_prune", sc_audit_prune, 1, 100},
    {"check", sc_check_now, 1, 100},
    {"silences", sc_silences, 1, 100},
    {"users", sc_users, 1, 100},
    {"credit", sc_credit, 1, 100},
    {"red_upstream", sc_red_upstream, 1, 100},
    {"credentials", sc_credentials, 1, 100},
    {"red_answer", sc_red_answer, 1, 100},
};
#define SC_NCHECKS ((int)NCASES(sc_checks))

/* Runs every check against ops on fresh databases in dir.  failed[i] gets
 * 1 for each check that failed; returns how many failed.  collect: the
 * failures are reported, then taken out of the harness's count (for a
 * backend that is meant to fail). */
static int sc_run(const fp_store_ops *ops, const char *label, const fp_invoice *inv,
                  const char *dir, int collect, int failed[SC_NCHECKS])
{
    int nfailed = 0;
    for (int i = 0; i < SC_NCHECKS; i++) {
        int before_passed = check_state.passed, before_failed = check_state.failed;
        check_ctx("contract %s on %s", sc_checks[i].name, label);
        sc_env e;
        if (sc_begin(&e, ops, inv, dir, label, sc_checks[i].name, sc_checks[i].first,
                     sc_checks[i].last))
            sc_checks[i].fn(&e);
        sc_end(&e);
        failed[i] = check_state.failed > before_failed;
        nfailed += failed[i];
        if (collect) {
            check_state.passed = before_passed;
            check_state.failed = before_failed;
        }
    }
    check_ctx("%s", "");
    return nfailed;
}

#endif
