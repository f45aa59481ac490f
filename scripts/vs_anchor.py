#!/usr/bin/env python3
"""Our fused MoE layer beside its peers, as Markdown tables:

  * bf16 (bench_fused_moe.json, BM_fused_moe_layer medians): ours, torch._grouped_mm from the
    same run (bench/anchors/torch_moe_layer.py --json), vLLM's Triton figure of the anchor file
    (../shared/anchors/<card>-moe-layer.json), the ratios and our % of the larger floor;
  * fp8 (bench_fused_moe_q8.json, BM_q8_layer / BM_bf16_layer medians), when given: per-tensor
    and block-scaled fp8 beside vLLM's fp8 figure (per-tensor activation scale, per-expert
    weight scale: our fp8_tensor), fp8_block / fp8_tensor, and our bf16 / fp8_tensor.

Each table ends in summary lines against the large-M targets (thresholds are options):
bf16 points at M >= --large-m with at least --floor-pct % of the larger floor, the bf16
TFLOP/s and time at the largest M, bf16 / fp8_tensor at the largest M against
--fp8-speedup, and the points where fp8_block / fp8_tensor is at most --block-ratio.

Ratios are ours / theirs (below 1: ours is faster). Where our routing hits another number of
experts than the anchor's (small M: the weight bytes a layer must read differ), the bf16 row
says so and gives ours / vLLM per weight byte (the ratio times anchor's hit / ours); the summary
counts those points apart. Only compare files of one card: the anchor
file names its card, and this script refuses a bench run of another (--force to override).

  scripts/vs_anchor.py --bench B.json [--q8 Q.json] --torch T.json --anchors A.json [--out F.md]
"""
import argparse
import json
import re
import sys


def medians(path, prefix):
    """{(scheme or '', model, M): (median us, % floor, TFLOP/s, experts hit)} of the aggregate rows
    whose name starts with prefix."""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc.get("benchmarks", []):
        if b.get("aggregate_name") != "median" or not b["run_name"].startswith(prefix):
            continue
        parts = b["run_name"][len(prefix):].split("/")
        m = re.match(r"M:(\d+)$", parts[-3] if parts[-1] == "manual_time" else parts[-1])
        if not m:
            continue
        scheme = parts[0] if len(parts) >= 5 else ""
        model = parts[-4] if parts[-1] == "manual_time" else parts[-2]
        out[(scheme, model, int(m.group(1)))] = (b["real_time"], b.get("pct_floor"), b.get("TFLOPs"),
                                                 b.get("experts_hit"))
    return doc.get("context", {}), out


def fmt(x, spec=".1f"):
    return "-" if x is None else format(x, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def read_torch_rows(path):
    """{(model, M): torch us} of the --json output of bench/anchors/torch_moe_layer.py."""
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise ValueError(f"{path}: no 'rows' list: --torch takes the --json output of bench/anchors/torch_moe_layer.py "
                         "(torch_moe_layer.json; its --gbench-json form is for moe-harness report)")
    try:
        return {(r["model"], r["M"]): r["torch_grouped_mm_us"] for r in doc["rows"]}
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: a row without model, M or torch_grouped_mm_us ({e!r})") from None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, help="bench_fused_moe.json (moe-harness bench, with repetitions)")
    ap.add_argument("--q8", help="bench_fused_moe_q8.json")
    ap.add_argument("--torch", help="torch_moe_layer.json of the same run (the --json output of bench/anchors/torch_moe_layer.py)")
    ap.add_argument("--anchors", required=True, help="../shared/anchors/<card>-moe-layer.json")
    ap.add_argument("--out", help="write the Markdown here (default: stdout)")
    ap.add_argument("--force", action="store_true", help="compare runs of different cards")
    ap.add_argument("--floor-pct", type=float, default=75.0,
                    help="target: bf16 at M >= --large-m at least this %% of the larger floor (default 75)")
    ap.add_argument("--large-m", type=int, default=1024, help="smallest M of the floor target (default 1024)")
    ap.add_argument("--fp8-speedup", type=float, default=1.7,
                    help="target: bf16 / fp8_tensor time at the largest M at least this (default 1.7)")
    ap.add_argument("--block-ratio", type=float, default=1.15,
                    help="target: fp8_block / fp8_tensor time at most this at every point (default 1.15)")
    a = ap.parse_args()
    try:
        with open(a.anchors) as f:
            anchors = json.load(f)
        ctx, ours = medians(a.bench, "BM_fused_moe_layer/")
        torch_rows = {}
        if a.torch:
            torch_rows = read_torch_rows(a.torch)
        q8 = medians(a.q8, "BM_q8_layer/")[1] if a.q8 else {}
        q8_bf16 = medians(a.q8, "BM_bf16_layer/")[1] if a.q8 else {}
    except (OSError, ValueError, KeyError) as e:
        print(f"vs_anchor: {e}", file=sys.stderr)
        return 2
    card = anchors.get("card", "")
    device = ctx.get("moe_device", "")
    if device and device not in card and not a.force:
        print(f"vs_anchor: the bench ran on '{device}', the anchors are of '{card}' (--force to compare)",
              file=sys.stderr)
        return 2
    if not ours:
        print(f"vs_anchor: {a.bench} has no BM_fused_moe_layer medians (run with repetitions)", file=sys.stderr)
        return 2
    vllm = {(r["model"], r["M"], r["dtype"]): r["peer_vllm_triton_us"] for r in anchors["rows"]}
    anchor_hit = {(r["model"], r["M"]): r.get("experts_hit") for r in anchors["rows"] if r.get("dtype") == "bf16"}

    lines = [f"Ours on {device or '?'} (revision {ctx.get('moe_git_revision', '?')}), torch from the same run, "
             f"vLLM Triton from {a.anchors} ({card}, {anchors.get('date', '?')}). Ratios: ours / theirs.", "",
             "| model | M | ours µs | torch µs | vLLM µs | ours/torch | ours/vLLM | % floor | experts hit |",
             "|---|---|---|---|---|---|---|---|---|"]
    n = at_least_vllm = beat_torch = 0
    per_byte = []  # (model, M, ours/vLLM per weight byte) where the routings hit other experts
    for (_, model, M), (us, pct, _, hit) in sorted(ours.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        t, v = torch_rows.get((model, M)), vllm.get((model, M, "bf16"))
        rt, rv = ratio(us, t), ratio(us, v)
        n += 1
        at_least_vllm += rv is not None and rv <= 1.0
        beat_torch += rt is not None and rt < 1.0
        theirs = anchor_hit.get((model, M))
        hits = fmt(hit, ".0f")
        if hit and theirs and hit != theirs:
            rb = None if rv is None else rv * theirs / hit
            hits = f"{hit:.0f} (anchor {theirs}; per byte {fmt(rb, '.2f')})"
            if rv is not None and rv > 1.0:
                per_byte.append((model, M, rb))
        lines.append(f"| {model} | {M} | {us:.1f} | {fmt(t)} | {fmt(v)} | {fmt(rt, '.2f')} | {fmt(rv, '.2f')} | "
                     f"{fmt(pct)} | {hits} |")
    lines += ["", f"bf16: at least as fast as vLLM Triton at {at_least_vllm} of {n} points; "
                  f"faster than torch at {beat_torch} of {n}."]
    if per_byte:
        each = ", ".join(f"{m} {M} {r:.2f}" for m, M, r in per_byte)
        lines.append(f"bf16 slower than vLLM where our routing hits other experts than the anchor's, ours / vLLM "
                     f"per weight byte: {each} ({sum(r <= 1.0 for *_, r in per_byte)} of {len(per_byte)} at most 1).")
    large = [(model, M, pct) for (_, model, M), (_, pct, *_) in sorted(ours.items()) if M >= a.large_m]
    if large:
        met = sum(p is not None and p >= a.floor_pct for _, _, p in large)
        each = ", ".join("{} {} {} %".format(m, M, fmt(p, ".0f")) for m, M, p in large)
        lines.append(f"bf16 at M >= {a.large_m}: at least {a.floor_pct:g} % of the larger floor at {met} of "
                     f"{len(large)} points ({each}).")
    top_m = max(M for (_, _, M) in ours)
    each = ", ".join("{} {} TFLOP/s ({:.2f} ms)".format(m, fmt(tf, ".0f"), us / 1000)
                     for (_, m, M), (us, _, tf, _) in sorted(ours.items()) if M == top_m)
    lines.append(f"bf16 at M = {top_m}: {each}.")
    if q8:
        lines += ["", "| model | M | fp8_tensor µs | vLLM fp8 µs | ours/vLLM | fp8_block µs | block/tensor | "
                      "bf16 µs | bf16/fp8_tensor |", "|---|---|---|---|---|---|---|---|---|"]
        m = faster = 0
        blocks_met = blocks = 0
        for (scheme, model, M), (us, *_) in sorted(q8.items(), key=lambda kv: (kv[0][1], kv[0][2])):
            if scheme != "fp8_tensor":
                continue
            v = vllm.get((model, M, "fp8"))
            blk = q8.get(("fp8_block", model, M), (None, None))[0]
            b16 = q8_bf16.get(("", model, M), (None, None))[0]
            rv = ratio(us, v)
            rb = ratio(blk, us)
            blocks += rb is not None
            blocks_met += rb is not None and rb <= a.block_ratio
            m += 1
            faster += rv is not None and rv < 1.0
            lines.append(f"| {model} | {M} | {us:.1f} | {fmt(v)} | {fmt(rv, '.2f')} | {fmt(blk)} | "
                         f"{fmt(ratio(blk, us), '.2f')} | {fmt(b16)} | {fmt(ratio(b16, us), '.2f')} |")
        lines += ["", f"fp8 per-tensor: faster than vLLM's fp8 Triton at {faster} of {m} points."]
        q8_top = max((M for (sch, _, M) in q8 if sch == "fp8_tensor"), default=None)
        if q8_top is not None:
            speed = [(model, ratio(q8_bf16.get(("", model, M), (None,))[0], us))
                     for (sch, model, M), (us, *_) in sorted(q8.items()) if sch == "fp8_tensor" and M == q8_top]
            ok = sum(r is not None and r >= a.fp8_speedup for _, r in speed)
            each = ", ".join("{} {}".format(m, fmt(r, ".2f")) for m, r in speed)
            lines.append(f"fp8_tensor at M = {q8_top}: at least {a.fp8_speedup:g}x faster than bf16 for {ok} of "
                         f"{len(speed)} models ({each}).")
        lines.append(f"fp8_block within {a.block_ratio:g}x of fp8_tensor at {blocks_met} of {blocks} points.")
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
