#pragma once
// Everything gaudi_spawn reads from the outside world, gathered once by probe_environment() so that
// build_launch_plan() is a pure function of (options, environment) and tests need no real system.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "launcher/cma_probe.h"
#include "launcher/launch_options.h"

namespace mpibert::launcher {

struct Environment {
  int uid = 1000;                      // effective uid (root needs --allow-run-as-root)
  std::string hostname = "localhost";  // the launch host
  int cores_per_host = 1;              // physical cores this process may use (other hosts: assumed equal)
  int open_mpi_major = 0;              // from `mpirun --version`; 0 = not probed or not usable
  std::string mpirun_path;             // absolute path of mpirun
  std::string mpirun_problem;          // why mpirun is unusable (said only when it is needed)
  std::string self_exe;                // absolute path of this gaudi_spawn (runs as the rank wrapper)
  std::string program_path;            // PROGRAM resolved to an absolute path
  std::string cwd;
  std::string temp_dir;                         // where rank output is captured without --log_dir
  std::map<std::string, std::string> vars;      // gaudi_spawn's own environment (SLURM_*, --env KEY values)
  std::string hostfile_text;                    // contents of --hostfile
  bool console_is_tty = false;                  // gaudi_spawn's stderr is a terminal (ranks' output is a pipe)
  std::vector<std::string> network_interfaces;  // this host's interface names (getifaddrs)
  // Whether ranks on this host may use cross-memory attach (cma_probe.h). Probed only when the plan puts
  // every rank on this host and nobody set Open MPI's single-copy mechanism (cma_probe_wanted); else nullopt.
  std::optional<CmaProbeResult> cross_memory_attach;
  // `blas_probe --fit` (next to gaudi_spawn) for ranks on this host alone (blas_fit_wanted): the variables
  // that load OpenBLAS with the core fitting this CPU (none when OpenBLAS's own choice stays), and what it
  // said; nullopt when not run or when it failed (each rank then decides for itself).
  struct BlasFit {
    std::string note;
    std::vector<std::pair<std::string, std::string>> vars;
  };
  std::optional<BlasFit> blas_fit;
};

enum class FileKind { Missing, Directory, NotExecutable, Executable };
using FileProbe = std::function<FileKind(const std::string& path)>;
FileKind probe_file(const std::string& path);

// PROGRAM as given (relative to cwd), then next to gaudi_spawn's own binary, then on PATH (a name with a
// '/' is only taken as given). Returns an absolute path; throws UsageError saying where it looked.
std::string resolve_program(const std::string& program, const std::string& cwd, const std::string& self_dir,
                            const std::string& path_var, const FileProbe& probe);

// Major version from `mpirun --version` output ("mpirun (Open MPI) 4.1.4" -> 4); 0 when it is not Open MPI.
int parse_open_mpi_major(const std::string& version_text);

// Physical cores in this process's CPU affinity set (hyperthreads of one core count once); falls back to
// the number of logical CPUs when the topology is not readable.
int count_usable_cores();

// The names of this host's network interfaces, each once.
std::vector<std::string> list_network_interfaces();

// Reads the real system, and probes cross-memory attach when the plan would use the answer. Program
// resolution and hostfile reading fail here with UsageError; mpirun problems are recorded in mpirun_problem
// and raised by the planner only when mpirun is needed.
Environment probe_environment(const LaunchOptions& options);
// probe_environment without the BLAS core (blas_fit), which needs the plan it helps to build.
Environment probe_process_environment(const LaunchOptions& options);

}  // namespace mpibert::launcher
