#!/usr/bin/env python3
"""Golden vectors for the quantization family (data/quant/golden.json).

Pure Python with exact rational arithmetic (fractions.Fraction): every fp32
operation (amax / qmax, 1 / scale, x * inv) is computed exactly and rounded to
fp32 by round_f32 below; FP8 codes come from an exhaustive nearest-value search
over the 128 magnitudes built from the format definitions; int8 rounds half to
even. It shares no code with the C++ (core/include/moe/fp8.hpp), only the
documented rules, so the CPU verify cases check the reference against an
independent implementation.

    python3 scripts/quant_golden.py > data/quant/golden.json
"""
import json
import math
import random
import struct
from fractions import Fraction

FLT_MIN = Fraction(1, 2**126)

FORMATS = {
    "fp8_e4m3fn": {"bias": 7, "max": Fraction(448), "neg_zero": True},
    "fp8_e4m3fnuz": {"bias": 8, "max": Fraction(240), "neg_zero": False},
}
QMAX = {"fp8_e4m3fn": Fraction(448), "fp8_e4m3fnuz": Fraction(240), "int8": Fraction(127)}


def round_half_even(q: Fraction) -> int:
    fl = math.floor(q)
    rem = q - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return fl


def round_f32(q: Fraction) -> Fraction:
    """Nearest fp32 value (ties to even), subnormals included; no overflow here."""
    if q == 0:
        return Fraction(0)
    sign = -1 if q < 0 else 1
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, -126)
    quantum = Fraction(2) ** (e - 23)
    r = round_half_even(a / quantum) * quantum
    assert r < Fraction(2) ** 128, "overflow"
    return sign * r


def f32_bits(v) -> int:
    return struct.unpack("<I", struct.pack("<f", float(v)))[0]


def fp8_magnitudes(fmt):
    bias = FORMATS[fmt]["bias"]
    mags = []
    for c in range(128):
        e, m = c >> 3, c & 7
        if fmt == "fp8_e4m3fn" and c == 0x7F:
            mags.append(None)  # NaN
            continue
        mags.append(Fraction(m, 8) * Fraction(2) ** (1 - bias) if e == 0 else (1 + Fraction(m, 8)) * Fraction(2) ** (e - bias))
    return mags


MAGS = {f: fp8_magnitudes(f) for f in FORMATS}


def fp8_encode(fmt, v: Fraction, negative: bool) -> int:
    mx = FORMATS[fmt]["max"]
    a = abs(v)
    if a >= mx:
        best = max(c for c, m in enumerate(MAGS[fmt]) if m is not None and m == mx)
    else:
        best, best_err = 0, None
        for c, m in enumerate(MAGS[fmt]):
            if m is None:
                continue
            err = abs(m - a)
            if best_err is None or err < best_err or (err == best_err and c % 2 == 0):
                best, best_err = c, err
    if best == 0 and not FORMATS[fmt]["neg_zero"]:
        return 0
    return (0x80 if negative else 0) | best


class Case:
    def __init__(self, name, qtype, gran, shape, xs, group=128, layout="row", block=(128, 128), static=None,
                 in_dtype="f32"):
        self.name, self.qtype, self.gran, self.shape = name, qtype, gran, shape
        self.xs = xs  # python floats, each an exact fp32 (and bf16 when in_dtype == "bf16") value
        self.group, self.layout, self.block, self.static, self.in_dtype = group, layout, block, static, in_dtype

    def scale_index(self, b, r, c):
        B, R, C = self.shape
        if self.gran == "per_tensor":
            return b
        if self.gran == "per_row":
            return b * R + r
        if self.gran == "per_group":
            G = -(-C // self.group)
            g = c // self.group
            return (b * G + g) * R + r if self.layout == "col" else (b * R + r) * G + g
        RB, CB = -(-R // self.block[0]), -(-C // self.block[1])
        return (b * RB + r // self.block[0]) * CB + c // self.block[1]

    def num_scales(self):
        B, R, C = self.shape
        return {"per_tensor": B, "per_row": B * R, "per_group": B * R * -(-C // self.group),
                "per_block": B * -(-R // self.block[0]) * -(-C // self.block[1])}[self.gran]

    def solve(self):
        B, R, C = self.shape
        S = self.num_scales()
        amax = [Fraction(0)] * S
        bad = [False] * S
        idx = lambda b, r, c: (b * R + r) * C + c
        for b in range(B):
            for r in range(R):
                for c in range(C):
                    x = self.xs[idx(b, r, c)]
                    s = self.scale_index(b, r, c)
                    if math.isnan(x) or math.isinf(x):
                        bad[s] = True
                    else:
                        amax[s] = max(amax[s], abs(Fraction(x)))
        qmax = QMAX[self.qtype]
        scales, invs = [], []
        for s in range(S):
            if self.static is not None:
                sc = Fraction(self.static[s])
            elif amax[s] == 0:
                sc = Fraction(0)
            else:
                sc = round_f32(amax[s] / qmax)
                if sc < FLT_MIN:
                    sc = FLT_MIN
            scales.append(sc)
            invs.append(Fraction(0) if sc == 0 else round_f32(1 / sc))
        codes = [0] * (B * R * C)
        for b in range(B):
            for r in range(R):
                for c in range(C):
                    x = self.xs[idx(b, r, c)]
                    s = self.scale_index(b, r, c)
                    if bad[s]:
                        continue
                    inv = invs[s]
                    if inv == 0:
                        codes[idx(b, r, c)] = 0
                        continue
                    v = round_f32(Fraction(x) * inv)
                    negative = math.copysign(1.0, x) < 0
                    if self.qtype == "int8":
                        q = max(-127, min(127, round_half_even(v)))
                        codes[idx(b, r, c)] = q & 0xFF
                    else:
                        codes[idx(b, r, c)] = fp8_encode(self.qtype, v, negative)
        return codes, scales, any(bad)

    def to_json(self):
        codes, scales, err = self.solve()
        d = {
            "name": self.name, "qtype": self.qtype, "granularity": self.gran, "shape": list(self.shape),
            "in_dtype": self.in_dtype, "group": self.group, "group_layout": self.layout,
            "block": list(self.block), "static_scale": self.static is not None,
            "x_bits": [f32_bits(x) for x in self.xs], "expect_error": err,
        }
        if self.static is not None:
            d["static_scales_bits"] = [f32_bits(s) for s in self.static]
        if not err:
            d["codes"] = codes
            d["scales_bits"] = [f32_bits(s) for s in scales]
        return d


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def bf16(v):
    b = struct.unpack("<I", struct.pack("<f", v))[0]
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return struct.unpack("<f", struct.pack("<I", b << 16))[0]


def randn(rng, n, mag=1.0, rounder=f32):
    return [rounder(rng.gauss(0.0, 1.0) * mag) for _ in range(n)]


def main():
    rng = random.Random(20261126)
    cases = []
    # Exact RNE ties: amax 448 -> scale 1, inv 1, so x * inv is x and midpoints stay ties.
    ties = [448.0, 1.0625, 1.1875, -1.0625, 0.0029296875, 0.0048828125, -0.0009765625, 17.0, 19.0, 300.0, 304.0,
            0.0, -0.0, 1e-7, -1e-7, 0.013671875]
    cases.append(Case("ties_fn_scale1", "fp8_e4m3fn", "per_tensor", (1, 1, len(ties)), ties))
    ties_uz = [240.0, 1.0625, 1.1875, -1.0625, 0.00146484375, -0.00048828125, 17.0, 19.0, 232.0, -0.0, 1e-7]
    cases.append(Case("ties_fnuz_scale1", "fp8_e4m3fnuz", "per_tensor", (1, 1, len(ties_uz)), ties_uz))
    cases.append(Case("per_tensor_fn_f32", "fp8_e4m3fn", "per_tensor", (1, 7, 33), randn(rng, 231, 3.0)))
    cases.append(Case("per_expert_int8_f32", "int8", "per_tensor", (3, 4, 10), randn(rng, 120, 0.7)))
    xs = []
    for r in range(5):
        xs += randn(rng, 64, 10.0 ** rng.uniform(-3, 3), bf16)
    cases.append(Case("per_token_fnuz_bf16", "fp8_e4m3fnuz", "per_row", (1, 5, 64), xs, in_dtype="bf16"))
    xs = []
    for r in range(3):
        xs += randn(rng, 300, 10.0 ** rng.uniform(-2, 2), bf16)
    cases.append(Case("per_group_fn_bf16", "fp8_e4m3fn", "per_group", (1, 3, 300), xs, in_dtype="bf16"))
    cases.append(Case("per_group_fn_colmajor", "fp8_e4m3fn", "per_group", (1, 3, 300), xs, layout="col",
                      in_dtype="bf16"))
    cases.append(Case("per_group_int8_g20", "int8", "per_group", (2, 2, 50), randn(rng, 200, 2.0), group=20))
    int8_ties = [127.0, 2.5, 3.5, -2.5, -3.5, 0.5, -0.5, 126.5, -127.0, 0.0]
    cases.append(Case("int8_ties_scale1", "int8", "per_row", (1, 1, len(int8_ties)), int8_ties))
    cases.append(Case("per_block_fnuz", "fp8_e4m3fnuz", "per_block", (2, 5, 7), randn(rng, 70, 5.0), block=(2, 3)))
    zero_tiny = [0.0] * 8 + [-0.0] * 8 + [f32(1e-40), f32(-3e-40), 0.0, f32(2e-41)] + [0.0] * 4
    cases.append(Case("zero_and_tiny_rows", "fp8_e4m3fn", "per_row", (1, 3, 8), zero_tiny))
    cases.append(Case("zero_and_tiny_rows_int8", "int8", "per_row", (1, 3, 8), zero_tiny))
    sat = [300.0, -300.0, 1000.0, -1e30, 224.0, 100.0, 0.0, -1.0]
    cases.append(Case("static_saturation_fn", "fp8_e4m3fn", "per_tensor", (1, 1, 8), sat, static=[0.5]))
    cases.append(Case("static_saturation_int8", "int8", "per_tensor", (1, 1, 8), sat, static=[0.5]))
    nan_in = randn(rng, 20)
    nan_in[13] = float("nan")
    cases.append(Case("nan_input_error", "fp8_e4m3fn", "per_row", (1, 4, 5), nan_in))
    inf_in = randn(rng, 20)
    inf_in[2] = float("inf")
    cases.append(Case("inf_input_error", "int8", "per_group", (1, 2, 10), inf_in, group=4))
    doc = {
        "generator": "scripts/quant_golden.py (pure Python, exact rational arithmetic, nearest-value search)",
        "cases": [c.to_json() for c in cases],
    }
    print(json.dumps(doc, separators=(",", ":")))


if __name__ == "__main__":
    main()
