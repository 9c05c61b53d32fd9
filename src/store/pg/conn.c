/* conn.c — the PostgreSQL backend's query helpers (typed parameters,
 * results, bytea) and the read pool. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"
#include "internal.h"

enum { OID_INT8 = 20, OID_TEXT = 25, OID_BYTEA = 17 };

void pg_i64(pg_params *p, int64_t v)
{
    int i = p->n++;
    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->type[i] = OID_INT8;
    p->v[i] = p->num[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void pg_i64_null(pg_params *p)
{
    int i = p->n++;
    p->type[i] = OID_INT8;
    p->v[i] = NULL;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void pg_text(pg_params *p, const char *v)
{
    int i = p->n++;
    p->type[i] = OID_TEXT;
    p->v[i] = v;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void pg_bin(pg_params *p, const void *v, int len)
{
    int i = p->n++;
    p->type[i] = OID_BYTEA;
    p->v[i] = v;
    p->len[i] = len;
    p->fmt[i] = 1;
}

PGresult *pg_q(PGconn *c, const char *sql, const pg_params *p, int *rc, fp_err *err)
{
    PGresult *r = p ? PQexecParams(c, sql, p->n, p->type, p->v, p->len, p->fmt, 0) : PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *rc = 0;
        return r;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    *rc = state && !strcmp(state, "23505") ? FP_ECONFLICT : FP_EIO;
    const char *msg = PQerrorMessage(c);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    fp_fail(err, *rc, "postgresql: %.*s", (int)(n > 200 ? 200 : n), msg);
    PQclear(r);
    return NULL;
}

int pg_exec(PGconn *c, const char *sql, const pg_params *p, fp_err *err)
{
    int rc;
    PQclear(pg_q(c, sql, p, &rc, err));
    return rc;
}

int64_t pg_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void pg_col(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pg_bytea(const PGresult *r, int row, int col, unsigned char *out, size_t n)
{
    if (PQgetisnull(r, row, col))
        return -1;
    const char *v = PQgetvalue(r, row, col);
    if (strncmp(v, "\\x", 2) != 0 || strlen(v) != 2 + 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Connections reset by this process: what was read from the database
 * before a reset may belong to a server that is no longer the primary
 * (after a failover, docs/ha.md §5), so what is cached keys on it. */
static _Atomic uint64_t pg_resets;

uint64_t pg_reconnects(void)
{
    return atomic_load(&pg_resets);
}

void pg_heal(PGconn *c)
{
    /* a lost connection, or one to a server that became a standby (a
     * demoted primary that kept its sessions): target_session_attrs in the
     * connection string sends the reset to the primary of the moment */
    const char *standby = PQparameterStatus(c, "in_hot_standby");
    if (PQstatus(c) == CONNECTION_BAD || (standby && !strcmp(standby, "on"))) {
        atomic_fetch_add(&pg_resets, 1);
        PQreset(c);
    }
}

void pg_current_yy(char yy[3], int64_t t)
{
    const char *e = getenv("FP_TEST_YEAR"); /* as the SQLite backend: tests cross a year */
    if (e && strlen(e) == 2 && e[0] >= '0' && e[0] <= '9' && e[1] >= '0' && e[1] <= '9') {
        memcpy(yy, e, 3);
        return;
    }
    struct tm tm;
    fp_cst_tm(t ? t : fp_wall_s(), &tm);
    snprintf(yy, 3, "%02u", (unsigned)(tm.tm_year + 1900) % 100u);
}

/* ---- the read pool ---- */

PGconn *pg_racquire(fp_pg *s)
{
    pthread_mutex_lock(&s->rlock);
    while (s->nfree == 0)
        pthread_cond_wait(&s->rcond, &s->rlock);
    int i = s->rfree[--s->nfree];
    pthread_mutex_unlock(&s->rlock);
    pg_heal(s->readers[i]);
    return s->readers[i];
}

void pg_rrelease(fp_pg *s, PGconn *c)
{
    pthread_mutex_lock(&s->rlock);
    for (int i = 0; i < s->nreaders; i++)
        if (s->readers[i] == c)
            s->rfree[s->nfree++] = i;
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rlock);
}
