"""Every numeric flag of the CLI: not a number, negative, or past the range of
a 64-bit integer is a usage error (exit 2) that names the flag, in zh and en
(cli_number / cli_count in src/cli/cli_util.c); one valid value is taken."""
import json
import os
import subprocess

import pytest

from conftest import BIN, REPO, SLOW, Server, free_port

BAD = {"garbage": "abc", "negative": "-1", "overflow": "99999999999999999999"}

# (case id, argv with {d} the data directory, {t} a fresh path, {c} the demo
# client, {k} its credential file, {p} a port nothing listens on and {v} the
# value, the flag the message names, a valid value[, what
# the command says, exit 2, when it took the valid value but found nothing to
# do with it]).  Each command's other arguments are valid, so that only the
# number can be wrong.
CASES = [
    ("outbox-list-limit", ["outbox", "list", "--data-dir", "{d}", "--limit", "{v}"],
     "--limit", "5"),
    ("outbox-redrive-job", ["outbox", "redrive", "--data-dir", "{d}", "--job", "{v}"],
     "--job", "999"),
    ("audit-list-limit", ["audit", "list", "--data-dir", "{d}", "--limit", "{v}"],
     "--limit", "5"),
    ("audit-verify-from-checkpoint",
     ["audit", "verify", "--data-dir", "{d}", "--from-checkpoint", "{v}"],
     "--from-checkpoint", "1", "there is no checkpoint 1"),
    ("audit-export-from", ["audit", "export", "--data-dir", "{d}", "--out", "{t}", "--from", "{v}"],
     "--from", "1"),
    ("audit-export-to", ["audit", "export", "--data-dir", "{d}", "--out", "{t}", "--to", "{v}"],
     "--to", "1"),
    ("audit-prune-retention-years",
     ["audit", "prune", "--data-dir", "{d}", "--before", "2000-01-01", "--retention-years", "{v}"],
     "--retention-years", "6"),
    ("init-demo-range-size", ["init", "--data-dir", "{t}", "--demo", "--demo-range-size", "{v}"],
     "--demo-range-size", "1000"),
    ("kb-search-limit", ["kb", "search", "certificate", "--limit", "{v}"], "--limit", "3"),
    ("keys-create-seller-id",
     ["keys", "create", "--data-dir", "{d}", "--roles", "issuer", "--seller-id", "{v}"],
     "--seller-id", "1"),
    ("keys-rotate-overlap",
     ["keys", "rotate", "--data-dir", "{d}", "--client-id", "{c}", "--overlap", "{v}"],
     "--overlap", "60"),
    ("render-worker-mem-limit", ["render-worker", "--mem-limit", "{v}"], "--mem-limit", "0"),
    ("render-worker-timeout-ms", ["render-worker", "--timeout-ms", "{v}"], "--timeout-ms", "1000"),
    ("ranges-list-seller-id", ["ranges", "list", "--data-dir", "{d}", "--seller-id", "{v}"],
     "--seller-id", "1"),
    ("ranges-import-first", ["ranges", "import", "--data-dir", "{d}", "--prefix", "27991",
                             "--first", "{v}", "--last", "20"], "--first", "10"),
    ("ranges-import-last", ["ranges", "import", "--data-dir", "{d}", "--prefix", "27992",
                            "--first", "1", "--last", "{v}"], "--last", "20"),
    ("ranges-advance-range-id",
     ["ranges", "advance", "--data-dir", "{d}", "--range-id", "{v}", "--to", "1"],
     "--range-id", "1"),
    ("ranges-advance-to", ["ranges", "advance", "--data-dir", "{d}", "--range-id", "1",
                           "--to", "{v}"], "--to", "1"),
    ("sellers-show-seller-id", ["sellers", "show", "--data-dir", "{d}", "--seller-id", "{v}"],
     "--seller-id", "1"),
    ("alerts-expire-id", ["alerts", "expire", "--data-dir", "{d}", "{v}"], "ID", "999"),
    ("alerts-silence-for", ["alerts", "silence", "--data-dir", "{d}", "--match", "alertname=x",
                            "--for", "{v}", "--comment", "test"], "--for", "2h"),
    ("issue-timeouts", ["issue", "--server", "https://127.0.0.1:{p}", "--credential", "{k}",
                        "--serial", "n1", "--deadline", "1", "--timeouts", "{v},1000,1000,1000",
                        str(REPO / "examples" / "invoice.json")], "--timeouts", "1000"),
    ("users-add-seller-id", ["users", "add", "--data-dir", "{d}", "--user", "n{p}", "--roles",
                             "auditor", "--seller-id", "{v}"], "--seller-id", "1"),
    ("upstream-credit-show-seller-id",
     ["upstream", "credit", "show", "--data-dir", "{d}", "--seller-id", "{v}"], "--seller-id", "1"),
    ("backup-prune-keep-full", ["backup", "prune", "--from", "{t}", "--keep-full", "{v}"],
     "--keep-full", "3"),
    ("backup-prune-older-than-days",
     ["backup", "prune", "--from", "{t}", "--older-than-days", "{v}"],
     "--older-than-days", "30"),
]


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("fapiao"))  # a demo data directory, not served
    # an audit record, for audit export to have something
    p = subprocess.run([BIN, "keys", "create", "--data-dir", str(s.data_dir), "--roles",
                        "auditor"], capture_output=True, env=dict(os.environ,
                        FAPIAO_CONFIG=os.devnull), timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    s.credential = s.base_dir / "credential.json"
    s.credential.write_text(json.dumps({"client_id": s.client_id,
                                        "client_secret": s.client_secret}))
    yield s
    s.close()


def run(inst, tmp_path, argv, value):
    fresh = tmp_path / "fresh"
    args = [a.format(d=inst.data_dir, t=fresh, c=inst.client_id, k=inst.credential,
                     p=free_port(), v=value) for a in argv]
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_MESSAGES")}
    env.update(LANG="C", FAPIAO_CONFIG=os.devnull)  # both languages; no host config
    p = subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, env=env,
                       timeout=60 * SLOW)
    return p.returncode, p.stderr.decode("utf-8", "replace")


IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("argv,flag", [c[1:3] for c in CASES], ids=IDS)
def test_bad_number_is_a_usage_error(inst, tmp_path, argv, flag, kind):
    rc, err = run(inst, tmp_path, argv, BAD[kind])
    assert rc == 2, (rc, err)
    lines = err.splitlines()
    # the one message, in both languages, naming the flag and the value
    assert any(l.startswith("fapiao: %s must be " % flag) and BAD[kind] in l for l in lines), err
    assert any(l.startswith("fapiao: %s 须为" % flag) for l in lines), err


@pytest.mark.parametrize("argv,flag,good,said", [(c + (None,))[1:5] for c in CASES], ids=IDS)
def test_good_number_is_taken(inst, tmp_path, argv, flag, good, said):
    rc, err = run(inst, tmp_path, argv, good)
    assert "%s must be" % flag not in err, (rc, err)
    assert rc != 2 or (said and said in err), (rc, err)
