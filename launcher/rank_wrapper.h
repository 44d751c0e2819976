#pragma once
// The rank wrapper: under mpirun every rank is `gaudi_spawn --rank_wrapper ... -- PROGRAM ARGS`. It runs
// PROGRAM, copies its output to CAPTURE_DIR/rank-N.log (and to the console for rank 0), forwards
// signals, and records how it ended, so gaudi_spawn can say which rank failed first, on which host, with
// which code, and show its last lines, whatever the Open MPI version. On the launch host the record is
// CAPTURE_DIR/.rank-N.status; on other hosts (whose files gaudi_spawn cannot read, and where nothing
// should be left behind) it is one marked line on stderr, which mpirun brings back (status_record).
#include <map>
#include <string>
#include <vector>

namespace mpibert::launcher {

constexpr const char* kRankWrapperFlag = "--rank_wrapper";

struct RankWrapperArgs {
  std::string capture_dir;
  std::string launch_host;      // files are written on this host; elsewhere only with keep_logs
  bool keep_logs = false;       // the user asked for --log_dir (write logs on every host)
  bool framed_console = false;  // rank 0's console output goes out as frames (see console_frames.h)
  std::string program;
  std::vector<std::string> program_args;
};

// The wrapper's part of the mpirun command line: self_exe --rank_wrapper ... -- PROGRAM ARGS.
std::vector<std::string> rank_wrapper_argv(const std::string& self_exe, const RankWrapperArgs& args);
// Parses the words after --rank_wrapper. Throws UsageError.
RankWrapperArgs parse_rank_wrapper_args(const std::vector<std::string>& args);
// The MPI rank from the variables mpirun sets (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK); -1 if none.
int rank_from_environment(const std::map<std::string, std::string>& vars);

// Runs the rank; returns its exit code (128 + signal when it was killed).
int run_rank_wrapper(const RankWrapperArgs& args);

}  // namespace mpibert::launcher
