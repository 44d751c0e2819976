#include "launcher/job_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "launcher/child_supervisor.h"
#include "launcher/rank_status.h"

namespace mpibert::launcher {
namespace {

// mpirun forwards stdin to rank 0; a job in its own process group must not read the terminal (it would
// be stopped by SIGTTIN), so a terminal stdin becomes /dev/null. Pipes and files pass through.
int job_stdin() {
  if (!isatty(0)) return -1;
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void make_log_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error("--log_dir " + dir + ": cannot create or write it" + (ec ? ": " + ec.message() : ""));
}

// The temporary capture dir is private: refuse anything we did not make (e.g. a planted symlink).
void make_private_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0) return;
  if (errno != EEXIST) throw std::runtime_error("cannot create " + dir + ": " + std::strerror(errno));
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
    throw std::runtime_error(dir + " exists and is not a directory of ours; remove it or set TMPDIR");
  remove_rank_files(dir, RankLogs::Remove);  // left by an earlier gaudi_spawn with the same pid
}

std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (const auto& kv : current_environment()) {
    const std::string key = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (const auto& e : extra) replaced = replaced || e.first == key;
    if (!replaced) env.push_back(kv);
  }
  for (const auto& e : extra) env.push_back(e.first + "=" + e.second);
  return env;
}

void report(const std::string& text) {
  std::fprintf(stderr, "gaudi_spawn: %s\n", text.c_str());
}

// Shared ending. A timeout is 124. After a stop signal the job's own code counts when it ended by itself
// once asked (run_mlm exits 75 after its checkpoint), else 128 + the signal. Otherwise the first rank that
// failed on its own (not one stopped by the teardown), then mpirun's own code.
int conclude(const LaunchPlan& plan, const SuperviseResult& r, const std::vector<RankStatus>& statuses) {
  const int code = exit_code_of_wait_status(r.wait_status);
  const std::optional<RankStatus> failure = first_failure(statuses);
  if (r.timed_out) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", plan.timeout_s);
    report("error: the job was stopped after running past --timeout " + std::string(seconds) + " s");
    return kExitTimeout;
  }
  if (r.stop_signal != 0) {
    const bool ended_by_itself = !r.hard_stopped && !r.killed;
    const int job_code = failure ? failure->shell_code() : code;
    report("the job was stopped on " + signal_name(r.stop_signal) +
           (ended_by_itself ? " (exit code " + std::to_string(job_code) + ")" : ""));
    return ended_by_itself ? job_code : 128 + r.stop_signal;
  }
  if (failure && !failure->stopped) {
    std::string log;
    if (!plan.log_dir.empty()) log = plan.log_dir + "/" + log_file_name(failure->rank);
    report("error: " + format_failure_report(*failure, log));
    if (failure->shell_code() != 0) return failure->shell_code();
    return code != 0 ? code : 1;
  }
  if (code != 0) {
    std::string hint = plan.placement.size() > 1 && plan.log_dir.empty()
                           ? " (ranks on other hosts report on stderr; --log_dir on a shared filesystem keeps "
                             "their logs)"
                           : "";
    report("error: " + std::string(plan.direct ? plan.argv[0] : "mpirun") + " exited with code " +
           std::to_string(code) +
           (plan.direct ? "" : " and no rank reported a failure of its own; see mpirun's messages above") + hint);
  }
  return code;
}

int run_direct(const LaunchPlan& plan) {
  int log_fd = -1;
  std::string log_path;
  if (!plan.log_dir.empty()) {
    make_log_dir(plan.log_dir);
    log_path = plan.log_dir + "/" + log_file_name(0);
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot write " + log_path + ": " + std::strerror(errno));
  }
  TailBuffer tail;
  OutputTee tee(log_fd, Console::Mirror, &tail);
  SuperviseOptions so;
  so.spawn.argv = plan.argv;
  so.spawn.env = environment_with(plan.env);
  so.spawn.new_process_group = true;
  so.spawn.parent_death_signal = SIGTERM;
  int in = job_stdin();
  so.spawn.stdin_fd = in;
  // Without --log_dir the program writes to the console itself (a terminal stays a terminal).
  so.capture_output = log_fd >= 0;
  so.tee = &tee;
  so.timeout_s = plan.timeout_s;
  SuperviseResult r;
  try {
    r = supervise_child(so);
  } catch (...) {
    close_fd(in);
    if (log_fd >= 0) ::close(log_fd);
    throw;
  }
  close_fd(in);
  if (log_fd >= 0) ::close(log_fd);
  if (!tee.log_error().empty()) report("warning: writing " + log_path + " failed: " + tee.log_error());

  RankStatus s;
  s.rank = 0;
  s.host = plan.launch_host;
  s.pid = r.pid;
  if (WIFSIGNALED(r.wait_status))
    s.signal = WTERMSIG(r.wait_status);
  else
    s.exit_code = exit_code_of_wait_status(r.wait_status);
  s.stopped = r.stop_signal != 0 || r.timed_out;
  if (so.capture_output) s.tail = tail.lines();
  return conclude(plan, r, {s});
}

int run_mpirun(const LaunchPlan& plan) {
  const bool temporary = plan.log_dir.empty();
  if (temporary)
    make_private_dir(plan.capture_dir);
  else {
    make_log_dir(plan.capture_dir);
    remove_rank_files(plan.capture_dir, RankLogs::Keep);  // statuses of an earlier run must not be read as ours
  }
  SuperviseOptions so;
  so.spawn.argv = plan.argv;
  so.spawn.env = current_environment();
  so.spawn.new_process_group = true;
  so.spawn.parent_death_signal = SIGTERM;  // gaudi_spawn killed -> mpirun tears the job down
  int in = job_stdin();
  so.spawn.stdin_fd = in;
  so.timeout_s = plan.timeout_s;
  // mpirun's own SIGTERM handling kills the ranks within a second; SIGUSR2 it passes on at once, and the
  // wrappers turn it into the signal named in the capture dir, so run_mlm can finish its step and save.
  so.request_stop = [&](pid_t mpirun, int sig) {
    try {
      write_stop_request(plan.capture_dir, sig);
    } catch (const std::exception& e) {
      report(std::string("warning: ") + e.what() + "; the ranks get SIGTERM");
    }
    return kill(mpirun, SIGUSR2) == 0;
  };
  // mpirun stops the job when a rank fails; should it not, stop it ourselves a little later.
  constexpr double kTeardownGrace = 5;
  double failure_seen_at = -1;
  so.on_tick = [&]() -> std::string {
    if (failure_seen_at < 0) {
      if (auto f = first_failure(read_rank_statuses(plan.capture_dir)); f && !f->stopped)
        failure_seen_at = monotonic_seconds();
      return "";
    }
    if (monotonic_seconds() - failure_seen_at < kTeardownGrace) return "";
    auto f = first_failure(read_rank_statuses(plan.capture_dir));
    return describe_rank_end(*f) + " but mpirun had not stopped the job after " +
           std::to_string(static_cast<int>(kTeardownGrace)) + " s";
  };
  SuperviseResult r;
  try {
    r = supervise_child(so);
  } catch (...) {
    close_fd(in);
    if (temporary) rmdir(plan.capture_dir.c_str());
    throw;
  }
  close_fd(in);
  const int code = conclude(plan, r, read_rank_statuses(plan.capture_dir));
  remove_rank_files(plan.capture_dir, temporary ? RankLogs::Remove : RankLogs::Keep);
  if (temporary) rmdir(plan.capture_dir.c_str());
  return code;
}

}  // namespace

int run_launch_plan(const LaunchPlan& plan) {
  return plan.direct ? run_direct(plan) : run_mpirun(plan);
}

}  // namespace mpibert::launcher
