#pragma once
// Evaluation of a task on a split: every rank takes the examples rank, rank + W, ... in batches of
// per_device_eval_batch_size, the task adds each batch into its sums, the sums are all-reduced and
// the task turns them into metrics. Same sums (up to float addition order) for any world size.
#include <functional>

#include "worker/train/run_context.h"
#include "worker/train/task.h"

namespace mpibert::train {

class Evaluator {
 public:
  // max_samples > 0 evaluates only the first max_samples examples of the validation split.
  Evaluator(RunContext& ctx, Task& task, int64_t per_device_batch, int64_t max_samples);

  // Examples of the split this evaluator looks at (0 = no such split).
  int64_t num_examples(Split split) const;
  Metrics evaluate(Split split);
  // This rank's batches of the split, in order, in eval mode without gradients (prediction).
  void for_each_batch(Split split, const std::function<void(const Batch&)>& visit);

 private:
  RunContext& ctx_;
  Task& task_;
  int64_t per_device_batch_;
  int64_t max_samples_;
};

}  // namespace mpibert::train
