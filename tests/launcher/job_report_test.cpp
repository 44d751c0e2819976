#include "launcher/job_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "launcher/stop_note.h"

using namespace mpibert::launcher;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

RankStatus rank(int r, const std::string& host, int code, int sig = 0, double at = 1) {
  RankStatus s;
  s.rank = r;
  s.host = host;
  s.exit_code = code;
  s.signal = sig;
  s.finished_at = at;
  return s;
}

// Two hosts, one rank each, without a shared --log_dir.
JobOutcome two_hosts() {
  JobOutcome o;
  o.placement = {{"h1", 0, 1, 2, true, 1}, {"h2", 1, 1, 2, true, 1}};
  o.mpirun_log = "/tmp/gaudi_spawn.7/mpirun.log";
  return o;
}

}  // namespace

TEST(JobReport, SuccessSaysNothing) {
  JobOutcome o = two_hosts();
  o.statuses = {rank(0, "h1", 0), rank(1, "h2", 0)};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.lines.empty());
}

TEST(JobReport, ACleanStopSaysWhereToResumeFromNotError) {
  JobOutcome o = two_hosts();
  o.child_code = 75;
  o.stop_signal = SIGINT;
  RankStatus r0 = rank(0, "h1", 75);
  r0.stop_step = 7;
  r0.checkpoint = "/out/checkpoint-7";
  o.statuses = {r0, rank(1, "h2", 75)};
  o.mpirun_lines = {"Primary job  terminated normally, but 1 process returned"};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 75);
  EXPECT_THAT(r.lines,
              ElementsAre("stopped cleanly at step 7, checkpoint /out/checkpoint-7; rerun the same command to resume"));
  // Without a signal from gaudi_spawn (e.g. the scheduler signalled the ranks) it is the same.
  o.stop_signal = 0;
  EXPECT_EQ(conclude_job(o).lines, r.lines);
}

TEST(JobReport, ARankStoppedByTheTeardownAfterAnotherStoppedCleanlyKeepsTheStopClean) {
  JobOutcome o = two_hosts();
  o.child_code = 75;
  o.stop_signal = SIGTERM;
  RankStatus r0 = rank(0, "h1", 75);
  r0.stop_step = 12;
  r0.checkpoint = "/out/checkpoint-12";
  RankStatus r1 = rank(1, "h2", 0, SIGTERM);
  r1.stopped = true;
  o.statuses = {r0, r1};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 75);
  EXPECT_THAT(
      r.lines,
      ElementsAre("stopped cleanly at step 12, checkpoint /out/checkpoint-12; rerun the same command to resume"));
  // A rank that failed on its own is a failure, not a clean stop.
  o.stop_signal = 0;
  o.statuses = {r0, rank(1, "h2", 3, 0, 0.5)};
  EXPECT_THAT(conclude_job(o).lines, ElementsAre(HasSubstr("error: rank 1 on host h2 exited with code 3")));
}

TEST(JobReport, AStopThatHadToBeForcedIsNotClean) {
  JobOutcome o = two_hosts();
  o.stop_signal = SIGTERM;
  o.hard_stopped = true;
  o.statuses = {rank(0, "h1", 75), rank(1, "h2", 0, SIGKILL)};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_THAT(r.lines, ElementsAre("the job was stopped on SIGTERM"));
}

TEST(JobReport, ARemoteRanksFailureIsReportedOnceWithoutContradiction) {
  JobOutcome o = two_hosts();
  o.child_code = 137;
  RankStatus r1 = rank(1, "h2", 0, SIGKILL, 1);
  r1.tail = {"step 3"};
  RankStatus r0 = rank(0, "h1", 0, SIGTERM, 2);
  r0.stopped = true;
  o.statuses = {r0, r1};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 137);
  ASSERT_EQ(r.lines.size(), 1u);
  EXPECT_EQ(r.lines[0],
            "error: rank 1 on host h2 was killed by signal 9 (SIGKILL); last 1 line of its output:\n  | step 3");
  EXPECT_THAT(r.lines[0], ::testing::Not(HasSubstr("no rank reported")));
}

TEST(JobReport, RankZerosFailureDoesNotRepeatWhatTheConsoleShows) {
  JobOutcome o = two_hosts();
  o.child_code = 2;
  RankStatus r0 = rank(0, "h1", 2);
  r0.tail = {"run_mlm: error: --max_steps: 'x' is not a number"};
  o.statuses = {r0};
  o.mpirun_lines = {"mpirun detected that one or more processes exited with non-zero status"};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.lines, ElementsAre("error: rank 0 on host h1 exited with code 2 (its output is above)"));
}

TEST(JobReport, ASilentPeerNamedByTheCommLayerNamesItsHost) {
  JobOutcome o = two_hosts();
  o.child_code = 1;
  RankStatus r0 = rank(0, "h1", 1);
  r0.tail = {
      "mpibert: rank 0 aborts the job: allreduce #12 on rank 0 cannot finish: rank 1 has not been heard from for "
      "20.4 s (silence limit 20.0 s): it has stopped, died or is cut off; it last reported 11 collective(s) issued "
      "and 11 completed, this rank 12 and 11; a collective cannot be cancelled: the job must abort"};
  o.statuses = {r0};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.lines, ElementsAre("error: host h2 is unreachable or rank 1 on it stopped: rank 1 was not heard from "
                                   "for 20.4 s (dist.timeout_s 20.0 s); rank 0 on host h1 aborted the job"));
  EXPECT_EQ(r.failed_rank, 1);  // the silent peer failed, not the rank that noticed
  EXPECT_EQ(r.failed_host, "h2");
}

// The collective timeout's own naming (common/comm/mpi_work.cpp): a silent peer, and one alive but absent.
TEST(JobReport, ACollectiveTimeoutNamingAMissingRankNamesItsHost) {
  JobOutcome o = two_hosts();
  o.child_code = 1;
  RankStatus r0 = rank(0, "h1", 1);
  const std::string head =
      "mpibert: rank 0 aborts the job: allReduce #57 (4 x f64, sum) (collective #57) did not finish within 20 s on "
      "rank 0: rank 1 (host h2) has not issued it: its last heartbeat, ";
  r0.tail = {head + "20.3 s ago, reported 56 collective(s) issued and 56 completed; a collective cannot be cancelled"};
  o.statuses = {r0};
  EXPECT_THAT(conclude_job(o).lines,
              ElementsAre("error: host h2 is unreachable or rank 1 on it stopped: rank 1 was not heard from for 20.3 s "
                          "(dist.timeout_s 20 s); rank 0 on host h1 aborted the job"));
  EXPECT_EQ(conclude_job(o).failed_rank, 1);
  EXPECT_EQ(conclude_job(o).failed_host, "h2");
  r0.tail = {head + "0.4 s ago, reported 56 collective(s) issued and 56 completed; a collective cannot be cancelled"};
  o.statuses = {r0};
  EXPECT_THAT(conclude_job(o).lines,
              ElementsAre("error: rank 1 on host h2 is alive but did not reach the collective within dist.timeout_s 20 "
                          "s (it is slow or took another code path); rank 0 on host h1 aborted the job"));
}

TEST(JobReport, ALostHostExplainsWhatItsPeersDidNext) {
  JobOutcome o = two_hosts();
  o.child_code = 1;
  o.statuses = {rank(0, "h1", 14)};  // rank 0 failed on the broken connection
  o.mpirun_lines = {"ORTE has lost communication with a remote daemon.", "", "  HNP daemon   : [[5,0],0] on node h1",
                    "  Remote daemon: [[5,0],1] on node h2"};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.lines, ElementsAre("error: lost contact with host h2: its Open MPI daemon died or the network to it "
                                   "failed (rank 1 ran there); mpirun's messages: /tmp/gaudi_spawn.7/mpirun.log"));
}

// ORTE's "failed after launch" once ranks had run: the host whose ranks did not report was lost.
TEST(JobReport, ADaemonThatFailedAfterRanksRanIsALostHost) {
  JobOutcome o = two_hosts();
  o.child_code = 1;
  o.statuses = {rank(0, "h1", 14)};
  o.mpirun_lines = {"-----", "An ORTE daemon has unexpectedly failed after launch and before",
                    "communicating back to mpirun."};
  EXPECT_THAT(
      conclude_job(o).lines,
      ElementsAre("error: lost contact with host h2: its Open MPI daemon died or the network to it failed (rank "
                  "1 ran there); mpirun's messages: /tmp/gaudi_spawn.7/mpirun.log"));
  o.statuses.clear();  // no rank ran: the daemon did not start
  EXPECT_THAT(conclude_job(o).lines[0], ::testing::HasSubstr("could not start its daemon"));
}

// A host crash torn down before any rank could report: rank 0's output had arrived, so the ranks ran and
// a daemon was lost; not the launch host's (mpirun is its daemon), so the other one.
TEST(JobReport, ADaemonThatFailedAfterRankOutputIsALostHostEvenWithoutStatuses) {
  JobOutcome o = two_hosts();
  o.child_code = 1;
  o.launch_host = "h1";
  o.rank_output_seen = true;
  o.mpirun_lines = {"-----", "An ORTE daemon has unexpectedly failed after launch and before",
                    "communicating back to mpirun."};
  EXPECT_THAT(conclude_job(o).lines[0],
              ::testing::StartsWith("error: lost contact with host h2: its Open MPI daemon died or the network to "
                                    "it failed (rank 1 ran there)"));
  o.rank_output_seen = false;  // nothing ran anywhere: a failed start
  EXPECT_THAT(conclude_job(o).lines[0], ::testing::HasSubstr("could not start its daemon"));
}

TEST(JobReport, MpirunFailingBeforeAnyRankIsDiagnosedInOneLine) {
  JobOutcome o = two_hosts();
  o.child_code = 255;
  o.mpirun_lines = {"ssh: Could not resolve hostname h9: Name or service not known", "-----",
                    "ORTE was unable to reliably start one or more daemons."};
  EXPECT_THAT(conclude_job(o).lines, ElementsAre("error: host h9 cannot be resolved (Name or service not known); "
                                                 "mpirun's messages: /tmp/gaudi_spawn.7/mpirun.log"));
  o.mpirun_lines = {"something else"};
  JobReport r = conclude_job(o);
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_THAT(r.lines, ElementsAre("error: mpirun exited with code 255 before any rank reported a failure; its "
                                   "messages: /tmp/gaudi_spawn.7/mpirun.log"));
}

TEST(JobReport, TimeoutAndDirectRuns) {
  JobOutcome o = two_hosts();
  o.timed_out = true;
  o.timeout_s = 2;
  EXPECT_EQ(conclude_job(o).exit_code, 124);
  JobOutcome d;
  d.direct = true;
  d.child_code = 75;
  d.statuses = {rank(0, "h1", 75)};
  JobReport r = conclude_job(d);
  EXPECT_EQ(r.exit_code, 75);
  EXPECT_THAT(r.lines, ElementsAre("stopped cleanly (exit 75: the program saved its state); rerun the same command to "
                                   "resume"));
}

TEST(JobReport, StatusesFromFilesAndRecordsAreMergedByRank) {
  auto merged = merge_statuses({rank(2, "h1", 0)}, {rank(1, "h2", 3), rank(2, "h1", 9)});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].rank, 1);
  EXPECT_EQ(merged[1].exit_code, 0);  // the file's
}

// What --max_restarts decides on: a failure a restart may help, pinned on a rank and host.
TEST(JobReport, SaysWhetherARestartCouldHelpAndWhereTheFailureIs) {
  JobOutcome o = two_hosts();
  o.child_code = 137;
  o.statuses = {rank(0, "h1", 0, 0, 2), rank(1, "h2", 0, SIGKILL, 1)};
  JobReport r = conclude_job(o);
  EXPECT_TRUE(r.restartable);
  EXPECT_EQ(r.failed_rank, 1);
  EXPECT_EQ(r.failed_host, "h2");
  o.statuses = {rank(1, "h2", 2)};  // bad input fails the same way after a restart
  EXPECT_FALSE(conclude_job(o).restartable);
  o.statuses = {rank(0, "h1", 14)};
  o.mpirun_lines = {"ORTE has lost communication with a remote daemon.", "  Remote daemon: [[5,0],1] on node h2"};
  r = conclude_job(o);
  EXPECT_TRUE(r.restartable);
  EXPECT_EQ(r.failed_host, "h2");
  o.mpirun_lines.clear();
  o.statuses = {rank(0, "h1", kExitStoppedCleanly)};  // a clean stop, a timeout: nothing to restart
  EXPECT_FALSE(conclude_job(o).restartable);
  o.timed_out = true;
  EXPECT_FALSE(conclude_job(o).restartable);
}
