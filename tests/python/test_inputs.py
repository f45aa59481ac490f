"""make_inputs: deterministic, the harness's Philox streams, model shapes from the table."""
import copy
import json

import numpy as np
import pytest

import moe_harness as mh
from numpy_ref import bf16_bits, harness_normal, philox4x32_10

SIZES = dict(model_dim=24, inter_dim=10, experts=5, top_k=2)
# rng::Stream values (core/include/moe/rng.hpp).
HIDDEN, W1, W2, SCORES = 1, 2, 3, 4


def test_philox_known_answer():
    # Random123's kat_vectors for philox4x32_10, counter and key all zero:
    # the NumPy generator the next tests use is the published one.
    words = philox4x32_10([0, 0, 0, 0], [0, 0])
    assert [int(w) for w in words] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def test_same_seed_same_tensors_other_seed_others():
    a = mh.make_inputs(M=7, seed=3, **SIZES)
    b = mh.make_inputs(M=7, seed=3, **SIZES)
    c = mh.make_inputs(M=7, seed=4, **SIZES)
    assert set(a) == {"hidden", "w1", "w2", "topk_weights", "topk_ids", "router_logits"}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["hidden"], c["hidden"])
    assert a["hidden"].dtype == np.uint16 and a["hidden"].shape == (7, 24)
    assert a["w1"].shape == (5, 20, 24) and a["w2"].shape == (5, 24, 10)
    assert a["topk_ids"].dtype == np.int32 and a["topk_weights"].dtype == np.float32


def test_values_are_the_harness_philox_normals():
    seed = 11
    f32 = mh.make_inputs(M=3, seed=seed, dtype="fp32", **SIZES)
    for name, stream in (("hidden", HIDDEN), ("w1", W1), ("w2", W2)):
        want = harness_normal(seed, stream, np.arange(f32[name].size)).reshape(f32[name].shape)
        np.testing.assert_array_equal(f32[name], want)
    np.testing.assert_array_equal(f32["router_logits"], harness_normal(seed, SCORES, np.arange(15)).reshape(3, 5))
    # bf16: the same normals rounded to nearest even.
    bf = mh.make_inputs(M=3, seed=seed, dtype="bf16", **SIZES)
    np.testing.assert_array_equal(bf["w2"], bf16_bits(f32["w2"]))


def test_softmax_routing_is_top_k_of_router_logits():
    x = mh.make_inputs(M=9, seed=5, **SIZES)
    logits = x["router_logits"].astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    order = np.argsort(-p, axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(x["topk_ids"], order)
    np.testing.assert_allclose(x["topk_weights"], np.take_along_axis(p, order, axis=1), rtol=1e-6)


def test_model_shapes_from_the_table(tmp_path):
    # A tiny model added to the real table (real models' weights are GBs).
    doc = json.load(open(mh.default_model_configs()))
    tiny = copy.deepcopy(doc["models"][0])
    tiny.update(name="tiny_test", model_dim=24, inter_dim=10, experts=5, top_k=2)
    doc["models"].append(tiny)
    path = tmp_path / "models.json"
    path.write_text(json.dumps(doc))
    assert "tiny_test" in mh.model_names(model_configs=str(path))
    assert mh.model_config("tiny_test", model_configs=str(path))["experts"] == 5
    by_model = mh.make_inputs(model="tiny_test", M=4, seed=2, model_configs=str(path))
    by_sizes = mh.make_inputs(M=4, seed=2, values="fanin", **SIZES)
    for name in by_sizes:
        np.testing.assert_array_equal(by_model[name], by_sizes[name])
    with pytest.raises(ValueError, match="unknown model 'nope'|nope"):
        mh.make_inputs(model="nope", M=1, model_configs=str(path))


def test_default_table_has_the_published_models():
    names = mh.model_names()
    assert "mixtral_8x7b" in names
    assert mh.model_config("mixtral_8x7b")["top_k"] == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="top_k must be in \\[1, experts=5\\], got 6"):
        mh.make_inputs(M=2, model_dim=8, inter_dim=4, experts=5, top_k=6)
    with pytest.raises(ValueError, match="unknown routing distribution 'x'"):
        mh.make_inputs(M=2, routing="x", **SIZES)
    with pytest.raises(ValueError, match="without model= give all of"):
        mh.make_inputs(M=2, model_dim=8)
