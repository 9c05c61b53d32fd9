#!/usr/bin/env bash
# ha.sh — the HA benchmark (issue 17; docs/ha.md §9), in one run, side by side:
# durable invoices/s and p99 at a steady 2,000/s for one node on SQLite, one
# node on PostgreSQL with a synchronous standby, two nodes on PostgreSQL behind
# HAProxy; and the failover time of drill 2 (goal <= 30 s).
#
#   bench/ha.sh [BUILD_DIR] [PHASES...]     phases: sqlite pg1 pg2 failover
#
# Needs BUILD_DIR/fapiao and BUILD_DIR/bench_ratebench, postgresql-15,
# postgresql-15-auto-failover, pg-auto-failover-cli and haproxy
# (scripts/install-deps.sh --test).  Everything runs on loopback, on free
# ports, in a temporary directory removed at the end.  Run it on a quiet
# machine: the figures are the machine's, and a busy one halves them.
# Environment: RATE (2000), DURATION (20), CONNS (64), FAPIAO_BENCH_SERVE_EXTRA.
# Writes bench/results/ha-latest.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
shift || true
case $build in /*) ;; *) build=$root/$build ;; esac
exec /usr/bin/python3 "$root/bench/ha.py" "$build" "$@"
