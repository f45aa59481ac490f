// safetensors checkpoints (the Hugging Face format): read one tensor, list the
// tensors, write small files, and assemble one layer's experts from a sharded
// checkpoint, so a kernel can run on a real model's weights.
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON, then the
// data buffer. The JSON is an object:
//   {"__metadata__": {"format": "pt"},                       (optional, str -> str)
//    "model.layers.0.mlp.experts.0.gate_proj.weight":
//        {"dtype": "BF16", "shape": [1408, 2048], "data_offsets": [0, 5767168]}, ...}
// where data_offsets [begin, end) are byte offsets into the data buffer and the
// tensor is stored row-major, little-endian.
//
// Element types read, as NpyArray dtypes (moe/npy.hpp):
//   BF16 -> BF16   F16 -> F16   F32 -> F32   I32 -> I32
//   I64  -> I32 (narrowed with a range check: PyTorch index tensors are int64)
//   I8   -> I8     F8_E4M3 -> F8E4M3 codes (fn or fnuz is the kernel's parameter)
// Only the header and the requested tensor's bytes are read (checkpoint shards
// are gigabytes). Every problem is an InputError on one line,
// "<file>: <tensor>: <rule>" (the tensor asked for, or the header entry that
// breaks a rule; "<file>: <rule>" when no tensor is involved).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "moe/npy.hpp"

namespace moe {

// One tensor of a safetensors file.
NpyArray read_safetensors(const std::string& path, const std::string& tensor);

// The same from a whole file held in memory; `path` is used in messages.
NpyArray parse_safetensors(std::span<const uint8_t> file, const std::string& path, const std::string& tensor);

// Every tensor name in the file, sorted.
std::vector<std::string> safetensors_names(const std::string& path);

// A tensor argument of the command line:
//   "FILE.safetensors:TENSOR"   -> read_safetensors (split at the first ':' after ".safetensors")
//   "FILE.safetensors"          -> an error listing the file's first tensor names
//   anything else               -> read_npy (an .npy file under any name)
NpyArray read_tensor_arg(const std::string& spec);

// Writes the tensors (names sorted, data in that order, header padded with
// spaces to a multiple of 8 bytes) atomically; `metadata` becomes "__metadata__".
void write_safetensors(const std::string& path, const std::map<std::string, NpyArray>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Per-expert scales of an fp8 checkpoint, as the checkpoint stores them: one
// tensor per expert and projection, in the file's own layout and shape (e.g.
// DeepSeek-V3's "weight_scale_inv", F32 (ceil(rows/128), ceil(cols/128)) per
// block of 128x128, or a per-tensor / per-channel "weight_scale"). They are
// returned, not interpreted: the quantized kernel's caller maps them.
struct ExpertScales {
  std::string suffix;                 // "weight_scale_inv" or "weight_scale"
  std::vector<NpyArray> gate, up, down;  // index = expert
};

// One MoE layer's expert weights in the layout of the fused MoE kernels.
struct ExpertWeights {
  std::string scheme;  // "mixtral" (block_sparse_moe.experts.N.w1/w3/w2) or "deepseek" (mlp.experts.N.*_proj)
  int64_t experts = 0, inter_dim = 0, model_dim = 0;
  NpyArray w1;  // (E, 2*inter, model_dim): rows [gate; up] of each expert
  NpyArray w2;  // (E, model_dim, inter): down
  std::optional<ExpertScales> scales;  // present when the checkpoint has them for every expert
};

// Finds layer `layer`'s per-expert tensors over the given shards under
//   model.layers.L.block_sparse_moe.experts.N.{w1,w3,w2}.weight      (w1 gate, w3 up, w2 down)
//   model.layers.L.mlp.experts.N.{gate_proj,up_proj,down_proj}.weight
// and assembles them. Experts 0..E-1 must all be present with gate/up
// (inter, model_dim), down (model_dim, inter) and one dtype (F32, F16, BF16,
// F8_E4M3 or I8); errors name the missing or mis-shaped tensor.
ExpertWeights assemble_experts(const std::vector<std::string>& files, int layer);

}  // namespace moe
