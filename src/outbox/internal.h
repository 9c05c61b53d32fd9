/* internal.h — declarations for src/outbox only: the outbox's state, shared
 * by the job threads (outbox.c: claiming and running jobs, PDF files,
 * webhooks, start/stop, metrics) and the on-demand renders with the backlog
 * keeper (ondemand.c: the on-demand queue, its deadlines, the backlog count
 * and the mode, pruning; docs/outbox.md).  Not part of any public header.
 *
 * Locks: mu guards kicks, stopping, paused/paused_arg and the on-demand
 * queue (od, nod, od_seq, and each item's running/answered); cv wakes the
 * job threads, kcv the keeper (both on the monotonic clock).  tmu guards
 * the webhook targets, smu the PDF disk-space state.  Counters are atomics. */
#ifndef FAPIAO_OUTBOX_INTERNAL_H
#define FAPIAO_OUTBOX_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fapiao/outbox.h"
#include "fapiao/pdf.h"

#define MAX_WORKERS  64
#define MAX_FG       8 /* foreground (on-demand) job threads and renderers */
#define MAX_TARGETS  64
#define PDF_MAX      (256u << 20)
#define LEASE_MARGIN 60000
#define OD_MAX       256 /* queued and running on-demand renders */
#define PRUNE_BATCH  500 /* rows per pruning transaction: a few ms of the writer */

/* How one attempt of a job ended (fapiao_outbox_runs_total's result). */
enum { RES_OK, RES_RETRY, RES_DEAD, RES_DEFERRED, RES_LOST, RES__N };

typedef struct target {
    char origin[128];
    fp_breaker br;
} target;

struct fp_outbox {
    fp_outbox_opts o;
    char *pdf_dir, *render_exe, *font_path;
    fp_pdf_pool *pool;    /* background renders: SCHED_IDLE workers */
    fp_pdf_pool *fg_pool; /* on-demand renders: normal policy (NULL: off, they use pool) */
    pthread_t th[MAX_WORKERS + MAX_FG];
    int nth;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t kicks;
    int stopping;
    atomic_int_fast64_t lease_seq;

    pthread_mutex_t tmu;
    target *targets[MAX_TARGETS];
    int ntargets;

    atomic_uint_fast64_t runs[FP_JOB__KINDS][RES__N];
    atomic_uint_fast64_t render_us, render_pages;
    atomic_uint_fast64_t pool_renders[2]; /* renders completed by pool, fg_pool */
    atomic_int render_fault;

    /* disk space (docs/storage-space.md) */
    int (*paused)(void *arg, char *why, size_t cap);
    void *paused_arg;
    pthread_mutex_t smu; /* space_why, space_short */
    int space_short;
    char space_why[256];
    atomic_uint_fast64_t pause_waits;

    /* the bounded backlog (docs/outbox.md): the keeper thread, the
     * on-demand queue (under mu), the counters */
    pthread_t keeper;
    int keeper_started;
    pthread_cond_t kcv; /* the keeper's wait (a render queued, stop) */
    struct od_item *od; /* queued and running on-demand renders */
    int nod;
    uint64_t od_seq;
    atomic_int on_demand;
    atomic_int pause_seen; /* a job thread's last pause verdict (the keeper prunes by it) */
    atomic_int_fast64_t backlog, backlog_oldest_ms;
    atomic_uint_fast64_t rendered_bg, rendered_od, od_timeouts, od_refused, switches, pruned;
};

/* An on-demand render (fp_outbox_render_now): in ob->od until the job
 * thread that ran it is done with it, or until its deadline if no thread
 * took it yet; answered once (done called outside mu). */
typedef struct od_item {
    struct od_item *next;
    int64_t seller_id;
    char number[FP_NUMBER_LEN + 1];
    int64_t deadline_ns; /* on the outbox clock's monotonic clock */
    uint64_t seq;
    int running, answered;
    void (*done)(int result, void *arg);
    void *arg;
} od_item;

/* ---- ondemand.c ---- */

/* Makes kcv (before anything may signal it). */
void fp_ob_od_init(fp_outbox *ob);
/* The next queued on-demand render, under mu, marked running; NULL: none. */
od_item *fp_ob_od_pick(fp_outbox *ob);
/* A picked render ran (result: fp_outbox_od_result): unlinks it, answers
 * it unless its deadline did already, frees it. */
void fp_ob_od_finish(fp_outbox *ob, od_item *it, int result);
/* The keeper thread's body (arg: the outbox). */
void *fp_ob_keeper_main(void *arg);
/* With no thread left: answers what is still queued (FP_OD_STOPPING) and
 * frees the queue. */
void fp_ob_od_drain(fp_outbox *ob);

#endif
