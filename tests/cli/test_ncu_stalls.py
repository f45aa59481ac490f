#!/usr/bin/env python3
"""scripts/ncu_stalls.py's reading of ncu's SASS source page (run by `meson test`, from the
source root): the committed H100 profile of the fp8 stage-1 ws kernel (reports/h100-551bf58/
ncu-stalls) gives its K-loop and epilogue blocks, and a small page gives exact shares."""
import subprocess
import sys

from checks import check, finish

sys.path.insert(0, "scripts")
import ncu_stalls  # noqa: E402

RUN = "reports/h100-551bf58/ncu-stalls"
instrs = ncu_stalls.parse_source_csv(ncu_stalls.read_text(f"{RUN}/fp8s1_e2d460c.sass.csv.gz"))
s = ncu_stalls.summarize(instrs, top=5)
check("6632 instruction rows read", len(instrs) == 6632, len(instrs))
loop = s["blocks"][0]
check("the most sampled block is the MMA K loop: 166 instructions, 4 QGMMA, 64 FADD (promotion)",
      loop["instructions"] == 166 and ("FADD", 64) in loop["opcodes"]
      and sum(1 for i in instrs if i["executed"] == loop["executions"] and i["opcode"].startswith("QGMMA")) == 4,
      loop)
epi = [b for b in s["blocks"] if b["instructions"] > 1000]
check("two epilogue blocks of about 1290 instructions, 19 % of the samples together",
      len(epi) == 2 and 18.5 < sum(b["samples_pct"] for b in epi) < 19.5, epi)
check("the top instruction is the wgmma wait (WARPGROUP.DEPBAR), 9.2 %",
      s["top"][0]["source"].startswith("WARPGROUP.DEPBAR") and 9.1 < s["top"][0]["samples_pct"] < 9.3, s["top"][0])
check("the stall_ columns cover 95-100 % of the samples", 95 < sum(s["by_reason_pct"].values()) <= 100.5,
      s["by_reason_pct"])

page = ('"Kernel Name","k(int)",\n'
        '"Address","Source","Warp Stall Sampling (All Samples)","Instructions Executed","stall_wait","stall_barrier",'
        '"stall_wait (Not Issued)"\n'
        '"0x10","  FADD R1, R1, R2","30","1,000","30","0","30"\n'
        '"0x20","@!P0  BRA 0x10","60","1,000","0","60","60"\n'
        '"0x30","  EXIT","10","8","10","0","10"\n')
t = ncu_stalls.summarize(ncu_stalls.parse_source_csv(page), top=2)
check("small page: 100 samples, wait 40 %, barrier 60 % (not-issued columns not counted twice)",
      t["samples"] == 100 and t["by_reason_pct"] == {"barrier": 60.0, "wait": 40.0}, t["by_reason_pct"])
check("small page: the 2-instruction block x1000 holds 90 % of the samples, predicated opcode read",
      t["blocks"][0]["instructions"] == 2 and t["blocks"][0]["samples_pct"] == 90.0
      and ("BRA", 1) in t["blocks"][0]["opcodes"], t["blocks"][0])
check("small page: no rows without the header", ncu_stalls.parse_source_csv('"a","b"\n"1","2"\n') == [])

r = subprocess.run([sys.executable, "scripts/ncu_stalls.py", "summary", "no/such.csv"], capture_output=True, text=True)
check("summary of a missing file: exit 2, one line", r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r)
finish("cli_ncu_stalls")
