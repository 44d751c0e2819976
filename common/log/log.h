#pragma once
// Rank-aware logging on spdlog: every line carries the rank; rank 0 logs at info, the others at
// warning unless told otherwise; optionally every rank also writes its own file.
#include <spdlog/spdlog.h>

#include <string>

namespace mpibert {

struct LogOptions {
  int rank = 0;
  int world_size = 1;
  std::string level;               // "" = info on rank 0, warning elsewhere; else trace|debug|info|warning|error
  std::string file;                // "" = console only; else this rank's log file (directories are created)
  bool all_ranks_console = false;  // every rank prints at `level` (the default keeps others quiet)
  // Without a file yet: keep the lines for the file of a later init_logging, so a program can check
  // its input before it creates anything in its output directory and still log everything there.
  bool hold_for_file = false;
};

// Replaces spdlog's default logger. Safe to call again (e.g. once the output directory is known).
void init_logging(const LogOptions& options);

// Parses a level name; throws UsageError naming the valid ones.
spdlog::level::level_enum parse_log_level(const std::string& name);

}  // namespace mpibert
