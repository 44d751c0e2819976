#pragma once
// Internal to common/comm: the progress thread of an MPI backend. Ops are queued and run one at a time in
// issue order; an op starts non-blocking MPI calls and waits for each with run(), which tests it with
// backoff (see backoff.h) and services the heartbeat channel between tests, so an op never starves
// heartbeats and a heartbeat never blocks an op. While no op is queued the thread sleeps on a condition
// variable until the next heartbeat is due.
//
// The fast path (docs/collectives.md#the-fast-path): an op that is one non-blocking MPI call (a Call),
// issued while nothing is queued or running, is started by the issuing thread itself, under the queue's
// mutex, so that its start keeps its place in issue order. It then waits in a slot of its own; whoever
// claims the slot first polls it: the thread that waits on its Work (Work::wait) while the backoff is in
// its busy phase and the deadline has not come, else the progress thread, with the same wait_request()
// as any other op. Every MPI call on the ops communicator is thus made by one thread at a time, in issue
// order on every rank; MPI_THREAD_MULTIPLE (checked by the constructor) lets that thread be the caller
// while the progress thread services heartbeats on the other communicator.
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/comm/backoff.h"
#include "common/comm/finalize_hooks.h"
#include "common/comm/heartbeat_channel.h"
#include "common/comm/mpi_work.h"
#include "common/comm/peer_liveness.h"

namespace mpibert {

class ProgressEngine : public StopsBeforeFinalize {
 public:
  using Op = std::function<void()>;  // runs on the progress thread; throws to fail its Work

  // Duplicates `parent` twice (ops, heartbeats): collective over it. close_wait: how long stopping waits
  // for the peers' heartbeat goodbyes (see heartbeat_channel.h).
  ProgressEngine(MPI_Comm parent, std::chrono::milliseconds heartbeat_interval, std::chrono::milliseconds close_wait);
  ~ProgressEngine() override;
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  MPI_Comm comm() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  PeerLiveness& liveness() { return *liveness_; }

  // An op that is one non-blocking MPI call: start returns its MPI code and sets the request; finish (may
  // be empty) runs once the call completed (the division of avg). `bytes` as for run().
  struct Call {
    size_t bytes = 0;
    std::function<int(MPI_Request*)> start;
    std::function<void()> finish;
  };

  // Queues op; its Work completes when op returns (or throws).
  WorkPtr enqueue(std::string description, Op op);
  // As enqueue(), but while nothing is queued or running (and the thread is not paused) the call is
  // started here, on the calling thread, before this returns (the fast path).
  WorkPtr enqueue(std::string description, Call call);
  // Work::wait, on the waiting thread: polls `work` here if it is the fast path's op and nobody polls it
  // yet, until it completes, `until` comes, the backoff would sleep or a pause is requested; then hands it
  // to the progress thread (which services heartbeats meanwhile).
  void pollFromCaller(MpiWork& work, SteadyClock::time_point until);
  // Test hook: how many ops the fast path started.
  uint64_t fastPathStarts() const { return fast_path_starts_.load(); }
  // Progress thread, inside an op: starts a non-blocking call (start returns its MPI code and sets the
  // request) and waits for it. `bytes` (moved by this rank) sizes the busy phase of the backoff.
  void run(const std::string& what, size_t bytes, const std::function<int(MPI_Request*)>& start);

  // Test hooks: see pause_progress_for_testing and send_heartbeat_now_for_testing in mpi_backend.h.
  void pause(bool paused);
  void sendHeartbeatNow();
  // Runs the queued ops to the end (or abandons them if a waiter gave up on one), closes the heartbeat
  // channel and frees the communicators (the ops one only if every op finished cleanly: after a failed
  // or abandoned op, messages may still come to it). Idempotent; the destructor calls it.
  void stopBeforeFinalize() override;

 private:
  struct Task {
    Op op;
    std::shared_ptr<MpiWork> work;
    SteadyClock::time_point enqueued;  // for --profile's timeline: how long it queued
  };
  // The op the fast path started. Only its poller touches request and backoff; only the poller that saw
  // it complete empties the slot.
  struct FastOp {
    enum class Poller { None, Caller, Progress };
    std::shared_ptr<MpiWork> work;
    std::function<void()> finish;
    MPI_Request request = MPI_REQUEST_NULL;
    SteadyClock::time_point started;
    Backoff backoff;
    Poller poller = Poller::None;  // under mutex_
  };
  std::shared_ptr<MpiWork> make_work_locked(std::string description, bool fast);
  bool start_fast_locked(const std::shared_ptr<MpiWork>& work, Call& call);
  void loop();
  void idle(std::unique_lock<std::mutex>& lock);
  void run_task(Task& task);
  void poll_fast_op(FastOp& op);
  void finish_fast_op(FastOp& op, std::exception_ptr error);
  void complete(MpiWork& work, SteadyClock::time_point enqueued, SteadyClock::time_point started,
                std::exception_ptr error, bool fast);
  static void record(const MpiWork& work, SteadyClock::time_point enqueued, SteadyClock::time_point started,
                     bool failed);
  void wait_request(MPI_Request& request, Backoff& backoff, const std::string& what);
  bool current_waited_patiently() const;
  void service_heartbeats(SteadyClock::time_point now);
  void hold_while_paused(std::unique_lock<std::mutex>& lock);
  void check_pause();

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  const std::chrono::milliseconds close_wait_;
  std::shared_ptr<PeerLiveness> liveness_;
  std::unique_ptr<HeartbeatChannel> heartbeat_;
  std::shared_ptr<std::atomic<bool>> gave_up_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<uint64_t> issued_{0}, completed_{0};
  std::atomic<bool> stop_{false}, pause_requested_{false};
  bool paused_ = false;                 // under mutex_: the thread holds still
  bool abandoned_ = false;              // an op was left in flight: comm_ cannot be freed
  std::atomic<bool> op_failed_{false};  // an MPI call of an op failed: comm_ is not freed
  bool running_ = false;                // under mutex_: the thread runs a queued op
  bool shut_down_ = false;              // under shutdown_mutex_
  std::mutex shutdown_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::unique_ptr<FastOp> fast_;  // under mutex_: the fast path's op in flight, if any
  // See idle(): how often the sleeping thread looks at the slot while the fast path is in use, and how
  // long after its last op it stops looking.
  static constexpr std::chrono::milliseconds kWatch{1}, kWatchSpan{20};
  SteadyClock::time_point last_fast_start_;  // under mutex_
  bool watching_ = false;                    // under mutex_: the thread sleeps for kWatch at most
  std::atomic<uint64_t> fast_path_starts_{0};
  // Lets the fast path's Works reach this engine from Work::wait until it stops (mpi_work.h).
  std::shared_ptr<CallerPolling> caller_polling_ = std::make_shared<CallerPolling>();
  std::shared_ptr<MpiWork> current_;  // progress thread only: the op being polled or run
  std::thread thread_;
};

}  // namespace mpibert
