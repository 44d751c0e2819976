#include "worker/train/step_loop.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "worker/model/precision.h"
#include "common/comm/agreement.h"
#include "worker/train/stop_signal.h"

namespace mpibert::train {
namespace {

// What every rank adds up before the step's forward passes.
struct GlobalCounts {
  double loss_units = 0, samples = 0, tokens = 0, flops = 0;
};
// What every rank adds up after backward, while the optimizer runs.
struct StepTotals {
  double loss_sum = 0, stop_votes = 0, out_of_time_votes = 0;
};

template <class Sums>
WorkPtr all_reduce_sums(HcclLike& comm, Sums& sums) {
  static_assert(sizeof(Sums) % sizeof(double) == 0, "sums are plain doubles");
  auto* p = reinterpret_cast<double*>(&sums);
  return comm.allReduce(p, p, sizeof(Sums) / sizeof(double), DataType::F64, ReduceOp::Sum);
}

}  // namespace

uint64_t dropout_seed(uint64_t seed, int64_t step, int rank, int64_t micro) {
  uint64_t k = data::mix64(seed ^ 0x6d707962657274ULL);
  k = data::mix64(k ^ static_cast<uint64_t>(step));
  k = data::mix64(k ^ (static_cast<uint64_t>(rank) << 32) ^ static_cast<uint64_t>(micro));
  return k;
}

StepLoop::StepLoop(RunContext& ctx, Task& task, const TrainConfig& train, const data::GlobalBatchSampler& sampler,
                   std::vector<at::Tensor> params, optim::Optimizer& optimizer, const optim::LrSchedule& schedule,
                   GradientReducer& reducer)
    : ctx_(ctx),
      task_(task),
      train_(train),
      sampler_(sampler),
      params_(std::move(params)),
      optimizer_(optimizer),
      schedule_(schedule),
      reducer_(reducer) {}

StepResult StepLoop::run(int64_t step) {
  const int64_t accum = train_.gradient_accumulation_steps;
  const int64_t epoch = sampler_.epoch_of_step(step);
  std::vector<Batch> batches;
  GlobalCounts counts;
  for (int64_t m = 0; m < accum; ++m) {
    auto indices = sampler_.slice(step, ctx_.rank, ctx_.world, static_cast<int>(m), static_cast<int>(accum));
    batches.push_back(task_.make_batch(Split::Train, indices, epoch));
    counts.loss_units += batches.back().loss_units;
    counts.samples += batches.back().indices.size();
    counts.tokens += batches.back().tokens;
    counts.flops += batches.back().flops;
  }
  // The loss is the sum over every loss unit of the global batch divided by their total count.
  wait_or_abort(ctx_.comm, all_reduce_sums(ctx_.comm, counts), ctx_.timeout_s);
  const double global_units = std::max(1.0, counts.loss_units);
  reducer_.zero_grad();
  StepTotals totals;
  for (int64_t m = 0; m < accum; ++m) {
    task_.set_dropout_seed(dropout_seed(static_cast<uint64_t>(train_.seed), step, ctx_.rank, m));
    at::Tensor loss_sum, loss;
    {
      model::AutocastGuard autocast(ctx_.bf16);
      loss_sum = task_.loss_sum(batches[m]);
      loss = loss_sum / global_units;
    }
    reducer_.prepare_for_backward(m == accum - 1);
    loss.backward();
    totals.loss_sum += loss_sum.item<double>();
  }
  reducer_.finish();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  totals.stop_votes = stop_requested() ? 1 : 0;
  totals.out_of_time_votes = train_.max_time > 0 && elapsed > train_.max_time ? 1 : 0;
  auto totals_work = all_reduce_sums(ctx_.comm, totals);
  StepResult r;
  r.record.grad_norm = optim::clip_grad_norm(params_, train_.max_grad_norm);
  r.record.learning_rate = schedule_.lr_at(step);
  optimizer_.step(r.record.learning_rate);
  wait_or_abort(ctx_.comm, totals_work, ctx_.timeout_s);
  r.record.step = step + 1;
  r.record.loss = totals.loss_sum / global_units;
  if (!std::isfinite(r.record.loss))
    throw std::runtime_error("loss is " + std::to_string(r.record.loss) + " at step " + std::to_string(step + 1) +
                             ": training diverged (lower the learning rate or use fp32)");
  r.record.samples = counts.samples;
  r.record.tokens = counts.tokens;
  r.record.flops = counts.flops;
  r.stop_requested = totals.stop_votes > 0;
  r.out_of_time = !r.stop_requested && totals.out_of_time_votes > 0;
  return r;
}

}  // namespace mpibert::train
