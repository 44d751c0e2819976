#include "launcher/rank_status.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/io/atomic_file.h"
#include "launcher/process.h"

namespace mpibert::launcher {

int RankStatus::shell_code() const {
  if (signal != 0) return 128 + signal;
  if (!start_error.empty() && exit_code == 0) return 127;
  return exit_code;
}

std::string status_file_name(int rank) {
  return ".rank-" + std::to_string(rank) + ".status";
}
std::string log_file_name(int rank) {
  return "rank-" + std::to_string(rank) + ".log";
}

std::string rank_status_to_json(const RankStatus& s) {
  nlohmann::json j = {{"rank", s.rank},
                      {"host", s.host},
                      {"pid", s.pid},
                      {"exit_code", s.exit_code},
                      {"signal", s.signal},
                      {"stopped", s.stopped},
                      {"start_error", s.start_error},
                      {"finished_at", s.finished_at},
                      {"tail", s.tail},
                      {"stop_step", s.stop_step},
                      {"checkpoint", s.checkpoint}};
  // Output of a program is arbitrary bytes: replace invalid UTF-8 rather than fail.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

RankStatus rank_status_from_json(const std::string& text, const std::string& source) {
  try {
    auto j = nlohmann::json::parse(text);
    RankStatus s;
    s.rank = j.at("rank").get<int>();
    s.host = j.at("host").get<std::string>();
    s.pid = j.at("pid").get<long>();
    s.exit_code = j.at("exit_code").get<int>();
    s.signal = j.at("signal").get<int>();
    s.stopped = j.at("stopped").get<bool>();
    s.start_error = j.at("start_error").get<std::string>();
    s.finished_at = j.at("finished_at").get<double>();
    s.tail = j.at("tail").get<std::vector<std::string>>();
    s.stop_step = j.value("stop_step", -1);
    s.checkpoint = j.value("checkpoint", std::string());
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(source + ": not a rank status (" + e.what() + ")");
  }
}

namespace {
const char* const kStopRequestFile = ".stop-request";
}

void write_stop_request(const std::string& dir, int sig) {
  io::write_file_atomic(dir + "/" + kStopRequestFile, std::to_string(sig) + "\n");
}

int read_stop_request(const std::string& dir) {
  std::ifstream in(dir + "/" + kStopRequestFile);
  int sig = 0;
  if (!(in >> sig) || sig <= 0 || sig >= 65) return 0;
  return sig;
}

void write_rank_status(const std::string& dir, const RankStatus& status) {
  io::write_file_atomic(dir + "/" + status_file_name(status.rank), rank_status_to_json(status) + "\n");
}

namespace {

// Calls f(name, rank) for every "<prefix>N<suffix>" in dir.
template <class F>
void for_each_rank_file(const std::string& dir, const std::string& prefix, const std::string& suffix, F f) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (!std::all_of(digits.begin(), digits.end(), ::isdigit) || digits.size() > 9) continue;
    f(name, std::stoi(digits));
  }
  closedir(d);
}

}  // namespace

std::vector<RankStatus> read_rank_statuses(const std::string& dir) {
  std::vector<RankStatus> out;
  for_each_rank_file(dir, ".rank-", ".status", [&](const std::string& name, int) {
    std::ifstream in(dir + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    try {
      out.push_back(rank_status_from_json(text.str(), dir + "/" + name));
    } catch (const std::exception&) {
      // Not ours or cut short by a crash: the other ranks still tell the story.
    }
  });
  std::sort(out.begin(), out.end(), [](const RankStatus& a, const RankStatus& b) { return a.rank < b.rank; });
  return out;
}

void remove_rank_files(const std::string& dir, RankLogs logs) {
  std::vector<std::string> names;
  for_each_rank_file(dir, ".rank-", ".status", [&](const std::string& n, int) { names.push_back(n); });
  if (logs == RankLogs::Remove)
    for_each_rank_file(dir, "rank-", ".log", [&](const std::string& n, int) { names.push_back(n); });
  names.push_back(kStopRequestFile);
  // Temporary files of atomic writes that a crash cut short (io::temporary_path_for: PATH.tmp.PID.N).
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      const bool status_tmp = name.rfind(".rank-", 0) == 0 && name.find(".status.tmp") != std::string::npos;
      const bool stop_tmp = name.rfind(std::string(kStopRequestFile) + ".tmp", 0) == 0;
      if (status_tmp || stop_tmp) names.push_back(name);
    }
    closedir(d);
  }
  for (const auto& n : names) ::unlink((dir + "/" + n).c_str());
}

std::optional<RankStatus> first_failure(const std::vector<RankStatus>& statuses) {
  const RankStatus* best = nullptr;
  auto earlier = [](const RankStatus& a, const RankStatus& b) {
    if (a.stopped != b.stopped) return !a.stopped;
    if (a.finished_at != b.finished_at) return a.finished_at < b.finished_at;
    return a.rank < b.rank;
  };
  for (const auto& s : statuses)
    if (s.failed() && (!best || earlier(s, *best))) best = &s;
  if (!best) return std::nullopt;
  return *best;
}

std::string describe_rank_end(const RankStatus& s) {
  std::string who = "rank " + std::to_string(s.rank) + " on host " + (s.host.empty() ? "?" : s.host);
  if (!s.start_error.empty()) return who + " could not start: " + s.start_error;
  if (s.signal != 0)
    return who + " was killed by signal " + std::to_string(s.signal) + " (" + signal_name(s.signal) + ")";
  return who + " exited with code " + std::to_string(s.exit_code);
}

std::string format_failure_report(const RankStatus& s, const std::string& log_path) {
  std::string out = describe_rank_end(s);
  if (s.tail.empty()) return out + " (it printed nothing)";
  out += "; last " + std::to_string(s.tail.size()) + (s.tail.size() == 1 ? " line" : " lines") + " of its output";
  if (!log_path.empty()) out += " (" + log_path + ")";
  out += ":";
  for (const auto& line : s.tail) out += "\n  | " + line;
  return out;
}

}  // namespace mpibert::launcher
