#include "common/error.h"

#include <cstdio>

#include "common/comm/mpi_environment.h"

namespace mpibert {

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
