#pragma once
// One optimizer step of data-parallel training, whatever the task: this rank's micro-batches of the
// global batch, the global count of loss units (so the loss is the sum over the whole global batch
// divided by that count: N ranks x B = 1 rank x N accumulation steps = 1 rank x NB), forward and
// backward per micro-step with gradients all-reduced in buckets while backward runs, clipping, the
// update, and the vote on stopping (signal, time limit) that travels with the step's statistics.
#include <chrono>
#include <cstdint>
#include <vector>

#include "common/config/run_config.h"
#include "common/data/batch_sampler.h"
#include "worker/optim/lr_schedule.h"
#include "worker/optim/optimizer.h"
#include "worker/train/fault_injection.h"
#include "worker/train/gradient_reducer.h"
#include "worker/train/reporter.h"
#include "worker/train/run_context.h"
#include "worker/train/task.h"

namespace mpibert::train {

struct StepResult {
  StepRecord record;
  bool stop_requested = false;  // some rank got SIGTERM/SIGINT
  bool out_of_time = false;     // some rank passed train.max_time
  bool skipped = false;         // non-finite loss or gradients with nan_policy skip_step: no update
};

class StepLoop {
 public:
  StepLoop(RunContext& ctx, Task& task, const TrainConfig& train, const data::GlobalBatchSampler& sampler,
           std::vector<at::Tensor> params, optim::Optimizer& optimizer, const optim::LrSchedule& schedule,
           GradientReducer& reducer);

  // Runs step `step` (0-based); the record carries step + 1. A non-finite global loss or gradient norm is
  // decided before the optimizer step: with train.nan_policy abort every rank throws the same
  // AgreedFailure naming the step, the ranks and what was non-finite (the weights are not updated and
  // the last checkpoint stays `latest`); with skip_step the update is skipped and the step reported.
  StepResult run(int64_t step);

 private:
  void inject_fault(int64_t step_1based, at::Tensor& loss);
  [[noreturn]] void abort_non_finite(int64_t step_1based, double loss, double grad_norm, bool local_loss_bad);

  RunContext& ctx_;
  Task& task_;
  const TrainConfig& train_;
  const data::GlobalBatchSampler& sampler_;
  std::vector<at::Tensor> params_;
  optim::Optimizer& optimizer_;
  const optim::LrSchedule& schedule_;
  GradientReducer& reducer_;
  Fault fault_ = fault_from_environment();
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Dropout stream of (seed, step, rank, micro-step): the masks a step sees do not depend on timing.
uint64_t dropout_seed(uint64_t seed, int64_t step, int rank, int64_t micro);

}  // namespace mpibert::train
