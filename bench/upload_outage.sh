#!/usr/bin/env bash
# upload_outage.sh — the tax platform's upload path at full size under its
# faults (issue 20, Done-when 1; docs/upstream.md "Upload pipeline"):
#
#   bench/upload_outage.sh [BUILD_DIR]      (default: build; builds nothing)
#   INVOICES=200 OUTAGE_S=10 bench/upload_outage.sh   (a short mode)
#
# `fapiao serve` with [upstream] pointed at the simulator
# (tests/upstream-sim/sim.py) while INVOICES (1,000) invoices are issued at a
# steady RATE (8/s) over HTTPS; meanwhile the simulator injects timeouts
# after storing (QDFPSC and CXQDFPSCJG), 5xx, resets, an sllsh it does not
# know (from 2 s on), then an outage: every connection reset for OUTAGE_S
# (60) seconds, ended by the simulator itself.
# bench/upload_outage.py asserts from the simulator's log (the same
# tests/upstream-sim/simlog.py check_log the e2e test uses) that every
# invoice ends accepted exactly once, no duplicate was stored, none was sent
# again after the platform accepted it and none without a CXQDFPSCJG query
# for its earlier sllsh; and that every issue during the outage was 201.
# It reports issue latency during the outage vs outside, the time from the
# outage's end until its backlog was cleared and until the backlog gauge
# read 0 and until the breaker last read open, and the upload backlog and
# oldest age (scraped from /metrics each second), on stdout and in
# bench/results/upload-outage-latest.md (OUT names another file), with the
# per-second series in upload-outage-latest.tsv and every request the
# simulator saw in upload-outage-latest-requests.tsv.
#
# Knobs: INVOICES, RATE, OUTAGE_S, OUTAGE_AT (40: seconds into the run),
# DRAIN_SECONDS (900), UPLOAD_CONF (extra [upstream] lines, e.g.
# "upload-backoff-max-ms = 10000"; default: the shipped defaults).
# Exit 0 when every assertion held, 1 otherwise.  Not part of `make test`
# (it takes minutes); tests/e2e/test_upload.py runs the same path small.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
[[ -x "$BUILD/fapiao" ]] || { echo "upload_outage.sh: missing $BUILD/fapiao (build first)" >&2; exit 2; }
mkdir -p "$REPO/bench/results"
exec /usr/bin/python3 "$REPO/bench/upload_outage.py" --bin "$BUILD/fapiao" --repo "$REPO"
