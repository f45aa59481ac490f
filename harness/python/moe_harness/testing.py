"""pytest helpers: check another project's MoE kernel output against the reference.

    from moe_harness.testing import assert_moe_close
    assert_moe_close(out, hidden, w1, w2, topk_weights, topk_ids)

Tensors may be NumPy arrays, PyTorch tensors (any device; copied to the host,
bf16 read as its bits) or objects with __dlpack__ / __array__.
"""
import numpy as np

from . import _core


def _torch_to_numpy(t):
    """(array, dtype name or None) of a torch tensor, bf16 as its uint16 bits."""
    import torch

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), "bf16"
    if t.dtype == torch.float16:
        return t.numpy(), "fp16"
    return t.numpy(), None


def to_numpy(x):
    """(array, dtype name or None): the host array behind x and, where x's own type
    says so, its 16-bit float format ('bf16'/'fp16')."""
    if isinstance(x, np.ndarray):
        return x, None
    if type(x).__module__.split(".")[0] == "torch":
        return _torch_to_numpy(x)
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        return np.from_dlpack(x), None
    if hasattr(x, "__array__"):
        return np.asarray(x), None
    raise TypeError("expected a NumPy array, a torch tensor or an object with __dlpack__ / __array__, got %s"
                    % type(x).__name__)


def assert_moe_close(out, hidden, w1, w2, topk_weights, topk_ids, *, dtype=None, activation="silu",
                     router_weight="output", out_dtype=None, tol=None, threads=0):
    """Raises AssertionError (the C++ checker's message) unless `out` (M, model_dim)
    matches the fused MoE layer reference on these inputs within the derived
    tolerance (moe_harness.tolerance; `tol` overrides it). Returns the check dict.

    dtype: the layer precision (bf16/fp16), taken from torch tensors or float16
    arrays when not given, else bf16. out_dtype: the precision the kernel stored
    `out` in (default: dtype).
    """
    arrays = []
    hints = set()
    for x in (out, hidden, w1, w2, topk_weights, topk_ids):
        a, hint = to_numpy(x)
        arrays.append(a)
        if hint is not None and a.dtype == np.uint16:
            hints.add(hint)
    if dtype is None and len(hints) == 1:
        dtype = hints.pop()
    out_a, hidden_a, w1_a, w2_a, tw_a, ids_a = arrays
    ref = _core.fused_moe(hidden_a, w1_a, w2_a, tw_a, ids_a, dtype=dtype, activation=activation,
                          router_weight=router_weight, threads=threads)
    if out_a.shape != ref["out"].shape:
        raise ValueError("out: expected shape %s (tokens, model_dim of hidden), got %s"
                         % (ref["out"].shape, out_a.shape))
    if tol is None:
        from . import tolerance

        tol = tolerance(ref, out_dtype=out_dtype)
    result = _core.check(out_a, ref["out"], tol, dtype=ref["problem"]["dtype"])
    if not result["passed"]:
        raise AssertionError("fused MoE output differs from the reference: %s" % result["message"])
    return result
