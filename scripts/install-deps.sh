#!/usr/bin/env bash
# Installs the Debian 12 packages fapiao needs for building, running and testing,
# only those not yet installed. Non-interactive; uses sudo when not root.
# The list is the single source of truth for dependencies (see docs/architecture.md §6).
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config
            libmicrohttpd-dev libgnutls28-dev nettle-dev libsqlite3-dev libcjson-dev libxml2-dev
            libcurl4-gnutls-dev libc-ares-dev
            libdeflate-dev zlib1g-dev libfreetype-dev libqrencode-dev fonts-wqy-microhei
            libinih-dev libsystemd-dev libpq-dev libgcrypt20-dev duktape-dev libargon2-dev
            libjs-chart.js)
test_pkgs=(curl python3 python3-pytest wrk nghttp2-client sqlite3 gnutls-bin
           clang clang-format libclang-rt-14-dev libxml2-utils openssl
           poppler-utils faketime nftables iproute2 prometheus prometheus-alertmanager zbar-tools
           testssl.sh haproxy qpdf gnuplot-nox
           dpkg-dev debhelper help2man lintian fakeroot logrotate strace postgresql-15 pgbackrest
           postgresql-15-auto-failover pg-auto-failover-cli python3-cryptography
           chromium chromium-driver python3-selenium)

# Redocly CLI for the OpenAPI lint (tests/e2e/test_openapi.py), pinned by
# tests/openapi/package-lock.json and installed into that folder, never
# globally; needs Node >= 20.19 and npm on the machine.
npm_test_tools() {
  local dir; dir="$(cd "$(dirname "$0")/.." && pwd)/tests/openapi"
  [ -x "$dir/node_modules/.bin/redocly" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
  command -v npm >/dev/null || { echo "install-deps: npm not found: the OpenAPI lint will fail" >&2; return 0; }
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
[ "${1:-}" = "--test" ] && npm_test_tools

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
