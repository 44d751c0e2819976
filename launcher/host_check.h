#pragma once
// Before mpirun starts: every host that gets ranks must resolve from this machine. Otherwise Open MPI
// fails after its launch agent has tried, with some 25 lines of ORTE text; gaudi_spawn says it in one line
// naming the host (a usage error, exit 2).
#include <functional>
#include <string>

#include "launcher/launch_plan.h"

namespace mpibert::launcher {

// "" when `host` resolves, else why not (getaddrinfo's words).
using HostResolver = std::function<std::string(const std::string& host)>;
std::string resolve_with_getaddrinfo(const std::string& host);

// Throws UsageError for the first host of the plan (in rank order) that does not resolve. This machine
// (plan.launch_host, localhost) is not looked up: mpirun starts its ranks without its name. A direct run
// (one rank, no mpirun) is not checked.
void check_hosts_resolve(const LaunchPlan& plan, const HostResolver& resolve);

}  // namespace mpibert::launcher
