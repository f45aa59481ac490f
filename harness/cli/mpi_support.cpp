// mpirun support of verify, bench and tune: rank/size from the launcher's
// environment, and gathering each rank's results on rank 0 (MPI_Gather +
// MPI_Gatherv of the JSON text). MPI is initialised only when results are
// exchanged, after the work (the ranks run child processes — bench executables
// — before that, so no fork happens inside an initialised MPI process).
//
// A failing rank must neither hang the job nor lose the others' results: each
// rank catches its own error and still takes part in the exchange (sending the
// error instead of results), writes its results to its own file before any MPI
// call, and a watchdog aborts the job when the exchange does not complete in
// time (a rank that hangs or died before reaching it).
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "moe/atomic_file.hpp"
#include "moe/error.hpp"
#include "moe/results.hpp"

#if MOE_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // C API only
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace moe::cli {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return end && *end == '\0' ? static_cast<int>(x) : fallback;
}

double timeout_from_env() {
  const char* v = std::getenv("MOE_MPI_TIMEOUT_S");
  if (!v || !*v) return MpiWorld::kDefaultTimeoutS;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  MOE_REQUIRE(end && *end == '\0' && std::isfinite(t) && t >= 0,
              utf8_sanitized(fmt::format("MOE_MPI_TIMEOUT_S='{}': expected seconds >= 0 (0: no timeout)", v)));
  return t;
}

// Ends the whole job: MPI_Abort where MPI is up and may be called from this
// thread, else the process exits and mpirun ends the others (a rank that exits
// without MPI_Finalize aborts the job).
[[noreturn]] void abort_job() {
  constexpr int kExitCode = 1;  // a run error, as everywhere
#if MOE_HAVE_MPI
  int inited = 0, finalized = 0, level = MPI_THREAD_SINGLE;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) MPI_Query_thread(&level);
  if (inited && !finalized && level == MPI_THREAD_MULTIPLE) MPI_Abort(MPI_COMM_WORLD, kExitCode);
#endif
  std::fflush(nullptr);
  std::_Exit(kExitCode);
}

// Prints `line` and aborts the job unless disarmed (destroyed) within `seconds`
// (0: never).
class ExchangeWatchdog {
 public:
  ExchangeWatchdog(double seconds, std::string line) : line_(std::move(line)) {
    if (seconds > 0)
      thread_ = std::thread([this, seconds] {
        std::unique_lock lock(mutex_);
        if (done_cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done_; })) return;
        std::fprintf(stderr, "%s\n", line_.c_str());
        abort_job();
      });
  }
  ~ExchangeWatchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  ExchangeWatchdog(const ExchangeWatchdog&) = delete;
  ExchangeWatchdog& operator=(const ExchangeWatchdog&) = delete;

 private:
  std::string line_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

MpiWorld mpi_world() {
  MpiWorld w;
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {
    w.size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    w.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    w.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", w.rank);
  } else if (std::getenv("PMI_SIZE")) {
    w.size = env_int("PMI_SIZE", 1);
    w.rank = env_int("PMI_RANK", 0);
    w.local_rank = env_int("MPI_LOCALRANKID", env_int("PMI_LOCAL_RANK", w.rank));
  }
  if (w.size < 1 || w.rank < 0 || w.rank >= w.size) w = MpiWorld{};
  if (w.launched()) w.timeout_s = timeout_from_env();
  return w;
}

bool mpi_built() {
#if MOE_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::string mpi_shard_for(const MpiWorld& w, const std::string& explicit_shard) {
  if (!w.launched()) return "";
  MOE_REQUIRE(mpi_built(), fmt::format("launched by mpirun with {} ranks, but this moe-harness was built without MPI "
                                       "(install libopenmpi-dev, meson configure -Dmpi=enabled)",
                                       w.size));
  MOE_REQUIRE(explicit_shard.empty(),
              fmt::format("--shard {} under mpirun: the ranks take the shards themselves (rank/size)", explicit_shard));
  return fmt::format("{}/{}", w.rank, w.size);
}

std::vector<std::string> mpi_gather_to_root(const MpiWorld& w, const std::string& what, const std::string& mine) {
#if MOE_HAVE_MPI
  const ExchangeWatchdog watchdog(
      w.timeout_s,
      fmt::format("moe-harness: error: [rank {}/{}] mpi: {} not complete after {:g} s (MOE_MPI_TIMEOUT_S): {}; "
                  "aborting the job",
                  w.rank, w.size, what, w.timeout_s,
                  w.rank == 0 ? "waited for every rank's results at rank 0 (a rank hung or died before sending them)"
                              : "waited for rank 0 to take this rank's results (a rank hung or died)"));
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;  // MULTIPLE lets the watchdog thread call MPI_Abort
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    std::atexit([] {
      int fin = 0;
      MPI_Finalized(&fin);
      if (!fin) MPI_Finalize();
    });
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int len = static_cast<int>(mine.size());
  std::vector<int> lens(static_cast<size_t>(size), 0), offs(static_cast<size_t>(size), 0);
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string all;
  if (rank == 0) {
    long total = 0;
    for (int r = 0; r < size; ++r) {
      offs[static_cast<size_t>(r)] = static_cast<int>(total);
      total += lens[static_cast<size_t>(r)];
    }
    MOE_REQUIRE(total < (1L << 31), "mpi: gathered results exceed 2 GiB");
    all.resize(static_cast<size_t>(total));
  }
  MPI_Gatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR, 0, MPI_COMM_WORLD);
  std::vector<std::string> out;
  if (rank == 0)
    for (int r = 0; r < size; ++r)
      out.push_back(all.substr(static_cast<size_t>(offs[static_cast<size_t>(r)]), static_cast<size_t>(lens[static_cast<size_t>(r)])));
  return out;
#else
  (void)w;
  (void)what;
  return {mine};
#endif
}

void shard_test_hooks(const std::string& shard_text) {
  if (shard_text.empty()) return;
  const int index = parse_shard(shard_text).index;
  if (env_int("MOE_TEST_FAIL_SHARD", -1) == index)
    throw Error(fmt::format("injected failure of shard {} (MOE_TEST_FAIL_SHARD={})", shard_text, index));
  if (env_int("MOE_TEST_HANG_SHARD", -1) == index) std::this_thread::sleep_for(std::chrono::hours(1));
}

std::string rank_results_path(const std::string& json_path, int rank) {
  std::filesystem::path p(json_path);
  const std::string ext = p.has_extension() ? p.extension().string() : ".json";
  return p.replace_filename(fmt::format("{}.rank{}{}", p.stem().string(), rank, ext)).string();
}

RankRun run_rank(const MpiWorld& w, const std::string& what, const std::string& rank_file,
                 const std::function<nlohmann::json()>& work) {
  RankRun run;
  run.mine.rank = w.rank;
  auto fail = [&run](const std::exception& e) {
    run.error = std::current_exception();
    run.mine.doc = nullptr;
    run.mine.error = utf8_sanitized(e.what());
    run.mine.input_error = dynamic_cast<const InputError*>(&e) != nullptr;
  };
  try {
    run.mine.doc = work();
    if (!rank_file.empty())
      write_file_atomic(rank_file, run.mine.doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  } catch (const std::exception& e) {
    fail(e);
  }
  if (!run.mine.ok() && !rank_file.empty()) {
    std::error_code ec;  // an older run's file must not pass for this run's results
    std::filesystem::remove(rank_file, ec);
  }
  const nlohmann::json record{{"rank", w.rank},
                              {"doc", run.mine.doc},
                              {"error", run.mine.error},
                              {"input_error", run.mine.input_error}};
  const auto texts = mpi_gather_to_root(w, what, record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  for (const auto& t : texts) {
    const auto r = nlohmann::json::parse(t);
    run.all.push_back({r["rank"].get<int>(), r["doc"], r["error"].get<std::string>(), r["input_error"].get<bool>()});
  }
  return run;
}

nlohmann::json merge_rank_reports(const std::vector<RankReport>& all, const MergeDocs& merge) {
  std::vector<std::pair<std::string, nlohmann::json>> parts;
  nlohmann::json failed = nlohmann::json::array();
  for (const auto& r : all) {
    if (r.ok()) parts.emplace_back(fmt::format("rank {}", r.rank), r.doc);
    else failed.push_back({{"rank", r.rank}, {"error", r.error}});
  }
  if (parts.empty()) return nullptr;
  nlohmann::json merged = merge(parts, !failed.empty());
  merged["mpi"] = {{"ranks", all.size()}, {"failed", failed}};
  return merged;
}

void finish_ranks(const RankRun& run, const std::string& merged_path) {
  if (!run.all.empty()) {  // rank 0: the job's verdict
    std::string failures;
    size_t failed = 0, input_errors = 0;
    for (const auto& r : run.all) {
      if (r.ok()) continue;
      ++failed;
      input_errors += r.input_error ? 1 : 0;
      failures += fmt::format("{}rank {}: {}", failures.empty() ? "" : "; ", r.rank, r.error);
    }
    if (failed == 0) return;
    const std::string line = fmt::format(
        "mpi: {} of {} rank(s) failed ({}); {}", failed, run.all.size(), failures,
        failed == run.all.size() ? std::string("no results to merge, nothing written")
        : merged_path.empty()    ? std::string("the other ranks' results were merged")
                                 : fmt::format("the other ranks' results are in {}", merged_path));
    if (input_errors == failed) throw InputError(line);
    throw Error(line);
  }
  if (!run.mine.ok()) {
    const std::string line = fmt::format("[rank {}] {}", run.mine.rank, run.mine.error);
    if (run.mine.input_error) throw InputError(line);
    throw Error(line);
  }
}

}  // namespace moe::cli
