#include "common/comm/mpi_work.h"

#include <algorithm>
#include <sstream>

namespace mpibert {

MpiWork::MpiWork(std::string description, int rank, std::shared_ptr<const PeerLiveness> liveness,
                 std::shared_ptr<std::atomic<bool>> gave_up)
    : description_(std::move(description)), rank_(rank), liveness_(std::move(liveness)), gave_up_(std::move(gave_up)) {}

bool MpiWork::isCompleted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void MpiWork::give_up(const std::string& why) {
  gave_up_->store(true);
  throw CollectiveTimeout(why);
}

void MpiWork::rethrow_error_locked() {
  if (error_) std::rethrow_exception(error_);
}

void MpiWork::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (timeout.count() < 0) {
    cv_.wait(lock, [&] { return done_; });
  } else if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
    std::ostringstream os;
    os << description_ << " did not finish within " << timeout.count() / 1000.0 << " s on rank " << rank_
       << " (another rank may have died or not called it); a collective cannot be cancelled: the job must abort";
    lock.unlock();
    give_up(os.str());
  }
  rethrow_error_locked();
}

void MpiWork::waitAlive(std::chrono::milliseconds silence) {
  // Look at the peers a few times per silence limit; the op's completion wakes the wait at once.
  const auto look =
      std::clamp<std::chrono::milliseconds>(silence / 4, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
  patient_ = true;
  if (silence.count() <= 0) return wait(std::chrono::milliseconds(-1));
  const uint64_t mark = liveness_->waitMark();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!cv_.wait_for(lock, look, [&] { return done_; })) {
    if (auto peer = liveness_->silentFor(silence, mark)) {
      const std::string why = description_ + " on rank " + std::to_string(rank_) +
                              " cannot finish: " + liveness_->describe(*peer, silence) +
                              "; a collective cannot be cancelled: the job must abort";
      lock.unlock();
      give_up(why);
    }
  }
  rethrow_error_locked();
}

void MpiWork::complete(std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    error_ = error;
  }
  cv_.notify_all();
}

}  // namespace mpibert
