"""The tests' handle on the simulator (sim.py): start it on free ports in a
test's directory, drive its faults and buyer through the control port, read
its state, and write the `[upstream]` configuration that points fapiao at it.
Used by tests/e2e/test_upstream.py and the fault zoo (tests/faults/
test_zoo_upstream.py); it shares nothing with the C side.

By hand, against a running simulator's control port (ports.json):
    simctl.py --control PORT redform confirm|reject|lapse UUID
answers a red form awaiting the buyer as the buyer would;
    simctl.py --control PORT redform file-as-buyer BLUE_FPHM
files one as the buyer (a full reversal) for the seller to answer."""
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

SIM = Path(__file__).resolve().parent / "sim.py"
KEY = "0123456789abcdeffedcba9876543210"
TAX_ID = "91440300MA5FDEMX19"


class Sim:
    def __init__(self, tmp, slow=1):
        self.dir = tmp / "sim"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(SIM), "--dir", str(self.dir), "--key", KEY,
             "--unit", "PT0001"], stdout=subprocess.DEVNULL, stderr=open(tmp / "sim.log", "wb"))
        ports = self.dir / "ports.json"
        deadline = time.monotonic() + 20 * slow
        while not ports.exists():
            assert self.proc.poll() is None, (tmp / "sim.log").read_text()
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.05)
        p = json.loads(ports.read_text())
        self.port, self.control, self.ca = p["port"], p["control_port"], p["ca"]

    def _ctl(self, path, body=None):
        url = "http://127.0.0.1:%d%s" % (self.control, path)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, f):
        return self._ctl("/faults", f)

    def state(self):
        return self._ctl("/state")

    def buyer(self, uuid, answer):
        return self._ctl("/buyer", {"uuid": uuid, "answer": answer})

    def file_as_buyer(self, lzfphm, chyy="01"):
        """The buyer files a red form about blue invoice lzfphm."""
        return self._ctl("/buyer-files", {"lzfphm": lzfphm, "chyyDm": chyy})

    def forget(self, uuid):
        """The platform loses red form uuid (a planted mismatch)."""
        return self._ctl("/forget", {"uuid": uuid})

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def write_conf(tmp, port, ca, key=KEY, unit="PT0001", timeout_ms=4000, slow=1):
    kf = tmp / ("sm4-%s.key" % key[:4])
    kf.write_text(key + "\n")
    kf.chmod(0o600)
    conf = tmp / ("upstream-%d-%s-%s.conf" % (port, unit, key[:4]))
    conf.write_text("[upstream]\nurl = https://127.0.0.1:%d\njrdwptbh = %s\nkey-file = %s\n"
                    "ca-file = %s\ntax-id = %s\ntimeout-ms = %d\nconnect-timeout-ms = 2000\n"
                    % (port, unit, kf, ca, TAX_ID, timeout_ms * slow))
    return conf


def main(argv):
    """simctl.py --control PORT redform confirm|reject|lapse UUID
    simctl.py --control PORT redform file-as-buyer BLUE_FPHM"""
    answers = {"confirm": "Y", "reject": "N", "lapse": "lapse"}
    if len(argv) != 5 or argv[0] != "--control" or argv[2] != "redform" or \
            argv[3] not in list(answers) + ["file-as-buyer"]:
        print(main.__doc__)
        return 2
    path, body = ("/buyer-files", {"lzfphm": argv[4]}) if argv[3] == "file-as-buyer" else \
        ("/buyer", {"uuid": argv[4], "answer": answers[argv[3]]})
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (int(argv[1]), path), method="POST",
                                 data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            print(r.read().decode())
    except urllib.error.HTTPError as e:
        print(e.read().decode())
        return 1
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
