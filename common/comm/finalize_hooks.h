#pragma once
// Internal to common/comm: backends alive in the process register here so that MpiEnvironment can stop
// their progress threads (and cancel their heartbeat requests) before it calls MPI_Finalize.
namespace mpibert {

class StopsBeforeFinalize {
 public:
  virtual ~StopsBeforeFinalize() = default;
  // Stops every MPI activity of this object; afterwards it must not call MPI again.
  virtual void stopBeforeFinalize() = 0;
};

void register_before_finalize(StopsBeforeFinalize* object);
void unregister_before_finalize(StopsBeforeFinalize* object);
// Calls stopBeforeFinalize() on every registered object (and forgets them).
void stop_all_before_finalize();

}  // namespace mpibert
