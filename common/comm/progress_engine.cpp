#include "common/comm/progress_engine.h"

#include <sys/prctl.h>

#include "common/comm/backoff.h"
#include "common/comm/mpi_mapping.h"
#include "common/report/timeline.h"

namespace mpibert {

ProgressEngine::ProgressEngine(MPI_Comm parent, std::chrono::milliseconds heartbeat_interval,
                               std::chrono::milliseconds close_wait)
    : close_wait_(close_wait) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) throw std::runtime_error("HcclLike: MPI is not initialised (create an MpiEnvironment first)");
  int provided = 0;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_MULTIPLE)
    throw std::runtime_error(
        "HcclLike: MPI was initialised without MPI_THREAD_MULTIPLE, which the progress thread needs");
  mpi_check(MPI_Comm_rank(parent, &rank_), "MPI_Comm_rank", -1);
  mpi_check(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup", rank_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", rank_);
  const auto start = SteadyClock::now();
  liveness_ = std::make_shared<PeerLiveness>(rank_, size_, start);
  heartbeat_ = std::make_unique<HeartbeatChannel>(parent, heartbeat_interval, liveness_);
  register_before_finalize(this);
  thread_ = std::thread([this] { loop(); });
}

ProgressEngine::~ProgressEngine() {
  unregister_before_finalize(this);
  stopBeforeFinalize();
}

WorkPtr ProgressEngine::enqueue(std::string description, Op op) {
  std::shared_ptr<MpiWork> work;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_)
      throw CollectiveError(description + " on rank " + std::to_string(rank_) +
                            ": the backend has been shut down (MPI is finalizing)");
    work = std::make_shared<MpiWork>(std::move(description), issued_.load() + 1, rank_, liveness_, gave_up_);
    queue_.push_back({std::move(op), work, SteadyClock::now()});
    ++issued_;
  }
  cv_.notify_all();
  return work;
}

void ProgressEngine::run(const std::string& what, size_t bytes, const std::function<int(MPI_Request*)>& start) {
  MPI_Request request = MPI_REQUEST_NULL;
  try {
    mpi_check(start(&request), what, rank_);
    wait_request(request, bytes, what);
  } catch (const CollectiveError&) {
    op_failed_ = true;
    throw;
  }
}

void ProgressEngine::wait_request(MPI_Request& request, size_t bytes, const std::string& what) {
  Backoff backoff(bytes, SteadyClock::now());
  for (;;) {
    const auto tested = SteadyClock::now();
    int done = 0;
    mpi_check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what, rank_);
    if (done) return;
    const auto now = SteadyClock::now();
    if (now >= heartbeat_->nextDue()) service_heartbeats(now);
    if (pause_requested_) check_pause();
    if (stop_ && gave_up_->load()) {
      abandoned_ = true;  // the request stays in flight: MPI cannot cancel a collective
      throw CollectiveError(what + " on rank " + std::to_string(rank_) +
                            ": abandoned when the backend was destroyed after a timeout");
    }
    const auto pause = backoff.pauseAfterTest(tested, now, current_waited_patiently());
    if (pause > SteadyClock::duration::zero()) std::this_thread::sleep_for(pause);
  }
}

bool ProgressEngine::current_waited_patiently() const {
  return current_ && current_->waitedPatiently();
}

void ProgressEngine::service_heartbeats(SteadyClock::time_point now) {
  heartbeat_->service(now, issued_.load(), completed_.load());
}

void ProgressEngine::check_pause() {
  std::unique_lock<std::mutex> lock(mutex_);
  hold_while_paused(lock);
}

void ProgressEngine::hold_while_paused(std::unique_lock<std::mutex>& lock) {
  if (!pause_requested_) return;
  paused_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return !pause_requested_ || stop_; });
  paused_ = false;
}

void ProgressEngine::pause(bool paused) {
  std::unique_lock<std::mutex> lock(mutex_);
  pause_requested_ = paused;
  cv_.notify_all();
  if (paused) cv_.wait(lock, [&] { return paused_; });
}

void ProgressEngine::sendHeartbeatNow() {
  pause(true);
  heartbeat_->sendNow(issued_.load(), completed_.load());
  pause(false);
}

void ProgressEngine::loop() {
  // Short sleeps of the backoff should last what they say, not the default 50 us of timer slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (pause_requested_ && !stop_) {
      hold_while_paused(lock);
      continue;
    }
    if (!queue_.empty()) {
      Task task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      run_task(task);
      lock.lock();
      continue;
    }
    if (stop_) return;
    const auto due = heartbeat_->nextDue();
    if (due == SteadyClock::time_point::max()) {
      cv_.wait(lock);
    } else if (SteadyClock::now() >= due) {
      lock.unlock();
      service_heartbeats(SteadyClock::now());
      lock.lock();
    } else {
      cv_.wait_until(lock, due);
    }
  }
}

void ProgressEngine::run_task(Task& task) {
  const auto started = SteadyClock::now();
  std::exception_ptr error;
  try {
    if (abandoned_)
      throw CollectiveError(task.work->description() + " on rank " + std::to_string(rank_) +
                            ": not run, an earlier collective was abandoned after a timeout");
    current_ = task.work;
    task.op();
  } catch (...) {
    error = std::current_exception();
  }
  current_.reset();
  if (report::timeline_active()) {
    const double queued_us = std::chrono::duration<double, std::micro>(started - task.enqueued).count();
    report::timeline_event(report::Track::Collectives, task.work->description(), started, SteadyClock::now(),
                           "{\"queued_us\": " + std::to_string(queued_us) + (error ? ", \"failed\": true}" : "}"));
  }
  ++completed_;
  task.work->complete(error);
}

void ProgressEngine::stopBeforeFinalize() {
  std::lock_guard<std::mutex> guard(shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // After an abandoned op the job is expected to abort: no peer is waited for.
  heartbeat_->close(abandoned_ ? std::chrono::milliseconds(0) : close_wait_, issued_.load(), completed_.load());
  heartbeat_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && !abandoned_ && !op_failed_) MPI_Comm_free(&comm_);
}

}  // namespace mpibert
