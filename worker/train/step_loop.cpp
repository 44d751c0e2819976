#include "worker/train/step_loop.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <limits>
#include <stdexcept>

#include "common/comm/agreement.h"
#include "common/report/timeline.h"
#include "worker/model/precision.h"
#include "worker/train/stop_signal.h"

namespace mpibert::train {
namespace {

// What every rank adds up before the step's forward passes.
struct GlobalCounts {
  double loss_units = 0, samples = 0, tokens = 0, flops = 0;
};
// What every rank adds up after backward, while the optimizer runs.
struct StepTotals {
  double loss_sum = 0, stop_votes = 0, out_of_time_votes = 0, non_finite_votes = 0;
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

void StepLoop::inject_fault(int64_t step_1based, at::Tensor& loss) {
  if (!fault_.due(step_1based, ctx_.rank)) return;
  switch (fault_.kind) {
    case Fault::Kind::Kill:
      std::raise(SIGKILL);
      break;
    case Fault::Kind::Hang:
      std::raise(SIGSTOP);  // every thread stops: no progress, no heartbeats
      break;
    case Fault::Kind::Nan:
      loss = loss * std::numeric_limits<double>::quiet_NaN();
      break;
    case Fault::Kind::Mismatch: {
      double stray[3] = {0, 0, 0};  // a collective the other ranks never issue
      wait_or_abort(ctx_.comm, ctx_.comm.allReduce(stray, stray, 3, DataType::F64, ReduceOp::Sum), ctx_.timeout_s);
      break;
    }
    case Fault::Kind::None:
      break;
  }
}

void StepLoop::abort_non_finite(int64_t step_1based, double loss, double grad_norm, bool local_loss_bad) {
  // Which ranks computed a non-finite loss themselves (the global values are the same everywhere).
  const int32_t mine = local_loss_bad ? 1 : 0;
  std::vector<int32_t> flags(static_cast<size_t>(ctx_.world));
  wait_or_abort(ctx_.comm, ctx_.comm.allGather(&mine, flags.data(), 1, DataType::I32), ctx_.timeout_s);
  std::string ranks;
  for (int r = 0; r < ctx_.world; ++r)
    if (flags[static_cast<size_t>(r)]) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  const std::string what =
      !std::isfinite(loss) ? fmt::format("the loss is {}", loss) : fmt::format("the gradient norm is {}", grad_norm);
  throw AgreedFailure(
      fmt::format("step {}: {} ({}); the weights were not updated and the last checkpoint is still `latest`. "
                  "Lower the learning rate, train in fp32, check the data, or set train.nan_policy skip_step",
                  step_1based, what,
                  ranks.empty() ? "every rank's own loss was finite: the all-reduced gradients were not"
                                : "non-finite on rank(s) " + ranks),
      ranks.empty() ? 0 : std::stoi(ranks));
}

StepResult StepLoop::run(int64_t step) {
  using report::TimelineScope;
  using report::Track;
  TimelineScope step_scope(Track::Steps, "step " + std::to_string(step + 1));
  const int64_t accum = train_.gradient_accumulation_steps;
  const int64_t epoch = sampler_.epoch_of_step(step);
  std::vector<Batch> batches;
  GlobalCounts counts;
  for (int64_t m = 0; m < accum; ++m) {
    TimelineScope data(Track::Phases, "data");
    auto indices = sampler_.slice(step, ctx_.rank, ctx_.world, static_cast<int>(m), static_cast<int>(accum));
    batches.push_back(task_.make_batch(Split::Train, indices, epoch));
    counts.loss_units += batches.back().loss_units;
    counts.samples += batches.back().indices.size();
    counts.tokens += batches.back().tokens;
    counts.flops += batches.back().flops;
  }
  if (fault_.kind != Fault::Kind::Nan) {
    at::Tensor none;
    inject_fault(step + 1, none);
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
      TimelineScope forward(Track::Phases, "forward");
      model::AutocastGuard autocast(ctx_.bf16);
      loss_sum = task_.loss_sum(batches[m]);
      if (fault_.kind == Fault::Kind::Nan && m == 0) inject_fault(step + 1, loss_sum);
      loss = loss_sum / global_units;
    }
    reducer_.prepare_for_backward(m == accum - 1);
    {
      TimelineScope backward(Track::Phases, m == accum - 1 ? "backward (gradient all-reduce overlapped)" : "backward");
      loss.backward();
    }
    totals.loss_sum += loss_sum.item<double>();
  }
  {
    TimelineScope reduce(Track::Phases, "gradient all-reduce: wait");
    reducer_.finish();
  }
  const bool local_loss_bad = !std::isfinite(totals.loss_sum);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  totals.stop_votes = stop_requested() ? 1 : 0;
  totals.out_of_time_votes = train_.max_time > 0 && elapsed > train_.max_time ? 1 : 0;
  totals.non_finite_votes = local_loss_bad ? 1 : 0;
  auto totals_work = all_reduce_sums(ctx_.comm, totals);
  StepResult r;
  r.record.step = step + 1;
  r.record.learning_rate = schedule_.lr_at(step);
  // The gradients are the same on every rank now: so are their norm and the decision below.
  TimelineScope update(Track::Phases, "clip + optimizer");
  r.record.grad_norm = optim::clip_grad_norm(params_, train_.max_grad_norm);
  wait_or_abort(ctx_.comm, totals_work, ctx_.timeout_s);
  r.record.loss = totals.loss_sum / global_units;
  if (std::isfinite(r.record.loss) && std::isfinite(r.record.grad_norm)) {
    optimizer_.step(r.record.learning_rate);
  } else if (train_.nan_policy == "skip_step") {
    r.skipped = true;
    spdlog::warn("step {}: non-finite loss ({}) or gradient norm ({}): update skipped (train.nan_policy skip_step)",
                 step + 1, r.record.loss, r.record.grad_norm);
  } else {
    abort_non_finite(step + 1, r.record.loss, r.record.grad_norm, local_loss_bad);
  }
  r.record.samples = counts.samples;
  r.record.tokens = counts.tokens;
  r.record.flops = counts.flops;
  r.stop_requested = totals.stop_votes > 0;
  r.out_of_time = !r.stop_requested && totals.out_of_time_votes > 0;
  return r;
}

}  // namespace mpibert::train
