#include "launcher/job_report.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <regex>

#include "common/error.h"
#include "launcher/job_runner.h"
#include "launcher/mpirun_messages.h"
#include "launcher/process.h"
#include "launcher/stop_note.h"

namespace mpibert::launcher {
namespace {

std::string host_of_rank(const std::vector<HostPlacement>& placement, int rank) {
  const HostPlacement* p = placement_of_rank(placement, rank);
  return p ? p->name : "?";
}

// Rank numbers of a host, "1" or "2-3".
std::string ranks_of_host(const std::vector<HostPlacement>& placement, const std::string& host) {
  for (const auto& p : placement)
    if (same_host(p.name, host))
      return (p.ranks == 1 ? "rank " : "ranks ") + std::to_string(p.first_rank) +
             (p.ranks == 1 ? "" : "-" + std::to_string(p.first_rank + p.ranks - 1));
  return "";
}

// A clean stop: at least one rank exited 75, and every other rank that did not exit 0 exited 75 too or
// was stopped by the teardown that followed (mpirun ends the job when a rank exits non-zero).
std::optional<JobReport> clean_stop(const JobOutcome& o) {
  if (o.hard_stopped) return std::nullopt;
  const RankStatus* said = nullptr;
  bool any = false;
  for (const auto& s : o.statuses) {
    if (!s.failed()) continue;
    const bool clean = s.signal == 0 && s.exit_code == kExitStoppedCleanly;
    if (!clean && s.stopped && s.start_error.empty()) continue;
    if (!clean) return std::nullopt;
    any = true;
    if (s.stop_step >= 0 || !s.checkpoint.empty())
      if (!said || s.rank < said->rank) said = &s;
  }
  if (!any) return std::nullopt;
  StopNote note;
  if (said) note = StopNote{said->stop_step, said->checkpoint};
  return JobReport{{describe_clean_stop(note)}, kExitStoppedCleanly};
}

// The comm layer's abort line names the rank it stopped hearing from (common/comm/peer_liveness.cpp):
// "mpibert: rank R aborts the job: ... rank K has not been heard from for X s ... (silence limit Y s)".
// The collective timeout of a rank that waited (common/comm/mpi_work.cpp): "... did not finish within
// 20 s on rank 0: rank 1 (host h2) has not issued it: its last heartbeat, 20.3 s ago, ...".
// A rank that aborted the job because a peer went silent: the peer and its host are what failed.
struct SilentPeer {
  std::string text;
  int rank = -1;
  std::string host;
};

std::optional<SilentPeer> missing_peer_report(const std::string& line, const RankStatus& s,
                                              const std::vector<HostPlacement>& placement) {
  static const std::regex missing(
      R"(did not finish within ([0-9.]+) s on rank \d+: rank (\d{1,9}) \(host ([^)]*)\) has not issued it: its )"
      R"(last heartbeat(?: \(as rank 0 relays it\))?, ([0-9.]+) s ago)");
  std::smatch m;
  if (!std::regex_search(line, m, missing)) return std::nullopt;
  const double limit = std::stod(m[1].str()), quiet = std::stod(m[4].str());
  const std::string peer = m[2].str(), host = m[3].str();
  const std::string aborted = "; rank " + std::to_string(s.rank) + " on host " + s.host + " aborted the job";
  SilentPeer found{"", std::stoi(peer), host_of_rank(placement, std::stoi(peer))};
  if (quiet >= limit / 2)  // silent for most of the wait: gone, stopped or cut off
    found.text = "host " + host + " is unreachable or rank " + peer + " on it stopped: rank " + peer +
                 " was not heard from for " + m[4].str() + " s (dist.timeout_s " + m[1].str() + " s)" + aborted;
  else
    found.text = "rank " + peer + " on host " + host +
                 " is alive but did not reach the collective within dist.timeout_s " + m[1].str() +
                 " s (it is slow or took another code path)" + aborted;
  return found;
}

std::optional<SilentPeer> silent_peer_report(const RankStatus& s, const std::vector<HostPlacement>& placement) {
  static const std::regex silent(
      R"(rank (\d{1,9}) has not been heard from for ([0-9.]+ s).*\(silence limit ([0-9.]+ s)\))");
  for (const auto& line : s.tail) {
    if (line.find("aborts the job") == std::string::npos) continue;
    if (auto missing = missing_peer_report(line, s, placement)) return missing;
    std::smatch m;
    if (!std::regex_search(line, m, silent)) continue;
    const int peer = std::stoi(m[1].str());
    const std::string host = host_of_rank(placement, peer);
    return SilentPeer{"host " + host + " is unreachable or rank " + std::to_string(peer) + " on it stopped: rank " +
                          std::to_string(peer) + " was not heard from for " + m[2].str() + " (dist.timeout_s " +
                          m[3].str() + "); rank " + std::to_string(s.rank) + " on host " + s.host + " aborted the job",
                      peer, host};
  }
  return std::nullopt;
}

JobReport rank_failure(const RankStatus& s, const JobOutcome& o, int code) {
  const int rank_code = s.shell_code();
  JobReport r{{}, rank_code != 0 ? rank_code : code};
  // Bad input (exit 2) fails the same way on any hosts.
  r.restartable = rank_code != kExitUsage;
  if (auto silent = silent_peer_report(s, o.placement)) {
    r.lines = {"error: " + silent->text};
    r.failed_rank = silent->rank;
    r.failed_host = silent->host;
    return r;
  }
  r.failed_rank = s.rank;
  r.failed_host = s.host;
  // Rank 0's output is on the console already, just above.
  if (s.rank == 0 && !s.tail.empty()) {
    r.lines = {"error: " + describe_rank_end(s) + " (its output is above)"};
    return r;
  }
  std::string log;
  if (!o.log_dir.empty()) log = o.log_dir + "/" + log_file_name(s.rank);
  r.lines = {"error: " + format_failure_report(s, log)};
  return r;
}

std::string mpirun_log_hint(const JobOutcome& o) {
  if (o.mpirun_log.empty() || o.mpirun_lines.empty()) return "";
  return "; mpirun's messages: " + o.mpirun_log;
}

JobReport stopped_by_signal(const JobOutcome& o, const std::optional<RankStatus>& failure) {
  const int job_code = failure ? failure->shell_code() : o.child_code;
  const bool ended_by_itself = !o.hard_stopped;
  return JobReport{{"the job was stopped on " + signal_name(o.stop_signal) +
                    (ended_by_itself ? " (exit code " + std::to_string(job_code) + ")" : "")},
                   ended_by_itself ? job_code : 128 + o.stop_signal};
}

}  // namespace

std::vector<RankStatus> merge_statuses(std::vector<RankStatus> files, const std::vector<RankStatus>& records) {
  for (const auto& r : records)
    if (std::none_of(files.begin(), files.end(), [&](const RankStatus& f) { return f.rank == r.rank; }))
      files.push_back(r);
  std::sort(files.begin(), files.end(), [](const RankStatus& a, const RankStatus& b) { return a.rank < b.rank; });
  return files;
}

// ORTE also reports a daemon that "failed after launch" when a host dies mid-job. Ranks are launched only
// once every daemon has started, so if any rank reported or rank 0's output arrived, the daemon was lost:
// the host is the one whose ranks did not report, when exactly one is. The launch host is never it: its
// daemon is mpirun itself.
std::optional<MpirunDiagnosis> lost_running_host(const JobOutcome& o, const std::optional<MpirunDiagnosis>& d) {
  if (!d || !d->daemon_failed || (o.statuses.empty() && !o.rank_output_seen)) return d;
  std::vector<std::string> silent;
  for (const auto& p : o.placement) {
    const bool reported = std::any_of(o.statuses.begin(), o.statuses.end(), [&](const RankStatus& s) {
      return s.rank >= p.first_rank && s.rank < p.first_rank + p.ranks;
    });
    if (!reported && !is_launch_host(p.name, o.launch_host)) silent.push_back(p.name);
  }
  if (silent.size() != 1) return d;
  return MpirunDiagnosis{
      silent[0], "lost contact with host " + silent[0] + ": its Open MPI daemon died or the network to it failed",
      true};
}

JobReport conclude_job(const JobOutcome& o) {
  if (o.timed_out)
    return {{"error: the job was stopped after running past --timeout " + seconds_text(o.timeout_s) + " s"},
            kExitTimeout};
  if (auto stop = clean_stop(o)) return *stop;
  const std::optional<RankStatus> failure = first_failure(o.statuses);
  if (o.stop_signal != 0) return stopped_by_signal(o, failure);
  const auto diagnosis = lost_running_host(o, diagnose_mpirun_messages(o.mpirun_lines));
  const int code = o.child_code != 0 ? o.child_code : 1;
  // A lost host explains whatever its peers did next (a broken connection, a teardown).
  if (diagnosis && diagnosis->host_lost) {
    const std::string ranks = ranks_of_host(o.placement, diagnosis->host);
    return {{"error: " + diagnosis->text + (ranks.empty() ? "" : " (" + ranks + " ran there)") + mpirun_log_hint(o)},
            code,
            true,
            -1,
            diagnosis->host};
  }
  if (failure && !failure->stopped) return rank_failure(*failure, o, code);
  if (o.child_code == 0) return {{}, 0};
  if (o.direct)
    return {{"error: " + o.program + " exited with code " + std::to_string(o.child_code)},
            o.child_code,
            o.child_code != kExitUsage};
  if (diagnosis) return {{"error: " + diagnosis->text + mpirun_log_hint(o)}, o.child_code, true, -1, diagnosis->host};
  std::string where = o.mpirun_log.empty() ? "" : "; its messages: " + o.mpirun_log;
  return {{"error: mpirun exited with code " + std::to_string(o.child_code) + " before any rank reported a failure" +
           where},
          o.child_code,
          true};
}

}  // namespace mpibert::launcher
