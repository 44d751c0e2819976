#include "launcher/child_supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "launcher/process.h"

namespace mpibert::launcher {
namespace {

// Reads what is there now; returns false at EOF or error (the fd is then closed).
bool pump(int& fd, int stream, OutputSink* sink) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (sink) sink->write(stream, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    close_fd(fd);
    return false;
  }
}

}  // namespace

int exit_code_of_wait_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

namespace {

constexpr double kNever = std::numeric_limits<double>::infinity();

// One supervised child: its output pipes, the signals received, and the stop machinery's deadlines.
class Supervision {
 public:
  explicit Supervision(SuperviseOptions options) : o_(std::move(options)) {}
  ~Supervision() {
    close_fd(out_fd_);
    close_fd(err_fd_);
  }
  Supervision(const Supervision&) = delete;
  Supervision& operator=(const Supervision&) = delete;

  SuperviseResult run() {
    start();
    const double now = monotonic_seconds();
    deadline_ = o_.timeout_s > 0 ? now + o_.timeout_s : kNever;
    next_tick_ = o_.on_tick ? now + o_.tick_s : kNever;
    for (;;) {
      wait_for_events();
      handle_signals();
      pump_output();
      if (reaped()) break;
      check_deadlines();
    }
    // Everything the child wrote is in the pipes now; whatever its own children still hold open is not
    // waited for.
    pump_output();
    close_fd(out_fd_);
    close_fd(err_fd_);
    return r_;
  }

 private:
  void say(const std::string& text) const {
    if (!o_.quiet) std::fprintf(stderr, "%s: %s\n", o_.name.c_str(), text.c_str());
  }

  void start() {
    if (!o_.capture_output) {
      r_.pid = spawn_process(o_.spawn);
    } else {
      Pipe out = make_pipe(), err = make_pipe();
      o_.spawn.stdout_fd = out.write_fd;
      o_.spawn.stderr_fd = err.write_fd;
      out_fd_ = out.read_fd;
      err_fd_ = err.read_fd;
      try {
        r_.pid = spawn_process(o_.spawn);
      } catch (...) {
        close_fd(out.write_fd), close_fd(err.write_fd);
        throw;
      }
      close_fd(out.write_fd);
      close_fd(err.write_fd);
      set_nonblocking(out_fd_);
      set_nonblocking(err_fd_);
    }
    target_ = o_.spawn.new_process_group ? -r_.pid : r_.pid;
  }

  // Sleeps until a signal, output, or the next deadline.
  void wait_for_events() {
    const double wake = std::min({deadline_, soft_until_, kill_at_, next_tick_});
    const int wait_ms =
        wake == kNever ? -1 : static_cast<int>(std::ceil(std::max(0.0, wake - monotonic_seconds()) * 1000));
    pollfd fds[3];
    int nfds = 0;
    fds[nfds++] = {signals_.fd(), POLLIN, 0};
    if (out_fd_ >= 0) fds[nfds++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[nfds++] = {err_fd_, POLLIN, 0};
    poll(fds, static_cast<nfds_t>(nfds), wait_ms);  // EINTR/ENOMEM: just look again
  }

  void handle_signals() {
    for (int sig : signals_.drain()) {
      if (sig == SIGCHLD) continue;
      if (sig == SIGUSR2 && o_.on_usr2)
        on_stop_signal(o_.on_usr2());
      else if (sig == SIGUSR1 || sig == SIGUSR2)
        kill(target_, sig);
      else
        on_stop_signal(sig);
    }
  }

  void pump_output() {
    if (out_fd_ >= 0) pump(out_fd_, 1, o_.sink);
    if (err_fd_ >= 0) pump(err_fd_, 2, o_.sink);
  }

  bool reaped() {
    int st = 0;
    if (waitpid(r_.pid, &st, WNOHANG) != r_.pid) return false;
    r_.wait_status = st;
    return true;
  }

  void check_deadlines() {
    const double t = monotonic_seconds();
    if (!stopping_ && t >= deadline_) {
      r_.timed_out = true;
      say("error: the job ran past --timeout " + seconds_text(o_.timeout_s) + " s; stopping it");
      soft_stop(SIGTERM);
    }
    if (t >= next_tick_) {
      next_tick_ = t + o_.tick_s;
      const std::string reason = r_.hard_stopped ? "" : o_.on_tick();
      if (!reason.empty()) {
        r_.stop_reason = reason;
        if (o_.announce_tick_stop) say(reason + "; stopping the job");
        stopping_ = true;
        hard_stop(SIGTERM);
      }
    }
    if (t >= soft_until_ && !r_.hard_stopped) {
      say("the job did not end within " + seconds_text(o_.soft_grace_s) + " s of being asked to stop: stopping it");
      hard_stop(SIGTERM);
    }
    if (t >= kill_at_ && !r_.killed) {
      say("the job did not end in time: killing it");
      kill_now();
    }
  }

  void on_stop_signal(int sig) {
    if (r_.stop_signal == 0) {
      r_.stop_signal = sig;
      say("got " + signal_name(sig) + ", passing it on to the job (send it again to kill the job at once)");
      soft_stop(sig);
    } else if (!r_.killed) {
      say("got " + signal_name(sig) + " again: killing the job");
      kill_now();
    }
  }

  void soft_stop(int sig) {
    stopping_ = true;
    if (o_.request_stop && o_.request_stop(r_.pid, sig)) {
      soft_until_ = monotonic_seconds() + o_.soft_grace_s;
      return;
    }
    // Asking the child itself: the signal is the request; SIGKILL if it has not ended in time.
    kill(target_, sig);
    kill_at_ = monotonic_seconds() + o_.soft_grace_s;
  }

  void hard_stop(int sig) {
    if (r_.hard_stopped) return;
    r_.hard_stopped = true;
    kill(target_, sig);
    kill_at_ = monotonic_seconds() + o_.hard_grace_s;
  }

  void kill_now() {
    kill(target_, SIGKILL);
    r_.killed = true;
  }

  SuperviseOptions o_;
  SuperviseResult r_;
  // Installed before the child exists, so that no SIGCHLD or Ctrl-C is missed.
  SignalPipe signals_{{SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}};
  int out_fd_ = -1, err_fd_ = -1;
  pid_t target_ = 0;  // the child, or its process group
  double deadline_ = kNever, soft_until_ = kNever, kill_at_ = kNever, next_tick_ = kNever;
  bool stopping_ = false;
};

}  // namespace

SuperviseResult supervise_child(SuperviseOptions options) {
  return Supervision(std::move(options)).run();
}

}  // namespace mpibert::launcher
