#include "worker/train/gradient_reducer.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>

#include "worker/comm/tensor_collectives.h"

namespace mpibert {

GradientReducer::GradientReducer(HcclLike& comm, std::vector<at::Tensor> params, const ReducerOptions& options)
    : comm_(comm), params_(std::move(params)), options_(options) {
  TORCH_CHECK(options.comm_dtype == DataType::F32 || options.comm_dtype == DataType::BF16,
              "GradientReducer: gradients travel in f32 or bf16, not ", dtype_name(options.comm_dtype));
  bucket_of_.assign(params_.size(), 0);
  ready_.assign(params_.size(), 0);
  // Reverse registration order approximates the order backward produces gradients.
  const double first_cap = options.first_bucket_mb * 1024 * 1024, cap = options.bucket_cap_mb * 1024 * 1024;
  std::vector<std::vector<size_t>> groups(1);
  double bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    TORCH_CHECK(p.scalar_type() == at::kFloat, "GradientReducer: parameters must be fp32 master weights");
    double limit = groups.size() == 1 ? first_cap : cap;
    if (!groups.back().empty() && bytes + p.numel() * 4.0 > limit) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(k);
    bytes += p.numel() * 4.0;
  }
  for (auto& g : groups) {
    if (g.empty()) continue;
    Bucket b;
    int64_t total = 0;
    for (size_t k : g) total += params_[k].numel();
    b.buffer = torch::zeros({total}, torch::kFloat);
    if (options.comm_dtype == DataType::BF16) b.comm_buffer = torch::empty({total}, torch::kBFloat16);
    b.params = g;
    int64_t offset = 0;
    for (size_t k : g) {
      auto& p = params_[k];
      // The gradient becomes a view of the bucket: AccumulateGrad adds into it in place.
      p.mutable_grad() = b.buffer.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
      bucket_of_[k] = buckets_.size();
    }
    buckets_.push_back(std::move(b));
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    TORCH_CHECK(acc, "GradientReducer: parameter ", k, " has no gradient accumulator (does it require grad?)");
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          on_grad_ready(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
  for (auto& b : buckets_)
    if (b.work) try {
        b.work->wait();
      } catch (...) {
      }
}

void GradientReducer::zero_grad() {
  for (auto& b : buckets_) b.buffer.zero_();
}

void GradientReducer::prepare_for_backward(bool sync) {
  sync_ = sync;
  if (!sync) return;
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.work.reset();
  }
  std::fill(ready_.begin(), ready_.end(), 0);
  next_launch_ = 0;
  launched_in_backward_ = 0;
}

void GradientReducer::on_grad_ready(size_t k) {
  if (!sync_ || ready_[k]) return;
  ready_[k] = 1;
  auto& b = buckets_[bucket_of_[k]];
  if (--b.pending == 0 && options_.overlap) {
    size_t before = next_launch_;
    launch_ready_buckets();
    launched_in_backward_ += next_launch_ - before;
  }
}

void GradientReducer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) launch(next_launch_++);
}

void GradientReducer::launch(size_t i) {
  auto& b = buckets_[i];
  if (!b.comm_buffer.defined()) {
    b.work = all_reduce(comm_, b.buffer, ReduceOp::Sum);
    return;
  }
  b.comm_buffer.copy_(b.buffer);  // rounds to nearest even, as the all-reduce's own steps do
  b.work = all_reduce(comm_, b.comm_buffer, ReduceOp::Sum);
}

void GradientReducer::wait_for(Bucket& b, std::chrono::milliseconds timeout) {
  try {
    b.work->wait(timeout);
  } catch (const CollectiveTimeout& e) {
    comm_.abortJob(1, std::string("gradient all-reduce: ") + e.what());
  }
  if (b.comm_buffer.defined()) b.buffer.copy_(b.comm_buffer);
}

void GradientReducer::finish() {
  if (!sync_) return;
  // Parameters that got no gradient this step (unused) keep zeros; their buckets still go, in order.
  for (auto& b : buckets_) b.pending = 0;
  launch_ready_buckets();
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_s * 1000));
  for (auto& b : buckets_) wait_for(b, timeout);
  sync_ = false;
}

}  // namespace mpibert
