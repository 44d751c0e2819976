#pragma once
// The MPI implementation of HcclLike: a backend over a duplicate of a communicator (so its traffic never
// mixes with anyone else's) with one progress thread that runs the ops in issue order as non-blocking
// MPI calls, and a heartbeat side channel on a second duplicate that tells waiting ranks whether their
// peers are alive (Work::waitAlive).
#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <memory>

#include "common/comm/hccl_like.h"
#include "common/comm/mpi_environment.h"

namespace mpibert {

// Which ranks a backend spans, for callers that do not hold an MPI_Comm.
enum class CommGroup { World, Self };

struct MpiBackendOptions {
  // How often each rank tells rank 0 (and rank 0 every rank) that it is alive.
  std::chrono::milliseconds heartbeat_interval{500};
  // Destroying a backend is collective, like creating it: each rank says goodbye to its heartbeat peers
  // and frees the heartbeat communicator once they all said goodbye too. It waits for them this long at
  // most; a peer that destroys its backend later than that (or never) only costs the communicator,
  // which is then left allocated.
  std::chrono::milliseconds close_wait{std::chrono::seconds(10)};
  // A wait with a timeout that lasts this long prints a warning naming the ranks that have not issued
  // the collective (HcclLike::setStallWarning changes it later; 0: never).
  std::chrono::milliseconds stall_warning{std::chrono::seconds(60)};
  // Elements per MPI call: larger ops are split (MPI counts are int). Lowered only to test the splitting.
  size_t max_elements_per_call = static_cast<size_t>(1) << 30;
};

// Collective over the group (duplicates its communicator). MPI must be up with MPI_THREAD_MULTIPLE.
std::unique_ptr<HcclLike> make_mpi_backend(CommGroup group = CommGroup::World, const MpiBackendOptions& options = {});
std::unique_ptr<HcclLike> make_mpi_backend(MPI_Comm parent, const MpiBackendOptions& options = {});

// Test hook: sends a heartbeat to every heartbeat peer now, whatever the interval, and returns once MPI
// has taken it (a message that may still arrive after the peer destroyed its backend). `backend` must
// come from make_mpi_backend.
void send_heartbeat_now_for_testing(HcclLike& backend);

// Test hook: pauses (true) or resumes (false) the backend's progress thread. Paused, it neither moves ops
// nor sends or reads heartbeats, as if the process were stopped; returns once the thread holds still.
// `backend` must come from make_mpi_backend.
void pause_progress_for_testing(HcclLike& backend, bool paused);

// Test hook: how many ops of `backend` its callers started themselves, on the engine's fast path (see
// docs/collectives.md#the-fast-path). `backend` must come from make_mpi_backend.
uint64_t fast_path_starts_for_testing(HcclLike& backend);

}  // namespace mpibert
