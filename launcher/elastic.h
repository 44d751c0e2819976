#pragma once
// Elastic restarts (gaudi_spawn --max_restarts N [--min_world_size K]): when a job fails in a way a
// restart can help (a rank died, a host was lost; not bad input, a clean stop, a signal or --timeout),
// gaudi_spawn waits a little, drops the host the failure is pinned on (never the launch host, which is
// alive: gaudi_spawn runs there) and starts the job again on the hosts left, up to N times.
//
// The ranks learn their attempt from MPIBERT_RUN_ID, MPIBERT_RESTART_COUNT (0 = the first attempt) and
// MPIBERT_MAX_RESTARTS (torchrun's TORCHELASTIC_RUN_ID / _RESTART_COUNT). run_mlm and
// run_classification then resume from output_dir's latest checkpoint, and train.global_batch_size keeps
// the global batch on fewer ranks. Every restart keeps the first attempt's threads per rank, so that each
// rank computes the same way.
#include <optional>
#include <string>

#include "launcher/environment.h"
#include "launcher/job_report.h"
#include "launcher/launch_options.h"
#include "launcher/launch_plan.h"

namespace mpibert::launcher {

// The options of the next attempt, or why there is none.
struct NextAttempt {
  std::optional<LaunchOptions> options;
  std::string dropped_host;  // "" = the same hosts again
  std::string why_not;       // set when options is empty
};

// Pure: the hosts of `plan` (the attempt that failed) without `failure.failed_host` (kept when it is the
// launch host or unknown), each with the ranks it had; threads per rank fixed to the plan's. No next
// attempt when fewer than --min_world_size ranks would be left.
NextAttempt next_attempt(const LaunchOptions& current, const LaunchPlan& plan, const JobReport& failure);

// Seconds to wait before restart number `restart` (1, 2, ...): 1, 2, 4, ... at most 30.
int restart_backoff_s(int restart);

// Runs the job with --max_restarts (or --error_file); returns gaudi_spawn's exit code (the last attempt's).
int run_elastic(const LaunchOptions& options, const Environment& env);

}  // namespace mpibert::launcher
