"""/openapi.json against the server's route table and Redocly CLI.

Client generators (the Java and Python ERP connectors) are built from
/openapi.json, so the document must describe every public route the server
has, nothing it lacks, and lint clean under Redocly CLI's recommended rules
(0 errors, 0 warnings).  The route table is read from the running server:
/metrics has one fapiao_http_requests_total row per route (server_metrics.c),
with the route's pattern ("/v1/invoices/{}").  Redocly CLI is pinned by
tests/openapi/package-lock.json; scripts/install-deps.sh --test installs it
there.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import REPO

LINT_DIR = REPO / "tests" / "openapi"
REDOCLY = LINT_DIR / "node_modules" / ".bin" / "redocly"
# Test machinery and the console are not part of the public API.
EXCLUDED = ("/v1/_faults", "/console", "/ui/")
ROUTE_RE = re.compile(r'^fapiao_http_requests_total\{method="([A-Z]+)",route="([^"]+)"')
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def served_doc(server):
    o = server.request("GET", "/openapi.json", auth=False)
    assert o.status == 200, o
    return o.json()


def route_table(server):
    m = server.request("GET", "/metrics", auth=False)
    assert m.status == 200, m
    routes = set()
    for line in m.body.decode().splitlines():
        hit = ROUTE_RE.match(line)
        if hit and hit.group(2) != "unmatched" and not hit.group(2).startswith(EXCLUDED):
            routes.add((hit.group(1), hit.group(2)))
    assert len(routes) > 10, routes
    return routes


def doc_operations(doc):
    ops = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                ops[(method.upper(), re.sub(r"\{[^}]*\}", "{}", path))] = (path, op)
    return ops


def test_document_matches_route_table_both_ways(server):
    routes = route_table(server)
    described = set(doc_operations(served_doc(server)))
    assert sorted(routes - described) == [], "routes the document lacks"
    assert sorted(described - routes) == [], "operations the server lacks"


def resolve(doc, obj):
    while "$ref" in obj:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def test_every_operation_is_complete(server):
    doc = served_doc(server)
    assert doc.get("servers"), "no servers"
    assert doc["info"].get("license", {}).get("name"), "no licence"
    ids = []
    for (method, _), (path, op) in sorted(doc_operations(doc).items()):
        where = f"{method} {path}"
        assert op.get("operationId"), where
        assert op.get("summary"), where
        ids.append(op["operationId"])
        errors = {c: resolve(doc, r) for c, r in op["responses"].items() if c[0] in "45"}
        assert any(c.startswith("4") for c in errors), f"{where}: no 4xx answer"
        for code, resp in errors.items():
            if path == "/readyz" and code == "503":
                continue  # /readyz's 503 is its JSON report, not a problem
            assert "application/problem+json" in resp.get("content", {}), f"{where} {code}"
    assert len(ids) == len(set(ids)), "operationIds repeat"


def test_redocly_recommended_lints_clean(server, tmp_path):
    assert REDOCLY.exists(), "Redocly CLI missing: run scripts/install-deps.sh --test"
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(served_doc(server), ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")
    run = subprocess.run([str(REDOCLY), "lint", "--config", str(LINT_DIR / "redocly.yaml"),
                          "--format=json", str(spec)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(run.stdout)
    problems = [(p["ruleId"], p["message"]) for p in report["problems"]]
    assert report["totals"]["errors"] == 0 and report["totals"]["warnings"] == 0, problems
    assert run.returncode == 0, run.stderr[-2000:]
