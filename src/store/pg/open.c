/* open.c — the PostgreSQL backend's open and close, and its versioned
 * schema (schema_version; a node refuses a schema newer than it knows).
 *
 * The schema is SQLite's (src/store/sqlite/migrations.c, migrations 1-11)
 * as it stands, in PostgreSQL's types: BIGINT for integers and money (fen),
 * BYTEA for hashes and salts, TEXT for text.  Two one-row tables are its
 * own: audit_head (the chain's last id and hash, locked FOR UPDATE by every
 * append, so that all nodes extend one chain) and issue_clock, also locked
 * by each group commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/crypto.h"
#include "internal.h"
#include "../silences_sql.h"
#include "../red_upstream_sql.h"
#include "../users_sql.h"

/* ---- the schema ---- */

static const char *const pg_migrations[] = {
    /* 1: SQLite's migrations 1-9 in PostgreSQL types, and the chain's head */
    "CREATE TABLE sellers("
    "  id BIGSERIAL PRIMARY KEY,"
    "  name TEXT NOT NULL, tax_id TEXT NOT NULL, address TEXT NOT NULL DEFAULT '',"
    "  phone TEXT NOT NULL DEFAULT '', bank TEXT NOT NULL DEFAULT '',"
    "  account TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE clients("
    "  client_id TEXT PRIMARY KEY,"
    "  seller_id BIGINT NOT NULL REFERENCES sellers(id),"
    "  secret_salt BYTEA NOT NULL, secret_hash BYTEA NOT NULL,"
    "  scope TEXT NOT NULL, created_at BIGINT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  webhook_url TEXT, webhook_secret TEXT,"
    "  roles TEXT NOT NULL DEFAULT 'issuer', allowed_ips TEXT, cert_sha256 TEXT,"
    "  revoked_at BIGINT);"
    "CREATE TABLE client_secrets("
    "  id BIGSERIAL PRIMARY KEY,"
    "  client_id TEXT NOT NULL REFERENCES clients(client_id),"
    "  salt BYTEA NOT NULL, hash BYTEA NOT NULL, prefix TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL, expires_at BIGINT);"
    "CREATE INDEX client_secrets_client ON client_secrets(client_id);"
    "CREATE TABLE number_ranges("
    "  id BIGSERIAL PRIMARY KEY,"
    "  seller_id BIGINT NOT NULL REFERENCES sellers(id),"
    "  prefix TEXT NOT NULL CHECK(length(prefix) = 5),"
    "  first BIGINT NOT NULL, last BIGINT NOT NULL, next BIGINT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  CHECK(first >= 1 AND first <= last AND last <= 999999999999999),"
    "  CHECK(next >= first AND next <= last + 1));"
    "CREATE TABLE invoices("
    "  number TEXT PRIMARY KEY CHECK(length(number) = 20),"
    "  seller_id BIGINT NOT NULL REFERENCES sellers(id),"
    "  serial TEXT NOT NULL, request_hash BYTEA NOT NULL,"
    "  status TEXT NOT NULL, invoice_type TEXT NOT NULL, buyer_tax_id TEXT,"
    "  total_with_tax BIGINT NOT NULL, issued_at BIGINT NOT NULL, doc TEXT NOT NULL,"
    "  color TEXT NOT NULL DEFAULT 'blue', original_number TEXT, failure TEXT,"
    "  UNIQUE(seller_id, serial));"
    "CREATE INDEX invoices_buyer ON invoices(seller_id, buyer_tax_id);"
    "CREATE INDEX invoices_issued ON invoices(seller_id, issued_at);"
    "CREATE TABLE audit("
    "  id BIGINT PRIMARY KEY,"
    "  ts BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    "  target TEXT, request_id TEXT, client_ip TEXT, outcome TEXT NOT NULL,"
    "  prev_hash BYTEA, hash BYTEA, seller_id BIGINT, client_request_id TEXT);"
    "CREATE INDEX audit_seller ON audit(seller_id, id);"
    "CREATE TABLE audit_checkpoints("
    "  id BIGINT PRIMARY KEY, upto_id BIGINT NOT NULL, upto_hash BYTEA NOT NULL,"
    "  ts BIGINT NOT NULL, signature BYTEA NOT NULL);"
    "CREATE TABLE audit_head(id INTEGER PRIMARY KEY CHECK(id = 1),"
    "  last_id BIGINT NOT NULL, last_hash BYTEA NOT NULL);"
    "INSERT INTO audit_head VALUES(1, 0, '\\x" /* 32 zero bytes */
    "0000000000000000000000000000000000000000000000000000000000000000');"
    "CREATE TABLE red_forms("
    "  id BIGSERIAL PRIMARY KEY,"
    "  form_no TEXT NOT NULL UNIQUE,"
    "  seller_id BIGINT NOT NULL REFERENCES sellers(id),"
    "  blue_number TEXT NOT NULL REFERENCES invoices(number),"
    "  reason TEXT NOT NULL, initiated_by TEXT NOT NULL, state TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL, expires_at BIGINT,"
    "  red_number TEXT REFERENCES invoices(number),"
    "  total_amount BIGINT NOT NULL, total_tax BIGINT NOT NULL);"
    "CREATE INDEX red_forms_blue ON red_forms(blue_number);"
    "CREATE TABLE red_form_lines("
    "  form_id BIGINT NOT NULL REFERENCES red_forms(id), line INTEGER NOT NULL,"
    "  quantity TEXT NOT NULL DEFAULT '', amount BIGINT NOT NULL, tax BIGINT NOT NULL,"
    "  PRIMARY KEY(form_id, line));"
    "CREATE TABLE jobs("
    "  id BIGSERIAL PRIMARY KEY,"
    "  invoice_number TEXT NOT NULL REFERENCES invoices(number),"
    "  seller_id BIGINT NOT NULL REFERENCES sellers(id),"
    "  client_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK(kind IN ('render', 'notify')),"
    "  event TEXT, event_id TEXT UNIQUE,"
    "  after_job BIGINT REFERENCES jobs(id),"
    "  state TEXT NOT NULL"
    "    CHECK(state IN ('blocked', 'pending', 'running', 'done', 'dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0, next_at BIGINT NOT NULL,"
    "  lease_owner BIGINT, lease_until BIGINT,"
    "  first_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_error TEXT,"
    "  cost BIGINT NOT NULL DEFAULT 1, fair_tag BIGINT);"
    "CREATE INDEX jobs_due ON jobs(state, next_at);"
    "CREATE INDEX jobs_invoice ON jobs(invoice_number);"
    "CREATE INDEX jobs_after ON jobs(after_job) WHERE after_job IS NOT NULL;"
    "CREATE INDEX jobs_fair ON jobs(fair_tag) WHERE fair_tag IS NOT NULL;"
    "CREATE INDEX jobs_fair_seller ON jobs(seller_id, fair_tag) WHERE fair_tag IS NOT NULL;"
    "CREATE INDEX jobs_retry ON jobs(next_at) WHERE state = 'pending' AND fair_tag IS NULL;"
    "CREATE TABLE health_probe(id INTEGER PRIMARY KEY CHECK(id = 1), at BIGINT NOT NULL);"
    "CREATE TABLE issue_clock(id INTEGER PRIMARY KEY CHECK(id = 1), mark BIGINT NOT NULL,"
    "  confirmed_at BIGINT);"
    "INSERT INTO issue_clock(id, mark) VALUES(1, 0);",
    /* 2: SQLite's migration 10 (sellers for a real company or a group;
     * docs/sellers.md): the tax bureau code, the drawer and remark
     * defaults, the disabled flag, when a seller was added, and the
     * sellers' generation, bumped by a trigger in the statement that
     * changes a seller (sellers.c).  And the invoices' storage order (seq:
     * assigned in the group commit, which holds the issue clock's row, so
     * it is commit order across nodes), which SQLite has as the rowid: the
     * auditor's check of issue times that go back (fp_audit_snap). */
    "ALTER TABLE sellers ADD COLUMN tax_bureau TEXT NOT NULL DEFAULT '',"
    "  ADD COLUMN drawer TEXT NOT NULL DEFAULT '', ADD COLUMN remark TEXT NOT NULL DEFAULT '',"
    "  ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0, ADD COLUMN created_at BIGINT;"
    "CREATE INDEX sellers_tax_id ON sellers(tax_id);"
    "CREATE TABLE seller_generation(id INTEGER PRIMARY KEY CHECK(id = 1), gen BIGINT NOT NULL);"
    "INSERT INTO seller_generation(id, gen) VALUES(1, 0);"
    "CREATE FUNCTION fapiao_sellers_gen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  UPDATE seller_generation SET gen = gen + 1 WHERE id = 1; RETURN NULL; END $$;"
    "CREATE TRIGGER sellers_gen AFTER INSERT OR UPDATE OR DELETE ON sellers"
    "  FOR EACH ROW EXECUTE FUNCTION fapiao_sellers_gen();"
    "ALTER TABLE invoices ADD COLUMN seq BIGSERIAL;",
    /* 3: SQLite's migration 11 (alert silences, docs/alerting.md) */
    FP_PG_SILENCES_SQL,
    /* 4: SQLite's migration 12 (uploads to the tax platform, upload.h) */
    "CREATE TABLE uploads(invoice_number TEXT PRIMARY KEY, seller_id BIGINT NOT NULL,"
    "  state TEXT NOT NULL CHECK(state IN ('pending', 'submitted', 'accepted', 'rejected')),"
    "  sllsh TEXT, reason TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at BIGINT NOT NULL, first_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE INDEX uploads_due ON uploads(state, next_at);"
    "CREATE INDEX uploads_seller ON uploads(seller_id, state);",
    /* 5: SQLite's migration 13 (console users, docs/console.md) */
    FP_USERS_TABLE("BIGINT"),
    /* 6: SQLite's migration 14 (the credit line, credit.h) */
    "CREATE TABLE upstream_credit(seller_id BIGINT NOT NULL, month TEXT NOT NULL,"
    "  limit_fen BIGINT NOT NULL, used_fen BIGINT NOT NULL DEFAULT 0,"
    "  updated_at BIGINT NOT NULL, PRIMARY KEY(seller_id, month));",
    /* 7: SQLite's migration 15 (red forms filed upstream) */
    FP_RED_UPSTREAM_SQL,
    /* 8: SQLite's migration 17 (answers to red forms sent upstream) */
    FP_RED_ANSWER_SQL,
};
#define PG_NMIGRATIONS ((int)(sizeof pg_migrations / sizeof pg_migrations[0]))
const int pg_schema_version = PG_NMIGRATIONS;

/* Brings the schema up to this build's version, one transaction per
 * version, under an advisory lock so that nodes starting together migrate
 * once.  A newer schema is refused: an older node must not write into it. */
static int pg_migrate(PGconn *c, int read_only, fp_err *err)
{
    int rc;
    if ((rc = pg_exec(c, "BEGIN", NULL, err)) < 0)
        return rc;
    /* 0x66617069616f: "fapiao" */
    if ((rc = pg_exec(c, "SELECT pg_advisory_xact_lock(112568740954479)", NULL, err)) < 0 ||
        (!read_only && (rc = pg_exec(c,
                                     "CREATE TABLE IF NOT EXISTS schema_version("
                                     "version INTEGER NOT NULL)",
                                     NULL, err)) < 0))
        goto fail;
    /* the table first: on a fresh database a query naming it fails in the
     * parser, with PostgreSQL's words rather than ours */
    PGresult *r = pg_q(c, "SELECT to_regclass('schema_version') IS NOT NULL", NULL, &rc, err);
    if (!r)
        goto fail;
    int have = 0, table = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (table) {
        if (!(r = pg_q(c, "SELECT coalesce(max(version), 0) FROM schema_version", NULL, &rc, err)))
            goto fail;
        have = (int)pg_int(r, 0, 0);
        PQclear(r);
    }
    if (have > PG_NMIGRATIONS) {
        rc = fp_fail(err, FP_EINVAL,
                     "database schema version %d is newer than this fapiao (%d): upgrade fapiao "
                     "(数据库结构版本 %d 高于本程序支持的 %d：请升级 fapiao)",
                     have, PG_NMIGRATIONS, have, PG_NMIGRATIONS);
        goto fail;
    }
    if (have == 0 && read_only) { /* as SQLite's read-only open words it (sqlite/open.c) */
        rc = fp_fail(err, FP_EINVAL,
                     "the database has no fapiao schema yet: run fapiao serve or fapiao init "
                     "--database URL first (数据库还没有 fapiao 的表结构：请先运行 fapiao serve "
                     "或 fapiao init --database URL)");
        goto fail;
    }
    if (have < PG_NMIGRATIONS && read_only) {
        rc = fp_fail(err, FP_EINVAL,
                     "database schema version %d needs a migration to %d, which a read-only "
                     "command does not do: run fapiao serve once (数据库结构需要升级，只读命令"
                     "不做升级：请先运行一次 fapiao serve)",
                     have, PG_NMIGRATIONS);
        goto fail;
    }
    for (int v = have + 1; v <= PG_NMIGRATIONS; v++) {
        pg_params p = {0};
        pg_i64(&p, v);
        if ((rc = pg_exec(c, pg_migrations[v - 1], NULL, err)) < 0 ||
            (rc = pg_exec(c, "DELETE FROM schema_version", NULL, err)) < 0 ||
            (rc = pg_exec(c, "INSERT INTO schema_version VALUES($1::bigint::integer)", &p, err)) <
                0)
            goto fail;
    }
    return pg_exec(c, "COMMIT", NULL, err);
fail:
    pg_exec(c, "ROLLBACK", NULL, NULL);
    return rc;
}

static void noop_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Defaults for what the connection string leaves out (docs/ha.md §5): a
 * host that does not answer (a primary cut off by the network) is given
 * up after connect_timeout, and a connection whose server vanished fails
 * within about tcp_user_timeout instead of TCP's minutes, so the writer is
 * back for the next primary soon.  The string comes last: its own values
 * win (libpq takes the last value of a repeated keyword). */
static PGconn *pg_connect(const char *url, fp_err *err)
{
    static const char *const keys[] = {"connect_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "dbname",
                                       NULL};
    const char *vals[] = {"5", "10", "3", "3", "10000", url, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        const char *m = c ? PQerrorMessage(c) : "out of memory";
        size_t n = strlen(m);
        while (n && m[n - 1] == '\n')
            n--;
        fp_fail(err, FP_EIO, "cannot connect to PostgreSQL (无法连接 PostgreSQL): %.*s",
                (int)(n > 180 ? 180 : n), m);
        PQfinish(c);
        return NULL;
    }
    /* notices (CREATE TABLE IF NOT EXISTS ...) are not errors */
    PQsetNoticeProcessor(c, noop_notice, NULL);
    return c;
}

/* The audit key (audit.h): made when missing only while no checkpoint is
 * signed.  Every node of one database signs with it, so all of them need
 * the same key file (docs/ha.md). */
static int audit_key_load(fp_pg *s, fp_err *err)
{
    if (s->o.audit_checkpoint_every == 0)
        s->o.audit_checkpoint_every = 1000;
    if (s->o.audit_checkpoint_secs == 0)
        s->o.audit_checkpoint_secs = 60;
    char key[4200], pub[4200];
    if (fp_audit_key_paths(NULL, s->o.audit_key_path, key, pub, sizeof key) < 0)
        return fp_fail(err, FP_ERANGE, "audit key path too long");
    int rc;
    PGresult *r = pg_q(s->w,
                       "SELECT EXISTS(SELECT 1 FROM audit_checkpoints), coalesce((SELECT ts FROM "
                       "audit_checkpoints ORDER BY id DESC LIMIT 1), 0)",
                       NULL, &rc, err);
    if (!r)
        return rc;
    int signed_before = !strcmp(PQgetvalue(r, 0, 0), "t");
    int64_t age_s = fp_wall_s() - pg_int(r, 0, 1);
    PQclear(r);
    if ((rc = fp_audit_key_open(key, pub, !signed_before, s->audit_sk, s->audit_pk, err)) < 0)
        return rc;
    s->audit_signs = 1;
    /* the last checkpoint's age carried onto the monotonic clock the
     * interval runs on, as the SQLite backend does: with none, the first
     * fp_store_audit_checkpoint after records signs at once */
    s->audit_cp_mono_ms = signed_before ? fp_mono_ms() - (age_s > 0 ? age_s * 1000 : 0) : 0;
    return 0;
}

int pg_open(const fp_store_opts *o, void **be, fp_err *err)
{
    fp_pg *s = calloc(1, sizeof *s);
    if (!s)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    s->o = *o;
    if (fp_random(&s->node_tag, sizeof s->node_tag) < 0)
        s->node_tag = (uint32_t)getpid() ^ (uint32_t)fp_mono_ns();
    s->node_tag &= 0x7fffffffu; /* owner stays positive */
    if (s->o.read_conns <= 0)
        s->o.read_conns = 4;
    if (s->o.read_conns > PG_MAX_READERS)
        s->o.read_conns = PG_MAX_READERS;
    if (s->o.max_batch <= 0)
        s->o.max_batch = 512;
    s->clock.step_s = o->clock_step_s > 0 ? o->clock_step_s : 60;
    s->clock.jump_s = o->clock_jump_s > 0 ? o->clock_jump_s : 86400;
    s->url = strdup(o->path ? o->path : "");
    s->o.path = s->url;
    pthread_mutex_init(&s->wlock, NULL);
    fp_writeq_init(&s->q, s->o.max_batch, s->o.write_deadline_ms);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->rcond, NULL);
    int rc = FP_EIO;
    if (!s->url) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (!(s->w = pg_connect(s->url, err)))
        goto fail;
    if ((rc = pg_migrate(s->w, o->read_only, err)) < 0)
        goto fail;
    for (int i = 0; i < s->o.read_conns; i++) {
        if (!(s->readers[i] = pg_connect(s->url, err))) {
            rc = FP_EIO;
            goto fail;
        }
        s->rfree[s->nfree++] = i;
        s->nreaders++;
    }
    {
        int64_t boot = fp_boot_ns() / 1000000000;
        s->clock.base_wall = fp_wall_s();
        s->clock.base_boot = boot;
    }
    if (!o->read_only && o->audit_key_path && (rc = audit_key_load(s, err)) < 0)
        goto fail;
    if (!o->read_only && (rc = pg_writer_start(s, err)) < 0)
        goto fail;
    *be = s;
    return 0;
fail:
    pg_close(s);
    return rc;
}

void pg_close(void *be)
{
    fp_pg *s = be;
    if (!s)
        return;
    fp_writeq_stop(&s->q);
    if (s->audit_signs && s->w && !s->o.read_only)
        pg_audit_sign(s, 1, NULL); /* the tail, as the SQLite backend does at close */
    explicit_bzero(s->audit_sk, sizeof s->audit_sk);
    for (int i = 0; i < s->nreaders; i++)
        PQfinish(s->readers[i]);
    if (s->w)
        PQfinish(s->w);
    pthread_mutex_destroy(&s->wlock);
    fp_writeq_fini(&s->q);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->rcond);
    free(s->url);
    free(s);
}
