#include "moe/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "moe/atomic_file.hpp"
#include "moe/error.hpp"

namespace moe {
namespace {

using json = nlohmann::json;

// A header larger than this is not a checkpoint (the reference implementation
// uses the same bound): refuse it before allocating.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

// Control characters and bytes that are not UTF-8 become \xNN, so a message
// stays one valid line whatever the file or the command line held.
std::string printable(std::string_view s) {
  std::string out;
  size_t i = 0;
  auto escape = [&](unsigned char c) { out += fmt::format("\\x{:02x}", c); };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      escape(c), ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c), ++i;
      continue;
    }
    const int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    bool ok = len > 0 && i + len <= s.size() && c < 0xf5;
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      escape(c), ++i;
    }
  }
  return out;
}

[[noreturn]] void fail(const std::string& path, const std::string& tensor, const std::string& rule) {
  if (tensor.empty()) throw InputError(fmt::format("{}: {}", printable(path), rule));
  throw InputError(fmt::format("{}: {}: {}", printable(path), printable(tensor), rule));
}

struct DTypeInfo {
  std::string_view name;
  DType dtype;
  uint64_t file_size;  // bytes per element in the file
};
// I64 is read and narrowed to I32.
constexpr DTypeInfo kDTypes[] = {
    {"BF16", DType::BF16, 2}, {"F16", DType::F16, 2}, {"F32", DType::F32, 4}, {"F8_E4M3", DType::F8E4M3, 1},
    {"I8", DType::I8, 1},     {"I32", DType::I32, 4}, {"I64", DType::I32, 8},
};
constexpr std::string_view kI64 = "I64";

std::string supported_dtypes() {
  std::vector<std::string_view> names;
  for (const auto& d : kDTypes) names.push_back(d.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string_view file_dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.dtype == t && d.name != kI64) return d.name;
  return "?";
}

struct Entry {
  std::string name;
  DTypeInfo type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // within the data buffer
};

struct Header {
  std::string path;
  uint64_t data_start = 0;  // 8 + N
  std::map<std::string, Entry> entries;

  const Entry& find(const std::string& tensor) const {
    const auto it = entries.find(tensor);
    if (it != entries.end()) return it->second;
    fail(path, tensor, fmt::format("no such tensor in the file ({} tensors){}", entries.size(), near_names(tensor)));
  }

  // Up to five names sharing the longest prefix plus suffix with `tensor`.
  std::string near_names(const std::string& tensor) const {
    std::vector<std::pair<size_t, const std::string*>> scored;
    for (const auto& [name, e] : entries) {
      const size_t n = std::min(name.size(), tensor.size());
      size_t pre = 0, suf = 0;
      while (pre < n && name[pre] == tensor[pre]) ++pre;
      while (suf < n && name[name.size() - 1 - suf] == tensor[tensor.size() - 1 - suf]) ++suf;
      if (pre + suf >= 3) scored.emplace_back(pre + suf, &name);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (scored.empty()) return "";
    std::vector<std::string> shown;
    for (size_t k = 0; k < scored.size() && k < 5; ++k) shown.push_back("'" + printable(*scored[k].second) + "'");
    return fmt::format("; near names: {}", fmt::join(shown, ", "));
  }
};

// Where the bytes come from: a whole file in memory, or a regular file read
// piecewise with pread.
class Source {
 public:
  Source(std::span<const uint8_t> bytes, std::string path) : bytes_(bytes), size_(bytes.size()), path_(std::move(path)) {}

  // Opens `path` (refusing directories and special files: reading /dev/zero
  // or a FIFO would never end).
  Source(const std::string& path, const std::string& tensor) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail(path, tensor, fmt::format("cannot open: {}", std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      fail(path, tensor, fmt::format("cannot stat: {}", std::strerror(err)));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail(path, tensor, S_ISDIR(st.st_mode) ? "is a directory, not a safetensors file"
                                             : "is not a regular file (device, FIFO or socket)");
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~Source() {
    if (fd_ >= 0) ::close(fd_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  uint64_t size() const { return size_; }

  // Callers have checked that [offset, offset + n) lies inside size().
  void read(uint64_t offset, uint8_t* dst, uint64_t n, const std::string& tensor) const {
    if (n == 0) return;  // an empty tensor: dst may be null
    if (fd_ < 0) {
      std::memcpy(dst, bytes_.data() + offset, n);
      return;
    }
    while (n > 0) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, 1u << 30));
      const ssize_t got = ::pread(fd_, dst, chunk, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail(path_, tensor, fmt::format("read failed: {}", std::strerror(errno)));
      if (got == 0) fail(path_, tensor, "truncated: the file ended while reading (was it changed meanwhile?)");
      dst += got, offset += static_cast<uint64_t>(got), n -= static_cast<uint64_t>(got);
    }
  }

 private:
  std::span<const uint8_t> bytes_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

uint64_t as_offset(const json& v, const std::string& path, const std::string& name, std::string_view what) {
  if (!v.is_number_unsigned()) fail(path, name, fmt::format("{} must be a non-negative integer, got {}", what, printable(v.dump())));
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& name, const json& v, uint64_t data_size, const std::string& path) {
  if (!v.is_object()) fail(path, name, "header entry is not an object with dtype, shape, data_offsets");
  for (const auto& [key, _] : v.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail(path, name, fmt::format("unexpected key '{}' (expected dtype, shape, data_offsets)", printable(key)));
  const auto dt = v.find("dtype");
  const auto sh = v.find("shape");
  const auto off = v.find("data_offsets");
  if (dt == v.end() || sh == v.end() || off == v.end()) fail(path, name, "header entry lacks one of dtype, shape, data_offsets");
  if (!dt->is_string()) fail(path, name, "dtype must be a string");
  Entry e;
  e.name = name;
  const auto& dname = dt->get_ref<const std::string&>();
  const auto known = std::find_if(std::begin(kDTypes), std::end(kDTypes), [&](const DTypeInfo& d) { return d.name == dname; });
  if (known == std::end(kDTypes))
    fail(path, name, fmt::format("unsupported dtype '{}' (supported: {})", printable(dname), supported_dtypes()));
  e.type = *known;
  if (!sh->is_array()) fail(path, name, "shape must be an array of non-negative integers");
  // Element count with an overflow guard: bytes must stay below 2^63.
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    const uint64_t dim = as_offset(d, path, name, "every shape dimension");
    if (dim > 0 && numel > (uint64_t{1} << 62) / e.type.file_size / dim)
      fail(path, name, fmt::format("shape {} is too large", printable(sh->dump())));
    numel *= dim;
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  if (!off->is_array() || off->size() != 2) fail(path, name, "data_offsets must be [begin, end]");
  e.begin = as_offset((*off)[0], path, name, "data_offsets begin");
  e.end = as_offset((*off)[1], path, name, "data_offsets end");
  if (e.end < e.begin) fail(path, name, fmt::format("data_offsets [{}, {}]: end is before begin", e.begin, e.end));
  if (e.end > data_size)
    fail(path, name, fmt::format("data_offsets [{}, {}] run past the data buffer ({} bytes): offsets out of range or "
                                 "the file is truncated", e.begin, e.end, data_size));
  const uint64_t want = numel * e.type.file_size;
  if (e.end - e.begin != want)
    fail(path, name, fmt::format("data_offsets [{}, {}] hold {} bytes, shape {} of {} needs {}", e.begin, e.end,
                                 e.end - e.begin, printable(sh->dump()), dname, want));
  return e;
}

// Reads and checks the header; `tensor` (may be empty) is what the caller asked for.
Header read_header(const Source& src, const std::string& path, const std::string& tensor) {
  if (src.size() < 8)
    fail(path, tensor, fmt::format("not a safetensors file: {} bytes, shorter than the 8-byte header length", src.size()));
  uint8_t len_bytes[8];
  src.read(0, len_bytes, 8, tensor);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | len_bytes[k];
  if (n > src.size() - 8)
    fail(path, tensor, fmt::format("header length {} exceeds the {} bytes after it (not a safetensors file, or truncated)",
                                   n, src.size() - 8));
  if (n > kMaxHeaderBytes) fail(path, tensor, fmt::format("header length {} exceeds the {} byte limit", n, kMaxHeaderBytes));
  if (n < 2) fail(path, tensor, fmt::format("header length {} is too short for a JSON object", n));
  std::string text(static_cast<size_t>(n), '\0');
  src.read(8, reinterpret_cast<uint8_t*>(text.data()), n, tensor);
  if (text[0] != '{') fail(path, tensor, "header does not start with '{' (not a safetensors file)");

  // Duplicate top-level names are refused: which one a reader takes is not defined.
  std::set<std::string> seen;
  std::string duplicate;
  json doc;
  try {
    doc = json::parse(text, [&](int depth, json::parse_event_t ev, json& parsed) {
      if (depth == 1 && ev == json::parse_event_t::key && duplicate.empty() && !seen.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const json::parse_error& e) {
    fail(path, tensor, fmt::format("header is not valid JSON (byte {} of {})", e.byte, n));
  } catch (const json::exception& e) {  // a number out of range ("1e400")
    fail(path, tensor, fmt::format("header is not valid JSON: {}", printable(e.what())));
  }
  if (!duplicate.empty()) fail(path, duplicate, "named twice in the header");
  if (!doc.is_object()) fail(path, tensor, "header is not a JSON object");

  Header h;
  h.path = path;
  h.data_start = 8 + n;
  const uint64_t data_size = src.size() - h.data_start;
  for (const auto& [name, v] : doc.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail(path, name, "must be an object of strings");
      for (const auto& [k, s] : v.items())
        if (!s.is_string()) fail(path, name, fmt::format("value of '{}' is not a string", printable(k)));
      continue;
    }
    h.entries.emplace(name, parse_entry(name, v, data_size, path));
  }
  return h;
}

NpyArray read_entry(const Source& src, const Header& h, const Entry& e) {
  NpyArray a;
  a.dtype = e.type.dtype;
  a.shape = e.shape;
  a.source = h.path + ":" + e.name;
  const uint64_t n = e.end - e.begin;
  if (e.type.name != kI64) {
    a.bytes.resize(static_cast<size_t>(n));
    src.read(h.data_start + e.begin, a.bytes.data(), n, e.name);
    return a;
  }
  std::vector<uint8_t> wide(static_cast<size_t>(n));
  src.read(h.data_start + e.begin, wide.data(), n, e.name);
  const size_t count = wide.size() / 8;
  a.bytes.resize(count * 4);
  for (size_t k = 0; k < count; ++k) {
    int64_t v;
    std::memcpy(&v, wide.data() + 8 * k, 8);
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
      fail(h.path, e.name, fmt::format("I64 element {} = {} does not fit int32", k, v));
    const auto w = static_cast<int32_t>(v);
    std::memcpy(a.bytes.data() + 4 * k, &w, 4);
  }
  return a;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

NpyArray read_safetensors(const std::string& path, const std::string& tensor) {
  const Source src(path, tensor);
  const Header h = read_header(src, path, tensor);
  return read_entry(src, h, h.find(tensor));
}

NpyArray parse_safetensors(std::span<const uint8_t> file, const std::string& path, const std::string& tensor) {
  const Source src(file, path);
  const Header h = read_header(src, path, tensor);
  return read_entry(src, h, h.find(tensor));
}

std::vector<std::string> safetensors_names(const std::string& path) {
  const Source src(path, "");
  const Header h = read_header(src, path, "");
  std::vector<std::string> names;
  for (const auto& [name, _] : h.entries) names.push_back(name);
  return names;
}

NpyArray read_tensor_arg(const std::string& spec) {
  constexpr std::string_view kExt = ".safetensors";
  const size_t at = spec.find(std::string(kExt) + ":");
  if (at != std::string::npos) {
    const std::string file = spec.substr(0, at + kExt.size());
    const std::string tensor = spec.substr(at + kExt.size() + 1);
    if (tensor.empty()) fail(file, "", "no tensor after ':' (write FILE.safetensors:TENSOR)");
    return read_safetensors(file, tensor);
  }
  if (ends_with(spec, kExt)) {
    const auto names = safetensors_names(spec);
    std::vector<std::string> shown;
    for (size_t k = 0; k < names.size() && k < 5; ++k) shown.push_back("'" + printable(names[k]) + "'");
    fail(spec, "", fmt::format("name a tensor: FILE.safetensors:TENSOR (the file has {} tensors: {}{})", names.size(),
                               fmt::join(shown, ", "), names.size() > shown.size() ? ", ..." : ""));
  }
  return read_npy(spec);  // any other name: an .npy file (read_npy checks its magic)
}

void write_safetensors(const std::string& path, const std::map<std::string, NpyArray>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, a] : tensors) {
    MOE_REQUIRE(name != "__metadata__", fmt::format("{}: '__metadata__' cannot name a tensor", path));
    const uint64_t want = static_cast<uint64_t>(a.numel()) * dtype_size(a.dtype);
    MOE_REQUIRE(a.bytes.size() == want, fmt::format("{}: {}: {} bytes of data for shape {} of {}", path, name,
                                                    a.bytes.size(), a.shape_str(), dtype_name(a.dtype)));
    header[name] = {{"dtype", file_dtype_name(a.dtype)}, {"shape", a.shape}, {"data_offsets", {offset, offset + want}}};
    offset += want;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((uint64_t{text.size()} >> (8 * k)) & 0xff));
  out += text;
  for (const auto& [name, a] : tensors) out.append(reinterpret_cast<const char*>(a.bytes.data()), a.bytes.size());
  write_file_atomic(path, out);
}

namespace {

struct Projection {
  std::string_view key;  // name part
  int slot;              // 0 gate, 1 up, 2 down
};

struct Scheme {
  std::string_view name;
  std::string_view infix;  // between "model.layers.L." and "N."
  Projection proj[3];
};

constexpr Scheme kSchemes[] = {
    {"mixtral", "block_sparse_moe.experts.", {{"w1", 0}, {"w3", 1}, {"w2", 2}}},
    {"deepseek", "mlp.experts.", {{"gate_proj", 0}, {"up_proj", 1}, {"down_proj", 2}}},
};

struct Located {
  size_t file;
  Entry entry;
};

}  // namespace

ExpertWeights assemble_experts(const std::vector<std::string>& files, int layer) {
  MOE_REQUIRE(!files.empty(), "assemble_experts: no checkpoint files given");
  MOE_REQUIRE(layer >= 0, fmt::format("layer {} is negative", layer));
  const std::string where = fmt::format("{}", fmt::join(files, ", "));

  // Every tensor name over all shards; one name in two shards is ambiguous.
  std::vector<Header> headers;
  std::map<std::string, Located> all;
  for (size_t f = 0; f < files.size(); ++f) {
    const Source src(files[f], "");
    headers.push_back(read_header(src, files[f], ""));
    for (const auto& [name, e] : headers.back().entries) {
      const auto [it, fresh] = all.emplace(name, Located{f, e});
      if (!fresh) fail(files[f], name, fmt::format("also in {}: which copy to use is ambiguous", printable(files[it->second.file])));
    }
  }

  // Which scheme the layer uses and how many experts it has.
  const std::string layer_prefix = fmt::format("model.layers.{}.", layer);
  const Scheme* scheme = nullptr;
  int64_t experts = 0;
  for (const auto& s : kSchemes) {
    const std::string prefix = layer_prefix + std::string(s.infix);
    int64_t count = 0;
    for (auto it = all.lower_bound(prefix); it != all.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      const std::string rest = it->first.substr(prefix.size());
      const size_t dot = rest.find('.');
      if (dot == 0 || dot == std::string::npos || dot > 9 ||
          !std::all_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(dot), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      count = std::max<int64_t>(count, std::stoll(rest.substr(0, dot)) + 1);
    }
    if (count == 0) continue;
    if (scheme)
      fail(where, layer_prefix + "*", fmt::format("experts under both '{}' and '{}' names: ambiguous", scheme->infix, s.infix));
    scheme = &s;
    experts = count;
  }
  if (!scheme) {
    std::set<std::string> layers;
    for (const auto& [name, _] : all)
      for (const auto& s : kSchemes)
        if (name.rfind("model.layers.", 0) == 0 && name.find("." + std::string(s.infix)) != std::string::npos)
          layers.insert(name.substr(13, name.find('.', 13) - 13));
    fail(where, layer_prefix + "*",
         fmt::format("no expert tensors of layer {} (looked for {}block_sparse_moe.experts.N.w1.weight and "
                     "{}mlp.experts.N.gate_proj.weight); layers with experts: {}",
                     layer, layer_prefix, layer_prefix, layers.empty() ? "none" : fmt::format("{}", fmt::join(layers, " "))));
  }

  auto name_of = [&](int64_t e, const Projection& p, std::string_view suffix) {
    return fmt::format("{}{}{}.{}.{}", layer_prefix, scheme->infix, e, p.key, suffix);
  };
  auto locate = [&](int64_t e, const Projection& p, std::string_view suffix) -> const Located* {
    const auto it = all.find(name_of(e, p, suffix));
    return it == all.end() ? nullptr : &it->second;
  };

  // Shapes and dtype from expert 0's gate; every tensor must agree.
  const Located* first = locate(0, scheme->proj[0], "weight");
  if (!first) fail(where, name_of(0, scheme->proj[0], "weight"), "missing (every expert 0..E-1 needs all three projections)");
  const DTypeInfo type = first->entry.type;
  if (!is_float_dtype(type.dtype) && type.dtype != DType::F8E4M3 && type.dtype != DType::I8)
    fail(files[first->file], first->entry.name, fmt::format("dtype {}: expert weights must be F32, F16, BF16, F8_E4M3 or I8", type.name));
  if (first->entry.shape.size() != 2)
    fail(files[first->file], first->entry.name, fmt::format("expected a matrix (inter, model_dim), got rank {}", first->entry.shape.size()));
  const int64_t inter = first->entry.shape[0], model_dim = first->entry.shape[1];

  ExpertWeights out;
  out.scheme = std::string(scheme->name);
  out.experts = experts, out.inter_dim = inter, out.model_dim = model_dim;
  std::vector<std::array<const Located*, 3>> found;
  for (int64_t e = 0; e < experts; ++e) {
    found.emplace_back();
    for (const auto& p : scheme->proj) {
      const Located* l = locate(e, p, "weight");
      const std::string name = name_of(e, p, "weight");
      if (!l) fail(where, name, fmt::format("missing (layer {} has experts up to {}, so every expert 0..{} needs it)", layer, experts - 1, experts - 1));
      const std::vector<int64_t> want = p.slot == 2 ? std::vector<int64_t>{model_dim, inter} : std::vector<int64_t>{inter, model_dim};
      if (l->entry.shape != want)
        fail(files[l->file], name, fmt::format("shape [{}], expected [{}] = {} with inter {}, model_dim {} from expert 0's gate",
                                               fmt::join(l->entry.shape, ", "), fmt::join(want, ", "),
                                               p.slot == 2 ? "(model_dim, inter)" : "(inter, model_dim)", inter, model_dim));
      if (l->entry.type.name != type.name)
        fail(files[l->file], name, fmt::format("dtype {}, expert 0's gate is {}: all expert weights need one dtype", l->entry.type.name, type.name));
      found.back()[static_cast<size_t>(p.slot)] = l;
    }
  }

  // Copy each tensor straight into its place in w1 / w2.
  const uint64_t esz = type.file_size;
  const uint64_t mat = static_cast<uint64_t>(inter) * static_cast<uint64_t>(model_dim) * esz;
  out.w1.dtype = out.w2.dtype = type.dtype;
  out.w1.shape = {experts, 2 * inter, model_dim};
  out.w2.shape = {experts, model_dim, inter};
  out.w1.source = fmt::format("{} (layer {} gate/up)", where, layer);
  out.w2.source = fmt::format("{} (layer {} down)", where, layer);
  out.w1.bytes.resize(static_cast<size_t>(experts * 2 * mat));
  out.w2.bytes.resize(static_cast<size_t>(experts * mat));
  std::vector<std::unique_ptr<Source>> sources(files.size());
  auto source = [&](size_t f) -> const Source& {
    if (!sources[f]) sources[f] = std::make_unique<Source>(files[f], "");
    return *sources[f];
  };
  for (int64_t e = 0; e < experts; ++e) {
    for (int slot = 0; slot < 3; ++slot) {
      const Located& l = *found[static_cast<size_t>(e)][static_cast<size_t>(slot)];
      uint8_t* dst = slot == 2 ? out.w2.bytes.data() + e * mat : out.w1.bytes.data() + (2 * e + slot) * mat;
      source(l.file).read(headers[l.file].data_start + l.entry.begin, dst, mat, l.entry.name);
    }
  }

  // fp8 companions, returned per expert as stored.
  for (std::string_view suffix : {"weight_scale_inv", "weight_scale"}) {
    bool any = false;
    for (int64_t e = 0; e < experts && !any; ++e)
      for (const auto& p : scheme->proj) any = any || locate(e, p, suffix);
    if (!any) continue;
    if (out.scales) fail(where, layer_prefix + "*", "both weight_scale_inv and weight_scale tensors: ambiguous");
    ExpertScales sc;
    sc.suffix = std::string(suffix);
    std::array<std::vector<int64_t>, 3> shape0;
    for (int64_t e = 0; e < experts; ++e) {
      for (const auto& p : scheme->proj) {
        const std::string name = name_of(e, p, suffix);
        const Located* l = locate(e, p, suffix);
        if (!l) fail(where, name, fmt::format("missing: other experts of layer {} have {} tensors", layer, suffix));
        auto& slot_shape = shape0[static_cast<size_t>(p.slot)];
        if (e == 0) slot_shape = l->entry.shape;
        if (l->entry.shape != slot_shape)
          fail(files[l->file], name, fmt::format("shape [{}], expert 0's is [{}]", fmt::join(l->entry.shape, ", "), fmt::join(slot_shape, ", ")));
        auto& list = p.slot == 0 ? sc.gate : p.slot == 1 ? sc.up : sc.down;
        list.push_back(read_entry(source(l->file), headers[l->file], l->entry));
      }
    }
    out.scales = std::move(sc);
  }
  return out;
}

}  // namespace moe
