#pragma once
// Runs one child (mpirun, the program itself, or a rank's program under the wrapper) and watches it in
// a single poll() loop: its output (optionally captured), its exit, signals, a deadline, and a periodic
// check that may ask to stop.
//
// Stopping has two steps. A soft stop (SIGINT/SIGTERM/SIGHUP received, or the deadline) asks the job to
// end: through request_stop when set (gaudi_spawn relays it to every rank's program), else by sending the
// signal to the child's process group; the job then has soft_grace_s to end. A hard stop (the soft grace
// ran out, or on_tick asked) sends SIGTERM to the child's group and SIGKILL hard_grace_s later. A second
// SIGINT/SIGTERM/SIGHUP kills at once.
#include <sys/types.h>

#include <functional>
#include <string>

#include "launcher/output_tee.h"
#include "launcher/process.h"

namespace mpibert::launcher {

struct SuperviseOptions {
  SpawnSpec spawn;              // with capture_output, its stdout/stderr are replaced by pipes
  bool capture_output = false;  // pipe the child's stdout/stderr into `sink`
  OutputSink* sink = nullptr;
  double timeout_s = 0;  // 0 = none
  // Soft stop: delivers `sig` to the job some other way; false = could not (the child is signalled).
  std::function<bool(pid_t child, int sig)> request_stop;
  double soft_grace_s = 30;  // after a soft stop, before the hard stop
  double hard_grace_s = 10;  // after the hard stop's SIGTERM, before SIGKILL
  // SIGUSR2: when set, returns the signal it stands for (treated as a received stop signal); when unset,
  // SIGUSR2 is passed on like SIGUSR1.
  std::function<int()> on_usr2;
  double tick_s = 1;  // how often on_tick runs
  // Returns "" to continue, or the reason to stop the job hard (said on stderr when announce_tick_stop).
  std::function<std::string()> on_tick;
  bool announce_tick_stop = true;
  std::string name = "gaudi_spawn";  // prefix of messages
  bool quiet = false;                // no messages (the rank wrapper)
};

struct SuperviseResult {
  pid_t pid = -1;
  int wait_status = 0;
  int stop_signal = 0;  // first SIGINT/SIGTERM/SIGHUP received (and passed on), 0 = none
  bool timed_out = false;
  std::string stop_reason;    // from on_tick
  bool hard_stopped = false;  // SIGTERM to the child's group (a soft stop ran out of time, or on_tick)
  bool killed = false;        // SIGKILL was sent
};

// Throws std::runtime_error when the child cannot be started.
SuperviseResult supervise_child(SuperviseOptions options);

// 0..255 exit code of a wait status (128 + signal for a signal death).
int exit_code_of_wait_status(int wait_status);

}  // namespace mpibert::launcher
