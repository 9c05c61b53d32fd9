"""The alerting files of deploy/ (docs/alerting.md), checked with the real
tools: the files generated from deploy/alerts.yaml are up to date, promtool
accepts the rules and their unit tests pass (every alert fires on a series
that should fire and stays quiet on a normal one and over a normal weekly
cycle), amtool accepts the Alertmanager configuration, and every expression
of the Grafana dashboard is valid PromQL.  No fapiao binary is needed; the
run under FAPIAO_SANITIZED=1 skips these (nothing here is compiled)."""
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, SANITIZED

pytestmark = pytest.mark.skipif(SANITIZED, reason="no binary involved: runs once, "
                                "in the optimised build's e2e run")

PROM = REPO / "deploy" / "prometheus"
RULES = PROM / "fapiao-rules.yml"
TABLE = REPO / "deploy" / "alerts.yaml"


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.skip("%s is not installed (scripts/install-deps.sh --test)" % name)
    return path


def run(*argv, timeout=600):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def test_generated_files_are_up_to_date():
    rc, out = run(sys.executable, str(REPO / "scripts" / "gen-alerts.py"), "--check")
    assert rc == 0, out


def test_promtool_check_rules():
    rc, out = run(tool("promtool"), "check", "rules", str(RULES))
    assert rc == 0, out
    table = yaml.safe_load(TABLE.read_text())
    live = [a for a in table["alerts"] if "pending" not in a]
    assert "SUCCESS: %d rules found" % (len(live) + len(table["recording"])) in out, out


def test_every_alert_has_severity_runbook_and_both_languages():
    rules = yaml.safe_load(RULES.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 15
    for a in alerts:
        assert a["labels"]["severity"] in ("P1", "P2", "P3"), a["alert"]
        ann = a["annotations"]
        for k in ("summary_zh", "summary_en", "description_zh", "description_en"):
            assert ann[k].strip(), (a["alert"], k)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in ann["summary_zh"]), a["alert"]
        assert (REPO / ann["runbook"]).is_file(), (a["alert"], ann["runbook"])


@pytest.mark.parametrize("name", ["fapiao-rules.test.yml", "fapiao-weekly.test.yml"])
def test_promtool_test_rules(name):
    """Every alert in the rules file appears in a firing case of the tests."""
    tests = yaml.safe_load((PROM / "tests" / name).read_text())
    rc, out = run(tool("promtool"), "test", "rules", str(PROM / "tests" / name))
    assert rc == 0, out
    if name == "fapiao-rules.test.yml":
        rules = yaml.safe_load(RULES.read_text())
        alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
        fired = set()
        for f in ("fapiao-rules.test.yml", "fapiao-weekly.test.yml"):
            for t in yaml.safe_load((PROM / "tests" / f).read_text())["tests"]:
                for c in t.get("alert_rule_test", []):
                    if c["exp_alerts"]:
                        fired.add(c["alertname"])
        assert fired == alerts, alerts ^ fired
    assert tests["tests"]


AM = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def test_amtool_check_config():
    rc, out = run(tool("amtool"), "check-config", str(AM))
    assert rc == 0 and "SUCCESS" in out, out


@pytest.mark.parametrize("labels,receiver", [
    (["severity=P1", "alertname=FapiaoStoreBreakerOpen"], "oncall-page"),
    (["severity=P2", "alertname=FapiaoOutboxDeadLetters"], "oncall-grouped"),
    (["severity=P3", "alertname=FapiaoAuthFailuresAboveBaseline"], "oncall-grouped"),
])
def test_amtool_routes_by_severity(labels, receiver):
    p = subprocess.run([tool("amtool"), "config", "routes", "test", "--config.file", str(AM),
                        *labels], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == receiver, p.stdout + p.stderr


def test_alertmanager_inhibits_and_has_maintenance_window():
    am = yaml.safe_load(AM.read_text())
    rule = am["inhibit_rules"][0]
    assert rule["source_matchers"] == ['severity="P1"'] and "instance" in rule["equal"]
    names = {t["name"] for t in am["time_intervals"]}
    assert "maintenance" in names
    p1 = [r for r in am["route"]["routes"] if r["matchers"] == ['severity="P1"']][0]
    assert p1["group_wait"] == "0s" and "mute_time_intervals" not in p1


def _grafana_exprs():
    dash = json.loads((REPO / "deploy" / "grafana" / "fapiao.json").read_text())
    exprs = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        q = v.get("query")
        if isinstance(q, dict):
            # label_values(EXPR, label) is Grafana's; its selector is PromQL
            inner = q["query"]
            if inner.startswith("label_values("):
                exprs.append((v["name"], inner[len("label_values("):].rsplit(",", 1)[0]))
    return dash, exprs


def test_grafana_dashboard_expressions_are_promql(tmp_path):
    """Each expression, with Grafana's variables given values, becomes a
    recording rule; `promtool check rules` parses them all."""
    dash, exprs = _grafana_exprs()
    assert dash["panels"] and len(exprs) >= 15
    titles = " ".join(p["title"] for p in dash["panels"])
    for topic in ("Invoices", "latency", "Errors", "Degraded", "Numbers", "Certificate",
                  "Outbox", "Alerts"):
        assert topic in titles, topic
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}
    rules = []
    for i, (title, e) in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        assert "$" not in e, (title, e)
        rules.append({"record": "grafana:check:%d" % i, "expr": e})
    f = tmp_path / "grafana-exprs.yml"
    f.write_text(yaml.dump({"groups": [{"name": "grafana", "rules": rules}]}))
    rc, out = run(tool("promtool"), "check", "rules", str(f))
    assert rc == 0 and "SUCCESS: %d rules found" % len(rules) in out, out
    # the recording rules the dashboard reads exist in the shipped rules
    recorded = {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"]
                for r in g["rules"] if "record" in r}
    for _, e in exprs:
        for word in e.replace("{", " ").replace("(", " ").split():
            if word.startswith("fapiao:"):
                assert word in recorded, word


def test_promtool_check_config():
    """The shipped prometheus.yml loads, with the rules beside it."""
    rc, out = run(tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert rc == 0 and "SUCCESS" in out, out
