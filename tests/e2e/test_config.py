"""The config file, FAPIAO_* variables, --print-config, SIGHUP reload and
systemd's Type=notify (issue 16; docs/configuration.md).

Precedence is seen through --print-config (flag > env > file > default);
errors name FILE:LINE or the variable; a server started from a config file
alone answers; SIGHUP applies a lowered --client-rate (a burst then gets
429) and keeps the old settings when the file is broken; the access log
reopens at its old path after a rename (logrotate); READY=1, WATCHDOG=1 and
STOPPING=1 arrive on a NOTIFY_SOCKET the test binds.

Data directories come from the conftest's make_server(start=False), so a
change to how `fapiao init` makes them is made in one place.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BIN, SLOW, _die_with_parent, assert_problem, free_port

# a line of --print-config: "[; ]key = value   ; source"
ROW = re.compile(r"^(; )?([a-z][a-z0-9-]*) = (.*?)\s+; (.+)$")


def clean_env(**extra):
    """The test's environment without FAPIAO_* settings (FAPIAO_BIN aside),
    reading no config file unless one is given, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FAPIAO_") or k == "FAPIAO_BIN"}
    env["FAPIAO_CONFIG"] = os.devnull  # never the host's /etc/fapiao/fapiao.conf
    env["LIBC_FATAL_STDERR_"] = "1"
    env.update(extra)
    return env


def run_serve(args, env=None, timeout=30):
    return subprocess.run([BIN, "serve"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env or clean_env(),
                          timeout=timeout * SLOW)


def print_config(args, env=None):
    r = run_serve(list(args) + ["--print-config"], env)
    assert r.returncode == 0, r.stderr.decode()
    rows = {}
    for line in r.stdout.decode().splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(2)] = (m.group(3), m.group(4), m.group(1) is None)
    return rows, r.stdout.decode()


def write_conf(path, text):
    path.write_text(text)
    return path


def spawn(srv, args, env=None, port=None):
    """Starts `fapiao serve ARGS` for srv's data directory as the conftest
    does, but with our own arguments and environment; waits for /healthz.
    Without a port (one in a config file), it listens where --listen says."""
    assert srv.proc is None
    srv.port = port or free_port()
    if port is None:
        args = ["--data-dir", str(srv.data_dir), "--listen", "127.0.0.1:%d" % srv.port] + list(args)
    logf = open(srv.log_path, "ab")
    logf.write(("\n=== serve (test_config) on port %d\n" % srv.port).encode())
    logf.flush()
    srv.proc = subprocess.Popen([BIN, "serve"] + list(args), stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf, env=env or clean_env(),
                                preexec_fn=_die_with_parent)
    logf.close()
    deadline = time.monotonic() + 20 * SLOW
    while time.monotonic() < deadline:
        rc = srv.proc.poll()
        if rc is not None:
            srv.proc = None
            raise AssertionError("serve exited %d:\n%s" % (rc, srv.log_tail()))
        if srv.healthy():
            return srv
        time.sleep(0.05)
    raise AssertionError("serve not healthy:\n" + srv.log_tail())


def wait_log(srv, text, after=0, timeout=15):
    """Until srv's log holds text past offset after (bounded)."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if text in srv.log_text()[after:]:
            return
        time.sleep(0.05)
    raise AssertionError("%r not in the log:\n%s" % (text, srv.log_tail()))


def burst_statuses(srv, n=12):
    tok = srv.token()
    return [srv.request("GET", "/v1/invoices?limit=1", auth=tok) for _ in range(n)]


# ---- precedence and errors (no server) -------------------------------------

def test_precedence_flag_env_file_default(tmp_path):
    conf = write_conf(tmp_path / "fapiao.conf",
                      "# a comment\n"
                      "[serve]\n"
                      "threads = 2\n"            # line 3: beaten by env and flag
                      "token-ttl = 100\n"        # line 4: beaten by env
                      "client-rate = 7\n"        # line 5: from the file
                      "allow-private-webhooks = yes\n")  # line 6
    env = clean_env(FAPIAO_THREADS="3", FAPIAO_TOKEN_TTL="200")
    rows, text = print_config(["--config", str(conf), "--threads", "4"], env)
    assert rows["threads"] == ("4", "flag --threads", True), text
    assert rows["token-ttl"] == ("200", "env FAPIAO_TOKEN_TTL", True), text
    assert rows["client-rate"] == ("7/s", "%s:5" % conf, True), text
    assert rows["allow-private-webhooks"] == ("true", "%s:6" % conf, True), text
    assert rows["listen"] == ("127.0.0.1:8443", "default", False), text
    assert rows["max-body"][1:] == ("default", False), text
    # every option of --help is a row: one table
    help_text = run_serve(["--help"]).stdout.decode()
    flags = set(re.findall(r"^  --([a-z][a-z0-9-]*)", help_text, re.M)) - {
        "config", "print-config"}
    assert flags == set(rows), flags ^ set(rows)
    # FAPIAO_CONFIG names the file when --config is not given
    rows2, _ = print_config([], clean_env(FAPIAO_CONFIG=str(conf)))
    assert rows2["client-rate"] == ("7/s", "%s:5" % conf, True)
    # a flag switch beats a file's false; env false beats a file's true
    conf2 = write_conf(tmp_path / "b.conf", "[serve]\nfault-injection = false\n"
                       "allow-private-webhooks = true\n")
    rows3, _ = print_config(["--config", str(conf2), "--fault-injection"],
                            clean_env(FAPIAO_ALLOW_PRIVATE_WEBHOOKS="false"))
    assert rows3["fault-injection"] == ("true", "flag --fault-injection", True)
    assert rows3["allow-private-webhooks"] == (
        "false", "env FAPIAO_ALLOW_PRIVATE_WEBHOOKS", True)


@pytest.mark.parametrize("body,line,words", [
    ("[serve]\nthreads = 2\n\nnot-a-key = 1\n", 4, ["unknown key not-a-key", "未知的键"]),
    ("[serve]\n--threads = 2\n", 2, ["keys have no leading dashes", "键名不带前导横线"]),
    ("[serve]\nthreads = 2\n[server]\n", 3, ["unknown section [server]", "未知的节"]),
    ("threads = 2\n", 1, ["outside the [serve] section", "须位于 [serve] 节内"]),
    ("[serve]\nthreads = 2\nthreads = 3\n", 3, ["repeated", "重复"]),
    ("[serve]\nthreads\n", 2, ["syntax error", "语法错误"]),
    ("[serve]\nclient-rate = lots\n", 2, ["client-rate must be 0-100000000", "client-rate 须为"]),
    ("[serve]\n\nthreads = 0\n", 3, ["threads must be 1-256", "threads 须为 1–256"]),
    ("[serve]\nfault-injection = maybe\n", 2, ["must be true or false", "须为 true 或 false"]),
    ("[serve]\ndata-dir =\n", 2, ["has no value", "没有值"]),
])
def test_config_error_names_file_and_line(tmp_path, body, line, words):
    conf = write_conf(tmp_path / "fapiao.conf", body)
    datadir = tmp_path / "nothing-here"
    for extra in ([], ["--print-config"]):
        r = run_serve(["--config", str(conf), "--data-dir", str(datadir)] + extra)
        err = r.stderr.decode()
        assert r.returncode == 2, err
        assert "%s:%d: " % (conf, line) in err, err
        for w in words:
            assert w in err, err
        assert not datadir.exists()  # nothing started, nothing made


def test_rates_per_second_or_per_minute(tmp_path):
    """--client-rate and --global-rate take N, N/s or N/min like
    --auth-fail-rate, from a flag, FAPIAO_* or the file; --print-config
    shows the period however it was written; any other period is a usage
    error naming the three forms, in zh and en, before anything starts."""
    conf = write_conf(tmp_path / "fapiao.conf", "[serve]\nglobal-rate = 600/min\n")
    rows, text = print_config(["--config", str(conf), "--client-rate", "2/min"],
                              clean_env(FAPIAO_AUTH_FAIL_RATE="3/min"))
    assert rows["client-rate"] == ("2/min", "flag --client-rate", True), text
    assert rows["global-rate"] == ("600/min", "%s:2" % conf, True), text
    assert rows["auth-fail-rate"] == ("3/min", "env FAPIAO_AUTH_FAIL_RATE", True), text
    rows, text = print_config([], clean_env(FAPIAO_CLIENT_RATE="30", FAPIAO_GLOBAL_RATE="9/s"))
    assert rows["client-rate"] == ("30/s", "env FAPIAO_CLIENT_RATE", True), text
    assert rows["global-rate"] == ("9/s", "env FAPIAO_GLOBAL_RATE", True), text
    assert rows["auth-fail-rate"] == ("5/s", "default", False), text
    datadir = tmp_path / "nothing-here"
    for flag, value in (("--client-rate", "2/h"), ("--global-rate", "1/hour"),
                        ("--client-rate", "/min"), ("--global-rate", "2/m")):
        r = run_serve(["--data-dir", str(datadir), flag, value])
        err = r.stderr.decode()
        assert r.returncode == 2, (flag, value, err)
        assert ("%s must be 0-100000000 (0: no limit), as N or N/s (per second) or N/min "
                "(per minute)" % flag) in err, err
        assert ("%s 须为 0–100000000（0 表示不限），写作 N、N/s（每秒）或 N/min（每分钟）"
                % flag) in err, err
    r = run_serve(["--data-dir", str(datadir)], clean_env(FAPIAO_CLIENT_RATE="2/h"))
    assert r.returncode == 2 and "FAPIAO_CLIENT_RATE=2/h: " in r.stderr.decode(), r.stderr
    assert not datadir.exists()  # nothing started, nothing made


def test_bad_env_value_and_unreadable_file(tmp_path):
    r = run_serve(["--data-dir", str(tmp_path), "--print-config"],
                  clean_env(FAPIAO_CLIENT_RATE="fast"))
    assert r.returncode == 2
    assert "FAPIAO_CLIENT_RATE=fast: " in r.stderr.decode(), r.stderr.decode()
    missing = tmp_path / "missing.conf"
    for args, env in ((["--config", str(missing)], None),
                      ([], clean_env(FAPIAO_CONFIG=str(missing)))):
        r = run_serve(["--data-dir", str(tmp_path)] + args, env)
        assert r.returncode == 2
        assert "%s: " % missing in r.stderr.decode()
        assert "cannot read the config file" in r.stderr.decode()


# ---- serving from a config file --------------------------------------------

def test_serve_from_config_file_only(make_server, tmp_path):
    srv = make_server(start=False)
    port = free_port()
    conf = write_conf(tmp_path / "fapiao.conf",
                      "[serve]\ndata-dir = %s\nlisten = 127.0.0.1:%d\n"
                      "access-log = %s\n" % (srv.data_dir, port, tmp_path / "acc.log"))
    spawn(srv, ["--config", str(conf)], port=port)
    assert srv.request("GET", "/healthz", auth=False).status == 200
    assert srv.request("GET", "/v1/invoices?limit=1").status == 200
    assert (tmp_path / "acc.log").exists()
    assert "config file %s" % conf in srv.log_text()


def test_sighup_applies_rate_limit_and_names_restart(make_server, tmp_path):
    srv = make_server(start=False)
    port = free_port()
    base = ("[serve]\ndata-dir = %s\nlisten = 127.0.0.1:%d\nauth-fail-rate = 0\n"
            % (srv.data_dir, port))
    conf = write_conf(tmp_path / "fapiao.conf", base)
    spawn(srv, ["--config", str(conf)], port=port)
    before = burst_statuses(srv)
    assert all(r.status == 200 for r in before), [r.status for r in before]
    # one a minute: the burst of 12 meets 429s however slowly this machine runs
    write_conf(conf, base + "client-rate = 1/min\nclient-burst = 1\nthreads = 3\n")
    mark = len(srv.log_text())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "applied: client-rate, client-burst", mark)
    wait_log(srv, "needs a restart to take effect: threads", mark)
    after = burst_statuses(srv)
    limited = [r for r in after if r.status == 429]
    assert limited, [r.status for r in after]
    assert_problem(limited[0], 429, "RATE_LIMITED")
    assert all(r.status in (200, 429) for r in after)
    # and back: the limit lifted again by the next SIGHUP
    write_conf(conf, base)
    mark = len(srv.log_text())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "applied: client-rate, client-burst", mark)
    # (threads went back to what runs: nothing to restart for)
    assert "needs a restart" not in srv.log_text()[mark:]
    again = burst_statuses(srv)
    assert all(r.status == 200 for r in again), [r.status for r in again]


def test_sighup_with_broken_file_keeps_old_settings(make_server, tmp_path):
    srv = make_server(start=False)
    port = free_port()
    base = ("[serve]\ndata-dir = %s\nlisten = 127.0.0.1:%d\nauth-fail-rate = 0\n"
            % (srv.data_dir, port))
    conf = write_conf(tmp_path / "fapiao.conf", base)
    spawn(srv, ["--config", str(conf)], port=port)
    # lowers the rate (valid) but line 6 is broken: nothing of it applies
    write_conf(conf, base + "client-rate = 1\nbogus-key = 1\n")
    mark = len(srv.log_text())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "keeping the previous settings", mark)
    assert "%s:6: " % conf in srv.log_text()[mark:]
    assert srv.running()
    statuses = [r.status for r in burst_statuses(srv)]
    assert statuses == [200] * len(statuses), statuses
    # an unreadable file likewise
    conf.unlink()
    mark = len(srv.log_text())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "keeping the previous settings", mark)
    assert srv.healthy()


@pytest.mark.parametrize("rotate", ["rename", "rename-and-create"])
def test_access_log_reopened_after_rename(make_server, rotate):
    """logrotate moves the log (and with `create` puts an empty file in its
    place), then sends SIGHUP: new lines go to the file at the old path."""
    srv = make_server(start=False)
    spawn(srv, [])
    log = srv.data_dir / "access.log"
    assert srv.request("GET", "/healthz", auth=False).status == 200
    assert log.stat().st_size > 0
    moved = srv.data_dir / "access.log.1"
    os.rename(log, moved)
    if rotate == "rename-and-create":
        log.touch(mode=0o600)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline:  # until the SIGHUP is taken
        srv.request("GET", "/healthz", auth=False)
        if log.exists() and log.stat().st_size > 0:
            break
        time.sleep(0.05)
    assert log.exists() and log.stat().st_size > 0, srv.log_tail()
    assert (log.stat().st_mode & 0o077) == 0  # the service's own (umask 077)
    # requests after the reopen (each named by a path of its own; a line is
    # written once its response is done, so wait for them) land in the new
    # file, and none in the old one
    marks = [f"/v1/reopen-probe-{uuid.uuid4().hex}" for _ in range(3)]
    for m in marks:
        srv.request("GET", m, auth=False)
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline and not all(m.encode() in log.read_bytes() for m in marks):
        time.sleep(0.05)
    assert all(m.encode() in log.read_bytes() for m in marks), srv.log_tail()
    assert not any(m.encode() in moved.read_bytes() for m in marks)


# ---- systemd Type=notify ---------------------------------------------------

def test_sd_notify_ready_watchdog_stopping(make_server):
    srv = make_server(start=False)
    sockdir = tempfile.mkdtemp(prefix="fpn", dir="/tmp")  # sun_path is short
    path = os.path.join(sockdir, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.settimeout(1)
        env = clean_env(NOTIFY_SOCKET=path, WATCHDOG_USEC="20000000")
        spawn(srv, [], env=env)
        seen = []

        def until(word, timeout=20):
            deadline = time.monotonic() + timeout * SLOW
            while time.monotonic() < deadline:
                try:
                    msg = sock.recv(4096).decode()
                except socket.timeout:
                    continue
                seen.append(msg)
                if word in msg.split("\n"):
                    return msg
            raise AssertionError("no %s in %r\n%s" % (word, seen, srv.log_tail()))

        ready = until("READY=1")
        assert "STATUS=listening on port %d" % srv.port in ready
        assert srv.healthy()  # READY=1 came once it was listening
        until("WATCHDOG=1")
        assert not any("STOPPING=1" in m for m in seen)
        srv.proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert srv.proc.wait(timeout=30 * SLOW) == 0
        srv.proc = None
        srv.last_exit = 0
    finally:
        sock.close()
        try:
            os.unlink(path)
            os.rmdir(sockdir)
        except OSError:
            pass


def test_without_notify_socket_nothing_changes(make_server):
    """No NOTIFY_SOCKET (and no WATCHDOG_USEC): serve starts and stops as
    before (sd_notify is a no-op)."""
    srv = make_server(start=False)
    spawn(srv, [])
    assert srv.stop() == 0
