#include "launcher/host_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"

using mpibert::UsageError;
using namespace mpibert::launcher;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

LaunchPlan plan_on(const std::vector<std::string>& hosts, const std::string& source) {
  LaunchPlan plan;
  plan.launch_host = "login1";
  plan.host_source = source;
  int rank = 0;
  for (const auto& h : hosts) plan.placement.push_back({h, rank++, 1, 8, true, 8});
  plan.world_size = rank;
  return plan;
}

// A resolver that knows `known` and records every name it was asked.
HostResolver fake_dns(std::set<std::string> known, std::vector<std::string>& asked) {
  return [known, &asked](const std::string& host) -> std::string {
    asked.push_back(host);
    return known.count(host) ? "" : "Name or service not known";
  };
}

std::string error_of(const LaunchPlan& plan, const HostResolver& resolve) {
  try {
    check_hosts_resolve(plan, resolve);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(HostCheck, AnUnresolvableHostIsNamedInOneLine) {
  std::vector<std::string> asked;
  const auto plan = plan_on({"h1", "h9", "h8"}, "--hosts h1:1,h9:1,h8:1");
  const std::string e = error_of(plan, fake_dns({"h1"}, asked));
  EXPECT_THAT(e, HasSubstr("host h9 cannot be resolved (Name or service not known); it is in --hosts h1:1,h9:1,h8:1"));
  EXPECT_EQ(e.find('\n'), std::string::npos);
  EXPECT_THAT(asked, ElementsAre("h1", "h9"));  // the first bad one is named
}

TEST(HostCheck, ThisMachineAndResolvableHostsPass) {
  std::vector<std::string> asked;
  EXPECT_EQ(error_of(plan_on({"login1", "localhost", "login1.cluster", "gpu02"}, "hostfile h.txt"),
                     fake_dns({"gpu02"}, asked)),
            "(no error)");
  EXPECT_THAT(asked, ElementsAre("gpu02"));
}

TEST(HostCheck, ADirectRunIsNotChecked) {
  std::vector<std::string> asked;
  LaunchPlan plan = plan_on({"nowhere"}, "--hosts nowhere:1");
  plan.direct = true;
  EXPECT_EQ(error_of(plan, fake_dns({}, asked)), "(no error)");
  EXPECT_TRUE(asked.empty());
}

// A numeric address resolves without /etc/hosts or DNS (a minimal root file system may have neither).
TEST(HostCheck, GetaddrinfoResolvesAnAddressAndRejectsAnInvalidName) {
  EXPECT_EQ(resolve_with_getaddrinfo("127.0.0.1"), "");
  EXPECT_NE(resolve_with_getaddrinfo("no-such-host.invalid"), "");  // RFC 6761: .invalid never resolves
}
