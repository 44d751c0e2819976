#include "common/log/progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace mpibert {
namespace {

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// Three significant figures or so, without exponents: 0.52, 7.25, 48.3, 1250.
std::string format_rate(double rate) {
  char buf[64];
  std::snprintf(buf, sizeof buf, rate >= 100 ? "%.0f" : rate >= 10 ? "%.1f" : "%.2f", rate);
  return buf;
}

std::string format_percent(int64_t done, int64_t total) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(done) / static_cast<double>(total));
  return buf;
}

}  // namespace

bool console_is_tty(const char* env_value, bool stderr_is_tty) {
  if (env_value == nullptr || env_value[0] == '\0') return stderr_is_tty;
  if (std::strcmp(env_value, "1") == 0) return true;
  if (std::strcmp(env_value, "0") == 0) return false;
  throw UsageError(std::string("MPIBERT_CONSOLE_IS_TTY='") + env_value + "' is not valid (expected 0 or 1)");
}

bool console_is_tty() {
  return console_is_tty(std::getenv("MPIBERT_CONSOLE_IS_TTY"), isatty(STDERR_FILENO) == 1);
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::llround(std::isfinite(seconds) ? std::max(0.0, seconds) : 0.0));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool is_rank0, ProgressOptions options)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), print_(is_rank0), options_(std::move(options)) {
  tty_ = print_ && (options_.tty ? *options_.tty : console_is_tty());
  if (!options_.clock) options_.clock = steady_seconds;
  if (!options_.sink) {
    if (tty_) {
      options_.sink = [](const std::string& text) {
        std::fputs(text.c_str(), stderr);
        std::fflush(stderr);
      };
    } else {
      options_.sink = [](const std::string& line) { spdlog::info("{}", line); };
    }
  }
  start_ = last_emit_ = options_.clock();
}

Progress::~Progress() {
  if (print_ && tty_ && drawn_ && !finished_) options_.sink("\n");
}

void Progress::update(int64_t done) {
  if (!print_ || finished_) return;
  done_ = done;
  const double now = options_.clock();
  const double interval = tty_ ? options_.redraw_interval_s : options_.log_interval_s;
  if (now - last_emit_ < interval) return;
  last_emit_ = now;
  emit(running_line(now), false);
}

void Progress::finish() {
  if (!print_ || finished_) return;
  emit(final_line(options_.clock()), true);
  finished_ = true;
}

std::string Progress::running_line(double now) const {
  const double elapsed = now - start_;
  std::string line = label_ + ": " + std::to_string(done_);
  if (total_ > 0) line += "/" + std::to_string(total_);
  line += " " + unit_;
  if (total_ > 0) line += " (" + format_percent(done_, total_) + ")";
  if (elapsed <= 0 || done_ <= 0) return line;
  const double rate = static_cast<double>(done_) / elapsed;
  line += " | " + format_rate(rate) + " " + unit_ + "/s";
  if (total_ > 0 && done_ < total_) line += " | ETA " + format_duration(static_cast<double>(total_ - done_) / rate);
  return line;
}

std::string Progress::final_line(double now) const {
  const double elapsed = now - start_;
  std::string line = label_ + ": " + std::to_string(done_);
  if (total_ > 0) line += "/" + std::to_string(total_);
  line += " " + unit_ + " in " + format_duration(elapsed);
  if (elapsed > 0) line += " | " + format_rate(static_cast<double>(done_) / elapsed) + " " + unit_ + "/s";
  return line;
}

void Progress::emit(const std::string& line, bool last) {
  if (!tty_) {
    options_.sink(line);
    return;
  }
  // Spaces over whatever a longer earlier line left on the terminal.
  const std::size_t pad = drawn_width_ > line.size() ? drawn_width_ - line.size() : 0;
  options_.sink("\r" + line + std::string(pad, ' ') + (last ? "\n" : ""));
  drawn_width_ = line.size();
  drawn_ = true;
}

}  // namespace mpibert
