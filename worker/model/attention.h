#pragma once
// Fused self-attention core for CPU, fp32 or bf16: softmax(Q K^T * scale + mask) -> dropout -> * V,
// with a hand-written backward. ATen 1.13's bmm loops over the B*heads small matrices calling a
// multi-threaded BLAS for each (thread wake-ups dominate at L=128, d=64); this runs the
// (batch, head) pairs in parallel with single-threaded GEMMs on strided views of the packed QKV
// projection, so Q/K/V and the context are never permuted into head-major copies, and the scaling,
// mask, softmax and dropout happen while the L x L tile is in cache.
#include <torch/torch.h>

#include <cstdint>

namespace mpibert::model {

// True when the products for `dtype` are loaded: float32 through a Fortran sgemm_ (any BLAS libtorch
// links), bfloat16 through oneDNN's dnnl_gemm_bf16bf16f32 (libtorch's bf16 matmuls). Otherwise callers
// use ATen ops.
bool fused_attention_available(at::ScalarType dtype = at::kFloat);

// qkv: [B*L, 3H] float32 or bfloat16, row-major with unit column stride (Q | K | V blocks of H columns, head h
// at columns h*d..h*d+d of each block). key_mask: undefined or [B, L] float32 additive mask.
// Dropout on the probabilities: element (b*heads + h, i, j) kept when the counter-based hash of
// (dropout_key, that flat index) passes, as seeded_dropout. Returns the context [B*L, H] in qkv's dtype.
// bf16: products accumulate in fp32, and the scores, softmax, dropout and its backward stay fp32 (the
// probabilities are rounded to bf16 only as an operand of the products with V and dO).
// Differentiable with respect to qkv.
torch::Tensor fused_attention(const torch::Tensor& qkv, const torch::Tensor& key_mask, int64_t batch, int64_t seq_len,
                              int64_t heads, double scale, double dropout_p, uint64_t dropout_key);

}  // namespace mpibert::model
