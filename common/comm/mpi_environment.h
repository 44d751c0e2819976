#pragma once
// The process-wide MPI environment and the few world-level facts programs ask MPI for. Callers never
// include <mpi.h>: MPI is called from common/comm only.
#include <string>

namespace mpibert {

// Initialises MPI with MPI_THREAD_MULTIPLE (each backend's progress thread calls MPI while other threads
// may too) and finalizes it on destruction, after stopping every backend still alive (their progress
// threads must not touch MPI past MPI_Finalize). Throws if the library cannot provide that thread level.
// Made while MPI is already up, it only checks the thread level and leaves finalizing to its owner.
class MpiEnvironment {
 public:
  MpiEnvironment(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
  int worldRank() const;
  int worldSize() const;
  // Ranks of MPI_COMM_WORLD on this node (shared memory); collective over the world.
  int ranksOnThisNode() const;

 private:
  bool owner_ = false;  // this object initialised MPI
};

// "Open MPI v4.1.4" (the library's own version string up to its first comma or newline).
std::string mpi_library_version();

// Ends the job with MPI_Abort(code) when MPI is up with more than one rank, so that no rank is left
// waiting in a collective; does nothing otherwise (one process, MPI never started or already finalized).
void abort_job_if_distributed(int code);

}  // namespace mpibert
