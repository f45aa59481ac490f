"""The torch anchor's layer timings as a Google Benchmark JSON document.

Each row of bench/anchors/torch_moe_layer.py (model, M, the layer's median time)
becomes one benchmark entry named as moe-harness names the same layer point
(bench/bench_fused_moe.cpp: BM_fused_moe_layer/<model>/M:<M>), so that
`moe-harness report --baseline torch=FILE` draws it beside ours and divides.
The context carries the ceilings the script measured (moe_read_gbps,
moe_bf16_tflops, moe_fp8_tflops: the report takes a peak our benchmarks lack
from an input of the same device). Pure Python: importing it needs no torch.
"""
import datetime

# The benchmark function of ours that times the same full layer, per dtype.
LAYER_BENCHMARK = {"bf16": "BM_fused_moe_layer"}


def benchmark_name(model, M, dtype="bf16"):
    if dtype not in LAYER_BENCHMARK:
        raise ValueError(f"no layer benchmark of ours for dtype '{dtype}' (have: {', '.join(LAYER_BENCHMARK)})")
    return f"{LAYER_BENCHMARK[dtype]}/{model}/M:{M}/manual_time"


def to_gbench(rows, ceilings, device, impl="torch_grouped_mm", date=None):
    """rows: dicts with model, M, torch_grouped_mm_us (or us), and optionally dtype
    (default bf16), experts_hit, weight_bytes_read, flops. ceilings: copy_TBps,
    read_TBps, bf16_TFLOPs, fp8_TFLOPs (any may be missing)."""
    ctx = {
        "date": date or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "executable": "bench/anchors/torch_moe_layer.py",
        "library_build_type": "release",
        "moe_device": device,
        "moe_backend": "torch",
        "moe_impl": impl,
    }
    for key, ctx_key, scale in (("read_TBps", "moe_read_gbps", 1e3), ("copy_TBps", "moe_copy_gbps", 1e3),
                                ("bf16_TFLOPs", "moe_bf16_tflops", 1.0), ("fp8_TFLOPs", "moe_fp8_tflops", 1.0)):
        if ceilings.get(key) is not None:
            ctx[ctx_key] = f"{ceilings[key] * scale:.1f}"
    benchmarks = []
    for r in rows:
        us = r["torch_grouped_mm_us"] if "torch_grouped_mm_us" in r else r["us"]
        if not us > 0:
            raise ValueError(f"row {r['model']} M={r['M']}: time {us} is not positive")
        name = benchmark_name(r["model"], r["M"], r.get("dtype", "bf16"))
        e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
             "threads": 1, "iterations": 1, "real_time": us, "cpu_time": us, "time_unit": "us",
             "label": f"model={r['model']} impl={impl}", "us": us, "M": r["M"]}
        if "experts_hit" in r:
            e["experts_hit"] = r["experts_hit"]
        if "weight_bytes_read" in r:
            e["weight_bytes"] = r["weight_bytes_read"]
            e["GBps"] = r["weight_bytes_read"] / (us * 1e-6) / 1e9
        if "flops" in r:
            e["flops"] = r["flops"]
            e["TFLOPs"] = r["flops"] / (us * 1e-6) / 1e12
        benchmarks.append(e)
    return {"context": ctx, "benchmarks": benchmarks}


if __name__ == "__main__":
    # Converts a file that torch_moe_layer.py --json wrote: gbench_format.py IN.json OUT.gbench.json [DATE]
    import json
    import sys
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: gbench_format.py torch_moe_layer.json out.gbench.json [date]")
    with open(sys.argv[1]) as f:
        run = json.load(f)
    doc = to_gbench(run["rows"], run.get("ceilings", {}), run.get("device", ""),
                    date=sys.argv[3] if len(sys.argv) == 4 else None)
    with open(sys.argv[2], "w") as f:
        json.dump(doc, f, indent=1)
