#pragma once
// Progress of long work (tokenizing, encoding, evaluating): "label: done/total unit (pct%) | rate unit/s |
// ETA h:mm:ss". On a terminal the line is redrawn in place with \r; otherwise (a pipe, a log file) one
// line is logged every few seconds. Only the process that says it is rank 0 prints anything.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace mpibert {

// Whether stderr is a terminal that can redraw a line: MPIBERT_CONSOLE_IS_TTY=1|0 when set (gaudi_spawn
// sets it for rank 0, whose stderr is a pipe under mpirun), else isatty(stderr). Throws UsageError
// naming the variable for any other value.
bool console_is_tty();
// The same rule on given inputs; env_value nullptr or "" = not set.
bool console_is_tty(const char* env_value, bool stderr_is_tty);

struct ProgressOptions {
  std::optional<bool> tty;         // unset: console_is_tty()
  double log_interval_s = 5;       // not a terminal: seconds between lines
  double redraw_interval_s = 0.2;  // a terminal: at most one redraw per this many seconds
  std::function<double()> clock;   // seconds on a monotonic clock; unset: std::chrono::steady_clock
  // Where the text goes; unset: stderr on a terminal, spdlog::info otherwise. On a terminal it gets raw
  // text ("\r<line><padding>" redraws, a final "\n" ends the line); otherwise one whole line per call.
  std::function<void(const std::string&)> sink;
};

class Progress {
 public:
  // total <= 0 means unknown (no percentage or ETA). unit names what is counted ("documents").
  Progress(std::string label, int64_t total, std::string unit, bool is_rank0, ProgressOptions options = {});
  ~Progress();  // ends a half-drawn terminal line; says nothing else (finish() reports the end)
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` units are complete (a running count, not an increment). Prints when the interval has passed.
  void update(int64_t done);
  // The final line: count, elapsed time and mean rate. Later calls (and updates) do nothing.
  void finish();

 private:
  std::string running_line(double now) const;
  std::string final_line(double now) const;
  void emit(const std::string& line, bool last);

  std::string label_, unit_;
  int64_t total_, done_ = 0;
  bool print_, tty_, finished_ = false, drawn_ = false;
  ProgressOptions options_;
  double start_, last_emit_;
  std::size_t drawn_width_ = 0;
};

// "h:mm:ss" for a number of seconds (rounded; negative counts as 0).
std::string format_duration(double seconds);

}  // namespace mpibert
