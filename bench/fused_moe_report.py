#!/usr/bin/env python3
"""Side-by-side table of bench_fused_moe and the torch anchor (the layer's targets).

  python3 bench/fused_moe_report.py --bench bench.json --torch torch.json [--md out.md] [--json out.json]
      [--anchors ../shared/anchors/h200-moe-layer.json]

bench.json: Google Benchmark JSON of bench_fused_moe (--benchmark_format=json or
--benchmark_out). torch.json: --json output of bench/anchors/torch_moe_layer.py,
run in the same device call on the same card.

Floors as in ../shared/anchors/README.md: bandwidth floor = weight bytes of the
experts hit / measured read bandwidth; FLOP floor = 6*M*k*inter*model_dim /
measured dense bf16 rate; both from bench_fused_moe's own ceiling measurement
(its context), the torch script's ceilings are listed beside them.
Targets: layer time <= 0.8 x torch at every point (<= 0.6 x at M = 4096);
>= 90% of the bandwidth floor at M <= 256; >= 70% of the larger floor at M >= 1024.
Per-stage and sweep columns are printed only when the bench JSON has those entries.
--anchors (a ../shared/anchors/<card>-moe-layer.json of the same kind of card) adds a
table against the peers' bf16 figures (vLLM Triton, their torch run) and, per point, the
time the ratio target allows as a share of the larger floor (> 100 %: below the floor).
"""
import argparse
import json
import re
import sys

import model_sweeps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--torch", required=True)
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--anchors")
    ap.add_argument("--model-configs", help="default: configs/model_configs.json")
    a = ap.parse_args()
    table = model_sweeps.load(a.model_configs)
    # (E, top_k, model_dim, inter_dim) of the "layer" sweep's models, in its order.
    models = {n: (m["experts"], m["top_k"], m["model_dim"], m["inter_dim"])
              for n in model_sweeps.sweep_models(table, "layer") for m in [model_sweeps.model(table, n)]}
    b = json.load(open(a.bench))
    t = json.load(open(a.torch))
    ctx = b.get("context", {})
    read_gbps = float(ctx.get("moe_read_gbps", "0") or 0)
    try:
        bf16 = float(ctx.get("moe_bf16_tflops", "0"))
    except ValueError:
        bf16 = 0.0
    if read_gbps <= 0:
        read_gbps = t["ceilings"]["read_TBps"] * 1e3
    if bf16 <= 0:
        bf16 = t["ceilings"]["bf16_TFLOPs"]

    ours = {}
    for r in b["benchmarks"]:
        m = re.match(r"BM_fused_moe_(\w+)/(\w+)/M:(\d+)(?:/tile:([\w-]+))?", r["name"])
        if not m or r.get("run_type", "iteration") != "iteration":
            continue
        part, model, M, shape = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        key = (model, M)
        d = ours.setdefault(key, {"sweep": {}})
        if part == "sweep":
            d["sweep"][shape] = (r["us"], r.get("label", ""))
        else:
            d[part] = r["us"]
            if part == "layer":
                d["label"] = r.get("label", "")
                d["experts_hit"] = int(r.get("experts_hit", 0))
    torch = {(r["model"], r["M"]): r for r in t["rows"]}

    rows = []
    for (model, M), d in sorted(ours.items(), key=lambda kv: (list(models).index(kv[0][0]), kv[0][1])):
        if "layer" not in d:
            continue
        E, k, H, I = models[model]
        hit = d["experts_hit"]
        bw_floor = hit * 3 * I * H * 2 / (read_gbps * 1e9) * 1e6
        fl_floor = sum(model_sweeps.stage_flops(model_sweeps.model(table, model), M)) / (bf16 * 1e12) * 1e6
        us = d["layer"]
        tr = torch.get((model, M))
        t_us = tr["torch_grouped_mm_us"] if tr else None
        ratio = us / t_us if t_us else None
        ratio_target = 0.6 if M == 4096 else 0.8
        if M <= 256:
            pct, pct_target, pct_kind = 100 * bw_floor / us, 90.0, "bw"
        else:
            pct, pct_target, pct_kind = 100 * max(bw_floor, fl_floor) / us, 70.0, "max"
        best = min(d["sweep"].items(), key=lambda kv: kv[1][0]) if d["sweep"] else None
        rows.append(dict(model=model, M=M, ours_us=us, torch_us=t_us, ratio=ratio, ratio_target=ratio_target,
                         ratio_met=(ratio is not None and ratio <= ratio_target), experts_hit=hit,
                         torch_experts_hit=tr["experts_hit"] if tr else None, bw_floor_us=bw_floor,
                         flop_floor_us=fl_floor, pct_floor=pct, pct_floor_kind=pct_kind, pct_floor_target=pct_target,
                         pct_floor_met=pct >= pct_target, config=d.get("label", ""),
                         align_us=d.get("align"), stage1_us=d.get("stage1"), stage2_us=d.get("stage2"),
                         reduce_us=d.get("reduce"),
                         best_sweep_shape=best[0] if best else None, best_sweep_us=best[1][0] if best else None,
                         best_sweep_config=best[1][1] if best else None))

    def f(x, fmt="{:.1f}"):
        return "—" if x is None else fmt.format(x)

    lines = []
    lines.append(f"card: {ctx.get('moe_device', '?')} (driver {ctx.get('moe_driver_version', '?')}, "
                 f"git {ctx.get('moe_git_revision', '?')}); torch script card: {t.get('device', '?')}")
    lines.append(f"ceilings (bench): read {read_gbps / 1e3:.2f} TB/s, bf16 {bf16:.0f} TFLOP/s; "
                 f"(torch script): read {t['ceilings']['read_TBps']:.2f} TB/s, copy {t['ceilings']['copy_TBps']:.2f} TB/s, "
                 f"bf16 {t['ceilings']['bf16_TFLOPs']:.0f} TFLOP/s")
    lines.append("")
    stages = any(r[k] is not None for r in rows for k in ("align_us", "stage1_us", "stage2_us", "reduce_us"))
    sweep = any(r["best_sweep_us"] is not None for r in rows)
    lines.append("| model | M | torch µs | ours µs | ratio | target | met | % floor | floor target | met | bw floor µs | "
                 "flop floor µs |" + (" align / s1 / s2 / reduce µs |" if stages else "") + " config |" +
                 (" best sweep µs |" if sweep else ""))
    lines.append("|---" * (13 + stages + sweep) + "|")
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['M']} | {f(r['torch_us'])} | {f(r['ours_us'])} | {f(r['ratio'], '{:.2f}')} | "
            f"≤ {r['ratio_target']} | {'met' if r['ratio_met'] else 'NOT met'} | {r['pct_floor']:.0f}% ({r['pct_floor_kind']}) | "
            f"≥ {r['pct_floor_target']:.0f}% | {'met' if r['pct_floor_met'] else 'NOT met'} | {r['bw_floor_us']:.1f} | "
            f"{r['flop_floor_us']:.1f} |" +
            (f" {f(r['align_us'])} / {f(r['stage1_us'])} / {f(r['stage2_us'])} / {f(r['reduce_us'])} |" if stages else "") +
            f" `{r['config']}` |" + (f" {f(r['best_sweep_us'])} ({r['best_sweep_config']}) |" if sweep else ""))
    met_r = sum(r["ratio_met"] for r in rows)
    met_f = sum(r["pct_floor_met"] for r in rows)
    lines.append("")
    lines.append(f"ratio target met at {met_r}/{len(rows)} points; floor target met at {met_f}/{len(rows)} points")
    if a.anchors:
        anc = json.load(open(a.anchors))
        peer = {(p["model"], p["M"]): p for p in anc["rows"] if p.get("dtype", "bf16") == "bf16"}
        lines.append("")
        lines.append(f"Peers ({a.anchors.split('/')[-1]}: {anc.get('card', '?')}, {anc.get('date', '?')}; "
                     "their run, not this one):")
        lines.append("")
        lines.append("| model | M | ours µs | vLLM Triton bf16 µs | ours / vLLM | their torch µs | our torch µs | "
                     "our torch / theirs | experts hit ours / torch | ratio x torch hit / ours hit | "
                     "ratio target as % of larger floor |")
        lines.append("|---" * 11 + "|")
        for r in rows:
            p = peer.get((r["model"], r["M"]), {})
            v, pt = p.get("peer_vllm_triton_us"), p.get("peer_torch_grouped_mm_us")
            r["vllm_bf16_us"], r["peer_torch_us"] = v, pt
            r["ours_vs_vllm"] = r["ours_us"] / v if v else None
            allowed = r["ratio_target"] * r["torch_us"] if r["torch_us"] else None
            r["target_pct_of_floor"] = 100 * max(r["bw_floor_us"], r["flop_floor_us"]) / allowed if allowed else None
            lines.append(f"| {r['model']} | {r['M']} | {f(r['ours_us'])} | {f(v)} | {f(r['ours_vs_vllm'], '{:.2f}')} | "
                         f"{f(pt)} | {f(r['torch_us'])} | "
                         f"{f(r['torch_us'] / pt if pt and r['torch_us'] else None, '{:.2f}')} | "
                         f"{r['experts_hit']} / {r['torch_experts_hit']} | "
                         f"{f(r['ratio'] * r['torch_experts_hit'] / r['experts_hit'] if r['ratio'] and r['torch_experts_hit'] else None, '{:.2f}')} | "
                         f"{f(r['target_pct_of_floor'], '{:.0f}%')} |")
        faster = sum(1 for r in rows if r.get("ours_vs_vllm") is not None and r["ours_vs_vllm"] < 1)
        lines.append("")
        lines.append(f"faster than vLLM Triton bf16 at {faster}/{len(rows)} points")
    text = "\n".join(lines)
    print(text)
    if a.md:
        open(a.md, "w").write(text + "\n")
    if a.json:
        json.dump(dict(context=ctx, torch_device=t.get("device"), torch_ceilings=t["ceilings"],
                       read_gbps=read_gbps, bf16_tflops=bf16, rows=rows), open(a.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
