#include "common/comm/heartbeat_channel.h"

#include <cstdio>

#include "common/comm/mpi_mapping.h"

namespace mpibert {
namespace {

constexpr int kHeartbeatTag = 7;
constexpr int kMaxReadsPerLink = 64;  // heartbeats queued while this rank was away are read in one go

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
  for (int peer = rank_ == 0 ? 1 : 0; peer < (rank_ == 0 ? size : 1); ++peer) {
    links_.emplace_back();
    links_.back().peer = peer;
  }
  active_ = true;
  for (auto& link : links_) post_receive(link);
}

HeartbeatChannel::~HeartbeatChannel() {
  stop();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
}

void HeartbeatChannel::post_receive(Link& link) {
  mpi_check(MPI_Irecv(&link.in, sizeof(HeartbeatMessage), MPI_BYTE, link.peer, kHeartbeatTag, comm_, &link.recv),
            "MPI_Irecv(heartbeat)", rank_);
}

void HeartbeatChannel::read_arrivals(SteadyClock::time_point now) {
  for (auto& link : links_) {
    for (int i = 0; i < kMaxReadsPerLink; ++i) {
      int done = 0;
      mpi_check(MPI_Test(&link.recv, &done, MPI_STATUS_IGNORE), "MPI_Test(heartbeat receive)", rank_);
      if (!done) break;
      liveness_->heard(link.peer, link.in, now);
      post_receive(link);
    }
  }
}

void HeartbeatChannel::send_due(uint64_t issued, uint64_t completed) {
  for (auto& link : links_) {
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
  if (!active_) return;
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

void HeartbeatChannel::disable(const std::string& why) noexcept {
  std::fprintf(stderr, "mpibert: rank %d: heartbeats stopped: %s\n", rank_, why.c_str());
  stop();
}

void HeartbeatChannel::stop() noexcept {
  if (!active_) return;
  active_ = false;
  next_due_ = SteadyClock::time_point::max();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  for (auto& link : links_) {
    if (link.recv != MPI_REQUEST_NULL) {
      MPI_Cancel(&link.recv);
      MPI_Wait(&link.recv, MPI_STATUS_IGNORE);
    }
    // A heartbeat still on its way is small and buffered: let MPI finish it on its own.
    if (link.send != MPI_REQUEST_NULL) MPI_Request_free(&link.send);
  }
}

}  // namespace mpibert
