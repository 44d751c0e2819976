#include "common/comm/distributed_main.h"

#include <cstdio>
#include <memory>
#include <optional>

#include "common/comm/agreement.h"
#include "common/comm/mpi_backend.h"
#include "common/comm/mpi_environment.h"
#include "common/error.h"

namespace mpibert {

int run_distributed_main(const char* program, int* argc, char*** argv,
                         const std::function<int(HcclLike&, const MpiEnvironment&)>& body) {
  std::optional<MpiEnvironment> env;
  std::unique_ptr<HcclLike> comm;
  const int code = run_main(program, [&]() -> int {
    env.emplace(argc, argv);
    comm = make_mpi_backend();
    try {
      return body(*comm, *env);
    } catch (const AgreedError& e) {
      if (comm->rank() == 0) std::fprintf(stderr, "%s: error: %s\n", program, e.message());
      return e.exitCode();
    }
  });
  comm.reset();  // the backend's threads stop before MPI_Finalize
  env.reset();
  return code;
}

}  // namespace mpibert
