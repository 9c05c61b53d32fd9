/* issue_clock.c — the writer's issue clock (docs/operations.md, "Clock"):
 * the persisted high-water mark of issue times, applied to every request in
 * the batch's transaction (the verdict itself: ../clock.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"
#include "internal.h"

/* The stored mark and confirmation; 0 when the row is missing. */
static int clock_load(sqlite3 *db, int64_t *mark, int64_t *confirmed)
{
    sqlite3_stmt *st;
    *mark = *confirmed = 0;
    if (sqlite3_prepare_v2(db, "SELECT mark, coalesce(confirmed_at, 0) FROM issue_clock WHERE id=1",
                           -1, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *mark = sqlite3_column_int64(st, 0);
        *confirmed = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : FP_EIO;
}

/* A refused request is logged at the highest severity: once when the
 * verdict changes, then at most once a minute. */
static void clock_log(fp_sqlite *s, fp_clock_verdict v, int64_t now, int64_t boot)
{
    if (v == s->clock_last && boot - s->clock_logged < 60)
        return;
    s->clock_last = v;
    s->clock_logged = boot;
    char m[32], n[32];
    fp_issue_clock_text(s->clock.mark, m);
    fp_issue_clock_text(now, n);
    if (v == FP_CLOCK_BEHIND)
        fprintf(stderr,
                "{\"event\":\"clock_behind\",\"severity\":\"critical\",\"mark\":\"%s\","
                "\"now\":\"%s\",\"message\":\"the clock is %lld s behind the last issue "
                "time; issuing is refused until it passes %s "
                "(系统时钟落后于最近开票时间，暂停开票)\"}\n",
                m, n, (long long)(s->clock.mark - now), m);
    else
        fprintf(stderr,
                "{\"event\":\"clock_jumped\",\"severity\":\"critical\",\"mark\":\"%s\","
                "\"now\":\"%s\",\"message\":\"the clock jumped ahead by more than %d s since "
                "the last issue; issuing is refused until an operator runs fapiao clock confirm "
                "(系统时钟突然跳前，须确认后才能开票)\"}\n",
                m, n, s->clock.jump_s);
    fflush(stderr);
}

static int confirmed_load(void *arg, int64_t *at)
{
    fp_sqlite *s = arg;
    int64_t mark;
    return clock_load(s->wdb, &mark, at);
}

/* The issue time of r: 0 with r->issued_at (and its document) set, or 1
 * when r is refused (CLOCK_BEHIND / CLOCK_JUMPED). */
int fp_sq_clock_take(fp_sqlite *s, fp_issue_req *r)
{
    int64_t wall, boot, asked = r->issued_at;
    fp_issue_clock_read(&s->o, &wall, &boot);
    fp_clock_verdict v =
        fp_issue_clock_take(&s->clock, &s->clock_confirmed, confirmed_load, s, r, boot);
    if (v != FP_CLOCK_OK) {
        clock_log(s, v, asked, boot);
        return 1;
    }
    if (s->clock_last != FP_CLOCK_OK) {
        fprintf(stderr, "{\"event\":\"clock_ok\"}\n");
        s->clock_last = FP_CLOCK_OK;
    }
    s->issue_t = r->issued_at;
    return 0;
}

/* In the batch's transaction: the mark as it is after the batch. */
int fp_sq_clock_flush(fp_sqlite *s)
{
    if (s->clock.mark <= s->clock_committed)
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(s->wdb, "UPDATE issue_clock SET mark=?1 WHERE id=1 AND mark < ?1", -1,
                           SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, s->clock.mark);
    int rc = fp_sq_step_done(st);
    sqlite3_finalize(st);
    return rc;
}

int fp_sq_clock_open(fp_sqlite *s, fp_err *err)
{
    int64_t confirmed, wall, boot;
    if (clock_load(s->wdb, &s->clock.mark, &confirmed) < 0)
        return fp_fail(err, FP_EIO, "issue clock: %s", sqlite3_errmsg(s->wdb));
    s->clock_committed = s->clock.mark;
    s->clock_confirmed = confirmed;
    s->clock.step_s = s->o.clock_step_s > 0 ? s->o.clock_step_s : 60;
    s->clock.jump_s = s->o.clock_jump_s > 0 ? s->o.clock_jump_s : 86400;
    /* a jump while no process ran cannot be told from downtime: the clock
     * at open is trusted (docs/operations.md, "Clock") */
    fp_issue_clock_read(&s->o, &wall, &boot);
    s->clock.base_wall = wall;
    s->clock.base_boot = boot;
    /* said at once, not only at the first refused request */
    if (s->clock.mark && wall < s->clock.mark - s->clock.step_s)
        clock_log(s, FP_CLOCK_BEHIND, wall, boot);
    return 0;
}

/* One request inside the open transaction: the invoice, its audit record
 * and its outbox jobs in the common case.  The idempotency check is the UNIQUE(seller_id, serial)
 * constraint itself; only a conflict costs a lookup.  Returns FP_EIO when the transaction cannot go
 * on (the batch is then rolled back and every request fails). */
int sq_store_clock_get(void *be, int64_t *mark, int64_t *confirmed_at, fp_err *err)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = clock_load(s->wdb, mark, confirmed_at);
    if (rc < 0)
        fp_fail(err, rc, "issue clock: %s", sqlite3_errmsg(s->wdb));
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_store_clock_confirm(void *be, const char *actor, fp_err *err)
{
    fp_sqlite *s = be;
    int64_t wall, boot;
    fp_issue_clock_read(&s->o, &wall, &boot);
    char txt[32], target[64];
    fp_issue_clock_text(wall, txt);
    snprintf(target, sizeof target, "clock %s", txt);
    fp_audit_rec a = {
        .ts = wall, .actor = actor, .action = "clock.confirm", .target = target, .outcome = "ok"};
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->wdb, "UPDATE issue_clock SET confirmed_at=?1 WHERE id=1", -1, &st,
                               NULL) != SQLITE_OK) {
            rc = fp_fail(err, FP_EIO, "issue clock: %s", sqlite3_errmsg(s->wdb));
        } else {
            sqlite3_bind_int64(st, 1, wall);
            if (fp_sq_step_done(st) < 0)
                rc = fp_fail(err, FP_EIO, "issue clock: %s", sqlite3_errmsg(s->wdb));
            sqlite3_finalize(st);
        }
        rc = fp_sq_end_audited(s, &a, NULL, NULL, rc, err);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
