"""A fault-injecting TCP proxy for the client's chaos test
(test_client_chaos.py): it forwards 127.0.0.1:<port> to an upstream port on
loopback (TLS passes through untouched) and, from a seeded generator, per
connection: resets it mid-request (after some bytes from the client),
resets it mid-response (after some bytes from the server), black-holes it
(accepts and never answers), or adds latency spikes to its chunks.
outage(s) resets every connection and refuses new ones for s seconds.
Everything it did is counted in .counts."""
import random
import socket
import struct
import threading
import time
from collections import Counter


def _rst(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class ChaosProxy:
    def __init__(self, upstream_port, seed=1, reset_request=0.15, reset_response=0.25,
                 blackhole=0.05, latency=0.10, first=(("reset_request", 1500),
                                                      ("reset_response", 1500))):
        self.upstream = upstream_port
        # the first connections get these faults (name, byte offset) whatever
        # the generator says, so a short run still sees each kind of reset:
        # a client that keeps its connections alive opens only a few
        self.first = list(first)
        self.rng = random.Random(seed)
        self.rates = [("reset_request", reset_request), ("reset_response", reset_response),
                      ("blackhole", blackhole), ("latency", latency)]
        self.counts = Counter()
        self.lock = threading.Lock()
        self.outage_until = 0.0
        self.live = set()
        self.closed = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _pick(self):
        with self.lock:
            if self.first:
                name, at = self.first.pop(0)
                return name, at, 0.0
            x = self.rng.random()
            for name, rate in self.rates:
                if x < rate:
                    return name, self.rng.randint(1, 40000), self.rng.uniform(0.2, 1.0)
                x -= rate
            return "pass", 0, 0.0

    def outage(self, seconds):
        with self.lock:
            self.outage_until = time.monotonic() + seconds
            live, self.live = list(self.live), set()
            self.counts["outage"] += 1
        for s in live:
            _rst(s)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        if time.monotonic() < self.outage_until:
            self.counts["refused_in_outage"] += 1
            return _rst(c)
        fault, at, delay = self._pick()
        self.counts[fault] += 1
        if fault == "blackhole":  # hold it, say nothing; the client's timeout ends it
            with self.lock:
                self.live.add(c)
            c.settimeout(60)
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass
            return _rst(c)
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
        except OSError:
            self.counts["upstream_down"] += 1
            return _rst(c)
        with self.lock:
            self.live.update((c, u))
        dead = threading.Event()
        limits = {"reset_request": (c, at), "reset_response": (u, at)}.get(fault)
        args = (dead, limits, fault == "latency", delay)
        threading.Thread(target=self._pump, args=(c, u) + args, daemon=True).start()
        self._pump(u, c, *args)

    def _pump(self, src, dst, dead, limit, spiky, delay):
        sent = spikes = 0
        src.settimeout(120)
        try:
            while not dead.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if spiky and spikes < 8 and self.rng.random() < 0.3:
                    spikes += 1  # a spike, not a slow link: a kept-alive connection recovers
                    time.sleep(delay)
                if limit and limit[0] is src and sent + len(data) >= limit[1]:
                    dst.sendall(data[:max(0, limit[1] - sent)])
                    self.counts["reset_done"] += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        dead.set()
        _rst(src)
        _rst(dst)
        with self.lock:
            self.live.discard(src)
            self.live.discard(dst)

    def close(self):
        self.closed = True
        _rst(self.sock)
