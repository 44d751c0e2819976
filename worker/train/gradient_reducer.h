#pragma once
// GradientReducer: data-parallel gradient all-reduce that overlaps backward (as DDP's Reducer and
// Horovod's tensor fusion do). Gradients live in flat per-bucket buffers (each parameter's .grad is a
// view into its bucket, so nothing is copied); buckets are filled in reverse parameter order, the
// first one small (~1 MiB) so communication starts early, then ~25 MiB. A post-hook on each
// parameter's AccumulateGrad node counts the bucket down; a full bucket's all-reduce starts at once,
// but buckets launch strictly in index order on every rank (bucket k only after k-1), whatever order
// backward finishes them in, so all ranks issue the same collectives in the same order.
// With comm_dtype bf16 (dist.grad_comm_dtype) a full bucket is rounded into a bf16 buffer of its own
// (made once, reused every step), that buffer is all-reduced (half the bytes; MPI sums pairs in f32 and
// rounds back to bf16 after every step), and finish() writes the sum back into the fp32 bucket.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "common/comm/hccl_like.h"

namespace mpibert {

struct ReducerOptions {
  double first_bucket_mb = 1.0;
  double bucket_cap_mb = 25.0;
  bool overlap = true;                  // launch during backward; false: all buckets after backward
  double timeout_s = 600;               // a bucket not reduced by then aborts the job
  DataType comm_dtype = DataType::F32;  // what buckets travel in: F32, or BF16 (gradient compression)
};

class GradientReducer {
 public:
  struct Bucket {
    at::Tensor buffer;           // flat fp32 gradients of the bucket's parameters
    at::Tensor comm_buffer;      // comm_dtype bf16: the bucket as bf16, reduced in its place; else undefined
    std::vector<size_t> params;  // indices into the parameter list
    size_t pending = 0;          // parameters whose gradient is not final yet in this backward
    WorkPtr work;
  };

  // params in registration order (as named_parameters() gives them); tied parameters appear once.
  GradientReducer(HcclLike& comm, std::vector<at::Tensor> params, const ReducerOptions& options);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Zeroes every gradient (the bucket buffers) before a step's first micro-step.
  void zero_grad();
  // Call before each micro-step's backward. sync=false (accumulation micro-steps): gradients only
  // accumulate locally; sync=true: the buckets are all-reduced (summed) as they become ready.
  void prepare_for_backward(bool sync);
  // After the last backward of a step: launches any bucket not started yet, waits for all of them.
  // Gradients are then the sum over ranks.
  void finish();

  const std::vector<Bucket>& buckets() const { return buckets_; }
  size_t launched_in_backward() const { return launched_in_backward_; }  // for tests: overlap happened

 private:
  void on_grad_ready(size_t param_index);
  void launch_ready_buckets();
  void launch(size_t bucket);
  void wait_for(Bucket& bucket, std::chrono::milliseconds timeout);

  HcclLike& comm_;
  std::vector<at::Tensor> params_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;                                     // param index -> bucket
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive: they own our hooks
  std::vector<uintptr_t> hook_keys_;
  std::vector<char> ready_;  // param got its gradient in this backward
  size_t next_launch_ = 0;
  bool sync_ = false;
  size_t launched_in_backward_ = 0;
};

}  // namespace mpibert
