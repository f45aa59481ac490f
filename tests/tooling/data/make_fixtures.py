#!/usr/bin/env python3
"""Writes the synthetic fixtures of tests/tooling (NOT measurements)."""
import json
import math

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
json.dump({"context": ctx, "benchmarks": bench}, open("sample_bench.json", "w"), indent=1)


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
