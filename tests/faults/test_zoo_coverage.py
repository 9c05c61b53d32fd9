"""Every finding code of src/doctor/findings.c has a fault in this zoo.

Each zoo test is tagged @covers("CODE", …) (faultzoo/doctor.py); this test
reads the tags from the source of tests/faults/test_*.py — statically, so it
holds whichever tests a run selects — and compares them with the table.  A
code the doctor cannot produce must be listed in NOT_PRODUCIBLE with the
reason; a code must not be covered only by tests that are always skipped."""
import ast
import os
from pathlib import Path

from faultzoo import REPO
from faultzoo.doctor import FINDINGS

HERE = Path(__file__).resolve().parent

NOT_PRODUCIBLE = {
    "NUMBER_RANGE_EXHAUSTED":
        "a server alert (layer server, exit 70), raised by fapiao about itself; the doctor "
        "sees an exhausted range as /readyz 503 and names HTTP_NOT_READY "
        "(test_zoo_http.py::test_not_ready_when_ranges_exhausted)",
    "TLS_PIN_MISMATCH":
        "the client library's finding (libfapiao-client, `fapiao issue --pin`): the doctor has "
        "no pin to compare (tests/e2e/test_client_diagnosis.py::test_a_wrong_pin_fails_at_once)",
}


def _name(node):
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return _name(node.value) + "." + node.attr
    return node.id if isinstance(node, ast.Name) else ""


def tagged_tests():
    """[(file::function, codes, always_skipped)] from every zoo test file."""
    out = []
    for path in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            codes, skipped = [], False
            for d in fn.decorator_list:
                if _name(d) == "covers":
                    codes += [a.value for a in d.args]
                if _name(d) == "pytest.mark.skip":
                    skipped = True
            if codes:
                out.append(("%s::%s" % (path.name, fn.name), codes, skipped))
    return out


def test_every_finding_code_has_a_fault():
    covered = {}
    for test, codes, skipped in tagged_tests():
        for c in codes:
            assert c in FINDINGS, "%s covers %s, which findings.c does not have" % (test, c)
            covered.setdefault(c, []).append((test, skipped))
    missing = sorted(set(FINDINGS) - set(covered) - set(NOT_PRODUCIBLE))
    assert not missing, "finding codes without a fault-zoo test: %s" % ", ".join(missing)
    only_skipped = sorted(c for c, ts in covered.items() if all(s for _, s in ts))
    assert not only_skipped, "codes covered only by skipped tests: %s" % only_skipped
    for code, why in NOT_PRODUCIBLE.items():
        assert code in FINDINGS, "NOT_PRODUCIBLE lists %s, which findings.c lacks" % code
        assert code not in covered, "%s is covered by %s: drop it from NOT_PRODUCIBLE" % (
            code, covered[code])
        assert why.strip()


def test_the_tags_are_honest():
    """A tag names a code the test's own source mentions (as check()'s
    verdict, a warning= or in a parametrize table)."""
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            tags = [a.value for d in fn.decorator_list if _name(d) == "covers" for a in d.args]
            text = path.read_text()
            # the body and the other decorators (a parametrize table), not the tag
            body = ast.get_source_segment(text, fn) + "".join(
                ast.get_source_segment(text, d) for d in fn.decorator_list
                if _name(d) != "covers")
            for c in tags:
                assert '"%s"' % c in body, "%s::%s is tagged %s but never checks it" % (
                    path.name, fn.name, c)


# ---- the code table of docs/doctor.md -----------------------------------------
DOC = REPO / "docs" / "doctor.md"
BEGIN = "<!-- finding-codes:begin"
END = "<!-- finding-codes:end -->"


def render_codes():
    tests = {}
    for test, codes, skipped in tagged_tests():
        for c in codes:
            if not skipped:
                tests.setdefault(c, []).append(test.split("::")[0])
    out = ["| code | layer | exit | severity | meaning | article | fault zoo |",
           "|---|---|---|---|---|---|---|"]
    for f in FINDINGS.values():
        zoo = ", ".join(sorted(set(tests.get(f.code, [])))) or "— (%s)" % (
            "client library: e2e/test_client_diagnosis.py" if f.code == "TLS_PIN_MISMATCH"
            else "server alert" if f.code in NOT_PRODUCIBLE else "none")
        out.append("| `%s` | %s | %d | %s | %s / %s | [kb/%s.md](../kb/%s.md) | %s |" % (
            f.code, f.layer, f.exit, f.severity, f.en, f.zh, f.code, f.code, zoo))
    return "\n".join(out) + "\n"


def test_docs_list_every_code():
    """docs/doctor.md's table of finding codes is findings.c's (rewritten
    with FAPIAO_WRITE_DOCS=1)."""
    text = DOC.read_text()
    i, j = text.find(BEGIN), text.find(END)
    assert i >= 0 and j > i, "docs/doctor.md lacks the markers %s … %s" % (BEGIN, END)
    a = text.index("\n", i) + 1
    table = render_codes()
    if os.environ.get("FAPIAO_WRITE_DOCS") == "1":
        DOC.write_text(text[:a] + table + text[j:])
        return
    assert text[a:j] == table, ("docs/doctor.md's finding codes differ from findings.c; "
                                "rerun with FAPIAO_WRITE_DOCS=1")
