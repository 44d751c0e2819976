#pragma once
// Thin POSIX process helpers for the launcher: fork+exec without a shell, a self-pipe for signals
// (so one poll() loop sees output, child exits, signals and deadlines), and small fd utilities.
#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace mpibert::launcher {

struct SpawnSpec {
  std::vector<std::string> argv;   // argv[0] is the file executed (absolute path)
  std::vector<std::string> env;    // complete environment, "KEY=VALUE"
  int stdin_fd = -1;               // -1: inherit
  int stdout_fd = -1;              // -1: inherit
  int stderr_fd = -1;              // -1: inherit
  bool new_process_group = false;  // the child leads its own group, so signals reach its whole tree
  int parent_death_signal = 0;     // Linux: signal the child gets when this process dies (0 = none)
};

// Starts the child and returns its pid once exec succeeded; throws std::runtime_error naming the
// program and errno text when it could not start. A file without #! is run by /bin/sh, like execvp.
pid_t spawn_process(const SpawnSpec& spec);

// Runs argv to completion and returns its stdout and stderr together; `status` gets the wait status.
// Gives up (killing it) after timeout_s. Throws std::runtime_error when it cannot start.
std::string run_and_capture(const std::vector<std::string>& argv, double timeout_s, int* status);

// Signals are turned into bytes on a non-blocking pipe. One instance at a time; the destructor restores
// the previous handlers.
class SignalPipe {
 public:
  explicit SignalPipe(const std::vector<int>& signals);
  ~SignalPipe();
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;
  int fd() const { return read_fd_; }
  std::vector<int> drain();  // signals received since the last call, in order

 private:
  int read_fd_ = -1;
  std::vector<int> signals_;
  std::vector<struct ::sigaction> previous_;
};

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
};
Pipe make_pipe();  // both ends close-on-exec
void close_fd(int& fd);
void set_nonblocking(int fd);
// Writes everything (retrying on EINTR/partial writes); false on error (e.g. EPIPE).
bool write_all(int fd, const char* data, size_t size);

// "SIGKILL"-style name, or "signal N".
std::string signal_name(int sig);
// Seconds as the user wrote them ("%g": 30, 0.5), for messages.
std::string seconds_text(double s);
// The current process environment as "KEY=VALUE" strings.
std::vector<std::string> current_environment();
// Seconds on a monotonic clock.
double monotonic_seconds();

}  // namespace mpibert::launcher
