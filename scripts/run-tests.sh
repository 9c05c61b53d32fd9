#!/usr/bin/env bash
# Runs every test against the optimised build ($1) and the ASan+UBSan build
# ($2): ctest (unit tests and fuzz-corpus replays), then the black-box suite
# against the real binary.  Exits non-zero on the first failing stage and
# ends with one "N passed, N failed" line for the whole run.
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}
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

stage "ctest ($build)" ctest --test-dir "$root/$build" --output-on-failure
stage "ctest ($asan, ASan+UBSan)" ctest --test-dir "$root/$asan" --output-on-failure
stage "e2e ($build)" env FAPIAO_BIN="$root/$build/fapiao" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/e2e"
stage "e2e ($asan, ASan+UBSan)" env FAPIAO_BIN="$root/$asan/fapiao" FAPIAO_SANITIZED=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/e2e"

echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
