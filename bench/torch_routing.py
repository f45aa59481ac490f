#!/usr/bin/env python3
"""PyTorch side-by-side for bench_routing: the same routing steps, same card, same run.

    python3 bench/torch_routing.py --out torch_routing.json [--ours routing.json --md side_by_side.md]

Models: the "routing" sweep of configs/model_configs.json (E, k, groups, scale from it), as bench_routing:
  deepseek_v3       grouped top-k written with torch ops as in vLLM's grouped_topk
                    (E=256, 8 groups keep 4, k=8, sigmoid + bias, renormalize, x2.5), fp32 logits
  mixtral_8x7b      torch.topk(torch.softmax(x, -1), 2) then renormalize, fp32 logits
  qwen3_235b        torch.topk(torch.softmax(x, -1), 8) then renormalize, fp32 logits
  qwen3_235b_bf16   the same on bf16 logits (softmax computed in fp32: x.float())
  llama4_scout      logits = x @ w (bf16, (M,5120) @ (5120,16)), topk(1), sigmoid(.float())
                    (HF Llama-4 router; our kernel also writes the shared-expert column)
Timing: CUDA events around a CUDA graph of `batch` calls that rotate over enough
input copies to cover 2x L2, after an L2 flush; median over repetitions.
With --ours, reads bench_routing's Google Benchmark JSON and writes a
markdown table of both, with the targets.
"""
import argparse
import json
import math
import statistics

try:
    import torch
except ImportError:  # --from-json (tables only) works without PyTorch
    torch = None

import model_sweeps

TABLE = model_sweeps.load()
TOKENS = model_sweeps.sweep_tokens(TABLE, "routing")


def grouped_topk(x, bias, n_group=8, topk_group=4, k=8, scale=2.5):
    M, E = x.shape
    scores = torch.sigmoid(x)
    sfc = scores + bias.unsqueeze(0)
    group_scores = sfc.view(M, n_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores)
    group_mask.scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(M, n_group, E // n_group).reshape(M, -1)
    tmp = sfc.masked_fill(~score_mask.bool(), float("-inf"))
    ids = torch.topk(tmp, k=k, dim=-1, sorted=True)[1]
    w = scores.gather(1, ids)
    w = w / w.sum(dim=-1, keepdim=True)
    return w * scale, ids.to(torch.int32)


def softmax_topk(x, k):
    w, ids = torch.topk(torch.softmax(x.float(), dim=-1), k, dim=-1)
    w = w / w.sum(dim=-1, keepdim=True)
    return w, ids.to(torch.int32)


def llama4_router(x, w):
    logits = x @ w
    top, ids = torch.topk(logits, 1, dim=-1)
    return torch.sigmoid(top.float()), ids.to(torch.int32)


def time_graph(fns, batch, l2_bytes, reps, flush_l2=True):
    flush = torch.empty(int(2 * l2_bytes) if flush_l2 else 1, dtype=torch.uint8, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            for f in fns:
                f()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(batch):
            fns[i % len(fns)]()
    g.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for r in range(reps):
        if flush_l2:
            flush.fill_(r & 0xFF)
        start.record()
        g.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / batch)
    del g
    return statistics.median(times), min(times)


def copies_for(nbytes, l2_bytes):
    return max(1, min(256, math.ceil(2 * l2_bytes / max(nbytes, 1))))


def run_model(model, M, l2_bytes, reps, warm=False):
    gen = torch.Generator(device="cuda").manual_seed(1234 + M)
    cfg = model_sweeps.model(TABLE, model.removesuffix("_bf16"))
    if cfg["routing"]["type"] == "sigmoid_top1":
        K, E = cfg["model_dim"], cfg["experts"]
        nbytes = M * K * 2 + K * E * 2
        n = 1 if warm else copies_for(nbytes, l2_bytes)
        xs = [torch.randn(M, K, device="cuda", generator=gen, dtype=torch.bfloat16) for _ in range(n)]
        ws = [(torch.randn(K, E, device="cuda", generator=gen) / math.sqrt(K)).to(torch.bfloat16) for _ in range(n)]
        fns = [lambda x=x, w=w: llama4_router(x, w) for x, w in zip(xs, ws)]
    else:
        E, k = cfg["experts"], cfg["top_k"]
        dt = torch.bfloat16 if model.endswith("_bf16") else torch.float32
        nbytes = M * E * (2 if dt == torch.bfloat16 else 4)
        n = 1 if warm else copies_for(nbytes, l2_bytes)
        xs = [torch.randn(M, E, device="cuda", generator=gen).to(dt) for _ in range(n)]
        r = cfg["routing"]
        if r["type"] == "grouped_topk":
            bias = torch.randn(E, device="cuda", generator=gen) * 0.1
            fns = [lambda x=x: grouped_topk(x, bias, r["n_group"], r["topk_group"], k, r["routed_scaling_factor"])
                   for x in xs]
        else:
            fns = [lambda x=x, k=k: softmax_topk(x, k) for x in xs]
    batch = 20 if warm else max(20, n)
    med, mn = time_graph(fns, batch, l2_bytes, reps, flush_l2=not warm)
    return {"model": model + ("_warm" if warm else ""), "M": M, "us": med, "us_min": mn, "batch": batch,
            "copies": n}


def load_ours(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"torch_routing: cannot read {path}: {e}")
        return {}, []
    rows = []
    for b in doc.get("benchmarks", []):
        parts = b["name"].split("/")
        model = parts[0][3:] if parts[0].startswith("BM_") else parts[0]
        args = {p.split(":")[0]: p.split(":")[1] for p in parts[1:] if ":" in p and not p.startswith("iterations")}
        rows.append((model, args, b))
    return doc.get("context", {}), rows


def write_md(ours_path, torch_doc, md_path):
    ctx, ours = load_ours(ours_path)
    tmap = {(r["model"], r["M"]): r for r in torch_doc["rows"]}
    lines = [f"Card: {ctx.get('moe_device', '?')} (CUDA driver API {ctx.get('moe_driver_version', '?')}, "
             f"read {ctx.get('moe_read_gbps', '?')} GB/s, bf16 {ctx.get('moe_bf16_tflops', '?')} TFLOP/s measured), "
             f"git {ctx.get('moe_git_revision', '?')}; torch {torch_doc['torch']}", "",
             "| benchmark | M | ours µs | floor µs | x floor | target µs | met | torch µs | torch / ours |",
             "|---|---|---|---|---|---|---|---|---|"]
    extra = ["", "| config sweep | args | ours µs | x floor |", "|---|---|---|---|"]
    for model, args, b in ours:
        us = b.get("us", float("nan"))
        if model.endswith("_cfg") or model.endswith("_splits"):
            a = " ".join(f"{k}={v}" for k, v in args.items())
            extra.append(f"| {model} | {a} | {us:.2f} | {b.get('x_floor', 0):.2f} |")
            continue
        M = int(args.get("M", 0))
        t = tmap.get((model, M))
        target = b.get("target_us", 0)
        met = {1.0: "yes", 0.0: "NO"}.get(b.get("target_met", -1), "-")
        tus = t["us"] if t else float("nan")
        lines.append(f"| {model} | {M} | {us:.2f} | {b.get('floor_us', 0):.2f} | {b.get('x_floor', 0):.2f} | "
                     f"{(f'{target:.2f}' if target else '-')} | {met} | {tus:.2f} | {tus / us:.1f} |")
    with open(md_path, "w") as f:
        f.write("\n".join(lines + extra) + "\n")
    print("\n".join(lines + extra))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="torch_routing.json")
    ap.add_argument("--ours", default=None, help="bench_routing --benchmark_out JSON")
    ap.add_argument("--md", default=None)
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--models", default=",".join(model_sweeps.sweep_models(TABLE, "routing") + ["qwen3_235b_bf16"]),
                    help="models of the routing sweep of configs/model_configs.json; NAME_bf16: bf16 logits")
    ap.add_argument("--from-json", default=None, help="skip timing: reuse this torch_routing JSON for the table")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            write_md(args.ours, json.load(f), args.md)
        return
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 1024 * 1024) or 50 * 1024 * 1024
    doc = {"device": props.name, "torch": torch.__version__, "l2_bytes": l2, "rows": []}
    for model in args.models.split(","):
        for warm in (False, True):
            for M in TOKENS:
                if warm and (M > 256 or model == "qwen3_235b_bf16"):
                    continue
                r = run_model(model, M, l2, args.reps, warm)
                doc["rows"].append(r)
                print(f"torch {r['model']:21s} M={M:6d} {r['us']:9.2f} us (batch {r['batch']})", flush=True)
                torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    if args.ours and args.md:
        write_md(args.ours, doc, args.md)


if __name__ == "__main__":
    main()
