#!/usr/bin/env python3
"""Tables of bench_fused_moe_q8 against the quantized layer's targets (quantized fused MoE).

  python3 bench/fused_moe_q8_report.py --bench bench_fused_moe_q8.json \
      [--anchors ../shared/anchors/h200-moe-layer.json] [--md out.md] [--json out.json]

bench JSON: Google Benchmark JSON of bench_fused_moe_q8 (BM_bf16_layer and
BM_q8_layer/<scheme>/<model>/M:<M>, counters us, bf16_us, ratio_vs_bf16,
speedup_vs_bf16, floor_us, pct_floor; label = the tile config the chooser picked).
Every number printed is one of those counters (or a quotient of two of them).

Floor (the bench's): weight bytes of the experts hit (8-bit codes + fp32 scales) +
hidden in / out bf16, over the read bandwidth the bench measured; for the 8-bit
schemes that is the fp8 bandwidth floor (half the bf16 weight bytes; the
scales add < 0.2 %).

Targets (stated for FP8 per-tensor, printed for every scheme):
  >= 85 % of the fp8 bandwidth floor at M <= 256;
  >= 1.5x the bf16 path's speed (speedup_vs_bf16) at M = 4096;
  fp8 faster than vLLM Triton fp8 (--anchors: absolute, another run on the same kind of
  card) and, card-independent, fp8/bf16 ratio vs vLLM's own fp8/bf16 ratio (0.55-0.90).

"fp8 wgmma" marks points whose chooser picked a wgmma tile for an fp8 scheme: Hopper's
fp8 wgmma keeps 13 fraction bits per accumulation step (measured; the reference models
it, reference/fused_moe_q8/fp8_mma_accum.hpp), unlike the mma.sync tiles (fp32).
"""
import argparse
import json
import re
import sys

import model_sweeps

MODELS = model_sweeps.sweep_models(model_sweeps.load(), "layer")  # report order
SCHEMES = ["fp8_tensor", "fp8_token", "fp8_block", "int8_token"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--anchors")
    ap.add_argument("--md")
    ap.add_argument("--json")
    a = ap.parse_args()
    b = json.load(open(a.bench))
    ctx = b.get("context", {})
    vllm = {}
    if a.anchors:
        for p in json.load(open(a.anchors))["rows"]:
            vllm[(p["model"], p["M"], p["dtype"])] = p["peer_vllm_triton_us"]

    bf16, rows = {}, []
    for r in b["benchmarks"]:
        if r.get("run_type", "iteration") != "iteration":
            continue
        m = re.match(r"BM_bf16_layer/(\w+)/M:(\d+)", r["name"])
        if m:
            bf16[(m.group(1), int(m.group(2)))] = (r["us"], r.get("label", ""), r.get("pct_floor"))
            continue
        m = re.match(r"BM_q8_layer/(\w+)/(\w+)/M:(\d+)", r["name"])
        if not m:
            continue
        scheme, model, M = m.group(1), m.group(2), int(m.group(3))
        label = r.get("label", "")
        wgmma = "wgmma" in label
        row = dict(scheme=scheme, model=model, M=M, us=r["us"], bf16_us=r.get("bf16_us"),
                   ratio_vs_bf16=r.get("ratio_vs_bf16"), speedup_vs_bf16=r.get("speedup_vs_bf16"),
                   floor_us=r.get("floor_us"), pct_floor=r.get("pct_floor"), experts_hit=int(r.get("experts_hit", 0)),
                   config=label, wgmma=wgmma, fp8_wgmma=wgmma and scheme.startswith("fp8"))
        if M <= 256:
            row["target"], row["met"] = "≥ 85% floor", row["pct_floor"] >= 85.0
        elif M == 4096:
            row["target"], row["met"] = "≥ 1.5x bf16", row["speedup_vs_bf16"] >= 1.5
        else:
            row["target"], row["met"] = None, None
        vb, vf = vllm.get((model, M, "bf16")), vllm.get((model, M, "fp8"))
        row["vllm_fp8_us"], row["vllm_bf16_us"] = vf, vb
        row["vllm_fp8_over_bf16"] = vf / vb if vf and vb else None
        row["faster_than_vllm_fp8"] = (row["us"] < vf) if vf else None
        row["ratio_le_vllm"] = (row["ratio_vs_bf16"] <= row["vllm_fp8_over_bf16"]) if vf and vb else None
        rows.append(row)
    rows.sort(key=lambda x: (SCHEMES.index(x["scheme"]) if x["scheme"] in SCHEMES else 99,
                             MODELS.index(x["model"]) if x["model"] in MODELS else 99, x["M"]))

    def f(x, fmt="{:.1f}"):
        return "—" if x is None else fmt.format(x)

    def yn(x):
        return "—" if x is None else ("met" if x else "NOT met")

    L = [f"card: {ctx.get('moe_device', '?')} ({ctx.get('moe_sm_count', '?')} SMs), git {ctx.get('moe_git_revision', '?')}; "
         f"bench ceilings: read {ctx.get('moe_read_gbps', '?')} GB/s, bf16 {ctx.get('moe_bf16_tflops', '?')} TFLOP/s; "
         f"config source: {ctx.get('moe_tuned_config', '?')}", ""]
    for scheme in SCHEMES:
        sr = [r for r in rows if r["scheme"] == scheme]
        if not sr:
            continue
        L.append(f"### {scheme}")
        L.append("")
        L.append("| model | M | µs | bf16 µs | speedup vs bf16 | fp8 floor µs | % floor | target | met | "
                 "vLLM fp8 µs | ours/bf16 vs vLLM fp8/bf16 | tile config | fp8 wgmma |")
        L.append("|---" * 13 + "|")
        for r in sr:
            cmp_ = "—"
            if r["vllm_fp8_over_bf16"] is not None:
                cmp_ = f"{r['ratio_vs_bf16']:.2f} vs {r['vllm_fp8_over_bf16']:.2f}"
            L.append(f"| {r['model']} | {r['M']} | {f(r['us'])} | {f(r['bf16_us'])} | {f(r['speedup_vs_bf16'], '{:.2f}x')} | "
                     f"{f(r['floor_us'])} | {f(r['pct_floor'], '{:.0f}%')} | {r['target'] or '—'} | {yn(r['met'])} | "
                     f"{f(r['vllm_fp8_us'])} | {cmp_} | `{r['config']}` | {'yes' if r['fp8_wgmma'] else 'no'} |")
        fl = [r for r in sr if r["M"] <= 256]
        sp = [r for r in sr if r["M"] == 4096]
        L.append("")
        L.append(f"{scheme}: floor target (≥ 85% at M ≤ 256) met at {sum(r['met'] for r in fl)}/{len(fl)}; "
                 f"speedup target (≥ 1.5x at M = 4096) met at {sum(r['met'] for r in sp)}/{len(sp)}"
                 + (f"; faster than vLLM fp8 (absolute) at {sum(bool(r['faster_than_vllm_fp8']) for r in sr)}/{len(sr)}; "
                    f"fp8/bf16 ratio ≤ vLLM's at {sum(bool(r['ratio_le_vllm']) for r in sr)}/{len(sr)}"
                    if a.anchors else "")
                 + f"; points on fp8 wgmma tiles: {sum(r['fp8_wgmma'] for r in sr)}/{len(sr)}")
        L.append("")
    text = "\n".join(L)
    print(text)
    if a.md:
        open(a.md, "w").write(text + "\n")
    if a.json:
        json.dump(dict(context=ctx, bf16={f"{k[0]}/M:{k[1]}": v for k, v in bf16.items()}, rows=rows),
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
