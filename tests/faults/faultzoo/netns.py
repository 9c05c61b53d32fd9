"""Network namespaces for faults that need a firewall or a routing table:
a fresh namespace has only `lo`, its own nftables ruleset and no routes
beyond loopback, so nothing done in it reaches the host's network.

    with Netns() as ns:
        ns.nft("add rule inet zoo input tcp dport 443 drop")
        ns.run([BIN, "doctor", ...])       # ip netns exec <name> …

available() says why namespaces cannot be used here (not root, no
CAP_NET_ADMIN, no `ip`/`nft`), or None."""
import ctypes
import os
import shutil
import socket
import subprocess
import threading
import uuid

CLONE_NEWNET = 0x40000000

_WHY = "unchecked"


def _run(cmd, timeout=30):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def available():
    """None when namespaces and nftables work, else the reason."""
    global _WHY
    if _WHY != "unchecked":
        return _WHY
    if os.geteuid() != 0:
        _WHY = "network namespaces need root (CAP_NET_ADMIN); running as uid %d" % os.geteuid()
    elif not shutil.which("ip") or not shutil.which("nft"):
        _WHY = "`ip` (iproute2) or `nft` (nftables) is not installed"
    else:
        _WHY = None
        try:
            with Netns() as ns:
                ns.nft("add rule inet zoo input tcp dport 9 drop")
        except (AssertionError, OSError, subprocess.SubprocessError) as e:
            _WHY = "cannot create a network namespace with nftables rules here: %s" % (
                str(e).strip().splitlines()[-1] if str(e).strip() else repr(e))
    return _WHY


class Netns:
    def __init__(self):
        self.name = "fapiao-zoo-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.made = False

    def _ok(self, cmd):
        r = _run(cmd)
        assert r.returncode == 0, "%s failed (%d): %s" % (
            " ".join(cmd), r.returncode, r.stderr.decode(errors="replace").strip())
        return r

    def start(self):
        self._ok(["ip", "netns", "add", self.name])
        self.made = True
        try:
            self._ok(["ip", "-n", self.name, "link", "set", "lo", "up"])
            # one table for the tests' rules; a filter chain on input
            self.nft("add table inet zoo")
            self.nft("add chain inet zoo input { type filter hook input priority 0; }")
        except BaseException:
            self.stop()
            raise
        return self

    def nft(self, rule):
        self._ok(["ip", "netns", "exec", self.name, "nft", rule])

    def ip(self, *args):
        self._ok(["ip", "-n", self.name] + list(args))

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        """A socket of the namespace (a socket keeps the namespace it was
        made in): made by a thread that joins the namespace with setns(2),
        which moves only that thread, and ends."""
        out = {}

        def make():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open("/run/netns/%s" % self.name) as f:
                    if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                out["sock"] = socket.socket(family, type)
            except OSError as e:
                out["error"] = e

        t = threading.Thread(target=make)
        t.start()
        t.join(timeout=30)
        if "error" in out:
            raise out["error"]
        return out["sock"]

    def prefix(self):
        """Command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def stop(self):
        if self.made:
            _run(["ip", "netns", "delete", self.name])
            self.made = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
