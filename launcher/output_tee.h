#pragma once
// Copies a rank's stdout/stderr bytes, as they arrive, to its log file and (for rank 0) the console,
// and keeps its last lines for the failure report.
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace mpibert::launcher {

// The last `max_lines` complete lines of a byte stream (two streams, each with its own partial line).
// A carriage return starts the line over (progress bars keep only their last state); long lines keep
// their end.
class TailBuffer {
 public:
  explicit TailBuffer(size_t max_lines = 20, size_t max_line_chars = 400);
  void append(int stream, const char* data, size_t size);  // stream: 1 = stdout, 2 = stderr
  std::vector<std::string> lines() const;                  // complete lines, then unfinished ones
  // Called with every complete line (after carriage-return handling, before truncation).
  void set_line_observer(std::function<void(const std::string&)> observer) { observer_ = std::move(observer); }

 private:
  void push(std::string line);
  size_t max_lines_, max_line_chars_;
  std::deque<std::string> lines_;
  std::function<void(const std::string&)> observer_;
  std::string partial_[3];
  bool pending_cr_[3] = {false, false, false};
};

// Where a supervised child's output goes, as it arrives (stream 1 = stdout, 2 = stderr).
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void write(int stream, const char* data, size_t size) = 0;
};

// Whether a tee copies to the console too: Mirror sends stdout bytes to fd 1 and stderr bytes to fd 2;
// Framed sends both to fd 1 as console frames (rank 0 under mpirun, see console_frames.h).
enum class Console { Off, Mirror, Framed };

class OutputTee : public OutputSink {
 public:
  // log_fd: -1 = no log.
  OutputTee(int log_fd, Console console, TailBuffer* tail);
  void write(int stream, const char* data, size_t size) override;
  const std::string& log_error() const { return log_error_; }  // why logging stopped, if it did

 private:
  int log_fd_;
  Console console_;
  TailBuffer* tail_;
  std::string log_error_;
};

}  // namespace mpibert::launcher
