#include "common/comm/heartbeat_channel.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/comm/backoff.h"
#include "common/comm/mpi_mapping.h"

namespace mpibert {
namespace {

constexpr int kHeartbeatTag = 7;
constexpr int kMaxReadsPerLink = 64;  // heartbeats queued while this rank was away are read in one go

bool mpi_finalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

}  // namespace

HeartbeatChannel::HeartbeatChannel(MPI_Comm parent, std::chrono::milliseconds interval,
                                   std::shared_ptr<PeerLiveness> liveness)
    : interval_(interval), liveness_(std::move(liveness)) {
  int size = 1;
  mpi_check(MPI_Comm_rank(parent, &rank_), "MPI_Comm_rank", -1);
  mpi_check(MPI_Comm_size(parent, &size), "MPI_Comm_size", rank_);
  next_due_ = next_send_ = SteadyClock::now();
  if (size < 2) {
    next_due_ = SteadyClock::time_point::max();
    return;
  }
  mpi_check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup(heartbeats)", rank_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  exchange_host_names(size);
  for (int peer = rank_ == 0 ? 1 : 0; peer < (rank_ == 0 ? size : 1); ++peer) {
    links_.emplace_back();
    links_.back().peer = peer;
  }
  state_ = State::Open;
  freed_ = false;
  for (auto& link : links_) post_receive(link);
}

HeartbeatChannel::~HeartbeatChannel() {
  close(std::chrono::milliseconds(0), 0, 0);
}

void HeartbeatChannel::exchange_host_names(int size) {
  // Messages about a missing rank name its host too.
  constexpr int kHostChars = 64;
  std::vector<char> mine(kHostChars, '\0'), all(static_cast<size_t>(kHostChars) * size, '\0');
  gethostname(mine.data(), kHostChars - 1);
  mpi_check(MPI_Allgather(mine.data(), kHostChars, MPI_CHAR, all.data(), kHostChars, MPI_CHAR, comm_),
            "MPI_Allgather(host names)", rank_);
  std::vector<std::string> hosts;
  for (int r = 0; r < size; ++r) hosts.emplace_back(all.data() + static_cast<size_t>(r) * kHostChars);
  liveness_->setHosts(std::move(hosts));
}

void HeartbeatChannel::post_receive(Link& link) {
  mpi_check(MPI_Irecv(&link.in, sizeof(HeartbeatMessage), MPI_BYTE, link.peer, kHeartbeatTag, comm_, &link.recv),
            "MPI_Irecv(heartbeat)", rank_);
}

void HeartbeatChannel::read_arrivals(SteadyClock::time_point now) {
  for (auto& link : links_) {
    for (int i = 0; i < kMaxReadsPerLink && !link.peer_left; ++i) {
      int done = 0;
      mpi_check(MPI_Test(&link.recv, &done, MPI_STATUS_IGNORE), "MPI_Test(heartbeat receive)", rank_);
      if (!done) break;
      liveness_->heard(link.peer, link.in, now);
      if (link.in.flags & kHeartbeatGoodbye)
        link.peer_left = true;  // its last message: no receive to post
      else
        post_receive(link);
    }
  }
}

void HeartbeatChannel::send_due(uint64_t issued, uint64_t completed) {
  for (auto& link : links_) {
    if (link.peer_left) continue;  // it reads only until this rank's goodbye now
    int left = 1;
    if (link.send != MPI_REQUEST_NULL)
      mpi_check(MPI_Test(&link.send, &left, MPI_STATUS_IGNORE), "MPI_Test(heartbeat send)", rank_);
    if (!left) continue;  // the peer is not reading: do not pile up sends
    link.out = liveness_->outgoing(link.peer, issued, completed);
    mpi_check(MPI_Isend(&link.out, sizeof(HeartbeatMessage), MPI_BYTE, link.peer, kHeartbeatTag, comm_, &link.send),
              "MPI_Isend(heartbeat)", rank_);
  }
}

void HeartbeatChannel::service(SteadyClock::time_point now, uint64_t issued, uint64_t completed) noexcept {
  if (state_ != State::Open) return;
  try {
    read_arrivals(now);
    liveness_->serviced(now, issued, completed);
    if (now >= next_send_) {
      send_due(issued, completed);
      next_send_ = now + interval_;
    }
    // Reading twice per interval keeps the measured silence of a live peer under ~1.5 intervals.
    next_due_ = std::min(next_send_, now + interval_ / 2);
  } catch (const std::exception& e) {
    disable(e.what());
  }
}

void HeartbeatChannel::sendNow(uint64_t issued, uint64_t completed) noexcept {
  if (state_ != State::Open) return;
  try {
    for (auto& link : links_) {
      if (link.send != MPI_REQUEST_NULL)
        mpi_check(MPI_Wait(&link.send, MPI_STATUS_IGNORE), "MPI_Wait(heartbeat send)", rank_);
      link.out = liveness_->outgoing(link.peer, issued, completed);
      mpi_check(MPI_Send(&link.out, sizeof(HeartbeatMessage), MPI_BYTE, link.peer, kHeartbeatTag, comm_),
                "MPI_Send(heartbeat)", rank_);
    }
  } catch (const std::exception& e) {
    disable(e.what());
  }
}

void HeartbeatChannel::disable(const std::string& why) noexcept {
  std::fprintf(stderr, "mpibert: rank %d: heartbeats stopped: %s\n", rank_, why.c_str());
  state_ = State::Disabled;
  next_due_ = SteadyClock::time_point::max();
}

void HeartbeatChannel::say_goodbye(uint64_t issued, uint64_t completed) {
  for (auto& link : links_) {
    link.farewell = liveness_->outgoing(link.peer, issued, completed);
    link.farewell.flags |= kHeartbeatGoodbye;
    // Posted after any heartbeat still on its way, so it arrives after it.
    mpi_check(
        MPI_Isend(&link.farewell, sizeof(HeartbeatMessage), MPI_BYTE, link.peer, kHeartbeatTag, comm_, &link.goodbye),
        "MPI_Isend(heartbeat goodbye)", rank_);
  }
}

bool HeartbeatChannel::await_goodbyes(std::chrono::milliseconds wait_limit) {
  const auto start = SteadyClock::now();
  Backoff backoff(0, start);
  for (;;) {
    const auto tested = SteadyClock::now();
    read_arrivals(tested);
    if (std::all_of(links_.begin(), links_.end(), [](const Link& l) { return l.peer_left; })) return true;
    const auto now = SteadyClock::now();
    if (now - start >= wait_limit) return false;
    const auto pause = backoff.pauseAfterTest(tested, now, true);
    if (pause > SteadyClock::duration::zero()) std::this_thread::sleep_for(pause);
  }
}

void HeartbeatChannel::release_requests() noexcept {
  for (auto& link : links_) {
    if (link.recv != MPI_REQUEST_NULL) {
      MPI_Cancel(&link.recv);
      MPI_Wait(&link.recv, MPI_STATUS_IGNORE);
    }
    // Sends still on their way are small and buffered: MPI finishes them on its own.
    if (link.send != MPI_REQUEST_NULL) MPI_Request_free(&link.send);
    if (link.goodbye != MPI_REQUEST_NULL) MPI_Request_free(&link.goodbye);
  }
}

bool HeartbeatChannel::close(std::chrono::milliseconds wait_limit, uint64_t issued, uint64_t completed) noexcept {
  if (state_ == State::Closed) return freed_;
  const bool was_open = state_ == State::Open;
  state_ = State::Closed;
  next_due_ = SteadyClock::time_point::max();
  if (mpi_finalized()) return freed_;
  bool everyone_left = false;
  if (was_open) {
    try {
      say_goodbye(issued, completed);
      everyone_left = await_goodbyes(wait_limit);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mpibert: rank %d: closing the heartbeat channel: %s\n", rank_, e.what());
    }
  }
  release_requests();
  if (everyone_left) {
    MPI_Comm_free(&comm_);
    freed_ = true;
  }
  // Otherwise comm_ stays allocated (forgotten): a message still to come cannot reach a later communicator.
  return freed_;
}

}  // namespace mpibert
