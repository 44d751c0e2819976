#include "launcher/cma_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "launcher/process.h"

namespace mpibert::launcher {
namespace {

constexpr size_t kBytes = 32 * 1024;  // several pages, like the fragments Open MPI copies
constexpr unsigned kChildLimitS = 2;  // a child still alive after this ends itself (SIGALRM)

// How far the probe got; travels through the pipes as plain bytes.
enum class Stage : int { Ok, Prctl, Readv, Writev, ShortCopy, WrongData, PeerGone, Timeout };

struct Report {
  Stage stage = Stage::Ok;
  int err = 0;  // errno of the failing call
};

// Pipes and buffers are made before fork(), so that the children never allocate.
struct Probe {
  Pipe ready;   // target -> reader: its Report, once its buffer holds the pattern
  Pipe done;    // reader -> target: end of file when the reader has finished
  Pipe result;  // reader -> us: the Report
  std::vector<unsigned char> source, landing, scratch, check;
  char yama_scope = '0';

  Probe() : ready(make_pipe()), done(make_pipe()), result(make_pipe()) {
    for (auto* b : {&source, &landing, &scratch, &check}) b->assign(kBytes, 0);
  }
  ~Probe() {
    for (int* fd : {&ready.read_fd, &ready.write_fd, &done.read_fd, &done.write_fd, &result.read_fd, &result.write_fd})
      close_fd(*fd);
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
};

// The target's bytes: never 0 (every buffer starts zeroed) and different in every process.
unsigned char pattern(pid_t pid, size_t i) {
  return static_cast<unsigned char>(1 + (i * 131 + static_cast<size_t>(pid) * 7) % 251);
}

// As Open MPI reads it: the first byte of Yama's setting, '0' when there is none. Anything else makes
// every rank call prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY) before it uses CMA.
char read_yama_scope() {
  char scope = '0';
  const int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &scope, 1) != 1) scope = '0';
    close(fd);
  }
  return scope;
}

// --- In the children: async-signal-safe calls only (the launcher may have threads). ---

bool read_full(int fd, void* data, size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Dies with the launcher, and by itself after kChildLimitS whatever happens.
void start_child(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGALRM, &dfl, nullptr);
  sigset_t alarm_only;
  sigemptyset(&alarm_only);
  sigaddset(&alarm_only, SIGALRM);
  sigprocmask(SIG_UNBLOCK, &alarm_only, nullptr);
  alarm(kChildLimitS);
}

Report allow_any_tracer(char yama_scope) {
  if (yama_scope != '0' && prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0) != 0) return {Stage::Prctl, errno};
  return {};
}

[[noreturn]] void run_target(Probe& p, pid_t parent) {
  start_child(parent);
  for (int* fd : {&p.ready.read_fd, &p.done.write_fd, &p.result.read_fd, &p.result.write_fd}) close(*fd);
  const Report r = allow_any_tracer(p.yama_scope);
  const pid_t self = getpid();
  for (size_t i = 0; i < kBytes; ++i) p.source[i] = pattern(self, i);
  write_all(p.ready.write_fd, reinterpret_cast<const char*>(&r), sizeof r);
  char byte;
  while (read(p.done.read_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

// Reads the target's pattern, writes it into the target's scratch buffer, and reads that back.
Report copy_both_ways(Probe& p, pid_t target) {
  iovec from_source = {p.source.data(), kBytes}, to_landing = {p.landing.data(), kBytes};
  ssize_t n = process_vm_readv(target, &to_landing, 1, &from_source, 1, 0);
  if (n < 0) return {Stage::Readv, errno};
  if (n != static_cast<ssize_t>(kBytes)) return {Stage::ShortCopy, 0};
  for (size_t i = 0; i < kBytes; ++i)
    if (p.landing[i] != pattern(target, i)) return {Stage::WrongData, 0};
  iovec to_scratch = {p.scratch.data(), kBytes};
  n = process_vm_writev(target, &to_landing, 1, &to_scratch, 1, 0);
  if (n < 0) return {Stage::Writev, errno};
  iovec to_check = {p.check.data(), kBytes};
  if (n != static_cast<ssize_t>(kBytes) || process_vm_readv(target, &to_check, 1, &to_scratch, 1, 0) != n)
    return {Stage::ShortCopy, 0};
  if (std::memcmp(p.check.data(), p.landing.data(), kBytes) != 0) return {Stage::WrongData, 0};
  return {};
}

[[noreturn]] void run_reader(Probe& p, pid_t parent, pid_t target) {
  start_child(parent);
  for (int* fd : {&p.ready.write_fd, &p.done.read_fd, &p.result.read_fd}) close(*fd);
  Report r = allow_any_tracer(p.yama_scope);
  Report theirs = {Stage::PeerGone, 0};
  if (!read_full(p.ready.read_fd, &theirs, sizeof theirs)) theirs = {Stage::PeerGone, 0};
  if (r.stage == Stage::Ok) r = theirs;
  if (r.stage == Stage::Ok) r = copy_both_ways(p, target);
  write_all(p.result.write_fd, reinterpret_cast<const char*>(&r), sizeof r);
  _exit(0);
}

// --- In the launcher. ---

Report wait_for_report(int fd, int limit_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(limit_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd pfd = {fd, POLLIN, 0};
    const int n = poll(&pfd, 1, static_cast<int>(std::max<long long>(0, left)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {Stage::Timeout, 0};
    Report r;
    return read_full(fd, &r, sizeof r) ? r : Report{Stage::PeerGone, 0};
  }
}

// Reaps the child; kills it first if it is still running. A pid already reaped is left alone.
void stop_and_reap(pid_t pid) {
  int status = 0;
  pid_t w;
  while ((w = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (w != 0) return;
  kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

CmaProbeResult describe(const Report& r, char yama_scope, int limit_ms) {
  const std::string scope(1, yama_scope);
  switch (r.stage) {
    case Stage::Ok:
      return {true, "process_vm_readv and process_vm_writev worked between two sibling processes" +
                        (yama_scope == '0'
                             ? std::string()
                             : " (Yama ptrace_scope " + scope + ": both allowed any tracer, as Open MPI does)")};
    case Stage::Prctl:
      return {false, "cross-memory attach is not permitted here (Yama ptrace_scope " + scope +
                         ", and prctl(PR_SET_PTRACER): " + std::strerror(r.err) + ")"};
    case Stage::Readv:
      return {false, cma_failure_reason("process_vm_readv", r.err)};
    case Stage::Writev:
      return {false, cma_failure_reason("process_vm_writev", r.err)};
    case Stage::ShortCopy:
      return {false, "cross-memory attach failed here (it copied fewer bytes than asked)"};
    case Stage::WrongData:
      return {false, "cross-memory attach failed here (it copied bytes the other process does not hold)"};
    case Stage::PeerGone:
      return {false, "the cross-memory attach probe failed (one of its processes ended early)"};
    case Stage::Timeout:
      break;
  }
  return {false, "the cross-memory attach probe did not answer within " + std::to_string(limit_ms) + " ms"};
}

}  // namespace

std::string cma_failure_reason(const std::string& call, int err) {
  const char* verdict = err == EPERM || err == EACCES ? "is not permitted"
                        : err == ENOSYS               ? "is not available"
                                                      : "failed";
  return std::string("cross-memory attach ") + verdict + " here (" + call + ": " + std::strerror(err) + ")";
}

CmaProbeResult probe_cross_memory_attach(int limit_ms) {
  std::unique_ptr<Probe> p;
  try {
    p = std::make_unique<Probe>();
  } catch (const std::exception& e) {
    return {false, std::string("the cross-memory attach probe could not start (") + e.what() + ")"};
  }
  p->yama_scope = read_yama_scope();
  const pid_t parent = getpid();
  const pid_t target = fork();
  if (target < 0)
    return {false, std::string("the cross-memory attach probe could not start (fork: ") + std::strerror(errno) + ")"};
  if (target == 0) run_target(*p, parent);
  const pid_t reader = fork();
  if (reader < 0) {
    const int err = errno;
    stop_and_reap(target);
    return {false, std::string("the cross-memory attach probe could not start (fork: ") + std::strerror(err) + ")"};
  }
  if (reader == 0) run_reader(*p, parent, target);
  // Only the children hold the other ends now: the target sees end of file on `done` when the reader exits.
  for (int* fd : {&p->ready.read_fd, &p->ready.write_fd, &p->done.read_fd, &p->done.write_fd, &p->result.write_fd})
    close_fd(*fd);
  const Report r = wait_for_report(p->result.read_fd, limit_ms);
  stop_and_reap(reader);
  stop_and_reap(target);
  return describe(r, p->yama_scope, limit_ms);
}

}  // namespace mpibert::launcher
