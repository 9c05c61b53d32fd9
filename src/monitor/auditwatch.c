/* auditwatch.c — the server verifies its own audit chain (auditwatch.h). */
#include "fapiao/auditwatch.h"
#include "fapiao/auditor.h"
#include "fapiao/keeper.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fp_auditwatch {
    fp_store *store;
    char pub[4096];
    fp_keeper *k;
    int64_t cp; /* the newest checkpoint verified (-1: not known yet) */
    atomic_int last_ok;
    atomic_llong runs, failures, errors;
};

/* One run: 1 intact, 0 a finding, -1 the log could not be read.  It starts
 * at the checkpoint before the newest one verified (checkpoint ids are
 * consecutive, docs/audit.md), so the newest signed segment is read again
 * at every run, with the unsigned tail after it. */
static int run_once(fp_auditwatch *w, fp_audit_report *rep)
{
    fp_err err = {0};
    unsigned char pk[FP_AUDIT_KEY_LEN];
    if (w->cp < 0) {
        fp_audit_head h;
        if (fp_store_audit_head(w->store, &h, &err) < 0)
            goto unreadable;
        w->cp = h.cp_id;
    }
    if (fp_audit_pub_load(w->pub, pk, &err) < 0)
        goto unreadable;
    int64_t from = w->cp > 1 ? w->cp - 1 : 0;
    int rc = fp_audit_verify_store(w->store, pk, from, rep, &err);
    if (rc == FP_ENOTFOUND && from > 0) /* pruned before it: the anchor */
        rc = fp_audit_verify_store(w->store, pk, from = w->cp, rep, &err);
    if (rc == FP_ENOTFOUND) { /* pruned since: start again at the newest */
        w->cp = -1;
        goto unreadable;
    }
    if (rc < 0)
        goto unreadable;
    if (rep->kind != FP_AUDIT_INTACT)
        return 0;
    if (rep->cp_id > w->cp)
        w->cp = rep->cp_id;
    return 1;
unreadable:
    fprintf(stderr, "fapiao: 无法读取审计日志以校验 / cannot read the audit log to verify it: %s\n",
            err.msg);
    return -1;
}

/* A keeper pass (keeper.h): nonzero when the log could not be read. */
static int watch(void *arg)
{
    fp_auditwatch *w = arg;
    fp_audit_report rep;
    memset(&rep, 0, sizeof rep);
    int r = run_once(w, &rep);
    if (r < 0) {
        atomic_fetch_add(&w->errors, 1);
        return 1;
    }
    atomic_fetch_add(&w->runs, 1);
    /* a finding is logged when it appears, not at every run */
    if (r == 0 && atomic_load(&w->last_ok))
        fprintf(stderr,
                "fapiao: 审计日志校验失败 / audit log verification failed: %s (%s; record %lld, "
                "checkpoint %lld) / %s\n",
                rep.en, fp_audit_kind_name(rep.kind), (long long)rep.record,
                (long long)rep.checkpoint, rep.zh);
    if (r == 0)
        atomic_fetch_add(&w->failures, 1);
    atomic_store(&w->last_ok, r);
    return 0;
}

static void collect(fp_buf *b, void *arg)
{
    fp_auditwatch *w = arg;
    fp_metrics_emit(b, "fapiao_audit_verify_last_ok",
                    "1 when the server's last verification of its audit chain found it intact, "
                    "0 after a finding (docs/alerting.md).",
                    FP_METRICS_GAUGE, atomic_load(&w->last_ok), 1);
    fp_metrics_emit(b, "fapiao_audit_verify_runs_total",
                    "Verifications of the audit chain the server completed.", FP_METRICS_COUNTER,
                    atomic_load(&w->runs), 1);
    fp_metrics_emit(b, "fapiao_audit_verify_failures_total",
                    "Verifications of the audit chain that found tampering.", FP_METRICS_COUNTER,
                    atomic_load(&w->failures), 1);
    fp_metrics_emit(b, "fapiao_audit_verify_errors_total",
                    "Verifications of the audit chain that could not read the log.",
                    FP_METRICS_COUNTER, atomic_load(&w->errors), 1);
}

int fp_auditwatch_start(fp_store *store, const char *pub_path, int interval_s, fp_metrics *m,
                        fp_auditwatch **out, fp_err *err)
{
    fp_auditwatch *w = calloc(1, sizeof *w);
    if (!w)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    if (snprintf(w->pub, sizeof w->pub, "%s", pub_path) >= (int)sizeof w->pub) {
        free(w);
        return fp_fail(err, FP_ERANGE, "path too long");
    }
    w->store = store;
    w->cp = -1;
    atomic_init(&w->last_ok, 1);
    int rc = fp_keeper_start("audit verification", watch, w,
                             (long)(interval_s > 0 ? interval_s : 300) * 1000, &w->k, err);
    if (rc < 0) {
        free(w);
        return rc;
    }
    if (fp_metrics_add_collector(m, collect, w) < 0) {
        fp_auditwatch_stop(w);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    *out = w;
    return 0;
}

void fp_auditwatch_stop(fp_auditwatch *w)
{
    if (!w)
        return;
    fp_keeper_stop(w->k);
    free(w);
}
