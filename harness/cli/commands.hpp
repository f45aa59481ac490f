#pragma once
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "moe/tuned_config.hpp"

namespace moe::cli {

struct CommonOptions {
  int device = 0;
  bool device_given = false;  // --device on the command line (else a child's MOE_DEVICE passes through)
  std::string data_dir;  // empty: ./data if present, else the source tree's data/
};

struct Command {
  CLI::App* app;
  std::function<int(const CommonOptions&)> run;
};

// Each subcommand lives in its own cmd_*.cpp and registers itself here.
void register_devices(CLI::App& app, std::vector<Command>& out);
void register_list(CLI::App& app, std::vector<Command>& out);
void register_verify(CLI::App& app, std::vector<Command>& out);
void register_report(CLI::App& app, std::vector<Command>& out);
void register_compare(CLI::App& app, std::vector<Command>& out);
void register_run(CLI::App& app, std::vector<Command>& out);
void register_merge(CLI::App& app, std::vector<Command>& out);
void register_bench(CLI::App& app, std::vector<Command>& out);
void register_tune(CLI::App& app, std::vector<Command>& out);

// Registers every subcommand on `app` (commands.cpp holds the list).
void add_commands(CLI::App& app, CommonOptions& common, std::vector<Command>& out);

// --data-dir, else ./data, else the source tree's data/.
std::string resolve_data_dir(const CommonOptions& c);

// ---- --seed ------------------------------------------------------------------
// Adds `--seed N` to `sub`, bound to `seed`: a decimal integer in [0, 2^64-1];
// anything else (-1, 2^64, 0x10, 1e3) is a usage error naming --seed.
CLI::Option* add_seed_option(CLI::App* sub, uint64_t& seed, const std::string& what);

// ---- --tuned-config (verify, bench, run, tune) ----------------------------------
// Adds `--tuned-config PATH` to `sub`, bound to `path` (empty = the default).
void add_tuned_config_option(CLI::App* sub, std::string& path, const std::string& what = "");
// configs/tuned_fmoe.csv under the current folder, else the source tree's.
std::string default_tuned_config();
// The table at `path` (empty: the default; a missing default file is an empty
// table, a missing named file is InputError), validated against every impl name
// the kernel families and the fused_moe tuned rows know.
std::shared_ptr<const TunedTable> load_tuned_config(const std::string& path);
// The table and {"file": ..., "rows": ...} for result documents.
struct OpenTunedConfig {
  std::shared_ptr<const TunedTable> table;
  nlohmann::json summary;
};
OpenTunedConfig open_tuned_config(const std::string& path);
// Impl names a tuned table may hold.
std::set<std::string> tuned_impl_names();

// ---- mpirun ------------------------------------------------------------------
// Rank and size from the launcher's environment (OpenMPI OMPI_COMM_WORLD_*,
// else PMI_RANK/PMI_SIZE, else PMIX_RANK with OMPI size). size 1 when not
// launched by mpirun. timeout_s: MOE_MPI_TIMEOUT_S (read only when launched;
// not a number >= 0 is InputError), how long a rank waits in the results
// exchange before it aborts the job; 0 waits forever.
struct MpiWorld {
  static constexpr double kDefaultTimeoutS = 1800;
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  double timeout_s = kDefaultTimeoutS;
  bool launched() const { return size > 1; }
};
MpiWorld mpi_world();
// True when this binary was built with MPI (-Dmpi).
bool mpi_built();
// Collective over all ranks (MPI_Init on first use, MPI_Finalize at exit): rank
// 0 gets every rank's `mine` in rank order; the others get an empty vector.
// Without MPI: {mine}. If it has not completed after w.timeout_s seconds, one
// line naming `what` goes to stderr and the job is aborted (MPI_Abort, exit 1).
std::vector<std::string> mpi_gather_to_root(const MpiWorld& w, const std::string& what, const std::string& mine);
// For verify/bench/tune: InputError when launched with several ranks but built
// without MPI, or together with --shard. Returns the shard this rank takes (""
// when not under mpirun).
std::string mpi_shard_for(const MpiWorld& w, const std::string& explicit_shard);

// ---- sharded runs: failure handling -------------------------------------------
// Test hooks (documented in docs/notes/tooling.md): MOE_TEST_FAIL_SHARD=i makes
// the process of shard i (--shard i/n, or rank i under mpirun) throw before its
// work; MOE_TEST_HANG_SHARD=i makes it sleep that long instead (a stuck rank,
// for the exchange timeout and the launcher's timeouts). No-ops when unset or
// naming another shard.
void shard_test_hooks(const std::string& shard_text);

// One rank's contribution to the results exchange: its results document, or
// the error its work threw.
struct RankReport {
  int rank = 0;
  nlohmann::json doc;        // null when the work threw
  std::string error;         // what() of the exception, "" when it succeeded
  bool input_error = false;  // the exception was an InputError (exit 2)
  bool ok() const { return error.empty(); }
};
// The per-rank results file beside `json_path`: results.json -> results.rank1.json.
std::string rank_results_path(const std::string& json_path, int rank);
// Under mpirun (w.launched()), for every rank whether or not its work succeeds:
//  1. runs `work` (this rank's share), catching any exception;
//  2. before any MPI call, writes the document to `rank_file` (atomically; a
//     stale file of an earlier run is removed when the work threw); "" = none;
//  3. gathers every rank's report at rank 0 (mpi_gather_to_root, under the
//     timeout).
// `all` holds every rank's report in rank order on rank 0, nothing elsewhere;
// `error` is this rank's own exception, rethrown by finish_ranks.
struct RankRun {
  RankReport mine;
  std::exception_ptr error;
  std::vector<RankReport> all;
};
RankRun run_rank(const MpiWorld& w, const std::string& what, const std::string& rank_file,
                 const std::function<nlohmann::json()>& work);
// Rank 0: the documents of the ranks that succeeded, merged by `merge` (with
// allow_partial when a rank failed), plus "mpi": {"ranks", "failed": [{"rank",
// "error"}]}. null when no rank succeeded (nothing to write).
using MergeDocs = std::function<nlohmann::json(const std::vector<std::pair<std::string, nlohmann::json>>&, bool)>;
nlohmann::json merge_rank_reports(const std::vector<RankReport>& all, const MergeDocs& merge);
// The end of a rank, after rank 0 wrote the merged file: rethrows this rank's
// own error; else, on rank 0, throws when a rank failed (one line naming every
// failed rank and its error; InputError when all of them were input errors).
void finish_ranks(const RankRun& run, const std::string& merged_path);

}  // namespace moe::cli
