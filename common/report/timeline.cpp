#include "common/report/timeline.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/error.h"

namespace mpibert::report {
namespace {

struct TimelineFile {
  std::mutex mutex;
  std::FILE* file = nullptr;
  int rank = 0;
  TimelineClock::time_point origin;
  ~TimelineFile() { timeline_close(); }
};

TimelineFile& state() {
  static TimelineFile s;
  return s;
}

std::atomic<bool> g_active{false};

const char* track_name(Track t) {
  switch (t) {
    case Track::Steps:
      return "steps";
    case Track::Phases:
      return "phases";
    case Track::Collectives:
      return "collectives (progress thread)";
    case Track::Io:
      return "checkpoints and evaluation";
  }
  return "other";
}

// Caller holds the mutex.
void write_locked(TimelineFile& s, const nlohmann::json& event) {
  const std::string text = event.dump();
  std::fprintf(s.file, "%s,\n", text.c_str());
}

}  // namespace

void timeline_open(const std::string& path, int rank, const std::string& label) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.file) return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  s.file = std::fopen(path.c_str(), "w");
  if (!s.file)
    throw UsageError("train.profile_dir (--profile): cannot write the timeline " + path + " (" + std::strerror(errno) +
                     "); give a directory this process may create files in");
  s.rank = rank;
  s.origin = TimelineClock::now();
  std::fprintf(s.file, "[\n");
  write_locked(s, {{"name", "process_name"}, {"ph", "M"}, {"pid", rank}, {"args", {{"name", label}}}});
  write_locked(s, {{"name", "process_sort_index"}, {"ph", "M"}, {"pid", rank}, {"args", {{"sort_index", rank}}}});
  for (Track t : {Track::Steps, Track::Phases, Track::Collectives, Track::Io})
    write_locked(s, {{"name", "thread_name"},
                     {"ph", "M"},
                     {"pid", rank},
                     {"tid", static_cast<int>(t)},
                     {"args", {{"name", track_name(t)}}}});
  std::fflush(s.file);
  g_active = true;
}

void timeline_close() {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.file) return;
  g_active = false;
  // The last event is followed by ",\n": a metadata event with nothing to say closes the array validly.
  std::fprintf(s.file, "{\"name\": \"trace_end\", \"ph\": \"M\", \"pid\": %d, \"args\": {}}\n]\n", s.rank);
  std::fclose(s.file);
  s.file = nullptr;
}

bool timeline_active() {
  return g_active.load(std::memory_order_relaxed);
}

void timeline_event(Track track, const std::string& name, TimelineClock::time_point start,
                    TimelineClock::time_point end, const std::string& args_json) {
  if (!timeline_active()) return;
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.file) return;
  auto us = [&](TimelineClock::time_point t) {
    return std::chrono::duration<double, std::micro>(t - s.origin).count();
  };
  nlohmann::json e = {{"name", name},    {"ph", "X"},
                      {"pid", s.rank},   {"tid", static_cast<int>(track)},
                      {"ts", us(start)}, {"dur", us(end) - us(start)}};
  if (!args_json.empty()) e["args"] = nlohmann::json::parse(args_json, nullptr, false);
  write_locked(s, e);
}

void timeline_flush() {
  if (!timeline_active()) return;
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.file) std::fflush(s.file);
}

TimelineScope::TimelineScope(Track track, std::string name, std::string args_json)
    : active_(timeline_active()), track_(track) {
  if (!active_) return;
  name_ = std::move(name);
  args_ = std::move(args_json);
  start_ = TimelineClock::now();
}

TimelineScope::~TimelineScope() {
  if (active_) timeline_event(track_, name_, start_, TimelineClock::now(), args_);
}

}  // namespace mpibert::report
