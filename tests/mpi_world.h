#pragma once
// The test process's world for multi-rank tests: who this rank is, barriers between test steps, and
// directory names every rank agrees on, all through the comm layer (tests call MPI through it too).
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/comm/agreement.h"
#include "common/comm/mpi_backend.h"

namespace mpibert::testing {

// Debug checks on: a test that issues a collective on some ranks only fails at once, naming both sides.
inline HcclLike& test_world() {
  static std::unique_ptr<HcclLike> comm = [] {
    auto c = make_mpi_backend(CommGroup::World);
    c->setDebugChecks(true);
    return c;
  }();
  return *comm;
}
inline int world_rank() {
  return test_world().rank();
}
inline int world_size() {
  return test_world().size();
}
inline void world_barrier() {
  test_world().barrier()->wait();
}

// TMP/<prefix>_<rank 0's pid>_np<world size>_<name>: unique per run, test and world size.
inline std::string shared_temp_dir(const std::string& prefix, const std::string& name) {
  const long pid = broadcast_value<long>(test_world(), static_cast<long>(::getpid()));
  return (std::filesystem::temp_directory_path() /
          (prefix + "_" + std::to_string(pid) + "_np" + std::to_string(world_size()) + "_" + name))
      .string();
}

}  // namespace mpibert::testing
