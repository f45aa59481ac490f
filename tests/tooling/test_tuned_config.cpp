// Tuned-config CSV: parsing the seed's format, lookup (exact / nearest bucket /
// heuristic), every error naming file, line and field, and atomic updates that
// survive a writer killed at an arbitrary moment.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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

TunedKey key(int cu, int64_t token) { return TunedKey{cu, token, 7168, 2048, 256, 8, "SiLu", "bf16"}; }

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
                  "block_k,warps,stages,persistent,us,err,note\n",
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
  const std::string path = dir.path("sub/tuned.csv");
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
  // Temporaries of the killed writer may remain (named <file>.tmp.<pid>.<n>); the
  // table itself is never one of them.
  std::filesystem::remove_all(dir.path("none"));
}

TEST_CASE("tuned config: the committed configs/tuned_fmoe.csv parses") {
  std::set<std::string> any;
  const auto t = TunedTable::load_or_empty("configs/tuned_fmoe.csv", kImpls);
  CHECK(t.file() == "configs/tuned_fmoe.csv");
  for (const auto& row : t.rows()) CHECK(row.key.cu_num > 0);
}
