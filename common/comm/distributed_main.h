#pragma once
// The main() of a per-rank program: MPI up (MPI_THREAD_MULTIPLE; a plain run is a singleton of one
// rank), one HcclLike over the world, the body, and errors turned into exit codes. An error every rank
// agreed on (AgreedError) is printed once, by rank 0, and all ranks leave with its code without
// aborting the job; any other error is printed by the rank that hit it and aborts the job (run_main),
// so no rank waits forever in a collective.
#include <functional>

#include "common/comm/hccl_like.h"
#include "common/comm/mpi_environment.h"

namespace mpibert {

int run_distributed_main(const char* program, int* argc, char*** argv,
                         const std::function<int(HcclLike&, const MpiEnvironment&)>& body);

}  // namespace mpibert
