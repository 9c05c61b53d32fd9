"""The CLI's message language (src/cli/cli.h): Chinese when the locale is
zh*, English when it is en*, and both — Chinese first, one line each — when
it is neither (unset, C, POSIX, another language), so that nobody gets an
error message in only the language they may not read."""
import subprocess

import pytest

from conftest import BIN, SLOW

ZH = "不是数据目录（没有 fapiao.db）"
EN = "is not a data directory (no fapiao.db)"


@pytest.mark.parametrize("env,want", [
    ({"LANG": "zh_CN.UTF-8"}, [ZH]),
    ({"LANG": "en_US.UTF-8"}, [EN]),
    ({"LANG": "C"}, [ZH, EN]),
    ({"LANG": "C.UTF-8"}, [ZH, EN]),
    ({"LANG": "POSIX"}, [ZH, EN]),
    ({"LANG": "de_DE.UTF-8"}, [ZH, EN]),
    ({}, [ZH, EN]),
    ({"LANG": "de_DE.UTF-8", "LC_MESSAGES": "zh_TW.UTF-8"}, [ZH]),  # the more specific wins
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, [EN]),
])
def test_error_language_follows_the_locale(tmp_path, env, want):
    missing = tmp_path / "no-data-here"
    r = subprocess.run([BIN, "keys", "list", "--data-dir", str(missing)], capture_output=True,
                       text=True, timeout=30 * SLOW, env=dict(env, PATH="/usr/bin:/bin"))
    assert r.returncode == 1, r
    lines = r.stderr.splitlines()
    assert len(lines) == len(want), lines
    for line, text in zip(lines, want):
        assert line == "fapiao: %s %s" % (missing, text), lines
