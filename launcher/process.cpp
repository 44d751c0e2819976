#include "launcher/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace mpibert::launcher {
namespace {

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Only async-signal-safe calls from here on: the child of fork() must not allocate.
[[noreturn]] void exec_child(const SpawnSpec& spec, char* const* argv, char* const* envp, char* const* sh_argv,
                             int error_fd, pid_t parent) {
  // Dispositions the launcher changed (ignored SIGPIPE, blocked signals) must not leak into the program.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM}) signal(sig, SIG_DFL);
  if (spec.new_process_group) setpgid(0, 0);
  if (spec.parent_death_signal != 0) {
    prctl(PR_SET_PDEATHSIG, spec.parent_death_signal);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  }
  if (spec.stdin_fd >= 0) dup2(spec.stdin_fd, 0);
  if (spec.stdout_fd >= 0) dup2(spec.stdout_fd, 1);
  if (spec.stderr_fd >= 0) dup2(spec.stderr_fd, 2);
  execve(argv[0], argv, envp);
  if (errno == ENOEXEC) execve("/bin/sh", sh_argv, envp);
  int err = errno;
  ssize_t ignored = write(error_fd, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

int g_signal_write_fd = -1;

void on_signal(int sig) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(sig);
  ssize_t ignored = write(g_signal_write_fd, &byte, 1);
  (void)ignored;
  errno = saved;
}

}  // namespace

Pipe make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  return {fds[0], fds[1]};
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, 1000);
        continue;
      }
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

pid_t spawn_process(const SpawnSpec& spec) {
  if (spec.argv.empty()) throw std::runtime_error("spawn_process: empty argv");
  std::vector<char*> argv = c_strings(spec.argv);
  std::vector<char*> envp = c_strings(spec.env);
  std::vector<std::string> sh = {"/bin/sh"};
  sh.insert(sh.end(), spec.argv.begin(), spec.argv.end());
  std::vector<char*> sh_argv = c_strings(sh);
  Pipe errors = make_pipe();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close_fd(errors.read_fd);
    close_fd(errors.write_fd);
    throw std::runtime_error("cannot start " + spec.argv[0] + ": fork: " + std::strerror(errno));
  }
  if (pid == 0) exec_child(spec, argv.data(), envp.data(), sh_argv.data(), errors.write_fd, parent);
  // Also set the group from the parent: whichever runs first, signals sent right after spawn reach it.
  if (spec.new_process_group) setpgid(pid, pid);
  close_fd(errors.write_fd);
  int child_errno = 0;
  ssize_t n;
  do n = read(errors.read_fd, &child_errno, sizeof child_errno);
  while (n < 0 && errno == EINTR);
  close_fd(errors.read_fd);
  if (n > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error("cannot execute " + spec.argv[0] + ": " + std::strerror(child_errno));
  }
  return pid;
}

std::string run_and_capture(const std::vector<std::string>& argv, double timeout_s, int* status) {
  Pipe out = make_pipe();
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  SpawnSpec spec;
  spec.argv = argv;
  spec.env = current_environment();
  spec.stdin_fd = devnull;
  spec.stdout_fd = out.write_fd;
  spec.stderr_fd = out.write_fd;
  pid_t pid;
  try {
    pid = spawn_process(spec);
  } catch (...) {
    close_fd(out.read_fd);
    close_fd(out.write_fd);
    close_fd(devnull);
    throw;
  }
  close_fd(out.write_fd);
  close_fd(devnull);
  std::string text;
  const double deadline = monotonic_seconds() + timeout_s;
  char buf[4096];
  for (;;) {
    double left = deadline - monotonic_seconds();
    if (left <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{out.read_fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(out.read_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close_fd(out.read_fd);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (status) *status = st;
  return text;
}

SignalPipe::SignalPipe(const std::vector<int>& signals) : signals_(signals) {
  if (g_signal_write_fd >= 0) throw std::logic_error("only one SignalPipe may exist at a time");
  Pipe p = make_pipe();
  set_nonblocking(p.read_fd);
  set_nonblocking(p.write_fd);
  read_fd_ = p.read_fd;
  g_signal_write_fd = p.write_fd;
  for (int sig : signals_) {
    struct ::sigaction old {};
    ::sigaction(sig, nullptr, &old);
    previous_.push_back(old);
    struct ::sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
    ::sigaction(sig, &sa, nullptr);
  }
}

SignalPipe::~SignalPipe() {
  for (size_t i = 0; i < signals_.size(); ++i) {
    ::sigaction(signals_[i], &previous_[i], nullptr);
  }
  close_fd(g_signal_write_fd);
  close_fd(read_fd_);
}

std::vector<int> SignalPipe::drain() {
  std::vector<int> got;
  unsigned char buf[64];
  for (;;) {
    ssize_t n = read(read_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) got.push_back(buf[i]);
  }
  return got;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

std::vector<std::string> current_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace mpibert::launcher
