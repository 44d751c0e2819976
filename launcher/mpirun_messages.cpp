#include "launcher/mpirun_messages.h"

#include <regex>

#include "launcher/process.h"

namespace mpibert::launcher {
namespace {

const std::string kStatusMark = "\x1egaudi_spawn-rank-status ";

// The first capture of `re` in any line, from line `from` on.
std::optional<std::smatch> find_line(const std::vector<std::string>& lines, const std::regex& re, size_t from = 0) {
  for (size_t i = from; i < lines.size(); ++i) {
    std::smatch m;
    if (std::regex_search(lines[i], m, re)) return m;
  }
  return std::nullopt;
}

std::optional<size_t> find_index(const std::vector<std::string>& lines, const std::string& text) {
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find(text) != std::string::npos) return i;
  return std::nullopt;
}

std::optional<MpirunDiagnosis> lost_daemon(const std::vector<std::string>& lines) {
  // ORTE (Open MPI 4) and PRRTE (5): "... has lost communication with a remote daemon." then
  // "  Remote daemon: [[51000,0],1] on node h2".
  const auto at = find_index(lines, "has lost communication with a remote daemon");
  if (!at) return std::nullopt;
  static const std::regex remote(R"(Remote daemon\s*:\s*\S+ on node (\S+))");
  const auto m = find_line(lines, remote, *at);
  const std::string host = m ? (*m)[1].str() : "";
  return MpirunDiagnosis{host,
                         "lost contact with host " + (host.empty() ? std::string("?") : host) +
                             ": its Open MPI daemon died or the network to it failed",
                         true};
}

// A rank whose wrapper died with it (so no status came): "mpirun noticed that process rank 1 with PID 0
// on node h2 exited on signal 9 (Killed)."
std::optional<MpirunDiagnosis> unreported_rank_death(const std::vector<std::string>& lines) {
  static const std::regex died(R"(process rank (\d{1,9}) with PID \d+ on node (\S+) exited on signal (\d{1,3}))");
  auto m = find_line(lines, died);
  if (!m) return std::nullopt;
  const std::string host = (*m)[2].str();
  const int sig = std::stoi((*m)[3].str());
  return MpirunDiagnosis{host,
                         "rank " + (*m)[1].str() + " on host " + host + " was killed by signal " + (*m)[3].str() +
                             " (" + signal_name(sig) + ") before it could report",
                         false};
}

std::optional<MpirunDiagnosis> unreachable_host(const std::vector<std::string>& lines) {
  static const std::regex unresolved(R"(Could not resolve hostname ([^\s:]+):?\s*(.*))");
  if (auto m = find_line(lines, unresolved)) {
    const std::string host = (*m)[1].str(), why = (*m)[2].str();
    return MpirunDiagnosis{host, "host " + host + " cannot be resolved" + (why.empty() ? "" : " (" + why + ")"), false};
  }
  static const std::regex connect(R"(connect to host (\S+) port (\d+): (.*))");
  if (auto m = find_line(lines, connect)) {
    const std::string host = (*m)[1].str();
    return MpirunDiagnosis{
        host, "cannot reach host " + host + " (ssh port " + (*m)[2].str() + ": " + (*m)[3].str() + ")", false};
  }
  static const std::regex denied(R"((?:\S+@)?([^\s:@]+): Permission denied(.*))");
  if (auto m = find_line(lines, denied)) {
    const std::string host = (*m)[1].str();
    return MpirunDiagnosis{host,
                           "host " + host + " refused the login (Permission denied" + (*m)[2].str() +
                               "); the launch agent must log in without a password",
                           false};
  }
  return std::nullopt;
}

std::optional<MpirunDiagnosis> daemon_not_started(const std::vector<std::string>& lines) {
  static const std::regex orted_missing(R"((\S*orted): (command not found|No such file or directory))");
  if (auto m = find_line(lines, orted_missing))
    return MpirunDiagnosis{"",
                           "Open MPI's daemon (" + (*m)[1].str() + ") was not found on a remote host: " +
                               (*m)[2].str() + " (install Open MPI at the same path on every host)",
                           false};
  const bool failed_start = find_index(lines, "unable to reliably start one or more daemons").has_value() ||
                            find_index(lines, "daemon has unexpectedly failed after launch").has_value();
  if (!failed_start) return std::nullopt;
  // The launch agent's own complaint, if it made one, is the first line outside mpirun's boxes.
  std::string cause;
  for (const auto& l : lines) {
    if (l.empty() || l.find("------") == 0) break;
    cause = l;
    break;
  }
  return MpirunDiagnosis{
      "",
      "Open MPI could not start its daemon on a remote host" +
          (cause.empty() ? std::string(" (no route back to this host, or the agent failed)") : ": " + cause),
      false, true};
}

// "mpirun was unable to launch the specified application as it could not access or execute an
// executable:" then "Executable: PATH" and "Node: HOST": gaudi_spawn (the rank wrapper) or Open MPI is not
// at the same path on that host.
std::optional<MpirunDiagnosis> missing_executable(const std::vector<std::string>& lines) {
  const auto at = find_index(lines, "could not access");
  if (!at) return std::nullopt;
  static const std::regex exe(R"(^\s*Executable:\s*(\S+))"), node(R"(^\s*Node:\s*(\S+))");
  const auto e = find_line(lines, exe, *at), n = find_line(lines, node, *at);
  const std::string path = e ? (*e)[1].str() : "?", host = n ? (*n)[1].str() : "";
  return MpirunDiagnosis{host,
                         "host " + (host.empty() ? std::string("?") : host) + " cannot run " + path +
                             " (missing or not executable there); gaudi_spawn, the program and Open MPI must be "
                             "at the same paths on every host",
                         false};
}

}  // namespace

std::string status_record(const RankStatus& status) {
  return kStatusMark + rank_status_to_json(status) + "\n";
}

std::optional<MpirunDiagnosis> diagnose_mpirun_messages(const std::vector<std::string>& lines) {
  if (auto d = lost_daemon(lines)) return d;
  if (auto d = unreported_rank_death(lines)) return d;
  if (auto d = unreachable_host(lines)) return d;
  if (auto d = missing_executable(lines)) return d;
  return daemon_not_started(lines);
}

MpirunStderr::MpirunStderr(int log_fd, size_t keep_lines) : log_fd_(log_fd), keep_lines_(keep_lines) {}

void MpirunStderr::write(const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != '\n') {
      partial_ += data[i];
      continue;
    }
    take_line(std::move(partial_));
    partial_.clear();
  }
}

void MpirunStderr::finish() {
  if (!partial_.empty()) take_line(std::move(partial_));
  partial_.clear();
}

void MpirunStderr::take_line(std::string line) {
  // A record may follow an unfinished line of something else on the same stream.
  const auto mark = line.find(kStatusMark);
  if (mark != std::string::npos) {
    try {
      statuses_.push_back(rank_status_from_json(line.substr(mark + kStatusMark.size()), "a rank's status record"));
      line.resize(mark);
    } catch (const std::exception&) {
      // Cut short: keep it in the log as it came.
    }
    if (line.empty()) return;
  }
  if (log_fd_ >= 0 && !write_all(log_fd_, (line + "\n").data(), line.size() + 1)) log_fd_ = -1;
  ++line_count_;
  lines_.push_back(std::move(line));
  while (lines_.size() > keep_lines_) lines_.pop_front();
}

}  // namespace mpibert::launcher
