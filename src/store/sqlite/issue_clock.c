/* issue_clock.c — the writer's issue clock (docs/operations.md, "Clock"):
 * the persisted high-water mark of issue times, applied to every request in
 * the batch's transaction (the verdict itself: ../clock.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"
#include "internal.h"

static void clock_read(fp_sqlite *s, int64_t *wall, int64_t *boot)
{
    if (s->o.clock_now) {
        s->o.clock_now(wall, boot);
        return;
    }
    *boot = fp_boot_ns() / 1000000000;
    *wall = fp_wall_s();
}

static void cst_text(int64_t t, char out[32])
{
    struct tm tm;
    fp_cst_tm(t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

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
    cst_text(s->clock.mark, m);
    cst_text(now, n);
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

/* The issue time of r: 0 with r->issued_at (and its document) set, or 1
 * when r is refused (CLOCK_BEHIND / CLOCK_JUMPED). */
int fp_sq_clock_take(fp_sqlite *s, fp_issue_req *r)
{
    int64_t wall, boot, t = 0;
    clock_read(s, &wall, &boot);
    fp_clock_verdict v = fp_issue_clock_decide(&s->clock, r->issued_at, boot, &t);
    if (v == FP_CLOCK_JUMPED) {
        /* an operator's confirmation (fapiao clock confirm) made on this
         * clock: the jump is real, take the clock as it is now */
        int64_t mark, confirmed;
        if (clock_load(s->wdb, &mark, &confirmed) == 0 && confirmed > s->clock_confirmed) {
            s->clock_confirmed = confirmed;
            if (llabs(r->issued_at - confirmed) <= s->clock.jump_s) {
                s->clock.base_wall = r->issued_at;
                s->clock.base_boot = boot;
                v = fp_issue_clock_decide(&s->clock, r->issued_at, boot, &t);
            }
        }
    }
    if (v != FP_CLOCK_OK) {
        r->result = v == FP_CLOCK_BEHIND ? FP_ISSUE_CLOCK_BEHIND : FP_ISSUE_CLOCK_JUMPED;
        r->clock_mark = s->clock.mark;
        /* behind: until the clock is within the step of the mark */
        int64_t wait = v == FP_CLOCK_BEHIND ? s->clock.mark - s->clock.step_s - r->issued_at : 60;
        r->clock_retry_s = wait < 1 ? 1 : wait > 3600 ? 3600 : (int)wait;
        clock_log(s, v, r->issued_at, boot);
        return 1;
    }
    if (s->clock_last != FP_CLOCK_OK) {
        fprintf(stderr, "{\"event\":\"clock_ok\"}\n");
        s->clock_last = FP_CLOCK_OK;
    }
    if (t != r->issued_at && r->doc.json) {
        /* the first "issued_at":" is the top-level key: it comes before
         * every nested object, and a string cannot hold an unescaped quote */
        static const char key[] = "\"issued_at\":\"";
        char *at = memmem(r->doc.json, r->doc.len, key, sizeof key - 1);
        char txt[32];
        cst_text(t, txt);
        size_t n = strlen(txt);
        if (at && (size_t)(at - r->doc.json) + sizeof key - 1 + n < r->doc.len &&
            at[sizeof key - 1 + n] == '"')
            memcpy(at + sizeof key - 1, txt, n);
    }
    r->issued_at = t;
    s->issue_t = t;
    /* the mark moves now (later requests of the batch see it); a rollback
     * puts it back (fail_batch) */
    if (t > s->clock.mark)
        s->clock.mark = t;
    s->clock.base_wall = t;
    s->clock.base_boot = boot;
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
    clock_read(s, &wall, &boot);
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
    clock_read(s, &wall, &boot);
    char txt[32], target[64];
    cst_text(wall, txt);
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
        if (rc == 0)
            rc = fp_sq_audit_append(s, &a, err);
        if (rc == 0)
            rc = fp_sq_exec(s->wdb, "COMMIT", err);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            fp_sq_exec(s->wdb, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
