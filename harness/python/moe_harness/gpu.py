"""Our GPU kernels on other libraries' GPU tensors (GPU builds only).

Tensors go in zero copy through DLPack (``__dlpack__`` / ``__dlpack_device__``):
PyTorch CUDA tensors, CuPy arrays, JAX arrays and the like. The outputs are
caller-provided tensors the kernels write into; the module allocates only its
scratch (stream-ordered, on the same stream).

  fused_moe(hidden, w1, w2, topk_weights, topk_ids, out, *, activation='silu',
            router_weight='output', stream=None)          -> out
  fused_moe_q8(hidden, w1, w2, topk_weights, topk_ids, out, *, scheme='fp8_tensor',
               fp8='e4m3fn', activation='silu', router_weight='output',
               stream=None)                                -> out
  fused_moe_q8_config(tokens, model_dim, inter_dim, experts, top_k, *,
                      scheme='fp8_tensor')                 -> the tile config's name
  moe_align(topk_ids, sorted_token_ids, expert_ids, num_tokens_post_padded, *,
            num_experts, block_size, expert_map=None, stream=None)
  moe_align_sizes(tokens, top_k, num_experts, block_size) -> {'capacity', 'max_blocks'}
  softmax_topk(logits, topk_weights, topk_ids, *, top_k, renormalize=False,
               stream=None)                                -> (topk_weights, topk_ids)
  grouped_topk(logits, topk_weights, topk_ids, *, top_k, n_group, topk_group,
               scoring='sigmoid', renormalize=True, routed_scaling_factor=1.0,
               bias=None, stream=None)                     -> (topk_weights, topk_ids)
  sigmoid_top1(x, w, topk_weights, topk_ids, *, shared_expert=False,
               stream=None)                                -> (topk_weights, topk_ids)
  quantize(x, q, scales, *, qtype='fp8_e4m3fn', granularity='per_row', group=128,
           group_layout='row', block_rows=128, block_cols=128, static_scales=None,
           name='input', stream=None)                      -> (q, scales)

Each has the name and keyword arguments of the CPU reference moe_harness.<name>
(minus the reference's dtype= hint: GPU tensors carry their dtype), with the
reference's outputs passed in as tensors and returned in the reference's order,
so the two can be called side by side and compared with moe_harness.check /
check_ids. fused_moe_q8 takes w1/w2 as (codes, scales) pairs in the scheme's
layout, or float tensors it quantizes on the device, as the reference does.

Streams: ``stream`` is an int handle (``torch.cuda.current_stream().cuda_stream``
for torch's current stream); None means the legacy default stream 0, which is
torch's stream unless you selected another. The kernels are enqueued there
without synchronising (except quantize and fused_moe_q8, which synchronise it to
read the quantizers' Inf/NaN report: an Inf/NaN input raises ValueError, as the
references do): synchronise that stream (or make yours wait on it) before
reading the outputs. Each tensor is requested with ``__dlpack__(stream=...)``, so
its producer makes the stream wait for pending work on it. Keep the tensors alive
until the stream has run the work (as with any side stream; torch:
``Tensor.record_stream``).

Dtypes: bfloat16/float16 for the layer's tensors (one dtype), float32 weights
and scales, int32 ids (``topk_ids.int()`` for torch's int64 topk indices),
uint8 fp8 codes (a torch float8 tensor's ``.view(torch.uint8)``) and int8 codes.
Every tensor row-major contiguous and on the current device. Bad input raises
TypeError (not a GPU tensor, wrong dtype) or ValueError (rank, shape, strides,
device index), each message starting with the tensor's name, or ValueError with
the C++ input error's text (the parameter rules the references share, e.g.
"softmax_topk: top_k must be in [1, min(experts=8, 32)], got 9").

In a CPU build (-Dgpu=none) importing this module raises ImportError;
``moe_harness.has_gpu()`` says which build this is without raising.
"""
from . import _core

if not hasattr(_core, "gpu"):
    raise ImportError("moe_harness.gpu: this moe_harness was built without a GPU backend (gpu_backend=%r); "
                      "rebuild with meson -Dgpu=cuda (or hip) -Dpython=enabled" % (_core.gpu_backend,))

fused_moe = _core.gpu.fused_moe
fused_moe_q8 = _core.gpu.fused_moe_q8
fused_moe_q8_config = _core.gpu.fused_moe_q8_config
moe_align = _core.gpu.moe_align
moe_align_sizes = _core.gpu.moe_align_sizes
softmax_topk = _core.gpu.softmax_topk
grouped_topk = _core.gpu.grouped_topk
sigmoid_top1 = _core.gpu.sigmoid_top1
quantize = _core.gpu.quantize

__all__ = ["fused_moe", "fused_moe_q8", "fused_moe_q8_config", "moe_align", "moe_align_sizes", "softmax_topk",
           "grouped_topk", "sigmoid_top1", "quantize"]
