#pragma once
// The end of a job in gaudi_spawn's words: one line that says what happened (a clean stop, the rank or
// host that failed and why, a timeout) and the exit code. A pure function of what the supervisor saw,
// the ranks' statuses and mpirun's own messages, so that every case is unit-tested and the report never
// contradicts itself (e.g. "no rank reported a failure" under a rank's failure).
#include <string>
#include <utility>
#include <vector>

#include "launcher/launch_plan.h"
#include "launcher/rank_status.h"

namespace mpibert::launcher {

struct JobOutcome {
  bool direct = false;  // one rank, no mpirun
  std::string program;  // the direct run's program (for messages)
  int child_code = 0;   // exit code of mpirun (or the direct program); 128+S for a signal
  int stop_signal = 0;  // SIGINT/SIGTERM/SIGHUP gaudi_spawn got and passed on, 0 = none
  bool timed_out = false;
  double timeout_s = 0;
  bool hard_stopped = false;              // the job had to be stopped hard (or killed)
  std::vector<RankStatus> statuses;       // every rank that reported, any order
  bool rank_output_seen = false;          // rank 0's output arrived (so every daemon had started)
  std::string launch_host;                // where gaudi_spawn and mpirun run
  std::vector<std::string> mpirun_lines;  // mpirun's own messages (the last ones)
  std::string mpirun_log;                 // where all of them are, "" = nowhere
  std::string log_dir;                    // --log_dir, "" = none
  std::vector<HostPlacement> placement;
};

struct JobReport {
  JobReport() = default;
  JobReport(std::vector<std::string> lines_, int exit_code_, bool restartable_ = false, int failed_rank_ = -1,
            std::string failed_host_ = "")
      : lines(std::move(lines_)),
        exit_code(exit_code_),
        restartable(restartable_),
        failed_rank(failed_rank_),
        failed_host(std::move(failed_host_)) {}
  std::vector<std::string> lines;  // each printed as "gaudi_spawn: LINE"
  int exit_code = 0;
  // What an elastic restart (--max_restarts) needs: whether one could help (not for success, a clean stop,
  // a signal, a timeout or bad input), and the rank and host the failure is pinned on (-1 / "": unknown).
  bool restartable = false;
  int failed_rank = -1;
  std::string failed_host;
};

JobReport conclude_job(const JobOutcome& outcome);

// Statuses from the capture dir and from status records, one per rank (the first seen wins).
std::vector<RankStatus> merge_statuses(std::vector<RankStatus> files, const std::vector<RankStatus>& records);

}  // namespace mpibert::launcher
