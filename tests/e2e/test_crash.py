"""Crash safety: kill -9 under concurrent load, restart on the same data dir.

Every acknowledged (201) invoice must survive byte-identical; no number and
no serial appears twice; retrying every unanswered key ends with exactly one
invoice per key (a replay if the invoice had been committed before the
crash, a fresh one otherwise)."""
import http.client
import json
import threading
import time

from conftest import SANITIZED, SLOW, scaled

THREADS = 8 if not SANITIZED else 4
PER_THREAD = scaled(400)
LOAD_SECONDS = 4.0
KILL_AFTER = 1.25


def test_kill9_under_load(make_server):
    t0 = time.monotonic()
    srv = make_server()
    token = srv.token()

    killing = threading.Event()   # set just before SIGKILL is sent
    stop = threading.Event()
    lock = threading.Lock()
    sent = []          # every key whose request was started
    acked = {}         # key -> 201 body
    pre_kill_failures = []   # (key, what) for anything but a 201 before the kill

    def worker(tid):
        end = time.monotonic() + LOAD_SECONDS
        for i in range(PER_THREAD):
            if stop.is_set() or time.monotonic() > end:
                return
            key = "crash-%d-%d" % (tid, i)
            with lock:
                sent.append(key)
            conn = srv.connection(timeout=10 * SLOW)
            try:
                r = srv.issue(key, auth=token, conn=conn)
            except (OSError, http.client.HTTPException) as e:
                if not killing.is_set():
                    with lock:
                        pre_kill_failures.append((key, repr(e)))
                    continue
                return  # the server is gone: this thread is done
            finally:
                conn.close()
            if r.status == 201:
                with lock:
                    acked[key] = r.body
            elif not killing.is_set():
                with lock:
                    pre_kill_failures.append((key, r.status, r.body[:300]))

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(KILL_AFTER)
    with lock:
        acked_before_kill = len(acked)
    killing.set()
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(30 * SLOW)
    assert not any(t.is_alive() for t in threads), "client threads did not finish"

    assert not pre_kill_failures, "requests failed before the kill: %r" % pre_kill_failures[:5]
    assert acked_before_kill > 0, "no invoice was acknowledged before the kill (no load?)"
    assert len(set(sent)) == len(sent)
    unanswered = [k for k in sent if k not in acked]

    # ---- restart: every acknowledged invoice is there, byte-identical -----------
    srv.start()
    token = srv.token()
    conn = srv.connection()
    try:
        for key, body in acked.items():
            number = json.loads(body)["number"]
            g = srv.request("GET", "/v1/invoices/" + number, auth=token, conn=conn)
            assert g.status == 200, "acknowledged invoice %s (key %s) lost: %r" % (number, key, g)
            assert g.body == body, "invoice %s changed across the crash" % number
    finally:
        conn.close()
    assert srv.stop() == 0

    rows = srv.db_query("SELECT number, serial FROM invoices")
    numbers = [r[0] for r in rows]
    serials = [r[1] for r in rows]
    assert len(numbers) == len(set(numbers)), "a number appears twice"
    assert len(serials) == len(set(serials)), "a serial appears twice"
    by_serial = dict((s, n) for n, s in rows)
    assert set(serials) <= set(sent), "invoices for keys never sent: %r" % (
        sorted(set(serials) - set(sent))[:5])
    for key, body in acked.items():
        assert by_serial.get(key) == json.loads(body)["number"], key
    committed_unacked = {k for k in unanswered if k in by_serial}
    print("crash: sent %d, acked %d (%d before kill), unanswered %d, committed but unacked %d"
          % (len(sent), len(acked), acked_before_kill, len(unanswered), len(committed_unacked)))

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

    rows = srv.db_query("SELECT number, serial FROM invoices")
    numbers = [r[0] for r in rows]
    serials = [r[1] for r in rows]
    assert len(numbers) == len(set(numbers)), "a number appears twice after retries"
    assert len(serials) == len(set(serials)), "a serial appears twice after retries"
    assert len(rows) == len(final) == len(sent), (len(rows), len(final), len(sent))
    assert dict((s, n) for n, s in rows) == final
    assert len(set(final.values())) == len(final)
    assert time.monotonic() - t0 < 90 * SLOW, "crash test took too long"
