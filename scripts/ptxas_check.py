#!/usr/bin/env python3
"""Compile the translation units that hold the Hopper-only code (wgmma, TMA, the
warp-specialized core) for sm_90a and check what ptxas made of them:

  * no warp-specialized kernel (grouped_gemm_ws_kernel) spills to local memory;
  * no 8-bit cp.async / wgmma kernel (q8_gemm_kernel) runs fewer blocks per SM than its
    shared memory allows because of its registers (sm_90: 64 K registers and 228 KiB per
    SM): a silent loss of bytes in flight on the bandwidth-bound decode tiles;
  * ptxas never serializes wgmma ("wgmma.mma_async instructions are serialized"),
    which would cost most of the MMA rate without any test failing;
  * where cuobjdump is present (the GPU host's toolkit; Debian has none), the SASS
    of every warp-specialized kernel holds the bulk tensor loads (UTMALDG) and the
    Hopper MMAs of its operand type (HGMMA bf16/fp16, QGMMA fp8, IGMMA int8).

The CUDA build of CI is for sm_90 (the portable tiles), so this is also its compile
check of the sm_90a code. Writes OUT/ptxas_check.json (every kernel: registers,
spills, SASS opcode counts) and prints one line per warp-specialized kernel.
Exit 0 when every check holds, 1 when one fails, 2 on a usage or toolchain error.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The units holding Hopper-only code: every .hip or .cu file under kernels/ and tests/ that
# includes one of these headers (the tile instances, the ws core, TMA, wgmma).
HOPPER_HEADERS = re.compile(
    r'#include "kernels/fused_moe(_q8)?/(ws_kernel|fused_moe_instances|q8_instances|tma|wgmma|q8_wgmma)\.cuh"')


def hopper_units():
    units = []
    for top in ("kernels", "tests"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                path = os.path.join(folder, f)
                if f.endswith((".hip", ".cu")) and HOPPER_HEADERS.search(open(path, errors="replace").read()):
                    units.append(os.path.relpath(path, ROOT))
    return sorted(units)

SASS_OPS = ["UTMALDG", "UTMASTG", "HGMMA", "QGMMA", "IGMMA", "HMMA", "IMMA", "LDL", "STL", "SYNCS"]
SERIALIZED = re.compile(r"wgmma\.mma_async instructions are serialized[^\n]*")
FUNC = re.compile(r"Function properties for (\S+)")
SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers")
STATIC_SMEM = re.compile(r"(\d+) bytes smem")


def find_tool(name, nvcc):
    """A CUDA tool beside nvcc (its toolkit's bin), else on PATH."""
    real = os.path.realpath(nvcc)
    beside = os.path.join(os.path.dirname(real), name)
    return beside if os.access(beside, os.X_OK) else shutil.which(name)


def demangle(names):
    filt = shutil.which("c++filt")
    if not filt or not names:
        return {n: n for n in names}
    out = subprocess.run([filt], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out)) if len(out) == len(names) else {n: n for n in names}


def parse_ptxas(log):
    """ptxas -v output -> {mangled name: {stack, spill_stores, spill_loads, registers, static_smem}}."""
    kernels, current = {}, None
    for line in log.splitlines():
        m = FUNC.search(line)
        if m:
            current = m.group(1)
            kernels.setdefault(current, {})
            continue
        if current is None:
            continue
        m = SPILL.search(line)
        if m:
            kernels[current].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
            continue
        m = USED.search(line)
        if m:
            kernels[current]["registers"] = int(m.group(1))
            s = STATIC_SMEM.search(line)
            kernels[current]["static_smem"] = int(s.group(1)) if s else 0
            current = None
    return kernels


def parse_sass(text):
    """cuobjdump -sass output -> {mangled name: {opcode: count}} for SASS_OPS."""
    counts, current = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            current = m.group(1)
            counts[current] = {op: 0 for op in SASS_OPS}
            continue
        if current is None:
            continue
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", line)
        if m:
            op = m.group(1)
            if op in counts[current]:
                counts[current][op] += 1
    return counts


def compile_unit(unit, nvcc, arch, out_dir):
    base = os.path.splitext(os.path.basename(unit))[0]
    cubin = os.path.join(out_dir, base + ".cubin")
    cmd = [nvcc, "-x", "cu", "-std=c++20", "-O3", "--expt-relaxed-constexpr", "-DMOE_BACKEND_CUDA",
           f"-gencode=arch=compute_{arch[3:]},code={arch}", "-I" + os.path.join(ROOT, "core/include"), "-I" + ROOT,
           "-Xptxas", "-v", "-cubin", os.path.join(ROOT, unit), "-o", cubin]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    log = r.stdout + r.stderr
    with open(os.path.join(out_dir, base + ".ptxas.log"), "w") as f:
        f.write(log)
    return unit, r.returncode, log, cubin, time.time() - t0


# q8_gemm_kernel<INT8, BM, BN, BK, WM, WN, STAGES, STAGE, WGMMA, BLOCK, MIN_BLOCKS>
# (kernels/fused_moe_q8/q8_kernels.cuh)
Q8_KERNEL = re.compile(
    r"q8_gemm_kernel<(?:true|false), (\d+), (\d+), (\d+), (\d+), (\d+), (\d+), \d+, (true|false), (?:true|false), \d+>")


def q8_blocks_per_sm(name, registers, static_smem):
    """(blocks per SM its registers allow, blocks its shared memory and threads allow) of a
    q8_gemm_kernel on sm_90, or None for other kernels. Registers go to warps in units of 256;
    the tile's shared memory is its ring (the layout q8_tile_smem_bytes defines: stages x
    (block_m + block_n) x block_k bytes, + 1 KiB of swizzle alignment for wgmma), the static
    arrays ptxas reports, and the 1 KiB the SM reserves per block. This derives the blocks
    independently of the kernel's launch bounds (q8_min_blocks_per_sm), so it checks them."""
    m = Q8_KERNEL.search(name)
    if not m or registers is None:
        return None
    bm, bn, bk, wm, wn, stages = map(int, m.groups()[:6])
    threads = wm * wn * 32
    smem = stages * (bm + bn) * bk + (1024 if m.group(7) == "true" else 0) + static_smem
    per_warp = -(-registers * 32 // 256) * 256
    by_regs = 65536 // (per_warp * (threads // 32))
    return by_regs, min((228 * 1024) // (smem + 1024), 2048 // threads)


def operand_mma(name):
    """The Hopper MMA opcode a warp-specialized kernel's operand policy must use."""
    if "Bf16WsOp" in name:
        return "HGMMA"
    m = re.search(r"Q8WsOp<(true|false)", name)
    if m:
        return "IGMMA" if m.group(1) == "true" else "QGMMA"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="ptxas-check", help="folder for the cubins, logs and ptxas_check.json")
    ap.add_argument("--arch", default="sm_90a", help="the Hopper target (default sm_90a)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--sass", choices=["auto", "yes", "no"], default="auto",
                    help="check the SASS opcodes (needs cuobjdump; auto: where it is found)")
    ap.add_argument("--keep-cubins", action="store_true", help="keep the compiled cubins in --out")
    args = ap.parse_args()
    if not re.fullmatch(r"sm_9\da", args.arch):
        print(f"ptxas_check: --arch {args.arch}: the wgmma/TMA code needs an sm_9Xa target", file=sys.stderr)
        return 2
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else None)
    if not nvcc:
        print("ptxas_check: nvcc not found (PATH or /usr/local/cuda/bin)", file=sys.stderr)
        return 2
    cuobjdump = find_tool("cuobjdump", nvcc) if args.sass != "no" else None
    if args.sass == "yes" and not cuobjdump:
        print("ptxas_check: --sass yes but cuobjdump is not beside nvcc or on PATH", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)

    failures, kernels = [], []
    units = hopper_units()
    if not units:
        print("ptxas_check: no .hip or .cu unit under kernels/ or tests/ includes the Hopper headers", file=sys.stderr)
        return 2
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda u: compile_unit(u, nvcc, args.arch, args.out), units))
    for unit, rc, log, cubin, secs in results:
        print(f"ptxas_check: {unit}: nvcc rc {rc} in {secs:.0f} s", flush=True)
        if rc != 0:
            last = log.strip().splitlines()[-1] if log.strip() else "no output"
            failures.append(f"{unit}: nvcc failed (rc {rc}): {last}")
            continue
        for m in SERIALIZED.finditer(log):
            failures.append(f"{unit}: ptxas serialized wgmma: {m.group(0).strip()}")
        props = parse_ptxas(log)
        sass = {}
        if cuobjdump:
            d = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True)
            if d.returncode != 0:
                failures.append(f"{unit}: cuobjdump -sass failed: {d.stderr.strip()[:200]}")
            else:
                sass = parse_sass(d.stdout)
        if not args.keep_cubins:
            os.remove(cubin)
        names = demangle(sorted(props))
        for mangled, p in sorted(props.items()):
            k = {"unit": unit, "mangled": mangled, "name": names[mangled], **p}
            if mangled in sass:
                k["sass"] = sass[mangled]
            kernels.append(k)
            occupancy = q8_blocks_per_sm(names[mangled], p.get("registers"), p.get("static_smem", 0))
            if occupancy:
                k["blocks_per_sm_by_registers"], k["blocks_per_sm_by_smem"] = occupancy
                if occupancy[0] < occupancy[1]:
                    failures.append(f"{unit}: {names[mangled]}: {p.get('registers')} registers allow {occupancy[0]} "
                                    f"block(s) per SM where its shared memory allows {occupancy[1]}")
            if "grouped_gemm_ws_kernel" not in names[mangled]:
                continue
            spills = p.get("spill_stores", 0) + p.get("spill_loads", 0)
            line = f"  {names[mangled]}: {p.get('registers', '?')} registers, spill {p.get('spill_stores', 0)}/{p.get('spill_loads', 0)} bytes"
            if spills:
                failures.append(f"{unit}: {names[mangled]} spills ({p.get('spill_stores')} bytes stored, {p.get('spill_loads')} loaded)")
            if cuobjdump and "sass" not in k:
                failures.append(f"{unit}: {names[mangled]} not found in cuobjdump's SASS listing")
            if "sass" in k:
                mma = operand_mma(names[mangled])
                s = k["sass"]
                line += ", SASS " + " ".join(f"{op} {s[op]}" for op in ("UTMALDG", mma or "HGMMA", "LDL", "STL"))
                if s["UTMALDG"] == 0:
                    failures.append(f"{unit}: {names[mangled]} has no UTMALDG (bulk tensor load) in its SASS")
                if mma and s[mma] == 0:
                    failures.append(f"{unit}: {names[mangled]} has no {mma} in its SASS")
            print(line, flush=True)

    ws = [k for k in kernels if "grouped_gemm_ws_kernel" in k["name"]]
    if not ws and not any("nvcc failed" in f for f in failures):
        failures.append("no grouped_gemm_ws_kernel instance found in the compiled units")
    nvcc_version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    report = {
        "arch": args.arch,
        "nvcc": nvcc_version[-1] if nvcc_version else "",
        "sass_checked": bool(cuobjdump),
        "units": units,
        "ws_kernels": len(ws),
        "failures": failures,
        "kernels": kernels,
    }
    tmp = os.path.join(args.out, "ptxas_check.json.tmp")
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.replace(tmp, os.path.join(args.out, "ptxas_check.json"))
    for f in failures:
        print("FAIL " + f)
    sass_note = "SASS checked" if cuobjdump else "SASS not checked (no cuobjdump)"
    print(f"ptxas_check: {len(ws)} warp-specialized kernels, {len(kernels)} kernels, {sass_note}, "
          f"{len(failures)} failure(s); {os.path.join(args.out, 'ptxas_check.json')}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
