#pragma once
// Internal to common/comm: how often the progress thread tests an op in flight. It polls without pause
// while the op can be expected to be moving data (a short floor plus the time its bytes take at a
// conservative 1 GB/s), then sleeps between tests for 1/8 of the time waited so far, from 10 us up
// to 1 ms: a rank waiting for a peer costs no core and notices completion at most ~12% late. A test
// that itself took long did real work (copied fragments, ran a reduction step): polling goes back
// to a short busy phase and short pauses, since MPI only moves a non-blocking op forward inside such calls.
#include <algorithm>
#include <chrono>
#include <cstddef>

namespace mpibert {

class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::microseconds kBusyFloor{50};
  static constexpr std::chrono::milliseconds kBusyCeiling{200};
  static constexpr std::chrono::microseconds kMinPause{10};
  static constexpr std::chrono::microseconds kMaxPause{1000};
  static constexpr std::chrono::microseconds kWorkingTest{4};

  Backoff(size_t bytes, Clock::time_point start) : start_(start) {
    const auto transfer = std::chrono::nanoseconds(static_cast<long long>(bytes));  // 1 byte/ns = 1 GB/s
    busy_ = std::min<Clock::duration>(kBusyFloor + transfer, kBusyCeiling);
  }

  // Called after each unsuccessful test that ran from `tested` to `now`; returns how long to sleep.
  Clock::duration pauseAfterTest(Clock::time_point tested, Clock::time_point now) {
    if (now - tested > kWorkingTest) {  // start over: short busy phase, then short pauses again
      start_ = now;
      busy_ = std::min<Clock::duration>(busy_, kBusyFloor);
    }
    if (now - start_ < busy_) return Clock::duration::zero();
    const Clock::duration pause = (now - start_) / 8;
    return std::clamp<Clock::duration>(pause, kMinPause, kMaxPause);
  }

 private:
  Clock::time_point start_;
  Clock::duration busy_{};
};

}  // namespace mpibert
