#pragma once
// The training engine every task runs on (docs/architecture.md "Training engine"): the global data
// order, the step loop with accumulation, overlapped gradient reduction and the optimizer, evaluation
// by strategy, the best checkpoint and early stopping, checkpoints with exact resume, preemption,
// reporting and the final export. The task (task.h) supplies the model, batches, loss and metrics.
#include <memory>
#include <optional>
#include <string>

#include "common/config/run_config.h"
#include "worker/train/evaluator.h"
#include "worker/train/run_context.h"
#include "worker/train/task.h"

namespace mpibert::train {

class Trainer {
 public:
  // Builds the optimizer, schedule and gradient reducer (when training), resumes from the run
  // directory's checkpoint if it names one, and writes config.json and run_config.yaml.
  Trainer(RunContext& ctx, Task& task, const TrainConfig& train, const DistConfig& dist, std::string run_config_yaml);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // do_train (then the export to OUTPUT_DIR/final) and/or do_eval as configured. Returns the exit code:
  // 0, or kExitPreempted after a stop signal (a checkpoint was written).
  int run();

  Evaluator& evaluator();
  int64_t global_step() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpibert::train
