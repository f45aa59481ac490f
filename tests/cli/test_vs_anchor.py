#!/usr/bin/env python3
"""scripts/vs_anchor.py on the committed H100 run (run by `meson test`, from the source root).

The anchor file is written here (../shared is not part of the checkout): its vLLM figures
are set from ours, so the ratios and the counts of the summary lines are known; a file of
another card, a missing file or a torch file of the wrong form is one line on stderr with exit 2
and no output file.
"""
import json
import os
import subprocess
import sys
import tempfile

from checks import check, finish

RUN = "reports/h100-d837486"
SCRIPT = "scripts/vs_anchor.py"


def medians(path, prefix):
    with open(path) as f:
        return {b["run_name"]: b["real_time"] for b in json.load(f)["benchmarks"]
                if b.get("aggregate_name") == "median" and b["run_name"].startswith(prefix)}


def run(args):
    p = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


bf16 = medians(f"{RUN}/bench_fused_moe.json", "BM_fused_moe_layer/mixtral_8x7b/M:1/")
fp8 = medians(f"{RUN}/bench_fused_moe_q8.json", "BM_q8_layer/fp8_tensor/mixtral_8x7b/M:1/")
ours_bf16, ours_fp8 = next(iter(bf16.values())), next(iter(fp8.values()))
with open(f"{RUN}/torch_moe_layer.json") as f:
    torch_us = {(r["model"], r["M"]): r["torch_grouped_mm_us"] for r in json.load(f)["rows"]}[("mixtral_8x7b", 1)]

with tempfile.TemporaryDirectory() as tmp:
    def anchors(card, bf16_us=None, hit=None):
        path = os.path.join(tmp, f"anchors-{len(card)}-{hit}.json")
        with open(path, "w") as f:
            json.dump({"card": card, "date": "test", "rows": [
                {"model": "mixtral_8x7b", "M": 1, "dtype": "bf16", "peer_vllm_triton_us": bf16_us or 2 * ours_bf16,
                 "experts_hit": hit or 2},
                {"model": "mixtral_8x7b", "M": 1, "dtype": "fp8", "peer_vllm_triton_us": ours_fp8 / 2}]}, f)
        return path

    out = os.path.join(tmp, "vs.md")
    base = ["--bench", f"{RUN}/bench_fused_moe.json", "--q8", f"{RUN}/bench_fused_moe_q8.json",
            "--torch", f"{RUN}/torch_moe_layer.json"]
    rc, stdout, err = run(base + ["--anchors", anchors("NVIDIA H100 80GB HBM3, test"), "--out", out])
    text = open(out).read() if os.path.exists(out) else ""
    row = next((l for l in text.splitlines() if l.startswith("| mixtral_8x7b | 1 |")), "")
    cells = [c.strip() for c in row.strip("|").split("|")]
    check("same card: exit 0, the table written", rc == 0 and row != "", f"rc={rc} err={err!r}")
    check("bf16 row: ours, torch, vLLM and the ratios", len(cells) == 9 and
          cells[2] == f"{ours_bf16:.1f}" and cells[3] == f"{torch_us:.1f}" and cells[5] == f"{ours_bf16 / torch_us:.2f}"
          and cells[6] == "0.50", row)
    check("bf16 summary: 1 of 18 at least as fast as vLLM (the others have no figure)",
          "at least as fast as vLLM Triton at 1 of 18 points" in text, text[-300:])
    fp8_row = [l for l in text.splitlines() if l.startswith("| mixtral_8x7b | 1 |")][1:2]
    check("fp8 row: ours / vLLM = 2.00", fp8_row and fp8_row[0].split("|")[5].strip() == "2.00", fp8_row)
    check("fp8 summary: faster at 0 of 18", "faster than vLLM's fp8 Triton at 0 of 18 points" in text, text[-200:])

    # The target lines, counted here from the same medians.
    with open(f"{RUN}/bench_fused_moe.json") as f:
        rows = [b for b in json.load(f)["benchmarks"]
                if b.get("aggregate_name") == "median" and b["run_name"].startswith("BM_fused_moe_layer/")]
    large = [b for b in rows if b["M"] >= 1024]
    floor_met = sum(b["pct_floor"] >= 75 for b in large)
    check("floor target line: counted over M >= 1024",
          f"at least 75 % of the larger floor at {floor_met} of {len(large)} points" in text, text[-900:])
    with open(f"{RUN}/bench_fused_moe_q8.json") as f:
        q = {b["run_name"].split("/iterations")[0]: b["real_time"] for b in json.load(f)["benchmarks"]
             if b.get("aggregate_name") == "median" and b["run_name"].startswith("BM_q8_layer/")}
    pairs = [(q[k], q[k.replace("fp8_tensor", "fp8_block")]) for k in q if "/fp8_tensor/" in k]
    block_met = sum(blk / ten <= 1.15 for ten, blk in pairs)
    check("fp8_block target line", f"fp8_block within 1.15x of fp8_tensor at {block_met} of {len(pairs)} points" in text,
          text[-300:])
    check("M = 4096 lines: TFLOP/s per model and fp8 / bf16 per model",
          "bf16 at M = 4096: deepseek_v3" in text and "fp8_tensor at M = 4096: at least 1.7x faster than bf16" in text,
          text[-900:])
    rc, stdout, err = run(base + ["--anchors", anchors("NVIDIA H100 80GB HBM3, test"), "--floor-pct", "0",
                                  "--block-ratio", "100"])
    check("targets are options", rc == 0 and f"at least 0 % of the larger floor at {len(large)} of {len(large)}" in stdout
          and f"within 100x of fp8_tensor at {len(pairs)} of {len(pairs)}" in stdout, stdout[-600:])

    check("same experts hit: no per-byte line", "per weight byte" not in text and row.endswith("| 2 |"), row)
    # The anchor's routing hit 1 expert where ours hit 2: vLLM at 0.8x our time is 1.25 per run
    # and 0.62 per weight byte (1.25 * 1 / 2).
    rc, stdout, err = run(base + ["--anchors", anchors("NVIDIA H100 80GB HBM3, test", 0.8 * ours_bf16, 1)])
    row = next((l for l in stdout.splitlines() if l.startswith("| mixtral_8x7b | 1 |")), "")
    check("other experts hit: the row says so, with the ratio per weight byte",
          rc == 0 and row.split("|")[7].strip() == "1.25" and "2 (anchor 1; per byte 0.62)" in row, row)
    check("other experts hit: the summary line counts it apart",
          "ours / vLLM per weight byte: mixtral_8x7b 1 0.62 (1 of 1 at most 1)" in stdout, stdout[-900:])

    os.remove(out)
    rc, stdout, err = run(base + ["--anchors", anchors("NVIDIA H200"), "--out", out])
    check("another card: exit 2, one line, no output file",
          rc == 2 and len(err.strip().splitlines()) == 1 and "--force" in err and not os.path.exists(out),
          f"rc={rc} err={err!r}")
    rc, stdout, err = run(base + ["--anchors", anchors("NVIDIA H200"), "--force"])
    check("another card with --force: exit 0", rc == 0 and "| mixtral_8x7b | 1 |" in stdout, f"rc={rc} err={err!r}")
    rc, stdout, err = run(["--bench", f"{RUN}/bench_fused_moe.json", "--torch", f"{RUN}/torch_moe_layer.gbench.json",
                           "--anchors", anchors("NVIDIA H100 80GB HBM3, test"), "--out", out])
    check("--torch given the Google Benchmark form: exit 2, one line naming the expected file, no output file",
          rc == 2 and len(err.strip().splitlines()) == 1 and "torch_moe_layer.json" in err and "--gbench-json" in err
          and not os.path.exists(out), f"rc={rc} err={err!r}")
    rc, stdout, err = run(["--bench", os.path.join(tmp, "missing.json"), "--anchors", anchors("x"), "--out", out])
    check("a missing file: exit 2, one line, no output file",
          rc == 2 and len(err.strip().splitlines()) == 1 and not os.path.exists(out), f"rc={rc} err={err!r}")

finish("vs_anchor")
