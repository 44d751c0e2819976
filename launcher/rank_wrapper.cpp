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

#include "common/config/schema.h"
#include "common/error.h"
#include "launcher/child_supervisor.h"
#include "launcher/mpirun_messages.h"
#include "launcher/output_tee.h"
#include "launcher/rank_status.h"
#include "launcher/stop_note.h"

namespace mpibert::launcher {

std::vector<std::string> rank_wrapper_argv(const std::string& self_exe, const RankWrapperArgs& a) {
  std::vector<std::string> argv = {self_exe,      kRankWrapperFlag, "--capture_dir",
                                   a.capture_dir, "--launch_host",  a.launch_host};
  if (a.keep_logs) argv.push_back("--keep_logs");
  if (a.framed_console) argv.push_back("--framed_console");
  argv.push_back("--");
  argv.push_back(a.program);
  argv.insert(argv.end(), a.program_args.begin(), a.program_args.end());
  return argv;
}

namespace {

const config::Schema<RankWrapperArgs>& wrapper_schema() {
  using W = RankWrapperArgs;
  static const config::Schema<W> schema = [] {
    config::Schema<W> s;
    s.add<std::string>(
         "capture_dir", [](W& w) -> std::string& { return w.capture_dir; }, "",
         "where rank-N.log and .rank-N.status go")
        .satisfies([](const std::string& v) { return !v.empty(); }, "a directory");
    s.add<std::string>(
        "launch_host", [](W& w) -> std::string& { return w.launch_host; }, "", "the host gaudi_spawn runs on");
    s.add<bool>(
         "keep_logs", [](W& w) -> bool& { return w.keep_logs; }, false,
         "write the files on every host (--log_dir was given)")
        .as_switch();
    s.add<bool>(
         "framed_console", [](W& w) -> bool& { return w.framed_console; }, false,
         "rank 0's console output as frames for gaudi_spawn")
        .as_switch();
    return s;
  }();
  return schema;
}

}  // namespace

RankWrapperArgs parse_rank_wrapper_args(const std::vector<std::string>& args) {
  const std::string prefix = std::string(kRankWrapperFlag) + ": ";
  config::ArgsSyntax syntax;
  syntax.config_file = false;
  syntax.stop_at_first_positional = true;
  syntax.value_always_next = true;
  syntax.unknown_option_note = "the rank wrapper is started by gaudi_spawn under mpirun";
  RankWrapperArgs a = wrapper_schema().defaults();
  config::ParsedArgs parsed;
  try {
    parsed = wrapper_schema().parse_args(&a, args, syntax);
  } catch (const UsageError& e) {
    throw UsageError(prefix + e.what());
  }
  if (parsed.help) throw UsageError(prefix + "has no --help; it is started by gaudi_spawn under mpirun");
  if (parsed.positionals.empty()) throw UsageError(prefix + "missing -- PROGRAM");
  if (a.capture_dir.empty()) throw UsageError(prefix + "missing --capture_dir");
  a.program = parsed.positionals.front();
  a.program_args.assign(parsed.positionals.begin() + 1, parsed.positionals.end());
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

namespace {

// Who this rank is: its MPI rank (from mpirun's variables) and host.
RankStatus identify_rank() {
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
  return status;
}

int open_rank_log(const std::string& capture_dir, int rank, const std::string& where) {
  std::error_code ec;
  std::filesystem::create_directories(capture_dir, ec);
  const std::string log_path = capture_dir + "/" + log_file_name(rank);
  const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(where + ": cannot write " + log_path + ": " + std::strerror(errno));
  return fd;
}

// Runs the program to its end, its output through `tee`, and records how it ended in `status`.
void run_program(const RankWrapperArgs& a, OutputTee& tee, RankStatus& status) {
  SuperviseOptions so;
  so.spawn.argv = {a.program};
  so.spawn.argv.insert(so.spawn.argv.end(), a.program_args.begin(), a.program_args.end());
  so.spawn.env = current_environment();
  so.spawn.new_process_group = true;
  so.spawn.parent_death_signal = SIGKILL;
  so.capture_output = true;
  so.sink = &tee;
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
}

// Where the record of how the rank ended goes: the status file on the launch host, else stderr.
void record_rank_end(const RankWrapperArgs& a, const RankStatus& status, bool local, const std::string& where) {
  if (!local) {
    const std::string record = status_record(status);
    write_all(2, record.data(), record.size());
    return;
  }
  try {
    write_rank_status(a.capture_dir, status);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gaudi_spawn: %s: %s\n", where.c_str(), e.what());
  }
}

}  // namespace

int run_rank_wrapper(const RankWrapperArgs& a) {
  // A stop request (SIGUSR2) that comes before the program runs must not kill the wrapper.
  signal(SIGUSR2, SIG_IGN);
  // If mpirun (or its daemon) dies without stopping us, stop the program rather than orphan it.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) throw std::runtime_error("rank wrapper: mpirun exited before the rank started");

  RankStatus status = identify_rank();
  const std::string where = "rank " + std::to_string(status.rank) + " on host " + status.host;
  // Without --log_dir the capture dir is on the launch host only: other hosts get no files at all.
  const bool local = status.host == a.launch_host;
  const int log_fd = a.keep_logs || local ? open_rank_log(a.capture_dir, status.rank, where) : -1;
  TailBuffer tail;
  StopNote note;
  tail.set_line_observer([&](const std::string& line) { note.observe(line); });
  const Console console = status.rank != 0 ? Console::Off : a.framed_console ? Console::Framed : Console::Mirror;
  OutputTee tee(log_fd, console, &tail);
  run_program(a, tee, status);
  if (log_fd >= 0) ::close(log_fd);
  status.finished_at = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  status.tail = tail.lines();
  status.stop_step = note.step;
  status.checkpoint = note.checkpoint;
  if (!tee.log_error().empty())
    std::fprintf(stderr, "gaudi_spawn: %s: writing its log failed: %s\n", where.c_str(), tee.log_error().c_str());
  record_rank_end(a, status, local, where);
  return status.shell_code();
}

}  // namespace mpibert::launcher
