#pragma once
// Faults on purpose, for the reliability tests: MPIBERT_FAULT="KIND@STEP[:RANK]" makes rank RANK
// (default 0) misbehave at optimizer step STEP (1-based): kill (SIGKILL itself), hang (SIGSTOP itself: no
// progress, no heartbeats, as a stuck host), nan (its loss, and so its gradients, become NaN) or
// mismatch (it issues a collective the other ranks do not). Unset: no fault. Never set it in production.
// Only the first attempt of an elastic job (gaudi_spawn --max_restarts) gets the fault.
#include <cstdint>
#include <string>

namespace mpibert::train {

struct Fault {
  enum class Kind { None, Kill, Hang, Nan, Mismatch };
  Kind kind = Kind::None;
  int64_t step = 0;
  int rank = 0;
  bool due(int64_t step_1based, int this_rank) const {
    return kind != Kind::None && step == step_1based && rank == this_rank;
  }
};

// Parses MPIBERT_FAULT; a malformed value is a UsageError naming the variable and the valid forms.
Fault fault_from_environment();
Fault parse_fault(const std::string& text);

}  // namespace mpibert::train
