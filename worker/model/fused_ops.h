#pragma once
// Cross-entropy over the vocabulary in one kernel: ATen 1.13 runs log_softmax + nll_loss + argmax
// as separate passes and its backward through a zero-filled [rows, V] buffer (each a fresh 75 MB
// allocation, i.e. page faults, for bert-mini's 617 masked rows x 30522). (A hand-written GELU
// backward was tried and removed: ATen's vectorised one is faster.)
#include <torch/torch.h>

#include <utility>

namespace mpibert::model {

// Sum over rows of -log softmax(logits)[target] for targets != ignore_index (-100), computed in fp32
// from float32 or bfloat16 logits [rows, V]; .first = the differentiable fp32 scalar loss sum,
// .second = int64 scalar count of rows whose argmax equals the target (ties: first maximum, as
// torch.argmax). The gradient has the logits' dtype. Targets outside [0, V) (other than the ignore
// index) throw std::out_of_range.
std::pair<torch::Tensor, torch::Tensor> fused_cross_entropy_sum(const torch::Tensor& logits,
                                                                const torch::Tensor& targets);

}  // namespace mpibert::model
