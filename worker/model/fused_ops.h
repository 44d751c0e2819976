#pragma once
// Single-pass CPU kernels for the two memory-bound hot spots of the MLM step that ATen 1.13 runs
// as several passes: cross-entropy over the vocabulary (log_softmax + nll_loss + argmax, and their
// backward through a zero-filled [rows, V] buffer) and GELU's backward (erf and exp per element).
#include <torch/torch.h>

#include <utility>

namespace mpibert::model {

// Sum over rows of -log softmax(logits)[target] for targets != ignore_index (-100), computed in fp32
// from float32 or bfloat16 logits [rows, V]; .first = the differentiable fp32 scalar loss sum,
// .second = int64 scalar count of rows whose argmax equals the target (ties: first maximum, as
// torch.argmax). The gradient has the logits' dtype. Targets outside [0, V) (other than the ignore
// index) throw std::out_of_range.
std::pair<torch::Tensor, torch::Tensor> fused_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& targets);

// GELU (erf form) whose backward is one vectorised pass (erf by Abramowitz-Stegun 7.1.26, |error| <
// 1.5e-7, sharing its exp with the normal density). Forward is ATen's. float32 and bfloat16.
torch::Tensor gelu_erf(const torch::Tensor& x);

}  // namespace mpibert::model
