#!/bin/sh
# Renders reports in headless Chromium: one from the synthetic fixtures (with a
# baseline) and one from the committed H200 run. Checks that tables and SVG
# charts are in the DOM Chromium built, and (check_report_layout.py) that no
# chart is empty, none has more than 8 series and no legend entries overlap.
# Keeps the HTML, the dumped DOM and screenshots in OUT_DIR as test artifacts;
# first-screen.png (1280x900, the H200 report) is the README's picture.
#   render_report.sh MOE_HARNESS CHROMIUM PYTHON3 OUT_DIR     (run from the source root)
set -eu
harness=$1
chromium=$2
python=$3
out=$4
rm -rf "$out"
mkdir -p "$out"
data=tests/tooling/data
"$harness" report --verify $data/sample_verify.json --bench $data/sample_bench.json --bench $data/sample_layer_bench.json \
  --baseline torch=$data/sample_baseline.json --out "$out/report.html" > "$out/report.log"
h200=reports/h200-b8c48d9
"$harness" report --verify $h200/verify.json --bench $h200/bench_fused_moe.json --bench $h200/bench_fused_moe_q8.json \
  --bench $h200/bench_memory.json --bench $h200/bench_moe_align.json --bench $h200/bench_routing.json \
  --bench reports/h200-6cb0c7a/bench_quant.json \
  --baseline torch=$h200/torch_moe_layer.gbench.json --out "$out/h200.html" > "$out/h200.log"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs=$(cd "$out" && pwd)
run_chromium() {
  timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
    --hide-scrollbars --user-data-dir="$profile" "$@"
}
run_chromium --dump-dom "file://$abs/report.html" > "$out/dom.html" 2> "$out/chromium-dom.log" || {
  echo "FAIL: chromium --dump-dom failed:"; tail -20 "$out/chromium-dom.log"; exit 1; }
run_chromium --screenshot="$abs/report.png" --window-size=1280,2000 "file://$abs/report.html" > "$out/chromium-shot.log" 2>&1 || {
  echo "FAIL: chromium --screenshot failed:"; tail -20 "$out/chromium-shot.log"; exit 1; }
run_chromium --screenshot="$abs/first-screen.png" --window-size=1280,900 "file://$abs/h200.html" >> "$out/chromium-shot.log" 2>&1 || {
  echo "FAIL: chromium --screenshot of the H200 report failed:"; tail -20 "$out/chromium-shot.log"; exit 1; }

fail=0
need() {  # need PATTERN MIN_COUNT WHAT
  n=$(grep -o "$1" "$out/dom.html" | wc -l)
  if [ "$n" -lt "$2" ]; then echo "FAIL: $3: found $n of at least $2 ('$1')"; fail=1; else echo "ok: $3 ($n)"; fi
}
need '<section id="summary"' 1 "first-screen summary"
need '<table id="layer-summary"' 1 "layer summary table"
need '<tr class="vs"' 2 "ours ÷ baseline rows in the summary"
need '<table class="ratios"' 1 "baseline ratio table"
need '<table id="ceilings"' 1 "ceilings table"
need '<table id="provenance-table"' 1 "provenance table"
need '<table id="device-table"' 1 "device table"
need '<table id="verify-summary"' 1 "verify summary table"
need '<table class="matrix"' 1 "pass/fail matrix"
need '<table id="verify-cases"' 1 "verify cases table"
need '<table id="bench-points"' 1 "benchmark data table"
need '<svg class="chart latency"' 6 "latency charts"
need '<svg class="chart roofline"' 5 "% of floor charts"
need '<svg class="chart speedup"' 2 "speedup charts"
need 'stroke-dasharray="6 4"' 2 "baseline lines"
need '<polyline' 6 "chart lines"
need '<circle' 40 "chart points"
need 'class="fail' 2 "failed cells marked"
if grep -q '<script' "$out/dom.html"; then echo "FAIL: a <script> element is in the DOM"; fail=1; fi
if grep -q 'alert(1)</script>' "$out/dom.html"; then echo "FAIL: unescaped case name"; fail=1; fi
if grep -q '>no data<' "$out/dom.html"; then echo "FAIL: a chart says 'no data'"; fail=1; fi
# Layout as Chromium draws it: every chart, both reports.
"$python" tests/tooling/check_report_layout.py "$chromium" "$out/report.html" "$out" --min-charts 12 \
  --need summary --need layer-summary || fail=1
"$python" tests/tooling/check_report_layout.py "$chromium" "$out/h200.html" "$out" --min-charts 20 \
  --need summary --need layer-summary || fail=1
# The checker itself must see a legend overlap and an empty chart.
if "$python" tests/tooling/check_report_layout.py "$chromium" tests/tooling/data/bad_layout.html "$out" \
    > "$out/bad_layout.log" 2>&1 || ! grep -q "overlap" "$out/bad_layout.log" || ! grep -q "empty" "$out/bad_layout.log"; then
  echo "FAIL: check_report_layout.py missed the overlap or the empty chart of bad_layout.html:"; cat "$out/bad_layout.log"; fail=1
else
  echo "ok: check_report_layout.py finds the overlap and the empty chart of bad_layout.html"
fi
# The screenshots: PNGs, not blank.
for png in report.png first-screen.png; do
  if [ ! -s "$out/$png" ]; then echo "FAIL: no screenshot $png"; fail=1; continue; fi
  magic=$(head -c 8 "$out/$png" | od -An -tx1 | tr -d ' \n')
  [ "$magic" = "89504e470d0a1a0a" ] || { echo "FAIL: $png is not a PNG"; fail=1; }
  size=$(wc -c < "$out/$png")
  [ "$size" -gt 20000 ] || { echo "FAIL: $png only $size bytes (blank page?)"; fail=1; }
  echo "screenshot: $abs/$png ($size bytes)"
done
[ "$fail" -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit "$fail"
