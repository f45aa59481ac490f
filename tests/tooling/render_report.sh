#!/bin/sh
# Renders a report built from the synthetic fixtures in headless Chromium and
# checks that its tables and SVG charts are in the DOM Chromium built. Keeps the
# HTML, the dumped DOM and a screenshot in OUT_DIR as test artifacts.
#   render_report.sh MOE_HARNESS CHROMIUM OUT_DIR     (run from the source root)
set -eu
harness=$1
chromium=$2
out=$3
rm -rf "$out"
mkdir -p "$out"
"$harness" report --verify tests/tooling/data/sample_verify.json --bench tests/tooling/data/sample_bench.json \
  --out "$out/report.html"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(cd "$out" && pwd)
url="file://$abs/report.html"
run_chromium() {
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --user-data-dir="$profile" "$@"
}
run_chromium --dump-dom "$url" > "$out/dom.html" 2> "$out/chromium-dom.log" || {
  echo "FAIL: chromium --dump-dom failed:"; tail -20 "$out/chromium-dom.log"; exit 1; }
run_chromium --screenshot="$abs/report.png" --window-size=1280,2000 "$url" > "$out/chromium-shot.log" 2>&1 || {
  echo "FAIL: chromium --screenshot failed:"; tail -20 "$out/chromium-shot.log"; exit 1; }

fail=0
need() {  # need PATTERN MIN_COUNT WHAT
  n=$(grep -o "$1" "$out/dom.html" | wc -l)
  if [ "$n" -lt "$2" ]; then echo "FAIL: $3: found $n of at least $2 ('$1')"; fail=1; else echo "ok: $3 ($n)"; fi
}
need '<table id="provenance-table"' 1 "provenance table"
need '<table id="device-table"' 1 "device table"
need '<table id="verify-summary"' 1 "verify summary table"
need '<table class="matrix"' 1 "pass/fail matrix"
need '<table id="verify-cases"' 1 "verify cases table"
need '<table id="bench-points"' 1 "benchmark data table"
need '<svg class="chart latency"' 3 "latency charts"
need '<svg class="chart roofline"' 3 "roofline charts"
need '<polyline' 6 "chart lines"
need '<circle' 40 "chart points"
need 'class="fail' 2 "failed cells marked"
if grep -q '<script' "$out/dom.html"; then echo "FAIL: a <script> element is in the DOM"; fail=1; fi
if grep -q 'alert(1)</script>' "$out/dom.html"; then echo "FAIL: unescaped case name"; fail=1; fi
# The screenshot: a PNG of the requested size, not blank.
if [ ! -s "$out/report.png" ]; then echo "FAIL: no screenshot"; exit 1; fi
magic=$(head -c 8 "$out/report.png" | od -An -tx1 | tr -d ' \n')
[ "$magic" = "89504e470d0a1a0a" ] || { echo "FAIL: screenshot is not a PNG"; fail=1; }
size=$(wc -c < "$out/report.png")
[ "$size" -gt 20000 ] || { echo "FAIL: screenshot only $size bytes (blank page?)"; fail=1; }
echo "screenshot: $abs/report.png ($size bytes)"
[ "$fail" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit "$fail"
