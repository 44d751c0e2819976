#pragma once
// Copies a rank's stdout/stderr bytes, as they arrive, to its log file and (for rank 0) the console,
// and keeps its last lines for the failure report.
#include <cstddef>
#include <deque>
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

 private:
  void push(std::string line);
  size_t max_lines_, max_line_chars_;
  std::deque<std::string> lines_;
  std::string partial_[3];
  bool pending_cr_[3] = {false, false, false};
};

// Whether a tee copies to the console too: Mirror sends stdout bytes to fd 1 and stderr bytes to fd 2.
enum class Console { Off, Mirror };

class OutputTee {
 public:
  // log_fd: -1 = no log.
  OutputTee(int log_fd, Console console, TailBuffer* tail);
  void write(int stream, const char* data, size_t size);
  const std::string& log_error() const { return log_error_; }  // why logging stopped, if it did

 private:
  int log_fd_;
  bool to_console_;
  TailBuffer* tail_;
  std::string log_error_;
};

}  // namespace mpibert::launcher
