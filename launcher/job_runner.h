#pragma once
// Executes a LaunchPlan and supervises the job to its end; returns gaudi_spawn's exit code:
// 0 all ranks succeeded; N the exit code of the rank that failed first (128+S when killed by signal S);
// 124 --timeout; 128+S when gaudi_spawn itself got SIGINT/SIGTERM/SIGHUP (passed on to the job);
// mpirun's own code when it failed without any rank reporting a failure.
#include "launcher/job_report.h"
#include "launcher/launch_plan.h"

namespace mpibert::launcher {

constexpr int kExitTimeout = 124;

int run_launch_plan(const LaunchPlan& plan);

// One line on stderr: "gaudi_spawn: TEXT".
void report(const std::string& text);
// The same, returning the whole report (its lines already printed): what an elastic restart decides on.
JobReport run_job(const LaunchPlan& plan);

}  // namespace mpibert::launcher
