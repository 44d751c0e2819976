#pragma once
// gaudi_spawn's command line: launcher options first, then PROGRAM and its arguments, which are passed
// through untouched. Names follow Hugging Face's gaudi_spawn.py (--world_size, --use_mpi, --hostfile).
// Every option is declared once in launch_options.cpp (launch_schema(): type, default, help, range),
// and parsed, checked and listed in --help by the shared config schema (common/config/schema.h).
#include <optional>
#include <string>
#include <vector>

#include "common/config/schema.h"
#include "launcher/shell_words.h"

namespace mpibert::launcher {

// How ranks are bound to cores. Core, Socket and None are --bind_to's choices; FromMpirunArgs is what a
// plan gets when the user's own --map-by/--bind-to (or similar) in --mpirun_args decide instead.
enum class BindTo { Core, Socket, None, FromMpirunArgs };
const char* bind_to_name(BindTo bind);  // "core", "socket", "none", "mpirun_args"

// One --env item: KEY=VALUE sets the value; a bare KEY forwards the launcher's own value.
struct EnvItem {
  std::string key;
  std::optional<std::string> value;
};
// True for "KEY=VALUE" and "KEY" where KEY is letters, digits and _ (not starting with a digit).
bool valid_env_item(const std::string& text);
EnvItem parse_env_item(const std::string& text);  // expects valid_env_item(text)
std::string env_item_text(const EnvItem& item);   // back to "KEY=VALUE" or "KEY"

// The values of gaudi_spawn's options. Defaults live in the declarations (launch_schema()), not here.
struct LaunchOptions {
  std::optional<int> world_size;         // unset: slots of the hostfile/hosts/Slurm allocation, else 1
  bool use_mpi;                          // accepted for compatibility; MPI is always the transport
  std::string hostfile;                  // Open MPI format: `host [slots=K] [max_slots=M]`
  std::string hosts;                     // "a:4,b:4"
  BindTo bind_to;                        // Core, Socket or None
  std::optional<int> threads_per_rank;   // unset: CPUs per host / ranks per host (see launch_plan.h)
  std::optional<int> cores_per_host;     // every host's cores; unset: counted here, Slurm's, else slots
  std::string launch_agent;              // starts Open MPI's daemon on other hosts ("" = ssh)
  std::optional<int> ssh_port;           // the agent's -p PORT
  std::string network_interface;         // names or CIDRs for Open MPI's TCP traffic ("" = default)
  std::vector<EnvItem> env;              // in command-line order; the last one for a key wins
  std::string log_dir;                   // each rank's console output -> DIR/rank-N.log
  double timeout_s;                      // whole job; 0 = none (--timeout)
  int max_restarts;                      // elastic restarts after a failure (elastic.h); 0 = none
  std::optional<int> min_world_size;     // fewest ranks a restart may run with; unset = 1
  std::string error_file;                // JSON of each failed attempt ("" = LOG_DIR/error.json or none)
  std::string run_id;                    // the elastic job's id ("" = made up at start)
  std::string mpirun;                    // path of mpirun ("" = search PATH)
  std::vector<std::string> mpirun_args;  // appended to mpirun's options (split like a shell, no expansion)
  bool dry_run;
  // Not options of their own: what else the command line held.
  bool help;
  std::vector<std::string> notes;  // things accepted but ignored, said once on stderr
  std::string program;
  std::vector<std::string> program_args;
};

// The declarations of every gaudi_spawn option (for --help, docs and parsing).
const config::Schema<LaunchOptions>& launch_schema();

// Parses argv[1..] (without the program name). Throws UsageError with one clear line: unknown options
// name the nearest known one, values are checked (ranges, choices), PROGRAM must be present unless
// --help was given.
LaunchOptions parse_launch_options(const std::vector<std::string>& args);

std::string launch_usage();

}  // namespace mpibert::launcher
