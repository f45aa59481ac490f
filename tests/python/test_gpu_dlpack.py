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
from moe_harness.testing import assert_moe_close

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


def _torch_layer(dtype=None, seed=0, masked=False):
    dtype = dtype or torch.bfloat16
    g = torch.Generator(device="cuda").manual_seed(seed)
    dev = "cuda"
    hidden = torch.randn(M, MODEL_DIM, device=dev, generator=g).to(dtype)
    w1 = (torch.randn(E, 2 * INTER, MODEL_DIM, device=dev, generator=g) / MODEL_DIM ** 0.5).to(dtype)
    w2 = (torch.randn(E, MODEL_DIM, INTER, device=dev, generator=g) / INTER ** 0.5).to(dtype)
    logits = torch.randn(M, E, device=dev, generator=g)
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
