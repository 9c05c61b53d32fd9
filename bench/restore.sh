#!/usr/bin/env bash
# restore.sh — backup and restore figures (issue 18; docs/recovery.md):
#
#   bench/restore.sh [BUILD_DIR] [N]     (defaults: build, 1000000; builds nothing)
#
# 1. a fresh data dir served with --archive SET --archive-interval 10;
#    N invoices issued through HTTPS by bench_ratebench (FILL_RATE/s);
# 2. issue latency at a steady STEADY_RATE/s before a backup, then the same
#    load while `fapiao backup create` runs (the stall: p99 during vs before;
#    the WAL the backup's read transaction pinned);
# 3. backup time, compressed size; verify time; restore time (RTO) of the
#    archive to the latest state (base + log) and of the full;
# 4. the archive lag under a steady LAG_RATE/s (default 2000), sampled from
#    /metrics every second.
# Not in make test.  The machine may be shared: the figures say what ran.
# Results: stdout and bench/results/restore-latest.md (RESTORE_OUT=FILE elsewhere,
# e.g. for a small-N smoke run: RESTORE_OUT=/tmp/r.md bench/restore.sh build 3000).
# PG=1: the PostgreSQL variant (pgBackRest backup, verify, restore; the
# archive lag from pg_stat_archiver): bench/restore_pg.py, same arguments.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
[ "${PG:-0}" = 1 ] && exec /usr/bin/python3 "$REPO/bench/restore_pg.py" "$@"
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
N=${2:-1000000}
FILL_RATE=${FILL_RATE:-6000}
STEADY_RATE=${STEADY_RATE:-500}
LAG_RATE=${LAG_RATE:-2000}
LAG_SECONDS=${LAG_SECONDS:-20}
FILL_ROUNDS=${FILL_ROUNDS:-100}
FAPIAO="$BUILD/fapiao"
RB="$BUILD/bench_ratebench"
for t in "$FAPIAO" "$RB"; do
  [ -x "$t" ] || { echo "restore.sh: $t missing (make build)" >&2; exit 2; }
done
TMP=$(mktemp -d "${FAPIAO_BENCH_TMPDIR:-/tmp}/fapiao-restore-bench.XXXXXX") || exit 1
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; [ "${FAPIAO_BENCH_KEEP:-0}" = 1 ] || rm -rf "$TMP"; }
trap cleanup EXIT
D="$TMP/data"; SET="$TMP/archive"; SET2="$TMP/backups"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

INIT=$("$FAPIAO" init --demo --data-dir "$D" --json) || exit 1
jf() { echo "$INIT" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
CA=$(jf ca_cert); CID=$(jf client_id); SEC=$(jf client_secret)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="https://127.0.0.1:$PORT"
# one credential sends all the load: no per-client limit (1000/s by default,
# which shed the 2000/s of the lag run and most of the fill), as bench/issue.sh;
# the adaptive concurrency limit stays on (its 429s count as refused)
FAPIAO_CONFIG=/dev/null "$FAPIAO" serve --data-dir "$D" --listen "127.0.0.1:$PORT" \
  --archive "$SET" --archive-interval 10 --client-rate 0 --max-connections-per-ip 512 \
  ${SERVE_EXTRA:-} >"$TMP/serve.log" 2>&1 &
PID=$!
for i in $(seq 1 100); do curl -sf --cacert "$CA" "$BASE/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sS --cacert "$CA" -H 'Content-Type: application/json' \
  -d "{\"client_id\":\"$CID\",\"client_secret\":\"$SEC\"}" "$BASE/v1/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
rb() { # rate duration prefix
  "$RB" --url "$BASE/v1/invoices" --token "$TOKEN" --body "$REPO/examples/invoice.json" \
    --cacert "$CA" --rate "$1" --duration "$2" --key-prefix "$3" --connections 32 \
    --warmup-url "$BASE/healthz" 2>/dev/null | grep '^ratebench rate='
}
metric() { curl -sf --cacert "$CA" "$BASE/metrics" | sed -n "s/^$1 //p"; }

stored() { python3 -c "import sqlite3; print(sqlite3.connect('file:$D/fapiao.db?mode=ro',uri=True).execute('select count(*) from invoices').fetchone()[0])"; }
# The fill runs until N are stored (the server may take fewer than
# FILL_RATE/s: each round asks for what is still missing), at most
# FILL_ROUNDS rounds of at most 60 s.
echo "# filling $N invoices at up to $FILL_RATE/s"
t0=$(now); HAVE=0; part=0
while [ "$HAVE" -lt "$N" ] && [ "$part" -lt "$FILL_ROUNDS" ]; do
  left=$((N - HAVE))
  chunk=$(( left > FILL_RATE * 60 ? FILL_RATE * 60 : left ))
  dur=$(( (chunk + FILL_RATE - 1) / FILL_RATE ))
  rb "$FILL_RATE" "$dur" "fill$part" >/dev/null
  part=$((part + 1)); HAVE=$(stored)
  echo "  round $part: $HAVE stored"
done
FILL_S=$(secs "$t0" "$(now)")
DB_MB=$(du -m "$D/fapiao.db" | cut -f1)
echo "invoices stored: $HAVE in $FILL_S s, database $DB_MB MB"
[ "$HAVE" -ge "$N" ] || echo "restore.sh: only $HAVE of $N stored after $FILL_ROUNDS rounds" >&2

echo "# steady $STEADY_RATE/s without a backup"
BEFORE=$(rb "$STEADY_RATE" 10 before)
echo "$BEFORE"
echo "# the same load with fapiao backup create running"
rb "$STEADY_RATE" 12 during >"$TMP/during.out" &
RBP=$!
sleep 1
t0=$(now); BK=$("$FAPIAO" backup create --data-dir "$D" --to "$SET2"); t1=$(now)
wait $RBP
DURING=$(cat "$TMP/during.out")
BK_S=$(secs "$t0" "$t1")
echo "$BK"; echo "$DURING"
t0=$(now); "$FAPIAO" backup verify --from "$SET2" >/dev/null || echo "verify FAILED"; t1=$(now)
VER_S=$(secs "$t0" "$t1")

echo "# archive lag at $LAG_RATE/s for ${LAG_SECONDS}s"
rb "$LAG_RATE" "$LAG_SECONDS" lag >"$TMP/lag.out" &
RBP=$!
MAXLAG=0
for i in $(seq 1 $((LAG_SECONDS + 2))); do
  l=$(metric fapiao_archive_lag_seconds); l=${l:-0}
  [ "$l" -gt "$MAXLAG" ] && MAXLAG=$l
  sleep 1
done
wait $RBP
LAG_RB=$(cat "$TMP/lag.out")
sleep 11 # one more round: everything in the archive
t0=$(now); R1=$("$FAPIAO" backup restore --from "$SET" --to "$TMP/r-archive" --to-latest 2>&1 | tail -1); t1=$(now)
RTO_ARCH=$(secs "$t0" "$t1")
t0=$(now); R2=$("$FAPIAO" backup restore --from "$SET2" --to "$TMP/r-full" --to-latest 2>&1 | tail -1); t1=$(now)
RTO_FULL=$(secs "$t0" "$t1")
echo "$R1"; echo "$R2"

lat() {
  echo "$(echo "$1" | field ok_p50_ms) / $(echo "$1" | field ok_p99_ms) / $(echo "$1" | field ok_max_ms);" \
       "$(echo "$1" | field errors) ($(echo "$1" | field shed) / $(echo "$1" | field other) /" \
       "$(echo "$1" | field transport) / $(echo "$1" | field unfinished)) of $(echo "$1" | field sent)"
}
OUT=${RESTORE_OUT:-$REPO/bench/results/restore-latest.md}
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<MD
# bench/restore.sh — $(date -u +%Y-%m-%dT%H:%MZ), revision $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)

| what | figure |
|---|---|
| invoices stored (N=$N) / database size / fill time | $HAVE / $DB_MB MB / $FILL_S s |
| backup create (one-step sqlite3_backup in a read transaction, gzip -1, SHA-256) | $BK_S s — $(echo "$BK" | sed 's/^backed up //') |
| issue latency at $STEADY_RATE/s, no backup: ok p50 / p99 / max ms; not 201 (shed 429 / other / transport / unfinished) | $(lat "$BEFORE") |
| the same during the backup (12 s run, backup from second 1) | $(lat "$DURING") |
| backup verify (restore to a temp dir, integrity_check, audit verify, counts) | $VER_S s |
| restore --to-latest of the archive (base + log) = RTO | $RTO_ARCH s — $R1 |
| restore --to-latest of the full | $RTO_FULL s — $R2 |
| archive lag at $LAG_RATE/s (interval 10 s): max fapiao_archive_lag_seconds | $MAXLAG s; load achieved $(echo "$LAG_RB" | field rate)/s, p99 $(echo "$LAG_RB" | field ok_p99_ms) ms, errors $(echo "$LAG_RB" | field errors) |
MD
cat "$OUT"
