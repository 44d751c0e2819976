#include "launcher/job_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "launcher/child_supervisor.h"
#include "launcher/job_report.h"
#include "launcher/mpirun_output.h"
#include "launcher/rank_status.h"
#include "launcher/stop_note.h"

namespace mpibert::launcher {

void report(const std::string& text) {
  std::fprintf(stderr, "gaudi_spawn: %s\n", text.c_str());
}

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

JobReport finish(JobReport r) {
  for (const auto& line : r.lines) report(line);
  return r;
}

JobOutcome outcome_of(const LaunchPlan& plan, const SuperviseResult& r) {
  JobOutcome o;
  o.direct = plan.direct;
  o.program = plan.argv.empty() ? "" : plan.argv[0];
  o.child_code = exit_code_of_wait_status(r.wait_status);
  o.stop_signal = r.stop_signal;
  o.timed_out = r.timed_out;
  o.timeout_s = plan.timeout_s;
  o.hard_stopped = r.hard_stopped || r.killed;
  o.log_dir = plan.log_dir;
  o.placement = plan.placement;
  o.launch_host = plan.launch_host;
  return o;
}

JobReport run_direct(const LaunchPlan& plan) {
  int log_fd = -1;
  std::string log_path;
  if (!plan.log_dir.empty()) {
    make_log_dir(plan.log_dir);
    log_path = plan.log_dir + "/" + log_file_name(0);
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot write " + log_path + ": " + std::strerror(errno));
  }
  TailBuffer tail;
  StopNote note;
  tail.set_line_observer([&](const std::string& line) { note.observe(line); });
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
  so.sink = &tee;
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
  s.stop_step = note.step;
  s.checkpoint = note.checkpoint;
  JobOutcome o = outcome_of(plan, r);
  o.statuses = {s};
  return finish(conclude_job(o));
}

constexpr const char* kMpirunLogName = "mpirun.log";

void remove_capture_dir(const std::string& dir) {
  remove_rank_files(dir, RankLogs::Remove);
  ::unlink((dir + "/" + kMpirunLogName).c_str());
  rmdir(dir.c_str());
}

int open_mpirun_log(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  return fd;
}

// Evidence that the job is failing: a rank that failed on its own, mpirun's words for a lost or
// unreachable host, or an MPI_Abort. mpirun normally ends the job then; should it not (a host that cannot
// be reached cannot be told to stop), gaudi_spawn stops it a little later.
std::string failure_evidence(const LaunchPlan& plan, MpirunStderr& messages) {
  auto statuses = merge_statuses(read_rank_statuses(plan.capture_dir), messages.statuses());
  if (auto f = first_failure(statuses); f && !f->stopped) return describe_rank_end(*f);
  const auto lines = messages.lines();
  if (auto d = diagnose_mpirun_messages(lines)) return d->text;
  for (const auto& l : lines)
    if (l.find("MPI_ABORT was invoked") != std::string::npos) return l;
  return "";
}

SuperviseOptions mpirun_supervision(const LaunchPlan& plan, MpirunOutput& output, int in) {
  SuperviseOptions so;
  so.spawn.argv = plan.argv;
  so.spawn.env = current_environment();
  so.spawn.new_process_group = true;
  so.spawn.parent_death_signal = SIGTERM;  // gaudi_spawn killed -> mpirun tears the job down
  so.spawn.stdin_fd = in;
  so.capture_output = true;
  so.sink = &output;
  so.timeout_s = plan.timeout_s;
  // mpirun's own SIGTERM handling kills the ranks within a second; SIGUSR2 it passes on at once, and the
  // wrappers turn it into the signal named in the capture dir, so run_mlm can finish its step and save.
  so.request_stop = [&plan](pid_t mpirun, int sig) {
    try {
      write_stop_request(plan.capture_dir, sig);
    } catch (const std::exception& e) {
      report(std::string("warning: ") + e.what() + "; the ranks get SIGTERM");
    }
    return kill(mpirun, SIGUSR2) == 0;
  };
  so.announce_tick_stop = false;  // the final report says what happened
  return so;
}

JobReport run_mpirun(const LaunchPlan& plan) {
  const bool temporary = plan.log_dir.empty();
  if (temporary)
    make_private_dir(plan.capture_dir);
  else {
    make_log_dir(plan.capture_dir);
    remove_rank_files(plan.capture_dir, RankLogs::Keep);  // statuses of an earlier run must not be read as ours
  }
  const std::string mpirun_log = plan.capture_dir + "/" + kMpirunLogName;
  int log_fd = open_mpirun_log(mpirun_log);
  MpirunOutput output(log_fd);
  int in = job_stdin();
  SuperviseOptions so = mpirun_supervision(plan, output, in);
  constexpr double kTeardownGrace = 5;
  double failure_seen_at = -1;
  so.on_tick = [&]() -> std::string {
    if (failure_seen_at < 0) {
      if (!failure_evidence(plan, output.messages()).empty()) failure_seen_at = monotonic_seconds();
      return "";
    }
    if (monotonic_seconds() - failure_seen_at < kTeardownGrace) return "";
    return failure_evidence(plan, output.messages()) + " but mpirun had not ended the job after " +
           std::to_string(static_cast<int>(kTeardownGrace)) + " s";
  };
  SuperviseResult r;
  try {
    r = supervise_child(so);
  } catch (...) {
    close_fd(in);
    close_fd(log_fd);
    if (temporary) remove_capture_dir(plan.capture_dir);
    throw;
  }
  close_fd(in);
  output.messages().finish();
  if (!r.stop_reason.empty()) {
    const std::string line = "gaudi_spawn: " + r.stop_reason + "; stopped it\n";
    write_all(log_fd, line.data(), line.size());
  }
  close_fd(log_fd);
  JobOutcome o = outcome_of(plan, r);
  o.statuses = merge_statuses(read_rank_statuses(plan.capture_dir), output.messages().statuses());
  o.mpirun_lines = output.messages().lines();
  o.rank_output_seen = output.rank_output_seen();
  o.mpirun_log = mpirun_log;
  const JobReport report = conclude_job(o);
  remove_rank_files(plan.capture_dir, temporary ? RankLogs::Remove : RankLogs::Keep);
  // mpirun's messages stay where the report points to them, or with the logs the user asked for.
  const bool pointed_to = std::any_of(report.lines.begin(), report.lines.end(),
                                      [&](const std::string& l) { return l.find(mpirun_log) != std::string::npos; });
  if (output.messages().line_count() == 0 || (temporary && !pointed_to)) ::unlink(mpirun_log.c_str());
  if (temporary) rmdir(plan.capture_dir.c_str());
  return finish(report);
}

}  // namespace

JobReport run_job(const LaunchPlan& plan) {
  return plan.direct ? run_direct(plan) : run_mpirun(plan);
}

int run_launch_plan(const LaunchPlan& plan) {
  return run_job(plan).exit_code;
}

}  // namespace mpibert::launcher
