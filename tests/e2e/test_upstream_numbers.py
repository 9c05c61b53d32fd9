"""Pre-assigned numbers downloaded while serving (docs/upstream.md,
"Numbers"), against the simulator (tests/upstream-sim/sim.py):

  - with [upstream] configured, `fapiao serve` downloads numbers (QDFPPLFM)
    into the seller's ranges whenever fewer than numbers-low are left, so
    issuing goes on across the end of a small range: more invoices than the
    first range holds, 0 errors, every number once, every range the
    platform handed out stored once;
  - a download whose answer is lost (the simulator stores it and never
    answers) is asked again with the same business serial (ywlsh): the
    platform hands out the same range, and it is stored once — no second
    range taken, none lost.
"""
import sys
import time

from conftest import REPO, SLOW

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import TAX_ID, write_conf  # noqa: E402
from test_upstream import sim  # noqa: E402,F401  (the simulator fixture)

FIRST_RANGE = 10


def conf_for(tmp_path, sim, low, batch, timeout_ms=4000):
    conf = write_conf(tmp_path, sim.port, sim.ca, timeout_ms=timeout_ms, slow=SLOW)
    with open(conf, "a") as f:
        f.write("numbers-low = %d\nnumbers-batch = %d\nnumbers-check-ms = 50\n" % (low, batch))
    return conf


def stored_ranges(srv):
    return srv.db_query("SELECT prefix, first, last FROM number_ranges ORDER BY id")


def sim_ranges(sim):
    return [(a[:5], int(a[5:]), int(b[5:])) for a, b in sim.state()["ranges"].get(TAX_ID, [])]


def wait_for(what, cond, seconds=30):
    deadline = time.monotonic() + seconds * SLOW
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def start(make_server, conf):
    return make_server(serve_args=["--config", str(conf)],
                       init_args=["--demo-range-size", str(FIRST_RANGE)])


def test_issuing_goes_on_across_range_exhaustion(sim, tmp_path, make_server):
    conf = conf_for(tmp_path, sim, low=50, batch=60)
    srv = start(make_server, conf)
    # the first range (10 numbers) is below the mark at the start
    wait_for("the first download", lambda: len(stored_ranges(srv)) >= 2)
    n = 200  # 20 times the first range, more than 3 downloads
    numbers = []
    for i in range(n):
        r = srv.issue("num-%d" % i)
        assert r.status == 201, (i, r)
        numbers.append(r.json()["number"])
    assert len(set(numbers)) == n
    ranges = stored_ranges(srv)
    assert ranges[0][1:] == (1, FIRST_RANGE)  # the demo range, used up first
    assert all(numbers[i] == "%s%015d" % (ranges[0][0], i + 1) for i in range(FIRST_RANGE))
    # every range the platform handed out is stored, once, in order
    assert ranges[1:] == sim_ranges(sim)
    assert len(ranges) - 1 >= (n - FIRST_RANGE) // 60
    downloads = [e for e in sim.state()["log"] if e["fwbm"] == "QDFPPLFM"]
    serials = [e["request"]["ywlsh"] for e in downloads]
    assert len(set(serials)) == len(serials) == len(ranges) - 1  # one call each, none repeated
    assert all(e["request"]["lysl"] == "60" and e["request"]["nsrsbh"] == TAX_ID
               for e in downloads)
    # the audit names each download
    assert srv.db_query("SELECT count(*) FROM audit WHERE action='ranges.download'")[0][0] == \
        len(ranges) - 1


def test_lost_answer_asks_again_with_the_same_serial(sim, tmp_path, make_server):
    # the first QDFPPLFM is stored by the platform and never answered: the
    # client's 1 s timeout ends it (TIMEOUT_UNKNOWN) while the range is
    # already handed out
    sim.faults({"store_then_hang": {"fwbm": "QDFPPLFM", "seconds": 3, "times": 1}})
    conf = conf_for(tmp_path, sim, low=50, batch=60, timeout_ms=1000)
    srv = start(make_server, conf)
    wait_for("the download stored", lambda: len(stored_ranges(srv)) >= 2)
    log = [e for e in sim.state()["log"] if e["fwbm"] == "QDFPPLFM"]
    assert log[0]["outcome"] == "stored_no_answer" and log[1]["outcome"] == "answered", log
    assert log[0]["request"]["ywlsh"] == log[1]["request"]["ywlsh"]
    # the platform handed out one range, and it is stored once
    assert len(sim_ranges(sim)) == 1
    assert stored_ranges(srv)[1:] == sim_ranges(sim)
    assert "numbers_download_failed" in srv.log_text() and "TIMEOUT_UNKNOWN" in srv.log_text()
    for i in range(FIRST_RANGE + 5):  # into the downloaded range
        assert srv.issue("lost-%d" % i).status == 201
