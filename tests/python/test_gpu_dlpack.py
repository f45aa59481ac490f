"""moe_harness.gpu: our kernels on torch CUDA tensors through DLPack (zero copy,
on the caller's stream), checked with assert_moe_close like anyone's kernel.

The torch tests run where torch sees a CUDA device and this is a GPU build
(tests/python/gpu_pytest.sh on the GPU host); elsewhere they skip. The DLPack
protocol tests with a fake producer need only a GPU build (no device, no torch):
every call they make fails validation before any GPU call.
"""
import ctypes
import os

import numpy as np
import pytest

import moe_harness as mh
from moe_harness.testing import assert_moe_close, to_numpy

try:
    import torch
except ImportError:  # the CPU test machines have no torch
    torch = None


def _why_no_torch_gpu():
    if os.environ.get("MOE_PYTEST_SUITE") == "cpu":
        return "device tests run in meson's gpu suite (python_gpu)"
    if torch is None:
        return "torch not importable"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    if not mh.has_gpu():
        return "this moe_harness build has no GPU backend (-Dgpu=none)"
    return None


needs_torch_gpu = pytest.mark.skipif(_why_no_torch_gpu() is not None, reason=str(_why_no_torch_gpu()))
needs_gpu_build = pytest.mark.skipif(not mh.has_gpu(), reason="this moe_harness build has no GPU backend (-Dgpu=none)")


# ---- builds --------------------------------------------------------------------------
@pytest.mark.skipif(mh.has_gpu(), reason="GPU build")
def test_cpu_build_has_no_gpu_module():
    assert not hasattr(mh, "gpu")
    with pytest.raises(ImportError, match="built without a GPU backend"):
        import moe_harness.gpu  # noqa: F401
    with pytest.raises(AttributeError, match="rebuild with meson -Dgpu=cuda"):
        mh.gpu.fused_moe


@needs_gpu_build
def test_gpu_build_sizes_and_host_arrays_without_a_device():
    # Neither call touches the GPU: importing and argument checks work on any machine.
    sizes = mh.gpu.moe_align_sizes(3, 2, 4, 16)
    assert sizes == {"capacity": 64, "max_blocks": 4}  # the worked example of the align contract
    x = np.zeros((4, 8), np.float16)
    with pytest.raises(TypeError, match=r"^hidden: expected a (CUDA|ROCm) device tensor .* got one in CPU"):
        mh.gpu.fused_moe(x, x, x, x, x, x)
    with pytest.raises(TypeError, match=r"^topk_ids: expected a GPU tensor with __dlpack__"):
        mh.gpu.moe_align([[0, 1]], None, None, None, num_experts=2, block_size=16)
    with pytest.raises(TypeError, match=r"^stream: expected an int stream handle"):
        mh.gpu.fused_moe(x, x, x, x, x, x, stream="default")


# ---- the DLPack protocol, with a fake producer ----------------------------------------
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int), ("dtype", _DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


_Deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _Deleter)]


_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype = ctypes.c_char_p
_capsule_name.argtypes = [ctypes.py_object]

_DTYPES = {"bf16": (4, 16), "fp16": (2, 16), "fp32": (2, 32), "int32": (0, 32), "int64": (0, 64)}


class FakeCudaTensor:
    """A producer of DLPack capsules for device memory that does not exist (the
    data pointer is never dereferenced: only calls that fail validation use it).
    Records the stream each __dlpack__ call was given and counts deleter calls."""

    def __init__(self, shape, dtype, strides=None, device_type=2):
        self.shape, self.device_type = tuple(shape), device_type
        self.streams, self.deleted, self.capsules = [], 0, []
        code, bits = _DTYPES[dtype]
        self._shape = (ctypes.c_int64 * len(shape))(*shape)
        self._strides = (ctypes.c_int64 * len(shape))(*strides) if strides else None
        self._deleter = _Deleter(self._delete)
        self._managed = _DLManagedTensor()
        t = self._managed.dl_tensor
        t.data, t.device, t.ndim = 0x10000, _DLDevice(device_type, 0), len(shape)
        t.dtype = _DLDataType(code, bits, 1)
        t.shape = ctypes.cast(self._shape, ctypes.POINTER(ctypes.c_int64))
        if strides:
            t.strides = ctypes.cast(self._strides, ctypes.POINTER(ctypes.c_int64))
        self._managed.deleter = self._deleter

    def _delete(self, _):
        self.deleted += 1

    def __dlpack_device__(self):
        return (self.device_type, 0)

    def __dlpack__(self, stream=None):
        self.streams.append(stream)
        cap = _capsule_new(ctypes.addressof(self._managed), b"dltensor", None)
        self.capsules.append(cap)
        return cap


def _fake_layer(M=5, H=64, I=32, E=4, k=2, **override):
    shapes = dict(hidden=((M, H), "bf16"), w1=((E, 2 * I, H), "bf16"), w2=((E, H, I), "bf16"),
                  topk_weights=((M, k), "fp32"), topk_ids=((M, k), "int32"), out=((M, H), "bf16"))
    shapes.update(override)
    return {name: FakeCudaTensor(*spec) if isinstance(spec, tuple) else spec for name, spec in shapes.items()}


def _call(t, **kw):
    return mh.gpu.fused_moe(t["hidden"], t["w1"], t["w2"], t["topk_weights"], t["topk_ids"], t["out"], **kw)


@needs_gpu_build
def test_protocol_capsule_consumed_and_deleted_once():
    t = _fake_layer(w2=((4, 64, 31), "bf16"))  # bad w2 shape: fails after every tensor was taken
    with pytest.raises(ValueError, match=r"^w2: expected shape \(4, 64, 32\) \(E, model_dim, inter of w1"):
        _call(t)
    for name, x in t.items():
        assert x.deleted == 1, name
        assert _capsule_name(x.capsules[0]) == b"used_dltensor", name
        assert x.streams == [1], name  # stream=None: the legacy default stream is 1 in the protocol


@needs_gpu_build
def test_protocol_stream_handle_passed_to_the_producer():
    t = _fake_layer(out=((5, 63), "bf16"))
    with pytest.raises(ValueError, match=r"^out: expected shape \(5, 64\)"):
        _call(t, stream=0x7F00AB)
    assert all(x.streams == [0x7F00AB] for x in t.values())


@needs_gpu_build
@pytest.mark.parametrize("name, spec, error, message", [
    ("hidden", ((5, 64), "fp32"), TypeError, r"^hidden: dtype float32 not supported \(expected bfloat16 or float16\)"),
    ("w1", ((4, 64, 64), "fp16"), TypeError, r"^w1: dtype float16 differs from hidden's bfloat16"),
    ("topk_ids", ((5, 2), "int64"), TypeError, r"^topk_ids: dtype int64 not supported \(expected int32\)"),
    ("topk_weights", ((5, 2), "bf16"), TypeError, r"^topk_weights: dtype bfloat16 not supported \(expected float32\)"),
    ("hidden", ((5, 64, 1), "bf16"), ValueError, r"^hidden: expected rank 2, got shape \(5, 64, 1\)"),
    ("w1", ((4, 64, 64), "bf16", (4096, 1, 64)), ValueError, r"^w1: not contiguous \(strides \(4096, 1, 64\)"),
    ("topk_ids", ((6, 2), "int32"), ValueError, r"^topk_ids: expected 5 rows \(tokens of hidden \(5, 64\)\)"),
    ("hidden", ((5, 64), "bf16", None, 1), TypeError, r"^hidden: expected a (CUDA|ROCm) device tensor .* got one in CPU"),
])
def test_protocol_rejects_with_the_tensor_named(name, spec, error, message):
    t = _fake_layer(**{name: spec})
    with pytest.raises(error, match=message):
        _call(t)
    assert all(x.deleted == len(x.capsules) for x in t.values())  # nothing taken is leaked


@needs_gpu_build
def test_protocol_extent_one_strides_and_unknown_activation():
    # A (1, H) row of a bigger tensor: its row stride is not H but never used.
    t = _fake_layer(M=1, hidden=((1, 64), "bf16", (999, 1)))
    with pytest.raises(ValueError, match=r"unknown activation 'relu'"):
        _call(t, activation="relu")


# ---- torch ----------------------------------------------------------------------------
M, E, TOP_K, MODEL_DIM, INTER = 37, 8, 2, 256, 128


def _torch_layer(dtype=None, seed=0, masked=False, m=M, model_dim=MODEL_DIM, inter=INTER):
    dtype = dtype or torch.bfloat16
    g = torch.Generator(device="cuda").manual_seed(seed)
    dev = "cuda"
    hidden = torch.randn(m, model_dim, device=dev, generator=g).to(dtype)
    w1 = (torch.randn(E, 2 * inter, model_dim, device=dev, generator=g) / model_dim ** 0.5).to(dtype)
    w2 = (torch.randn(E, model_dim, inter, device=dev, generator=g) / inter ** 0.5).to(dtype)
    logits = torch.randn(m, E, device=dev, generator=g)
    topk_weights, ids = logits.softmax(-1).topk(TOP_K)
    topk_ids = ids.int()
    if masked:
        topk_ids[::5, 1] = -1  # masked slots contribute nothing
    return hidden, w1, w2, topk_weights.contiguous(), topk_ids.contiguous()


def torch_moe(hidden, w1, w2, topk_weights, topk_ids, drop_expert=None):
    """Another project's layer: a loop over experts, fp32 accumulation, the
    intermediate rounded to the input dtype as the kernels keep it."""
    x = hidden.float()
    out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
    inter = w1.shape[1] // 2
    for e in range(w1.shape[0]):
        if e == drop_expert:
            continue
        tok, slot = (topk_ids == e).nonzero(as_tuple=True)
        if tok.numel() == 0:
            continue
        gate_up = x[tok] @ w1[e].float().t()
        h = (torch.nn.functional.silu(gate_up[:, :inter]) * gate_up[:, inter:]).to(hidden.dtype).float()
        out.index_add_(0, tok, topk_weights[tok, slot, None] * (h @ w2[e].float().t()))
    return out.to(hidden.dtype)


@needs_torch_gpu
@pytest.mark.parametrize("dtype, activation, router_weight, masked", [
    ("bf16", "silu", "output", False),
    ("fp16", "silu", "output", False),
    ("bf16", "gelu_tanh", "input", False),
    ("bf16", "silu", "output", True),
])
def test_our_gpu_layer_matches_the_cpu_reference(dtype, activation, router_weight, masked):
    t_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    args = _torch_layer(t_dtype, seed=7, masked=masked)
    out = torch.full((M, MODEL_DIM), float("nan"), dtype=t_dtype, device="cuda")
    got = mh.gpu.fused_moe(*args, out, activation=activation, router_weight=router_weight,
                           stream=torch.cuda.current_stream().cuda_stream)
    assert got is out
    torch.cuda.synchronize()
    r = assert_moe_close(out, *args, activation=activation, router_weight=router_weight)
    assert r["passed"] and r["rel_l2"] < 0.01


@needs_torch_gpu
def test_a_torch_layer_passes():
    args = _torch_layer(seed=11)
    assert_moe_close(torch_moe(*args), *args)


@needs_torch_gpu
def test_a_torch_layer_missing_one_expert_fails():
    args = _torch_layer(seed=11)
    dropped = int(args[4][0, 0])  # an expert token 0 is routed to
    with pytest.raises(AssertionError, match="fused MoE output differs from the reference"):
        assert_moe_close(torch_moe(*args, drop_expert=dropped), *args)


@needs_torch_gpu
def test_wrong_device_dtype_shape_name_the_tensor():
    hidden, w1, w2, tw, ids = _torch_layer(seed=3)
    out = torch.empty(M, MODEL_DIM, dtype=hidden.dtype, device="cuda")
    with pytest.raises(TypeError, match=r"^hidden: expected a CUDA device tensor .* got one in CPU"):
        mh.gpu.fused_moe(hidden.cpu(), w1, w2, tw, ids, out)
    with pytest.raises(TypeError, match=r"^topk_ids: dtype int64 not supported \(expected int32\)"):
        mh.gpu.fused_moe(hidden, w1, w2, tw, ids.long(), out)
    with pytest.raises(TypeError, match=r"^hidden: dtype float32 not supported"):
        mh.gpu.fused_moe(hidden.float(), w1, w2, tw, ids, out)
    with pytest.raises(ValueError, match=r"^w1: not contiguous"):
        mh.gpu.fused_moe(hidden, w1.transpose(1, 2).contiguous().transpose(1, 2), w2, tw, ids, out)
    with pytest.raises(ValueError, match=r"^w2: expected shape"):
        mh.gpu.fused_moe(hidden, w1, w2.transpose(1, 2).contiguous(), tw, ids, out)


@needs_torch_gpu
def test_runs_on_a_side_stream_after_the_producers_work():
    args = _torch_layer(seed=5)
    hidden = torch.zeros_like(args[0])
    out = torch.full((M, MODEL_DIM), float("nan"), dtype=hidden.dtype, device="cuda")
    side = torch.cuda.Stream()
    # hidden gets its values on torch's current stream behind a long spin: a kernel
    # on `side` that did not wait for it (the __dlpack__(stream=...) handshake)
    # would read zeros.
    torch.cuda._sleep(50_000_000)
    hidden.copy_(args[0])
    mh.gpu.fused_moe(hidden, *args[1:], out, stream=side.cuda_stream)
    side.synchronize()
    assert_moe_close(out, *args)


@needs_torch_gpu
def test_moe_align_matches_the_cpu_reference():
    _, _, _, _, ids = _torch_layer(seed=9, masked=True)
    bs = 16
    sizes = mh.gpu.moe_align_sizes(M, TOP_K, E, bs)
    sorted_ids = torch.full((sizes["capacity"],), -7, dtype=torch.int32, device="cuda")
    expert_ids = torch.full((sizes["max_blocks"],), -7, dtype=torch.int32, device="cuda")
    post = torch.zeros(1, dtype=torch.int32, device="cuda")
    mh.gpu.moe_align(ids, sorted_ids, expert_ids, post, num_experts=E, block_size=bs)
    torch.cuda.synchronize()
    want = mh.moe_align(ids.cpu().numpy(), num_experts=E, block_size=bs)
    n = want["num_tokens_post_padded"]
    assert int(post.item()) == n
    np.testing.assert_array_equal(sorted_ids[:n].cpu().numpy(), want["sorted_token_ids"])
    assert (sorted_ids[n:] == M * TOP_K).all()  # the tail holds the sentinel
    np.testing.assert_array_equal(expert_ids[:n // bs].cpu().numpy(), want["expert_ids"])
    assert (expert_ids[n // bs:] == -1).all()


# ---- routing, quantizers, the FP8/INT8 layer: argument checks with the fake producer ------
# Every call fails validation before any GPU call (no device needed), with the
# tensor (or the C++ rule) named, and leaks none of the capsules it took.
_DTYPES.update({"uint8": (1, 8), "int8": (0, 8), "fp64": (2, 64)})


def _fakes(defaults, override):
    specs = dict(defaults)
    specs.update(override)
    return {name: FakeCudaTensor(*spec) if isinstance(spec, tuple) and isinstance(spec[0], tuple) else spec
            for name, spec in specs.items()}


def _released(t):
    for v in t.values():
        for x in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(x, FakeCudaTensor):
                assert x.deleted == len(x.capsules)


def _softmax(override, **kw):
    t = _fakes(dict(logits=((5, 8), "fp32"), topk_weights=((5, 2), "fp32"), topk_ids=((5, 2), "int32")), override)
    return t, lambda: mh.gpu.softmax_topk(t["logits"], t["topk_weights"], t["topk_ids"], **{"top_k": 2, **kw})


def _grouped(override, **kw):
    t = _fakes(dict(logits=((5, 8), "fp32"), topk_weights=((5, 2), "fp32"), topk_ids=((5, 2), "int32"),
                    bias=((8,), "fp32")), override)
    args = {"top_k": 2, "n_group": 4, "topk_group": 2, "bias": t["bias"], **kw}
    return t, lambda: mh.gpu.grouped_topk(t["logits"], t["topk_weights"], t["topk_ids"], **args)


def _top1(override, **kw):
    t = _fakes(dict(x=((5, 64), "bf16"), w=((64, 8), "bf16"), topk_weights=((5, 1), "fp32"),
                    topk_ids=((5, 1), "int32")), override)
    return t, lambda: mh.gpu.sigmoid_top1(t["x"], t["w"], t["topk_weights"], t["topk_ids"], **kw)


def _quant(override, **kw):
    t = _fakes(dict(x=((4, 256), "bf16"), q=((4, 256), "uint8"), scales=((4,), "fp32")), override)
    if "static_scales" in t:
        kw["static_scales"] = t["static_scales"]
    return t, lambda: mh.gpu.quantize(t["x"], t["q"], t["scales"], **kw)


def _q8(override, **kw):
    M, H, I, E, k = 5, 64, 32, 4, 2
    specs = dict(hidden=((M, H), "bf16"), w1=(((E, 2 * I, H), "uint8"), ((E,), "fp32")),
                 w2=(((E, H, I), "uint8"), ((E,), "fp32")), topk_weights=((M, k), "fp32"),
                 topk_ids=((M, k), "int32"), out=((M, H), "bf16"))
    specs.update(override)
    t = {}
    for name, spec in specs.items():
        if name in ("w1", "w2") and isinstance(spec[0][0], tuple):  # a (codes, scales) pair
            t[name] = tuple(FakeCudaTensor(*s) for s in spec)
        else:
            t[name] = FakeCudaTensor(*spec)
    return t, lambda: mh.gpu.fused_moe_q8(t["hidden"], t["w1"], t["w2"], t["topk_weights"], t["topk_ids"], t["out"], **kw)


_CPU = 1  # DLPack device type of host memory

_ENTRY_CASES = [
    # softmax_topk
    (_softmax, {"logits": ((5, 8), "int32")}, {}, TypeError,
     r"^logits: dtype int32 not supported \(expected float32, bfloat16 or float16\)"),
    (_softmax, {"logits": ((5, 8, 1), "fp32")}, {}, ValueError, r"^logits: expected rank 2, got shape \(5, 8, 1\)"),
    (_softmax, {"logits": ((5, 8), "fp32", None, _CPU)}, {}, TypeError,
     r"^logits: expected a (CUDA|ROCm) device tensor .* got one in CPU"),
    (_softmax, {"topk_weights": ((5, 3), "fp32")}, {}, ValueError,
     r"^topk_weights: expected shape \(5, 2\) \(tokens of logits \(5, 8\), top_k\), got \(5, 3\)"),
    (_softmax, {"topk_weights": ((5, 2), "bf16")}, {}, TypeError, r"^topk_weights: dtype bfloat16 not supported"),
    (_softmax, {"topk_ids": ((5, 2), "int64")}, {}, TypeError, r"^topk_ids: dtype int64 not supported \(expected int32\)"),
    (_softmax, {"topk_ids": ((4, 2), "int32")}, {}, ValueError, r"^topk_ids: expected shape \(5, 2\)"),
    (_softmax, {}, {"top_k": 9}, ValueError, r"^softmax_topk: top_k must be in \[1, min\(experts=8, 32\)\], got 9"),
    (_softmax, {}, {"stream": -1}, ValueError, r"^stream: expected a handle >= 0, got -1"),
    (_softmax, {}, {"stream": 1.5}, TypeError, r"^stream: expected an int stream handle"),
    # grouped_topk
    (_grouped, {"bias": ((7,), "fp32")}, {}, ValueError,
     r"^bias: expected shape \(8,\) \(one value per expert of logits \(5, 8\)\), got \(7,\)"),
    (_grouped, {"bias": ((8,), "bf16")}, {}, TypeError, r"^bias: dtype bfloat16 not supported \(expected float32\)"),
    (_grouped, {"bias": ((8,), "fp32", None, _CPU)}, {}, TypeError, r"^bias: expected a (CUDA|ROCm) device tensor"),
    (_grouped, {}, {"n_group": 3}, ValueError, r"^grouped_topk: experts \(8\) must be divisible by n_group \(3\)"),
    (_grouped, {}, {"scoring": "relu"}, ValueError, r"^unknown scoring 'relu'"),
    (_grouped, {"topk_ids": ((5, 3), "int32")}, {}, ValueError, r"^topk_ids: expected shape \(5, 2\)"),
    # sigmoid_top1
    (_top1, {"x": ((5, 64), "fp32")}, {}, TypeError, r"^x: dtype float32 not supported \(expected bfloat16 or float16\)"),
    (_top1, {"w": ((64, 8), "fp16")}, {}, TypeError, r"^w: dtype float16 differs from x's bfloat16"),
    (_top1, {"w": ((32, 8), "bf16")}, {}, ValueError, r"^w: expected shape \(64, E\) \(K rows, as x \(5, 64\)\), got \(32, 8\)"),
    (_top1, {"w": ((64, 600), "bf16")}, {}, ValueError, r"^sigmoid_top1: experts must be in \[1, 512\], got 600"),
    (_top1, {}, {"shared_expert": True}, ValueError,
     r"^topk_weights: expected shape \(5, 2\) \(tokens of x \(5, 64\), 2 columns with shared_expert\), got \(5, 1\)"),
    (_top1, {"topk_ids": ((5, 1), "int32", None, _CPU)}, {}, TypeError, r"^topk_ids: expected a (CUDA|ROCm) device tensor"),
    # quantize
    (_quant, {"q": ((4, 256), "int8")}, {}, TypeError, r"^q: dtype int8 not supported \(expected uint8\)"),
    (_quant, {}, {"qtype": "int8"}, TypeError, r"^q: dtype uint8 not supported \(expected int8\)"),
    (_quant, {"q": ((4, 255), "uint8")}, {}, ValueError, r"^q: expected shape \(4, 256\) \(the shape of input\), got \(4, 255\)"),
    (_quant, {"x": ((4, 256), "fp64")}, {"name": "hidden"}, TypeError, r"^hidden: dtype float64 not supported"),
    (_quant, {"x": ((256,), "bf16")}, {}, ValueError, r"^input: expected rank 2 \(rows, cols\) or 3 \(batch, rows, cols\)"),
    (_quant, {"scales": ((4, 1), "fp32")}, {}, ValueError, r"^scales: expected shape \(4,\) \(fp8_e4m3fn per_row"),
    (_quant, {"scales": ((4, 2), "fp32")}, {"granularity": "per_group", "group_layout": "col"}, ValueError,
     r"^scales: expected shape \(2, 4\)"),
    (_quant, {"x": ((2, 4, 256), "bf16"), "q": ((2, 4, 256), "uint8"), "scales": ((2, 2), "fp32")},
     {"granularity": "per_block"}, ValueError, r"^scales: expected shape \(2, 1, 2\) \(fp8_e4m3fn per_block"),
    (_quant, {"scales": ((4,), "fp64")}, {}, TypeError, r"^scales: dtype float64 not supported \(expected float32\)"),
    (_quant, {}, {"granularity": "per_col"}, ValueError, r"^unknown granularity 'per_col'"),
    (_quant, {"static_scales": ((4,), "fp32")}, {}, ValueError, r"static scales are supported only per_tensor"),
    (_quant, {"scales": ((1,), "fp32"), "static_scales": ((2,), "fp32")}, {"granularity": "per_tensor"}, ValueError,
     r"^static_scales: expected 1 values \(scale shape \(1,\)"),
    (_quant, {"x": ((4, 256), "bf16", None, _CPU)}, {}, TypeError, r"^input: expected a (CUDA|ROCm) device tensor"),
    # fused_moe_q8
    (_q8, {"hidden": ((5, 64), "fp32")}, {}, TypeError, r"^hidden: dtype float32 not supported \(expected bfloat16 or float16\)"),
    (_q8, {"out": ((5, 64), "fp16")}, {}, TypeError, r"^out: dtype float16 differs from hidden's bfloat16"),
    (_q8, {"out": ((5, 63), "bf16")}, {}, ValueError, r"^out: expected shape \(5, 64\)"),
    (_q8, {"w1": (((4, 64, 64), "int8"), ((4,), "fp32"))}, {}, TypeError,
     r"^w1 codes: dtype int8 not supported \(expected uint8\)"),
    (_q8, {}, {"scheme": "int8_token"}, TypeError, r"^w1 codes: dtype uint8 not supported \(expected int8\)"),
    (_q8, {"w1": (((4, 64, 64), "uint8"), ((3,), "fp32"))}, {}, ValueError, r"^w1 scales: expected shape \(4,\)"),
    (_q8, {}, {"scheme": "fp8_token"}, ValueError, r"^w1 scales: expected shape \(4, 64\)"),
    (_q8, {"w2": (((4, 64, 31), "uint8"), ((4,), "fp32"))}, {}, ValueError,
     r"^w2: expected shape \(4, 64, 32\) \(E, model_dim, inter of w1"),
    (_q8, {"w1": ((4, 64, 63), "bf16")}, {}, ValueError, r"^w1: expected shape \(E, 2\*inter, 64\)"),
    (_q8, {"w1": ((4, 64, 64), "int32")}, {}, TypeError, r"^w1: dtype int32 not supported"),
    (_q8, {"topk_ids": ((6, 2), "int32")}, {}, ValueError, r"^topk_ids: expected 5 rows \(tokens of hidden \(5, 64\)\)"),
    (_q8, {"hidden": ((5, 40), "bf16"), "out": ((5, 40), "bf16"), "w1": (((4, 64, 40), "uint8"), ((4,), "fp32")),
           "w2": (((4, 40, 32), "uint8"), ((4,), "fp32"))}, {}, ValueError,
     r"^fused_moe_q8: model_dim \(40\) and inter_dim \(32\) must be multiples of 16"),
    (_q8, {}, {"fp8": "e4m3fnuz"}, ValueError, r"^fp8: our layer kernels read e4m3fn codes"),
    (_q8, {}, {"scheme": "fp4"}, ValueError, r"^unknown quantized MoE scheme 'fp4'"),
    (_q8, {"topk_weights": ((5, 2), "fp32", None, _CPU)}, {}, TypeError, r"^topk_weights: expected a (CUDA|ROCm) device tensor"),
    (_q8, {}, {"stream": "default"}, TypeError, r"^stream: expected an int stream handle"),
]


@needs_gpu_build
@pytest.mark.parametrize("make, override, kw, error, message", _ENTRY_CASES,
                         ids=["%s-%d" % (c[0].__name__.strip("_"), i) for i, c in enumerate(_ENTRY_CASES)])
def test_entries_reject_with_the_tensor_named(make, override, kw, error, message):
    t, call = make(override, **kw)
    with pytest.raises(error, match=message):
        call()
    _released(t)


@needs_gpu_build
def test_q8_weight_pair_of_three_and_stream_passed_on():
    t, call = _q8({}, stream=0x5150)
    t["w1"] = t["w1"] + (FakeCudaTensor((1,), "fp32"),)
    with pytest.raises(ValueError, match=r"^w1: expected a GPU tensor or a \(codes, scales\) pair, got 3 items"):
        call()
    t, call = _q8({"out": ((5, 63), "bf16")}, stream=0x5150)
    with pytest.raises(ValueError, match=r"^out: expected shape"):
        call()
    for v in t.values():
        for x in (v if isinstance(v, tuple) else (v,)):
            assert x.streams == [0x5150] and x.deleted == 1


@needs_gpu_build
def test_new_entries_keep_the_reference_keywords():
    # Side by side with the CPU references: the same names and keyword arguments
    # (the references' dtype= hint aside; the GPU entries add their outputs and stream).
    # pybind11 puts each signature on the first line of the docstring.
    for name, keywords in {
        "softmax_topk": ["top_k", "renormalize"],
        "grouped_topk": ["top_k", "n_group", "topk_group", "scoring", "renormalize", "routed_scaling_factor", "bias"],
        "sigmoid_top1": ["shared_expert"],
        "quantize": ["qtype", "granularity", "group", "group_layout", "block_rows", "block_cols", "static_scales", "name"],
        "fused_moe_q8": ["scheme", "fp8", "activation", "router_weight"],
    }.items():
        ref_sig = getattr(mh, name).__doc__.splitlines()[0]
        gpu_sig = getattr(mh.gpu, name).__doc__.splitlines()[0]
        for kw in keywords:
            assert "%s: " % kw in ref_sig and "%s: " % kw in gpu_sig, (name, kw)
        assert "stream: " in gpu_sig


# ---- routing, quantizers, the FP8/INT8 layer on torch tensors against the CPU references ----
# Routing weights: fp32 kernels against fp64 references (kernels/routing/routing.hpp's
# bounds are ~(32 + 2E + |x - m|) ulps relative for softmax; exact for grouped top-k's
# IEEE-only selections).
_WEIGHT_TOL = {"atol": 1e-6, "rtol": 1e-4, "max_rel_l2": 1e-5}
_EXACT = {"atol": 0.0, "rtol": 0.0, "max_rel_l2": 0.0}


def _torch_dtype(name):
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def _stream():
    return torch.cuda.current_stream().cuda_stream


def _topk_outputs(rows, cols):
    return (torch.full((rows, cols), float("nan"), device="cuda"),
            torch.full((rows, cols), -7, dtype=torch.int32, device="cuda"))


def _check_topk(w, ids, want_w, want_ids, tol=_WEIGHT_TOL):
    r = mh.check_ids(ids.cpu().numpy(), want_ids)
    assert r["passed"], r["message"]
    r = mh.check(w.cpu().numpy(), want_w, tol)
    assert r["passed"], r["message"]


@needs_torch_gpu
@pytest.mark.parametrize("dtype, renormalize", [("fp32", False), ("bf16", True), ("fp16", False)])
def test_softmax_topk_matches_the_cpu_reference(dtype, renormalize):
    g = torch.Generator(device="cuda").manual_seed(21)
    k, experts = 6, 64
    logits = (3 * torch.randn(M, experts, device="cuda", generator=g)).to(_torch_dtype(dtype))
    w, ids = _topk_outputs(M, k)
    got = mh.gpu.softmax_topk(logits, w, ids, top_k=k, renormalize=renormalize, stream=_stream())
    assert got[0] is w and got[1] is ids
    torch.cuda.synchronize()
    host, hint = to_numpy(logits)
    want_w, want_ids = mh.softmax_topk(host, top_k=k, renormalize=renormalize, dtype=hint)
    _check_topk(w, ids, want_w, want_ids)
    # Two ids of a row swapped: caught.
    bad = ids.cpu().numpy().copy()
    bad[0, [0, 1]] = bad[0, [1, 0]]
    assert not mh.check_ids(bad, want_ids)["passed"]


@needs_torch_gpu
@pytest.mark.parametrize("dtype, scoring, with_bias", [("fp32", "sigmoid", True), ("bf16", "softmax", False),
                                                       ("fp16", "sigmoid", False)])
def test_grouped_topk_matches_the_cpu_reference(dtype, scoring, with_bias):
    g = torch.Generator(device="cuda").manual_seed(22)
    experts, n_group, topk_group, k = 64, 8, 4, 8
    logits = torch.randn(M, experts, device="cuda", generator=g).to(_torch_dtype(dtype))
    bias = 0.1 * torch.randn(experts, device="cuda", generator=g) if with_bias else None
    w, ids = _topk_outputs(M, k)
    kw = dict(top_k=k, n_group=n_group, topk_group=topk_group, scoring=scoring, renormalize=True,
              routed_scaling_factor=2.5)
    mh.gpu.grouped_topk(logits, w, ids, bias=bias, stream=_stream(), **kw)
    torch.cuda.synchronize()
    host, hint = to_numpy(logits)
    want_w, want_ids = mh.grouped_topk(host, bias=None if bias is None else bias.cpu().numpy(), dtype=hint, **kw)
    _check_topk(w, ids, want_w, want_ids)


@needs_torch_gpu
@pytest.mark.parametrize("dtype, K, shared_expert", [("bf16", 2048, False), ("fp16", 128, True), ("bf16", 384, True)])
def test_sigmoid_top1_matches_the_cpu_reference(dtype, K, shared_expert):
    g = torch.Generator(device="cuda").manual_seed(23)
    experts = 32
    x = torch.randn(M, K, device="cuda", generator=g).to(_torch_dtype(dtype))
    w = (torch.randn(K, experts, device="cuda", generator=g) / K ** 0.5).to(_torch_dtype(dtype))
    cols = 2 if shared_expert else 1
    tw, ids = _topk_outputs(M, cols)
    got = mh.gpu.sigmoid_top1(x, w, tw, ids, shared_expert=shared_expert, stream=_stream())
    assert got[0] is tw and got[1] is ids
    torch.cuda.synchronize()
    (xh, hint), (wh, _) = to_numpy(x), to_numpy(w)
    want_w, want_ids = mh.sigmoid_top1(xh, wh, shared_expert=shared_expert, dtype=hint)
    # The contract's near-ties: rows whose two best fp64 logits are within the fp32
    # accumulation bound gamma_K * sum |x w| may pick either; compare the others.
    xd, wd = x.double(), w.double()
    logits = xd @ wd
    bound = K * 2.0 ** -24 * (xd.abs() @ wd.abs())
    top2 = logits.topk(2, dim=1).values
    clear = ((top2[:, 0] - top2[:, 1]) > 2 * bound.max(dim=1).values).cpu().numpy()
    assert clear.sum() >= M - 3
    tol = {"atol": 0.25 * float(bound.max()) + 1e-6, "rtol": 1e-5, "max_rel_l2": 1e-3}
    got_w, got_ids = tw.cpu().numpy(), ids.cpu().numpy()
    r = mh.check_ids(got_ids[clear], want_ids[clear])
    assert r["passed"], r["message"]
    r = mh.check(got_w[clear], want_w[clear], tol)
    assert r["passed"], r["message"]
    # A wrong top-1 id: caught.
    bad = got_ids[clear].copy()
    bad[0, 0] = (bad[0, 0] + 1) % experts
    assert not mh.check_ids(bad, want_ids[clear])["passed"]


@needs_torch_gpu
@pytest.mark.parametrize("qtype, granularity, extra, shape, dtype", [
    ("fp8_e4m3fn", "per_tensor", {}, (2, 37, 384), "bf16"),
    ("fp8_e4m3fn", "per_row", {}, (37, 384), "bf16"),
    ("fp8_e4m3fn", "per_row", {}, (37, 384), "fp32"),
    ("fp8_e4m3fn", "per_group", {"group": 128}, (37, 300), "fp16"),
    ("fp8_e4m3fn", "per_group", {"group": 128, "group_layout": "col"}, (37, 384), "bf16"),
    ("fp8_e4m3fn", "per_block", {"block_rows": 128, "block_cols": 128}, (3, 200, 384), "bf16"),
    ("int8", "per_row", {}, (37, 384), "bf16"),
    ("int8", "per_tensor", {}, (37, 384), "fp16"),
])
def test_quantize_matches_the_cpu_reference(qtype, granularity, extra, shape, dtype):
    g = torch.Generator(device="cuda").manual_seed(24)
    x = (2 * torch.randn(*shape, device="cuda", generator=g)).to(_torch_dtype(dtype))
    host, hint = to_numpy(x)
    want_q, want_s = mh.quantize(host, qtype=qtype, granularity=granularity, dtype=hint, **extra)
    q = torch.empty(shape, dtype=torch.int8 if qtype == "int8" else torch.uint8, device="cuda")
    scales = torch.full(want_s.shape, float("nan"), device="cuda")
    got = mh.gpu.quantize(x, q, scales, qtype=qtype, granularity=granularity, stream=_stream(), **extra)
    assert got[0] is q and got[1] is scales
    torch.cuda.synchronize()
    # Bit-identical codes and scales (the kernels' contract with the reference).
    r = mh.check(scales.cpu().numpy(), want_s, _EXACT)
    assert r["passed"], r["message"]
    r = mh.check_ids(q.cpu().numpy().astype(np.int32), want_q.astype(np.int32))
    assert r["passed"], r["message"]
    # One scale perturbed by 2^-20: caught.
    bad = scales.cpu().numpy().copy()
    bad.flat[0] *= 1 + 2.0 ** -20
    assert not mh.check(bad, want_s, _EXACT)["passed"]


@needs_torch_gpu
def test_quantize_static_scale_and_nonfinite_input():
    g = torch.Generator(device="cuda").manual_seed(25)
    x = torch.randn(37, 256, device="cuda", generator=g).bfloat16()
    host, hint = to_numpy(x)
    static = np.array([0.004], np.float32)  # 448 * 0.004 < max |x|: the largest values saturate
    want_q, want_s = mh.quantize(host, granularity="per_tensor", static_scales=static, dtype=hint)
    q = torch.empty(x.shape, dtype=torch.uint8, device="cuda")
    scales = torch.zeros(1, device="cuda")
    mh.gpu.quantize(x, q, scales, granularity="per_tensor", static_scales=torch.from_numpy(static).cuda())
    torch.cuda.synchronize()
    assert mh.check(scales.cpu().numpy(), want_s, _EXACT)["passed"]
    assert mh.check_ids(q.cpu().numpy().astype(np.int32), want_q.astype(np.int32))["passed"]
    # Inf in the input: ValueError naming the tensor, the reference's message word for word.
    x[3, 200] = float("inf")
    host, hint = to_numpy(x)
    with pytest.raises(ValueError, match="tensor 'hidden'") as gpu_error:
        mh.gpu.quantize(x, q, torch.empty(37, device="cuda"), name="hidden")
    with pytest.raises(ValueError) as ref_error:
        mh.quantize(host, name="hidden", dtype=hint)
    assert str(gpu_error.value) == str(ref_error.value)


# Weight quantization of each scheme (moe/contract/fused_moe_q8.hpp's layouts).
_Q8_WEIGHTS = {"fp8_tensor": ("fp8_e4m3fn", "per_tensor"), "fp8_token": ("fp8_e4m3fn", "per_row"),
               "fp8_block": ("fp8_e4m3fn", "per_block"), "int8_token": ("int8", "per_row")}


def _q8_pair(w, scheme):
    """(host pair, device pair) of (codes, scales) of the float weight w (E, N, K)."""
    qtype, granularity = _Q8_WEIGHTS[scheme]
    codes, scales = mh.quantize(w.float().cpu().numpy(), qtype=qtype, granularity=granularity)
    return (codes, scales), (torch.from_numpy(codes).cuda(), torch.from_numpy(scales).cuda())


@needs_torch_gpu
@pytest.mark.parametrize("scheme, dtype, float_weights", [
    ("fp8_tensor", "bf16", False),
    ("fp8_token", "bf16", False),
    ("fp8_token", "fp16", True),
    ("fp8_block", "bf16", False),
    ("int8_token", "bf16", False),
    ("int8_token", "bf16", True),
])
def test_fused_moe_q8_matches_the_cpu_reference(scheme, dtype, float_weights):
    t_dtype = _torch_dtype(dtype)
    hidden, w1, w2, tw, ids = _torch_layer(t_dtype, seed=17)
    # The reference sums as the tile the layer chooses does (exact on mma.sync tiles,
    # Hopper's fp8 chains on wgmma tiles).
    cfg = mh.gpu.fused_moe_q8_config(M, MODEL_DIM, INTER, E, TOP_K, scheme=scheme)
    assert set(cfg) == {"config", "tile", "split_k"} and cfg["tile"] in cfg["config"]
    hidden_h, hint = to_numpy(hidden)
    tw_h, ids_h = tw.cpu().numpy(), ids.cpu().numpy()
    if float_weights:  # quantized by each side, the same way (bit-identical quantizers)
        w1_h, w2_h = w1.float().cpu().numpy(), w2.float().cpu().numpy()
        w1_d, w2_d = w1.float().contiguous(), w2.float().contiguous()
    else:
        (w1_h, w1_d), (w2_h, w2_d) = _q8_pair(w1, scheme), _q8_pair(w2, scheme)
    ref = mh.fused_moe_q8(hidden_h, w1_h, w2_h, tw_h, ids_h, scheme=scheme, dtype=hint, tile=cfg["tile"],
                          split_k=cfg["split_k"])
    tol = mh.tolerance(ref)
    out = torch.full((M, MODEL_DIM), float("nan"), dtype=t_dtype, device="cuda")
    got = mh.gpu.fused_moe_q8(hidden, w1_d, w2_d, tw, ids, out, scheme=scheme, stream=_stream())
    assert got is out
    torch.cuda.synchronize()
    r = mh.check(to_numpy(out)[0], ref["out"], tol, dtype=hint)
    assert r["passed"], r["message"]
    if scheme == "fp8_token" and not float_weights:
        # w2's scales of every expert x1.25: the output is 25 % off, caught.
        bad = torch.full_like(out, float("nan"))
        mh.gpu.fused_moe_q8(hidden, w1_d, (w2_d[0], w2_d[1] * 1.25), tw, ids, bad, scheme=scheme)
        torch.cuda.synchronize()
        assert not mh.check(to_numpy(bad)[0], ref["out"], tol, dtype=hint)["passed"]


# ---- tile counters ---------------------------------------------------------------------
# The layer entries hand the kernels tile counters zeroed in each call's scratch: a
# persistent one-block ws grid claims its tiles through them (the launch's last claim
# sets a counter back to 0), else it takes the fixed stride (MOE_FUSED_MOE_TILE_COUNTER=0,
# read at every launch). Claimed tiles must give the fixed stride's bits, call after call.
# 128 rows per expert: q8 takes the persistent ws tile on Hopper (sm_90a), with more tiles
# per stage than an H100/H200 grid has blocks (several claims per block). The bf16 chooser
# takes one block per tile there (no claims): its check guards the entry only.
_CLAIM_M, _CLAIM_MODEL_DIM, _CLAIM_INTER = 512, 1024, 1024


def _bits(t):
    return t.view(torch.int16)  # bf16/fp16 bit patterns (NaN == NaN)


def _claimed_then_fixed(monkeypatch, call):
    """Outputs of two calls with the counters, then one with the fixed stride."""
    monkeypatch.delenv("MOE_FUSED_MOE_TILE_COUNTER", raising=False)
    outs = [call(), call()]
    monkeypatch.setenv("MOE_FUSED_MOE_TILE_COUNTER", "0")
    outs.append(call())
    torch.cuda.synchronize()
    return outs


@needs_torch_gpu
def test_fused_moe_claimed_tiles_equal_the_fixed_stride(monkeypatch):
    args = _torch_layer(seed=23, m=_CLAIM_M, model_dim=_CLAIM_MODEL_DIM, inter=_CLAIM_INTER)

    def call():
        out = torch.full((_CLAIM_M, _CLAIM_MODEL_DIM), float("nan"), dtype=args[0].dtype, device="cuda")
        return mh.gpu.fused_moe(*args, out, stream=_stream())

    first, second, fixed = _claimed_then_fixed(monkeypatch, call)
    assert torch.isfinite(first.float()).all()
    assert torch.equal(_bits(first), _bits(second))
    assert torch.equal(_bits(first), _bits(fixed))
    ref = torch_moe(*args).float()
    assert ((first.float() - ref).norm() / ref.norm()).item() < 0.01


@needs_torch_gpu
@pytest.mark.parametrize("scheme", ["fp8_tensor", "fp8_block", "int8_token"])
def test_fused_moe_q8_claimed_tiles_equal_the_fixed_stride(monkeypatch, scheme):
    hidden, w1, w2, tw, ids = _torch_layer(seed=29, m=_CLAIM_M, model_dim=_CLAIM_MODEL_DIM, inter=_CLAIM_INTER)
    cfg = mh.gpu.fused_moe_q8_config(_CLAIM_M, _CLAIM_MODEL_DIM, _CLAIM_INTER, E, TOP_K, scheme=scheme)["config"]
    if "wgmma" in cfg:  # a Hopper sm_90a build: the claims are in play
        assert "wgmma_ws" in cfg and "persistent" in cfg, cfg
    w1_f, w2_f = w1.float().contiguous(), w2.float().contiguous()  # quantized on the device, each call alike

    def call():
        out = torch.full((_CLAIM_M, _CLAIM_MODEL_DIM), float("nan"), dtype=hidden.dtype, device="cuda")
        return mh.gpu.fused_moe_q8(hidden, w1_f, w2_f, tw, ids, out, scheme=scheme, stream=_stream())

    first, second, fixed = _claimed_then_fixed(monkeypatch, call)
    assert torch.isfinite(first.float()).all()
    assert torch.equal(_bits(first), _bits(second))
    assert torch.equal(_bits(first), _bits(fixed))
    # Not garbage (accuracy: test_fused_moe_q8_matches_the_cpu_reference): the unquantized
    # layer within the error of four quantized operands.
    ref = torch_moe(hidden, w1, w2, tw, ids).float()
    assert ((first.float() - ref).norm() / ref.norm()).item() < 0.2
