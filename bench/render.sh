#!/usr/bin/env bash
# render.sh — the PDF benchmark: render throughput per core in process and
# through the renderer processes (fp_pdf_pool + `fapiao render-worker`, as
# the server uses them), PDF size and checks, and headless Chromium on the
# same invoice, in one run.
#
#   bench/render.sh [BUILD_DIR]        (default: build; builds nothing — run
#                                       `make build` first)
#
# Uses BUILD_DIR/bench_render_bench and BUILD_DIR/fapiao, the 10-line invoice
# tests/data/pdf/ten-lines.json, python3, poppler-utils, qpdf; installs
# Debian's chromium (apt-get, as root) when it is missing, and skips that part
# when it cannot or when CHROMIUM_RUNS=0.
#
# Every throughput figure is pages per CPU second (CPU time of the rendering
# process(es), not wall time): it is the same on an idle machine and on one
# busy with other work, where wall-clock figures are not — and the renderer
# processes run at SCHED_IDLE, so on a busy machine their wall time says how
# busy the machine is, not how fast they are.
#
# Phases:
#  1. bench_render_bench, in process, one thread: the 10-line invoice for
#     RENDER_SECONDS of CPU time (default 5) -> pages per CPU second (= per
#     core), ms per PDF, PDF bytes;
#  2. the same for 60 lines (6 pages) and once for 5,000 lines (500 pages);
#  3. the 10-line invoice through fp_pdf_pool (one `fapiao render-worker`
#     process): pages per CPU second, the worker's CPU (/proc/PID/schedstat)
#     plus the caller's (the hand-off: framing, socket I/O), and the
#     caller's share;
#  3b. the 10-line PDF checked: qpdf --check, pdffonts (embedded subsets),
#     pdftotext identical to tests/data/pdf/ten-lines.ref.txt and the share
#     of pixels differing from the reference raster at 150 dpi (a pixel
#     differs when a channel differs by more than 24 of 255; the share of
#     pixels differing at all is reported too);
#  4. Chromium: bench/render_html.py writes the same invoice as HTML (same
#     page size, layout and font), then times `chromium --headless
#     --no-sandbox --disable-gpu --print-to-pdf` over CHROMIUM_RUNS fresh
#     browser processes (default 5, after one warm-up);
#  5. summary table (markdown) on stdout and in bench/results/render-latest.md.
#
# Targets (issue 15): >= 1,000 pages/s per core for the 10-line invoice in
# process and through the renderer processes, <= 60 KB, pixel difference
# <= 0.5%, text identical; >= 100x faster than Chromium per PDF.  Exit status: 0 when every phase ran (targets met or
# not; a skipped Chromium phase counts as run), 1 when something failed,
# 2 on missing binaries.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$REPO/$BUILD" ;; esac
BENCH="$BUILD/bench_render_bench"
FAPIAO="$BUILD/fapiao"
DOC="$REPO/tests/data/pdf/ten-lines.json"
RESULTS="$REPO/bench/results"
RENDER_SECONDS=${RENDER_SECONDS:-5}
CHROMIUM_RUNS=${CHROMIUM_RUNS:-5}

say() { printf '[render.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
FAILED=0
fail() { say "FAILED: $*"; FAILED=1; }

for f in "$BENCH" "$FAPIAO"; do
    [[ -x "$f" ]] || { say "missing $f (build first: make build)"; exit 2; }
done
[[ -f "$DOC" ]] || { say "missing $DOC"; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fapiao-render.XXXXXX") || { say "mktemp failed"; exit 1; }
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

kv() { # kv KEY LINE -> value of KEY=value in LINE
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"
}
T_START=$(date +%s)
P10=n/a MS10=n/a WALL10=n/a B10=n/a P60=n/a MS60=n/a B60=n/a P5K=n/a MS5K=n/a B5K=n/a
POOLMS=n/a POOLP=n/a POOLMSCPU=n/a POOLCALLER=n/a QPDF=n/a FONTS=n/a TEXT=n/a PIX=n/a PIXANY=n/a
CH_MEAN=n/a CH_MIN=n/a CH_MAX=n/a CH_CPU=n/a CH_RSS=n/a CH_BYTES=n/a CH_NOTE=""
RATIO=n/a RATIO_CPU=n/a

# ---- phases 1-2: in process ---------------------------------------------------
say "10 lines, in process, ${RENDER_SECONDS}s of CPU"
if line=$("$BENCH" --doc "$DOC" --seconds "$RENDER_SECONDS" --out "$TMP/ten-lines.pdf" 2>"$TMP/b10.err"); then
    say "$line"
    P10=$(kv pages_per_cpu_s "$line")
    MS10=$(kv ms_per_pdf_cpu "$line")
    WALL10=$(kv ms_per_pdf_wall "$line")
    B10=$(kv pdf_bytes "$line")
else
    cat "$TMP/b10.err" >&2
    fail "bench_render_bench (10 lines)"
fi
say "60 lines, in process"
if line=$("$BENCH" --doc "$DOC" --lines 60 --seconds "$RENDER_SECONDS" 2>"$TMP/b60.err"); then
    say "$line"
    P60=$(kv pages_per_cpu_s "$line")
    MS60=$(kv ms_per_pdf_cpu "$line")
    B60=$(kv pdf_bytes "$line")
else
    cat "$TMP/b60.err" >&2
    fail "bench_render_bench (60 lines)"
fi
say "5,000 lines, in process"
if line=$("$BENCH" --doc "$DOC" --lines 5000 --seconds 1 --min-renders 2 2>"$TMP/b5k.err"); then
    say "$line"
    P5K=$(kv pages_per_cpu_s "$line")
    MS5K=$(kv ms_per_pdf_cpu "$line")
    B5K=$(kv pdf_bytes "$line")
else
    cat "$TMP/b5k.err" >&2
    fail "bench_render_bench (5,000 lines)"
fi

# ---- phase 3: through the worker pool -----------------------------------------
say "10 lines through the worker pool"
if line=$("$BENCH" --doc "$DOC" --pool "$FAPIAO" --seconds "$RENDER_SECONDS" 2>"$TMP/pool.err"); then
    say "$line"
    POOLMS=$(kv ms_per_pdf_wall "$line")
    POOLP=$(kv pages_per_cpu_s "$line")
    POOLMSCPU=$(kv ms_per_pdf_cpu "$line")
    POOLCALLER=$(kv caller_ms_per_pdf_cpu "$line")
else
    cat "$TMP/pool.err" >&2
    fail "bench_render_bench --pool"
fi

# ---- phase 3b: the PDF checked against the reference --------------------------
if [[ -f "$TMP/ten-lines.pdf" ]]; then
    if command -v qpdf >/dev/null; then
        if qpdf --check "$TMP/ten-lines.pdf" >"$TMP/qpdf.out" 2>&1; then QPDF=passed
        else QPDF=FAILED; fail "qpdf --check: $(tail -2 "$TMP/qpdf.out")"; fi
    else
        QPDF="not run (qpdf missing)"
    fi
    if pdffonts "$TMP/ten-lines.pdf" >"$TMP/fonts.out" 2>&1 &&
        awk 'NR > 2 { n++; if ($(NF-4) != "yes" || $(NF-3) != "yes") bad++ }
             END { exit !(n > 0 && bad == 0) }' "$TMP/fonts.out"; then
        FONTS="$(($(wc -l <"$TMP/fonts.out") - 2)) fonts, all embedded subsets"
    else
        FONTS=FAILED; fail "pdffonts: a font not embedded as a subset"
    fi
    if pdftotext "$TMP/ten-lines.pdf" "$TMP/ten.txt" &&
        cmp -s "$TMP/ten.txt" "$REPO/tests/data/pdf/ten-lines.ref.txt"; then TEXT=identical
    else
        TEXT=DIFFERENT; fail "pdftotext differs from tests/data/pdf/ten-lines.ref.txt"
    fi
    if pdftoppm -r 150 -singlefile "$TMP/ten-lines.pdf" "$TMP/ten" &&
        line=$(python3 - "$TMP/ten.ppm" "$REPO/tests/data/pdf/ten-lines.ref-150dpi.ppm.gz" <<'PY'
import gzip, sys
def ppm(data):
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    w, h = int(fields[1]), int(fields[2])
    return w, h, data[pos + 1:pos + 1 + 3 * w * h]
w, h, a = ppm(open(sys.argv[1], "rb").read())
rw, rh, b = ppm(gzip.decompress(open(sys.argv[2], "rb").read()))
assert (w, h) == (rw, rh)
anyd = tol = 0
for i in range(0, len(a), 3):
    if a[i:i + 3] != b[i:i + 3]:
        anyd += 1
        if max(abs(a[i] - b[i]), abs(a[i + 1] - b[i + 1]), abs(a[i + 2] - b[i + 2])) > 24:
            tol += 1
print("pix=%.3f any=%.3f" % (100.0 * tol / (w * h), 100.0 * anyd / (w * h)))
PY
        ); then
        PIX=$(kv pix "$line")
        PIXANY=$(kv any "$line")
    else
        fail "pixel comparison"
    fi
fi

# ---- phase 4: headless Chromium --------------------------------------------------
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ "$CHROMIUM_RUNS" == 0 ]]; then
    CHROMIUM=""
    CH_NOTE="CHROMIUM_RUNS=0: Chromium phase skipped"
elif [[ -z "$CHROMIUM" ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing Debian's chromium (apt-get install -y --no-install-recommends chromium)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
            >"$TMP/apt.log" 2>&1 || tail -5 "$TMP/apt.log" >&2
        CHROMIUM=$(command -v chromium || true)
    fi
fi
if [[ -z "$CHROMIUM" ]]; then
    [[ -n "$CH_NOTE" ]] || CH_NOTE="chromium is not installed and could not be installed: Chromium phase skipped"
    say "$CH_NOTE"
else
    CH_VER=$("$CHROMIUM" --version 2>/dev/null | head -1)
    say "Chromium: $CH_VER; $CHROMIUM_RUNS runs after one warm-up"
    if python3 "$REPO/bench/render_html.py" html "$DOC" "$TMP/invoice.html" &&
        line=$(python3 "$REPO/bench/render_html.py" time "$CHROMIUM" "$TMP/invoice.html" \
            "$TMP/chromium" "$CHROMIUM_RUNS" 2>"$TMP/chromium.err"); then
        say "$line"
        CH_MEAN=$(kv mean_s "$line")
        CH_MIN=$(kv min_s "$line")
        CH_MAX=$(kv max_s "$line")
        CH_CPU=$(kv cpu_s_per_pdf "$line")
        CH_RSS=$(kv max_rss_mb "$line")
        CH_BYTES=$(kv pdf_bytes "$line")
        # the HTML is equivalent: Chromium's PDF has the buyer and the words
        chpdf=$(kv pdf "$line")
        if ! pdftotext "$chpdf" - 2>/dev/null | tr -d ' \n' | grep -q '壹万陆仟捌佰零柒圆捌角叁分'; then
            fail "Chromium's PDF lacks the invoice's text (font missing?)"
        fi
        CH_NOTE="$CH_VER"
    else
        tail -20 "$TMP/chromium.err" >&2
        fail "Chromium print-to-pdf"
        CH_NOTE="Chromium failed: $(tail -1 "$TMP/chromium.err" 2>/dev/null)"
    fi
fi
if [[ "$CH_MEAN" != n/a && "$WALL10" != n/a ]]; then
    RATIO=$(awk -v c="$CH_MEAN" -v m="$WALL10" 'BEGIN{printf "%.0f", c * 1000 / m}')
    RATIO_CPU=$(awk -v c="$CH_CPU" -v m="$MS10" 'BEGIN{printf "%.0f", c * 1000 / m}')
fi

# ---- phase 5: summary ---------------------------------------------------------
verdict() { # verdict VALUE OP LIMIT
    [[ "$1" == n/a ]] && { echo "not measured"; return; }
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN{ok = (op == ">=") ? (v >= l) : (v <= l);
        print ok ? "met" : "MISSED"}'
}
KB10=n/a
[[ "$B10" != n/a ]] && KB10=$(awk -v b="$B10" 'BEGIN{printf "%.1f", b / 1024}')
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)
WHEN=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
ELAPSED=$(($(date +%s) - T_START))

table=$(cat <<EOF
## fapiao PDF render benchmark ($WHEN)

| metric | value | target | |
|---|---|---|---|
| 10-line invoice (1 page): pages/s per core (pages / CPU s, one thread, in process) | $P10 | >= 1000 | $(verdict "$P10" ">=" 1000) |
| same through the renderer processes (fp_pdf_pool + render-worker): pages / CPU s of worker + caller | $POOLP | >= 1000 | $(verdict "$POOLP" ">=" 1000) |
| through the renderer processes: CPU ms per PDF, of which the caller's side of the hand-off | $POOLMSCPU, $POOLCALLER | | |
| 10-line invoice in process: CPU ms / wall ms per PDF | $MS10 / $WALL10 | | |
| 10-line invoice: PDF size, KB | $KB10 | <= 60 | $(verdict "$KB10" "<=" 60) |
| 10-line PDF: qpdf --check; pdffonts | $QPDF; $FONTS | | |
| 10-line PDF vs the reference (tests/data/pdf/ten-lines.ref*): pdftotext | $TEXT | identical | |
| pixels differing at 150 dpi by more than 24/255, % (differing at all, %) | $PIX ($PIXANY) | <= 0.5 | $(verdict "$PIX" "<=" 0.5) |
| 60 lines (6 pages): pages/s per core, ms per PDF, bytes | $P60, $MS60, $B60 | | |
| 5,000 lines (500 pages): pages/s per core, ms per PDF, bytes | $P5K, $MS5K, $B5K | | |
| through the renderer processes, one render at a time: wall ms per PDF (SCHED_IDLE: depends on the machine's load) | $POOLMS | | |
| headless Chromium print-to-pdf, same invoice as HTML: mean (min-max) s per PDF | $CH_MEAN ($CH_MIN-$CH_MAX) | | |
| Chromium CPU s per PDF (all its processes), largest process RSS MB, PDF bytes | $CH_CPU, $CH_RSS, $CH_BYTES | | |
| fapiao vs Chromium, wall time per PDF (CPU time per PDF) | ${RATIO}x (${RATIO_CPU}x) | >= 100x | $(verdict "$RATIO" ">=" 100) |

- machine: $(nproc) CPUs, $CPU; $(uname -sr); revision $REV
- fapiao: bench_render_bench renders tests/data/pdf/ten-lines.json over and over in one thread
  (fp_pdf_render, renderer and font loaded once) for ${RENDER_SECONDS}s of CPU after 3 warm-ups;
  the figure includes JSON parsing, the QR code, font subsetting and compression; through the
  renderer processes the same with one \`fapiao render-worker\` (SCHED_IDLE), counting its CPU
  time and the caller's
- all throughput figures are per CPU second (CPU time, robust to the load other work puts on
  the machine); wall-clock figures are shown for reference only
- loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- Chromium: ${CH_NOTE:-n/a}; bench/render_html.py writes the same invoice as HTML (241 x 140 mm
  page, same table, WenQuanYi Micro Hei, no QR code); each PDF is a fresh
  \`chromium --headless --no-sandbox --disable-gpu --print-to-pdf\` process, as invoicing apps run it;
  $CHROMIUM_RUNS runs after a warm-up
- run time: ${ELAPSED}s$( ((FAILED)) && echo "; SOME PHASES FAILED" )
EOF
)
echo
echo "$table"
if ! { mkdir -p "$RESULTS" && echo "$table" >"$RESULTS/render-latest.md"; }; then
    fail "writing $RESULTS/render-latest.md"
fi
exit $((FAILED ? 1 : 0))
