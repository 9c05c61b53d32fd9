#!/usr/bin/env bash
# audit_verify.sh — how long `fapiao audit verify` takes on a log of N
# records (issue 7: 1,000,000 records in under 5 s).
#
#   bench/audit_verify.sh [BUILD_DIR] [N]     (defaults: build, 1000000; builds nothing)
#
# 1. BUILD_DIR/bench_audit_verify writes N chained records through the
#    store's append API (10,000 per transaction, a signed checkpoint every
#    1,000: N/1000 Ed25519 signatures) into a fresh data dir;
# 2. `fapiao audit verify --data-dir DIR --json` runs RUNS times (default 3;
#    the first with a cold page cache only if run as root and
#    FAPIAO_BENCH_DROP_CACHES=1) and the wall time of each is reported, with
#    the verifier's own figure;
# 3. a one-record change is made and verify must exit 1 naming it (so the
#    time above is of a verification that really checks).
# The summary goes to stdout and bench/results/audit-verify-latest.md.
# FAPIAO_BENCH_TMPDIR: parent of the temp dir (default /tmp);
# FAPIAO_BENCH_KEEP=1 keeps it.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
N=${2:-1000000}
RUNS=${RUNS:-3}
FAPIAO="$BUILD/fapiao"
FILL="$BUILD/bench_audit_verify"
for t in "$FAPIAO" "$FILL"; do
  [ -x "$t" ] || { echo "audit_verify.sh: $t missing (make build)" >&2; exit 2; }
done
command -v sqlite3 >/dev/null || { echo "audit_verify.sh: sqlite3 missing" >&2; exit 2; }

TMP=$(mktemp -d "${FAPIAO_BENCH_TMPDIR:-/tmp}/fapiao-audit-bench.XXXXXX") || exit 1
[ "${FAPIAO_BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
DIR="$TMP/data"

echo "# filling $N records into $DIR"
FILL_OUT=$("$FILL" "$DIR" "$N") || { echo "audit_verify.sh: fill failed" >&2; exit 1; }
echo "$FILL_OUT"
DB_MB=$(du -m "$DIR/fapiao.db" | cut -f1)
CPS=$(sqlite3 "$DIR/fapiao.db" "SELECT count(*) FROM audit_checkpoints")

if [ "${FAPIAO_BENCH_DROP_CACHES:-0}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
  sync && echo 3 >/proc/sys/vm/drop_caches
fi
times=()
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s.%N)
  out=$("$FAPIAO" audit verify --data-dir "$DIR" --json)
  rc=$?
  t1=$(date +%s.%N)
  wall=$(echo "$t1 - $t0" | bc -l)
  own=$(echo "$out" | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p')
  echo "run $i: exit $rc, wall ${wall}s, verifier ${own}s"
  [ "$rc" = 0 ] || { echo "audit_verify.sh: verify did not pass: $out" >&2; exit 1; }
  times+=("$wall")
done
best=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
worst=$(printf '%s\n' "${times[@]}" | sort -n | tail -1)

MID=$((N / 2 + 7))
sqlite3 "$DIR/fapiao.db" "UPDATE audit SET outcome='Created' WHERE id=$MID"
t0=$(date +%s.%N)
out=$("$FAPIAO" audit verify --data-dir "$DIR")
rc=$?
t1=$(date +%s.%N)
twall=$(echo "$t1 - $t0" | bc -l)
case "$out" in *"record $MID (altered)"*) named=yes ;; *) named=no ;; esac
echo "tampered run: exit $rc, names record $MID: $named, wall ${twall}s"
[ "$rc" = 1 ] && [ "$named" = yes ] || { echo "audit_verify.sh: tamper not detected" >&2; exit 1; }

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
SUMMARY=$(cat <<MD
# audit verify benchmark

- records: $N ($CPS signed checkpoints), database ${DB_MB} MB
- fill ($FILL_OUT)
- \`fapiao audit verify\`, $RUNS runs, wall time: best ${best} s, worst ${worst} s (target < 5 s)
- tampered copy (record $MID changed): exit $rc, named: $named, ${twall} s
- machine: $CPU, $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%M:%SZ)
MD
)
echo
echo "$SUMMARY"
mkdir -p "$REPO/bench/results"
echo "$SUMMARY" >"$REPO/bench/results/audit-verify-latest.md"
