#!/usr/bin/env bash
# Per-kernel GPU times of single benchmark points, read with Nsight Compute
# (one metric, gpu__time_duration, clocks left alone), to see where a layer's
# time goes: scripts/kernel_times.sh BENCH_BINARY OUT_DIR FILTER...
# Each FILTER is one Google Benchmark regex (one point); its kernels, setup
# included, go to OUT_DIR/<n>.csv (ncu --csv), and a per-name summary of the
# launches after setup (the last LAUNCHES, default 60) is printed.
set -uo pipefail
bench=$1 out=$2
shift 2
mkdir -p "$out"
n=0
for filter in "$@"; do
  n=$((n + 1))
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --print-units base --csv --launch-count ${NCU_LAUNCHES:-400} \
    "$bench" --benchmark_filter="$filter" > "$out/$n.csv" 2> "$out/$n.err"
  echo "== $filter ($out/$n.csv)"
  python3 - "$out/$n.csv" "${LAUNCHES:-60}" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    print("  no ncu rows"); sys.exit(0)
hdr, rows = rows[0], rows[1:]
ki, vi, gi = hdr.index("Kernel Name"), hdr.index("Metric Value"), hdr.index("Grid Size")
tail = rows[-int(sys.argv[2]):]
agg = collections.OrderedDict()
for r in tail:
    name = r[ki].split("(")[0][:90] + " grid" + r[gi]
    v = float(r[vi].replace(",", ""))
    a = agg.setdefault(name, [0, 0.0])
    a[0] += 1; a[1] += v
total = sum(a[1] for a in agg.values())
for name, (c, s) in agg.items():
    print(f"  {s / c / 1000:9.2f} us x{c:3d}  {name}")
print(f"  total of the last {len(tail)} launches: {total / 1000:.1f} us")
PY
done
