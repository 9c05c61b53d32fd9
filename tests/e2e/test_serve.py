"""`fapiao serve` refuses to start wrongly, with a clear message and exit code."""
import subprocess

from conftest import BIN, SLOW, free_port


def run_serve(args, env=None, timeout=30):
    return subprocess.run([BIN, "serve"] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW, env=env)


def test_second_server_on_same_data_dir_is_refused(server):
    # the module server holds the data dir; a second one must not write beside it
    r = run_serve(["--data-dir", str(server.data_dir),
                   "--listen", "127.0.0.1:%d" % free_port()])
    assert r.returncode == 1
    assert b"another fapiao serve is using the data directory" in r.stderr
    assert server.request("GET", "/healthz", auth=False).status == 200


def test_taken_port_is_refused(server, make_server):
    other = make_server(start=False)  # initialised, not started
    r = run_serve(["--data-dir", str(other.data_dir),
                   "--listen", "127.0.0.1:%d" % server.port])
    assert r.returncode == 1
    assert b"cannot listen on 127.0.0.1:%d" % server.port in r.stderr
    assert server.request("GET", "/healthz", auth=False).status == 200


def test_uninitialised_dir_gives_the_fix(tmp_path):
    r = run_serve(["--data-dir", str(tmp_path / "nothing")],
                  env={"LANG": "zh_CN.UTF-8", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert "先运行 fapiao init --data-dir".encode() in r.stderr


def test_bad_listen_is_a_usage_error(tmp_path):
    for listen in ("8443", "127.0.0.1:99999", "127.0.0.1:x"):
        r = run_serve(["--data-dir", str(tmp_path), "--listen", listen])
        assert r.returncode == 2, listen
        assert b"--listen" in r.stderr


def test_unknown_flag_is_a_usage_error(tmp_path):
    r = run_serve(["--data-dir", str(tmp_path), "--frobnicate"])
    assert r.returncode == 2
    assert b"unknown argument --frobnicate" in r.stderr


def test_number_options_are_checked_against_their_range(tmp_path):
    """Every number option is read from one table with its range: a value
    outside it (or not a number) is a usage error naming the flag, in zh
    and en, before the data directory is looked at.  --shutdown-grace was
    once read and ignored."""
    for args in (["--shutdown-grace", "soon"], ["--shutdown-grace", "0"],
                 ["--threads", "0"], ["--token-ttl", "86401"], ["--client-rate", "-1"],
                 ["--auth-fail-rate", "5/hour"], ["--client-rate", "2/h"],
                 ["--global-rate", "1/hour"], ["--concurrency-max", "none"]):
        r = run_serve(["--data-dir", str(tmp_path / "nothing")] + args,
                      env={"LANG": "C", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 2, (args, r.stderr)
        err = r.stderr.decode()
        assert args[0] + " must be" in err and args[0] + " 须为" in err, (args, err)
    for args in (["--shutdown-grace", "30"], ["--auth-fail-rate", "5/min"],
                 ["--client-rate", "2/min"], ["--global-rate", "30/s"],
                 ["--concurrency-max", "off"]):
        r = run_serve(["--data-dir", str(tmp_path / "nothing")] + args,
                      env={"LANG": "C", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 1 and b"not a data directory" in r.stderr, (args, r.stderr)


def test_help_documents_every_flag_with_its_default():
    out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True,
                         timeout=30 * SLOW)
    assert out.returncode == 0
    for flag, default in (("--listen", "127.0.0.1:8443"), ("--shutdown-grace", "10"),
                          ("--max-connections", "1024"), ("--min-free-mb", "64"),
                          ("--auth-fail-rate", "5/s"), ("--client-rate", "1000/s"),
                          ("--token-ttl", "3600")):
        line = next(x for x in out.stdout.splitlines() if x.startswith("  %s " % flag))
        assert "[default: %s]" % default in line, line


# ---- an unreadable data directory (issue 12, storage faults item 10) --------

def _unprivileged():
    """Root ignores file modes: run as nobody (setpriv, util-linux)."""
    import pwd
    import shutil
    import pytest
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed (Debian package util-linux)")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _public_data_dir():
    """An initialised data dir that nobody could reach if its own mode
    allowed it (pytest's tmp dirs are 0700 root).  Removed by the caller."""
    import json
    import os
    import tempfile
    base = tempfile.mkdtemp(prefix="fapiao-perm-%d-" % os.getpid())
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    r = subprocess.run([BIN, "init", "--data-dir", data, "--demo", "--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)
    for root, dirs, files in os.walk(data):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    os.chmod(data, 0o755)
    return base, data


def _cli_cases(data):
    return [["serve", "--data-dir", data, "--listen", "127.0.0.1:%d" % free_port()],
            ["audit", "verify", "--data-dir", data],
            ["ranges", "list", "--data-dir", data],
            ["outbox", "list", "--data-dir", data]]


def test_unreadable_data_dir_says_permission_denied():
    import os
    import shutil
    prefix = _unprivileged()
    base, data = _public_data_dir()
    try:
        os.chmod(data, 0)
        for args in _cli_cases(data):
            r = subprocess.run(prefix + [BIN] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * SLOW,
                               env={"LANG": "C", "PATH": "/usr/bin:/bin"})
            err = r.stderr.decode(errors="replace")
            assert r.returncode != 0, (args, err)
            assert "permission denied" in err, (args, err)
            assert data in err, (args, err)
            assert "no fapiao.db" not in err and "run fapiao init" not in err, (args, err)
    finally:
        os.chmod(data, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_unreadable_database_file_says_permission_denied():
    import os
    import shutil
    prefix = _unprivileged()
    base, data = _public_data_dir()
    db = os.path.join(data, "fapiao.db")
    try:
        os.chmod(db, 0)
        for args in _cli_cases(data):
            r = subprocess.run(prefix + [BIN] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * SLOW,
                               env={"LANG": "zh_CN.UTF-8", "PATH": "/usr/bin:/bin"})
            err = r.stderr.decode(errors="replace")
            assert r.returncode != 0, (args, err)
            assert "权限不足" in err and db in err, (args, err)
            assert "没有 fapiao.db" not in err, (args, err)
    finally:
        shutil.rmtree(base, ignore_errors=True)
