// Elastic restarts: which hosts and ranks the next attempt gets, and which failures a restart may help.
#include "launcher/elastic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"

namespace mpibert::launcher {
namespace {

LaunchPlan three_hosts() {
  LaunchPlan plan;
  plan.launch_host = "h1";
  plan.world_size = 4;
  plan.threads_per_rank = 3;
  plan.placement = {{"h1", 0, 2, 8, true, 8}, {"h2.example", 2, 1, 8, true, 8}, {"h3", 3, 1, 8, true, 8}};
  return plan;
}

LaunchOptions from_hostfile() {
  LaunchOptions o = parse_launch_options({"--hostfile", "hosts.txt", "--max_restarts", "2", "run_mlm"});
  return o;
}

JobReport failed_on(int rank, const std::string& host) {
  JobReport r{{"error: ..."}, 137, true, rank, host};
  return r;
}

TEST(Elastic, TheHostOfTheFailedRankIsDroppedWithItsRanks) {
  const NextAttempt next = next_attempt(from_hostfile(), three_hosts(), failed_on(2, "h2"));
  ASSERT_TRUE(next.options);
  EXPECT_EQ(next.dropped_host, "h2.example");  // found by its rank, though the rank reported a short name
  EXPECT_EQ(next.options->hosts, "h1:2,h3:1");
  EXPECT_EQ(next.options->hostfile, "");
  EXPECT_EQ(next.options->world_size, 3);
  EXPECT_EQ(next.options->threads_per_rank, 3);  // every rank computes as before
  EXPECT_EQ(next.options->program, "run_mlm");
}

TEST(Elastic, ALostHostIsFoundByNameWhenNoRankIsKnown) {
  const NextAttempt next = next_attempt(from_hostfile(), three_hosts(), failed_on(-1, "h3"));
  ASSERT_TRUE(next.options);
  EXPECT_EQ(next.dropped_host, "h3");
  EXPECT_EQ(next.options->hosts, "h1:2,h2.example:1");
}

TEST(Elastic, TheLaunchHostAndUnknownHostsStay) {
  for (const JobReport& r : {failed_on(1, "h1"), failed_on(-1, ""), failed_on(-1, "h9")}) {
    const NextAttempt next = next_attempt(from_hostfile(), three_hosts(), r);
    ASSERT_TRUE(next.options);
    EXPECT_EQ(next.dropped_host, "");
    EXPECT_EQ(next.options->hostfile, "hosts.txt");  // the same hosts again
    EXPECT_EQ(next.options->hosts, "");
  }
}

TEST(Elastic, NoRestartBelowMinWorldSize) {
  LaunchOptions o = from_hostfile();
  o.min_world_size = 4;
  const NextAttempt next = next_attempt(o, three_hosts(), failed_on(3, "h3"));
  EXPECT_FALSE(next.options);
  EXPECT_EQ(next.why_not, "3 ranks would be left without host h3, fewer than --min_world_size 4");
  o.min_world_size = 3;
  EXPECT_TRUE(next_attempt(o, three_hosts(), failed_on(3, "h3")).options);
}

TEST(Elastic, BackoffDoublesUpToThirtySeconds) {
  EXPECT_EQ(restart_backoff_s(1), 1);
  EXPECT_EQ(restart_backoff_s(2), 2);
  EXPECT_EQ(restart_backoff_s(3), 4);
  EXPECT_EQ(restart_backoff_s(6), 30);
  EXPECT_EQ(restart_backoff_s(100), 30);
}

TEST(Elastic, OptionsAreCheckedLikeEveryOther) {
  EXPECT_THROW(parse_launch_options({"--max_restarts", "-1", "run_mlm"}), UsageError);
  EXPECT_THROW(parse_launch_options({"--min_world_size", "0", "run_mlm"}), UsageError);
  const LaunchOptions o = parse_launch_options(
      {"--max_restarts", "3", "--min_world_size", "2", "--error_file", "err.json", "--run_id", "job7", "run_mlm"});
  EXPECT_EQ(o.max_restarts, 3);
  EXPECT_EQ(o.min_world_size, 2);
  EXPECT_EQ(o.error_file, "err.json");
  EXPECT_EQ(o.run_id, "job7");
}

}  // namespace
}  // namespace mpibert::launcher
