"""Each CPU reference on a small case against a hand-worked or NumPy expectation."""
import numpy as np
import pytest

import moe_harness as mh
from numpy_ref import bf16_bits, bf16_values, fused_moe_loop

SIZES = dict(model_dim=32, inter_dim=16, experts=6, top_k=2)


def test_moe_align_worked_example():
    # core/include/moe/contract/moe_align.hpp's example.
    ids = np.array([[2, 0], [2, 3], [-1, 2]], dtype=np.int64)
    r = mh.moe_align(ids, num_experts=4, block_size=16)
    s = 6
    assert r["num_tokens_post_padded"] == 48
    np.testing.assert_array_equal(r["sorted_token_ids"], [1] + [s] * 15 + [0, 2, 5] + [s] * 13 + [3] + [s] * 15)
    np.testing.assert_array_equal(r["expert_ids"], [0, 2, 3])
    mapped = mh.moe_align(ids, num_experts=4, block_size=16, expert_map=np.array([-1, -1, 0, 1], dtype=np.int32))
    assert mapped["num_tokens_post_padded"] == 32
    np.testing.assert_array_equal(mapped["expert_ids"], [0, 1])


def test_moe_align_matches_numpy_grouping():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 8, size=(40, 3)).astype(np.int32)
    r = mh.moe_align(ids, num_experts=8, block_size=16)
    flat = ids.reshape(-1)
    want, blocks = [], []
    for e in range(8):
        slots = list(np.nonzero(flat == e)[0])
        if slots:
            pad = -len(slots) % 16
            want += slots + [flat.size] * pad
            blocks += [e] * ((len(slots) + pad) // 16)
    np.testing.assert_array_equal(r["sorted_token_ids"], want)
    np.testing.assert_array_equal(r["expert_ids"], blocks)


def test_softmax_topk_worked_example_and_numpy():
    # core/include/moe/contract/routing.hpp's example (NaN left out, ties to the lower id).
    logits = np.array([[1.0, 3.0, np.nan, 3.0], [-np.inf, np.nan, np.nan, np.nan]], dtype=np.float32)
    w, ids = mh.softmax_topk(logits, top_k=2)
    np.testing.assert_array_equal(ids, [[1, 3], [0, 1]])
    e = np.exp(1.0), np.exp(3.0)
    np.testing.assert_allclose(w[0], [e[1] / (e[0] + 2 * e[1])] * 2, rtol=1e-6)
    assert w[1, 0] == 1.0 and np.isnan(w[1, 1])

    x = np.random.default_rng(2).standard_normal((16, 12)).astype(np.float32)
    w, ids = mh.softmax_topk(x, top_k=3, renormalize=True)
    p = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    order = np.argsort(-x, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(ids, order)
    sel = np.take_along_axis(p, order, axis=1)
    np.testing.assert_allclose(w, sel / sel.sum(axis=1, keepdims=True), rtol=1e-5)


def test_softmax_topk_bf16_bits():
    x = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    bits = bf16_bits(x)
    w_bits, ids_bits = mh.softmax_topk(bits, top_k=2, dtype="bf16")
    w_vals, ids_vals = mh.softmax_topk(bf16_values(bits), top_k=2)
    np.testing.assert_array_equal(ids_bits, ids_vals)
    np.testing.assert_array_equal(w_bits, w_vals)


def test_grouped_topk_worked_example():
    s = np.array([0.9, 0.1, 0.5, 0.6, 0.95, 0.2, 0.3, 0.4])
    logits = np.log(s / (1 - s)).astype(np.float32)[None, :]
    w, ids = mh.grouped_topk(logits, top_k=2, n_group=4, topk_group=2, renormalize=False)
    np.testing.assert_array_equal(ids, [[4, 0]])
    np.testing.assert_allclose(w, [[0.95, 0.9]], rtol=1e-5)
    w, _ = mh.grouped_topk(logits, top_k=2, n_group=4, topk_group=2, renormalize=True)
    np.testing.assert_allclose(w, [[0.95 / 1.85, 0.9 / 1.85]], rtol=1e-5)


def test_sigmoid_top1_matches_numpy():
    rng = np.random.default_rng(4)
    x = bf16_bits(rng.standard_normal((7, 32)).astype(np.float32))
    wt = bf16_bits(rng.standard_normal((32, 9)).astype(np.float32))
    w, ids = mh.sigmoid_top1(x, wt, shared_expert=True)
    logits = bf16_values(x).astype(np.float64) @ bf16_values(wt).astype(np.float64)
    top = logits.argmax(axis=1)
    np.testing.assert_array_equal(ids[:, 0], top)
    np.testing.assert_array_equal(ids[:, 1], 9)
    np.testing.assert_allclose(w[:, 0], 1 / (1 + np.exp(-logits[np.arange(7), top])), rtol=1e-6)
    np.testing.assert_array_equal(w[:, 1], 1.0)


def test_fused_moe_matches_float64_loop_and_check_passes():
    x = mh.make_inputs(M=5, seed=7, values="fanin", **SIZES)
    ref = mh.fused_moe(x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"])
    assert ref["out"].shape == (5, 32) and ref["intermediate"].shape == (5, 2, 16)
    want = fused_moe_loop(bf16_values(x["hidden"]), bf16_values(x["w1"]), bf16_values(x["w2"]),
                          x["topk_weights"], x["topk_ids"])
    tol = mh.tolerance(ref)
    assert tol["rtol"] == 2.0**-8  # bf16 output rounding
    result = mh.check(ref["out"], want, tol)
    assert result["passed"], result["message"]
    assert result["rel_l2"] < 1e-5  # same math in double: only h's rounding ties could differ
    np.testing.assert_allclose(ref["out_rms"], np.sqrt(np.mean(want**2)), rtol=1e-5)


def test_check_reports_failure_and_metrics():
    want = np.linspace(-1, 1, 64, dtype=np.float32)
    got = want.copy()
    got[10] += 0.5
    r = mh.check(got, want, {"atol": 1e-3, "rtol": 0.0, "max_rel_l2": 1.0})
    assert not r["passed"] and r["n_outside"] == 1
    assert r["first_mismatches"][0]["index"] == 10
    assert r["max_abs"] == pytest.approx(0.5, rel=1e-6)
    ok = mh.check(want, want.astype(np.float64), {"atol": 0.0, "rtol": 0.0, "max_rel_l2": 0.0})
    assert ok["passed"] and ok["message"].startswith("ok")
    assert mh.check_ids(np.array([[1, 2]]), np.array([[2, 1]]), group=2)["passed"]
    assert not mh.check_ids(np.array([[1, 2]]), np.array([[2, 1]]))["passed"]


def test_quantize_worked_example_and_round_trip():
    # core/include/moe/contract/quant.hpp's example: amax 3.5 -> scale 2^-7.
    x = np.zeros((2, 256), dtype=np.float32)
    x[0, :3] = [1.0, -0.3, 3.5]
    x[1] = np.linspace(-2, 2, 256)
    q, scales = mh.quantize(bf16_bits(x), granularity="per_group", group=128, dtype="bf16")
    assert q.dtype == np.uint8 and scales.shape == (2, 2)
    assert scales[0, 0] == 2.0**-7
    assert list(q[0, :3]) == [0x70, 0xE2, 0x7E]
    back = mh.dequantize(q, scales, granularity="per_group", group=128)
    xb = bf16_values(bf16_bits(x))
    # fp8 error model (reference/quant/quant_ref.hpp): 2^-4 |x| + s 2^-10 (+ 2^-22 |x|).
    s = np.repeat(scales, 128, axis=1)
    assert np.all(np.abs(back - xb) <= (2.0**-4 + 2.0**-22) * np.abs(xb) + s * 2.0**-10)

    q8, s8 = mh.quantize(x, qtype="int8", granularity="per_row")
    assert q8.dtype == np.int8 and s8.shape == (2,)
    np.testing.assert_allclose(s8, np.abs(x).max(axis=1) / 127, rtol=1e-6)


def test_fused_moe_q8_close_to_the_unquantized_layer():
    sizes = dict(model_dim=128, inter_dim=128, experts=4, top_k=2)
    x = mh.make_inputs(M=6, seed=9, values="fanin", **sizes)
    exact = mh.fused_moe(x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"], inter_dtype="fp32")
    for scheme in ("fp8_tensor", "fp8_token", "fp8_block", "int8_token"):
        q = mh.fused_moe_q8(x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"], scheme=scheme)
        rel = np.linalg.norm(q["out"] - exact["out"]) / np.linalg.norm(exact["out"])
        assert 0 < rel < 0.25, scheme  # q8_vs_exact_rel_l2's worst case; quantization moves it
        tol = mh.tolerance(q)
        assert tol["max_rel_l2"] < 0.02
    # Weights given as (codes, scales) pairs give the same layer as quantizing here.
    w1q = mh.quantize(bf16_values(x["w1"]), granularity="per_row", name="w1")
    w2q = mh.quantize(bf16_values(x["w2"]), granularity="per_row", name="w2")
    a = mh.fused_moe_q8(x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"], scheme="fp8_token")
    b = mh.fused_moe_q8(x["hidden"], w1q, w2q, x["topk_weights"], x["topk_ids"], scheme="fp8_token")
    np.testing.assert_array_equal(a["out"], b["out"])


def test_fused_moe_q8_models_the_tile_the_kernel_ran():
    # K = 1024 (8 chains of 128): Hopper's 13-bit fp8 chains differ from exact sums, a little.
    sizes = dict(model_dim=1024, inter_dim=256, experts=4, top_k=2)
    x = mh.make_inputs(M=8, seed=12, values="fanin", **sizes)
    args = (x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"])
    exact = mh.fused_moe_q8(*args, scheme="fp8_tensor")
    # An mma.sync tile sums exactly: the same layer bit for bit.
    mma = mh.fused_moe_q8(*args, scheme="fp8_tensor", tile="16x64x256-w4-s4-mma")
    np.testing.assert_array_equal(mma["out"], exact["out"])
    tol = mh.tolerance(exact)
    for tile, split_k in (("128x128x128-w8-s4-wgmma", 1), ("128x128x128-w8-s4-wgmma", 2),
                          ("128x128x128-w8-s6-wgmma_ws", 1)):
        hopper = mh.fused_moe_q8(*args, scheme="fp8_tensor", tile=tile, split_k=split_k)
        assert not np.array_equal(hopper["out"], exact["out"]), tile
        rel = np.linalg.norm(hopper["out"] - exact["out"]) / np.linalg.norm(exact["out"])
        assert rel < tol["max_rel_l2"], (tile, rel)
    # int8 sums exactly on every tile.
    i8 = mh.fused_moe_q8(*args, scheme="int8_token")
    i8w = mh.fused_moe_q8(*args, scheme="int8_token", tile="128x128x128-w8-s4-wgmma")
    np.testing.assert_array_equal(i8w["out"], i8["out"])
    # A tile that is not compiled, a bad name, or a split without a tile: ValueError.
    for bad in (dict(tile="48x64x128-w4-s3-mma"), dict(tile="128x128"), dict(split_k=2)):
        with pytest.raises(ValueError):
            mh.fused_moe_q8(*args, scheme="fp8_tensor", **bad)


def test_fp16_bits_and_float16_arrays_agree():
    x = mh.make_inputs(M=4, seed=8, dtype="fp16", values="fanin", **SIZES)
    bits = mh.fused_moe(x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"], dtype="fp16")
    halves = [x[n].view(np.float16) for n in ("hidden", "w1", "w2")]
    native = mh.fused_moe(*halves, x["topk_weights"], x["topk_ids"])
    assert bits["problem"]["dtype"] == native["problem"]["dtype"] == "fp16"
    np.testing.assert_array_equal(bits["out"], native["out"])
    assert mh.tolerance(bits)["rtol"] == 2.0**-11
