#include "worker/train/evaluator.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/comm/agreement.h"
#include "common/log/progress.h"
#include "worker/model/precision.h"

namespace mpibert::train {
namespace {

constexpr int64_t kEvalEpoch = -1;  // evaluation masks: fixed from the seed, the same at every evaluation

}  // namespace

Evaluator::Evaluator(RunContext& ctx, Task& task, int64_t per_device_batch, int64_t max_samples)
    : ctx_(ctx), task_(task), per_device_batch_(per_device_batch), max_samples_(max_samples) {}

int64_t Evaluator::num_examples(Split split) const {
  const int64_t n = task_.num_examples(split);
  return max_samples_ > 0 && split == Split::Validation ? std::min(n, max_samples_) : n;
}

void Evaluator::for_each_batch(Split split, const std::function<void(const Batch&)>& visit) {
  std::vector<int64_t> mine;
  for (int64_t i = ctx_.rank; i < num_examples(split); i += ctx_.world) mine.push_back(i);
  torch::nn::Module& model = task_.model();
  const bool was_training = model.is_training();
  model.eval();
  {
    torch::NoGradGuard no_grad;
    // Rank 0's share stands for all: every rank has the same number of examples, give or take one.
    Progress progress(std::string(split == Split::Test ? "predict" : "evaluate") + " (rank 0's share)",
                      static_cast<int64_t>(mine.size()), "examples", ctx_.rank == 0);
    for (size_t off = 0; off < mine.size(); off += static_cast<size_t>(per_device_batch_)) {
      const size_t end = std::min(mine.size(), off + static_cast<size_t>(per_device_batch_));
      const std::vector<int64_t> indices(mine.begin() + static_cast<ptrdiff_t>(off),
                                         mine.begin() + static_cast<ptrdiff_t>(end));
      visit(task_.make_batch(split, indices, kEvalEpoch));
      progress.update(static_cast<int64_t>(end));
    }
    progress.finish();
  }
  model.train(was_training);
}

Metrics Evaluator::evaluate(Split split) {
  std::vector<double> sums(task_.eval_sums_size(), 0.0);
  for_each_batch(split, [&](const Batch& batch) {
    model::AutocastGuard autocast(ctx_.bf16);
    task_.eval_batch(batch, sums);
  });
  wait_or_abort(ctx_.comm, ctx_.comm.allReduce(sums.data(), sums.data(), sums.size(), DataType::F64, ReduceOp::Sum),
                ctx_.timeout_s);
  return task_.eval_metrics(sums);
}

}  // namespace mpibert::train
