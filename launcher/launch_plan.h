#pragma once
// The launch plan: the exact argv to run (never a shell string), the variables every rank gets, where
// ranks go, and what the supervisor needs. build_launch_plan() is pure: same inputs, same plan.
#include <string>
#include <utility>
#include <vector>

#include "launcher/environment.h"
#include "launcher/launch_options.h"
#include "launcher/shell_words.h"

namespace mpibert::launcher {

struct HostPlacement {
  std::string name;
  int first_rank = 0;
  int ranks = 0;
  int cores = 0;            // cores on that host (binding and oversubscription)
  bool cores_known = true;  // false: assumed (the launch host's count, at least the host's slots)
  int cpus = 0;             // what the default threads per rank divide: --cores_per_host, Slurm's count or
                            // the host's slots (the same wherever gaudi_spawn runs), else its cores
};

// How ranks on one host copy large messages (Open MPI's btl_vader/btl_sm_single_copy_mechanism).
enum class SingleCopy {
  OpenMpiDefault,  // not gaudi_spawn's to decide: ranks on several hosts (or one rank, no mpirun); no argument
  SetByUser,       // --mpirun_args, --env or an OMPI_MCA_ variable sets it; no argument
  ProbedOk,        // ranks on this host, where cross-memory attach works: Open MPI's default; no argument
  ProbeFailed,     // ranks on this host, where it does not: `none` (copy-in/copy-out)
  NotProbed,       // ranks on this host, no probe answer in the Environment: `none`
  OtherHost,       // every rank on one other host, which cannot be probed from here: `none`
};

struct LaunchPlan {
  bool direct = false;  // one rank: PROGRAM runs as gaudi_spawn's child, no mpirun
  int world_size = 1;
  int threads_per_rank = 1;
  std::string threads_reason;  // "--threads_per_rank" or "4 CPUs / 2 ranks on a"
  // What ranks are bound to: --bind_to unless it cannot fit (then None; always None for a direct run),
  // or FromMpirunArgs when the user's own mapping options in --mpirun_args decide.
  BindTo binding = BindTo::None;
  bool oversubscribed = false;
  std::vector<HostPlacement> placement;  // hosts that get ranks, in rank order
  std::string host_source;               // "local", "hostfile F", "--hosts", "Slurm job N"
  std::vector<std::string> argv;         // the exact command
  // Variables every rank gets on top of gaudi_spawn's environment, in order. For mpirun runs they are
  // passed with -x; forwarded ones (--env KEY) carry gaudi_spawn's current value here.
  std::vector<std::pair<std::string, std::string>> env;
  std::string log_dir;      // absolute; "" = no --log_dir
  std::string capture_dir;  // where ranks write rank-N.log and their exit status: log_dir or a temp dir
  std::string launch_host;
  double timeout_s = 0;
  int open_mpi_major = 0;
  SingleCopy single_copy = SingleCopy::OpenMpiDefault;
  std::string single_copy_note;       // --dry_run's "# shared memory: ..." line, without the prefix; "" = none
  std::string blas_fit_note;          // --dry_run's "# BLAS core: ..." line (env.blas_fit used); "" = none
  std::vector<std::string> warnings;  // said on stderr before starting
};

// Throws UsageError for bad input (hostfile lines, too few slots, conflicting --mpirun_args, --env KEY
// not set) and std::runtime_error when mpirun is needed but unusable.
LaunchPlan build_launch_plan(const LaunchOptions& options, const Environment& env);

// Whether build_launch_plan would ask env.cross_memory_attach: more than one rank, all on this host, and no
// single-copy setting of the user's, and the Environment has no answer yet. False when the plan fails.
bool cma_probe_wanted(const LaunchOptions& options, const Environment& env);
// Whether build_launch_plan would use env.blas_fit: every rank on this host, and no --env OPENBLAS_CORETYPE
// or MPIBERT_BLAS_FIT of the user's; the Environment has no answer yet. False when the plan fails.
bool blas_fit_wanted(const LaunchOptions& options, const Environment& env);

// Whether a host name (a hostfile's, --hosts', Slurm's) is this machine, `hostname`.
bool is_launch_host(const std::string& name, const std::string& hostname);
// Whether two names are one host: equal, or equal up to the first '.' ("node1" and "node1.cluster").
bool same_host(const std::string& a, const std::string& b);
// The host that rank `rank` was placed on; nullptr when no host has it.
const HostPlacement* placement_of_rank(const std::vector<HostPlacement>& placement, int rank);

// One line: "2 ranks on 1 host (vm: ranks 0-1), 1 thread per rank, bound to cores".
std::string describe_plan(const LaunchPlan& plan);
// What --dry_run prints: the summary, the environment added to every rank, the capture dir, the command.
std::string format_dry_run(const LaunchPlan& plan);

}  // namespace mpibert::launcher
