#pragma once
// Internal to common/comm: the heartbeat side channel of a backend. A star on its own duplicated
// communicator (every rank -> rank 0, rank 0 -> every rank), driven by the backend's progress thread
// between its polls of the current op and while it is idle. It never blocks: service() reads the
// heartbeats that have arrived (one receive is always posted per link) and sends one per link when
// due and the previous one has left. The counts in each heartbeat let a later diagnosis name the
// rank that has not arrived at a collective.
//
// Closing is a handshake per link, because a communicator must not be freed while a message to it may
// still come: Open MPI hands a message for a freed communicator to the next communicator that gets the
// same context id, where it takes the sequence number of a real message, which is then lost (a later
// collective hangs or receives the wrong message). So each rank sends a goodbye as its last message on
// every link and frees the communicator only once it has read the goodbye of every peer (MPI keeps a
// link's messages in order, so nothing follows it). A peer that does not say goodbye in time (it is
// gone, or it destroys its backend much later than this rank) leaves the communicator allocated: its
// late messages then land there, harmlessly.
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
  ~HeartbeatChannel();  // closes without waiting if close() was not called
  HeartbeatChannel(const HeartbeatChannel&) = delete;
  HeartbeatChannel& operator=(const HeartbeatChannel&) = delete;

  // When service() next has something to do.
  SteadyClock::time_point nextDue() const { return next_due_; }
  // Reads arrived heartbeats and sends due ones; issued/completed are this rank's collective counts.
  // Never throws: an MPI error disables the channel (peers will then find this rank silent).
  void service(SteadyClock::time_point now, uint64_t issued, uint64_t completed) noexcept;
  // Test hook: sends a heartbeat on every link now, whatever the interval and even to a peer that has
  // said goodbye; returns once MPI has taken it. Only while the progress thread holds still.
  void sendNow(uint64_t issued, uint64_t completed) noexcept;
  // Says goodbye on every link and waits up to wait_limit for every peer's goodbye, reading what
  // arrives; then releases the requests and frees the communicator if every peer said goodbye, else
  // leaves it allocated. Called once the progress thread has stopped; no MPI call afterwards. Returns
  // whether the communicator was freed (true with one rank). Idempotent.
  bool close(std::chrono::milliseconds wait_limit, uint64_t issued, uint64_t completed) noexcept;

 private:
  struct Link {
    int peer = -1;
    MPI_Request recv = MPI_REQUEST_NULL, send = MPI_REQUEST_NULL, goodbye = MPI_REQUEST_NULL;
    HeartbeatMessage in, out, farewell;
    bool peer_left = false;  // its goodbye has been read: nothing more will come
  };
  enum class State { Open, Disabled, Closed };

  void exchange_host_names(int size);
  void post_receive(Link& link);
  void read_arrivals(SteadyClock::time_point now);
  void send_due(uint64_t issued, uint64_t completed);
  void say_goodbye(uint64_t issued, uint64_t completed);
  bool await_goodbyes(std::chrono::milliseconds wait_limit);
  void release_requests() noexcept;
  void disable(const std::string& why) noexcept;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  std::chrono::milliseconds interval_;
  std::shared_ptr<PeerLiveness> liveness_;
  std::vector<Link> links_;
  SteadyClock::time_point next_due_, next_send_;
  State state_ = State::Closed;
  bool freed_ = true;  // what close() returned
};

}  // namespace mpibert
