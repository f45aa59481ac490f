"""assert_moe_close on a correct and a wrong layer; other array types; bad input."""
import numpy as np
import pytest

import moe_harness as mh
from moe_harness.testing import assert_moe_close
from numpy_ref import bf16_bits, bf16_values, fused_moe_loop

SIZES = dict(model_dim=64, inter_dim=32, experts=8, top_k=2)


@pytest.fixture(scope="module")
def layer():
    x = mh.make_inputs(M=12, seed=21, values="fanin", **SIZES)
    args = (x["hidden"], x["w1"], x["w2"], x["topk_weights"], x["topk_ids"])
    values = [bf16_values(a) if a.dtype == np.uint16 else a for a in args]
    # "Another project's kernel": the NumPy loop, output stored in bf16.
    out = bf16_bits(fused_moe_loop(*values).astype(np.float32))
    return args, values, out


def test_passes_on_a_correct_layer(layer):
    args, _, out = layer
    r = assert_moe_close(out, *args)
    assert r["passed"] and r["message"].startswith("ok")
    assert r["rel_l2"] < 0.01


def test_fails_when_one_experts_contribution_is_dropped(layer):
    args, values, _ = layer
    x, w1, w2, tw, ids = values
    wrong = fused_moe_loop(x, w1, w2, tw, ids)
    # token 3 loses its second expert's term
    t, j = 3, 1
    e = int(ids[t, j])
    inter = w1.shape[1] // 2
    g, u = w1[e, :inter] @ x[t].astype(np.float64), w1[e, inter:] @ x[t].astype(np.float64)
    h = bf16_values(bf16_bits((g / (1 + np.exp(-g)) * u).astype(np.float32)))
    wrong[t] -= tw[t, j] * (w2[e].astype(np.float64) @ h)
    with pytest.raises(AssertionError, match="fused MoE output differs from the reference: .*outside"):
        assert_moe_close(bf16_bits(wrong.astype(np.float32)), *args)
    # the other tokens are still right: only row 3 is outside
    r = mh.check(bf16_bits(wrong.astype(np.float32)), mh.fused_moe(*args)["out"], mh.tolerance(mh.fused_moe(*args)))
    bad_rows = {m["index"] // SIZES["model_dim"] for m in r["first_mismatches"]}
    assert bad_rows == {3}


class DlpackOnly:
    """Exposes only the DLPack protocol, like a foreign tensor type."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, stream=None):
        return self._a.__dlpack__()

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class ArrayOnly:
    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None):
        return self._a


def test_dlpack_and_array_protocol_objects(layer):
    args, values, out = layer
    # float32 values of the bf16 inputs through DLPack (NumPy 1.24 has no
    # bfloat16, so a DLPack bf16 tensor comes from torch, whose path is tested
    # on the GPU host), uint16 bits through __array__.
    wrapped = [DlpackOnly(np.ascontiguousarray(v)) for v in values]
    assert assert_moe_close(ArrayOnly(out), *wrapped)["passed"]


def test_bad_inputs_raise_with_the_rule(layer):
    args, _, out = layer
    hidden, w1, w2, tw, ids = args
    with pytest.raises(ValueError, match=r"w2: expected shape \(8, 64, 32\)"):
        mh.fused_moe(hidden, w1, w2[:, :, :16], tw, ids)
    with pytest.raises(ValueError, match=r"w1: expected shape \(E, 2\*inter, 64\)"):
        mh.fused_moe(hidden, w1[:, :, :32], w2, tw, ids)
    with pytest.raises(ValueError, match="hidden: expected rank 2, got shape"):
        mh.fused_moe(hidden[None], w1, w2, tw, ids)
    with pytest.raises(TypeError, match="hidden: dtype float64 not supported"):
        mh.fused_moe(hidden.astype(np.float64), w1, w2, tw, ids)
    with pytest.raises(TypeError, match="topk_ids: dtype float32 not supported"):
        mh.fused_moe(hidden, w1, w2, tw, ids.astype(np.float32))
    bad = ids.astype(np.int64)
    bad[0, 0] = 8
    with pytest.raises(ValueError, match=r"topk_ids: element 0 = 8 outside \[-1, 8\)"):
        mh.fused_moe(hidden, w1, w2, tw, bad)
    bad[0, 0] = 2**40
    with pytest.raises(ValueError, match="topk_ids: element 0 = 1099511627776 does not fit int32"):
        mh.fused_moe(hidden, w1, w2, tw, bad)
    with pytest.raises(ValueError, match=r"out: expected shape \(12, 64\)"):
        assert_moe_close(out[:4], *args)
    # InputError of the C++ references arrives as ValueError with its text.
    with pytest.raises(ValueError, match="^fused_moe: unknown activation|unknown activation"):
        mh.fused_moe(hidden, w1, w2, tw, ids, activation="relu")
    with pytest.raises(ValueError, match="top_k"):
        mh.softmax_topk(np.zeros((2, 4), np.float32), top_k=5)
    with pytest.raises(ValueError, match="block_size"):
        mh.moe_align(ids, num_experts=8, block_size=24)
    with pytest.raises(ValueError, match="hidden: non-finite|Inf|NaN|nan|inf"):
        mh.quantize(np.array([[1.0, np.inf]], np.float32), name="hidden")
