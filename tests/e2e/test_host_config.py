"""A config file in the environment (as /etc/fapiao/fapiao.conf would be on a
host with the package) does not reach the fapiao the test helpers start:
conftest.fapiao_env sets FAPIAO_CONFIG=/dev/null for init, serve and the CLI."""
import subprocess

from conftest import BIN, SLOW, fapiao_env, free_port


def test_planted_config_does_not_reach_the_helpers(make_server, tmp_path, monkeypatch):
    bad = tmp_path / "host.conf"
    # a line fapiao refuses, and a database elsewhere (nothing listens there)
    bad.write_text("[serve]\nnot a setting\ndatabase = postgresql://127.0.0.1:%d/nope\n"
                   % free_port())
    monkeypatch.setenv("FAPIAO_CONFIG", str(bad))
    srv = make_server()  # fapiao init and fapiao serve
    r = srv.issue("host-config-1")
    assert r.status == 201, r
    ranges = [BIN, "ranges", "list", "--data-dir", str(srv.data_dir)]
    ok = subprocess.run(ranges, capture_output=True, env=fapiao_env(), timeout=60 * SLOW)
    assert ok.returncode == 0, ok.stderr
    # the planted file is real: a process started with the bare environment reads it
    bare = subprocess.run(ranges, capture_output=True, timeout=60 * SLOW)
    assert bare.returncode != 0 and str(bad).encode() in bare.stderr, bare.stderr
