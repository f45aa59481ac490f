// safetensors reader/writer: round trips of every dtype, files written byte by
// byte as the format describes, every malformed-file error, tensor arguments,
// and assembling a layer's experts from Mixtral- and DeepSeek-style shards.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "moe/error.hpp"
#include "moe/npy.hpp"
#include "moe/safetensors.hpp"
#include "tooling_util.hpp"

using namespace moe;

namespace {

// A file as the format lays it out: u64 little-endian header length, header, data.
std::string st_file(const std::string& header, const std::string& data, uint64_t declared_len = UINT64_MAX) {
  const uint64_t n = declared_len == UINT64_MAX ? header.size() : declared_len;
  std::string out;
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((n >> (8 * k)) & 0xff));
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

NpyArray random_array(DType dtype, std::vector<int64_t> shape, tooling::Gen& gen) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.bytes.resize(static_cast<size_t>(a.numel()) * dtype_size(dtype));
  for (auto& b : a.bytes) b = static_cast<uint8_t>(gen.next_u32());
  return a;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

// The error reading `tensor` from a file holding `bytes`, which must be one line.
std::string read_error(const tooling::TempDir& dir, const std::string& bytes, const std::string& tensor = "t") {
  const std::string path = dir.path("bad.safetensors");
  tooling::spit(path, bytes);
  const std::string msg = error_of([&] { read_safetensors(path, tensor); });
  CHECK(msg.find('\n') == std::string::npos);
  // The in-memory parser gives the same verdict.
  const std::vector<uint8_t> mem(bytes.begin(), bytes.end());
  CHECK(error_of([&] { parse_safetensors(mem, path, tensor); }) == msg);
  return msg;
}

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, random shapes, with metadata") {
  tooling::TempDir dir;
  tooling::Gen gen(77);
  const DType dtypes[] = {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I8, DType::F8E4M3};
  std::map<std::string, NpyArray> tensors;
  int k = 0;
  for (DType t : dtypes) {
    for (int rank = 0; rank < 4; ++rank) {
      std::vector<int64_t> shape;
      for (int d = 0; d < rank; ++d) shape.push_back(1 + gen.next_u32() % 5);
      if (rank == 3 && t == DType::I8) shape[1] = 0;  // an empty tensor
      tensors.emplace("tensor." + std::to_string(k++), random_array(t, shape, gen));
    }
  }
  const std::string path = dir.path("all.safetensors");
  write_safetensors(path, tensors, {{"format", "pt"}});
  const auto names = safetensors_names(path);
  REQUIRE(names.size() == tensors.size());
  for (const auto& [name, want] : tensors) {
    CHECK(std::find(names.begin(), names.end(), name) != names.end());
    const NpyArray got = read_safetensors(path, name);
    CHECK(got.dtype == want.dtype);
    CHECK(got.shape == want.shape);
    CHECK(got.bytes == want.bytes);
    CHECK(got.source == path + ":" + name);
  }
  // The header is padded to 8 bytes, so the data starts aligned.
  const std::string bytes = tooling::slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes.substr(8, n).find("\"__metadata__\":{\"format\":\"pt\"}") != std::string::npos);
  CHECK(dir.stray_temporaries() == 0);
}

TEST_CASE("safetensors: empty tensors convert to empty vectors") {
  tooling::TempDir dir;
  tooling::Gen gen(78);
  const std::string path = dir.path("empty.safetensors");
  write_safetensors(path, {{"f", random_array(DType::F32, {0, 3}, gen)}, {"i", random_array(DType::I32, {4, 0}, gen)}});
  CHECK(read_safetensors(path, "f").to_f32().empty());
  CHECK(read_safetensors(path, "i").to_i32().empty());
  // The same from bytes in memory (the path that copied 0 bytes to a null pointer,
  // found by the fuzzer under UBSan).
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(parse_safetensors(bytes, "empty.safetensors", "f").to_f32().empty());
  CHECK(parse_safetensors(bytes, "empty.safetensors", "i").to_i32().empty());
}

TEST_CASE("safetensors: a file written byte by byte as the format describes") {
  tooling::TempDir dir;
  const std::vector<float> w{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -8.5f};
  const std::vector<uint16_t> b{0x3f80, 0xc000};  // bf16 1.0, -2.0
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]},)"
      R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}   )";
  const std::string path = dir.path("hand.safetensors");
  tooling::spit(path, st_file(header, raw(w) + raw(b)));
  const NpyArray a = read_safetensors(path, "w");
  CHECK(a.dtype == DType::F32);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  CHECK(a.to_f32() == w);
  CHECK(read_safetensors(path, "b").to_f32() == std::vector<float>{1.0f, -2.0f});
  CHECK(safetensors_names(path) == std::vector<std::string>{"b", "w"});
}

TEST_CASE("safetensors: I64 is narrowed to I32, out-of-range values are refused") {
  tooling::TempDir dir;
  const std::string header = R"({"i":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}})";
  const std::string path = dir.path("ids.safetensors");
  tooling::spit(path, st_file(header, raw(std::vector<int64_t>{0, -7, 2147483647})));
  const NpyArray a = read_safetensors(path, "i");
  CHECK(a.dtype == DType::I32);
  CHECK(a.to_i32() == std::vector<int32_t>{0, -7, 2147483647});
  CHECK(read_error(dir, st_file(header, raw(std::vector<int64_t>{1, 4294967296LL, 3})), "i") ==
        dir.path("bad.safetensors") + ": i: I64 element 1 = 4294967296 does not fit int32");
}

TEST_CASE("safetensors: every malformed file is one InputError naming file, tensor and rule") {
  tooling::TempDir dir;
  const std::string file = dir.path("bad.safetensors");
  const std::string data16(16, '\0');
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& off) {
    return R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + off + "}}";
  };
  const std::string good = entry("F32", "[2,2]", "[0,16]");
  tooling::spit(file, st_file(good, data16));
  REQUIRE(read_safetensors(file, "t").numel() == 4);

  CHECK(read_error(dir, "") == file + ": t: not a safetensors file: 0 bytes, shorter than the 8-byte header length");
  CHECK(read_error(dir, std::string(5, 'x')).find("shorter than the 8-byte header length") != std::string::npos);
  CHECK(read_error(dir, st_file(good, data16, 1000)) ==
        file + ": t: header length 1000 exceeds the " + std::to_string(good.size() + 16) +
            " bytes after it (not a safetensors file, or truncated)");
  CHECK(read_error(dir, st_file(good, data16, UINT64_MAX - 1)).find("header length 18446744073709551614 exceeds") != std::string::npos);
  CHECK(read_error(dir, st_file("[1]", "")) == file + ": t: header does not start with '{' (not a safetensors file)");
  CHECK(read_error(dir, st_file(R"({"t": {"dtype": "F32",)", data16)).find(": t: header is not valid JSON (byte ") != std::string::npos);
  CHECK(read_error(dir, st_file("{\"t\xff\": 1}", "")).find("header is not valid JSON") != std::string::npos);
  CHECK(read_error(dir, st_file(R"({"t": 1e400})", "")).find(": t: header is not valid JSON: ") != std::string::npos);
  // Truncated: the data buffer is shorter than the offsets say.
  CHECK(read_error(dir, st_file(good, data16.substr(0, 10))) ==
        file + ": t: data_offsets [0, 16] run past the data buffer (10 bytes): offsets out of range or the file is truncated");
  CHECK(read_error(dir, st_file(entry("F32", "[2,2]", "[8,24]"), data16)).find("run past the data buffer (16 bytes)") != std::string::npos);
  CHECK(read_error(dir, st_file(entry("F32", "[2,2]", "[16,0]"), data16)) == file + ": t: data_offsets [16, 0]: end is before begin");
  CHECK(read_error(dir, st_file(entry("F32", "[2,2]", "[0,8]"), data16)) ==
        file + ": t: data_offsets [0, 8] hold 8 bytes, shape [2,2] of F32 needs 16");
  CHECK(read_error(dir, st_file(entry("BF16", "[2,2]", "[0,16]"), data16)).find("shape [2,2] of BF16 needs 8") != std::string::npos);
  CHECK(read_error(dir, st_file(entry("F64", "[2]", "[0,16]"), data16)) ==
        file + ": t: unsupported dtype 'F64' (supported: BF16, F16, F32, F8_E4M3, I8, I32, I64)");
  CHECK(read_error(dir, st_file(entry("F32", "[-2,2]", "[0,16]"), data16)).find("every shape dimension must be a non-negative integer, got -2") != std::string::npos);
  CHECK(read_error(dir, st_file(entry("F32", "[4294967296,4294967296]", "[0,16]"), data16)).find("is too large") != std::string::npos);
  CHECK(read_error(dir, st_file(entry("F32", "[4]", "[0]"), data16)) == file + ": t: data_offsets must be [begin, end]");
  CHECK(read_error(dir, st_file(R"({"t":{"dtype":"F32","shape":[4]}})", data16)) ==
        file + ": t: header entry lacks one of dtype, shape, data_offsets");
  CHECK(read_error(dir, st_file(R"({"t":[1]})", data16)) == file + ": t: header entry is not an object with dtype, shape, data_offsets");
  CHECK(read_error(dir, st_file(R"({"__metadata__":{"n":1}})", "")) == file + ": __metadata__: value of 'n' is not a string");
  CHECK(read_error(dir, st_file(R"({"t":{"dtype":"I8","shape":[],"data_offsets":[0,1]},"t":{"dtype":"I8","shape":[],"data_offsets":[0,1]}})", "x")) ==
        file + ": t: named twice in the header");
  // A name not in the file lists near names.
  const std::string two = R"({"model.layers.0.w1":{"dtype":"I8","shape":[],"data_offsets":[0,1]},)"
                          R"("model.layers.0.w2":{"dtype":"I8","shape":[],"data_offsets":[1,2]},"zz":{"dtype":"I8","shape":[],"data_offsets":[2,3]}})";
  CHECK(read_error(dir, st_file(two, "abc"), "model.layers.0.w3") ==
        file + ": model.layers.0.w3: no such tensor in the file (3 tensors); near names: 'model.layers.0.w1', 'model.layers.0.w2'");
  // Control characters in a requested name stay on one line.
  CHECK(read_error(dir, st_file(two, "abc"), "a\nb").find(": a\\x0ab: no such tensor") != std::string::npos);

  // Not a regular file.
  CHECK(error_of([&] { read_safetensors(dir.path(), "t"); }) == dir.path() + ": t: is a directory, not a safetensors file");
  CHECK(error_of([&] { read_safetensors("/dev/zero", "t"); }) == "/dev/zero: t: is not a regular file (device, FIFO or socket)");
  CHECK(error_of([&] { read_safetensors(dir.path("absent.safetensors"), "t"); }).find(": t: cannot open: ") != std::string::npos);
}

TEST_CASE("safetensors: tensor arguments FILE.npy and FILE.safetensors:TENSOR") {
  tooling::TempDir dir;
  tooling::Gen gen(5);
  const NpyArray x = random_array(DType::BF16, {3, 4}, gen);
  const std::string st = dir.path("m.safetensors");
  write_safetensors(st, {{"a:b", x}, {"x", x}});
  const std::string npy = dir.path("x.npy");
  write_npy(npy, x.dtype, x.shape, x.bytes);

  CHECK(read_tensor_arg(npy).bytes == x.bytes);
  CHECK(read_tensor_arg(st + ":x").bytes == x.bytes);
  CHECK(read_tensor_arg(st + ":a:b").shape == x.shape);  // only the first ':' after .safetensors splits
  CHECK(error_of([&] { read_tensor_arg(st); }) ==
        st + ": name a tensor: FILE.safetensors:TENSOR (the file has 2 tensors: 'a:b', 'x')");
  CHECK(error_of([&] { read_tensor_arg(st + ":"); }) == st + ": no tensor after ':' (write FILE.safetensors:TENSOR)");
  CHECK(error_of([&] { read_tensor_arg(st + ":y"); }).find(st + ": y: no such tensor in the file (2 tensors)") == 0);
  // Any other name is read as an .npy file, whatever its extension.
  CHECK(error_of([&] { read_tensor_arg(dir.path("x.pt")); }).find(dir.path("x.pt")) == 0);
}

namespace {

struct Checkpoint {
  std::map<std::string, NpyArray> shard[2];
  std::vector<NpyArray> gate, up, down;  // per expert
};

// A 3-expert layer 3 split over two shards (experts 0-1 in the first, 2 in the
// second), with unrelated tensors and another layer beside it.
Checkpoint make_checkpoint(bool mixtral, DType dtype, int64_t inter, int64_t model_dim, tooling::Gen& gen) {
  Checkpoint c;
  const std::string base = mixtral ? "model.layers.3.block_sparse_moe.experts." : "model.layers.3.mlp.experts.";
  const char* names[3] = {mixtral ? "w1" : "gate_proj", mixtral ? "w3" : "up_proj", mixtral ? "w2" : "down_proj"};
  for (int e = 0; e < 3; ++e) {
    c.gate.push_back(random_array(dtype, {inter, model_dim}, gen));
    c.up.push_back(random_array(dtype, {inter, model_dim}, gen));
    c.down.push_back(random_array(dtype, {model_dim, inter}, gen));
    auto& s = c.shard[e < 2 ? 0 : 1];
    const std::string p = base + std::to_string(e) + ".";
    s[p + names[0] + ".weight"] = c.gate.back();
    s[p + names[1] + ".weight"] = c.up.back();
    s[p + names[2] + ".weight"] = c.down.back();
  }
  c.shard[0]["model.embed_tokens.weight"] = random_array(DType::BF16, {5, model_dim}, gen);
  c.shard[1][std::string(mixtral ? "model.layers.4.block_sparse_moe.experts." : "model.layers.4.mlp.experts.") + "0." +
             names[0] + ".weight"] = random_array(dtype, {1, 1}, gen);
  return c;
}

std::vector<std::string> write_shards(const tooling::TempDir& dir, const Checkpoint& c) {
  std::vector<std::string> files{dir.path("model-00001-of-00002.safetensors"), dir.path("model-00002-of-00002.safetensors")};
  write_safetensors(files[0], c.shard[0]);
  write_safetensors(files[1], c.shard[1]);
  return files;
}

void check_assembled(const ExpertWeights& w, const Checkpoint& c, int64_t inter, int64_t model_dim) {
  CHECK(w.experts == 3);
  CHECK(w.inter_dim == inter);
  CHECK(w.model_dim == model_dim);
  CHECK(w.w1.shape == std::vector<int64_t>{3, 2 * inter, model_dim});
  CHECK(w.w2.shape == std::vector<int64_t>{3, model_dim, inter});
  const size_t mat = c.gate[0].bytes.size();
  for (size_t e = 0; e < 3; ++e) {
    const auto w1e = w.w1.bytes.begin() + static_cast<std::ptrdiff_t>(2 * e * mat);
    CHECK(std::equal(c.gate[e].bytes.begin(), c.gate[e].bytes.end(), w1e));
    CHECK(std::equal(c.up[e].bytes.begin(), c.up[e].bytes.end(), w1e + static_cast<std::ptrdiff_t>(mat)));
    CHECK(std::equal(c.down[e].bytes.begin(), c.down[e].bytes.end(), w.w2.bytes.begin() + static_cast<std::ptrdiff_t>(e * mat)));
  }
}

}  // namespace

TEST_CASE("safetensors: Mixtral-style experts over two shards") {
  tooling::TempDir dir;
  tooling::Gen gen(11);
  const Checkpoint c = make_checkpoint(true, DType::BF16, 6, 4, gen);
  const ExpertWeights w = assemble_experts(write_shards(dir, c), 3);
  CHECK(w.scheme == "mixtral");
  CHECK(w.w1.dtype == DType::BF16);
  CHECK(!w.scales);
  check_assembled(w, c, 6, 4);
}

TEST_CASE("safetensors: DeepSeek-style fp8 experts with their block scales") {
  tooling::TempDir dir;
  tooling::Gen gen(12);
  Checkpoint c = make_checkpoint(false, DType::F8E4M3, 5, 8, gen);
  for (int e = 0; e < 3; ++e)
    for (const char* p : {"gate_proj", "up_proj", "down_proj"})
      c.shard[e < 2 ? 0 : 1]["model.layers.3.mlp.experts." + std::to_string(e) + "." + p + ".weight_scale_inv"] =
          random_array(DType::F32, {1, 1}, gen);
  const auto files = write_shards(dir, c);
  const ExpertWeights w = assemble_experts(files, 3);
  CHECK(w.scheme == "deepseek");
  CHECK(w.w1.dtype == DType::F8E4M3);
  check_assembled(w, c, 5, 8);
  REQUIRE(w.scales);
  CHECK(w.scales->suffix == "weight_scale_inv");
  REQUIRE(w.scales->down.size() == 3);
  CHECK(w.scales->down[2].bytes == c.shard[1].at("model.layers.3.mlp.experts.2.down_proj.weight_scale_inv").bytes);
  CHECK(w.scales->gate[1].bytes == c.shard[0].at("model.layers.3.mlp.experts.1.gate_proj.weight_scale_inv").bytes);

  // One expert without its scale.
  c.shard[0].erase("model.layers.3.mlp.experts.1.up_proj.weight_scale_inv");
  const auto files2 = write_shards(dir, c);
  CHECK(error_of([&] { assemble_experts(files2, 3); }).find(
            "model.layers.3.mlp.experts.1.up_proj.weight_scale_inv: missing: other experts of layer 3 have weight_scale_inv tensors") !=
        std::string::npos);
}

TEST_CASE("safetensors: expert errors name the missing or mis-shaped tensor") {
  tooling::TempDir dir;
  tooling::Gen gen(13);
  const Checkpoint good = make_checkpoint(false, DType::BF16, 6, 4, gen);

  Checkpoint c = good;
  c.shard[0].erase("model.layers.3.mlp.experts.1.up_proj.weight");
  auto files = write_shards(dir, c);
  CHECK(error_of([&] { assemble_experts(files, 3); }) ==
        files[0] + ", " + files[1] +
            ": model.layers.3.mlp.experts.1.up_proj.weight: missing (layer 3 has experts up to 2, so every expert 0..2 needs it)");

  c = good;
  c.shard[1]["model.layers.3.mlp.experts.2.down_proj.weight"] = random_array(DType::BF16, {6, 4}, gen);
  files = write_shards(dir, c);
  CHECK(error_of([&] { assemble_experts(files, 3); }) ==
        files[1] + ": model.layers.3.mlp.experts.2.down_proj.weight: shape [6, 4], expected [4, 6] "
                   "= (model_dim, inter) with inter 6, model_dim 4 from expert 0's gate");

  c = good;
  c.shard[1]["model.layers.3.mlp.experts.2.gate_proj.weight"] = random_array(DType::F16, {6, 4}, gen);
  files = write_shards(dir, c);
  CHECK(error_of([&] { assemble_experts(files, 3); }).find(
            "model.layers.3.mlp.experts.2.gate_proj.weight: dtype F16, expert 0's gate is BF16") != std::string::npos);

  files = write_shards(dir, good);
  CHECK(error_of([&] { assemble_experts(files, 7); }).find("no expert tensors of layer 7 (looked for model.layers.7.") !=
        std::string::npos);
  CHECK(error_of([&] { assemble_experts(files, 7); }).find("layers with experts: 3 4") != std::string::npos);

  // The same tensor in two shards.
  c = good;
  c.shard[1]["model.layers.3.mlp.experts.0.gate_proj.weight"] = c.gate[0];
  files = write_shards(dir, c);
  CHECK(error_of([&] { assemble_experts(files, 3); }).find(
            "model.layers.3.mlp.experts.0.gate_proj.weight: also in " + files[0]) != std::string::npos);

  // A corrupt shard is reported as such.
  tooling::spit(files[1], "junk");
  CHECK(error_of([&] { assemble_experts(files, 3); }).find(files[1] + ": not a safetensors file") == 0);
}
