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

namespace mpibert::launcher {
namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// Reads what is there now; returns false at EOF or error (the fd is then closed).
bool pump(int& fd, int stream, OutputTee* tee) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (tee) tee->write(stream, buf, static_cast<size_t>(n));
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

SuperviseResult supervise_child(SuperviseOptions o) {
  SuperviseResult r;
  auto say = [&](const std::string& text) {
    if (!o.quiet) std::fprintf(stderr, "%s: %s\n", o.name.c_str(), text.c_str());
  };
  // Installed before the child exists, so that no SIGCHLD or Ctrl-C is missed.
  SignalPipe signals({SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2});
  int out_fd = -1, err_fd = -1;
  if (o.capture_output) {
    Pipe out = make_pipe(), err = make_pipe();
    o.spawn.stdout_fd = out.write_fd;
    o.spawn.stderr_fd = err.write_fd;
    try {
      r.pid = spawn_process(o.spawn);
    } catch (...) {
      close_fd(out.read_fd), close_fd(out.write_fd), close_fd(err.read_fd), close_fd(err.write_fd);
      throw;
    }
    close_fd(out.write_fd);
    close_fd(err.write_fd);
    out_fd = out.read_fd;
    err_fd = err.read_fd;
    set_nonblocking(out_fd);
    set_nonblocking(err_fd);
  } else {
    r.pid = spawn_process(o.spawn);
  }
  const pid_t target = o.spawn.new_process_group ? -r.pid : r.pid;

  constexpr double kNever = std::numeric_limits<double>::infinity();
  const double start = monotonic_seconds();
  const double deadline = o.timeout_s > 0 ? start + o.timeout_s : kNever;
  double soft_until = kNever, kill_at = kNever;
  double next_tick = o.on_tick ? start + o.tick_s : kNever;
  bool stopping = false;
  auto hard_stop = [&](int sig) {
    if (r.hard_stopped) return;
    r.hard_stopped = true;
    kill(target, sig);
    kill_at = monotonic_seconds() + o.hard_grace_s;
  };
  auto soft_stop = [&](int sig) {
    stopping = true;
    if (o.request_stop && o.request_stop(r.pid, sig)) {
      soft_until = monotonic_seconds() + o.soft_grace_s;
      return;
    }
    // Asking the child itself: the signal is the request; SIGKILL if it has not ended in time.
    kill(target, sig);
    kill_at = monotonic_seconds() + o.soft_grace_s;
  };
  auto on_stop_signal = [&](int sig) {
    if (r.stop_signal == 0) {
      r.stop_signal = sig;
      say("got " + signal_name(sig) + ", passing it on to the job (send it again to kill the job at once)");
      soft_stop(sig);
    } else if (!r.killed) {
      say("got " + signal_name(sig) + " again: killing the job");
      kill(target, SIGKILL);
      r.killed = true;
    }
  };

  for (;;) {
    const double now = monotonic_seconds();
    double wake = std::min({deadline, soft_until, kill_at, next_tick});
    int wait_ms = wake == kNever ? -1 : static_cast<int>(std::ceil(std::max(0.0, wake - now) * 1000));
    pollfd fds[3];
    int nfds = 0;
    fds[nfds++] = {signals.fd(), POLLIN, 0};
    if (out_fd >= 0) fds[nfds++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[nfds++] = {err_fd, POLLIN, 0};
    poll(fds, static_cast<nfds_t>(nfds), wait_ms);  // EINTR/ENOMEM: just look again

    for (int sig : signals.drain()) {
      if (sig == SIGCHLD) continue;
      if (sig == SIGUSR2 && o.on_usr2)
        on_stop_signal(o.on_usr2());
      else if (sig == SIGUSR1 || sig == SIGUSR2)
        kill(target, sig);
      else
        on_stop_signal(sig);
    }
    if (out_fd >= 0) pump(out_fd, 1, o.tee);
    if (err_fd >= 0) pump(err_fd, 2, o.tee);

    int st = 0;
    if (waitpid(r.pid, &st, WNOHANG) == r.pid) {
      r.wait_status = st;
      break;
    }
    const double t = monotonic_seconds();
    if (!stopping && t >= deadline) {
      r.timed_out = true;
      say("error: the job ran past --timeout " + seconds_text(o.timeout_s) + " s; stopping it");
      soft_stop(SIGTERM);
    }
    if (t >= next_tick) {
      next_tick = t + o.tick_s;
      std::string reason = r.hard_stopped ? "" : o.on_tick();
      if (!reason.empty()) {
        r.stop_reason = reason;
        say(reason + "; stopping the job");
        stopping = true;
        hard_stop(SIGTERM);
      }
    }
    if (t >= soft_until && !r.hard_stopped) {
      say("the job did not end within " + seconds_text(o.soft_grace_s) + " s of being asked to stop: stopping it");
      hard_stop(SIGTERM);
    }
    if (t >= kill_at && !r.killed) {
      say("the job did not end in time: killing it");
      kill(target, SIGKILL);
      r.killed = true;
    }
  }
  // Everything the child wrote is in the pipes now; whatever its own children still hold open is not
  // waited for.
  if (out_fd >= 0) pump(out_fd, 1, o.tee);
  if (err_fd >= 0) pump(err_fd, 2, o.tee);
  close_fd(out_fd);
  close_fd(err_fd);
  return r;
}

}  // namespace mpibert::launcher
