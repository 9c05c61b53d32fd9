#!/usr/bin/env bash
# Runs every test against the optimised build ($1) and the ASan+UBSan build
# ($2): ctest (unit tests and fuzz-corpus replays), then the black-box suite
# against the real binary.  Exits non-zero on the first failing stage and
# ends with one "N passed, N failed" line for the whole run.
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}
fuzz=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0

passed=0 failed=0
stage() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "=== FAILED: $name"; fi
}

format_check() {
  # tests/data holds deliberately odd fixtures (the lint's planted files)
  cd "$root" && git ls-files '*.c' '*.h' ':!tests/data' | xargs clang-format --dry-run --Werror
}
stage "format (.clang-format; make format fixes)" format_check
stage "ctest ($build)" ctest --test-dir "$root/$build" --output-on-failure
stage "ctest ($asan, ASan+UBSan)" ctest --test-dir "$root/$asan" --output-on-failure
# The black-box suite on the ASan build runs in the background while the
# optimised build's suite and the fault zoo run: both suites spend most of
# their time waiting on servers, and every test already has to pass beside
# another `make test` (README "Tests"), which is the same contention.  Its
# output is printed, and its stage counted, once it has finished.
asan_e2e() {
  env FAPIAO_BIN="$root/$asan/fapiao" FAPIAO_SANITIZED=1 /usr/bin/python3 -m pytest -q \
    -p no:cacheprovider "$root/tests/e2e"
}
asan_log=$(mktemp)
asan_e2e >"$asan_log" 2>&1 &
asan_pid=$!
asan_wait() {
  local rc=0
  wait "$asan_pid" || rc=$?
  cat "$asan_log"
  rm -f "$asan_log"
  return $rc
}
stage "e2e ($build)" env FAPIAO_BIN="$root/$build/fapiao" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/e2e"
# The fault zoo (tests/faults): every doctor finding built for real, and the
# curl table of docs/doctor.md checked against it; optimised build only.
stage "faults ($build)" env FAPIAO_BIN="$root/$build/fapiao" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/faults"
stage "e2e ($asan, ASan+UBSan; ran beside the two stages above)" asan_wait
# Recovery and failover drills (tests/drills): real PostgreSQL clusters,
# pgBackRest, fapiao nodes; optimised build only, once.
stage "drills ($build)" env FAPIAO_BIN="$root/$build/fapiao" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/drills"

# Real fuzzing, bounded: every target for FUZZ_SECONDS on a scratch copy of
# its corpus (the checked-in corpus only grows by hand, with minimised inputs).
# FUZZ_JOBS targets run at once (default 2: the CI machine's cores); the
# results are printed in the targets' order once all have finished.
fuzz_one() {
  local bin=$1 scratch=$2 name
  name=$(basename "$bin")
  cp -r "$root/fuzz/corpus/$name" "$scratch/$name"
  if (cd "$scratch" && "$bin" -max_total_time="${FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
        "$scratch/$name" >"$scratch/$name.log" 2>&1); then
    echo ok >"$scratch/$name.rc"
  else
    echo failed >"$scratch/$name.rc"
  fi
}
fuzz_all() {
  local scratch rc=0 bins=() running=0
  scratch=$(mktemp -d)
  for bin in "$root/$fuzz"/fuzz_*; do
    case $bin in *_replay) continue ;; esac
    [ -x "$bin" ] || continue
    bins+=("$bin")
    if [ "$running" -ge "${FUZZ_JOBS:-2}" ]; then wait -n; running=$((running - 1)); fi
    fuzz_one "$bin" "$scratch" &
    running=$((running + 1))
  done
  wait
  for bin in "${bins[@]}"; do
    local name; name=$(basename "$bin")
    if [ "$(cat "$scratch/$name.rc" 2>/dev/null)" = ok ]; then
      echo "fuzz $name: $(grep -o 'Done [0-9]* runs' "$scratch/$name.log")"
    else
      echo "fuzz $name: FAILED"; tail -40 "$scratch/$name.log"; rc=1
      cp "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$root/$fuzz/" 2>/dev/null
    fi
  done
  rm -rf "$scratch"
  return $rc
}
if [ -n "$fuzz" ]; then stage "libFuzzer (${FUZZ_SECONDS:-20}s per target)" fuzz_all; fi

echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
