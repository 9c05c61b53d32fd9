"""A healthy fapiao: exit 0 and verdict OK with every way of giving
credentials, per-phase timings in --json, and the usage errors (exit 2)."""
import pytest

from faultzoo.doctor import check, covers, doctor, phase_status, phases


@covers("OK")
def test_healthy_fapiao_with_cacert(server):
    text, js = check("healthy fapiao", "OK", server.base_url, "--cacert", server.ca_cert)
    assert [phase_status(js.doc, p) for p in ("local", "dns", "tcp", "tls", "http", "api")] == \
        ["ok", "skipped", "ok", "ok", "ok", "skipped"], phases(js.doc)
    assert js.doc["warnings"] == [], js


@covers("OK")
def test_healthy_fapiao_with_credentials(server):
    text, js = check("healthy fapiao, client credentials", "OK", server.base_url,
                     "--cacert", server.ca_cert, "--client-id", server.client_id,
                     "--client-secret", server.client_secret)
    assert phase_status(js.doc, "api") == "ok", phases(js.doc)


@covers("OK")
def test_healthy_fapiao_with_token(server):
    text, js = check("healthy fapiao, access token", "OK", server.base_url,
                     "--cacert", server.ca_cert, "--token", server.token())
    assert phase_status(js.doc, "api") == "ok", phases(js.doc)


def test_timings_per_phase(server):
    js = doctor(server.base_url, "--cacert", server.ca_cert, "--json")
    ran = [p for p in phases(js.doc) if p["status"] != "skipped"]
    assert len(ran) >= 4 and all(p["duration_ms"] > 0 for p in ran), phases(js.doc)
    assert js.doc["total_ms"] >= sum(p["duration_ms"] for p in ran) * 0.9, js.doc


@pytest.mark.parametrize("args", [
    [],
    ["https://127.0.0.1:1", "--timeout"],
    ["https://127.0.0.1:1", "--timeout", "abc"],
    ["https://127.0.0.1:1", "--no-such-option"],
    ["not a url"],
    ["ftp://127.0.0.1:21/"],
    ["https://:443/"],
    ["https://[]:443/"],
    ["https://127.0.0.1:+443/"],
    ["https://127.0.0.1:1", "--dns-server", "not-an-ip"],
    ["https://127.0.0.1:1", "--resolve", "host:443:not-an-address"],
    ["https://127.0.0.1:1", "--resolve", "host:0:127.0.0.1"],
    ["https://127.0.0.1:1", "https://127.0.0.1:2"],
])
def test_usage_errors_exit_2(args):
    run = doctor(*args, timeout=30)
    assert run.rc == 2, "expected usage error (2): %r" % run
    assert run.err.strip(), "usage error without a message on stderr: %r" % run
