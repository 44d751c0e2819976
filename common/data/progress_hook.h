#pragma once
// How a long data function (reading a corpus, training a vocabulary, writing shards, encoding) tells
// its caller how far it is, without deciding how (or whether) that is shown: the caller turns the
// calls into a progress line (worker/prepare_data.cpp) or records them (tests).
//
// The function calls start(total) once, when it knows how much work there is (total <= 0: unknown),
// then report(done) with running counts that only grow; the last report is the work done (the total
// when the work ran to its end). Reports come at a coarse grain (per block, per batch, every N
// steps), always from the thread that called the function.
#include <cstdint>
#include <functional>

namespace mpibert::data {

struct ProgressHook {
  std::function<void(int64_t total)> on_start;
  std::function<void(int64_t done)> on_report;

  void start(int64_t total) const {
    if (on_start) on_start(total);
  }
  void report(int64_t done) const {
    if (on_report) on_report(done);
  }
};

}  // namespace mpibert::data
