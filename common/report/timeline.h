#pragma once
// A rank's timeline (`--profile DIR`, as Horovod's timeline): a Chrome trace of the training steps, their
// phases (data, forward, backward, the wait for the gradient all-reduce, the optimizer), checkpoints and
// evaluations, and every collective on the progress thread with its size, so that overlap and stragglers
// show in chrome://tracing or ui.perfetto.dev. One file per rank, DIR/timeline-rank-N.json, in the Trace
// Event Format's JSON array form: complete events ("ph": "X", microseconds since the run started) on named
// tracks; the process is the rank. Written as it goes and flushed after each step; the closing bracket is
// written at the end, and a trace cut short by a crash still loads (the format allows it to be missing).
// Off unless opened: each hook then costs one atomic load.
#include <chrono>
#include <string>

namespace mpibert::report {

using TimelineClock = std::chrono::steady_clock;

// The tracks (Chrome's threads), in display order.
enum class Track { Steps = 1, Phases = 2, Collectives = 3, Io = 4 };

// Starts this process's timeline in `path` (its directory is created); `label` names the process, e.g.
// "rank 0 (host a)". Throws UsageError naming the key and the path when it cannot be written.
void timeline_open(const std::string& path, int rank, const std::string& label);
// Writes the closing bracket and closes the file (also at exit). No-op when not open.
void timeline_close();
bool timeline_active();
// One complete event; `args_json` is a JSON object's text ("" = none), e.g. {"bytes": 1024}.
void timeline_event(Track track, const std::string& name, TimelineClock::time_point start,
                    TimelineClock::time_point end, const std::string& args_json = "");
void timeline_flush();

// Records [construction, destruction) as one event when the timeline is active.
class TimelineScope {
 public:
  TimelineScope(Track track, std::string name, std::string args_json = "");
  ~TimelineScope();
  TimelineScope(const TimelineScope&) = delete;
  TimelineScope& operator=(const TimelineScope&) = delete;

 private:
  bool active_;
  Track track_;
  std::string name_, args_;
  TimelineClock::time_point start_;
};

}  // namespace mpibert::report
