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
