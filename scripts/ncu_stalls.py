#!/usr/bin/env python3
"""Where one kernel's warps wait, per SASS instruction, from Nsight Compute's sampled warp
states (the Source Counters section): the answer to "is this kernel waiting on its data,
its MMAs or its epilogue?".

  profile  (GPU host) one launch of a kernel under ncu (--set full), then its SASS source
           page and details page exported as CSV, then the summary below:
             scripts/ncu_stalls.py profile --exe build-gpu/bench/bench_fused_moe_q8 \\
               --filter '^BM_q8_layer/fp8_tensor/mixtral_8x7b/M:4096/' \\
               --kernel grouped_gemm_ws_kernel --skip 2 --out DIR --tag fp8s1
           (--skip: launches of the kernel to pass over first; in the layer benchmarks the
           two GEMM stages alternate, so 2 is stage 1 of the second iteration, 3 stage 2.)
  summary  (anywhere) the summary of an exported SASS page (.csv or .csv.gz):
             scripts/ncu_stalls.py summary DIR/fp8s1.sass.csv [--top 25] [--json F]

The summary gives the samples by stall reason, then the code blocks: instructions that ran
equally often form one block (a loop body, an epilogue, a retry loop), listed by their share
of the samples with their share of the executed instructions and their commonest opcodes,
then the instructions with the most samples. Samples count warps, so a role with more warps
(the MMA warpgroups against one producer) weighs more.

Exit status: 0; 1 when ncu fails or the page has no instruction rows; 2 on a usage error.
"""
import argparse
import collections
import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


def number(text):
    try:
        return float(text.replace(",", "")) if text else 0.0
    except ValueError:
        return 0.0


def read_text(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        return f.read()


def parse_source_csv(text):
    """ncu --page source --csv --print-source sass: a kernel-name row, a header row, one row
    per instruction -> list of {address, source, opcode, samples, executed, stalls}."""
    rows = list(csv.reader(io.StringIO(text)))
    head = next((i for i, r in enumerate(rows) if "Address" in r and "Source" in r), None)
    if head is None:
        return []
    hdr = rows[head]
    ix = {h: i for i, h in enumerate(hdr)}
    reasons = [h for h in hdr if h.startswith("stall_") and not h.endswith("(Not Issued)")]
    out = []
    for r in rows[head + 1:]:
        if len(r) != len(hdr):
            continue
        words = r[ix["Source"]].split()
        opcode = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "")
        out.append({"address": r[ix["Address"]], "source": r[ix["Source"]].strip(), "opcode": opcode,
                    "samples": number(r[ix[SAMPLES]]) if SAMPLES in ix else 0.0,
                    "executed": int(number(r[ix[EXECUTED]])) if EXECUTED in ix else 0,
                    "stalls": {h[len("stall_"):]: number(r[ix[h]]) for h in reasons}})
    return out


def summarize(instrs, top=25, blocks=8):
    """The summary as a dict (shares in percent of all samples / executed instructions)."""
    total = sum(i["samples"] for i in instrs) or 1.0
    executed = sum(i["executed"] for i in instrs) or 1
    by_reason = collections.Counter()
    for i in instrs:
        by_reason.update(i["stalls"])
    groups = collections.defaultdict(list)
    for i in instrs:
        if i["executed"] > 0:
            groups[i["executed"]].append(i)
    block_list = []
    for count, members in groups.items():
        block_list.append({
            "executions": count, "instructions": len(members),
            "first": members[0]["address"], "last": members[-1]["address"],
            "samples_pct": round(100 * sum(m["samples"] for m in members) / total, 2),
            "executed_pct": round(100 * count * len(members) / executed, 2),
            "opcodes": collections.Counter(m["opcode"] for m in members).most_common(8)})
    block_list.sort(key=lambda b: -b["samples_pct"])
    ranked = sorted(instrs, key=lambda i: -i["samples"])[:top]
    return {
        "samples": total, "instructions": len(instrs), "executed": executed,
        "by_reason_pct": {k: round(100 * v / total, 2) for k, v in by_reason.most_common() if v > 0},
        "blocks": block_list[:blocks],
        "top": [{"address": i["address"], "source": i["source"], "executed": i["executed"],
                 "samples_pct": round(100 * i["samples"] / total, 2),
                 "reasons_pct": {k: round(100 * v / total, 2)
                                 for k, v in collections.Counter(i["stalls"]).most_common(3) if v > 0}}
                for i in ranked]}


def render(s):
    lines = [f"{s['instructions']} instructions, {s['executed']:,} executed (warp level), {s['samples']:,.0f} samples",
             "by reason: " + ", ".join(f"{k} {v:.1f}%" for k, v in s["by_reason_pct"].items() if v >= 0.5),
             "", "blocks (instructions run equally often), by share of the samples:"]
    for b in s["blocks"]:
        ops = ", ".join(f"{op} {n}" for op, n in b["opcodes"])
        lines.append(f"  {b['samples_pct']:5.1f}% samples {b['executed_pct']:5.1f}% executed  {b['instructions']:5d} instr "
                     f"x {b['executions']:,}  [{b['first']}..{b['last']}]  {ops}")
    lines += ["", "instructions with the most samples:"]
    for i in s["top"]:
        why = " ".join(f"{k}:{v:.1f}" for k, v in i["reasons_pct"].items())
        lines.append(f"  {i['address']:>16} {i['samples_pct']:5.1f}% x{i['executed']:>11,}  {i['source'][:64]:64s} {why}")
    return "\n".join(lines)


def profile(args):
    ncu = args.ncu or shutil.which("ncu") or "/usr/local/cuda/bin/ncu"
    if not os.access(ncu, os.X_OK):
        print(f"ncu_stalls: ncu not found ({ncu})", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    rep = os.path.join(args.out, args.tag)
    cmd = [ncu, "--set", "full", "--import-source", "no", "--clock-control", "none", "-k", f"regex:{args.kernel}",
           "--launch-skip", str(args.skip), "--launch-count", "1", "-f", "-o", rep,
           args.exe, f"--benchmark_filter={args.filter}", "--benchmark_repetitions=1"]
    with open(rep + ".log", "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout).returncode
    if rc != 0 or not os.path.exists(rep + ".ncu-rep"):
        print(f"ncu_stalls: ncu failed (rc {rc}; {rep}.log)", file=sys.stderr)
        return 1
    for page, suffix, extra in (("details", ".details.csv", []), ("source", ".sass.csv", ["--print-source", "sass"])):
        r = subprocess.run([ncu, "-i", rep + ".ncu-rep", "--page", page, "--csv", *extra], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"ncu_stalls: ncu --page {page} failed: {r.stderr.strip()[-200:]}", file=sys.stderr)
            return 1
        with open(rep + suffix, "w") as f:
            f.write(r.stdout)
    return summary_of(rep + ".sass.csv", args.top, rep + ".summary.json", rep + ".summary.txt")


def summary_of(path, top, json_out=None, text_out=None):
    instrs = parse_source_csv(read_text(path))
    if not instrs:
        print(f"ncu_stalls: no instruction rows in {path}", file=sys.stderr)
        return 1
    s = summarize(instrs, top)
    text = render(s)
    print(text)
    if json_out:
        with open(json_out, "w") as f:
            json.dump(s, f, indent=1)
    if text_out:
        with open(text_out, "w") as f:
            f.write(text + "\n")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile", help="one kernel launch under ncu, exported and summarized (GPU host)")
    p.add_argument("--exe", required=True, help="the benchmark binary")
    p.add_argument("--filter", required=True, help="its --benchmark_filter")
    p.add_argument("--kernel", required=True, help="kernel name regex (ncu -k regex:)")
    p.add_argument("--skip", type=int, default=2, help="launches of the kernel to pass over first (default 2)")
    p.add_argument("--out", required=True, help="folder for the report, its CSV pages and the summary")
    p.add_argument("--tag", required=True, help="file name stem in --out")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--timeout", type=int, default=180, help="seconds for the ncu run (default 180)")
    p.add_argument("--ncu", help="ncu binary (default: on PATH, else /usr/local/cuda/bin/ncu)")
    q = sub.add_parser("summary", help="the summary of an exported SASS source page")
    q.add_argument("csv", help="ncu --page source --csv --print-source sass output (.csv or .csv.gz)")
    q.add_argument("--top", type=int, default=25)
    q.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    if args.cmd == "summary":
        if not os.path.exists(args.csv):
            print(f"ncu_stalls: no file {args.csv}", file=sys.stderr)
            return 2
        return summary_of(args.csv, args.top, args.json)
    if args.skip < 0 or args.top < 1:
        print("ncu_stalls: --skip must be >= 0 and --top >= 1", file=sys.stderr)
        return 2
    return profile(args)


if __name__ == "__main__":
    sys.exit(main())
