#pragma once
// Internal to common/comm: the heartbeat side channel of a backend. A star on its own duplicated
// communicator (every rank -> rank 0, rank 0 -> every rank), driven by the backend's progress thread
// between its polls of the current op and while it is idle. It never blocks: service() reads the
// heartbeats that have arrived (one receive is always posted per link) and sends one per link when
// due and the previous one has left. The counts in each heartbeat let a later diagnosis name the
// rank that has not arrived at a collective.
#include <mpi.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/comm/peer_liveness.h"

namespace mpibert {

class HeartbeatChannel {
 public:
  // Collective over `parent` (duplicates it). With one rank there is nothing to send or read.
  HeartbeatChannel(MPI_Comm parent, std::chrono::milliseconds interval, std::shared_ptr<PeerLiveness> liveness);
  ~HeartbeatChannel();
  HeartbeatChannel(const HeartbeatChannel&) = delete;
  HeartbeatChannel& operator=(const HeartbeatChannel&) = delete;

  // When service() next has something to do.
  SteadyClock::time_point nextDue() const { return next_due_; }
  // Reads arrived heartbeats and sends due ones; issued/completed are this rank's collective counts.
  // Never throws: an MPI error disables the channel (peers will then find this rank silent).
  void service(SteadyClock::time_point now, uint64_t issued, uint64_t completed) noexcept;
  // Cancels the posted receives and releases the sends; no MPI call afterwards. Idempotent.
  void stop() noexcept;

 private:
  struct Link {
    int peer = -1;
    MPI_Request recv = MPI_REQUEST_NULL, send = MPI_REQUEST_NULL;
    HeartbeatMessage in, out;
  };
  void post_receive(Link& link);
  void read_arrivals(SteadyClock::time_point now);
  void send_due(uint64_t issued, uint64_t completed);
  void disable(const std::string& why) noexcept;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  std::chrono::milliseconds interval_;
  std::shared_ptr<PeerLiveness> liveness_;
  std::vector<Link> links_;
  SteadyClock::time_point next_due_, next_send_;
  bool active_ = false;
};

}  // namespace mpibert
