#!/usr/bin/env bash
# quick_check.sh — what the store check costs (docs/storage.md): `fapiao
# serve` runs PRAGMA quick_check from the disk at every start, `fapiao check`
# on demand (--full: integrity_check).
#
#   bench/quick_check.sh [BUILD_DIR] [N]     (defaults: build, 1000000; builds nothing)
#
# 1. `fapiao init` makes a data dir; sqlite3 fills it with N invoices (the
#    example request as the stored document, ~1 KB), N audit records (with
#    32-byte hashes) and N done render jobs, with the schema's indexes —
#    the shape of N issued invoices;
# 2. `fapiao check --data-dir DIR --json` runs RUNS times (default 3): each
#    run fsyncs and drops the cached pages of the database and its WAL
#    first, so each reads from the disk (cold, as after a restart); then
#    once with --full;
# 3. `fapiao serve` is started (after a clean stop: the quick_check runs on
#    a thread beside the server) and timed until /healthz answers, and until
#    the check's log line ({"event":"store_check",...}) says how long it took.
# The summary goes to stdout and bench/results/quick-check-latest.md.
# FAPIAO_BENCH_TMPDIR: parent of the temp dir (default /tmp);
# FAPIAO_BENCH_KEEP=1 keeps it.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
N=${2:-1000000}
RUNS=${RUNS:-3}
FAPIAO="$BUILD/fapiao"
[ -x "$FAPIAO" ] || { echo "quick_check.sh: $FAPIAO missing (make build)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "quick_check.sh: needs the sqlite3 CLI" >&2; exit 2; }
TMP=$(mktemp -d "${FAPIAO_BENCH_TMPDIR:-/tmp}/fapiao-qc.XXXXXX")
SRV=
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  [ "${FAPIAO_BENCH_KEEP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT
D="$TMP/data"
"$FAPIAO" init --data-dir "$D" --demo --json >/dev/null || exit 1
DOC=$(tr -d '\n' < "$REPO/examples/invoice.json" | sed "s/'/''/g")
t0=$(date +%s.%N)
sqlite3 "$D/fapiao.db" <<SQL || exit 1
PRAGMA journal_mode=WAL;
PRAGMA synchronous=OFF;
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
INSERT INTO invoices(number, seller_id, serial, request_hash, status, invoice_type, buyer_tax_id,
                     total_with_tax, issued_at, doc)
SELECT printf('26449%015d', i), 1, printf('bench-%d', i), randomblob(32), 'rendered', '02',
       '91310000MA1FL8KQ30', 10600 + i % 1000, 1767225600 + i,
       '{"number":"' || printf('26449%015d', i) || '",' || substr('$DOC', 2) FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
INSERT INTO audit(id, ts, actor, action, target, request_id, client_ip, outcome, prev_hash, hash)
SELECT (SELECT coalesce(max(id), 0) FROM audit) + i, 1767225600 + i, 'demo-client',
       'invoice.issue', printf('26449%015d', i), printf('%020x', i), '127.0.0.1', 'created',
       randomblob(32), randomblob(32) FROM c;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
INSERT INTO jobs(invoice_number, seller_id, client_id, kind, state, attempts, next_at, first_at,
                 updated_at)
SELECT printf('26449%015d', i), 1, 'demo-client', 'render', 'done', 1, 1767225600000 + i,
       1767225600000 + i, 1767225600000 + i FROM c;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
t1=$(date +%s.%N)
size=$(stat -c %s "$D/fapiao.db")
echo "filled $N invoices in $(echo "$t1 - $t0" | bc) s; database $((size >> 20)) MiB"
quick=()
for r in $(seq 1 "$RUNS"); do
  s=$(date +%s.%N)
  out=$("$FAPIAO" check --data-dir "$D" --json) || { echo "check failed: $out" >&2; exit 1; }
  e=$(date +%s.%N)
  ms=$(echo "$out" | sed -n 's/.*"elapsed_ms":\([0-9]*\).*/\1/p')
  quick+=("$ms")
  echo "quick_check run $r: ${ms} ms (wall $(echo "($e - $s) * 1000 / 1" | bc) ms) $(echo "$out" | sed -n 's/.*"integrity":"\([^"]*\)".*/\1/p')"
done
s=$(date +%s.%N)
out=$("$FAPIAO" check --data-dir "$D" --full --json) || { echo "full check failed: $out" >&2; exit 1; }
full=$(echo "$out" | sed -n 's/.*"elapsed_ms":\([0-9]*\).*/\1/p')
echo "integrity_check (--full): ${full} ms"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
s=$(date +%s%N)
"$FAPIAO" serve --data-dir "$D" --listen "127.0.0.1:$port" >"$TMP/serve.log" 2>&1 &
SRV=$!
until curl -sk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
  kill -0 "$SRV" 2>/dev/null || { echo "serve exited:"; cat "$TMP/serve.log"; exit 1; }
  sleep 0.05
done
e=$(date +%s%N)
start_ms=$(( (e - s) / 1000000 ))
echo "fapiao serve start until /healthz (check beside the server): ${start_ms} ms"
until grep -q '"event":"store_check"\|"event":"store_failstop"' "$TMP/serve.log"; do
  kill -0 "$SRV" 2>/dev/null || break
  sleep 0.5
done
bg_ms=$(sed -n 's/.*"event":"store_check".*"elapsed_ms":\([0-9]*\).*/\1/p' "$TMP/serve.log")
echo "start-up quick_check beside the server: ${bg_ms:-?} ms"
OUT="$REPO/bench/results/quick-check-latest.md"
{
  echo "# Store check cost ($(date -u +%Y-%m-%d), revision $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null))"
  echo
  echo "$N invoices (+ $N audit records, $N jobs), database $((size >> 20)) MiB, $(nproc) CPUs."
  echo "Every run fsyncs and drops the database's cached pages first (reads from the disk)."
  echo
  echo "| what | ms |"
  echo "|---|---|"
  for r in "${!quick[@]}"; do echo "| \`fapiao check\` (quick_check) run $((r + 1)) | ${quick[$r]} |"; done
  echo "| \`fapiao check --full\` (integrity_check) | $full |"
  echo "| \`fapiao serve\` after a clean stop: start until /healthz | $start_ms |"
  echo "| its quick_check beside the server (log \`store_check\`) | ${bg_ms:-?} |"
} > "$OUT"
echo "wrote $OUT"
