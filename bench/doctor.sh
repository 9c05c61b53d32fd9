#!/usr/bin/env bash
# doctor.sh — how long `fapiao doctor` takes on a healthy server, next to curl,
# and how long it takes to name a filtered port.
#
#   bench/doctor.sh [BUILD_DIR] [N]      (defaults: build, 20; builds nothing)
#
# 1. a fresh data dir (`fapiao init`) and `fapiao serve` on a free loopback
#    port; an access token from POST /v1/token;
# 2. N rounds (after 2 warm-up rounds), each:
#      fapiao doctor https://127.0.0.1:PORT --cacert CERT --token T --json
#      curl -sS -o /dev/null -w '%{time_total}' --cacert CERT URL/readyz
#    both timed from outside (the whole process, what a user waits for), and
#    from inside (the doctor's total_ms, curl's time_total); the doctor must
#    say OK every time.  Medians and the doctor/curl ratio; target <= 1.5x;
# 3. a filtered port: a network namespace whose nftables input chain drops
#    SYNs to one port; `ip netns exec NS fapiao doctor …:PORT --timeout 2`
#    must say TCP_TIMEOUT within the configured timeout (+ process start).
#    Skipped, with the reason, when namespaces are not allowed (not root);
# 4. the table on stdout and in bench/results/doctor-latest.md.
# The server, the namespace and the temp dir are removed on exit (trap).
#
# Exit status: 0 when everything ran (targets met or not), 1 when something
# failed to run, 2 on bad usage or missing tools.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
N=${2:-20}
FAPIAO="$BUILD/fapiao"
RESULTS="$REPO/bench/results"
FILTER_TIMEOUT=2

say() { printf '[doctor.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
[[ "$N" =~ ^[0-9]+$ && "$N" -ge 3 && "$N" -le 200 ]] || { say "N must be 3..200"; exit 2; }
[[ -x "$FAPIAO" ]] || { say "missing $FAPIAO (build first: make build)"; exit 2; }
for t in curl jq python3; do
    command -v "$t" >/dev/null || { say "missing $t"; exit 2; }
done

TMP=$(mktemp -d /tmp/fapiao-doctor-bench.XXXXXX)
SERVER_PID=
NS=
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    [[ -n "$NS" ]] && ip netns delete "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

now_ns() { date +%s%N; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- 1. a healthy server ----------------------------------------------------
"$FAPIAO" init --data-dir "$TMP/data" --demo --json >"$TMP/init.json" 2>"$TMP/init.err" ||
    { say "fapiao init failed: $(cat "$TMP/init.err")"; exit 1; }
CERT=$(jq -r .ca_cert "$TMP/init.json")
CID=$(jq -r .client_id "$TMP/init.json")
SECRET=$(jq -r .client_secret "$TMP/init.json")
PORT=$(free_port)
URL="https://127.0.0.1:$PORT"
EXTRA=()
"$FAPIAO" serve --help 2>&1 | grep -q -- '--client-rate' && EXTRA+=(--client-rate 0)
"$FAPIAO" serve --data-dir "$TMP/data" --listen "127.0.0.1:$PORT" --access-log off "${EXTRA[@]}" \
    >"$TMP/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$CERT" "$URL/healthz" && break
    sleep 0.05
done
curl -s -o /dev/null --cacert "$CERT" "$URL/healthz" ||
    { say "fapiao serve did not come up: $(tail -5 "$TMP/serve.log")"; exit 1; }
TOKEN=$(curl -s --cacert "$CERT" -H 'Content-Type: application/json' \
    --data-binary "{\"client_id\":\"$CID\",\"client_secret\":\"$SECRET\"}" "$URL/v1/token" |
    jq -r .access_token)
[[ -n "$TOKEN" && "$TOKEN" != null ]] || { say "no access token"; exit 1; }
say "fapiao serve on $URL (pid $SERVER_PID); $N rounds"

# ---- 2. doctor vs curl --------------------------------------------------------
DOCTOR=("$FAPIAO" doctor "$URL" --cacert "$CERT" --token "$TOKEN" --json)
CURL=(curl -sS -o /dev/null -w '%{time_total}' --cacert "$CERT" "$URL/readyz")
: >"$TMP/d_wall"; : >"$TMP/d_in"; : >"$TMP/c_wall"; : >"$TMP/c_in"
: >"$TMP/d_tls"; : >"$TMP/d_http"; : >"$TMP/d_api"
for i in $(seq $((N + 2))); do
    t0=$(now_ns)
    "${DOCTOR[@]}" >"$TMP/doc.json" 2>"$TMP/doc.err"
    rc=$?
    t1=$(now_ns)
    ci=$("${CURL[@]}" 2>"$TMP/curl.err") || { say "curl failed: $(cat "$TMP/curl.err")"; exit 1; }
    t2=$(now_ns)
    if [[ $rc -ne 0 ]] || [[ $(jq -r .verdict.code "$TMP/doc.json") != OK ]]; then
        say "doctor round $i: exit $rc, verdict $(jq -r .verdict.code "$TMP/doc.json" 2>/dev/null)"
        exit 1
    fi
    [[ $i -le 2 ]] && continue # warm-up
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >>"$TMP/d_wall"
    echo "scale=3; ($t2 - $t1) / 1000000" | bc >>"$TMP/c_wall"
    jq -r .total_ms "$TMP/doc.json" >>"$TMP/d_in"
    echo "$ci * 1000" | bc >>"$TMP/c_in"
    for p in tls http api; do
        jq -r ".phases[] | select(.name == \"$p\") | .duration_ms" "$TMP/doc.json" >>"$TMP/d_$p"
    done
done
DW=$(median <"$TMP/d_wall"); CW=$(median <"$TMP/c_wall")
DI=$(median <"$TMP/d_in"); CI=$(median <"$TMP/c_in")
RW=$(printf '%.2f' "$(echo "scale=4; $DW / $CW" | bc)")
RI=$(printf '%.2f' "$(echo "scale=4; $DI / $CI" | bc)")
MTLS=$(median <"$TMP/d_tls"); MHTTP=$(median <"$TMP/d_http"); MAPI=$(median <"$TMP/d_api")
verdict() { [[ $(echo "$1 <= 1.5" | bc) -eq 1 ]] && echo "met" || echo "MISSED"; }
say "doctor ${DW} ms vs curl ${CW} ms per process (${RW}x); in-process ${DI} vs ${CI} ms (${RI}x)"

# ---- 3. a filtered port -------------------------------------------------------
FILTER="skipped"
if [[ $(id -u) -ne 0 ]]; then
    FILTER="skipped: network namespaces need root (CAP_NET_ADMIN)"
elif ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
    FILTER="skipped: ip or nft missing"
else
    NS="fapiao-bench-$$"
    if ip netns add "$NS" 2>"$TMP/ns.err" && ip -n "$NS" link set lo up &&
        ip netns exec "$NS" nft add table inet bench &&
        ip netns exec "$NS" nft 'add chain inet bench input { type filter hook input priority 0; }' &&
        ip netns exec "$NS" nft add rule inet bench input tcp dport 4443 drop; then
        t0=$(now_ns)
        ip netns exec "$NS" "$FAPIAO" doctor https://127.0.0.1:4443 --timeout "$FILTER_TIMEOUT" \
            --json >"$TMP/filter.json" 2>"$TMP/filter.err"
        frc=$?
        t1=$(now_ns)
        FW=$(echo "scale=1; ($t1 - $t0) / 1000000" | bc)
        FCODE=$(jq -r .verdict.code "$TMP/filter.json" 2>/dev/null)
        FCONN=$(jq -r '.phases[] | select(.name == "tcp") | .details.attempts[0].connect_ms' \
            "$TMP/filter.json" 2>/dev/null)
        FOK=$([[ $frc -eq 30 && $FCODE == TCP_TIMEOUT &&
            $(echo "$FW <= $FILTER_TIMEOUT * 1000 + 500" | bc) -eq 1 ]] && echo met || echo MISSED)
        FILTER="$FCODE (exit $frc) after ${FW} ms wall, connect attempt ${FCONN} ms; --timeout ${FILTER_TIMEOUT} s: $FOK"
    else
        FILTER="skipped: cannot create a network namespace: $(tail -1 "$TMP/ns.err")"
    fi
fi
say "filtered port: $FILTER"

# ---- 4. report ------------------------------------------------------------------
mkdir -p "$RESULTS"
{
    echo "# fapiao doctor — latency on a healthy server, next to curl"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -sr), $(nproc) CPUs, $N rounds after 2 warm-up rounds"
    echo "(bench/doctor.sh $(basename "$BUILD") $N).  Loopback, \`fapiao serve\` with a fresh data dir."
    [[ -n "${FAPIAO_KB_DIR:-}" ]] && echo "Knowledge base from FAPIAO_KB_DIR=$FAPIAO_KB_DIR."
    echo
    echo "| | doctor (all layers, --token) | curl /readyz | doctor / curl | target |"
    echo "|---|---|---|---|---|"
    echo "| median per process (wall) | ${DW} ms | ${CW} ms | ${RW}x | <= 1.5x: $(verdict "$RW") |"
    echo "| median in-process (total_ms / time_total) | ${DI} ms | ${CI} ms | ${RI}x | <= 1.5x: $(verdict "$RI") |"
    echo
    echo "Outside the measured run (process start, loading the knowledge base, printing):"
    printf 'doctor %.1f ms, curl %.1f ms (medians of wall minus in-process).\n' \
        "$(echo "$DW - $DI" | bc)" "$(echo "$CW - $CI" | bc)"
    echo
    echo "Doctor phase medians: tls ${MTLS} ms (its own GnuTLS handshake and chain check),"
    echo "http ${MHTTP} ms (libcurl: a second TLS handshake, GET /readyz, GET /healthz), api ${MAPI} ms"
    echo "(GET /v1/invoices on the same connection).  curl does one handshake and one request."
    echo
    echo "Filtered port (nftables drop in a network namespace): $FILTER."
} >"$RESULTS/doctor-latest.md"
cat "$RESULTS/doctor-latest.md"
