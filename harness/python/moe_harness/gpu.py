"""Our GPU kernels on other libraries' GPU tensors (GPU builds only).

Tensors go in zero copy through DLPack (``__dlpack__`` / ``__dlpack_device__``):
PyTorch CUDA tensors, CuPy arrays, JAX arrays and the like. The outputs are
caller-provided tensors the kernels write into; the module allocates only its
scratch (stream-ordered, on the same stream).

  fused_moe(hidden, w1, w2, topk_weights, topk_ids, out, *, activation='silu',
            router_weight='output', stream=None)          -> out
  moe_align(topk_ids, sorted_token_ids, expert_ids, num_tokens_post_padded, *,
            num_experts, block_size, expert_map=None, stream=None)
  moe_align_sizes(tokens, top_k, num_experts, block_size) -> {'capacity', 'max_blocks'}

Streams: ``stream`` is an int handle (``torch.cuda.current_stream().cuda_stream``
for torch's current stream); None means the legacy default stream 0, which is
torch's stream unless you selected another. The kernels are enqueued there
without synchronising: synchronise that stream (or make yours wait on it) before
reading the outputs. Each tensor is requested with ``__dlpack__(stream=...)``, so
its producer makes the stream wait for pending work on it. Keep the tensors alive
until the stream has run the work (as with any side stream; torch:
``Tensor.record_stream``).

Dtypes: bfloat16/float16 for the layer's tensors (one dtype), float32 weights,
int32 ids (``topk_ids.int()`` for torch's int64 topk indices). Every tensor
row-major contiguous and on the current device. Bad input raises TypeError
(not a GPU tensor, wrong dtype) or ValueError (rank, shape, strides, device
index, and the C++ input errors), each message starting with the tensor's name.

In a CPU build (-Dgpu=none) importing this module raises ImportError;
``moe_harness.has_gpu()`` says which build this is without raising.
"""
from . import _core

if not hasattr(_core, "gpu"):
    raise ImportError("moe_harness.gpu: this moe_harness was built without a GPU backend (gpu_backend=%r); "
                      "rebuild with meson -Dgpu=cuda (or hip) -Dpython=enabled" % (_core.gpu_backend,))

fused_moe = _core.gpu.fused_moe
moe_align = _core.gpu.moe_align
moe_align_sizes = _core.gpu.moe_align_sizes

__all__ = ["fused_moe", "moe_align", "moe_align_sizes"]
