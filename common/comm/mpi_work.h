#pragma once
// Internal to common/comm: the Work handle of the MPI backend. The progress thread completes it, or, for
// an op of the engine's fast path, the thread that waits on it and polls it; any thread waits on it
// (condition variable, after that polling).
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>

#include "common/comm/hccl_like.h"
#include "common/comm/peer_liveness.h"

namespace mpibert {

class ProgressEngine;

// How a Work of the engine's fast path (progress_engine.h) reaches its engine from Work::wait: engine is
// cleared, under mutex, when the engine stops, so a Work that outlives its backend never calls into it;
// a wait holds mutex while it polls, so the engine stops only once that poll is over.
struct CallerPolling {
  std::mutex mutex;
  ProgressEngine* engine = nullptr;
};

class MpiWork : public Work {
 public:
  // gave_up is set when a wait throws CollectiveTimeout, so that the backend need not wait for the op
  // (which may never finish) when it is destroyed.
  // seq: the op's number on this rank, in issue order (1-based), as the heartbeats count them.
  // caller_polling: set for an op the fast path started, which wait() may poll itself; else null.
  MpiWork(std::string description, uint64_t seq, int rank, std::shared_ptr<const PeerLiveness> liveness,
          std::shared_ptr<std::atomic<bool>> gave_up, std::shared_ptr<CallerPolling> caller_polling = nullptr);

  bool isCompleted() const override;
  void wait(std::chrono::milliseconds timeout) override;
  void waitAlive(std::chrono::milliseconds silence) override;

  void complete(std::exception_ptr error);
  const std::string& description() const { return description_; }
  // Someone waits on it with waitAlive: the progress thread may poll it gently (backoff.h).
  bool waitedPatiently() const { return patient_.load(std::memory_order_relaxed); }

 private:
  void poll_here(SteadyClock::time_point until);
  [[noreturn]] void give_up(const std::string& why);
  void warn_stalled(std::chrono::milliseconds waited) const;
  void rethrow_error_locked();

  std::string description_;
  uint64_t seq_;
  int rank_;
  std::shared_ptr<const PeerLiveness> liveness_;
  std::shared_ptr<std::atomic<bool>> gave_up_;
  std::shared_ptr<CallerPolling> caller_polling_;
  std::atomic<bool> patient_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace mpibert
