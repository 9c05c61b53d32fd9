/* check.c — the store check on PostgreSQL (store.h fp_store_check_now;
 * POST /v1/_store/check, docs/ha.md "What the store check checks").
 *
 * PostgreSQL keeps its own files (page checksums, WAL), so there is no
 * quick_check to run; what is checked instead is what fapiao's guarantees
 * rest on, in one read-only snapshot on a reader connection: the schema is
 * the version this build knows, the audit chain's head row names the last
 * record and its hash, no checkpoint lies beyond the head or disagrees with
 * its record, the issue clock's row exists, no stored invoice number is at
 * or past its range's next (it would be issued again), and no red form is
 * marked issued without its red invoice.  full adds the chain's links and
 * id gaps over the whole log and reads every row of every table (a damaged
 * page fails the read when the cluster has data checksums).  The hashes
 * themselves are recomputed by `fapiao audit verify`. */
#include <stdio.h>
#include <string.h>

#include "fapiao/clock.h"
#include "internal.h"

/* One check: a query that counts problems (0: passed). */
typedef struct pg_check {
    const char *what;
    const char *sql;
    int full; /* only with full */
} pg_check;

static const pg_check pg_checks[] = {
    {"the audit head row is missing", "SELECT 1 - count(*) FROM audit_head WHERE id = 1", 0},
    {"the audit head is not the last record",
     "SELECT count(*) FROM audit_head h WHERE h.id = 1 AND h.last_id <> coalesce("
     "(SELECT max(id) FROM audit), (SELECT max(upto_id) FROM audit_checkpoints), 0)",
     0},
    {"the audit head's hash is not the last record's",
     "SELECT count(*) FROM audit_head h JOIN audit a ON a.id = h.last_id "
     "WHERE h.id = 1 AND a.hash IS DISTINCT FROM h.last_hash",
     0},
    {"a checkpoint lies beyond the audit head",
     "SELECT count(*) FROM audit_checkpoints "
     "WHERE upto_id > (SELECT last_id FROM audit_head WHERE id = 1)",
     0},
    {"a checkpoint's hash is not its record's",
     "SELECT count(*) FROM audit_checkpoints c JOIN audit a ON a.id = c.upto_id "
     "WHERE a.hash IS DISTINCT FROM c.upto_hash",
     0},
    {"the issue clock row is missing", "SELECT 1 - count(*) FROM issue_clock WHERE id = 1", 0},
    {"an invoice number is at or past its range's next (it would be issued again)",
     "SELECT count(*) FROM invoices i JOIN number_ranges r ON r.seller_id = i.seller_id "
     "AND r.prefix = substr(i.number, 1, 5) "
     "AND substr(i.number, 6)::bigint BETWEEN r.first AND r.last "
     "WHERE substr(i.number, 6)::bigint >= r.next",
     0},
    {"a red form is issued without its red invoice",
     "SELECT count(*) FROM red_forms WHERE state = 'issued' AND red_number IS NULL", 0},
    {"an audit record is not linked to the one before",
     "SELECT count(*) FROM audit a JOIN audit b ON b.id = a.id + 1 "
     "WHERE b.prev_hash IS DISTINCT FROM a.hash",
     1},
    {"the audit log has gaps in its ids",
     "SELECT coalesce(max(id) - min(id) + 1 - count(*), 0) FROM audit", 1},
    {"a table cannot be read whole",
     "SELECT (SELECT count(*) FROM invoices WHERE md5(doc) IS NULL) + "
     "(SELECT count(*) FROM audit WHERE md5(coalesce(target, '')) IS NULL) + "
     "(SELECT count(*) FROM audit_checkpoints WHERE signature IS NULL) + "
     "(SELECT count(*) FROM sellers WHERE name IS NULL) + "
     "(SELECT count(*) FROM clients WHERE client_id IS NULL) + "
     "(SELECT count(*) FROM client_secrets WHERE hash IS NULL) + "
     "(SELECT count(*) FROM number_ranges WHERE prefix IS NULL) + "
     "(SELECT count(*) FROM red_forms WHERE form_no IS NULL) + "
     "(SELECT count(*) FROM red_form_lines WHERE amount IS NULL) + "
     "(SELECT count(*) FROM jobs WHERE kind IS NULL)",
     1},
};

static void note(fp_store_check_report *rep, const char *what)
{
    if (rep->ok) {
        rep->ok = 0;
        snprintf(rep->integrity, sizeof rep->integrity, "%s", what);
    }
    size_t n = strlen(rep->problems);
    snprintf(rep->problems + n, sizeof rep->problems - n, "%s%s", n ? "; " : "", what);
}

/* A count the query returns: its value, or -1 (an error, noted). */
static int64_t count_of(PGconn *c, const char *sql, fp_store_check_report *rep)
{
    int rc;
    fp_err err = {0};
    PGresult *r = pg_q(c, sql, NULL, &rc, &err);
    int64_t v = r && PQntuples(r) == 1 ? pg_int(r, 0, 0) : -1;
    PQclear(r);
    if (v < 0)
        note(rep, err.msg[0] ? err.msg : "postgresql: a check's query failed");
    return v;
}

int pg_store_check_now(void *be, int full, fp_store_check_report *rep)
{
    fp_pg *s = be;
    int64_t t0 = fp_mono_ms();
    memset(rep, 0, sizeof *rep);
    rep->ok = 1;
    rep->full = full;
    PGconn *c = pg_racquire(s);
    pg_heal(c);
    fp_err err = {0};
    if (pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, &err) < 0) {
        note(rep, err.msg);
    } else {
        int64_t v = count_of(c, "SELECT coalesce(max(version), 0) FROM schema_version", rep);
        if (v >= 0 && v != pg_schema_version) {
            char why[96];
            snprintf(why, sizeof why, "the schema is version %lld, this build knows %d",
                     (long long)v, pg_schema_version);
            note(rep, why);
        }
        /* after a failed query the transaction is aborted: stop there */
        for (size_t i = 0; i < sizeof pg_checks / sizeof pg_checks[0] && v >= 0; i++)
            if (!pg_checks[i].full || full) {
                v = count_of(c, pg_checks[i].sql, rep);
                if (v > 0)
                    note(rep, pg_checks[i].what);
            }
        int64_t n = v >= 0 ? count_of(c, "SELECT count(*) FROM invoices", rep) : -1;
        rep->audit_checked = n >= 0;
        rep->acked_checked = n > 0 ? (int)(n > 1000000000 ? 1000000000 : n) : 0;
        pg_exec(c, "COMMIT", NULL, NULL);
    }
    pg_rrelease(s, c);
    if (rep->ok)
        snprintf(rep->integrity, sizeof rep->integrity, "ok");
    rep->elapsed_ms = fp_mono_ms() - t0;
    return rep->ok ? 0 : FP_EIO;
}
