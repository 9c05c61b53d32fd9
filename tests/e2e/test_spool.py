"""The offline spool (include/fapiao-client/spool.h): `fapiao issue --spool`
stores first, `fapiao spool drain` delivers in order, and kill -9 of the
sender at random points loses nothing and doubles nothing: in the end every
spooled invoice is issued exactly once and the spool's number for each serial
is the server's.  Done-when 2 of issue 21 is N = 2,000 with 20 kills:
FAPIAO_SPOOL_CRASH_N=2000 FAPIAO_SPOOL_CRASH_KILLS=20; `make test` runs a
smaller N (below).
"""
import json
import os
import random
import subprocess
import time

from conftest import BIN, SLOW, example_doc, scaled

CRASH_N = int(os.environ.get("FAPIAO_SPOOL_CRASH_N", scaled(300)))
CRASH_KILLS = int(os.environ.get("FAPIAO_SPOOL_CRASH_KILLS", 10))


def cli(*args, timeout=300):
    r = subprocess.run([BIN, *args], capture_output=True, timeout=timeout * SLOW,
                       env={"LANG": "en_US.UTF-8", "PATH": "/usr/bin:/bin"})
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def write_batch(path, prefix, n):
    doc = example_doc()
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"serial": "%s-%05d" % (prefix, i), "invoice": doc}) + "\n")


def spool_rows(spool):
    rc, out, err = cli("spool", "list", "--spool", spool, "--json")
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines()]


def spool_status(spool):
    rc, out, err = cli("spool", "status", "--spool", spool, "--json")
    assert rc == 0, err
    return json.loads(out)


def test_queue_cancel_retry_and_drain(server, tmp_path):
    cred = tmp_path / "cred.json"
    cred.write_text(json.dumps(server.init_out))
    spool = str(tmp_path / "spool")
    batch = tmp_path / "b.jsonl"
    write_batch(batch, "sq", 3)
    # no --server: stored only
    rc, out, err = cli("issue", "--spool", spool, "--batch", str(batch))
    assert rc == 0 and "queued 3" in out, err
    assert spool_status(spool)["queued"] == 3
    assert cli("spool", "cancel", "sq-00001", "--spool", spool)[0] == 0
    rc, out, err = cli("spool", "drain", "--spool", spool, "--server", server.base_url,
                       "--credential", str(cred), "--json")
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["summary"] == {"issued": 2, "failed": 0,
                                                           "waiting": 0}
    # an issued row cannot be cancelled; a cancelled one can be re-driven
    rc, _, err = cli("spool", "cancel", "sq-00000", "--spool", spool)
    assert rc == 3 and "not in the spool in state queued" in err, err
    assert cli("spool", "retry", "sq-00001", "--spool", spool)[0] == 0
    rc, out, err = cli("spool", "drain", "--spool", spool, "--server", server.base_url,
                       "--credential", str(cred))
    assert rc == 0, err
    rows = spool_rows(spool)
    assert [r["state"] for r in rows] == ["issued"] * 3
    for r in rows:
        got = server.db_query("SELECT number FROM invoices WHERE serial = ?", (r["serial"],))
        assert got == [(r["number"],)]
    # the same serial with another body is refused at submit
    other = tmp_path / "other.json"
    doc = example_doc()
    doc["remark"] = "changed"
    other.write_text(json.dumps(doc))
    rc, _, err = cli("issue", "--spool", spool, "--serial", "sq-00000", str(other))
    assert rc == 3 and "queued with another request" in err, err


def test_kill_9_while_draining_neither_loses_nor_doubles(server, tmp_path):
    cred = tmp_path / "cred.json"
    cred.write_text(json.dumps(server.init_out))
    spool = str(tmp_path / "spool")
    batch = tmp_path / "b.jsonl"
    write_batch(batch, "crash", CRASH_N)
    rc, out, err = cli("issue", "--spool", spool, "--batch", str(batch))
    assert rc == 0, err
    rng = random.Random(21)
    drain = [BIN, "spool", "drain", "--spool", spool, "--server", server.base_url,
             "--credential", str(cred)]
    def on_server():
        return server.db_query(
            "SELECT count(*) FROM invoices WHERE serial LIKE 'crash-%'")[0][0]

    # Each round starts a sender, waits until the server has issued at least
    # one more of the batch (so the sender is mid-drain, not starting up),
    # then kills it after a random few milliseconds: the kill lands between
    # sends, inside a send, or while the spool row is being marked.  Waiting
    # on progress instead of a fixed sleep keeps the kills mid-drain however
    # fast or slow the build is (a fixed 50-500 ms let a fast drain finish).
    kills = 0
    for _ in range(CRASH_KILLS):
        left = spool_status(spool)
        if left["queued"] + left["sending"] == 0:
            break
        before = on_server()
        p = subprocess.Popen(drain, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30 * SLOW
        while p.poll() is None and on_server() == before and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.03))
        if p.poll() is None:
            p.kill()  # SIGKILL
            kills += 1
        p.wait(timeout=30)
    assert kills >= CRASH_KILLS // 2, "the drain finished too soon to be killed"
    rc, out, err = cli(*drain[1:], timeout=600)
    assert rc == 0, err
    st = spool_status(spool)
    assert st["issued"] == CRASH_N and st["queued"] == st["sending"] == 0, st
    on_server = dict(server.db_query(
        "SELECT serial, count(*) FROM invoices WHERE serial LIKE 'crash-%' GROUP BY serial"))
    assert len(on_server) == CRASH_N
    assert set(on_server.values()) == {1}, "an invoice issued twice"
    numbers = dict(server.db_query(
        "SELECT serial, number FROM invoices WHERE serial LIKE 'crash-%'"))
    assert {r["serial"]: r["number"] for r in spool_rows(spool)} == numbers
