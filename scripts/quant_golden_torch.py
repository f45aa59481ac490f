#!/usr/bin/env python3
"""Cross-checks data/quant/golden.json against PyTorch's own FP8/int8 conversions
(run on the GPU host, which has torch): scales = amax / qmax and inv = 1 / scale as
torch fp32 ops, codes = (x * inv).clamp(-max, max).to(float8_*) / round().clamp(...).
Also counts how often the seed's literal (x / scale).to(float8) differs.
Prints one line per case and a closing 'N passed, N failed' line.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from quant_golden import Case  # noqa: E402  (index mapping only)

FP8 = {"fp8_e4m3fn": (torch.float8_e4m3fn, 448.0), "fp8_e4m3fnuz": (torch.float8_e4m3fnuz, 240.0)}


def bits_to_f32(bits):
    t = torch.tensor(bits, dtype=torch.int64)
    t = torch.where(t >= 2**31, t - 2**32, t).to(torch.int32)
    return t.view(torch.float32)


def main():
    doc = json.load(open(os.path.join(os.path.dirname(__file__), "..", "data", "quant", "golden.json")))
    passed = failed = 0
    for c in doc["cases"]:
        if c["expect_error"]:
            continue
        B, R, C = c["shape"]
        case = Case(c["name"], c["qtype"], c["granularity"], (B, R, C), None, group=c["group"],
                    layout=c["group_layout"], block=tuple(c["block"]))
        x = bits_to_f32(c["x_bits"])
        seg = torch.tensor([case.scale_index(b, r, col) for b in range(B) for r in range(R) for col in range(C)])
        S = case.num_scales()
        qmax = 127.0 if c["qtype"] == "int8" else FP8[c["qtype"]][1]
        if c["static_scale"]:
            scale = bits_to_f32(c["static_scales_bits"])
        else:
            amax = torch.zeros(S, dtype=torch.float32).scatter_reduce(0, seg, x.abs(), reduce="amax")
            scale = amax / torch.tensor(qmax, dtype=torch.float32)
            scale = torch.where((scale > 0) & (scale < torch.finfo(torch.float32).tiny),
                                torch.tensor(torch.finfo(torch.float32).tiny), scale)
        inv = torch.where(scale == 0, torch.zeros_like(scale), torch.reciprocal(scale))
        v = x * inv[seg]
        v = torch.where(inv[seg] == 0, torch.zeros_like(v), v)
        if c["qtype"] == "int8":
            codes = torch.round(v).clamp(-127, 127).to(torch.int8).view(torch.uint8)
            by_div = None
        else:
            dt, mx = FP8[c["qtype"]]
            codes = v.clamp(-mx, mx).to(dt).view(torch.uint8)
            safe = torch.where(scale[seg] == 0, torch.ones_like(v), scale[seg])
            by_div = torch.where(scale[seg] == 0, torch.zeros_like(v), x / safe).clamp(-mx, mx).to(dt).view(torch.uint8)
        want = torch.tensor(c["codes"], dtype=torch.uint8)
        d_codes = int((codes != want).sum())
        d_scales = int((scale.view(torch.int32).to(torch.int64) & 0xFFFFFFFF != torch.tensor(c["scales_bits"])).sum())
        d_div = -1 if by_div is None else int((by_div != want).sum())
        ok = d_codes == 0 and d_scales == 0
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {c['name']}: {want.numel()} codes, {d_codes} differ from torch; "
              f"{S} scales, {d_scales} differ; seed's x/scale differs in {d_div} codes")
    print(f"torch {torch.__version__}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
