#!/usr/bin/env bash
# issue.sh — the issue-rate benchmark: durable invoices/s over TLS, latency at a
# steady offered rate, and the raw SQLite group-commit ceiling, in one run.
#
#   bench/issue.sh [BUILD_DIR]        (default: build; builds nothing)
#
# Uses BUILD_DIR/fapiao, BUILD_DIR/bench_ratebench, BUILD_DIR/bench_commit_ceiling,
# and wrk, curl, sqlite3 from the system.  Everything runs on loopback.
#
# Phases (about 80 s in all, plus up to 20 s per phase waiting for other work on
# the machine to finish; a phase that starts on a busy machine is flagged):
#  1. fresh data dir, `fapiao init`, `fapiao serve --access-log off` on a free
#     loopback port, token via POST /v1/token;
#  2. wrk warm-up (3 s), then wrk -t2 -c64 -d15s --latency over TLS, keep-alive,
#     bench/issue.lua (unique Idempotency-Key per request).  Durable invoices/s =
#     rows added to the invoices table during the run (counted with sqlite3) /
#     wrk's measured duration; it is checked against wrk's 201 count;
#  3. a second fresh server and data dir; bench_ratebench (open-loop, constant
#     rate 2,000/s for 20 s, 64 keep-alive connections, latency from the
#     scheduled send time, i.e. free of coordinated omission);
#  4. server stopped; bench_commit_ceiling on the same filesystem (same rows,
#     batch sizes 1..512 (64 = the most a 64-connection client can have in flight), SQLite WAL synchronous=FULL);
#  5. summary table (markdown) on stdout and in bench/results/issue-latest.md.
#
# Environment knobs: FAPIAO_BENCH_TMPDIR (parent of the temp dir, default /tmp
# when it is on the repo's filesystem, else BUILD_DIR), FAPIAO_BENCH_THREADS
# (passed as serve --threads), FAPIAO_BENCH_KEEP=1 (keep the temp dir and logs),
# WRK_DURATION (default 15), RATE (2000), RATE_DURATION (20), RATE_CONNS (64).
#
# Exit status: 0 when every phase ran (targets missed or not), 1 when something
# failed to run, 2 on bad usage / missing tools.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
FAPIAO="$BUILD/fapiao"
CEILING="$BUILD/bench_commit_ceiling"
RATEBENCH="$BUILD/bench_ratebench"
LUA="$REPO/bench/issue.lua"
BODY="$REPO/examples/invoice.json"
RESULTS="$REPO/bench/results"
WRK_DURATION=${WRK_DURATION:-15}
WRK_THREADS=2
WRK_CONNS=64
RATE=${RATE:-2000}
RATE_DURATION=${RATE_DURATION:-20}
RATE_CONNS=${RATE_CONNS:-64}
# One credential sends everything: its rate limit (1000/s by default) would
# measure the limiter, not the server.  The adaptive limit stays on.
SERVE_EXTRA=(--client-rate 0 --max-connections-per-ip 512) # one client address: 64 by default
[[ -n "${FAPIAO_BENCH_THREADS:-}" ]] && SERVE_EXTRA+=(--threads "$FAPIAO_BENCH_THREADS")

say() { printf '[issue.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
FAILED=0
fail() { say "FAILED: $*"; FAILED=1; }

missing=0
for f in "$FAPIAO" "$CEILING" "$RATEBENCH"; do
    [[ -x "$f" ]] || { say "missing $f (build first: cmake --build $BUILD)"; missing=1; }
done
for t in wrk curl sqlite3 ss; do
    command -v "$t" >/dev/null || { say "missing tool: $t"; missing=1; }
done
[[ -f "$LUA" && -f "$BODY" ]] || { say "missing $LUA or $BODY"; missing=1; }
((missing)) && exit 2

# ---- temp dir on the repo's filesystem (fsync cost is what we measure) ----
parent=${FAPIAO_BENCH_TMPDIR:-/tmp}
if [[ -z "${FAPIAO_BENCH_TMPDIR:-}" && "$(stat -c %d "$parent")" != "$(stat -c %d "$REPO")" ]]; then
    parent="$BUILD"   # /tmp is elsewhere (tmpfs?): stay on the repo's filesystem
fi
TMP=$(mktemp -d "$parent/fapiao-bench.XXXXXX") || { say "mktemp failed"; exit 1; }
FSTYPE=$(stat -f -c %T "$TMP")
SAMEFS=no
[[ "$(stat -c %d "$TMP")" == "$(stat -c %d "$REPO")" ]] && SAMEFS=yes
say "temp dir $TMP (filesystem $FSTYPE, same device as the repo: $SAMEFS)"

SERVER_PID=""
stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            say "server $SERVER_PID did not stop in 10 s; killing"
            kill -KILL "$SERVER_PID" 2>/dev/null
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
cleanup() {
    stop_server
    if [[ "${FAPIAO_BENCH_KEEP:-0}" == 1 ]]; then
        say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! ss -Htln "sport = :$p" | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# flat JSON string field, jq if present
json_field() {
    if command -v jq >/dev/null; then
        jq -er --arg k "$1" '.[$k] // empty | tostring'
    else
        tr -d '\n' | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"
    fi
}

# setup_server NAME -> sets DATA PORT CA TOKEN DB, SERVER_PID; returns non-zero on failure
setup_server() {
    local name=$1 init_json creds
    DATA="$TMP/$name"
    init_json=$("$FAPIAO" init --data-dir "$DATA" --demo --json 2>"$TMP/$name-init.err") || {
        cat "$TMP/$name-init.err" >&2
        fail "fapiao init"
        return 1
    }
    CLIENT_ID=$(json_field client_id <<<"$init_json")
    CLIENT_SECRET=$(json_field client_secret <<<"$init_json")
    CA=$(json_field ca_cert <<<"$init_json")
    [[ -n "$CLIENT_ID" && -n "$CLIENT_SECRET" && -f "$CA" ]] || {
        say "init output: $init_json"
        fail "fapiao init --json gave no client_id/client_secret/ca_cert"
        return 1
    }
    PORT=$(free_port) || { fail "no free port"; return 1; }
    "$FAPIAO" serve --data-dir "$DATA" --listen "127.0.0.1:$PORT" --access-log off \
        "${SERVE_EXTRA[@]}" >"$TMP/$name-serve.out" 2>"$TMP/$name-serve.err" &
    SERVER_PID=$!
    local ready=0
    for _ in $(seq 1 150); do
        if grep -q "listening on https://" "$TMP/$name-serve.err" 2>/dev/null; then
            ready=1
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ((!ready)); then
        tail -20 "$TMP/$name-serve.err" >&2
        fail "server did not report 'listening on https://' within 15 s"
        stop_server
        return 1
    fi
    BASE="https://127.0.0.1:$PORT"
    creds=$(printf '{"client_id":"%s","client_secret":"%s"}' "$CLIENT_ID" "$CLIENT_SECRET")
    TOKEN=$(curl -sS --max-time 10 --cacert "$CA" -H 'Content-Type: application/json' \
        -d "$creds" "$BASE/v1/token" | json_field access_token)
    [[ -n "$TOKEN" ]] || { fail "POST /v1/token gave no access_token"; stop_server; return 1; }
    DB=""
    for c in "$DATA/fapiao.db" "$DATA"/*.db "$DATA"/*.sqlite "$DATA"/*.sqlite3 "$DATA"/*/*.db; do
        [[ -f "$c" ]] && { DB=$c; break; }
    done
    [[ -n "$DB" ]] || { fail "no SQLite database found under $DATA"; stop_server; return 1; }
    say "$name: server pid $SERVER_PID on $BASE, db $DB"
    return 0
}

# server_survived NAME: the server must still be running when a phase ends
# (something else sending it a signal mid-run spoils the figures)
server_survived() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null &&
        ! grep -q 'stopping' "$TMP/$1-serve.err" 2>/dev/null; then
        return 0
    fi
    tail -5 "$TMP/$1-serve.err" >&2
    fail "$1: the server stopped during the run (not by this script; see its log above)"
    return 1
}

db_count() {
    sqlite3 -cmd ".timeout 10000" "$DB" "SELECT count(*) FROM invoices;" 2>>"$TMP/sqlite.err"
}

# CPU busy % over 1 s, from /proc/stat: a check that nothing else loads the
# machine before a phase (other work on 2 cores spoils the figures)
cpu_busy() {
    local a b a1 a2 a3 a4 a5 a6 a7 a8 b1 b2 b3 b4 b5 b6 b7 b8
    read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ </proc/stat
    sleep 1
    read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ </proc/stat
    a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8))
    b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8))
    awk -v t=$((b - a)) -v i=$(((b4 + b5) - (a4 + a5))) \
        'BEGIN{printf "%.0f", (t > 0) ? 100 * (t - i) / t : 0}'
}
BUSY_NOTE=""
check_quiet() { # check_quiet PHASE: wait up to ~20 s for an idle machine
    local pct
    for _ in $(seq 1 20); do
        pct=$(cpu_busy)
        ((pct <= 15)) && break
    done
    say "$1: CPU busy before the phase: ${pct}%"
    if ((pct > 15)); then
        BUSY_NOTE="$BUSY_NOTE $1:${pct}%"
        say "WARNING: the machine is busy with other work (${pct}% CPU); $1 figures are unreliable"
    fi
}

kv() { # kv KEY LINE -> value of KEY=value in LINE
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"
}

RUN_ID=$(date +%s)$$
W_RPS=n/a W_DURABLE=n/a W_P50=n/a W_P99=n/a W_NON201=n/a W_ROWS=n/a W_CREATED=n/a W_DUR=n/a
R_RATE=n/a R_P50=n/a R_P99=n/a R_P999=n/a R_MAX=n/a R_ERR=n/a R_OK=n/a R_ROWS=n/a
C_CEIL=n/a C_BATCH=n/a C_B64=n/a RATIO=n/a
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- phase 1+2: wrk --------------------------------------------------------
if setup_server wrk; then
    URL="$BASE/v1/invoices"
    check_quiet wrk
    say "wrk warm-up 3 s"
    timeout 30 wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d3s -s "$LUA" "$URL" \
        -- "$TOKEN" "$BODY" "${RUN_ID}wu" >"$TMP/wrk-warmup.out" 2>&1 ||
        fail "wrk warm-up (see $TMP/wrk-warmup.out)"
    before=$(db_count)
    say "wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_DURATION}s --latency (TLS, keep-alive); rows before: ${before:-?}"
    timeout $((WRK_DURATION + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_DURATION}s" \
        --latency -s "$LUA" "$URL" -- "$TOKEN" "$BODY" "${RUN_ID}m" >"$TMP/wrk.out" 2>&1
    wrc=$?
    after=$(db_count)
    server_survived wrk
    cat "$TMP/wrk.out" >&2
    line=$(grep '^wrk_result ' "$TMP/wrk.out" | tail -1)
    if ((wrc != 0)) || [[ -z "$line" ]]; then
        fail "wrk (exit $wrc)"
    elif [[ -z "$before" || -z "$after" ]]; then
        fail "counting invoices with sqlite3 ($(tail -1 "$TMP/sqlite.err" 2>/dev/null))"
    else
        W_RPS=$(kv rps "$line")
        W_DUR=$(kv duration_s "$line")
        W_P50=$(kv p50_ms "$line")
        W_P99=$(kv p99_ms "$line")
        W_NON201=$(kv non201 "$line")
        W_CREATED=$(kv created "$line")
        W_ROWS=$((after - before))
        W_DURABLE=$(awk -v r="$W_ROWS" -v d="$W_DUR" 'BEGIN{printf "%.0f", (d > 0) ? r / d : 0}')
        if ((W_ROWS < W_CREATED)); then
            fail "durability: $W_CREATED 201s but only $W_ROWS new rows in the database"
        fi
        say "wrk: $W_RPS req/s, $W_CREATED created, $W_NON201 non-201; $W_ROWS new rows in ${W_DUR}s = $W_DURABLE durable invoices/s"
    fi
    stop_server
fi

# ---- phase 3: ratebench at a constant rate ---------------------------------
if setup_server rate; then
    check_quiet ratebench
    say "ratebench: $RATE/s for ${RATE_DURATION}s over $RATE_CONNS connections"
    before=$(db_count)
    timeout $((RATE_DURATION + 40)) "$RATEBENCH" --url "$BASE/v1/invoices" --rate "$RATE" \
        --duration "$RATE_DURATION" --connections "$RATE_CONNS" --token "$TOKEN" \
        --cacert "$CA" --body "$BODY" --key-prefix "r${RUN_ID}" \
        --warmup-url "$BASE/healthz" >"$TMP/ratebench.out" 2>&1
    rrc=$?
    after=$(db_count)
    server_survived rate
    cat "$TMP/ratebench.out" >&2
    line=$(grep '^ratebench rate=' "$TMP/ratebench.out" | tail -1)
    if ((rrc != 0)) || [[ -z "$line" ]]; then
        fail "ratebench (exit $rrc)"
    else
        R_RATE=$(kv rate "$line")
        R_P50=$(kv p50_ms "$line")
        R_P99=$(kv p99_ms "$line")
        R_P999=$(kv p999_ms "$line")
        R_MAX=$(kv max_ms "$line")
        R_ERR=$(kv errors "$line")
        R_OK=$(kv ok "$line")
        if [[ -n "$before" && -n "$after" ]]; then
            R_ROWS=$((after - before))
            ((R_ROWS < R_OK)) && fail "durability: $R_OK 201s but only $R_ROWS new rows"
        fi
    fi
    stop_server
fi

# ---- phase 4: raw SQLite group-commit ceiling, same filesystem -------------
check_quiet ceiling
say "commit ceiling in $TMP"
timeout 120 "$CEILING" --dir "$TMP" >"$TMP/ceiling.out" 2>&1
crc=$?
cat "$TMP/ceiling.out" >&2
if ((crc != 0)) || ! grep -q '^ceiling_rows_per_s=' "$TMP/ceiling.out"; then
    fail "bench_commit_ceiling (exit $crc)"
else
    C_CEIL=$(sed -n 's/^ceiling_rows_per_s=//p' "$TMP/ceiling.out" | tail -1)
    C_BATCH=$(sed -n 's/^ceiling_batch=//p' "$TMP/ceiling.out" | tail -1)
    C_B64=$(awk '$1 == 64 && NF == 7 {print $5}' "$TMP/ceiling.out")
    C_B64=${C_B64:-n/a}
fi

# ---- phase 5: summary --------------------------------------------------------
if [[ "$W_DURABLE" != n/a && "$C_CEIL" != n/a && "$C_CEIL" != 0 ]]; then
    RATIO=$(awk -v a="$W_DURABLE" -v b="$C_CEIL" 'BEGIN{printf "%.0f", 100 * a / b}')
fi
verdict() { # verdict VALUE OP LIMIT
    [[ "$1" == n/a ]] && { echo "not measured"; return; }
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN{ok = (op == ">=") ? (v >= l) : (v <= l);
        print ok ? "met" : "MISSED"}'
}
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
NPROC=$(nproc)
WHEN=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo uncommitted)
ELAPSED=$(($(date +%s) - T_START))

table=$(cat <<EOF
## fapiao issue benchmark ($WHEN)

| metric | value | target | |
|---|---|---|---|
| durable invoices/s over TLS (wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_DURATION}s, DB rows / duration) | $W_DURABLE | >= 5000 | $(verdict "$W_DURABLE" ">=" 5000) |
| wrk requests/s (all statuses) / non-201 | $W_RPS / $W_NON201 | | |
| wrk p50 / p99 latency, ms (closed loop) | $W_P50 / $W_P99 | | |
| ratebench at $RATE/s for ${RATE_DURATION}s: achieved ok/s | $R_RATE | | |
| ratebench p50 / p99 / p99.9 / max, ms (open loop, from scheduled time) | $R_P50 / $R_P99 / $R_P999 / $R_MAX | p99 <= 20 | $(verdict "$R_P99" "<=" 20) |
| ratebench errors (non-201, transport, unfinished, unsent) | $R_ERR | 0 | |
| raw SQLite group-commit ceiling, rows/s (best batch $C_BATCH) | $C_CEIL | | |
| durable invoices/s as % of ceiling | $RATIO | >= 50 | $(verdict "$RATIO" ">=" 50) |
| (context) SQLite rows/s at batch 64, the most 64 connections can queue | $C_B64 | | |

- machine: $NPROC CPUs, $CPU; $(uname -sr); client and server share the CPUs;
  load average before the run $LOAD_START, after $(cut -d' ' -f1-3 /proc/loadavg);
  other work on the machine before a phase (CPU busy > 15%): ${BUSY_NOTE:- none}
- data dir filesystem: $FSTYPE under $parent (same device as the repo: $SAMEFS)
- server: \`fapiao serve --access-log off ${SERVE_EXTRA[*]:-}\`, revision $REV
- wrk: closed loop, 2 threads, 64 keep-alive TLS connections, unique Idempotency-Key per request;
  rows counted: $W_ROWS in ${W_DUR}s (wrk saw $W_CREATED × 201)
- ratebench: bench_ratebench (libcurl multi, HTTP/1.1 keep-alive, $RATE_CONNS connections,
  open loop, latency from each request's scheduled time); $R_OK × 201, $R_ROWS new rows
- ceiling: bench_commit_ceiling, same schema and statements as the store's writer
  (per invoice INSERT invoices with a 1.5 KB doc + INSERT audit; per transaction UPDATE
  number_ranges), one transaction per batch, WAL, synchronous=FULL, batch sizes 1..512 (64 = the most a 64-connection client can have in flight)
- run time: ${ELAPSED}s$( ((FAILED)) && echo "; SOME PHASES FAILED TO RUN" )
EOF
)
echo
echo "$table"
if ! { mkdir -p "$RESULTS" && echo "$table" >"$RESULTS/issue-latest.md"; }; then
    fail "writing $RESULTS/issue-latest.md"
fi
exit $((FAILED ? 1 : 0))
