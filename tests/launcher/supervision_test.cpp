// Supervision on real processes (/bin/sh): exit codes, signals, timeouts, logs, the rank wrapper.
// Tests wait on events (a child signalling its parent, a pipe, waitpid), never on time margins.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/error.h"
#include "launcher/child_supervisor.h"
#include "launcher/job_runner.h"
#include "launcher/rank_status.h"
#include "launcher/rank_wrapper.h"
#include "tests/usage_error_of.h"

using namespace mpibert::launcher;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/supervision_test.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

LaunchPlan direct_plan(const std::string& script) {
  LaunchPlan plan;
  plan.direct = true;
  plan.world_size = 1;
  plan.launch_host = "here";
  plan.placement = {{"here", 0, 1, 1}};
  plan.argv = {"/bin/sh", "-c", script};
  return plan;
}

SuperviseOptions sh(const std::string& script) {
  SuperviseOptions o;
  o.spawn.argv = {"/bin/sh", "-c", script};
  o.spawn.env = current_environment();
  o.spawn.new_process_group = true;
  o.quiet = true;
  return o;
}

std::string hostname() {
  char h[256] = {0};
  gethostname(h, sizeof h - 1);
  return h;
}

// Runs the rank wrapper in a forked child (as mpirun would run it) and returns its pid.
pid_t fork_wrapper(int rank, const RankWrapperArgs& args) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("OMPI_COMM_WORLD_RANK", std::to_string(rank).c_str(), 1);
    int code = mpibert::run_main("gaudi_spawn", [&] { return run_rank_wrapper(args); });
    _exit(code);
  }
  return pid;
}

// A pipe a child script says "ready" on (`echo ready > /dev/fd/N`, N = write_fd) once it has set up what
// the test needs. wait() blocks until then, or until every writer is gone (the script died first).
struct ReadyPipe {
  int read_fd = -1, write_fd = -1;
  ReadyPipe() {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");  // inherited by children on purpose
    read_fd = fds[0];
    write_fd = fds[1];
    fcntl(read_fd, F_SETFD, FD_CLOEXEC);
  }
  ~ReadyPipe() {
    close_fd(read_fd);
    close_fd(write_fd);
  }
  std::string say_ready() const { return "echo ready > /dev/fd/" + std::to_string(write_fd); }
  // Call after the children that inherit write_fd are started.
  std::string wait() {
    close_fd(write_fd);
    std::string got;
    char c;
    while (got.find('\n') == std::string::npos && read(read_fd, &c, 1) == 1) got += c;
    return got;
  }
};

int wait_code(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return exit_code_of_wait_status(st);
}

}  // namespace

TEST(DirectRun, ReturnsTheProgramsExitCode) {
  EXPECT_EQ(run_launch_plan(direct_plan("exit 0")), 0);
  EXPECT_EQ(run_launch_plan(direct_plan("exit 3")), 3);
}

TEST(DirectRun, ProgramKilledBySignalGives128PlusSignal) {
  EXPECT_EQ(run_launch_plan(direct_plan("kill -9 $$")), 137);
}

TEST(DirectRun, CapturesOutputAndPassesTheEnvironment) {
  TempDir dir;
  LaunchPlan plan = direct_plan("echo threads=$OMP_NUM_THREADS extra=$EXTRA; echo oops >&2");
  plan.env = {{"OMP_NUM_THREADS", "3"}, {"EXTRA", "a b"}};
  plan.log_dir = dir.path + "/logs";
  ASSERT_EQ(run_launch_plan(plan), 0);
  EXPECT_EQ(read_file(plan.log_dir + "/rank-0.log"), "threads=3 extra=a b\noops\n");
}

TEST(DirectRun, TimeoutStopsTheJobWithExit124) {
  LaunchPlan plan = direct_plan("sleep 60");
  plan.timeout_s = 0.3;
  EXPECT_EQ(run_launch_plan(plan), kExitTimeout);
}

TEST(Supervisor, KillsAChildThatIgnoresTheStopSignalAfterTheGracePeriod) {
  // The child ignores SIGTERM first, then asks its parent (the supervisor) to stop the job: the stop
  // request reaches a child that is certain to ignore it, however slowly the shell starts.
  SuperviseOptions o = sh("trap '' TERM; kill -TERM $PPID; sleep 60 & wait; sleep 60");
  o.soft_grace_s = 0.3;
  SuperviseResult r = supervise_child(o);
  EXPECT_EQ(r.stop_signal, SIGTERM);
  EXPECT_TRUE(r.killed);
  ASSERT_TRUE(WIFSIGNALED(r.wait_status));
  EXPECT_EQ(WTERMSIG(r.wait_status), SIGKILL);
}

TEST(Supervisor, TimeoutAsksTheChildToStopWithSigterm) {
  SuperviseOptions o = sh("sleep 60");
  o.timeout_s = 0.1;
  SuperviseResult r = supervise_child(o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.killed);
  ASSERT_TRUE(WIFSIGNALED(r.wait_status));
  EXPECT_EQ(WTERMSIG(r.wait_status), SIGTERM);
}

TEST(Supervisor, ForwardsSigtermItReceivesToTheJob) {
  // The child signals its parent (the supervisor), which must pass it on to the child's group.
  SuperviseResult r = supervise_child(sh("kill -TERM $PPID; sleep 60"));
  EXPECT_EQ(r.stop_signal, SIGTERM);
  ASSERT_TRUE(WIFSIGNALED(r.wait_status));
  EXPECT_EQ(WTERMSIG(r.wait_status), SIGTERM);
}

TEST(Supervisor, SoftStopGoesThroughRequestStopThenHardStopsWhenTheJobIgnoresIt) {
  SuperviseOptions o = sh("sleep 60");
  int requested = 0;
  o.request_stop = [&](pid_t, int sig) {
    requested = sig;
    return true;  // delivered elsewhere; this child never hears of it
  };
  o.timeout_s = 0.1;
  o.soft_grace_s = 0.2;
  SuperviseResult r = supervise_child(o);
  EXPECT_EQ(requested, SIGTERM);
  EXPECT_TRUE(r.timed_out);
  EXPECT_TRUE(r.hard_stopped);
  EXPECT_FALSE(r.killed);
  ASSERT_TRUE(WIFSIGNALED(r.wait_status));
  EXPECT_EQ(WTERMSIG(r.wait_status), SIGTERM);
}

TEST(Supervisor, JobThatEndsAfterASoftStopIsNotHardStopped) {
  SuperviseOptions o = sh("trap 'exit 75' TERM; kill -TERM $PPID; sleep 60 & wait");
  o.request_stop = [](pid_t child, int sig) { return kill(-child, sig) == 0; };
  SuperviseResult r = supervise_child(o);
  EXPECT_EQ(r.stop_signal, SIGTERM);
  EXPECT_FALSE(r.hard_stopped);
  ASSERT_TRUE(WIFEXITED(r.wait_status));
  EXPECT_EQ(WEXITSTATUS(r.wait_status), 75);
}

TEST(Supervisor, TickCanStopTheJob) {
  SuperviseOptions o = sh("sleep 60");
  o.tick_s = 0.05;
  o.on_tick = [] { return std::string("rank 3 failed"); };
  SuperviseResult r = supervise_child(o);
  EXPECT_EQ(r.stop_reason, "rank 3 failed");
  EXPECT_TRUE(WIFSIGNALED(r.wait_status));
}

TEST(Supervisor, UnstartableProgramThrows) {
  SuperviseOptions o;
  o.spawn.argv = {"/nonexistent/program"};
  EXPECT_THROW(supervise_child(o), std::runtime_error);
}

TEST(RankWrapper, ArgvRoundTrips) {
  RankWrapperArgs a;
  a.capture_dir = "/logs";
  a.launch_host = "node0";
  a.keep_logs = true;
  a.program = "/bin/run_mlm";
  a.program_args = {"--x", "--", "y"};
  auto argv = rank_wrapper_argv("/bin/gaudi_spawn", a);
  ASSERT_EQ(argv[1], kRankWrapperFlag);
  RankWrapperArgs b = parse_rank_wrapper_args({argv.begin() + 2, argv.end()});
  EXPECT_EQ(b.capture_dir, "/logs");
  EXPECT_EQ(b.launch_host, "node0");
  EXPECT_TRUE(b.keep_logs);
  EXPECT_EQ(b.program, "/bin/run_mlm");
  EXPECT_THAT(b.program_args, ElementsAre("--x", "--", "y"));
  EXPECT_THROW(parse_rank_wrapper_args({"--capture_dir", "/x"}), mpibert::UsageError);
}

TEST(RankWrapper, BadArgumentsAreOneLineUsageErrors) {
  using mpibert::testing::usage_error_of;
  EXPECT_EQ(usage_error_of([] {
              parse_rank_wrapper_args({"--captur_dir", "/x", "--", "p"});
            }),
            "--rank_wrapper: unknown option '--captur_dir'; did you mean '--capture_dir'? (the rank wrapper is started "
            "by gaudi_spawn under mpirun)");
  EXPECT_EQ(usage_error_of([] {
              parse_rank_wrapper_args({"--launch_host", "h", "--", "p"});
            }),
            "--rank_wrapper: missing --capture_dir");
  EXPECT_EQ(usage_error_of([] {
              parse_rank_wrapper_args({"--capture_dir", "/x", "--keep_logs=1", "--", "p"});
            }),
            "--rank_wrapper: option '--keep_logs' takes no value (got '1')");
  // Words after PROGRAM are the program's, even ones that look like the wrapper's own.
  RankWrapperArgs a = parse_rank_wrapper_args({"--capture_dir", "/x", "--", "p", "--capture_dir", "/y"});
  EXPECT_EQ(a.capture_dir, "/x");
  EXPECT_THAT(a.program_args, ElementsAre("--capture_dir", "/y"));
}

TEST(RankWrapper, RankComesFromMpiVariables) {
  EXPECT_EQ(rank_from_environment({{"OMPI_COMM_WORLD_RANK", "5"}}), 5);
  EXPECT_EQ(rank_from_environment({{"PMIX_RANK", "2"}}), 2);
  EXPECT_EQ(rank_from_environment({{"OMPI_COMM_WORLD_RANK", "x"}}), -1);
  EXPECT_EQ(rank_from_environment({}), -1);
}

TEST(RankWrapper, RecordsLogAndStatusOfAFailingRank) {
  TempDir dir;
  RankWrapperArgs a;
  a.capture_dir = dir.path;
  a.launch_host = hostname();
  a.program = "/bin/sh";
  a.program_args = {"-c", "echo out; echo err >&2; exit 3"};
  EXPECT_EQ(wait_code(fork_wrapper(1, a)), 3);
  EXPECT_EQ(read_file(dir.path + "/rank-1.log"), "out\nerr\n");
  auto statuses = read_rank_statuses(dir.path);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].rank, 1);
  EXPECT_EQ(statuses[0].host, hostname());
  EXPECT_EQ(statuses[0].exit_code, 3);
  EXPECT_FALSE(statuses[0].stopped);
  EXPECT_THAT(statuses[0].tail, ElementsAre("out", "err"));
}

TEST(RankWrapper, ProgramThatCannotStartIsRecorded) {
  TempDir dir;
  RankWrapperArgs a;
  a.capture_dir = dir.path;
  a.launch_host = hostname();
  a.program = dir.path + "/missing";
  EXPECT_EQ(wait_code(fork_wrapper(2, a)), 127);
  auto statuses = read_rank_statuses(dir.path);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_THAT(statuses[0].start_error, HasSubstr("cannot execute"));
}

TEST(RankWrapper, ForwardsSigtermAndMarksTheRankAsStopped) {
  TempDir dir;
  RankWrapperArgs a;
  a.capture_dir = dir.path;
  a.launch_host = hostname();
  a.program = "/bin/sh";
  ReadyPipe ready;
  a.program_args = {"-c", "echo started; " + ready.say_ready() + "; sleep 60"};
  pid_t pid = fork_wrapper(1, a);
  ASSERT_EQ(ready.wait(), "ready\n");  // the program runs, so the wrapper supervises it
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_code(pid), 128 + SIGTERM);
  EXPECT_EQ(read_file(dir.path + "/rank-1.log"), "started\n");
  auto statuses = read_rank_statuses(dir.path);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_TRUE(statuses[0].stopped);
  EXPECT_EQ(statuses[0].signal, SIGTERM);
}

TEST(RankWrapper, Sigusr2DeliversTheRequestedStopSignal) {
  TempDir dir;
  RankWrapperArgs a;
  a.capture_dir = dir.path;
  a.launch_host = hostname();
  a.program = "/bin/sh";
  ReadyPipe ready;
  // sleep in the background and wait: sh runs its trap at once then, not when a foreground sleep ends.
  a.program_args = {
      "-c", "trap 'echo got INT; kill $!; exit 75' INT; echo started; " + ready.say_ready() + "; sleep 60 & wait"};
  pid_t pid = fork_wrapper(1, a);
  ASSERT_EQ(ready.wait(), "ready\n");
  write_stop_request(dir.path, SIGINT);
  kill(pid, SIGUSR2);
  EXPECT_EQ(wait_code(pid), 75);
  EXPECT_EQ(read_file(dir.path + "/rank-1.log"), "started\ngot INT\n");
  auto statuses = read_rank_statuses(dir.path);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_TRUE(statuses[0].stopped);
  EXPECT_EQ(statuses[0].exit_code, 75);
}

TEST(RankWrapper, OnAnotherHostWithoutLogDirItWritesNoFiles) {
  TempDir dir;
  RankWrapperArgs a;
  a.capture_dir = dir.path + "/capture";
  a.launch_host = "some-other-host";
  a.program = "/bin/sh";
  a.program_args = {"-c", "exit 4"};
  EXPECT_EQ(wait_code(fork_wrapper(1, a)), 4);
  EXPECT_NE(access(a.capture_dir.c_str(), F_OK), 0);
}
