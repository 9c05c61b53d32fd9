"""Uploads to the tax platform (issue 20; include/fapiao/upload.h,
docs/upstream.md "Upload pipeline").

With `[upstream]` in the config file, the issuing transaction writes an
upload row (pending) beside the render job, for every invoice; the
invoice's JSON carries it as "upload".  Without `[upstream]` nothing
changes: no upload row, no "upload" member.  (The upload worker that sends
and polls is not in this step.)
"""
import sys
import uuid

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import write_conf  # noqa: E402


def issue(server):
    r = server.issue(str(uuid.uuid4()))
    assert r.status == 201, r
    return r.json()["number"]


def test_no_upstream_no_upload(make_server):
    s = make_server()
    number = issue(s)
    doc = s.request("GET", "/v1/invoices/" + number).json()
    assert "upload" not in doc
    assert s.db_query("SELECT count(*) FROM uploads") == [(0,)]


def test_every_invoice_gets_a_pending_upload(make_server, tmp_path):
    # the platform is not reached in this step: any address will do
    conf = write_conf(tmp_path, 9, tmp_path / "none.pem")
    s = make_server(["--config", str(conf)])
    numbers = [issue(s) for _ in range(3)]
    for n in numbers:
        doc = s.request("GET", "/v1/invoices/" + n).json()
        assert doc["upload"] == {"state": "pending"}
    rows = s.db_query("SELECT invoice_number, state, sllsh FROM uploads ORDER BY invoice_number")
    assert rows == [(n, "pending", None) for n in sorted(numbers)]
