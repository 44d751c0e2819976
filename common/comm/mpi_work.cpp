#include "common/comm/mpi_work.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/comm/progress_engine.h"

namespace mpibert {

MpiWork::MpiWork(std::string description, uint64_t seq, int rank, std::shared_ptr<const PeerLiveness> liveness,
                 std::shared_ptr<std::atomic<bool>> gave_up, std::shared_ptr<CallerPolling> caller_polling)
    : description_(std::move(description)),
      seq_(seq),
      rank_(rank),
      liveness_(std::move(liveness)),
      gave_up_(std::move(gave_up)),
      caller_polling_(std::move(caller_polling)) {}

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

void MpiWork::warn_stalled(std::chrono::milliseconds waited) const {
  // As Horovod's stall inspector: long before the timeout, say who is missing.
  std::fprintf(stderr, "mpibert: rank %d: warning: %s (collective #%llu) has waited %.0f s: %s\n", rank_,
               description_.c_str(), static_cast<unsigned long long>(seq_), waited.count() / 1000.0,
               liveness_->missingFor(seq_).c_str());
}

// The fast path: a small op usually completes within the few microseconds this thread polls it, without
// the two thread switches of a hand-off to the progress thread and back. The engine gives the op back to
// its thread before `until` (the deadline), so the wait below still times out when it should.
void MpiWork::poll_here(SteadyClock::time_point until) {
  if (!caller_polling_ || isCompleted()) return;
  std::lock_guard<std::mutex> lock(caller_polling_->mutex);
  if (caller_polling_->engine) caller_polling_->engine->pollFromCaller(*this, until);
}

void MpiWork::wait(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    poll_here(SteadyClock::time_point::max());
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
    rethrow_error_locked();
    return;
  }
  const auto start = SteadyClock::now();
  poll_here(start + timeout);
  std::unique_lock<std::mutex> lock(mutex_);
  const auto stall = liveness_->stallWarning();
  bool warn = stall.count() > 0 && stall < timeout;
  while (!cv_.wait_until(lock, start + (warn ? stall : timeout), [&] { return done_; })) {
    lock.unlock();
    if (warn) {
      warn_stalled(stall);
      warn = false;
      lock.lock();
      continue;
    }
    std::ostringstream os;
    os << description_ << " (collective #" << seq_ << ") did not finish within " << timeout.count() / 1000.0
       << " s on rank " << rank_ << ": " << liveness_->missingFor(seq_)
       << "; a collective cannot be cancelled: the job must abort";
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
