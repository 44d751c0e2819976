// The real cross-memory attach probe, on whatever this machine allows: the answer must be definite, come
// quickly, leave no process behind, and agree with an independent check.
#include "launcher/cma_probe.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

using namespace mpibert::launcher;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// No child of this test process is left, running or unreaped.
bool no_children_left() {
  return waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
}

bool yama_restricts_ptrace() {
  char scope = '0';
  const int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY);
  if (fd >= 0) {
    if (read(fd, &scope, 1) != 1) scope = '0';
    close(fd);
  }
  return scope != '0';
}

char g_text[64];  // at the same address in both forked siblings

// Independent of the probe: one sibling holds a text, the other reads it with process_vm_readv.
bool siblings_can_read_each_other() {
  int ready[2], hold[2];
  if (pipe(ready) != 0 || pipe(hold) != 0) return false;
  const bool yama = yama_restricts_ptrace();
  const pid_t holder = fork();
  if (holder == 0) {
    alarm(5);
    if (yama) prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    std::strcpy(g_text, "held by the first sibling");
    close(hold[1]);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    char c;
    _exit(read(hold[0], &c, 1) < 0 ? 1 : 0);  // until the test closes its end
  }
  const pid_t reader = fork();
  if (reader == 0) {
    alarm(5);
    close(ready[1]);
    char c, got[sizeof g_text] = {};
    if (read(ready[0], &c, 1) != 1) _exit(2);
    iovec local = {got, sizeof got}, remote = {g_text, sizeof g_text};
    const bool ok = process_vm_readv(holder, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof got) &&
                    std::strcmp(got, "held by the first sibling") == 0;
    _exit(ok ? 0 : 1);
  }
  for (int fd : {ready[0], ready[1], hold[0]}) close(fd);
  int status = 0;
  waitpid(reader, &status, 0);
  close(hold[1]);
  waitpid(holder, nullptr, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Installs a seccomp filter that makes process_vm_readv fail with EPERM (as container profiles do).
bool forbid_process_vm_readv() {
#if defined(__x86_64__)
  constexpr unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr unsigned arch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

struct ChildProbe {
  bool skipped = false;  // seccomp filters are not available here
  bool ok = false;
  bool children_left = true;
  double ms = 0;
  std::string reason;
};

// Runs the probe in a fresh child of this test, which has no other children of its own: afterwards it
// must have none at all. `forbid_readv` first installs the seccomp filter in that child.
ChildProbe probe_in_child(int limit_ms, bool forbid_readv = false) {
  int out[2];
  if (pipe(out) != 0) return {};
  const pid_t child = fork();
  if (child == 0) {
    close(out[0]);
    if (forbid_readv && !forbid_process_vm_readv()) _exit(77);
    const auto t0 = std::chrono::steady_clock::now();
    const CmaProbeResult r = probe_cross_memory_attach(limit_ms);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const std::string text =
        std::string(r.ok ? "1" : "0") + (no_children_left() ? "0" : "1") + std::to_string(ms) + "|" + r.reason;
    _exit(write(out[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 1);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  ChildProbe p;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return p;
  p.skipped = WEXITSTATUS(status) == 77;
  const size_t bar = text.find('|');
  if (WEXITSTATUS(status) != 0 || text.size() < 3 || bar == std::string::npos) return p;
  p.ok = text[0] == '1';
  p.children_left = text[1] == '1';
  p.ms = std::stod(text.substr(2, bar - 2));
  p.reason = text.substr(bar + 1);
  return p;
}

}  // namespace

TEST(CmaProbe, GivesADefiniteAnswerWithAReasonQuicklyAndLeavesNoProcessBehind) {
  const ChildProbe r = probe_in_child(1000);
  std::printf("probe: %s (%s) in %.2f ms\n", r.ok ? "ok" : "not ok", r.reason.c_str(), r.ms);
  EXPECT_FALSE(r.reason.empty());
  if (r.ok) {
    EXPECT_THAT(r.reason, StartsWith("process_vm_readv and process_vm_writev worked"));
  } else {
    EXPECT_THAT(r.reason, AnyOf(StartsWith("cross-memory attach "), StartsWith("the cross-memory attach probe ")));
  }
  EXPECT_LT(r.ms, 1000);  // about 1 ms unloaded; the limit is 1000 ms
  EXPECT_FALSE(r.children_left);
}

TEST(CmaProbe, AgreesWithTwoSiblingsReadingEachOther) {
  const CmaProbeResult r = probe_cross_memory_attach();
  const bool readable = siblings_can_read_each_other();
  if (r.ok) {
    EXPECT_TRUE(readable) << "the probe said ok, but process_vm_readv between siblings failed";
  } else if (r.reason.find("process_vm_readv:") != std::string::npos) {
    EXPECT_FALSE(readable) << "the probe said " << r.reason << ", but siblings can read each other";
  }
}

TEST(CmaProbe, ReportsAForbiddingSeccompFilterAsNotPermitted) {
  const ChildProbe r = probe_in_child(1000, true);
  // Every Linux kernel this project supports has seccomp filters (PR_SET_NO_NEW_PRIVS needs no privilege).
  ASSERT_FALSE(r.skipped) << "the test could not install its seccomp filter";
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "cross-memory attach is not permitted here (process_vm_readv: Operation not permitted)");
  EXPECT_FALSE(r.children_left);
}

TEST(CmaProbe, NoTimeLeftStillStopsAndReapsItsProcesses) {
  const ChildProbe r = probe_in_child(0);
  EXPECT_LT(r.ms, 1000);
  EXPECT_FALSE(r.reason.empty());
  if (!r.ok) {
    EXPECT_THAT(r.reason, HasSubstr("did not answer within 0 ms"));
  }
  EXPECT_FALSE(r.children_left);
}

TEST(CmaFailureReason, NamesTheCallAndTheError) {
  EXPECT_EQ(cma_failure_reason("process_vm_readv", EPERM),
            "cross-memory attach is not permitted here (process_vm_readv: Operation not permitted)");
  EXPECT_EQ(cma_failure_reason("process_vm_writev", EACCES),
            "cross-memory attach is not permitted here (process_vm_writev: Permission denied)");
  EXPECT_EQ(cma_failure_reason("process_vm_readv", ENOSYS),
            "cross-memory attach is not available here (process_vm_readv: Function not implemented)");
  EXPECT_EQ(cma_failure_reason("process_vm_readv", ESRCH),
            "cross-memory attach failed here (process_vm_readv: No such process)");
}
