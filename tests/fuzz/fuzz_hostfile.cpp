// Fuzz target: where ranks may run (launcher/host_list.h). Every input is read as an Open MPI hostfile,
// as a --hosts list, as Slurm's compressed node list and per-node counts, and, one KEY=VALUE per line,
// as a Slurm environment. Properties: bad input is a UsageError; accepted hosts have valid, unique
// names and positive slot counts.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "launcher/host_list.h"

namespace {

using namespace mpibert;
using launcher::HostSlots;

void check_hosts(const std::vector<HostSlots>& hosts, const char* parser) {
  std::set<std::string> names;
  for (const auto& h : hosts) {
    if (h.name.empty() || !names.insert(h.name).second)
      fuzz::property_failed(std::string(parser) + " accepted an empty or repeated host name '" + h.name + "'");
    if (h.slots && *h.slots < 1) fuzz::property_failed(std::string(parser) + " accepted slots < 1");
  }
}

std::map<std::string, std::string> environment_of(const std::vector<std::string>& lines) {
  std::map<std::string, std::string> vars;
  for (const auto& line : lines) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return vars;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(fuzz::as_text(data, size));
  std::vector<HostSlots> hosts;
  if (fuzz::accepts_or_usage_error([&] { hosts = launcher::parse_hostfile(text, "fuzz-hostfile"); }))
    check_hosts(hosts, "parse_hostfile");
  if (fuzz::accepts_or_usage_error([&] { hosts = launcher::parse_hosts_option(text); }))
    check_hosts(hosts, "parse_hosts_option");
  fuzz::accepts_or_usage_error([&] { launcher::expand_slurm_nodelist(text); });
  fuzz::accepts_or_usage_error([&] { launcher::expand_slurm_counts(text, "SLURM_TASKS_PER_NODE"); });
  fuzz::accepts_or_usage_error([&] { launcher::hosts_from_slurm(environment_of(fuzz::lines_of(text))); });
  return 0;
}
