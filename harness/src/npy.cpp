#include "moe/npy.hpp"

#include <algorithm>
#include <cstring>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "moe/atomic_file.hpp"
#include "moe/error.hpp"

namespace moe {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw InputError(fmt::format("{}: {}", name, what));
}

// Header text for a one-line message: trailing padding dropped, control and
// non-ASCII bytes escaped.
std::string printable(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.remove_suffix(1);
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

// Minimal parser for the header's Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
struct HeaderParser {
  std::string_view s;
  size_t i = 0;
  const std::string& name;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(name, fmt::format("malformed .npy header (expected '{}' at offset {}): {}", c, i, printable(s)));
  }
  std::string str() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail(name, fmt::format("malformed .npy header (expected a string at offset {}): {}", i, printable(s)));
    const char q = s[i++];
    const size_t start = i;
    while (i < s.size() && s[i] != q) ++i;
    if (i >= s.size()) fail(name, "malformed .npy header (unterminated string)");
    return std::string(s.substr(start, i++ - start));
  }
  bool boolean() {
    ws();
    if (s.substr(i, 4) == "True") {
      i += 4;
      return true;
    }
    if (s.substr(i, 5) == "False") {
      i += 5;
      return false;
    }
    fail(name, fmt::format("malformed .npy header (expected True or False at offset {})", i));
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> v;
    while (true) {
      if (eat(')')) break;
      ws();
      const size_t start = i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
      if (i == start) fail(name, fmt::format("malformed .npy header (bad shape at offset {}): {}", i, printable(s)));
      const std::string digits(s.substr(start, i - start));
      if (digits.size() > 15) fail(name, fmt::format("shape dimension {} is too large", digits));
      v.push_back(std::stoll(digits));
      ws();
      if (i < s.size() && s[i] == 'L') ++i;  // Python 2 long suffix
      if (eat(')')) break;
      expect(',');
    }
    return v;
  }
};

}  // namespace

std::string_view npy_descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F16: return "<f2";
    case DType::BF16: return "<u2";
    case DType::I32: return "<i4";
    case DType::I8: return "|i1";
    case DType::F8E4M3: return "|u1";
  }
  return "?";
}

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string NpyArray::shape_str() const {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

std::vector<float> NpyArray::to_f32() const {
  const int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  switch (dtype) {
    case DType::F32:
      if (n > 0) std::memcpy(out.data(), bytes.data(), static_cast<size_t>(n) * 4);  // empty: both may be null
      break;
    case DType::F16:
    case DType::BF16:
      for (int64_t k = 0; k < n; ++k) {
        uint16_t b;
        std::memcpy(&b, bytes.data() + 2 * k, 2);
        out[k] = dtype == DType::F16 ? f16_bits_to_f32(b) : bf16_bits_to_f32(b);
      }
      break;
    case DType::I32:
    case DType::I8:
    case DType::F8E4M3:
      fail(source, fmt::format("expected a float array ('<f4', '<f2' or '<u2' bf16 bits), got {} ('{}')", dtype_name(dtype), npy_descr(dtype)));
  }
  return out;
}

std::vector<int32_t> NpyArray::to_i32() const {
  if (dtype != DType::I32)
    fail(source, fmt::format("expected an int32 array ('<i4' or '<i8'), got {} ('{}')", dtype_name(dtype), npy_descr(dtype)));
  std::vector<int32_t> out(static_cast<size_t>(numel()));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

namespace {

// What the preamble and header say: the array's dtype and shape, and where and
// how many data bytes follow.
struct NpyHeader {
  NpyArray a;  // dtype, shape, source (no bytes)
  std::string descr;
  int src_size = 0;
  bool narrow_i64 = false;
  size_t data_start = 0;
  uint64_t data_bytes = 0;
};

// Bytes of the preamble + header that `head` (the file's first bytes) declares;
// 0 when `head` is too short to tell.
size_t header_end(std::span<const uint8_t> head) {
  if (head.size() < 12) return 0;
  if (head[6] == 1) return 10 + (head[8] | (size_t{head[9]} << 8));
  return 12 + (head[8] | (size_t{head[9]} << 8) | (size_t{head[10]} << 16) | (size_t{head[11]} << 24));
}

// Parses the preamble and header; `file` holds at least them (its size is
// used only in the truncation message).
NpyHeader parse_header(std::span<const uint8_t> file, const std::string& name) {
  if (file.size() < 10 || std::memcmp(file.data(), kMagic, 6) != 0)
    fail(name, file.size() < 6 ? "not an .npy file (too short for the magic string)"
                               : "not an .npy file (bad magic: expected \\x93NUMPY)");
  const int major = file[6], minor = file[7];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = file[8] | (size_t{file[9]} << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) fail(name, "truncated .npy header");
    header_len = file[8] | (size_t{file[9]} << 8) | (size_t{file[10]} << 16) | (size_t{file[11]} << 24);
    header_start = 12;
  } else {
    fail(name, fmt::format("unsupported .npy format version {}.{} (1.0, 2.0 and 3.0 are)", major, minor));
  }
  if (header_start + header_len > file.size())
    fail(name, fmt::format("truncated .npy header: it says {} bytes, the file has {} after the preamble", header_len,
                           file.size() - header_start));
  const std::string header(reinterpret_cast<const char*>(file.data() + header_start), header_len);
  HeaderParser p{header, 0, name};
  std::string descr;
  bool fortran = false, have_descr = false, have_order = false, have_shape = false;
  std::vector<int64_t> shape;
  p.expect('{');
  while (!p.eat('}')) {
    const std::string key = p.str();
    p.expect(':');
    if (key == "descr") {
      descr = p.str();
      have_descr = true;
    } else if (key == "fortran_order") {
      fortran = p.boolean();
      have_order = true;
    } else if (key == "shape") {
      shape = p.tuple();
      have_shape = true;
    } else {
      fail(name, fmt::format("unexpected key '{}' in the .npy header", key));
    }
    if (p.eat('}')) break;
    p.expect(',');
  }
  if (!have_descr || !have_order || !have_shape)
    fail(name, "the .npy header lacks one of 'descr', 'fortran_order', 'shape'");
  if (fortran) fail(name, "Fortran-order arrays are not supported: save a C-order copy (numpy.ascontiguousarray)");

  NpyHeader h;
  NpyArray& a = h.a;
  a.source = name;
  a.shape = shape;
  int& src_size = h.src_size;
  bool& narrow_i64 = h.narrow_i64;
  h.descr = descr;
  if (descr == "<f4") {
    a.dtype = DType::F32, src_size = 4;
  } else if (descr == "<f2") {
    a.dtype = DType::F16, src_size = 2;
  } else if (descr == "<u2") {
    a.dtype = DType::BF16, src_size = 2;
  } else if (descr == "<i4") {
    a.dtype = DType::I32, src_size = 4;
  } else if (descr == "<i8") {
    a.dtype = DType::I32, src_size = 8, narrow_i64 = true;
  } else if (descr == "|i1" || descr == "<i1") {
    a.dtype = DType::I8, src_size = 1;
  } else if (descr == "|u1" || descr == "<u1") {
    a.dtype = DType::F8E4M3, src_size = 1;
  } else if (!descr.empty() && descr[0] == '>') {
    fail(name, fmt::format("big-endian dtype '{}' is not supported (use '<' little-endian)", descr));
  } else if (descr == "|V2" || descr == "<V2" || descr == "bfloat16") {
    fail(name, fmt::format("dtype '{}': store bf16 as uint16 bit patterns ('<u2'), e.g. t.view(torch.int16).numpy().view(numpy.uint16)", descr));
  } else {
    fail(name, fmt::format("unsupported dtype '{}' (supported: '<f4', '<f2', '<u2' = bf16 bits, '<i4', '<i8', '|i1' = int8, '|u1' = fp8 e4m3 codes)", descr));
  }
  // Element count with an overflow guard.
  int64_t n = 1;
  for (auto d : shape) {
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / 8 / d) fail(name, "shape too large");
    n *= d;
  }
  h.data_start = header_start + header_len;
  h.data_bytes = static_cast<uint64_t>(n) * static_cast<uint64_t>(src_size);
  return h;
}

void require_data_size(const NpyHeader& h, uint64_t have, const std::string& name) {
  const uint64_t want = h.data_bytes;
  const NpyArray& a = h.a;
  const std::string& descr = h.descr;
  if (have < want)
    fail(name, fmt::format("truncated: shape {} of '{}' needs {} data bytes, the file has {}", a.shape_str(), descr, want, have));
  if (have > want)
    fail(name, fmt::format("{} bytes of trailing data after the array (shape {} of '{}' needs {})", have - want,
                           a.shape_str(), descr, want));
}

// The array from its header and exactly h.data_bytes bytes of data at src.
NpyArray take_data(NpyHeader h, const uint8_t* src, const std::string& name) {
  NpyArray a = std::move(h.a);
  const uint64_t want = h.data_bytes;
  const int64_t n = a.numel();
  if (!h.narrow_i64) {
    a.bytes.assign(src, src + want);
  } else {
    a.bytes.resize(static_cast<size_t>(n) * 4);
    for (int64_t k = 0; k < n; ++k) {
      int64_t v;
      std::memcpy(&v, src + 8 * k, 8);
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
        fail(name, fmt::format("int64 element {} = {} does not fit int32", k, v));
      const int32_t w = static_cast<int32_t>(v);
      std::memcpy(a.bytes.data() + 4 * k, &w, 4);
    }
  }
  return a;
}

}  // namespace

NpyArray parse_npy(std::span<const uint8_t> file, const std::string& name) {
  NpyHeader h = parse_header(file, name);
  require_data_size(h, file.size() - h.data_start, name);
  return take_data(std::move(h), file.data() + h.data_start, name);
}

// Reads only a regular file, the header first: the data is read only when the
// file's size is what the header declares (no unbounded reads of devices, pipes
// or folders).
NpyArray read_npy(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw InputError(fmt::format("{}: cannot open (no such file)", path));
  if (fs::is_directory(st)) throw InputError(fmt::format("{}: is a folder, not an .npy file", path));
  if (!fs::is_regular_file(st)) throw InputError(fmt::format("{}: is not a regular file (an .npy file is needed)", path));
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw InputError(fmt::format("{}: cannot read its size: {}", path, ec.message()));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open", path));
  auto read_exactly = [&](std::vector<uint8_t>& buf, size_t from, size_t n) {
    buf.resize(from + n);
    f.read(reinterpret_cast<char*>(buf.data() + from), static_cast<std::streamsize>(n));
    if (static_cast<size_t>(f.gcount()) != n) throw InputError(fmt::format("{}: read failed (the file changed while reading?)", path));
  };
  std::vector<uint8_t> buf;
  read_exactly(buf, 0, static_cast<size_t>(std::min<uintmax_t>(size, 12)));
  const size_t end = header_end(buf);
  const size_t head = static_cast<size_t>(std::min<uintmax_t>(end, size));
  if (head > buf.size()) read_exactly(buf, buf.size(), head - buf.size());
  NpyHeader h = parse_header(buf, path);  // rejects a header longer than the file
  require_data_size(h, static_cast<uint64_t>(size) - h.data_start, path);
  std::vector<uint8_t> data;
  read_exactly(data, 0, static_cast<size_t>(h.data_bytes));
  return take_data(std::move(h), data.data(), path);
}

std::vector<uint8_t> encode_npy(DType dtype, std::span<const int64_t> shape, std::span<const uint8_t> data) {
  int64_t n = 1;
  for (auto d : shape) {
    MOE_REQUIRE(d >= 0, "encode_npy: negative dimension");
    n *= d;
  }
  MOE_REQUIRE(static_cast<uint64_t>(n) * dtype_size(dtype) == data.size(),
              fmt::format("encode_npy: {} bytes of data for {} elements of {}", data.size(), n, dtype_name(dtype)));
  std::string shape_s = "(";
  for (size_t k = 0; k < shape.size(); ++k) shape_s += fmt::format("{}{}", shape[k], shape.size() == 1 ? "," : (k + 1 < shape.size() ? ", " : ""));
  shape_s += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", npy_descr(dtype), shape_s);
  // Pad so that preamble + header (ending in '\n') is a multiple of 64.
  int version = 1;
  size_t preamble = 10;
  if (header.size() + 1 + 64 > 65535) version = 2, preamble = 12;
  const size_t total = (preamble + header.size() + 1 + 63) / 64 * 64;
  header.append(total - preamble - header.size() - 1, ' ');
  header.push_back('\n');
  std::vector<uint8_t> out;
  out.reserve(total + data.size());
  out.insert(out.end(), kMagic, kMagic + 6);
  out.push_back(static_cast<uint8_t>(version));
  out.push_back(0);
  const size_t hl = header.size();
  out.push_back(hl & 0xff);
  out.push_back((hl >> 8) & 0xff);
  if (version == 2) {
    out.push_back((hl >> 16) & 0xff);
    out.push_back((hl >> 24) & 0xff);
  }
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_npy(const std::string& path, DType dtype, std::span<const int64_t> shape, std::span<const uint8_t> data) {
  const auto bytes = encode_npy(dtype, shape, data);
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void write_npy_f32(const std::string& path, std::span<const int64_t> shape, std::span<const float> v) {
  write_npy(path, DType::F32, shape, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4));
}

void write_npy_i32(const std::string& path, std::span<const int64_t> shape, std::span<const int32_t> v) {
  write_npy(path, DType::I32, shape, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4));
}

void write_npy_float_as(const std::string& path, DType dtype, std::span<const int64_t> shape, std::span<const float> v) {
  if (dtype == DType::F32) return write_npy_f32(path, shape, v);
  MOE_REQUIRE(dtype == DType::F16 || dtype == DType::BF16, "write_npy_float_as: dtype must be f32, f16 or bf16");
  std::vector<uint16_t> bits(v.size());
  for (size_t k = 0; k < v.size(); ++k) bits[k] = dtype == DType::F16 ? f32_to_f16_bits(v[k]) : f32_to_bf16_bits(v[k]);
  write_npy(path, dtype, shape, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bits.data()), bits.size() * 2));
}

}  // namespace moe
