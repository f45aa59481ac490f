#pragma once
#include <cstdint>
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
// launched by mpirun.
struct MpiWorld {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  bool launched() const { return size > 1; }
};
MpiWorld mpi_world();
// True when this binary was built with MPI (-Dmpi).
bool mpi_built();
// Collective over all ranks (MPI_Init on first use, MPI_Finalize at exit): rank
// 0 gets every rank's `mine` in rank order; the others get an empty vector.
// Without MPI: {mine}.
std::vector<std::string> mpi_gather_to_root(const std::string& mine);
// For verify/bench: InputError when launched with several ranks but built without
// MPI, or together with --shard. Returns the shard this rank takes ("" when not
// under mpirun).
std::string mpi_shard_for(const MpiWorld& w, const std::string& explicit_shard);

}  // namespace moe::cli
