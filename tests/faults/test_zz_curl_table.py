"""The curl comparison of docs/doctor.md, from this run's results.

Every check() of the zoo also ran curl on the same fault (faultzoo/doctor.py)
and recorded curl's exit code and HTTP status next to the doctor's finding.
This file runs last (pytest takes the files in name order) and renders the
table between the markers of docs/doctor.md:

  FAPIAO_WRITE_DOCS=1  writes it;
  otherwise            asserts that the committed table is this run's,
                       so the document stays honest; in a partial run (-k,
                       a fault skipped here: no namespaces, an ASan build,
                       a server without a later issue's feature) the rows
                       that ran must match and the rest is skipped, named."""
import os
import re
from collections import OrderedDict

import pytest

from faultzoo import REPO
from faultzoo.doctor import CURL_MEANING, FINDINGS, RESULTS

DOC = REPO / "docs" / "doctor.md"
BEGIN = "<!-- fault-zoo-table:begin"
END = "<!-- fault-zoo-table:end -->"
ORDER = {c: i for i, c in enumerate(FINDINGS)}


def curl_cell(o):
    codes = o.curl_alt or (o.curl_rc,)
    text = " or ".join("%d (%s)" % (c, CURL_MEANING.get(c, "?")) for c in codes)
    if o.curl_status and not o.curl_alt:
        text += ", HTTP %d" % o.curl_status
    return text


def doctor_cell(o):
    f = FINDINGS[o.finding]
    if o.finding == "OK":
        return "`OK` (exit 0)"
    if o.warning:
        return "`%s` (%s; verdict OK, exit 0)" % (o.finding, "info" if f.severity == "info"
                                                    else "warning")
    return "`%s` (exit %d)" % (o.finding, f.exit)


def render(results):
    rows = sorted(results.values(),
                  key=lambda o: (ORDER[o.finding] if o.finding != "OK" else len(ORDER), o.fault))
    out = ["| fault | curl exit code (meaning) | doctor finding |", "|---|---|---|"]
    for o in rows:
        out.append("| %s | %s | %s |" % (o.fault, curl_cell(o), doctor_cell(o)))
    curl_codes = sorted({c for o in rows for c in (o.curl_alt or (o.curl_rc,))})
    with_status = {(o.curl_alt or (o.curl_rc,), o.curl_status) for o in rows}
    findings = {o.finding for o in rows}
    out += ["", "%d faults: curl's exit code distinguishes **%d** causes (%d with the HTTP "
            "status as well), the doctor **%d**." % (len(rows), len(curl_codes),
                                                      len(with_status), len(findings)), ""]
    out += ["| curl exit code | faults | what the doctor names instead |", "|---|---|---|"]
    for c in curl_codes:
        mine = [o for o in rows if c in (o.curl_alt or (o.curl_rc,))]
        names = OrderedDict((o.finding, None) for o in sorted(
            mine, key=lambda o: ORDER[o.finding] if o.finding != "OK" else len(ORDER)))
        out.append("| %d (%s) | %d | %s |" % (c, CURL_MEANING.get(c, "?"), len(mine),
                                              ", ".join("`%s`" % n for n in names)))
    return "\n".join(out) + "\n"


def committed():
    text = DOC.read_text()
    i, j = text.find(BEGIN), text.find(END)
    assert i >= 0 and j > i, "docs/doctor.md lacks the markers %s … %s" % (BEGIN, END)
    body_start = text.index("\n", i) + 1
    return text, body_start, j


def test_curl_table():
    if not RESULTS:
        pytest.skip("no fault of the zoo ran in this session")
    text, a, b = committed()
    table = render(RESULTS)
    if os.environ.get("FAPIAO_WRITE_DOCS") == "1":
        DOC.write_text(text[:a] + table + text[b:])
        return
    have = text[a:b]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (.+?) \| \d.*$",
                                                         have.split("\n\n")[0], re.M)}
    new = sorted(set(RESULTS) - set(rows))
    assert not new, ("faults not in docs/doctor.md: %s -- rerun with FAPIAO_WRITE_DOCS=1"
                     % new)
    mine = {m.group(1): m.group(0) for m in re.finditer(r"^\| (.+?) \| \d.*$",
                                                         table.split("\n\n")[0], re.M)}
    changed = ["committed: %s\nthis run:  %s" % (rows[f], mine[f]) for f in sorted(mine)
               if f in rows and rows[f] != mine[f]]
    assert not changed, ("rows of docs/doctor.md's curl table differ from this run; rerun "
                         "with FAPIAO_WRITE_DOCS=1 and review:\n" + "\n".join(changed))
    missing = sorted(set(rows) - set(RESULTS))
    if missing:
        pytest.skip("partial run: the %d rows that ran match; %d faults of the table did not "
                    "run here: %s" % (len(mine), len(missing), "; ".join(missing)))
    assert have == table, ("docs/doctor.md's curl table differs from this run's results; "
                           "rerun with FAPIAO_WRITE_DOCS=1 and review the diff.\n"
                           "--- committed\n%s\n--- this run\n%s" % (have, table))
