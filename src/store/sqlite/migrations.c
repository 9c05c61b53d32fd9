/* migrations.c — the versioned schema.  Migration i (1-based) brings the
 * database from user_version i-1 to i; they run in one transaction each at
 * open.  Never edit a released migration: add a new one. */
#include "fapiao/store.h"
#include "internal.h"

#include <stddef.h>

#include "../silences_sql.h"
#include "../red_upstream_sql.h"
#include "../users_sql.h"

static const char *const migrations[] = {
    /* 1: walking skeleton */
    "CREATE TABLE sellers("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL, tax_id TEXT NOT NULL, address TEXT NOT NULL DEFAULT '',"
    "  phone TEXT NOT NULL DEFAULT '', bank TEXT NOT NULL DEFAULT '',"
    "  account TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE clients("
    "  client_id TEXT PRIMARY KEY,"
    "  seller_id INTEGER NOT NULL REFERENCES sellers(id),"
    "  secret_salt BLOB NOT NULL, secret_hash BLOB NOT NULL,"
    "  scope TEXT NOT NULL, created_at INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0);"
    /* 预赋码: a range of numbers prefix || 15-digit sequence, first..last */
    "CREATE TABLE number_ranges("
    "  id INTEGER PRIMARY KEY,"
    "  seller_id INTEGER NOT NULL REFERENCES sellers(id),"
    "  prefix TEXT NOT NULL CHECK(length(prefix) = 5),"
    "  first INTEGER NOT NULL, last INTEGER NOT NULL, next INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  CHECK(first >= 1 AND first <= last AND last <= 999999999999999),"
    "  CHECK(next >= first AND next <= last + 1));"
    /* One row per issued invoice.  (seller_id, serial) is the idempotency
     * record: the serial is the caller's Idempotency-Key, unique per seller
     * forever; request_hash identifies the body it was first used with, and
     * doc is the original 201 body, replayed byte for byte. */
    "CREATE TABLE invoices("
    "  number TEXT PRIMARY KEY CHECK(length(number) = 20),"
    "  seller_id INTEGER NOT NULL REFERENCES sellers(id),"
    "  serial TEXT NOT NULL,"
    "  request_hash BLOB NOT NULL,"
    "  status TEXT NOT NULL,"
    "  invoice_type TEXT NOT NULL,"
    "  buyer_tax_id TEXT,"
    "  total_with_tax INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  UNIQUE(seller_id, serial));"
    "CREATE INDEX invoices_buyer ON invoices(seller_id, buyer_tax_id);"
    "CREATE INDEX invoices_issued ON invoices(seller_id, issued_at);"
    /* Written in the same transaction as the change it records. */
    "CREATE TABLE audit("
    "  id INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    "  target TEXT, request_id TEXT, client_ip TEXT, outcome TEXT NOT NULL);",
    /* 2: red invoices.  A 红字确认单 (red form) names the blue invoice and
     * its red lines; red_form_lines keep the per-line quantity (in units of
     * 1e-13, as decimal text: it may exceed 64 bits), amount and tax, all
     * negative, so the caps per blue line are sums over these rows. */
    "CREATE TABLE red_forms("
    "  id INTEGER PRIMARY KEY,"
    "  form_no TEXT NOT NULL UNIQUE,"
    "  seller_id INTEGER NOT NULL REFERENCES sellers(id),"
    "  blue_number TEXT NOT NULL REFERENCES invoices(number),"
    "  reason TEXT NOT NULL,"
    "  initiated_by TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  red_number TEXT REFERENCES invoices(number),"
    "  total_amount INTEGER NOT NULL, total_tax INTEGER NOT NULL);"
    "CREATE INDEX red_forms_blue ON red_forms(blue_number);"
    "CREATE TABLE red_form_lines("
    "  form_id INTEGER NOT NULL REFERENCES red_forms(id),"
    "  line INTEGER NOT NULL,"
    "  quantity TEXT NOT NULL DEFAULT '',"
    "  amount INTEGER NOT NULL, tax INTEGER NOT NULL,"
    "  PRIMARY KEY(form_id, line)) WITHOUT ROWID;"
    "ALTER TABLE invoices ADD COLUMN color TEXT NOT NULL DEFAULT 'blue';"
    "ALTER TABLE invoices ADD COLUMN original_number TEXT;",
    /* 3: the outbox.  The issuing transaction inserts a render job and,
     * when the issuing client has a webhook, a notify job 'blocked' behind
     * it; the render's completion unblocks it.  States: blocked, pending,
     * running (leased to lease_owner until lease_until), done, dead.  Times
     * are unix milliseconds.  event_id is stable across retries so that a
     * receiver can drop duplicates (delivery is at least once). */
    "CREATE TABLE jobs("
    "  id INTEGER PRIMARY KEY,"
    "  invoice_number TEXT NOT NULL REFERENCES invoices(number),"
    "  seller_id INTEGER NOT NULL REFERENCES sellers(id),"
    "  client_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK(kind IN ('render', 'notify')),"
    "  event TEXT, event_id TEXT UNIQUE,"
    "  after_job INTEGER REFERENCES jobs(id),"
    "  state TEXT NOT NULL"
    "    CHECK(state IN ('blocked', 'pending', 'running', 'done', 'dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  lease_owner INTEGER, lease_until INTEGER,"
    "  first_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    "  last_error TEXT);"
    "CREATE INDEX jobs_due ON jobs(state, next_at);"
    "CREATE INDEX jobs_invoice ON jobs(invoice_number);"
    "CREATE INDEX jobs_after ON jobs(after_job) WHERE after_job IS NOT NULL;"
    /* per-client webhook: the URL events go to and the HMAC key that signs
     * them (the server must sign, so it keeps the key itself) */
    "ALTER TABLE clients ADD COLUMN webhook_url TEXT;"
    "ALTER TABLE clients ADD COLUMN webhook_secret TEXT;"
    /* accepted -> rendered -> delivered -> confirmed, or failed (failure) */
    "ALTER TABLE invoices ADD COLUMN failure TEXT;",
    /* 4: the health checker's write probe (one row, rewritten) */
    "CREATE TABLE health_probe(id INTEGER PRIMARY KEY CHECK(id = 1), at INTEGER NOT NULL);",
    /* 5: credentials (issue 7).  A client has roles (comma-separated:
     * issuer, reviewer, auditor, admin), an optional IP allowlist
     * (comma-separated CIDRs), an optional client-certificate binding
     * (SHA-256 of the DER, hex) and may be revoked.  Its secrets live in
     * client_secrets: several are valid at once during a rotation's overlap
     * (expires_at NULL: no end). */
    "ALTER TABLE clients ADD COLUMN roles TEXT NOT NULL DEFAULT 'issuer';"
    "ALTER TABLE clients ADD COLUMN allowed_ips TEXT;"
    "ALTER TABLE clients ADD COLUMN cert_sha256 TEXT;"
    "ALTER TABLE clients ADD COLUMN revoked_at INTEGER;"
    "CREATE TABLE client_secrets("
    "  id INTEGER PRIMARY KEY,"
    "  client_id TEXT NOT NULL REFERENCES clients(client_id),"
    "  salt BLOB NOT NULL, hash BLOB NOT NULL,"
    "  prefix TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER);"
    "CREATE INDEX client_secrets_client ON client_secrets(client_id);"
    /* clients made before: their one secret, and every role (the demo
     * credential keeps working as it did) */
    "INSERT INTO client_secrets(client_id, salt, hash, prefix, created_at) "
    "  SELECT client_id, secret_salt, secret_hash, 'fps_', created_at FROM clients;"
    "UPDATE clients SET roles='issuer,reviewer,auditor,admin';",
    /* 6: the tamper-evident audit log (issue 7, include/fapiao/audit.h).
     * Each record links to its predecessor's hash; checkpoints sign the
     * chain's head with the server's Ed25519 key.  Records from before this
     * migration are chained (and signed by checkpoint 1) by the store at
     * its first open: SQL cannot compute the hashes. */
    "ALTER TABLE audit ADD COLUMN prev_hash BLOB;"
    "ALTER TABLE audit ADD COLUMN hash BLOB;"
    "CREATE TABLE audit_checkpoints("
    "  id INTEGER PRIMARY KEY,"
    "  upto_id INTEGER NOT NULL,"
    "  upto_hash BLOB NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  signature BLOB NOT NULL);",
    /* 7: audit scope and request ids (issue 13, docs/security.md).  A
     * record carries the seller it belongs to (NULL: instance-wide, e.g.
     * CLI administration, or a record from before this migration, which
     * keeps its hash) and the X-Request-Id the client sent, apart from the
     * server's own request_id.  Both are hashed into the chain when set
     * (audit.h). */
    "ALTER TABLE audit ADD COLUMN seller_id INTEGER;"
    "ALTER TABLE audit ADD COLUMN client_request_id TEXT;"
    "CREATE INDEX audit_seller ON audit(seller_id, id);",
    /* 8: the issue clock's high-water mark (issue 12; docs/operations.md,
     * "Clock"): issue times never go backwards in the store.  confirmed_at:
     * when an operator last confirmed a forward jump (fapiao clock
     * confirm). */
    "CREATE TABLE issue_clock(id INTEGER PRIMARY KEY CHECK(id = 1), mark INTEGER NOT NULL,"
    "  confirmed_at INTEGER);"
    "INSERT INTO issue_clock(id, mark) SELECT 1, COALESCE(MAX(issued_at), 0) FROM invoices;",
    /* 9: renders served fairly across sellers (issue 13; docs/webhooks.md,
     * "Order of service").  cost: the job's estimated cost (jobs.h).
     * fair_tag: set while a job waits for its first run, NULL otherwise
     * (claimed, retried, deferred, re-driven, blocked, or queued before this
     * migration); such first runs are served in fair_tag order, everything
     * else by next_at.  The partial indexes keep each claim and each
     * enqueue a few index lookups, whatever the backlog. */
    "ALTER TABLE jobs ADD COLUMN cost INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE jobs ADD COLUMN fair_tag INTEGER;"
    "CREATE INDEX jobs_fair ON jobs(fair_tag) WHERE fair_tag IS NOT NULL;"
    "CREATE INDEX jobs_fair_seller ON jobs(seller_id, fair_tag) WHERE fair_tag IS NOT NULL;"
    "CREATE INDEX jobs_retry ON jobs(next_at) WHERE state = 'pending' AND fair_tag IS NULL;",
    /* 10: sellers for a real company or a group (issue 16; docs/sellers.md).
     * The tax bureau code the XML needs, the defaults for the drawer and
     * the remark, and the disabled flag (a disabled seller issues nothing).
     * seller_generation counts every change of the sellers table (the
     * triggers), so a running server sees a change made by the CLI with
     * one integer read instead of re-reading the sellers. */
    "ALTER TABLE sellers ADD COLUMN tax_bureau TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sellers ADD COLUMN drawer TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sellers ADD COLUMN remark TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE sellers ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sellers ADD COLUMN created_at INTEGER;"
    "CREATE INDEX sellers_tax_id ON sellers(tax_id);"
    "CREATE TABLE seller_generation(id INTEGER PRIMARY KEY CHECK(id = 1), gen INTEGER NOT NULL);"
    "INSERT INTO seller_generation(id, gen) VALUES(1, 0);"
    "CREATE TRIGGER sellers_gen_ins AFTER INSERT ON sellers BEGIN"
    "  UPDATE seller_generation SET gen = gen + 1 WHERE id = 1; END;"
    "CREATE TRIGGER sellers_gen_upd AFTER UPDATE ON sellers BEGIN"
    "  UPDATE seller_generation SET gen = gen + 1 WHERE id = 1; END;"
    "CREATE TRIGGER sellers_gen_del AFTER DELETE ON sellers BEGIN"
    "  UPDATE seller_generation SET gen = gen + 1 WHERE id = 1; END;",
    /* 11: alert silences (issue 19; docs/alerting.md "Silences"), made by
     * `fapiao alerts silence` and read by the running server's notifier. */
    FP_SQ_SILENCES_SQL,
    /* 12: uploads to the tax platform (issue 20; docs/upstream.md, "Upload
     * pipeline").  One row per issued invoice while the upstream is
     * configured, written in the issuing transaction: the invoice's upload
     * state and its job (next_at, attempts) in one row.  sllsh: the
     * platform's acceptance serial of the batch that carried it, kept so a
     * timeout is answered by a query, never by a blind resend. */
    "CREATE TABLE uploads(invoice_number TEXT PRIMARY KEY, seller_id INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK(state IN ('pending', 'submitted', 'accepted', 'rejected')),"
    "  sllsh TEXT, reason TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL, first_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX uploads_due ON uploads(state, next_at);"
    "CREATE INDEX uploads_seller ON uploads(seller_id, state);",
    /* 13: console users (issue 22; docs/console.md): people, not API
     * clients, with a password, a TOTP seed sealed at rest and roles. */
    FP_USERS_TABLE("INTEGER"),
    /* 14: the credit line per seller and month (issue 20; credit.h,
     * docs/upstream.md "Credit"): the limit downloaded from the platform
     * and what this store's invoices took, moved in the issuing
     * transaction. */
    "CREATE TABLE upstream_credit(seller_id INTEGER NOT NULL, month TEXT NOT NULL,"
    "  limit_fen INTEGER NOT NULL, used_fen INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL, PRIMARY KEY(seller_id, month));",
    /* 15: fewer pages per invoice (issue 15; docs/performance.md §5d).
     * invoices_buyer was in no query plan: the invoice list's one statement
     * tests "?3 IS NULL OR buyer_tax_id=?3", which SQLite cannot use an
     * index for, and it searches by seller_id through invoices_issued;
     * yet every issuing transaction wrote a leaf of it (about 1 page per
     * invoice committed alone). */
    "DROP INDEX IF EXISTS invoices_buyer;",
    /* 16: red forms filed upstream (issue 20; docs/upstream.md "Red
     * forms"): the platform's uuid, form number and state per form. */
    FP_RED_UPSTREAM_SQL,
    /* 17: our answers to red forms, sent upstream by the red keeper (issue
     * 20; docs/upstream.md "Red forms"), one form per platform uuid. */
    FP_RED_ANSWER_SQL,
};

int fp_store_migration_count(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *fp_store_migration_sql(int version)
{
    if (version < 1 || version > fp_store_migration_count())
        return NULL;
    return migrations[version - 1];
}

/* Brings the schema of db up to this build's version, one transaction per
 * version; a newer schema is refused. */
int fp_sq_migrate(sqlite3 *db, fp_err *err)
{
    sqlite3_stmt *st;
    int have = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        have = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int want = fp_store_migration_count();
    if (have > want)
        return fp_fail(err, FP_EINVAL,
                       "database schema version %d is newer than this fapiao (%d): upgrade fapiao",
                       have, want);
    for (int v = have + 1; v <= want; v++) {
        char setv[64];
        snprintf(setv, sizeof setv, "PRAGMA user_version=%d", v);
        int rc;
        if ((rc = fp_sq_exec(db, "BEGIN IMMEDIATE", err)) < 0)
            return rc;
        if ((rc = fp_sq_exec(db, fp_store_migration_sql(v), err)) < 0 ||
            (rc = fp_sq_exec(db, setv, err)) < 0 || (rc = fp_sq_exec(db, "COMMIT", err)) < 0) {
            fp_sq_exec(db, "ROLLBACK", NULL);
            return rc;
        }
    }
    return 0;
}
