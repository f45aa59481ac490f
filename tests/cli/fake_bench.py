#!/usr/bin/env python3
"""A stand-in for a Google Benchmark executable bench_<family> (tests of
`moe-harness bench` on machines without a GPU). Copied by test_cli.py to
<tmp>/bench_<family>; it understands the flags moe-harness bench passes:
--benchmark_list_tests, --benchmark_filter (regex search, as Google Benchmark),
--benchmark_out/--benchmark_out_format=json, --benchmark_repetitions,
--benchmark_min_time, --benchmark_color. Times are a deterministic function of
the name. FAKE_BENCH_EXIT=77 imitates bench_common's "no GPU" skip. The JSON
context records MOE_TUNED_CONFIG, MOE_BENCH_FLUSH_L2 and MOE_DEVICE as
bench_common.hpp does (moe_tuned_config, moe_flush_l2)."""
import json
import os
import re
import sys
import zlib

exe = os.path.abspath(sys.argv[0])
family = os.path.basename(exe)[len("bench_"):]
NAMES = {
    "fakea": [f"BM_fakea_layer/{m}/M:{M}/iterations:5/manual_time"
              for m in ("mixtral_8x7b", "deepseek_v3") for M in (1, 16, 256)] +
             [f"BM_deepseek_v3/M:{M}" for M in (1, 64)],
    "fakeb": [f"BM_align/M:{M}/E:{E}/k:{k}/block:64/iterations:10/manual_time"
              for (E, k) in ((8, 2), (256, 8)) for M in (1, 4096)],
}.get(family, [f"BM_{family}/M:1"])

args = {}
for a in sys.argv[1:]:
    if not a.startswith("--benchmark_"):
        print(f"error: unrecognized command-line flag: {a}", file=sys.stderr)
        sys.exit(2)
    k, _, v = a[2:].partition("=")
    args[k] = v if v else "true"

if os.environ.get("FAKE_BENCH_EXIT") == "77" and args.get("benchmark_list_tests") != "true":
    print("SKIP: no GPU visible")
    sys.exit(77)

flt = args.get("benchmark_filter", "")
sel = [n for n in NAMES if not flt or re.search(flt, n)]
if args.get("benchmark_list_tests") == "true":
    for n in sel:
        print(n)
    sys.exit(0)

reps = int(args.get("benchmark_repetitions", "1") or 1)
entries = []
for fi, n in enumerate(sel):
    base = 1.0 + (zlib.crc32(n.encode()) % 1000) / 10.0
    us = []
    for r in range(reps):
        t = base * (1.0 + 0.001 * r)
        us.append(t)
        entries.append({"name": n, "family_index": fi, "per_family_instance_index": 0, "run_name": n,
                        "run_type": "iteration", "repetitions": reps, "repetition_index": r, "threads": 1,
                        "iterations": 5, "real_time": t, "cpu_time": t, "time_unit": "us", "us": t,
                        "GBps": 100.0 / t, "label": "source=heuristic"})
        print(f"{n}  {t:.3f} us")
    if reps > 1:
        mean = sum(us) / reps
        sd = (sum((x - mean) ** 2 for x in us) / (reps - 1)) ** 0.5
        for agg, v in (("mean", mean), ("median", sorted(us)[reps // 2]), ("stddev", sd)):
            entries.append({"name": f"{n}_{agg}", "family_index": fi, "per_family_instance_index": 0,
                            "run_name": n, "run_type": "aggregate", "repetitions": reps, "threads": 1,
                            "aggregate_name": agg, "aggregate_unit": "time", "iterations": reps,
                            "real_time": v, "cpu_time": v, "time_unit": "us", "us": v,
                            "label": "source=heuristic"})
            print(f"{n}_{agg}  {v:.3f} us")
doc = {"context": {"executable": exe, "moe_device": "FAKE", "moe_git_revision": "fake",
                   "moe_tuned_config": os.environ.get("MOE_TUNED_CONFIG", "") or "none (heuristic)",
                   "moe_flush_l2": os.environ.get("MOE_BENCH_FLUSH_L2", "") or "per benchmark",
                   "moe_device_index": os.environ.get("MOE_DEVICE", "0")},
       "benchmarks": entries}
out = args.get("benchmark_out")
if out:
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
