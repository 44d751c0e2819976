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
  caller_polling_->engine = this;
  register_before_finalize(this);
  thread_ = std::thread([this] { loop(); });
}

ProgressEngine::~ProgressEngine() {
  unregister_before_finalize(this);
  stopBeforeFinalize();
}

std::shared_ptr<MpiWork> ProgressEngine::make_work_locked(std::string description, bool fast) {
  if (stop_)
    throw CollectiveError(description + " on rank " + std::to_string(rank_) +
                          ": the backend has been shut down (MPI is finalizing)");
  return std::make_shared<MpiWork>(std::move(description), ++issued_, rank_, liveness_, gave_up_,
                                   fast ? caller_polling_ : nullptr);
}

WorkPtr ProgressEngine::enqueue(std::string description, Op op) {
  std::shared_ptr<MpiWork> work;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work = make_work_locked(std::move(description), false);
    queue_.push_back({std::move(op), work, SteadyClock::now()});
  }
  cv_.notify_all();
  return work;
}

WorkPtr ProgressEngine::enqueue(std::string description, Call call) {
  std::unique_lock<std::mutex> lock(mutex_);
  // The fast path only while no earlier op could still start an MPI call: nothing queued, none running,
  // none in the slot. A paused engine moves nothing (the test hook), so its ops queue.
  if (queue_.empty() && !running_ && !fast_ && !pause_requested_) {
    auto work = make_work_locked(std::move(description), true);
    // Started under mutex_: an op issued after this one, by any thread, is queued or started after it.
    const bool started = start_fast_locked(work, call);
    const bool wake = started && !watching_;
    lock.unlock();
    // The progress thread polls the op if no wait claims it first (nobody may wait for a while: a
    // gradient bucket's all-reduce must move while backward goes on); see idle() for when it need not be
    // woken for that.
    if (wake) cv_.notify_all();
    return work;
  }
  auto work = make_work_locked(std::move(description), false);
  Op op = [this, what = work->description(), call = std::move(call)] {
    run(what, call.bytes, call.start);
    if (call.finish) call.finish();
  };
  queue_.push_back({std::move(op), work, SteadyClock::now()});
  lock.unlock();
  cv_.notify_all();
  return work;
}

// Returns whether the op is in the slot; an op whose start failed is completed with the error instead,
// as the progress thread would have.
bool ProgressEngine::start_fast_locked(const std::shared_ptr<MpiWork>& work, Call& call) {
  const auto now = SteadyClock::now();
  auto fast = std::make_unique<FastOp>(
      FastOp{work, std::move(call.finish), MPI_REQUEST_NULL, now, Backoff(call.bytes, now), FastOp::Poller::None});
  try {
    mpi_check(call.start(&fast->request), work->description(), rank_);
  } catch (const CollectiveError&) {
    op_failed_ = true;
    record(*work, now, now, true);
    ++completed_;
    work->complete(std::current_exception());
    return false;
  }
  fast_ = std::move(fast);
  last_fast_start_ = now;
  ++fast_path_starts_;
  return true;
}

void ProgressEngine::pollFromCaller(MpiWork& work, SteadyClock::time_point until) {
  FastOp* op = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!fast_ || fast_->work.get() != &work || fast_->poller != FastOp::Poller::None || pause_requested_ || stop_)
      return;
    fast_->poller = FastOp::Poller::Caller;
    op = fast_.get();
  }
  int done = 0;
  try {
    for (;;) {
      const auto tested = SteadyClock::now();
      mpi_check(MPI_Test(&op->request, &done, MPI_STATUS_IGNORE), work.description(), rank_);
      if (done) break;
      const auto now = SteadyClock::now();
      // Sleeping between tests, pausing, abandoning and timing out are the progress thread's and the
      // wait's: the op goes back to them as soon as one is due.
      if (now >= until || pause_requested_ ||
          op->backoff.pauseAfterTest(tested, now, work.waitedPatiently()) > SteadyClock::duration::zero())
        break;
    }
  } catch (const CollectiveError&) {
    op_failed_ = true;
    return finish_fast_op(*op, std::current_exception());
  }
  if (done) return finish_fast_op(*op, nullptr);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fast_->poller = FastOp::Poller::None;
  }
  cv_.notify_all();
}

// Progress thread, having claimed the slot: polls the op as run() polls any other.
void ProgressEngine::poll_fast_op(FastOp& op) {
  current_ = op.work;
  std::exception_ptr error;
  try {
    wait_request(op.request, op.backoff, op.work->description());
  } catch (const CollectiveError&) {
    op_failed_ = true;
    error = std::current_exception();
  }
  current_.reset();
  finish_fast_op(op, error);
}

// The poller that saw the op complete (or fail): finishes it (avg's division, before a queued op may read
// the buffer), then completes it.
void ProgressEngine::finish_fast_op(FastOp& op, std::exception_ptr error) {
  if (!error && op.finish) {
    try {
      op.finish();
    } catch (...) {
      error = std::current_exception();
    }
  }
  const std::shared_ptr<MpiWork> work = op.work;  // emptying the slot destroys op
  complete(*work, op.started, op.started, error, true);
}

void ProgressEngine::run(const std::string& what, size_t bytes, const std::function<int(MPI_Request*)>& start) {
  MPI_Request request = MPI_REQUEST_NULL;
  try {
    mpi_check(start(&request), what, rank_);
    Backoff backoff(bytes, SteadyClock::now());
    wait_request(request, backoff, what);
  } catch (const CollectiveError&) {
    op_failed_ = true;
    throw;
  }
}

void ProgressEngine::wait_request(MPI_Request& request, Backoff& backoff, const std::string& what) {
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
  // A caller polling the fast path's op sees the request at its next test and gives the op back.
  cv_.wait(lock, [&] { return !fast_ || fast_->poller != FastOp::Poller::Caller || !pause_requested_; });
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
    if (fast_ && fast_->poller == FastOp::Poller::None) {  // started by a caller that does not poll it
      fast_->poller = FastOp::Poller::Progress;
      FastOp& op = *fast_;  // stays put until its poller empties the slot
      lock.unlock();
      poll_fast_op(op);
      lock.lock();
      continue;
    }
    if (!fast_ && !queue_.empty()) {  // queued ops wait for the fast path's op: one op at a time
      Task task = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
      lock.unlock();
      run_task(task);
      lock.lock();
      continue;
    }
    // Idle, or a caller polls the fast path's op (it hands it back by notifying): heartbeats meanwhile.
    if (stop_ && !fast_) return;
    idle(lock);
  }
}

void ProgressEngine::idle(std::unique_lock<std::mutex>& lock) {
  const auto now = SteadyClock::now();
  const auto due = heartbeat_->nextDue();
  if (now >= due) {
    watching_ = false;
    lock.unlock();
    service_heartbeats(now);
    lock.lock();
    return;
  }
  // Waking this thread costs more than a small op (a futex wake and two context switches, ~5 us on a
  // loaded 2-core VM), so callers on the fast path do not wake it for each op: while the fast path is in
  // use it looks at the slot every kWatch by itself, and so polls an op that nobody waits on within
  // kWatch; once the fast path is unused for kWatchSpan it sleeps until the next heartbeat again, and the
  // next op on the fast path wakes it.
  watching_ = now - last_fast_start_ < kWatchSpan;
  const auto wake = watching_ ? std::min(due, now + kWatch) : due;
  if (wake == SteadyClock::time_point::max())
    cv_.wait(lock);
  else
    cv_.wait_until(lock, wake);
  watching_ = false;
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
  complete(*task.work, task.enqueued, started, error, false);
}

// Marks the engine free of the op (its slot emptied, or the thread no longer running it) and completes
// its Work in one critical section: a thread that the Work wakes finds the engine idle (the fast path
// open), and no later op can complete before this Work.
void ProgressEngine::complete(MpiWork& work, SteadyClock::time_point enqueued, SteadyClock::time_point started,
                              std::exception_ptr error, bool fast) {
  record(work, enqueued, started, error != nullptr);
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (fast) {
      fast_.reset();
      wake = !queue_.empty() || stop_ || pause_requested_;  // the progress thread may be waiting for the slot
    } else {
      running_ = false;
    }
    ++completed_;
    work.complete(error);
  }
  if (wake) cv_.notify_all();
}

void ProgressEngine::record(const MpiWork& work, SteadyClock::time_point enqueued, SteadyClock::time_point started,
                            bool failed) {
  if (!report::timeline_active()) return;
  const double queued_us = std::chrono::duration<double, std::micro>(started - enqueued).count();
  report::timeline_event(report::Track::Collectives, work.description(), started, SteadyClock::now(),
                         "{\"queued_us\": " + std::to_string(queued_us) + (failed ? ", \"failed\": true}" : "}"));
}

void ProgressEngine::stopBeforeFinalize() {
  std::lock_guard<std::mutex> guard(shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    // Waits for a wait that polls the fast path's op to give it back; no wait polls from now on.
    std::lock_guard<std::mutex> lock(caller_polling_->mutex);
    caller_polling_->engine = nullptr;
  }
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
