"""moe-harness's references, tolerances and checker for NumPy (and PyTorch) users.

Array conventions
  * bf16 and fp16 tensors are ``uint16`` arrays of their bit patterns (NumPy has
    no bfloat16); the functions take ``dtype='bf16'`` (the default for uint16) or
    ``dtype='fp16'``. ``numpy.float16`` arrays are read as fp16.
  * float32 arrays are taken as the values a kernel read (already rounded to its
    input precision); for the layers, ``dtype`` then names that precision (bf16
    unless given), which sets the intermediate rounding and the tolerance.
  * ids are int32; int64 is accepted when every value fits int32.
  * Outputs are float32 (the layer outputs are not rounded; the tolerance
    accounts for the kernel's output rounding), int32 ids, uint8 fp8 codes and
    int8 codes.
  * Bad input raises ValueError (wrong shape, rank or relation between tensors,
    and every error the C++ harness reports as an input error, with its text) or
    TypeError (an array of an unsupported dtype).

Functions
  make_inputs        the C++ harness's generated layer inputs (same Philox streams)
  moe_align, softmax_topk, grouped_topk, sigmoid_top1, fused_moe, fused_moe_q8,
  quantize, dequantize
                     the CPU references
  tolerance          the derived tolerance of a fused_moe / fused_moe_q8 result
  check, check_ids   the C++ checker; a dict with passed, message and the metrics
  testing.assert_moe_close   pytest helper (also exported here)
  has_gpu            whether this build has moe_harness.gpu
  gpu                GPU builds: our kernels on torch/DLPack GPU tensors, zero copy,
                     on the caller's stream, under the references' names (moe_align,
                     softmax_topk, grouped_topk, sigmoid_top1, quantize, fused_moe,
                     fused_moe_q8; see moe_harness.gpu)

Model shapes come from configs/model_configs.json: ``model_configs=`` names a
file, else default_model_configs() finds one.
"""
import os

from ._core import (
    check,
    check_ids,
    dequantize,
    fused_moe,
    fused_moe_inter_tolerance,
    fused_moe_q8,
    fused_moe_tolerance,
    gpu_backend,
    grouped_topk,
    make_inputs,
    model_config,
    model_names,
    moe_align,
    q8_inter_tolerance,
    q8_out_tolerance,
    quantize,
    sigmoid_top1,
    softmax_topk,
)

_MODEL_CONFIGS = os.path.join("configs", "model_configs.json")


def default_model_configs():
    """configs/model_configs.json under the current folder if it exists (as the
    CLI looks), else the copy installed with this package, else the checkout the
    module was built from."""
    from . import _core

    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (_MODEL_CONFIGS, os.path.join(here, _MODEL_CONFIGS), os.path.join(_core.source_dir, _MODEL_CONFIGS)):
        if os.path.isfile(candidate):
            return candidate
    raise ValueError("model_configs.json not found (looked in ./configs, the package and %s/configs): pass model_configs="
                     % _core.source_dir)


def tolerance(result, *, output="out", out_dtype=None):
    """The derived tolerance for comparing a kernel's `output` ('out' or
    'intermediate') with a reference `result` of fused_moe() or fused_moe_q8().

    out_dtype: the precision the kernel stored its output in (default: the
    layer's dtype). Returns {'atol', 'rtol', 'max_rel_l2'}, the form check() takes.
    """
    layer, p = result["layer"], result["problem"]
    if output not in ("out", "intermediate"):
        raise ValueError("tolerance: output must be 'out' or 'intermediate', got %r" % (output,))
    if layer == "fused_moe":
        if output == "out":
            return fused_moe_tolerance(model_dim=p["model_dim"], inter_dim=p["inter_dim"], out_rms=result["out_rms"],
                                       dtype=p["dtype"], inter_dtype=p["inter_dtype"], out_dtype=out_dtype)
        return fused_moe_inter_tolerance(model_dim=p["model_dim"], inter_dim=p["inter_dim"], inter_rms=result["inter_rms"],
                                         inter_dtype=p["inter_dtype"])
    if layer == "fused_moe_q8":
        if out_dtype is not None and out_dtype != p["dtype"]:
            raise ValueError("tolerance: the quantized layer's output is in %s, got out_dtype=%r" % (p["dtype"], out_dtype))
        if output == "out":
            return q8_out_tolerance(scheme=p["scheme"], model_dim=p["model_dim"], inter_dim=p["inter_dim"],
                                    out_rms=result["out_rms"], dtype=p["dtype"])
        return q8_inter_tolerance(scheme=p["scheme"], model_dim=p["model_dim"], inter_dim=p["inter_dim"],
                                  inter_rms=result["inter_rms"], dtype=p["dtype"])
    raise ValueError("tolerance: not a fused_moe or fused_moe_q8 result (layer %r)" % (layer,))


def has_gpu():
    """True when this build has the GPU entry points (moe_harness.gpu: a meson
    -Dgpu=cuda or hip build). Says nothing about a device being present: it makes
    no GPU call."""
    from . import _core

    return hasattr(_core, "gpu")


def __getattr__(name):
    # `moe_harness.gpu` in a CPU build: gpu.py's clear message, not a bare "no attribute";
    # AttributeError, so hasattr(moe_harness, 'gpu') stays False there.
    if name == "gpu":
        import importlib

        try:
            return importlib.import_module(".gpu", __name__)
        except ImportError as e:
            raise AttributeError(str(e)) from None
    raise AttributeError("module 'moe_harness' has no attribute %r" % (name,))


from .testing import assert_moe_close  # noqa: E402  (needs the names above)
