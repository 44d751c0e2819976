#include "common/comm/mpi_environment.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "common/comm/finalize_hooks.h"
#include "common/comm/mpi_mapping.h"

namespace mpibert {
namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::vector<StopsBeforeFinalize*>& registry() {
  static std::vector<StopsBeforeFinalize*> r;
  return r;
}

bool mpi_is_up() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

}  // namespace

void register_before_finalize(StopsBeforeFinalize* object) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(object);
}

void unregister_before_finalize(StopsBeforeFinalize* object) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& r = registry();
  r.erase(std::remove(r.begin(), r.end(), object), r.end());
}

void stop_all_before_finalize() {
  std::vector<StopsBeforeFinalize*> objects;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    objects.swap(registry());
  }
  for (auto* object : objects) object->stopBeforeFinalize();
}

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = 0;
  if (!initialized) {
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) throw std::runtime_error("MPI_Init_thread failed: " + mpi_error_string(rc));
    owner_ = true;
    // Open MPI reports a failed non-blocking collective through MPI_COMM_WORLD's handler, whatever the
    // collective's communicator: returned, the error reaches the op's Work, naming the op and the rank,
    // instead of aborting the job with "an error occurred in MPI_Test on MPI_COMM_WORLD". Every MPI call
    // here checks its code.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_MULTIPLE)
    throw std::runtime_error("the MPI library provides thread level " + std::to_string(provided) +
                             " but mpibert needs MPI_THREAD_MULTIPLE (" + std::to_string(MPI_THREAD_MULTIPLE) +
                             "): use an MPI built with thread support (Debian's Open MPI has it)");
}

MpiEnvironment::~MpiEnvironment() {
  if (!owner_ || !mpi_is_up()) return;
  stop_all_before_finalize();
  MPI_Finalize();
}

int MpiEnvironment::worldRank() const {
  int r = 0;
  mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &r), "MPI_Comm_rank", -1);
  return r;
}

int MpiEnvironment::worldSize() const {
  int s = 1;
  mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &s), "MPI_Comm_size", worldRank());
  return s;
}

int MpiEnvironment::ranksOnThisNode() const {
  const int rank = worldRank();
  MPI_Comm local = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local),
            "MPI_Comm_split_type(shared memory)", rank);
  int n = 1;
  const int rc = MPI_Comm_size(local, &n);
  MPI_Comm_free(&local);
  mpi_check(rc, "MPI_Comm_size(node)", rank);
  return n;
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) return "MPI (unknown version)";
  std::string s(text, static_cast<size_t>(len));
  auto nl = s.find_first_of(",\n");
  return nl == std::string::npos ? s : s.substr(0, nl);
}

void abort_job_if_distributed(int code) {
  if (!mpi_is_up()) return;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) {
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
}

}  // namespace mpibert
