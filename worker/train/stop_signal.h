#pragma once
// Preemption: SIGTERM / SIGINT only set a flag; the trainer finishes the step in progress, all ranks
// agree on stopping (the flag travels with the step's statistics all-reduce), a checkpoint is written,
// and run_mlm exits with kExitPreempted so that Slurm requeue or a rerun resumes there.
namespace mpibert {

constexpr int kExitPreempted = 75;  // EX_TEMPFAIL: stopped early on request, checkpoint written

void install_stop_signal_handlers();
bool stop_requested();
int stop_signal_number();               // the signal that asked to stop, 0 if none
void request_stop_for_test(bool stop);  // tests: as if a signal had (or had not) arrived

}  // namespace mpibert
