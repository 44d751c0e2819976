#pragma once
// What a program that stopped cleanly on request (exit 75, EX_TEMPFAIL) said about where it stopped,
// read from its console lines, so that gaudi_spawn can say "stopped cleanly at step N, checkpoint P;
// rerun to resume" instead of reporting a failure.
//
// The lines are run_mlm's (see worker/train/trainer.cpp and checkpointer.cpp):
//   ... [info] saved OUTPUT_DIR/checkpoint-N
//   ... [warning] stopped by signal S after step N: checkpoint written; rerun the same command to resume
// Colour escapes are ignored. tests/e2e/launcher_run_mlm.sh checks the contract against the real run_mlm.
#include <string>

namespace mpibert::launcher {

constexpr int kExitStoppedCleanly = 75;  // run_mlm's kExitPreempted

struct StopNote {
  int step = -1;           // -1: not said
  std::string checkpoint;  // the last checkpoint saved, "" if none was said

  void observe(const std::string& line);  // feed every complete console line
  bool empty() const { return step < 0 && checkpoint.empty(); }
};

// "stopped cleanly at step 7, checkpoint out/checkpoint-7; rerun the same command to resume"
// (parts that are not known are left out).
std::string describe_clean_stop(const StopNote& note);

}  // namespace mpibert::launcher
