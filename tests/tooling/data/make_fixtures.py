#!/usr/bin/env python3
"""Writes the synthetic fixtures of tests/tooling (NOT measurements)."""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 3, "bench", "anchors"))
import gbench_format  # noqa: E402

ctx = {"date": "2026-11-26T00:00:00+00:00", "host_name": "fixture", "executable": "bench_fixture",
       "num_cpus": 16, "mhz_per_cpu": 2000, "cpu_scaling_enabled": False, "caches": [],
       "load_avg": [0.0, 0.0, 0.0], "library_build_type": "release",
       "moe_device": "SYNTHETIC FIXTURE <not a measurement>", "moe_arch": "sm_90", "moe_sm_count": "132",
       "moe_driver_version": "0", "moe_runtime_version": "0", "moe_git_revision": "fixture-0000",
       "moe_backend": "cuda"}


def entry(name, us, M, model, reps=None, idx=None, agg=None):
    e = {"name": name, "family_index": 0, "per_family_instance_index": 0, "run_name": name,
         "run_type": "aggregate" if agg else "iteration", "repetitions": reps or 1,
         "repetition_index": idx or 0, "threads": 1, "iterations": 100,
         "real_time": us * 1000.0, "cpu_time": us * 900.0, "time_unit": "ns", "label": f"model={model}"}
    if agg:
        e["name"] = name + "_" + agg
        e["aggregate_name"] = agg
        e["aggregate_unit"] = "time"
        del e["repetition_index"]
    e.update({"us": us, "GBps": 1e-3 * M * 50 / us, "TFLOPs": 1e-6 * M * 200 / us,
              "pct_read_bw": min(99.0, 10 + 15 * math.log2(M)), "pct_bf16_flops": min(95.0, 0.5 * M ** 0.5), "M": M})
    return e


bench = []
for model, base in [("deepseek_v3", 20.0), ("mixtral_8x7b", 8.0)]:
    for M in [1, 16, 64, 256, 1024, 4096]:
        bench.append(entry(f"align/{model}/M:{M}/manual_time", base * (1 + M / 512), M, model))
for M in [1, 16, 64, 256, 1024, 4096]:
    for impl, f in [("persistent", 1.0), ("grouped", 1.2)]:
        bench.append(entry(f"fused_moe/deepseek_v3/{impl}/M:{M}/manual_time", 300 * (1 + M / 256) * f, M, "deepseek_v3"))
bench.append({"name": "fused_moe/qwen3_235b/persistent/M:8192/manual_time",
              "run_name": "fused_moe/qwen3_235b/persistent/M:8192/manual_time",
              "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 1, "iterations": 0,
              "real_time": 0, "cpu_time": 0, "time_unit": "ns", "error_occurred": True,
              "error_message": "out of memory <&> (fixture)", "label": "model=qwen3_235b"})
for e in bench:  # the work a floor is computed from: declared bytes, and FLOPs for fused_moe only
    e["bytes"] = 4e4 * e.get("M", 1)
    e["flops"] = 2e8 * e.get("M", 1) if e["name"].startswith("fused_moe") else 0.0
ceilings = {"moe_read_gbps": "3000.0", "moe_bf16_tflops": "800.0"}
json.dump({"context": dict(ctx, **ceilings), "benchmarks": bench}, open("sample_bench.json", "w"), indent=1)


# Compare fixtures: the same three points (two kernels) per file, `reps` repetitions
# spread evenly by +-sd around the median (reps 1: one run, no aggregates), in a
# context with the device and ceilings bench_common records.
cmp_ctx = dict(ctx, moe_read_gbps="3000.0", moe_copy_gbps="2900.0", moe_bf16_tflops="800.0")
cmp_names = [("align/deepseek_v3/M:64/manual_time", 20.0), ("align/mixtral_8x7b/M:64/manual_time", 8.0),
             ("fused_moe/deepseek_v3/persistent/M:64/manual_time", 300.0)]


def rep_doc(reps, scales, sds=None):
    b = []
    for k, (n, us) in enumerate(cmp_names):
        med, sd = us * scales[k], (sds or [0.01] * len(cmp_names))[k]
        ts = [med * (1 + (i - (reps - 1) / 2) * sd) for i in range(reps)]
        if reps == 1:
            b.append(entry(n, ts[0], 64, "deepseek_v3"))
            continue
        for i, t in enumerate(ts):
            b.append(entry(n, t, 64, "deepseek_v3", reps=reps, idx=i))
        mean = sum(ts) / reps
        b.append(entry(n, mean, 64, "deepseek_v3", reps=reps, agg="mean"))
        b.append(entry(n, med, 64, "deepseek_v3", reps=reps, agg="median"))
        b.append(entry(n, (sum((t - mean) ** 2 for t in ts) / (reps - 1)) ** 0.5, 64, "deepseek_v3", reps=reps,
                       agg="stddev"))
    return {"context": cmp_ctx, "benchmarks": b}


def dump(doc, name):
    json.dump(doc, open(name, "w"), indent=1)


dump(rep_doc(5, [1.0] * 3), "compare_a.json")
dump(rep_doc(5, [1.10] * 3), "compare_b_slower.json")
dump(rep_doc(5, [1.01] * 3), "compare_b_same.json")
dump(rep_doc(5, [0.8] * 3), "compare_b_faster.json")
# +10 % (separated: regression), +8 % with runs overlapping A's (not significant), -20 % (speedup)
dump(rep_doc(5, [1.10, 1.08, 0.8], [0.01, 0.06, 0.01]), "compare_b_mixed.json")
dump(rep_doc(3, [1.0] * 3), "compare_a3.json")
dump(rep_doc(3, [1.10] * 3), "compare_b3_slower.json")
dump(rep_doc(1, [1.0] * 3), "compare_a1.json")
dump(rep_doc(1, [1.078] * 3), "compare_b1_slower.json")

cases = []
i = 0
for model in ["deepseek_v3", "mixtral_8x7b", "qwen3_235b"]:
    for M in [1, 33, 256, 4096]:
        st, msg = "pass", "ok: rel_l2 1.2e-03 <= 1e-02"
        if model == "qwen3_235b" and M == 4096:
            st, msg = "fail", "FAIL: 17 of 1048576 outside atol+rtol*|ref| <b>bold?</b>"
        if model == "mixtral_8x7b" and M == 1:
            st, msg = "skip", "skipped: needs a GPU"
        cases.append({"index": i, "kernel": "fused_moe", "name": f"{model}/M{M}/bf16", "needs_gpu": True,
                      "params": {"model": model, "M": M, "dtype": "bf16", "impl": "persistent", "tuned": "heuristic"},
                      "status": st, "message": msg,
                      "metrics": {"out": {"passed": st == "pass", "count": M * 7168, "rel_l2": 1.2e-3, "max_abs": 0.031,
                                          "max_rel": 0.02, "n_outside": 17 if st == "fail" else 0, "n_nonfinite": 0,
                                          "message": msg, "first_mismatches": []}},
                      "seconds": 0.5})
        i += 1
cases.append({"index": i, "kernel": "moe_align", "name": "golden/<script>alert(1)</script>", "needs_gpu": False,
              "params": {"E": 8, "block_size": 16}, "status": "pass", "message": "ok: exact", "metrics": {},
              "seconds": 0.001})
json.dump({"tool": "moe-harness verify", "version": "0.1.0", "backend": "cuda", "git_revision": "fixture-0000",
           "devices": [{"index": 0, "backend": "cuda", "name": "SYNTHETIC FIXTURE", "arch": "sm_90", "sm_count": 132,
                        "warp_size": 32, "total_mem_bytes": 85899345920, "l2_bytes": 52428800,
                        "max_smem_per_block": 232448, "driver_version": 0, "runtime_version": 0}],
           "summary": {"passed": sum(c["status"] == "pass" for c in cases), "failed": 1, "skipped": 1},
           "cases": cases}, open("sample_verify.json", "w"), indent=1)


# Full-layer benchmarks named as bench_fused_moe / bench_fused_moe_q8 name theirs, a
# memory probe plotted over MiB, and alignment configs too many for one chart. One
# merged document (moe_family per entry, as `moe-harness bench` writes).
# Our ceilings have no fp8 or int8 peak: the baseline below brings fp8.
def layer_entry(family, name, us, work_bytes, flops, extra=None):
    e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
         "threads": 1, "iterations": 10, "real_time": us, "cpu_time": us, "time_unit": "us", "moe_family": family,
         "us": us, "bytes": work_bytes, "flops": flops}
    e.update(extra or {})
    return e


layer = []
models = {"mixtral_8x7b": (4096, 14336, 2, 8), "deepseek_v3": (7168, 2048, 8, 256)}
Ms = [1, 16, 256, 4096]
for model, (H, I, k, E) in models.items():
    for M in Ms:
        hit = min(E, M * k)
        wbytes, flops = hit * 3 * H * I * 2 + 4 * M * H, 6.0 * M * k * H * I
        bf16_us = max(wbytes / 3.0e6, flops / 8.0e8) * 1.25  # µs at 3000 GB/s, 800 TFLOP/s
        layer.append(layer_entry("fused_moe", f"BM_fused_moe_layer/{model}/M:{M}/iterations:20/manual_time", bf16_us,
                                 wbytes, flops, {"M": M}))
        layer.append(layer_entry("fused_moe_q8", f"BM_bf16_layer/{model}/M:{M}/iterations:10/manual_time",
                                 bf16_us * 1.02, wbytes, flops, {"M": M}))
        for scheme, f in [("fp8_tensor", 0.6), ("fp8_token", 0.62), ("fp8_block", 0.7), ("int8_token", 0.65)]:
            layer.append(layer_entry("fused_moe_q8", f"BM_q8_layer/{scheme}/{model}/M:{M}/iterations:10/manual_time",
                                     bf16_us * f, wbytes / 2, flops,
                                     {"M": M, "bf16_us": bf16_us * 1.02, "speedup_vs_bf16": 1.02 / f}))
for mib in [1, 64, 1024]:
    layer.append(layer_entry("memory", f"BM_read_probe/{mib}/manual_time", 2.0 + mib * 0.4, mib * 2.0 ** 20, 0.0,
                             {"MiB": mib}))
layer.append(layer_entry("memory", "BM_copy/1024/manual_time", 900.0, 2 * 1024 * 2.0 ** 20, 0.0, {"MiB": 1024}))
for M in [64, 256, 1024]:
    for path, (a, avals), (b, bvals) in [(1, ("warps", [8, 16, 32]), ("stage", [0, 1])),
                                         (3, ("slots", [128, 512, 1024, 2048]), ("rank_warps", [4, 8, 16]))]:
        for x in avals:
            for y in bvals:
                layer.append(layer_entry("moe_align", f"BM_align_cfg/M:{M}/E:256/k:8/block:64/path:{path}/{a}:{x}/{b}:{y}"
                                         "/iterations:50/manual_time", 5 + M / 100 + x / 1000 + y / 10,
                                         4.0 * M * 8, 0.0, {"M": M}))
json.dump({"context": dict(ctx, **ceilings, moe_device="SYNTHETIC FIXTURE"), "benchmarks": layer},
          open("sample_layer_bench.json", "w"), indent=1)

# A baseline as bench/anchors/torch_moe_layer.py --gbench-json writes it: ours'
# bf16 layer names, 1.1x our time; one model we did not run.
rows = [{"model": m, "M": M, "torch_grouped_mm_us": e["us"] * 1.1, "experts_hit": 8, "weight_bytes_read": e["bytes"],
         "flops": e["flops"]}
        for e in layer if e["name"].startswith("BM_fused_moe_layer/")
        for m, M in [(e["name"].split("/")[1], e["M"])]]
rows.append({"model": "qwen3_235b", "M": 1, "torch_grouped_mm_us": 150.0})
json.dump(gbench_format.to_gbench(rows, {"read_TBps": 2.9, "bf16_TFLOPs": 790.0, "fp8_TFLOPs": 1400.0},
                                  "SYNTHETIC FIXTURE", date="2026-11-26T00:00:00+00:00"),
          open("sample_baseline.json", "w"), indent=1)
