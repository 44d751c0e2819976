#pragma once
// The process environment a rank trains in: which BLAS is really loaded (found at run time, since
// Debian's libtorch reports "generic" BLAS whichever library the alternatives system picked), and
// how many intra-op threads this rank uses (torch, OpenMP and OpenBLAS, which ignores torch's setting).
#include <string>

namespace mpibert {

struct BlasInfo {
  std::string name;     // "OpenBLAS", "MKL", "BLIS" or "reference"
  std::string details;  // the library's own config string, if it has one
  bool slow_reference() const { return name == "reference"; }
};

// Looks for each library's own entry points in the loaded process (dlsym), not torch's build string.
BlasInfo detect_blas();

// Threads per rank: configured > 0 wins, then OMP_NUM_THREADS (set per rank by gaudi_spawn), then
// usable cores / ranks on this host (OMPI_COMM_WORLD_LOCAL_SIZE), at least 1.
int choose_threads(long configured);

// Applies the count to torch (intra-op), OpenMP and OpenBLAS (through openblas_set_num_threads when
// present, because OpenBLAS read OPENBLAS_NUM_THREADS when it was loaded, before main()).
void apply_threads(int threads);

// How many distinct intra-op threads one at::parallel_for over `tasks` one-item chunks ran on. Our fused
// kernels split their work the same way, so this is 1 when the library was built without OpenMP
// (at::parallel_for is inline and then serial) whatever apply_threads set.
int intra_op_threads_reached(int tasks);

// gaudi_spawn --max_restarts: which attempt of the job this is (MPIBERT_RESTART_COUNT, 0 = the first), of
// how many restarts allowed (MPIBERT_MAX_RESTARTS), and the job's id (MPIBERT_RUN_ID); all 0/"" when the
// job is not elastic. Like torchrun's TORCHELASTIC_RESTART_COUNT and TORCHELASTIC_RUN_ID.
struct ElasticAttempt {
  int restart_count = 0;
  int max_restarts = 0;
  std::string run_id;
};
ElasticAttempt elastic_attempt();

// Version string for checkpoints and logs (MPI's: mpi_library_version() in common/comm).
std::string torch_version();

}  // namespace mpibert
