#!/usr/bin/env bash
# console.sh — the server CPU one open console overview costs, per poll and
# per minute, next to one issued invoice's (issue 22; docs/console.md
# "Overview").  Phases of MINUTES (default 1) at RATE invoices/s (default
# 5); CALLS (default 200) back-to-back overview calls.  On stdout and in
# bench/results/console-latest.md.
#
#   bench/console.sh [BUILD_DIR]   (default: build, under the repository; builds nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
fapiao="$(realpath "${1:-build}")/fapiao"
/usr/bin/python3 bench/console.py "$fapiao" | tee bench/results/console-latest.md
