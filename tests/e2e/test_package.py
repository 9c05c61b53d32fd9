"""The production path through the Debian package (issue 16), on a clean state.

Heavy: it builds the .deb (scripts/build-deb.sh, as `make deb` does; or takes
FAPIAO_DEB), so it runs once, on the optimised e2e run, and is skipped in the
ASan one (FAPIAO_SANITIZED=1).  FAPIAO_BIN is not used: every command here is
the packaged /usr/bin/fapiao.

Isolation: the package is never installed on the host.  Each test makes its
own root: in a private mount namespace (`unshare --mount`), an overlayfs whose
lower layer is the host's / and whose upper layer is a tmpfs of that
namespace, with /proc, /dev, /sys, a fresh /run and /tmp, and the test's tmp
directory bound in; the source checkout is hidden under an empty tmpfs (the
packaged binary must find its knowledge base in /usr/share/fapiao/kb).  A
holder process chrooted there keeps the namespace; every command enters it
with `nsenter --mount --root --wd`.  `dpkg -i` installs with the dependencies
the host already has (`make test` installs them); nothing reaches the network.
When the holder ends the namespace, its mounts and the whole upper layer go
with it, so two runs can share a machine and the host's /etc, /var and dpkg
database never change.  docs/operations.md "How the package is tested".

Without systemd as PID 1, the service is started exactly as the unit's
ExecStart (read from the installed unit file), as its User=, with its UMask,
and a NOTIFY_SOCKET the test binds: READY=1 once serving, STOPPING=1 on
SIGTERM."""
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import EXAMPLE_BODY, REPO, SANITIZED, free_port

pytestmark = [
    pytest.mark.skipif(SANITIZED, reason="heavy: the package test runs once, on the "
                       "optimised e2e run (FAPIAO_SANITIZED=1)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces, "
                       "overlayfs, chroot)"),
]

PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
UNIT = "/lib/systemd/system/fapiao.service"
CONF = "/etc/fapiao/fapiao.conf"


def _run(cmd, timeout=600, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


def project_version():
    m = re.search(r'#define FAPIAO_VERSION "([^"]+)"',
                  (REPO / "src" / "cli" / "main.c").read_text())
    return m.group(1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The .deb: FAPIAO_DEB, else built now by scripts/build-deb.sh (`make
    deb`) into a directory of this run's own."""
    given = os.environ.get("FAPIAO_DEB")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("deb")
    r = _run([str(REPO / "scripts" / "build-deb.sh"), str(out)], timeout=1800)
    assert r.returncode == 0, (r.stdout.decode(errors="replace")[-4000:]
                               + r.stderr.decode(errors="replace")[-4000:])
    debs = sorted(out.glob("fapiao_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


class Root:
    """An isolated root (see the module's docstring)."""

    def __init__(self, base):
        self.base = Path(base)
        self.merged = self.base / "merged"
        self.ovl = self.base / "ovl"
        self.merged.mkdir()
        self.ovl.mkdir()
        mask = ""
        if REPO.is_dir() and not str(self.base).startswith(str(REPO) + "/"):
            q = shlex.quote(str(REPO))
            mask = 'mkdir -p "$M"%s && mount -t tmpfs -o size=1m fapiao-mask "$M"%s' % (q, q)
        script = r"""
set -e
M=%(merged)s O=%(ovl)s S=%(share)s
mount -t tmpfs -o size=4g,mode=0700 fapiao-ovl "$O"
mkdir "$O/upper" "$O/work"
mount -t overlay fapiao-root -o "lowerdir=/,upperdir=$O/upper,workdir=$O/work" "$M"
mount --rbind /dev "$M/dev"
mount -t proc proc "$M/proc"
mount --rbind /sys "$M/sys"
mount -t tmpfs -o mode=0755 fapiao-run "$M/run"
mount -t tmpfs -o mode=1777 fapiao-tmp "$M/tmp"
mkdir -p "$M$S"
mount --bind "$S" "$M$S"
%(mask)s
echo "$$"
exec chroot "$M" /bin/sleep infinity
""" % {"merged": shlex.quote(str(self.merged)), "ovl": shlex.quote(str(self.ovl)),
       "share": shlex.quote(str(self.base)), "mask": mask}
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--fork", "--kill-child", "--",
             "/bin/sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.holder.stdout.readline().decode().strip()
        if not line.isdigit():
            self.holder.kill()
            err = self.holder.communicate(timeout=30)[1].decode(errors="replace")
            raise AssertionError("isolated root not set up: %s" % err)
        self.pid = int(line)
        self.procs = []

    def enter(self, argv, user=None, env=None):
        """argv run inside the root (as user, with a clean environment)."""
        e = {"PATH": PATH, "LANG": "C", "HOME": "/root"}
        e.update(env or {})
        inner = ["env", "-i"] + ["%s=%s" % kv for kv in e.items()] + list(argv)
        if user:
            inner = ["setpriv", "--reuid", user, "--regid", user, "--init-groups",
                     "--inh-caps=-all", "--"] + inner
        # --root and --wd without a value: the holder's root and its cwd (the
        # root's /, chroot(1) went there); --wd=/ would name the host's /
        return ["nsenter", "--target", str(self.pid), "--mount", "--root", "--wd"] + inner

    def run(self, *argv, user=None, env=None, input=None, check=True, timeout=300):
        r = subprocess.run(self.enter(argv, user, env), input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        if check:
            assert r.returncode == 0, "%s: exit %d\n%s\n%s" % (
                " ".join(argv), r.returncode, r.stdout.decode(errors="replace")[-3000:],
                r.stderr.decode(errors="replace")[-3000:])
        return r

    def text(self, *argv, **kw):
        return self.run(*argv, **kw).stdout.decode()

    def read(self, path):
        return self.run("cat", path).stdout

    def write(self, path, data, mode="0644", owner="root:root"):
        data = data.encode() if isinstance(data, str) else data
        self.run("sh", "-c", 'umask 077 && cat > "$1" && chown "$2" "$1" && chmod "$3" "$1"',
                 "sh", path, owner, mode, input=data)

    def exists(self, path):
        return self.run("test", "-e", path, check=False).returncode == 0

    def stat(self, path):
        """(octal mode, user, group) of path in the root."""
        mode, user, group = self.text("stat", "-c", "%a %U %G", path).split()
        return mode, user, group

    def popen(self, argv, user=None, env=None, **kw):
        p = subprocess.Popen(self.enter(argv, user, env), **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        # the holder is unshare's child: it dies with unshare (--kill-child);
        # killing it too ends the namespace, its mounts and the upper layer
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.holder.kill()
        self.holder.wait(timeout=30)


@pytest.fixture
def root(tmp_path):
    r = Root(tmp_path)
    yield r
    r.close()


def host_status():
    """fapiao's state in the host's own dpkg database."""
    return _run(["dpkg-query", "-W", "-f=${Status} ${Version}", "fapiao"]).stdout


@pytest.fixture
def installed(root, deb, tmp_path):
    root.host_status_before = host_status()
    shutil.copy(deb, tmp_path / deb.name)
    r = root.run("dpkg", "-i", str(tmp_path / deb.name), env={"DEBIAN_FRONTEND": "noninteractive"})
    root.dpkg_out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    return root


# ---- the package itself -----------------------------------------------------

def test_deb_carries_the_project_version_and_depends(deb):
    version = project_version()
    assert deb.name == "fapiao_%s_%s.deb" % (
        version, _run(["dpkg", "--print-architecture"]).stdout.decode().strip())
    fields = {}
    for f in ("Version", "Depends", "Architecture"):
        fields[f] = _run(["dpkg-deb", "-f", str(deb), f]).stdout.decode().strip()
    assert fields["Version"] == version
    deps = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    # shlibs found the libraries; the font is a dependency, never a copy
    for lib in ("libmicrohttpd12", "libgnutls30", "libsqlite3-0", "libdeflate0", "libqrencode4"):
        assert lib in deps, fields["Depends"]
    assert "fonts-wqy-microhei" in deps and "adduser" in deps
    files = _run(["dpkg-deb", "-c", str(deb)]).stdout.decode()
    assert not re.search(r"\.(ttf|ttc|otf)\b", files), "a font file is shipped"


def test_lintian_reports_no_errors(deb):
    r = _run(["lintian", "--fail-on", "error", "--info", "--pedantic", str(deb)])
    out = r.stdout.decode(errors="replace")
    errors = [l for l in out.splitlines() if l.startswith("E:")]
    assert r.returncode == 0 and not errors, out + r.stderr.decode(errors="replace")
    # the warnings are listed in the test's output (pytest -s / -rA) for the note
    print("lintian:", "\n".join(l for l in out.splitlines() if l[:2] in ("W:", "I:", "P:"))
          or "clean")


def test_build_depends_cover_every_library_cmake_looks_for():
    """Every pkg_check_modules() module of CMakeLists.txt comes from a package
    that debian/control's Build-Depends names (a library added to the build
    must be added to the package too)."""
    cmake = (REPO / "CMakeLists.txt").read_text()
    modules = set()
    for m in re.finditer(r"pkg_check_modules\(\s*\w+\s+REQUIRED\s+IMPORTED_TARGET\s+([^)]*)\)",
                         cmake):
        modules.update(m.group(1).split())
    assert "libmicrohttpd" in modules and "libdeflate" in modules, modules
    control = (REPO / "debian" / "control").read_text()
    bd = re.search(r"^Build-Depends:(.*?)(?=^\S|\Z)", control, re.M | re.S).group(1)
    build_depends = {d.strip().split()[0] for d in bd.split(",") if d.strip()}
    for mod in sorted(modules):
        pcdir = _run(["pkg-config", "--variable=pcfiledir", mod]).stdout.decode().strip()
        assert pcdir, "pkg-config does not know %s" % mod
        owner = _run(["dpkg", "-S", os.path.realpath(os.path.join(pcdir, mod + ".pc"))])
        pkg = owner.stdout.decode().split(":")[0]
        assert pkg in build_depends, "%s (%s) missing from Build-Depends" % (pkg, mod)


def test_config_file_keys_are_serve_options():
    """deploy/fapiao.conf (the conffile) names only real `fapiao serve`
    options, set or commented out, in its one [serve] section."""
    conf = (REPO / "deploy" / "fapiao.conf").read_text()
    src = (REPO / "src" / "cli" / "serve_opts.c").read_text()
    options = set(re.findall(r'\{"--([a-z0-9-]+)", OPT_', src))
    assert "data-dir" in options and "access-log" in options, options
    keys = re.findall(r"^#?([a-z][a-z0-9-]*) = ", conf, re.M)
    assert len(keys) > 30
    assert set(keys) <= options, set(keys) - options
    assert re.findall(r"^\[(\w+)\]", conf, re.M) == ["serve"]
    live = dict(re.findall(r"^([a-z][a-z0-9-]*) = (.*)$", conf, re.M))
    assert live["data-dir"] == "/var/lib/fapiao"
    assert live["access-log"] == "/var/log/fapiao/access.log"


# ---- installed into an isolated root ----------------------------------------

def test_unit_verifies_and_is_hardened(installed):
    unit = installed.read(UNIT).decode()
    r = installed.run("systemd-analyze", "verify", UNIT, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    r = installed.run("systemd-analyze", "security", "--offline=true", UNIT, check=False)
    out = r.stdout.decode()
    m = re.search(r"Overall exposure level for fapiao\.service: ([0-9.]+) (\w+)", out)
    assert m, out
    print("systemd-analyze security:", m.group(0))
    assert m.group(2) in ("PERFECT", "SAFE", "OK"), out
    for line in ("Type=notify", "User=fapiao", "ProtectSystem=strict", "StateDirectory=fapiao",
                 "LogsDirectory=fapiao", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service",
                 "CapabilityBoundingSet=\n", "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=/usr/bin/fapiao serve --config /etc/fapiao/fapiao.conf"):
        assert line in unit, line
    # the 443 drop-in: the capability ambient as well as bounding
    dropin = installed.read("/usr/share/doc/fapiao/examples/port-443.conf").decode()
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in dropin
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in dropin


def test_install_puts_files_user_and_directories_in_place(installed):
    r = installed
    for path in ("/usr/bin/fapiao", UNIT, CONF, "/etc/logrotate.d/fapiao",
                 "/usr/share/fapiao/kb/TLS_CERT_EXPIRED.md",
                 "/usr/share/man/man1/fapiao.1.gz", "/usr/share/man/man1/fapiao-serve.1.gz",
                 "/usr/share/doc/fapiao/operations.md", "/usr/share/doc/fapiao/README.md",
                 "/usr/share/doc/fapiao/README.zh-CN.md"):
        assert r.exists(path), path
    assert host_status() == r.host_status_before, "the host's dpkg database changed"
    conffiles = r.text("dpkg-query", "-W", "-f=${Conffiles}", "fapiao")
    assert CONF in conffiles and "/etc/logrotate.d/fapiao" in conffiles
    assert r.text("fapiao", "version").strip() == "fapiao %s" % project_version()
    # the system user and its directories (postinst)
    pw = r.text("getent", "passwd", "fapiao").strip().split(":")
    assert pw[5] == "/var/lib/fapiao" and pw[6] in ("/usr/sbin/nologin", "/bin/false"), pw
    assert int(pw[2]) < 1000, "not a system user: %s" % pw
    assert r.text("getent", "group", "fapiao").startswith("fapiao:")
    assert r.stat("/var/lib/fapiao") == ("700", "fapiao", "fapiao")
    assert r.stat("/var/log/fapiao") == ("750", "fapiao", "fapiao")
    assert r.stat("/etc/fapiao/tls") == ("750", "root", "fapiao")
    # the man pages come from --help: the serve options are in fapiao-serve(1)
    man = r.text("sh", "-c", "zcat /usr/share/man/man1/fapiao-serve.1.gz")
    assert "access\\-log" in man and "数据目录" in man
    # the knowledge base from /usr/share/fapiao/kb (the source tree is hidden)
    assert r.run("test", "-e", str(REPO / "kb"), check=False).returncode != 0
    kb = r.run("fapiao", "kb", "show", "TLS_CERT_EXPIRED").stdout
    assert kb == r.read("/usr/share/fapiao/kb/TLS_CERT_EXPIRED.md")
    case = r.run("fapiao", "kb", "show", "CASE_JAVA_PKIX").stdout  # kb/cases/ (issue 23)
    assert case == r.read("/usr/share/fapiao/kb/cases/CASE_JAVA_PKIX.md")
    # logrotate accepts the file (debug mode: nothing is rotated)
    if r.exists("/usr/sbin/logrotate"):
        lr = r.run("logrotate", "-d", "/etc/logrotate.d/fapiao", check=False)
        assert lr.returncode == 0, lr.stderr.decode(errors="replace")


def test_purge_removes_the_config_and_keeps_the_data(installed):
    r = installed
    r.write("/var/lib/fapiao/fapiao.db", "tax records", mode="0600", owner="fapiao:fapiao")
    r.write("/etc/fapiao/tls/server.key", "key", mode="0640", owner="root:fapiao")
    r.write("/var/log/fapiao/access.log", "{}\n", mode="0600", owner="fapiao:fapiao")
    out = r.run("dpkg", "--purge", "fapiao")
    msg = out.stderr.decode() + out.stdout.decode()
    assert not r.exists("/etc/fapiao"), "purge left /etc/fapiao"
    assert not r.exists("/var/log/fapiao")
    assert not r.exists("/usr/bin/fapiao") and not r.exists(UNIT)
    assert r.read("/var/lib/fapiao/fapiao.db") == b"tax records"
    assert r.stat("/var/lib/fapiao") == ("700", "fapiao", "fapiao")
    assert "kept /var/lib/fapiao" in msg and "rm -rf /var/lib/fapiao" in msg, msg
    assert "已保留 /var/lib/fapiao" in msg, msg
    assert r.text("getent", "passwd", "fapiao").startswith("fapiao:"), "the user must stay"


# ---- what the sandbox allows --------------------------------------------------

MDWE = r"""
import ctypes, os, sys
# PR_SET_MDWE(PR_MDWE_REFUSE_EXEC_GAIN): what MemoryDenyWriteExecute= asks,
# enforced by the kernel itself and inherited by forked and exec'd children
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_MDWE): errno %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
"""


def syscall_set(root, group):
    """The system calls of a systemd-analyze group, nested groups expanded."""
    names = set()
    for line in root.text("systemd-analyze", "syscall-filter", group).splitlines()[1:]:
        line = line.strip()
        if line.startswith("@"):
            names |= syscall_set(root, line)
        elif line and not line.startswith("#"):
            names.add(line)
    return names


def test_sandbox_allows_what_the_service_does(installed, tmp_path):
    """The packaged binary serving, issuing, rendering a PDF in its forked
    render workers, reloading and stopping, as the unit's user, stays within
    the unit's SystemCallFilter= and under MemoryDenyWriteExecute (the
    kernel's PR_SET_MDWE, inherited by the workers) -- without systemd,
    strace lists what it calls."""
    r = installed
    D = "/var/lib/fapiao"
    unit = r.read(UNIT).decode()
    user = re.search(r"^User=(.*)$", unit, re.M).group(1)
    allowed = set()
    for f in re.findall(r"^SystemCallFilter=(.*)$", unit, re.M):
        deny = f.startswith("~")
        names = set()
        for g in f.lstrip("~").split():
            names |= syscall_set(r, g) if g.startswith("@") else {g}
        allowed = allowed - names if deny else allowed | names
    assert "setrlimit" in allowed and "mmap" in allowed and "setuid" not in allowed
    assert "MemoryDenyWriteExecute=yes" in unit

    # a demo data directory: the sandbox question is the same for any seller
    # (`--demo` once init has it, issue 16; before that init makes the demo)
    # (no /etc/fapiao/fapiao.conf here: this run names its own flags)
    as_user = {"user": user, "env": {"HOME": D, "FAPIAO_CONFIG": "/dev/null"}}
    helptext = r.text("sh", "-c", "fapiao init --help 2>&1", check=False)
    demo = ["--demo"] if re.search(r"--demo(?![\w-])", helptext) else []
    # the sample tax code table named: init's default is the source tree's
    init = json.loads(r.text("fapiao", "init", "--data-dir", D, "--json", *demo, "--tax-codes",
                             "/usr/share/fapiao/taxcodes-sample.csv", **as_user))
    # the test's directory is root's alone: the user's files go to the root's /run
    work = "/run/fapiao-test"
    r.run("install", "-d", "-o", user, "-m", "0755", work)
    r.write(work + "/mdwe.py", MDWE)
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    srv = r.popen(["python3", work + "/mdwe.py", "/usr/bin/strace", "-f", "-qq",
                   "-o", work + "/calls", "/usr/bin/fapiao", "serve", "--data-dir", D,
                   "--listen", "127.0.0.1:%d" % port], stdin=subprocess.DEVNULL, stdout=log,
                  stderr=log, **as_user)
    ca = tmp_path / "ca.crt"
    ca.write_bytes(r.read(init["ca_cert"]))
    try:
        for _ in range(300):  # bounded: up to about a minute for the listener
            try:
                if https(port, ca, "GET", "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert srv.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")
            time.sleep(0.2)
        status, _, body, _ = https(port, ca, "POST", "/v1/token", json.dumps(
            {"client_id": init["client_id"], "client_secret": init["client_secret"]}),
            {"Content-Type": "application/json"})
        assert status == 200, body
        auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
        status, _, body, _ = https(port, ca, "POST", "/v1/invoices", EXAMPLE_BODY,
                                   dict(auth, **{"Content-Type": "application/json",
                                                 "Idempotency-Key": "sandbox-1"}))
        assert status == 201, body
        number = json.loads(body)["number"]
        for _ in range(240):  # bounded: a render worker draws it
            status, _, pdf, _ = https(port, ca, "GET", "/v1/invoices/%s/pdf" % number, None,
                                      auth)
            if status != 202:
                break
            time.sleep(0.25)
        assert status == 200 and pdf.startswith(b"%PDF"), (status, pdf[:300])
        https(port, ca, "GET", "/metrics")
        fapiao_pid = int(r.text("pgrep", "-u", user, "-x", "fapiao", "-o").split()[0])
        os.kill(fapiao_pid, signal.SIGHUP)
        assert https(port, ca, "GET", "/healthz")[0] == 200
        os.kill(fapiao_pid, signal.SIGTERM)
        assert srv.wait(timeout=120) == 0, (tmp_path / "serve.log").read_text(errors="replace")
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait(timeout=30)
        log.close()
    calls = r.read(work + "/calls").decode(errors="replace")
    # the server and its render workers (posix_spawn: strace, not their
    # tracer's parent, may print the workers' argv as addresses)
    execs = set(re.findall(r"^(\d+) +execve\(", calls, re.M))
    assert len(execs) >= 2, "no render worker ran: %d bytes of strace: %s" % (
        len(calls), calls[:2000])
    used = set(re.findall(r"^\d+ +([a-z0-9_]+)\(", calls, re.M))
    assert {"socketpair", "execve"} <= used and used & {"prlimit64", "setrlimit"}, sorted(used)
    assert used <= allowed, "outside SystemCallFilter=: %s" % sorted(used - allowed)


# ---- the service path (issue 16, Done when 1) -------------------------------

def uscc(base17):
    """base17 + the GB 32100 check character."""
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    c = 31 - sum(chars.index(ch) * w for ch, w in zip(base17, weights)) % 31
    return base17 + chars[0 if c == 31 else c]


SELLER = {
    "name": "北京测试包装科技有限公司",
    "uscc": uscc("91110108MA01PKG7D"),
    "address": "北京市海淀区测试路8号",
    "phone": "010-88886666",
    "bank": "中国工商银行北京测试支行",
    "account": "0200000000000000888",
}
TAXCODES = ("code,short_name,rates,summary\n"
            "3040201000000000000,信息技术服务,0.06;0.03;0.01;0,0\n"
            "3040200000000000000,信息技术服务,0.06,1\n")


def openssl(*args):
    r = _run(["openssl"] + list(args), timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def make_pki(d, serial):
    """The test's own CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    if not ca_crt.exists():
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "30",
                "-subj", "/CN=fapiao package test CA")
    key, csr, crt = d / ("server%d.key" % serial), d / "server.csr", d / ("server%d.crt" % serial)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
            "-set_serial", str(serial), "-days", "30", "-extfile", str(ext), "-out", str(crt))
    return ca_crt, key, crt


class Notify:
    """The NOTIFY_SOCKET systemd would bind: an abstract datagram socket (the
    service user reaches it whatever the test directory's permissions)."""

    def __init__(self):
        self.name = "@fapiao-package-test-" + secrets.token_hex(8)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.seen = []

    def wait_for(self, what, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(what in m.split("\n") for m in self.seen):
                return
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.seen.append(self.sock.recv(4096).decode(errors="replace"))
            except socket.timeout:
                break
        raise AssertionError("no %s on NOTIFY_SOCKET within %ss; got %r" % (what, timeout,
                                                                            self.seen))


def https(port, ca, method, path, body=None, headers=None, timeout=30):
    ctx = ssl.create_default_context(cafile=str(ca))
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read(), c.sock.getpeercert()
    finally:
        c.close()


def squash(s):
    return re.sub(r"\s+", "", s)


def set_conf(text, key, value):
    """The conffile with key set (its line replaced, or uncommented)."""
    new, n = re.subn(r"^#?%s = .*$" % re.escape(key), "%s = %s" % (key, value), text,
                     count=1, flags=re.M)
    assert n == 1, key
    return new


def test_service_path_as_the_unit_runs_it(installed, tmp_path):
    r = installed
    D = "/var/lib/fapiao"
    as_fapiao = {"user": "fapiao", "env": {"HOME": D}}

    # a production data directory: no demo seller, range, credential or certificate
    r.run("fapiao", "init", "--data-dir", D, **as_fapiao)
    assert not r.exists(D + "/tls/server.crt")
    assert r.stat(D + "/fapiao.db")[1] == "fapiao"

    # the company: its seller, the tax code table, a number range, a credential
    add = ["fapiao", "sellers", "add", "--data-dir", D, "--name", SELLER["name"],
           "--uscc", SELLER["uscc"], "--address", SELLER["address"], "--phone", SELLER["phone"],
           "--bank", SELLER["bank"], "--account", SELLER["account"], "--drawer", "李四"]
    seller_id = r.text(*add, **as_fapiao).strip()
    assert seller_id.isdigit(), seller_id
    r.write("/run/taxcodes.csv", TAXCODES)  # the test's directory is root's alone
    r.run("fapiao", "taxcodes", "import", "--data-dir", D, "--file", "/run/taxcodes.csv",
          **as_fapiao)
    yy = time.strftime("%y", time.gmtime(time.time() + 8 * 3600))
    r.run("fapiao", "ranges", "import", "--data-dir", D, "--seller-id", seller_id,
          "--prefix", yy + "110", "--first", "1", "--last", "1000", **as_fapiao)
    cred = json.loads(r.text("fapiao", "keys", "create", "--data-dir", D, "--roles", "issuer",
                             "--seller-id", seller_id, "--json", **as_fapiao))

    # the company's certificate from the test's own CA, named in the config file
    pki = tmp_path / "pki"
    pki.mkdir()
    ca, key, crt = make_pki(pki, 1001)
    r.write("/etc/fapiao/tls/company.crt", crt.read_bytes(), mode="0644", owner="root:root")
    r.write("/etc/fapiao/tls/company.key", key.read_bytes(), mode="0640", owner="root:fapiao")
    port = free_port()
    conf = r.read(CONF).decode()
    conf = set_conf(conf, "listen", "127.0.0.1:%d" % port)
    conf = set_conf(conf, "cert", "/etc/fapiao/tls/company.crt")
    conf = set_conf(conf, "key", "/etc/fapiao/tls/company.key")
    r.write(CONF, conf, mode="0644", owner="root:root")

    # start it exactly as the unit does: ExecStart, User=, UMask=, NOTIFY_SOCKET
    unit = r.read(UNIT).decode()
    exec_start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    user = re.search(r"^User=(.*)$", unit, re.M).group(1)
    umask = re.search(r"^UMask=(.*)$", unit, re.M).group(1)
    assert exec_start[:2] == ["/usr/bin/fapiao", "serve"] and "--config" in exec_start
    notify = Notify()
    log = open(tmp_path / "serve.log", "wb")
    srv = r.popen(["sh", "-c", 'umask "$0" && exec "$@"', umask] + exec_start, user=user,
                  env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "4000000", "HOME": D},
                  stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        notify.wait_for("READY=1", 60)
        status, _, body, peer = https(port, ca, "GET", "/healthz")
        assert status == 200, body
        assert dict(x[0] for x in peer["subject"])["commonName"] == "127.0.0.1"
        notify.wait_for("WATCHDOG=1", 30)

        # `fapiao doctor` from the installed package: healthy end to end
        doc = r.run("fapiao", "doctor", "https://127.0.0.1:%d" % port, "--cacert", str(ca),
                    "--client-id", cred["client_id"], "--client-secret", cred["client_secret"],
                    check=False)
        assert doc.returncode == 0, doc.stdout.decode() + doc.stderr.decode()

        # issue an invoice: the seller's name, USCC, address and bank in JSON, XML, PDF
        status, _, body, _ = https(port, ca, "POST", "/v1/token", json.dumps(
            {"client_id": cred["client_id"], "client_secret": cred["client_secret"]}),
            {"Content-Type": "application/json"})
        assert status == 200, body
        auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
        status, _, body, _ = https(port, ca, "POST", "/v1/invoices", EXAMPLE_BODY,
                                   dict(auth, **{"Content-Type": "application/json",
                                                 "Idempotency-Key": "package-1"}))
        assert status == 201, body
        inv = json.loads(body)
        number = inv["number"]
        assert number.startswith(yy + "110"), number
        want = [SELLER["name"], SELLER["uscc"], SELLER["address"], SELLER["bank"]]
        as_text = json.dumps(inv, ensure_ascii=False)
        for w in want:
            assert w in as_text, (w, as_text)
        status, _, xml, _ = https(port, ca, "GET", "/v1/invoices/%s/xml" % number, None, auth)
        assert status == 200, xml
        for w in want:
            assert w in xml.decode(), (w, xml.decode())
        pdf = None
        for _ in range(240):  # bounded: the outbox renders it in a worker process
            status, hdr, pdf, _ = https(port, ca, "GET", "/v1/invoices/%s/pdf" % number, None,
                                        auth)
            if status != 202:
                break
            time.sleep(0.25)
        assert status == 200 and pdf.startswith(b"%PDF"), (status, pdf[:300])
        (tmp_path / "invoice.pdf").write_bytes(pdf)
        text = _run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "invoice.pdf"), "-"],
                    timeout=60).stdout.decode()
        for w in want:
            assert squash(w) in squash(text), (w, text)

        # SIGHUP: the access log is reopened (logrotate renamed it) and the
        # certificate is re-read
        logp = "/var/log/fapiao/access.log"
        assert b"/v1/invoices" in r.read(logp)
        r.run("mv", logp, logp + ".1")
        _, key2, crt2 = make_pki(pki, 1002)
        r.write("/etc/fapiao/tls/company.crt", crt2.read_bytes(), mode="0644", owner="root:root")
        r.write("/etc/fapiao/tls/company.key", key2.read_bytes(), mode="0640",
                owner="root:fapiao")
        srv.send_signal(signal.SIGHUP)
        serial = None
        for _ in range(200):  # bounded: the reload is done by the server's own thread
            status, _, _, peer = https(port, ca, "GET", "/after-hup")
            serial = peer["serialNumber"]
            if r.exists(logp) and b"after-hup" in r.read(logp) and serial == "03EA":
                break
            time.sleep(0.05)
        assert serial == "03EA", "the certificate was not reloaded (serial %s)" % serial
        assert r.exists(logp) and b"after-hup" in r.read(logp), \
            "SIGHUP did not reopen the access log"
        # from now on every line goes to the new file; the old one kept its lines
        https(port, ca, "GET", "/after-reopen")
        assert b"/after-reopen" in r.read(logp)
        assert b"/after-reopen" not in r.read(logp + ".1")
        assert b"/v1/invoices" in r.read(logp + ".1")
        assert r.stat(logp)[1] == "fapiao"
        assert srv.poll() is None

        # SIGTERM: STOPPING=1, then a clean exit
        srv.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", 60)
        assert srv.wait(timeout=120) == 0
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait(timeout=30)
        log.close()
        print((tmp_path / "serve.log").read_text(errors="replace")[-3000:])

    # purge: the configuration goes, the tax records stay
    out = r.run("dpkg", "--purge", "fapiao")
    assert not r.exists("/etc/fapiao")
    assert r.exists(D + "/fapiao.db")
    assert "kept /var/lib/fapiao" in out.stderr.decode() + out.stdout.decode()


# ---- libfapiao-client0 and libfapiao-client-dev -----------------------------

CLIENT_PKGS = ("libfapiao-client0", "libfapiao-client-dev")


@pytest.fixture(scope="module")
def client_debs(deb):
    """The client library's packages, built beside the fapiao .deb."""
    arch = _run(["dpkg", "--print-architecture"]).stdout.decode().strip()
    debs = [deb.parent / ("%s_%s_%s.deb" % (p, project_version(), arch)) for p in CLIENT_PKGS]
    for d in debs:
        assert d.exists(), "%s was not built (scripts/build-deb.sh, debian/control)" % d.name
    return debs


def test_client_packages_soname_symbols_and_lintian(client_debs):
    lib, dev = client_debs
    files = _run(["dpkg-deb", "-c", str(lib)]).stdout.decode()
    assert re.search(r"usr/lib/[^/]+/libfapiao-client\.so\.0 -> libfapiao-client\.so\.0\.", files)
    ctl = _run(["dpkg-deb", "-I", str(lib), "symbols"]).stdout.decode()
    assert ctl.startswith("libfapiao-client.so.0 libfapiao-client0 "), ctl
    exported = set(re.findall(r"^\s*(fpc_\w+)@FAPIAO_CLIENT_0", ctl, re.M))
    mapped = set(re.findall(r"^\s*(fpc_\w+);", (REPO / "src" / "client" /
                                                  "libfapiao-client.map").read_text(), re.M))
    assert exported == mapped and "fpc_issue" in exported, (exported ^ mapped)
    x = _run(["dpkg-deb", "-x", str(lib), str(lib.parent / "x-lib")])
    assert x.returncode == 0
    so = next((lib.parent / "x-lib").glob("usr/lib/*/libfapiao-client.so.0.*"))
    dyn = _run(["objdump", "-p", str(so)]).stdout.decode()
    assert re.search(r"SONAME\s+libfapiao-client\.so\.0\n", dyn), dyn
    dfiles = _run(["dpkg-deb", "-c", str(dev)]).stdout.decode()
    for want in (r"usr/include/fapiao-client/client\.h", r"usr/include/fapiao-client/spool\.h",
                 r"usr/lib/[^/]+/libfapiao-client\.so -> libfapiao-client\.so\.0",
                 r"usr/lib/[^/]+/pkgconfig/fapiao-client\.pc"):
        assert re.search(want, dfiles), (want, dfiles)
    assert "doctor.h" not in dfiles  # the doctor hook is not in the library
    deps = _run(["dpkg-deb", "-f", str(dev), "Depends"]).stdout.decode()
    assert "libfapiao-client0 (= %s)" % project_version() in deps, deps
    # clean: no error and no warning (info and pedantic tags are printed)
    r = _run(["lintian", "--fail-on", "error,warning", "--info", "--pedantic"]
             + [str(d) for d in client_debs])
    out = r.stdout.decode(errors="replace")
    bad = [l for l in out.splitlines() if l[:2] in ("E:", "W:")]
    assert r.returncode == 0 and not bad, out + r.stderr.decode(errors="replace")
    print("lintian (client):", out.strip() or "clean")


def test_a_program_built_with_pkg_config_issues(root, deb, client_debs, tmp_path):
    """The three packages install together; examples/client/issue.c, built
    with `pkg-config --cflags --libs fapiao-client` against the installed
    -dev package, issues an invoice from the packaged fapiao (demo data
    directory) and gets the same one back for the same serial."""
    r = root
    for d in [deb] + list(client_debs):
        shutil.copy(d, tmp_path / d.name)
    r.run("dpkg", "-i", *[str(tmp_path / d.name) for d in [deb] + list(client_debs)],
          env={"DEBIAN_FRONTEND": "noninteractive"})
    shutil.copy(REPO / "examples" / "client" / "issue.c", tmp_path / "issue.c")
    (tmp_path / "invoice.json").write_bytes(EXAMPLE_BODY)
    flags = r.text("pkg-config", "--cflags", "--libs", "fapiao-client").split()
    assert "-lfapiao-client" in flags, flags
    r.run("cc", "-Wall", "-Werror", "-o", str(tmp_path / "issue"), str(tmp_path / "issue.c"),
          *flags)
    ldd = r.text("ldd", str(tmp_path / "issue"))
    assert re.search(r"libfapiao-client\.so\.0 => (/usr)?/lib/[^/]+/libfapiao-client", ldd), ldd
    D = "/run/demo"
    init = json.loads(r.text("fapiao", "init", "--demo", "--json", "--data-dir", D))
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    srv = r.popen(["fapiao", "serve", "--data-dir", D, "--listen", "127.0.0.1:%d" % port],
                  env={"FAPIAO_CONFIG": "/dev/null"}, stdin=subprocess.DEVNULL, stdout=log,
                  stderr=log)
    try:
        ca = tmp_path / "ca.crt"
        ca.write_bytes(r.read(init["ca_cert"]))
        for _ in range(300):  # bounded: until it serves
            try:
                if https(port, ca, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert srv.poll() is None, (tmp_path / "serve.log").read_text(errors="replace")
            time.sleep(0.1)
        args = [str(tmp_path / "issue"), "https://127.0.0.1:%d" % port, init["client_id"],
                init["client_secret"], init["ca_cert"], "pkg-client-1",
                str(tmp_path / "invoice.json")]
        first = r.text(*args).split()
        assert len(first) == 1 and len(first[0]) == 20, first
        assert r.text(*args).strip() == first[0] + " (issued before)"
    finally:
        srv.kill()
        srv.wait(timeout=30)
        log.close()
