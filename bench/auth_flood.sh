#!/usr/bin/env bash
# auth_flood.sh — an unauthenticated flood of bad tokens from 127.0.0.2-9 for
# 10 s (DURATION) beside legitimate issuing, with the default
# authentication-failure budgets (docs/security.md "Authentication
# failures").  Reports legitimate latency alone and under the flood, and the
# audit table's and access log's growth per second, on stdout and in
# bench/results/auth-flood-latest.md.
#
#   bench/auth_flood.sh [BUILD_DIR]        (default: build; builds nothing)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
mkdir -p "$REPO/bench/results"
/usr/bin/python3 "$REPO/bench/auth_flood.py" "$BUILD/fapiao" | tee "$REPO/bench/results/auth-flood-latest.md"
