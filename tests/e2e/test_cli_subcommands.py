"""Every command with subcommands finds its subcommand through one helper,
cli_subcommand in src/cli/cli_util.c: an unknown subcommand or none is a
usage error (exit 2) whose message names the command and lists its
subcommands, in zh and en, followed by the usage on stderr; --help and -h
print the usage on stdout and exit 0."""
import subprocess

import pytest

from conftest import BIN, SLOW, fapiao_env

# command, its subcommands in the order the message lists them
COMMANDS = [
    ("users", ["add", "list", "disable", "reset-2fa"]),
    ("keys", ["create", "list", "rotate", "revoke", "set"]),
    ("sellers", ["add", "list", "show", "set", "disable", "enable"]),
    ("kb", ["search", "show", "list"]),
    ("backup", ["create", "list", "verify", "restore", "prune", "keys"]),
    ("audit", ["verify", "export", "list", "prune"]),
    ("alerts", ["silence", "list", "expire", "test"]),
    ("outbox", ["list", "redrive"]),
    ("webhook", ["set", "show", "remove"]),
    ("ranges", ["import", "list", "advance"]),
    ("taxcodes", ["import", "show"]),
    ("clock", ["status", "confirm"]),
]


def run(*argv):
    return subprocess.run([BIN, *argv], capture_output=True, text=True, timeout=30 * SLOW,
                          env=fapiao_env(LANG="C"))


@pytest.mark.parametrize("cmd,subs", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_unknown_subcommand(cmd, subs):
    r = run(cmd, "frobnicate")
    assert r.returncode == 2, r
    assert r.stdout == "", r.stdout
    lines = r.stderr.splitlines()
    assert lines[0] == "fapiao: 未知的 %s 子命令 frobnicate（可用：%s）" % (cmd, "、".join(subs)), lines
    assert lines[1] == "fapiao: unknown %s subcommand frobnicate (one of: %s)" % (
        cmd, ", ".join(subs)), lines
    assert "usage: fapiao %s" % cmd in r.stderr, r.stderr


@pytest.mark.parametrize("cmd,subs", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_no_subcommand(cmd, subs):
    r = run(cmd)
    assert r.returncode == 2, r
    lines = r.stderr.splitlines()
    assert lines[0] == "fapiao: %s 缺少子命令（可用：%s）" % (cmd, "、".join(subs)), lines
    assert lines[1] == "fapiao: %s needs a subcommand (one of: %s)" % (cmd, ", ".join(subs)), lines
    assert "usage: fapiao %s" % cmd in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("cmd,subs", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_help(cmd, subs, flag):
    r = run(cmd, flag)
    assert r.returncode == 0, r
    assert "usage: fapiao %s" % cmd in r.stdout, r.stdout
    assert r.stderr == "", r.stderr
