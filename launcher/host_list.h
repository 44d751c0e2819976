#pragma once
// Where ranks may run: hosts with slot counts, from an Open MPI hostfile, a --hosts list or a Slurm
// allocation. Pure parsing (text in, hosts out) so that every format is unit-tested.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mpibert::launcher {

struct HostSlots {
  std::string name;
  std::optional<int> slots;  // unset: not given (Open MPI then counts the host's cores)
  std::optional<int> cores;  // known cores of that host (Slurm tells us), else unset
};

// Open MPI hostfile text: `host [slots=K] [max_slots=M]` per line, `#` comments, blank lines.
// `source` names the file in errors. Throws UsageError (with file and line) on bad lines, bad
// numbers, unknown keys and hosts listed twice.
std::vector<HostSlots> parse_hostfile(const std::string& text, const std::string& source);

// --hosts "a:4,b:4" (a host without :K has its slots unset). Same validation as the hostfile.
std::vector<HostSlots> parse_hosts_option(const std::string& text);

// Slurm's compressed host list ("node[01-03,7],gpu-a[1-2]-x,login") in order. Throws UsageError.
std::vector<std::string> expand_slurm_nodelist(const std::string& text);

// Slurm's per-node counts ("2(x3),1" -> 2,2,2,1). Throws UsageError naming `variable`.
std::vector<int> expand_slurm_counts(const std::string& text, const std::string& variable);

// The allocation described by SLURM_* variables, or nothing when SLURM_JOB_ID is unset.
// Slots per node come from SLURM_TASKS_PER_NODE (else SLURM_JOB_CPUS_PER_NODE), cores per node from
// SLURM_JOB_CPUS_PER_NODE.
std::optional<std::vector<HostSlots>> hosts_from_slurm(const std::map<std::string, std::string>& vars);

}  // namespace mpibert::launcher
