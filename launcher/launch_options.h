#pragma once
// gaudi_spawn's command line: launcher options first, then PROGRAM and its arguments, which are passed
// through untouched. Names follow Hugging Face's gaudi_spawn.py (--world_size, --use_mpi, --hostfile).
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mpibert::launcher {

enum class BindTo { Core, Socket, None };
const char* bind_to_name(BindTo bind);

// One --env item: KEY=VALUE sets the value; a bare KEY forwards the launcher's own value.
struct EnvItem {
  std::string key;
  std::optional<std::string> value;
};

struct LaunchOptions {
  std::optional<int> world_size;  // unset: slots of the hostfile/hosts/Slurm allocation, else 1
  bool use_mpi = false;           // accepted for compatibility; MPI is always the transport
  std::string hostfile;           // Open MPI format: `host [slots=K] [max_slots=M]`
  std::string hosts;              // "a:4,b:4"
  BindTo bind_to = BindTo::Core;
  std::optional<int> threads_per_rank;   // unset: cores per host / ranks per host
  std::vector<EnvItem> env;              // in command-line order; the last one for a key wins
  std::string log_dir;                   // each rank's console output -> DIR/rank-N.log
  double timeout_s = 0;                  // whole job; 0 = none
  std::string mpirun;                    // path of mpirun ("" = search PATH)
  std::vector<std::string> mpirun_args;  // appended to mpirun's options (split like a shell, no expansion)
  bool dry_run = false;
  bool help = false;
  std::vector<std::string> notes;  // things accepted but ignored, said once on stderr
  std::string program;
  std::vector<std::string> program_args;
};

// Parses argv[1..] (without the program name). Throws UsageError with one clear line: unknown options
// name the nearest known one, values are checked (ranges, choices), PROGRAM must be present unless
// --help was given.
LaunchOptions parse_launch_options(const std::vector<std::string>& args);

// Splits --mpirun_args text into words: whitespace separates, '...' and "..." quote, backslash escapes.
// No variable or glob expansion (nothing runs through a shell). Throws UsageError on an open quote.
std::vector<std::string> split_words(const std::string& text);

std::string launch_usage();

}  // namespace mpibert::launcher
