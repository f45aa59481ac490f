// Tuned-config CSV: parsing the seed's format, lookup (exact / nearest bucket /
// heuristic; the optional device column: rows of the running GPU first, then rows
// without a device), every error naming file, line and field, and atomic updates
// that survive a writer killed at an arbitrary moment.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "moe/error.hpp"
#include "moe/tuned_config.hpp"
#include "tooling_util.hpp"

using namespace moe;

namespace {

const std::set<std::string> kImpls{"ck_2stages", "triton_2stages", "asm", "persistent"};
const std::string kSeedCsv =
    "cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n\n"
    "256,1,7168,2048,256,8,SiLu,bf16,ck_2stages,0,128,128\n"
    "256,32,7168,2048,256,8,SiLu,bf16,triton_2stages,0,64,128\n";

std::string err(const std::string& csv, const std::set<std::string>& impls = kImpls) {
  try {
    TunedTable::parse(csv, "t.csv", impls);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TunedKey key(int cu, int64_t token, std::string device = "") {
  return TunedKey{cu, token, 7168, 2048, 256, 8, "SiLu", "bf16", std::move(device)};
}

TunedRow heuristic_row(const TunedKey&) {
  TunedRow r;
  r.impl = "persistent";
  r.block_m = 64;
  return r;
}

}  // namespace

TEST_CASE("tuned config: the seed's rows parse") {
  const auto t = TunedTable::parse(kSeedCsv, "seed.csv", kImpls);
  REQUIRE(t.rows().size() == 2);
  const auto& r = t.rows()[1];
  CHECK(r.key.cu_num == 256);
  CHECK(r.key.token == 32);
  CHECK(r.key.model_dim == 7168);
  CHECK(r.key.inter_dim == 2048);
  CHECK(r.key.expert == 256);
  CHECK(r.key.topk == 8);
  CHECK(r.key.act_type == "SiLu");
  CHECK(r.key.dtype == "bf16");
  CHECK(r.impl == "triton_2stages");
  CHECK(r.split_k == 0);
  CHECK(r.pad_m == 64);
  CHECK(r.pad_n == 128);
  CHECK(r.line == 3);
  CHECK(!r.block_m.has_value());
  CHECK(!r.us.has_value());
  CHECK(r.key.device.empty());  // no device column: a row for any device with this cu_num
  CHECK(!r.to_json().contains("device"));
}

TEST_CASE("tuned config: extra columns, any column order, blanks, CRLF, unknown extras kept") {
  const std::string csv =
      "impl,cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,splitK,pad_m,pad_n,block_m,us,err,note\r\n"
      "persistent,132,64,4096,1536,128,8,SiLu,bf16,2,0,0,64,812.5,0.0031,first try\r\n"
      "\r\n"
      "asm,132,1,4096,1536,128,8,SiLu,fp8,0,0,0,,,,\r\n";
  const auto t = TunedTable::parse(csv, "x.csv", kImpls);
  REQUIRE(t.rows().size() == 2);
  CHECK(t.rows()[0].block_m == 64);
  CHECK(t.rows()[0].us == doctest::Approx(812.5));
  CHECK(t.rows()[0].err == doctest::Approx(0.0031));
  CHECK(t.rows()[0].split_k == 2);
  CHECK(t.rows()[0].other.at("note") == "first try");
  CHECK(t.rows()[1].line == 4);
  CHECK(!t.rows()[1].block_m);
  // Written back: seed columns first, then the known extras, then the unknown one.
  const std::string out = t.to_csv();
  CHECK(out.rfind("cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,block_m,block_n,"
                  "block_k,warps,stages,persistent,us,err,device,note\n",
                  0) == 0);
  const auto again = TunedTable::parse(out, "y.csv", kImpls);
  REQUIRE(again.rows().size() == 2);
  // Sorted by key: cu 132 token 1 fp8 < token 64 bf16.
  CHECK(again.rows()[0].impl == "asm");
  CHECK(again.rows()[1].us == t.rows()[0].us);
  CHECK(again.rows()[1].other.at("note") == "first try");
}

TEST_CASE("tuned config: lookup exact, nearest bucket, heuristic") {
  std::string csv = "cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n\n";
  for (int tok : {1, 16, 64, 256, 4096})
    csv += std::to_string(132) + "," + std::to_string(tok) + ",7168,2048,256,8,SiLu,bf16," +
           (tok < 64 ? "asm" : "persistent") + ",0,0," + std::to_string(tok) + "\n";
  const auto t = TunedTable::parse(csv, "lk.csv", kImpls);

  auto l = t.lookup(key(132, 64), heuristic_row);
  CHECK(l.source == "exact");
  CHECK(l.row.pad_n == 64);
  CHECK(l.file == "lk.csv");
  CHECK(l.to_json()["source"] == "exact");

  l = t.lookup(key(132, 100), heuristic_row);  // log2 distance: 64 -> 0.64, 256 -> 1.36
  CHECK(l.source == "nearest");
  CHECK(l.row.key.token == 64);
  l = t.lookup(key(132, 32), heuristic_row);  // tie between 16 and 64: the larger bucket
  CHECK(l.source == "nearest");
  CHECK(l.row.key.token == 64);
  l = t.lookup(key(132, 100000), heuristic_row);
  CHECK(l.row.key.token == 4096);
  l = t.lookup(key(132, 2), heuristic_row);  // 1 (distance 1) vs 16 (distance 3)
  CHECK(l.row.key.token == 1);
  CHECK(l.row.impl == "asm");

  // Another device (cu_num), shape or dtype: never borrowed.
  l = t.lookup(key(304, 64), heuristic_row);
  CHECK(l.source == "heuristic");
  CHECK(l.row.impl == "persistent");
  CHECK(l.row.key == key(304, 64));
  CHECK(l.file.empty());
  TunedKey other = key(132, 64);
  other.dtype = "fp8";
  CHECK(t.lookup(other, heuristic_row).source == "heuristic");
  other = key(132, 64);
  other.inter_dim = 1536;
  CHECK(t.lookup(other, heuristic_row).source == "heuristic");
  CHECK_THROWS_WITH_AS(t.lookup(key(304, 64)), doctest::Contains("no tuned row"), InputError);
}

TEST_CASE("tuned config: device column: rows of the running GPU first, then rows without a device, else heuristic") {
  // H100 and H200 both report cu_num 132; the device column tells them apart.
  const std::string H200 = "NVIDIA H200", H100 = "NVIDIA H100 80GB HBM3";
  const std::string csv =
      "cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,device\n"
      "132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,1,NVIDIA H200\n"              // line 2
      "132,1024,7168,2048,256,8,SiLu,bf16,asm,0,0,2,NVIDIA H200\n"            // 3
      "132,64,7168,2048,256,8,SiLu,bf16,persistent,0,0,3,\n"                  // 4: any device
      "132,16,7168,2048,256,8,SiLu,bf16,persistent,0,0,4,\n"                  // 5: any device
      "132,64,7168,2048,256,8,SiLu,bf16,ck_2stages,0,0,5,NVIDIA H100 80GB HBM3\n"   // 6
      "132,4096,7168,2048,256,8,SiLu,bf16,ck_2stages,0,0,6,NVIDIA H100 80GB HBM3\n" // 7
      "114,64,7168,2048,256,8,SiLu,bf16,asm,0,0,7,NVIDIA H200\n"              // 8: another cu_num
      "132,64,4096,14336,8,2,SiLu,bf16,asm,0,0,8,NVIDIA H100 80GB HBM3\n";    // 9: another shape, H100 only
  const auto t = TunedTable::parse(csv, "dev.csv", kImpls);
  REQUIRE(t.rows().size() == 8);
  CHECK(t.rows()[0].key.device == H200);
  CHECK(t.rows()[2].key.device.empty());
  CHECK(t.rows()[0].to_json()["device"] == H200);

  struct Want {
    TunedKey k;
    std::string source;
    int pad_n;  // the row's tag; 0: heuristic
  };
  TunedKey other_shape = key(132, 64, H200);
  other_shape.model_dim = 4096, other_shape.inter_dim = 14336, other_shape.expert = 8, other_shape.topk = 2;
  const Want wants[] = {
      {key(132, 64, H200), "exact", 1},
      {key(132, 1024, H200), "exact", 2},
      // The device's nearest bucket (64) wins over an exact row without a device (16).
      {key(132, 16, H200), "nearest", 1},
      {key(132, 64, H100), "exact", 5},
      {key(132, 16, H100), "nearest", 5},
      // A GPU with no rows of its own: rows without a device (same cu_num).
      {key(132, 64, "NVIDIA H20"), "exact(any-device)", 3},
      {key(132, 20, "NVIDIA H20"), "nearest(any-device)", 4},
      // A key without a device (GPU unknown): only rows without one, never a device's row.
      {key(132, 64), "exact", 3},
      {key(132, 1024), "nearest", 3},
      // Device names compare trimmed, as the CSV reader trims cells.
      {key(132, 64, " NVIDIA H200 "), "exact", 1},
      // cu_num still separates devices; another device's rows are never borrowed.
      {key(114, 64, H200), "exact", 7},
      {key(114, 64, "NVIDIA H20"), "heuristic", 0},
      {key(304, 64, H200), "heuristic", 0},
      {other_shape, "heuristic", 0},
  };
  for (const auto& w : wants) {
    CAPTURE(w.k.str());
    const auto l = t.lookup(w.k, heuristic_row);
    CHECK(l.source == w.source);
    CHECK(l.exact == (w.source.rfind("exact", 0) == 0));
    CHECK(l.any_device == (w.source.find("(any-device)") != std::string::npos));
    CHECK(l.to_json()["source"] == w.source);
    CHECK(l.to_json()["any_device"] == l.any_device);
    if (w.pad_n) {
      CHECK(l.row.pad_n == w.pad_n);
      CHECK(l.file == "dev.csv");
    } else {
      CHECK(l.row.impl == "persistent");  // heuristic_row
      CHECK(l.row.key == w.k);
      CHECK(l.file.empty());
    }
  }
  const auto s = t.summary();
  CHECK(s["devices"] == nlohmann::json::array({H100, H200}));
  CHECK(s["cu_nums"] == nlohmann::json::array({114, 132}));

  // Written back with the column; sorted by (cu_num, device, token, ...); reads back the same.
  const std::string out = t.to_csv();
  CHECK(out.rfind("cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,block_m,block_n,"
                  "block_k,warps,stages,persistent,us,err,device\n",
                  0) == 0);
  const auto back = TunedTable::parse(out, "back.csv", kImpls);
  REQUIRE(back.rows().size() == 8);
  CHECK(back.rows()[0].key.cu_num == 114);
  CHECK(back.rows()[1].key.device.empty());  // 132, any device, token 16
  CHECK(back.rows()[1].key.token == 16);
  CHECK(back.rows()[3].key.device == H100);
  CHECK(back.rows()[7].key.device == H200);
  CHECK(back.rows()[7].key.token == 1024);
  for (const auto& w : wants) CHECK(back.lookup(w.k, heuristic_row).row.pad_n == t.lookup(w.k, heuristic_row).row.pad_n);
}

TEST_CASE("tuned config: device column: header forms, duplicates include the device, errors, upsert") {
  const std::string h = "cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,device\n";
  // Any column position; blanks around the name are trimmed; an empty cell is "any device".
  const auto t = TunedTable::parse(
      "device,cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n\n"
      "  NVIDIA H200 ,132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,0\n"
      ",132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,0\n",
      "first.csv", kImpls);
  REQUIRE(t.rows().size() == 2);
  CHECK(t.rows()[0].key.device == "NVIDIA H200");
  CHECK(t.rows()[1].key.device.empty());
  // The same key on two devices, and without one, is three rows; twice on one device is a duplicate.
  const std::string r200 = "132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,0,NVIDIA H200\n";
  const std::string r100 = "132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,0,NVIDIA H100 80GB HBM3\n";
  const std::string rany = "132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,0,\n";
  CHECK(err(h + r200 + r100 + rany) == "(no error)");
  CHECK(err(h + r200 + r100 + "132,64,7168,2048,256,8,SiLu,bf16,persistent,0,0,0,NVIDIA H200\n") ==
        "t.csv:4: field 'token': duplicate key (cu_num=132 token=64 model_dim=7168 inter_dim=2048 expert=256 topk=8 "
        "act_type=SiLu dtype=bf16 device='NVIDIA H200'), first on line 2");
  CHECK(err(h + rany + r200 + rany).find("t.csv:4: field 'token': duplicate key (") == 0);
  // Malformed rows of a file with the column still name file, line and field.
  CHECK(err(h + r200 + "132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,NVIDIA H200\n") ==
        "t.csv:3: expected 13 fields (as in the header), got 12");
  CHECK(err(h + "132,x,7168,2048,256,8,SiLu,bf16,asm,0,0,0,NVIDIA H200\n") ==
        "t.csv:2: field 'token': expected an integer, got 'x'");
  CHECK(err(h + "132,64,7168,2048,256,8,SiLu,bf16,nope,0,0,0,NVIDIA H200\n").find("t.csv:2: field 'impl'") == 0);
  CHECK(err(h + "132,64,7168,2048,256,8,SiLu,bf16,asm,0,0,0,\"NVIDIA H200\"\n") == "t.csv:2: quoted fields are not supported");

  // upsert: the device is part of the key; names are trimmed; a name the CSV cannot hold is refused.
  TunedTable u = TunedTable::parse(h + r200 + rany, "u.csv", kImpls);
  TunedRow r = u.rows()[0];
  r.impl = "persistent";
  r.key.device = " NVIDIA H200\t";
  u.upsert(r, kImpls);
  REQUIRE(u.rows().size() == 2);
  CHECK(u.rows()[0].impl == "persistent");
  CHECK(u.rows()[0].key.device == "NVIDIA H200");
  CHECK(u.rows()[1].impl == "asm");  // the row without a device is another key
  r.key.device = "NVIDIA H100 80GB HBM3";
  u.upsert(r, kImpls);
  CHECK(u.rows().size() == 3);
  r.key.device = "GPU, rev 2";
  CHECK_THROWS_WITH_AS(u.upsert(r, kImpls), "u.csv: row: field 'device': must not hold a comma, a quote or a line break, got 'GPU, rev 2'",
                       InputError);
  CHECK(u.rows().size() == 3);
}

TEST_CASE("tuned config: a table without the device column keeps working; a tuner's row adds the column") {
  tooling::TempDir dir;
  const std::string path = dir.path("old.csv");
  {
    std::ofstream f(path);
    f << kSeedCsv;  // the seed's 12 columns only
  }
  auto t = TunedTable::load(path, kImpls);
  REQUIRE(t.rows().size() == 2);
  CHECK(t.lookup(key(256, 1)).source == "exact");  // GPU unknown: plain exact
  CHECK(t.lookup(key(256, 1, "NVIDIA H200")).source == "exact(any-device)");
  CHECK(t.lookup(key(256, 8, "NVIDIA H200")).source == "nearest(any-device)");
  TunedRow r;
  r.key = key(256, 1, "NVIDIA H200");
  r.impl = "asm";
  update_tuned_file(path, r, kImpls);
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(text.find(",err,device\n") != std::string::npos);
  CHECK(text.find("256,1,7168,2048,256,8,SiLu,bf16,ck_2stages,0,128,128,,,,,,,,,\n") != std::string::npos);
  CHECK(text.find("256,1,7168,2048,256,8,SiLu,bf16,asm,0,0,0,,,,,,,,,NVIDIA H200\n") != std::string::npos);
  t = TunedTable::load(path, kImpls);
  REQUIRE(t.rows().size() == 3);
  CHECK(t.lookup(key(256, 1, "NVIDIA H200")).row.impl == "asm");
  CHECK(t.lookup(key(256, 1, "NVIDIA H200")).source == "exact");
  CHECK(t.lookup(key(256, 1, "NVIDIA H100 80GB HBM3")).row.impl == "ck_2stages");
  CHECK(t.lookup(key(256, 1)).row.impl == "ck_2stages");
}

TEST_CASE("tuned config: errors name the file, the line and the field") {
  const std::string h = "cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n\n";
  const std::string row = "256,1,7168,2048,256,8,SiLu,bf16,ck_2stages,0,128,128\n";
  CHECK(err(h + row) == "(no error)");
  CHECK(err(h + row + "256,1,7168,2048,256,8,SiLu,bf16,asm,0,128,128\n") ==
        "t.csv:3: field 'token': duplicate key (cu_num=256 token=1 model_dim=7168 inter_dim=2048 expert=256 topk=8 "
        "act_type=SiLu dtype=bf16), first on line 2");
  CHECK(err(h + "256,1,7168,2048,256,8,SiLu,bf16,cuda_magic,0,128,128\n") ==
        "t.csv:2: field 'impl': unknown impl 'cuda_magic' (known: asm, ck_2stages, persistent, triton_2stages)");
  CHECK(err(h + "256,one,7168,2048,256,8,SiLu,bf16,asm,0,128,128\n") ==
        "t.csv:2: field 'token': expected an integer, got 'one'");
  CHECK(err(h + row + "256,2,7168,2048,256,8,SiLu,bf16,asm,0,128\n") ==
        "t.csv:3: expected 12 fields (as in the header), got 11");
  CHECK(err(h + "256,1,7168,2048,8,9,SiLu,bf16,asm,0,128,128\n") == "t.csv:2: field 'topk': must be in [1, expert=8], got 9");
  CHECK(err(h + "256,1,7168,2048,256,8,Relu,bf16,asm,0,128,128\n").find("t.csv:2: field 'act_type': unknown act_type 'Relu'") == 0);
  CHECK(err(h + "256,1,7168,2048,256,8,SiLu,bf15,asm,0,128,128\n").find("t.csv:2: field 'dtype'") == 0);
  CHECK(err(h + "256,1,7168,2048,256,8,SiLu,bf16,asm,-1,128,128\n").find("t.csv:2: field 'splitK'") == 0);
  CHECK(err(h + "0,1,7168,2048,256,8,SiLu,bf16,asm,0,128,128\n").find("t.csv:2: field 'cu_num'") == 0);
  CHECK(err(h + "256,1,7168,2048,256,8,SiLu,bf16,asm,0,128,1.5\n").find("t.csv:2: field 'pad_n'") == 0);
  CHECK(err(h + "256,1,7168,2048,256,8,SiLu,bf16,\"asm\",0,128,128\n") == "t.csv:2: quoted fields are not supported");
  const std::string hx = "cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m,pad_n,us,warps,persistent\n";
  CHECK(err(hx + "256,1,7168,2048,256,8,SiLu,bf16,asm,0,128,128,-3,,\n") ==
        "t.csv:2: field 'us': must be a finite non-negative number, got '-3'");
  CHECK(err(hx + "256,1,7168,2048,256,8,SiLu,bf16,asm,0,128,128,,64,\n").find("t.csv:2: field 'warps'") == 0);
  CHECK(err(hx + "256,1,7168,2048,256,8,SiLu,bf16,asm,0,128,128,,,2\n").find("t.csv:2: field 'persistent'") == 0);
  CHECK(err("cu_num,token,model_dim,inter_dim,expert,topk,act_type,dtype,impl,splitK,pad_m\n") ==
        "t.csv:1: header: required column 'pad_n' is missing");
  CHECK(err("cu_num,token,token,model_dim\n") == "t.csv:1: header: column 'token' appears twice");
  CHECK(err("").find("t.csv:1: missing header") == 0);
  CHECK(err(h + row, {}).find("unknown impl 'ck_2stages' (known: (none))") != std::string::npos);
  CHECK_THROWS_WITH_AS(TunedTable::load("/nonexistent/t.csv", kImpls), doctest::Contains("cannot open"), InputError);
}

TEST_CASE("tuned config: upsert, save and reload; update_tuned_file on a missing file") {
  tooling::TempDir dir;
  const std::string path = dir.path("tuned.csv");
  TunedRow r;
  r.key = key(132, 64);
  r.impl = "persistent";
  r.block_m = 64;
  r.block_n = 128;
  r.block_k = 64;
  r.warps = 8;
  r.stages = 4;
  r.persistent = true;
  r.us = 123.25;
  r.err = 0.002;
  update_tuned_file(path, r, kImpls);
  auto t = TunedTable::load(path, kImpls);
  REQUIRE(t.rows().size() == 1);
  CHECK(t.rows()[0].to_json()["block_n"] == 128);
  CHECK(t.rows()[0].persistent == true);
  CHECK(t.rows()[0].us == 123.25);
  // Replace the same key, add another.
  r.us = 99.5;
  update_tuned_file(path, r, kImpls);
  r.key.token = 1;
  r.impl = "asm";
  update_tuned_file(path, r, kImpls);
  t = TunedTable::load(path, kImpls);
  REQUIRE(t.rows().size() == 2);
  CHECK(t.rows()[0].key.token == 1);
  CHECK(t.rows()[1].us == 99.5);
  CHECK(t.rows()[1].line == 3);
  CHECK(t.summary()["rows"] == 2);
  // A bad row is refused before anything is written.
  r.impl = "nope";
  CHECK_THROWS_WITH_AS(update_tuned_file(path, r, kImpls), doctest::Contains("field 'impl'"), InputError);
  CHECK(TunedTable::load(path, kImpls).rows().size() == 2);
  CHECK(dir.stray_temporaries() == 0);
}

TEST_CASE("tuned config: a writer killed at random moments never leaves a corrupt file") {
  tooling::TempDir dir;
  const std::string path = dir.path("tuned.csv");
  TunedRow r;
  r.key = key(132, 1);
  r.impl = "persistent";
  r.us = 1.0;
  update_tuned_file(path, r, kImpls);
  for (int round = 0; round < 6; ++round) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: a "tuner" adding rows as fast as it can until killed.
      TunedRow c = r;
      for (int64_t tok = 2;; ++tok) {
        c.key.token = tok + 100000 * round;
        c.us = double(tok);
        try {
          update_tuned_file(path, c, kImpls);
        } catch (...) {
          ::_exit(3);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 15 * round));
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st));
    // The file is always a complete table: it parses and holds the first row.
    const auto t = TunedTable::load(path, kImpls);
    CHECK(t.rows().size() >= 1);
    CHECK(t.lookup(key(132, 1)).source == "exact");
  }
  // Temporaries of the SIGKILLed writer may remain (.<file>.tmp.XXXXXX); the
  // table itself is never one of them.
  std::filesystem::remove_all(dir.path("none"));
}
