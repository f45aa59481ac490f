// .npy reader/writer: round trips of every dtype and rank, NumPy-written headers
// (including the growth padding newer NumPy adds), and every malformed-file error.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "moe/error.hpp"
#include "moe/npy.hpp"
#include "moe/rng.hpp"
#include "tooling_util.hpp"

using namespace moe;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> npy_bytes(const std::string& header_dict, int version, const std::vector<uint8_t>& data,
                               bool pad = true) {
  std::string h = header_dict;
  const size_t pre = version == 1 ? 10 : 12;
  if (pad) {
    const size_t total = (pre + h.size() + 1 + 63) / 64 * 64;
    h.append(total - pre - h.size() - 1, ' ');
  }
  h.push_back('\n');
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(version), 0};
  const size_t n = h.size();
  out.push_back(n & 0xff);
  out.push_back((n >> 8) & 0xff);
  if (version != 1) {
    out.push_back((n >> 16) & 0xff);
    out.push_back((n >> 24) & 0xff);
  }
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T>
std::vector<uint8_t> raw(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_npy(bytes, "x.npy");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("npy: header exactly as NumPy 1.26 writes it, with growth padding") {
  // np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)): dict, 21 - len('2') spare
  // spaces, then padding to 64 bytes.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(20, ' ');
  const std::vector<float> v{0, 1, 2, 3, 4, 5};
  const auto bytes = npy_bytes(dict, 1, raw(v));
  CHECK(bytes.size() == 128 + 24);
  const NpyArray a = parse_npy(bytes, "f.npy");
  CHECK(a.dtype == DType::F32);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  CHECK(a.to_f32() == v);
  CHECK(a.shape_str() == "(2, 3)");
}

TEST_CASE("npy: round trip of every dtype through files, random shapes") {
  tooling::TempDir dir;
  tooling::Gen gen(1234);
  for (int trial = 0; trial < 20; ++trial) {
    const int rank = trial % 4;  // 0 = scalar
    std::vector<int64_t> shape;
    int64_t n = 1;
    for (int r = 0; r < rank; ++r) {
      shape.push_back(1 + static_cast<int64_t>(gen.next_u32() % 13));
      n *= shape.back();
    }
    std::vector<float> f(static_cast<size_t>(n));
    for (auto& x : f) x = gen.normal() * 100.0f;
    std::vector<int32_t> ints(static_cast<size_t>(n));
    for (auto& x : ints) x = static_cast<int32_t>(gen.next_u32());
    const std::string p = dir.path("t.npy");

    write_npy_f32(p, shape, f);
    NpyArray a = read_npy(p);
    CHECK(a.dtype == DType::F32);
    CHECK(a.shape == shape);
    CHECK(a.to_f32() == f);

    write_npy_i32(p, shape, ints);
    a = read_npy(p);
    CHECK(a.dtype == DType::I32);
    CHECK(a.to_i32() == ints);

    for (DType t : {DType::F16, DType::BF16}) {
      write_npy_float_as(p, t, shape, f);
      a = read_npy(p);
      CHECK(a.dtype == t);
      const auto back = a.to_f32();
      for (size_t k = 0; k < f.size(); ++k) CHECK(back[k] == round_to(t, f[k]));
    }
    // Header alignment: data starts at a multiple of 64 bytes.
    const auto bytes = encode_npy(DType::F32, shape, raw(f));
    const size_t hl = bytes[8] | (bytes[9] << 8);
    CHECK((10 + hl) % 64 == 0);
    CHECK(bytes[10 + hl - 1] == '\n');
  }
  CHECK(dir.stray_temporaries() == 0);
}

TEST_CASE("npy: 1-D shape is written as (n,) and bf16 uses the '<u2' convention") {
  const std::vector<float> v{1.0f, -2.5f, 3.0f};
  const auto bytes = encode_npy(DType::BF16, std::vector<int64_t>{3},
                                raw(std::vector<uint16_t>{f32_to_bf16_bits(1.0f), f32_to_bf16_bits(-2.5f), f32_to_bf16_bits(3.0f)}));
  const std::string header(bytes.begin() + 10, bytes.begin() + 10 + (bytes[8] | (bytes[9] << 8)));
  CHECK(header.find("'descr': '<u2'") != std::string::npos);
  CHECK(header.find("'shape': (3,)") != std::string::npos);
  CHECK(parse_npy(bytes, "b.npy").to_f32() == v);
}

TEST_CASE("npy: 8-bit codes: '|i1' is int8, '|u1' is fp8 e4m3; neither widens to float") {
  const std::vector<int8_t> q{-128, -1, 0, 127};
  auto a = parse_npy(npy_bytes("{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2), }", 1, raw(q)), "q.npy");
  CHECK(a.dtype == DType::I8);
  CHECK(a.bytes == std::vector<uint8_t>{0x80, 0xff, 0x00, 0x7f});
  CHECK_THROWS_AS(a.to_f32(), moe::InputError);
  const std::vector<uint8_t> codes{0x38, 0xb8, 0x7e};  // e4m3fn 1.0, -1.0, 448
  a = parse_npy(npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 1, raw(codes)), "c.npy");
  CHECK(a.dtype == DType::F8E4M3);
  CHECK(a.bytes == codes);
  const auto bytes = encode_npy(DType::F8E4M3, std::vector<int64_t>{3}, codes);
  const std::string header(bytes.begin() + 10, bytes.begin() + 10 + (bytes[8] | (bytes[9] << 8)));
  CHECK(header.find("'descr': '|u1'") != std::string::npos);
  CHECK(parse_npy(bytes, "c2.npy").bytes == codes);
}

TEST_CASE("npy: version 2 and 3 headers, int64 narrowing") {
  const std::vector<int64_t> v{0, -1, 255, 2147483647, -2147483648LL};
  auto a = parse_npy(npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", 2, raw(v)), "v2.npy");
  CHECK(a.dtype == DType::I32);
  CHECK(a.to_i32() == std::vector<int32_t>{0, -1, 255, 2147483647, -2147483647 - 1});
  a = parse_npy(npy_bytes("{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (1, 1), }", 3, raw(std::vector<int32_t>{9})),
                "v3.npy");
  CHECK(a.to_i32() == std::vector<int32_t>{9});
  // Keys in another order, no trailing comma.
  a = parse_npy(npy_bytes("{'shape': (2,), 'fortran_order': False, 'descr': '<f2'}", 1,
                          raw(std::vector<uint16_t>{f32_to_f16_bits(0.5f), f32_to_f16_bits(-8.0f)})),
                "o.npy");
  CHECK(a.to_f32() == std::vector<float>{0.5f, -8.0f});
}

TEST_CASE("npy: every malformed file is a clear InputError") {
  const std::vector<float> six(6, 1.0f);
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  auto good = npy_bytes(ok, 1, raw(six));
  CHECK(parse_error(good) == "(no error)");

  auto bad_magic = good;
  bad_magic[1] = 'X';
  CHECK(parse_error(bad_magic).find("bad magic") != std::string::npos);
  CHECK(parse_error({0x93, 'N'}).find("too short") != std::string::npos);

  auto truncated = good;
  truncated.resize(truncated.size() - 5);
  const auto t = parse_error(truncated);
  CHECK(t.find("x.npy") == 0);
  CHECK(t.find("truncated") != std::string::npos);
  CHECK(t.find("needs 24 data bytes, the file has 19") != std::string::npos);

  auto trailing = good;
  trailing.push_back(0);
  CHECK(parse_error(trailing).find("trailing data") != std::string::npos);

  auto header_cut = good;
  header_cut.resize(40);
  CHECK(parse_error(header_cut).find("truncated .npy header") != std::string::npos);

  CHECK(parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 1, raw(six)))
            .find("Fortran-order") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 1, raw(six)))
            .find("big-endian") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 1, raw(six)))
            .find("unsupported dtype '<f8'") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '|V2', 'fortran_order': False, 'shape': (3,), }", 1, raw(six)))
            .find("uint16 bit patterns") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '<f4', 'shape': (2, 3), }", 1, raw(six))).find("lacks") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 1, raw(six)))
            .find("malformed") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", 1, raw(six)))
            .find("True or False") != std::string::npos);
  CHECK(parse_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", 1, raw(six)))
            .find("unexpected key 'x'") != std::string::npos);
  auto v9 = good;
  v9[6] = 9;
  CHECK(parse_error(v9).find("unsupported .npy format version 9.0") != std::string::npos);
  const std::vector<int64_t> big{int64_t{1} << 40};
  CHECK(parse_error(npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", 1, raw(big)))
            .find("does not fit int32") != std::string::npos);

  // Wrong kind of values asked for.
  const NpyArray f = parse_npy(good, "f.npy");
  CHECK_THROWS_WITH_AS(f.to_i32(), doctest::Contains("expected an int32 array"), InputError);
  const NpyArray i = parse_npy(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", 1,
                                         raw(std::vector<int32_t>{1})),
                               "i.npy");
  CHECK_THROWS_WITH_AS(i.to_f32(), doctest::Contains("expected a float array"), InputError);
  CHECK_THROWS_WITH_AS(read_npy("/nonexistent/dir/x.npy"), doctest::Contains("cannot open"), InputError);
}
