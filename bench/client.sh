#!/usr/bin/env bash
# client.sh — libfapiao-client's two figures of issue 21 (docs/client.md):
#
#   bench/client.sh overhead [BUILD_DIR]   the library over raw libcurl for a
#       successful call (GET /healthz, authenticated, one kept-alive TLS
#       connection, paced at 2,000 calls/s; bench/client_overhead.c): wall
#       and client-CPU time per call, goal <= 5 %.  A fresh demo server on a
#       free loopback port; removed on exit.
#   bench/client.sh chaos [BUILD_DIR]      Done-when 1 in full: 10,000
#       invoices through the fault-injecting proxy with a 30 s outage, two
#       server kill -9s and one of two addresses down
#       (tests/e2e/test_client_chaos.py with FAPIAO_CHAOS_N=10000
#       FAPIAO_CHAOS_OUTAGE_S=30).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WHAT=${1:-}
BUILD=${2:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
say() { printf '[client.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

case "$WHAT" in
chaos)
  FAPIAO_CHAOS_N=${FAPIAO_CHAOS_N:-10000} FAPIAO_CHAOS_OUTAGE_S=${FAPIAO_CHAOS_OUTAGE_S:-30} \
    FAPIAO_BIN="$BUILD/fapiao" exec /usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
    "$REPO/tests/e2e/test_client_chaos.py"
  ;;
overhead)
  [[ -x "$BUILD/bench_client_overhead" ]] || { say "missing $BUILD/bench_client_overhead (make build)"; exit 2; }
  tmp=$(mktemp -d)
  trap '[[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
  "$BUILD/fapiao" init --demo --data-dir "$tmp/d" --json >"$tmp/cred.json" 2>/dev/null || { say "init failed"; exit 1; }
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  FAPIAO_CONFIG=/dev/null "$BUILD/fapiao" serve --data-dir "$tmp/d" --listen "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$tmp/cred.json")
  secret=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$tmp/cred.json")
  "$BUILD/bench_client_overhead" "https://127.0.0.1:$port" "$id" "$secret" "$tmp/d/tls/server.crt" 2000 7
  ;;
*)
  echo "usage: bench/client.sh overhead|chaos [BUILD_DIR]" >&2
  exit 2
  ;;
esac
