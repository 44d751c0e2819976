#include "launcher/host_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/usage_error_of.h"

using mpibert::UsageError;
using namespace mpibert::launcher;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

using mpibert::testing::usage_error_of;

}  // namespace

TEST(Hostfile, ParsesHostsSlotsCommentsAndBlankLines) {
  auto hosts = parse_hostfile("# cluster\nnode1 slots=4\n\n  node2   slots=8 max_slots=8  # big one\nnode3\n", "h");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].name, "node1");
  EXPECT_EQ(hosts[0].slots, 4);
  EXPECT_EQ(hosts[1].name, "node2");
  EXPECT_EQ(hosts[1].slots, 8);
  EXPECT_EQ(hosts[2].name, "node3");
  EXPECT_FALSE(hosts[2].slots.has_value());  // Open MPI counts its cores
}

TEST(Hostfile, DuplicateHostIsAnErrorNamingBothLines) {
  auto msg = usage_error_of([] { parse_hostfile("a slots=2\nb slots=2\na slots=1\n", "hosts.txt"); });
  EXPECT_THAT(msg, HasSubstr("hosts.txt line 3: host 'a' is listed twice (first at hosts.txt line 1)"));
}

TEST(Hostfile, BadLinesAreErrorsWithTheirLineNumber) {
  EXPECT_THAT(usage_error_of([] { parse_hostfile("a slots=2\nb slots=two\n", "h"); }),
              HasSubstr("h line 2: slots: 'two' is not a valid count"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("a slots=0\n", "h"); }), HasSubstr("h line 1"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("a 4\n", "h"); }), HasSubstr("h line 1: unexpected '4'"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("a cores=4\n", "h"); }), HasSubstr("unknown key 'cores'"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("slots=4\n", "h"); }), HasSubstr("must start with the host"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("a slots=4 max_slots=2\n", "h"); }), HasSubstr("exceeds max_slots"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("a/b slots=1\n", "h"); }), HasSubstr("not a valid host name"));
  EXPECT_THAT(usage_error_of([] { parse_hostfile("# nothing\n\n", "h"); }), HasSubstr("h: no hosts"));
}

TEST(HostsOption, ParsesHostsWithSlots) {
  auto hosts = parse_hosts_option("a:4, b:2,c");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].name, "a");
  EXPECT_EQ(hosts[0].slots, 4);
  EXPECT_EQ(hosts[1].name, "b");
  EXPECT_EQ(hosts[1].slots, 2);
  EXPECT_EQ(hosts[2].name, "c");
  EXPECT_FALSE(hosts[2].slots.has_value());
}

TEST(HostsOption, RejectsDuplicatesAndBadCounts) {
  EXPECT_THAT(usage_error_of([] { parse_hosts_option("a:4,a:4"); }), HasSubstr("listed twice"));
  EXPECT_THAT(usage_error_of([] { parse_hosts_option("a:x"); }), HasSubstr("'x' is not a valid count"));
  EXPECT_THAT(usage_error_of([] { parse_hosts_option("a/b:1"); }), HasSubstr("not a valid host name"));
  EXPECT_THAT(usage_error_of([] { parse_hosts_option("a:0"); }), HasSubstr("not a valid count"));
  EXPECT_THAT(usage_error_of([] { parse_hosts_option("a:"); }), HasSubstr("missing slot count"));
  EXPECT_THAT(usage_error_of([] { parse_hosts_option("a:1,,b:1"); }), HasSubstr("empty host entry"));
}

TEST(SlurmNodelist, ExpandsRangesListsAndPadding) {
  EXPECT_THAT(expand_slurm_nodelist("node[01-03,7],gpu-a[1-2]-x,login"),
              ElementsAre("node01", "node02", "node03", "node7", "gpu-a1-x", "gpu-a2-x", "login"));
  EXPECT_THAT(expand_slurm_nodelist("r[1-2]n[1-2]"), ElementsAre("r1n1", "r1n2", "r2n1", "r2n2"));
  EXPECT_THAT(expand_slurm_nodelist("single"), ElementsAre("single"));
  EXPECT_THROW(expand_slurm_nodelist("node[1-2"), UsageError);
  EXPECT_THROW(expand_slurm_nodelist("node[3-1]"), UsageError);
}

// Found by fuzzing (tests/fuzz/fuzz_hostfile.cpp): bracket groups multiply, so a short node list expanded
// to billions of names (a hang, then out of memory). The size and the name length are checked first.
TEST(SlurmNodelist, HugeExpansionsAreRefusedBeforeAnyNameIsMade) {
  EXPECT_THAT(usage_error_of([] { expand_slurm_nodelist("n[0-999][0-999][0-999]"); }),
              HasSubstr("expands to more than 100000 nodes"));
  EXPECT_THAT(usage_error_of([] { expand_slurm_nodelist("a[1-60000],b[1-60000]"); }),
              HasSubstr("expands to more than 100000 nodes"));
  const std::string padded = "n[" + std::string(300, '0') + "1-2]";
  EXPECT_THAT(usage_error_of([&] { expand_slurm_nodelist(padded); }), HasSubstr("longer than 255 characters"));
  EXPECT_THAT(usage_error_of([] { expand_slurm_nodelist("n[]"); }), HasSubstr("empty brackets in 'n[]'"));
  EXPECT_EQ(expand_slurm_nodelist("n[1-100000]").size(), 100000u);
  EXPECT_THAT(expand_slurm_nodelist("a[1-2]b[7]c[08-09]"), ElementsAre("a1b7c08", "a1b7c09", "a2b7c08", "a2b7c09"));
}

TEST(SlurmCounts, HugeRepeatsAreRefused) {
  EXPECT_THAT(usage_error_of([] { expand_slurm_counts("1(x100000),1(x100000)", "SLURM_TASKS_PER_NODE"); }),
              HasSubstr("SLURM_TASKS_PER_NODE '1(x100000),1(x100000)': lists more than 100000 nodes"));
}

TEST(SlurmCounts, ExpandsRepeats) {
  EXPECT_THAT(expand_slurm_counts("2(x3),1", "V"), ElementsAre(2, 2, 2, 1));
  EXPECT_THAT(expand_slurm_counts("16", "V"), ElementsAre(16));
  EXPECT_THROW(expand_slurm_counts("2(x3", "V"), UsageError);
}

TEST(SlurmHosts, ComeFromTheAllocationVariables) {
  std::map<std::string, std::string> vars = {{"SLURM_JOB_ID", "42"},
                                             {"SLURM_JOB_NODELIST", "n[1-3]"},
                                             {"SLURM_TASKS_PER_NODE", "2(x2),1"},
                                             {"SLURM_JOB_CPUS_PER_NODE", "16(x3)"}};
  auto hosts = hosts_from_slurm(vars);
  ASSERT_TRUE(hosts.has_value());
  ASSERT_EQ(hosts->size(), 3u);
  EXPECT_EQ((*hosts)[0].name, "n1");
  EXPECT_EQ((*hosts)[0].slots, 2);
  EXPECT_EQ((*hosts)[0].cores, 16);
  EXPECT_EQ((*hosts)[2].slots, 1);
}

TEST(SlurmHosts, SlotsFallBackToCpusAndAbsentOutsideSlurm) {
  EXPECT_FALSE(hosts_from_slurm({{"SLURM_JOB_NODELIST", "n1"}}).has_value());
  auto hosts = hosts_from_slurm({{"SLURM_JOB_ID", "1"}, {"SLURM_NODELIST", "n1"}, {"SLURM_JOB_CPUS_PER_NODE", "8"}});
  ASSERT_TRUE(hosts.has_value());
  EXPECT_EQ((*hosts)[0].slots, 8);
}

TEST(SlurmHosts, MismatchedCountsAreAnError) {
  auto msg = usage_error_of([] {
    hosts_from_slurm({{"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "n[1-2]"}, {"SLURM_TASKS_PER_NODE", "1(x3)"}});
  });
  EXPECT_THAT(msg, HasSubstr("SLURM_TASKS_PER_NODE lists 3 nodes but SLURM_JOB_NODELIST 'n[1-2]' has 2"));
}
