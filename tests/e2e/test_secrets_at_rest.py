"""Issue 13 item 9 (webhook part): webhook signing secrets are sealed at rest
(AES-256-GCM, key DIR/webhook.key beside token.key; docs/security.md
"Secrets at rest").  Before the fix fapiao.db held them in plaintext.

Black-box: the raw bytes of every file in the data directory (the database,
its WAL) contain no byte sequence of the secret, and deliveries still carry
a signature made with it.  Rows left in plaintext by an earlier version are
sealed when serve starts."""
import os
import sqlite3
import stat

from conftest import SLOW
from test_outbox import issue, receivers, set_webhook, verify  # noqa: F401 (fixture)


def raw_hits(data_dir, needle):
    hits = []
    for root, _, files in os.walk(data_dir):
        for f in files:
            p = os.path.join(root, f)
            try:
                with open(p, "rb") as fh:
                    if needle in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def test_set_webhook_secret_is_sealed_and_deliveries_verify(make_server, receivers):
    srv = make_server(serve_args=["--retry-backoff-ms", "200", "--allow-private-webhooks"])
    rec = receivers().start()
    secret = set_webhook(srv, rec.url)
    stored = srv.db_query("SELECT webhook_secret FROM clients WHERE client_id=?",
                          (srv.client_id,))[0][0]
    assert stored.startswith("fpwk1:") and secret not in stored
    key = srv.data_dir / "webhook.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    issue(srv, "sealed-1")
    calls = rec.wait_calls(1, timeout=30 * SLOW)
    assert verify(calls[0], secret), "signature does not verify"
    assert srv.stop() == 0
    # the secret, and its first half (no long run of it), is nowhere on disk
    for needle in (secret.encode(), secret[6:22].encode()):
        assert raw_hits(srv.data_dir, needle) == [], needle


def test_plaintext_rows_are_sealed_at_start(make_server, receivers):
    srv = make_server(start=False, init_args=[])
    rec = receivers().start()
    plain = "whsec_" + "legacyplaintext0123456789abcdef"
    # what an earlier fapiao stored
    con = sqlite3.connect(str(srv.db_path))
    con.execute("UPDATE clients SET webhook_url=?, webhook_secret=? WHERE client_id=?",
                (rec.url, plain, srv.client_id))
    con.commit()
    con.close()
    srv.serve_args = ["--retry-backoff-ms", "200", "--allow-private-webhooks"]
    srv.start()
    assert "sealed 1 webhook secrets" in srv.log_text()
    issue(srv, "sealed-legacy-1")
    calls = rec.wait_calls(1, timeout=30 * SLOW)
    assert verify(calls[0], plain)
    assert srv.stop() == 0
    assert raw_hits(srv.data_dir, plain.encode()) == []
    stored = srv.db_query("SELECT webhook_secret FROM clients WHERE client_id=?",
                          (srv.client_id,))[0][0]
    assert stored.startswith("fpwk1:")


def test_loose_webhook_key_refused(make_server, receivers):
    srv = make_server(start=False)
    set_webhook(srv, receivers().url)
    key = srv.data_dir / "webhook.key"
    os.chmod(key, 0o644)
    try:
        srv.start()
        raise AssertionError("serve started with webhook.key 0644")
    except AssertionError as e:
        assert "webhook secret key" in str(e), e
    os.chmod(key, 0o600)
