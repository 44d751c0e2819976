#pragma once
// The MPI implementation of HcclLike, and the process-wide MPI environment.
#include <mpi.h>

#include <memory>

#include "common/comm/hccl_like.h"

namespace mpibert {

// Initialises MPI with MPI_THREAD_MULTIPLE (the progress thread calls MPI while the main thread may
// too) and finalizes it on destruction. Throws if the library cannot provide that thread level.
class MpiEnvironment {
 public:
  MpiEnvironment(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
  int worldRank() const;
  int worldSize() const;
};

// A backend over a duplicate of `parent` (so our traffic never mixes with anyone else's), with one
// progress thread that runs the ops in issue order.
std::unique_ptr<HcclLike> make_mpi_backend(MPI_Comm parent = MPI_COMM_WORLD);

}  // namespace mpibert
