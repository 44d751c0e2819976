#pragma once
// Internal to common/comm: how often the progress thread tests an op in flight. MPI moves a non-blocking
// op forward only inside calls such as MPI_Test, so while the op's data is moving the thread must poll
// without pause; while it waits for a peer that has not arrived it should sleep, so that a waiting rank
// costs no core. It cannot tell the two apart, so it polls without pause for a busy phase, then sleeps
// between tests for 1/8 of the time waited so far (completion is noticed at most ~12% late), from 10 us
// up to 1 ms, and up to 10 ms once the wait passes a second.
//
// The busy phase depends on what the waiter expects. An op waited on with Work::waitAlive belongs to a
// phase where one rank may work alone for long: 50 us plus the time its bytes take at 1 GB/s (at most
// 200 ms). Any other op (waited on with wait(), or not yet waited on, as gradient buckets during the
// backward pass) expects its peers soon: 200 ms plus that transfer time, as MPI's blocking calls would
// spin. A test that itself took long did work (copied fragments, ran a reduction step): data that
// begins to flow after a long wait starts the busy phase again, so it flows at full speed.
#include <algorithm>
#include <chrono>
#include <cstddef>

namespace mpibert {

class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kPatientBusy{50};
  static constexpr std::chrono::milliseconds kPatientBusyCeiling{200};
  static constexpr std::chrono::milliseconds kEagerBusy{200};
  static constexpr std::chrono::microseconds kMinPause{10};
  static constexpr std::chrono::microseconds kMaxPause{1000};
  static constexpr std::chrono::seconds kLongWait{1};
  static constexpr std::chrono::milliseconds kMaxLongWaitPause{10};
  // Longer than an idle test takes even with the TCP transport polling its sockets.
  static constexpr std::chrono::microseconds kWorkingTest{50};

  Backoff(size_t bytes, Clock::time_point start)
      : start_(start), transfer_(std::chrono::nanoseconds(static_cast<long long>(bytes))) {}  // 1 byte/ns = 1 GB/s

  // Called after each unsuccessful test that ran from `tested` to `now`; `patient`: the op is waited on
  // with waitAlive. Returns how long to sleep before the next test.
  Clock::duration pauseAfterTest(Clock::time_point tested, Clock::time_point now, bool patient) {
    if (now - tested > kWorkingTest) {  // start over: busy phase (without the transfer time), then pauses
      start_ = now;
      transfer_ = Clock::duration::zero();
    }
    const Clock::duration waited = now - start_;
    const Clock::duration busy = patient ? std::min<Clock::duration>(kPatientBusy + transfer_, kPatientBusyCeiling)
                                         : Clock::duration(kEagerBusy) + transfer_;
    if (waited < busy) return Clock::duration::zero();
    const Clock::duration cap = waited < kLongWait ? Clock::duration(kMaxPause) : Clock::duration(kMaxLongWaitPause);
    return std::clamp<Clock::duration>(waited / 8, kMinPause, cap);
  }

 private:
  Clock::time_point start_;
  Clock::duration transfer_;
};

}  // namespace mpibert
