#pragma once
// Does cross-memory attach (CMA: process_vm_readv/process_vm_writev) work on this host the way Open MPI's
// shared-memory transport (btl vader in Open MPI 4, sm in 5) uses it? Containers often forbid it (Yama
// ptrace_scope, a missing CAP_SYS_PTRACE, seccomp), and Open MPI 4.1 then fails at the first large
// message instead of falling back. No torch, no MPI: two forked processes and three pipes.
#include <string>

namespace mpibert::launcher {

struct CmaProbeResult {
  bool ok = false;
  // ok: what worked; otherwise why not, e.g. "cross-memory attach is not permitted here (process_vm_readv:
  // Operation not permitted)". Never empty.
  std::string reason;
};

// Forks two sibling processes, as mpirun's ranks are siblings under its daemon (a parent may be allowed to
// read its child's memory where a sibling is not). When Yama's /proc/sys/kernel/yama/ptrace_scope exists
// and is not 0, each first allows any tracer (prctl PR_SET_PTRACER_ANY), as Open MPI does in every rank.
// Then one reads a known buffer from the other with process_vm_readv, writes it back into the other with
// process_vm_writev and reads that back. Takes about a millisecond; gives up after `limit_ms`. The
// children die with this process (PR_SET_PDEATHSIG) and after 2 s by themselves (alarm), and are always
// killed and reaped before this returns. Safe to call from a multi-threaded process (the children only
// make async-signal-safe calls).
CmaProbeResult probe_cross_memory_attach(int limit_ms = 1000);

// "cross-memory attach is not permitted here (process_vm_readv: Operation not permitted)" for EPERM and
// EACCES, "... is not available here (...)" for ENOSYS, "... failed here (...)" otherwise.
std::string cma_failure_reason(const std::string& call, int err);

}  // namespace mpibert::launcher
