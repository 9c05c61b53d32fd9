"""`fapiao ranges advance` (docs/recovery.md: numbers given out after a
restored point): moves a range's next forward only, audited; refused on
SQLite while a server holds the data directory; the next invoice is
numbered past the given number."""
import json
import sqlite3
import subprocess

from conftest import BIN, SLOW


def run(*args):
    r = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60 * SLOW)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def ranges(srv):
    rc, out = run("ranges", "list", "--data-dir", srv.data_dir, "--json")
    assert rc == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_advance_forward_only_audited_and_numbering_follows(make_server):
    srv = make_server()
    r = srv.issue("before", auth=srv.token())
    assert r.status == 201, r
    first = r.json()["number"]
    # on SQLite the running server keeps next in memory: refused, nothing moved
    rc, out = run("ranges", "advance", "--data-dir", srv.data_dir, "--range-id", 1,
                  "--to", 100)
    assert rc == 1 and "fapiao serve" in out, out
    srv.stop()
    rng = ranges(srv)[0]
    assert rng["id"] == 1 and rng["next"] == int(first[5:]) + 1
    # a buyer holds the number 50 numbers on (given out after a restored point)
    held = "%s%015d" % (first[:5], int(first[5:]) + 50)
    rc, out = run("ranges", "advance", "--data-dir", srv.data_dir, "--range-id", 1,
                  "--past", held)
    assert rc == 0 and "-> %d" % (int(held[5:]) + 1) in out, out
    assert ranges(srv)[0]["next"] == int(held[5:]) + 1
    # never back: an earlier target changes nothing
    rc, out = run("ranges", "advance", "--data-dir", srv.data_dir, "--range-id", 1,
                  "--to", rng["next"])
    assert rc == 0 and "nothing to move" in out, out
    assert ranges(srv)[0]["next"] == int(held[5:]) + 1
    # refused: past the range's end, an unknown range, another prefix
    for args, word in ((("--to", rng["last"] + 2), "at most"),
                       (("--to", 5, "--range-id", 99), "no range"),
                       (("--past", "99999" + held[5:]), "not of range")):
        a = list(args) if "--range-id" in args else ["--range-id", 1] + list(args)
        rc, out = run("ranges", "advance", "--data-dir", srv.data_dir, *a)
        assert rc == 1 and word in out, (args, out)
    assert ranges(srv)[0]["next"] == int(held[5:]) + 1
    con = sqlite3.connect("file:%s?mode=ro" % srv.db_path, uri=True)
    try:
        acts = [row[0] for row in con.execute(
            "SELECT target FROM audit WHERE action='ranges.advance'")]
    finally:
        con.close()
    assert len(acts) == 1 and acts[0].endswith("->%d" % (int(held[5:]) + 1)), acts
    rc, out = run("audit", "verify", "--data-dir", srv.data_dir)
    assert rc == 0, out
    srv.start()
    r = srv.issue("after", auth=srv.token())
    assert r.status == 201, r
    assert int(r.json()["number"]) == int(held) + 1
    srv.stop()
