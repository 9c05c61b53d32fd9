"""The README's API example runs as printed: the shell block between the
readme-test markers is executed against a server of the test's own, with
only the demo paths and URL substituted.  README.zh-CN.md opens the same
way, carries the same example, and keeps the same commands, code tour,
sections and measured figures as README.md."""
import json
import re
import subprocess
from collections import Counter

from conftest import REPO, SLOW


def readme_block():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- readme-test:begin -->\s*```sh\n(.*?)```\s*<!-- readme-test:end -->", text, re.S)
    assert m, "README has no readme-test block"
    return m.group(1)


def test_readme_api_example_works_as_printed(server, tmp_path):
    cred = tmp_path / "demo-credential.json"
    cred.write_text(json.dumps({"client_id": server.client_id, "client_secret": server.client_secret}))
    script = readme_block()
    script = script.replace("var/demo/tls/server.crt", str(server.ca_cert))
    script = script.replace("var/demo/demo-credential.json", str(cred))
    script = script.replace("https://127.0.0.1:8443", "https://127.0.0.1:%d" % server.port)
    assert "var/demo" not in script and ":8443" not in script
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(REPO),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    blue = re.fullmatch(r"blue invoice (\d{20})", lines[0])
    form = re.fullmatch(r"red form (RF\d{18})", lines[1])
    assert blue and form, lines[:2]
    red = json.loads(lines[2])
    assert red["color"] == "red"
    assert red["original_number"] == blue.group(1)
    assert red["red_form_id"] == form.group(1)
    # the figures the README quotes
    assert red["total_with_tax"] == "-477.00"
    assert red["total_with_tax_words"] == "（负数）肆佰柒拾柒圆整"


def test_readme_zh_cn_opens_the_same_way_and_carries_the_same_example():
    """README.zh-CN.md (linked from the top of README.md) has equal place: it
    opens with `make run` and `make test` too, and its API example is the one
    this file runs, character for character."""
    en = (REPO / "README.md").read_text(encoding="utf-8")
    zh = (REPO / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "(README.zh-CN.md)" in en.splitlines()[0]
    for text in (en, zh):
        first = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
        assert first.startswith("make run") and "\nmake test" in first, first
    m = re.search(r"<!-- readme-test:begin -->\s*```sh\n(.*?)```\s*<!-- readme-test:end -->",
                  zh, re.S)
    assert m and m.group(1) == readme_block()


# --- README.md and README.zh-CN.md carry the same content -------------------
# The Chinese README is a translation, so its prose cannot be compared with the
# English; what both must share word for word is what a translation leaves
# alone: the commands, the code paths, the figures and the section structure.
# Each check names what one side has and the other lacks, so drift shows up
# as a failing test with the missing rows in its message.

COMMAND_TABLE = {"command", "命令"}  # first header cell, per language
CODE_TOUR_TABLE = {"file", "文件"}
MEASURED_SECTION = {"Measured", "实测数据"}


def _readmes():
    return ((REPO / "README.md").read_text(encoding="utf-8"),
            (REPO / "README.zh-CN.md").read_text(encoding="utf-8"))


def _without_code_blocks(text):
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _sections(text):
    """[(heading, body)] of the second-level sections, fenced code ignored."""
    parts = re.split(r"^## (.*)$", _without_code_blocks(text), flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def _cells(line):
    # split on the table's pipes, not on the escaped ones in `a\|b`
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _code_spans(s):
    return tuple(re.findall(r"`([^`]+)`", s))


def _table(text, header):
    """Rows (as cell lists) of the one table whose first header cell is in
    `header`; fails unless there is exactly one."""
    tables, current = [], []
    for line in _without_code_blocks(text).splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    found = [t for t in tables if _cells(t[0])[0] in header]
    assert len(found) == 1, "expected one table headed %s, found %d" % (header, len(found))
    return [_cells(row) for row in found[0][2:]]


def _figures(text):
    """The multiset of numbers in the Measured section, thousands
    separators dropped (1,933 and 1933 are one figure)."""
    body = [b for h, b in _sections(text) if h.strip() in MEASURED_SECTION]
    assert len(body) == 1, "no single Measured section"
    nums = re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", body[0])
    return Counter(n.replace(",", "") for n in nums)


def _differ(what, en, zh):
    en, zh = Counter(en), Counter(zh)
    return "%s differ:\n  only in README.md: %s\n  only in README.zh-CN.md: %s" % (
        what, sorted(map(str, (en - zh).elements())), sorted(map(str, (zh - en).elements())))


def test_readme_zh_cn_has_the_same_sections():
    en, zh = _readmes()
    en_s, zh_s = _sections(en), _sections(zh)
    assert len(en_s) == len(zh_s), "second-level sections: %s vs %s" % (
        [h for h, _ in en_s], [h for h, _ in zh_s])


def test_readme_zh_cn_has_the_same_commands():
    """The first cell of every command-table row (its backticked commands)."""
    en, zh = _readmes()
    en_c = [" / ".join(_code_spans(r[0])) for r in _table(en, COMMAND_TABLE)]
    zh_c = [" / ".join(_code_spans(r[0])) for r in _table(zh, COMMAND_TABLE)]
    assert Counter(en_c) == Counter(zh_c), _differ("command-table rows", en_c, zh_c)


def test_readme_zh_cn_has_the_same_code_tour():
    """The backticked paths of every code-tour row's first cell, and for each
    row the code spans (file and function names) its description mentions."""
    en, zh = _readmes()
    en_rows = {", ".join(_code_spans(r[0])): _code_spans(r[1]) for r in _table(en, CODE_TOUR_TABLE)}
    zh_rows = {", ".join(_code_spans(r[0])): _code_spans(r[1]) for r in _table(zh, CODE_TOUR_TABLE)}
    assert set(en_rows) == set(zh_rows), _differ("code-tour paths", list(en_rows), list(zh_rows))
    for path in en_rows:
        assert Counter(en_rows[path]) == Counter(zh_rows[path]), _differ(
            "code spans in the code-tour row %s" % path, en_rows[path], zh_rows[path])


def test_readme_zh_cn_has_the_same_figures():
    en, zh = _readmes()
    en_f, zh_f = _figures(en), _figures(zh)
    assert en_f == zh_f, _differ("figures in the Measured section",
                                 en_f.elements(), zh_f.elements())
