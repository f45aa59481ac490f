#!/usr/bin/env python3
"""Time a reference-only `moe-harness run fused_moe` of a real layer from .npy files.

  scripts/reference_timing.py --exe build-gpu/harness/cli/moe-harness --model deepseek_v3 --M 256 --dir /tmp/ref-inputs

Writes the layer's inputs with NumPy, an expert at a time into memory-mapped files
(bf16 hidden, w1, w2 as '<u2' bit patterns, round to nearest even; router_logits
float32, routed by the reference with the model's routing; a DeepSeek-V3 layer is
22.5 GB of weights), then runs
`run fused_moe --model M --reference-only` and reports its wall time, peak resident
memory and the progress lines it printed. Writes DIR/reference_timing.json.
"""
import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def bf16_bits(x):
    """float32 array -> bf16 bit patterns (uint16), round to nearest even."""
    u = x.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def fill_expert(job):
    """One expert's weights, scaled by 1/sqrt(fan-in), written into the .npy in place
    (workers write disjoint experts)."""
    path, e, seed, name = job
    out = np.load(path, mmap_mode="r+")
    rng = np.random.default_rng([seed, e, 1 if name == "w1" else 2])
    out[e] = bf16_bits(rng.standard_normal(out.shape[1:], dtype=np.float32) * np.float32(out.shape[2] ** -0.5))
    out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--model", default="deepseek_v3")
    ap.add_argument("--M", type=int, default=256)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    with open(os.path.join(ROOT, "configs/model_configs.json")) as f:
        models = json.load(f)["models"]
    m = models[a.model] if isinstance(models, dict) else next(x for x in models if x["name"] == a.model)
    E, H, I = m["experts"], m["model_dim"], m["inter_dim"]
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    files = {}
    for name, shape in (("hidden", (a.M, H)), ("router_logits", (a.M, E)), ("w1", (E, 2 * I, H)), ("w2", (E, H, I))):
        path = os.path.join(a.dir, f"{name}.npy")
        files[name] = path
        if name == "router_logits":
            np.save(path, rng.standard_normal(shape, dtype=np.float32))
            continue
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=shape)
        if name == "hidden":
            out[:] = bf16_bits(rng.standard_normal(shape, dtype=np.float32))
            out.flush()
        else:
            out.flush()
            del out
            with multiprocessing.Pool(os.cpu_count()) as pool:
                pool.map(fill_expert, [(path, e, a.seed, name) for e in range(E)])
    gen_s = time.time() - t0
    sizes = {k: os.path.getsize(p) for k, p in files.items()}
    print(f"inputs written in {gen_s:.0f} s: " + ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in sizes.items()), flush=True)

    cmd = [a.exe, "run", "fused_moe", "--model", a.model, "--reference-only", "--out-dir", os.path.join(a.dir, "out")]
    for k, p in files.items():
        cmd += ["--in", f"{k}={p}"]
    t1 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_s = time.time() - t1
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = proc.stdout.splitlines()
    print("\n".join(lines[-30:]))
    result = {"model": a.model, "M": a.M, "experts": E, "model_dim": H, "inter_dim": I, "rc": proc.returncode,
              "input_bytes": sizes, "inputs_s": round(gen_s, 1), "run_s": round(run_s, 1),
              "peak_rss_gib": round(peak_kib / 2**20, 2), "cpu_count": os.cpu_count(), "command": " ".join(cmd),
              "progress_lines": [l for l in lines if "%" in l and "left" in l][:40]}
    with open(os.path.join(a.dir, "reference_timing.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"reference-only run: rc {proc.returncode}, {run_s:.0f} s, peak RSS {result['peak_rss_gib']} GiB, "
          f"{os.cpu_count()} CPUs", flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
