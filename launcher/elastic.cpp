#include "launcher/elastic.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/io/json_file.h"
#include "launcher/job_runner.h"
#include "launcher/stop_note.h"

namespace mpibert::launcher {
namespace {

// The placement entry the failure is pinned on: by its rank when known (a rank reports its own host name,
// which need not be the name it was placed by), else by the host's name.
const HostPlacement* failed_placement(const LaunchPlan& plan, const JobReport& failure) {
  if (const HostPlacement* p = placement_of_rank(plan.placement, failure.failed_rank)) return p;
  if (failure.failed_host.empty()) return nullptr;
  for (const auto& p : plan.placement)
    if (same_host(p.name, failure.failed_host)) return &p;
  return nullptr;
}

std::string make_run_id(const std::string& hostname) {
  return hostname + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The attempt's variables on top of the user's --env (the last item for a key wins).
LaunchOptions with_attempt(LaunchOptions o, const std::string& run_id, int restart, int max_restarts) {
  o.env.push_back({"MPIBERT_RUN_ID", run_id});
  o.env.push_back({"MPIBERT_RESTART_COUNT", std::to_string(restart)});
  o.env.push_back({"MPIBERT_MAX_RESTARTS", std::to_string(max_restarts)});
  return o;
}

// --error_file: every failed attempt, rewritten after each.
class ErrorFile {
 public:
  ErrorFile(std::string path, const std::string& run_id) : path_(std::move(path)) {
    doc_ = {{"run_id", run_id}, {"failures", nlohmann::json::array()}};
  }
  void add(int restart, const JobReport& r, const std::string& then) {
    if (path_.empty()) return;
    doc_["failures"].push_back({{"restart_count", restart},
                                {"time", utc_now()},
                                {"rank", r.failed_rank},
                                {"host", r.failed_host},
                                {"exit_code", r.exit_code},
                                {"message", r.lines.empty() ? "" : r.lines.back()},
                                {"then", then}});
    try {
      io::write_json_file(path_, doc_);
    } catch (const std::exception& e) {
      report(std::string("warning: ") + e.what());
    }
  }

 private:
  std::string path_;
  nlohmann::json doc_;
};

std::string error_file_path(const LaunchOptions& o) {
  if (!o.error_file.empty()) return std::filesystem::absolute(o.error_file).string();
  return o.log_dir.empty() ? "" : (std::filesystem::absolute(o.log_dir) / "error.json").string();
}

}  // namespace

NextAttempt next_attempt(const LaunchOptions& current, const LaunchPlan& plan, const JobReport& failure) {
  NextAttempt next;
  LaunchOptions o = current;
  o.threads_per_rank = plan.threads_per_rank;
  int ranks = plan.world_size;
  const HostPlacement* failed = failed_placement(plan, failure);
  if (failed && !is_launch_host(failed->name, plan.launch_host)) {
    std::string hosts;
    ranks = 0;
    for (const auto& p : plan.placement) {
      if (&p == failed) continue;
      hosts += (hosts.empty() ? "" : ",") + p.name + ":" + std::to_string(p.ranks);
      ranks += p.ranks;
    }
    next.dropped_host = failed->name;
    o.hostfile.clear();
    o.hosts = hosts;
    o.world_size = ranks;
  }
  const int least = current.min_world_size.value_or(1);
  if (ranks < least) {
    next.why_not = std::to_string(ranks) + (ranks == 1 ? " rank" : " ranks") + " would be left" +
                   (next.dropped_host.empty() ? "" : " without host " + next.dropped_host) +
                   ", fewer than --min_world_size " + std::to_string(least);
    return next;
  }
  next.options = std::move(o);
  return next;
}

int restart_backoff_s(int restart) {
  return std::min(30, 1 << std::min(restart - 1, 5));
}

int run_elastic(const LaunchOptions& first, const Environment& env) {
  const std::string run_id = first.run_id.empty() ? make_run_id(env.hostname) : first.run_id;
  LaunchOptions options = first;
  ErrorFile errors(error_file_path(first), run_id);
  for (int restart = 0;; ++restart) {
    const LaunchPlan plan = build_launch_plan(with_attempt(options, run_id, restart, first.max_restarts), env);
    if (restart > 0)
      report("restart " + std::to_string(restart) + " of " + std::to_string(first.max_restarts) + " (job " + run_id +
             "): " + describe_plan(plan));
    const JobReport r = run_job(plan);
    if (r.exit_code == 0 || r.exit_code == kExitStoppedCleanly) return r.exit_code;
    if (!r.restartable) {
      errors.add(restart, r, "stopped: a restart would not help");
      return r.exit_code;
    }
    if (restart == first.max_restarts) {
      if (restart > 0)
        report("error: giving up after " + std::to_string(restart) + " restart(s) (--max_restarts " +
               std::to_string(first.max_restarts) + ")");
      errors.add(restart, r, restart > 0 ? "gave up: --max_restarts reached" : "stopped: no --max_restarts");
      return r.exit_code;
    }
    const NextAttempt next = next_attempt(options, plan, r);
    if (!next.options) {
      report("error: not restarting: " + next.why_not);
      errors.add(restart, r, "stopped: " + next.why_not);
      return r.exit_code;
    }
    const int wait_s = restart_backoff_s(restart + 1);
    const std::string where = next.dropped_host.empty() ? "on the same hosts" : "without host " + next.dropped_host;
    report("restarting in " + std::to_string(wait_s) + " s " + where + ", from the latest checkpoint (restart " +
           std::to_string(restart + 1) + " of " + std::to_string(first.max_restarts) + ")");
    errors.add(restart, r, "restart " + std::to_string(restart + 1) + " " + where);
    std::this_thread::sleep_for(std::chrono::seconds(wait_s));
    options = *next.options;
  }
}

}  // namespace mpibert::launcher
