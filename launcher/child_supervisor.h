#pragma once
// Runs one child (mpirun, the program itself, or a rank's program under the wrapper) and watches it in
// a single poll() loop: its output (optionally captured), its exit, SIGINT/SIGTERM/SIGHUP (forwarded; a
// second one kills at once), SIGUSR1/2 (forwarded), a deadline, and a periodic check that may ask to
// stop. Stopping is SIGTERM to the child's process group, then SIGKILL after a grace period.
#include <sys/types.h>

#include <functional>
#include <string>

#include "launcher/output_tee.h"
#include "launcher/process.h"

namespace mpibert::launcher {

struct SuperviseOptions {
  SpawnSpec spawn;              // with capture_output, its stdout/stderr are replaced by pipes
  bool capture_output = false;  // pipe the child's stdout/stderr into `tee`
  OutputTee* tee = nullptr;
  double timeout_s = 0;         // 0 = none
  double stop_grace_s = 10;     // SIGTERM -> SIGKILL
  double tick_s = 1;            // how often on_tick runs
  // Returns "" to continue, or the reason to stop the job (said on stderr).
  std::function<std::string()> on_tick;
  std::string name = "gaudi_spawn";  // prefix of messages
  bool quiet = false;                // no messages (the rank wrapper)
  std::function<void(pid_t)> on_started;  // called once the child runs
};

struct SuperviseResult {
  pid_t pid = -1;
  int wait_status = 0;
  int stop_signal = 0;      // first SIGINT/SIGTERM/SIGHUP received (and forwarded), 0 = none
  bool timed_out = false;
  std::string stop_reason;  // from on_tick
  bool killed = false;      // the grace period ran out (or a second signal came): SIGKILL was sent
};

// Throws std::runtime_error when the child cannot be started.
SuperviseResult supervise_child(SuperviseOptions options);

// 0..255 exit code of a wait status (128 + signal for a signal death).
int exit_code_of_wait_status(int wait_status);

}  // namespace mpibert::launcher
