#pragma once
// Internal to common/comm: the progress thread of an MPI backend. Ops are queued and run one at a time in
// issue order; an op starts non-blocking MPI calls and waits for each with waitFor(), which tests it with
// backoff (see backoff.h) and services the heartbeat channel between tests, so an op never starves
// heartbeats and a heartbeat never blocks an op. While no op is queued the thread sleeps on a condition
// variable until the next heartbeat is due.
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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

  // Queues op; its Work completes when op returns (or throws).
  WorkPtr enqueue(std::string description, Op op);
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
  void loop();
  void run_task(Task& task);
  void wait_request(MPI_Request& request, size_t bytes, const std::string& what);
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
  bool paused_ = false;     // under mutex_: the thread holds still
  bool abandoned_ = false;  // an op was left in flight: comm_ cannot be freed
  bool op_failed_ = false;  // progress thread: an MPI call of an op failed: comm_ is not freed
  bool shut_down_ = false;  // under shutdown_mutex_
  std::mutex shutdown_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::shared_ptr<MpiWork> current_;  // progress thread only: the op being run
  std::thread thread_;
};

}  // namespace mpibert
