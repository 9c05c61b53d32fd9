"""Crash safety: kill -9 (and SIGTERM) under concurrent load, restart on the
same data dir.

Every acknowledged (201) invoice must survive byte-identical; no number and
no serial appears twice; retrying every unanswered key ends with exactly one
invoice per key (a replay if the invoice had been committed before the
crash, a fresh one otherwise)."""
import http.client
import json
import threading
import time

from conftest import SANITIZED, as_issued, SLOW, assert_problem, scaled

THREADS = 8 if not SANITIZED else 4
PER_THREAD = scaled(400)
LOAD_SECONDS = 4.0
KILL_AFTER = 1.25


class Load:
    """THREADS client threads issuing invoices with unique keys, one
    connection per request, until stopped, LOAD_SECONDS passed or PER_THREAD
    requests each.  interrupt() marks the moment after which failures are
    expected, runs the given action (kill/stop) and waits for the threads."""

    def __init__(self, srv, prefix):
        self.srv = srv
        self.prefix = prefix
        self.token = srv.token()
        self.interrupted = threading.Event()
        self.lock = threading.Lock()
        self.sent = []            # every key whose request was started
        self.acked = {}           # key -> 201 body
        self.pre_failures = []    # anything but a 201 before the interruption
        self.post_responses = []  # (key, Response) that were not 201, after it
        self.threads = [threading.Thread(target=self._worker, args=(t,), daemon=True)
                        for t in range(THREADS)]

    def _worker(self, tid):
        end = time.monotonic() + LOAD_SECONDS
        for i in range(PER_THREAD):
            if self.interrupted.is_set() or time.monotonic() > end:
                return
            key = "%s-%d-%d" % (self.prefix, tid, i)
            with self.lock:
                self.sent.append(key)
            conn = self.srv.connection(timeout=10 * SLOW)
            try:
                r = self.srv.issue(key, auth=self.token, conn=conn)
            except (OSError, http.client.HTTPException) as e:
                if not self.interrupted.is_set():
                    with self.lock:
                        self.pre_failures.append((key, repr(e)))
                    continue
                return  # the server is going away: this thread is done
            finally:
                conn.close()
            with self.lock:
                if r.status == 201:
                    self.acked[key] = r.body
                elif not self.interrupted.is_set():
                    self.pre_failures.append((key, r.status, r.body[:300]))
                else:
                    self.post_responses.append((key, r))

    def start(self):
        for t in self.threads:
            t.start()

    def interrupt(self, action):
        with self.lock:
            acked_before = len(self.acked)
        self.interrupted.set()
        result = action()
        for t in self.threads:
            t.join(30 * SLOW)
        assert not any(t.is_alive() for t in self.threads), "client threads did not finish"
        assert not self.pre_failures, \
            "requests failed before the interruption: %r" % self.pre_failures[:5]
        assert acked_before > 0, "no invoice was acknowledged before the interruption"
        assert len(set(self.sent)) == len(self.sent)
        return result, acked_before

    @property
    def unanswered(self):
        return [k for k in self.sent if k not in self.acked]


def check_acked_readable(srv, acked):
    token = srv.token()
    conn = srv.connection()
    try:
        for key, body in acked.items():
            number = json.loads(body)["number"]
            g = srv.request("GET", "/v1/invoices/" + number, auth=token, conn=conn)
            assert g.status == 200, "acknowledged invoice %s (key %s) lost: %r" % (number, key, g)
            # byte-identical but for the status the outbox moved on
            assert as_issued(g.body) == body, "invoice %s changed across the restart" % number
    finally:
        conn.close()


def db_invoices(srv, sent, acked, when):
    """Checks uniqueness in the database file; returns {serial: number}."""
    rows = srv.db_query("SELECT number, serial FROM invoices")
    numbers = [r[0] for r in rows]
    serials = [r[1] for r in rows]
    assert len(numbers) == len(set(numbers)), "a number appears twice (%s)" % when
    assert len(serials) == len(set(serials)), "a serial appears twice (%s)" % when
    by_serial = dict((s, n) for n, s in rows)
    assert set(serials) <= set(sent), "invoices for keys never sent (%s): %r" % (
        when, sorted(set(serials) - set(sent))[:5])
    for key, body in acked.items():
        assert by_serial.get(key) == json.loads(body)["number"], \
            "acknowledged key %s not stored with its number (%s)" % (key, when)
    return by_serial


def test_kill9_under_load(make_server):
    t0 = time.monotonic()
    srv = make_server()
    load = Load(srv, "crash")
    load.start()
    time.sleep(KILL_AFTER)
    _, acked_before = load.interrupt(srv.kill9)
    sent, acked, unanswered = load.sent, load.acked, load.unanswered

    # ---- restart: every acknowledged invoice is there, byte-identical -----------
    srv.start()
    check_acked_readable(srv, acked)
    assert srv.stop() == 0

    by_serial = db_invoices(srv, sent, acked, "after the crash")
    committed_unacked = {k for k in unanswered if k in by_serial}
    print("crash: sent %d, acked %d (%d before kill), unanswered %d, committed but unacked %d"
          % (len(sent), len(acked), acked_before, len(unanswered), len(committed_unacked)))

    # ---- retry every unanswered key with the same body --------------------------
    srv.start()
    token = srv.token()
    final = dict((k, json.loads(b)["number"]) for k, b in acked.items())
    for key in unanswered:
        r = srv.issue(key, auth=token)
        assert r.status == 201, "retry of %s: %r" % (key, r)
        doc = json.loads(r.body)
        assert doc["serial"] == key
        if key in committed_unacked:
            assert r.header("Idempotent-Replayed") == "true", \
                "key %s was committed before the crash but the retry was not a replay" % key
            assert doc["number"] == by_serial[key]
        else:
            assert r.header("Idempotent-Replayed") in (None, "false"), key
        final[key] = doc["number"]
    assert srv.stop() == 0

    by_serial = db_invoices(srv, sent, acked, "after the retries")
    assert len(by_serial) == len(final) == len(sent), (len(by_serial), len(final), len(sent))
    assert by_serial == final
    assert len(set(final.values())) == len(final)
    assert time.monotonic() - t0 < 90 * SLOW, "crash test took too long"


def test_sigterm_under_load_is_graceful(make_server):
    """SIGTERM while requests are in flight: exit status 0 within the stop
    timeout; every request got a 201, a 503 problem, or its connection was
    refused/closed; every 201 is durable."""
    srv = make_server()
    load = Load(srv, "term")
    load.start()
    time.sleep(KILL_AFTER)
    rc, _ = load.interrupt(srv.stop)
    assert rc == 0, "exit status after SIGTERM under load: %r" % rc
    for key, r in load.post_responses:
        assert_problem(r, 503, r.json().get("code"))
        assert r.header("Retry-After"), "503 without Retry-After"

    srv.start()
    check_acked_readable(srv, load.acked)
    assert srv.stop() == 0
    by_serial = db_invoices(srv, load.sent, load.acked, "after SIGTERM")
    print("sigterm: sent %d, acked %d, unanswered %d, committed but unacked %d"
          % (len(load.sent), len(load.acked), len(load.unanswered),
             sum(k in by_serial for k in load.unanswered)))
