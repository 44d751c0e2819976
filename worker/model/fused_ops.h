#pragma once
// Kernels that replace chains of ATen passes. Cross-entropy over the vocabulary in one kernel: ATen 1.13 runs
// log_softmax + nll_loss + argmax as separate passes and its backward through a zero-filled [rows, V] buffer (each a
// fresh 75 MB allocation, i.e. page faults, for bert-mini's 617 masked rows x 30522). (A hand-written GELU backward was
// tried and removed: ATen's vectorised one is faster.)
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

// Post-LayerNorm residual block in one pass per row: y = LayerNorm(dropout(a) + residual) * gamma + beta,
// all in fp32. a: [N, H] float32 or bfloat16 (a dense layer's output, bf16 under autocast); residual:
// float32 [N, H]; gamma, beta: float32 [H]. Dropout on a as seeded_dropout(a, p, dropout_key) numbers a
// contiguous [N, H] tensor (the same mask), but without rounding the dropped-out a to bf16. Returns
// {y float32, a bfloat16 copy of y when bf16_copy (the next GEMM's operand under autocast, which would
// otherwise cast y again), else undefined}. Differentiable with respect to a, residual, gamma and beta
// through both outputs; the gradient of a has a's dtype. gamma/beta gradients are summed in double over fixed
// row blocks in order: the same whatever the thread count.
std::pair<torch::Tensor, torch::Tensor> fused_dropout_add_layer_norm(const torch::Tensor& a,
                                                                     const torch::Tensor& residual,
                                                                     const torch::Tensor& gamma,
                                                                     const torch::Tensor& beta, double eps, double p,
                                                                     uint64_t dropout_key, bool bf16_copy);

// An FFN's activation with its bias: y = gelu(h + bias), the exact (erf) GELU of Hugging Face's "gelu",
// computed in fp32 (erf to 1.5e-7 absolute, fast_math.h) from h = x W^T (a GEMM's output without the bias,
// float32 or bfloat16) and bias float32 [I]; y has h's dtype. One pass each way: the bias is not copied
// into the GEMM's output first, and backward writes dh and sums the bias gradient (in double, over fixed
// row blocks: the same whatever the thread count) in the same pass.
torch::Tensor fused_bias_gelu(const torch::Tensor& h, const torch::Tensor& bias);

}  // namespace mpibert::model
