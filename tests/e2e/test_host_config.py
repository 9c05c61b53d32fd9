"""A config file in the environment (as /etc/fapiao/fapiao.conf would be on a
host with the package) does not reach the fapiao the test helpers start:
conftest.fapiao_env sets FAPIAO_CONFIG=/dev/null for init, serve and the CLI."""
import subprocess

import pytest

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


def test_suite_refuses_a_host_with_etc_fapiao(tmp_path, monkeypatch):
    """A host with /etc/fapiao (a package installed) stops the e2e and faults
    suites at their start, in zh and en, unless the environment the tests
    were started from sets FAPIAO_CONFIG."""
    import conftest
    etc = tmp_path / "etc-fapiao"
    assert conftest.host_config_problem(etc, given="") is None  # no such directory
    etc.mkdir()
    msg = conftest.host_config_problem(etc, given="")
    assert msg and str(etc) in msg and "FAPIAO_CONFIG" in msg and "apt-get purge" in msg, msg
    assert "软件包" in msg, msg
    assert conftest.host_config_problem(etc, given="1") is None
    # the session-start hook exits with it (both conftests use this hook)
    monkeypatch.setattr(conftest, "host_config_problem", lambda: msg)
    with pytest.raises(pytest.exit.Exception):
        conftest.pytest_sessionstart(None)
    faults = (conftest.REPO / "tests" / "faults" / "conftest.py").read_text()
    assert "pytest_sessionstart = faultzoo.e2e.pytest_sessionstart" in faults
