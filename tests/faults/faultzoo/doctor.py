"""Runs one staged fault through `fapiao doctor` (text and --json) and
through curl, checks the doctor's verdict and records both answers for the
curl comparison table of docs/doctor.md.

    check("refused port", "TCP_REFUSED", "https://127.0.0.1:%d" % port,
          "--timeout", "3")

checks exit code, verdict code, article, the failing phase and (in --json)
per-phase timings, then runs

    curl -sS -o /dev/null -w %{http_code} --max-time T [--cacert …] URL/readyz

(POST /v1/token with --client-id, GET /v1/invoices with --token: the request
a client would make) with the same environment and command prefix (a
network namespace, faketime), and stores an Outcome under the fault's name.
"""
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field

from . import BIN, REPO, SLOW

PHASES = ("local", "dns", "tcp", "tls", "http", "api")
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")
RUN_TIMEOUT = 60 * SLOW
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")



@dataclass(frozen=True)
class Finding:
    code: str
    layer: str     # "tcp", … ("none" for OK, "server" for alerts)
    exit: int
    severity: str  # "error", "warn", "info"
    zh: str
    en: str


def findings_table():
    """The rows of src/doctor/findings.c, in order: code -> Finding."""
    text = (REPO / "src" / "doctor" / "findings.c").read_text()
    string = r'"((?:[^"\\]|\\.)*)"'
    rows = re.findall(r'\{"([A-Z][A-Z0-9_]*)",\s*FP_LAYER_([A-Z]+),\s*(\d+),\s*FP_SEV_([A-Z]+),\s*'
                      + string + r',\s*' + string + r'\}', text)
    starts = re.findall(r'^\s*\{"[A-Z][A-Z0-9_]*",', text, re.M)
    assert len(rows) > 30 and len(rows) == len(starts), \
        "cannot parse every row of the table of src/doctor/findings.c"
    sev = {"ERROR": "error", "WARN": "warn", "INFO": "info"}
    return {c: Finding(c, l.lower(), int(e), sev[s], zh, en) for c, l, e, s, zh, en in rows}


FINDINGS = findings_table()


def covers(*codes):
    """Tags a test with the finding codes it produces; test_zoo_coverage.py reads
    these tags (statically) to prove every code of findings.c has a fault."""
    def tag(fn):
        fn.zoo_codes = codes
        return fn
    return tag


# ---- running the doctor -----------------------------------------------------
class Run:
    def __init__(self, args, r, elapsed):
        self.args = args
        self.rc = r.returncode
        self.out = r.stdout.decode("utf-8", errors="replace")
        self.err = r.stderr.decode("utf-8", errors="replace")
        self.elapsed = elapsed
        self.doc = None
        if "--json" in args:
            try:
                self.doc = json.loads(self.out)
            except ValueError as e:
                raise AssertionError("--json output does not parse (%s), rc %d:\nstdout: %s\n"
                                     "stderr: %s" % (e, self.rc, self.out[:3000], self.err[:2000]))

    def __repr__(self):
        return "doctor %s -> rc %d in %.2fs\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.args), self.rc, self.elapsed, self.out[-4000:], self.err[-2000:])


def clean_env(env=None):
    e = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    e.update(env or {})
    return e


def doctor(*args, env=None, prefix=(), timeout=RUN_TIMEOUT):
    args = [str(a) for a in args]
    t0 = time.monotonic()
    try:
        r = subprocess.run(list(prefix) + [BIN, "doctor"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                           env=clean_env(env), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("fapiao doctor %s did not finish within %ss" % (args, timeout))
    run = Run(args, r, time.monotonic() - t0)
    assert run.rc >= 0, "doctor killed by signal %d: %r" % (-run.rc, run)
    for marker in SANITIZER_MARKERS:
        assert marker not in run.err, "sanitizer report: %r" % run
    return run


# ---- the JSON document (include/fapiao/doctor.h) ---------------------------
def verdict(doc):
    return doc["verdict"]


def verdict_code(doc):
    return doc["verdict"]["code"]


def phases(doc):
    return doc["phases"]


def phase_status(doc, name):
    for p in doc["phases"]:
        if p["name"] == name:
            return p["status"]
    return None


def warning_codes(doc):
    return [w["code"] for w in doc.get("warnings") or []]


def finding_phase(doc, code, severity=None):
    for f in doc.get("findings") or []:
        if f["code"] == code and (severity is None or f["severity"] == severity):
            return f["phase"]
    return None


def expect(code, *args, env=None, phase=None, prefix=(), timeout=RUN_TIMEOUT, warning=None):
    """Runs the doctor as text, then --json; checks the verdict code, the exit
    code, the article, that the report ends with the verdict, and that the
    finding sits on the expected phase, which failed.  With warning=W the
    verdict is OK (exit 0) and W is among the warnings, on phase."""
    text = doctor(*args, env=env, prefix=prefix, timeout=timeout)
    js = doctor(*(list(args) + ["--json"]), env=env, prefix=prefix, timeout=timeout)
    got = verdict_code(js.doc)
    assert got == code, "expected verdict %s, got %s: %r" % (code, got, js)
    v = verdict(js.doc)
    f = FINDINGS[code]
    want_rc = f.exit
    assert v["layer"] == f.layer and v["exit_code"] == f.exit, (v, f)
    assert js.rc == want_rc == js.doc["exit_code"], "exit %d, expected %d: %r" % (
        js.rc, want_rc, js)
    assert text.rc == want_rc, "text run: exit %d, expected %d: %r" % (text.rc, want_rc, text)
    assert v["article"] == "kb/%s.md" % code, v
    assert code in text.out and "kb/%s.md" % code in text.out, "text report: %r" % text
    tail = "\n".join(text.out.strip().splitlines()[-12:])
    assert code in tail, "the report does not END with the verdict %s: %r" % (code, text)
    for p in phases(js.doc):
        assert isinstance(p["duration_ms"], (int, float)) and p["duration_ms"] >= 0, p
    assert [p["name"] for p in phases(js.doc)] == list(PHASES), phases(js.doc)
    if code != "OK":
        fp = finding_phase(js.doc, code, "error")
        if phase is not None:
            assert fp == phase, "%s found on phase %r, expected %r: %r" % (code, fp, phase, js)
        assert phase_status(js.doc, fp) == "fail", "phase %s should fail: %s" % (
            fp, json.dumps(phases(js.doc), ensure_ascii=False)[:3000])
        # later phases did not run (the clock is checked last, against the
        # Date of whatever answer came, so CLOCK_SKEW follows a full run)
        for p in phases(js.doc)[PHASES.index(fp) + 1:] if fp != "local" else []:
            assert p["status"] in ("skipped", "fail"), p
    else:
        failed = [p for p in phases(js.doc) if p["status"] == "fail"]
        assert not failed, "healthy verdict but failing phases: %r" % failed
    if warning is not None:
        assert warning in warning_codes(js.doc), "warning %s missing: %r" % (warning, js)
        assert warning in text.out, text
        if phase is not None:
            assert finding_phase(js.doc, warning) == phase, js
    return text, js


# ---- curl -------------------------------------------------------------------
CURL_MEANING = {
    0: "success",
    5: "couldn't resolve proxy",
    6: "couldn't resolve host",
    7: "couldn't connect",
    28: "timeout",
    35: "TLS handshake error",
    52: "empty reply",
    56: "receive error",
    60: "certificate not verified",
    91: "certificate status invalid",
}


def _opt(args, name):
    args = list(args)
    return args[args.index(name) + 1] if name in args else None


def curl(url, doctor_args, env=None, prefix=(), max_time=None):
    """The request a client would make for this doctor run; returns
    (curl exit code, HTTP status or 0, stderr)."""
    t = max_time or float(_opt(doctor_args, "--timeout") or 5)
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "%g" % t]
    for opt in ("--cacert", "--resolve"):
        if _opt(doctor_args, opt):
            cmd += [opt, _opt(doctor_args, opt)]
    if _opt(doctor_args, "--tls-max"):  # an old client stack (test_zoo_client_tls.py)
        cmd += ["--tlsv1.0", "--tls-max", _opt(doctor_args, "--tls-max")]
    for flag, cflag in (("--ipv4", "-4"), ("--ipv6", "-6")):
        if flag in doctor_args:
            cmd.append(cflag)
    base = url.rstrip("/")
    if _opt(doctor_args, "--client-id"):
        body = json.dumps({"client_id": _opt(doctor_args, "--client-id"),
                           "client_secret": _opt(doctor_args, "--client-secret")})
        cmd += ["-H", "Content-Type: application/json", "--data-binary", body,
                base + "/v1/token"]
    elif _opt(doctor_args, "--token"):
        cmd += ["-H", "Authorization: Bearer " + _opt(doctor_args, "--token"),
                base + "/v1/invoices?limit=1"]
    else:
        cmd.append(base + "/readyz")
    r = subprocess.run(list(prefix) + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=clean_env(env), timeout=t + 30 * SLOW)
    out = r.stdout.decode().strip()
    return r.returncode, int(out) if out.isdigit() else 0, r.stderr.decode(errors="replace")


# ---- the record ---------------------------------------------------------------
@dataclass
class Outcome:
    fault: str
    finding: str          # the verdict's code, or the expected warning on an OK verdict
    warning: bool         # finding is a warning (verdict OK, exit 0)
    exit: int
    phase: str
    curl_rc: int
    curl_status: int
    curl_alt: tuple = field(default_factory=tuple)  # other exit codes a race may give


RESULTS = {}  # fault name -> Outcome, filled as the zoo runs


def check(fault, code, url, *args, env=None, phase=None, prefix=(), curl_prefix=None,
          with_curl=True, curl_alt=(), curl_max_time=None, warning=None, timeout=RUN_TIMEOUT):
    """expect() on `fapiao doctor URL ARGS`, then curl on the same fault
    (unless with_curl is false: then the fault has no row in the table)."""
    text, js = expect(code, url, *args, env=env, phase=phase, prefix=prefix, timeout=timeout,
                      warning=warning)
    if with_curl:
        rc, status, err = curl(url, args, env=env,
                               prefix=prefix if curl_prefix is None else curl_prefix,
                               max_time=curl_max_time)
        if curl_alt:
            assert rc in curl_alt, "curl exit %d, expected one of %r: %s" % (rc, curl_alt, err)
        finding = warning or code
        fp = finding_phase(js.doc, finding) or "-"
        assert fault not in RESULTS or RESULTS[fault].finding == finding, fault
        RESULTS[fault] = Outcome(fault, finding, bool(warning), js.rc, fp, rc, status,
                                 tuple(sorted(curl_alt)))
    return text, js
