// mpirun support of verify and bench: rank/size from the launcher's environment,
// and gathering each rank's results on rank 0 (MPI_Gather + MPI_Gatherv of the
// JSON text). MPI is initialised only when results are exchanged, after the
// work (the ranks run child processes — bench executables — before that, so no
// fork happens inside an initialised MPI process).
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "moe/error.hpp"

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

std::vector<std::string> mpi_gather_to_root(const std::string& mine) {
#if MOE_HAVE_MPI
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    MPI_Init(nullptr, nullptr);
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
  return {mine};
#endif
}

}  // namespace moe::cli
