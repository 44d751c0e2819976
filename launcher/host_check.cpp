#include "launcher/host_check.h"

#include <netdb.h>
#include <sys/socket.h>

#include "common/error.h"

namespace mpibert::launcher {

std::string resolve_with_getaddrinfo(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc == 0) {
    freeaddrinfo(found);
    return "";
  }
  return gai_strerror(rc);
}

void check_hosts_resolve(const LaunchPlan& plan, const HostResolver& resolve) {
  if (plan.direct) return;
  for (const auto& p : plan.placement) {
    if (is_launch_host(p.name, plan.launch_host)) continue;
    const std::string why = resolve(p.name);
    if (why.empty()) continue;
    throw UsageError("host " + p.name + " cannot be resolved (" + why + "); it is in " + plan.host_source +
                     ", and every host that gets ranks must be known by that name to this machine (DNS or "
                     "/etc/hosts)");
  }
}

}  // namespace mpibert::launcher
