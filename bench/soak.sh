#!/usr/bin/env bash
# soak.sh — a constant issue rate held for a long time, with everything the
# PDFs need measured in the same run (issue 15; docs/outbox.md):
#
#   bench/soak.sh [BUILD_DIR]                 (default: build; builds nothing)
#   RATE=500 SOAK_SECONDS=30 bench/soak.sh    (the short mode)
#
# Load: BUILD_DIR/bench_ratebench, open loop: request i is due at t0 + i/RATE
# and its latency counts from then (no coordinated omission), over TLS with
# keep-alive connections.  Meanwhile bench/soak.py scrapes /metrics every
# second (render backlog, oldest pending render, mode, PDFs by how), reads
# the server's and the renderers' CPU and the server's RSS from /proc, and
# samples PDF availability: it issues SAMPLE_RATE invoices/s of its own and
# polls GET .../pdf until 200 (the first GET is what renders it in on-demand
# mode).  After the load it keeps watching until the backlog is 0 (at most
# DRAIN_SECONDS) to measure the background's catch-up rate.
#
# Output: a markdown table on stdout and in bench/results/soak-latest.md, the
# per-second series in bench/results/soak-latest.tsv and a chart (gnuplot)
# in bench/results/soak-latest.png.
#
# Beside them, bench/results/soak-latest-server.tsv: what the server was
# doing each second (bench/soak_probe.py: commits, batch sizes, commit
# latency, admission limit and 429s, connections opened / refused / cut and
# why, the WAL's size, the kernel's listen-queue and retransmit counters),
# joined with ratebench's second (completions, 429s, transport errors, p99,
# connections the client opened), so a slow second can be explained.
#
# Knobs: RATE (2000), SOAK_SECONDS (600), CONNS (64), SAMPLE_RATE (2),
# WARMUP_BATCH (16: TLS handshakes ratebench starts at once before the run),
# DRAIN_SECONDS (600), SOAK_SERVE_ARGS (extra `fapiao serve` arguments),
# FAPIAO_BENCH_TMPDIR (parent of the data dir; default: BUILD_DIR, on the
# repo's filesystem), FAPIAO_BENCH_KEEP=1 (keep the data dir).
# Not part of `make test`: it takes minutes and wants a quiet machine.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
for f in "$BUILD/fapiao" "$BUILD/bench_ratebench"; do
    [[ -x "$f" ]] || { echo "soak.sh: missing $f (build first: cmake --build $BUILD)" >&2; exit 2; }
done
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
exec "$PY" "$REPO/bench/soak.py" --build "$BUILD" --repo "$REPO"
