#include "common/error.h"

#include <mpi.h>

#include <cstdio>

namespace mpibert {
namespace {

void abort_job_if_distributed(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) {
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
}

}  // namespace

int run_main(const char* program, const std::function<int()>& body) {
  int code = kExitOk;
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    code = kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    code = kExitFailure;
  }
  abort_job_if_distributed(code);
  return code;
}

}  // namespace mpibert
