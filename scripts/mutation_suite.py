#!/usr/bin/env python3
"""Checker power on the GPU host: mutants of the real kernels must fail `verify`,
and the unmutated kernels must pass it over fresh seeds.

  scripts/mutation_suite.py --build build-gpu --out DIR [--mutants a,b] [--seeds 20] [--budget-s 500]

Each mutant is a small source edit (exact text, every occurrence replaced; the
edit must match or the mutant is reported "not applied"). For each mutant: edit,
rebuild moe-harness incrementally, run `verify --quick` on the families it
touches, restore the sources. A mutant is caught when at least one case fails.
Then `verify --quick --seed S` of the fused layers for S = 1..--seeds on the
restored build: no case may fail. The sources are restored and the build is
brought back to the unmutated state on every exit path.

Writes DIR/mutation_suite.json and DIR/mutation_suite.md. Exit 0 when every
applied mutant was caught and no seed run failed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

FMOE = "kernels/fused_moe/fused_moe_kernels.cuh"
FMOE_DEV = "kernels/fused_moe/fmoe_device.cuh"
Q8 = "kernels/fused_moe_q8/q8_kernels.cuh"
QUANT = "kernels/quant/quant_kernels.cuh"
ALIGN = "kernels/moe_align/moe_align_kernels.cuh"
WS = "kernels/fused_moe/ws_kernel.cuh"  # the warp-specialized core (bf16 layer beyond 24 rows per expert)

# name: (what it models, families verified, [(file, old, new)])
MUTANTS = {
    "silu_x1.005": ("SiLU output 0.5 % high (stage 1)", ["fused_moe", "fused_moe_q8"],
                    [(FMOE_DEV, "return g / (1.0f + __expf(-g));", "return 1.005f * g / (1.0f + __expf(-g));")]),
    "routed_weight_x1.005": ("routed weight 0.5 % high", ["fused_moe"],
                             [(FMOE, "? p.topk_weights[id] : 0.0f", "? p.topk_weights[id] * 1.005f : 0.0f")]),
    "down_proj_x1.005": ("down-projection output 0.5 % high (stage-2 epilogue)", ["fused_moe"],
                         [(FMOE, "const float sc = p.scale_mode == 2 ? s_w[r] : 1.0f;",
                           "const float sc = 1.005f * (p.scale_mode == 2 ? s_w[r] : 1.0f);")]),
    "reduce_drops_slot": ("the top-k reduce drops token 0's second expert", ["fused_moe", "fused_moe_q8"],
                          [(FMOE, "if (e < 0 || e >= p.experts) continue;",
                            "if (e < 0 || e >= p.experts || (t == 0 && j == 1)) continue;")]),
    "gate_up_swapped": ("gate and up accumulators swapped", ["fused_moe"],
                        [(FMOE, "const float g = acc[mi][2 * pj][i + e] * sc;\n"
                                "              const float u = acc[mi][2 * pj + 1][i + e] * sc;",
                          "const float g = acc[mi][2 * pj + 1][i + e] * sc;\n"
                          "              const float u = acc[mi][2 * pj][i + e] * sc;")]),
    "k_slice_skipped": ("the main loops skip the MMAs of their second K slice", ["fused_moe", "fused_moe_q8"],
                        [(FMOE_DEV, "compute(it % STAGES, it);", "if (it != 1) compute(it % STAGES, it);"),
                         ("kernels/fused_moe/wgmma.cuh", "mma(it % STAGES);", "if (it != 1) mma(it % STAGES);")]),
    "q8_out_scale_x1.005": ("q8 stage-2 activation scale 0.5 % high", ["fused_moe_q8"],
                            [(Q8, "const float as = p.a_scale[s_arow[r] * p.a_rs];",
                              "const float as = 1.005f * p.a_scale[s_arow[r] * p.a_rs];")]),
    "q8_block_scale_neighbour": ("block-128 weight scale taken from the neighbouring K block", ["fused_moe_q8"],
                                 [(Q8, "* p.w_es + g * p.w_gs;", "* p.w_es + (g ^ 1) * p.w_gs;")]),
    "quant_scale_exponent": ("quantizer writes its per-row scale with the exponent one too high", ["quant"],
                             [(QUANT, "    scales[row] = scale;", "    scales[row] = 2.0f * scale;")]),
    "align_padding_expert": ("moe_align gives unused blocks expert 0 instead of -1", ["moe_align"],
                             [(ALIGN, "find_expert(start, E, static_cast<int>(j << p.log2_bs)) : -1;",
                               "find_expert(start, E, static_cast<int>(j << p.log2_bs)) : 0;")]),
    "ws_gate_up_swapped": ("warp-specialized core: gate and up accumulators swapped", ["fused_moe"],
                           [(WS, "const int gi = 4 * j + 2 * h + e, ui = 4 * (j + kHalf) + 2 * h + e;",
                             "const int ui = 4 * j + 2 * h + e, gi = 4 * (j + kHalf) + 2 * h + e;")]),
    "ws_k_slice_skipped": ("warp-specialized core: the MMAs of each tile's second K slice skipped", ["fused_moe"],
                           [(WS, "Op::template mma<BN>(acc,", "if (kk != 1) Op::template mma<BN>(acc,")]),
    "ws_rows_unswizzled": ("warp-specialized core: gathered rows written without the 128-byte swizzle", ["fused_moe"],
                           [(WS, "((kc ^ (r & 7)) << 4)", "(kc << 4)")]),
    "ws_routed_weight_x1.005": ("warp-specialized core: routed weight 0.5 % high", ["fused_moe"],
                                [(WS, "? p.topk_weights[id] : 1.0f;", "? p.topk_weights[id] * 1.005f : 1.0f;")]),
}


def sh(cmd, log, timeout):
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        try:
            return subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            f.write("timeout\n")
            return 124


def verify(exe, families, json_out, log, seed=None):
    cmd = [exe, "verify", "--quick", "--json", json_out]
    for fam in families:
        cmd += ["--kernel", fam]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    rc = sh(cmd, log, 300)
    try:
        with open(json_out) as f:
            cases = json.load(f)["cases"]
    except (OSError, ValueError, KeyError):
        return {"rc": rc, "passed": 0, "failed": 0, "failed_cases": [], "error": "no results"}
    failed = [c["name"] for c in cases if c["status"] == "fail"]
    return {"rc": rc, "passed": sum(c["status"] == "pass" for c in cases), "failed": len(failed),
            "failed_cases": [f"{c['kernel']}/{c['name']}: {c.get('message', '')[:160]}"
                             for c in cases if c["status"] == "fail"][:5]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-gpu")
    ap.add_argument("--out", required=True)
    ap.add_argument("--mutants", default=",".join(MUTANTS))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget-s", type=float, default=1e9, help="stop starting new work after this many seconds")
    a = ap.parse_args()
    names = [n for n in a.mutants.split(",") if n]
    unknown = [n for n in names if n not in MUTANTS]
    if unknown:
        print(f"mutation_suite: unknown mutant(s) {', '.join(unknown)}; known: {', '.join(MUTANTS)}", file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    log = os.path.join(a.out, "mutation_suite.log")
    exe = os.path.join(ROOT, a.build, "harness/cli/moe-harness")
    t0 = time.time()
    results = {"mutants": [], "seeds": []}
    saved = {}
    try:
        for name in names:
            if time.time() - t0 > a.budget_s:
                results["mutants"].append({"name": name, "status": "not run (time budget)"})
                continue
            what, families, edits = MUTANTS[name]
            row = {"name": name, "what": what, "families": families}
            applied = True
            for path, old, new in edits:
                full = os.path.join(ROOT, path)
                text = saved.get(full) or open(full).read()
                saved.setdefault(full, text)
                cur = open(full).read()
                if old not in cur:
                    applied = False
                    break
                with open(full, "w") as f:
                    f.write(cur.replace(old, new))
            if not applied:
                row["status"] = "not applied (source text not found)"
            else:
                t1 = time.time()
                rc = sh(["ninja", "-C", a.build, "harness/cli/moe-harness"], log, 600)
                row["build_s"] = round(time.time() - t1, 1)
                if rc != 0:
                    row["status"] = "build failed"
                else:
                    t1 = time.time()
                    v = verify(exe, families, os.path.join(a.out, f"verify-{name}.json"), log)
                    row.update(v)
                    row["verify_s"] = round(time.time() - t1, 1)
                    row["status"] = "caught" if v["failed"] > 0 else "MISSED"
            for full, text in saved.items():
                with open(full, "w") as f:
                    f.write(text)
            saved.clear()
            results["mutants"].append(row)
            print(f"[+{time.time() - t0:.0f}s] {name}: {row['status']} "
                  f"({row.get('failed', 0)} of {row.get('failed', 0) + row.get('passed', 0)} cases failed)", flush=True)
    finally:
        for full, text in saved.items():
            with open(full, "w") as f:
                f.write(text)
        rc = sh(["ninja", "-C", a.build, "harness/cli/moe-harness"], log, 600)
        results["restored_build_rc"] = rc
    if rc == 0:
        for seed in range(1, a.seeds + 1):
            if time.time() - t0 > a.budget_s:
                results["seeds"].append({"seed": seed, "status": "not run (time budget)"})
                continue
            v = verify(exe, ["fused_moe", "fused_moe_q8"], os.path.join(a.out, f"verify-seed{seed}.json"), log, seed)
            v["seed"] = seed
            v["status"] = "pass" if v["failed"] == 0 and v["passed"] > 0 else "FAIL"
            results["seeds"].append(v)
            print(f"[+{time.time() - t0:.0f}s] seed {seed}: {v['passed']} passed, {v['failed']} failed", flush=True)
    results["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(a.out, "mutation_suite.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = ["| mutant | what | families | status | failed / cases |", "|---|---|---|---|---|"]
    for m in results["mutants"]:
        lines.append(f"| {m['name']} | {m.get('what', '')} | {','.join(m.get('families', []))} | {m['status']} | "
                     f"{m.get('failed', '-')} / {m.get('failed', 0) + m.get('passed', 0)} |")
    seeds_run = [s for s in results["seeds"] if "passed" in s]
    lines.append("")
    lines.append(f"Unmutated kernels, `verify --quick --kernel fused_moe --kernel fused_moe_q8 --seed S`: "
                 f"{sum(s['status'] == 'pass' for s in seeds_run)} of {len(seeds_run)} seeds pass.")
    with open(os.path.join(a.out, "mutation_suite.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    ok = (rc == 0 and all(m["status"] == "caught" for m in results["mutants"] if m["status"] in ("caught", "MISSED"))
          and all(s["status"] == "pass" for s in seeds_run))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
