#!/usr/bin/env python3
"""Hardware-counter figures of the fused MoE layer's two GEMM stages under Nsight
Compute: duration, DRAM bytes and throughput, SM throughput, and the achieved
TFLOP/s (the stage's FLOPs, counted from the model's shape, over the kernel's
duration), per (layer, model, M).

For each point it runs the layer benchmark alone under ncu, profiling only the
GEMM kernels (`grouped_gemm_ws_kernel`, `fused_moe_gemm_kernel`, `q8_gemm_kernel`)
after the first few launches, with the clocks left alone (`--clock-control none`)
and the caches flushed before each replay (a cold weight stream, as in a model).

  scripts/ncu_layer.py --build build-gpu --out DIR [--M 16,4096] [--models a,b]
                       [--layers bf16,fp8_tensor]

Writes DIR/ncu_layer.json and DIR/ncu_layer.md (a table for a report's README);
the raw ncu CSV of each point stays in DIR. Exit 0 when every point gave figures,
1 when one did not, 2 on a usage error.
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import model_sweeps  # noqa: E402  (bench/: the model table and the layer's FLOPs)
KERNELS = "grouped_gemm_ws_kernel|fused_moe_gemm_kernel|q8_gemm_kernel"
METRICS = [
    "gpu__time_duration.sum",
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
]
# Asked for where this ncu knows them (--query-metrics), by the key they get in the JSON:
# the tensor-pipe activity of Hopper's wgmma, and the L2 hit rate (weights read more
# than once from DRAM show as a low rate).
OPTIONAL_METRICS = {"tensor_pipe_pct": "sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_elapsed",
                    "l2_hit_pct": "lts__t_sector_hit_rate.pct"}
# Template argument that holds STAGE (1 or 2), by kernel.
STAGE_ARG = {"grouped_gemm_ws_kernel": 4, "fused_moe_gemm_kernel": 7, "q8_gemm_kernel": 7}


def template_args(name):
    """The top-level template arguments of a demangled kernel name."""
    start = name.find("<")
    if start < 0:
        return []
    depth, args, cur = 0, [], ""
    for ch in name[start:]:
        if ch == "<":
            depth += 1
            if depth == 1:
                continue
        elif ch == ">":
            depth -= 1
            if depth == 0:
                args.append(cur.strip())
                break
        elif ch == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
            continue
        cur += ch
    return args


def kernel_stage(name):
    """1 or 2 from the kernel's STAGE template argument, None if it cannot be read."""
    for base, idx in STAGE_ARG.items():
        if re.search(r"\b" + base + r"\s*<", name):
            args = template_args(name[name.find(base):])
            if len(args) > idx and args[idx] in ("1", "2"):
                return int(args[idx])
    return None


def parse_raw_csv(text):
    """ncu --csv --page raw --print-units base: a header row, a units row, one row per
    profiled launch -> list of {column: value} with numbers as floats."""
    lines = [l for l in text.splitlines() if l.startswith('"')]  # drop ncu's ==PROF== lines
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if len(rows) < 2:
        return []
    header, units = rows[0], rows[1]
    # to nanoseconds and bytes, should this ncu scale units despite --print-units base
    scale = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9,
             "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}
    out = []
    for r in rows[2:]:
        if len(r) != len(header):
            continue
        d = {}
        for k, v, u in zip(header, r, units):
            try:
                d[k] = float(v.replace(",", "")) * scale.get(u, 1.0)
            except ValueError:
                d[k] = v
        out.append(d)
    return out


def summarize(launches, flops_per_stage):
    """Per stage: the median launch's figures and the achieved TFLOP/s."""
    by_stage = {}
    for d in launches:
        st = kernel_stage(str(d.get("Kernel Name", "")))
        if st is None:
            continue
        by_stage.setdefault(st, []).append(d)
    result = {}
    for st, ds in sorted(by_stage.items()):
        ns = [d["gpu__time_duration.sum"] for d in ds if isinstance(d.get("gpu__time_duration.sum"), float)]
        if not ns:
            continue
        med = statistics.median(ns)
        pick = min(ds, key=lambda d: abs(d.get("gpu__time_duration.sum", 0.0) - med))
        us = med / 1e3
        entry = {
            "kernel": str(pick.get("Kernel Name", "")),
            "launches": len(ds),
            "duration_us": round(us, 2),
            "tflops": round(flops_per_stage[st] / (us * 1e-6) / 1e12, 1),
        }
        for m, key, scale in (("dram__bytes_read.sum", "dram_read_gb", 1e-9),
                              ("dram__bytes_write.sum", "dram_write_gb", 1e-9)):
            if isinstance(pick.get(m), float):
                entry[key] = round(pick[m] * scale, 4)
        if "dram_read_gb" in entry and "dram_write_gb" in entry:
            entry["dram_tb_per_s"] = round((entry["dram_read_gb"] + entry["dram_write_gb"]) / (us * 1e-6) / 1e3, 3)
        for m, key in (("dram__throughput.avg.pct_of_peak_sustained_elapsed", "dram_pct"),
                       ("sm__throughput.avg.pct_of_peak_sustained_elapsed", "sm_pct"),
                       *((m, key) for key, m in OPTIONAL_METRICS.items())):
            if isinstance(pick.get(m), float):
                entry[key] = round(pick[m], 1)
        result[str(st)] = entry
    return result


def markdown(points):
    out = ["| layer | model | M | stage | kernel | µs | TFLOP/s | DRAM read GB | DRAM TB/s | DRAM % | SM % | L2 hit % | tensor pipe % |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        if p.get("error"):
            out.append(f"| {p['layer']} | {p['model']} | {p['M']} | - | error: {p['error']} | | | | | | | | |")
            continue
        for st, e in p["stages"].items():
            short = re.sub(r"\(.*", "", e["kernel"]).replace("moe::fused_moe_q8::dev::", "").replace("moe::fused_moe::dev::", "")
            out.append(f"| {p['layer']} | {p['model']} | {p['M']} | {st} | `{short}` | {e['duration_us']} | {e['tflops']} | "
                       f"{e.get('dram_read_gb', '')} | {e.get('dram_tb_per_s', '')} | {e.get('dram_pct', '')} | {e.get('sm_pct', '')} | "
                       f"{e.get('l2_hit_pct', '')} | {e.get('tensor_pipe_pct', '')} |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-gpu", help="meson build folder with bench/bench_fused_moe*")
    ap.add_argument("--out", required=True)
    ap.add_argument("--M", default="16,4096", help="token counts (default 16,4096)")
    ap.add_argument("--models", default="", help="model names (default: the layer sweep's models)")
    ap.add_argument("--layers", default="bf16,fp8_tensor",
                    help="bf16 and/or q8 schemes (fp8_tensor, fp8_token, fp8_block, ...)")
    ap.add_argument("--ncu", default=shutil.which("ncu") or "/usr/local/cuda/bin/ncu")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per point")
    args = ap.parse_args()

    table = model_sweeps.load()
    known = {m["name"] for m in table["models"]}
    names = [n for n in args.models.split(",") if n] or model_sweeps.sweep_models(table, "layer")
    for n in names:
        if n not in known:
            print(f"ncu_layer: --models: '{n}' is not a model of configs/model_configs.json", file=sys.stderr)
            return 2
    try:
        Ms = [int(x) for x in args.M.split(",") if x]
    except ValueError:
        print(f"ncu_layer: --M {args.M}: a comma list of token counts", file=sys.stderr)
        return 2
    if not os.access(args.ncu, os.X_OK):
        print(f"ncu_layer: ncu not found ({args.ncu})", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    metrics = list(METRICS)
    q = subprocess.run([args.ncu, "--query-metrics"], capture_output=True, text=True)
    metrics += [m for m in OPTIONAL_METRICS.values() if m.split(".")[0] in q.stdout]

    points, failed = [], 0
    for layer in [l for l in args.layers.split(",") if l]:
        exe = os.path.join(args.build, "bench", "bench_fused_moe" if layer == "bf16" else "bench_fused_moe_q8")
        for n in names:
            for M in Ms:
                bench = (f"^BM_fused_moe_layer/{n}/M:{M}/" if layer == "bf16" else f"^BM_q8_layer/{layer}/{n}/M:{M}/")
                tag = f"{layer}-{n}-M{M}"
                cmd = [args.ncu, "--clock-control", "none", "--cache-control", "all", "-k", f"regex:{KERNELS}",
                       "--launch-skip", "4", "--launch-count", "6", "--metrics", ",".join(metrics),
                       "--csv", "--page", "raw", "--print-units", "base",
                       exe, f"--benchmark_filter={bench}"]
                point = {"layer": layer, "model": n, "M": M, "command": " ".join(cmd)}
                try:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                    with open(os.path.join(args.out, tag + ".csv"), "w") as f:
                        f.write(r.stdout)
                    with open(os.path.join(args.out, tag + ".stderr"), "w") as f:
                        f.write(r.stderr)
                    stages = summarize(parse_raw_csv(r.stdout), dict(zip((1, 2), model_sweeps.stage_flops(model_sweeps.model(table, n), M))))
                    if r.returncode != 0 or not stages:
                        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
                        point["error"] = f"rc {r.returncode}, {len(stages)} stages: {tail[:160]}"
                    point["stages"] = stages
                except subprocess.TimeoutExpired:
                    point["error"] = f"timed out after {args.timeout} s"
                    point["stages"] = {}
                if point.get("error"):
                    failed += 1
                print(f"ncu_layer: {tag}: " + (point.get("error") or ", ".join(
                    f"stage {s} {e['duration_us']} us {e['tflops']} TFLOP/s DRAM {e.get('dram_pct', '?')} %"
                    for s, e in point["stages"].items())), flush=True)
                points.append(point)
                write_results(args.out, metrics, points)  # after every point: a run cut short keeps its figures
    return 1 if failed else 0


def write_results(out_dir, metrics, points):
    for name, text in (("ncu_layer.json", json.dumps({"metrics": metrics, "points": points}, indent=1)),
                       ("ncu_layer.md", markdown(points))):
        tmp = os.path.join(out_dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out_dir, name))


if __name__ == "__main__":
    sys.exit(main())
