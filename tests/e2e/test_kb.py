"""`fapiao kb search|show|list`: the knowledge base through the real binary."""
import json
import os
import subprocess

import pytest

from conftest import BIN, REPO

KB_DIR = REPO / "kb"


def run(*args, lang="C", env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "FAPIAO_KB_DIR")}
    env["LANG"] = lang
    if env_extra:
        env.update(env_extra)
    return subprocess.run([BIN, "kb", *args], capture_output=True, env=env, timeout=30)


def top_code(p):
    first = p.stdout.decode().splitlines()[0]
    return first.split()[0]


@pytest.mark.parametrize("query,want", [
    ("证书过期了", "TLS_CERT_EXPIRED"),
    ("缺少中间证书", "TLS_CHAIN_INCOMPLETE"),
    ("号码段用完了", "NUMBER_RANGE_EXHAUSTED"),
    ("连接被拒绝", "TCP_REFUSED"),
    ("certificate expired", "TLS_CERT_EXPIRED"),
    ("429 too many requests", "HTTP_RATE_LIMITED"),
    ("token expired", "AUTH_TOKEN_EXPIRED"),
    # the issue's own examples: a specific cause beats the generic symptom
    ("证书过期 握手失败", "TLS_CERT_EXPIRED"),
    ("connection refused", "TCP_REFUSED"),
])
def test_search_top_result(query, want):
    p = run("search", query)
    assert p.returncode == 0, p.stderr
    assert top_code(p) == want, p.stdout.decode()


def test_search_json():
    p = run("search", "PKIX path building failed", "--json", "--limit", "3")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["query"] == "PKIX path building failed"
    res = doc["results"]
    assert 1 <= len(res) <= 3
    assert {"TLS_UNTRUSTED_ISSUER", "TLS_CHAIN_INCOMPLETE"} & {r["code"] for r in res}
    for r in res:
        assert r["score"] > 0 and r["title_zh"] and r["title_en"]
    scores = [r["score"] for r in res]
    assert scores == sorted(scores, reverse=True)


def test_search_nothing_matches():
    p = run("search", "qqqzzzxxy")
    assert p.returncode == 1
    assert b"no article" in p.stderr
    p = run("search", "qqqzzzxxy", "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["results"] == []


def test_search_usage_errors():
    assert run("search").returncode == 2
    assert run("search", "x", "--limit", "0").returncode == 2
    assert run("frobnicate").returncode == 2


def test_show_all_sections():
    p = run("show", "TLS_CERT_EXPIRED")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith("# TLS_CERT_EXPIRED")
    for h in ("## 现象 / Symptoms", "## 原因 / Cause", "## 排查 / How to check", "## 解决 / Fix"):
        assert h in out
    assert out == (KB_DIR / "TLS_CERT_EXPIRED.md").read_text(encoding="utf-8")


def test_show_unknown_code():
    p = run("show", "NO_SUCH_CODE")
    assert p.returncode == 1
    assert b"NO_SUCH_CODE" in p.stderr and b"no article" in p.stderr
    p = run("show", "NO_SUCH_CODE", lang="zh_CN.UTF-8")
    assert p.returncode == 1
    assert "没有代码为 NO_SUCH_CODE 的文章" in p.stderr.decode()


def test_titles_follow_lang():
    en = run("search", "证书过期了", "--limit", "1", lang="C")
    zh = run("search", "证书过期了", "--limit", "1", lang="zh_CN.UTF-8")
    assert en.returncode == 0 and zh.returncode == 0
    assert "The server certificate has expired" in en.stdout.decode()
    assert "服务器证书已过期" in zh.stdout.decode()
    assert "服务器证书已过期" not in en.stdout.decode()


def test_list_covers_every_article():
    p = run("list", "--json")
    assert p.returncode == 0, p.stderr
    codes = [a["code"] for a in json.loads(p.stdout)]
    files = (list(KB_DIR.glob("*.md")) + list(KB_DIR.glob("cases/CASE_*.md")) +
             list(KB_DIR.glob("alerts/ALERT_*.md")))
    assert codes == sorted(f.stem for f in files)
    assert "TLS_CERT_EXPIRED" in codes and "OK" in codes
    assert any(c.startswith("ALERT_") for c in codes)
    assert len(codes) >= 200  # issue 23
    p = run("list")
    assert p.returncode == 0 and len(p.stdout.decode().splitlines()) == len(codes)


def test_subfolders_by_prefix(tmp_path):
    """kb/cases/CASE_*.md and kb/alerts/ALERT_*.md are listed, shown and
    searched; a code in the wrong folder is skipped."""
    (tmp_path / "cases").mkdir()
    (tmp_path / "alerts").mkdir()
    (tmp_path / "TOP_CODE.md").write_text("# TOP_CODE — 顶层 / Top level\n\nzebra\n",
                                          encoding="utf-8")
    (tmp_path / "cases" / "CASE_PRINTER.md").write_text(
        "# CASE_PRINTER — 打印机缺纸 / The printer is out of paper\n\nprinter paper\n",
        encoding="utf-8")
    (tmp_path / "alerts" / "ALERT_PAPER.md").write_text(
        "# ALERT_PAPER — 纸张告警 / Paper alert\n\npaper tray\n", encoding="utf-8")
    (tmp_path / "CASE_STRAY.md").write_text("# CASE_STRAY — x / y\n\nprinter\n", encoding="utf-8")
    (tmp_path / "cases" / "NOT_A_CASE.md").write_text("# NOT_A_CASE — x / y\n\nprinter\n",
                                                      encoding="utf-8")
    p = run("list", "--json", "--dir", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert [a["code"] for a in json.loads(p.stdout)] == ["ALERT_PAPER", "CASE_PRINTER", "TOP_CODE"]
    p = run("show", "case_printer", "--dir", str(tmp_path))
    assert p.returncode == 0 and p.stdout.startswith(b"# CASE_PRINTER")
    p = run("search", "printer", "--dir", str(tmp_path))
    assert p.returncode == 0 and top_code(p) == "CASE_PRINTER"
    assert b"CASE_STRAY" not in p.stdout and b"NOT_A_CASE" not in p.stdout


def test_dir_flag_and_env(tmp_path):
    (tmp_path / "MY_CODE.md").write_text(
        "# MY_CODE — 打印机缺纸 / The printer is out of paper\n\n## 现象 / Symptoms\n\n打印机缺纸 paper\n",
        encoding="utf-8")
    p = run("search", "打印机", "--dir", str(tmp_path))
    assert p.returncode == 0 and top_code(p) == "MY_CODE"
    p = run("show", "MY_CODE", env_extra={"FAPIAO_KB_DIR": str(tmp_path)})
    assert p.returncode == 0 and b"printer" in p.stdout
    p = run("show", "TLS_CERT_EXPIRED", env_extra={"FAPIAO_KB_DIR": str(tmp_path)})
    assert p.returncode == 1
    p = run("list", "--dir", str(tmp_path / "missing"))
    assert p.returncode == 2 and b"knowledge base" in p.stderr
