#!/usr/bin/env bash
# client.sh — libfapiao-client's two figures of issue 21 (docs/client.md):
#
#   bench/client.sh overhead [BUILD_DIR]   the library over raw libcurl for a
#       successful call (GET /healthz, authenticated, one kept-alive TLS
#       connection, paced at 2,000 calls/s; bench/client_overhead.c): wall
#       and client-CPU time per call, goal <= 5 %.  A fresh demo server on a
#       free loopback port; removed on exit.
#   bench/client.sh instr [BUILD_DIR]      the same overhead as a count that
#       does not depend on the machine's load: instructions per call of the
#       client (callgrind, 2,000 calls each side, FAPIAO_INSTR_CALLS to
#       change), raw vs library (as it comes, and without its User-Agent
#       line), and the overhead in %.  Fails when a side opened a new
#       connection during its calls.  Needs valgrind.
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
overhead | instr)
  [[ -x "$BUILD/bench_client_overhead" ]] || { say "missing $BUILD/bench_client_overhead (make build)"; exit 2; }
  tmp=$(mktemp -d)
  trap '[[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
  "$BUILD/fapiao" init --demo --data-dir "$tmp/d" --json >"$tmp/cred.json" 2>/dev/null || { say "init failed"; exit 1; }
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  slow=() # under valgrind the client's first handshake and its pauses take seconds
  [[ "$WHAT" == instr ]] && slow=(--handshake-timeout-ms 60000 --header-timeout-ms 60000 --idle-timeout 600)
  FAPIAO_CONFIG=/dev/null "$BUILD/fapiao" serve --data-dir "$tmp/d" --listen "127.0.0.1:$port" "${slow[@]}" \
    >"$tmp/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$tmp/cred.json")
  secret=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$tmp/cred.json")
  args=("https://127.0.0.1:$port" "$id" "$secret" "$tmp/d/tls/server.crt")
  if [[ "$WHAT" == overhead ]]; then
    "$BUILD/bench_client_overhead" "${args[@]}" 2000 7
    exit
  fi
  command -v valgrind >/dev/null || { say "instr needs valgrind (callgrind)"; exit 2; }
  calls=${FAPIAO_INSTR_CALLS:-2000}
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    --toggle-collect=raw_calls --toggle-collect=lib_calls --toggle-collect=lib_calls_ua \
    "$BUILD/bench_client_overhead" "${args[@]}" "$calls" 1 instr 2>"$tmp/vg.log" ||
    { cat "$tmp/vg.log" >&2; say "the count run failed"; exit 1; }
  [[ -n "${FAPIAO_INSTR_KEEP:-}" ]] && cp "$tmp/cg.out" "$FAPIAO_INSTR_KEEP" && say "profile kept in $FAPIAO_INSTR_KEEP"
  # inclusive instructions of each toggled function, per call
  callgrind_annotate --inclusive=yes "$tmp/cg.out" 2>/dev/null | awk -v n="$calls" '
    /[: ]raw_calls( |$)/ && !raw { gsub(",", "", $1); raw = $1 }
    /[: ]lib_calls( |$)/ && !lib { gsub(",", "", $1); lib = $1 }
    /[: ]lib_calls_ua( |$)/ && !ua { gsub(",", "", $1); ua = $1 }
    END {
      if (!raw || !lib || !ua) { print "the counted functions are not in the profile" > "/dev/stderr"; exit 1 }
      printf "instructions per call: raw libcurl %.0f, library %.0f, overhead %+.1f %% (goal <= 5 %%)\n",
        raw / n, lib / n, (lib - raw) / raw * 100
      printf "  library with a User-Agent line set (libfapiao-client/1): %.0f, overhead %+.1f %%\n",
        ua / n, (ua - raw) / raw * 100
    }' || exit 1
  ;;
*)
  echo "usage: bench/client.sh overhead|instr|chaos [BUILD_DIR]" >&2
  exit 2
  ;;
esac
