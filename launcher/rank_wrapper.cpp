#include "launcher/rank_wrapper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/error.h"
#include "launcher/child_supervisor.h"
#include "launcher/output_tee.h"
#include "launcher/rank_status.h"

namespace mpibert::launcher {

std::vector<std::string> rank_wrapper_argv(const std::string& self_exe, const RankWrapperArgs& a) {
  std::vector<std::string> argv = {self_exe,      kRankWrapperFlag, "--capture_dir",
                                   a.capture_dir, "--launch_host",  a.launch_host};
  if (a.keep_logs) argv.push_back("--keep_logs");
  argv.push_back("--");
  argv.push_back(a.program);
  argv.insert(argv.end(), a.program_args.begin(), a.program_args.end());
  return argv;
}

RankWrapperArgs parse_rank_wrapper_args(const std::vector<std::string>& args) {
  RankWrapperArgs a;
  size_t i = 0;
  auto value = [&](const std::string& name) -> std::string {
    if (i + 1 >= args.size()) throw UsageError(std::string(kRankWrapperFlag) + ": " + name + " needs a value");
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--capture_dir")
      a.capture_dir = value(arg);
    else if (arg == "--launch_host")
      a.launch_host = value(arg);
    else if (arg == "--keep_logs")
      a.keep_logs = true;
    else
      throw UsageError(std::string(kRankWrapperFlag) + ": unknown argument '" + arg + "'");
  }
  if (i >= args.size()) throw UsageError(std::string(kRankWrapperFlag) + ": missing -- PROGRAM");
  if (a.capture_dir.empty()) throw UsageError(std::string(kRankWrapperFlag) + ": missing --capture_dir");
  a.program = args[i];
  a.program_args.assign(args.begin() + static_cast<long>(i) + 1, args.end());
  return a;
}

int rank_from_environment(const std::map<std::string, std::string>& vars) {
  for (const char* key : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
    auto it = vars.find(key);
    if (it == vars.end() || it->second.empty()) continue;
    try {
      size_t used = 0;
      int rank = std::stoi(it->second, &used);
      if (used == it->second.size() && rank >= 0) return rank;
    } catch (const std::exception&) {
    }
  }
  return -1;
}

int run_rank_wrapper(const RankWrapperArgs& a) {
  // A stop request (SIGUSR2) that comes before the program runs must not kill the wrapper.
  signal(SIGUSR2, SIG_IGN);
  // If mpirun (or its daemon) dies without stopping us, stop the program rather than orphan it.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) throw std::runtime_error("rank wrapper: mpirun exited before the rank started");

  std::map<std::string, std::string> vars;
  for (const auto& kv : current_environment()) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  RankStatus status;
  status.rank = rank_from_environment(vars);
  if (status.rank < 0)
    throw UsageError(std::string(kRankWrapperFlag) + " runs under mpirun (OMPI_COMM_WORLD_RANK is not set)");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  status.host = host;
  const std::string where = "rank " + std::to_string(status.rank) + " on host " + status.host;
  // Without --log_dir the capture dir is on the launch host only; elsewhere the failure goes to stderr.
  const bool local = status.host == a.launch_host;
  const bool write_files = a.keep_logs || local;

  int log_fd = -1;
  if (write_files) {
    std::error_code ec;
    std::filesystem::create_directories(a.capture_dir, ec);
    const std::string log_path = a.capture_dir + "/" + log_file_name(status.rank);
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error(where + ": cannot write " + log_path + ": " + std::strerror(errno));
  }
  TailBuffer tail;
  OutputTee tee(log_fd, status.rank == 0, &tail);

  SuperviseOptions so;
  so.spawn.argv = {a.program};
  so.spawn.argv.insert(so.spawn.argv.end(), a.program_args.begin(), a.program_args.end());
  so.spawn.env = current_environment();
  so.spawn.new_process_group = true;
  so.spawn.parent_death_signal = SIGKILL;
  so.capture_output = true;
  so.tee = &tee;
  so.quiet = true;
  // SIGUSR2 is gaudi_spawn's stop request; the signal it stands for is in the capture dir.
  so.on_usr2 = [&] {
    int sig = read_stop_request(a.capture_dir);
    return sig != 0 ? sig : SIGTERM;
  };
  // Ending the job is up to gaudi_spawn and mpirun; this is only the fallback for a lost parent.
  so.soft_grace_s = 60;
  try {
    SuperviseResult r = supervise_child(so);
    status.pid = r.pid;
    if (WIFSIGNALED(r.wait_status))
      status.signal = WTERMSIG(r.wait_status);
    else
      status.exit_code = exit_code_of_wait_status(r.wait_status);
    status.stopped = r.stop_signal != 0;
  } catch (const std::runtime_error& e) {
    status.start_error = e.what();
    status.exit_code = 127;
  }
  if (log_fd >= 0) ::close(log_fd);
  status.finished_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  status.tail = tail.lines();
  if (!tee.log_error().empty())
    std::fprintf(stderr, "gaudi_spawn: %s: writing its log failed: %s\n", where.c_str(), tee.log_error().c_str());
  if (write_files) {
    try {
      write_rank_status(a.capture_dir, status);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gaudi_spawn: %s: %s\n", where.c_str(), e.what());
    }
  }
  if (!local && status.failed() && !status.stopped)
    std::fprintf(stderr, "gaudi_spawn: error: %s\n", format_failure_report(status, "").c_str());
  return status.shell_code();
}

}  // namespace mpibert::launcher
